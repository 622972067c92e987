"""Adaptive discriminator augmentation: the differentiable augmentation pipeline.

Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data" (the ADA paper), section 2
and appendix B. Every image shown to the discriminator (real and generated) goes through `AugmentPipe`.
Each of the 18 transforms fires independently per sample with probability `p * multiplier`; `p` is a buffer
that `stylegan.training.ada.AdaController` steers during training. Because the pipe is differentiable
(twice, for R1), the generator learns through it and the augmentations do not leak into generated images
as long as p stays below about 0.8 (section 2).

Stages, in the paper's order (appendix B):
  1. pixel blitting: x-flip, 90-degree rotations, integer translation; exact index gathering with
     symmetric (mirror) extension at the borders, so nothing is resampled;
  2. general geometric transforms: isotropic scale, rotation (applied before and after the anisotropic
     scale), anisotropic scale, fractional translation, composed into one 3x3 matrix per sample and executed
     as: mirror-extend, 2x upsample, bilinear sampling of a 2x output grid, low-pass + 2x downsample;
  3. colour transforms: brightness, contrast, luma flip, hue rotation, saturation, composed into one 4x4
     matrix acting on homogeneous RGB;
  4. image-space filtering: random gains for 4 frequency bands, power-normalised, one separable filter;
  5. additive RGB noise; 6. cutout.

Differences from NVIDIA's official `training/augment.py` (same constructor keywords, same parameter
distributions, not bit-identical):
  * Filters are derived in closed form instead of using sym2/sym6 wavelet tables: the geometric 2x
    resampling filter interpolates each 2x sample with the 6-point Lagrange polynomial through its
    nearest original samples (exact for polynomials up to degree 5), and the filter bank is a dyadic
    tree of the 4-point Deslauriers-Dubuc half-band filter. Both are zero-phase, so nothing shifts.
  * Samples on which no transform of a stage fired are passed through that stage untouched, so an image
    that drew no augmentation comes out bit-identical (the official pipe low-pass filters every image
    whenever any geometric transform is enabled).
  * Borders are extended symmetrically (edge pixel repeated) everywhere; the official pipe uses reflection
    without edge repetition for padding and zeros outside its padded area.
  * Bilinear sampling is written with plain gather ops (`bilinear_sample`), so double backward works on
    every PyTorch version and device; it matches `F.grid_sample(..., padding_mode='reflection',
    align_corners=False)`.
  * Grayscale (1-channel) images: colour matrices act on (g, g, g) and the three outputs are averaged, so
    brightness, contrast and luma flip work as usual while hue and saturation have no effect.
    Colour transforms on other channel counts raise UserInputError.
  * rotate90 needs square images (UserInputError otherwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.errors import UserInputError

# Transform names (constructor multipliers) in the order they are applied (ADA paper, appendix B).
TRANSFORMS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
              "brightness", "contrast", "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")
_BLIT = ("xflip", "rotate90", "xint")
_GEOM = ("scale", "rotate", "aniso", "xfrac")
_COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")

# The official preset names (stylegan2-ada-pytorch train.py --augpipe); every listed multiplier is 1.
_PRESET_GROUPS = {
    "blit": _BLIT, "geom": _GEOM, "color": _COLOR, "filter": ("imgfilter",), "noise": ("noise",),
    "cutout": ("cutout",), "bg": _BLIT + _GEOM, "bgc": _BLIT + _GEOM + _COLOR,
    "bgcf": _BLIT + _GEOM + _COLOR + ("imgfilter",),
    "bgcfn": _BLIT + _GEOM + _COLOR + ("imgfilter", "noise"),
    "bgcfnc": _BLIT + _GEOM + _COLOR + ("imgfilter", "noise", "cutout"),
}
AUGPIPE_PRESETS: Dict[str, Dict[str, float]] = {
    name: {t: 1.0 for t in group} for name, group in _PRESET_GROUPS.items()}

# Assumed share of image power per filter band, low to high (appendix B: gains are normalised so that the
# expected total power stays unchanged).
_BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
_GEOM_FILTER_ORDER = 3       # 6-point Lagrange interpolation for the 2x resampling of geometric transforms
_FILTERBANK_ORDER = 2        # 4-point Deslauriers-Dubuc half-band filter for the image-filter bank


# ----------------------------------------------------------------------------------------------------------
# Filters, derived in closed form.

def _lagrange_weight(nodes: Sequence[float], k: int, at: float = 0.0) -> float:
    """Weight of nodes[k] in the Lagrange polynomial through `nodes`, evaluated at `at`."""
    w = 1.0
    for j, node in enumerate(nodes):
        if j != k:
            w *= (at - node) / (nodes[k] - node)
    return w


def resampling_filter(order: int = _GEOM_FILTER_ORDER) -> List[float]:
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


def halfband_filter(order: int = _FILTERBANK_ORDER) -> np.ndarray:
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


def filter_bank(num_bands: int = 4, order: int = _FILTERBANK_ORDER) -> np.ndarray:
    """[num_bands, taps] zero-phase filters splitting [0, pi] into octaves, lowest band first; they sum to a unit impulse.

    Dyadic tree: band k from the top is lo(z) lo(z^2) ... hi(z^(2^k)) with hi = 1 - lo, so the sum telescopes
    to 1. With 4 bands the pass-bands are [0, pi/8], [pi/8, pi/4], [pi/4, pi/2], [pi/2, pi] (appendix B).
    """
    lo = halfband_filter(order)
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
# Sampling helpers (plain ops, twice differentiable w.r.t. the image).

def _mirror(idx: torch.Tensor, size: int) -> torch.Tensor:
    """Map integer indices onto [0, size) by symmetric extension (edge repeated, period 2*size)."""
    idx = torch.remainder(idx, 2 * size)
    return torch.where(idx < size, idx, 2 * size - 1 - idx)


def _gather(x: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W], integer indices iy, ix [N, Ho, Wo] -> [N, C, Ho, Wo]."""
    n, c, h, w = x.shape
    flat = (iy * w + ix).reshape(n, 1, -1).expand(n, c, -1)
    return x.reshape(n, c, h * w).gather(2, flat).reshape(n, c, *iy.shape[1:])


