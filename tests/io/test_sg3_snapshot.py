"""Official StyleGAN3 training snapshots: read safely, rebuilt as our classes, outputs reproduced, exported.

The fixture is a real `network-snapshot-*.pkl` from NVIDIA's training loop (sanitised: module sources removed),
holding a StyleGAN3-T G and G_ema (networks_stylegan3) and a StyleGAN2 D (networks_stylegan2) whose classes
share names (Generator, MappingNetwork, FullyConnectedLayer) and are told apart by module.
"""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stylegan.cli.main import run
from stylegan.errors import FormatError, UnsafePickleError
from stylegan.io.export import read_header, save_network
from stylegan.io.load import load_generator, load_network
from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan3 import Generator3

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sg3"
SNAPSHOT = FIXTURES / "official_snapshot_sg3t32.pkl"
IMG_TOL = dict(atol=1e-4, rtol=1e-4)
WS_TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def nets():
    return load_network(SNAPSHOT)


@pytest.fixture(scope="module")
def expected():
    return load_file(str(FIXTURES / "official_snapshot_sg3t32_expected.safetensors"))


def test_classes_told_apart_by_module(nets):
    assert type(nets["G"]) is Generator3 and type(nets["G_ema"]) is Generator3
    assert type(nets["D"]) is Discriminator
    assert nets["G_ema"].init_kwargs["magnitude_ema_beta"] == pytest.approx(0.5 ** (32 / 20000))
    assert nets["G_ema"].mapping.num_layers == 2
    assert not nets["G_ema"].training and not any(p.requires_grad for p in nets["G_ema"].parameters())


def test_weights_are_the_t32_fixture(nets):
    for role, name in [("G_ema", "G"), ("D", "D")]:
        reference = load_file(str(FIXTURES / "t32" / f"{name}.safetensors"))
        ours = nets[role].state_dict()
        assert set(ours) == set(reference)
        for key, value in reference.items():
            assert torch.equal(ours[key], value), f"{role}.{key}"


def test_expected_outputs(nets, expected):
    z, real = expected["z"], expected["real"]
    G_ema, G, D = nets["G_ema"], nets["G"], nets["D"]
    ws = G_ema.mapping(z, None)
    torch.testing.assert_close(ws, expected["G_ema_ws"], **WS_TOL)
    torch.testing.assert_close(G_ema.synthesis(ws, noise_mode="const"), expected["G_ema_img_const"], **IMG_TOL)
    torch.testing.assert_close(G_ema(z, None, truncation_psi=0.7, noise_mode="const"), expected["G_ema_img_psi07"],
                               **IMG_TOL)
    torch.testing.assert_close(G.synthesis(G.mapping(z, None), noise_mode="const"), expected["G_img_const"], **IMG_TOL)
    torch.testing.assert_close(G(z, None, truncation_psi=0.7, noise_mode="const"), expected["G_img_psi07"], **IMG_TOL)
    torch.testing.assert_close(D(real, None), expected["D_real_logits"], **IMG_TOL)
    torch.testing.assert_close(D(expected["G_ema_img_const"], None), expected["D_fake_logits"], **IMG_TOL)


def test_g_and_g_ema_not_confused(nets, expected):
    # The two generators differ visibly, so returning one for the other would fail test_expected_outputs.
    assert (expected["G_img_const"] - expected["G_ema_img_const"]).abs().max() > 0.1
    assert load_generator(SNAPSHOT).state_dict()["mapping.fc0.weight"].equal(nets["G_ema"].mapping.fc0.weight)
    assert not nets["G"].mapping.fc0.weight.equal(nets["G_ema"].mapping.fc0.weight)


def test_augment_p_and_training_set_kwargs(nets, expected):
    assert nets["augment_p"] == pytest.approx(float(expected["augment_p"]))
    assert nets["augment_p"] == pytest.approx(0.125)
    assert nets["training_set_kwargs"]["resolution"] == 32


def _patched(tmp_path, old: bytes, new: bytes) -> Path:
    data = SNAPSHOT.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1
    path = tmp_path / "patched.pkl"
    path.write_bytes(data.replace(old, new))
    return path


def test_numpy_globals_are_data_only(tmp_path):
    """The snapshot's numpy globals (ndarray, _reconstruct for the size arrays) are admitted as data; a
    same-length swap for a numpy function that reads files is refused before anything runs."""
    with pytest.raises(UnsafePickleError, match="loadtxt"):
        load_network(_patched(tmp_path, b"ndarray", b"loadtxt"))


