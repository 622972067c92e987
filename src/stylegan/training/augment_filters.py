"""The ADA pipe's filters, derived in closed form, and the same filters as matrices along one image axis.

The geometric stage resamples with a 6-point Lagrange 2x filter and the image-filter stage splits the spectrum
with a dyadic tree of the 4-point Deslauriers-Dubuc half-band filter (`training/augment.py` says why these and
not NVIDIA's wavelet tables). Each filter, with its symmetric border extension and any cropping, is a linear map
along one axis; `upsample_matrix`, `downsample_matrix` and `band_matrices` write that map out as a matrix, so
that a separable 2-D filter on small images is two matrix products (`x -> My @ x @ Mx^T`), which BLAS runs
several times faster than single-channel convolutions, backward included (docs/performance.md, "The ADA pipe's
cost").
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch

GEOM_FILTER_ORDER = 3       # 6-point Lagrange interpolation for the 2x resampling of geometric transforms
FILTERBANK_ORDER = 2        # 4-point Deslauriers-Dubuc half-band filter for the image-filter bank


def _lagrange_weight(nodes: Sequence[float], k: int, at: float = 0.0) -> float:
    """Weight of nodes[k] in the Lagrange polynomial through `nodes`, evaluated at `at`."""
    w = 1.0
    for j, node in enumerate(nodes):
        if j != k:
            w *= (at - node) / (nodes[k] - node)
    return w


def resampling_filter(order: int = GEOM_FILTER_ORDER) -> List[float]:
    """Even-length (4*order) symmetric filter for 2x up/downsampling in the pixel-area convention.

    A 2x sample lies a quarter pixel from its nearest original sample; upsampling gives it the value of the
    Lagrange polynomial through the 2*order nearest original samples. Tap positions, in 2x pixels from the
    output sample, are +-0.5, +-1.5, ...; each of the two phases sums to 1/2 (taps sum to 1).
    """
    positions = [d + 0.5 for d in range(-2 * order, 2 * order)]
    taps = []
    for d in positions:
        phase = [e for e in positions if (e - d) % 2 == 0]
        taps.append(_lagrange_weight(phase, phase.index(d)) / 2)
    return taps


def halfband_filter(order: int = FILTERBANK_ORDER) -> np.ndarray:
    """Odd-length (4*order-1) zero-phase half-band low-pass: centre 1/2, odd taps Lagrange midpoint weights / 2."""
    nodes = [j + 0.5 for j in range(-order, order)]
    taps = np.zeros(4 * order - 1)
    centre = 2 * order - 1
    taps[centre] = 0.5
    for k, node in enumerate(nodes):
        taps[centre + int(2 * node)] = _lagrange_weight(nodes, k) / 2
    return taps


def _dilate(taps: np.ndarray, factor: int) -> np.ndarray:
    out = np.zeros((len(taps) - 1) * factor + 1)
    out[::factor] = taps
    return out


def filter_bank(num_bands: int = 4, order: int = FILTERBANK_ORDER, lo: Optional[np.ndarray] = None) -> np.ndarray:
    """[num_bands, taps] zero-phase filters splitting [0, pi] into octaves, lowest band first; they sum to a unit impulse.

    Dyadic tree: band k from the top is lo(z) lo(z^2) ... hi(z^(2^k)) with hi = 1 - lo, so the sum telescopes
    to 1. With 4 bands the pass-bands are [0, pi/8], [pi/8, pi/4], [pi/4, pi/2], [pi/2, pi] (appendix B).
    lo: the half-band filter (odd length, centre 1/2); default `halfband_filter(order)`.
    """
    lo = halfband_filter(order) if lo is None else np.asarray(lo, dtype=np.float64)
    hi = -lo
    hi[len(hi) // 2] += 1.0
    bands, rest = [], np.ones(1)
    for level in range(num_bands - 1):
        bands.append(np.convolve(rest, _dilate(hi, 2 ** level)))
        rest = np.convolve(rest, _dilate(lo, 2 ** level))
    bands.append(rest)
    size = max(len(b) for b in bands)
    bank = np.stack([np.pad(b, (size - len(b)) // 2) for b in reversed(bands)])
    return bank


# ----------------------------------------------------------------------------------------------------------
# The filters as matrices along one axis (rows: output samples, columns: input samples).

def mirror(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Map integer indices onto [0, size) by symmetric extension (edge repeated, period 2*size)."""
    idx = torch.remainder(idx, 2 * size)
    return torch.where(idx < size, idx, 2 * size - 1 - idx)


def reflect(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Map integer indices onto [0, size) by reflection about the edge pixels, not repeated (period 2*size - 2),
    as `F.pad(mode='reflect')` (NVIDIA's pipe), to any reach."""
    if size == 1:
        return torch.zeros_like(idx)
    idx = torch.remainder(idx, 2 * size - 2)
    return torch.where(idx < size, idx, 2 * size - 2 - idx)


def dense_matrix(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """Sum of `values` at (rows, cols) (broadcast together) in a zero matrix of `shape`; taps that the border
    extension folds onto the same input sample add up."""
    rows, cols, values = torch.broadcast_tensors(rows, cols, values)
    out = values.new_zeros(shape)
    return out.index_put_((rows.reshape(-1), cols.reshape(-1)), values.reshape(-1), accumulate=True)


def upsample_matrix(size: int, f: torch.Tensor) -> torch.Tensor:
    """[2*size, size]: `upsample2d(x, f, up=2)` along one axis of the symmetrically extended signal, cropped to the
    original extent (the warp's `upsample2x(pad_symmetric(x, K/4, K/4), f)[2K/4 : 2K/4 + 2*size]`), f [K] even and
    symmetric. Output sample o reads taps k of the parity of o: input (o + k)/2 - K/4, weight 2 f[k]."""
    k = torch.arange(f.numel(), device=f.device)
    o = torch.arange(2 * size, device=f.device)[:, None]
    same_parity = (o + k) % 2 == 0
    cols = mirror(torch.div(o + k, 2, rounding_mode="floor") - f.numel() // 4, size)
    return dense_matrix(o, cols, torch.where(same_parity, 2 * f.flip(0), f.new_zeros([])), [2 * size, size])


def downsample_matrix(size: int, f: torch.Tensor) -> torch.Tensor:
    """[size, 2*size + K - 2]: `upfirdn2d(x, f, down=2)` along one axis (valid filtering, every second sample) of a
    2x signal that carries the K/2 - 1 samples a side the filter reads; f [K]. Output j reads 2j + k with f[K-1-k]."""
    k = torch.arange(f.numel(), device=f.device)
    j = torch.arange(size, device=f.device)[:, None]
    return dense_matrix(j, 2 * j + k, f.flip(0), [size, 2 * size + f.numel() - 2])


def band_matrices(size: int, bank: torch.Tensor, extend=mirror) -> torch.Tensor:
    """[num_bands, size, size]: each zero-phase band filter of `bank` [num_bands, L] (L odd) along one axis with
    borders extended by `extend` (`mirror`: symmetric; `reflect`: NVIDIA's); row i reads extend(i + k - L//2) with
    bank[:, k]."""
    k = torch.arange(bank.shape[1], device=bank.device)
    i = torch.arange(size, device=bank.device)[:, None]
    cols = extend(i + k - bank.shape[1] // 2, size)
    return torch.stack([dense_matrix(i, cols, taps, [size, size]) for taps in bank])
