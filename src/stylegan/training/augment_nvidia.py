"""NVIDIA's resampling in the ADA pipe (`AugmentPipe(impl='nvidia')`): its wavelet filters, its padding, its warp.

NVIDIA's `training/augment.py` executes the blits (x-flip, 90-degree rotations, integer shifts) and the general
geometric transforms as one warp: the sampling matrix of both stages, composed, maps each output pixel to the
input. The warp pads the batch by reflection (the edge pixel not repeated) as far as the transformed image corners
reach plus 6 pixels (at most size - 1), upsamples 2x with the Symlet-6 low-pass filter, samples bilinearly at
twice the output resolution (zeros outside the padded image), and downsamples 2x with the same filter reversed.
The image filter splits the spectrum into 4 bands with filters built from the Symlet-2 low-pass filter, padded by
reflection as well. Here the same, written for this project:

  * `SYM6`, `SYM2`: the Symlet low-pass (reconstruction) filters of Daubechies' "Ten Lectures on Wavelets"
    (1992), as published (PyWavelets' `rec_lo`); sym2 is Daubechies' 4-tap filter, in closed form.
  * `band_lowpass()`: the half-band filter of the image-filter bank, H(z) H(1/z) / 2 for sym2. It is the 4-point
    Deslauriers-Dubuc filter [-1, 0, 9, 16, 9, 0, -1] / 32, so NVIDIA's bank is `augment_filters.filter_bank()`
    (tests/training/test_augment_nvidia.py); only the border extension differs.
  * the reflection without edge repetition (`F.pad(mode='reflect')`): `augment_filters.reflect`.
  * `warp_margin`, `warp`: the padding of a batch and the warp of some of its samples.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch

from ..ops.upfirdn2d import downsample2d, setup_filter, upsample2d
from .augment_filters import dense_matrix, reflect
from .augment_ops import FilterMatrices, bilinear_sample, pad_borders, separable

# Symlet-6 low-pass filter (12 taps), as published (PyWavelets `pywt.Wavelet('sym6').rec_lo`).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

# Symlet-2 = Daubechies-2 low-pass filter: ((1 - s3), (3 - s3), (3 + s3), (1 + s3)) / (4 sqrt 2), s3 = sqrt 3.
_S3 = math.sqrt(3)
SYM2 = tuple(v / (4 * math.sqrt(2)) for v in (1 - _S3, 3 - _S3, 3 + _S3, 1 + _S3))

# The warp pads this many pixels beyond the transformed corners (twice the sym6 filter's quarter length).
WARP_REACH = 2 * (len(SYM6) // 4)


def geom_filter() -> torch.Tensor:
    """The warp's up/downsampling filter: sym6 normalised to unit sum, [12] float32 (upfirdn2d's separable form)."""
    return setup_filter(list(SYM6))


def band_lowpass(h=SYM2) -> np.ndarray:
    """H(z) H(1/z) / 2 of an orthogonal low-pass filter h: the zero-phase half-band filter of the image-filter
    bank (its complement, H(-z) H(-1/z) / 2, is 1 minus it because h is orthogonal)."""
    h = np.asarray(h, dtype=np.float64)
    return np.convolve(h, h[::-1]) / 2


def warp_margin(matrices: torch.Tensor, height: int, width: int) -> Tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the reflection padding NVIDIA's warp gives a batch with sampling matrices [N, 3, 3]:
    how far any sample's transformed image corners reach beyond the image, plus `WARP_REACH` pixels, between 0 and
    size - 1, rounded up. Computed for the whole batch (as NVIDIA does, in float32), so a sample warped alone or
    with others gets the padding it gets in NVIDIA's batch."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], dtype=torch.float32,
                           device=matrices.device)
    reach = (matrices.float() @ corners)[:, :2, :].transpose(0, 1).flatten(1)  # [xy, N * corners]
    margin = torch.cat([-reach, reach]).amax(dim=1)  # [x0, y0, x1, y1]
    margin = margin + torch.tensor([WARP_REACH - cx, WARP_REACH - cy] * 2, device=margin.device)
    margin = margin.clamp(min=0).minimum(torch.tensor([width - 1, height - 1] * 2, dtype=torch.float32,
                                                      device=margin.device))
    return tuple(int(m) for m in margin.ceil().tolist())


def sampling_grid(matrices: torch.Tensor, height: int, width: int, margin: Tuple[int, int, int, int],
                  dtype: torch.dtype) -> torch.Tensor:
    """[N, 2(H + R), 2(W + R), 2] grid_sample positions (R = WARP_REACH; -1, 1: the outer edges of the padded,
    upsampled image) of NVIDIA's warp: an output grid at twice the resolution reaching R/2 pixels beyond the image,
    each point q (centred 2x pixels) taken as the original point (q + 1/2) / 2, mapped by the sampling matrix,
    moved to the padded image's centre and to its upsampled pixels (u -> 2u - 1/2; the sym6 pair's alignment).
    Computed in float64."""
    x0, y0, x1, y1 = margin
    out_h, out_w = 2 * (height + WARP_REACH), 2 * (width + WARP_REACH)
    in_h, in_w = 2 * (height + y0 + y1), 2 * (width + x0 + x1)
    f64 = dict(dtype=torch.float64, device=matrices.device)
    qx = torch.arange(out_w, **f64) + 0.5 - out_w / 2
    qy = torch.arange(out_h, **f64) + 0.5 - out_h / 2
    gy, gx = torch.meshgrid((qy + 0.5) / 2, (qx + 0.5) / 2, indexing="ij")
    points = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)  # [out_h, out_w, 3], original pixels
    src = points @ matrices.double()[:, :2, :].transpose(1, 2)[:, None]  # [N, out_h, out_w, 2]
    src = src + torch.tensor([(x0 - x1) / 2, (y0 - y1) / 2], **f64)
    src = (2 * src - 0.5) * torch.tensor([2 / in_w, 2 / in_h], **f64)
    return src.to(dtype)


def upsample_matrix(size: int, before: int, after: int, f: torch.Tensor) -> torch.Tensor:
    """[2 (size + before + after), size]: along one axis, the signal extended by `reflect` (before/after samples),
    then `upsample2d(., f, up=2)` (zeros inserted, zeros beyond the extension, correlation with f reversed, gain 2):
    output o reads the zero-inserted signal at o + k - (K + 1) // 2 with 2 f[K - 1 - k]."""
    taps, length = f.numel(), size + before + after
    k = torch.arange(taps, device=f.device)
    o = torch.arange(2 * length, device=f.device)[:, None]
    m = o + k - (taps + 1) // 2
    inside = (m % 2 == 0) & (m >= 0) & (m < 2 * length)
    cols = reflect(torch.div(m, 2, rounding_mode="floor").clamp(0, length - 1) - before, size)
    return dense_matrix(o, cols, torch.where(inside, 2 * f.flip(0), f.new_zeros([])), [2 * length, size])


