"""bias_act's fused path as Triton kernels: the value clamp(gain * act(x + b)) and the gradient from the output,
one pass over memory each (the 'triton' implementation in bias_act.IMPLS).

The autograd rules are bias_act's own (`bias_act_fast` with these kernels): the backward reads the slope from the
output y, is differentiable again, and gives biases the same gradient or none as the 'fast' path does. Each kernel
walks its tensor in memory order, so contiguous, channels-last and other dense layouts are read without a copy
(the bias index along `dim` is (offset // stride[dim]) % size[dim]); other strided inputs are copied once.
Arithmetic in float32 (float64 for float64 tensors), one rounding to the tensor's dtype at the end: float32 results
equal the 'fast' path's; float16/bf16 ones differ from its step-by-step rounding by about an ulp. The gradient
compares y with the clamp in float32, as the 'fast' path and NVIDIA's kernel do (in float16 a value clamped to a
clamp that float16 cannot hold, 256 * sqrt(0.5) say, can round below it and keep its gradient, in all three).
"""
from __future__ import annotations

from typing import Optional

import torch

from .bias_act import FusedKernels, bias_act_fast
from .triton_support import block_size, check_device, import_triton, is_dense, same_layout

triton, tl = import_triton("bias_act")

BLOCK = 1024  # elements per program on the GPU


@triton.jit
def _elements(ptr, numel, F64: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    """This program's block of element offsets, its mask, and the elements of `ptr` there in the compute dtype
    (float32, float64 for float64 tensors)."""
    pid = tl.program_id(0)
    if WIDE:  # more than 2**31 elements: 64-bit offsets
        pid = pid.to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    v = tl.load(ptr + offs, mask=mask, other=0)
    if F64:
        v = v.to(tl.float64)
    else:
        v = v.to(tl.float32)
    return offs, mask, v


@triton.jit
def _bias_act_kernel(x_ptr, b_ptr, y_ptr, numel, bias_stride, bias_len, alpha, gain, clamp,
                     HAS_BIAS: tl.constexpr, HAS_SLOPE: tl.constexpr, HAS_CLAMP: tl.constexpr,
                     F64: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    """y = clamp(gain * act(x + b)) over `numel` elements in memory order; act(v) = v > 0 ? v : alpha * v."""
    offs, mask, v = _elements(x_ptr, numel, F64, WIDE, BLOCK)
    if HAS_BIAS:
        v = v + tl.load(b_ptr + (offs // bias_stride) % bias_len, mask=mask, other=0).to(v.dtype)
    if HAS_SLOPE:
        v = tl.where(v > 0, v, v * alpha)
    v = v * gain
    if HAS_CLAMP:
        v = tl.minimum(tl.maximum(v, -clamp), clamp)
    tl.store(y_ptr + offs, v.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _bias_act_grad_kernel(dy_ptr, y_ptr, dx_ptr, numel, alpha, gain, clamp,
                          HAS_SLOPE: tl.constexpr, HAS_CLAMP: tl.constexpr, F64: tl.constexpr, WIDE: tl.constexpr,
                          BLOCK: tl.constexpr):
    """dx = dy * gain * (y > 0 ? 1 : alpha) * (|y| < clamp), y and dy in the same memory order."""
    offs, mask, g = _elements(dy_ptr, numel, F64, WIDE, BLOCK)
    y = tl.load(y_ptr + offs, mask=mask, other=0).to(g.dtype)
    g = g * gain
    if HAS_SLOPE:
        g = tl.where(y > 0, g, g * alpha)
    if HAS_CLAMP:
        g = tl.where((y > -clamp) & (y < clamp), g, 0)
    tl.store(dx_ptr + offs, g.to(dx_ptr.dtype.element_ty), mask=mask)


def _launch(kernel, t: torch.Tensor, *args, **constants) -> None:
    """Run `kernel` over the elements of `t` (the output) in blocks."""
    block = block_size(kernel, BLOCK)
    kernel[(triton.cdiv(t.numel(), block),)](*args, F64=t.dtype == torch.float64,
                                             WIDE=t.numel() >= 2 ** 31 - block, BLOCK=block, **constants)


def _forward(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, alpha: float, gain: float,
             clamp: Optional[float]) -> torch.Tensor:
    """The value, a new tensor in x's layout (the dtype x + b promotes to, as the 'fast' path)."""
    check_device("bias_act", _bias_act_kernel, x)
    x = x.detach() if is_dense(x) else x.detach().contiguous()
    dtype = x.dtype if b is None else torch.promote_types(x.dtype, b.dtype)
    y = torch.empty_like(x, dtype=dtype)
    if x.numel() == 0:
        return y
    dim = dim % x.ndim if x.ndim else 0
    bias = x if b is None else b.detach().contiguous()
    _launch(_bias_act_kernel, y, x, bias, y, x.numel(), x.stride(dim) if x.ndim else 1, x.shape[dim] if x.ndim else 1,
            float(alpha), float(gain), float(clamp or 0), HAS_BIAS=b is not None, HAS_SLOPE=alpha != 1.0,
            HAS_CLAMP=clamp is not None)
    return y


def _grad(dy: torch.Tensor, y: torch.Tensor, alpha: float, gain: float, clamp: Optional[float]) -> torch.Tensor:
    """dy * d y / d (x + b) read from y: a new tensor in y's layout, dy's dtype."""
    check_device("bias_act", _bias_act_grad_kernel, dy)
    y = y.detach()
    dy = dy.detach() if same_layout(dy, y) else torch.empty_like(y, dtype=dy.dtype).copy_(dy)
    dx = torch.empty_like(dy)
    if dy.numel() == 0:
        return dx
    _launch(_bias_act_grad_kernel, dx, dy, y, dx, dy.numel(), float(alpha), float(gain), float(clamp or 0),
            HAS_SLOPE=alpha != 1.0, HAS_CLAMP=clamp is not None)
    return dx


TRITON_KERNELS = FusedKernels(_forward, _grad)


def bias_act_triton(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, act: str, gain: float,
                    clamp: Optional[float]) -> torch.Tensor:
    """bias_act's 'fast' path (linear/relu/lrelu with gain > 0; the reference for other activations) with Triton
    kernels. Arguments as ops.bias_act.bias_act."""
    return bias_act_fast(x, b, dim, act, gain, clamp, kernels=TRITON_KERNELS)
