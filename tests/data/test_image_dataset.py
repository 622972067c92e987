"""ImageDataset: reading zips and folders the way NVIDIA's ImageFolderDataset does."""
import io
import json
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from stylegan.data.dataset import ImageDataset, dataset_fingerprint
from stylegan.errors import FormatError, UserInputError


def _random_images(n, size, channels, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _write_zip(path, images, labels=None, meta=None):
    """Official layout: 00000/img00000000.png + dataset.json (`meta` replaces the computed one)."""
    names = []
    with zipfile.ZipFile(path, "w") as z:
        for i, img in enumerate(images):
            name = f"{i // 1000:05d}/img{i:08d}.png"
            buf = io.BytesIO()
            PIL.Image.fromarray(img).save(buf, format="png")
            z.writestr(name, buf.getvalue())
            names.append(name)
        if meta is None:
            meta = {"labels": None if labels is None else [[n, lab] for n, lab in zip(names, labels)]}
        z.writestr("dataset.json", json.dumps(meta))
    return names


def _chw(img):
    return img[None] if img.ndim == 2 else img.transpose(2, 0, 1)


def test_zip_pixels_labels_and_properties(tmp_path):
    images = _random_images(5, 8, 3)
    labels = [2, 0, 1, 2, 4]
    path = tmp_path / "set.zip"
    _write_zip(path, images, labels)
    ds = ImageDataset(path, use_labels=True)
    assert len(ds) == 5 and ds.name == "set"
    assert ds.image_shape == [3, 8, 8] and ds.num_channels == 3 and ds.resolution == 8
    assert ds.has_labels and ds.label_dim == 5 and ds.label_shape == [5]
    for i in range(5):
        image, label = ds[i]
        assert image.dtype == np.uint8
        np.testing.assert_array_equal(image, _chw(images[i]))
        assert label.dtype == np.float32 and label.shape == (5,)
        assert label.argmax() == labels[i] and label.sum() == 1
    assert ds.get_details(3).raw_idx == 3 and int(ds.get_details(3).raw_label) == 2


def test_unconditional_labels_are_empty(tmp_path):
    path = tmp_path / "set.zip"
    _write_zip(path, _random_images(3, 4, 3), labels=[0, 1, 1])
    ds = ImageDataset(path, use_labels=False)
    label = ds[0][1]
    assert label.shape == (0,) and label.dtype == np.float32
    assert not ds.has_labels and ds.label_dim == 0


def test_float_labels_pass_through(tmp_path):
    path = tmp_path / "set.zip"
    vectors = [[0.5, -1.0], [2.0, 0.25]]
    _write_zip(path, _random_images(2, 4, 3), labels=vectors)
    ds = ImageDataset(path, use_labels=True)
    assert ds.label_dim == 2 and not ds.has_onehot_labels
    np.testing.assert_allclose(ds.get_label(1), vectors[1])


def test_grayscale_stays_one_channel_in_folder(tmp_path):
    images = _random_images(3, 16, 1)
    (tmp_path / "sub").mkdir()
    for i, img in enumerate(images):
        PIL.Image.fromarray(img).save(tmp_path / ("sub" if i == 2 else ".") / f"{i}.png")
    ds = ImageDataset(tmp_path)
    assert ds.image_shape == [1, 16, 16]
    # Sorted relative paths: "0.png", "1.png", "sub/2.png".
    for i in range(3):
        np.testing.assert_array_equal(ds[i][0], images[i][None])


def test_xflip_doubles_with_mirrored_copies(tmp_path):
    images = _random_images(3, 8, 3)
    path = tmp_path / "set.zip"
    _write_zip(path, images)
    ds = ImageDataset(path, xflip=True)
    assert len(ds) == 6
    for i in range(3):
        np.testing.assert_array_equal(ds[i + 3][0], ds[i][0][:, :, ::-1])
        assert ds.get_details(i + 3).xflip and not ds.get_details(i).xflip
    assert ds[4][0].flags["C_CONTIGUOUS"]


def test_max_size_subsamples_deterministically(tmp_path):
    images = _random_images(10, 4, 1)
    path = tmp_path / "set.zip"
    _write_zip(path, images)
    a = ImageDataset(path, max_size=4, random_seed=1)
    b = ImageDataset(path, max_size=4, random_seed=1)
    c = ImageDataset(path, max_size=4, random_seed=2)
    raw_a = [a.get_details(i).raw_idx for i in range(len(a))]
    assert len(a) == 4 and raw_a == sorted(raw_a) and len(set(raw_a)) == 4
    assert raw_a == [b.get_details(i).raw_idx for i in range(len(b))]
    assert raw_a != [c.get_details(i).raw_idx for i in range(len(c))]
    # The same subset NVIDIA's reader picks: shuffle with RandomState(seed), keep the first, sort.
    expected = np.arange(10)
    np.random.RandomState(1).shuffle(expected)
    assert raw_a == sorted(expected[:4].tolist())
    np.testing.assert_array_equal(a[0][0], images[raw_a[0]][None])


@pytest.mark.parametrize("size", [(8, 6), (12, 12)])
def test_non_square_or_non_power_of_two_is_a_format_error(tmp_path, size):
    PIL.Image.new("RGB", size).save(tmp_path / "a.png")
    with pytest.raises(FormatError, match="stylegan dataset"):
        ImageDataset(tmp_path)


def test_mismatched_image_is_reported_when_read(tmp_path):
    PIL.Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    PIL.Image.new("RGB", (16, 16)).save(tmp_path / "b.png")
    ds = ImageDataset(tmp_path)
    ds[0]
    with pytest.raises(FormatError, match="b.png"):
        ds[1]


def test_resolution_mismatch_and_missing_inputs(tmp_path):
    PIL.Image.new("L", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(FormatError, match="16x16"):
        ImageDataset(tmp_path, resolution=16)
    with pytest.raises(UserInputError, match="not found"):
        ImageDataset(tmp_path / "nope.zip")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="no image files"):
        ImageDataset(empty)
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="zip"):
        ImageDataset(tmp_path / "fake.zip")


