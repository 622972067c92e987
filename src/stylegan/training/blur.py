"""The discriminator blur of StyleGAN3 training (Karras et al. 2021, appendix D; NVIDIA's `StyleGAN2Loss`).

Early in training every image the discriminator sees, real or generated, is blurred with a Gaussian-like filter
whose width fades linearly to zero (StyleGAN3-R: sigma 10 px at the start, gone after batch * 200 / 32 kimg;
StyleGAN3-T and StyleGAN2 use no blur). The blur sits in front of D (and of the augmentation), so R1 differentiates
through it with respect to the unblurred reals.

- `blur_sigma(cur_nimg, init_sigma, fade_kimg)`: sigma = max(1 - cur_nimg / (fade_kimg * 1000), 0) * init_sigma;
- `blur_filter(sigma)`: taps 2^(-(x / sigma)^2) for integer x in [-floor(3 sigma), floor(3 sigma)], summing to 1
  (NVIDIA's exact kernel: base 2, not e^(-x^2 / 2 sigma^2), and floor, not ceil, for the radius);
- `blur_images(img, sigma)`: the separable filter over rows and columns with zero padding, same size out
  (upfirdn2d's filter2d); a radius of 0 (sigma < 1/3) returns the images untouched.
"""
from __future__ import annotations

import math

import torch

from ..ops.misc import assert_shape
from ..ops.upfirdn2d import filter2d


def blur_sigma(cur_nimg: int, init_sigma: float, fade_kimg: float) -> float:
    """Blur sigma (pixels) after `cur_nimg` training images; 0 when there is no fade (`fade_kimg` <= 0)."""
    if fade_kimg <= 0:
        return 0.0
    return max(1 - cur_nimg / (fade_kimg * 1e3), 0) * init_sigma


def blur_radius(sigma: float) -> int:
    """Taps on each side of the centre: floor(3 sigma)."""
    return int(math.floor(sigma * 3)) if sigma > 0 else 0


def blur_filter(sigma: float, device=None) -> torch.Tensor:
    """1-D float32 taps [2 * radius + 1], 2^(-(x / sigma)^2) normalised to sum 1; None-like [1] at radius 0."""
    radius = blur_radius(sigma)
    if radius == 0:
        return torch.ones([1], device=device)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device).div(sigma).square().neg().exp2()
    return taps / taps.sum()


def blur_images(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """img [N, C, H, W] blurred with `blur_filter(sigma)` along both axes; the same tensor when radius is 0."""
    if blur_radius(sigma) == 0:
        return img
    assert_shape(img, [None, None, None, None], "img")
    return filter2d(img, blur_filter(sigma, device=img.device).to(img.dtype))
