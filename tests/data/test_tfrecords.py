"""TF-era `.tfrecords` datasets: NVIDIA's own gray16 folder, and folders written here in NVIDIA's exact byte layout
(RGB, labelled, odd shapes), corrupt and foreign records, and the one-line errors."""
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner
from nvidia_dataset_writers import (
    bytes_feature,
    example,
    frame,
    image_example,
    int64_feature,
    levels_of_detail,
    write_tfrecords_dataset,
)

from stylegan.cli.dataset import command
from stylegan.data.dataset import ImageDataset
from stylegan.data.dataset_tool import convert_dataset
from stylegan.data.sources import open_source
from stylegan.data.tfrecords import TFRecordImages, choose_file
from stylegan.errors import FormatError, UserInputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"
EXPECTED = np.load(FIXTURES / "gray16_expected.npz")


def _gray16(tmp_path, labels=None):
    """A writable copy of NVIDIA's gray16 folder, with `labels` saved as gray16-rxx.labels (np.save) if given."""
    folder = tmp_path / "gray16"
    shutil.copytree(FIXTURES / "gray16", folder)
    if labels is not None:
        with open(folder / "gray16-rxx.labels", "wb") as f:
            np.save(f, labels)
    return folder


def _stored(zip_path):
    """(images [N, C, H, W], dataset.json) of a written dataset."""
    ds = ImageDataset(zip_path)
    with zipfile.ZipFile(zip_path) as z:
        meta = json.loads(z.read("dataset.json"))
    return np.stack([ds[i][0] for i in range(len(ds))]), meta


def test_writer_matches_nvidias_exporter_byte_for_byte(tmp_path):
    """The test writer reproduces NVIDIA's gray16 files exactly, so the folders it writes below are NVIDIA's layout."""
    for path in write_tfrecords_dataset(tmp_path / "gray16", EXPECTED["images"]):
        assert path.read_bytes() == (FIXTURES / "gray16" / path.name).read_bytes()


def test_nvidia_gray16_folder_converts_to_its_images(tmp_path):
    summary = convert_dataset(FIXTURES / "gray16", tmp_path / "g.zip")
    assert (summary.source_kind, summary.count, summary.resolution, summary.channels) == ("tfrecords", 12, 16, 1)
    assert summary.skipped == [] and not summary.has_labels
    images, meta = _stored(tmp_path / "g.zip")
    np.testing.assert_array_equal(images, EXPECTED["images"])  # the highest resolution, in record order
    assert meta["labels"] is None


def test_a_given_file_reads_that_level(tmp_path):
    """A file named directly is read as it is: r03 holds NVIDIA's rounded 2x2 means of the 16x16 images."""
    with TFRecordImages(FIXTURES / "gray16" / "gray16-r03.tfrecords") as records:
        assert (len(records), records.shape) == (12, (1, 8, 8))
        for i in range(12):
            np.testing.assert_array_equal(records.read(i), levels_of_detail(EXPECTED["images"][i])[1])
    summary = convert_dataset(FIXTURES / "gray16" / "gray16-r02.tfrecords", tmp_path / "r02.zip")
    assert (summary.count, summary.resolution) == (12, 4)


def test_one_hot_labels_become_class_indices(tmp_path):
    folder = _gray16(tmp_path, labels=EXPECTED["labels"])
    summary = convert_dataset(folder, tmp_path / "l.zip")
    assert summary.has_labels
    images, meta = _stored(tmp_path / "l.zip")
    classes = EXPECTED["labels"].argmax(axis=1).tolist()
    assert [label for _, label in meta["labels"]] == classes
    ds = ImageDataset(tmp_path / "l.zip", use_labels=True)
    assert ds.label_dim == 3
    np.testing.assert_array_equal(np.stack([ds.get_label(i) for i in range(12)]), EXPECTED["labels"])


def test_other_labels_stay_vectors(tmp_path):
    rows = np.random.default_rng(0).normal(size=(12, 2)).astype(np.float32)
    convert_dataset(_gray16(tmp_path, labels=rows), tmp_path / "v.zip")
    ds = ImageDataset(tmp_path / "v.zip", use_labels=True)
    np.testing.assert_array_equal(np.stack([ds.get_label(i) for i in range(12)]), rows)


