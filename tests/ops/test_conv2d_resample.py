"""The fast conv2d_resample (strided / transposed convolutions) equals the reference, forward and backward."""
import itertools

import pytest
import torch

from stylegan.ops.conv2d_resample import conv2d_resample, conv2d_resample_reference
from stylegan.ops.upfirdn2d import setup_filter

CASES = list(itertools.product([1, 3], [(1, 1), (2, 1), (1, 2), (2, 2)], [1, 2], [True, False]))


@pytest.mark.parametrize("k,updown,groups,flip_weight", CASES)
def test_fast_equals_reference(k, updown, groups, flip_weight):
    up, down = updown
    torch.manual_seed(k * 100 + up * 10 + down + groups)
    x = torch.randn(2, 4 * groups, 7, 6, dtype=torch.float64)
    w = torch.randn(3 * groups, 4, k, k, dtype=torch.float64)
    f = setup_filter([1, 2, 3, 4]).double()  # asymmetric: catches flips
    kwargs = dict(f=f, up=up, down=down, padding=k // 2, groups=groups, flip_weight=flip_weight)
    ref = conv2d_resample_reference(x, w, **kwargs)
    out = conv2d_resample(x, w, **kwargs)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref)


def test_output_sizes_follow_resampling():
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(1, 2, 8, 8)
    w = torch.randn(5, 2, 3, 3)
    assert conv2d_resample(x, w, f, up=2, padding=1).shape == (1, 5, 16, 16)
    assert conv2d_resample(x, w, f, down=2, padding=1).shape == (1, 5, 4, 4)
    assert conv2d_resample(x, w, padding=1).shape == (1, 5, 8, 8)


def test_plain_conv_matches_torch():
    x = torch.randn(2, 3, 9, 9)
    w = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(conv2d_resample(x, w, padding=1), torch.nn.functional.conv2d(x, w, padding=1))
    torch.testing.assert_close(conv2d_resample(x, w, padding=1, flip_weight=False),
                               torch.nn.functional.conv2d(x, w.flip([2, 3]), padding=1))


@pytest.mark.parametrize("up,down", [(2, 1), (1, 2)])
def test_gradients_including_double_backward(up, down):
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()
    fn = lambda x, w: conv2d_resample(x, w, f, up=up, down=down, padding=1, flip_weight=(up == 1))
    assert torch.autograd.gradcheck(fn, (x, w))
    assert torch.autograd.gradgradcheck(fn, (x, w))


def test_bad_shapes():
    with pytest.raises(ValueError, match="channels"):
        conv2d_resample(torch.zeros(1, 3, 4, 4), torch.zeros(2, 2, 3, 3))
    with pytest.raises(ValueError, match="positive integers"):
        conv2d_resample(torch.zeros(1, 2, 4, 4), torch.zeros(2, 2, 3, 3), up=0)
