"""How far our AugmentPipe is from NVIDIA's for the same draws, per impl (docs/training_parity.md, "Augmentation").

Each case runs one transform (or a preset) through NVIDIA's pipe (training/augment.py of an NVlabs/stylegan3
checkout) and through ours, impl='nvidia' and impl='exact', with the same random draws: both pipes draw the same
values in the same order (per transform the value, then the gate), so each case answers their torch.rand/randn
calls from one list of chosen values, or seeds both alike. Images: 16 Fashion-MNIST training images padded to 32x32
in [-1, 1] (1 channel), and the same tinted to RGB for the colour cases. Printed: max and mean |difference| over
the whole image and 4 pixels in from the border. The last rows: the pipes at p = 0 (NVIDIA resamples every image
once a geometric transform is enabled; ours passes them through).

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

from stylegan.training.augment import AUGMENT_IMPLS, AUGPIPE_PRESETS, AugmentPipe

IMAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fashion_mnist" / "train_first48.npy"


def nvidia_pipe_class(path: Path):
    from packaging.version import Version
    sys.modules.setdefault("pkg_resources", types.SimpleNamespace(parse_version=Version))  # unused by the pipe
    sys.modules.setdefault("requests", types.SimpleNamespace())
    sys.path.insert(0, str(path))
    from torch_utils.ops import grid_sample_gradfix
    from training.augment import AugmentPipe as NvidiaPipe
    grid_sample_gradfix.enabled = True  # as NVIDIA's training loop sets it
    return NvidiaPipe


def run_with_draws(pipe: torch.nn.Module, p: float, draws, x: torch.Tensor) -> torch.Tensor:
    """pipe(x) at probability p; its torch.rand/randn calls answered from `draws` in order (a number fills the
    requested shape, a tensor is returned as it is), or from the global RNG seeded with `draws` if it is an int."""
    pipe.p.fill_(p)
    if isinstance(draws, int):
        torch.manual_seed(draws)
        return pipe(x)
    queue = list(draws)

    def serve(*size, **_kwargs):
        shape = list(size[0]) if len(size) == 1 and isinstance(size[0], (list, tuple, torch.Size)) else list(size)
        value = queue.pop(0)
        return value.reshape(shape) if isinstance(value, torch.Tensor) else torch.full(shape, float(value))

    rand, randn = torch.rand, torch.randn
    torch.rand = torch.randn = serve
    try:
        out = pipe(x)
    finally:
        torch.rand, torch.randn = rand, randn
    assert not queue, f"{len(queue)} values unused"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvidia", required=True, type=Path, help="an NVlabs/stylegan3 checkout")
    args = parser.parse_args()
    nv = nvidia_pipe_class(args.nvidia.resolve())
    gray = torch.from_numpy(np.pad(np.load(IMAGES)[:16], [(0, 0), (2, 2), (2, 2)])).float()[:, None] / 127.5 - 1
    rgb = torch.cat([gray, gray * 0.8 + 0.1, gray * 0.5 - 0.3], dim=1).clamp(-1, 1)
    n, w = gray.shape[0], gray.shape[-1]
    s, theta, shift, b = 0.2, 0.3, 0.05, 0.2
    xint = torch.tensor([[(3 / w / 0.125 + 1) / 2, (-2 / w / 0.125 + 1) / 2]] * n)
    cases = [
        # name, kwargs, images, p, draws (per transform: value, then gate < p) or a seed
        ("x-flip", dict(xflip=1), gray, 1, [0.75, 0.0]),
        ("90-degree rotation", dict(rotate90=1), gray, 1, [0.26, 0.0]),
        ("integer translation (3, -2) px", dict(xint=1), gray, 1, [xint, torch.zeros(n, 1)]),
        ("isotropic scale x1.149", dict(scale=1), gray, 1, [1.0, 0.0]),
        ("isotropic scale x0.35 (past the padding)", dict(scale=1), gray, 1, [math.log2(0.35) / s, 0.0]),
        ("rotation 0.3 rad", dict(rotate=1), gray, 1, [(theta / math.pi + 1) / 2, 0.0, 0.5, 0.0]),
        ("fractional translation 1.6 px", dict(xfrac=1), gray, 1, [shift / 0.125, 0.0]),
        ("brightness +0.2, contrast x1.19", dict(brightness=1, contrast=1), gray, 1, [b / 0.2, 0.0, 0.5, 0.0]),
        ("hue 0.5 rad, saturation x0.7 (RGB)", dict(hue=1, saturation=1), rgb, 1,
         [(0.5 / math.pi + 1) / 2, 0.0, math.log2(0.7), 0.0]),
        ("image filter, band 3 x2 (RGB)", dict(imgfilter=1), rgb, 1, [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]),
        ("bgc at p = 0.3, seed 1 (gray)", AUGPIPE_PRESETS["bgc"], gray, 0.3, 1),
        ("bgc at p = 0.6, seed 2 (RGB)", AUGPIPE_PRESETS["bgc"], rgb, 0.6, 2),
        ("bgcfnc at p = 0.6, seed 3 (RGB)", AUGPIPE_PRESETS["bgcfnc"], rgb, 0.6, 3),
        ("bgc at p = 0 (gray)", AUGPIPE_PRESETS["bgc"], gray, 0.0, 4),
        ("bgcf at p = 0 (RGB)", AUGPIPE_PRESETS["bgcf"], rgb, 0.0, 5),
    ]
    print(f"{'transform':42s} {'impl':7s} {'max':>8s} {'mean':>9s} {'max 4px in':>11s} {'mean 4px in':>12s}")
    for name, kwargs, x, p, draws in cases:
        reference = run_with_draws(nv(**kwargs), p, draws, x)
        for impl in AUGMENT_IMPLS:
            diff = (reference - run_with_draws(AugmentPipe(**kwargs, impl=impl), p, draws, x)).abs()
            inner = diff[..., 4:-4, 4:-4]
            print(f"{name:42s} {impl:7s} {diff.max():8.2g} {diff.mean():9.2g} {inner.max():11.2g} {inner.mean():12.2g}")


if __name__ == "__main__":
    main()
