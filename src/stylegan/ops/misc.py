"""Small shared helpers: shape contracts and latent normalisation."""
from __future__ import annotations

from typing import Optional, Sequence

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


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale `x` to unit mean square along `dim` (StyleGAN's pixel-norm of the latent, Karras 2018 eq. 2)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()
