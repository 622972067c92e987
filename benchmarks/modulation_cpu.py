"""Grouped (fused) against per-sample modulation in eval-mode G on the CPU, the choice every tool's rendering
makes: img/s per network, batch size and layout, interleaved rounds in one process (fastest call counts).

Networks: the `cpu` preset (`make demo`), issue #15's small config (`--cbase 2048 --cmax 64 --map-depth 2`, one
channel) and the 512-channel StyleGAN2 preset, all 32x32, constant noise. Also one projection step per network
(`stylegan project`'s inner loop: batch 1, synthesis forward and backward to w, eval mode), in ms. 'fused' is one
grouped convolution per layer with the weights modulated per sample (NVIDIA's choice in eval mode); 'per-sample'
scales the activations around one shared convolution (what the library does on the CPU). StyleGAN3 networks (no
channels-last path) also get one G+D forward and backward, since their layers modulate in training too.

    .venv/bin/python benchmarks/modulation_cpu.py --name modulation
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/modulation_cpu.py \
        --name modulation_avx2
"""
from __future__ import annotations

import argparse
import copy
import os

import torch
from common import emit, race, write_results

from stylegan.runtime.path import set_channels_last
from stylegan.tools.bench import build_networks

NETWORKS = {"cpu": dict(cfg_name="cpu", img_channels=1),
            "small": dict(cfg_name="stylegan2", channel_base=2048, channel_max=64, map_depth=2, img_channels=1),
            "seed": dict(cfg_name="stylegan2"),
            # StyleGAN3 at issue #15's widths (R doubles G's channel_base, as NVIDIA's); no channels-last path
            "sg3_t_small": dict(cfg_name="stylegan3-t", channel_base=2048, channel_max=64, map_depth=2, img_channels=1),
            "sg3_r_small": dict(cfg_name="stylegan3-r", channel_base=4096, channel_max=64, map_depth=2, img_channels=1)}
BATCHES = {"cpu": (1, 4, 16, 32), "small": (1, 4, 16, 32), "seed": (1, 4, 16), "sg3_t_small": (1, 16),
           "sg3_r_small": (1, 16)}
SG3_TRAIN_BATCH = 8  # StyleGAN3's layers modulate in training too: one G+D forward and backward at this batch


def projection_step(G, ws: torch.Tensor, fused: bool) -> None:
    with torch.enable_grad():
        w = ws.clone().requires_grad_(True)
        G.synthesis(w, noise_mode="const", fused_modconv=fused).square().mean().backward()


def training_pass(G, D, z: torch.Tensor, fused: bool) -> None:
    with torch.enable_grad():
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        D(G(z, None, fused_modconv=fused), None).sum().backward()


def rows_of(best: dict, base: dict, batch: int) -> list:
    """Result rows of a race keyed (layout, fused); `base` fills the other fields."""
    rows = []
    for (layout, fused), s in best.items():
        row = dict(base, layout="channels_last" if layout else "nchw", modulation="fused" if fused else "per_sample",
                   ms=round(s * 1000, 2), img_per_s=round(batch / s, 1),
                   per_sample_speedup=round(s / best[layout, False], 2))
        row["load_after"] = round(os.getloadavg()[0], 2)
        emit(rows, row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="modulation", help="results file benchmarks/results/<name>_cpu.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3, help="timed calls per path and round")
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated, of {', '.join(NETWORKS)}")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    device = torch.device("cpu")
    rows = []
    for name in args.networks.split(","):
        G, D = build_networks(resolution=32, device=device, **NETWORKS[name])
        sg3 = name.startswith("sg3")
        nets = {False: G.eval()} if sg3 else {False: G.eval(), True: set_channels_last(copy.deepcopy(G), True).eval()}
        for batch in BATCHES[name]:
            z, load = torch.randn(batch, G.z_dim), os.getloadavg()[0]
            fns = {(layout, fused): (lambda g=g, fused=fused: g(z, None, noise_mode="const", fused_modconv=fused))
                   for layout, g in nets.items() for fused in (True, False)}
            base = {"network": name, "batch": batch, "what": "inference", "load_before": round(load, 2)}
            rows += rows_of(race(fns, args.rounds, args.calls), base, batch)
        G.requires_grad_(False)
        ws, load = G.mapping(torch.randn(1, G.z_dim), None), os.getloadavg()[0]
        fns = {(False, fused): (lambda fused=fused: projection_step(G, ws, fused)) for fused in (True, False)}
        base = {"network": name, "batch": 1, "what": "projection_step", "load_before": round(load, 2)}
        rows += rows_of(race(fns, args.rounds, args.calls), base, 1)
        if sg3:
            G.train().requires_grad_(True)
            D.train().requires_grad_(True)
            z, load = torch.randn(SG3_TRAIN_BATCH, G.z_dim), os.getloadavg()[0]
            fns = {(False, fused): (lambda fused=fused: training_pass(G, D, z, fused)) for fused in (True, False)}
            base = {"network": name, "batch": SG3_TRAIN_BATCH, "what": "g_d_forward_backward",
                    "load_before": round(load, 2)}
            rows += rows_of(race(fns, args.rounds, 1), base, SG3_TRAIN_BATCH)
    print(write_results(args.name, rows, device))


if __name__ == "__main__":
    main()
