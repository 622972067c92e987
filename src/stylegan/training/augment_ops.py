"""The ADA pipe's image operations, one per stage, each on the samples it is given (`AugmentPipe.apply` hands each
stage only the samples whose transform changes them): exact pixel blitting, the anti-aliased affine warp, the
colour matrix, the frequency-band filter, cutout. All twice differentiable w.r.t. the images (R1 differentiates
D(augment(reals)) and backpropagates again).

The warp and the band filter are separable filters along the two image axes. Up to `DENSE_MAX_SIDE` pixels a
side they run as matrix products with the filters written out as matrices (`augment_filters`, built once per size
by `FilterMatrices`); above it, where a dense matrix costs more multiply-adds than it saves in speed, as
single-channel convolutions (`upsample2x`, `downsample2x_valid`, grouped convolutions). Both give the same values
to rounding (tests/training/test_augment.py).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F

from .augment_filters import band_matrices, downsample_matrix, mirror, reflect, upsample_matrix

# Largest image side for the matrix form of the separable filters. The warp's forward + backward with them, against
# the convolutions, on an AVX2 CPU (docs/performance.md "The ADA pipe's cost"): 5.1x faster at 32x32, 3.4x at 64,
# 2.4x at 128, 1.6x at 256, 0.92x at 512, where the dense matrices' work outgrows the convolutions'.
DENSE_MAX_SIDE = 256


class FilterMatrices:
    """The pipe's separable filters as matrices (`augment_filters`), built at the first image of each size, dtype
    and device and kept: `up` [2n, n], `down` [n, 2n + K - 2] (the warp's filter of K taps), `bands` [4, n, n]
    (symmetric borders) and `bands_reflect` (NVIDIA's reflection)."""

    def __init__(self):
        self._built: Dict[tuple, torch.Tensor] = {}

    def get(self, kind: str, size: int, taps: torch.Tensor, like: torch.Tensor, build=None) -> torch.Tensor:
        """The matrix `kind` for images of `size` like `like`; `build(size, taps)` makes a kind not listed here."""
        key = (kind, size, like.dtype, like.device)
        if key not in self._built:
            build = build or {"up": upsample_matrix, "down": downsample_matrix, "bands": band_matrices,
                              "bands_reflect": lambda n, bank: band_matrices(n, bank, reflect)}[kind]
            self._built[key] = build(size, taps.to(device=like.device, dtype=torch.float64)).to(like.dtype)
        return self._built[key]


def use_matrices(x: torch.Tensor) -> bool:
    """Whether the separable filters of images like `x` run as matrix products (else as convolutions)."""
    return max(x.shape[2:]) <= DENSE_MAX_SIDE


def separable(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """rows @ x @ cols^T on the last two axes: a linear filter along y (rows [Ho, H] or per sample [N, 1, Ho, H])
    and along x (cols [Wo, W] or [N, 1, Wo, W]); x [N, C, H, W] -> [N, C, Ho, Wo]."""
    return rows @ x @ cols.transpose(-1, -2)


# ----------------------------------------------------------------------------------------------------------
# Sampling helpers.

def gather_pixels(x: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W], integer indices iy, ix [N, Ho, Wo] -> [N, C, Ho, Wo]."""
    n, c, h, w = x.shape
    flat = (iy * w + ix).reshape(n, 1, -1).expand(n, c, -1)
    return x.reshape(n, c, h * w).gather(2, flat).reshape(n, c, *iy.shape[1:])


def pad_borders(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int, extend=mirror) -> torch.Tensor:
    """x [N, C, H, W] extended by `extend` (an index map: `mirror` repeats the edge pixel, `reflect` does not):
    x0/x1 columns left/right, y0/y1 rows above/below."""
    h, w = x.shape[2:]
    ix = extend(torch.arange(-x0, w + x1, device=x.device), w)
    iy = extend(torch.arange(-y0, h + y1, device=x.device), h)
    return x.index_select(3, ix).index_select(2, iy)


def pad_symmetric(x: torch.Tensor, pad_x: int, pad_y: int) -> torch.Tensor:
    return pad_borders(x, pad_x, pad_x, pad_y, pad_y)


# grid_sample's padding modes and their enums in aten::grid_sampler_2d
_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


class _BilinearSample(torch.autograd.Function):
    """F.grid_sample (bilinear, align_corners=False) at a fixed grid, with a backward that is itself
    differentiable: sampling is linear in the image, so its gradient is the adjoint (`_BilinearSampleAdjoint`)
    and the adjoint's gradient is sampling again, to any order (PyTorch itself raised "derivative for
    aten::grid_sampler_2d_backward is not implemented" up to 2.0 at least; this project supports 2.3 on)."""

    @staticmethod
    def forward(ctx, x, grid, padding):
        ctx.save_for_backward(grid)
        ctx.image_shape, ctx.padding = x.shape, padding
        return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)

    @staticmethod
    def backward(ctx, grad):
        grid, = ctx.saved_tensors
        return _BilinearSampleAdjoint.apply(grad, grid, ctx.image_shape, ctx.padding), None, None


class _BilinearSampleAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad, grid, image_shape, padding):
        ctx.save_for_backward(grid)
        ctx.padding = padding
        zeros = grad.new_zeros([]).expand(image_shape)  # read for the grid's gradient only, which is not asked for
        # interpolation 0: bilinear
        return torch.ops.aten.grid_sampler_2d_backward(grad, zeros, grid, 0, _PADDING[padding], False,
                                                       [True, False])[0]

    @staticmethod
    def backward(ctx, grad):
        grid, = ctx.saved_tensors
        return _BilinearSample.apply(grad, grid, ctx.padding), None, None, None


def bilinear_sample(x: torch.Tensor, grid: torch.Tensor, padding: str = "reflection") -> torch.Tensor:
    """Bilinearly sample x [N, C, H, W] at `grid` [N, Ho, Wo, 2] (x, y in F.grid_sample's units: -1 and 1 are the
    outer edges of the border pixels), as `F.grid_sample(padding_mode=padding, align_corners=False)`, which it
    is, with a double backward on every PyTorch version. Outside the image: 'reflection' extends the signal
    symmetrically about the border (edge pixel repeated), 'zeros' reads zeros (NVIDIA's warp)."""
    return _BilinearSample.apply(x, grid.to(x.dtype), padding)


def upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """`upsample2d(x, f, up=2)` for an even-length 1-D filter f [K], computed at the low resolution: the four
    output phases (even/odd row x even/odd column) are four filters of K/2 + 1 taps (every second tap of f, one
    zero), run as one convolution and interleaved by a pixel shuffle. No multiplications by inserted zeros:
    2.5x faster than zero insertion at 32x32 on a CPU. x [N, C, H, W] -> [N, C, 2H, 2W]."""
    n, c, h, w = x.shape
    half = f.numel() // 2
    taps = f.flip(0)
    even, odd = torch.cat([taps[0::2], taps.new_zeros(1)]), torch.cat([taps.new_zeros(1), taps[1::2]])
    phases = torch.stack([even, odd]) * 2  # [2, K/2 + 1]; gain 2 per axis (up * up over the two axes)
    weight = (phases[:, None, :, None] * phases[None, :, None, :]).reshape(4, 1, half + 1, half + 1)
    pad = half // 2
    y = F.conv2d(F.pad(x.reshape(n * c, 1, h, w), [pad, pad, pad, pad]), weight.to(x.dtype))
    return F.pixel_shuffle(y, 2).reshape(n, c, 2 * h, 2 * w)


def downsample2x_valid(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """`upfirdn2d(x, f, down=2)` (valid filtering with the 1-D filter f [K] along both axes, then every second
    sample) as strided convolutions that compute only the kept samples. x [N, C, H, W] -> [N, C, Ho, Wo]."""
    n, c, h, w = x.shape
    taps = f.flip(0).to(x.dtype)
    y = F.conv2d(x.reshape(n * c, 1, h, w), taps[None, None, None, :], stride=(1, 2))
    y = F.conv2d(y, taps[None, None, :, None], stride=(2, 1))
    return y.reshape(n, c, *y.shape[2:])


def centred_grid(h: int, w: int, step: float, margin: int, device, dtype=torch.float64) -> torch.Tensor:
    """Centres of a grid of `step`-sized pixels covering the image plus `margin` pixels a side, in centred
    original-pixel coordinates (origin at the image centre, +x right, +y down): [Ho, Wo, 3] homogeneous."""
    xs = (torch.arange(-margin, round(w / step) + margin, device=device, dtype=dtype) + 0.5) * step - w / 2
    ys = (torch.arange(-margin, round(h / step) + margin, device=device, dtype=dtype) + 0.5) * step - h / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)


# ----------------------------------------------------------------------------------------------------------
# The stages.

def blit(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Exact flips / 90-degree rotations / integer shifts by gathering pixels (mirror at the borders); matrix
    [N, 3, 3] integer sampling matrices (output -> input pixel centres, centred coordinates)."""
    n, _, h, w = x.shape
    src = torch.einsum("nij,hwj->nhwi", matrix.double(), centred_grid(h, w, 1.0, 0, x.device))
    ix = torch.round(src[..., 0] + w / 2 - 0.5).long()
    iy = torch.round(src[..., 1] + h / 2 - 0.5).long()
    return gather_pixels(x, mirror(iy, h), mirror(ix, w))


def warp(x: torch.Tensor, geom: torch.Tensor, f: torch.Tensor, matrices: Optional[FilterMatrices] = None
         ) -> torch.Tensor:
    """Anti-aliased affine warp (appendix B): mirror-extend, 2x upsample with f [K], bilinear-sample a 2x grid,
    2x downsample with f. geom [N, 3, 3] maps output to input pixel coordinates (centred). `matrices`: run the
    up- and downsampling as matrix products (when `use_matrices(x)`), else as convolutions."""
    _, _, h, w = x.shape
    f = f.to(x.dtype)
    order = f.numel() // 4
    # 2x upsampled image covering exactly the original extent; the extension keeps its borders clean.
    if matrices is not None:
        up = separable(x, matrices.get("up", h, f, x), matrices.get("up", w, f, x))
    else:
        up = upsample2x(pad_symmetric(x, order, order), f)  # = upsample2d(..., f, up=2), polyphase
        up = up[:, :, 2 * order: 2 * order + 2 * h, 2 * order: 2 * order + 2 * w]
    # Output grid at 2x resolution plus the margin the downsampling filter reads, in grid_sample's units of the
    # 2x image (which covers the original extent: centred pixel x -> 2x / w).
    margin = 2 * order - 1
    to_grid = geom[:, :2, :].double() * torch.tensor([2 / w, 2 / h], dtype=torch.float64, device=x.device)[:, None]
    grid = centred_grid(h, w, 0.5, margin, x.device, x.dtype) @ to_grid.to(x.dtype)[:, None].transpose(-1, -2)
    sampled = bilinear_sample(up, grid)
    if matrices is not None:  # = upfirdn2d(sampled, f, down=2): the margin is consumed, [h, w]
        return separable(sampled, matrices.get("down", h, f, x), matrices.get("down", w, f, x))
    return downsample2x_valid(sampled, f)


def recolor(x: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """Apply [N, 4, 4] homogeneous colour matrices to RGB images x [N, 3, H, W]; on grayscale [N, 1, H, W] act on
    (g, g, g) and average the three outputs."""
    color = color.to(x.dtype)
    if x.shape[1] == 3:
        return torch.einsum("nij,njhw->nihw", color[:, :3, :3], x) + color[:, :3, 3, None, None]
    gain = color[:, :3, :3].sum(dim=2).mean(dim=1)
    offset = color[:, :3, 3].mean(dim=1)
    return x * gain[:, None, None, None] + offset[:, None, None, None]


def band_filter(x: torch.Tensor, gains: torch.Tensor, bank: torch.Tensor,
                matrices: Optional[FilterMatrices] = None, borders: str = "symmetric") -> torch.Tensor:
    """Separable filter sum_b gains[n, b] * bank[b] along x then y; bank [bands, L] (L odd). borders: 'symmetric'
    (edge pixel repeated) or 'reflect' (not repeated: NVIDIA's). `matrices`: as matrix products (when
    `use_matrices(x)`), else as grouped convolutions."""
    n, c, h, w = x.shape
    gains = gains.to(x.dtype)
    if matrices is not None:
        kind = "bands" if borders == "symmetric" else "bands_reflect"
        rows = torch.einsum("nb,bij->nij", gains, matrices.get(kind, h, bank, x))[:, None]
        cols = torch.einsum("nb,bij->nij", gains, matrices.get(kind, w, bank, x))[:, None]
        return separable(x, rows, cols)
    taps = gains @ bank.to(x.dtype)  # [n, L]
    half = taps.shape[1] // 2
    weight = taps[:, None, :].expand(n, c, -1).reshape(n * c, 1, -1)
    extend = mirror if borders == "symmetric" else reflect
    y = pad_borders(x, half, half, half, half, extend).reshape(1, n * c, h + 2 * half, w + 2 * half)
    y = F.conv2d(y, weight[:, :, None, :], groups=n * c)
    y = F.conv2d(y, weight[:, :, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def cut_out(x: torch.Tensor, center: torch.Tensor, size: float) -> torch.Tensor:
    """Zero a square of side `size` (fraction of the image) centred at center [N, 2] (x, y in [0, 1])."""
    _, _, h, w = x.shape
    xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w
    ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) / h
    cx, cy = center[:, 0, None, None], center[:, 1, None, None]
    keep = ((xs[None, None, :] - cx).abs() >= size / 2) | ((ys[None, :, None] - cy).abs() >= size / 2)
    return x * keep[:, None].to(x.dtype)


def identity_rows(matrices: torch.Tensor) -> torch.Tensor:
    """[N] bool: which of the matrices [N, k, k] are exactly the identity."""
    eye = torch.eye(matrices.shape[-1], dtype=matrices.dtype, device=matrices.device)
    return (matrices == eye).flatten(1).all(dim=1)


def on_samples(x: torch.Tensor, active: torch.Tensor, stage) -> torch.Tensor:
    """Run `stage(images, index)` on the samples of x [N, ...] where active [N] is set, index being what selects
    their per-sample parameters (a tensor of indices, or a full slice when all are active), and return x with
    those samples replaced; the others pass untouched (bit for bit) and cost nothing."""
    count = int(active.sum())
    if count == 0:
        return x
    if count == x.shape[0]:
        return stage(x, slice(None))
    idx = active.nonzero()[:, 0]
    return x.index_copy(0, idx, stage(x.index_select(0, idx), idx))

