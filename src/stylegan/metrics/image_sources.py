"""Where metric images come from: datasets, image folders/zips, arrays and generators.

An image source has `len()`, `read(start, stop)` -> uint8 `[B, C, H, W]` tensor, an optional
`labels` array (float32 `[N, label_dim]`, for sampling a conditional generator's classes), and a
`fingerprint()` string that changes when the images change (for the statistics cache).
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

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
    """A folder (recursive) or zip of image files of any origin, read in sorted name order."""

    def __init__(self, path: str | os.PathLike):
        """path: folder or .zip holding png/jpg/jpeg/webp/bmp/tif files."""
        from stylegan.data.pixels import is_hidden_name, is_image_name

        self.path = Path(path)
        self.labels = None
        self._zip = None
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
        return len(self.names)

    def _open(self, name: str):
        if self.path.is_dir():
            return open(self.path / name, "rb")
        if self._zip is None or self._zip[0] != os.getpid():
            self._zip = (os.getpid(), zipfile.ZipFile(self.path))
        return self._zip[1].open(name)

    def read(self, start: int, stop: int) -> torch.Tensor:
        from stylegan.data.pixels import IMAGE_READ_ERRORS, image_to_chw, load_image

        images = []
        for name in self.names[start:stop]:
            try:
                with self._open(name) as f:
                    images.append(image_to_chw(load_image(f)))
            except IMAGE_READ_ERRORS as e:
                raise FormatError(f"cannot read image {name} in {self.path}: {e}") from None
        return _stack(images, str(self.path))

    def fingerprint(self) -> str:
        from stylegan.data.dataset import dataset_fingerprint
        return dataset_fingerprint(self.path)


def _stack(images: list, where: str) -> torch.Tensor:
    shapes = {tuple(np.shape(im)) for im in images}
    if len(shapes) > 1:
        raise FormatError(f"images in {where} differ in shape ({sorted(shapes)[:3]}); metrics need one shape [C, H, W]")
    array = np.stack([np.asarray(im) for im in images])
    if array.ndim != 4 or array.dtype != np.uint8:
        raise FormatError(f"images in {where} must be uint8 [C, H, W], got {array.dtype} {list(array.shape[1:])}")
    return torch.from_numpy(array)


def open_real_source(data) -> object:
    """An image source for real data: a dataset path (zip/folder via ImageDataset), a dataset, or an array.

    data: path, ImageDataset-like object, numpy array / tensor `[N, C, H, W]`, or an image source.
    """
    if data is None:
        raise UserInputError("no real data given; pass data= (CLI: --data) with a dataset zip or folder")
    if hasattr(data, "read") and hasattr(data, "fingerprint"):
        return data
    if isinstance(data, (str, os.PathLike)):
        from stylegan.data.dataset import ImageDataset
        return DatasetSource(ImageDataset(data, use_labels=True))
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return ArraySource(data)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return DatasetSource(data)
    raise UserInputError(f"cannot read images from {type(data).__name__}; give a path, a dataset or an [N, C, H, W] array")


def open_fake_source(fakes) -> object:
    """An image source for generated images: a folder/zip of images from anything, or an array.

    fakes: path, numpy array / tensor `[N, C, H, W]`, indexable dataset, or an image source.
    """
    if isinstance(fakes, (str, os.PathLike)):
        return ImageFilesSource(fakes)
    return open_real_source(fakes)
