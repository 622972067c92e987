"""Does the fast path train as well as the reference path? Short runs, same seed, then FID.

Trains the `cpu` preset on Fashion-MNIST 32x32 (the `make demo` data) for the same number of images on three
paths: fast float32 (the default), reference resampling float32, fast bf16 autocast; then FID of each G_ema
against the training set with the `fmnist` feature network (2,000 generated images), and records time and FID.
Run: `python benchmarks/quality_paths.py [--kimg 8] [--seeds 0,1]`.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

import torch  # noqa: E402

from stylegan.io.load import load_generator  # noqa: E402
from stylegan.metrics.evaluate import compute_metric  # noqa: E402
from stylegan.presets import resolve_preset  # noqa: E402
from stylegan.training.loop import train  # noqa: E402
from stylegan.training.options import RunOptions  # noqa: E402

PATHS = {"fast_fp32": ("fast", "fp32"), "reference_fp32": ("reference", "fp32"), "fast_bf16": ("fast", "bf16")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=8.0)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--data", default="demo-out/fashion-mnist-32.zip")
    parser.add_argument("--num", type=int, default=2000)
    args = parser.parse_args()
    data = Path(args.data)
    if not data.exists():
        from stylegan.data.fashion_mnist import prepare_demo_dataset
        print(prepare_demo_dataset(data, resolution=32))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name, (resample, precision) in PATHS.items():
                cfg = resolve_preset("cpu", 32)
                cfg.total_kimg = args.kimg
                start = time.time()
                run_dir = train(RunOptions(data=str(data), outdir=f"{tmp}/{name}-{seed}", config=cfg, tick_kimg=2,
                                           snap_ticks=1000, seed=seed, workers=1, progress=False, image_snap=False,
                                           precision=precision, resample=resample))
                seconds = time.time() - start
                G = load_generator(sorted(run_dir.glob("network-snapshot-*.safetensors"))[-1])
                fid = compute_metric("fid10k_full", generator=G, data=str(data), feature_net="fmnist", num=args.num,
                                     seed=seed, cache_dir=f"{tmp}/cache")
                row = {"what": "short_training_quality", "path": name, "seed": seed, "kimg": args.kimg,
                       "train_seconds": round(seconds, 1), "img_per_s": round(args.kimg * 1000 / seconds, 1),
                       "fid_fmnist_2k": round(fid["value"], 3), "device": "cpu"}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("wrote", write_results("quality_paths", rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
