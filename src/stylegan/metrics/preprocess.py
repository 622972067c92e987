"""Image conventions shared by every feature network.

Every feature network in this package accepts a batch `[N, C, H, W]` in one of two ranges, told
apart by dtype alone so that no guess is ever made from the values:

* `torch.uint8` — pixel values 0..255 (what datasets and image files hold);
* any floating dtype — values in [-1, 1] (what a generator returns; clamped).

Channels: 1 (grayscale, repeated to RGB when a network wants RGB), 2 (grayscale + alpha, alpha
dropped), 3 (RGB), 4 (RGBA, alpha dropped). RGB is turned into grayscale with the ITU-R BT.601
luma weights when a network wants one channel. Each network resizes to its own input size itself
(bilinear, antialiased when shrinking).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan.errors import UserInputError

# ITU-R BT.601 luma weights for RGB -> grayscale.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Return float32 images in [0, 1] from uint8 (0..255) or float ([-1, 1]) images.

    images: `[N, C, H, W]` tensor, uint8 or floating point (see the module docstring).
    """
    if not isinstance(images, torch.Tensor):
        raise UserInputError(f"expected a torch.Tensor of images, got {type(images).__name__}")
    if images.ndim != 4:
        raise UserInputError(
            f"expected images shaped [N, C, H, W], got shape {list(images.shape)}; "
            "add a batch dimension with images[None] for a single image")
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255
    if images.is_floating_point():
        return ((images.to(torch.float32) + 1) / 2).clamp(0, 1)
    raise UserInputError(f"images must be uint8 (0..255) or float ([-1, 1]), got dtype {images.dtype}")


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert `[N, C, H, W]` images to `channels` (1 or 3) channels; alpha is dropped.

    images: float images `[N, C, H, W]` with C in {1, 2, 3, 4}.
    channels: wanted channel count, 1 (grayscale) or 3 (RGB).
    """
    c = images.shape[1]
    if c not in (1, 2, 3, 4):
        raise UserInputError(
            f"images have {c} channels; feature networks take 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)")
    if c in (2, 4):
        images = images[:, : c - 1]
        c -= 1
    if c == channels:
        return images
    if channels == 3:  # c == 1
        return images.expand(-1, 3, -1, -1)
    weights = torch.tensor(_LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of `[N, C, H, W]` to `[N, C, size, size]`; antialiased when shrinking.

    images: float images.
    size: output height and width in pixels.
    """
    if images.shape[2] == size and images.shape[3] == size:
        return images
    shrinking = images.shape[2] > size or images.shape[3] > size
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)


def prepare(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Shorthand: unit range, channel conversion and resize; returns float32 in [0, 1].

    images: uint8 or float `[N, C, H, W]` (see the module docstring).
    size: the network's input resolution.
    channels: the network's input channels (1 or 3).
    """
    return resize(match_channels(to_unit_range(images), channels), size)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Map generator output in [-1, 1] to uint8 0..255 the way saved PNGs would hold it.

    images: float `[N, C, H, W]` in [-1, 1]; values outside are clamped.
    """
    return (images.to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
