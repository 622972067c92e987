"""prepare_demo_dataset: Fashion-MNIST from the Debian package, or scikit-learn's digits."""
import gzip
import struct

import numpy as np
import pytest

from stylegan.data import fashion_mnist
from stylegan.data.dataset import ImageDataset
from stylegan.data.fashion_mnist import find_fashion_mnist, prepare_demo_dataset
from stylegan.errors import UserInputError

HAS_FASHION_MNIST = find_fashion_mnist("train") is not None


def _write_fake_fashion(folder, n):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28) + images.tobytes()))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", n) + labels.tobytes()))
    return images, labels


def test_find_fashion_mnist(tmp_path):
    assert find_fashion_mnist("train", tmp_path) is None
    _write_fake_fashion(tmp_path / "f", 2)
    images, labels = find_fashion_mnist("train", tmp_path / "f")
    assert images.name == "train-images-idx3-ubyte.gz" and labels.name == "train-labels-idx1-ubyte.gz"
    assert find_fashion_mnist("t10k", tmp_path / "f") is None
    with pytest.raises(UserInputError):
        find_fashion_mnist("valid", tmp_path)


def test_demo_pads_fashion_mnist_to_32(tmp_path):
    images, labels = _write_fake_fashion(tmp_path / "f", 6)
    summary = prepare_demo_dataset(tmp_path / "demo.zip", fashion_mnist_dir=tmp_path / "f", max_images=4)
    assert (summary.source_kind, summary.count, summary.resolution, summary.channels) == ("fashion-mnist", 4, 32, 1)
    assert "fashion-mnist" in str(summary)
    ds = ImageDataset(tmp_path / "demo.zip", use_labels=True)
    assert ds.class_names[0] == "T-shirt/top" and ds.label_dim == 10
    for i in range(4):
        image = ds[i][0][0]
        np.testing.assert_array_equal(image[2:30, 2:30], images[i])
        assert image[:2].sum() == 0 and image[:, :2].sum() == 0
        assert ds.get_label(i).argmax() == labels[i]
    # Other resolutions resize the padded 32x32 picture.
    assert prepare_demo_dataset(tmp_path / "d16.zip", resolution=16, fashion_mnist_dir=tmp_path / "f").resolution == 16


@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_demo_with_installed_fashion_mnist(tmp_path):
    summary = prepare_demo_dataset(tmp_path / "demo.zip", max_images=16)
    assert summary.source_kind == "fashion-mnist" and summary.count == 16
    ds = ImageDataset(tmp_path / "demo.zip", use_labels=True, resolution=32)
    assert ds.image_shape == [1, 32, 32] and ds.label_dim == 10


def test_falls_back_to_digits(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    digits = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    monkeypatch.setattr(fashion_mnist, "load_digits_images", lambda: (digits, np.arange(5)))
    summary = prepare_demo_dataset(tmp_path / "d.zip", fashion_mnist_dir=tmp_path / "absent")
    assert (summary.source_kind, summary.count, summary.resolution) == ("digits", 5, 32)
    ds = ImageDataset(tmp_path / "d.zip", use_labels=True)
    # 8x8 upsampled 4x: block means stay close to the source pixels.
    blocks = ds[2][0][0].astype(float).reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.corrcoef(blocks.ravel(), digits[2].ravel())[0, 1] > 0.9
    assert ds.class_names == [str(d) for d in range(10)]


def test_digits_loader_without_sklearn_says_what_to_install(monkeypatch):
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(UserInputError, match="scikit-learn"):
            fashion_mnist.load_digits_images()
    else:
        images, labels = fashion_mnist.load_digits_images()
        assert images.dtype == np.uint8 and images.shape[1:] == (8, 8) and images.max() == 255
        assert labels.shape == images.shape[:1]
