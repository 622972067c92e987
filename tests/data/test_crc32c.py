"""CRC-32C in numpy against its definition, and against the checksums TensorFlow wrote into NVIDIA's files."""
import struct
from pathlib import Path

import numpy as np
import pytest
from nvidia_dataset_writers import crc32c_bitwise

from stylegan.data.crc32c import Crc32c

GRAY16 = Path(__file__).resolve().parents[1] / "fixtures" / "datasets" / "gray16" / "gray16-r04.tfrecords"


def test_check_value_and_empty_input():
    crc = Crc32c()
    assert crc(b"123456789") == 0xE3069283  # the standard check value of CRC-32C
    assert crc(b"") == 0
    assert crc(b"\x00" * 32) == 0x8A9136AA  # RFC 3720 (iSCSI) B.4: 32 bytes of zeros


@pytest.mark.parametrize("size", [1, 63, 1023, 1024, 1025, 4096, 4097, 70_001])
def test_byte_loop_and_chunked_paths_agree_with_the_definition(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    crc = Crc32c()
    assert crc(data) == crc32c_bitwise(data)
    assert crc(memoryview(data)[1:]) == crc32c_bitwise(data[1:])  # any bytes-like, not only bytes


def test_masked_checksums_match_tensorflows():
    """Every length and data checksum TensorFlow's TFRecordWriter stored in NVIDIA's gray16 file."""
    raw, crc, offset, count = GRAY16.read_bytes(), Crc32c(), 0, 0
    while offset < len(raw):
        (length,), (length_crc,) = struct.unpack_from("<Q", raw, offset), struct.unpack_from("<I", raw, offset + 8)
        data = raw[offset + 12: offset + 12 + length]
        (data_crc,) = struct.unpack_from("<I", raw, offset + 12 + length)
        assert crc.masked(raw[offset: offset + 8]) == length_crc
        assert crc.masked(data) == data_crc
        offset += 16 + length
        count += 1
    assert count == 12
