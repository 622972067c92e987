"""Every op's implementations, by op and by name: one registry, one naming scheme.

- `reference`: the plain-PyTorch definition (what NVIDIA's `impl='ref'` computes), the yardstick of every test;
- `fast`: the faster PyTorch formulation of the same arithmetic, forward, backward and double backward;
- `fast_inplace` (filtered_lrelu): `fast` without gradients, its activation written over its own temporary;
  asking it for gradients is an error, so a path that trains or projects never runs it;
- `triton`: Triton kernels for CUDA tensors (`<op>_triton.py` beside each op; bias_act, upfirdn2d,
  conv2d_resample's FIR passes and StyleGAN3's filtered_lrelu, which differentiates once), imported at their first
  call, so Triton is needed only where they run
  (ops.triton_support).

Networks hold one `<op>_impl` attribute per op in the layers that call it; `runtime.path.apply_path` sets them
from an execution path. Nothing picks an implementation implicitly (by grad mode or device).
"""
from __future__ import annotations

from typing import Callable, Dict

from . import bias_act, conv2d_resample, filtered_lrelu, upfirdn2d

OPS: Dict[str, Dict[str, Callable]] = {
    "bias_act": bias_act.IMPLS,
    "conv2d_resample": conv2d_resample.IMPLS,
    "filtered_lrelu": filtered_lrelu.IMPLS,
    # The skip architectures' image resampling (their `upfirdn2d_impl`); conv2d_resample picks its FIR passes itself.
    "upfirdn2d": upfirdn2d.IMPLS,
}
