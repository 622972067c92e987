"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, "Progressive
Growing of GANs", section 5 and appendix D; settings of its `sliced-wasserstein-16k-128-512` run).

Exact settings (the defaults below):

* pyramid: Gaussian filter [1, 4, 6, 4, 1]^2 / 256 with mirror ('reflect') borders; a level is
  `image - up(down(image))`, the last level is the 16x16 Gaussian level itself, so a 256x256
  dataset has levels 256, 128, 64, 32, 16; `up` inserts zeros and filters with 4x the kernel;
* descriptors: 128 random 7x7 neighbourhoods per image per level (fully inside the image), all
  channels, from 0..255 pixel values;
* normalisation: each descriptor set (real and fake separately) minus its per-channel mean, divided
  by its per-channel standard deviation (over descriptors and the 7x7 positions);
* distance: 4 repeats x 128 random unit directions (512 projections in all); per direction the
  sorted projections of the two sets are compared with the mean absolute difference; the mean over
  directions and repeats, times 1e3, is the level's SWD; `swd_mean` averages the levels;
* 16384 images per set in the paper (equal counts are required).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.errors import UserInputError

_GAUSS_1D = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Separable 5x5 Gaussian filter with reflect borders on `[N, C, H, W]` float images."""
    c = x.shape[1]
    k = (_GAUSS_1D.to(x) * gain ** 0.5)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).repeat(c, 1, 1, 1), groups=c)


def pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """Blur and keep every second pixel (ProGAN appendix D).

    x: `[N, C, H, W]` float images with even H, W.
    """
    return _blur(x)[:, :, ::2, ::2]


def pyramid_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels and blur with 4x gain, doubling the resolution.

    x: `[N, C, H, W]` float images.
    """
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x
    return _blur(up, gain=4.0)


def laplacian_pyramid(x: torch.Tensor, min_resolution: int = 16) -> list[torch.Tensor]:
    """Laplacian levels from full resolution down to `min_resolution`; the last is the Gaussian level.

    x: `[N, C, H, W]` float images (square; halved while above min_resolution and even).
    min_resolution: resolution of the coarsest level.
    """
    levels = [x]
    while levels[-1].shape[2] > min_resolution and levels[-1].shape[2] % 2 == 0:
        levels.append(pyramid_down(levels[-1]))
        levels[-2] = levels[-2] - pyramid_up(levels[-1])
    return levels


def random_patches(x: torch.Tensor, per_image: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """`per_image` random `size`x`size` neighbourhoods per image, fully inside it.

    x: `[N, C, H, W]` images.
    per_image: patches per image.
    size: patch side (odd).
    rng: numpy random generator (positions).
    """
    n, c, h, w = x.shape
    if h < size or w < size:
        raise UserInputError(f"SWD needs images of at least {size}x{size} pixels, got {h}x{w}")
    ys = torch.from_numpy(rng.integers(0, h - size + 1, size=(n, per_image)))
    xs = torch.from_numpy(rng.integers(0, w - size + 1, size=(n, per_image)))
    offsets = torch.arange(size)
    rows = (ys[..., None] + offsets)[..., :, None]            # [N, P, size, 1]
    cols = (xs[..., None] + offsets)[..., None, :]            # [N, P, 1, size]
    img = torch.arange(n)[:, None, None, None]
    patches = x.permute(0, 2, 3, 1)[img, rows, cols]          # [N, P, size, size, C]
    return patches.permute(0, 1, 4, 2, 3).reshape(n * per_image, c, size, size)


def pyramid_descriptors(images: torch.Tensor, rng: np.random.Generator, per_image: int = 128,
                        size: int = 7, min_resolution: int = 16) -> list[torch.Tensor]:
    """Raw (unnormalised) descriptors `[N * per_image, C, size, size]` for each pyramid level.

    images: uint8 `[N, C, H, W]` (float images in [-1, 1] are mapped to 0..255 first).
    rng: numpy random generator (patch positions).
    per_image: neighbourhoods per image per level (ProGAN: 128).
    size: neighbourhood side (ProGAN: 7).
    min_resolution: coarsest level (ProGAN: 16).
    """
    x = images.to(torch.float32) if images.dtype == torch.uint8 else (images.float() + 1) * 127.5
    return [random_patches(level, per_image, size, rng) for level in laplacian_pyramid(x, min_resolution)]


def normalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over descriptors and positions, then flatten to `[N, C*size*size]`.

    desc: `[N, C, size, size]` raw descriptors of one set.
    """
    desc = desc.double()
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-12)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, rng: np.random.Generator,
                       dir_repeats: int = 4, dirs_per_repeat: int = 128) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance between projections.

    a: `[N, D]` normalised descriptors of one set.
    b: `[N, D]` normalised descriptors of the other set (same N).
    rng: numpy random generator (directions).
    dir_repeats: number of direction batches.
    dirs_per_repeat: directions per batch.
    """
    if a.shape != b.shape:
        raise UserInputError(f"SWD needs equally many descriptors in both sets, got {tuple(a.shape)} and {tuple(b.shape)}")
    results = []
    for _ in range(dir_repeats):
        dirs = torch.from_numpy(rng.standard_normal((a.shape[1], dirs_per_repeat)))
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        proj_a = (dirs.T @ a.T).sort(dim=1).values  # [directions, N], sorted along samples
        proj_b = (dirs.T @ b.T).sort(dim=1).values
        results.append(float((proj_a - proj_b).abs().mean()))
    return float(np.mean(results))


def swd_from_descriptors(real: list[torch.Tensor], fake: list[torch.Tensor], seed: int = 0,
                         dir_repeats: int = 4, dirs_per_repeat: int = 128) -> dict:
    """SWD x 1e3 per pyramid level and their mean, from raw descriptor lists.

    real: per-level raw descriptors of the real images (from `pyramid_descriptors`, concatenated).
    fake: the same for the generated images.
    seed: seed of the projection directions.
    dir_repeats: number of direction batches (ProGAN: 4).
    dirs_per_repeat: directions per batch (ProGAN: 128).
    """
    if len(real) != len(fake):
        raise UserInputError(f"real and generated images give {len(real)} and {len(fake)} pyramid levels; "
                             "SWD needs images of the same resolution")
    rng = np.random.default_rng(seed)
    out = {}
    for level, (r, f) in enumerate(zip(real, fake)):
        dist = sliced_wasserstein(normalize_descriptors(r), normalize_descriptors(f), rng,
                                  dir_repeats, dirs_per_repeat)
        out[f"swd_level{level}"] = dist * 1e3
    out["swd_mean"] = float(np.mean([out[f"swd_level{i}"] for i in range(len(real))]))
    return out


def sliced_wasserstein_distance(real_images: torch.Tensor, fake_images: torch.Tensor, seed: int = 0) -> dict:
    """SWD between two equally sized in-memory image sets (keys swd_level{i} from fine to coarse, swd_mean).

    real_images: uint8 `[N, C, H, W]`.
    fake_images: uint8 `[N, C, H, W]` (same shape).
    seed: seed for patch positions and directions.
    """
    if real_images.shape[1:] != fake_images.shape[1:]:
        raise UserInputError(f"SWD needs real and generated images of equal shape, got "
                             f"{tuple(real_images.shape[1:])} and {tuple(fake_images.shape[1:])}")
    rng = np.random.default_rng(seed)
    real = pyramid_descriptors(real_images, rng)
    fake = pyramid_descriptors(fake_images, rng)
    return swd_from_descriptors(real, fake, seed=seed + 1)
