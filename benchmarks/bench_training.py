"""Training throughput: img/s and sec/kimg overall and per phase (G main, G reg, D main, D reg).

Runs the real training loop (`stylegan.training.loop.train`) on a synthetic 32x32 dataset for a few hundred
images per config and reads the per-tick phase timings from stats.jsonl (the first tick, which includes
start-up, is dropped). Configs: the `cpu` preset, the same network as StyleGAN v1 (`cpu-stylegan1`, at full resolution: no growing)
and the seed-002 `stylegan2` 32x32 config.
Run: `python benchmarks/bench_training.py [--quick] [--configs cpu,stylegan2]`.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from stylegan.presets import resolve_preset, with_stylegan1  # noqa: E402
from stylegan.tools.bench import peak_memory_mb  # noqa: E402
from stylegan.training.loop import train  # noqa: E402
from stylegan.training.options import RunOptions  # noqa: E402


def synthetic_dataset(folder: Path, count: int = 256, res: int = 32, channels: int = 3) -> Path:
    rng = np.random.RandomState(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = rng.randint(0, 256, size=(res, res, channels), dtype=np.uint8)
        Image.fromarray(img[:, :, 0] if channels == 1 else img).save(folder / f"{i:05d}.png")
    return folder


def bench(cfg_name: str, data: Path, outdir: Path, ticks: int, tick_kimg: float, batch: int, device: str) -> dict:
    cfg = resolve_preset(cfg_name.replace("-stylegan1", ""), 32)
    if cfg_name.endswith("-stylegan1"):  # v1 at its final resolution: a schedule that starts there
        cfg = with_stylegan1(cfg, 32)
        cfg.progressive = dict(cfg.progressive, initial_resolution=32)
    cfg.batch_size = batch
    cfg.aug = "noaug"  # ADA starts at p=0 anyway; keep the measurement about the networks
    cfg.total_kimg = ticks * tick_kimg
    run_dir = train(RunOptions(data=str(data), outdir=str(outdir), config=cfg, tick_kimg=tick_kimg,
                               snap_ticks=10 ** 6, workers=1, progress=False, image_snap=False, device=device))
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()][1:]
    kimg = sum(s["Timing/sec_per_tick"] / s["Timing/sec_per_kimg"] for s in stats)
    seconds = sum(s["Timing/sec_per_tick"] for s in stats)
    row = {"what": "train_step", "config": f"{cfg_name}@32", "batch": batch, "device": device,
           "img_per_s": kimg * 1000 / seconds, "sec_per_kimg": seconds / kimg, "peak_mem_mb": round(peak_memory_mb(torch.device(device)), 1)}
    for phase in ("Gmain", "Greg", "Dmain", "Dreg", "Dboth"):
        key = f"Timing/phase/{phase}_sec"
        if key in stats[0]:
            row[f"{phase}_sec_per_kimg"] = sum(s[key] for s in stats) / kimg
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="cpu,cpu-stylegan1,stylegan2")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_dataset(Path(tmp) / "data")
        for name in args.configs.split(","):
            small = name.startswith("cpu")
            batch = 32 if small or args.device != "cpu" else 8
            tick = 0.512 if small else 0.032
            ticks = 3 if args.quick else 5
            row = bench(name, data, Path(tmp) / name, ticks, tick, batch, args.device)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("wrote", write_results("training", rows, torch.device(args.device)))


if __name__ == "__main__":
    main()
