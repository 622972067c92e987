"""How far our AugmentPipe is from NVIDIA's for the same transform (docs/training_parity.md, "Augmentation").

Each case runs one transform through NVIDIA's pipe (training/augment.py of an NVlabs/stylegan3 checkout, its random
draws replaced by chosen values) and through ours (`AugmentPipe.apply` with the same transform as parameters), on
16 Fashion-MNIST training images padded to 32x32 in [-1, 1], and prints max and mean |difference|, over the whole
image and 4 pixels in from the border. A last row: NVIDIA's 'bgc' pipe at p = 0 against its input (ours returns the
input untouched).

    .venv/bin/python scripts/compare_augment_nvidia.py --nvidia ../shared/gpu/nvidia_stylegan3
"""
from __future__ import annotations

import argparse
import math
import sys
import types
from pathlib import Path

import numpy as np
import torch

from stylegan.training.augment import AugmentParams, AugmentPipe, TRANSFORMS, rotate2d, scale2d, translate2d

IMAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fashion_mnist" / "train_first48.npy"
BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
           brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)


def nvidia_pipe_class(path: Path):
    from packaging.version import Version
    sys.modules.setdefault("pkg_resources", types.SimpleNamespace(parse_version=Version))  # unused by the pipe
    sys.modules.setdefault("requests", types.SimpleNamespace())
    sys.path.insert(0, str(path))
    from torch_utils.ops import grid_sample_gradfix
    from training.augment import AugmentPipe as NvidiaPipe
    grid_sample_gradfix.enabled = True  # as NVIDIA's training loop sets it
    return NvidiaPipe


def run_nvidia(cls, kwargs: dict, draws: list, x: torch.Tensor) -> torch.Tensor:
    """NVIDIA's pipe with p = 1 and only `kwargs` enabled; its torch.rand/randn calls answered from `draws`
    in order (a number fills the requested shape, a tensor is returned as it is)."""
    pipe = cls(**kwargs)
    pipe.p.fill_(1.0)
    queue = list(draws)

    def serve(*size, **_kwargs):
        shape = list(size[0]) if len(size) == 1 and isinstance(size[0], (list, tuple)) else list(size)
        value = queue.pop(0)
        return value if isinstance(value, torch.Tensor) else torch.full(shape, float(value))

    rand, randn = torch.rand, torch.randn
    torch.rand = torch.randn = serve
    try:
        out = pipe(x)
    finally:
        torch.rand, torch.randn = rand, randn
    assert not queue, f"{len(queue)} values unused"
    return out


def run_ours(x: torch.Tensor, fired: str, blit=None, geom=None, color=None) -> torch.Tensor:
    n = x.shape[0]
    eye3 = torch.eye(3).expand(n, 3, 3)
    params = AugmentParams(blit=eye3 if blit is None else blit, geom=eye3 if geom is None else geom,
                           color=torch.eye(4).expand(n, 4, 4) if color is None else color,
                           filter_gains=torch.ones(n, 4), noise_std=torch.zeros(n), cutout_center=torch.zeros(n, 2),
                           cutout_size=0.5, fired={t: torch.full([n], t == fired) for t in TRANSFORMS})
    return AugmentPipe().apply(x, params)


def colour(linear: torch.Tensor, offset: float = 0.0) -> torch.Tensor:
    m = torch.eye(4).repeat(linear.shape[0], 1, 1)
    m[:, :3, :3] = linear
    m[:, :3, 3] = offset
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvidia", required=True, type=Path, help="an NVlabs/stylegan3 checkout")
    args = parser.parse_args()
    nv = nvidia_pipe_class(args.nvidia.resolve())
    x = torch.from_numpy(np.pad(np.load(IMAGES)[:16], [(0, 0), (2, 2), (2, 2)])).float()[:, None] / 127.5 - 1
    n, w = x.shape[0], x.shape[-1]
    full = lambda v: torch.full([n], float(v))  # noqa: E731
    s, theta, shift, b, c = 2 ** 0.2, 0.3, 0.05, 0.2, 2 ** 0.25
    cases = [
        # name, NVIDIA kwargs and draws (value, then gate < p), our transform (NVIDIA's sampling matrix G_inv)
        ("x-flip", dict(xflip=1), [0.75, 0.0], "xflip", dict(blit=scale2d(full(-1), full(1)))),
        ("90-degree rotation", dict(rotate90=1), [0.26, 0.0], "rotate90",  # NVIDIA i = 1 turns the other way
         dict(blit=rotate2d(full(-math.pi / 2 * 3)).round())),
        ("integer translation (3, -2) px", dict(xint=1), [torch.tensor([[(3 / w / 0.125 + 1) / 2,
                                                                         (-2 / w / 0.125 + 1) / 2]] * n),
                                                          torch.zeros(n, 1)],
         "xint", dict(blit=translate2d(full(-3), full(2)))),
        ("isotropic scale x1.149", dict(scale=1), [1.0, 0.0], "scale", dict(geom=scale2d(full(1 / s), full(1 / s)))),
        ("rotation 0.3 rad", dict(rotate=1), [(theta / math.pi + 1) / 2, 0.0, 0.5, 0.0], "rotate",
         dict(geom=rotate2d(full(theta)))),
        ("fractional translation 1.6 px", dict(xfrac=1), [shift / 0.125, 0.0], "xfrac",
         dict(geom=translate2d(full(-shift * w), full(-shift * w)))),
        ("brightness +0.2", dict(brightness=1), [1.0, 0.0], "brightness",
         dict(color=colour(torch.eye(3).expand(n, 3, 3), b))),
        ("contrast x1.19", dict(contrast=1), [0.5, 0.0], "contrast", dict(color=colour(torch.eye(3).expand(n, 3, 3) * c))),
    ]
    print(f"{'transform':34s} {'max':>7s} {'mean':>8s} {'max 4px in':>11s} {'mean 4px in':>12s}")
    for name, kwargs, draws, fired, ours in cases:
        diff = (run_nvidia(nv, kwargs, draws, x) - run_ours(x, fired, **ours)).abs()
        inner = diff[..., 4:-4, 4:-4]
        print(f"{name:34s} {diff.max():7.4f} {diff.mean():8.5f} {inner.max():11.4f} {inner.mean():12.5f}")
    pipe = nv(**BGC)
    pipe.p.fill_(0.0)
    torch.manual_seed(0)
    print(f"NVIDIA's bgc pipe at p = 0 vs its input: max {(pipe(x) - x).abs().max():.2g}")


if __name__ == "__main__":
    main()
