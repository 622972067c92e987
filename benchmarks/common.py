"""Shared benchmark helpers: machine description and result files (timing and memory: stylegan.tools.bench)."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from stylegan.io.atomic import atomic_write_text

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


def write_results(name: str, rows: list, device: torch.device) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}_{device.type}.json"
    record = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
