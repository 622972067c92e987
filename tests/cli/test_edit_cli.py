"""`stylegan directions` and `stylegan edit` through click: the files they write, edited ws that `generate --ws`
renders identically, editing `stylegan project` output, and bad input as one line with exit code 2."""
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylegan.cli import directions as directions_cli
from stylegan.cli import edit as edit_cli
from stylegan.cli import generate as generate_cli
from stylegan.cli import project as project_cli
from stylegan.cli.main import run
from stylegan.io.export import save_network
from stylegan.io.load import load_generator
from stylegan.networks.stylegan3 import Generator3
from stylegan.tools.directions import Directions, network_fingerprint
from stylegan.tools.generate import render_ws, seed_ws
from stylegan.tools.ws_io import load_ws

from official_helpers import OFFICIAL_SNAPSHOT

NET = str(OFFICIAL_SNAPSHOT)
DEMO = str(Path(__file__).resolve().parents[2] / "docs" / "assets" / "fmnist32-cpu.safetensors")


def invoke(command, args):
    return CliRunner().invoke(command, args, catch_exceptions=False)


def assert_user_error(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


@pytest.fixture(scope="module")
def sefa_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dirs") / "sefa.npz"
    result = invoke(directions_cli.command, ["--network", NET, "--method", "sefa", "--layers", "middle", "--top", "3",
                                             "--out", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("sefa: 32 directions in W for network ") and lines[0].endswith("layers 1,2")
    assert lines[1].split() == ["component", "eigenvalue"] and lines[2].split()[0] == "0"
    assert "(29 more)" in lines[5] and lines[-1] == f"wrote {path}"
    return path


def test_edit_seeds_writes_images_grid_and_ws_that_generate_renders(sefa_file, tmp_path):
    out = tmp_path / "edit"
    result = invoke(edit_cli.command, ["--network", NET, "--seeds", "3,7", "--directions", str(sefa_file),
                                       "--component", "1", "--strengths", "-2,0,2.5", "--trunc", "0.7",
                                       "--outdir", str(out)])
    assert result.exit_code == 0, result.output
    names = [f"seed{s:04d}_{v}.png" for s in (3, 7) for v in ("-2", "+0", "+2.5")]
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["grid.png", "edited_ws.npz"])
    G = load_generator(NET)
    edited = load_ws(out / "edited_ws.npz", G)
    assert edited.shape == (6, G.num_ws, G.w_dim)
    np.testing.assert_array_equal(edited[[1, 4]].numpy(), seed_ws(G, [3, 7], truncation_psi=0.7).numpy())
    with np.load(out / "edited_ws.npz") as data:
        assert data["strengths"].tolist() == [-2, 0, 2.5] and int(data["component"]) == 1
        assert data["layers"].tolist() == [1, 2]
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape == (2 * 16, 3 * 16, 3)
    np.testing.assert_array_equal(grid[16:, 32:], np.asarray(Image.open(out / "seed0007_+2.5.png")))
    again = tmp_path / "again"
    assert invoke(generate_cli.command, ["--network", NET, "--ws", str(out / "edited_ws.npz"), "--outdir",
                                         str(again)]).exit_code == 0
    for idx, name in enumerate(names):  # generate --ws renders the edit pixel for pixel
        np.testing.assert_array_equal(np.asarray(Image.open(again / f"w{idx:04d}.png")),
                                      np.asarray(Image.open(out / name)))


def test_edit_projected_ws(sefa_file, tmp_path):
    G = load_generator(NET)
    Image.fromarray(render_ws(G, seed_ws(G, [5]))[0]).save(tmp_path / "target.png")
    proj = tmp_path / "proj"
    assert invoke(project_cli.command, ["--network", NET, "--target", str(tmp_path / "target.png"), "--steps", "2",
                                        "--outdir", str(proj)]).exit_code == 0
    out = tmp_path / "edit"
    result = invoke(edit_cli.command, ["--network", NET, "--ws", str(proj / "projected_w_target.npz"),
                                       "--directions", str(sefa_file), "--strengths", "0,4", "--layers", "all",
                                       "--outdir", str(out)])
    assert result.exit_code == 0, result.output
    projected = load_ws(proj / "projected_w_target.npz", G)
    edited = load_ws(out / "edited_ws.npz", G)
    np.testing.assert_array_equal(edited[0].numpy(), projected[0].numpy())
    direction = Directions.load(sefa_file).vectors[0]
    np.testing.assert_allclose((edited[1] - projected[0]).numpy(), np.tile(4 * direction, (G.num_ws, 1)),
                               atol=1e-5)
    assert (out / "w0000_+4.png").exists() and (out / "grid.png").exists()


def test_ganspace_and_labels_commands(tmp_path):
    result = invoke(directions_cli.command, ["--network", NET, "--method", "ganspace", "--num", "300",
                                             "--components", "4", "--seed", "2", "--out", str(tmp_path / "g.npz")])
    assert result.exit_code == 0, result.output
    assert "explained variance" in result.output and "explained in all 4: 0." in result.output
    d = Directions.load(tmp_path / "g.npz")
    assert d.method == "ganspace" and d.params["num"] == 300 and d.params["seed"] == 2 and d.mean is not None
    result = invoke(directions_cli.command, ["--network", DEMO, "--method", "labels", "--feature-net", "fmnist",
                                             "--num", "300", "--class", "7,9", "--out", str(tmp_path / "l.npz")])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[2:4]]
    assert [r[:2] for r in rows] == [["0", "7"], ["1", "9"]] and all(0 <= float(r[2]) <= 1 for r in rows)
    d = Directions.load(tmp_path / "l.npz")
    assert d.params["classes"] == [7, 9] and d.params["feature_net"] == "fmnist"


def test_commands_on_a_stylegan3_network(tmp_path):
    G3 = Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256, channel_max=16,
                    num_layers=4, num_critical=2, output_scale=1).eval()
    save_network(tmp_path / "sg3.safetensors", {"G_ema": G3})
    net = str(tmp_path / "sg3.safetensors")
    assert invoke(directions_cli.command, ["--network", net, "--method", "sefa", "--out",
                                           str(tmp_path / "d.npz")]).exit_code == 0
    assert Directions.load(tmp_path / "d.npz").fingerprint == network_fingerprint(G3)
    result = invoke(edit_cli.command, ["--network", net, "--seeds", "1", "--directions", str(tmp_path / "d.npz"),
                                       "--layers", "fine", "--outdir", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert load_ws(tmp_path / "e" / "edited_ws.npz").shape == (3, G3.num_ws, 8)


def test_bad_input_is_one_line_and_exit_2(sefa_file, tmp_path, capsys):
    base = ["edit", "--network", NET, "--seeds", "1", "--directions", str(sefa_file), "--outdir", str(tmp_path / "o")]
    cases = [
        (["--component", "32"], "component 32 is out of range"),
        (["--strengths", "-3,big,3"], "strengths must be numbers"),
        (["--layers", "coarse-ish"], "bad layers 'coarse-ish'"),
        (["--layers", "9"], "layer 9 is out of range"),
    ]
    for extra, message in cases:
        assert run([*base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    other = ["edit", "--network", DEMO, "--seeds", "1", "--directions", str(sefa_file), "--outdir", str(tmp_path / "o")]
    assert run(other) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: these sefa directions were computed for network ") and "\n" not in err
    assert not (tmp_path / "o").exists()  # nothing written on refusal

    def edit(*args):
        return invoke(edit_cli.command, ["--network", NET, *args, "--outdir", str(tmp_path / "o")])
    assert_user_error(edit("--seeds", "1", "--ws", str(tmp_path / "x.npz"), "--directions", str(sefa_file)),
                      "either --seeds or --ws")
    assert_user_error(edit("--seeds", "1", "--directions", str(tmp_path / "missing.npz")), "no such file")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert_user_error(edit("--seeds", "1", "--directions", str(tmp_path / "junk.npz")), "not a directions file")

    def directions(*args):
        return invoke(directions_cli.command, ["--network", NET, *args, "--out", str(tmp_path / "d.npz")])
    assert_user_error(directions("--method", "labels"), "unconditional")
    assert_user_error(directions("--method", "sefa", "--layers", "5"), "drive no channel styles")
    assert_user_error(directions("--method", "sefa", "--layers", "x"), "bad layers 'x'")
    assert_user_error(directions("--method", "ganspace", "--components", "99"), "components must be in 1..32")
    assert_user_error(directions("--method", "sefa", "--feature-net", "fmnist"), "belong to --method labels")
    assert_user_error(directions("--method", "sefa", "--components", "4"), "--components belongs to --method ganspace")
    assert_user_error(directions("--method", "ganspace", "--num", "50", "--seed", "-2"), "seed must be")
    (tmp_path / "folder.npz").mkdir()
    assert_user_error(invoke(directions_cli.command, ["--network", NET, "--method", "sefa", "--out",
                                                      str(tmp_path / "folder.npz")]), "is a folder")
    assert not (tmp_path / "d.npz").exists()
