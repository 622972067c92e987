"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator...", section 4.2, eqs. 2-3).

For random latent pairs and t ~ U(0, 1) ('full') or t in {0} ('end'), the images at t and
t + epsilon are compared with a perceptual distance d and

    l = E[ d(G(interp(z1, z2; t)), G(interp(z1, z2; t + eps))) / eps^2 ]

with slerp for Z (normalised Gaussian latents, eq. 2) and lerp for W (eq. 3), eps = 1e-4. As in
StyleGAN2-ADA, samples outside the 1st..99th percentile are rejected before the mean; for faces the
central crop [H/8*3 : H/8*7, W/8*2 : W/8*6] can be taken; images larger than 256 are area-downsampled
to 256 before the distance. Images stay float in [-1, 1] (never rounded to 8 bits, which would erase
the eps-sized differences).

Distances (the `PPL_DISTANCES` registry): `lpips-vgg16` (the paper's, needs the user's VGG16
weights) and the offline `effnet-lite0` and `fmnist` (uniform-weight LPIPS-style distances on those
networks' feature maps: unit-normalise channels, squared difference, mean over channels and
positions, summed over layers). Values from different distances are not comparable; results name
the distance used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from stylegan.errors import UserInputError


def normalize(v: torch.Tensor) -> torch.Tensor:
    """Unit length along the last axis."""
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b (StyleGAN paper eq. 2; Shoemake 1985).

    a: `[N, D]` start latents (normalised internally).
    b: `[N, D]` end latents (normalised internally).
    t: `[N]` or `[N, 1]` interpolation parameters.
    """
    a, b = normalize(a), normalize(b)
    t = t.reshape(-1, 1)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = normalize(b - d * a)
    return normalize(a * torch.cos(p) + c * torch.sin(p))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation a + (b - a) t, broadcasting t over trailing axes (StyleGAN paper eq. 3).

    a: `[N, ...]` start latents.
    b: `[N, ...]` end latents.
    t: `[N]` interpolation parameters.
    """
    t = t.reshape(-1, *([1] * (a.ndim - 1)))
    return a + (b - a) * t


def face_crop(images: torch.Tensor) -> torch.Tensor:
    """Central crop used for FFHQ faces in the StyleGAN PPL code.

    images: `[N, C, H, W]`.
    """
    c = images.shape[2] // 8
    return images[:, :, c * 3:c * 7, c * 2:c * 6]


