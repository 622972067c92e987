"""What the automatic path choice (runtime/choice.py) picks on this machine, what its probe costs, and whether
the pick is really faster: after the choice, the chosen path and float32 NCHW are timed again side by side in
this process (interleaved rounds, more calls than the probe makes).

    .venv/bin/python benchmarks/speed_path_probe.py --out benchmarks/results/speed_path_cpu.json
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/speed_path_probe.py \
        --out benchmarks/results/speed_path_cpu_avx2.json

Cases: the small config of issue #15 (`--cfg stylegan2 --cbase 2048 --cmax 64 --map-depth 2`, 32x32, one
channel; training batch 32, inference batch 16) and the `cpu` preset (`make demo`'s networks, batch 32). The
compile decision is left out (compile='off'): it follows the payback rule, not a measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from stylegan.networks.registry import build_network
from stylegan.presets import resolve_preset
from stylegan.runtime import hardware
from stylegan.runtime.choice import Candidate, choose_inference_path, inference_probe
from stylegan.runtime.path import FAST
from stylegan.training.options import RunOptions
from stylegan.training.setup import _training_probe, choose_training_path


def networks(case: str):
    cfg = resolve_preset("stylegan2" if case == "small" else "cpu", 32)
    net = cfg.network
    if case == "small":
        net.channel_base, net.channel_max, net.map_depth = 2048, 64, 2
    net.num_fp16_res = 0
    G = build_network(net.generator_class, net.generator_kwargs(32, 1, 0)).train().requires_grad_(False)
    D = build_network(net.discriminator_class, net.discriminator_kwargs(32, 1, 0)).train().requires_grad_(False)
    return cfg, G, D


def confirm(measure, batch: int, chosen: Candidate, rounds: int) -> dict:
    """img/s of the chosen path and of float32 NCHW, `rounds` interleaved timed calls each (fastest counts)."""
    base = Candidate("fp32", False)
    best = {base.name: float("inf"), chosen.name: float("inf")}
    for _ in range(rounds):
        for cand in (base, chosen):
            best[cand.name] = min(best[cand.name], measure(cand))
    return {name: round(batch / s, 1) for name, s in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cpu")
    rows = []
    for case in ("small", "cpu"):
        cfg, G, D = networks(case)
        cfg.total_kimg = 10000  # long enough to probe
        for kind, batch in (("train", 32), ("inference", 16 if case == "small" else 32)):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            if kind == "train":
                path = choose_training_path(RunOptions(data="-", outdir="-", config=cfg, compile="off"), G, D,
                                            device, batch)
            else:
                path = choose_inference_path(G, device, batch, 10 ** 6)
            probe_s = time.perf_counter() - t0
            chosen = Candidate(path.precision, path.channels_last)
            measure = (_training_probe(G, D, cfg, FAST, batch, device) if kind == "train" else
                       inference_probe(G, batch, device))[0]
            check = confirm(measure, batch, chosen, args.rounds)
            row = {"case": case, "kind": kind, "batch": batch, "probe_seconds": round(probe_s, 2),
                   "choice": path.to_json(), "summary": path.summary(), "confirm_img_per_s": check,
                   "confirm_speedup": round(check[chosen.name] / check["fp32"], 2),
                   "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    record = {"machine": hardware.machine_description(device), "torch": torch.__version__, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
