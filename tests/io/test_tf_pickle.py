"""The TensorFlow pickle reader: the official (G, D, Gs) fixtures, synthetic pickles in other encodings
(numpy 2 spelling, protocol 5, Fortran order, big-endian, version 2 state) and broken files.
Malicious pickles of both formats are tested in test_nvidia_pickle.py."""
import io
import json
import pickle
import pickletools
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stylegan.errors import FormatError, UnsafePickleError, UserInputError
from stylegan.io.tf_pickle import TF_ROLES, is_tf_pickle, read_tf_pickle
from stylegan.io.tf_record import TFNetwork

TF_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf"
OFFICIAL_SNAPSHOT = TF_FIXTURES.parent / "official" / "official_snapshot_tiny16.pkl"
CONFIGS = ["v1_rgb32", "v1_rgb128_fused", "v2_skip32"]
LAYOUT = json.loads((TF_FIXTURES / "pickle_layout.json").read_text())


@pytest.fixture(scope="module", params=CONFIGS)
def case(request):
    return request.param, read_tf_pickle(TF_FIXTURES / f"{request.param}.pkl")


def _walk(net: TFNetwork, prefix: str):
    yield prefix, net
    for key, comp in net.components.items():
        yield from _walk(comp, f"{prefix}.components.{key}")


# ----------------------------------------------------------------------------------------------
# The official fixtures.


def test_fixture_names_the_documented_globals(case):
    name, _ = case
    data = (TF_FIXTURES / f"{name}.pkl").read_bytes()
    found = {arg for op, arg, _ in pickletools.genops(data) if op.name == "SHORT_BINUNICODE"}
    assert data[1] == LAYOUT[name]["protocol"] == 4
    for dotted in LAYOUT[name]["globals"]:  # the numpy 1 spelling official files carry
        module, _, attr = dotted.rpartition(".")
        assert module in found and attr in found, dotted


def test_layout_matches_the_official_description(case):
    name, nets = case
    assert list(nets) == list(TF_ROLES) == ["G", "D", "Gs"]
    layout = LAYOUT[name]["layout"]
    seen = {}
    for role in TF_ROLES:
        for path, net in _walk(nets[role], role):
            seen[path] = net
    assert sorted(seen) == sorted(layout)
    for path, net in seen.items():
        ref = layout[path]
        assert isinstance(net, TFNetwork)
        assert (net.version, net.name, net.build_func_name) == (ref["version"], ref["name"], ref["build_func_name"])
        assert net.static_kwargs == ref["static_kwargs"]
        assert {k: c.name for k, c in net.components.items()} == ref["components"]
        assert len(net.variables) == ref["num_variables"], path


def test_every_variable_is_read_exactly(case):
    """Shape, sum and sum of squares (float64) of every variable against the official values."""
    name, nets = case
    fingerprints = LAYOUT[name]["variables"]
    got = {f"{role}/{key}": value for role in TF_ROLES for key, value in nets[role].vars().items()}
    assert sorted(got) == sorted(fingerprints)
    for key, value in got.items():
        shape, total, squares = fingerprints[key]
        assert value.dtype == torch.float32 and value.is_contiguous(), key
        assert list(value.shape) == (shape if shape != [1] or value.dim() == 1 else []), key
        v = value.double()
        assert v.sum().item() == pytest.approx(total, rel=1e-12, abs=1e-12), key
        assert (v * v).sum().item() == pytest.approx(squares, rel=1e-12, abs=1e-12), key
    assert got["Gs/lod"].shape == () and got["Gs/lod"].item() == 0.0  # a numpy float32 scalar in the file


def test_noise_variables_equal_the_stored_noise_inputs(case):
    name, nets = case
    expected = load_file(str(TF_FIXTURES / f"{name}_expected.safetensors"))
    keys = [k for k in expected if k.startswith("noise/")]
    assert len(keys) >= 12
    for key in keys:
        _, role, local = key.split("/", 2)
        assert torch.equal(nets[role].vars()[local], expected[key]), key


def test_g_differs_from_gs(case):
    _, nets = case
    g, gs = nets["G"].vars(), nets["Gs"].vars()
    assert list(g) == list(gs)
    assert not torch.equal(g["G_mapping/Dense0/weight"], gs["G_mapping/Dense0/weight"])


def test_reads_from_binary_file_object():
    with open(TF_FIXTURES / "v2_skip32.pkl", "rb") as f:
        nets = read_tf_pickle(f)
    assert nets["D"].build_func_name == "D_stylegan2"


def test_is_tf_pickle(tmp_path):
    assert all(is_tf_pickle(TF_FIXTURES / f"{name}.pkl") for name in [*CONFIGS, "ada_tf_skip64"])
    assert not is_tf_pickle(OFFICIAL_SNAPSHOT)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x04not really")
    assert not is_tf_pickle(junk)
    cut = tmp_path / "cut.pkl"  # recognised up to the damage: a truncated TF pickle gets the TF reader's message
    cut.write_bytes((TF_FIXTURES / "v2_skip32.pkl").read_bytes()[:1000])
    assert is_tf_pickle(cut)


