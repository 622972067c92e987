"""The CLI on rosinality/stylegan2-pytorch .pt files: summary, generate, convert both ways, one-line errors."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from stylegan.cli.main import run

from official_helpers import OFFICIAL_SNAPSHOT

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rosinality"
CONVERTED = FIXTURES / "rosinality_s32_converted.pt"
TRAIN = FIXTURES / "rosinality_s32_train.pt"


def images(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(Path(folder).iterdir())}


@pytest.mark.parametrize("path", [CONVERTED, TRAIN])
def test_summary_of_rosinality_file(capsys, path):
    assert run(["summary", "--network", str(path)]) == 0
    totals = [line.split()[:2] for line in capsys.readouterr().out.splitlines() if line.startswith("Total")]
    assert totals == [["Total", "313619"], ["Total", "337281"]]  # rosinality's G and D parameter counts


def test_generate_and_convert_both_ways(tmp_path, capsys):
    export = tmp_path / "net.safetensors"
    back = tmp_path / "back.pt"
    assert run(["convert", str(CONVERTED), str(export)]) == 0
    assert run(["convert", str(export), str(back), "--to", "rosinality"]) == 0
    out = capsys.readouterr().out
    assert "g_ema, latent_avg, d" in out and "channels table" in out  # the fixture's table is not the stock one
    for src, name in [(CONVERTED, "a"), (export, "b"), (back, "c")]:
        assert run(["generate", "--network", str(src), "--seeds", "0-2", "--trunc", "0.7",
                    "--outdir", str(tmp_path / name)]) == 0
    a, b, c = (images(tmp_path / name) for name in "abc")
    assert sorted(a) == ["seed0000.png", "seed0001.png", "seed0002.png"]
    for name in a:
        assert np.array_equal(a[name], b[name]) and np.array_equal(a[name], c[name])
    assert not np.array_equal(a["seed0000.png"], a["seed0001.png"])


def test_official_snapshot_to_rosinality(tmp_path, capsys):
    dest = tmp_path / "tiny16.pt"
    assert run(["convert", str(OFFICIAL_SNAPSHOT), str(dest), "--to", "rosinality"]) == 0
    assert "g_ema, latent_avg, g, d" in capsys.readouterr().out
    ckpt = torch.load(dest, map_location="cpu", weights_only=True)
    assert list(ckpt) == ["g_ema", "latent_avg", "g", "d"]
    for src, name in [(OFFICIAL_SNAPSHOT, "a"), (dest, "b")]:
        assert run(["generate", "--network", str(src), "--seeds", "3,4", "--outdir", str(tmp_path / name)]) == 0
    a, b = images(tmp_path / "a"), images(tmp_path / "b")
    assert all(np.array_equal(a[name], b[name]) for name in a)


def test_one_line_errors(tmp_path, capsys, cond_export):
    dest = tmp_path / "cond.pt"
    assert run(["convert", str(cond_export), str(dest), "--to", "rosinality"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write a rosinality checkpoint: G is conditional") and err.count("\n") == 1
    assert not dest.exists()
    assert run(["convert", str(CONVERTED), str(tmp_path / "x.safetensors"), "--allow-conv-clamp"]) == 2
    assert "--to rosinality only" in capsys.readouterr().err
    other = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(2)}, other)
    assert run(["generate", "--network", str(other), "--seeds", "0", "--outdir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a rosinality/stylegan2-pytorch checkpoint" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------------------------
# Generators with conv_clamp: NVIDIA's StyleGAN2-ADA TensorFlow file (conv_clamp=4, which acts), and the same
# networks with NVIDIA's usual conv_clamp=256 (which they never reach). Its D has its own channel table, which
# rosinality cannot express, so the exports hold G_ema and G.

ADA_TF = Path(__file__).resolve().parents[1] / "fixtures" / "tf" / "ada_tf_skip64.pkl"


def ada_export(tmp_path, conv_clamp) -> Path:
    """An export of the ADA-TF fixture's G_ema and G, built with `conv_clamp`."""
    from stylegan.io.export import save_network
    from stylegan.io.tf_networks import build_from_tf
    from stylegan.io.tf_pickle import read_tf_pickle
    nets = {}
    for theirs, ours in (("Gs", "G_ema"), ("G", "G")):
        record = read_tf_pickle(ADA_TF)[theirs]
        for net in (record, *record.components.values()):
            net.static_kwargs["conv_clamp"] = conv_clamp
        nets[ours] = build_from_tf(record, ours)
    path = tmp_path / f"ada-clamp{conv_clamp}.safetensors"
    save_network(path, nets)
    return path


def test_clamp_that_matters_is_refused_then_allowed(tmp_path, capsys):
    src, dest = ada_export(tmp_path, 4), tmp_path / "ada.pt"
    assert stylegan.load_network(src)["G_ema"].init_kwargs["conv_clamp"] == 4  # as the file has it
    assert run(["convert", str(src), str(dest), "--to", "rosinality", "--clamp-seeds", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write a rosinality checkpoint: G_ema without conv_clamp=4: its images of "
                          "seeds 0-63 change by max |Δ| ") and err.count("\n") == 1
    assert "not negligible (<= 0.00392)" in err and "Pass --allow-conv-clamp" in err and not dest.exists()
    assert run(["convert", str(src), str(dest), "--to", "rosinality", "--clamp-seeds", "64",
                "--allow-conv-clamp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" without")[0] for line in lines[:2]] == ["conv_clamp: G_ema", "conv_clamp: G"]
    assert "not negligible" in lines[0] and lines[2].startswith(f"wrote {dest}: g_ema, latent_avg, g;")
    # What rosinality's layout holds is the clamp-free network.
    free, back = stylegan.load_network(ada_export(tmp_path, None)), stylegan.load_network(dest)
    z = torch.randn(4, 40)
    with torch.no_grad():
        for role in ("G_ema", "G"):
            assert torch.equal(back[role](z, None, noise_mode="const"), free[role](z, None, noise_mode="const"))


def test_clamp_that_changes_nothing_is_converted_and_round_trips(tmp_path, capsys):
    src, dest = ada_export(tmp_path, 256), tmp_path / "ada256.pt"
    assert run(["convert", str(src), str(dest), "--to", "rosinality", "--clamp-seeds", "128"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line, role in zip(lines, ("G_ema", "G")):
        assert line == (f"conv_clamp: {role} without conv_clamp=256: its images of seeds 0-127 change by "
                        f"max |Δ| 0 (seed 0), negligible (<= 0.00392)")
    assert lines[2].startswith(f"wrote {dest}: g_ema, latent_avg, g;")
    for network, name in [(src, "a"), (dest, "b")]:  # ours -> rosinality -> ours: the same images
        assert run(["generate", "--network", str(network), "--seeds", "0-3", "--outdir", str(tmp_path / name)]) == 0
    a, b = images(tmp_path / "a"), images(tmp_path / "b")
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_clamp_seeds_needs_rosinality(tmp_path, capsys):
    assert run(["convert", str(CONVERTED), str(tmp_path / "x.safetensors"), "--clamp-seeds", "8"]) == 2
    assert "--clamp-seeds applies to --to rosinality only" in capsys.readouterr().err
