"""upfirdn2d as a linear operator with its own backward: the same values as the reference, cheaper gradients.

The reference (`upfirdn2d.upfirdn2d`) filters with a depthwise convolution (groups = channels). Its first
backward is fine, but PyTorch's double backward of a grouped convolution loops over the groups (one small
convolution per channel and call), which made R1 and path length regularisation at 64 channels spend most of
their time in thousands of tiny convolutions. A fixed FIR filter makes upfirdn2d linear in x, and the adjoint of
"zero-insert by up, pad, convolve with f, keep every down-th sample" is "zero-insert by down, pad, correlate with
f, keep every up-th sample": upfirdn2d again, with up and down swapped, the filter flipped and the padding
below. So the backward calls the same op, which is differentiable to any order, and every level runs the fast
depthwise forward (no gradient for the filter, which is a constant buffer in every StyleGAN layer). Without
upsampling, the forward is one strided depthwise convolution (padding folded in where symmetric), not the
reference's pad, filter at full resolution, then slice.

Adjoint padding along one axis (input length n, output length m, filter length k, forward padding p0):
the backward's padding is [k - 1 - p0, n * up - m * down + p0 - up + 1] (it keeps positions 0, up, ...).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .upfirdn2d import IntOrPair, _pair, filter_size, parse_padding, upfirdn2d


def _forward(x: torch.Tensor, f: torch.Tensor, up, down, padding, flip_filter: bool, gain: float) -> torch.Tensor:
    """The op's value. Without upsampling, one depthwise convolution does the padding (when symmetric) and the
    decimation (as its stride): no padded copy, no filtered samples thrown away. Otherwise the reference."""
    px0, px1, py0, py1 = padding
    if tuple(up) != (1, 1) or f.ndim != 2 or min(padding) < 0:
        return upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)
    f = f.to(device=x.device, dtype=x.dtype) * gain
    if not flip_filter:
        f = f.flip([0, 1])  # conv2d correlates; upfirdn2d convolves
    weight = f[None, None].expand(x.shape[1], 1, *f.shape)
    conv_padding = [py0, px0]
    if px0 != px1 or py0 != py1:
        x = F.pad(x, [px0, px1, py0, py1])
        conv_padding = [0, 0]
    return F.conv2d(x, weight, stride=[down[1], down[0]], padding=conv_padding, groups=x.shape[1])


def _adjoint_padding(in_size: int, out_size: int, up: int, down: int, k: int, p0: int) -> list:
    return [k - 1 - p0, in_size * up - out_size * down + p0 - up + 1]


class _UpFirDn2d(torch.autograd.Function):
    """y = upfirdn2d(x, f, ...) with backward upfirdn2d(dy, f, up=down, down=up, flipped, adjoint padding), both
    computed by `forward` (this module's `_forward`, or a kernel: ops/upfirdn2d_triton.py)."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter, gain, forward):
        with torch.no_grad():
            y = forward(x, f, up, down, padding, flip_filter, gain)
        ctx.save_for_backward(f)
        ctx.config = (x.shape[2], x.shape[3], y.shape[2], y.shape[3], up, down, padding, flip_filter, gain, forward)
        return y

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        in_h, in_w, out_h, out_w, (upx, upy), (downx, downy), padding, flip_filter, gain, forward = ctx.config
        fw, fh = filter_size(f)
        px0, _, py0, _ = padding
        pad_x = _adjoint_padding(in_w, out_w, upx, downx, fw, px0)
        pad_y = _adjoint_padding(in_h, out_h, upy, downy, fh, py0)
        dx = _UpFirDn2d.apply(dy, f, (downx, downy), (upx, upy), pad_x + pad_y, not flip_filter, gain, forward)
        return dx, None, None, None, None, None, None, None


def upfirdn2d_with(forward: Callable, x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1,
                   down: IntOrPair = 1, padding: IntOrPair = 0, flip_filter: bool = False,
                   gain: float = 1.0) -> torch.Tensor:
    """upfirdn2d computed by `forward(x, f, (upx, upy), (downx, downy), [px0, px1, py0, py1], flip_filter, gain)`,
    its gradients (of any order) by the same function through the adjoint. Arguments as upfirdn2d."""
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects [N, C, H, W], got shape {list(x.shape)}")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    config = (_pair(up), _pair(down), parse_padding(padding), bool(flip_filter), float(gain))
    if not (torch.is_grad_enabled() and x.requires_grad):
        return forward(x, f, *config)  # the Function's own forward, without the autograd node (tracers need this)
    return _UpFirDn2d.apply(x, f, *config, forward)


def upfirdn2d_fast(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1, down: IntOrPair = 1,
                   padding: IntOrPair = 0, flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """upfirdn2d (same arguments and values as `upfirdn2d.upfirdn2d`) whose gradients, of any order, are upfirdn2d
    calls too. The filter gets no gradient."""
    return upfirdn2d_with(_forward, x, f, up, down, padding, flip_filter, gain)
