"""load_network / load_generator on official snapshots and our export; round trips; bad files."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import stylegan
from stylegan.errors import FormatError, UnsupportedNetworkError, UserInputError
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
    header["networks"]["G_ema"]["class"] = "stylegan3.Generator"
    save_file(load_file(str(path)), str(path), metadata={"stylegan": json.dumps(header)})
    with pytest.raises(UnsupportedNetworkError, match="stylegan3.Generator"):
        stylegan.load_network(path)


def test_unsupported_official_class(monkeypatch):
    from stylegan.io import load, nvidia_pickle
    original = nvidia_pickle.read_nvidia_snapshot

    def renamed(path):
        snap = original(path)
        snap["G_ema"].class_name = "training.networks_stylegan3.Generator"
        return snap

    monkeypatch.setattr(nvidia_pickle, "read_nvidia_snapshot", renamed)
    with pytest.raises(UnsupportedNetworkError, match="training.networks_stylegan3.Generator"):
        load.load_official_snapshot(OFFICIAL_SNAPSHOT)
