"""tf.train.Example decoding: the wire forms TensorFlow writes and protobuf allows, and malformed input."""
import numpy as np
import pytest
from nvidia_dataset_writers import bytes_feature, example, field, float_feature, int64_feature, varint

from stylegan.data.tf_example import ExampleDecodeError, parse_example


def test_nvidia_image_example():
    pixels = np.arange(48, dtype=np.uint8).tobytes()
    parsed = parse_example(example({"shape": int64_feature([3, 4, 4]), "data": bytes_feature([pixels])}))
    assert list(parsed) == ["shape", "data"]
    assert (parsed["shape"].kind, parsed["shape"].values) == ("int64_list", [3, 4, 4])
    assert parsed["data"].kind == "bytes_list" and [bytes(v) for v in parsed["data"].values] == [pixels]


@pytest.mark.parametrize("packed", [True, False])
def test_int64_and_float_lists_packed_or_not(packed):
    ints = [0, 1, 300, 2**40, -1, -(2**63)]
    floats = [0.5, -2.0, 1e-3]
    parsed = parse_example(example({"i": int64_feature(ints, packed), "f": float_feature(floats, packed)}))
    assert parsed["i"].values == ints
    assert parsed["f"].kind == "float_list"
    np.testing.assert_array_equal(np.float32(parsed["f"].values), np.float32(floats))


def test_order_unknown_fields_and_empty_features():
    # 'data' before 'shape', an unknown field in Example (number 7, varint) and in Feature (number 9, fixed32),
    # a feature with no kind set, and a repeated key (the last one wins, as protobuf maps).
    unknown_in_feature = field(9, 5, b"\x01\x02\x03\x04")
    features = {"data": bytes_feature([b"ab", b"c"]), "shape": int64_feature([1]) + unknown_in_feature,
                "empty": b""}
    data = example(features) + field(7, 0, varint(5))
    data += field(1, 2, field(1, 2, field(1, 2, b"shape") + field(2, 2, int64_feature([2, 2]))))
    parsed = parse_example(data)
    assert [bytes(v) for v in parsed["data"].values] == [b"ab", b"c"]
    assert parsed["shape"].values == [2, 2]
    assert (parsed["empty"].kind, parsed["empty"].values) == (None, [])
    assert parse_example(b"") == {}


@pytest.mark.parametrize("data, message", [
    (example({"shape": int64_feature([1, 2])})[:-1], "past the end"),  # cut short
    (b"\x0a\xff", "truncated varint"),
    (b"\x0b", "wire type 3"),  # start-group: not in tf.train.Example
    (b"\x00\x00", "field number 0"),
    (b"\x0a" + b"\xff" * 11, "longer than 10 bytes"),
    (example({"x": field(3, 2, field(1, 5, b"\x00\x00\x00\x00"))}), "int64_list value with wire type 5"),
])
def test_malformed_input_is_a_decode_error(data, message):
    with pytest.raises(ExampleDecodeError, match=message):
        parse_example(data)
