"""Does the default path train as well as the reference path? Equal kimg, several seeds, then `fmnist` FID.

Issue #15's check: Fashion-MNIST 32x32 (made with `stylegan dataset` from Debian's dataset-fashion-mnist idx
files), trained with NVIDIA's command line for a small CPU run (`stylegan.cli.bench_loop.SMALL_CONFIG`:
`--cfg stylegan2 --cbase 2048 --cmax 64 --map-depth 2 --batch 32 --gamma 0.1 --mirror 1`, ADA on) for the same
number of images on each path (`bench_loop.LOOP_PATHS`: `reference` = float32 reference ops, no compile, NCHW;
`default` = no flags, what `stylegan train` picks on this machine; `fast_eager` = fast ops, float32, eager),
one run per path and seed, each through the real `stylegan train` command. Then FID of each G_ema against the
training set with the `fmnist` feature network, and a row per run (path, seed, kimg, seconds, FID, the path the
run resolved, machine) in benchmarks/results/<out>_cpu.json. `--preset cpu` checks `make demo`'s preset instead,
and `--extra` adds flags to every run (e.g. a narrower demo network: `--preset cpu --extra="--cmax 32"`).

Run (the issue's check; about 2 h on 2 quiet cores at --kimg 10):
    python benchmarks/quality_paths.py --kimg 10 --seeds 0,1,2 --paths reference,default
A quick check that it works (minutes): --kimg 0.2 --seeds 0 --num 500
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

from stylegan.cli.train import command as train_command  # noqa: E402
from stylegan.io.load import load_generator  # noqa: E402
from stylegan.metrics.evaluate import compute_metric  # noqa: E402
from stylegan.cli.bench_loop import LOOP_PATHS, SMALL_CONFIG  # noqa: E402

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
PRESETS = {"small": SMALL_CONFIG, "cpu": ("--cfg", "cpu", "--mirror", "1")}  # the flags of each network


def fashion_mnist_zip(path: Path) -> Path:
    """The training zip from the idx files, as a user makes it (`stylegan dataset --source ... --dest`)."""
    if not path.exists():
        from stylegan.data.dataset_tool import convert_dataset
        if not FASHION_MNIST.is_dir():
            raise SystemExit(f"{FASHION_MNIST} is missing: install Debian's dataset-fashion-mnist, or pass --data")
        print(convert_dataset([FASHION_MNIST / "train-images-idx3-ubyte.gz",
                               FASHION_MNIST / "train-labels-idx1-ubyte.gz"], path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=10.0, help="training length of every run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--paths", default="reference,default", help=f"from {', '.join(LOOP_PATHS)}")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--extra", default="",
                        help="more `stylegan train` flags for every run, as one string: --extra='--cmax 32'")
    parser.add_argument("--data", default="demo-out/fashion-mnist-32-idx.zip", help="made here when missing")
    parser.add_argument("--num", type=int, default=10000, help="generated images per FID")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="quality_paths_loop", help="result file name in benchmarks/results")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in LOOP_PATHS]
    if unknown:
        parser.error(f"unknown path {unknown[0]}; choose from {', '.join(LOOP_PATHS)}")
    data = fashion_mnist_zip(Path(args.data))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name in paths:  # paths interleaved within each seed, so load changes hit both alike
                outdir = Path(tmp) / f"{name}-{seed}"
                flags = [*PRESETS[args.preset], *args.extra.split(), "--data", str(data), "--outdir", str(outdir),
                         "--kimg", str(args.kimg), "--tick", str(max(args.kimg / 10, 0.1)), "--snap", "100000",
                         "--seed", str(seed), "--workers", str(args.workers), "--no-progress", *LOOP_PATHS[name]]
                start = time.time()
                train_command.main(flags, standalone_mode=False)
                seconds = time.time() - start
                run_dir = sorted(p for p in outdir.iterdir() if p.is_dir())[-1]
                options = json.loads((run_dir / "training_options.json").read_text())
                G = load_generator(sorted(run_dir.glob("network-snapshot-*.safetensors"))[-1])
                fid = compute_metric("fid10k_full", generator=G, data=str(data), feature_net="fmnist", num=args.num,
                                     seed=seed, cache_dir=str(data.parent / ".metric-cache"))
                ticks = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
                row = {"what": "training_quality", "preset": args.preset,
                       "flags": " ".join([*PRESETS[args.preset], *args.extra.split()]),
                       "path": name, "path_flags": " ".join(LOOP_PATHS[name]), "seed": seed, "kimg": args.kimg,
                       "train_seconds": round(seconds, 1),
                       "sec_per_kimg": round(sum(t["Timing/sec_per_tick"] for t in ticks) / args.kimg, 2),
                       "augment_p": round(ticks[-1]["Progress/augment"], 4),
                       "fid_fmnist": round(fid["value"], 3), "num_fake": args.num,
                       "speed_path": options.get("speed_path"), "device": "cpu"}
                rows.append(row)
                print(json.dumps(row), flush=True)
    for name in paths:
        fids = [r["fid_fmnist"] for r in rows if r["path"] == name]
        print(f"{name}: fmnist FID {sum(fids) / len(fids):.2f} (seeds: {', '.join(f'{f:.2f}' for f in fids)})")
    print("wrote", write_results(args.out, rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
