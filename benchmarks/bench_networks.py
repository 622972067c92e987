"""Network throughput: G inference img/s and D forward+R1 img/s (issue 2 benchmark).

Configs: the seed-002 32x32 `stylegan2` config and a `paper256` 256x256 config, random weights; the StyleGAN v1
generator with the official FFHQ widths at 256x256 beside StyleGAN2's `paper256` (the same channel counts).
Run: `python benchmarks/bench_networks.py [--device cuda] [--quick]`; results go to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from stylegan.networks.discriminator import Discriminator  # noqa: E402
from stylegan.networks.stylegan2 import Generator  # noqa: E402
from stylegan.networks.registry import build_network  # noqa: E402
from stylegan.presets import resolve_preset, with_stylegan1  # noqa: E402
from stylegan.tools.bench import peak_memory_mb, seconds_per_call  # noqa: E402


def bench(cfg_name: str, res: int, batch: int, device: torch.device, seconds: float) -> list:
    cfg = resolve_preset(cfg_name, res)
    G = Generator(**cfg.network.generator_kwargs(res, 3, 0)).eval().requires_grad_(False).to(device)
    D = Discriminator(**cfg.network.discriminator_kwargs(res, 3, 0)).eval().requires_grad_(False).to(device)
    z = torch.randn(batch, G.z_dim, device=device)
    rows = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for fused in (True, False):
        with torch.no_grad():
            t = seconds_per_call(lambda: G(z, None, noise_mode="const", fused_modconv=fused), device, seconds)
        rows.append({"what": f"g_inference_b{batch}", "config": f"{cfg_name}@{res}", "fused_modconv": fused,
                     "img_per_s": batch / t, "sec_per_batch": t})
    img = torch.randn(batch, 3, res, res, device=device)

    def d_r1():
        x = img.detach().requires_grad_(True)
        logits = D(x, None)
        (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        grad.square().sum().backward()

    D.requires_grad_(True)
    t = seconds_per_call(d_r1, device, seconds)
    rows.append({"what": f"d_forward_r1_b{batch}", "config": f"{cfg_name}@{res}", "img_per_s": batch / t,
                 "sec_per_batch": t})
    peak = peak_memory_mb(device)
    for row in rows:
        row["peak_mem_mb"] = round(peak, 1)
        row["device"] = str(device)
    return rows


def bench_v1(res: int, batch: int, device: torch.device, seconds: float) -> dict:
    net = with_stylegan1(resolve_preset("paper256", res), res).network
    G = build_network(net.generator_class, net.generator_kwargs(res, 3, 0)).eval().requires_grad_(False).to(device)
    z = torch.randn(batch, G.z_dim, device=device)
    with torch.no_grad():
        t = seconds_per_call(lambda: G(z, None, noise_mode="const"), device, seconds)
    return {"what": f"g_inference_b{batch}", "config": f"stylegan1-ffhq@{res}", "img_per_s": batch / t,
            "sec_per_batch": t, "device": str(device), "peak_mem_mb": round(peak_memory_mb(device), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="Shorter timings, smaller batches.")
    args = parser.parse_args()
    device = torch.device(args.device)
    seconds = 1.0 if args.quick else 3.0
    rows = []
    for cfg_name, res, batch in (("stylegan2", 32, 16), ("paper256", 256, 4 if device.type == "cpu" else 32)):
        for row in bench(cfg_name, res, batch, device, seconds):
            rows.append(row)
            print(f"{row['what']:<22s} {row['config']:<14s} fused={row.get('fused_modconv', '-')!s:<5s} "
                  f"{row['img_per_s']:8.2f} img/s  peak {row['peak_mem_mb']:.0f} MB", flush=True)
    row = bench_v1(256, 4 if device.type == "cpu" else 32, device, seconds)
    rows.append(row)
    print(f"{row['what']:<22s} {row['config']:<14s} {'':<11s} {row['img_per_s']:8.2f} img/s", flush=True)
    print("wrote", write_results("networks", rows, device))


if __name__ == "__main__":
    main()
