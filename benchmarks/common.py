"""Shared benchmark helpers: machine description and result files (timing and memory: stylegan.tools.bench)."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from stylegan.io.atomic import atomic_write_text
from stylegan.runtime.hardware import machine_description

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Python/torch versions, threads, and the CPU model with its AVX2/AVX-512/BF16/AMX flags (and the GPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count()}
    info.update(machine_description(device))
    return info


def race(fns: dict, rounds: int, calls: int) -> dict:
    """Fastest seconds per call of each function: one warm-up call each (oneDNN builds its kernels), then
    `rounds` interleaved rounds of `calls` calls (a load change hits every function alike)."""
    for fn in fns.values():
        fn()
    best = {key: float("inf") for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                best[key] = min(best[key], time.perf_counter() - t0)
    return best


def emit(rows: list, row: dict) -> None:
    """Print a result row as one JSON line and keep it for write_results."""
    print(json.dumps(row), flush=True)
    rows.append(row)


def write_results(name: str, rows: list, device: torch.device) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}_{device.type}.json"
    record = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
