"""convert_dataset: folders and zips of images into NVIDIA-layout dataset zips."""
import json
import zipfile

import numpy as np
import PIL.Image
import pytest

from stylegan.data import dataset_tool
from stylegan.data.dataset import ImageDataset
from stylegan.data.dataset_tool import SkippedFileWarning, convert_dataset
from stylegan.errors import UserInputError


def _noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _save(path, array, mode=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(array, mode).save(path, **kwargs)


def _convert(*args, **kwargs):
    skipped = []
    summary = convert_dataset(*args, on_skip=lambda name, reason: skipped.append((name, reason)), **kwargs)
    assert summary.skipped == skipped
    return summary


def _meta(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return json.loads(z.read("dataset.json")), sorted(z.namelist())


def test_folder_round_trip_keeps_pixels_and_layout(tmp_path):
    src = tmp_path / "src"
    images = [_noise((16, 16, 3), seed=i) for i in range(3)]
    for i, img in enumerate(images):
        _save(src / f"{i}.png", img)
    _save(src / "deeper" / "z.webp", images[0], lossless=True)
    summary = _convert(src, tmp_path / "out.zip")
    assert (summary.count, summary.resolution, summary.channels, summary.has_labels) == (4, 16, 3, False)
    assert summary.skipped == [] and summary.source_kind == "folder"
    meta, names = _meta(tmp_path / "out.zip")
    assert meta["labels"] is None
    assert names == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png",
                     "00000/img00000003.png", "dataset.json"]
    ds = ImageDataset(tmp_path / "out.zip")
    for i, img in enumerate(images + [images[0]]):
        np.testing.assert_array_equal(ds[i][0], img.transpose(2, 0, 1))


def test_grayscale_stays_one_channel_and_color_wins_when_mixed(tmp_path):
    gray = _noise((8, 8))
    _save(tmp_path / "g" / "a.png", gray)
    summary = _convert(tmp_path / "g", tmp_path / "g.zip")
    assert summary.channels == 1
    np.testing.assert_array_equal(ImageDataset(tmp_path / "g.zip")[0][0], gray[None])
    _save(tmp_path / "g" / "b.png", _noise((8, 8, 3)))
    summary = _convert(tmp_path / "g", tmp_path / "mixed.zip")
    assert summary.channels == 3
    np.testing.assert_array_equal(ImageDataset(tmp_path / "mixed.zip")[0][0], np.stack([gray] * 3))


def test_rgba_composited_on_white_or_kept(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red everywhere
    rgba[:2, :, 3] = 255  # top half opaque, bottom half fully transparent
    rgba[2, 0, 3] = 128  # one half-transparent pixel
    _save(tmp_path / "s" / "a.png", rgba)
    _convert(tmp_path / "s", tmp_path / "flat.zip")
    flat = ImageDataset(tmp_path / "flat.zip")[0][0]
    assert flat.shape == (3, 4, 4)
    np.testing.assert_array_equal(flat[:, 0, 0], [200, 0, 0])
    np.testing.assert_array_equal(flat[:, 3, 3], [255, 255, 255])
    np.testing.assert_allclose(flat[:, 2, 0], [228, 127, 127], atol=1)
    summary = _convert(tmp_path / "s", tmp_path / "keep.zip", rgba="keep")
    assert summary.channels == 4
    np.testing.assert_array_equal(ImageDataset(tmp_path / "keep.zip")[0][0], rgba.transpose(2, 0, 1))


def test_palette_images_become_rgb_or_gray(tmp_path):
    color = PIL.Image.fromarray(_noise((8, 8, 3))).convert("P")
    folder = tmp_path / "p"
    folder.mkdir()
    color.save(folder / "c.png")
    summary = _convert(folder, tmp_path / "p.zip")
    assert summary.channels == 3
    np.testing.assert_array_equal(ImageDataset(tmp_path / "p.zip")[0][0], np.asarray(color.convert("RGB")).transpose(2, 0, 1))
    gray_folder = tmp_path / "gp"
    gray_folder.mkdir()
    PIL.Image.fromarray(_noise((8, 8))).convert("P").save(gray_folder / "g.png")
    assert _convert(gray_folder, tmp_path / "gp.zip").channels == 1


@pytest.mark.parametrize(
    "transform,size,expected_content",
    [
        ("center-crop", (32, 16), None),
        ("pad", (16, 8), (slice(4, 12), slice(0, 16))),  # letterboxed, not scaled (16 == resolution)
        ("pad", (8, 8), (slice(4, 12), slice(4, 12))),  # smaller than resolution: padded, not upscaled
        ("center-crop-wide", (32, 16), (slice(4, 12), slice(0, 16))),
    ],
)
def test_transforms_make_square_images(tmp_path, transform, size, expected_content):
    rng_img = np.full((size[1], size[0], 3), 255, np.uint8)
    _save(tmp_path / "s" / "a.png", rng_img)
    summary = _convert(tmp_path / "s", tmp_path / "o.zip", resolution=16, transform=transform)
    out = ImageDataset(tmp_path / "o.zip")[0][0]
    assert out.shape == (3, 16, 16) and summary.resolution == 16
    if expected_content is None:
        assert (out == 255).all()  # the crop holds image only
    else:
        mask = np.zeros((16, 16), bool)
        mask[expected_content] = True
        assert (out[:, mask] == 255).all() and (out[:, ~mask] == 0).all()


def test_center_crop_takes_the_middle(tmp_path):
    img = np.zeros((8, 16), np.uint8)
    img[:, 4:12] = np.arange(64, dtype=np.uint8).reshape(8, 8)
    _save(tmp_path / "s" / "a.png", img)
    _convert(tmp_path / "s", tmp_path / "o.zip", transform="center-crop")
    np.testing.assert_array_equal(ImageDataset(tmp_path / "o.zip")[0][0][0], img[:, 4:12])


@pytest.mark.parametrize("resize_filter", ["lanczos", "box"])
def test_resize_uses_the_chosen_filter(tmp_path, resize_filter):
    img = _noise((32, 32, 3))
    _save(tmp_path / "s" / "a.png", img)
    _convert(tmp_path / "s", tmp_path / "o.zip", resolution=8, resize_filter=resize_filter)
    pil_filter = {"lanczos": PIL.Image.LANCZOS, "box": PIL.Image.BOX}[resize_filter]
    expected = np.asarray(PIL.Image.fromarray(img).resize((8, 8), pil_filter))
    np.testing.assert_array_equal(ImageDataset(tmp_path / "o.zip")[0][0], expected.transpose(2, 0, 1))


def test_bad_files_are_skipped_and_named(tmp_path):
    src = tmp_path / "src"
    good = _noise((8, 8, 3))
    _save(src / "good.png", good)
    (src / "zero.png").write_bytes(b"")
    (src / "text.jpg").write_text("this is not a jpeg")
    (src / "notes.txt").write_text("hello")
    _save(src / "cut.png", _noise((8, 8, 3), seed=1))
    data = (src / "cut.png").read_bytes()
    (src / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.warns(SkippedFileWarning) as record:
        summary = convert_dataset(src, tmp_path / "out.zip")
    assert summary.count == 1
    reasons = dict(summary.skipped)
    assert set(reasons) == {"zero.png", "text.jpg", "notes.txt", "cut.png"}
    assert "empty" in reasons["zero.png"] and "not a recognised image" in reasons["text.jpg"]
    assert "truncated" in reasons["cut.png"] and "not an image" in reasons["notes.txt"]
    assert sorted(str(w.message).split(":")[0] for w in record) == sorted(f"skipped {n}" for n in reasons)
    assert "skipped 4" in str(summary)
    np.testing.assert_array_equal(ImageDataset(tmp_path / "out.zip")[0][0], good.transpose(2, 0, 1))


def test_labels_from_folders(tmp_path):
    src = tmp_path / "src"
    for cls, n in [("dog", 2), ("cat", 1), ("zebra", 1)]:
        for i in range(n):
            _save(src / cls / f"{i}.png", _noise((4, 4, 3), seed=i))
    _save(src / "loose.png", _noise((4, 4, 3)))
    summary = _convert(src, tmp_path / "out.zip", labels_from_folders=True)
    assert summary.has_labels and summary.class_names == ["cat", "dog", "zebra"]
    assert [n for n, _ in summary.skipped] == ["loose.png"]
    meta, _ = _meta(tmp_path / "out.zip")
    assert meta["class_names"] == ["cat", "dog", "zebra"]
    assert [lab for _, lab in meta["labels"]] == [0, 1, 1, 2]  # cat/0, dog/0, dog/1, zebra/0
    ds = ImageDataset(tmp_path / "out.zip", use_labels=True)
    assert ds.label_dim == 3 and ds.class_names == ["cat", "dog", "zebra"]
    assert ds.get_label(3).tolist() == [0, 0, 1]


def test_zip_source_with_labels_and_max_images(tmp_path):
    src = tmp_path / "src"
    for cls in ("a", "b"):
        for i in range(3):
            _save(src / cls / f"{i}.png", _noise((8, 8), seed=i + 10 * (cls == "b")))
    first = _convert(src, tmp_path / "first.zip", labels_from_folders=True)
    assert first.count == 6
    # Re-convert the dataset zip (its dataset.json labels carry over) at a new size.
    second = _convert(tmp_path / "first.zip", tmp_path / "second.zip", resolution=4, max_images=4)
    assert second.source_kind == "zip" and second.count == 4 and second.resolution == 4
    meta, names = _meta(tmp_path / "second.zip")
    assert [lab for _, lab in meta["labels"]] == [0, 0, 0, 1] and meta["class_names"] == ["a", "b"]
    assert len(names) == 5


@pytest.mark.parametrize(
    "sizes,kwargs,message",
    [
        ([(8, 8), (16, 16)], {}, "--resolution"),
        ([(12, 12)], {}, "power of two"),
        ([(16, 8)], {}, "--transform"),
        ([(16, 8)], {"resolution": 8}, "--transform"),
    ],
)
def test_geometry_errors_say_which_flag(tmp_path, sizes, kwargs, message):
    for i, size in enumerate(sizes):
        _save(tmp_path / "s" / f"{i}.png", np.zeros((size[1], size[0]), np.uint8))
    with pytest.raises(UserInputError, match=message):
        convert_dataset(tmp_path / "s", tmp_path / "o.zip", **kwargs)
    assert not (tmp_path / "o.zip").exists()


def test_mixed_sizes_resized_when_resolution_given(tmp_path):
    _save(tmp_path / "s" / "a.png", _noise((8, 8)))
    _save(tmp_path / "s" / "b.png", _noise((32, 32)))
    assert _convert(tmp_path / "s", tmp_path / "o.zip", resolution=16).count == 2
    assert ImageDataset(tmp_path / "o.zip")[1][0].shape == (1, 16, 16)


def test_input_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserInputError, match="no readable images"):
        convert_dataset(empty, tmp_path / "o.zip")
    _save(tmp_path / "s" / "a.png", _noise((8, 8)))
    with pytest.raises(UserInputError, match="power of two"):
        convert_dataset(tmp_path / "s", tmp_path / "o.zip", resolution=24)
    with pytest.raises(UserInputError, match="not found"):
        convert_dataset(tmp_path / "missing", tmp_path / "o.zip")
    with pytest.raises(UserInputError, match=r"\.zip"):
        convert_dataset(tmp_path / "s", tmp_path / "out_folder")
    with pytest.raises(UserInputError, match="transform"):
        convert_dataset(tmp_path / "s", tmp_path / "o.zip", transform="stretch")
    (tmp_path / "exists.zip").write_bytes(b"keep me")
    with pytest.raises(UserInputError, match="--force"):
        convert_dataset(tmp_path / "s", tmp_path / "exists.zip")
    assert (tmp_path / "exists.zip").read_bytes() == b"keep me"
    assert _convert(tmp_path / "s", tmp_path / "exists.zip", force=True).count == 1
    assert zipfile.is_zipfile(tmp_path / "exists.zip")


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch, error):
    for i in range(4):
        _save(tmp_path / "s" / f"{i}.png", _noise((8, 8), seed=i))
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.zip").write_bytes(b"previous dataset")
    calls = []
    real = dataset_tool._png_bytes

    def failing(img):
        calls.append(1)
        if len(calls) % 3 == 0:  # the third image of each run
            raise error("interrupted")
        return real(img)

    monkeypatch.setattr(dataset_tool, "_png_bytes", failing)
    with pytest.raises(error):
        convert_dataset(tmp_path / "s", out / "new.zip")
    with pytest.raises(error):
        convert_dataset(tmp_path / "s", out / "old.zip", force=True)
    assert sorted(p.name for p in out.iterdir()) == ["old.zip"]  # no partial or temporary file
    assert (out / "old.zip").read_bytes() == b"previous dataset"


def test_progress_callback_counts_up(tmp_path):
    for i in range(3):
        _save(tmp_path / "s" / f"{i}.png", _noise((4, 4), seed=i))
    seen = []
    convert_dataset(tmp_path / "s", tmp_path / "o.zip", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_exif_orientation_is_applied(tmp_path):
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    _save(tmp_path / "s" / "a.png", img, exif=exif)
    _convert(tmp_path / "s", tmp_path / "o.zip")
    np.testing.assert_array_equal(ImageDataset(tmp_path / "o.zip")[0][0][0], np.rot90(img, k=-1))