# ----------------------------------------------------------------------------------------------
# Synthetic TF pickles written by the real pickler.


@pytest.fixture
def tf_network_class(monkeypatch):
    """An importable dnnlib.tflib.network.Network that pickles like the official one; never unpickled here."""
    module = types.ModuleType("dnnlib.tflib.network")

    class Network:
        def __init__(self, state):
            self.state = state

        def __getstate__(self):
            return self.state

        def __setstate__(self, state):
            raise AssertionError("the reader must not call the pickled class")

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    module.Network = Network
    for name, mod in [("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.tflib", types.ModuleType("dnnlib.tflib")),
                      ("dnnlib.tflib.network", module)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return Network


def _state(name, func, variables, components=None, version=4, **static_kwargs):
    state = dict(version=version, name=name, static_kwargs=static_kwargs, components=components or {},
                 build_module_src="raise SystemExit('must not run')", build_func_name=func,
                 variables=list(variables.items()))
    if components is None and version == 2:
        del state["components"]
    return state


def _triple(Network, **variables):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    g_vars = {"lod": np.float32(0.5), "dlatent_avg": rng.standard_normal(4).astype(np.float32)}
    mapping = Network(_state("G_mapping", "G_mapping", {"Dense0/weight": rng.standard_normal((4, 4)).astype(np.float32)}))
    synthesis = Network(_state("G_synthesis", "G_synthesis_stylegan2", {"4x4/Conv/weight": weight, **variables}))
    g = Network(_state("G", "G_main", g_vars, {"mapping": mapping, "synthesis": synthesis}, resolution=4,
                       resolution_np=np.int64(4)))
    d = Network(_state("D", "D_stylegan2", {"Output/bias": np.zeros([1], np.float32)}))
    return (g, d, g), weight


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_synthetic_pickle_numpy2_spelling_and_protocols(tf_network_class, protocol):
    triple, weight = _triple(tf_network_class, fortran=np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
                             big_endian=np.arange(3, dtype=">f4"), half=np.ones(2, np.float16))
    data = pickle.dumps(triple, protocol=protocol)
    if protocol == 5:
        assert b"_frombuffer" in data
    if protocol >= 4:
        assert b"numpy._core.multiarray" in data or b"_frombuffer" in data  # numpy 2 writes the new spelling
    if protocol == 2:  # bytes are spelled through _codecs.encode, which real TF pickles never use
        with pytest.raises(UnsafePickleError, match=r"_codecs\.encode"):
            read_tf_pickle(io.BytesIO(data))
        return
    nets = read_tf_pickle(io.BytesIO(data))
    syn = nets["G"].components["synthesis"]
    assert torch.equal(syn.variables["4x4/Conv/weight"], torch.from_numpy(weight))
    assert torch.equal(syn.variables["fortran"], torch.arange(6.0).reshape(2, 3))
    assert torch.equal(syn.variables["big_endian"], torch.arange(3.0))
    assert syn.variables["half"].dtype == torch.float32 and torch.equal(syn.variables["half"], torch.ones(2))
    assert nets["G"].variables["lod"].shape == () and nets["G"].variables["lod"].item() == 0.5
    assert nets["G"].static_kwargs == {"resolution": 4, "resolution_np": 4}
    assert type(nets["G"].static_kwargs["resolution_np"]) is int
    assert nets["Gs"].vars().keys() == nets["G"].vars().keys()
    assert nets["Gs"] is not nets["G"]  # the same record read twice gives two records


def test_version_5_state_of_stylegan2_ada(tf_network_class):
    """stylegan2-ada's __getstate__ writes version 5 with the networks' input/output names and shapes."""
    io_keys = dict(input_shapes=[[None, 3, 4, 4], [None, 0]], output_shapes=[[None, 1]],
                   input_names=["images_in", "labels_in"], output_names=["scores_out"])
    net = tf_network_class({**_state("D", "D_main", {"x": np.ones(2, np.float32)}, version=5), **io_keys})
    nets = read_tf_pickle(io.BytesIO(pickle.dumps((net, net, net), protocol=3)))
    assert nets["D"].version == 5 and torch.equal(nets["D"].variables["x"], torch.ones(2))


def test_version_2_state_without_components(tf_network_class):
    net = tf_network_class(_state("D", "D_basic", {"x": np.ones(2, np.float32)}, version=2))
    nets = read_tf_pickle(io.BytesIO(pickle.dumps((net, net, net), protocol=4)))
    assert nets["D"].version == 2 and nets["D"].components == {}


@pytest.mark.parametrize("case, match", [
    ("version 6", "version 6"),
    ("shapes not plain data", "input_shapes"),
    ("int variable", "dtype int64"),
    ("variable not an array", "not a numpy array"),
    ("duplicate variable", "appears twice"),
    ("component not a network", "not a Network"),
    ("kwargs not a dict", "static_kwargs"),
    ("no build function", "build_func_name"),
    ("two networks", "2-tuple"),
    ("a dict", "a dict"),
    ("cycle", "cycle"),
])
def test_malformed_tf_pickles(tf_network_class, case, match):
    Network = tf_network_class
    ok_vars = {"w": np.ones(2, np.float32)}

    def net(**overrides):
        state = _state("D", "D_stylegan2", ok_vars)
        state.update(overrides)
        return Network(state)

    good = net()
    value = {
        "version 6": lambda: (net(version=6), good, good),
        "shapes not plain data": lambda: (net(version=5, input_shapes=[good]), good, good),
        "int variable": lambda: (net(variables=[("w", np.arange(3))]), good, good),
        "variable not an array": lambda: (net(variables=[("w", "zeros")]), good, good),
        "duplicate variable": lambda: (net(variables=[("w", np.ones(1, np.float32))] * 2), good, good),
        "component not a network": lambda: (net(components={"mapping": {"x": 1}}), good, good),
        "kwargs not a dict": lambda: (net(static_kwargs=[1, 2]), good, good),
        "no build function": lambda: (net(build_func_name=None), good, good),
        "two networks": lambda: (good, good),
        "a dict": lambda: {"G": good},
    }
    if case == "cycle":
        loop = net()
        loop.state["components"] = {"self": loop}
        triple = (loop, good, good)
    else:
        triple = value[case]()
    with pytest.raises(FormatError, match=match):
        read_tf_pickle(io.BytesIO(pickle.dumps(triple, protocol=4)))


def test_build_module_src_is_never_executed(tmp_path):
    """The official source in the fixture, swapped for code that leaves a marker: the reader never runs it."""
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('build_module_src ran')\n".encode()
    data = (TF_FIXTURES / "v2_skip32.pkl").read_bytes()
    out, replaced = bytearray(), 0
    ops = list(pickletools.genops(data))
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "FRAME":
            continue
        if op.name == "BINUNICODE" and arg.startswith("# Copyright"):
            out += b"X" + struct.pack("<I", len(code)) + code
            replaced += 1
        else:
            out += data[pos:end]
    assert replaced >= 1
    nets = read_tf_pickle(io.BytesIO(bytes(out)))
    assert not marker.exists()
    assert nets["Gs"].components["synthesis"].build_func_name == "G_synthesis_stylegan2"
    assert not hasattr(nets["Gs"], "build_module_src")


# ----------------------------------------------------------------------------------------------
# Broken and wrong files.


@pytest.mark.parametrize("keep", [0.5, 0.999, 40])
def test_truncated(tmp_path, keep):
    data = (TF_FIXTURES / "v1_rgb32.pkl").read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(FormatError, match="truncated") as info:
        read_tf_pickle(path)
    assert str(path) in str(info.value)


def test_pytorch_snapshot_is_named(tmp_path):
    with pytest.raises(UnsafePickleError, match="PyTorch snapshot") as info:
        read_tf_pickle(OFFICIAL_SNAPSHOT)
    assert str(OFFICIAL_SNAPSHOT) in str(info.value)


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (pickle.dumps([1, 2, 3]), "list"),
    (pickle.dumps((1, 2, 3)), "not a Network|tuple of networks"),
    (b"just some text\n", "not a pickle"),
    (b"PK\x03\x04rest", "zip"),
])
def test_not_a_tf_pickle(tmp_path, content, match):
    path = tmp_path / "file.pkl"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=match) as info:
        read_tf_pickle(path)
    assert str(path) in str(info.value)


