"""Convert a folder, zip, idx files, CIFAR-10, TF-era .tfrecords or LSUN LMDB into a training zip (NVIDIA's layout).

The output is what NVIDIA's StyleGAN2-ADA `dataset_tool.py` writes, so either project reads it:

    OUT.zip
      00000/img00000000.png ... 00000/img00000999.png, 00001/img00001000.png, ...
      dataset.json   {"labels": [["00000/img00000000.png", 3], ...] or null, "class_names": [...],
                      "conversion": {"transform": ..., "resolution": ..., "resize_filter": ...}}

`class_names` (written when known) and `conversion` (how the pixels were made; `stylegan metrics` converts
other images the same way) are extra; readers that don't know them ignore them.

Pixels: gray images stay 1 channel (L), colour images 3 (RGB). If any image of the source is in
colour, gray ones are stored as RGB too, so that all images match. Transparent images are
composited on white (rgba='composite', the default) or stored as 4-channel RGBA (rgba='keep').
Palette, CMYK, 16-bit and similar modes become L or RGB.

Geometry (`transform`), giving square `resolution` x `resolution` images:
  None               images must already be square; resized if `resolution` differs.
  'center-crop'      crop the largest centred square, then resize.
  'center-crop-wide' keep the full width: scale the width to `resolution` and place the band in the
                     middle of a black square (letterbox); taller-than-wide images are centre-cropped
                     to a square. Same as NVIDIA's option when its --height is the image's own height.
  'pad'              pad the shorter side with black to a square, downscale if larger than
                     `resolution`, and pad further (never upscale) if smaller.
MNIST-style idx sources (MNIST, Fashion-MNIST) need none of this: the source already pads 28x28 to
32x32 with a 2-pixel black border, exactly as NVIDIA's dataset_tool does (`idx.pad_mnist`); a
`resolution` other than 32 then resizes the padded image, as NVIDIA's --width/--height do.

Example:
    >>> convert_dataset("photos/", "photos256.zip", resolution=256, transform="center-crop")
"""
from __future__ import annotations

import dataclasses
import io
import json
import numbers
import os
import types
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

import PIL.Image

from stylegan.data.pixels import CHANNELS_OF_MODE, is_power_of_two, output_mode, to_mode
from stylegan.data.sources import (
    ITEM_READ_ERRORS,
    Source,
    SourceItem,
    SourcePath,
    open_source,
    read_failure_reason,
)
from stylegan.errors import UserInputError
from stylegan.io.atomic import atomic_path

TRANSFORMS = ("center-crop", "center-crop-wide", "pad")
RESIZE_FILTERS = types.MappingProxyType({"lanczos": PIL.Image.Resampling.LANCZOS, "box": PIL.Image.Resampling.BOX})
RGBA_POLICIES = ("composite", "keep")
MIN_RESOLUTION = 4

_PNG_COMPRESS_LEVEL = 3  # small files without the slowness of level 9


class SkippedFileWarning(UserWarning):
    """An input file was left out of the dataset (unreadable, truncated, empty, not an image)."""


@dataclasses.dataclass
class ConversionSummary:
    """What `convert_dataset` wrote."""

    dest: Path  # the zip written
    count: int  # images written
    skipped: list[tuple[str, str]]  # (input name, reason) for each input left out
    resolution: int  # side of the square images
    channels: int  # 1 (L), 3 (RGB) or 4 (RGBA)
    has_labels: bool  # whether dataset.json holds labels
    class_names: Optional[list[str]]  # class index -> name, when known
    source_kind: str  # 'folder', 'zip', 'idx', 'cifar10', 'tfrecords', 'lmdb' (or what the caller named it)

    def __str__(self) -> str:
        labels = f"labels: {len(self.class_names)} classes" if self.class_names else f"labels: {'yes' if self.has_labels else 'no'}"
        skipped = f", skipped {len(self.skipped)} file(s)" if self.skipped else ""
        return (
            f"wrote {self.count} images ({self.resolution}x{self.resolution}, {self.channels} channel(s), "
            f"{labels}) from {self.source_kind} to {self.dest}{skipped}"
        )


# ---- geometry -----------------------------------------------------------------------------------
def _natural_side(size: tuple[int, int], transform: Optional[str]) -> Optional[int]:
    """Side of the square an image becomes before resizing, or None if it is not square."""
    width, height = size
    if transform is None:
        return width if width == height else None
    if transform == "center-crop":
        return min(width, height)
    if transform == "pad":
        return max(width, height)
    return width  # center-crop-wide


def _canvas(mode: str, side: int) -> PIL.Image.Image:
    return PIL.Image.new(mode, (side, side), 0)  # black; fully transparent for RGBA


