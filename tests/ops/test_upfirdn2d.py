"""upfirdn2d and its wrappers against the official reference outputs (tests/fixtures/official/upfirdn2d.*)."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stylegan.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "official"


@pytest.fixture(scope="module")
def ref():
    return load_file(str(FIXTURES / "upfirdn2d.safetensors"))


CASES = {
    "upsample2d": lambda t: upsample2d(t["x"], t["f"], up=2),
    "downsample2d": lambda t: downsample2d(t["x"], t["f"], down=2),
    "filter2d_pad1": lambda t: filter2d(t["x"], t["f"], padding=1),
    "upfirdn_up2_pad1201_flip_gain4": lambda t: upfirdn2d(t["x"], t["f"], up=2, padding=[1, 2, 0, 1], flip_filter=True, gain=4),
    "upfirdn_asym_up2_pad1201_flip_gain4": lambda t: upfirdn2d(t["x"], t["f_asym"], up=2, padding=[1, 2, 0, 1], flip_filter=True, gain=4),
    "upfirdn_asym_up2_pad1201_noflip_gain4": lambda t: upfirdn2d(t["x"], t["f_asym"], up=2, padding=[1, 2, 0, 1], flip_filter=False, gain=4),
    "upfirdn_asym_down2_pad2110": lambda t: upfirdn2d(t["x"], t["f_asym"], down=2, padding=[2, 1, 1, 0]),
    "upfirdn_asym_negpad": lambda t: upfirdn2d(t["x"], t["f_asym"], padding=[-1, 0, 1, -2]),
    "upsample2d_asym": lambda t: upsample2d(t["x"], t["f_asym"], up=2),
    "downsample2d_asym": lambda t: downsample2d(t["x"], t["f_asym"], down=2),
}


def test_fixture_lists_every_case(ref):
    described = set(json.loads((FIXTURES / "upfirdn2d.json").read_text())["tensors"]) - {"x", "f", "f_asym"}
    assert described == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_official(ref, name):
    out = CASES[name](ref)
    assert out.shape == ref[name].shape
    torch.testing.assert_close(out, ref[name], atol=1e-6, rtol=1e-5)


def test_setup_filter_matches_fixture(ref):
    torch.testing.assert_close(setup_filter([1, 3, 3, 1]), ref["f"])
    torch.testing.assert_close(setup_filter([1, 2, 3, 4]), ref["f_asym"])


def test_separable_filter_equals_outer_product():
    x = torch.randn(2, 3, 11, 13, dtype=torch.float64)
    taps = [1, 4, 6, 4, 1, 2, 3, 5]
    f1 = setup_filter(taps, separable=True).double()
    f2 = setup_filter(taps, separable=False).double()
    assert f1.ndim == 1 and f2.ndim == 2
    for kwargs in [dict(up=2, padding=[4, 3, 4, 3]), dict(down=2, padding=3), dict(padding=[3, 4, 2, 5], gain=2.0)]:
        torch.testing.assert_close(upfirdn2d(x, f1, **kwargs), upfirdn2d(x, f2, **kwargs))


def test_flip_filter_is_mirror_of_input():
    # Filtering with the flipped filter equals mirroring input and output with the original filter.
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    f = setup_filter([1, 2, 3, 4]).double()
    a = upfirdn2d(x, f, padding=[2, 1, 2, 1], flip_filter=True)
    b = upfirdn2d(x.flip([2, 3]), f, padding=[1, 2, 1, 2]).flip([2, 3])
    torch.testing.assert_close(a, b)


def test_gradcheck_including_double_backward():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()
    fn = lambda t: upfirdn2d(t, f, up=2, down=1, padding=[2, 1, 1, 2], gain=4)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    fn2 = lambda t: downsample2d(t, f)
    assert torch.autograd.gradcheck(fn2, (x,))
    assert torch.autograd.gradgradcheck(fn2, (x,))


def test_rejects_wrong_rank():
    with pytest.raises(ValueError, match="N, C, H, W"):
        upfirdn2d(torch.zeros(3, 4, 4), setup_filter([1, 1]))
