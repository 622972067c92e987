"""Whole-loop benchmark: `stylegan train` ticks (s/kimg) on generated data, each path against the reference path.

The networks alone (`stylegan bench`) leave out what the loop adds around them: the ADA augmentation pipe, data
loading, the G EMA, statistics and logging, the ADA p updates. This case runs the real command, NVIDIA's command
line for a small CPU run:

    stylegan train --cfg stylegan2 --cbase 2048 --cmax 64 --map-depth 2 --batch 32 --gamma 0.1 --mirror 1 \
        --data DATA.zip   (ADA on, the default)

for a few ticks on each path in the same process (so the ratio holds on a busy machine), with the flags of the
path added (`LOOP_PATHS`: `reference` = float32, reference resampling and bias/activation ops, no compile, NCHW;
`default` = no flags, the path `stylegan train` picks by itself). The data is generated in a temporary folder
(`synthetic_dataset`: soft blobs at random places, nothing downloaded) unless `data` names a zip.

The first tick of every run is warm-up (memory, caches, any compilation) and is reported apart; `sec_per_kimg`
is over the ticks after it. ADA starts at p = 0 and moves slowly, so `aug_p` (the augmentation probability)
starts high enough for the pipe to run on most images, as it does after the first hundreds of kimg of a real
run (`--aug fixed --p aug_p`; None keeps ADA's own p from 0).
"""
from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import UserInputError
from ..runtime.hardware import machine_description

SMALL_CONFIG = ("--cfg", "stylegan2", "--cbase", "2048", "--cmax", "64", "--map-depth", "2", "--batch", "32",
                "--gamma", "0.1", "--mirror", "1")  # NVIDIA's command line for a small CPU run
LOOP_PATHS: Dict[str, Tuple[str, ...]] = {  # extra `stylegan train` flags of each path
    "reference": ("--resample", "reference", "--precision", "fp32", "--channels-last", "0", "--compile", "off"),
    "default": (),
    "fast_eager": ("--precision", "fp32", "--channels-last", "0", "--compile", "off"),
    # what the automatic choice may pick for a long run (a short bench run is too short for it to probe/compile)
    "channels_last": ("--precision", "fp32", "--channels-last", "1", "--compile", "off"),
    "compiled": ("--precision", "fp32", "--channels-last", "0", "--compile", "default"),
    "bf16_channels_last": ("--precision", "bf16", "--channels-last", "1", "--compile", "off"),
}


def synthetic_dataset(path: Path, count: int = 512, resolution: int = 32, seed: int = 0) -> Path:
    """Write a dataset zip of `count` grayscale soft blobs (random place, size and brightness) to `path`."""
    from PIL import Image

    from ..data.dataset_tool import convert_dataset
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[:resolution, :resolution]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            cy, cx = rng.uniform(0.2, 0.8, size=2) * resolution
            sigma = rng.uniform(0.08, 0.25) * resolution
            img = rng.uniform(120, 255) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
            Image.fromarray(img.astype(np.uint8)).save(Path(tmp) / f"img{i:05d}.png")
        convert_dataset(tmp, path, progress=False)
    return path


