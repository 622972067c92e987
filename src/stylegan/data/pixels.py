"""Pixel-level helpers shared by the dataset reader and the dataset tool.

Everything that turns "some image file" into "an 8-bit L, RGB or RGBA picture" lives here, so the
reader and the tool agree on what a file means.
"""
from __future__ import annotations

import types

import numpy as np
import PIL.Image
import PIL.ImageOps

# File name endings read as images, by the reader and by the dataset tool.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

# Errors PIL raises for a file that is not an image, or is truncated or corrupt.
IMAGE_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, PIL.Image.DecompressionBombError)

# Output modes and their channel counts (read-only).
CHANNELS_OF_MODE = types.MappingProxyType({"L": 1, "RGB": 3, "RGBA": 4})

_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def is_image_name(name: str) -> bool:
    """True when a file name ends in one of IMAGE_EXTENSIONS (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def is_hidden_name(name: str) -> bool:
    """True for hidden files and macOS resource forks ('a/.DS_Store', '__MACOSX/...'), which
    archivers add without being asked; readers and the tool ignore them silently."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def is_power_of_two(n: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return isinstance(n, (int, np.integer)) and n >= 1 and (n & (n - 1)) == 0


def _palette_is_gray(img: PIL.Image.Image) -> bool:
    palette = img.getpalette()
    if not palette:
        return False
    rgb = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
    return bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())


def natural_mode(img: PIL.Image.Image) -> str:
    """The mode an image is read as, keeping alpha: 'L', 'LA', 'RGB' or 'RGBA' (header only).

    Palette images count as gray when every palette entry is gray; 16-bit and float images count
    as gray; CMYK, YCbCr and the like count as RGB.
    """
    mode = img.mode
    if mode in ("1", "L", "F") or mode in _SIXTEEN_BIT_MODES:
        return "L"
    if mode in ("LA", "La"):
        return "LA"
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in img.info
        if _palette_is_gray(img):
            return "LA" if alpha else "L"
        return "RGBA" if alpha else "RGB"
    if mode in ("RGBA", "RGBa"):
        return "RGBA"
    return "RGB"


def output_mode(natural: str, keep_alpha: bool) -> str:
    """The stored mode ('L', 'RGB' or 'RGBA') for an image of natural mode `natural`."""
    if natural == "LA":
        return "RGBA" if keep_alpha else "L"
    if natural == "RGBA":
        return "RGBA" if keep_alpha else "RGB"
    return natural


def to_mode(img: PIL.Image.Image, mode: str) -> PIL.Image.Image:
    """Convert a loaded image to 'L', 'RGB' or 'RGBA'.

    Transparent pixels are composited on white when alpha is dropped (a transparent background
    reads as paper, which is what most icon and sketch datasets mean). 16-bit gray is scaled to
    8 bits rather than clipped.
    """
    if mode not in CHANNELS_OF_MODE:
        raise ValueError(f"mode must be one of {sorted(CHANNELS_OF_MODE)}, got {mode!r}")
    if img.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img, dtype=np.float64)
        img = PIL.Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = PIL.Image.fromarray(np.clip(np.rint(np.asarray(img)), 0, 255).astype(np.uint8), "L")
    if img.mode == mode:
        return img
    natural = natural_mode(img)
    if natural in ("LA", "RGBA"):
        img = img.convert("RGBA")
        if mode != "RGBA":
            white = PIL.Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = PIL.Image.alpha_composite(white, img)
    return img.convert(mode)


def load_image(fp, *, mode: str | None = None) -> PIL.Image.Image:
    """Fully decode an image file (path or binary file object), upright per its EXIF orientation.

    fp: a path or an open binary file.
    mode: 'L', 'RGB' or 'RGBA' to convert to; None keeps alpha and picks the natural mode.
    Raises one of IMAGE_READ_ERRORS when the file is not a readable image.
    """
    with PIL.Image.open(fp) as img:
        img.load()
        img = PIL.ImageOps.exif_transpose(img)
        img.load()
        return to_mode(img, mode or output_mode(natural_mode(img), keep_alpha=True))


def image_to_chw(img: PIL.Image.Image) -> np.ndarray:
    """uint8 [C, H, W] array from an 'L', 'RGB' or 'RGBA' image."""
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return np.ascontiguousarray(array.transpose(2, 0, 1))
