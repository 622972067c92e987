"""Transparent huge pages for PyTorch's large CPU tensors (THP_MEM_ALLOC_ENABLE, which the `stylegan` command sets
for its own process) against the default, in child processes started alternately (PyTorch reads the variable
once per process): eval-mode G img/s of StyleGAN3-T at issue #15's widths and of the 512-channel StyleGAN2
preset (batch 16), and the small config's G main + D main (channels-last, batch 32), each the fastest of a few
calls. Needs a Linux kernel with THP in `madvise` or `always` mode (/sys/kernel/mm/transparent_hugepage/enabled).

    .venv/bin/python benchmarks/huge_pages_cpu.py --name huge_pages
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import emit, write_results

ENV = "THP_MEM_ALLOC_ENABLE"


def fastest(fn, calls: int) -> float:
    fn()
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def child() -> None:
    """One measurement of each case in this process; prints a JSON dict of img/s."""
    import torch

    from stylegan.tools.bench import build_networks, main_phases, path_networks
    cpu = torch.device("cpu")
    out = {}
    small = dict(channel_base=2048, channel_max=64, map_depth=2, img_channels=1)
    with torch.no_grad():
        for name, cfg, widths in (("stylegan3-t_small_inference_b16", "stylegan3-t", small),
                                  ("stylegan2_512ch_inference_b16", "stylegan2", {})):
            G, _ = build_networks(cfg, 32, cpu, **widths)
            z = torch.randn(16, G.z_dim)
            out[name] = 16 / fastest(lambda: G.eval()(z, None), 3)
    G, D = build_networks("stylegan2", 32, cpu, **small)
    nets = path_networks("channels_last", G, D, "stylegan2", 32, cpu, widths=small)
    nets.G.train()
    nets.D.train()
    out["small_g_d_main_b32_channels_last"] = 32 / fastest(lambda: main_phases(nets, 32, cpu), 3)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="huge_pages", help="results file benchmarks/results/<name>_cpu.json")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    rows = []
    for round_index in range(args.rounds):
        for value in ("0", "1"):
            env = dict(os.environ, **{ENV: value})
            proc = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                                  check=True)
            speeds = json.loads(proc.stdout.strip().splitlines()[-1])
            row = {"round": round_index, ENV: value, "img_per_s": {k: round(v, 2) for k, v in speeds.items()},
                   "kernel_thp": thp.read_text().strip() if thp.exists() else None,
                   "load": round(os.getloadavg()[0], 2)}
            emit(rows, row)
    import torch
    print(write_results(args.name, rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
