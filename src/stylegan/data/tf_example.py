"""A minimal protobuf decoder for TensorFlow's `tf.train.Example`, the payload of a TFRecord (no protobuf package).

The messages (tensorflow/core/example/example.proto and feature.proto), with their field numbers:

    Example    { Features features = 1; }
    Features   { map<string, Feature> feature = 1; }         each entry: { string key = 1; Feature value = 2; }
    Feature    { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList  { repeated bytes value = 1; }
    FloatList  { repeated float value = 1 [packed = true]; }
    Int64List  { repeated int64 value = 1 [packed = true]; }

Wire format: each field is a varint key (field number << 3 | wire type) then its value: a varint (type 0), 8 bytes
(type 1), a varint length and that many bytes (type 2: strings, bytes, messages, packed numbers), or 4 bytes (type 5).
Numbers may come packed (one length-delimited run) or one per field; both are read. Unknown fields are skipped,
as protobuf does. Bytes values are zero-copy memoryviews into the record.
"""
from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from typing import Union

import numpy as np

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3  # Feature's oneof fields
FEATURE_KINDS = types.MappingProxyType(
    {_BYTES_LIST: "bytes_list", _FLOAT_LIST: "float_list", _INT64_LIST: "int64_list"}
)


class ExampleDecodeError(ValueError):
    """The bytes are not a well-formed tf.train.Example."""


@dataclasses.dataclass
class Feature:
    """One feature: its kind ('bytes_list', 'float_list', 'int64_list' or None when unset) and values."""

    kind: Union[str, None]
    values: list  # memoryview for bytes, float, or int


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ExampleDecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise ExampleDecodeError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Union[int, memoryview]]]:
    """(field number, wire type, value) of each field: an int for varints, a memoryview otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ExampleDecodeError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
            continue
        if wire == _LENGTH:
            size, pos = _varint(buf, pos)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
        else:
            raise ExampleDecodeError(f"unsupported wire type {wire} (field {number})")
        if pos + size > len(buf):
            raise ExampleDecodeError(f"field {number} runs past the end of its message")
        yield number, wire, buf[pos:pos + size]
        pos += size


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def _packed_varints(buf: memoryview) -> list[int]:
    values, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        values.append(_signed64(value))
    return values


def _list_values(kind: int, buf: memoryview) -> list:
    """Values of a BytesList, FloatList or Int64List message."""
    values: list = []
    for number, wire, value in _fields(buf):
        if number != 1:
            continue
        if kind == _BYTES_LIST and wire == _LENGTH:
            values.append(value)
        elif kind == _FLOAT_LIST and wire in (_LENGTH, _FIXED32):
            if len(value) % 4:
                raise ExampleDecodeError("packed floats not a multiple of 4 bytes")
            values.extend(np.frombuffer(value, dtype="<f4").tolist())
        elif kind == _INT64_LIST and wire == _LENGTH:
            values.extend(_packed_varints(value))
        elif kind == _INT64_LIST and wire == _VARINT:
            values.append(_signed64(value))
        else:
            raise ExampleDecodeError(f"{FEATURE_KINDS[kind]} value with wire type {wire}")
    return values


def _feature(buf: memoryview) -> Feature:
    feature = Feature(kind=None, values=[])
    for number, wire, value in _fields(buf):
        if number in FEATURE_KINDS:
            if wire != _LENGTH:
                raise ExampleDecodeError(f"{FEATURE_KINDS[number]} with wire type {wire}")
            feature = Feature(kind=FEATURE_KINDS[number], values=_list_values(number, value))  # oneof: last wins
    return feature


def _map_entry(buf: memoryview) -> tuple[str, Feature]:
    key, feature = "", Feature(kind=None, values=[])
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LENGTH:
            try:
                key = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise ExampleDecodeError("feature name is not UTF-8") from None
        elif number == 2 and wire == _LENGTH:
            feature = _feature(value)
    return key, feature


def parse_example(data) -> dict[str, Feature]:
    """Feature name -> Feature of a serialized tf.train.Example (bytes-like); raises ExampleDecodeError."""
    features: dict[str, Feature] = {}
    for number, wire, value in _fields(memoryview(data).cast("B")):
        if number != 1 or wire != _LENGTH:
            continue
        for entry_number, entry_wire, entry in _fields(value):
            if entry_number == 1 and entry_wire == _LENGTH:
                key, feature = _map_entry(entry)
                features[key] = feature  # a repeated key: the last one wins, as protobuf maps do
    return features