def bilinear_sample(x: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample x [N, C, H, W] at pixel coordinates px, py [N, Ho, Wo] (pixel i centred at i).

    Outside the image the signal is extended symmetrically about the border, as in
    `F.grid_sample(padding_mode='reflection', align_corners=False)`.
    """
    h, w = x.shape[2:]
    x0, y0 = px.floor(), py.floor()
    fx, fy = (px - x0)[:, None].to(x.dtype), (py - y0)[:, None].to(x.dtype)
    ix0, iy0 = x0.long(), y0.long()
    ix = (_mirror(ix0, w), _mirror(ix0 + 1, w))
    iy = (_mirror(iy0, h), _mirror(iy0 + 1, h))
    top = _gather(x, iy[0], ix[0]) * (1 - fx) + _gather(x, iy[0], ix[1]) * fx
    bottom = _gather(x, iy[1], ix[0]) * (1 - fx) + _gather(x, iy[1], ix[1]) * fx
    return top * (1 - fy) + bottom * fy


def _pad_symmetric(x: torch.Tensor, pad_x: int, pad_y: int) -> torch.Tensor:
    h, w = x.shape[2:]
    ix = _mirror(torch.arange(-pad_x, w + pad_x, device=x.device), w)
    iy = _mirror(torch.arange(-pad_y, h + pad_y, device=x.device), h)
    return x.index_select(3, ix).index_select(2, iy)


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


def _centred_grid(h: int, w: int, step: float, margin: int, device) -> torch.Tensor:
    """Centres of a grid of `step`-sized pixels covering the image plus `margin` pixels a side, in centred
    original-pixel coordinates (origin at the image centre, +x right, +y down): [Ho, Wo, 3] homogeneous."""
    xs = (torch.arange(-margin, round(w / step) + margin, device=device, dtype=torch.float64) + 0.5) * step - w / 2
    ys = (torch.arange(-margin, round(h / step) + margin, device=device, dtype=torch.float64) + 0.5) * step - h / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy, torch.ones_like(gx)], dim=-1)


# ----------------------------------------------------------------------------------------------------------
# Batched homogeneous matrices ([N, 3, 3] for 2-D pixel coordinates, [N, 4, 4] for RGB).

def _matrix(rows, ref: torch.Tensor) -> torch.Tensor:
    def entry(e):
        return e if isinstance(e, torch.Tensor) else torch.full_like(ref, float(e))
    return torch.stack([torch.stack([entry(e) for e in row], dim=-1) for row in rows], dim=-2)


def translate2d(tx, ty):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx, sy):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def _rgb_affine(linear: torch.Tensor, offset: Optional[torch.Tensor] = None) -> torch.Tensor:
    """[N, 3, 3] linear part (+ [N, 3] offset) -> [N, 4, 4] homogeneous colour matrix."""
    m = torch.zeros(linear.shape[0], 4, 4, dtype=linear.dtype, device=linear.device)
    m[:, :3, :3] = linear
    m[:, 3, 3] = 1
    if offset is not None:
        m[:, :3, 3] = offset
    return m


def _luma_axis(ref: torch.Tensor) -> torch.Tensor:
    """Unit luma axis v = (1, 1, 1) / sqrt(3) (appendix B)."""
    return torch.full([3], 1 / math.sqrt(3), dtype=ref.dtype, device=ref.device)


# ----------------------------------------------------------------------------------------------------------

@dataclass
class AugmentParams:
    """Everything random about one pass through the pipe, for `AugmentPipe.apply` (and for tests/debugging).

    Geometric matrices map output pixel coordinates to input pixel coordinates (centred, +x right, +y down).
    """
    blit: torch.Tensor           # [N, 3, 3] integer sampling matrix of the blit stage
    geom: torch.Tensor           # [N, 3, 3] sampling matrix of the general geometric stage
    color: torch.Tensor          # [N, 4, 4] matrix applied to homogeneous RGB
    filter_gains: torch.Tensor   # [N, num_bands] gain per frequency band (1 = untouched)
    noise_std: torch.Tensor      # [N] standard deviation of the additive noise (0 = none)
    cutout_center: torch.Tensor  # [N, 2] cutout centre (x, y) in [0, 1] image units
    cutout_size: float           # cutout side as a fraction of the image size
    fired: Dict[str, torch.Tensor] = field(default_factory=dict)  # transform name -> [N] bool, drawn to fire

    def stage_fired(self, names: Sequence[str]) -> torch.Tensor:
        out = torch.zeros_like(self.noise_std, dtype=torch.bool)
        for name in names:
            out = out | self.fired[name]
        return out


class AugmentPipe(torch.nn.Module):
    """The ADA augmentation pipeline (Karras et al. 2020, appendix B); keywords match NVIDIA's `AugmentPipe`.

    Multipliers scale the per-sample probability `p` of each transform (0 disables it, 1 is the paper's setting).

    xflip:          multiplier for x-flip (blit).
    rotate90:       multiplier for rotation by a random multiple of 90 degrees (blit; square images only).
    xint:           multiplier for integer translation (blit).
    xint_max:       integer translation range, as a fraction of the image size (uniform in +-xint_max).
    scale:          multiplier for isotropic scaling by 2^N(0, scale_std^2).
    rotate:         multiplier for arbitrary rotation (applied twice with 1 - sqrt(1 - rotate*p) each).
    aniso:          multiplier for anisotropic scaling by 2^N(0, aniso_std^2) in x and its inverse in y.
    xfrac:          multiplier for fractional translation by N(0, xfrac_std^2) image sizes.
    scale_std:      log2 standard deviation of isotropic scaling.
    rotate_max:     rotation range as a fraction of 180 degrees (uniform in +-rotate_max*pi).
    aniso_std:      log2 standard deviation of anisotropic scaling.
    xfrac_std:      standard deviation of fractional translation, in image sizes.
    brightness:     multiplier for brightness offset N(0, brightness_std^2).
    contrast:       multiplier for contrast scaling by 2^N(0, contrast_std^2).
    lumaflip:       multiplier for flipping the luma axis (Householder reflection, with probability 1/2).
    hue:            multiplier for hue rotation around the luma axis, uniform in +-hue_max*pi.
    saturation:     multiplier for saturation scaling by 2^N(0, saturation_std^2).
    brightness_std: standard deviation of the brightness offset.
    contrast_std:   log2 standard deviation of contrast scaling.
    hue_max:        hue rotation range as a fraction of 180 degrees.
    saturation_std: log2 standard deviation of saturation scaling.
    imgfilter:      multiplier for random amplification of frequency bands.
    imgfilter_bands: per-band multipliers, 4 bands from low to high frequency.
    imgfilter_std:  log2 standard deviation of band gains.
    noise:          multiplier for additive Gaussian RGB noise.
    cutout:         multiplier for cutout (a square of zeros).
    noise_std:      noise sigma is |N(0, noise_std^2)|.
    cutout_size:    cutout side as a fraction of the image size.
    """

    def __init__(self, xflip=0, rotate90=0, xint=0, xint_max=0.125,
                 scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,
                 brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
                 imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,
                 noise=0, cutout=0, noise_std=0.1, cutout_size=0.5):
        super().__init__()
        kwargs = dict(locals())
        for key in ("self", "__class__"):
            kwargs.pop(key, None)
        bands = kwargs.pop("imgfilter_bands")
        for name, value in kwargs.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UserInputError(f"AugmentPipe: {name}={value!r} is invalid; pass a finite non-negative number "
                                     f"(multipliers are usually 0 or 1, *_std/*_max are spreads).")
            setattr(self, name, float(value))
        for name in ("xint_max", "cutout_size"):
            if kwargs[name] > 1:
                raise UserInputError(f"AugmentPipe: {name}={kwargs[name]} is a fraction of the image size; pass a value in [0, 1].")
        bands = [float(b) for b in bands]
        if len(bands) != len(_BAND_POWER) or any(not math.isfinite(b) or b < 0 for b in bands):
            raise UserInputError(f"AugmentPipe: imgfilter_bands={bands} must be {len(_BAND_POWER)} non-negative multipliers, "
                                 f"low to high frequency, e.g. [1, 1, 1, 1].")
        self.imgfilter_bands = bands
        self.init_kwargs = dict(kwargs, imgfilter_bands=list(bands))

        self.register_buffer("p", torch.zeros([]))  # overall augmentation probability, steered by AdaController
        self.register_buffer("geom_filter", torch.tensor(resampling_filter(), dtype=torch.float32), persistent=False)
        self.register_buffer("band_filters", torch.tensor(filter_bank(), dtype=torch.float32), persistent=False)

    def set_probability(self, p: float) -> None:
        """Set the augmentation probability p (in [0, 1])."""
        if not 0 <= float(p) <= 1:
            raise UserInputError(f"augmentation probability p={p} must be in [0, 1].")
        self.p.fill_(float(p))

    def extra_repr(self) -> str:
        enabled = [name for name in TRANSFORMS if getattr(self, name) > 0]
        return f"p={float(self.p):.4f}, enabled={enabled}"

    # ---- random draws ----------------------------------------------------------------------------------

    def sample_params(self, batch_size: int, height: int, width: int, device=None,
                      debug_percentile: Optional[float] = None,
                      generator: Optional[torch.Generator] = None) -> AugmentParams:
        """Draw the random parameters for `batch_size` images of `height` x `width` pixels.

        debug_percentile: if given, every enabled transform fires on every sample, with each random parameter
            set to this percentile of its distribution (normal percentiles are clipped to [1e-4, 1 - 1e-4]).
        generator: torch.Generator on `device` for reproducible draws (default: the global RNG).
        """
        n = int(batch_size)
        device = self.p.device if device is None else torch.device(device)
        if debug_percentile is not None:
            debug_percentile = float(debug_percentile)
            if not 0 <= debug_percentile <= 1:
                raise UserInputError(f"debug_percentile={debug_percentile} must be in [0, 1].")
        f32 = dict(dtype=torch.float32, device=device)
        p = self.p.to(device)

        def uniform(*shape):
            if debug_percentile is not None:
                return torch.full([n, *shape], debug_percentile, **f32)
            return torch.rand([n, *shape], generator=generator, **f32)

        def normal(*shape):
            if debug_percentile is not None:
                q = min(max(debug_percentile, 1e-4), 1 - 1e-4)
                return torch.full([n, *shape], math.sqrt(2) * float(torch.erfinv(torch.tensor(2 * q - 1))), **f32)
            return torch.randn([n, *shape], generator=generator, **f32)

        def choice(k: int):  # uniform integer in [0, k)
            return torch.floor(uniform() * k).clamp(max=k - 1)

        def gate(multiplier: float, prob: Optional[torch.Tensor] = None) -> torch.Tensor:
            if multiplier <= 0:
                return torch.zeros([n], dtype=torch.bool, device=device)
            if debug_percentile is not None:
                return torch.ones([n], dtype=torch.bool, device=device)
            return torch.rand([n], generator=generator, **f32) < (multiplier * p if prob is None else prob)

        ones, zeros = torch.ones([n], **f32), torch.zeros([n], **f32)
        eye3 = torch.eye(3, **f32).expand(n, 3, 3)
        fired = {}

        # 1. Pixel blitting: sampling matrix G maps output to input pixels; composing G @ T^-1 applies T last.
        blit = eye3
        fired["xflip"] = gate(self.xflip)
        if self.xflip > 0:
            i = torch.where(fired["xflip"], choice(2), zeros)
            blit = blit @ scale2d(1 - 2 * i, ones)
        fired["rotate90"] = gate(self.rotate90)
        if self.rotate90 > 0:
            i = torch.where(fired["rotate90"], choice(4), zeros)
            blit = blit @ rotate2d(-math.pi / 2 * i)
        fired["xint"] = gate(self.xint)
        if self.xint > 0:
            t = (uniform(2) * 2 - 1) * self.xint_max
            t = torch.where(fired["xint"][:, None], t, torch.zeros_like(t))
            blit = blit @ translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
        blit = blit.round()  # every entry is an integer; removes cos(pi/2) ~ 6e-17 residue

        # 2. General geometric transforms.
        geom = eye3
        fired["scale"] = gate(self.scale)
        if self.scale > 0:
            s = torch.where(fired["scale"], torch.exp2(normal() * self.scale_std), ones)
            geom = geom @ scale2d(1 / s, 1 / s)
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(min=0))  # two chances give overall rotate*p
        rot_first, rot_second = gate(self.rotate, p_rot), gate(self.rotate, p_rot)
        fired["rotate"] = rot_first | rot_second
        if self.rotate > 0:
            theta = torch.where(rot_first, (uniform() * 2 - 1) * math.pi * self.rotate_max, zeros)
            geom = geom @ rotate2d(-theta)
        fired["aniso"] = gate(self.aniso)
        if self.aniso > 0:
            s = torch.where(fired["aniso"], torch.exp2(normal() * self.aniso_std), ones)
            geom = geom @ scale2d(1 / s, s)
        if self.rotate > 0:
            theta = torch.where(rot_second, (uniform() * 2 - 1) * math.pi * self.rotate_max, zeros)
            geom = geom @ rotate2d(-theta)
        fired["xfrac"] = gate(self.xfrac)
        if self.xfrac > 0:
            t = normal(2) * self.xfrac_std
            t = torch.where(fired["xfrac"][:, None], t, torch.zeros_like(t))
            geom = geom @ translate2d(-t[:, 0] * width, -t[:, 1] * height)

        # 3. Colour transforms, composed as C <- T @ C (the later transform acts last).
        color = torch.eye(4, **f32).expand(n, 4, 4)
        eye_rgb = torch.eye(3, **f32).expand(n, 3, 3)
        v = _luma_axis(ones)
        vvt = torch.outer(v, v).expand(n, 3, 3)
        fired["brightness"] = gate(self.brightness)
        if self.brightness > 0:
            b = torch.where(fired["brightness"], normal() * self.brightness_std, zeros)
            color = _rgb_affine(eye_rgb, b[:, None].expand(n, 3)) @ color
        fired["contrast"] = gate(self.contrast)
        if self.contrast > 0:
            c = torch.where(fired["contrast"], torch.exp2(normal() * self.contrast_std), ones)
            color = _rgb_affine(eye_rgb * c[:, None, None]) @ color
        fired["lumaflip"] = gate(self.lumaflip)
        if self.lumaflip > 0:
            i = torch.where(fired["lumaflip"], choice(2), zeros)
            color = _rgb_affine(eye_rgb - 2 * vvt * i[:, None, None]) @ color  # Householder reflection of luma
        fired["hue"] = gate(self.hue)
        if self.hue > 0:
            theta = torch.where(fired["hue"], (uniform() * 2 - 1) * math.pi * self.hue_max, zeros)
            cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], **f32) / math.sqrt(3)  # [v]_x
            cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
            color = _rgb_affine(cos * eye_rgb + sin * cross + (1 - cos) * vvt) @ color  # Rodrigues rotation about v
        fired["saturation"] = gate(self.saturation)
        if self.saturation > 0:
            s = torch.where(fired["saturation"], torch.exp2(normal() * self.saturation_std), ones)
            color = _rgb_affine(vvt + (eye_rgb - vvt) * s[:, None, None]) @ color

        # 4. Image-space filtering: amplify one band at a time, renormalising to the expected image power.
        num_bands = len(_BAND_POWER)
        power = torch.tensor(_BAND_POWER, **f32)
        gains = torch.ones([n, num_bands], **f32)
        fired["imgfilter"] = torch.zeros([n], dtype=torch.bool, device=device)
        for band, strength in enumerate(self.imgfilter_bands):
            if self.imgfilter * strength <= 0:
                continue
            band_fired = gate(self.imgfilter * strength)
            t = torch.ones([n, num_bands], **f32)
            t[:, band] = torch.where(band_fired, torch.exp2(normal() * self.imgfilter_std), ones)
            gains = gains * t / (power * t.square()).sum(dim=-1, keepdim=True).sqrt()
            fired["imgfilter"] = fired["imgfilter"] | band_fired

        # 5. Additive noise and 6. cutout.
        fired["noise"] = gate(self.noise)
        noise_std = torch.where(fired["noise"], normal().abs() * self.noise_std, zeros) if self.noise > 0 else zeros
        fired["cutout"] = gate(self.cutout)
        center = uniform(2) if self.cutout > 0 else torch.zeros([n, 2], **f32)

        return AugmentParams(blit=blit, geom=geom, color=color, filter_gains=gains, noise_std=noise_std,
                             cutout_center=center, cutout_size=self.cutout_size, fired=fired)

    # ---- execution -------------------------------------------------------------------------------------

    def _check_images(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            got = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise UserInputError(f"AugmentPipe expects a float tensor [N, C, H, W], got {got}.")
        _, c, h, w = images.shape
        if any(getattr(self, name) > 0 for name in _COLOR) and c not in (1, 3):
            raise UserInputError(f"AugmentPipe colour transforms need 1 or 3 channels, got {c}; "
                                 f"use a preset without colour (e.g. 'bg') for {c}-channel images.")
        if self.rotate90 > 0 and h != w:
            raise UserInputError(f"AugmentPipe rotate90 needs square images, got {h}x{w}; disable rotate90 "
                                 f"(e.g. AugmentPipe(xflip=1, xint=1, ...)) or crop the images square.")

    def forward(self, images: torch.Tensor, debug_percentile: Optional[float] = None) -> torch.Tensor:
        """Augment images [N, C, H, W] (usually in [-1, 1]); returns the same shape and dtype."""
        self._check_images(images)
        n, _, h, w = images.shape
        params = self.sample_params(n, h, w, device=images.device, debug_percentile=debug_percentile)
        return self.apply(images, params)

    def apply(self, images: torch.Tensor, params: AugmentParams,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Run the pipe with given parameters; `generator` drives the additive noise."""
        self._check_images(images)
        n, c, h, w = images.shape
        x = images

        on = params.stage_fired(_BLIT)
        if bool(on.any()):
            x = torch.where(on[:, None, None, None], self._blit(x, params.blit), x)
        on = params.stage_fired(_GEOM)
        if bool(on.any()):
            idx = on.nonzero()[:, 0]
            x = x.index_copy(0, idx, self._warp(x.index_select(0, idx), params.geom.index_select(0, idx)))
        on = params.stage_fired(_COLOR)
        if bool(on.any()):
            x = torch.where(on[:, None, None, None], self._color(x, params.color.to(x.dtype)), x)
        on = params.fired["imgfilter"]
        if bool(on.any()):
            idx = on.nonzero()[:, 0]
            x = x.index_copy(0, idx, self._filter(x.index_select(0, idx), params.filter_gains.index_select(0, idx)))
        if bool((params.noise_std > 0).any()):
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + noise * params.noise_std.to(x.dtype)[:, None, None, None]
        on = params.fired["cutout"]
        if bool(on.any()):
            xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w
            ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) / h
            cx, cy = params.cutout_center[:, 0, None, None], params.cutout_center[:, 1, None, None]
            half = params.cutout_size / 2
            keep = ((xs[None, None, :] - cx).abs() >= half) | ((ys[None, :, None] - cy).abs() >= half)
            keep = keep | ~on[:, None, None]
            x = x * keep[:, None].to(x.dtype)
        assert x.shape == images.shape and x.dtype == images.dtype
        return x

    def _blit(self, x: torch.Tensor, blit: torch.Tensor) -> torch.Tensor:
        """Exact flips / 90-degree rotations / integer shifts by gathering pixels (mirror at the borders)."""
        n, _, h, w = x.shape
        src = torch.einsum("nij,hwj->nhwi", blit.double(), _centred_grid(h, w, 1.0, 0, x.device))
        ix = torch.round(src[..., 0] + w / 2 - 0.5).long()
        iy = torch.round(src[..., 1] + h / 2 - 0.5).long()
        return _gather(x, _mirror(iy, h), _mirror(ix, w))

    def _warp(self, x: torch.Tensor, geom: torch.Tensor) -> torch.Tensor:
        """Anti-aliased affine warp (appendix B): mirror-extend, 2x upsample, bilinear-sample a 2x grid, 2x downsample."""
        _, _, h, w = x.shape
        f = self.geom_filter.to(x.dtype)
        order = f.numel() // 4
        # 2x upsampled image covering exactly the original extent; the extension keeps its borders clean.
        up = upsample2x(_pad_symmetric(x, order, order), f)  # = upsample2d(..., f, up=2), polyphase
        up = up[:, :, 2 * order: 2 * order + 2 * h, 2 * order: 2 * order + 2 * w]
        # Output grid at 2x resolution plus the margin the downsampling filter reads.
        margin = 2 * order - 1
        src = torch.einsum("nij,hwj->nhwi", geom.double(), _centred_grid(h, w, 0.5, margin, x.device))
        px = (src[..., 0] + w / 2) * 2 - 0.5  # centred original pixels -> pixel index in the 2x image
        py = (src[..., 1] + h / 2) * 2 - 0.5
        sampled = bilinear_sample(up, px, py)
        return downsample2x_valid(sampled, f)  # = upfirdn2d(sampled, f, down=2): the margin is consumed, [h, w]

    @staticmethod
    def _color(x: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            return torch.einsum("nij,njhw->nihw", color[:, :3, :3], x) + color[:, :3, 3, None, None]
        # Grayscale: act on (g, g, g) and average the three outputs.
        gain = color[:, :3, :3].sum(dim=2).mean(dim=1)
        offset = color[:, :3, 3].mean(dim=1)
        return x * gain[:, None, None, None] + offset[:, None, None, None]

    def _filter(self, x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """Separable filter sum_b gains[b] * band_b, applied along x then y with symmetric borders."""
        n, c, h, w = x.shape
        taps = (gains.to(x.dtype) @ self.band_filters.to(x.dtype))  # [n, L]
        half = taps.shape[1] // 2
        weight = taps[:, None, :].expand(n, c, -1).reshape(n * c, 1, -1)
        y = _pad_symmetric(x, half, half).reshape(1, n * c, h + 2 * half, w + 2 * half)
        y = F.conv2d(y, weight[:, :, None, :], groups=n * c)
        y = F.conv2d(y, weight[:, :, :, None], groups=n * c)
        return y.reshape(n, c, h, w)


def make_augment_pipe(name: str) -> AugmentPipe:
    """Build the pipe for an official preset name ('bgc' is the ADA paper's default)."""
    if name not in AUGPIPE_PRESETS:
        raise UserInputError(f"unknown augmentation preset {name!r}; choose one of: {', '.join(AUGPIPE_PRESETS)}.")
    return AugmentPipe(**AUGPIPE_PRESETS[name])
