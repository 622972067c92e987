"""Image conventions shared by every feature network.

Every feature network in this package accepts a batch `[N, C, H, W]` in one of two ranges, told
apart by dtype alone so that no guess is ever made from the values:

* `torch.uint8` — pixel values 0..255 (what datasets and image files hold);
* any floating dtype — values in [-1, 1] (what a generator returns; clamped).

Channels: 1 (grayscale, repeated to RGB when a network wants RGB), 2 (grayscale + alpha, alpha
dropped), 3 (RGB), 4 (RGBA, alpha dropped). RGB is turned into grayscale with the ITU-R BT.601
luma weights when a network wants one channel. Each network resizes to its own input size itself
(bilinear, antialiased when shrinking).

Two image sets of different formats (`match_format` + `conform_image`, used by `compute_metric` for both
sides alike): each side is described by the sizes and modes its images have (`ImageGeometry`). When both sides
hold images of one and the same size, no pixel is resized. Otherwise every image of both sides goes through
`conform_image`, which is the dataset tool's own conversion (`stylegan dataset`: its mode conversion, then its
geometry `transform` and resize filter) to one common square side:

* `resolution` when given; else the size of the side whose images share one size (both do: the larger);
  else a UserInputError asks for a resolution;
* `transform` as in `stylegan dataset` (None: square images resized; 'center-crop', 'center-crop-wide',
  'pad'); images that are not square need one, as in the dataset tool;
* mode 'RGB' when either side holds colour images, else 'L'; transparency is composited on white.

So a folder of 28x28 PNGs and the 32x32 dataset zip `stylegan dataset --resolution 32` made from it meet as the
same 32x32 pixels (give `transform='pad'` when the zip was padded, as MNIST idx conversions are). An image that
already has the common format is left as it is; the feature networks then resize both sides alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

import numpy as np
import PIL.Image
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


# ---- two image sets of different formats -----------------------------------------------------------

_MODE_OF_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


@dataclass(frozen=True)
class ImageGeometry:
    """The sizes and modes the images of one side have (from file headers, array shapes or a generator).

    sizes: every (width, height) present.
    modes: every natural mode present: 'L', 'LA', 'RGB', 'RGBA' (see stylegan.data.pixels.natural_mode).
    example: a name to quote in messages (a file name, or what the side is).
    """

    sizes: FrozenSet[Tuple[int, int]]
    modes: FrozenSet[str]
    example: str = ""

    @classmethod
    def of_shape(cls, width: int, height: int, channels: int, example: str = "") -> "ImageGeometry":
        """Images that all are `width` x `height` with `channels` (1-4) channels."""
        if channels not in _MODE_OF_CHANNELS:
            raise UserInputError(f"{example or 'images'}: {channels} channels; expected 1 (gray) to 4 (RGBA)")
        return cls(frozenset([(width, height)]), frozenset([_MODE_OF_CHANNELS[channels]]), example)

    def describe(self) -> str:
        sizes = ", ".join(f"{w}x{h}" for w, h in sorted(self.sizes)[:3]) + (", ..." if len(self.sizes) > 3 else "")
        return f"{sizes} {'/'.join(sorted(self.modes))}"


@dataclass(frozen=True)
class MatchedFormat:
    """The common format both sides are converted to (None: a side keeps its images as they are).

    side: output height and width.
    mode: 'L' or 'RGB'.
    transform: the dataset tool's transform: None, 'center-crop', 'center-crop-wide' or 'pad'.
    resize_filter: the dataset tool's resize filter: 'lanczos' or 'box'.
    """

    side: int
    mode: str
    transform: Optional[str] = None
    resize_filter: str = "lanczos"

    def holds(self, geometry: ImageGeometry) -> bool:
        """Whether every image of `geometry` already has this format (then no transform changes it)."""
        return geometry.sizes == {(self.side, self.side)} and geometry.modes == {self.mode}

    def describe(self) -> str:
        how = f"transform {self.transform}" if self.transform else "resize"
        return f"{self.side}x{self.side} {self.mode} by the dataset tool's conversion ({how}, {self.resize_filter})"


def _natural_side(size: Tuple[int, int], transform: Optional[str], example: str) -> int:
    from stylegan.data.dataset_tool import _natural_side as tool_side
    side = tool_side(size, transform)
    if side is None:
        raise UserInputError(f"{example} holds {size[0]}x{size[1]} images, not square; pass a transform "
                             f"(--transform center-crop, center-crop-wide or pad), as for `stylegan dataset`")
    return side


def match_format(real: ImageGeometry, fake: ImageGeometry, resolution: Optional[int] = None,
                 transform: Optional[str] = None, resize_filter: str = "lanczos") -> Optional[MatchedFormat]:
    """The common format of two image sets (see the module docstring), or None when both already share one.

    real, fake: the geometry of each side.
    resolution: the common side; None = chosen as the module docstring says.
    transform: the dataset tool's transform for non-square or differently shaped images.
    resize_filter: 'lanczos' (the dataset tool's default) or 'box'.
    """
    from stylegan.data.dataset_tool import RESIZE_FILTERS, TRANSFORMS
    if transform is not None and transform not in TRANSFORMS:
        raise UserInputError(f"transform must be one of {', '.join(TRANSFORMS)} (or none), got {transform!r}")
    if resize_filter not in RESIZE_FILTERS:
        raise UserInputError(f"resize filter must be one of {', '.join(RESIZE_FILTERS)}, got {resize_filter!r}")
    if resolution is not None and resolution < 1:
        raise UserInputError(f"resolution must be a positive number of pixels, got {resolution}")
    modes = real.modes | fake.modes
    mode = "RGB" if modes & {"RGB", "RGBA"} else "L"
    same_size = len(real.sizes) == 1 and real.sizes == fake.sizes
    if resolution is None and transform is None and same_size:
        if real.modes == fake.modes == {mode}:
            return None
        # Same size, different channels: only the mode is converted.
        (width, height), = real.sizes
        if width == height:
            return MatchedFormat(width, mode, None, resize_filter)
    if resolution is None:
        sides = [{_natural_side(size, transform, g.example) for size in g.sizes} for g in (real, fake)]
        single = [next(iter(s)) for s in sides if len(s) == 1]
        if not single:
            raise UserInputError(f"{real.example} and {fake.example} both hold images of several sizes; pass a "
                                 f"resolution (--resolution N) to convert them to")
        resolution = max(single)
    else:
        for g in (real, fake):
            for size in g.sizes:
                _natural_side(size, transform, g.example)
    return MatchedFormat(int(resolution), mode, transform, resize_filter)


def to_pil(image: np.ndarray) -> PIL.Image.Image:
    """A PIL image from a uint8 `[C, H, W]` array with 1-4 channels."""
    c = image.shape[0]
    if image.ndim != 3 or c not in _MODE_OF_CHANNELS or image.dtype != np.uint8:
        raise UserInputError(f"expected a uint8 [C, H, W] image with 1-4 channels, got {image.dtype} "
                             f"{list(image.shape)}")
    return PIL.Image.fromarray(image[0] if c == 1 else np.ascontiguousarray(image.transpose(1, 2, 0)),
                              _MODE_OF_CHANNELS[c])


def conform_image(image: PIL.Image.Image, fmt: MatchedFormat) -> np.ndarray:
    """One image in the common format, as the dataset tool would store it: uint8 `[C, side, side]`.

    image: a PIL image (any mode the dataset tool reads) or a uint8 `[C, H, W]` array.
    fmt: the common format from `match_format`.
    """
    from stylegan.data.dataset_tool import RESIZE_FILTERS, _fit
    from stylegan.data.pixels import image_to_chw, to_mode
    if isinstance(image, np.ndarray):
        image = to_pil(image)
    image = to_mode(image, fmt.mode)
    if image.size != (fmt.side, fmt.side):  # every transform leaves a side x side image as it is
        image = _fit(image, fmt.side, fmt.transform, RESIZE_FILTERS[fmt.resize_filter])
    return image_to_chw(image)
