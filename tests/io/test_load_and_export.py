"""load_network / load_generator on official snapshots and our export; round trips; bad files."""
import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import stylegan
from stylegan.errors import FormatError, UnsafePickleError, UnsupportedNetworkError, UserInputError
from stylegan.io.export import read_header, save_network

from official_helpers import FIXTURES, OFFICIAL_SNAPSHOT, official_networks


@pytest.fixture(scope="module")
def expected():
    return load_file(str(FIXTURES / "official_snapshot_tiny16_expected.safetensors"))


def test_official_snapshot_reproduces_expected_outputs(expected):
    nets = stylegan.load_network(OFFICIAL_SNAPSHOT)
    assert set(nets) >= {"G", "D", "G_ema", "augment_p", "training_set_kwargs"}
    G_ema, G, D = nets["G_ema"], nets["G"], nets["D"]
    z = expected["z"]
    torch.testing.assert_close(G_ema.mapping(z, None), expected["G_ema_ws"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(G_ema(z, None, noise_mode="const"), expected["G_ema_img_const"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(G_ema(z, None, truncation_psi=0.7, noise_mode="const"), expected["G_ema_img_psi07"],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(G(z, None, noise_mode="const"), expected["G_img_const"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(D(expected["real"], None), expected["D_real_logits"], atol=1e-4, rtol=1e-4)
    assert nets["augment_p"] == pytest.approx(float(expected["augment_p"]))
    assert nets["training_set_kwargs"]["resolution"] == 16


def test_load_generator_returns_ema_not_g(expected):
    G = stylegan.load_generator(OFFICIAL_SNAPSHOT)
    assert not G.training
    img = G(expected["z"], None, noise_mode="const")
    torch.testing.assert_close(img, expected["G_ema_img_const"], atol=1e-4, rtol=1e-4)
    assert (img - expected["G_img_const"]).abs().max() > 1e-3


def test_export_round_trip_is_bit_identical(tmp_path):
    nets = stylegan.load_network(OFFICIAL_SNAPSHOT)
    path = tmp_path / "net.safetensors"
    save_network(path, {k: nets[k] for k in ("G", "G_ema", "D")}, extra={"augment_p": nets["augment_p"]})
    again = stylegan.load_network(path)
    z = torch.randn(3, 32)
    for role in ("G", "G_ema"):
        assert torch.equal(again[role](z, None, noise_mode="const"), nets[role](z, None, noise_mode="const"))
    img = torch.rand(4, 3, 16, 16) * 2 - 1
    assert torch.equal(again["D"](img, None), nets["D"](img, None))
    assert again["augment_p"] == nets["augment_p"]
    header = read_header(path)
    assert header["networks"]["G_ema"]["class"] == "stylegan2.Generator"
    assert header["networks"]["G_ema"]["kwargs"]["img_resolution"] == 16


@pytest.mark.parametrize("name", ["cond32", "gray32_resnet"])
def test_export_other_configs(tmp_path, name):
    cfg, G, D = official_networks(name)
    path = tmp_path / "n.safetensors"
    save_network(path, {"G_ema": G, "D": D})
    nets = stylegan.load_network(path)
    z = torch.randn(2, G.z_dim)
    c = torch.eye(max(G.c_dim, 1))[:2, :G.c_dim]
    assert torch.equal(nets["G_ema"](z, c, noise_mode="const"), G(z, c, noise_mode="const"))


def test_generic_configuration_builds_and_round_trips(tmp_path):
    # A configuration unlike any fixture: resnet G, skip D, 64x64, 2 channels, conditional, custom mapping.
    G = stylegan.Generator(z_dim=24, c_dim=3, w_dim=40, img_resolution=64, img_channels=2,
                           mapping_kwargs=dict(num_layers=3, lr_multiplier=0.1), channel_base=512,
                           channel_max=48, num_fp16_res=2, conv_clamp=64, architecture="resnet").eval()
    D = stylegan.Discriminator(c_dim=3, img_resolution=64, img_channels=2, architecture="skip", channel_base=512,
                               channel_max=48, epilogue_kwargs=dict(mbstd_group_size=2, mbstd_num_channels=2)).eval()
    path = tmp_path / "g.safetensors"
    save_network(path, {"G_ema": G, "D": D})
    nets = stylegan.load_network(path)
    z, c = torch.randn(4, 24), torch.eye(3)[[0, 1, 2, 0]]
    img = nets["G_ema"](z, c, noise_mode="const")
    assert img.shape == (4, 2, 64, 64)
    assert torch.equal(img, G(z, c, noise_mode="const"))
    assert torch.equal(nets["D"](img, c), D(img, c))


def test_missing_file():
    with pytest.raises(UserInputError, match="no such file"):
        stylegan.load_network("/nonexistent/net.pkl")


def test_truncated_export(tmp_path):
    _, G, D = official_networks("tiny16")
    path = tmp_path / "n.safetensors"
    save_network(path, {"G_ema": G})
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated or corrupt"):
        stylegan.load_network(cut)
    cut.write_bytes(data[:20])
    with pytest.raises(FormatError, match="truncated"):
        stylegan.load_network(cut)


def test_wrong_files(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a network")
    with pytest.raises(FormatError, match="neither"):
        stylegan.load_network(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(FormatError, match="not a stylegan export"):
        stylegan.load_network(plain)


def test_mismatched_weights_are_named(tmp_path):
    _, G, _ = official_networks("tiny16")
    path = tmp_path / "n.safetensors"
    save_network(path, {"G_ema": G})
    tensors = load_file(str(path))
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors["G_ema.synthesis.b8.conv0.weight"] = torch.zeros(1, 2, 3, 3)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(FormatError, match="synthesis.b8.conv0.weight has shape"):
        stylegan.load_network(path)
    del tensors["G_ema.synthesis.b8.conv0.weight"]
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(FormatError, match="missing"):
        stylegan.load_network(path)


def test_unsupported_class_in_export(tmp_path):
    _, G, _ = official_networks("tiny16")
    path = tmp_path / "n.safetensors"
    save_network(path, {"G_ema": G})
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    header = json.loads(meta["stylegan"])
    header["networks"]["G_ema"]["class"] = "stylegan_xl.Generator"  # a class name we do not have
    save_file(load_file(str(path)), str(path), metadata={"stylegan": json.dumps(header)})
    with pytest.raises(UnsupportedNetworkError, match=r"stylegan_xl\.Generator"):
        stylegan.load_network(path)


def test_unsupported_official_class(monkeypatch):
    from stylegan.io import load, nvidia_pickle
    original = nvidia_pickle.read_nvidia_snapshot

    def renamed(path):
        snap = original(path)
        snap["G_ema"].class_name = "training.networks_stylegan2.SynthesisNetwork"  # not a whole network
        return snap

    monkeypatch.setattr(nvidia_pickle, "read_nvidia_snapshot", renamed)
    with pytest.raises(UnsupportedNetworkError, match=r"training\.networks_stylegan2\.SynthesisNetwork"):
        load.load_official_snapshot(OFFICIAL_SNAPSHOT)


# ----------------------------------------------------------------------------------------------
# NVIDIA's TensorFlow (G, D, Gs) pickles through load_network (reader: test_tf_pickle.py; name tables and every
# official output: test_tf_networks.py). Tolerance from tests/fixtures/tf: |ours - ref| <= 1e-4 + 1e-4 |ref|.

TF_FIXTURES = FIXTURES.parent / "tf"
TF_CONFIGS = ["v1_rgb32", "v2_skip32"]


def _assert_tf_close(ours, ref):
    assert ours.shape == ref.shape
    assert ((ours - ref).abs() <= 1e-4 + 1e-4 * ref.abs()).all(), (ours - ref).abs().max().item()


def _edited_tf_pickle(tmp_path, old: bytes, new: bytes):
    """v2_skip32.pkl with one same-length string replaced everywhere (frames stay valid)."""
    assert len(old) == len(new)
    data = (TF_FIXTURES / "v2_skip32.pkl").read_bytes()
    assert old in data
    path = tmp_path / "edited.pkl"
    path.write_bytes(data.replace(old, new))
    return path


@pytest.mark.parametrize("name", TF_CONFIGS)
def test_tf_pickle_loads_as_our_modules(name):
    from stylegan.networks.stylegan1 import Generator1
    from stylegan.networks.stylegan2 import Generator
    t = load_file(str(TF_FIXTURES / f"{name}_expected.safetensors"))
    nets = stylegan.load_network(TF_FIXTURES / f"{name}.pkl")
    assert sorted(nets) == ["D", "G", "G_ema"]
    assert type(nets["G_ema"]) is (Generator1 if name.startswith("v1") else Generator)
    assert all(not net.training for net in nets.values())
    with torch.no_grad():
        # noise_mode='const' is the official randomize_noise=False (the stored noise inputs).
        _assert_tf_close(nets["G_ema"](t["z"], t["labels"], noise_mode="const"), t["img"])
        _assert_tf_close(nets["G"](t["z"], t["labels"], noise_mode="const"), t["img_G"])
        _assert_tf_close(nets["D"](t["real"], t["labels"]), t["d_real"])
        G = stylegan.load_generator(TF_FIXTURES / f"{name}.pkl")  # Gs, not G
        img = G(t["z"], t["labels"], noise_mode="const")
    _assert_tf_close(img, t["img"])
    assert (img - t["img_G"]).abs().max() > 1e-3


@pytest.mark.parametrize("name", TF_CONFIGS)
def test_tf_pickle_export_round_trip_is_bit_identical(tmp_path, name):
    nets = stylegan.load_network(TF_FIXTURES / f"{name}.pkl")
    path = tmp_path / "net.safetensors"
    save_network(path, {k: nets[k] for k in ("G", "G_ema", "D")})
    again = stylegan.load_network(path)
    G = nets["G_ema"]
    for role in ("G", "G_ema", "D"):
        assert type(again[role]) is type(nets[role])
        a, b = again[role].state_dict(), nets[role].state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        for role in ("G", "G_ema"):
            assert torch.equal(again[role](z, None, noise_mode="const"), nets[role](z, None, noise_mode="const"))
        img = torch.rand(4, 3, G.img_resolution, G.img_resolution) * 2 - 1
        assert torch.equal(again["D"](img, None), nets["D"](img, None))


def test_truncated_tf_pickle(tmp_path):
    data = (TF_FIXTURES / "v2_skip32.pkl").read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated") as info:
        stylegan.load_network(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("old, new, match", [
    (b"D_stylegan2", b"D_stylegan9", r"\[D\]: D was built by 'D_stylegan9'"),
    (b"\x06G_main", b"\x06G_mine", r"\[G\]: G was built by 'G_mine'"),
    (b"\x0bD_stylegan2", b"\x0bD_stylegan\x00", "D was built by"),
])
def test_tf_pickle_of_unsupported_build_function(tmp_path, old, new, match):
    with pytest.raises(UnsupportedNetworkError, match=match):
        stylegan.load_network(_edited_tf_pickle(tmp_path, old, new))


def test_tf_pickle_with_a_payload_is_refused_through_load_network(tmp_path):
    marker = tmp_path / "pwned"
    network = b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81"  # NEWOBJ of the Network stand-in
    payload = b"cos\nsystem\n(X" + struct_len(f"touch '{marker}'") + b"tR"
    path = tmp_path / "evil.pkl"
    path.write_bytes(network + payload + b"b" + b".")  # BUILD the network with what os.system returns
    with pytest.raises(UnsafePickleError, match=r"os\.system") as info:
        stylegan.load_network(path)
    assert str(path) in str(info.value) and not marker.exists()


def struct_len(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(4, "little") + raw


@pytest.mark.parametrize("value, match", [
    (("G", "D", "Gs"), "holds a tuple"),
    ({"a": 1}, "no network"),
    ([1, 2, 3], "list"),
])
def test_pickles_that_hold_no_network(tmp_path, value, match):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(value, protocol=4))
    with pytest.raises(FormatError, match=match) as info:
        stylegan.load_network(path)
    assert str(path) in str(info.value)


def test_numpy_array_pickle_is_not_a_network(tmp_path):
    import numpy as np
    path = tmp_path / "array.pkl"
    path.write_bytes(pickle.dumps(np.arange(4.0), protocol=4))
    with pytest.raises(FormatError, match="holds a numpy array"):
        stylegan.load_network(path)
