"""Modulated convolution: fused and per-sample paths agree with the explicit equations 1-3 of StyleGAN2."""
import pytest
import torch
import torch.nn.functional as F

from stylegan.ops.modulated_conv2d import demodulation_coefficients, modulated_conv2d
from stylegan.ops.upfirdn2d import setup_filter


def explicit(x, weight, styles, demodulate):
    """One sample at a time, straight from the equations."""
    outs = []
    for xi, si in zip(x, styles):
        w = weight * si.reshape(1, -1, 1, 1)  # eq. 1
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()  # eq. 3
        outs.append(F.conv2d(xi[None], w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_matches_equations(demodulate, fused):
    torch.manual_seed(1)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    styles = torch.randn(3, 4, dtype=torch.float64)
    out = modulated_conv2d(x, weight, styles, padding=1, demodulate=demodulate, fused_modconv=fused)
    torch.testing.assert_close(out, explicit(x, weight, styles, demodulate))


def test_demodulated_output_has_unit_std_for_unit_input():
    torch.manual_seed(2)
    x = torch.randn(4, 64, 16, 16)
    out = modulated_conv2d(x, torch.randn(32, 64, 3, 3), torch.randn(4, 64) * 3, padding=1)
    assert abs(out[:, :, 1:-1, 1:-1].std().item() - 1.0) < 0.1


def test_demodulation_coefficients_closed_form():
    weight = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    styles = torch.randn(2, 4, dtype=torch.float64)
    w = weight[None] * styles[:, None, :, None, None]
    torch.testing.assert_close(demodulation_coefficients(weight, styles), (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt())


def test_upsampling_paths_agree_and_noise_is_added():
    torch.manual_seed(3)
    f = setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    styles = torch.randn(2, 3, dtype=torch.float64)
    noise = torch.randn(2, 1, 10, 10, dtype=torch.float64)
    a = modulated_conv2d(x, weight, styles, noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=True)
    b = modulated_conv2d(x, weight, styles, noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=False)
    torch.testing.assert_close(a, b)
    c = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False)
    torch.testing.assert_close(a - c, noise.expand_as(a))


@pytest.mark.parametrize("fused", [True, False])
def test_double_backward(fused):
    torch.manual_seed(4)
    f = setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    fn = lambda x, w, s: modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=fused)
    assert torch.autograd.gradcheck(fn, (x, weight, styles))
    assert torch.autograd.gradgradcheck(fn, (x, weight, styles))


def test_shape_contract():
    with pytest.raises(AssertionError, match="styles"):
        modulated_conv2d(torch.zeros(2, 3, 4, 4), torch.zeros(4, 3, 3, 3), torch.zeros(2, 5))
