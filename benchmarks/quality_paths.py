"""Does the fast path train as well as the reference path? Short runs, same seed, then FID.

Trains the `cpu` preset on Fashion-MNIST 32x32 (the `make demo` data) for the same number of images on each
path (PATHS: the reference ops in float32, the fast ops in float32 (the default) and in bf16 autocast, and the
fastest CPU combination: compiled, channels-last, bf16); then FID of each G_ema against the training set with
the `fmnist` feature network, and records time and FID.
Run: `python benchmarks/quality_paths.py [--kimg 8] [--seeds 0,1] [--paths fast_fp32,...] [--num 2000]`.
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

PATHS = {  # RunOptions settings of each path
    "fast_fp32": dict(precision="fp32"),
    "reference_fp32": dict(resample="reference", precision="fp32"),
    "fast_bf16": dict(precision="bf16"),
    "compiled_channels_last_bf16": dict(precision="bf16", channels_last=True, compile="default"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=8.0)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--data", default="demo-out/fashion-mnist-32.zip")
    parser.add_argument("--num", type=int, default=2000)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--out", default="quality_paths", help="result file name in benchmarks/results")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown path {unknown[0]}; choose from {', '.join(PATHS)}")
    data = Path(args.data)
    if not data.exists():
        from stylegan.data.fashion_mnist import prepare_demo_dataset
        print(prepare_demo_dataset(data, resolution=32))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name in paths:
                cfg = resolve_preset("cpu", 32)
                cfg.total_kimg = args.kimg
                start = time.time()
                run_dir = train(RunOptions(data=str(data), outdir=f"{tmp}/{name}-{seed}", config=cfg, tick_kimg=2,
                                           snap_ticks=1000, seed=seed, workers=1, progress=False, image_snap=False,
                                           **PATHS[name]))
                seconds = time.time() - start
                G = load_generator(sorted(run_dir.glob("network-snapshot-*.safetensors"))[-1])
                fid = compute_metric("fid10k_full", generator=G, data=str(data), feature_net="fmnist", num=args.num,
                                     seed=seed, cache_dir=f"{tmp}/cache")
                row = {"what": "short_training_quality", "path": name, "seed": seed, "kimg": args.kimg,
                       "train_seconds": round(seconds, 1), "img_per_s": round(args.kimg * 1000 / seconds, 1),
                       "fid_fmnist": round(fid["value"], 3), "num_fake": args.num, "device": "cpu"}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("wrote", write_results(args.out, rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