def _fit(img: PIL.Image.Image, resolution: int, transform: Optional[str], resample) -> PIL.Image.Image:
    """Apply `transform` and resize to `resolution` x `resolution`."""
    width, height = img.size
    if transform == "center-crop" or (transform == "center-crop-wide" and height > width):
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    elif transform == "center-crop-wide":
        band = max(1, round(resolution * height / width))
        if img.size != (resolution, band):
            img = img.resize((resolution, band), resample)
        canvas = _canvas(img.mode, resolution)
        canvas.paste(img, (0, (resolution - band) // 2))
        return canvas
    elif transform == "pad":
        side = max(width, height)
        if side > resolution:
            img = img.resize((max(1, round(width * resolution / side)), max(1, round(height * resolution / side))), resample)
            width, height = img.size
        canvas = _canvas(img.mode, resolution)
        canvas.paste(img, ((resolution - width) // 2, (resolution - height) // 2))
        return canvas
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), resample)
    return img


# ---- checks -------------------------------------------------------------------------------------
def _check_arguments(dest: Path, resolution, transform, max_images, resize_filter, rgba, force) -> None:
    if resolution is not None and (
        not isinstance(resolution, numbers.Integral) or not is_power_of_two(int(resolution)) or resolution < MIN_RESOLUTION
    ):
        raise UserInputError(f"resolution must be a power of two >= {MIN_RESOLUTION} (e.g. 32, 64, 256), got {resolution}")
    if transform is not None and transform not in TRANSFORMS:
        raise UserInputError(f"transform must be one of {', '.join(TRANSFORMS)} (or none), got {transform!r}")
    if resize_filter not in RESIZE_FILTERS:
        raise UserInputError(f"resize_filter must be one of {', '.join(RESIZE_FILTERS)}, got {resize_filter!r}")
    if rgba not in RGBA_POLICIES:
        raise UserInputError(f"rgba must be one of {', '.join(RGBA_POLICIES)}, got {rgba!r}")
    if max_images is not None and max_images < 1:
        raise UserInputError(f"max_images must be at least 1, got {max_images}")
    if dest.suffix.lower() != ".zip":
        raise UserInputError(f"the destination must be a .zip file, got {dest}")
    if dest.is_dir():
        raise UserInputError(f"the destination {dest} is a folder; give a .zip file name")
    if dest.exists() and not force:
        raise UserInputError(f"{dest} already exists; pass --force to overwrite it or choose another name")


def _output_resolution(headers: list[tuple[SourceItem, str, tuple[int, int]]], resolution, transform) -> int:
    """The side every image is written at; errors say which flag fixes a mismatch."""
    sides = {}
    for item, _, size in headers:
        side = _natural_side(size, transform)
        if side is None:
            raise UserInputError(
                f"{item.name} is {size[0]}x{size[1]}, not square; pass --transform center-crop, "
                "center-crop-wide or pad (and --resolution N)"
            )
        sides.setdefault(side, item)
    if resolution is not None:
        return resolution
    if len(sides) > 1:
        (a, item_a), (b, item_b) = sorted(sides.items())[:2]
        raise UserInputError(
            f"images differ in size ({item_a.name}: {a}x{a}, {item_b.name}: {b}x{b}, ...); "
            "pass --resolution N to resize them all"
        )
    side = next(iter(sides))
    if not is_power_of_two(side) or side < MIN_RESOLUTION:
        shape = "images are" if transform is None else f"with --transform {transform} images become"
        raise UserInputError(
            f"{shape} {side}x{side}, not a power of two >= {MIN_RESOLUTION}; pass --resolution N "
            "(e.g. 32, 64, 256) to resize them"
        )
    return side


def _output_mode(headers: list[tuple[SourceItem, str, tuple[int, int]]], keep_alpha: bool) -> str:
    modes = {output_mode(natural, keep_alpha) for _, natural, _ in headers}
    for mode in ("RGBA", "RGB", "L"):
        if mode in modes:
            return mode
    raise AssertionError(modes)


# ---- writing ------------------------------------------------------------------------------------
def _archive_name(index: int) -> str:
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def _png_bytes(img: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="png", compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _progress_callback(progress, total: int):
    """(update(n), close()) for progress=False/True/callable(done, total)."""
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="img", leave=False)
        return (lambda done: bar.update(1)), bar.close
    if callable(progress):
        return (lambda done: progress(done, total)), (lambda: None)
    return (lambda done: None), (lambda: None)


def write_dataset(
    source: Source,
    dest: Union[str, os.PathLike],
    resolution: Optional[int] = None,
    transform: Optional[str] = None,
    max_images: Optional[int] = None,
    resize_filter: str = "lanczos",
    rgba: str = "composite",
    force: bool = False,
    progress: Union[bool, Callable[[int, int], None]] = False,
    on_skip: Optional[Callable[[str, str], None]] = None,
) -> ConversionSummary:
    """Write the items of an opened `Source` to a dataset zip; see `convert_dataset` for arguments."""
    dest = Path(dest)
    _check_arguments(dest, resolution, transform, max_images, resize_filter, rgba, force)
    skipped: list[tuple[str, str]] = []

    def skip(name: str, reason: str) -> None:
        skipped.append((name, reason))
        if on_skip is not None:
            on_skip(name, reason)
        else:
            warnings.warn(f"skipped {name}: {reason}", SkippedFileWarning, stacklevel=3)

    for name, reason in source.skipped:
        skip(name, reason)

    # Pass 1 (headers only): find out the output mode and size before writing anything. With max_images it stops
    # after that many readable headers, as NVIDIA's tool stops reading (an LSUN category holds millions of images).
    headers = []
    for item in source.items:
        if max_images is not None and len(headers) == max_images:
            break
        try:
            natural, size = item.header()
        except ITEM_READ_ERRORS as e:
            skip(item.name, read_failure_reason(e))
            continue
        headers.append((item, natural, size))
    if not headers:
        raise UserInputError("the source holds no readable images; give a folder or archive with png/jpg/webp/bmp/tif files")
    out_resolution = _output_resolution(headers, resolution, transform)
    out_mode = _output_mode(headers, keep_alpha=(rgba == "keep"))
    resample = RESIZE_FILTERS[resize_filter]
    total = len(headers) if max_images is None else min(max_images, len(headers))

    # Pass 2: decode, convert and store, in a temporary file beside the destination.
    update, close_progress = _progress_callback(progress, total)
    labels: list[tuple[str, Any]] = []
    try:
        with atomic_path(dest) as tmp_name, zipfile.ZipFile(tmp_name, "w", compression=zipfile.ZIP_STORED) as archive:
            for item, _, size in headers:
                if len(labels) == total:
                    break
                try:
                    img = item.load()
                except ITEM_READ_ERRORS as e:
                    skip(item.name, read_failure_reason(e))
                    continue
                if _natural_side(img.size, transform) is None:
                    skip(item.name, f"decoded as {img.size[0]}x{img.size[1]}, not square")
                    continue
                img = _fit(to_mode(img, out_mode), out_resolution, transform, resample)
                name = _archive_name(len(labels))
                archive.writestr(name, _png_bytes(img))
                labels.append((name, item.label))
                update(len(labels))
            if not labels:
                raise UserInputError("none of the source's images could be read; see the warnings above")
            has_labels = all(label is not None for _, label in labels)
            if not has_labels and any(label is not None for _, label in labels):
                warnings.warn("some images have no label, so dataset.json stores labels: null", UserWarning, stacklevel=2)
            meta: dict[str, Any] = {"labels": [list(pair) for pair in labels] if has_labels else None}
            if has_labels and source.class_names:
                meta["class_names"] = list(source.class_names)
            # How the pixels were made, so that a metric can convert other images the same way.
            # The source's own geometry (idx: 28 -> 32 padded) is what a metric can redo only where nothing was
            # resized after it.
            unresized = all(size == (out_resolution, out_resolution) for _, _, size in headers)
            recorded = source.transform if source.transform and unresized else transform
            meta["conversion"] = {"transform": recorded, "resolution": out_resolution, "resize_filter": resize_filter}
            archive.writestr("dataset.json", json.dumps(meta))
    finally:
        close_progress()
    return ConversionSummary(
        dest=dest,
        count=len(labels),
        skipped=skipped,
        resolution=out_resolution,
        channels=CHANNELS_OF_MODE[out_mode],
        has_labels=has_labels,
        class_names=list(source.class_names) if has_labels and source.class_names else None,
        source_kind=source.kind,
    )


def convert_dataset(
    source: SourcePath,
    dest: Union[str, os.PathLike],
    resolution: Optional[int] = None,
    transform: Optional[str] = None,
    labels_from_folders: bool = False,
    max_images: Optional[int] = None,
    resize_filter: str = "lanczos",
    rgba: str = "composite",
    force: bool = False,
    progress: Union[bool, Callable[[int, int], None]] = False,
    on_skip: Optional[Callable[[str, str], None]] = None,
) -> ConversionSummary:
    """Convert images into a training zip; returns what was written.

    source: folder of images (recursive), zip of images, idx images file / folder / [images, labels]
        files (MNIST, Fashion-MNIST), CIFAR-10 python archive or folder, TF-era `.tfrecords` folder (its
        highest resolution) or file with its `-rxx.labels`, or LSUN LMDB folder (needs the `lmdb` extra).
    dest: the `.zip` to write; it appears only when complete.
    resolution: side of the output images (a power of two); None keeps the images' own size.
    transform: None, 'center-crop', 'center-crop-wide' or 'pad' for non-square or mixed images.
    labels_from_folders: label each image by its top-level folder (classes sorted by name).
    max_images: stop after writing this many images (None writes all); only the first images whose header
        reads are looked at, so an image among them that then fails to decode leaves the zip one short.
    resize_filter: 'lanczos' (sharp) or 'box' (area average).
    rgba: 'composite' flattens transparency onto white; 'keep' stores 4-channel RGBA.
    force: overwrite `dest` if it exists.
    progress: False, True (a progress bar on stderr) or a callable(done, total).
    on_skip: callable(name, reason) for each input left out; default issues a SkippedFileWarning.
    """
    dest = Path(dest)
    _check_arguments(dest, resolution, transform, max_images, resize_filter, rgba, force)
    with open_source(source, labels_from_folders=labels_from_folders) as opened:
        return write_dataset(
            opened, dest, resolution=resolution, transform=transform, max_images=max_images,
            resize_filter=resize_filter, rgba=rgba, force=force, progress=progress, on_skip=on_skip,
        )
