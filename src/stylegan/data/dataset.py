"""Training data reader: a zip or folder of images with an optional `dataset.json` of labels.

Same layout and semantics as NVIDIA's StyleGAN2-ADA `training/dataset.py` (ImageFolderDataset), so
official dataset zips read here and zips written by `stylegan dataset` read there:

    dataset.zip
      00000/img00000000.png
      00000/img00000001.png
      ...
      dataset.json        {"labels": [["00000/img00000000.png", 3], ...]}   (or {"labels": null})

A label is a class index (turned into a float32 one-hot vector) or a list of floats (used as is).

Example:
    >>> ds = ImageDataset("cifar10.zip", use_labels=True, xflip=True)
    >>> image, label = ds[0]          # uint8 [C, H, W], float32 [label_dim]
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from stylegan.data.pixels import (
    IMAGE_READ_ERRORS,
    image_to_chw,
    is_hidden_name,
    is_image_name,
    is_power_of_two,
    load_image,
)
from stylegan.data.sampler import InfiniteSampler
from stylegan.errors import FormatError, UserInputError

__all__ = ["ImageDataset", "ImageDetails", "InfiniteSampler", "dataset_fingerprint"]

_CONVERT_HINT = "convert it with `stylegan dataset --source SRC --dest OUT.zip --resolution N` first"


@dataclasses.dataclass(frozen=True)
class ImageDetails:
    """Where item `idx` of an ImageDataset comes from."""

    raw_idx: int  # index into the sorted list of image files
    xflip: bool  # whether the item is the mirrored copy
    raw_label: np.ndarray  # the label as stored: int64 class index, float32 vector, or empty


def _list_folder(root: Path) -> list[str]:
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            rel = os.path.relpath(os.path.join(dirpath, filename), root).replace(os.sep, "/")
            names.append(rel)
    return sorted(n for n in names if not is_hidden_name(n))


class ImageDataset(torch.utils.data.Dataset):
    """Images and labels from a dataset zip or a folder of images, read directly.

    path: a `.zip` file or a folder (searched recursively) of png/jpg/jpeg/webp/bmp/tif/tiff files.
    resolution: expected image size; a mismatch is a FormatError (None accepts what is there).
    max_size: keep at most this many images, chosen at random with `random_seed` (None keeps all).
    use_labels: read labels from `dataset.json`; without them `label_dim` is 0.
    xflip: append a horizontally mirrored copy of every image, doubling the length.
    random_seed: seed for choosing the `max_size` subset.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: Optional[int] = None,
        max_size: Optional[int] = None,
        use_labels: bool = False,
        xflip: bool = False,
        random_seed: int = 0,
    ):
        self._path = Path(path)
        self._use_labels = bool(use_labels)
        self._zipfile: Optional[zipfile.ZipFile] = None
        self._zipfile_pid: Optional[int] = None

        if self._path.is_dir():
            self._kind = "dir"
            all_names = _list_folder(self._path)
        elif self._path.is_file():
            if not zipfile.is_zipfile(self._path):
                raise FormatError(f"{self._path} is neither a zip file nor a folder of images; {_CONVERT_HINT}")
            self._kind = "zip"
            all_names = sorted(n for n in self._get_zipfile().namelist() if not n.endswith("/") and not is_hidden_name(n))
        else:
            raise UserInputError(f"dataset not found: {self._path} (give a .zip file or a folder of images)")
        self._image_names = [n for n in all_names if is_image_name(n)]
        self._has_json = "dataset.json" in all_names
        if not self._image_names:
            self.close()
            raise FormatError(f"no image files found in {self._path}; expected .png/.jpg/.webp/.bmp/.tif files"
                              + _foreign_hint(all_names))

        # Shape comes from the first image; every later image is checked against it when read.
        first = self._read_image(0, check=False)
        self._image_shape = list(first.shape)
        c, h, w = self._image_shape
        if h != w or not is_power_of_two(h):
            self.close()
            raise FormatError(
                f"{self._path}: images must be square with a power-of-two size, "
                f"but {self._image_names[0]} is {w}x{h}; {_CONVERT_HINT}"
            )
        if resolution is not None and h != resolution:
            self.close()
            raise FormatError(f"{self._path} holds {w}x{h} images, not the requested {resolution}x{resolution}; {_CONVERT_HINT}")

        self._raw_labels, self._class_names = self._load_labels()

        # Subset and mirror, as the official reader does.
        num_raw = len(self._image_names)
        self._raw_idx = np.arange(num_raw, dtype=np.int64)
        if max_size is not None:
            if max_size < 1:
                raise UserInputError(f"max_size must be at least 1, got {max_size}")
            if num_raw > max_size:
                np.random.RandomState(random_seed % (1 << 31)).shuffle(self._raw_idx)
                self._raw_idx = np.sort(self._raw_idx[:max_size])
        self._xflip = np.zeros(self._raw_idx.size, dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

    # ---- file access -----------------------------------------------------------------------
    def _get_zipfile(self) -> zipfile.ZipFile:
        # A ZipFile shares its file offset with forked children; reopen in every process.
        if self._zipfile is None or self._zipfile_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)
            self._zipfile_pid = os.getpid()
        return self._zipfile

    def _open_file(self, name: str):
        if self._kind == "dir":
            return open(self._path / name, "rb")
        return self._get_zipfile().open(name, "r")

    def close(self) -> None:
        """Close the zip file, if open (it is reopened on the next read)."""
        if self._zipfile is not None and self._zipfile_pid == os.getpid():
            self._zipfile.close()
        self._zipfile = None
        self._zipfile_pid = None

    def __getstate__(self):
        return dict(self.__dict__, _zipfile=None, _zipfile_pid=None)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _read_image(self, raw_idx: int, check: bool = True) -> np.ndarray:
        name = self._image_names[raw_idx]
        try:
            with self._open_file(name) as f:
                image = image_to_chw(load_image(f))
        except (*IMAGE_READ_ERRORS, zipfile.BadZipFile) as e:
            raise FormatError(f"cannot read image {name} in {self._path}: {e}; {_CONVERT_HINT}") from None
        if check and list(image.shape) != self._image_shape:
            raise FormatError(
                f"{name} in {self._path} has shape {list(image.shape)} [C, H, W], but the dataset's "
                f"first image has {self._image_shape}; all images must match; {_CONVERT_HINT}"
            )
        return image

    def _load_labels(self) -> tuple[np.ndarray, Optional[list[str]]]:
        num = len(self._image_names)
        empty = np.zeros([num, 0], dtype=np.float32)
        if not self._use_labels or not self._has_json:
            return empty, None
        try:
            with self._open_file("dataset.json") as f:
                meta = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(f"dataset.json in {self._path} is not valid JSON: {e}") from None
        if not isinstance(meta, dict):
            raise FormatError(f"dataset.json in {self._path} must hold an object with a 'labels' key")
        class_names = meta.get("class_names")
        labels = meta.get("labels")
        if labels is None:
            return empty, class_names
        try:
            by_name = {str(k).replace("\\", "/"): v for k, v in labels}
        except (TypeError, ValueError):
            raise FormatError(f"dataset.json in {self._path}: 'labels' must be a list of [file name, label] pairs") from None
        missing = [n for n in self._image_names if n not in by_name]
        if missing:
            raise FormatError(
                f"dataset.json in {self._path} has no label for {len(missing)} image(s), e.g. {missing[0]}; "
                "give every image a label or set \"labels\": null"
            )
        values = [by_name[n] for n in self._image_names]
        try:
            raw = np.array(values)
        except ValueError:
            raise FormatError(f"dataset.json in {self._path}: labels must all be class indices or all same-length lists") from None
        if raw.ndim == 1 and np.issubdtype(raw.dtype, np.integer):
            raw = raw.astype(np.int64)
            if raw.min() < 0:
                raise FormatError(f"dataset.json in {self._path}: class indices must be >= 0, found {raw.min()}")
        elif raw.ndim == 2 and np.issubdtype(raw.dtype, np.number):
            raw = raw.astype(np.float32)
        else:
            raise FormatError(
                f"dataset.json in {self._path}: each label must be a class index (int) or a list of numbers"
            )
        return raw, class_names

    # ---- public API --------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._raw_idx.size)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 image [C, H, W] and float32 label [label_dim] of item `idx`."""
        image = self._read_image(int(self._raw_idx[idx]))
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return np.array(image, order="C"), self.get_label(idx)  # a writable copy (torch warns on read-only arrays)

    def get_label(self, idx: int) -> np.ndarray:
        """float32 label of item `idx`: one-hot for class labels, empty when unconditional."""
        label = self._raw_labels[self._raw_idx[idx]]
        if label.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[label] = 1
            return onehot
        return label.copy()

    def get_details(self, idx: int) -> ImageDetails:
        """Raw index, mirror flag and stored label of item `idx`."""
        raw_idx = int(self._raw_idx[idx])
        return ImageDetails(raw_idx=raw_idx, xflip=bool(self._xflip[idx]), raw_label=self._raw_labels[raw_idx].copy())

    @property
    def name(self) -> str:
        """File or folder name without extension."""
        return self._path.stem if self._kind == "zip" else self._path.name

    @property
    def path(self) -> Path:
        return self._path

    @property
    def image_shape(self) -> list[int]:
        """[C, H, W]."""
        return list(self._image_shape)

    @property
    def num_channels(self) -> int:
        return self._image_shape[0]

    @property
    def resolution(self) -> int:
        return self._image_shape[1]

    @property
    def label_shape(self) -> list[int]:
        """[label_dim]: number of classes for class labels, vector length for float labels, else 0."""
        if self._raw_labels.dtype == np.int64:
            num_classes = int(self._raw_labels.max()) + 1
            if self._class_names:
                num_classes = max(num_classes, len(self._class_names))
            return [num_classes]
        return list(self._raw_labels.shape[1:])

    @property
    def label_dim(self) -> int:
        return self.label_shape[0]

    @property
    def has_labels(self) -> bool:
        return self.label_dim != 0

    @property
    def has_onehot_labels(self) -> bool:
        return self._raw_labels.dtype == np.int64

    @property
    def class_names(self) -> Optional[list[str]]:
        """`class_names` from dataset.json when labels are used and it has them, else None."""
        return list(self._class_names) if self._class_names else None

    def __repr__(self) -> str:
        return (
            f"ImageDataset({str(self._path)!r}, len={len(self)}, shape={self._image_shape}, "
            f"label_dim={self.label_dim})"
        )


