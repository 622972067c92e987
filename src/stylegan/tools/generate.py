"""Generate images from seeds, the way NVIDIA's gen_images.py does, so the same seed gives the same image,
or render given latents ws (e.g. from `stylegan project`).

z for seed s is `np.random.RandomState(s).randn(1, z_dim)`.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from ..io.images import make_grid, save_image, to_uint8

MAX_SEED = 2 ** 32 - 1


def progress_bar(iterable: Iterable, total: Optional[int] = None, desc: Optional[str] = None,
                 enabled: bool = True) -> Iterable:
    """Wrap `iterable` in a tqdm bar on stderr when `enabled` (else return it unchanged).

    iterable: what to iterate over.
    total:    number of items, when `iterable` has no len().
    desc:     label shown left of the bar.
    enabled:  False returns `iterable` itself.
    """
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


def check_batch_size(batch_size: int) -> None:
    """Raise UserInputError unless `batch_size` >= 1."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserInputError(f"batch size must be a whole number >= 1, got {batch_size!r}")


def check_truncation_cutoff(G: nn.Module, truncation_cutoff: Optional[int]) -> None:
    """Raise UserInputError unless `truncation_cutoff` is None or in 0..G.num_ws."""
    if truncation_cutoff is not None and not 0 <= truncation_cutoff <= G.num_ws:
        raise UserInputError(f"truncation cutoff {truncation_cutoff} is out of range: this network has "
                             f"{G.num_ws} ws, so use 0..{G.num_ws}")


def seed_ws(G: nn.Module, seeds: Sequence[int], truncation_psi: float = 1.0,
            truncation_cutoff: Optional[int] = None, class_idx: Optional[int] = None) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] of the seeds' z (NVIDIA's convention) through G.mapping with truncation.

    G:                 the generator.
    seeds:             seeds, each giving z = RandomState(seed).randn(1, z_dim).
    truncation_psi:    truncation psi (StyleGAN appendix B; 1 = none).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    class_idx:         class of conditional networks (None for unconditional ones).
    """
    check_truncation_cutoff(G, truncation_cutoff)
    device = next(G.parameters()).device
    z = torch.cat([seed_to_z(s, G.z_dim) for s in seeds]).to(device)
    c = class_labels(G, class_idx, len(seeds)).to(device)
    with torch.no_grad():
        return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


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
                    noise_mode: str = "const", batch_size: int = 8, progress: bool = False) -> np.ndarray:
    """Images for `seeds` as uint8 [N, H, W, C].

    G:                 the generator.
    seeds:             seeds (z = RandomState(seed).randn(1, z_dim), as NVIDIA's gen_images.py).
    truncation_psi:    truncation psi (1 = none).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    class_idx:         class of conditional networks.
    noise_mode:        'const', 'random' or 'none'.
    batch_size:        images per forward pass.
    progress:          show a progress bar on stderr.
    """
    seeds = list(seeds)
    check_batch_size(batch_size)
    check_truncation_cutoff(G, truncation_cutoff)
    class_labels(G, class_idx, 0)  # validate before any work
    device = next(G.parameters()).device
    out = []
    starts = range(0, len(seeds), batch_size)
    for start in progress_bar(starts, desc="generate", enabled=progress and len(starts) > 1):
        chunk = seeds[start:start + batch_size]
        z = torch.cat([seed_to_z(s, G.z_dim) for s in chunk]).to(device)
        c = class_labels(G, class_idx, len(chunk)).to(device)
        img = G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
        out.append(to_uint8(img))
    return np.concatenate(out)


def check_ws(G: nn.Module, ws: torch.Tensor) -> torch.Tensor:
    """Return `ws` as float32 on G's device after checking it is [N, G.num_ws, G.w_dim]."""
    ws = torch.as_tensor(ws)
    if ws.ndim != 3 or ws.shape[0] < 1 or ws.shape[1] != G.num_ws or ws.shape[2] != G.w_dim:
        raise UserInputError(f"ws have shape {list(ws.shape)}, but this network takes [N, {G.num_ws}, {G.w_dim}] "
                             f"(num_ws={G.num_ws}, w_dim={G.w_dim})")
    return ws.to(device=next(G.parameters()).device, dtype=torch.float32)


@torch.no_grad()
def render_ws(G: nn.Module, ws: torch.Tensor, noise_mode: str = "const", batch_size: int = 8,
              progress: bool = False) -> np.ndarray:
    """Images of given latents ws [N, num_ws, w_dim] (no mapping, no truncation) as uint8 [N, H, W, C].

    G:          the generator.
    ws:         latents, e.g. from `load_ws` (the format `stylegan project` writes).
    noise_mode: 'const', 'random' or 'none'.
    batch_size: images per forward pass.
    progress:   show a progress bar on stderr.
    """
    check_batch_size(batch_size)
    ws = check_ws(G, ws)
    out = []
    starts = range(0, ws.shape[0], batch_size)
    for start in progress_bar(starts, desc="render", enabled=progress and len(starts) > 1):
        out.append(to_uint8(G.synthesis(ws[start:start + batch_size], noise_mode=noise_mode)))
    return np.concatenate(out)


def write_images(images: np.ndarray, seeds: List[int], outdir: Union[str, os.PathLike], grid: bool = False,
                 grid_cols: Optional[int] = None, prefix: str = "seed") -> List[Path]:
    """<prefix>NNNN.png per image (and grid.png when asked); returns the paths written.

    images:    uint8 [N, H, W, C].
    seeds:     the number in each file name (seeds, or indices for rendered ws).
    outdir:    the folder to write into (created if missing).
    grid:      also write grid.png with all images.
    grid_cols: columns of grid.png (default: as square as possible).
    prefix:    file name prefix.
    """
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise UserInputError(f"{outdir} exists and is not a folder; give a folder for the images")
    if grid_cols is not None and grid_cols < 1:
        raise UserInputError(f"grid columns must be >= 1, got {grid_cols}")
    paths = []
    for seed, img in zip(seeds, images):
        path = outdir / f"{prefix}{seed:04d}.png"
        save_image(img, path)
        paths.append(path)
    if grid:
        path = outdir / "grid.png"
        save_image(make_grid(images, cols=grid_cols), path)
        paths.append(path)
    return paths
