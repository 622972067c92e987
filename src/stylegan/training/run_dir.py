"""Run directories `RUNS/NNNNN-<desc>/`, as the official training writes them, and what lives inside."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional, Union

from ..io.atomic import atomic_write_text

CHECKPOINT_NAME = "checkpoint.safetensors"
OPTIONS_NAME = "training_options.json"


def new_run_dir(outdir: Union[str, os.PathLike], desc: str) -> Path:
    """Create the next `NNNNN-desc` folder under `outdir`."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"^(\d+)-", p.name)) and p.is_dir()]
    run_dir = outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"
    run_dir.mkdir()
    return run_dir


def latest_run_with_checkpoint(outdir: Union[str, os.PathLike]) -> Optional[Path]:
    """The highest-numbered run in `outdir` that has a training checkpoint, or None."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        return None
    runs = sorted((p for p in outdir.iterdir() if re.match(r"^\d+-", p.name) and (p / CHECKPOINT_NAME).is_file()),
                  key=lambda p: int(p.name.split("-", 1)[0]))
    return runs[-1] if runs else None


def write_json(path: Union[str, os.PathLike], data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def snapshot_name(cur_nimg: int) -> str:
    """network-snapshot-NNNNNN.safetensors, NNNNNN = kimg (as the official naming)."""
    return f"network-snapshot-{cur_nimg // 1000:06d}.safetensors"
