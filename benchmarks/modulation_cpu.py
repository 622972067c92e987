"""Grouped (fused) against per-sample modulation in eval-mode G on the CPU, the choice every tool's rendering
makes: img/s per network, batch size and layout, interleaved rounds in one process (fastest call counts).

Networks: the `cpu` preset (`make demo`), issue #15's small config (`--cbase 2048 --cmax 64 --map-depth 2`, one
channel) and the 512-channel StyleGAN2 preset, all 32x32, constant noise. Also one projection step per network
(`stylegan project`'s inner loop: batch 1, synthesis forward and backward to w, eval mode), in ms. 'fused' is one
grouped convolution per layer with the weights modulated per sample (NVIDIA's choice in eval mode); 'per-sample'
scales the activations around one shared convolution (what the library does on the CPU).

    .venv/bin/python benchmarks/modulation_cpu.py --name modulation
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/modulation_cpu.py \
        --name modulation_avx2
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time

import torch
from common import write_results

from stylegan.networks.fast_paths import set_channels_last
from stylegan.tools.bench import build_networks

NETWORKS = {"cpu": dict(cfg_name="cpu", img_channels=1),
            "small": dict(cfg_name="stylegan2", channel_base=2048, channel_max=64, map_depth=2, img_channels=1),
            "seed": dict(cfg_name="stylegan2")}
BATCHES = {"cpu": (1, 4, 16, 32), "small": (1, 4, 16, 32), "seed": (1, 4, 16)}


def seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def projection_step(G, ws: torch.Tensor, fused: bool) -> None:
    with torch.enable_grad():
        w = ws.clone().requires_grad_(True)
        G.synthesis(w, noise_mode="const", fused_modconv=fused).square().mean().backward()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="modulation", help="results file benchmarks/results/<name>_cpu.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3, help="timed calls per path and round")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    device = torch.device("cpu")
    rows = []
    for name, kwargs in NETWORKS.items():
        G, _ = build_networks(resolution=32, device=device, **kwargs)
        nets = {False: G.eval(), True: set_channels_last(copy.deepcopy(G), True).eval()}
        for batch in BATCHES[name]:
            z, load = torch.randn(batch, G.z_dim), os.getloadavg()[0]
            paths = [(layout, fused) for layout in (False, True) for fused in (True, False)]
            best = {p: float("inf") for p in paths}
            for p in paths:  # warm-up: the first calls build oneDNN's kernels
                nets[p[0]](z, None, noise_mode="const", fused_modconv=p[1])
            for _ in range(args.rounds):
                for layout, fused in paths:
                    for _ in range(args.calls):
                        s = seconds(lambda: nets[layout](z, None, noise_mode="const", fused_modconv=fused))
                        best[layout, fused] = min(best[layout, fused], s)
            for (layout, fused), s in best.items():
                per_sample = best[layout, False]
                row = {"network": name, "batch": batch, "what": "inference",
                       "layout": "channels_last" if layout else "nchw",
                       "modulation": "fused" if fused else "per_sample", "img_per_s": round(batch / s, 1),
                       "per_sample_speedup": round(s / per_sample, 2), "load_before": round(load, 2),
                       "load_after": round(os.getloadavg()[0], 2)}
                print(json.dumps(row), flush=True)
                rows.append(row)
        G.requires_grad_(False)
        ws, load = G.mapping(torch.randn(1, G.z_dim), None), os.getloadavg()[0]
        best = {True: float("inf"), False: float("inf")}
        for fused in best:
            projection_step(G, ws, fused)  # warm-up
        for _ in range(args.rounds):
            for fused in best:
                for _ in range(args.calls):
                    best[fused] = min(best[fused], seconds(lambda: projection_step(G, ws, fused)))
        for fused, s in best.items():
            row = {"network": name, "batch": 1, "what": "projection_step", "layout": "nchw",
                   "modulation": "fused" if fused else "per_sample", "ms": round(s * 1000, 2),
                   "per_sample_speedup": round(s / best[False], 2), "load_before": round(load, 2),
                   "load_after": round(os.getloadavg()[0], 2)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(write_results(args.name, rows, device))


if __name__ == "__main__":
    main()
