"""Which network should `make demo` train? Each variant runs the real demo (`tools.demo.run_demo`: Fashion-MNIST
32x32, its own data preparation, its fast path on this machine, the same time budget), then `fmnist` FID of the
last snapshot (10,000 samples against the 60,000 training images). One row per variant: kimg reached, img/s,
FID, parameters, the path, machine and load, appended to benchmarks/results/demo_presets_<isa>_cpu.jsonl.

Variants change fields of the `cpu` preset's network (`--set channel_base=1024 --set channel_max=32`); no
`--set` is the preset as it stands. Run one variant per process on an otherwise idle machine (the kimg a time
budget reaches is the measurement). As a CPU without AVX-512 runs it:

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \\
        python benchmarks/demo_presets.py --name cbase1024 --set channel_base=1024 --outdir /tmp/demo-cbase1024
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine  # noqa: E402

from stylegan.io.load import load_generator  # noqa: E402
from stylegan.metrics.evaluate import compute_metric  # noqa: E402
from stylegan.presets import resolve_preset  # noqa: E402
from stylegan.tools.demo import run_demo  # noqa: E402


def parse_set(text: str) -> tuple:
    """'channel_base=512' -> ('channel_base', 512): a NetworkConfig field of the `cpu` preset and an integer."""
    name, _, value = text.partition("=")
    network = resolve_preset("cpu", 32).network
    if not hasattr(network, name) or not value.lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"--set takes FIELD=INTEGER with a network field such as channel_base, "
                                         f"got {text!r}")
    return name, int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="what the row calls this variant")
    parser.add_argument("--set", dest="changes", type=parse_set, action="append", default=[],
                        help="FIELD=INTEGER of the preset's network (repeatable)")
    parser.add_argument("--outdir", required=True, help="the demo's folder (data, run, samples)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="the default path instead of the demo's fast one")
    args = parser.parse_args()

    config = resolve_preset("cpu", 32)
    for name, value in args.changes:
        setattr(config.network, name, value)
    load_before = os.getloadavg()[0]
    report = run_demo(args.outdir, minutes=args.minutes, seed=args.seed, fast=not args.plain, config=config)
    load_after = os.getloadavg()[0]
    G = load_generator(report["snapshot"])
    fid = compute_metric("fid10k_full", generator=G, data=report["dataset_zip"], feature_net="fmnist", num=10000,
                         seed=0, cache_dir=str(Path(args.outdir) / ".metric-cache"))
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "native").lower()
    row = {"what": "demo_preset", "variant": args.name, "changes": dict(args.changes), "seed": args.seed,
           "minutes": args.minutes, "kimg": report["kimg"], "img_per_s": report["train_img_per_s"],
           "path": report["path"], "fid10k_full_fmnist": round(fid["value"], 3),
           "g_params": sum(p.numel() for p in G.parameters()), "isa_setting": isa,
           "load_before": round(load_before, 2), "load_after": round(load_after, 2), "machine": machine(),
           "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps(row))
    out = RESULTS / f"demo_presets_{isa}_cpu.jsonl"
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print("appended to", out)


if __name__ == "__main__":
    main()
