"""What the machine offers: CPU model, the instruction sets that matter for speed, whether bfloat16 is native, the
GPU's CUDA capability and whether Triton (the GPU kernels' compiler) is there.

bfloat16 matmuls and convolutions are fast only where the CPU has bf16 instructions (AVX-512-BF16 or AMX);
elsewhere oneDNN emulates them, hundreds of times slower than float32 (docs/performance.md). Code that picks bf16
on its own (the demo, the default benchmark, the automatic path choice) asks `native_bf16` first.

`native_bf16` needs both the CPU flag (from /proc/cpuinfo) and oneDNN's own check, which honours
`ONEDNN_MAX_CPU_ISA`: run with `ONEDNN_MAX_CPU_ISA=AVX2` (and `ATEN_CPU_CAPABILITY=avx2`) to see what a machine
without AVX-512 gets.
"""
from __future__ import annotations

import importlib.util
import os
import platform
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Tuple

import torch

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # the /proc/cpuinfo flags reported with benchmarks
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # either gives native bf16 dot products
_CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str) -> str:
    """The first value of `name` in /proc/cpuinfo ('' where there is no such file or field)."""
    try:
        text = _CPUINFO.read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def cpu_model() -> str:
    """The CPU's model name, e.g. 'AMD EPYC' ('unknown' where the OS does not say)."""
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flags() -> FrozenSet[str]:
    """The CPU's instruction-set flags as Linux names them (empty where /proc/cpuinfo is absent)."""
    return frozenset(_cpuinfo_field("flags").split())


def native_bf16(device: torch.device) -> bool:
    """True where bfloat16 matmuls/convolutions run in hardware on `device` (so bf16 autocast is a speed-up)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    flags = cpu_flags()
    if flags and not any(flag in flags for flag in BF16_FLAGS):
        return False  # oneDNN accepts bf16 on plain AVX-512 too, but emulates it there
    return onednn_bf16()


def onednn_bf16() -> bool:
    """oneDNN's own answer (False under ONEDNN_MAX_CPU_ISA=AVX2 even where the CPU has bf16 instructions)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cuda_capability(device: torch.device) -> Optional[Tuple[int, int]]:
    """(major, minor) CUDA compute capability of `device`, or None where it is not a CUDA device."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return tuple(torch.cuda.get_device_capability(device))


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; the CPU has nothing queued): call before
    reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def triton_available() -> bool:
    """Whether the `triton` package imports (it ships with CUDA builds of PyTorch; torch.compile needs it on GPUs)."""
    return importlib.util.find_spec("triton") is not None


def machine_description(device: torch.device) -> Dict[str, object]:
    """CPU model, cores, the ISA flags that matter, the effective limits and native bf16: for benchmark records."""
    flags = cpu_flags()
    info: Dict[str, object] = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    info.update({flag: flag in flags for flag in ISA_FLAGS})
    for variable in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        if os.environ.get(variable):
            info[variable] = os.environ[variable]
    info["native_bf16"] = native_bf16(device)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda_capability"] = ".".join(map(str, cuda_capability(device)))
    info["triton"] = triton_available()
    return info
