"""Dataset tool sources: MNIST-style idx files, real Fashion-MNIST, CIFAR-10 and its safe unpickling."""
import gzip
import io
import json
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from stylegan.data.cifar10 import safe_load_pickle
from stylegan.data.dataset import ImageDataset
from stylegan.data.dataset_tool import convert_dataset
from stylegan.errors import FormatError, UnsafePickleError, UserInputError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def _idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx(folder, prefix, images, labels, compress):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    write = gzip.compress if compress else (lambda b: b)
    (folder / f"{prefix}-images-idx3-ubyte{suffix}").write_bytes(write(_idx_bytes(images)))
    (folder / f"{prefix}-labels-idx1-ubyte{suffix}").write_bytes(write(_idx_bytes(labels)))


def _labels_of(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        meta = json.loads(z.read("dataset.json"))
    return None if meta["labels"] is None else [lab for _, lab in meta["labels"]], meta.get("class_names")


def _mnist_like(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("resolution,transform", [(None, None), (32, None), (32, "pad")])
def test_idx_folder_pads_28_to_32_with_labels(tmp_path, compress, resolution, transform):
    train_images, train_labels = _mnist_like(5, seed=0)
    test_images, test_labels = _mnist_like(3, seed=1)
    _write_idx(tmp_path / "mnist", "train", train_images, train_labels, compress)
    _write_idx(tmp_path / "mnist", "t10k", test_images, test_labels, compress)
    summary = convert_dataset(tmp_path / "mnist", tmp_path / "o.zip", resolution=resolution, transform=transform)
    assert (summary.source_kind, summary.count, summary.channels, summary.has_labels) == ("idx", 5, 1, True)
    assert summary.resolution == 32
    ds = ImageDataset(tmp_path / "o.zip", use_labels=True)
    padded = np.pad(train_images, [(0, 0), (2, 2), (2, 2)])  # the train split, 2-pixel black border
    for i in range(5):
        np.testing.assert_array_equal(ds[i][0][0], padded[i])
        assert ds.get_label(i).argmax() == train_labels[i]


def test_idx_single_file_or_pair(tmp_path):
    images, labels = _mnist_like(4, seed=2)
    _write_idx(tmp_path, "t10k", images, labels, compress=True)
    images_file = tmp_path / "t10k-images-idx3-ubyte.gz"
    labels_file = tmp_path / "t10k-labels-idx1-ubyte.gz"
    convert_dataset(images_file, tmp_path / "a.zip")  # labels found beside it; 28x28 padded to 32x32
    convert_dataset([labels_file, images_file], tmp_path / "b.zip", resolution=32)
    assert _labels_of(tmp_path / "a.zip")[0] == _labels_of(tmp_path / "b.zip")[0] == labels.tolist()
    # idx images of another size are not MNIST: they keep their size, and 20 is not a power of two.
    other = tmp_path / "other"
    _write_idx(other, "train", np.zeros((2, 20, 20), np.uint8), np.zeros(2, np.uint8), compress=False)
    with pytest.raises(UserInputError, match="--resolution"):
        convert_dataset(other, tmp_path / "c.zip")
    assert convert_dataset(other, tmp_path / "c.zip", resolution=32, transform="pad").resolution == 32


FASHION_MNIST_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fashion_mnist_idx"


def _raw_idx(path, header_bytes):
    """Independent read of an idx file: skip the header, keep the bytes (as NVIDIA's dataset_tool does)."""
    return np.frombuffer(gzip.decompress(path.read_bytes())[header_bytes:], np.uint8)


def test_cli_converts_fashion_mnist_like_nvidia(tmp_path):
    """`stylegan dataset` on real Fashion-MNIST idx files, no other option: NVIDIA's 28x28 -> 32x32 black border,
    pixel for pixel, labels kept; --resolution 64 resizes that padded image (as NVIDIA's --width/--height)."""
    from click.testing import CliRunner

    from stylegan.cli.dataset import command

    images = _raw_idx(FASHION_MNIST_FIXTURE / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = _raw_idx(FASHION_MNIST_FIXTURE / "t10k-labels-idx1-ubyte.gz", 8)
    assert images.shape == (8, 28, 28) and labels.tolist() == [9, 2, 1, 1, 6, 1, 4, 6]
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2)], constant_values=0)
    result = CliRunner().invoke(command, ["--source", str(FASHION_MNIST_FIXTURE), "--dest", str(tmp_path / "f.zip")])
    assert result.exit_code == 0, result.output
    ds = ImageDataset(tmp_path / "f.zip", use_labels=True)
    assert (len(ds), ds.resolution, ds.num_channels) == (8, 32, 1)
    for i in range(8):
        np.testing.assert_array_equal(ds[i][0][0], padded[i])
        assert ds.get_label(i).argmax() == labels[i]
    result = CliRunner().invoke(command, ["--source", str(FASHION_MNIST_FIXTURE), "--dest", str(tmp_path / "f64.zip"),
                                          "--resolution", "64"])
    assert result.exit_code == 0, result.output
    resized = PIL.Image.fromarray(padded[3]).resize((64, 64), PIL.Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(ImageDataset(tmp_path / "f64.zip")[3][0][0], np.asarray(resized))


def test_truncated_idx_is_a_format_error(tmp_path):
    images, labels = _mnist_like(3, seed=3)
    _write_idx(tmp_path, "train", images, labels, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(FormatError, match="truncated"):
        convert_dataset(tmp_path, tmp_path / "o.zip", resolution=32)
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(FormatError, match="corrupt"):
        convert_dataset(tmp_path, tmp_path / "o.zip", resolution=32)


@pytest.mark.skipif(
    not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_idx(tmp_path):
    images_gz = FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    labels_gz = FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    summary = convert_dataset([images_gz, labels_gz], tmp_path / "f.zip", max_images=40)
    assert (summary.count, summary.resolution, summary.channels) == (40, 32, 1)
    # Independent read of the idx layout: 16-byte header for images, 8 bytes for labels.
    raw = np.frombuffer(gzip.decompress(images_gz.read_bytes())[16:], np.uint8).reshape(-1, 28, 28)
    raw_labels = np.frombuffer(gzip.decompress(labels_gz.read_bytes())[8:], np.uint8)
    assert raw.shape[0] == 10_000
    ds = ImageDataset(tmp_path / "f.zip", use_labels=True)
    assert ds.label_dim == 10
    for i in (0, 17, 39):
        np.testing.assert_array_equal(ds[i][0][0, 2:30, 2:30], raw[i])
        assert ds.get_label(i).argmax() == raw_labels[i]


# ---- CIFAR-10 ------------------------------------------------------------------------------------
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    # The official files: bytes keys, a uint8 array of R, G and B planes, a list of int labels.
    batch = {b"batch_label": b"training batch", b"labels": labels, b"data": data,
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    return pickle.dumps(batch, protocol=2), data, labels


def _add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _make_cifar(tmp_path):
    batches = [_cifar_batch(3, seed=s) for s in (1, 2)]
    meta = pickle.dumps({b"label_names": [c.encode() for c in CLASS_NAMES], b"num_vis": 3072}, protocol=2)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for number, (payload, _, _) in enumerate(batches, start=1):
            _add(tar, f"cifar-10-batches-py/data_batch_{number}", payload)
        _add(tar, "cifar-10-batches-py/test_batch", _cifar_batch(2, seed=9)[0])
        _add(tar, "cifar-10-batches-py/batches.meta", meta)
    data = np.concatenate([b[1] for b in batches])
    labels = batches[0][2] + batches[1][2]
    return archive, data, labels


def test_cifar_archive_and_folder(tmp_path):
    archive, data, labels = _make_cifar(tmp_path)
    summary = convert_dataset(archive, tmp_path / "c.zip")
    assert (summary.source_kind, summary.count, summary.resolution, summary.channels) == ("cifar10", 6, 32, 3)
    assert summary.class_names == CLASS_NAMES
    ds = ImageDataset(tmp_path / "c.zip", use_labels=True)
    for i in range(6):
        np.testing.assert_array_equal(ds[i][0], data[i].reshape(3, 32, 32))  # test_batch left out
    assert _labels_of(tmp_path / "c.zip") == (labels, CLASS_NAMES)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    convert_dataset(tmp_path / "extracted", tmp_path / "d.zip")
    with zipfile.ZipFile(tmp_path / "c.zip") as a, zipfile.ZipFile(tmp_path / "d.zip") as b:
        assert [a.read(n) for n in a.namelist()] == [b.read(n) for n in b.namelist()]


class _Evil:
    """Pickles as a call to open(marker, 'w'): loading it with plain pickle creates the file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=2)
    with pytest.raises(UnsafePickleError, match="open"):
        safe_load_pickle(payload, "data_batch_1")
    assert not marker.exists()
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "cifar-10-batches-py/data_batch_1", payload)
    with pytest.raises(UnsafePickleError, match="data_batch_1"):
        convert_dataset(archive, tmp_path / "c.zip")
    assert not marker.exists() and not (tmp_path / "c.zip").exists()
    # The same bytes through plain pickle would have run: the test's payload is real.
    pickle.loads(payload)[b"data"].close()
    assert marker.exists()


def test_restricted_unpickler_reads_plain_data_and_rejects_garbage():
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (2, 4, 5):
        loaded = safe_load_pickle(pickle.dumps({"a": array, "b": [1, 2.5, "x", b"y"]}, protocol=protocol), "t")
        np.testing.assert_array_equal(loaded["a"], array)
        assert loaded["b"] == [1, 2.5, "x", b"y"]
    with pytest.raises(FormatError, match="corrupt"):
        safe_load_pickle(pickle.dumps({"a": array}, protocol=2)[:40], "t")


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` opcodes (BINSTRING), as the real CIFAR-10 files do."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        n = len(obj)
        short = n < 256
        self.write((pickle.SHORT_BINSTRING + bytes([n])) if short else (pickle.BINSTRING + struct.pack("<i", n)))
        self.write(obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def test_python2_style_batch_like_the_real_files(tmp_path):
    data = np.random.default_rng(4).integers(0, 256, (2, 3072), dtype=np.uint8)
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump({b"data": data, b"labels": [7, 3]})
    # numpy < 2 wrote its reconstructor under numpy.core, the name inside the published files.
    payload = buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in payload and b"_codecs" not in payload
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(payload)
    summary = convert_dataset(tmp_path, tmp_path / "o.zip")
    assert summary.count == 2 and summary.class_names is None
    np.testing.assert_array_equal(ImageDataset(tmp_path / "o.zip")[1][0], data[1].reshape(3, 32, 32))
    assert _labels_of(tmp_path / "o.zip")[0] == [7, 3]
