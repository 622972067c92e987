"""Writers of the dataset files NVIDIA's TF-era tools produce, byte for byte, for the reader tests.

- `write_tfrecords_dataset`: what NVlabs/stylegan2 `dataset_tool.py` `TFRecordExporter` writes (add_image, add_labels):
  NAME/NAME-r02.tfrecords ... NAME-rNN.tfrecords, each lower level the 2x2 mean of the level above in float32
  (never rounded in between), stored rounded (np.rint, clip 0..255, uint8); NAME-rxx.labels = np.save(float32).
  Each record: TFRecord framing around `tf.train.Example(features=Features(feature={'shape': Int64List(C, H, W),
  'data': BytesList([pixels])}))`, serialized as TensorFlow does (map entries in insertion order, int64 lists
  packed). `test_tfrecords.py` checks this writer against NVIDIA's own gray16 files, byte for byte.
- `write_lsun_lmdb`: an LSUN category folder (`data.mdb`, `lock.mdb`): image ids as ASCII keys, encoded images as
  values.

Independent of the package's readers: its own CRC-32C (bit by bit) and protobuf encoding.
"""
import struct
from pathlib import Path

import numpy as np


def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C by the definition, one bit at a time (slow; a reference for small buffers)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, the data, masked CRC of the data."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc(length)) + record + struct.pack("<I", masked_crc(record))


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    """A protobuf field: key, then a length for wire type 2, then the payload."""
    key = varint(number << 3 | wire_type)
    return key + (varint(len(payload)) if wire_type == 2 else b"") + payload


def int64_feature(values, packed=True) -> bytes:
    if packed:
        inner = field(1, 2, b"".join(varint(v) for v in values))
    else:
        inner = b"".join(field(1, 0, varint(v)) for v in values)
    return field(3, 2, inner)  # Feature.int64_list


def bytes_feature(values) -> bytes:
    return field(1, 2, b"".join(field(1, 2, v) for v in values))  # Feature.bytes_list


def float_feature(values, packed=True) -> bytes:
    if packed:
        inner = field(1, 2, struct.pack(f"<{len(values)}f", *values))
    else:
        inner = b"".join(field(1, 5, struct.pack("<f", v)) for v in values)
    return field(2, 2, inner)  # Feature.float_list


def example(features: dict) -> bytes:
    """tf.train.Example from {name: serialized Feature}, map entries in the dict's order."""
    entries = b"".join(field(1, 2, field(1, 2, name.encode()) + field(2, 2, feature))
                       for name, feature in features.items())
    return field(1, 2, entries)


def image_example(chw: np.ndarray) -> bytes:
    """The Example NVIDIA's exporter writes for one uint8 [C, H, W] image."""
    return example({"shape": int64_feature(chw.shape), "data": bytes_feature([chw.tobytes()])})


def levels_of_detail(chw: np.ndarray) -> list:
    """uint8 [C, H, W] at every level NVIDIA's exporter stores, highest first (down to 4x4)."""
    levels, image = [], chw
    for lod in range(int(np.log2(chw.shape[1])) - 1):
        if lod:
            image = image.astype(np.float32)
            image = (image[:, 0::2, 0::2] + image[:, 0::2, 1::2] + image[:, 1::2, 0::2] + image[:, 1::2, 1::2]) * 0.25
        levels.append(np.rint(image).clip(0, 255).astype(np.uint8))
    return levels


def write_tfrecords_dataset(folder: Path, images: np.ndarray, labels=None) -> list:
    """NVIDIA's TF-era dataset folder for uint8 images [N, C, H, W] (square, power of two); the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    resolution_log2 = int(np.log2(images.shape[2]))
    records = {}
    for chw in images:
        for lod, level in enumerate(levels_of_detail(chw)):
            records.setdefault(resolution_log2 - lod, []).append(frame(image_example(level)))
    paths = []
    for log2, framed in sorted(records.items()):
        path = folder / f"{folder.name}-r{log2:02d}.tfrecords"
        path.write_bytes(b"".join(framed))
        paths.append(path)
    if labels is not None:
        with open(folder / f"{folder.name}-rxx.labels", "wb") as f:
            np.save(f, np.asarray(labels).astype(np.float32))
    return paths


def write_lsun_lmdb(folder: Path, entries: dict) -> None:
    """An LSUN-style LMDB folder holding {key (str): value (bytes)}; lmdb stores them in key order."""
    import lmdb

    env = lmdb.open(str(folder), map_size=1 << 24, subdir=True)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key.encode("ascii"), value)
    env.close()
