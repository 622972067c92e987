"""Bias + activation + gain + clamp, in one call, as every StyleGAN2 layer uses it.

`activation_gain` holds each activation's default gain: the factor that keeps the output's second moment
equal to the input's for unit-Gaussian inputs (He et al. 2015), e.g. sqrt(2) for (leaky) ReLU.

Two implementations: `reference` (one PyTorch op per step; autograd keeps the input of the activation and of
the clamp) and `fast` for the piecewise-linear activations StyleGAN uses (linear, relu, lrelu): computed in
place and differentiated from the output alone, as NVIDIA's CUDA kernel does. The derivative of
clamp(gain * act(x + b)) is gain * slope where |y| < clamp and 0 elsewhere, and the slope (1 or alpha) is
read from the sign of y, so the fast op keeps one tensor for backward instead of two or three, and its
backward is itself differentiable (R1 and path length need double backward). Reading the clamp from y treats
an output equal to +-clamp as clamped (zero gradient), as NVIDIA's kernel does; the reference passes gradient
there. In float16/bf16 this includes unclamped values that round to the clamp: a measure-zero difference in
float32, a rare one in low precision. `triton` is `fast` with its two computations (value, gradient from the
output) as Triton kernels (ops/bias_act_triton.py) under the same autograd rules.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple, Optional

import torch
import torch.nn.functional as F

from .misc import check_output, pick_impl
from .triton_support import lazy_impl


class Activation(NamedTuple):
    fn: Callable[[torch.Tensor], torch.Tensor]
    gain: float


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


ACTIVATIONS: Dict[str, Activation] = {
    "linear": Activation(lambda x: x, 1.0),
    "relu": Activation(F.relu, math.sqrt(2)),
    "lrelu": Activation(_lrelu, math.sqrt(2)),
    "tanh": Activation(torch.tanh, 1.0),
    "sigmoid": Activation(torch.sigmoid, 1.0),
    "elu": Activation(F.elu, 1.0),
    "selu": Activation(F.selu, 1.0),
    "softplus": Activation(F.softplus, 1.0),
    "swish": Activation(lambda x: torch.sigmoid(x) * x, math.sqrt(2)),
}


def activation_gain(name: str) -> float:
    """The default gain of activation `name`."""
    return _lookup(name).gain


def _lookup(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


_NEGATIVE_SLOPES = {"linear": 1.0, "relu": 0.0, "lrelu": 0.2}  # the activations the fast path implements


def _bias_shape(x: torch.Tensor, dim: int):
    return [-1 if i == dim % x.ndim else 1 for i in range(x.ndim)]


def _grad_from_output(dy: torch.Tensor, y: torch.Tensor, alpha: float, gain: float,
                      clamp: Optional[float]) -> torch.Tensor:
    """dy * d y / d (x + b), the slope read from the output y = clamp(gain * act(x + b)): gain where y > 0,
    alpha * gain where y <= 0, 0 where |y| >= clamp. Two or three fused ATen passes (PyTorch's own
    leaky_relu/hardtanh backward kernels, which take the result as `self`) instead of building a slope tensor."""
    dx = dy * gain if gain != 1 else dy
    if alpha != 1.0:
        dx = torch.ops.aten.leaky_relu_backward(dx, y, alpha, True)  # dx where y > 0, alpha * dx elsewhere
    if clamp is not None:
        dx = torch.ops.aten.hardtanh_backward(dx, y, -clamp, clamp)  # 0 where |y| >= clamp
    return dx if dx is not dy else dy.clone()


def _fused_forward(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, alpha: float, gain: float,
                   clamp: Optional[float], inplace: bool = False) -> torch.Tensor:
    """The fused op's value: one new tensor (none with `inplace` and no bias: x itself), every later step in
    place."""
    if b is not None:
        y = x + b.reshape(_bias_shape(x, dim))
    else:
        y = x if inplace else x.clone()
    if alpha != 1.0:
        F.leaky_relu_(y, alpha) if alpha > 0 else y.relu_()
    if gain != 1:
        y.mul_(gain)
    if clamp is not None:
        y.clamp_(-clamp, clamp)
    return y


class FusedKernels(NamedTuple):
    """The two computations of the fused op: the value and the gradient from the output. The PyTorch ones below
    ('fast'), or Triton kernels (ops/bias_act_triton.py, 'triton'): the autograd rules around them are shared."""

    forward: Callable  # (x, b, dim, alpha, gain, clamp) -> y = clamp(gain * act(x + b)), a new tensor
    grad: Callable     # (dy, y, alpha, gain, clamp) -> dy * d y / d (x + b), read from y


PYTORCH_KERNELS = FusedKernels(_fused_forward, _grad_from_output)


class _FusedBiasAct(torch.autograd.Function):
    """clamp(gain * act(x + b)) with only y saved; backward is differentiable again (through _FusedBiasActGrad)."""

    @staticmethod
    def forward(ctx, x, b, dim: int, alpha: float, gain: float, clamp: Optional[float], kernels: FusedKernels):
        y = kernels.forward(x, b, dim, alpha, gain, clamp)
        if alpha != 1.0 or clamp is not None:  # a linear, unclamped op needs nothing for its backward
            ctx.save_for_backward(y)
        ctx.config = (dim, alpha, gain, clamp, b is not None, kernels)
        ctx.set_materialize_grads(False)
        return y

    @staticmethod
    def backward(ctx, dy):
        dim, alpha, gain, clamp, has_bias, kernels = ctx.config
        if dy is None:
            # Reached in a double backward without a gradient (R1, path length). PyTorch's own ops, which NVIDIA's
            # reference runs, give the bias a zero gradient after a (leaky) ReLU, whose backward has a defined zero
            # derivative by its input, and none after a linear op, clamped or not (clamp's backward has none).
            # Adam counts a zero gradient as a step, so the difference shows in training.
            db = None
            if has_bias and ctx.needs_input_grad[1] and alpha != 1.0:
                y = ctx.saved_tensors[0]
                db = y.new_zeros([y.shape[dim]])
            return None, db, None, None, None, None, None
        if ctx.saved_tensors:
            dx = _FusedBiasActGrad.apply(dy, ctx.saved_tensors[0], alpha, gain, clamp, kernels)
        else:
            dx = dy * gain
        db = None
        if has_bias and ctx.needs_input_grad[1]:
            db = dx.sum([i for i in range(dx.ndim) if i != dim % dx.ndim])
        return dx, db, None, None, None, None, None


class _FusedBiasActGrad(torch.autograd.Function):
    """dx = dy * slope(y). Linear in dy; the slope is piecewise constant in y, so d/dy contributes nothing and
    the backward is this op again (differentiable to any order)."""

    @staticmethod
    def forward(ctx, dy, y, alpha: float, gain: float, clamp: Optional[float], kernels: FusedKernels):
        ctx.save_for_backward(y)
        ctx.config = (alpha, gain, clamp, kernels)
        ctx.set_materialize_grads(False)
        return kernels.grad(dy, y, alpha, gain, clamp)

    @staticmethod
    def backward(ctx, ddx):
        if ddx is None:
            return None, None, None, None, None, None
        (y,) = ctx.saved_tensors
        return _FusedBiasActGrad.apply(ddx, y, *ctx.config), None, None, None, None, None


def lrelu_inplace(x: torch.Tensor, slope: float, gain: float, clamp: Optional[float] = None,
                  inplace: bool = True) -> torch.Tensor:
    """`clamp(gain * leaky_relu(x, slope), -clamp, clamp)` for any slope >= 0 (1: linear) and gain > 0, without
    gradients: written over `x` (the caller's own temporary) where `inplace`, else over one copy. For large
    activations skipping the new tensor saves more than the arithmetic costs (a fresh 50 MB tensor is mostly page
    faults on a CPU). Asking it for gradients is an error: differentiable paths use bias_act."""
    if not slope >= 0 or not gain > 0:
        raise ValueError(f"need slope >= 0 and gain > 0, got {slope} and {gain}")
    if torch.is_grad_enabled() and x.requires_grad:
        raise RuntimeError("lrelu_inplace computes no gradients, and this input needs them: run the network with the "
                           "'fast' or 'reference' implementation (runtime.path.apply_path) to differentiate it")
    clamp = float(clamp) if clamp is not None and clamp >= 0 else None
    return _fused_forward(x, None, 1, float(slope), float(gain), clamp, inplace=inplace)


def bias_act_reference(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, act: str, gain: float,
                       clamp: Optional[float]) -> torch.Tensor:
    """One PyTorch op per step: add, activate, scale, clamp."""
    if b is not None:
        x = x + b.reshape(_bias_shape(x, dim))
    x = _lookup(act).fn(x)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def bias_act_fast(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, act: str, gain: float,
                  clamp: Optional[float], kernels: FusedKernels = PYTORCH_KERNELS) -> torch.Tensor:
    """linear/relu/lrelu with gain > 0 in place after one copy, differentiated from the output (the reference
    for other activations). kernels: the computations (PyTorch's, or ops/bias_act_triton.py's)."""
    slope = _NEGATIVE_SLOPES.get(act)
    if slope is None or not gain > 0:
        return bias_act_reference(x, b, dim, act, gain, clamp)
    clamp = float(clamp) if clamp is not None and clamp >= 0 else None
    if b is None and slope == 1.0 and gain == 1 and clamp is None:
        return x
    if not torch.is_grad_enabled() or not (x.requires_grad or (b is not None and b.requires_grad)):
        return kernels.forward(x, b, dim, slope, gain, clamp)  # the Function's own forward, without its node
    return _FusedBiasAct.apply(x, b, dim, slope, gain, clamp, kernels)


# 'triton': the same fused op in Triton kernels (CUDA), imported at its first call
IMPLS = {"reference": bias_act_reference, "fast": bias_act_fast,
         "triton": lazy_impl("bias_act_triton", "bias_act_triton")}


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1, act: str = "linear",
             gain: Optional[float] = None, clamp: Optional[float] = None, impl: str = "reference") -> torch.Tensor:
    """`clamp(act(x + b) * gain, -clamp, clamp)`.

    x:     input of any shape.
    b:     bias [x.shape[dim]] or None.
    dim:   the axis `b` runs along (1 = channels for NCHW).
    act:   activation name, see ACTIVATIONS.
    gain:  output scale; None uses the activation's default gain.
    clamp: clamp the output to [-clamp, clamp]; None or negative disables.
    impl:  a name in IMPLS: 'reference', 'fast' (linear/relu/lrelu; other activations use the reference) or
           'triton' (as 'fast', in Triton kernels: CUDA tensors).
    """
    spec = _lookup(act)
    fn = pick_impl(IMPLS, "bias_act", impl)
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias of shape {list(b.shape)} does not match dim {dim} of input {list(x.shape)}")
    gain = spec.gain if gain is None else float(gain)
    return check_output(fn(x, b, dim, act, gain, clamp), x, "bias_act")
