"""Bias + activation + gain + clamp, in one call, as every StyleGAN2 layer uses it.

`activation_gain` holds each activation's default gain: the factor that keeps the output's second moment
equal to the input's for unit-Gaussian inputs (He et al. 2015), e.g. sqrt(2) for (leaky) ReLU.
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


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1, act: str = "linear",
             gain: Optional[float] = None, clamp: Optional[float] = None) -> torch.Tensor:
    """Reference: `clamp(act(x + b) * gain, -clamp, clamp)`.

    x:     input of any shape.
    b:     bias [x.shape[dim]] or None.
    dim:   the axis `b` runs along (1 = channels for NCHW).
    act:   activation name, see ACTIVATIONS.
    gain:  output scale; None uses the activation's default gain.
    clamp: clamp the output to [-clamp, clamp]; None or negative disables.
    """
    spec = _lookup(act)
    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"bias of shape {list(b.shape)} does not match dim {dim} of input {list(x.shape)}")
        x = x + b.reshape([-1 if i == dim % x.ndim else 1 for i in range(x.ndim)])
    x = spec.fn(x)
    gain = spec.gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
