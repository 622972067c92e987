"""The CLI on NVIDIA's TensorFlow (G, D, Gs) pickles: summary, convert (to an export and on again, bit-identical),
generate from the .pkl, and one-line errors (exit 2) for broken, unsupported and non-network pickles."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

import stylegan
from stylegan.cli.main import run

TF_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf"
CONFIGS = ["v1_rgb32", "v2_skip32"]


def images(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(Path(folder).iterdir())}


@pytest.mark.parametrize("name", CONFIGS)
def test_summary_of_tf_pickle(capsys, name):
    assert run(["summary", "--network", str(TF_FIXTURES / f"{name}.pkl")]) == 0
    totals = [line.split()[:2] for line in capsys.readouterr().out.splitlines() if line.startswith("Total")]
    nets = stylegan.load_network(TF_FIXTURES / f"{name}.pkl")
    counts = [sum(p.numel() for p in nets[role].parameters()) for role in ("G_ema", "D")]
    assert totals == [["Total", str(counts[0])], ["Total", str(counts[1])]]


@pytest.mark.parametrize("name", CONFIGS)
def test_convert_and_back_is_bit_identical_and_generate_reads_the_pkl(tmp_path, capsys, name):
    pkl = TF_FIXTURES / f"{name}.pkl"
    export, again = tmp_path / "net.safetensors", tmp_path / "again.safetensors"
    assert run(["convert", str(pkl), str(export)]) == 0
    assert f"wrote {export}: G, G_ema, D" in capsys.readouterr().out
    assert run(["convert", str(export), str(again)]) == 0
    a, b = load_file(str(export)), load_file(str(again))
    assert list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)
    with safe_open(str(export), "pt") as f, safe_open(str(again), "pt") as g:
        assert f.metadata() == g.metadata()
    for role in ("G", "G_ema", "D"):  # the export holds exactly the weights read from the pickle
        state = stylegan.load_network(pkl)[role].state_dict()
        assert all(np.array_equal(a[f"{role}.{k}"], v) for k, v in state.items())
    for src, out in [(pkl, "a"), (export, "b")]:
        assert run(["generate", "--network", str(src), "--seeds", "0,1", "--trunc", "0.7",
                    "--outdir", str(tmp_path / out)]) == 0
    from_pkl, from_export = images(tmp_path / "a"), images(tmp_path / "b")
    assert sorted(from_pkl) == ["seed0000.png", "seed0001.png"]
    assert all(np.array_equal(from_pkl[k], from_export[k]) for k in from_pkl)
    assert from_pkl["seed0000.png"].shape == (32, 32, 3)
    assert not np.array_equal(from_pkl["seed0000.png"], from_pkl["seed0001.png"])


def _edited(tmp_path, old: bytes, new: bytes) -> Path:
    data = (TF_FIXTURES / "v2_skip32.pkl").read_bytes()
    assert len(old) == len(new) and old in data
    path = tmp_path / "edited.pkl"
    path.write_bytes(data.replace(old, new))
    return path


def _truncated(tmp_path) -> Path:
    path = tmp_path / "cut.pkl"
    path.write_bytes((TF_FIXTURES / "v1_rgb32.pkl").read_bytes()[:100_000])
    return path


def _not_a_network(tmp_path) -> Path:
    path = tmp_path / "list.pkl"
    path.write_bytes(b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01K\x02K\x03e.")  # [1, 2, 3]
    return path


@pytest.mark.parametrize("make, message", [
    (_truncated, "truncated"),
    (lambda tmp: _edited(tmp, b"\x06G_main", b"\x06G_mine"), "G was built by 'G_mine'"),
    (lambda tmp: _edited(tmp, b"dnnlib.tflib.network", b"dnnlib.tflib.netw0rk"), "dnnlib.tflib.netw0rk.Network"),
    (_not_a_network, "holds a list"),
])
@pytest.mark.parametrize("command", ["generate", "summary", "convert"])
def test_one_line_errors(tmp_path, capsys, make, message, command):
    path = make(tmp_path)
    args = {"generate": ["generate", "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "o")],
            "summary": ["summary", "--network", str(path)],
            "convert": ["convert", str(path), str(tmp_path / "o.safetensors")]}[command]
    assert run(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}") and message in err[0], err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("name", CONFIGS)
def test_mix_and_noise_read_the_pkl_like_its_export(tmp_path, name):
    pkl, export = TF_FIXTURES / f"{name}.pkl", tmp_path / "net.safetensors"
    assert run(["convert", str(pkl), str(export)]) == 0
    for src, tag in [(pkl, "pkl"), (export, "export")]:
        assert run(["mix", "--network", str(src), "--rows", "1,2", "--cols", "3", "--out", str(tmp_path / f"mix-{tag}.png")]) == 0
        assert run(["noise", "--network", str(src), "--seeds", "1", "--samples", "2", "--std-samples", "4",
                    "--out", str(tmp_path / f"noise-{tag}.png")]) == 0
    for kind in ("mix", "noise"):
        a = np.asarray(Image.open(tmp_path / f"{kind}-pkl.png"))
        assert a.shape[0] >= 32 and np.array_equal(a, np.asarray(Image.open(tmp_path / f"{kind}-export.png")))
