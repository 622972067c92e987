"""The tool commands on a StyleGAN3 export: mix and video (with --translate/--rotate), project (W and W+), export
--translate/--rotate, metrics, and the noise command's one-line refusal."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli import export as export_cli
from stylegan.cli import metrics as metrics_cli
from stylegan.cli import mix as mix_cli
from stylegan.cli import noise as noise_cli
from stylegan.cli import project as project_cli
from stylegan.cli import video as video_cli
from stylegan.io.export import save_network
from stylegan.io.load import load_generator
from stylegan.networks.stylegan3 import Generator3
from stylegan.tools.export import SamplingGenerator, example_inputs, run_exported
from stylegan.tools.generate import generate_images, seed_ws
from stylegan.io.images import to_uint8
from stylegan.tools.layers import style_ranges
from stylegan.tools.mixing import mix_styles
from stylegan.tools.transform import input_transform
from stylegan.tools.ws_io import load_ws

from official_helpers import OFFICIAL_SNAPSHOT


def tiny_sg3(resolution=16, channels=3, seed=0):
    """A StyleGAN3-T with 4 layers; the input affine perturbed so that w moves the grid, as in trained networks."""
    torch.manual_seed(seed)
    G = Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=resolution, img_channels=channels, channel_base=256,
                   channel_max=16, num_layers=4, num_critical=2, output_scale=1)
    with torch.no_grad():
        G.synthesis.input.affine.weight.normal_(0, 0.3)
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("sg3") / "sg3.safetensors"
    save_network(path, {"G_ema": tiny_sg3()})
    return str(path)


def invoke(command, args):
    return CliRunner().invoke(command, args, catch_exceptions=False)


def assert_user_error(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1] and "Traceback" not in result.output, result.stderr


def read(path):
    return np.asarray(Image.open(path)).astype(np.int64)


def test_mix_on_stylegan3(net, tmp_path):
    out = tmp_path / "fig.png"
    result = invoke(mix_cli.command, ["--network", net, "--rows", "1,2", "--cols", "3", "--styles", "fine",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    figure = read(out)
    assert figure.shape == (3 * 16, 2 * 16, 3)
    G = load_generator(net)
    ws = seed_ws(G, [2, 3])
    expected = to_uint8(G.synthesis(mix_styles(ws[:1], ws[1:], style_ranges(G)["fine"])))[0]
    assert np.abs(figure[32:48, 16:32] - expected).max() <= 1  # row 2 with seed 3's fine styles
    result = invoke(mix_cli.command, ["--network", net, "--rows", "1", "--cols", "3", "--styles", "fine",
                                      "--rotate", "30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ws = seed_ws(G, [1, 3])
    with input_transform(G, (0, 0), 30):
        expected = to_uint8(G.synthesis(mix_styles(ws[:1], ws[1:], style_ranges(G)["fine"])))[0]
    assert np.abs(read(out)[16:32, 16:32] - expected).max() <= 1
    assert_user_error(invoke(mix_cli.command, ["--network", str(OFFICIAL_SNAPSHOT), "--rows", "1", "--cols", "3",
                                               "--rotate", "30", "--out", str(tmp_path / "g2.png")]), "StyleGAN3")


def test_video_on_stylegan3(net, tmp_path):
    out = tmp_path / "frames"
    result = invoke(video_cli.command, ["--network", net, "--seeds", "0-3", "--grid", "2x1", "--frames-per-seed", "2",
                                        "--out", str(out)])
    assert result.exit_code == 0, result.output
    frames = sorted(out.iterdir())
    assert len(frames) == 4
    G = load_generator(net)
    keys = generate_images(G, [0, 2])
    assert np.abs(read(frames[0]) - np.concatenate([keys[0], keys[1]], axis=1)).max() <= 1
    result = invoke(video_cli.command, ["--network", net, "--seeds", "0-1", "--frames-per-seed", "1",
                                        "--translate", "0.25,0", "--out", str(tmp_path / "moved")])
    assert result.exit_code == 0, result.output
    with input_transform(G, (0.25, 0)):
        first = generate_images(G, [0])[0]
    assert np.abs(read(tmp_path / "moved" / "frame00000.png") - first).max() <= 1
    assert_user_error(invoke(video_cli.command, ["--network", net, "--seeds", "0-1", "--translate", "x",
                                                 "--out", str(tmp_path / "bad")]), "--translate takes two numbers")


def test_noise_refuses_stylegan3_in_one_line(net, tmp_path):
    result = invoke(noise_cli.command, ["--network", net, "--seeds", "1", "--out", str(tmp_path / "n.png")])
    assert_user_error(result, "no per-pixel noise inputs")
    assert not (tmp_path / "n.png").exists()


@pytest.mark.parametrize("w_plus", [False, True])
def test_project_on_stylegan3(net, tmp_path, w_plus):
    G = load_generator(net)
    target = generate_images(G, [7])[0]
    Image.fromarray(target.astype(np.uint8)).save(tmp_path / "t.png")
    args = ["--network", net, "--target", str(tmp_path / "t.png"), "--steps", "150", "--distance", "pixel-pyramid",
            "--outdir", str(tmp_path / "out")] + (["--w-plus"] if w_plus else [])
    result = invoke(project_cli.command, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "proj_t.json").read_text())
    assert report["w_plus"] is w_plus and report["psnr"] >= 30, report
    ws = load_ws(tmp_path / "out" / "projected_w_t.npz", G)
    assert ws.shape == (1, G.num_ws, G.w_dim)
    with np.load(tmp_path / "out" / "projected_w_t.npz") as data:
        assert list(data.keys()) == ["w"]  # no noise maps: StyleGAN3 has none


def test_export_translate_rotate(net, tmp_path):
    out = tmp_path / "G.pt"
    result = invoke(export_cli.command, ["--network", net, "--format", "torchscript", "--out", str(out),
                                         "--translate", "0.25,0", "--rotate", "15", "--verify"])
    assert result.exit_code == 0, result.output
    assert "max abs difference vs PyTorch" in result.output
    G = load_generator(net)
    z, psi = example_inputs(G, [1, 2, 3], psi=0.8)
    with torch.no_grad(), input_transform(G, (0.25, 0), 15):
        expected = SamplingGenerator(G)(z, psi).numpy()
    assert np.abs(run_exported(out, "torchscript", [z, psi]) - expected).max() < 1e-5
    assert_user_error(invoke(export_cli.command, ["--network", net, "--format", "torchscript", "--out", str(out),
                                                  "--translate", "0.25"]), "--translate takes two numbers")
    assert_user_error(invoke(export_cli.command, ["--network", str(OFFICIAL_SNAPSHOT), "--format", "torchscript",
                                                  "--out", str(tmp_path / "g2.pt"), "--rotate", "10"]), "StyleGAN3")
    assert not (tmp_path / "g2.pt").exists()


def test_metrics_on_a_stylegan3_network(tmp_path):
    # A 32x32 gray StyleGAN3 against 40 gray images, on the small Fashion-MNIST feature network.
    path = tmp_path / "sg3gray.safetensors"
    save_network(path, {"G_ema": tiny_sg3(resolution=32, channels=1)})
    reals = tmp_path / "reals"
    reals.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, [32, 32], dtype=np.uint8)).save(reals / f"{i:03d}.png")
    args = ["--network", str(path), "--data", str(reals), "--metrics", "fid10k_full,kid50k_full",
            "--feature-net", "fmnist", "--num", "24", "--batch", "12", "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(metrics_cli.command, args)
    assert result.exit_code == 0, result.output
    assert "path: fp32, NCHW, compile off (nothing to choose" in result.stderr  # StyleGAN3: no channels-last
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["metric"] for r in lines] == ["fid10k_full", "kid50k_full"]
    assert lines[0]["num_fake"] == 24 and lines[0]["feature_net"] == "fmnist"
    assert np.isfinite(lines[0]["value"]) and lines[0]["value"] > 0
