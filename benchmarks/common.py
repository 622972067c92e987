"""Shared benchmark helpers: machine description and result files (timing and memory: stylegan.tools.bench)."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from stylegan.io.atomic import atomic_write_text
from stylegan.tools.hardware import machine_description

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Python/torch versions, threads, and the CPU model with its AVX2/AVX-512/BF16/AMX flags (and the GPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count()}
    info.update(machine_description(device))
    return info


def write_results(name: str, rows: list, device: torch.device) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}_{device.type}.json"
    record = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path
