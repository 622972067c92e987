"""filtered_lrelu: the fast (polyphase) path equals the reference forward, backward and double backward.

The reference itself is checked against NVIDIA's outputs through the StyleGAN3 network parity tests
(tests/networks/test_stylegan3_parity.py runs both paths); here it is also checked against a direct, loop-free
re-expression of its definition on a small case.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.networks.alias_free_filters import lowpass_filter
from stylegan.ops.filtered_lrelu import filtered_lrelu, filtered_lrelu_fast, filtered_lrelu_reference, output_size

# (up, down, up taps, down taps, radial down filter, padding [x0, x1, y0, y1], flip_filter, clamp)
CASES = [
    (2, 2, 12, 12, False, [9, 8, 9, 8], False, 256.0),        # StyleGAN3-T layer at a constant rate
    (4, 2, 24, 12, False, [-6, -9, -6, -9], False, 256.0),    # rate doubles: up 4, cropping
    (2, 2, 12, 12, True, [11, 10, 11, 10], False, 256.0),     # StyleGAN3-R: radial 12x12 down filter
    (2, 2, 12, 12, False, [-9, -10, -9, -10], False, 0.5),    # critically sampled last layer, active clamp
    (1, 1, 1, 1, False, [0, 0, 0, 0], False, 0.5),            # ToRGB: bias + clamp only
    (3, 2, 5, 4, False, [12, -2, 0, 3], True, None),          # odd factors, mixed pad/crop, correlation
    (2, 1, 7, 1, False, [3, 1, 2, 5], True, None),            # up only
    (1, 3, 1, 5, True, [1, 2, 0, 4], False, None),            # down only, 2-D filter
]


def _filters(up_taps, down_taps, radial, dtype, generator):
    fu = torch.randn([up_taps], dtype=dtype, generator=generator) if up_taps > 1 else None
    shape = [down_taps, down_taps] if radial else [down_taps]
    fd = torch.randn(shape, dtype=dtype, generator=generator) if down_taps > 1 else None
    return fu, fd


@pytest.mark.parametrize("up,down,fu_taps,fd_taps,radial,padding,flip,clamp", CASES)
def test_fast_equals_reference_forward_and_backward(up, down, fu_taps, fd_taps, radial, padding, flip, clamp):
    g = torch.Generator().manual_seed(up * 100 + down * 10 + fu_taps)
    x = torch.randn([2, 3, 30, 27], dtype=torch.float64, generator=g)
    b = torch.randn([3], dtype=torch.float64, generator=g)
    fu, fd = _filters(fu_taps, fd_taps, radial, torch.float64, g)
    kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip, clamp=clamp,
                  slope=1.0 if up == down == 1 else 0.2, gain=1.0 if up == down == 1 else math.sqrt(2))
    outs, grads = [], []
    for impl in ("reference", "fast"):
        xi, bi = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
        y = filtered_lrelu(xi, fu, fd, bi, impl=impl, **kwargs)
        dy = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(7))
        outs.append(y.detach())
        grads.append(torch.autograd.grad((y * dy).sum(), [xi, bi]))
    px0, px1, py0, py1 = padding
    fw = fd.shape[-1] if fd is not None else 1
    assert outs[0].shape[2] == output_size(30, up, down, py0, py1, fu_taps, fw)
    assert outs[0].shape[3] == output_size(27, up, down, px0, px1, fu_taps, fw)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-12, rtol=1e-12)
    for ours, ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-12)


def test_fast_float32_stylegan3_layer_matches_reference():
    """An actual StyleGAN3 layer (designed filters, float32) agrees to float32 rounding."""
    fu = lowpass_filter(24, cutoff=4.0, width=8.0, fs=64)
    fd = lowpass_filter(12, cutoff=4.76, width=2 * 11.24, fs=64, radial=True)
    g = torch.Generator().manual_seed(0)
    x, b = torch.randn([2, 8, 38, 38], generator=g), torch.randn([8], generator=g)
    kwargs = dict(up=4, down=2, padding=[-6, -9, -6, -9], clamp=256)
    ref = filtered_lrelu_reference(x, fu, fd, b, **kwargs)
    fast = filtered_lrelu_fast(x, fu, fd, b, **kwargs)
    assert ref.shape == (2, 8, 52, 52)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("radial", [False, True])
def test_gradcheck_and_double_backward(impl, radial):
    g = torch.Generator().manual_seed(3)
    x = torch.randn([1, 2, 7, 6], dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn([2], dtype=torch.float64, generator=g, requires_grad=True)
    fu, fd = _filters(4, 4, radial, torch.float64, g)

    def fn(x, b):  # clamp inactive here: its kink is where gradcheck's finite differences break down
        return filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[3, 2, 1, 4], impl=impl)

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_reference_matches_its_definition():
    """bias -> zero-insert, pad, convolve (gain up^2) -> gain * lrelu, clamp -> convolve, decimate, on one axis
    pair written out with plain conv2d on a single channel."""
    g = torch.Generator().manual_seed(5)
    x, b = torch.randn([1, 1, 6, 5], dtype=torch.float64, generator=g), torch.randn([1], dtype=torch.float64, generator=g)
    fu, fd = torch.randn([4], dtype=torch.float64, generator=g), torch.randn([3, 3], dtype=torch.float64, generator=g)
    up, down, (px0, px1, py0, py1) = 2, 2, (2, 1, 3, -1)
    z = torch.zeros([1, 1, 12, 10], dtype=torch.float64)
    z[:, :, ::2, ::2] = x + b
    z = F.pad(z, [px0, px1, py0, py1])  # negative = crop
    fu2 = torch.outer(fu, fu) * up ** 2
    y = F.conv2d(z, fu2.flip([0, 1])[None, None])
    y = (F.leaky_relu(y, 0.2) * math.sqrt(2)).clamp(-1.5, 1.5)
    y = F.conv2d(y, fd.flip([0, 1])[None, None])[:, :, ::down, ::down]
    ours = filtered_lrelu_reference(x, fu, fd, b, up=up, down=down, padding=[px0, px1, py0, py1], clamp=1.5)
    torch.testing.assert_close(ours, y, atol=1e-12, rtol=1e-12)


def test_bad_arguments():
    x = torch.zeros([1, 2, 8, 8])
    with pytest.raises(ValueError, match="impl"):
        filtered_lrelu(x, impl="cuda")
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        filtered_lrelu(torch.zeros([2, 8, 8]))
    with pytest.raises(ValueError, match="bias"):
        filtered_lrelu(x, b=torch.zeros([3]))
    with pytest.raises(ValueError, match="positive integers"):
        filtered_lrelu(x, up=0)
    with pytest.raises(ValueError, match="1-D"):
        filtered_lrelu(x, fu=torch.zeros([2, 2, 2]), up=2)
    with pytest.raises(ValueError, match="gain"):
        filtered_lrelu(x, gain=0)


@pytest.mark.parametrize("up,down,fu_taps,fd_taps,radial,padding,flip,clamp", CASES)
def test_fast_inference_works_in_place_but_never_on_its_input(up, down, fu_taps, fd_taps, radial, padding, flip,
                                                              clamp):
    """`fast_inplace` applies the activation in place on its own upsampled tensor: the same values as the reference,
    and the caller's input untouched, with and without a bias (no bias, no filter, no upsampling and no padding
    pass the input itself through to the activation); asked for gradients it refuses."""
    g = torch.Generator().manual_seed(up * 100 + down * 10 + fu_taps)
    x = torch.randn([2, 3, 30, 27], dtype=torch.float64, generator=g)
    fu, fd = _filters(fu_taps, fd_taps, radial, torch.float64, g)
    kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip, clamp=clamp,
                  slope=1.0 if up == down == 1 else 0.2, gain=1.0 if up == down == 1 else math.sqrt(2))
    for b in (torch.randn([3], dtype=torch.float64, generator=g), None):
        given = x.clone()
        with torch.no_grad():
            ref = filtered_lrelu(x, fu, fd, b, impl="reference", **kwargs)
            fast = filtered_lrelu(x, fu, fd, b, impl="fast_inplace", **kwargs)
        assert torch.equal(x, given)
        torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-12)
    with torch.no_grad():  # the pass-through case with an active activation: still not in place on the input
        given = x.clone()
        y = filtered_lrelu(x, None, None, None, gain=2.0, slope=0.2, clamp=0.5, impl="fast_inplace")
    assert torch.equal(x, given) and torch.equal(y, (F.leaky_relu(x, 0.2) * 2).clamp(-0.5, 0.5))
    with pytest.raises(RuntimeError, match="computes no gradients"):
        filtered_lrelu(x.requires_grad_(True), fu, fd, impl="fast_inplace", up=up, down=down, padding=padding)
