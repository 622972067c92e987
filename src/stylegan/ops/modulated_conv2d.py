"""Modulated convolution with weight demodulation (StyleGAN2, section 2.2, equations 1-3).

Each sample's style `s` scales the input channels of the shared weight (eq. 1: w'_ijk = s_i w_ijk); the result
is demodulated so each output channel has unit expected standard deviation (eq. 3:
w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)). Two equivalent ways to run it:
- fused: build per-sample weights and run one grouped convolution (groups = batch size);
- per-sample scaling: scale activations by s before a shared convolution and by the demodulation
  coefficients after it (cheaper for large batches; what the official code uses for training).
"""
from __future__ import annotations

from typing import Optional

import torch

from .conv2d_resample import conv2d_resample
from .misc import assert_shape
from .upfirdn2d import IntOrPair


def fused_by_default(device: torch.device) -> bool:
    """The form a network uses where its caller leaves the choice open: NVIDIA's fused one, except on the CPU,
    where per-sample scaling is faster (1.1-4x at batch >= 4, a near tie forward at batch 1, 1.1-2x with a
    backward pass such as projection; docs/performance.md, "Modulation on the CPU"). Both give the same values
    to rounding."""
    return device.type != "cpu"


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1 / sqrt(sum_ik (s_i w_oik)^2 + eps) for each sample and output channel: [N, O] (eq. 3).

    Computed as styles^2 @ (sum_k w^2)^T, which never materialises the per-sample weights.
    """
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: Optional[torch.Tensor] = None,
                     up: int = 1, down: int = 1, padding: IntOrPair = 0,
                     resample_filter: Optional[torch.Tensor] = None, demodulate: bool = True,
                     flip_weight: bool = True, fused_modconv: bool = True,
                     conv2d_resample_impl: str = "fast") -> torch.Tensor:
    """Modulated (and demodulated) convolution.

    x:                    input [N, I, H, W].
    weight:               shared weight [O, I, kh, kw].
    styles:               per-sample input-channel scales [N, I].
    noise:                added after demodulation, broadcastable to the output, or None.
    up, down:             resampling factors (see conv2d_resample).
    padding:              convolution padding.
    resample_filter:      FIR filter for resampling.
    demodulate:           apply eq. 3 (False for toRGB layers).
    flip_weight:          False = true convolution (official layers use it when upsampling).
    fused_modconv:        True = grouped convolution with per-sample weights; False = scale activations.
    conv2d_resample_impl: conv2d_resample implementation, a name in ops.conv2d_resample.IMPLS.
    """
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    assert_shape(weight, [out_c, in_c, kh, kw], "weight")
    assert_shape(x, [n, in_c, None, None], "x")
    assert_shape(styles, [n, in_c], "styles")

    # In float16 the raw products can overflow; demodulation cancels any overall scale, so normalise first.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / (in_c * kh * kw) ** 0.5 / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight, impl=conv2d_resample_impl)
        if demodulate:
            coefficients = demodulation_coefficients(weight, styles).to(x.dtype).reshape(n, -1, 1, 1)
            if noise is not None:  # demodulation and noise in one pass instead of two
                return torch.addcmul(noise.to(x.dtype), x, coefficients)
            x = x * coefficients
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(-1, in_c, kh, kw).to(x.dtype), resample_filter, up=up, down=down,
                        padding=padding, groups=n, flip_weight=flip_weight, impl=conv2d_resample_impl)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x
