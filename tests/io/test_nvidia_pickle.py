"""The NVIDIA snapshot reader: the real tiny16 snapshot, synthetic snapshots in other official
encodings, malicious pickles (top level, injected deep inside the real snapshot, inside a legacy
storage stream) and broken files.

The malicious-pickle tests run against both readers on the shared restricted-unpickler core: the
PyTorch snapshot reader (``pytorch``) and the TensorFlow (G, D, Gs) reader (``tf``, io.tf_pickle),
with payloads injected into the real files of each format."""
import ast
import io
import json
import os
import pickle
import pickletools
import random
import struct
import subprocess
import sys
import types
import uuid
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stylegan.errors import FormatError, UnsafePickleError, UserInputError
from stylegan.io.nvidia_pickle import ForeignModule, augment_p, read_nvidia_snapshot
from stylegan.io.tf_pickle import read_tf_pickle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "official"
SNAPSHOT = FIXTURES / "official_snapshot_tiny16.pkl"
TF_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf"
TF_V1, TF_V2 = TF_FIXTURES / "v1_rgb32.pkl", TF_FIXTURES / "v2_skip32.pkl"
READERS = {"pytorch": read_nvidia_snapshot, "tf": read_tf_pickle}
FORMATS = sorted(READERS)


@pytest.fixture(scope="module")
def snapshot():
    return read_nvidia_snapshot(SNAPSHOT)


@pytest.fixture(scope="module")
def described():
    return json.loads((FIXTURES / "official_snapshot_tiny16.json").read_text())


# ----------------------------------------------------------------------------------------------
# The real snapshot.


@pytest.mark.parametrize("key, reference", [("G_ema", "G"), ("D", "D")])
def test_state_dicts_equal_reference_weights(snapshot, key, reference):
    expected = load_file(str(FIXTURES / "tiny16" / f"{reference}.safetensors"))
    got = snapshot[key].state_dict
    assert sorted(got) == sorted(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name], tensor), name


def test_state_dict_order_is_that_of_nn_module(snapshot):
    keys = list(snapshot["G_ema"].state_dict)
    # synthesis is registered before mapping in Generator.__init__.
    assert keys[0].startswith("synthesis.") and keys[-1].startswith("mapping.")
    # Own buffers come before children: w_avg is registered after fc0/fc1 but listed first.
    assert keys.index("mapping.w_avg") < keys.index("mapping.fc0.weight") < keys.index("mapping.fc1.weight")
    # Parameters before buffers within one module.
    assert keys.index("synthesis.b8.conv0.bias") < keys.index("synthesis.b8.conv0.resample_filter")
    assert keys.index("synthesis.b8.conv0.noise_strength") < keys.index("synthesis.b8.conv0.noise_const")


def test_g_differs_from_g_ema(snapshot):
    g, g_ema = snapshot["G"].state_dict, snapshot["G_ema"].state_dict
    assert list(g) == list(g_ema)
    assert not torch.equal(g["mapping.fc0.weight"], g_ema["mapping.fc0.weight"])
    assert torch.equal(g["synthesis.b8.conv0.noise_const"], g_ema["synthesis.b8.conv0.noise_const"])  # a buffer


def test_class_names_and_init_kwargs(snapshot, described):
    stored = described["init_kwargs_as_stored"]
    assert all(isinstance(snapshot[k], ForeignModule) for k in ("G", "D", "G_ema", "augment_pipe"))
    assert snapshot["G"].class_name == snapshot["G_ema"].class_name == "training.networks_stylegan2.Generator"
    assert snapshot["D"].class_name == "training.networks_stylegan2.Discriminator"
    assert snapshot["augment_pipe"].class_name == "training.augment.AugmentPipe"
    assert snapshot["G_ema"].init_kwargs == ast.literal_eval(stored["G_and_G_ema"])
    assert snapshot["D"].init_kwargs == ast.literal_eval(stored["D"])
    assert snapshot["augment_pipe"].init_kwargs == ast.literal_eval(stored["augment_pipe"])
    assert type(snapshot["G_ema"].init_kwargs["mapping_kwargs"]) is dict  # EasyDict made plain
    assert type(snapshot["D"].init_kwargs["epilogue_kwargs"]) is dict
    assert snapshot["G_ema"].init_args == ()


