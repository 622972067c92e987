"""Where metric images come from: datasets, image folders/zips, arrays and generators.

An image source has `len()`, `read(start, stop)` -> uint8 `[B, C, H, W]` tensor, an optional
`labels` array (float32 `[N, label_dim]`, for sampling a conditional generator's classes), a
`fingerprint()` string that changes when the images change (for the statistics cache), and
`geometry()`: the sizes and modes of its images (`preprocess.ImageGeometry`).

Either side of a metric opens the same way (`open_image_path`): a `.npy`/`.npz` array, a dataset zip or
folder with `dataset.json` (read as a training dataset, labels included), or any folder (recursive) or zip of
image files of any size and mode. When the two sides' formats differ, `ConformedSource` converts each image of
a side with `preprocess.conform_image` (the dataset tool's conversion; see preprocess.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from stylegan.errors import FormatError, UserInputError


class ArraySource:
    """Images held in memory: uint8 `[N, C, H, W]` (or float in [-1, 1], quantised on read)."""

    def __init__(self, images, labels=None):
        """images: numpy array or tensor `[N, C, H, W]`.
        labels: optional `[N, label_dim]` float labels.
        """
        images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        if images.ndim != 4:
            raise UserInputError(f"image arrays must be shaped [N, C, H, W], got {list(images.shape)}")
        if images.is_floating_point():
            from stylegan.metrics.preprocess import quantize
            images = quantize(images)
        elif images.dtype != torch.uint8:
            raise UserInputError(f"image arrays must be uint8 or float in [-1, 1], got {images.dtype}")
        self.images = images.cpu().contiguous()
        self.labels = None if labels is None else np.asarray(labels, np.float32)
        self._fingerprint = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def read(self, start: int, stop: int) -> torch.Tensor:
        return self.images[start:stop]

    def geometry(self):
        from stylegan.metrics.preprocess import ImageGeometry
        n, c, h, w = self.images.shape
        return ImageGeometry.of_shape(w, h, c, "the image array")

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(f"array{list(self.images.shape)}".encode())
            digest.update(self.images.numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class DatasetSource:
    """Any indexable dataset whose items are uint8 `[C, H, W]` images or (image, label) pairs."""

    def __init__(self, dataset, fingerprint: str | None = None):
        """dataset: object with `__len__` and `__getitem__` (e.g. stylegan.data.dataset.ImageDataset).
        fingerprint: content identifier; None = derive it (from the dataset's files when it has a
            `path`, else from all image bytes).
        """
        self.dataset = dataset
        self._fingerprint = fingerprint
        self.labels = None
        if getattr(dataset, "has_labels", False):
            self.labels = np.stack([dataset.get_label(i) for i in range(len(dataset))]).astype(np.float32)

    def __len__(self) -> int:
        return len(self.dataset)

    def _item(self, i: int) -> np.ndarray:
        item = self.dataset[i]
        return np.asarray(item[0] if isinstance(item, (tuple, list)) else item)

    def read(self, start: int, stop: int) -> torch.Tensor:
        return _stack([self._item(i) for i in range(start, stop)], "dataset")

    def geometry(self):
        """One size and mode for all images (a dataset's images share them; later reads check it)."""
        from stylegan.metrics.preprocess import ImageGeometry
        c, h, w = np.shape(self._item(0))
        name = str(getattr(self.dataset, "path", None) or "the dataset")
        return ImageGeometry.of_shape(w, h, c, name)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            path = getattr(self.dataset, "path", None)
            digest = hashlib.sha256()
            if path is not None:
                from stylegan.data.dataset import dataset_fingerprint
                digest.update(dataset_fingerprint(path).encode())
                digest.update(repr(self.dataset).encode())  # length and shape: subsets differ
                raw = getattr(self.dataset, "_raw_idx", None)
                if raw is not None:
                    digest.update(np.asarray(raw).tobytes())
            else:
                for i in range(len(self)):
                    digest.update(np.ascontiguousarray(self._item(i)).tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class ImageFilesSource:
    """A folder (recursive) or zip of image files of any origin, size and mode, read in sorted name order."""

    def __init__(self, path: str | os.PathLike, mirror: bool = False):
        """path: folder or .zip holding png/jpg/jpeg/webp/bmp/tif files.
        mirror: append an x-flipped copy of every image (NVIDIA's --mirror=1 for metrics), doubling the length.
        """
        from stylegan.data.pixels import is_hidden_name, is_image_name

        self.path = Path(path)
        self.mirror = bool(mirror)
        self.labels = None
        self._zip = None
        self._geometry = None
        if self.path.is_dir():
            names = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as z:
                names = [n for n in z.namelist() if not n.endswith("/")]
        elif self.path.exists():
            raise FormatError(f"{self.path} is neither a folder nor a zip of images")
        else:
            raise UserInputError(f"images not found: {self.path} (give a folder or a .zip of images)")
        self.names = sorted(n for n in names if is_image_name(n) and not is_hidden_name(n))
        if not self.names:
            raise FormatError(f"no image files (.png/.jpg/.webp/.bmp/.tif) in {self.path}")

    def __len__(self) -> int:
        return len(self.names) * (2 if self.mirror else 1)

    def geometry(self):
        """Sizes and modes of all images, from their headers (as the dataset tool reads them)."""
        if self._geometry is None:
            from stylegan.data.sources import ITEM_READ_ERRORS, _header_from_file
            from stylegan.metrics.preprocess import ImageGeometry
            sizes, modes = set(), set()
            for name in self.names:
                try:
                    with self._open(name) as f:
                        mode, size = _header_from_file(f)
                except ITEM_READ_ERRORS as e:
                    raise FormatError(f"cannot read image {name} in {self.path}: {e}") from None
                sizes.add(size)
                modes.add(mode)
            self._geometry = ImageGeometry(frozenset(sizes), frozenset(modes), str(self.path))
        return self._geometry

    def _open(self, name: str):
        if self.path.is_dir():
            return open(self.path / name, "rb")
        if self._zip is None or self._zip[0] != os.getpid():
            self._zip = (os.getpid(), zipfile.ZipFile(self.path))
        return self._zip[1].open(name)

    def pil_images(self, start: int, stop: int) -> list:
        """Images start..stop-1 as decoded PIL images (sizes and modes as in the files)."""
        import PIL.Image

        from stylegan.data.pixels import IMAGE_READ_ERRORS, load_image

        images = []
        for i in range(start, min(stop, len(self))):
            name = self.names[i % len(self.names)]
            try:
                with self._open(name) as f:
                    image = load_image(f)
            except IMAGE_READ_ERRORS as e:
                raise FormatError(f"cannot read image {name} in {self.path}: {e}") from None
            images.append(image.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT) if i >= len(self.names) else image)
        return images

    def read(self, start: int, stop: int) -> torch.Tensor:
        from stylegan.data.pixels import image_to_chw
        return _stack([image_to_chw(im) for im in self.pil_images(start, stop)], str(self.path))

    def fingerprint(self) -> str:
        from stylegan.data.dataset import dataset_fingerprint
        return dataset_fingerprint(self.path) + ("-mirror" if self.mirror else "")


def _stack(images: list, where: str) -> torch.Tensor:
    shapes = {tuple(np.shape(im)) for im in images}
    if len(shapes) > 1:
        raise FormatError(f"images in {where} differ in shape ({sorted(shapes)[:3]}); metrics need one shape [C, H, W]")
    array = np.stack([np.asarray(im) for im in images])
    if array.ndim != 4 or array.dtype != np.uint8:
        raise FormatError(f"images in {where} must be uint8 [C, H, W], got {array.dtype} {list(array.shape[1:])}")
    return torch.from_numpy(array)


def load_image_array(path: str | os.PathLike) -> np.ndarray:
    """uint8 images `[N, C, H, W]` from a `.npy` file or an `.npz` file's only array (or its 'arr_0').

    Layouts: `[N, H, W, C]` (C 1-4, what clean-fid and most sample dumps write), `[N, C, H, W]`, or `[N, H, W]`
    (gray). The layout is read from where a dimension of 1-4 sits: last means channels-last.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"images not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            array = loaded
        else:
            with loaded:
                keys = list(loaded.files)
                key = keys[0] if len(keys) == 1 else "arr_0" if "arr_0" in keys else None
                if key is None:
                    raise FormatError(f"{path} holds several arrays ({', '.join(keys)}); keep the images alone or "
                                      f"as 'arr_0'")
                array = loaded[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise FormatError(f"{path} is not a readable .npy/.npz array ({e})") from None
    if array.dtype != np.uint8:
        raise FormatError(f"{path}: images must be uint8 (0..255), got {array.dtype}")
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and 1 <= array.shape[3] <= 4 and not 1 <= array.shape[1] <= 4:
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or not 1 <= array.shape[1] <= 4:
        raise FormatError(f"{path}: expected images [N, H, W, C], [N, C, H, W] or [N, H, W], got {list(array.shape)}")
    return np.ascontiguousarray(array)


def open_image_path(path: str | os.PathLike, mirror: bool = False) -> object:
    """The image source for a path, the same for either side of a metric.

    path: `.npy`/`.npz` array; dataset zip or folder with `dataset.json` and square power-of-two images (read as
        a training dataset, labels included); or any other folder (recursive) or zip of image files.
    mirror: add x-flipped copies (NVIDIA's calc_metrics --mirror=1).
    """
    path = Path(path)
    if path.suffix.lower() in (".npy", ".npz"):
        images = torch.from_numpy(load_image_array(path))
        return ArraySource(torch.cat([images, images.flip(3)]) if mirror else images)
    if not path.exists():
        raise UserInputError(f"images not found: {path} (give a folder, a .zip of images, a dataset zip or an "
                             f".npy/.npz array)")
    files = ImageFilesSource(path, mirror=mirror)
    if _has_dataset_json(path) and _training_shaped(files):
        from stylegan.data.dataset import ImageDataset
        return DatasetSource(ImageDataset(path, use_labels=True, xflip=mirror))
    return files


def _training_shaped(files: ImageFilesSource) -> bool:
    """Whether the first image is square with a power-of-two side (what the training dataset reader takes)."""
    from stylegan.data.pixels import is_power_of_two
    from stylegan.data.sources import ITEM_READ_ERRORS, _header_from_file
    try:
        with files._open(files.names[0]) as f:
            _, (width, height) = _header_from_file(f)
    except ITEM_READ_ERRORS:
        return True  # let the dataset reader report it
    return width == height and is_power_of_two(width)


def recorded_transform(source) -> Optional[str]:
    """The transform `stylegan dataset` recorded in a dataset's `dataset.json` ('pad' for MNIST idx files), or None.

    source: an image source; only dataset zips/folders made by the dataset tool record one.
    """
    path = getattr(source, "path", None) or getattr(getattr(source, "dataset", None), "path", None)
    if path is None or not _has_dataset_json(Path(path)):
        return None
    path = Path(path)
    try:
        if path.is_dir():
            meta = json.loads((path / "dataset.json").read_text())
        else:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read("dataset.json"))
    except (ValueError, UnicodeDecodeError, OSError, zipfile.BadZipFile):
        return None  # the dataset reader reports a broken dataset.json where it matters
    conversion = meta.get("conversion") if isinstance(meta, dict) else None
    transform = conversion.get("transform") if isinstance(conversion, dict) else None
    return transform if isinstance(transform, str) else None


def _has_dataset_json(path: Path) -> bool:
    if path.is_dir():
        return (path / "dataset.json").is_file()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return "dataset.json" in z.namelist()
    return False


def open_real_source(data, mirror: bool = False) -> object:
    """An image source for real data: a path (see `open_image_path`), a dataset, or an array.

    data: path, ImageDataset-like object, numpy array / tensor `[N, C, H, W]`, or an image source.
    mirror: with a path, add x-flipped copies of its images.
    """
    if data is None:
        raise UserInputError("no real data given; pass data= (CLI: --data) with a dataset zip or folder")
    if hasattr(data, "read") and hasattr(data, "fingerprint"):
        return data
    if isinstance(data, (str, os.PathLike)):
        return open_image_path(data, mirror=mirror)
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return ArraySource(data)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return DatasetSource(data)
    raise UserInputError(f"cannot read images from {type(data).__name__}; give a path, a dataset or an [N, C, H, W] array")


def open_fake_source(fakes) -> object:
    """An image source for generated images, opened as real ones are (see `open_image_path`).

    fakes: path, numpy array / tensor `[N, C, H, W]`, indexable dataset, or an image source.
    """
    return open_real_source(fakes)


class ConformedSource:
    """Another source's images, each converted to a common format by `preprocess.conform_image`."""

    def __init__(self, source, fmt):
        """source: an image source (anything with read(), or pil_images() giving PIL images of any size).
        fmt: the `preprocess.MatchedFormat` to convert to.
        """
        self.source, self.fmt = source, fmt
        self.labels = getattr(source, "labels", None)

    def __len__(self) -> int:
        return len(self.source)

    def read(self, start: int, stop: int) -> torch.Tensor:
        from stylegan.metrics.preprocess import conform_image
        if hasattr(self.source, "pil_images"):
            images = self.source.pil_images(start, stop)
        else:
            images = list(self.source.read(start, stop).numpy())
        return torch.from_numpy(np.stack([conform_image(im, self.fmt) for im in images]))

    def geometry(self):
        from stylegan.metrics.preprocess import ImageGeometry
        return ImageGeometry(frozenset([(self.fmt.side, self.fmt.side)]), frozenset([self.fmt.mode]))

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.source.fingerprint()}{self.fmt}".encode()).hexdigest()


def match_sources(real, fake, resolution=None, transform=None, resize_filter: str = "lanczos"):
    """(real, fake, note): both sides in one format (`preprocess.match_format`); note says what was converted.

    real, fake: image sources with geometry(); either may be None or lack geometry() (then nothing is matched).
    resolution, transform, resize_filter: see `preprocess.match_format`.
    """
    from stylegan.metrics.preprocess import match_format
    if real is None or fake is None or not (hasattr(real, "geometry") and hasattr(fake, "geometry")):
        return real, fake, None  # one side only, or a caller's own source that cannot describe its images
    real_geometry, fake_geometry = real.geometry(), fake.geometry()
    recorded = None
    if transform is None:  # convert as the dataset tool made the data side (e.g. MNIST idx files were padded)
        transform = recorded = recorded_transform(real) or recorded_transform(fake)
    fmt = match_format(real_geometry, fake_geometry, resolution, transform, resize_filter)
    if fmt is None or (recorded and fmt.holds(real_geometry) and fmt.holds(fake_geometry)):
        return real, fake, None
    notes = [f"transform {recorded} as recorded in dataset.json"] if recorded and fmt.transform else []
    for name, geometry in (("fakes", fake_geometry), ("data", real_geometry)):
        notes.append(f"{name} {geometry.describe()} -> " + ("as is" if fmt.holds(geometry) else fmt.describe()))
    wrap = lambda source, geometry: source if fmt.holds(geometry) else ConformedSource(source, fmt)
    return wrap(real, real_geometry), wrap(fake, fake_geometry), "; ".join(notes)
