"""Bias + activation + gain + clamp, in one call, as every StyleGAN2 layer uses it.

`activation_gain` holds each activation's default gain: the factor that keeps the output's second moment
equal to the input's for unit-Gaussian inputs (He et al. 2015), e.g. sqrt(2) for (leaky) ReLU.

Two implementations: `reference` (one PyTorch op per step; autograd keeps the input of the activation and of
the clamp) and `fused` for the piecewise-linear activations StyleGAN uses (linear, relu, lrelu): computed in
place and differentiated from the output alone, as NVIDIA's CUDA kernel does. The derivative of
clamp(gain * act(x + b)) is gain * slope where |y| < clamp and 0 elsewhere, and the slope (1 or alpha) is
read from the sign of y, so the fused op keeps one tensor for backward instead of two or three, and its
backward is itself differentiable (R1 and path length need double backward). Reading the clamp from y treats
an output equal to +-clamp as clamped (zero gradient), as NVIDIA's kernel does; the reference passes gradient
there. In float16/bf16 this includes unclamped values that round to the clamp: a measure-zero difference in
float32, a rare one in low precision.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple, Optional

import torch
import torch.nn.functional as F


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


BIAS_ACT_IMPLS = ("fused", "reference")
_NEGATIVE_SLOPES = {"linear": 1.0, "relu": 0.0, "lrelu": 0.2}  # the activations the fused path implements


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


class _FusedBiasAct(torch.autograd.Function):
    """clamp(gain * act(x + b)) with only y saved; backward is differentiable again (through _FusedBiasActGrad)."""

    @staticmethod
    def forward(ctx, x, b, dim: int, alpha: float, gain: float, clamp: Optional[float]):
        y = _fused_forward(x, b, dim, alpha, gain, clamp)
        if alpha != 1.0 or clamp is not None:  # a linear, unclamped op needs nothing for its backward
            ctx.save_for_backward(y)
        ctx.config = (dim, alpha, gain, clamp, b is not None)
        return y

    @staticmethod
    def backward(ctx, dy):
        dim, alpha, gain, clamp, has_bias = ctx.config
        if ctx.saved_tensors:
            dx = _FusedBiasActGrad.apply(dy, ctx.saved_tensors[0], alpha, gain, clamp)
        else:
            dx = dy * gain
        db = None
        if has_bias and ctx.needs_input_grad[1]:
            db = dx.sum([i for i in range(dx.ndim) if i != dim % dx.ndim])
        return dx, db, None, None, None, None


class _FusedBiasActGrad(torch.autograd.Function):
    """dx = dy * slope(y). Linear in dy; the slope is piecewise constant in y, so d/dy contributes nothing and
    the backward is this op again (differentiable to any order)."""

    @staticmethod
    def forward(ctx, dy, y, alpha: float, gain: float, clamp: Optional[float]):
        ctx.save_for_backward(y)
        ctx.config = (alpha, gain, clamp)
        return _grad_from_output(dy, y, alpha, gain, clamp)

    @staticmethod
    def backward(ctx, ddx):
        (y,) = ctx.saved_tensors
        return _FusedBiasActGrad.apply(ddx, y, *ctx.config), None, None, None, None


def fused_lrelu(x: torch.Tensor, slope: float, gain: float, clamp: Optional[float] = None,
                inplace: bool = False) -> torch.Tensor:
    """`clamp(gain * leaky_relu(x, slope), -clamp, clamp)` for any slope >= 0 (1: linear) and gain > 0, computed
    as the fused bias_act (in place after at most one copy; backward from the output, differentiable again).

    inplace: `x` is the caller's own temporary and is overwritten where nothing is differentiated through it
             (grad mode off or x not requiring grad): no copy at all, which for large activations saves more than
             the arithmetic costs (a fresh 50 MB tensor is mostly page faults on a CPU). With gradients the op
             always copies first and keeps only its output for backward.
    """
    if not slope >= 0 or not gain > 0:
        raise ValueError(f"need slope >= 0 and gain > 0, got {slope} and {gain}")
    clamp = float(clamp) if clamp is not None and clamp >= 0 else None
    if not torch.is_grad_enabled() or not x.requires_grad:
        return _fused_forward(x, None, 1, float(slope), float(gain), clamp, inplace=inplace)
    return _FusedBiasAct.apply(x, None, 1, float(slope), float(gain), clamp)


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1, act: str = "linear",
             gain: Optional[float] = None, clamp: Optional[float] = None, impl: str = "reference") -> torch.Tensor:
    """`clamp(act(x + b) * gain, -clamp, clamp)`.

    x:     input of any shape.
    b:     bias [x.shape[dim]] or None.
    dim:   the axis `b` runs along (1 = channels for NCHW).
    act:   activation name, see ACTIVATIONS.
    gain:  output scale; None uses the activation's default gain.
    clamp: clamp the output to [-clamp, clamp]; None or negative disables.
    impl:  'reference', or 'fused' (linear/relu/lrelu; other activations use the reference).
    """
    spec = _lookup(act)
    if impl not in BIAS_ACT_IMPLS:
        raise ValueError(f"impl must be one of {BIAS_ACT_IMPLS}, got {impl!r}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[dim]):
        raise ValueError(f"bias of shape {list(b.shape)} does not match dim {dim} of input {list(x.shape)}")
    gain = spec.gain if gain is None else float(gain)
    if impl == "fused" and act in _NEGATIVE_SLOPES and gain > 0:
        clamp = float(clamp) if clamp is not None and clamp >= 0 else None
        if b is None and act == "linear" and gain == 1 and clamp is None:
            return x
        if not torch.is_grad_enabled() or not (x.requires_grad or (b is not None and b.requires_grad)):
            return _fused_forward(x, b, dim, _NEGATIVE_SLOPES[act], gain, clamp)  # nothing to differentiate
        return _FusedBiasAct.apply(x, b, dim, _NEGATIVE_SLOPES[act], gain, clamp)
    if b is not None:
        x = x + b.reshape(_bias_shape(x, dim))
    x = spec.fn(x)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
