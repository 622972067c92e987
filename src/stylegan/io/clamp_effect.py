"""What dropping `conv_clamp` changes, measured: for writing layouts that never clamp (rosinality's).

NVIDIA's PyTorch trainings (stylegan2-ada-pytorch, stylegan3) and the ADA TensorFlow one clamp every
convolution output to +-256 (`conv_clamp=256`) to keep float16 in range; where no activation reaches the
clamp, a copy without it computes the same function. Whether that holds is measured here, not assumed: a
network and its clamp-free copy run the same inputs and the largest difference decides.

- Generators: the images of seeds 0..n-1 (z = RandomState(seed).randn(z_dim), NVIDIA's gen_images
  convention), without truncation, with the stored noise (noise_mode='const'), in float32. The difference
  is negligible when max |Δ| <= IMAGE_TOLERANCE = 1/255, half an 8-bit level of the [-1, 1] image range:
  images saved as 8-bit then differ by at most one level, in the pixels where rounding falls differently.
- Discriminators: their scores of those seeds' images (by the clamped generator G_ema). Negligible when
  max |Δ| <= SCORE_TOLERANCE * max(1, max |score|).

How many seeds: up to 4096 for small networks, fewer for big ones: default_num_seeds(G) keeps the work
near MAC_BUDGET multiply-adds per network (8..4096 seeds; measured on 2 busy CPU cores: 9 s per generator
for a 64x64 ADA network at 546 seeds, 16 s for a 256x256 paper256-size one at 8). A measurement stops at the
first batch whose difference already exceeds the tolerance: the network is not negligible then, and the
reported max |Δ| is a lower bound (`stopped_early`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import torch
from torch import nn

IMAGE_TOLERANCE = 1 / 255  # half an 8-bit level of the [-1, 1] image range
SCORE_TOLERANCE = 1e-3  # relative to max(1, max |score|)
MAX_SEEDS = 4096
MIN_SEEDS = 8
MAC_BUDGET = 4e10  # multiply-adds of one network's measurement (per image: synthesis_macs)
BATCH_PIXELS = 2 ** 19  # images per batch: this many output pixels (64 at most)


@dataclass(frozen=True)
class ClampEffect:
    """What removing the clamp changes in one network.

    role:          the network's role ('G_ema', 'G', 'D').
    conv_clamp:    its clamp.
    output:        'images' (generators) or 'scores' (discriminators).
    num_seeds:     seeds 0..num_seeds-1 were measured.
    max_abs_diff:  max |clamped - clamp-free| over them.
    worst_seed:    the seed where it is largest.
    tolerance:     negligible up to this.
    stopped_early: the measurement stopped once above the tolerance (max_abs_diff is then a lower bound).
    """

    role: str
    conv_clamp: Optional[float]
    output: str
    num_seeds: int
    max_abs_diff: float
    worst_seed: int
    tolerance: float
    stopped_early: bool = False

    @property
    def negligible(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def __str__(self) -> str:
        bound = ">= " if self.stopped_early else ""
        verdict = "negligible" if self.negligible else "not negligible"
        clamp = "None" if self.conv_clamp is None else f"{self.conv_clamp:g}"
        return (f"{self.role} without conv_clamp={clamp}: its {self.output} of seeds "
                f"0-{self.num_seeds - 1} change by max |Δ| {bound}{self.max_abs_diff:.3g} (seed {self.worst_seed}), "
                f"{verdict} (<= {self.tolerance:.3g})")


def conv_clamp_of(module: nn.Module) -> Optional[float]:
    """The tightest conv_clamp any layer of `module` applies, or None."""
    clamps = [m.conv_clamp for m in module.modules() if getattr(m, "conv_clamp", None) is not None]
    return min(clamps) if clamps else None


def synthesis_macs(G: nn.Module) -> int:
    """Multiply-adds of one image, counting the convolutions of each synthesis block `b{res}` at res x res."""
    total = 0
    for name, param in G.synthesis.named_parameters():
        found = re.match(r"b(\d+)\.", name)
        if found and param.ndim == 4:
            total += param.numel() * int(found.group(1)) ** 2
    return total


def default_num_seeds(G: nn.Module) -> int:
    """MAC_BUDGET / (one image's multiply-adds), within MIN_SEEDS..MAX_SEEDS."""
    return int(min(MAX_SEEDS, max(MIN_SEEDS, MAC_BUDGET // max(synthesis_macs(G), 1))))


def seed_latents(seeds: range, z_dim: int) -> torch.Tensor:
    """z [len(seeds), z_dim] as NVIDIA's gen_images.py draws them: RandomState(seed).randn(z_dim)."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()


def _batches(G: nn.Module, num_seeds: int):
    size = max(1, min(64, BATCH_PIXELS // G.img_resolution ** 2))
    return (range(start, min(start + size, num_seeds)) for start in range(0, num_seeds, size))


class _Worst:
    """Running max |Δ| and its seed."""

    def __init__(self):
        self.diff, self.seed, self.scale = 0.0, 0, 0.0

    def update(self, seeds: range, a: torch.Tensor, b: torch.Tensor) -> None:
        per_seed = (a - b).abs().flatten(1).amax(dim=1)
        i = int(per_seed.argmax())
        if float(per_seed[i]) > self.diff or not math.isfinite(float(per_seed[i])):
            self.diff, self.seed = float(per_seed[i]), seeds[i]
        self.scale = max(self.scale, float(a.abs().max()))


def _images(G: nn.Module, seeds: range) -> torch.Tensor:
    z = seed_latents(seeds, G.z_dim).to(next(G.parameters()).device)
    return G(z, None, noise_mode="const", force_fp32=True)


def _measure(role: str, clamp: Optional[float], output: str, G: nn.Module, num_seeds: int,
             pair: Callable[[range], Tuple[torch.Tensor, torch.Tensor]],
             tolerance: Callable[[float], float]) -> ClampEffect:
    """max |clamped - clamp-free| of pair(seeds) over batches of seeds, stopping once above tolerance(max |clamped|)."""
    worst = _Worst()
    for seeds in _batches(G, num_seeds):
        worst.update(seeds, *pair(seeds))
        if worst.diff > tolerance(worst.scale):
            return ClampEffect(role, clamp, output, seeds.stop, worst.diff, worst.seed, tolerance(worst.scale),
                               stopped_early=seeds.stop < num_seeds)
    return ClampEffect(role, clamp, output, num_seeds, worst.diff, worst.seed, tolerance(worst.scale))


@torch.no_grad()
def generator_effect(role: str, G: nn.Module, free: nn.Module, num_seeds: int) -> ClampEffect:
    """Images of `G` against those of its clamp-free copy `free` (unconditional generators)."""
    def pair(seeds: range) -> Tuple[torch.Tensor, torch.Tensor]:
        return _images(G, seeds), _images(free, seeds)

    return _measure(role, conv_clamp_of(G), "images", G, num_seeds, pair, lambda scale: IMAGE_TOLERANCE)


@torch.no_grad()
def discriminator_effect(role: str, D: nn.Module, free: nn.Module, G: nn.Module, num_seeds: int) -> ClampEffect:
    """Scores of `D` against those of its clamp-free copy `free`, on the images `G` makes of the seeds."""
    def pair(seeds: range) -> Tuple[torch.Tensor, torch.Tensor]:
        img = _images(G, seeds)
        return D(img, None, force_fp32=True), free(img, None, force_fp32=True)

    return _measure(role, conv_clamp_of(D), "scores", G, num_seeds, pair,
                    lambda scale: SCORE_TOLERANCE * max(1.0, scale))
