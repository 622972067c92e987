"""The metrics' feature networks and the projection distances on the CPU, NCHW against channels-last weights
(`stylegan.metrics.features.to_device`, what `metrics`, PPL and `project` now use): img/s, or ms of one
projection-distance step, interleaved rounds in one process (fastest call counts). Random weights where the real
ones are the user's (Inception, VGG16): the architecture, not the values, sets the cost.

    .venv/bin/python benchmarks/feature_layout_cpu.py --name feature_layout
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/feature_layout_cpu.py \\
        --name feature_layout_avx2
"""
from __future__ import annotations

import argparse
import copy
import os

import torch
from common import emit, race, write_results

from stylegan.metrics.effnet_lite0 import load_effnet_lite0
from stylegan.metrics.features import to_device
from stylegan.metrics.fmnist_net import load_fmnist_net
from stylegan.metrics.inception import FIDInceptionV3
from stylegan.metrics.vgg16 import VGG16
from stylegan.tools.projector import CombinedDistance, EffnetDistance, PixelPyramidDistance

FEATURE_NETS = {"inception": (FIDInceptionV3, 16), "vgg16": (VGG16, 8), "effnet-lite0": (load_effnet_lite0, 32),
                "fmnist": (load_fmnist_net, 256)}  # network, batch (as bench_features.py)


def distance_step(dist, image: torch.Tensor, target_features) -> None:
    """One projection step's distance work: forward and backward to the image (batch 1, 256x256)."""
    with torch.enable_grad():
        x = image.clone().requires_grad_(True)
        dist(x, target_features).sum().backward()


def vgg_step(vgg, image: torch.Tensor) -> None:
    """LPIPS-VGG16's feature taps, forward and backward (its heads are a weighted sum on top)."""
    with torch.enable_grad():
        x = image.clone().requires_grad_(True)
        sum(t.square().mean() for t in vgg.lpips_taps(x)).backward()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="feature_layout", help="results file benchmarks/results/<name>_cpu.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2, help="timed calls per layout and round")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    rows = []

    def record(name: str, what: str, best: dict, batch: int) -> None:
        for layout, s in best.items():
            row = {"network": name, "what": what, "batch": batch, "layout": layout, "ms": round(s * 1000, 2),
                   "img_per_s": round(batch / s, 2), "load": round(os.getloadavg()[0], 2),
                   "channels_last_speedup": round(best["nchw"] / best["channels_last"], 2)}
            emit(rows, row)

    for name, (build, batch) in FEATURE_NETS.items():
        net = build().eval()
        nets = {"nchw": net, "channels_last": to_device(copy.deepcopy(net), "cpu")}
        images = (torch.rand(batch, 3, 32, 32) * 255).to(torch.uint8)
        record(name, "features", race({k: (lambda m=m: m(images)) for k, m in nets.items()}, args.rounds, args.calls),
               batch)
    image = torch.rand(1, 3, 256, 256) * 2 - 1
    dist = CombinedDistance(EffnetDistance(load_effnet_lite0()), PixelPyramidDistance()).eval().requires_grad_(False)
    dists = {"nchw": dist, "channels_last": to_device(copy.deepcopy(dist), "cpu")}
    targets = {k: [f.detach() for f in d.features(image.flip(3))] for k, d in dists.items()}
    steps = {k: (lambda k=k: distance_step(dists[k], image, targets[k])) for k in dists}
    record("effnet-lite0+pixel-pyramid", "projection_distance_step", race(steps, args.rounds, args.calls), 1)
    vgg = VGG16().eval().requires_grad_(False)
    vggs = {"nchw": vgg, "channels_last": to_device(copy.deepcopy(vgg), "cpu")}
    record("vgg16 (LPIPS taps)", "projection_distance_step",
           race({k: (lambda m=m: vgg_step(m, image)) for k, m in vggs.items()}, args.rounds, args.calls), 1)
    print(write_results(args.name, rows, torch.device("cpu")))


if __name__ == "__main__":
    main()
