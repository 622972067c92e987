"""One description of how a network runs, and the one function that applies it.

An `ExecutionPath` names the implementation of each op the networks select (ops.registry: 'reference', 'fast',
'fast_inplace', 'triton'), the precision, the memory layout and the compilation. It changes how a network
computes, never what: every implementation is tested against the reference, forward and backward.

- `apply_path(module, path)` sets the ops' implementations of every layer of `module` and its layout;
- `path.autocast(device)` is the context the network's calls run in (bf16 autocast, or nothing);
- compilation returns new callables instead of changing the module: `runtime.compile`.

Named paths: `REFERENCE` (NVIDIA's `impl='ref'` arithmetic, what `--resample reference` forces), `FAST` (training
and everything that differentiates), `INFERENCE` (`FAST` with StyleGAN3's activation in place; no gradients) and
`TRITON` (`FAST` with the Triton kernels where an op has one: CUDA; `with_triton` does the same to any path).
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Mapping

import torch
from torch import nn

from ..errors import UserInputError
from ..ops.registry import OPS

NETWORK_OPS = ("bias_act", "conv2d_resample", "filtered_lrelu", "upfirdn2d")  # layers carry an `<op>_impl`
PRECISIONS = ("fp32", "bf16", "fp16")  # fp16: the network's own float16 blocks (NVIDIA's mixed precision)
# FAST keeps the skip architectures' image resampling on the reference it always ran (the same numbers on the CPU);
# TRITON replaces it with the kernel.
_DEFAULT_IMPLS = {"upfirdn2d": "reference"}


def _ops(**impls: str) -> Dict[str, str]:
    return {op: impls.get(op, _DEFAULT_IMPLS.get(op, "fast")) for op in NETWORK_OPS}


@dataclass(frozen=True)
class ExecutionPath:
    """How a network runs.

    ops:           implementation per op (a name in ops.registry.OPS[op]) for the ops in NETWORK_OPS.
    precision:     'fp32'; 'bf16' (autocast); 'fp16' (the network's float16 blocks, as built).
    channels_last: NHWC activations and convolution weights (StyleGAN2 and v1 blocks; StyleGAN3 has none).
    compile:       'off' or a torch.compile mode (runtime.compile.COMPILE_MODES).
    """

    ops: Mapping[str, str] = field(default_factory=_ops)
    precision: str = "fp32"
    channels_last: bool = False
    compile: str = "off"

    def __post_init__(self):
        for op, impl in self.ops.items():
            if op not in NETWORK_OPS:
                raise ValueError(f"unknown op {op!r}; the networks select {', '.join(NETWORK_OPS)}")
            if impl not in OPS[op]:
                raise ValueError(f"{op}: no implementation {impl!r}; choose one of {', '.join(OPS[op])}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def replace(self, **changes) -> "ExecutionPath":
        """A copy with `changes`; `ops` may name only the ops that change."""
        if "ops" in changes:
            changes["ops"] = {**self.ops, **changes["ops"]}
        return dataclasses.replace(self, **changes)

    def autocast(self, device: torch.device):
        """The context the network calls of this path run in on `device` (bf16 autocast, or nothing)."""
        if self.precision == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_json(self) -> dict:
        return {"ops": dict(self.ops), "precision": self.precision, "channels_last": self.channels_last,
                "compile": self.compile}


REFERENCE = ExecutionPath(ops=_ops(bias_act="reference", conv2d_resample="reference", filtered_lrelu="reference"))
FAST = ExecutionPath()
INFERENCE = ExecutionPath(ops=_ops(filtered_lrelu="fast_inplace"))


def triton_ops() -> Dict[str, str]:
    """{op: 'triton'} for every op the networks select that has a Triton implementation (ops.registry)."""
    return {op: "triton" for op in NETWORK_OPS if "triton" in OPS[op]}


def with_triton(path: ExecutionPath) -> ExecutionPath:
    """`path` with every op that has a Triton implementation running it (CUDA tensors only)."""
    return path.replace(ops=triton_ops())


TRITON = with_triton(FAST)


def has_layout_choice(module: nn.Module) -> bool:
    """True where `module` has blocks with a channels-last layout (StyleGAN2 and v1; StyleGAN3 has none)."""
    return any(hasattr(m, "channels_last") for m in module.modules())


def set_channels_last(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Put every block of `module` (and its 4-D weights) in channels-last layout, or back to NCHW.

    Works on StyleGAN2 and v1 generators and discriminators (their blocks carry a `channels_last` attribute, which
    NVIDIA's code sets only for float16 blocks); call it before creating optimizers. Returns `module`.
    """
    blocks = [m for m in module.modules() if hasattr(m, "channels_last")]
    if not blocks:
        raise UserInputError(f"{type(module).__name__} has no blocks with a channels-last layout (StyleGAN2 and "
                             f"StyleGAN networks have; StyleGAN3 generators do not): run it without channels-last")
    for block in blocks:
        block.channels_last = bool(enabled)
    memory_format = torch.channels_last if enabled else torch.contiguous_format
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.ndim == 4:
                tensor.data = tensor.data.contiguous(memory_format=memory_format)
    return module


def apply_path(module: nn.Module, path: ExecutionPath) -> nn.Module:
    """Make `module` run as `path` says: each layer's op implementations, and channels-last where the path asks for
    it (an error for networks without that layout). Precision applies at call time (`path.autocast`), compilation
    to callables (`runtime.compile`). Returns `module`."""
    for m in module.modules():
        for op, impl in path.ops.items():
            if hasattr(m, f"{op}_impl"):
                setattr(m, f"{op}_impl", impl)
    if path.channels_last:
        set_channels_last(module, True)
    return module


def op_impls(module: nn.Module) -> Dict[str, set]:
    """The implementations the layers of `module` are set to, per op (for tests and reports)."""
    found: Dict[str, set] = {}
    for m in module.modules():
        for op in NETWORK_OPS:
            if hasattr(m, f"{op}_impl"):
                found.setdefault(op, set()).add(getattr(m, f"{op}_impl"))
    return found
