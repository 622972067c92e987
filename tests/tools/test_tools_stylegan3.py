"""The tools on StyleGAN3 networks: ws resolutions and style ranges, mixing, video, the noise refusal, the
projector in W and W+, ONNX and TorchScript export (transform included) and the input-transform helper."""
import numpy as np
import pytest
import torch

from stylegan.errors import UserInputError
from stylegan.networks.stylegan3 import Generator3, make_transform
from stylegan.tools.export import SamplingGenerator, example_inputs, export_generator, run_exported, verify_export
from stylegan.tools.generate import generate_images, seed_ws
from stylegan.io.images import to_uint8
from stylegan.tools.layers import parse_layers, style_ranges, ws_resolutions
from stylegan.tools.mixing import mix_styles, style_mixing_images
from stylegan.tools.noise import noise_figure, noise_variation
from stylegan.tools.projector import ProjectionConfig, project, psnr, w_statistics
from stylegan.tools.transform import apply_transform, check_transform, has_input_transform, input_transform, \
    parse_translate
from stylegan.tools.video import interpolation_frames


def tiny_sg3(seed=0, **kwargs):
    """A 16x16 StyleGAN3-T with 4 layers (6 ws); the input affine perturbed so that w moves the grid, as in
    trained networks (a fresh one maps every w to the identity), and output_scale 1 for contrast."""
    torch.manual_seed(seed)
    G = Generator3(**{**dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=256,
                             channel_max=16, num_layers=4, num_critical=2, output_scale=1), **kwargs})
    with torch.no_grad():
        G.synthesis.input.affine.weight.normal_(0, 0.3)
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def G3():
    return tiny_sg3()


def test_ws_resolutions_follow_the_layer_bands():
    # 1024x1024 with the paper's 14 layers (narrow channels: only the geometry matters): 2 f_c per w.
    big = Generator3(z_dim=4, c_dim=0, w_dim=4, img_resolution=1024, img_channels=3, channel_base=64, channel_max=2)
    res = ws_resolutions(big)
    assert res == big.ws_resolutions() == [4, 4, 8, 8, 16, 32, 32, 64, 128, 128, 256, 512, 512, 1024, 1024, 1024]
    ranges = style_ranges(big)
    assert ranges == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6], "fine": list(range(7, 16))}
    small = tiny_sg3()
    # input (f_c 2), layers 0-3 (cutoffs 2, 4, 8, 8: the last two critically sampled), ToRGB (8)
    assert small.ws_resolutions() == [4, 4, 8, 16, 16, 16]
    assert style_ranges(small) == {"coarse": [0, 1], "middle": [2], "fine": [3, 4, 5]}
    assert parse_layers("coarse,fine", small) == [0, 1, 3, 4, 5]
    with pytest.raises(UserInputError, match="layers 0..5"):
        parse_layers("6", small)


def test_style_mixing_on_stylegan3(G3):
    parts = style_mixing_images(G3, [1, 2], [3], "middle")
    assert parts["cells"].shape == (2, 1, 16, 16, 3)
    ws = seed_ws(G3, [1, 3])
    mixed = mix_styles(ws[:1], ws[1:], style_ranges(G3)["middle"])
    assert np.array_equal(parts["cells"][0, 0], to_uint8(G3.synthesis(mixed))[0])
    assert not np.array_equal(parts["cells"][0, 0], parts["rows"][0])
    assert not np.array_equal(parts["cells"][0, 0], parts["cols"][0])
    every = style_mixing_images(G3, [1], [3], list(range(G3.num_ws)))
    assert np.array_equal(every["cells"][0, 0], every["cols"][0])  # all layers from the column = the column


def test_noise_tool_refuses_stylegan3_in_one_line(G3):
    for call in (lambda: noise_figure(G3, [1], num_samples=2, num_std=4),
                 lambda: noise_variation(G3, seed_ws(G3, [1]), num_samples=2, num_std=4, layers="fine")):
        with pytest.raises(UserInputError, match="no per-pixel noise inputs") as info:
            call()
        assert "\n" not in str(info.value)


def test_video_frames_on_stylegan3(G3):
    frames = list(interpolation_frames(G3, [4, 5, 6, 7], frames_per_seed=2, grid=(2, 1), batch_size=3))
    assert len(frames) == 4 and frames[0].shape == (16, 32, 3)
    keys = generate_images(G3, [4, 6])  # the first keyframes of both cells
    assert np.array_equal(frames[0], np.concatenate([keys[0], keys[1]], axis=1))
    middle = to_uint8(G3.synthesis(seed_ws(G3, [4]).lerp(seed_ws(G3, [5]), 0.5)))[0]
    assert np.array_equal(frames[1][:, :16], middle)


@pytest.mark.parametrize("w_plus", [False, True])
def test_projection_recovers_a_stylegan3_image(G3, w_plus):
    # The projector StyleGAN3 never had: no noise maps, only w (or per-layer ws) moving the Fourier grid too.
    G = tiny_sg3()
    G.set_transform((0.05, 0), 10)  # a translated, rotated network: the projector renders what G renders
    target = to_uint8(G.synthesis(seed_ws(G, [7])))[0]
    config = ProjectionConfig(w_avg_samples=500)
    w_avg, _ = w_statistics(G, 500)
    start = psnr(to_uint8(G.synthesis(w_avg.expand(-1, G.num_ws, -1)))[0], target)
    before = G.state_dict()
    ws, info = project(G, target.transpose(2, 0, 1), num_steps=150, w_plus=w_plus, distance="pixel-pyramid",
                       config=config)
    assert start < 20, start  # a real task: the average w is far from the target
    assert info.psnr >= 30 and info.psnr >= start + 15, (start, info.summary())
    assert info.noise == {} and info.psnr == info.psnr_network_noise  # no noise inputs to optimise
    assert ws.shape == (1, G.num_ws, G.w_dim)
    assert w_plus or torch.equal(ws[0, 0], ws[0, -1])  # W: one w broadcast to every layer
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # G left alone
    assert psnr(to_uint8(G.synthesis(ws))[0], target) == info.psnr


