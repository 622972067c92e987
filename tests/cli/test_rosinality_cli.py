"""The CLI on rosinality/stylegan2-pytorch .pt files: summary, generate, convert both ways, one-line errors."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

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
