"""What the Triton kernels of ops/ share: Triton imported only when a kernel runs, where a kernel may run, and
implementations that a registry names before their module is imported.

The kernels sit beside the ops they fuse (`bias_act_triton.py` beside `bias_act.py`, ...). Each kernel module
imports Triton at its top through `import_triton`, and the registries reach it through `lazy_impl`, so the package
imports and runs without Triton; asking for a 'triton' implementation without it raises `TritonUnavailable` in one
line. Triton compiles its kernels for the GPU at their first call (cached on disk); on the CPU it runs them only in
its interpreter, which `TRITON_INTERPRET=1` selects if set before Triton and the kernel modules are imported (the
tests do this: tests/triton_helpers.py).
"""
from __future__ import annotations

import importlib
from typing import Callable, Tuple

import torch


class TritonUnavailable(RuntimeError):
    """A 'triton' implementation cannot run here: Triton is missing, or the tensors are not where it runs."""


def import_triton(op: str) -> Tuple[object, object]:
    """(triton, triton.language), or TritonUnavailable naming `op` and what to do."""
    try:
        import triton
        import triton.language as tl
    except ImportError as error:
        raise TritonUnavailable(f"{op}: the 'triton' implementation needs Triton ({error}); it comes with PyTorch's "
                                f"CUDA wheels (elsewhere: pip install triton), or use the 'fast' implementation") \
            from None
    return triton, tl


def interpreted(kernel) -> bool:
    """Whether `kernel` (a @triton.jit function) runs in Triton's interpreter (TRITON_INTERPRET=1 when it was
    defined), which takes tensors on any device, rather than compiled for the GPU."""
    return type(kernel).__name__ == "InterpretedFunction"


INTERPRETER_BLOCK = 4096  # elements per program in the interpreter, whose cost is mostly per program


def block_size(kernel, gpu_block: int) -> int:
    """Elements per program: `gpu_block` on the GPU; more in the interpreter (the same code, fewer programs)."""
    return max(gpu_block, INTERPRETER_BLOCK) if interpreted(kernel) else gpu_block


def check_device(op: str, kernel, x: torch.Tensor) -> None:
    """TritonUnavailable where compiled `kernel` would be given a tensor that is not on a CUDA device."""
    if x.device.type != "cuda" and not interpreted(kernel):
        raise TritonUnavailable(f"{op}: Triton kernels run on CUDA tensors, got a {x.device.type} tensor (on the CPU "
                                f"only in Triton's interpreter, TRITON_INTERPRET=1); use the 'fast' implementation")


def lazy_impl(module: str, name: str) -> Callable:
    """The function `name` of the ops module `module`, imported at its first call: a registry can name an
    implementation whose module needs Triton, or imports the registry's own module, without importing it."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"{name} from ops/{module}.py (imported at the first call)."
    return call


def is_dense(t: torch.Tensor) -> bool:
    """Whether `t` covers one block of memory without gaps or overlaps, in any dimension order (contiguous,
    channels-last, permuted): then its elements can be walked in memory order."""
    expected = 1
    for size, stride in sorted([(s, st) for s, st in zip(t.shape, t.stride()) if s > 1], key=lambda p: p[1]):
        if stride != expected:
            return False
        expected *= size
    return True


def same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether `a` and `b` have the same shape and the same strides in every dimension longer than 1."""
    return a.shape == b.shape and all(sa == sb for n, sa, sb in zip(a.shape, a.stride(), b.stride()) if n > 1)
