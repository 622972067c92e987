"""Feature extraction throughput (images/s) and peak memory of each feature network on the CPU.

Each network runs in its own subprocess so the peak resident memory (ru_maxrss) is its own.
Inputs are uint8 32x32 RGB images (the networks resize them: inception to 299, effnet-lite0 and
vgg16 to 224, fmnist to 28). Networks whose weights are user supplied (inception, vgg16) are
timed with random weights: the architecture, not the values, sets the cost.

    .venv/bin/python benchmarks/bench_features.py            # writes benchmarks/results/features_cpu.{json,md}
    .venv/bin/python benchmarks/bench_features.py --quick    # fewer images, nothing written
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
NETS = ("fmnist", "effnet-lite0", "inception", "vgg16")


def build(name: str):
    from stylegan.metrics.effnet_lite0 import find_weights, load_effnet_lite0
    from stylegan.metrics.fmnist_net import load_fmnist_net
    from stylegan.metrics.inception import FIDInceptionV3
    from stylegan.metrics.vgg16 import VGG16

    if name == "fmnist":
        return load_fmnist_net(), "shipped weights"
    if name == "effnet-lite0":
        return load_effnet_lite0(), f"weights from {find_weights().name}"
    if name == "inception":
        return FIDInceptionV3().eval(), "random weights (timing only)"
    return VGG16().eval(), "random weights (timing only)"


def measure(name: str, images: int, batch: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    net, weights = build(name)
    x = (torch.rand(batch, 3, 32, 32) * 255).to(torch.uint8)
    with torch.no_grad():
        net(x)  # warm-up
        start = time.perf_counter()
        done = 0
        while done < images:
            net(x)
            done += batch
        seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return dict(feature_net=name, weights=weights, images=done, batch=batch, threads=threads,
                seconds=round(seconds, 3), images_per_second=round(done / seconds, 2),
                peak_rss_mib=round(peak_mib, 1), feature_dim=net.feature_dim)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few images, print only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Enough images per net for a few seconds of steady state at its speed.
    counts = {"fmnist": 4096, "effnet-lite0": 256, "inception": 64, "vgg16": 32}
    batches = {"fmnist": 256, "effnet-lite0": 32, "inception": 16, "vgg16": 8}
    if args.child:
        n = counts[args.child] // (8 if args.quick else 1)
        print(json.dumps(measure(args.child, max(n, batches[args.child]), batches[args.child], args.threads)))
        return
    import os

    load_before = os.getloadavg()[0]
    rows = []
    for name in NETS:
        cmd = [sys.executable, __file__, "--child", name, "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name}: failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{name:14s} {row['images_per_second']:9.1f} img/s   peak RSS {row['peak_rss_mib']:7.0f} MiB   ({row['weights']})")
    if args.quick:
        return
    import torch

    machine = dict(cpu=cpu_model(), cpus=os.cpu_count(), threads=args.threads, torch=torch.__version__,
                   python=platform.python_version(), load_average_1min_before=round(load_before, 2),
                   load_average_1min_after=round(os.getloadavg()[0], 2),
                   note="2-core CPU machine shared with other jobs; numbers are indicative")
    from stylegan.metrics.atomic import atomic_write_text

    atomic_write_text(RESULTS / "features_cpu.json", json.dumps(dict(machine=machine, results=rows), indent=2) + "\n")
    lines = ["# Feature extraction on the CPU", "",
             f"Machine: {machine['cpu']} (lscpu model name), {machine['cpus']} CPUs, {args.threads} torch threads, "
             f"torch {machine['torch']}, Python {machine['python']}. {machine['note']} (1-minute load average "
             f"{machine['load_average_1min_before']} before, {machine['load_average_1min_after']} after).", "",
             "Input: uint8 32x32 RGB batches; each network resizes to its own input size. Peak RSS is the "
             "whole Python process (torch included), measured in a fresh subprocess per network.", "",
             "| feature net | input size | feature dim | batch | images/s | peak RSS (MiB) | weights |",
             "|---|---|---|---|---|---|---|"]
    sizes = {"fmnist": 28, "effnet-lite0": 224, "inception": 299, "vgg16": 224}
    for r in rows:
        lines.append(f"| {r['feature_net']} | {sizes[r['feature_net']]} | {r['feature_dim']} | {r['batch']} | "
                     f"{r['images_per_second']} | {r['peak_rss_mib']} | {r['weights']} |")
    lines += ["", "Reproduce: `.venv/bin/python benchmarks/bench_features.py`", ""]
    atomic_write_text(RESULTS / "features_cpu.md", "\n".join(lines))
    print(f"wrote {RESULTS / 'features_cpu.json'} and .md")


if __name__ == "__main__":
    main()
