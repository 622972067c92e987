"""Image conversions and writing shared by training and the tools: float NCHW in [-1, 1] <-> uint8, grids, PNG files."""
from __future__ import annotations

import math
import os
from typing import Optional, Union

import numpy as np
import torch
from PIL import Image

from .atomic import atomic_path


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two image tensors in [-1, 1] (peak-to-peak 2); inf when they are equal."""
    mse = (a.float() - b.float()).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] floats in [-1, 1] -> uint8 [N, H, W, C] (the official rounding: x * 127.5 + 128, clamped)."""
    images = (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def grid_shape(count: int, cols: Optional[int] = None) -> tuple:
    """(rows, cols) for `count` images: `cols` if given, else as square as possible."""
    cols = cols or max(1, math.ceil(math.sqrt(count)))
    return math.ceil(count / cols), cols


def make_grid(images: np.ndarray, cols: Optional[int] = None, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 [N, H, W, C] images into one [rows*H, cols*W, C] image."""
    n, h, w, c = images.shape
    rows, cols = grid_shape(n, cols)
    grid = np.full([rows * h, cols * w, c], pad_value, dtype=np.uint8)
    for idx, img in enumerate(images):
        r, col = divmod(idx, cols)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = img
    return grid


def save_image(image: np.ndarray, path: Union[str, os.PathLike]) -> None:
    """Write a uint8 [H, W, C] image (C = 1, 3 or 4) as PNG, atomically."""
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image [H, W, 1|3|4], got shape {list(image.shape)}")
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
