"""Every op's implementations, by op and by name: one registry, one naming scheme.

- `reference`: the plain-PyTorch definition (what NVIDIA's `impl='ref'` computes), the yardstick of every test;
- `fast`: the faster PyTorch formulation of the same arithmetic, forward, backward and double backward;
- `fast_inplace` (filtered_lrelu): `fast` without gradients, its activation written over its own temporary;
  asking it for gradients is an error, so a path that trains or projects never runs it;
- later `triton`: fused GPU kernels.

Networks hold one `<op>_impl` attribute per op in the layers that call it; `runtime.path.apply_path` sets them
from an execution path. Nothing picks an implementation implicitly (by grad mode or device).
"""
from __future__ import annotations

from typing import Callable, Dict

from . import bias_act, conv2d_resample, filtered_lrelu
from .upfirdn2d import upfirdn2d
from .upfirdn2d_fast import upfirdn2d_fast

OPS: Dict[str, Dict[str, Callable]] = {
    "bias_act": bias_act.IMPLS,
    "conv2d_resample": conv2d_resample.IMPLS,
    "filtered_lrelu": filtered_lrelu.IMPLS,
    # Called by name where it is needed (the fast conv2d_resample runs upfirdn2d_fast; the skip architectures'
    # image resampling runs the reference): no network attribute selects it yet.
    "upfirdn2d": {"reference": upfirdn2d, "fast": upfirdn2d_fast},
}
