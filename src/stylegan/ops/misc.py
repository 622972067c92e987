"""Small shared helpers: shape contracts, latent normalisation, and the lookup of an op's implementations."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import torch


def assert_shape(tensor: torch.Tensor, ref_shape: Sequence[Optional[int]], name: str = "tensor") -> None:
    """Check `tensor.shape` against `ref_shape`; `None` entries match any size.

    Raises AssertionError naming the tensor and both shapes, e.g. `assert_shape(x, [None, 512, 4, 4])`.
    """
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f"{name}: expected {len(ref_shape)} dims {list(ref_shape)}, got shape {list(tensor.shape)}")
    for idx, (size, ref) in enumerate(zip(tensor.shape, ref_shape)):
        if ref is None or isinstance(size, torch.SymInt) or isinstance(ref, torch.SymInt):
            continue  # symbolic sizes (export with dynamic shapes) are checked by the tracer itself
        if isinstance(ref, torch.Tensor):
            ref = int(ref)
        if not torch.jit.is_tracing() and int(size) != int(ref):
            raise AssertionError(f"{name}: dim {idx} is {int(size)}, expected {int(ref)} (shape {list(tensor.shape)} vs {list(ref_shape)})")


def assert_dtype(tensor: torch.Tensor, dtype: torch.dtype, name: str = "tensor") -> None:
    """Check `tensor.dtype` where NVIDIA's blocks assert it; under autocast, which picks dtypes itself, nothing."""
    if tensor.dtype != dtype and not torch.is_autocast_enabled(tensor.device.type):
        raise AssertionError(f"{name}: dtype {tensor.dtype}, expected {dtype}")


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale `x` to unit mean square along `dim` (StyleGAN's pixel-norm of the latent, Karras 2018 eq. 2)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def pick_impl(impls: Dict[str, Callable], op: str, name: str) -> Callable:
    """`impls[name]`, the implementation `name` of `op`, or a ValueError naming the ones there are.

    Every op keeps its implementations in a dict of this kind (`IMPLS` in its module, all of them in
    `ops.registry.OPS`): 'reference' is the plain-PyTorch definition, the others are faster paths tested against
    it. The lookup happens at each call, so what a dict holds when the op runs is what runs.
    """
    try:
        return impls[name]
    except KeyError:
        raise ValueError(f"{op}: no implementation {name!r}; choose one of {', '.join(impls)}") from None


def check_output(y: torch.Tensor, like: torch.Tensor, op: str) -> torch.Tensor:
    """`y`, after checking that an op kept the dtype of its input `like` (under autocast, which chooses the dtypes
    of convolutions by itself, nothing is checked)."""
    if y.dtype != like.dtype and not torch.is_autocast_enabled(like.device.type):
        raise AssertionError(f"{op}: output dtype {y.dtype} differs from the input's {like.dtype}")
    return y