@pytest.fixture(scope="module")
def moved_G3():
    G = tiny_sg3(seed=1)
    G.set_transform((0.125, -0.0625), 20)
    return G


def test_torchscript_export_of_stylegan3_renders_its_transform(moved_G3, tmp_path):
    path = export_generator(moved_G3, tmp_path / "G3.pt", "torchscript", batch_size=2)
    for seeds in ([1], [2, 3, 4]):  # traced with a batch of 2
        assert verify_export(moved_G3, path, "torchscript", seeds=seeds) < 1e-5
    z, psi = example_inputs(moved_G3, [1, 2], psi=0.7)
    with torch.no_grad():
        expected = moved_G3(z, None, truncation_psi=0.7).numpy()
        with input_transform(moved_G3):  # the same network untransformed
            plain = moved_G3(z, None, truncation_psi=0.7).numpy()
    out = run_exported(path, "torchscript", [z, psi])
    assert np.abs(out - expected).max() < 1e-5 and np.abs(out - plain).max() > 0.1


def test_onnx_export_of_stylegan3_at_two_batch_sizes(moved_G3, tmp_path):
    for name in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(name)
    path = export_generator(moved_G3, tmp_path / "G3.onnx", "onnx", batch_size=2)
    for seeds, psi in (([7], 1.0), ([0, 1, 2, 3, 4], 0.6)):
        assert verify_export(moved_G3, path, "onnx", seeds=seeds, psi=psi) < 1e-4
    z, psi = example_inputs(moved_G3, [1, 2])
    with torch.no_grad(), input_transform(moved_G3):
        plain = SamplingGenerator(moved_G3)(z, psi).numpy()
    assert np.abs(run_exported(path, "onnx", [z, psi]) - plain).max() > 0.1  # the transform is in the graph


def test_input_transform_sets_and_restores(G3):
    stored = G3.synthesis.input.transform.clone()
    with input_transform(G3, (0.25, 0), 90) as G:
        assert G is G3
        assert torch.allclose(G3.synthesis.input.transform.double(), torch.linalg.inv(make_transform((0.25, 0), 90)))
    assert torch.equal(G3.synthesis.input.transform, stored)
    with pytest.raises(RuntimeError), input_transform(G3, (0.5, 0)):
        raise RuntimeError("a failed render")
    assert torch.equal(G3.synthesis.input.transform, stored)
    assert has_input_transform(G3)


def test_apply_transform_as_the_cli_flags():
    G = tiny_sg3()
    stored = torch.linalg.inv(make_transform((0.1, 0.2), 5)).float()
    G.synthesis.input.transform.copy_(stored)
    apply_transform(G, None, None)  # no flags: the stored transform stays
    assert torch.equal(G.synthesis.input.transform, stored)
    apply_transform(G, None, 45)  # one flag: replaces the stored transform, the other counts as 0
    assert torch.allclose(G.synthesis.input.transform.double(), torch.linalg.inv(make_transform((0, 0), 45)))
    apply_transform(G, (0.5, 0), None)
    assert torch.allclose(G.synthesis.input.transform.double(), torch.linalg.inv(make_transform((0.5, 0), 0)))
    assert parse_translate("0.3,-1") == (0.3, -1.0)
    for bad in ("0.3", "a,b", "1,2,3", "nan,0"):
        with pytest.raises(UserInputError, match="two numbers"):
            parse_translate(bad)


def test_transform_refused_for_networks_without_one():
    class NoTransform(torch.nn.Module):
        pass
    check_transform(NoTransform(), (0, 0), 0)
    with input_transform(NoTransform()):
        pass
    apply_transform(NoTransform(), (0, 0), 0)
    with pytest.raises(UserInputError, match="StyleGAN3"):
        check_transform(NoTransform(), (0.1, 0), 0)
    with pytest.raises(UserInputError, match="StyleGAN3"):
        apply_transform(NoTransform(), None, 10)
    with pytest.raises(UserInputError, match="StyleGAN3"):
        with input_transform(NoTransform(), angle=5):
            pass


# --- NVIDIA's StyleGAN3-R fixture (tests/fixtures/sg3/r32: a non-identity stored transform) --------------------

def official_r32():
    import json
    from pathlib import Path

    from safetensors.torch import load_file
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "sg3" / "r32"
    cfg = json.loads((folder / "config.json").read_text())
    G = Generator3(**cfg["G_kwargs"]).eval().requires_grad_(False)
    G.load_state_dict(load_file(str(folder / "G.safetensors")), strict=True)
    return cfg, G, load_file(str(folder / "io.safetensors"))


def test_input_transform_and_export_reproduce_nvidia_outputs(tmp_path):
    cfg, G, io = official_r32()
    case = cfg["transform_cases"]["img_transform"]  # gen_images.py's --translate 0.2,0.05 --rotate 60
    with torch.no_grad(), input_transform(G, case["translate"], case["angle"]):
        torch.testing.assert_close(G.synthesis(io["ws"]), io["img_transform"], atol=1e-4, rtol=1e-4)
    # An export keeps the stored transform: NVIDIA's G(z, truncation_psi=0.7) through TorchScript, batch 4
    # from a trace at batch 2.
    path = export_generator(G, tmp_path / "r32.pt", "torchscript", batch_size=2)
    out = run_exported(path, "torchscript", [io["z"], torch.full([4], 0.7)])
    np.testing.assert_allclose(out, io["img_psi07"].numpy(), atol=1e-4, rtol=1e-4)