def _train_once(config: Sequence[str], data: Path, outdir: Path, path: str, kimg: float, tick_kimg: float,
                aug_p: Optional[float], workers: int, seed: int) -> dict:
    """One `stylegan train` run of the small config on `path`; its ticks from stats.jsonl and the wall time."""
    from .train import command
    args = [*config, "--data", str(data), "--outdir", str(outdir), "--kimg", str(kimg), "--tick", str(tick_kimg),
            "--snap", "100000", "--seed", str(seed), "--workers", str(workers), "--no-progress", *LOOP_PATHS[path]]
    if aug_p is not None:
        args += ["--aug", "fixed", "--p", str(aug_p)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # tick lines to stderr: stdout carries the bench's JSON rows
        command.main(args, standalone_mode=False)
    wall = time.perf_counter() - start
    run_dir = sorted(p for p in outdir.iterdir() if p.is_dir())[-1]
    ticks = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    options = json.loads((run_dir / "training_options.json").read_text())
    return {"ticks": ticks, "wall_s": wall, "options": options}


def run_loop_case(*, device: str = "cpu", paths: Sequence[str] = ("reference", "default"), kimg: float = 0.768,
                  tick_kimg: float = 0.256, rounds: int = 1, aug_p: Optional[float] = 0.3, workers: int = 2,
                  data: Optional[str] = None, dataset_size: int = 512, seed: int = 0,
                  config: Sequence[str] = SMALL_CONFIG, out: Optional[str] = None) -> List[dict]:
    """Time `stylegan train` ticks of the small config on each path in this process; one dict per path and round.

    device:       'cpu' (or 'cuda'): where training runs (`--device`).
    paths:        names in LOOP_PATHS; speedups are against 'reference' when it is among them, else the first.
    kimg:         training length of each run in thousands of images (the first tick is warm-up).
    tick_kimg:    kimg per tick (`--tick`); at least two ticks per run are needed.
    rounds:       how many times to run the paths, interleaved (A B A B ...).
    aug_p:        fixed augmentation probability (`--aug fixed --p`); None: ADA from p = 0.
    workers:      data loader processes (`--workers`; `stylegan train` defaults to 2).
    data:         a dataset zip to train on; None: `synthetic_dataset` in a temporary folder.
    dataset_size: images in the generated dataset.
    seed:         training seed (the same for every path).
    config:       the `stylegan train` flags of the network and hyperparameters (SMALL_CONFIG: NVIDIA's small run).
    out:          a .jsonl file to append the rows to (None: not written).
    """
    unknown = [p for p in paths if p not in LOOP_PATHS]
    if not paths or unknown:
        raise UserInputError(f"unknown loop path {unknown[0] if unknown else '(none given)'}; choose from "
                             f"{', '.join(LOOP_PATHS)}")
    if kimg < 2 * tick_kimg or tick_kimg <= 0:
        raise UserInputError(f"kimg {kimg} must cover at least two ticks of {tick_kimg} kimg (the first is warm-up)")
    if rounds < 1:
        raise UserInputError(f"rounds must be >= 1, got {rounds}")
    base = "reference" if "reference" in paths else paths[0]
    machine = machine_description(torch.device(device))
    rows: List[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(data) if data is not None else synthetic_dataset(Path(tmp) / "blobs.zip", dataset_size)
        for round_idx in range(rounds):
            results = {}
            for path in paths:
                run = _train_once(config, zip_path, Path(tmp) / f"{path}-{round_idx}", path, kimg, tick_kimg, aug_p,
                                  workers, seed)
                timed = run["ticks"][1:]
                seconds = sum(t["Timing/sec_per_tick"] for t in timed)
                images = 1000 * (run["ticks"][-1]["Progress/kimg"] - run["ticks"][0]["Progress/kimg"])
                phases = {k.split("/")[-1]: round(sum(t.get(k, 0.0) for t in timed), 3)
                          for k in run["ticks"][0] if k.startswith("Timing/phase/")}
                results[path] = {"what": "train_loop", "path": path, "round": round_idx,
                                 "config": " ".join(config),
                                 "flags": " ".join(LOOP_PATHS[path]), "device": device,
                                 "kimg_timed": round(images / 1000, 3),
                                 "sec_per_kimg": round(seconds / images * 1000, 2),
                                 "img_per_s": round(images / seconds, 2),
                                 "phase_sec": phases, "loop_sec": round(seconds - sum(phases.values()), 3),
                                 "warmup_tick_sec": round(run["ticks"][0]["Timing/sec_per_tick"], 2),
                                 "wall_s": round(run["wall_s"], 1), "aug_p": aug_p, "workers": workers,
                                 "requested": {k: run["options"].get(k) for k in
                                               ("resample", "precision", "channels_last", "compile")},
                                 "speed_path": run["options"].get("speed_path"), "machine": machine,
                                 "load_avg": [round(x, 2) for x in _load_average()]}
            for path in paths:
                row = results[path]
                row["speedup"] = round(results[base]["sec_per_kimg"] / row["sec_per_kimg"], 3)
                row["speedup_vs"] = base
                rows.append(row)
    if out is not None:
        from ..io.atomic import atomic_write_text
        target = Path(out)
        previous = target.read_text() if target.exists() else ""
        atomic_write_text(target, previous + "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _load_average() -> Tuple[float, float, float]:
    """The 1/5/15-minute load averages (zeros where the OS does not say): how busy the machine was."""
    try:
        import os
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)
