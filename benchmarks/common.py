"""Shared benchmark helpers: timing with warm-up, peak memory, machine description, result files."""
from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], device: torch.device, min_seconds: float = 2.0, warmup: int = 1) -> float:
    """Seconds per call of fn (after warm-up), repeated for at least `min_seconds`."""
    for _ in range(warmup):
        fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 2:
            return elapsed / calls


def write_results(name: str, rows: list, device: torch.device) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}_{device.type}.json"
    path.write_text(json.dumps({"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows},
                               indent=2) + "\n")
    return path