def test_missing_label_is_a_format_error(tmp_path):
    path = tmp_path / "set.zip"
    _write_zip(path, _random_images(2, 4, 3), meta={"labels": [["00000/img00000000.png", 1]]})
    with pytest.raises(FormatError, match="no label"):
        ImageDataset(path, use_labels=True)


def test_pickle_and_dataloader_workers(tmp_path):
    images = _random_images(6, 4, 3)
    path = tmp_path / "set.zip"
    _write_zip(path, images, labels=[0, 1, 2, 0, 1, 2])
    ds = ImageDataset(path, use_labels=True)
    ds[0]  # opens the zip in this process before the workers fork
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[5][0], ds[5][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context="fork")
    batches = list(loader)
    pixels = torch.cat([b[0] for b in batches]).numpy()
    labels = torch.cat([b[1] for b in batches]).numpy()
    np.testing.assert_array_equal(pixels, images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(labels.argmax(1), [0, 1, 2, 0, 1, 2])


def test_fingerprint_tracks_content_not_container(tmp_path):
    images = _random_images(3, 4, 3)
    path = tmp_path / "set.zip"
    _write_zip(path, images)
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(path) as z:
        z.extractall(folder)
    recompressed = tmp_path / "deflated.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(recompressed, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    fp = dataset_fingerprint(path)
    assert fp == dataset_fingerprint(folder) == dataset_fingerprint(recompressed)
    images[1, 0, 0, 0] ^= 1
    changed = tmp_path / "changed.zip"
    _write_zip(changed, images)
    assert dataset_fingerprint(changed) != fp
    with pytest.raises(UserInputError):
        dataset_fingerprint(tmp_path / "missing.zip")


def test_a_folder_of_tfrecords_points_to_the_dataset_tool(tmp_path):
    from stylegan.data.dataset import ImageDataset
    from stylegan.errors import FormatError
    (tmp_path / "ffhq-r02.tfrecords").write_bytes(b"\0" * 16)
    with pytest.raises(FormatError, match="holds TF-era .tfrecords: convert it first with `stylegan dataset"):
        ImageDataset(tmp_path)
    (tmp_path / "ffhq-r02.tfrecords").unlink()
    (tmp_path / "data.mdb").write_bytes(b"\0" * 16)
    with pytest.raises(FormatError, match="LMDB database"):
        ImageDataset(tmp_path)
