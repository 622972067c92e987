"""TF-era StyleGAN datasets: the `.tfrecords` folders of NVIDIA's stylegan / stylegan2 `dataset_tool.py`, no TensorFlow.

What NVIDIA's `TFRecordExporter` writes for a dataset `NAME` (NVlabs/stylegan and NVlabs/stylegan2, the same code):

    NAME/NAME-r02.tfrecords ... NAME-rNN.tfrecords   one file per level of detail (4x4 ... 2^NN x 2^NN), every
                                                      image in each, in the same (shuffled) order; each lower level
                                                      is the 2x2 average of the one above, rounded
    NAME/NAME-rxx.labels                              only with labels: np.save of a float32 array [images, D],
                                                      one row per record in record order (one-hot for classes)

TFRecord framing, per record (little-endian): uint64 length, uint32 masked CRC-32C of those 8 bytes, `length` bytes
of data, uint32 masked CRC-32C of the data. The data is a serialized tf.train.Example with the features 'shape'
(int64_list [C, H, W], C = 1 or 3) and 'data' (bytes_list holding one value: the uint8 pixels in C, H, W order).

Reading follows NVIDIA's `training/dataset.py` (TFRecordDataset): in a folder, the file whose first record is the
largest image (the highest resolution; NAME-rNN with the largest NN) and the first `*.labels` file (the one named
after the dataset preferred). Record by record: a record whose checksum fails, whose Example does not parse, or
whose image differs in shape from the file's first record raises BadRecordError, and the dataset tool skips it and
counts it; a damaged length field or a truncated end stops the file there (`tail_problem`), as TensorFlow's reader
would. Labels: one-hot rows become class indices; any other rows stay vectors of floats (`read_labels`).
"""
from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path
from typing import Any, Optional

import numpy as np

from stylegan.data.crc32c import Crc32c
from stylegan.data.tf_example import ExampleDecodeError, parse_example
from stylegan.errors import FormatError, UserInputError

SUFFIX = ".tfrecords"
LABELS_SUFFIX = ".labels"
LABELS_NAME_END = "-rxx.labels"  # how NVIDIA's exporter names the labels file of NAME: NAME-rxx.labels
_HEADER = struct.Struct("<QI")  # length, masked CRC of the length
_FOOTER = struct.Struct("<I")  # masked CRC of the data
_LEVEL = re.compile(r"-r(\d\d|xx)$")  # NAME-r10 (a level of detail) or NAME-rxx (the labels)
CHANNELS = (1, 3)  # NVIDIA's exporter asserts gray or RGB
_SHAPE_PROBE = 16  # records read at most to learn a file's image shape when choosing among files


class BadRecordError(OSError):
    """One record of a TFRecord file cannot be used: `where` names it, `reason` says why."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.reason = reason


class CorruptRecordError(BadRecordError):
    """A record's data does not match its checksum."""


@dataclasses.dataclass(frozen=True)
class RecordSpan:
    """Where one record's data lies in its file."""

    offset: int  # first byte of the data (after the 12-byte header)
    length: int  # bytes of data (the 4-byte data checksum follows)


def dataset_name(path: Path) -> str:
    """'ffhq' for ffhq-r10.tfrecords or ffhq-rxx.labels: the name NVIDIA's exporter gives every file of a dataset."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return _LEVEL.sub("", stem)


def _scan(f, crc: Crc32c, limit: Optional[int]) -> tuple[list[RecordSpan], Optional[str]]:
    """The spans of the first `limit` records (None: all), reading headers only; what ended the scan early, or None."""
    f.seek(0, 2)
    size = f.tell()
    spans, offset = [], 0
    while offset < size and (limit is None or len(spans) < limit):
        header = _read_at(f, offset, _HEADER.size)
        if len(header) < _HEADER.size:
            return spans, f"truncated record header at byte {offset} (the file ends early)"
        length, length_crc = _HEADER.unpack(header)
        if crc.masked(header[:8]) != length_crc:
            return spans, (f"damaged record length at byte {offset} (checksum mismatch); the remaining "
                           f"{size - offset} bytes cannot be split into records")
        end = offset + _HEADER.size + length + _FOOTER.size
        if end > size:
            return spans, f"truncated record at byte {offset} (it needs {end - offset} bytes, {size - offset} remain)"
        spans.append(RecordSpan(offset + _HEADER.size, length))
        offset = end
    return spans, None


def _read_at(f, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _image(data, where: str) -> np.ndarray:
    """uint8 [C, H, W] from a record's data (an Example with 'shape' and 'data'); raises BadRecordError."""
    try:
        features = parse_example(data)
    except ExampleDecodeError as e:
        raise BadRecordError(where, f"not a tf.train.Example ({e})") from None
    shape, pixels = features.get("shape"), features.get("data")
    if shape is None or pixels is None:
        found = ", ".join(sorted(features)) or "none"
        raise BadRecordError(where, f"no 'shape' and 'data' features (found: {found})")
    if shape.kind != "int64_list" or pixels.kind != "bytes_list" or len(pixels.values) != 1:
        raise BadRecordError(where, f"'shape' must be an int64 list and 'data' one bytes value, got {shape.kind} "
                             f"and {len(pixels.values)} {pixels.kind} value(s)")
    dims = shape.values
    if len(dims) != 3 or dims[0] not in CHANNELS or min(dims) < 1:
        raise BadRecordError(where, f"unexpected shape {dims}; expected [C, H, W] with C = 1 (gray) or 3 (RGB)")
    (data_bytes,) = pixels.values
    if len(data_bytes) != dims[0] * dims[1] * dims[2]:
        raise BadRecordError(where, f"shape {dims} needs {dims[0] * dims[1] * dims[2]} bytes, 'data' holds "
                             f"{len(data_bytes)}")
    return np.frombuffer(data_bytes, dtype=np.uint8).reshape(dims)