def test_rgb_folder_with_labels(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    onehot = np.eye(4, dtype=np.float32)[[3, 0, 2, 3, 1]]
    write_tfrecords_dataset(tmp_path / "rgb", images, labels=onehot)
    assert sorted(p.name for p in (tmp_path / "rgb").iterdir()) == [
        "rgb-r02.tfrecords", "rgb-r03.tfrecords", "rgb-rxx.labels"]
    summary = convert_dataset(tmp_path / "rgb", tmp_path / "rgb.zip")
    assert (summary.count, summary.resolution, summary.channels) == (5, 8, 3)
    stored, meta = _stored(tmp_path / "rgb.zip")
    np.testing.assert_array_equal(stored, images)
    assert [label for _, label in meta["labels"]] == [3, 0, 2, 3, 1]


def _single_file(path, images):
    path.write_bytes(b"".join(frame(image_example(chw)) for chw in images))
    return path


def test_odd_shapes_go_through_the_geometry_options(tmp_path):
    rng = np.random.default_rng(2)
    wide = rng.integers(0, 256, (2, 3, 8, 16), dtype=np.uint8)  # not square
    with open_source(_single_file(tmp_path / "wide.tfrecords", wide)) as source:
        assert [item.header() for item in source.items] == [("RGB", (16, 8))] * 2
        np.testing.assert_array_equal(np.asarray(source.items[1].load()), wide[1].transpose(1, 2, 0))
    with pytest.raises(UserInputError, match="not square"):
        convert_dataset(tmp_path / "wide.tfrecords", tmp_path / "w.zip")
    summary = convert_dataset(tmp_path / "wide.tfrecords", tmp_path / "w.zip", transform="center-crop-wide")
    assert (summary.resolution, summary.channels) == (16, 3)

    twelve = rng.integers(0, 256, (3, 1, 12, 12), dtype=np.uint8)  # not a power of two
    _single_file(tmp_path / "t12.tfrecords", twelve)
    with pytest.raises(UserInputError, match="--resolution"):
        convert_dataset(tmp_path / "t12.tfrecords", tmp_path / "t.zip")
    summary = convert_dataset(tmp_path / "t12.tfrecords", tmp_path / "t.zip", resolution=16)
    expected = PIL.Image.fromarray(twelve[2, 0]).resize((16, 16), PIL.Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(_stored(tmp_path / "t.zip")[0][2, 0], np.asarray(expected))


def test_corrupt_and_mismatched_records_are_skipped_and_counted(tmp_path):
    folder = _gray16(tmp_path, labels=EXPECTED["labels"])
    path = folder / "gray16-r04.tfrecords"
    raw = bytearray(path.read_bytes())
    record = len(raw) // 12  # every framed 16x16 gray record has the same length
    for index in (0, 3):  # a pixel byte of records 0 and 3: their data checksums fail (the shape comes from 1)
        raw[index * record + 12 + 200] ^= 0xFF
    # Record 7 replaced by an intact record of another shape.
    other = frame(image_example(np.zeros((1, 8, 8), np.uint8)))
    raw[7 * record: 8 * record] = other
    path.write_bytes(bytes(raw))
    skipped = []
    summary = convert_dataset(folder, tmp_path / "c.zip", on_skip=lambda n, r: skipped.append((n, r)))
    assert summary.count == 9 and len(summary.skipped) == 3
    assert skipped == [
        ("gray16-r04.tfrecords#0", "bad record: data checksum mismatch (the record is corrupt)"),
        ("gray16-r04.tfrecords#3", "bad record: data checksum mismatch (the record is corrupt)"),
        ("gray16-r04.tfrecords#7", "bad record: shape [1, 8, 8] differs from the file's [1, 16, 16]"),
    ]
    kept = [i for i in range(12) if i not in (0, 3, 7)]
    images, meta = _stored(tmp_path / "c.zip")
    np.testing.assert_array_equal(images, EXPECTED["images"][kept])
    assert [label for _, label in meta["labels"]] == EXPECTED["labels"][kept].argmax(axis=1).tolist()


def test_a_truncated_file_keeps_its_whole_records(tmp_path):
    folder = _gray16(tmp_path, labels=EXPECTED["labels"])
    path = folder / "gray16-r04.tfrecords"
    raw = bytearray(path.read_bytes())
    record = len(raw) // 12
    path.write_bytes(raw[:-100])  # the last record cut short
    summary = convert_dataset(folder, tmp_path / "t.zip", on_skip=lambda n, r: None)
    assert summary.count == 11
    (name, reason), = summary.skipped
    assert name == "gray16-r04.tfrecords#11 onwards"
    assert reason == f"truncated record at byte {11 * record} (it needs {record} bytes, {record - 100} remain)"
    np.testing.assert_array_equal(_stored(tmp_path / "t.zip")[0], EXPECTED["images"][:11])

    raw[2 * record] ^= 0x01  # the length field of record 2: the file cannot be split after it
    path.write_bytes(bytes(raw))
    summary = convert_dataset(folder, tmp_path / "u.zip", on_skip=lambda n, r: None)
    assert summary.count == 2 and f"damaged record length at byte {2 * record}" in summary.skipped[0][1]


def test_the_highest_resolution_is_found_by_content_not_name(tmp_path):
    folder = tmp_path / "renamed"
    folder.mkdir()
    for source, name in (("gray16-r02", "c"), ("gray16-r04", "a"), ("gray16-r03", "b")):
        shutil.copy(FIXTURES / "gray16" / f"{source}.tfrecords", folder / f"{name}.tfrecords")
    assert choose_file(folder) == folder / "a.tfrecords"


def test_foreign_records_and_missing_files_are_one_line_errors(tmp_path):
    # A TF dataset of encoded JPEGs (not NVIDIA's layout), a 2-channel image, data of the wrong length.
    foreign = {
        "encoded": example({"image/encoded": bytes_feature([b"\xff\xd8"]), "label": int64_feature([1])}),
        "channels": image_example(np.zeros((2, 4, 4), np.uint8)),
        "length": example({"shape": int64_feature([1, 4, 4]), "data": bytes_feature([b"\x00" * 15])}),
    }
    messages = {"encoded": "no 'shape' and 'data' features (found: image/encoded, label)",
                "channels": "unexpected shape [2, 4, 4]", "length": "needs 16 bytes, 'data' holds 15"}
    for name, record in foreign.items():
        (tmp_path / f"{name}.tfrecords").write_bytes(frame(record))
        with pytest.raises(FormatError, match="dataset_tool.py") as error:
            convert_dataset(tmp_path / f"{name}.tfrecords", tmp_path / "o.zip")
        assert messages[name] in str(error.value) and "\n" not in str(error.value)
    (tmp_path / "empty.tfrecords").write_bytes(b"")
    with pytest.raises(FormatError, match="the file is empty"):
        convert_dataset(tmp_path / "empty.tfrecords", tmp_path / "o.zip")
    assert not (tmp_path / "o.zip").exists()

    (tmp_path / "nothing").mkdir()
    with pytest.raises(UserInputError, match="no .tfrecords files in"):
        choose_file(tmp_path / "nothing")
    labels_only = tmp_path / "labels_only"
    labels_only.mkdir()
    with open(labels_only / "x-rxx.labels", "wb") as f:
        np.save(f, np.eye(2, dtype=np.float32))
    with pytest.raises(UserInputError, match="but no .tfrecords files"):
        convert_dataset(labels_only, tmp_path / "o.zip")


def test_labels_that_do_not_fit_are_refused(tmp_path):
    with pytest.raises(FormatError, match="holds 11 label rows for 12 records"):
        convert_dataset(_gray16(tmp_path, labels=EXPECTED["labels"][:11]), tmp_path / "o.zip")
    folder = tmp_path / "gray16"
    (folder / "gray16-rxx.labels").write_bytes(b"not numpy")
    with pytest.raises(FormatError, match="as a numpy .npy array"):
        convert_dataset(folder, tmp_path / "o.zip")
    with open(folder / "gray16-rxx.labels", "wb") as f:
        np.save(f, np.array([{"a": 1}] * 12, dtype=object))  # a pickle inside: refused, never loaded
    with pytest.raises(FormatError, match="as a numpy .npy array"):
        convert_dataset(folder, tmp_path / "o.zip")
    with open(folder / "gray16-rxx.labels", "wb") as f:
        np.savez(f, labels=EXPECTED["labels"])
    with pytest.raises(FormatError, match="is an .npz archive"):
        convert_dataset(folder, tmp_path / "o.zip")
    with open(folder / "gray16-rxx.labels", "wb") as f:
        np.save(f, EXPECTED["labels"].argmax(axis=1))  # one class index per row, not NVIDIA's [images, D]
    with pytest.raises(FormatError, match=r"numeric array \[images, D\], got int64 \[12\]"):
        convert_dataset(folder, tmp_path / "o.zip")
    assert not (tmp_path / "o.zip").exists()


def test_cli_reads_a_folder_and_reports_bad_records(tmp_path):
    folder = _gray16(tmp_path)
    raw = bytearray((folder / "gray16-r04.tfrecords").read_bytes())
    raw[len(raw) // 12 + 12 + 250] ^= 0x10  # a pixel of record 1
    (folder / "gray16-r04.tfrecords").write_bytes(bytes(raw))
    result = CliRunner().invoke(command, ["--source", str(folder), "--dest", str(tmp_path / "g.zip")])
    assert result.exit_code == 0, result.output
    assert "warning: skipped gray16-r04.tfrecords#1: bad record: data checksum mismatch" in result.stderr
    assert result.stdout.startswith("wrote 11 images (16x16, 1 channel(s), labels: no) from tfrecords")
    (tmp_path / "foreign.tfrecords").write_bytes(frame(image_example(np.zeros((4, 4, 4), np.uint8))))
    result = CliRunner().invoke(command, ["--source", str(tmp_path / "foreign.tfrecords"), "--dest",
                                          str(tmp_path / "f.zip")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "unexpected shape [4, 4, 4]" in result.stderr
