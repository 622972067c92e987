"""Generate images from seeds, the way NVIDIA's gen_images.py does, so the same seed gives the same image.

z for seed s is `np.random.RandomState(s).randn(1, z_dim)`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, List, Optional, Union

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from .images import make_grid, save_image, to_uint8

MAX_SEED = 2 ** 32 - 1


def parse_range_list(text: str, what: str = "seeds", max_value: int = MAX_SEED) -> List[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]; ranges are inclusive and must ascend."""
    values: List[int] = []
    if not text or not text.strip():
        raise UserInputError(f"no {what} given; use a list like 0-7 or 1,5,9")
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserInputError(f"cannot read {what} {part!r}: use numbers and ascending ranges like 0-7,12")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UserInputError(f"{what} range {part!r} runs backwards; write {hi}-{lo}")
        if hi > max_value:
            raise UserInputError(f"{what} {hi} is out of range (0..{max_value})")
        values.extend(range(lo, hi + 1))
    return values


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """The latent NVIDIA's tools use for `seed`: [1, z_dim] float32."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).float()


def class_labels(G: nn.Module, class_idx: Optional[int], count: int) -> torch.Tensor:
    """One-hot labels [count, c_dim] (empty for unconditional G), validating `class_idx`."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise UserInputError("--class was given, but this network is unconditional (c_dim=0)")
        return torch.zeros([count, 0])
    if class_idx is None:
        raise UserInputError(f"this network is conditional ({G.c_dim} classes): give --class 0..{G.c_dim - 1}")
    if not 0 <= class_idx < G.c_dim:
        raise UserInputError(f"class {class_idx} is out of range: this network has classes 0..{G.c_dim - 1}")
    c = torch.zeros([count, G.c_dim])
    c[:, class_idx] = 1
    return c


@torch.no_grad()
def generate_images(G: nn.Module, seeds: Iterable[int], truncation_psi: float = 1.0,
                    truncation_cutoff: Optional[int] = None, class_idx: Optional[int] = None,
                    noise_mode: str = "const", batch_size: int = 8) -> np.ndarray:
    """Images for `seeds` as uint8 [N, H, W, C]."""
    seeds = list(seeds)
    device = next(G.parameters()).device
    out = []
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        z = torch.cat([seed_to_z(s, G.z_dim) for s in chunk]).to(device)
        c = class_labels(G, class_idx, len(chunk)).to(device)
        img = G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
        out.append(to_uint8(img))
    return np.concatenate(out)


def write_images(images: np.ndarray, seeds: List[int], outdir: Union[str, os.PathLike], grid: bool = False) -> List[Path]:
    """seedNNNN.png per image (and grid.png when asked); returns the paths written."""
    outdir = Path(outdir)
    paths = []
    for seed, img in zip(seeds, images):
        path = outdir / f"seed{seed:04d}.png"
        save_image(img, path)
        paths.append(path)
    if grid:
        path = outdir / "grid.png"
        save_image(make_grid(images), path)
        paths.append(path)
    return paths
