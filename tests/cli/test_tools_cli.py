"""The tool commands (generate --ws, mix, video, noise, project, export) through click: outputs and exit code 2."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli import export as export_cli
from stylegan.cli import generate as generate_cli
from stylegan.cli import mix as mix_cli
from stylegan.cli import noise as noise_cli
from stylegan.cli import project as project_cli
from stylegan.cli import video as video_cli
from stylegan.io.load import load_generator
from stylegan.tools.generate import render_ws
from stylegan.tools.ws_io import load_ws, save_ws

from official_helpers import OFFICIAL_SNAPSHOT

NET = str(OFFICIAL_SNAPSHOT)


def video_available():
    try:
        import imageio_ffmpeg
        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except (ImportError, RuntimeError):
        return False


def invoke(command, args):
    return CliRunner().invoke(command, args, catch_exceptions=False)


def assert_user_error(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr


def test_generate_ws_renders_latents(tmp_path):
    G = load_generator(OFFICIAL_SNAPSHOT)
    ws = torch.randn([3, G.num_ws, G.w_dim]) * 0.5 + G.mapping.w_avg
    save_ws(tmp_path / "w.npz", ws)
    result = invoke(generate_cli.command, ["--network", NET, "--ws", str(tmp_path / "w.npz"), "--grid-cols", "3",
                                           "--batch", "2", "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["grid.png", "w0000.png", "w0001.png", "w0002.png"]
    expected = render_ws(G, ws)
    assert np.abs(np.asarray(Image.open(tmp_path / "out" / "w0002.png")).astype(int) - expected[2]).max() <= 1
    assert np.asarray(Image.open(tmp_path / "out" / "grid.png")).shape == (16, 48, 3)


@pytest.mark.parametrize("args,message", [
    (["--seeds", "1", "--ws", "x.npz"], "either --seeds or --ws"),
    ([], "either --seeds or --ws"),
    (["--ws", "missing.npz"], "no such file"),
    (["--ws", "BAD"], "num_ws=6"),
    (["--ws", "GOOD", "--trunc", "0.5"], "--ws renders the latents as given"),
    (["--seeds", "1", "--trunc-cutoff", "9"], "--trunc-cutoff must be in 0..6"),
    (["--seeds", "1", "--grid-cols", "0"], "--grid-cols"),
])
def test_generate_bad_input(tmp_path, args, message):
    save_ws(tmp_path / "bad.npz", torch.zeros([1, 7, 32]))
    save_ws(tmp_path / "good.npz", torch.zeros([1, 6, 32]))
    args = [str(tmp_path / "bad.npz") if a == "BAD" else str(tmp_path / "good.npz") if a == "GOOD" else a
            for a in args]
    assert_user_error(invoke(generate_cli.command, ["--network", NET, *args, "--outdir", str(tmp_path / "o")]), message)


def test_mix_writes_the_figure(tmp_path):
    out = tmp_path / "fig.png"
    result = invoke(mix_cli.command, ["--network", NET, "--rows", "85,100,75", "--cols", "55,821", "--styles",
                                      "coarse,middle", "--trunc", "0.7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(out)).shape == (4 * 16, 3 * 16, 3)


@pytest.mark.parametrize("args,message", [
    (["--styles", "0-9"], "layer 6 is out of range"),
    (["--styles", "fine,huge"], "cannot read layers"),
    (["--rows", "5-1"], "runs backwards"),
    (["--class", "1"], "unconditional"),
])
def test_mix_bad_input(tmp_path, args, message):
    options = {"--rows": "1,2", "--cols": "3", "--styles": "coarse", **dict(zip(args[::2], args[1::2]))}
    flat = [x for pair in options.items() for x in pair]
    assert_user_error(invoke(mix_cli.command, ["--network", NET, *flat, "--out", str(tmp_path / "f.png")]), message)


def test_video_gif_and_mp4(tmp_path):
    result = invoke(video_cli.command, ["--network", NET, "--seeds", "0-7", "--grid", "2x2", "--frames-per-seed",
                                        "3", "--easing", "cubic", "--space", "z", "--out", str(tmp_path / "v.gif")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (32, 32)
    pytest.importorskip("imageio_ffmpeg")
    iio = pytest.importorskip("imageio.v2")
    result = invoke(video_cli.command, ["--network", NET, "--seeds", "0-3", "--frames-per-seed", "4", "--no-loop",
                                        "--fps", "12", "--out", str(tmp_path / "v.mp4")])
    assert result.exit_code == 0, result.output
    reader = iio.get_reader(tmp_path / "v.mp4")
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == 13 and frames[0].shape == (16, 16, 3)


@pytest.mark.parametrize("args,message", [
    (["--seeds", "0-6", "--grid", "2x2"], "multiple of 4"),
    (["--seeds", "0-7", "--grid", "2by2"], "COLSxROWS"),
    (["--seeds", "0-7", "--out", "v.avi"], "cannot write video"),
    (["--seeds", "0-7", "--frames-per-seed", "0"], "--frames-per-seed"),
    (["--seeds", "0-7", "--fps", "0"], "--fps"),
])
def test_video_bad_input(tmp_path, args, message):
    out = [] if "--out" in args else ["--out", str(tmp_path / "v.gif")]
    args = [str(tmp_path / a) if a == "v.avi" else a for a in args]
    assert_user_error(invoke(video_cli.command, ["--network", NET, *args, *out]), message)
    assert not list(tmp_path.iterdir())


def test_noise_figure(tmp_path):
    result = invoke(noise_cli.command, ["--network", NET, "--seeds", "1,2", "--samples", "3", "--std-samples", "10",
                                        "--layers", "fine", "--out", str(tmp_path / "n.png")])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "n.png")).shape == (32, 64, 3)
    assert_user_error(invoke(noise_cli.command, ["--network", NET, "--seeds", "1", "--layers", "5",
                                                 "--out", str(tmp_path / "m.png")]), "no noise inputs")
    assert_user_error(invoke(noise_cli.command, ["--network", NET, "--seeds", "1", "--std-samples", "1",
                                                 "--out", str(tmp_path / "m.png")]), "draws")


def test_project_writes_everything_generate_ws_can_read(tmp_path):
    G = load_generator(OFFICIAL_SNAPSHOT)
    image = render_ws(G, G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1))[0]
    Image.fromarray(np.kron(image, np.ones([2, 3, 1], np.uint8))).save(tmp_path / "face.png")  # 32x48: crop+resize
    out = tmp_path / "proj"
    result = invoke(project_cli.command, ["--network", NET, "--target", str(tmp_path / "face.png"), "--target",
                                          str(tmp_path / "face.png"), "--steps", "8", "--w-plus", "--distance",
                                          "pixel-pyramid", "--outdir", str(out)]
                    + (["--save-video"] if video_available() else []))
    assert result.exit_code == 0, result.output
    assert "warning: face.png: centre-cropped from 48x32 to 32x32" in result.stderr
    video = ["proj_face.mp4", "proj_face_2.mp4"] if video_available() else []
    expected = [f"{kind}{name}{ext}" for name in ("face", "face_2") for kind, ext in
                (("proj_", ".png"), ("target_", ".png"), ("projected_w_", ".npz"), ("proj_", ".json"))]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected + video)
    assert np.asarray(Image.open(out / "target_face.png")).shape == (16, 16, 3)
    report = json.loads((out / "proj_face.json").read_text())
    assert report["distance"] == "pixel-pyramid" and report["steps"] == 8 and report["w_plus"] is True
    assert report["psnr"] > 0 and "final_loss" in report
    assert load_ws(out / "projected_w_face.npz", G).shape == (1, G.num_ws, G.w_dim)
    if video:
        iio = pytest.importorskip("imageio.v2")
        reader = iio.get_reader(out / "proj_face.mp4")
        assert len([f for f in reader]) == 8  # one frame per step: target | projection
        assert reader.get_meta_data()["size"] == (32, 16)
        reader.close()
    result = invoke(generate_cli.command, ["--network", NET, "--ws", str(out / "projected_w_face.npz"),
                                           "--outdir", str(tmp_path / "again")])
    assert result.exit_code == 0 and (tmp_path / "again" / "w0000.png").exists()


def test_project_bad_input(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"nope")
    base = ["--network", NET, "--outdir", str(tmp_path / "o"), "--steps", "2"]
    assert_user_error(invoke(project_cli.command, [*base, "--target", str(tmp_path / "none.png")]), "no such file")
    assert_user_error(invoke(project_cli.command, [*base, "--target", str(tmp_path / "junk.png")]),
                      "cannot read the image")
    Image.fromarray(np.zeros([16, 16, 3], np.uint8)).save(tmp_path / "ok.png")
    assert_user_error(invoke(project_cli.command, [*base, "--target", str(tmp_path / "ok.png"), "--distance", "l2"]),
                      "unknown distance")
    assert_user_error(invoke(project_cli.command, ["--network", str(tmp_path / "nope.pkl"), "--target",
                                                   str(tmp_path / "ok.png"), "--outdir", str(tmp_path / "o")]),
                      "no such file")
    assert not (tmp_path / "o").exists()


def test_export_torchscript_with_verify(tmp_path):
    result = invoke(export_cli.command, ["--network", NET, "--format", "torchscript", "--out", str(tmp_path / "G.pt"),
                                         "--verify"])
    assert result.exit_code == 0, result.output
    assert "inputs z, psi" in result.output
    assert float(result.output.strip().split()[-1]) < 1e-5
    assert_user_error(invoke(export_cli.command, ["--network", NET, "--opset", "3", "--out",
                                                  str(tmp_path / "G.onnx")]), "opset 3")
    assert_user_error(invoke(export_cli.command, ["--network", str(tmp_path), "--out", str(tmp_path / "G.onnx")]),
                      "is a directory")
