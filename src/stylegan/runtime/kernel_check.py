"""The one-time check that the Triton kernels work on this machine before the automatic choice uses them.

Triton compiles its kernels at their first call, for the GPU at hand; a missing Triton, an old GPU or driver, or a
compiler error shows there. `triton_problem(device)` runs each op's Triton implementation that the networks would
run (runtime.path.triton_ops) once on tiny inputs, forward and backward, against its reference, and returns None
where all agree, else the one-line reason that `runtime.choice` prints when it keeps the PyTorch ops. Each command
checks once, when it chooses its path (Triton caches the compiled kernels on disk for later runs).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import torch

from ..ops.registry import OPS
from ..ops.upfirdn2d import setup_filter
from .path import triton_ops


def _bias_act_case(device: torch.device) -> Tuple[tuple, dict]:
    x = torch.linspace(-3, 3, 2 * 5 * 3 * 3, device=device).reshape(2, 5, 3, 3)
    return (x, torch.linspace(-1, 1, 5, device=device), 1, "lrelu", math.sqrt(2), 2.0), {}


def _upfirdn2d_case(device: torch.device) -> Tuple[tuple, dict]:
    x = torch.linspace(-1, 1, 2 * 3 * 5 * 6, device=device).reshape(2, 3, 5, 6)
    return (x, setup_filter([1, 3, 3, 1], device=device)), dict(up=2, padding=[2, 1, 2, 1], gain=4.0)


def _conv2d_resample_case(device: torch.device) -> Tuple[tuple, dict]:
    x = torch.linspace(-1, 1, 2 * 4 * 5 * 5, device=device).reshape(2, 4, 5, 5)
    w = torch.linspace(-0.5, 0.5, 3 * 4 * 3 * 3, device=device).reshape(3, 4, 3, 3)
    f = setup_filter([1, 3, 3, 1], device=device)
    return (x, w, f, 2, 1, 1, 1, False, False), {}


def _filtered_lrelu_case(device: torch.device) -> Tuple[tuple, dict]:
    x = torch.linspace(-2, 2, 2 * 3 * 6 * 6, device=device).reshape(2, 3, 6, 6)
    f = setup_filter([1, 3, 3, 1], device=device, separable=True)
    return (x, f, f, torch.linspace(-0.5, 0.5, 3, device=device)), dict(up=2, down=2, padding=[2, 1, 2, 1],
                                                                        gain=math.sqrt(2), slope=0.2, clamp=1.0)


# op -> tiny inputs (positional arguments of its implementations, keywords); every op with a Triton implementation
# that the networks select needs one (tests/runtime/test_choice.py checks)
CASES: Dict[str, Callable[[torch.device], Tuple[tuple, dict]]] = {
    "bias_act": _bias_act_case,
    "upfirdn2d": _upfirdn2d_case,
    "conv2d_resample": _conv2d_resample_case,
    "filtered_lrelu": _filtered_lrelu_case,
}


def _mismatch(op: str, device: torch.device) -> Optional[str]:
    """None where OPS[op]['triton'] gives the reference's value and input gradient on the tiny case, else what
    differs."""
    args, kwargs = CASES[op](device)
    results = []
    for impl in ("triton", "reference"):
        x = args[0].clone().requires_grad_(True)
        y = OPS[op][impl](x, *args[1:], **kwargs)
        (dx,) = torch.autograd.grad(y.square().sum(), x)
        results.append((y, dx))
    for name, ours, ref in zip(("value", "gradient"), *results):
        if ours.shape != ref.shape or not torch.allclose(ours, ref, rtol=1e-3, atol=1e-3 * ref.abs().max().item()):
            return f"{op}'s kernel gives another {name} than the reference"
    return None


def triton_problem(device: torch.device) -> Optional[str]:
    """None where every Triton kernel the networks would run imports, compiles and matches its reference on
    `device`, else the one-line reason (never raises)."""
    try:
        for op in sorted(triton_ops()):
            problem = f"{op}: no check in runtime/kernel_check.CASES" if op not in CASES else _mismatch(op, device)
            if problem:
                return problem
    except Exception as error:  # any failure (missing Triton, no driver, compiler error) means: keep PyTorch's ops
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        return f"{type(error).__name__}: {first_line}"
    return None
