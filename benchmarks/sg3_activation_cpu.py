"""StyleGAN3 inference on the CPU with the filtered leaky ReLU's activation in place (`filtered_lrelu`'s
`fast_inplace`, what the tools run) against `fast`, PyTorch's three out-of-place ops (leaky ReLU, gain, clamp: three
new tensors of the layer's largest size), switched in one process, interleaved rounds (fastest call counts). Issue #15's widths
(`--cbase 2048 --cmax 64 --map-depth 2`, R doubling G's channel_base), 32x32, one channel, eval mode.

    .venv/bin/python benchmarks/sg3_activation_cpu.py --name sg3_activation
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/sg3_activation_cpu.py \\
        --name sg3_activation_avx2
"""
from __future__ import annotations

import argparse
import os

import torch
from common import emit, race, write_results

from stylegan.runtime.path import FAST, INFERENCE, apply_path
from stylegan.tools.bench import build_networks

NETWORKS = {"stylegan3-t": 2048, "stylegan3-r": 4096}  # channel_base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="sg3_activation", help="results file benchmarks/results/<name>_cpu.json")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    rows = []
    for cfg, channel_base in NETWORKS.items():
        G, _ = build_networks(cfg, 32, torch.device("cpu"), channel_base=channel_base, channel_max=64, map_depth=2,
                              img_channels=1)
        G.eval()
        z = torch.randn(args.batch, G.z_dim)

        def render(out_of_place: bool) -> None:
            apply_path(G, FAST if out_of_place else INFERENCE)
            G(z, None)
        best = race({"out_of_place": lambda: render(True), "in_place": lambda: render(False)}, args.rounds, args.calls)
        for variant, s in best.items():
            row = {"network": cfg, "batch": args.batch, "activation": variant, "img_per_s": round(args.batch / s, 2),
                   "in_place_speedup": round(best["out_of_place"] / best["in_place"], 2),
                   "load": round(os.getloadavg()[0], 2)}
            emit(rows, row)
    print(write_results(args.name, rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
