"""Quality at equal kimg, ours against NVIDIA's code (issue #25): the same command line, the same data, our metrics.

NVIDIA's small command line (`--cfg=stylegan2 --batch=32 --gamma=0.1 --cbase=2048 --cmax=64 --map-depth=2
--aug=ada --tick=1 --snap=25`) on Fashion-MNIST 32x32 (Debian's idx files through `stylegan dataset`: 28x28 padded
to 32x32, as NVIDIA's dataset_tool), trained for the same kimg and seed by each code's own train command, then the
last snapshot's G_ema scored by our metrics for both: `fmnist` FID (10k generated against the 60k training images)
and precision/recall (k=3, 10k generated against 10k training images).

NVIDIA's side: train.py of an NVlabs/stylegan3 checkout, unmodified, with the device changes of
scripts/make_training_parity.py (its training loop's `torch` answers torch.device(...) with the CPU and turns the
torch.cuda timing and memory calls into no-ops; Tensor.pin_memory returns the tensor; the data loader runs in the
training process: num_workers 0, no pinning), `--metrics=none`. Its networks run float32 on a CPU by themselves
(their fp16 blocks are CUDA only) and its custom ops take their reference paths. Our side: `stylegan train` with
the same flags, `--fp32` (the automatic choice would take bf16 on this CPU; float32 keeps the two sides'
arithmetic alike) and `--workers=0`. Each training runs in a child process.

    python benchmarks/quality_vs_nvidia.py --nvidia ../shared/gpu/nvidia_stylegan3 --kimg 25 --seeds 0

Writes benchmarks/results/<out>_cpu.json: a row per (code, seed) with kimg, training seconds, sec/kimg, final p,
FID, precision, recall, and the machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

COMMAND_LINE = ("--cfg=stylegan2", "--gpus=1", "--batch=32", "--gamma=0.1", "--cbase=2048", "--cmax=64",
                "--map-depth=2", "--aug=ada", "--tick=1", "--snap=25")
CODES = ("nvidia", "ours")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist_zip(path: Path) -> Path:
    """The training zip from Debian's idx files, as a user makes it (`stylegan dataset --source ... --dest`)."""
    if not path.exists():
        from stylegan.data.dataset_tool import convert_dataset
        if not FASHION_MNIST.is_dir():
            raise SystemExit(f"{FASHION_MNIST} is missing: install Debian's dataset-fashion-mnist, or pass --data")
        path.parent.mkdir(parents=True, exist_ok=True)
        print(convert_dataset([FASHION_MNIST / "train-images-idx3-ubyte.gz",
                               FASHION_MNIST / "train-labels-idx1-ubyte.gz"], path))
    return path


def train_nvidia(nvidia: Path, flags: list) -> None:
    """NVIDIA's train.py main() in this process, on the CPU (the module docstring's device changes)."""
    import torch
    from make_training_parity import TorchOnCpu, import_nvidia
    from nvidia_training_recorder import patched
    nv = import_nvidia(nvidia.resolve())
    import train as nvidia_train  # NVIDIA's train.py (import_nvidia put the checkout on sys.path)
    loop = nv["training_loop"].training_loop

    def in_process_data(**kwargs):
        # the loader in this process: train.py's spawned workers (it sets the 'spawn' start method) hung here
        kwargs["data_loader_kwargs"].update(num_workers=0, pin_memory=False, prefetch_factor=None)
        return loop(**kwargs)
    with patched(nv["training_loop"], "torch", TorchOnCpu()), \
            patched(torch.Tensor, "pin_memory", lambda t, *a, **k: t), \
            patched(nv["training_loop"], "training_loop", in_process_data):
        nvidia_train.main([*flags, "--metrics=none"], standalone_mode=False)


def train_ours(flags: list) -> None:
    from stylegan.cli.train import command
    command.main([*flags, "--fp32", "--workers=0", "--no-progress"], standalone_mode=False)


def score(snapshot: Path, data: Path, num: int, seed: int) -> dict:
    from stylegan.io.load import load_generator
    from stylegan.metrics.evaluate import compute_metric
    G = load_generator(snapshot)
    cache = str(data.parent / ".metric-cache")
    fid = compute_metric("fid10k_full", generator=G, data=str(data), feature_net="fmnist", num=num, seed=seed,
                         cache_dir=cache)
    pr = compute_metric("pr50k3_full", generator=G, data=str(data), feature_net="fmnist", num=num, num_real=num,
                        seed=seed, cache_dir=cache)
    return {"fid_fmnist": round(fid["value"], 3), "precision": round(pr["results"]["precision"], 4),
            "recall": round(pr["results"]["recall"], 4)}


def tick_stats(run_dir: Path) -> list:
    """stats.jsonl's rows as plain numbers (NVIDIA's hold {num, mean, std} per statistic)."""
    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    return [{k: v["mean"] if isinstance(v, dict) else v for k, v in row.items()} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nvidia", type=Path, required=True, help="an NVlabs/stylegan3 checkout")
    parser.add_argument("--kimg", type=int, default=25, help="thousands of images (train.py takes whole kimg)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--codes", default=",".join(CODES))
    parser.add_argument("--data", type=Path, default=ROOT / "demo-out" / "fashion-mnist-32-idx.zip")
    parser.add_argument("--workdir", type=Path, default=ROOT / "demo-out" / "quality_vs_nvidia")
    parser.add_argument("--num", type=int, default=10000, help="generated (and real, for precision) images")
    parser.add_argument("--out", default="quality_vs_nvidia")
    parser.add_argument("--train", choices=CODES, help=argparse.SUPPRESS)  # child: train one code
    parser.add_argument("--flags", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        flags = json.loads(args.flags)
        train_nvidia(args.nvidia, flags) if args.train == "nvidia" else train_ours(flags)
        return

    import torch
    from common import write_results
    data = fashion_mnist_zip(args.data)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for code in args.codes.split(","):
            outdir = args.workdir / f"{code}-seed{seed}"
            flags = [*COMMAND_LINE, f"--data={data}", f"--outdir={outdir}", f"--kimg={args.kimg}", f"--seed={seed}"]
            start = time.time()
            subprocess.run([sys.executable, __file__, "--nvidia", str(args.nvidia), "--train", code,
                            "--flags", json.dumps(flags)], check=True)
            seconds = time.time() - start
            run_dir = sorted(p for p in outdir.iterdir() if p.is_dir())[-1]
            snapshot = sorted(run_dir.glob("network-snapshot-*.pkl" if code == "nvidia" else
                                           "network-snapshot-*.safetensors"))[-1]
            ticks = tick_stats(run_dir)
            row = {"what": "quality_at_equal_kimg", "code": code, "seed": seed, "kimg": args.kimg,
                   "command_line": " ".join(COMMAND_LINE), "snapshot": snapshot.name,
                   "train_seconds": round(seconds, 1),
                   "sec_per_kimg": round(sum(t["Timing/sec_per_tick"] for t in ticks) / args.kimg, 2),
                   "augment_p": round(ticks[-1]["Progress/augment"], 4),
                   **score(snapshot, data, args.num, seed), "num_fake": args.num, "device": "cpu",
                   "precision_of_training": "float32"}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("wrote", write_results(args.out, rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