def downsample_to(images: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Area-downsample by an integer factor when the height exceeds `size`.

    images: `[N, C, H, W]` float.
    size: the largest height kept.
    """
    if images.shape[2] <= size:
        return images
    factor = images.shape[2] // size
    return F.avg_pool2d(images, factor)


def reject_outliers_mean(dist: np.ndarray) -> float:
    """Mean of the values within the 1st..99th percentile (StyleGAN PPL code).

    dist: 1-D array of per-sample path lengths.
    """
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist).mean())


class UniformFeatureDistance(nn.Module):
    """LPIPS-style distance with uniform layer weights on any network's feature maps."""

    def __init__(self, taps: Callable[[torch.Tensor], list], name: str):
        """taps: images -> list of `[N, C, H, W]` feature maps.
        name: label reported with the result.
        """
        super().__init__()
        self.taps = taps
        self.name = name

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: image batches; returns `[N]` distances."""
        from stylegan.metrics.vgg16 import unit_normalize

        total = 0
        for fa, fb in zip(self.taps(a), self.taps(b)):
            total = total + (unit_normalize(fa) - unit_normalize(fb)).square().mean(dim=(1, 2, 3))
        return total


def _effnet_distance(weights):
    from stylegan.metrics.effnet_lite0 import load_effnet_lite0
    net = load_effnet_lite0(weights)
    dist = UniformFeatureDistance(net.spatial_features, "effnet-lite0-uniform")
    dist.net = net
    return dist


def _fmnist_distance(weights):
    from stylegan.metrics.fmnist_net import load_fmnist_net
    net = load_fmnist_net(weights)

    def taps(images):
        x = net.normalized_input(images)
        a = net.block1(x)
        b = net.block2(F.max_pool2d(a, 2))
        return [a, b, net.block3(F.max_pool2d(b, 2))]

    dist = UniformFeatureDistance(taps, "fmnist-uniform")
    dist.net = net
    return dist


def _lpips_distance(weights):
    from stylegan.metrics.vgg16 import load_lpips_vgg16
    return load_lpips_vgg16(weights)


PPL_DISTANCES: dict[str, Callable[[str | None], nn.Module]] = {
    "lpips-vgg16": _lpips_distance,
    "effnet-lite0": _effnet_distance,
    "fmnist": _fmnist_distance,
}


def load_ppl_distance(spec: str | None) -> nn.Module:
    """Build a PPL distance from `NAME` or `NAME:PATH`; None = LPIPS-VGG16 when its weights are found, else effnet-lite0.

    spec: registry name, optionally with ':PATH' to the weights file, or None for the automatic choice.
    """
    if spec is None:
        from stylegan.metrics.inception import default_search_paths
        from stylegan.metrics.vgg16 import VGG16_FILE

        has_vgg = any(p.is_file() for p in default_search_paths(VGG16_FILE))
        return load_ppl_distance("lpips-vgg16" if has_vgg else "effnet-lite0")
    name, _, path = spec.partition(":")
    if name not in PPL_DISTANCES:
        raise UserInputError(f"unknown PPL distance {spec!r}; valid: {', '.join(PPL_DISTANCES)} (optionally NAME:PATH)")
    return PPL_DISTANCES[name](path or None).eval()


@dataclass(frozen=True)
class PPLConfig:
    """Settings of one PPL variant (StyleGAN paper section 4.2; StyleGAN2-ADA metric names)."""

    space: str = "w"          # 'z' (slerp) or 'w' (lerp)
    sampling: str = "end"     # 'end' (t = 0) or 'full' (t ~ U(0, 1))
    epsilon: float = 1e-4     # step along the path
    crop: bool = False        # FFHQ face crop before the distance

    def __post_init__(self):
        if self.space not in ("z", "w"):
            raise UserInputError(f"PPL space must be 'z' or 'w', got {self.space!r}")
        if self.sampling not in ("end", "full"):
            raise UserInputError(f"PPL sampling must be 'end' or 'full', got {self.sampling!r}")


def _labels(G, n: int, gen: torch.Generator, device) -> torch.Tensor:
    c = torch.zeros(n, G.c_dim, device=device)
    if G.c_dim:
        c[torch.arange(n), torch.randint(G.c_dim, (n,), generator=gen).to(device)] = 1
    return c


@torch.no_grad()
def path_length_batch(G, distance: nn.Module, config: PPLConfig, n: int, gen: torch.Generator,
                      device="cpu") -> torch.Tensor:
    """Per-sample path lengths `[n]` for one batch (before outlier rejection).

    G: generator with `z_dim`, `c_dim`, `mapping(z, c)` and `synthesis(ws, noise_mode=...)`.
    distance: module mapping two image batches to `[N]` distances.
    config: the PPL variant.
    n: pairs in this batch.
    gen: CPU torch generator for latents, t and labels.
    device: where G and the distance run.
    """
    t = torch.rand(n, generator=gen) * (1 if config.sampling == "full" else 0)
    z0 = torch.randn(n, G.z_dim, generator=gen)
    z1 = torch.randn(n, G.z_dim, generator=gen)
    c = _labels(G, n, gen, device)
    t, z0, z1 = t.to(device), z0.to(device), z1.to(device)
    if config.space == "w":
        w0, w1 = G.mapping(z0, c), G.mapping(z1, c)
        ws = torch.cat([lerp(w0, w1, t), lerp(w0, w1, t + config.epsilon)])
    else:
        z = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + config.epsilon)])
        ws = G.mapping(z, torch.cat([c, c]))
    images = G.synthesis(ws, noise_mode="const")
    if config.crop:
        images = face_crop(images)
    # Kept as float: rounding to 0..255 would erase the eps-sized differences being measured.
    a, b = downsample_to(images.float()).chunk(2)
    return distance(a, b).double().cpu() / config.epsilon ** 2


def perceptual_path_length(G, distance: nn.Module, config: PPLConfig = PPLConfig(), num_samples: int = 50000,
                           batch_size: int = 8, seed: int = 0, device="cpu") -> float:
    """PPL: mean of per-sample path lengths within the 1st..99th percentile.

    G: generator (see `path_length_batch`).
    distance: perceptual distance module.
    config: the PPL variant.
    num_samples: latent pairs (50,000 in the paper).
    batch_size: pairs per forward pass.
    seed: seed of latents, t and labels; the batch b uses seed (seed, b).
    device: where G and the distance run.
    """
    from stylegan.metrics.distributed import batch_generator, gather_in_order, my_batches

    num_batches = -(-num_samples // batch_size)
    local = {}
    for b in my_batches(num_batches):
        n = min(batch_size, num_samples - b * batch_size)
        local[b] = path_length_batch(G, distance, config, n, batch_generator(seed, b), device).numpy()
    dists = np.concatenate(gather_in_order(local, num_batches))
    return reject_outliers_mean(dists)

