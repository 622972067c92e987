"""upfirdn2d as a linear operator with its own backward: the same values as the reference, cheaper gradients.

The reference (`upfirdn2d.upfirdn2d`) filters with a depthwise convolution (groups = channels). Its first
backward is fine, but PyTorch's double backward of a grouped convolution loops over the groups (one small
convolution per channel and call), which made R1 and path length regularisation at 64 channels spend most of
their time in thousands of tiny convolutions. A fixed FIR filter makes upfirdn2d linear in x, and the adjoint of
"zero-insert by up, pad, convolve with f, keep every down-th sample" is "zero-insert by down, pad, correlate with
f, keep every up-th sample": upfirdn2d again, with up and down swapped, the filter flipped and the padding
below. So the backward calls the same op, which is differentiable to any order, and every level runs the fast
depthwise forward (no gradient for the filter, which is a constant buffer in every StyleGAN layer).

Adjoint padding along one axis (input length n, output length m, filter length k, forward padding p0):
the backward's padding is [k - 1 - p0, n * up - m * down + p0 - up + 1] (it keeps positions 0, up, ...).
"""
from __future__ import annotations

from typing import Optional

import torch

from .upfirdn2d import IntOrPair, _pair, filter_size, parse_padding, upfirdn2d


def _adjoint_padding(in_size: int, out_size: int, up: int, down: int, k: int, p0: int) -> list:
    return [k - 1 - p0, in_size * up - out_size * down + p0 - up + 1]


class _UpFirDn2d(torch.autograd.Function):
    """y = upfirdn2d(x, f, ...) with backward upfirdn2d(dy, f, up=down, down=up, flipped, adjoint padding)."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter, gain):
        with torch.no_grad():
            y = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
        ctx.save_for_backward(f)
        ctx.config = (x.shape[2], x.shape[3], y.shape[2], y.shape[3], up, down, padding, flip_filter, gain)
        return y

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        in_h, in_w, out_h, out_w, (upx, upy), (downx, downy), padding, flip_filter, gain = ctx.config
        fw, fh = filter_size(f)
        px0, _, py0, _ = padding
        pad_x = _adjoint_padding(in_w, out_w, upx, downx, fw, px0)
        pad_y = _adjoint_padding(in_h, out_h, upy, downy, fh, py0)
        dx = _UpFirDn2d.apply(dy, f, (downx, downy), (upx, upy), pad_x + pad_y, not flip_filter, gain)
        return dx, None, None, None, None, None, None


def upfirdn2d_fast(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1, down: IntOrPair = 1,
                   padding: IntOrPair = 0, flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """upfirdn2d (same arguments and values as `upfirdn2d.upfirdn2d`) whose gradients, of any order, are upfirdn2d
    calls too. The filter gets no gradient. Falls back to the reference when nothing needs a gradient."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [N, C, H, W], got shape {list(x.shape)}")
    if not (torch.is_grad_enabled() and x.requires_grad):
        return upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    return _UpFirDn2d.apply(x, f, _pair(up), _pair(down), parse_padding(padding), bool(flip_filter), float(gain))
