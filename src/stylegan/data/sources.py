"""Inputs of the dataset tool: images (folder, zip), MNIST-style idx files, CIFAR-10, TF-era .tfrecords, LSUN LMDB.

`open_source(path)` recognises the kind and yields a `Source`: its items, each able to read
its header (mode and size, cheap) and to load its pixels, plus labels and class names. Files that
cannot be used are listed in `Source.skipped` with the reason instead of stopping the run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import PIL.Image

from stylegan.data import cifar10, idx, lmdb_source, tfrecords
from stylegan.data.pixels import IMAGE_READ_ERRORS, is_hidden_name, is_image_name, load_image, natural_mode
from stylegan.errors import FormatError, UserInputError

_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # orientations that swap width and height


@dataclasses.dataclass
class SourceItem:
    """One picture of a source."""

    name: str  # where it came from, shown in warnings (relative path, or "file#index")
    label: Any  # class index, list of floats, or None
    header: Callable[[], tuple[str, tuple[int, int]]]  # -> (natural mode, (width, height)) upright
    load: Callable[[], PIL.Image.Image]  # -> decoded image in its natural mode ('L', 'RGB', 'RGBA')


@dataclasses.dataclass
class Source:
    """Everything the dataset tool needs from an input."""

    kind: str  # 'folder', 'zip', 'idx', 'cifar10', 'tfrecords' or 'lmdb'
    items: Iterable[SourceItem]  # a list, or made while iterated for large sources (LMDB: millions of entries)
    class_names: Optional[list[str]] = None
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (name, reason)
    transform: Optional[str] = None  # geometry the source already applied to its images (idx: 'pad' 28 -> 32)


SourcePath = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


class EmptyFileError(OSError):
    """A zero-byte file where an image was expected."""


# Errors that mean "this one item cannot be used", as opposed to a broken source.
ITEM_READ_ERRORS = (*IMAGE_READ_ERRORS, zipfile.BadZipFile, zlib.error)


def read_failure_reason(error: BaseException) -> str:
    """A short human reason for an image that could not be read."""
    if isinstance(error, EmptyFileError):
        return "empty file (0 bytes)"
    if isinstance(error, PIL.UnidentifiedImageError):
        return "not a recognised image file"
    if isinstance(error, tfrecords.BadRecordError):
        return f"bad record: {error.reason}"
    text = str(error).strip() or type(error).__name__
    return f"unreadable or truncated ({text})"


def _header_from_file(fp) -> tuple[str, tuple[int, int]]:
    with PIL.Image.open(fp) as img:
        width, height = img.size
        if img.getexif().get(_EXIF_ORIENTATION) in _ROTATED_ORIENTATIONS:
            width, height = height, width
        return natural_mode(img), (width, height)


# ---- folder and zip of images ------------------------------------------------------------------
def _labels_for(
    names: list[str], labels_from_folders: bool, dataset_json: Optional[dict], source: Path
) -> tuple[dict[str, Any], Optional[list[str]], list[tuple[str, str]]]:
    """Label of each image name, class names, and images to skip (outside any class folder)."""
    skipped = []
    if labels_from_folders:
        classes = sorted({n.split("/", 1)[0] for n in names if "/" in n})
        if not classes:
            raise UserInputError(
                f"--labels-from-folders: {source} has no subfolders; put each class's images in a folder named after it"
            )
        index = {c: i for i, c in enumerate(classes)}
        labels = {}
        for n in names:
            if "/" in n:
                labels[n] = index[n.split("/", 1)[0]]
            else:
                skipped.append((n, "not inside a class folder (needed with --labels-from-folders)"))
        return labels, classes, skipped
    if dataset_json and isinstance(dataset_json.get("labels"), list):
        try:
            labels = {str(k).replace("\\", "/"): v for k, v in dataset_json["labels"]}
        except (TypeError, ValueError):
            raise FormatError(f"dataset.json in {source}: 'labels' must be a list of [file name, label] pairs") from None
        class_names = dataset_json.get("class_names")
        return labels, class_names if isinstance(class_names, list) else None, skipped
    return {}, None, skipped


def _read_json(data: bytes, where: str) -> dict:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"{where} is not valid JSON ({e}); fix or delete it") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{where} must hold a JSON object like {{\"labels\": [...]}}")
    return meta


def _image_listing(all_names: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    images, skipped = [], []
    for n in all_names:
        if is_hidden_name(n) or n == "dataset.json":
            continue
        if is_image_name(n):
            images.append(n)
        else:
            skipped.append((n, "not an image file (unknown extension)"))
    return images, skipped


def _file_item(name: str, opener: Callable[[], Any], size: int, label: Any) -> SourceItem:
    def header():
        if size == 0:
            raise EmptyFileError(name)
        with opener() as f:
            return _header_from_file(f)

    def load():
        with opener() as f:
            return load_image(f)

    return SourceItem(name=name, label=label, header=header, load=load)


def _folder_source(root: Path, labels_from_folders: bool) -> Source:
    all_names = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            all_names.append(os.path.relpath(os.path.join(dirpath, filename), root).replace(os.sep, "/"))
    all_names.sort()
    images, skipped = _image_listing(all_names)
    meta = _read_json((root / "dataset.json").read_bytes(), f"{root}/dataset.json") if "dataset.json" in all_names else None
    labels, class_names, outside = _labels_for(images, labels_from_folders, meta, root)
    skipped += outside
    outside_names = {n for n, _ in outside}
    items = []
    for n in images:
        if n in outside_names:
            continue
        path = root / n
        try:
            size = path.stat().st_size
        except OSError as e:  # e.g. a broken symbolic link
            skipped.append((n, f"cannot access ({e.strerror or e})"))
            continue
        items.append(_file_item(n, lambda path=path: open(path, "rb"), size, labels.get(n)))
    return Source(kind="folder", items=items, class_names=class_names, skipped=skipped)


def _zip_source(archive: zipfile.ZipFile, where: Path, labels_from_folders: bool) -> Source:
    infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
    images, skipped = _image_listing(sorted(infos))
    meta = _read_json(archive.read("dataset.json"), f"{where}/dataset.json") if "dataset.json" in infos else None
    labels, class_names, outside = _labels_for(images, labels_from_folders, meta, where)
    skipped += outside
    outside_names = {n for n, _ in outside}
    items = []
    for n in images:
        if n in outside_names:
            continue
        # Read the member into memory: zip members are not seekable on every Python version.
        opener = lambda n=n: io.BytesIO(archive.read(n))  # noqa: E731
        items.append(_file_item(n, opener, infos[n].file_size, labels.get(n)))
    return Source(kind="zip", items=items, class_names=class_names, skipped=skipped)


# ---- arrays (idx, CIFAR) -------------------------------------------------------------------------
def array_items(images: np.ndarray, labels: Optional[np.ndarray], name: str) -> list[SourceItem]:
    """Items for uint8 images [N, H, W] (gray) or [N, H, W, 3] (RGB) with optional int labels [N]."""
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise FormatError(f"{name}: expected uint8 images [N, H, W] or [N, H, W, 3], got {images.dtype} {list(images.shape)}")
    mode = "L" if images.ndim == 3 else "RGB"
    size = (images.shape[2], images.shape[1])
    items = []
    for i in range(images.shape[0]):
        label = None if labels is None else int(labels[i])
        items.append(
            SourceItem(
                name=f"{name}#{i}",
                label=label,
                header=lambda: (mode, size),
                load=lambda i=i: PIL.Image.fromarray(images[i], mode),
            )
        )
    return items


def _idx_source(paths: list[Path]) -> Source:
    images_path, labels_path = idx.find_idx_pair(paths)
    images = idx.read_idx(images_path)
    if images.ndim != 3:
        raise FormatError(f"{images_path}: expected images [N, H, W], got shape {list(images.shape)}")
    padded = idx.pad_mnist(images)  # 28x28 -> 32x32 with a black border, as NVIDIA's dataset_tool
    transform = "pad" if padded is not images else None
    images = padded
    labels = None
    if labels_path is not None:
        labels = idx.read_idx(labels_path)
        if labels.shape != (images.shape[0],):
            raise FormatError(
                f"{labels_path} holds {labels.shape[0] if labels.ndim else 0} labels but {images_path} holds "
                f"{images.shape[0]} images; give matching files"
            )
    return Source(kind="idx", items=array_items(images, labels, images_path.name), transform=transform)


def _cifar_source(path: Path) -> Source:
    images, labels, class_names = cifar10.read_cifar10(path)
    return Source(kind="cifar10", items=array_items(images, labels, path.name), class_names=class_names)


# ---- record files (TF-era .tfrecords, LSUN LMDB) -------------------------------------------------
def _chw_to_image(chw: np.ndarray) -> PIL.Image.Image:
    return PIL.Image.fromarray(chw[0], "L") if chw.shape[0] == 1 else PIL.Image.fromarray(chw.transpose(1, 2, 0), "RGB")


@contextlib.contextmanager
def _tfrecords_source(path: Path) -> Iterator[Source]:
    chosen = tfrecords.choose_file(path)
    with tfrecords.TFRecordImages(chosen) as records:
        labels_path = tfrecords.labels_file(chosen)
        labels = None
        if labels_path is not None:
            labels = tfrecords.read_labels(labels_path, len(records), complete=records.tail_problem is None)
        channels, height, width = records.shape
        mode = "L" if channels == 1 else "RGB"
        items = [
            SourceItem(
                name=f"{chosen.name}#{i}",
                label=None if labels is None else labels[i],
                header=lambda: (mode, (width, height)),  # every record holds the file's shape (checked on load)
                load=lambda i=i: _chw_to_image(records.read(i)),
            )
            for i in range(len(records))
        ]
        skipped = [(f"{chosen.name}#{len(records)} onwards", records.tail_problem)] if records.tail_problem else []
        yield Source(kind="tfrecords", items=items, skipped=skipped)


class _LmdbItems:
    """The entries of an LMDB database as source items, made while iterating (LSUN categories hold millions)."""

    def __init__(self, db: lmdb_source.LmdbDatabase):
        self._db = db

    def __len__(self) -> int:
        return len(self._db)

    def __iter__(self) -> Iterator[SourceItem]:
        prefix = self._db.folder.name
        for key, size in self._db.entries():
            opener = lambda key=key: io.BytesIO(self._db.value(key))  # noqa: E731
            yield _file_item(f"{prefix}#{key.decode('ascii', 'backslashreplace')}", opener, size, None)


@contextlib.contextmanager
def _lmdb_source(path: Path) -> Iterator[Source]:
    with lmdb_source.LmdbDatabase(path) as db:
        yield Source(kind="lmdb", items=_LmdbItems(db))


# ---- dispatch -----------------------------------------------------------------------------------
def _has_file_ending(folder: Path, suffix: str) -> bool:
    return any(p.name.endswith(suffix) for p in folder.iterdir())


def detect_kind(path: Path) -> str:
    """'folder', 'zip', 'idx', 'cifar10', 'tfrecords' or 'lmdb' for an existing path."""
    if lmdb_source.is_lmdb(path):
        return "lmdb"
    if path.is_dir():
        if _has_file_ending(path, tfrecords.SUFFIX):
            return "tfrecords"
        if _has_file_ending(path, tfrecords.LABELS_NAME_END):
            raise UserInputError(f"{path} holds a {tfrecords.LABELS_NAME_END} file but no {tfrecords.SUFFIX} files; "
                                 "give the whole folder written by stylegan/stylegan2's dataset_tool.py")
        if idx.idx_files_in(path):
            return "idx"
        if cifar10.find_batch_folder(path) is not None:
            return "cifar10"
        return "folder"
    if idx.is_idx_name(path.name):
        return "idx"
    if path.name.endswith(tfrecords.SUFFIX):
        return "tfrecords"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "cifar10"
    raise UserInputError(
        f"don't know how to read {path}: give a folder of images, a .zip of images, MNIST idx files "
        "(*-images-idx3-ubyte[.gz]), the CIFAR-10 python archive (cifar-10-python.tar.gz), a TF-era "
        ".tfrecords folder or file, or an LSUN LMDB folder (*_lmdb/ with data.mdb)"
    )


@contextlib.contextmanager
def open_source(source: SourcePath, labels_from_folders: bool = False) -> Iterator[Source]:
    """Recognise and open a dataset tool input; files stay open until the block ends.

    source: a folder, a zip, a CIFAR-10 archive or folder, an idx images file, a list of idx
        files (images and labels), a TF-era `.tfrecords` folder (the highest resolution is read) or file,
        or an LSUN LMDB folder.
    labels_from_folders: label each image by its top-level folder (folder and zip sources only).
    """
    if isinstance(source, (list, tuple)):
        paths = [Path(p) for p in source]
    else:
        paths = [Path(source)]
    if not paths:
        raise UserInputError("no source given; pass a folder, zip, idx files or CIFAR-10 archive")
    for p in paths:
        if not p.exists():
            raise UserInputError(f"source not found: {p}")
    kinds = {detect_kind(p) for p in paths}
    if len(paths) > 1 and kinds != {"idx"}:
        raise UserInputError("several sources are only allowed for idx files (images + labels); give one folder or file")
    kind = kinds.pop()
    if labels_from_folders and kind not in ("folder", "zip"):
        raise UserInputError(f"--labels-from-folders needs a folder or zip of images; {kind} sources carry their own labels")
    if kind == "idx":
        yield _idx_source(paths)
    elif kind == "cifar10":
        yield _cifar_source(paths[0])
    elif kind == "tfrecords":
        with _tfrecords_source(paths[0]) as opened:
            yield opened
    elif kind == "lmdb":
        with _lmdb_source(paths[0]) as opened:
            yield opened
    elif kind == "folder":
        yield _folder_source(paths[0], labels_from_folders)
    else:
        try:
            archive = zipfile.ZipFile(paths[0])
        except (zipfile.BadZipFile, OSError) as e:
            raise FormatError(f"cannot open {paths[0]} as a zip ({e})") from None
        with archive:
            yield _zip_source(archive, paths[0], labels_from_folders)


__all__ = ["Source", "SourceItem", "open_source", "detect_kind", "array_items", "read_failure_reason", "ITEM_READ_ERRORS"]