def _foreign_hint(names) -> str:
    """A pointer to `stylegan dataset` where a folder holds a dataset format it converts (TF-era tfrecords, LSUN
    LMDB), else ''."""
    suffixes = {Path(n).suffix.lower() for n in names}
    if ".tfrecords" in suffixes or "data.mdb" in {Path(n).name for n in names}:
        kind = "TF-era .tfrecords" if ".tfrecords" in suffixes else "an LMDB database (LSUN)"
        return (f"; it holds {kind}: convert it first with `stylegan dataset --source FOLDER --dest data.zip` and "
                f"train on the zip")
    return ""


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """Hex digest identifying a dataset's content, for caching statistics computed on it.

    It hashes each image file's name, size and CRC-32 plus `dataset.json`. For a zip these come
    from the central directory (no decompression), so it is fast; a folder holding the same files
    gives the same fingerprint as its zip. Timestamps and compression do not matter.
    """
    path = Path(path)
    entries = []
    if path.is_dir():
        for name in _list_folder(path):
            if is_image_name(name) or name == "dataset.json":
                crc, size = 0, 0
                with open(path / name, "rb") as f:
                    while chunk := f.read(1 << 20):
                        crc = zlib.crc32(chunk, crc)
                        size += len(chunk)
                entries.append((name, size, crc))
    elif path.is_file():
        try:
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    name = info.filename
                    if not info.is_dir() and not is_hidden_name(name) and (is_image_name(name) or name == "dataset.json"):
                        entries.append((name, info.file_size, info.CRC))
        except zipfile.BadZipFile:
            raise FormatError(f"{path} is not a zip file; give a dataset .zip or a folder of images") from None
    else:
        raise UserInputError(f"dataset not found: {path}")
    digest = hashlib.sha256()
    for name, size, crc in sorted(entries):
        digest.update(f"{name}\0{size}\0{crc:08x}\n".encode("utf-8"))
    return digest.hexdigest()
