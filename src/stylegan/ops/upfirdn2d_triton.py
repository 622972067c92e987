"""upfirdn2d as one Triton kernel: zero-insertion, padding, FIR filter and decimation in a single pass, no padded
or upsampled copy (the 'triton' implementation in upfirdn2d.IMPLS and the FIR passes of conv2d_resample's).

Each output pixel is a correlation of the (conceptually) upsampled and padded input with the flipped filter:
out[y, x] = gain * sum_{ky, kx} w[ky, kx] * up(x)[y * down_y + ky - pad_y0, x * down_x + kx - pad_x0], where up(x)
is non-zero only at multiples of `up`. Only the taps that land on input samples are visited (polyphase: for up = 2,
a quarter of a 4x4 filter's taps), so upsampling costs no more than filtering at the input's resolution. A 1-D
(separable) filter runs as the 2-D outer product of itself, which the reference computes as two passes: the same
values up to rounding. Arithmetic in float32 (float64 for float64 tensors), one rounding to the output's dtype.
Inputs may have any strides (channels-last, views); the output keeps a channels-last layout.

The backward is upfirdn2d_fast's (the adjoint: up and down swapped, the filter flipped), running this kernel, so
gradients of every order are kernels too; the filter gets no gradient.
"""
from __future__ import annotations

from typing import Optional

import torch

from .triton_support import block_size, check_device, import_triton
from .upfirdn2d import IntOrPair
from .upfirdn2d_fast import upfirdn2d_with

triton, tl = import_triton("upfirdn2d")

BLOCK = 256  # output elements per program on the GPU


@triton.jit
def _upfirdn2d_kernel(x_ptr, w_ptr, y_ptr, C, H, W, OH, OW, numel,
                      sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                      UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
                      PX0: tl.constexpr, PY0: tl.constexpr, FW: tl.constexpr, FH: tl.constexpr,
                      CHANNELS_LAST: tl.constexpr, F64: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    """One output element per lane; `w` holds the correlation taps [FH, FW] with the gain folded in."""
    pid = tl.program_id(0)
    if WIDE:
        pid = pid.to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    if CHANNELS_LAST:  # lanes follow the output's memory order
        c = offs % C
        ox = (offs // C) % OW
        oy = (offs // (C * OW)) % OH
        n = offs // (C * OW * OH)
    else:
        ox = offs % OW
        oy = (offs // OW) % OH
        c = (offs // (OW * OH)) % C
        n = offs // (OW * OH * C)
    # First tap that lands on an input sample (polyphase): base + k must be a multiple of up.
    base_y = oy * DOWNY - PY0
    base_x = ox * DOWNX - PX0
    ky0 = ((-base_y) % UPY + UPY) % UPY  # the same under truncating and flooring remainders
    kx0 = ((-base_x) % UPX + UPX) % UPX
    x_base = x_ptr + n * sxn + c * sxc
    if F64:
        acc = tl.full([BLOCK], 0, tl.float64)
    else:
        acc = tl.full([BLOCK], 0, tl.float32)
    for ty in tl.static_range((FH + UPY - 1) // UPY):
        ky = ky0 + ty * UPY
        iy = (base_y + ky) // UPY  # exact: base_y + ky is a multiple of UPY
        valid_y = mask & (ky < FH) & (iy >= 0) & (iy < H)
        for tx in tl.static_range((FW + UPX - 1) // UPX):
            kx = kx0 + tx * UPX
            ix = (base_x + kx) // UPX
            valid = valid_y & (kx < FW) & (ix >= 0) & (ix < W)
            tap = tl.load(w_ptr + ky * FW + kx, mask=valid, other=0)
            v = tl.load(x_base + iy * sxh + ix * sxw, mask=valid, other=0)
            acc += v.to(acc.dtype) * tap.to(acc.dtype)
    tl.store(y_ptr + n * syn + c * syc + oy * syh + ox * syw, acc.to(y_ptr.dtype.element_ty), mask=mask)


def _taps(f: torch.Tensor, flip_filter: bool, gain: float, dtype: torch.dtype, device) -> torch.Tensor:
    """The correlation taps [fh, fw] the kernel reads: a 1-D filter as its outer product, flipped unless
    flip_filter (upfirdn2d convolves), times the gain (in the reference's order: taps * gain, then flip)."""
    f = f.to(device=device, dtype=dtype)
    f = torch.outer(f, f) * gain if f.ndim == 1 else f * gain
    return (f if flip_filter else f.flip([0, 1])).contiguous()


def _forward(x: torch.Tensor, f: torch.Tensor, up, down, padding, flip_filter: bool, gain: float) -> torch.Tensor:
    """upfirdn2d's value (normalised arguments as upfirdn2d_fast passes them): one kernel launch."""
    check_device("upfirdn2d", _upfirdn2d_kernel, x)
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    n, c, h, w = x.shape
    fw, fh = (f.shape[0], f.shape[0]) if f.ndim == 1 else (f.shape[1], f.shape[0])
    out_h = (h * upy + py0 + py1 - fh) // downy + 1
    out_w = (w * upx + px0 + px1 - fw) // downx + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"upfirdn2d: input {list(x.shape)} with up {up}, down {down}, padding {padding} and a "
                         f"{fh}x{fw} filter leaves no output")
    channels_last = c > 1 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    y = torch.empty([n, c, out_h, out_w], dtype=x.dtype, device=x.device,
                    memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if y.numel() == 0:
        return y
    taps = _taps(f, flip_filter, gain, torch.float64 if x.dtype == torch.float64 else torch.float32, x.device)
    block = block_size(_upfirdn2d_kernel, BLOCK)
    x_span = 1 + sum((size - 1) * stride for size, stride in zip(x.shape, x.stride()))  # elements x reaches
    _upfirdn2d_kernel[(triton.cdiv(y.numel(), block),)](
        x.detach(), taps, y, c, h, w, out_h, out_w, y.numel(), *x.stride(), *y.stride(),
        UPX=upx, UPY=upy, DOWNX=downx, DOWNY=downy, PX0=px0, PY0=py0, FW=fw, FH=fh, CHANNELS_LAST=channels_last,
        F64=x.dtype == torch.float64, WIDE=max(x_span, y.numel()) >= 2 ** 31 - block, BLOCK=block)
    return y


def upfirdn2d_triton(x: torch.Tensor, f: Optional[torch.Tensor], up: IntOrPair = 1, down: IntOrPair = 1,
                     padding: IntOrPair = 0, flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """upfirdn2d (same arguments and values as `upfirdn2d.upfirdn2d`) in a Triton kernel, its gradients of any
    order too. The filter gets no gradient."""
    return upfirdn2d_with(_forward, x, f, up, down, padding, flip_filter, gain)
