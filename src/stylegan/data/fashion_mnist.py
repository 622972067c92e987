"""A small offline demo dataset: Fashion-MNIST from the Debian package, else scikit-learn's digits.

Fashion-MNIST comes from `apt-get install dataset-fashion-mnist`, which puts the four idx files in
/usr/share/datasets/fashion-mnist/ (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz). When it is absent, the 1,797 8x8 digits
bundled with scikit-learn (`sklearn.datasets.load_digits`) stand in, upsampled.

Example:
    >>> summary = prepare_demo_dataset("demo32.zip")   # 60,000 labelled 32x32 gray images
    >>> print(summary)
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Optional, Union

import numpy as np

from stylegan.data import idx
from stylegan.data.dataset_tool import ConversionSummary, write_dataset
from stylegan.data.sources import Source, array_items
from stylegan.errors import UserInputError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGITS_CLASSES = tuple(str(d) for d in range(10))

_DIGITS_MAX_VALUE = 16  # load_digits pixel values run 0..16
# How each demo source becomes 32x32 (printed by `make demo` and written to its REPORT.md).
DEMO_LAYOUTS = {
    "fashion-mnist": "28x28 padded to 32x32 with a 2-pixel black border, as NVIDIA's dataset_tool",
    "digits": "8x8 upsampled to 32x32 with lanczos",
}


def find_fashion_mnist(split: str = "train", folder: Union[str, os.PathLike] = FASHION_MNIST_DIR) -> Optional[tuple[Path, Path]]:
    """(images file, labels file) of a Fashion-MNIST split, or None when not installed.

    split: 'train' (60,000 images) or 't10k' (10,000 images).
    folder: where to look; the Debian package `dataset-fashion-mnist` installs to the default.
    """
    if split not in ("train", "t10k"):
        raise UserInputError(f"split must be 'train' or 't10k', got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = {}
    for what, ndim in (("images", 3), ("labels", 1)):
        for suffix in ("", ".gz"):
            path = folder / f"{split}-{what}-idx{ndim}-ubyte{suffix}"
            if path.is_file():
                found[what] = path
                break
    if len(found) != 2:
        return None
    return found["images"], found["labels"]


def load_fashion_mnist(split: str = "train", folder: Union[str, os.PathLike] = FASHION_MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28] and int64 labels [N] of a Fashion-MNIST split.

    split: 'train' or 't10k'.
    folder: where the idx files are.
    """
    files = find_fashion_mnist(split, folder)
    if files is None:
        raise UserInputError(f"Fashion-MNIST not found in {folder}; install it with `apt-get install dataset-fashion-mnist`")
    images, labels = idx.read_idx(files[0]), idx.read_idx(files[1]).astype(np.int64)
    if images.shape[1:] != (idx.MNIST_SIDE, idx.MNIST_SIDE) or labels.shape != images.shape[:1]:
        raise UserInputError(f"{files[0]} / {files[1]} do not look like Fashion-MNIST (shapes {images.shape}, {labels.shape})")
    return images, labels


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits as uint8 images [N, 8, 8] (0..255) and labels [N]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserInputError(
            f"no demo data: Fashion-MNIST is not in {FASHION_MNIST_DIR} and scikit-learn is not installed; "
            "run `apt-get install dataset-fashion-mnist` or `pip install \"stylegan[demo]\"` (scikit-learn)"
        ) from None
    digits = load_digits()
    images = np.rint(np.asarray(digits.images, dtype=np.float64) * (255 / _DIGITS_MAX_VALUE))
    return images.clip(0, 255).astype(np.uint8), np.asarray(digits.target, dtype=np.int64)


def prepare_demo_dataset(
    dest_zip: Union[str, os.PathLike],
    resolution: int = 32,
    max_images: Optional[int] = None,
    force: bool = False,
    fashion_mnist_dir: Union[str, os.PathLike] = FASHION_MNIST_DIR,
    progress: Union[bool, Callable[[int, int], None]] = False,
) -> ConversionSummary:
    """Write a labelled gray demo dataset zip; the summary's `source_kind` says which data it used.

    Fashion-MNIST (train split): each 28x28 image gets a 2-pixel black border to make 32x32, which
    keeps every pixel sharp (the background is black, so the border is invisible); other
    resolutions resize that 32x32 image. The digits fallback is upsampled from 8x8 with Lanczos.

    dest_zip: the `.zip` to write.
    resolution: output side, a power of two.
    max_images: write at most this many images (None writes all).
    force: overwrite `dest_zip` if it exists.
    fashion_mnist_dir: where to look for the Fashion-MNIST idx files.
    progress: False, True (a progress bar) or a callable(done, total).
    """
    if find_fashion_mnist("train", fashion_mnist_dir) is not None:
        images, labels = load_fashion_mnist("train", fashion_mnist_dir)
        images = idx.pad_mnist(images)
        kind, class_names = "fashion-mnist", list(FASHION_MNIST_CLASSES)
    else:
        images, labels = load_digits_images()
        kind, class_names = "digits", list(DIGITS_CLASSES)
    if max_images is not None:
        images, labels = images[:max_images], labels[:max_images]
    source = Source(kind=kind, items=array_items(images, labels, kind), class_names=class_names)
    return write_dataset(source, dest_zip, resolution=resolution, max_images=max_images, force=force, progress=progress)