def test_attributes_and_training_set_kwargs(snapshot, described):
    expected = load_file(str(FIXTURES / "official_snapshot_tiny16_expected.safetensors"))
    attrs = snapshot["G_ema"].attributes
    assert attrs["z_dim"] == 32 and attrs["num_ws"] == expected["G_ema_ws"].shape[1] and attrs["training"] is False
    assert not any(name.startswith("_") for name in attrs)
    assert snapshot["D"].attributes["block_resolutions"] == [16, 8]
    assert snapshot["training_set_kwargs"] == described["networks"]["training_set_kwargs"]
    assert list(snapshot) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]


def test_augment_p(snapshot):
    expected = load_file(str(FIXTURES / "official_snapshot_tiny16_expected.safetensors"))["augment_p"]
    assert augment_p(snapshot) == 0.125 == expected.item()
    assert augment_p({k: v for k, v in snapshot.items() if k != "augment_pipe"}) is None
    with pytest.raises(UserInputError):
        augment_p([snapshot])


def test_reads_from_binary_file_object(snapshot):
    with open(SNAPSHOT, "rb") as f:
        again = read_nvidia_snapshot(f)
    assert torch.equal(again["D"].state_dict["b4.out.weight"], snapshot["D"].state_dict["b4.out.weight"])


# ----------------------------------------------------------------------------------------------
# Opcode-level helpers to craft pickles without any importable payload.


def _body(value, protocol=2) -> bytes:
    """Opcodes that push ``value`` (no header, no STOP, no memo writes that could clash)."""
    return pickletools.optimize(pickle.dumps(value, protocol=protocol))[2:-1]


