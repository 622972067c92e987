"""LSUN LMDB folders as dataset tool sources: key order, encoded values, undecodable values skipped and counted,
--max-images reading no further, and the one-line errors (missing lmdb package, not an LMDB folder)."""
import io
import sys

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner
from nvidia_dataset_writers import write_lsun_lmdb

from stylegan.cli.dataset import command
from stylegan.data.dataset import ImageDataset
from stylegan.data.dataset_tool import convert_dataset
from stylegan.data.lmdb_source import LmdbDatabase
from stylegan.errors import FormatError, UserInputError



def _encoded(array, fmt, **options):
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _lsun(tmp_path):
    """An LSUN-style category: 40-hex-digit ids as keys, WebP (as LSUN ships), JPEG and PNG values, one undecodable
    value and one empty value. Returns the folder and the expected RGB images in key order."""
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    jpeg = _encoded(pixels[1], "JPEG", quality=90)
    entries = {  # inserted out of order; LMDB keeps them sorted by key, the order NVIDIA's tool reads
        "c" * 40: _encoded(pixels[2], "PNG"),
        "0" * 40: b"\x00 not an image",
        "a" * 40: _encoded(pixels[0], "WEBP", lossless=True),
        "b" * 40: jpeg,
        "d" * 40: b"",
    }
    folder = tmp_path / "bedroom_train_lmdb"
    write_lsun_lmdb(folder, entries)
    expected = [pixels[0], np.asarray(PIL.Image.open(io.BytesIO(jpeg)).convert("RGB")), pixels[2]]
    return folder, expected


def test_lsun_folder_converts_in_key_order_skipping_bad_values(tmp_path):
    folder, expected = _lsun(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["data.mdb", "lock.mdb"]
    skipped = []
    summary = convert_dataset(folder, tmp_path / "l.zip", on_skip=lambda n, r: skipped.append((n, r)))
    assert (summary.source_kind, summary.count, summary.resolution, summary.channels) == ("lmdb", 3, 8, 3)
    assert not summary.has_labels
    assert skipped == [(f"bedroom_train_lmdb#{'0' * 40}", "not a recognised image file"),
                       (f"bedroom_train_lmdb#{'d' * 40}", "empty file (0 bytes)")]
    ds = ImageDataset(tmp_path / "l.zip")
    for i in range(3):
        np.testing.assert_array_equal(ds[i][0], expected[i].transpose(2, 0, 1))
    # The data.mdb file itself names the same database.
    assert convert_dataset(folder / "data.mdb", tmp_path / "m.zip", on_skip=lambda n, r: None).count == 3


def test_max_images_reads_no_further(tmp_path, monkeypatch):
    """NVIDIA's tool stops walking the cursor at --max-images; so does this one (LSUN holds millions of images)."""
    folder, _ = _lsun(tmp_path)
    read = []
    original = LmdbDatabase.value
    monkeypatch.setattr(LmdbDatabase, "value", lambda self, key: read.append(key) or original(self, key))
    summary = convert_dataset(folder, tmp_path / "l.zip", max_images=2, on_skip=lambda n, r: None)
    assert summary.count == 2
    assert set(read) == {b"0" * 40, b"a" * 40, b"b" * 40}  # never c..., d...


def test_nvidia_flags_on_the_command_line(tmp_path):
    folder, expected = _lsun(tmp_path)
    result = CliRunner().invoke(command, [f"--source={folder}", f"--dest={tmp_path / 'l.zip'}",
                                          "--transform=center-crop", "--width=4", "--height=4", "--max-images=2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote 2 images (4x4, 3 channel(s), labels: no) from lmdb")
    assert "warning: skipped bedroom_train_lmdb#000" in result.stderr
    resized = PIL.Image.fromarray(expected[0]).resize((4, 4), PIL.Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(ImageDataset(tmp_path / "l.zip")[0][0], np.asarray(resized).transpose(2, 0, 1))


def test_missing_lmdb_package_names_the_extra(tmp_path, monkeypatch):
    folder, _ = _lsun(tmp_path)
    monkeypatch.setitem(sys.modules, "lmdb", None)  # import lmdb raises ImportError
    with pytest.raises(UserInputError, match=r'pip install "stylegan\[lmdb\]"'):
        convert_dataset(folder, tmp_path / "o.zip")
    result = CliRunner().invoke(command, ["--source", str(folder), "--dest", str(tmp_path / "o.zip")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "stylegan[lmdb]" in result.stderr
    assert not (tmp_path / "o.zip").exists()


def test_not_an_lmdb_folder(tmp_path):
    (tmp_path / "cat_lmdb").mkdir()  # NVIDIA's naming, but nothing inside
    with pytest.raises(UserInputError, match="has no data.mdb"):
        convert_dataset(tmp_path / "cat_lmdb", tmp_path / "o.zip")
    (tmp_path / "cat_lmdb" / "data.mdb").write_bytes(b"\x00" * 8192)
    with pytest.raises(FormatError, match="cannot open .* as an LMDB database"):
        convert_dataset(tmp_path / "cat_lmdb", tmp_path / "o.zip")
