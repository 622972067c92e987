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

    python benchmarks/quality_vs_nvidia.py --nvidia ../shared/gpu/nvidia_stylegan3 --kimg 51 --seeds 0,1,2 --jobs 2

Writes benchmarks/results/<out>_cpu.json as runs finish: a row per (code, seed, snapshot: 25 and 51 kimg with
`--snap=25`) with the kimg, run seconds, sec/kimg, p, FID, precision, recall, what ran (ours: the execution path
the automatic choice took, the pipe's impl) and the machine; then prints the table (`--summary FILE ...` prints
it again, of several files together; `FILE:CODE` takes one code's rows of a file). `--jobs 2` runs two trainings
at a time with one thread each (on 2 cores more images per second in all than one after the other with two
threads), queued seed by seed, NVIDIA's first.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
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


def execution(run_dir: Path, code: str) -> dict:
    """What a run executed: NVIDIA's code runs eager with its ops' reference paths on a CPU; ours records the path
    its automatic choice took and the augmentation pipe's impl in training_options.json."""
    if code == "nvidia":
        return {"execution": "eager, NCHW, NVIDIA's reference ops", "augment_impl": "NVIDIA's augment.py"}
    options = json.loads((run_dir / "training_options.json").read_text())
    path = options.get("speed_path", {})
    layout = "channels-last" if path.get("channels_last") else "NCHW"
    compiled = "eager" if path.get("compile", "off") == "off" else f"compiled ({path['compile']})"
    return {"execution": f"{compiled}, {layout}, {path.get('ops', {})}",
            "augment_impl": options["config"].get("augment_impl", "exact")}


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


def snapshots(run_dir: Path, code: str) -> dict:
    """{kimg: path} of a run's network snapshots after its start (both codes name them by whole kimg)."""
    pattern = "network-snapshot-*.pkl" if code == "nvidia" else "network-snapshot-*.safetensors"
    found = {int(p.name.split("-")[-1].split(".")[0]): p for p in run_dir.glob(pattern)}
    return {kimg: path for kimg, path in sorted(found.items()) if kimg > 0}


def sec_per_kimg(ticks: list, code: str) -> float:
    """Training seconds per kimg from a run's tick rows. NVIDIA's first row is its start (one step, with start-up),
    so its rate is that of the ticks after it; ours count from the start (the first row is a whole tick)."""
    if code == "nvidia":
        kimg = ticks[-1]["Progress/kimg"] - ticks[0]["Progress/kimg"]
        return sum(t["Timing/sec_per_tick"] for t in ticks[1:]) / kimg
    return sum(t["Timing/sec_per_tick"] for t in ticks) / ticks[-1]["Progress/kimg"]


def child(args, *mode: str, threads: int) -> str:
    """Run this script in a child process with `threads` CPU threads; its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, __file__, "--nvidia", str(args.nvidia), *mode], env=env, check=True,
                          stdout=subprocess.PIPE, text=True)
    return done.stdout


def run_one(args, data: Path, code: str, seed: int, threads: int) -> list:
    """Train one (code, seed) and score each snapshot: one row per snapshot."""
    outdir = args.workdir / f"{code}-seed{seed}"
    flags = [*COMMAND_LINE, f"--data={data}", f"--outdir={outdir}", f"--kimg={args.kimg}", f"--seed={seed}"]
    if code == "ours":
        flags += args.ours_flags.split()
    start = time.time()
    child(args, "--train", code, "--flags", json.dumps(flags), threads=threads)
    seconds = time.time() - start
    run_dir = sorted(p for p in outdir.iterdir() if p.is_dir())[-1]
    ticks = tick_stats(run_dir)
    run = {"run_seconds": round(seconds, 1), "sec_per_kimg": round(sec_per_kimg(ticks, code), 2),
           "threads": threads, "concurrent_runs": args.jobs, "device": "cpu", "precision_of_training": "float32",
           **execution(run_dir, code)}  # the same for every snapshot of the run
    rows = []
    for kimg, snapshot in snapshots(run_dir, code).items():
        at = [t for t in ticks if int(t["Progress/kimg"]) <= kimg]
        scores = json.loads(child(args, "--score", str(snapshot), "--data", str(data), "--num", str(args.num),
                                  "--seed", str(seed), threads=threads).splitlines()[-1])
        rows.append({"what": "quality_at_equal_kimg", "code": code, "seed": seed, "kimg": kimg,
                     "kimg_exact": round(at[-1]["Progress/kimg"], 3), "command_line": " ".join(COMMAND_LINE),
                     "snapshot": snapshot.name, "augment_p": round(at[-1]["Progress/augment"], 4), **scores,
                     "num_fake": args.num, **run})
    return rows


def summary(rows: list) -> str:
    """A markdown table of FID and precision per kimg and code over the seeds (each seed's value, then the mean), and
    whether our seeds lie within the spread of NVIDIA's or below it (FID: lower is better)."""
    lines = ["| kimg | code | FID per seed | mean FID | precision per seed | recall per seed |",
             "|---|---|---|---|---|---|"]
    verdicts = []
    for kimg in sorted({r["kimg"] for r in rows}):
        fids = {}
        for code in CODES:
            mine = sorted((r for r in rows if r["kimg"] == kimg and r["code"] == code), key=lambda r: r["seed"])
            if not mine:
                continue
            fids[code] = [r["fid_fmnist"] for r in mine]
            precisions = ", ".join(f"{r['precision']:.2f}" for r in mine)
            recalls = ", ".join(f"{r['recall']:.2f}" for r in mine)
            lines.append(f"| {kimg} | {code} | {', '.join(f'{v:.1f}' for v in fids[code])} | "
                         f"{sum(fids[code]) / len(fids[code]):.1f} | {precisions} | {recalls} |")
        if len(fids) == 2:
            worst = max(fids["nvidia"])
            above = [v for v in fids["ours"] if v > worst]
            pairs = [(o, n) for o in fids["ours"] for n in fids["nvidia"]]
            better = sum(o < n for o, n in pairs) + 0.5 * sum(o == n for o, n in pairs)  # Mann-Whitney U
            verdicts.append(f"{kimg} kimg: NVIDIA's FID spans {min(fids['nvidia']):.1f}-{worst:.1f}; "
                            + (f"{len(above)} of our {len(fids['ours'])} seeds above it "
                               f"({', '.join(f'{v:.1f}' for v in above)})"
                               if above else f"all {len(fids['ours'])} of ours within it or below")
                            + f"; ours lower in {better:g} of the {len(pairs)} (ours, NVIDIA) pairs of seeds "
                            f"(half of them if the two codes train alike)")
    return "\n".join(lines + [""] + verdicts)


def summary_rows(spec: str) -> list:
    """The rows of a results file, 'FILE' (all) or 'FILE:CODE' (that code's)."""
    path, _, code = spec.rpartition(":")
    if code not in CODES:  # no ':CODE' (or a ':' inside the file's name)
        path, code = spec, ""
    rows = json.loads(Path(path).read_text())["rows"]
    return [r for r in rows if r["code"] == code] if code else rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nvidia", type=Path, help="an NVlabs/stylegan3 checkout (needed to train)")
    parser.add_argument("--kimg", type=int, default=25, help="thousands of images (train.py takes whole kimg)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--codes", default=",".join(CODES))
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time, each with cores/jobs threads (queued code by code within a seed)")
    parser.add_argument("--ours-flags", default="", help="more `stylegan train` flags for our runs, e.g. "
                        "'--compile off' (the automatic choice compiles on a CPU where that pays)")
    parser.add_argument("--data", type=Path, default=ROOT / "demo-out" / "fashion-mnist-32-idx.zip")
    parser.add_argument("--workdir", type=Path, default=ROOT / "demo-out" / "quality_vs_nvidia")
    parser.add_argument("--num", type=int, default=10000, help="generated (and real, for precision) images")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="quality_vs_nvidia")
    parser.add_argument("--summary", nargs="+", metavar="FILE[:CODE]",
                        help="print the table of the rows of these results files together and stop; FILE:CODE "
                        "takes only that code's rows of FILE")
    parser.add_argument("--train", choices=CODES, help=argparse.SUPPRESS)  # child: train one code
    parser.add_argument("--flags", help=argparse.SUPPRESS)
    parser.add_argument("--score", type=Path, help=argparse.SUPPRESS)  # child: score one snapshot
    args = parser.parse_args()
    if args.summary:
        print(summary([row for spec in args.summary for row in summary_rows(spec)]))
        return
    if args.nvidia is None:
        parser.error("--nvidia PATH (an NVlabs/stylegan3 checkout) is needed to train; only --summary goes without")
    if args.train:
        flags = json.loads(args.flags)
        train_nvidia(args.nvidia, flags) if args.train == "nvidia" else train_ours(flags)
        return
    if args.score:
        print(json.dumps(score(args.score, args.data, args.num, args.seed)))
        return

    import torch
    from common import write_results
    data = fashion_mnist_zip(args.data)

    tasks = [(code, int(seed)) for seed in args.seeds.split(",") for code in args.codes.split(",")]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    rows = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for task in as_completed([pool.submit(run_one, args, data, code, seed, threads) for code, seed in tasks]):
            for row in task.result():
                rows.append(row)
                print(json.dumps(row), flush=True)
            rows.sort(key=lambda r: (r["kimg"], r["seed"], r["code"]))
            path = write_results(args.out, rows, torch.device("cpu"))  # rewritten as runs finish
    print("wrote", path)
    print(summary(rows))


if __name__ == "__main__":
    main()
