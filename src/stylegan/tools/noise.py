"""Stochastic variation (StyleGAN, Karras et al. 2019, section 3.2 and figure 4).

For a fixed w, the per-pixel noise inputs change only stochastic details (hair, freckles, background
texture). The figure shows, per latent, the image under several noise draws and the per-pixel standard
deviation over many draws (100 in the paper): bright where noise matters.

Noise can be restricted to some layers (figure 5 of the paper: noise in coarse vs fine layers): every other
layer's learned noise strength is temporarily set to zero by `noise_only_in`, and restored afterwards.
The k-th noise layer of the synthesis network takes the k-th w (true for StyleGAN2, where each conv layer
consumes one w in order, and for StyleGAN v1, two layers per resolution), so layers are selected with the
same ws indices and names ('coarse', 'middle', 'fine') as style mixing. StyleGAN3 has no noise inputs: the
tools refuse it with one line (`check_has_noise`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from .generate import check_batch_size, seed_ws
from ..io.images import to_uint8
from .mixing import resolve_layers


def noise_layers(G: nn.Module) -> List[nn.Module]:
    """The synthesis layers with per-pixel noise, in order; entry k is driven by ws index k."""
    return [m for m in G.synthesis.modules() if getattr(m, "use_noise", False) and hasattr(m, "noise_strength")]


def check_has_noise(G: nn.Module) -> List[nn.Module]:
    """The noise layers of G (see `noise_layers`); UserInputError when it has none (StyleGAN3 has no noise inputs)."""
    modules = noise_layers(G)
    if not modules:
        raise UserInputError(f"this network ({type(G).__name__}) has no per-pixel noise inputs, so there is no "
                             f"stochastic variation to show (StyleGAN3 removed them); use a StyleGAN or StyleGAN2 "
                             f"generator")
    return modules


@contextlib.contextmanager
def noise_only_in(G: nn.Module, layers: Optional[Sequence[int]]) -> Iterator[List[int]]:
    """Within the block, only noise layers whose ws index is in `layers` add noise; strengths restored on exit.

    G:      the generator (its noise strengths are changed in place while the block runs).
    layers: ws indices whose noise stays on; None keeps all. Yields the indices of the noise layers left on.
    """
    modules = check_has_noise(G)
    keep = set(range(len(modules))) if layers is None else set(layers)
    if layers is not None and not keep & set(range(len(modules))):
        raise UserInputError(f"layers {sorted(keep)} have no noise inputs: this network's noise layers are "
                             f"ws indices 0..{len(modules) - 1}")
    saved = [m.noise_strength.detach().clone() for m in modules]
    try:
        with torch.no_grad():
            for k, m in enumerate(modules):
                if k not in keep:
                    m.noise_strength.zero_()
        yield [k for k in range(len(modules)) if k in keep]
    finally:
        with torch.no_grad():
            for m, value in zip(modules, saved):
                m.noise_strength.copy_(value)


@torch.no_grad()
def noise_variation(G: nn.Module, ws: torch.Tensor, num_samples: int = 4, num_std: int = 100,
                    layers: Optional[Union[str, Sequence[int]]] = None, noise_mode: str = "random",
                    noise_seed: int = 0, batch_size: int = 8) -> Tuple[np.ndarray, np.ndarray]:
    """Images of one w under several noise draws, and the per-pixel std over `num_std` draws.

    G:           the generator.
    ws:          one latent, [1, num_ws, w_dim].
    num_samples: images returned (the first draws).
    num_std:     draws the standard deviation is taken over (paper: 100); at least num_samples and 2.
    layers:      ws indices or a spec ('coarse', 'fine', ...) of the layers whose noise stays on; None = all.
    noise_mode:  'random' (stochastic variation), or 'const'/'none' (no variation: the std is zero).
    noise_seed:  seed of the noise draws (global torch RNG state is restored afterwards).
    batch_size:  images per synthesis pass.
    Returns (uint8 samples [num_samples, H, W, C], float32 std [H, W] of the [-1, 1] images, mean over channels).
    """
    if num_samples < 1:
        raise UserInputError(f"number of samples must be >= 1, got {num_samples}")
    if num_std < max(2, num_samples):
        raise UserInputError(f"the std needs at least max(2, samples) = {max(2, num_samples)} draws, got {num_std}")
    check_batch_size(batch_size)
    check_has_noise(G)
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise ValueError(f"ws must be one latent [1, num_ws, w_dim], got shape {list(ws.shape)}")
    keep = None if layers is None else resolve_layers(G, layers)
    device = ws.device
    total = total_sq = ref = None
    samples = []
    with noise_only_in(G, keep), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(noise_seed)
        for start in range(0, num_std, batch_size):
            n = min(batch_size, num_std - start)
            img = G.synthesis(ws.expand(n, -1, -1), noise_mode=noise_mode).double()
            if ref is None:  # sums of differences to the first draw: no cancellation when draws agree
                ref = img[0]
                total, total_sq = torch.zeros_like(ref), torch.zeros_like(ref)
            total += (img - ref).sum(dim=0)
            total_sq += (img - ref).square().sum(dim=0)
            if len(samples) < num_samples:
                samples.extend(to_uint8(img[:num_samples - len(samples)]))
    mean = total / num_std
    var = (total_sq / num_std - mean.square()).clamp_min(0) * (num_std / (num_std - 1))
    return np.stack(samples), var.sqrt().mean(dim=0).float().cpu().numpy()


def std_image(std: np.ndarray, channels: int = 3, scale: Optional[float] = None) -> np.ndarray:
    """Display the std map as uint8 [H, W, channels]: std / scale (default: its maximum), white = largest.

    std:      per-pixel standard deviation [H, W].
    channels: output channels (gray repeated).
    scale:    the std shown as white; None = the map's maximum (all black when the std is zero).
    """
    scale = float(std.max()) if scale is None else scale
    gray = np.zeros_like(std) if scale <= 0 else np.clip(std / scale, 0, 1)
    img = np.round(gray * 255).astype(np.uint8)
    return np.repeat(img[:, :, None], channels, axis=2)


def noise_figure(G: nn.Module, seeds: Sequence[int], num_samples: int = 4, num_std: int = 100,
                 layers: Optional[Union[str, Sequence[int]]] = None, truncation_psi: float = 1.0,
                 truncation_cutoff: Optional[int] = None, class_idx: Optional[int] = None,
                 noise_seed: int = 0, batch_size: int = 8) -> np.ndarray:
    """StyleGAN figure 4 as one uint8 image: a row per seed, `num_samples` noise draws then the std map.

    G:                 the generator.
    seeds:             seeds of the latents (one row each).
    num_samples:       noise draws shown per row.
    num_std:           draws the std map is taken over (paper: 100).
    layers:            layers whose noise stays on (ws indices or 'coarse', 'middle', 'fine', ...); None = all.
    truncation_psi:    truncation psi (1 = none).
    truncation_cutoff: truncate only the first this many ws (None = the network's default).
    class_idx:         class of conditional networks.
    noise_seed:        seed of the noise draws (row i uses noise_seed + i).
    batch_size:        images per synthesis pass.
    """
    seeds = list(seeds)
    if not seeds:
        raise UserInputError("no seeds given")
    check_has_noise(G)
    ws = seed_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx)
    rows = []
    for i in range(len(seeds)):
        samples, std = noise_variation(G, ws[i:i + 1], num_samples, num_std, layers, "random", noise_seed + i,
                                       batch_size)
        rows.append(np.concatenate(list(samples) + [std_image(std, G.img_channels)], axis=1))
    return np.concatenate(rows, axis=0)
