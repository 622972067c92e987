"""Adaptive discriminator augmentation: the differentiable augmentation pipeline.

Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data" (the ADA paper), section 2
and appendix B. Every image shown to the discriminator (real and generated) goes through `AugmentPipe`.
Each of the 18 transforms fires independently per sample with probability `p * multiplier`; `p` is a buffer
that `stylegan.training.ada.AdaController` steers during training. Because the pipe is differentiable
(twice, for R1), the generator learns through it and the augmentations do not leak into generated images
as long as p stays below about 0.8 (section 2).

Stages, in the paper's order (appendix B): 1. pixel blitting (x-flip, 90-degree rotations, integer translation);
2. general geometric transforms (isotropic scale, rotation before and after the anisotropic scale, anisotropic
scale, fractional translation), each stage composed into one 3x3 sampling matrix per sample; 3. colour transforms
(brightness, contrast, luma flip, hue rotation, saturation) composed into one 4x4 matrix on homogeneous RGB;
4. image-space filtering (random gains for 4 frequency bands, power-normalised, one separable filter); 5. additive
RGB noise; 6. cutout. The draws (`augment_params`) are NVIDIA's, in NVIDIA's order, for both executions:

impl='nvidia' (the default, and what training uses unless `--augment-impl exact`): NVIDIA's `training/augment.py`
for the same draws, within float32 rounding (tests/training/test_augment_nvidia.py replays NVIDIA's recorded
training step: 1.8e-6 at most on [-1, 1] images; scripts/compare_augment_nvidia.py: 1.1e-5 per transform, 1.9e-5
with every transform at p = 0.6):
  * blits and geometric transforms composed into one matrix and executed by one warp (`augment_nvidia`): the batch
    padded by reflection without edge repetition as far as its transformed corners reach plus 6 pixels, 2x
    upsampled with the Symlet-6 low-pass filter, bilinearly sampled with zeros beyond the padding, 2x downsampled
    with the filter reversed; so flips and 90-degree rotations are resampled too (0.22 from an exact flip);
  * the image filter's bank built from Symlet-2 (= the 4-point Deslauriers-Dubuc bank), reflection at the borders;
  * the noise images of every sample drawn (with the parameters, before cutout's draws).
  One deviation, on purpose: samples whose composed matrix is the identity (nothing fired, or an x-flip that drew
  no flip) are not resampled, and samples whose band gains all stayed 1 are not filtered. NVIDIA's pipe filters
  every image once a geometric transform (or the image filter) is enabled, even at p = 0: a change of 3.5e-6 at
  most (measured on Fashion-MNIST, scripts/compare_augment_nvidia.py; 1.3e-6 on the recorded step), far below the
  float32 tolerance, so an image that drew no augmentation comes out bit-identical and costs nothing.
  Grayscale images: NVIDIA's draws skip hue and saturation (no effect on gray), and so do ours.

impl='exact' (this project's re-derivation; the pipe of runs made before the choice existed):
  * blits are exact index gathering with symmetric (mirror) extension at the borders: nothing is resampled;
  * the geometric warp resamples with a 6-point Lagrange 2x filter (exact for polynomials up to degree 5) and
    the filter bank is the same dyadic Deslauriers-Dubuc tree; both zero-phase, so nothing shifts;
  * borders are extended symmetrically (edge pixel repeated) everywhere, bilinear sampling reflects;
  * the additive noise is drawn only for the noised samples (same distribution per sample).

What it costs follows p (both impls): each stage runs only on the samples whose transforms change them (gathered,
transformed, put back), a stage that no sample draws is skipped, and so is a blit, geometric or colour stage whose
composed matrix is the identity for a sample; the exact impl's separable filters of small images run as matrix
products (docs/performance.md, "The ADA pipe's cost"; benchmarks/augment_cost_cpu.py measures both impls).

Files: `augment_params` (the random draws), `augment_ops` (the stages' image operations), `augment_filters` (the
filters in closed form and as matrices), `augment_nvidia` (NVIDIA's wavelet filters, margin and warp).

Both: bilinear sampling is `F.grid_sample(align_corners=False)` with a double backward of its own
(`augment_ops.bilinear_sample`; NVIDIA's grid_sample_gradfix plays that part there). Colour matrices act on
grayscale images as on (g, g, g), the three outputs averaged (as NVIDIA's); colour transforms on other channel
counts raise UserInputError; rotate90 needs square images (UserInputError otherwise).
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from stylegan.errors import UserInputError

from . import augment_nvidia
from .augment_filters import filter_bank, resampling_filter
from .augment_ops import (FilterMatrices, band_filter, bilinear_sample, blit, cut_out, downsample2x_valid,
                          identity_rows, on_samples, recolor, upsample2x, use_matrices, warp)
from .augment_params import BAND_POWER, AugmentParams, draw_params, rotate2d, scale2d, translate2d

__all__ = ["AUGMENT_IMPLS", "AUGPIPE_PRESETS", "TRANSFORMS", "AugmentParams", "AugmentPipe", "bilinear_sample",
           "downsample2x_valid", "filter_bank", "make_augment_pipe", "resampling_filter", "rotate2d", "scale2d",
           "translate2d", "upsample2x"]

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

# How the pipe executes the drawn transforms (the draws are the same): 'nvidia' as NVIDIA's training/augment.py,
# 'exact' this project's re-derivation (exact blits, Lagrange resampling, symmetric borders).
AUGMENT_IMPLS = ("nvidia", "exact")


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
    impl:           'nvidia' (default: NVIDIA's execution) or 'exact' (ours); see the module docstring.
    """

    def __init__(self, xflip=0, rotate90=0, xint=0, xint_max=0.125,
                 scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,
                 brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
                 imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,
                 noise=0, cutout=0, noise_std=0.1, cutout_size=0.5, impl="nvidia"):
        super().__init__()
        kwargs = dict(locals())
        for key in ("self", "__class__", "impl"):
            kwargs.pop(key, None)
        if impl not in AUGMENT_IMPLS:
            raise UserInputError(f"AugmentPipe: impl={impl!r} is unknown; choose one of: "
                                 f"{', '.join(AUGMENT_IMPLS)}.")
        self.impl = impl
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
        if len(bands) != len(BAND_POWER) or any(not math.isfinite(b) or b < 0 for b in bands):
            raise UserInputError(f"AugmentPipe: imgfilter_bands={bands} must be {len(BAND_POWER)} non-negative multipliers, "
                                 f"low to high frequency, e.g. [1, 1, 1, 1].")
        self.imgfilter_bands = bands
        self.init_kwargs = dict(kwargs, imgfilter_bands=list(bands), impl=impl)

        self.register_buffer("p", torch.zeros([]))  # overall augmentation probability, steered by AdaController
        nvidia = impl == "nvidia"
        geom = augment_nvidia.geom_filter() if nvidia else torch.tensor(resampling_filter(), dtype=torch.float32)
        bank = filter_bank(lo=augment_nvidia.band_lowpass()) if nvidia else filter_bank()
        self.register_buffer("geom_filter", geom, persistent=False)
        self.register_buffer("band_filters", torch.tensor(bank, dtype=torch.float32), persistent=False)
        self.matrices = FilterMatrices()  # the filters as matrices, per image size (built at first use)

    def set_probability(self, p: float) -> None:
        """Set the augmentation probability p (in [0, 1])."""
        if not 0 <= float(p) <= 1:
            raise UserInputError(f"augmentation probability p={p} must be in [0, 1].")
        self.p.fill_(float(p))

    def extra_repr(self) -> str:
        enabled = [name for name in TRANSFORMS if getattr(self, name) > 0]
        return f"p={float(self.p):.4f}, enabled={enabled}, impl={self.impl}"

    # ---- random draws ----------------------------------------------------------------------------------

    def sample_params(self, batch_size: int, height: int, width: int, device=None,
                      debug_percentile: Optional[float] = None,
                      generator: Optional[torch.Generator] = None, channels: Optional[int] = None) -> AugmentParams:
        """Draw the random parameters for `batch_size` images of `height` x `width` pixels (`draw_params`).

        debug_percentile: if given, every enabled transform fires on every sample, with each random parameter
            set to this percentile of its distribution (normal percentiles are clipped to [1e-4, 1 - 1e-4]).
        generator: torch.Generator on `device` for reproducible draws (default: the global RNG).
        channels: the images' channels (1: no hue or saturation draws, as NVIDIA's pipe).
        """
        return draw_params(self, batch_size, height, width, device, debug_percentile, generator, channels)

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
        n, c, h, w = images.shape
        params = self.sample_params(n, h, w, device=images.device, debug_percentile=debug_percentile, channels=c)
        return self.apply(images, params)

    def apply(self, images: torch.Tensor, params: AugmentParams,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Run the pipe with given parameters; `generator` drives the additive noise.

        Each stage runs on the samples it changes and passes the others through (`on_samples`): the blit and
        geometric stages on those whose transforms fired and whose matrix is not the identity (an x-flip that
        drew no flip, a shift that rounded to 0), colour likewise, filtering, noise and cutout where they fired.
        Under autocast too the pipe computes in the images' dtype (bf16 matrix products would blur reals by up
        to 0.1 on [-1, 1]); D's layers autocast their own inputs.
        """
        self._check_images(images)
        if images.device.type in ("cpu", "cuda"):
            with torch.autocast(images.device.type, enabled=False):
                return self._run(images, params, generator)
        return self._run(images, params, generator)

    def _run(self, images: torch.Tensor, params: AugmentParams, generator: Optional[torch.Generator]
               ) -> torch.Tensor:
        changes = {name: params.stage_fired(stage) & ~identity_rows(matrix) for name, stage, matrix in
                   (("blit", _BLIT, params.blit), ("geom", _GEOM, params.geom), ("color", _COLOR, params.color))}
        if self.impl == "nvidia":
            x = self._warp_nvidia(images, params)
        else:
            x = on_samples(images, changes["blit"], lambda s, i: blit(s, params.blit[i]))
            x = on_samples(x, changes["geom"], lambda s, i: self._warp(s, params.geom[i]))
        x = on_samples(x, changes["color"], lambda s, i: recolor(s, params.color[i]))
        x = on_samples(x, params.fired["imgfilter"], lambda s, i: self._filter(s, params.filter_gains[i]))
        # NVIDIA draws the noise of every sample (with the parameters, when they know the channels), ours that of
        # the noised samples
        full = params.noise
        if full is None and self.impl == "nvidia" and self.noise > 0:
            full = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = on_samples(x, params.noise_std > 0, lambda s, i: s + params.noise_std[i].to(s.dtype)[:, None, None, None]
                       * (full[i].to(s.dtype) if full is not None else
                          torch.randn(s.shape, generator=generator, dtype=s.dtype, device=s.device)))
        x = on_samples(x, params.fired["cutout"], lambda s, i: cut_out(s, params.cutout_center[i], params.cutout_size))
        assert x.shape == images.shape and x.dtype == images.dtype
        return x

    def _warp(self, x: torch.Tensor, geom: torch.Tensor) -> torch.Tensor:
        """Anti-aliased affine warp of x by the sampling matrices geom [N, 3, 3] (`augment_ops.warp`)."""
        return warp(x, geom, self.geom_filter, self.matrices if use_matrices(x) else None)

    def _warp_nvidia(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """NVIDIA's execution of the blit and geometric stages: their matrices composed, one warp
        (`augment_nvidia.warp`) with the padding of the whole batch, on the samples whose matrix is not the
        identity."""
        matrices = params.blit @ params.geom
        change = params.stage_fired(_BLIT + _GEOM) & ~identity_rows(matrices)
        if not change.any():
            return x
        margin = augment_nvidia.warp_margin(matrices, *x.shape[2:])
        return on_samples(x, change, lambda s, i: augment_nvidia.warp(
            s, matrices[i], margin, self.geom_filter, self.matrices if use_matrices(s) else None))

    def _filter(self, x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """Sum of the frequency bands of x weighted by gains [N, bands] (`augment_ops.band_filter`)."""
        return band_filter(x, gains, self.band_filters, self.matrices if use_matrices(x) else None,
                           borders="reflect" if self.impl == "nvidia" else "symmetric")


def make_augment_pipe(name: str, impl: str = "nvidia") -> AugmentPipe:
    """Build the pipe for an official preset name ('bgc' is the ADA paper's default), executed by `impl`."""
    if name not in AUGPIPE_PRESETS:
        raise UserInputError(f"unknown augmentation preset {name!r}; choose one of: {', '.join(AUGPIPE_PRESETS)}.")
    return AugmentPipe(**AUGPIPE_PRESETS[name], impl=impl)
