"""MNIST-style idx files (MNIST, Fashion-MNIST, KMNIST, EMNIST): `train-images-idx3-ubyte[.gz]` etc.

Format (big-endian): two zero bytes, a type code (0x08 = uint8), the number of dimensions, one
int32 per dimension, then the data.

Convention: 28x28 images get a 2-pixel black border and become 32x32 (`pad_mnist`), exactly as NVIDIA's
dataset_tool converts MNIST; no pixel is resampled, and on these black backgrounds the border is invisible.
"""
from __future__ import annotations

import gzip
import re
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from stylegan.errors import FormatError, UserInputError

_IDX_NAME = re.compile(r"^(?P<prefix>.+?)-(?P<what>images|labels)[-.]idx(?P<ndim>\d)-ubyte(?:\.gz)?$", re.IGNORECASE)
_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NDIM = 4
MNIST_SIDE = 28  # MNIST, Fashion-MNIST, KMNIST and EMNIST images
MNIST_BORDER = 2  # black pixels added on each side: 28 + 2 * 2 = 32, a power of two


def is_idx_name(name: str) -> bool:
    """True for names like `train-images-idx3-ubyte.gz` or `t10k-labels.idx1-ubyte`."""
    return _IDX_NAME.match(name) is not None


def idx_files_in(folder: Path) -> list[Path]:
    """idx files directly inside `folder`, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_idx_name(p.name))


def _split(path: Path) -> tuple[str, str]:
    m = _IDX_NAME.match(path.name)
    return m["prefix"].lower(), m["what"].lower()


def find_idx_pair(paths: list[Path]) -> tuple[Path, Optional[Path]]:
    """(images file, labels file or None) from a folder, one images file, or images + labels files.

    In a folder holding several splits the `train` split is used.
    """
    files = []
    for p in paths:
        files.extend(idx_files_in(p) if p.is_dir() else [p])
    for f in files:
        if not is_idx_name(f.name):
            raise UserInputError(f"{f} is not an idx file; expected names like train-images-idx3-ubyte.gz")
    images = [f for f in files if _split(f)[1] == "images"]
    if not images:
        raise UserInputError(f"no *-images-idx3-ubyte[.gz] file among {', '.join(str(f) for f in files)}")
    prefixes = sorted({_split(f)[0] for f in images})
    prefix = "train" if "train" in prefixes else prefixes[0]
    if len(prefixes) > 1 and prefix != "train":
        raise UserInputError(f"several idx image files ({', '.join(prefixes)}); give the one to convert")
    chosen = [f for f in images if _split(f)[0] == prefix]
    image_path = min(chosen, key=lambda f: f.name.endswith(".gz"))  # prefer an uncompressed copy
    labels = [f for f in files if _split(f) == (prefix, "labels")]
    if not labels and len(paths) == 1 and paths[0].is_file():
        # One images file given: look for its labels beside it.
        labels = [f for f in idx_files_in(image_path.parent) if _split(f) == (prefix, "labels")]
    label_path = min(labels, key=lambda f: f.name.endswith(".gz")) if labels else None
    return image_path, label_path


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array stored in an idx file (gzip-compressed or not)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise FormatError(f"cannot read {path} ({e}); the file is corrupt or truncated, download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise FormatError(f"{path} is not an idx file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code != _UINT8:
        raise FormatError(f"{path}: only uint8 idx files are supported, this one has type code 0x{type_code:02x}")
    if not 1 <= ndim <= _MAX_NDIM or len(raw) < 4 + 4 * ndim:
        raise FormatError(f"{path}: bad idx header ({ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = int(np.prod(shape, dtype=np.int64))
    data = raw[4 + 4 * ndim :]
    if len(data) != expected:
        raise FormatError(
            f"{path}: header says {list(shape)} = {expected} bytes of data but the file has {len(data)}; "
            "it is truncated or corrupt, download it again"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()


def pad_mnist(images: np.ndarray) -> np.ndarray:
    """uint8 images [N, 28, 28] with a 2-pixel black border: [N, 32, 32] (NVIDIA's dataset_tool `open_mnist`).

    Images of any other size are returned unchanged (the dataset tool's --transform/--resolution handle them).
    """
    if images.ndim != 3 or images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        return images
    border = (0, 0), (MNIST_BORDER, MNIST_BORDER), (MNIST_BORDER, MNIST_BORDER)
    return np.pad(images, border, mode="constant", constant_values=0)