def test_bad_sources(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        read_tf_pickle(tmp_path / "missing.pkl")
    with pytest.raises(UserInputError, match="directory"):
        read_tf_pickle(tmp_path)
    with pytest.raises(UserInputError, match="binary mode"):
        read_tf_pickle(io.StringIO("text"))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_globals_follows_memoized_names(protocol):
    """GLOBAL (protocols 2-3) and STACK_GLOBAL with names fetched back from the memo (4-5) are both found."""
    from stylegan.io.restricted_unpickler import pickle_globals
    data = pickle.dumps([np.float32(1), np.int64(2), np.zeros(2, np.float32), np.dtype("f4")], protocol=protocol)
    found = set(pickle_globals(data))
    assert ("numpy", "dtype") in found and ("numpy._core.multiarray", "scalar") in found
    if protocol < 5:  # protocol 5 pickles contiguous arrays through numpy's _frombuffer
        assert {("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray")} <= found
    else:
        assert ("numpy._core.numeric", "_frombuffer") in found
    assert all(isinstance(m, str) and isinstance(n, str) for m, n in found)
    if protocol >= 4:  # 'numpy' is written once and fetched back for the second global naming it
        assert sum(1 for op, arg, _ in pickletools.genops(data) if op.name == "SHORT_BINUNICODE" and arg == "numpy") == 1


def test_corrupt_opcode_is_one_format_error(tmp_path):
    data = (TF_FIXTURES / "v2_skip32.pkl").read_bytes()
    at = next(pos for op, arg, pos in pickletools.genops(data) if op.name == "SHORT_BINUNICODE" and arg == "variables")
    path = tmp_path / "corrupt.pkl"
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:])  # 0xff is no pickle opcode
    assert is_tf_pickle(path)
    with pytest.raises(FormatError, match="corrupt or not a TensorFlow StyleGAN pickle") as info:
        read_tf_pickle(path)
    assert str(path) in str(info.value)
