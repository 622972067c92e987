"""Switches that choose how a built network computes, never what: each is tested against the reference path.

- `set_resample_impl(net, 'fast' | 'reference')` (in layers.py): resampling folded into strided/transposed
  convolutions, or the reference that filters at full resolution;
- `set_bias_act_impl(net, 'fused' | 'reference')` (in layers.py): bias, activation, gain and clamp in place,
  differentiated from the output (one saved tensor), or one PyTorch op per step;
- `set_channels_last(net, enabled)`: activations and convolution weights in channels-last (NHWC) memory layout,
  which oneDNN (CPU) and cuDNN (GPU) convolve faster than NCHW for many layer shapes;
- `compile_module(module, mode)`: `torch.compile` with TorchInductor (fused elementwise kernels around the
  convolutions; mode 'reduce-overhead' also records CUDA graphs on GPUs).

Inductor generates C++ on the CPU and Triton on CUDA at the first call of each new input shape; that costs
tens of seconds per graph on a small CPU, so compiled paths pay off for long runs, not short scripts.
"""
from __future__ import annotations

import shutil
from typing import Callable, TypeVar

import torch
from torch import nn

from ..errors import UserInputError
from .layers import set_bias_act_impl, set_resample_impl

__all__ = ["COMPILE_MODES", "set_resample_impl", "set_bias_act_impl", "set_channels_last", "compile_module",
           "check_compile_support"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")

T = TypeVar("T", bound=Callable)


def set_channels_last(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Put every block of `module` (and its 4-D weights) in channels-last layout, or back to NCHW.

    Works on StyleGAN2 generators and discriminators (their blocks carry a `channels_last` attribute, which
    NVIDIA's code sets only for float16 blocks); call it before creating optimizers. Returns `module`.
    """
    blocks = [m for m in module.modules() if hasattr(m, "channels_last")]
    if not blocks:
        raise UserInputError(f"{type(module).__name__} has no blocks with a channels-last layout "
                             f"(supported: StyleGAN2 generators and discriminators)")
    for block in blocks:
        block.channels_last = bool(enabled)
    memory_format = torch.channels_last if enabled else torch.contiguous_format
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.ndim == 4:
                tensor.data = tensor.data.contiguous(memory_format=memory_format)
    return module


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
