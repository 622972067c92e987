"""A minimal TensorBoard event-file writer for scalars, with no dependency on tensorboard or protobuf.

An event file is a TFRecord stream: each record is
  uint64 length | uint32 masked-crc32c(length) | payload | uint32 masked-crc32c(payload)
and each payload a serialised `Event` protobuf (wall_time=1 double, step=2 int64, file_version=3 string,
summary=5 {value=1 {tag=1 string, simple_value=2 float}}). The protobuf wire format is encoded by hand.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple, Union


def _crc32c_table() -> List[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = tuple(_crc32c_table())


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    key = _varint((number << 3) | wire_type)
    if wire_type == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def _event(wall_time: float, step: int, file_version: str = None, scalars: Dict[str, float] = None) -> bytes:
    msg = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version is not None:
        msg += _field(3, 2, file_version.encode())
    if scalars:
        values = b"".join(_field(1, 2, _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", float(v))))
                          for tag, v in scalars.items())
        msg += _field(5, 2, values)
    return msg


class EventWriter:
    """Append scalars to `events.out.tfevents.<time>.<host>` in `logdir`.

    logdir: folder for the event file (created if needed).
    """

    def __init__(self, logdir: Union[str, os.PathLike]):
        Path(logdir).mkdir(parents=True, exist_ok=True)
        self.path = Path(logdir) / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._file = open(self.path, "ab")
        self._write(_event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, payload: bytes) -> None:
        header = struct.pack("<Q", len(payload))
        self._file.write(header + struct.pack("<I", masked_crc(header)) + payload + struct.pack("<I", masked_crc(payload)))

    def add_scalars(self, scalars: Dict[str, float], step: int, wall_time: float = None) -> None:
        self._write(_event(time.time() if wall_time is None else wall_time, int(step), scalars=scalars))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_records(path: Union[str, os.PathLike]) -> Iterator[bytes]:
    """Yield the payloads of a TFRecord file, verifying both checksums."""
    data = Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != masked_crc(header):
            raise ValueError(f"{path}: bad length checksum at byte {pos}")
        payload = data[pos + 12:pos + 12 + length]
        if struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] != masked_crc(payload):
            raise ValueError(f"{path}: bad payload checksum at byte {pos}")
        yield payload
        pos += 16 + length


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _parse(buf: bytes) -> Iterator[Tuple[int, int, object]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def read_scalars(path: Union[str, os.PathLike]) -> List[Tuple[int, str, float]]:
    """(step, tag, value) for every scalar in an event file (for tests and quick inspection)."""
    out = []
    for payload in read_records(path):
        fields = list(_parse(payload))
        step = next((v for n, _, v in fields if n == 2), 0)
        for n, _, summary in fields:
            if n != 5:
                continue
            for _, _, value in _parse(summary):
                parts = {num: v for num, _, v in _parse(value)}
                out.append((step, parts[1].decode(), struct.unpack("<f", parts[2])[0]))
    return out