def downsample_matrix(size: int, f: torch.Tensor) -> torch.Tensor:
    """[size, 2 (size + R)]: along one axis, `downsample2d(., f, down=2, padding=-R, flip_filter=True)` of the warp's
    2x grid (R = WARP_REACH = K/2): output j reads 2j + 1 + k with f[k]."""
    k = torch.arange(f.numel(), device=f.device)
    j = torch.arange(size, device=f.device)[:, None]
    return dense_matrix(j, 2 * j + 1 + k, f, [size, 2 * (size + WARP_REACH)])


def warp(x: torch.Tensor, matrices: torch.Tensor, margin: Tuple[int, int, int, int], f: torch.Tensor,
         filters: Optional[FilterMatrices] = None, upfirdn_impl: str = "fast") -> torch.Tensor:
    """NVIDIA's anti-aliased warp of x [N, C, H, W] by sampling matrices [N, 3, 3] (output -> input pixels,
    centred), with the batch's `margin` (`warp_margin`) and the sym6 filter f [12] (`geom_filter`). `filters`:
    the up- and downsampling as matrix products (the padding folded into the upsampling matrices, built per
    call; the downsampling ones kept), else as upfirdn2d convolutions."""
    _, _, h, w = x.shape
    x0, y0, x1, y1 = margin
    f = f.to(x.dtype)
    grid = sampling_grid(matrices, h, w, margin, x.dtype)
    if filters is not None:
        f64 = f.to(torch.float64)
        up = separable(x, upsample_matrix(h, y0, y1, f64).to(x.dtype), upsample_matrix(w, x0, x1, f64).to(x.dtype))
        sampled = bilinear_sample(up, grid, padding="zeros")
        return separable(sampled, filters.get("nvidia_down", h, f, x, downsample_matrix),
                         filters.get("nvidia_down", w, f, x, downsample_matrix))
    up = upsample2d(pad_borders(x, x0, x1, y0, y1, reflect), f, up=2, impl=upfirdn_impl)
    sampled = bilinear_sample(up, grid, padding="zeros")
    return downsample2d(sampled, f, down=2, padding=-WARP_REACH, flip_filter=True, impl=upfirdn_impl)