def _global_call(module: str, name: str, *arg_bodies: bytes) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n(" + b"".join(arg_bodies) + b"tR"


def _call(module: str, name: str, *args) -> bytes:
    return _global_call(module, name, *(_body(a) for a in args))


def _pickle(*body: bytes) -> bytes:
    return b"\x80\x02" + b"".join(body) + b"."


def _ops(data: bytes):
    """(name, arg, raw bytes) of each opcode, FRAME opcodes dropped so that bytes can be inserted."""
    ops = list(pickletools.genops(data))
    out = []
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name != "FRAME":
            out.append([op.name, arg, data[pos:end]])
    return out


def _join(ops) -> bytes:
    return b"".join(raw for _, _, raw in ops)


def _inject_into_dict(data: bytes, key: str, occurrence: int, kv: bytes, container: str = "EMPTY_DICT") -> bytes:
    """Add the pair ``kv`` (key, value, SETITEM) to the dict stored under ``key`` (n-th time).

    With container="EMPTY_LIST", ``kv`` is an item and APPEND, added to the list stored under ``key``.
    """
    ops = _ops(data)
    memo_index = None
    memo_count = 0
    hits = []
    for i, (name, arg, _) in enumerate(ops):
        if name == "MEMOIZE":
            if ops[i - 1][0] == "SHORT_BINUNICODE" and ops[i - 1][1] == key:
                memo_index = memo_count
            memo_count += 1
        is_key = (name == "SHORT_BINUNICODE" and arg == key) or (name in ("BINGET", "LONG_BINGET") and arg == memo_index)
        if not is_key:
            continue
        j = i + 2 if ops[i + 1][0] == "MEMOIZE" else i + 1  # a key's first use is memoized
        if ops[j][0] == container and ops[j + 1][0] == "MEMOIZE":
            hits.append(j + 1)
    at = hits[occurrence]
    ops.insert(at + 1, ["INJECTED", None, kv])
    return _join(ops)


def _storage_blobs(ops):
    return [i for i, (name, arg, _) in enumerate(ops) if name in ("BINBYTES", "SHORT_BINBYTES") and len(arg) > 100]


def _replace_storage_blob(data: bytes, index: int, new_blob: bytes) -> bytes:
    ops = _ops(data)
    at = _storage_blobs(ops)[index]
    ops[at] = ["BINBYTES", new_blob, b"B" + struct.pack("<I", len(new_blob)) + new_blob]
    return _join(ops)


def _split_legacy_stream(blob: bytes):
    """The five pickles of a legacy torch.save stream, and the raw data after them."""
    stream, parts = io.BytesIO(blob), []
    for _ in range(5):
        start = stream.tell()
        for _ in pickletools.genops(stream):
            pass
        parts.append(blob[start : stream.tell()])
    return parts, blob[stream.tell() :]


# ----------------------------------------------------------------------------------------------
# Malicious pickles. Each payload, if executed, leaves a trace that the tests look for.


def _payloads(tmp_path):
    marker = tmp_path / "pwned"
    victim = tmp_path / "victim"
    victim.mkdir()
    module_name = f"stylegan_test_evil_{uuid.uuid4().hex}"
    (tmp_path / f"{module_name}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    write = f"open({str(marker)!r}, 'w').write('x')"
    return marker, victim, module_name, {
        "os.system": ("os", "system", f"touch '{marker}'"),
        "posix.system": ("posix", "system", f"touch '{marker}'"),
        "builtins.eval": ("builtins", "eval", write),
        "builtins.exec": ("builtins", "exec", write),
        "subprocess.Popen": ("subprocess", "Popen", ["touch", str(marker)]),
        "importlib.import_module": ("importlib", "import_module", module_name),
        "shutil.rmtree": ("shutil", "rmtree", str(victim)),
    }


PAYLOAD_NAMES = ["os.system", "posix.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                 "importlib.import_module", "shutil.rmtree"]


def _untouched(marker, victim):
    return not marker.exists() and victim.is_dir()


@pytest.mark.parametrize("payload", PAYLOAD_NAMES)
def test_payloads_are_live_under_plain_pickle(tmp_path, monkeypatch, payload):
    """Control: the same bytes do their damage under pickle.loads, so the refusals below mean something."""
    marker, victim, module_name, payloads = _payloads(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        result = pickle.loads(_pickle(_call(*payloads[payload])))
        if isinstance(result, subprocess.Popen):
            result.wait()
    finally:
        sys.modules.pop(module_name, None)
    assert not _untouched(marker, victim)


@pytest.mark.parametrize("payload", PAYLOAD_NAMES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_top_level_payload_is_refused(tmp_path, monkeypatch, fmt, payload):
    marker, victim, _, payloads = _payloads(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "evil.pkl"
    path.write_bytes(_pickle(_call(*payloads[payload])))
    with pytest.raises(UnsafePickleError, match=payload.replace(".", r"\.")) as info:
        READERS[fmt](path)
    assert str(path) in str(info.value)
    assert _untouched(marker, victim)


class _Evil:
    """Pickles as a call of os.system (posix.system) that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("fmt", FORMATS)
def test_object_with_reduce_is_refused(tmp_path, fmt):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))

    value = {"G": Evil()} if fmt == "pytorch" else (Evil(), Evil(), Evil())
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        READERS[fmt](io.BytesIO(pickle.dumps(value, protocol=4)))
    assert not marker.exists()


def _object_array(marker) -> np.ndarray:
    return np.array([_Evil(marker), 1], dtype=object)


def test_object_array_payload_is_live_under_plain_pickle(tmp_path):
    """Control: an object array's elements are pickles of their own, run by pickle.loads."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_object_array(marker), protocol=4))
    assert marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_object_array_at_top_level_is_refused(tmp_path, fmt):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_object_array(marker), protocol=4)
    with pytest.raises(UnsafePickleError, match="object array"):
        READERS[fmt](io.BytesIO(data))
    assert not marker.exists()


# (format, place) -> (file, key of the container, occurrence, container opcode): places inside the real files
# where a payload is injected.
INJECTION_SITES = {
    ("pytorch", "init_kwargs of a deeply nested layer"): (SNAPSHOT, "_init_kwargs", 0, "EMPTY_DICT"),
    ("pytorch", "buffers of a nested module of D"): (SNAPSHOT, "_buffers", 40, "EMPTY_DICT"),
    ("pytorch", "init_kwargs of G_ema"): (SNAPSHOT, "_init_kwargs", -2, "EMPTY_DICT"),
    ("pytorch", "persistent meta state"): (SNAPSHOT, "state", 5, "EMPTY_DICT"),
    ("pytorch", "training_set_kwargs"): (SNAPSHOT, "training_set_kwargs", 0, "EMPTY_DICT"),
    ("tf", "static_kwargs of G"): (TF_V2, "static_kwargs", 0, "EMPTY_DICT"),
    ("tf", "static_kwargs of Gs's mapping"): (TF_V2, "static_kwargs", -1, "EMPTY_DICT"),
    ("tf", "components of G"): (TF_V2, "components", 0, "EMPTY_DICT"),
    ("tf", "components of D (v1)"): (TF_V1, "components", 3, "EMPTY_DICT"),
    ("tf", "variables of G's synthesis"): (TF_V2, "variables", 0, "EMPTY_LIST"),
    ("tf", "variables of D (v1)"): (TF_V1, "variables", 3, "EMPTY_LIST"),
}
SITES = sorted(INJECTION_SITES)


def _inject(site, value: bytes) -> bytes:
    """Put the pushed ``value`` into an injection site: as ("evil", value) into a dict or a list."""
    path, key, occurrence, container = INJECTION_SITES[site]
    item = _body("evil") + value + (b"s" if container == "EMPTY_DICT" else b"\x86a")  # SETITEM / TUPLE2 APPEND
    return _inject_into_dict(path.read_bytes(), key, occurrence, item, container)


@pytest.mark.parametrize("site", SITES, ids=[f"{f}-{p}" for f, p in SITES])
@pytest.mark.parametrize("payload", ["builtins.exec", "os.system", "importlib.import_module"])
def test_payload_injected_into_real_file_is_refused(tmp_path, monkeypatch, site, payload):
    marker, victim, _, payloads = _payloads(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = _inject(site, _call(*payloads[payload]))
    with pytest.raises(UnsafePickleError, match=payload.replace(".", r"\.")):
        READERS[site[0]](io.BytesIO(data))
    assert _untouched(marker, victim)


@pytest.mark.parametrize("site", SITES, ids=[f"{f}-{p}" for f, p in SITES])
def test_object_array_injected_into_real_file_is_refused(tmp_path, site):
    marker = tmp_path / "pwned"
    data = _inject(site, _body(_object_array(marker), protocol=3))
    with pytest.raises(UnsafePickleError, match="object array"):
        READERS[site[0]](io.BytesIO(data))
    assert not marker.exists()


def test_injection_helper_produces_a_valid_snapshot():
    """An injected harmless pair is read back where it was put, so the sites above are real."""
    data = SNAPSHOT.read_bytes()
    extra = _body("extra") + _body([1, 2.5]) + b"s"
    result = read_nvidia_snapshot(io.BytesIO(_inject_into_dict(data, "_init_kwargs", -2, extra)))
    assert result["G_ema"].init_kwargs["extra"] == [1, 2.5]
    assert "extra" not in result["G"].init_kwargs
    result = read_nvidia_snapshot(io.BytesIO(_inject_into_dict(data, "training_set_kwargs", 0, extra)))
    assert result["training_set_kwargs"]["extra"] == [1, 2.5]


def test_injection_helper_produces_valid_tf_pickles():
    """The TF sites are the documented places: harmless values injected there are read back there."""
    def read(site, value):
        return read_tf_pickle(io.BytesIO(_inject(site, _body(value))))

    assert read(("tf", "static_kwargs of G"), [1, 2.5])["G"].static_kwargs["evil"] == [1, 2.5]
    nets = read(("tf", "static_kwargs of Gs's mapping"), 3)
    assert nets["Gs"].components["mapping"].static_kwargs["evil"] == 3
    assert "evil" not in nets["G"].components["mapping"].static_kwargs
    assert read(("tf", "variables of G's synthesis"), 0.25)["G"].components["synthesis"].variables["evil"].item() == 0.25
    assert read(("tf", "variables of D (v1)"), 0.5)["D"].variables["evil"].item() == 0.5
    for site, role in [(("tf", "components of G"), "G"), (("tf", "components of D (v1)"), "D")]:
        with pytest.raises(FormatError, match=rf"{role}\.components\['evil'\] is a str, not a Network"):
            read(site, "x")


@pytest.mark.parametrize("payload", ["builtins.exec", "os.system", "subprocess.Popen"])
def test_payload_inside_legacy_storage_stream_is_refused(tmp_path, payload):
    marker, victim, _, payloads = _payloads(tmp_path)
    data = SNAPSHOT.read_bytes()
    blob = _ops(data)[_storage_blobs(_ops(data))[3]][1]
    parts, raw = _split_legacy_stream(blob)
    evil_blob = b"".join(parts[:3]) + _pickle(_call(*payloads[payload])) + parts[4] + raw
    with pytest.raises(UnsafePickleError, match=payload.replace(".", r"\.")):
        read_nvidia_snapshot(io.BytesIO(_replace_storage_blob(data, 3, evil_blob)))
    assert _untouched(marker, victim)


def test_storage_type_global_swapped_for_os_system_is_refused():
    data = SNAPSHOT.read_bytes()
    blob = _ops(data)[_storage_blobs(_ops(data))[0]][1]
    assert b"ctorch\nFloatStorage\n" in blob
    evil_blob = blob.replace(b"ctorch\nFloatStorage\n", b"cos\nsystem\n")
    with pytest.raises(UnsafePickleError, match=r"os\.system"):
        read_nvidia_snapshot(io.BytesIO(_replace_storage_blob(data, 0, evil_blob)))


def test_module_src_is_never_executed(tmp_path, snapshot):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('module_src ran')\n".encode()
    ops = _ops(SNAPSHOT.read_bytes())
    replaced = 0
    for op in ops:
        if op[0] == "SHORT_BINUNICODE" and op[1] == "# source removed":
            op[2] = b"X" + struct.pack("<I", len(code)) + code
            replaced += 1
    assert replaced > 0
    data = _join(ops)
    assert code in data
    result = read_nvidia_snapshot(io.BytesIO(data))
    assert not marker.exists()
    assert torch.equal(result["G_ema"].state_dict["mapping.fc0.weight"], snapshot["G_ema"].state_dict["mapping.fc0.weight"])


NEAR_MISSES = [
    ("torch_utils.persistence", "_src_to_module"),  # the official helper that exec()s module_src
    ("torch", "load"),
    ("pickle", "loads"),
    ("torch._utils", "_rebuild_tensor"),
    ("numpy.testing._private.utils", "runstring"),  # numpy's own exec() wrapper
    ("numpy", "load"),
    ("numpy.core.multiarray", "_reconstruct_persistent"),
    ("dnnlib.tflib.network", "_import_handlers"),
    ("dnnlib.util", "call_func_by_name"),
]
# Globals one format admits are near misses for the other.
OTHER_FORMAT = [("pytorch", "dnnlib.tflib.network", "Network"),
                ("tf", "torch_utils.persistence", "_reconstruct_persistent_obj"),
                ("tf", "torch._utils", "_rebuild_tensor_v2"), ("tf", "collections", "OrderedDict"),
                ("tf", "dnnlib.util", "EasyDict"), ("tf", "_codecs", "encode")]


@pytest.mark.parametrize("fmt, module, name", [(f, m, n) for f in FORMATS for m, n in NEAR_MISSES] + OTHER_FORMAT)
def test_near_miss_globals_are_refused(fmt, module, name):
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}".replace(".", r"\.")):
        READERS[fmt](io.BytesIO(_pickle(_call(module, name, "x"))))


def _storage_expr(blob: bytes) -> bytes:
    return _global_call("torch.storage", "_load_from_bytes", _body(blob))


@pytest.fixture(scope="module")
def float_blob():
    data = SNAPSHOT.read_bytes()
    return _ops(data)[_storage_blobs(_ops(data))[0]][1]  # 512 float32 values


@pytest.mark.parametrize("case, error", [
    ("size beyond storage", FormatError),
    ("not a storage", FormatError),
    ("backward hooks", UnsafePickleError),
    ("garbage storage bytes", FormatError),
    ("persistent meta not a class", FormatError),
    ("object numpy dtype", FormatError),
    ("OrderedDict with arguments", FormatError),
])
def test_allowed_globals_with_weird_arguments_are_refused(float_blob, case, error):
    body = {
        "size beyond storage": _global_call("torch._utils", "_rebuild_tensor_v2", _storage_expr(float_blob),
                                            *map(_body, (0, (1000,), (1,), False, {}))),
        "not a storage": _call("torch._utils", "_rebuild_tensor_v2", "storage", 0, (1,), (1,), False, {}),
        "backward hooks": _global_call("torch._utils", "_rebuild_tensor_v2", _storage_expr(float_blob),
                                       *map(_body, (0, (2,), (1,), False, {0: "hook"}))),
        "garbage storage bytes": _call("torch.storage", "_load_from_bytes", b"\x80\x02K\x01." * 5),
        "persistent meta not a class": _call("torch_utils.persistence", "_reconstruct_persistent_obj",
                                             {"type": "function", "version": 6, "class_name": "f", "state": {}}),
        "object numpy dtype": _call("numpy", "dtype", "O8", False, True),
        "OrderedDict with arguments": _call("collections", "OrderedDict", [("a", 1)]),
    }[case]
    with pytest.raises(error):
        read_nvidia_snapshot(io.BytesIO(_pickle(body)))


def test_valid_tensor_call_passes_the_same_checks(float_blob):
    """The well-formed version of the calls above is accepted, so those refusals are specific."""
    tensor = _global_call("torch._utils", "_rebuild_tensor_v2", _storage_expr(float_blob), *map(_body, (4, (2, 3), (1, 2), False, {})))
    module = _call("torch_utils.persistence", "_reconstruct_persistent_obj", {"type": "class", "version": 6, "class_name": "X", "state": {}})
    result = read_nvidia_snapshot(io.BytesIO(_pickle(b"}(", _body("G"), module, _body("t"), tensor, b"u")))
    flat = torch.frombuffer(bytearray(float_blob[-512 * 4 :]), dtype=torch.float32)
    assert torch.equal(result["t"], flat.as_strided((2, 3), (1, 2), 4))
    assert result["G"].class_name.endswith(".X")


@pytest.mark.parametrize("fmt", FORMATS)
def test_memo_bomb_is_refused_before_allocation(fmt):
    with pytest.raises(FormatError, match="memo"):
        READERS[fmt](io.BytesIO(b"\x80\x02Nr\xff\xff\xff\x7f."))


# ----------------------------------------------------------------------------------------------
# Synthetic snapshots written by the real pickler, in other official encodings (stylegan2-ada
# under Python 3.7 = protocol 3, numpy 1.x, fp16 weights, stylegan3 networks).


@pytest.fixture
def official_names(monkeypatch):
    """Importable stand-ins so that pickle writes the official global names; never called."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("the reader must not call the pickled function")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    util.EasyDict = EasyDict
    for name, module in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                         ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict)


class _Persistent:
    def __init__(self, names, class_name, params=None, buffers=None, children=None, non_persistent=(),
                 init_kwargs=None, **attrs):
        self.reconstruct, self.class_name = names.reconstruct, class_name
        self.state = {"training": False, "_parameters": OrderedDict(params or {}), "_buffers": OrderedDict(buffers or {}),
                      "_non_persistent_buffers_set": set(non_persistent), "_forward_hooks": OrderedDict(),
                      "_modules": OrderedDict(children or {}), **attrs, "_init_args": (), "_init_kwargs": init_kwargs or {}}

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src="raise SystemExit", class_name=self.class_name, state=self.state)
        return (self.reconstruct, (meta,))


def _param(t):
    return torch.nn.Parameter(t, requires_grad=False)


def _fc(names, n_in, n_out, with_in_features=True):
    extra = dict(in_features=n_in, out_features=n_out) if with_in_features else {}
    return _Persistent(names, "FullyConnectedLayer", params={"weight": _param(torch.randn(n_out, n_in)), "bias": None},
                       activation="linear", weight_gain=np.float64(n_in ** -0.5), **extra)


def _ada_style_snapshot(names):
    """A Generator as stylegan2-ada-pytorch writes it: nested synthesis_kwargs, FC without in_features."""
    torch.manual_seed(0)
    layer = _Persistent(names, "SynthesisLayer",
                        params={"weight": _param(torch.randn(3, 4).t()), "noise_strength": _param(torch.tensor(0.5).half())},
                        buffers={"resample_filter": torch.ones(4, 4, dtype=torch.bfloat16), "noise_const": torch.randn(4, 4),
                                 "scratch": torch.zeros(2), "counts": torch.arange(5), "mask": torch.tensor([True, False])},
                        non_persistent=["scratch"], children={"affine": _fc(names, 4, 3, with_in_features=False)})
    synthesis = _Persistent(names, "SynthesisNetwork", children={"b4": _Persistent(names, "SynthesisBlock", children={"conv1": layer})})
    mapping = _Persistent(names, "MappingNetwork", buffers={"w_avg": torch.randn(4)},
                          children={"fc0": _fc(names, 4, 4, with_in_features=False), "embed": None})
    init_kwargs = dict(z_dim=4, c_dim=0, w_dim=4, img_resolution=4, img_channels=3,
                       mapping_kwargs=names.EasyDict(num_layers=np.int64(1), lr_multiplier=np.float64(0.01)),
                       synthesis_kwargs=names.EasyDict(channel_base=np.int32(64), fp16=np.bool_(True),
                                                       half=np.float16(1.5), byte=np.uint8(200)))
    g = _Persistent(names, "Generator", children={"synthesis": synthesis, "mapping": mapping},
                    init_kwargs=init_kwargs, z_dim=4, num_ws=2, w_gain=np.float64(0.25))
    return {"training_set_kwargs": {"path": "x.zip", "resolution": 4}, "G_ema": g, "augment_pipe": None}


def test_ada_style_protocol3_numpy1_snapshot(official_names, tmp_path):
    data = pickle.dumps(_ada_style_snapshot(official_names), protocol=3)
    assert b"cbuiltins\nset\n" in data and b"cnumpy._core.multiarray\nscalar\n" in data
    data = data.replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")  # numpy 1.x spelling
    result = read_nvidia_snapshot(io.BytesIO(data))

    g = result["G_ema"]
    assert g.class_name == "training.networks.Generator"
    assert list(g.state_dict) == [
        "synthesis.b4.conv1.weight", "synthesis.b4.conv1.noise_strength", "synthesis.b4.conv1.resample_filter",
        "synthesis.b4.conv1.noise_const", "synthesis.b4.conv1.counts", "synthesis.b4.conv1.mask",
        "synthesis.b4.conv1.affine.weight", "mapping.w_avg", "mapping.fc0.weight"]
    original = _ada_style_snapshot(official_names)["G_ema"]  # same seed, same tensors
    conv1 = original.state["_modules"]["synthesis"].state["_modules"]["b4"].state["_modules"]["conv1"].state
    weight = g.state_dict["synthesis.b4.conv1.weight"]
    assert weight.shape == (4, 3) and weight.stride() == (1, 4) and torch.equal(weight, conv1["_parameters"]["weight"])
    assert g.state_dict["synthesis.b4.conv1.noise_strength"].dtype == torch.float16
    assert g.state_dict["synthesis.b4.conv1.noise_strength"].item() == 0.5
    assert torch.equal(g.state_dict["synthesis.b4.conv1.resample_filter"], torch.ones(4, 4, dtype=torch.bfloat16))
    assert torch.equal(g.state_dict["synthesis.b4.conv1.counts"], torch.arange(5))
    assert torch.equal(g.state_dict["synthesis.b4.conv1.mask"], torch.tensor([True, False]))
    assert all(type(t) is torch.Tensor for t in g.state_dict.values())

    assert g.init_kwargs == {"z_dim": 4, "c_dim": 0, "w_dim": 4, "img_resolution": 4, "img_channels": 3,
                             "mapping_kwargs": {"num_layers": 1, "lr_multiplier": 0.01},
                             "synthesis_kwargs": {"channel_base": 64, "fp16": True, "half": 1.5, "byte": 200}}
    kinds = {k: type(v) for k, v in g.init_kwargs["synthesis_kwargs"].items()}
    assert kinds == {"channel_base": int, "fp16": bool, "half": float, "byte": int}
    assert type(g.init_kwargs["mapping_kwargs"]) is dict
    assert g.attributes == {"training": False, "z_dim": 4, "num_ws": 2, "w_gain": 0.25}
    assert result["training_set_kwargs"] == {"path": "x.zip", "resolution": 4}
    assert augment_p(result) is None


@pytest.mark.parametrize("numpy_spelling", ["numpy 2, protocol 4", "numpy 1, protocol 3", "protocol 5"])
def test_stylegan3_generator_and_stylegan2_discriminator(official_names, numpy_spelling):
    """StyleGAN3 snapshots carry numpy number arrays (in_size, out_size, ...) and float64 scalars as data."""
    torch.manual_seed(0)
    names = official_names
    synthesis = _Persistent(names, "SynthesisNetwork", children={
        "input": _Persistent(names, "SynthesisInput", buffers={"freqs": torch.randn(4, 2)}, children={"affine": _fc(names, 4, 4)},
                             size=np.broadcast_to(np.asarray(36), [2])),
        "L0_36_512": _Persistent(names, "SynthesisLayer", params={"weight": _param(torch.randn(2, 2))})})
    g = _Persistent(names, "Generator", children={"synthesis": synthesis, "mapping": _fc(names, 4, 4)},
                    in_size=np.array([36, 36]), cutoffs=np.asfortranarray(np.arange(6.0).reshape(2, 3)),
                    big=np.arange(3, dtype=">f4"), sampling_rate=np.float64(16.5))
    d = _Persistent(names, "Discriminator", children={"b4": _Persistent(names, "DiscriminatorEpilogue", children={"out": _fc(names, 2, 1)})})
    pipe = _Persistent(names, "AugmentPipe", buffers={"p": torch.tensor(0.25)})
    value = {"G_ema": g, "D": d, "augment_pipe": pipe}
    if numpy_spelling == "numpy 1, protocol 3":
        data = pickle.dumps(value, protocol=3)
        assert b"cnumpy._core.multiarray\n_reconstruct\n" in data
        data = data.replace(b"cnumpy._core.", b"cnumpy.core.")  # what numpy 1.x writes
    else:
        data = pickle.dumps(value, protocol=4 if numpy_spelling.startswith("numpy 2") else 5)
        assert (b"_frombuffer" in data) == (numpy_spelling == "protocol 5")
    result = read_nvidia_snapshot(io.BytesIO(data))
    assert result["G_ema"].class_name == "training.networks_stylegan3.Generator"
    assert result["D"].class_name == "training.networks_stylegan2.Discriminator"
    assert list(result["G_ema"].state_dict) == ["synthesis.input.freqs", "synthesis.input.affine.weight",
                                                "synthesis.L0_36_512.weight", "mapping.weight"]
    attrs = result["G_ema"].attributes
    assert type(attrs["in_size"]) is np.ndarray and attrs["in_size"].dtype == np.int64
    assert attrs["in_size"].tolist() == [36, 36] and attrs["in_size"].flags.writeable
    assert attrs["cutoffs"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert attrs["big"].dtype == np.float32 and attrs["big"].tolist() == [0.0, 1.0, 2.0]
    assert type(attrs["sampling_rate"]) is float and attrs["sampling_rate"] == 16.5
    assert augment_p(result) == 0.25


def test_reference_cycle_is_refused(official_names):
    loop = []
    loop.append(loop)
    data = pickle.dumps({"G": _Persistent(official_names, "Generator"), "loop": loop}, protocol=4)
    with pytest.raises(FormatError, match="cycle"):
        read_nvidia_snapshot(io.BytesIO(data))


# ----------------------------------------------------------------------------------------------
# Broken and wrong files.


@pytest.mark.parametrize("keep", [0.5, 0.999, 40])
def test_truncated_snapshot(tmp_path, keep):
    data = SNAPSHOT.read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(FormatError, match="truncated") as info:
        read_nvidia_snapshot(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("prefix", [b"", b"\x80\x04", b"\x80\x02"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(tmp_path, prefix, seed):
    path = tmp_path / "noise.pkl"
    path.write_bytes(prefix + random.Random(seed).randbytes(4096))
    with pytest.raises(FormatError) as info:
        read_nvidia_snapshot(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (pickle.dumps([1, 2, 3]), "list"),
    (pickle.dumps({"a": 1, "G": "not a network"}), "no network"),
    (b"just some text\n", "not a pickle"),
])
def test_not_a_snapshot(tmp_path, content, match):
    path = tmp_path / "file.pkl"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=match) as info:
        read_nvidia_snapshot(path)
    assert str(path) in str(info.value)


def test_torch_save_zip_is_named(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"G": torch.zeros(2)}, path)
    assert zipfile.is_zipfile(path)
    with pytest.raises(FormatError, match="zip") as info:
        read_nvidia_snapshot(path)
    assert str(path) in str(info.value)


def test_bad_sources(tmp_path):
    missing = tmp_path / "missing.pkl"
    with pytest.raises(UserInputError, match="no such file") as info:
        read_nvidia_snapshot(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(UserInputError, match="directory"):
        read_nvidia_snapshot(tmp_path)
    with pytest.raises(UserInputError, match="binary mode"):
        read_nvidia_snapshot(io.StringIO("text"))
    with pytest.raises(UserInputError, match="path or a binary file"):
        read_nvidia_snapshot(42)