def test_without_stylegan3_layers_the_generator_is_not_rebuilt_as_stylegan2(tmp_path):
    """Rename SynthesisInput: the Generator now looks like networks_stylegan2's, whose constructor does not take
    magnitude_ema_beta; the result is one FormatError, not a traceback or a wrong network."""
    with pytest.raises(FormatError, match="cannot rebuild"):
        load_network(_patched(tmp_path, b"SynthesisInput", b"SynthesisInpuX"))


def test_export_round_trip_is_exact(nets, tmp_path, expected):
    path = tmp_path / "sg3.safetensors"
    save_network(path, {r: nets[r] for r in ("G", "G_ema", "D")}, extra={"augment_p": nets["augment_p"]})
    header = read_header(path)
    assert header["networks"]["G_ema"]["class"] == "stylegan3.Generator"
    assert header["networks"]["D"]["class"] == "stylegan2.Discriminator"
    back = load_network(path)
    assert type(back["G_ema"]) is Generator3 and back["augment_p"] == nets["augment_p"]
    for role in ("G", "G_ema", "D"):
        for key, value in nets[role].state_dict().items():
            assert torch.equal(back[role].state_dict()[key], value), f"{role}.{key}"
    z = expected["z"]
    assert torch.equal(back["G_ema"](z, None, noise_mode="const"), nets["G_ema"](z, None, noise_mode="const"))


def test_user_transform_survives_export(nets, tmp_path, expected):
    G = load_generator(SNAPSHOT)
    G.set_transform(translate=(0.1, -0.2), angle=30)
    path = tmp_path / "moved.safetensors"
    save_network(path, {"G_ema": G})
    back = load_generator(path)
    assert torch.equal(back.synthesis.input.transform, G.synthesis.input.transform)
    assert not torch.equal(back.synthesis.input.transform, torch.eye(3))


def test_cli_convert_and_summary(tmp_path, capsys):
    dest = tmp_path / "sg3.safetensors"
    assert run(["convert", str(SNAPSHOT), str(dest)]) == 0
    assert "G, G_ema, D; augment_p" in capsys.readouterr().out
    for src in (SNAPSHOT, dest):
        assert run(["summary", "--network", str(src)]) == 0
        out = capsys.readouterr().out
        totals = [line.split()[:3] for line in out.splitlines() if line.startswith("Total")]
        assert totals == [["Total", "122883", "500"], ["Total", "72561", "224"]]  # the official counts
        assert "synthesis.L5_52_32" in out and "synthesis.input" in out


def test_cli_refuses_rosinality_export_in_one_line(tmp_path, capsys):
    assert run(["convert", str(SNAPSHOT), str(tmp_path / "x.pt"), "--to", "rosinality"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Generator3" in err[0]


def test_cli_generate_translate_rotate_as_gen_images(tmp_path):
    """--translate/--rotate set inv(make_transform(...)) as gen_images.py, replacing any stored transform."""
    import numpy as np
    from PIL import Image

    from stylegan.tools.generate import generate_images

    G = load_generator(SNAPSHOT)
    moved = tmp_path / "moved.safetensors"
    G.set_transform((0.3, 0.1), 45)  # a stored transform that the flags must replace
    save_network(moved, {"G_ema": G})
    for args, name in [([], "plain"), (["--translate", "0.25,-0.125", "--rotate", "30"], "rot")]:
        assert run(["generate", "--network", str(moved), "--seeds", "0-1", "--outdir", str(tmp_path / name)] + args) == 0
    G.set_transform((0, 0), 0)
    plain = generate_images(G, [0, 1])
    G.set_transform((0.25, -0.125), 30)
    rotated = generate_images(G, [0, 1])
    for idx in (0, 1):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "plain" / f"seed000{idx}.png")), plain[idx])
        assert np.array_equal(np.asarray(Image.open(tmp_path / "rot" / f"seed000{idx}.png")), rotated[idx])
    assert not np.array_equal(plain, rotated)


def test_cli_generate_refuses_translate_for_stylegan2(tmp_path, capsys):
    from official_helpers import OFFICIAL_SNAPSHOT  # a StyleGAN2 snapshot

    assert run(["generate", "--network", str(OFFICIAL_SNAPSHOT), "--seeds", "0", "--rotate", "10",
                "--outdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "StyleGAN3" in err[0]
