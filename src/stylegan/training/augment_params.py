"""The random draws of the ADA pipe: which transforms fire on which sample, with which parameters.

`draw_params` draws everything random about one pass through `AugmentPipe` (stylegan.training.augment) and returns
it as `AugmentParams`: one matrix per sample and stage, the filter gains, the noise strength, the cutout centre,
and which transforms fired. The draws are made for the whole batch, in the order of the ADA paper's appendix B;
what a sample draws does not depend on the other samples, and executing the pipe (`AugmentPipe.apply`) draws
nothing but the additive noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Optional, Sequence

import torch

from stylegan.errors import UserInputError

if TYPE_CHECKING:
    from .augment import AugmentPipe

# Assumed share of image power per filter band, low to high (appendix B: gains are normalised so that the
# expected total power stays unchanged).
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


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
    noise: Optional[torch.Tensor] = None  # [N, C, H, W] N(0, 1) images drawn with the parameters (impl 'nvidia')

    def stage_fired(self, names: Sequence[str]) -> torch.Tensor:
        out = torch.zeros_like(self.noise_std, dtype=torch.bool)
        for name in names:
            out = out | self.fired[name]
        return out


def draw_params(pipe: "AugmentPipe", batch_size: int, height: int, width: int, device=None,
                debug_percentile: Optional[float] = None, generator: Optional[torch.Generator] = None,
                channels: Optional[int] = None) -> AugmentParams:
    """Draw the random parameters for `batch_size` images of `height` x `width` pixels (`channels` of them:
    1 skips the hue and saturation draws).

    The draws are NVIDIA's, in its order (training/augment.py): per transform, its value for every sample, then
    its gate (`rand < multiplier * p`); rotation twice (before and after the anisotropic scale); every band of the
    image filter; the noise strength, then its gate; cutout's gate, then its centre. So the same random stream
    gives both pipes the same transforms (and a recorded stream, tagged per transform, replays in order).

    pipe: the AugmentPipe whose probability p, multipliers and spreads the draws follow.

    debug_percentile: if given, every enabled transform fires on every sample, with each random parameter
        set to this percentile of its distribution (normal percentiles are clipped to [1e-4, 1 - 1e-4]).
    generator: torch.Generator on `device` for reproducible draws (default: the global RNG).
    """
    n = int(batch_size)
    device = pipe.p.device if device is None else torch.device(device)
    if debug_percentile is not None:
        debug_percentile = float(debug_percentile)
        if not 0 <= debug_percentile <= 1:
            raise UserInputError(f"debug_percentile={debug_percentile} must be in [0, 1].")
    f32 = dict(dtype=torch.float32, device=device)
    p = pipe.p.to(device)

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

    def gate(multiplier: float, prob: Optional[torch.Tensor] = None) -> torch.Tensor:  # draws even at multiplier 0
        if debug_percentile is not None:
            return torch.full([n], multiplier > 0, dtype=torch.bool, device=device)
        return torch.rand([n], generator=generator, **f32) < (multiplier * p if prob is None else prob)

    ones, zeros = torch.ones([n], **f32), torch.zeros([n], **f32)
    eye3 = torch.eye(3, **f32).expand(n, 3, 3)
    fired = {}

    def drawn(name: str, value, identity, prob: Optional[torch.Tensor] = None):
        """NVIDIA's order: the value for every sample, then the gate; where the gate stays shut, `identity`."""
        if getattr(pipe, name) <= 0:
            fired[name] = torch.zeros([n], dtype=torch.bool, device=device)
            return None
        v = value()
        fired[name] = gate(getattr(pipe, name), prob)
        return torch.where(fired[name].reshape(-1, *[1] * (v.ndim - 1)), v, identity)

    # 1. Pixel blitting: sampling matrix G maps output to input pixels; composing G @ T^-1 applies T last.
    blit = eye3
    i = drawn("xflip", lambda: choice(2), zeros)
    if i is not None:
        blit = blit @ scale2d(1 - 2 * i, ones)
    i = drawn("rotate90", lambda: choice(4), zeros)
    if i is not None:
        blit = blit @ rotate2d(math.pi / 2 * i)
    t = drawn("xint", lambda: (uniform(2) * 2 - 1) * pipe.xint_max, zeros[:, None])
    if t is not None:
        blit = blit @ translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))

    # 2. General geometric transforms.
    geom = eye3
    s = drawn("scale", lambda: torch.exp2(normal() * pipe.scale_std), ones)
    if s is not None:
        geom = geom @ scale2d(1 / s, 1 / s)
    p_rot = 1 - torch.sqrt((1 - pipe.rotate * p).clamp(min=0))  # two chances give overall rotate*p
    theta = drawn("rotate", lambda: (uniform() * 2 - 1) * math.pi * pipe.rotate_max, zeros, p_rot)
    rot_first = fired["rotate"]
    if theta is not None:
        geom = geom @ rotate2d(theta)
    s = drawn("aniso", lambda: torch.exp2(normal() * pipe.aniso_std), ones)
    if s is not None:
        geom = geom @ scale2d(1 / s, s)
    theta = drawn("rotate", lambda: (uniform() * 2 - 1) * math.pi * pipe.rotate_max, zeros, p_rot)
    fired["rotate"] = fired["rotate"] | rot_first
    if theta is not None:
        geom = geom @ rotate2d(theta)
    t = drawn("xfrac", lambda: normal(2) * pipe.xfrac_std, zeros[:, None])
    if t is not None:
        geom = geom @ translate2d(-t[:, 0] * width, -t[:, 1] * height)

    # 3. Colour transforms, composed as C <- T @ C (the later transform acts last). Hue and saturation leave gray
    # images unchanged; on them (channels == 1) nothing is drawn for them, as in NVIDIA's pipe.
    color = torch.eye(4, **f32).expand(n, 4, 4)
    eye_rgb = torch.eye(3, **f32).expand(n, 3, 3)
    v = _luma_axis(ones)
    vvt = torch.outer(v, v).expand(n, 3, 3)
    b = drawn("brightness", lambda: normal() * pipe.brightness_std, zeros)
    if b is not None:
        color = _rgb_affine(eye_rgb, b[:, None].expand(n, 3)) @ color
    c = drawn("contrast", lambda: torch.exp2(normal() * pipe.contrast_std), ones)
    if c is not None:
        color = _rgb_affine(eye_rgb * c[:, None, None]) @ color
    i = drawn("lumaflip", lambda: choice(2), zeros)
    if i is not None:
        color = _rgb_affine(eye_rgb - 2 * vvt * i[:, None, None]) @ color  # Householder reflection of luma
    gray = channels == 1
    theta = None if gray else drawn("hue", lambda: (uniform() * 2 - 1) * math.pi * pipe.hue_max, zeros)
    if theta is not None:
        cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], **f32) / math.sqrt(3)  # [v]_x
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        color = _rgb_affine(cos * eye_rgb + sin * cross + (1 - cos) * vvt) @ color  # Rodrigues rotation about v
    s = None if gray else drawn("saturation", lambda: torch.exp2(normal() * pipe.saturation_std), ones)
    if s is not None:
        color = _rgb_affine(vvt + (eye_rgb - vvt) * s[:, None, None]) @ color
    for name in ("hue", "saturation"):
        fired.setdefault(name, torch.zeros([n], dtype=torch.bool, device=device))

    # 4. Image-space filtering: amplify one band at a time, renormalising to the expected image power. Every band
    # draws (a band of multiplier 0 never fires).
    num_bands = len(BAND_POWER)
    power = torch.tensor(BAND_POWER, **f32)
    gains = torch.ones([n, num_bands], **f32)
    fired["imgfilter"] = torch.zeros([n], dtype=torch.bool, device=device)
    for band, strength in enumerate(pipe.imgfilter_bands if pipe.imgfilter > 0 else ()):
        value = torch.exp2(normal() * pipe.imgfilter_std)
        band_fired = gate(pipe.imgfilter * strength)
        t = torch.ones([n, num_bands], **f32)
        t[:, band] = torch.where(band_fired, value, ones)
        gains = gains * t / (power * t.square()).sum(dim=-1, keepdim=True).sqrt()
        fired["imgfilter"] = fired["imgfilter"] | band_fired

    # 5. Additive noise and 6. cutout (NVIDIA draws the cutout's gate before its centre).
    sigma = drawn("noise", lambda: normal().abs() * pipe.noise_std, zeros)
    noise_std = zeros if sigma is None else sigma
    noise = None  # NVIDIA draws every sample's noise images here, before cutout's draws
    if sigma is not None and channels is not None and getattr(pipe, "impl", "exact") == "nvidia":
        noise = torch.randn([n, channels, height, width], generator=generator, **f32)
    fired["cutout"] = gate(pipe.cutout) if pipe.cutout > 0 else torch.zeros([n], dtype=torch.bool, device=device)
    center = uniform(2) if pipe.cutout > 0 else torch.zeros([n, 2], **f32)

    return AugmentParams(blit=blit, geom=geom, color=color, filter_gains=gains, noise_std=noise_std,
                         cutout_center=center, cutout_size=pipe.cutout_size, fired=fired, noise=noise)

