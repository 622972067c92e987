"""Whole `stylegan train` ticks (the small config, `cli.bench_loop`) and G inference of two source trees, in child
processes alternating A B B A ... (load changes and order effects hit both alike): the check that a refactor kept the speed.

    .venv/bin/python benchmarks/before_after.py --before /path/to/old/checkout --name refactor_before_after
    # results: benchmarks/results/<name>_cpu.json; each tree's src/ is put first on the child's sys.path

Each round: one loop run per tree and path (fast_eager: float32 NCHW eager; bf16_channels_last where bf16 is
native), timed ticks after the first, and G inference img/s of the small network at batch 16 (best of 5 calls).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from common import emit, write_results

from stylegan.runtime.hardware import native_bf16

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1] + "/src")
import torch
import stylegan
assert stylegan.__file__.startswith(sys.argv[1]), stylegan.__file__
from stylegan.tools.bench import build_networks
try:
    from stylegan.cli.bench_loop import run_loop_case
except ImportError:  # the layout before the runtime layer
    from stylegan.tools.bench_loop import run_loop_case
path, kimg = sys.argv[2], float(sys.argv[3])
row = run_loop_case(device="cpu", paths=[path], kimg=kimg, tick_kimg=0.256, workers=0, aug_p=0.3)[0]
G, _ = build_networks("stylegan2", 32, torch.device("cpu"), channel_base=2048, channel_max=64, map_depth=2,
                      img_channels=1)
G.eval()
z = torch.randn(16, G.z_dim)
best = float("inf")
with torch.no_grad():
    G(z, None)
    for _ in range(5):
        t0 = time.perf_counter(); G(z, None); best = min(best, time.perf_counter() - t0)
print(json.dumps({"sec_per_kimg": row["sec_per_kimg"], "img_per_s": row["img_per_s"],
                  "phase_sec": row["phase_sec"], "g_inference_img_per_s_b16": round(16 / best, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="checkout of the previous version")
    parser.add_argument("--after", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--name", default="before_after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kimg", type=float, default=1.024)
    args = parser.parse_args()
    paths = ["fast_eager"] + (["bf16_channels_last"] if native_bf16(torch.device("cpu")) else [])
    rows = []
    for round_idx in range(args.rounds):
        for path in paths:
            pair = (("before", args.before), ("after", args.after))
            for label, tree in (pair if round_idx % 2 == 0 else pair[::-1]):  # A B, then B A: no order bias
                out = subprocess.run([sys.executable, "-c", CHILD, tree, path, str(args.kimg)], capture_output=True,
                                     text=True, check=True, env={**os.environ, "PYTHONPATH": ""})
                result = json.loads(out.stdout.strip().splitlines()[-1])
                emit(rows, {"round": round_idx, "path": path, "tree": label, **result,
                            "load": round(os.getloadavg()[0], 2)})
    summary = {}
    for path in paths:
        for label in ("before", "after"):
            mine = [r for r in rows if r["path"] == path and r["tree"] == label]
            summary[f"{path}/{label}"] = {"best_sec_per_kimg": min(r["sec_per_kimg"] for r in mine),
                                          "best_g_inference_img_per_s_b16": max(r["g_inference_img_per_s_b16"]
                                                                                for r in mine)}
    rows.append({"summary": summary})
    print(json.dumps(summary, indent=2))
    print(write_results(args.name, rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
