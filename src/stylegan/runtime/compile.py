"""Compilation with torch.compile (TorchInductor), its toolchain check, and the fallback to eager code.

Inductor generates C++ on the CPU and Triton on CUDA at the first call of each new input shape; that costs tens of
seconds per graph on a small CPU, so compiled paths pay off for long jobs, not short scripts (runtime.choice
decides when). Where compiling fails at run time, `EagerFallback` says so in one line and continues eagerly.
"""
from __future__ import annotations

import shutil
from typing import Callable, Optional, TypeVar

import torch
from torch import nn

from ..errors import UserInputError

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")

T = TypeVar("T", bound=Callable)


def _trial(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x) * 2


def check_compile_support(device: torch.device) -> None:
    """Raise UserInputError saying what to do when torch.compile cannot generate code for `device`.

    Checks the toolchain (a C++ compiler on the CPU, Triton on CUDA), then compiles and runs a one-line function,
    which catches what a check cannot (missing headers, a broken compiler): a few seconds, once per process.
    """
    if device.type == "cpu":
        if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
            raise UserInputError("torch.compile on the CPU needs a C++ compiler (g++), and none was found; "
                                 "install one (Debian/Ubuntu: apt-get install g++) or leave compilation off")
    elif device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            raise UserInputError("torch.compile on CUDA needs Triton (pip install triton); "
                                 "or leave compilation off") from None
    try:
        torch.compile(_trial, dynamic=False)(torch.ones(4, device=device))
    except Exception as exc:  # any toolchain failure: say it in one line instead of a deep traceback
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        raise UserInputError(f"torch.compile does not work on this machine ({type(exc).__name__}: {first_line}); "
                             f"leave compilation off") from None


def compile_problem(device: torch.device) -> Optional[str]:
    """None where torch.compile works on `device`, else the one-line reason."""
    try:
        check_compile_support(device)
    except UserInputError as exc:
        return str(exc)
    return None


def compile_module(fn: T, mode: str = "default", backend: str = "inductor") -> T:
    """`torch.compile(fn)` with static shapes (each batch size compiles once; no dynamic-shape kernels).

    fn:      a module or function; the result shares its parameters and buffers.
    mode:    one of COMPILE_MODES.
    backend: 'inductor' (generated kernels) or a debugging backend such as 'aot_eager' (graph capture only).
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {mode!r}")
    if backend != "inductor":  # modes are Inductor settings
        return torch.compile(fn, backend=backend, dynamic=False)
    return torch.compile(fn, mode=mode, dynamic=False)


class EagerFallback:
    """Calls a compiled function; where compiling fails at run time, says so in one line and calls the eager one.

    compiled: the torch.compile'd module or function.
    eager:    the same computation uncompiled (sharing its parameters).
    say:      where the one line goes (e.g. the run's log).
    name:     what the line calls it (default: the eager callable's class name).
    """

    def __init__(self, compiled: Callable, eager: Callable, say: Callable[[str], None] = print,
                 name: Optional[str] = None):
        self.compiled, self.eager, self.say = compiled, eager, say
        self.name = name or type(eager).__name__
        self.failed = False

    def __call__(self, *args, **kwargs):
        if self.failed:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:  # a toolchain failure surfaces here, at the first call of a new graph
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            self.say(f"compiling {self.name} failed ({type(exc).__name__}: {first}); continuing eagerly")
            self.failed = True
            return self.eager(*args, **kwargs)


def compiled(module: nn.Module, mode: str, say: Callable[[str], None] = print) -> Callable:
    """`module` compiled in `mode`, falling back to eager calls (one line through `say`) where compiling fails."""
    return EagerFallback(compile_module(module, mode), module, say)


def compile_synthesis(G: nn.Module, mode: str, batch: int, say: Callable[[str], None] = print) -> None:
    """Make `G.synthesis` run compiled (static shapes) for calls of `batch` images; calls of other sizes (a job's
    last, partial batch) run eagerly instead of compiling a second graph. Where compiling fails at the first call,
    one line says so and every call runs eagerly (EagerFallback).

    Changes G in place: its synthesis's `forward` (not its parameters, buffers or state_dict)."""
    synthesis = G.synthesis
    eager = synthesis.forward
    fallback = EagerFallback(compile_module(eager, mode), eager, say, name=type(synthesis).__name__)

    def forward(ws: torch.Tensor, *args, **kwargs):
        return (fallback if ws.shape[0] == batch else eager)(ws, *args, **kwargs)
    synthesis.forward = forward