class TFRecordImages:
    """The images of one NVIDIA `.tfrecords` file, read on demand; use as a context manager (keeps the file open).

    path: the `.tfrecords` file.
    limit: index only the first `limit` records (None: all; a few are enough to learn the shape).
    Raises FormatError when no record of the file holds an image of NVIDIA's layout.
    """

    def __init__(self, path: Path, limit: Optional[int] = None):
        self.path = Path(path)
        self._crc = Crc32c()
        self._file = open(self.path, "rb")
        try:
            self.spans, self.tail_problem = _scan(self._file, self._crc, limit)
            self.shape = self._first_shape()  # [C, H, W] of every image
        except BaseException:
            self._file.close()
            raise

    def _first_shape(self) -> tuple[int, int, int]:
        reason = self.tail_problem or "the file is empty"
        for index in range(len(self.spans)):
            try:
                return tuple(self._read(index, shape=None).shape)
            except CorruptRecordError as e:  # damaged: try the next one
                reason = str(e)
            except BadRecordError as e:  # intact but not an image of NVIDIA's layout: a foreign file
                reason = str(e)
                break
        raise FormatError(f"cannot read {self.path} as a dataset written by stylegan/stylegan2's dataset_tool.py "
                          f"({reason})")

    def __len__(self) -> int:
        return len(self.spans)

    def _read(self, index: int, shape) -> np.ndarray:
        span = self.spans[index]
        where = f"{self.path.name} record {index}"
        blob = memoryview(_read_at(self._file, span.offset, span.length + _FOOTER.size))
        if len(blob) != span.length + _FOOTER.size:
            raise BadRecordError(where, "the file ends inside the record (was it cut short after opening?)")
        data, (stored,) = blob[: span.length], _FOOTER.unpack(blob[span.length:])
        if self._crc.masked(data) != stored:
            raise CorruptRecordError(where, "data checksum mismatch (the record is corrupt)")
        image = _image(data, where)
        if shape is not None and image.shape != shape:
            raise BadRecordError(where, f"shape {list(image.shape)} differs from the file's {list(shape)}")
        return image

    def read(self, index: int) -> np.ndarray:
        """uint8 [C, H, W] of record `index`; raises BadRecordError for a corrupt or foreign record."""
        return self._read(index, self.shape)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TFRecordImages":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def choose_file(path: Path) -> Path:
    """The `.tfrecords` file to convert: `path` itself, or in a folder the highest resolution (largest first image)."""
    path = Path(path)
    if path.is_file():
        return path
    files = sorted(p for p in path.iterdir() if p.name.endswith(SUFFIX) and p.is_file())
    if not files:
        raise UserInputError(f"no {SUFFIX} files in {path}; give a folder written by stylegan/stylegan2's "
                             "dataset_tool.py (NAME-r02.tfrecords ... NAME-rNN.tfrecords) or one such file")
    sizes = {}
    for file in files:
        with TFRecordImages(file, limit=_SHAPE_PROBE) as records:
            sizes[file] = int(np.prod(records.shape))
    return max(files, key=lambda f: sizes[f])  # the first largest, as NVIDIA's max(tfr_shapes, key=np.prod)


def labels_file(tfrecords_file: Path) -> Optional[Path]:
    """The labels beside a `.tfrecords` file: NAME-rxx.labels of its dataset, else the first `*.labels` there."""
    folder = tfrecords_file.parent
    named = folder / f"{dataset_name(tfrecords_file)}{LABELS_NAME_END}"
    if named.is_file():
        return named
    others = sorted(p for p in folder.iterdir() if p.name.endswith(LABELS_SUFFIX) and p.is_file())
    return others[0] if others else None


def _is_one_hot(rows: np.ndarray) -> bool:
    return bool(rows.size) and bool(np.isin(rows, (0, 1)).all()) and bool((rows.sum(axis=1) == 1).all())


def read_labels(path: Path, records: int, complete: bool) -> Optional[list[Any]]:
    """One label per record from a `-rxx.labels` file: a class index for one-hot rows, else a list of floats.

    records: how many records the file holds; complete: False when its end could not be read (a longer labels
    file is then expected). None when the rows are empty (D = 0, no labels).
    """
    try:
        with open(path, "rb") as f:
            rows = np.load(f, allow_pickle=False)  # .npy only; a pickle is refused, never run
    except (OSError, ValueError, EOFError) as e:
        raise FormatError(f"cannot read the labels file {path} as a numpy .npy array ({e})") from None
    if not isinstance(rows, np.ndarray):  # np.load gives an archive for .npz files
        raise FormatError(f"{path} is an .npz archive; the labels file is one .npy array [images, D] (np.save)")
    if rows.ndim != 2 or not any(np.issubdtype(rows.dtype, t) for t in (np.integer, np.floating, np.bool_)):
        raise FormatError(f"{path}: labels must be a numeric array [images, D], got {rows.dtype} {list(rows.shape)}")
    if rows.shape[0] < records or (complete and rows.shape[0] != records):
        raise FormatError(f"{path} holds {rows.shape[0]} label rows for {records} records; they do not belong "
                          "together (remove or replace the labels file)")
    rows = rows[:records]
    if rows.shape[1] == 0:
        return None
    if _is_one_hot(rows):
        return rows.argmax(axis=1).tolist()
    return rows.astype(np.float32).tolist()
