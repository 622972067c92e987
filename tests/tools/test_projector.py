"""tools.projector: the StyleGAN2 projector (appendix D), its distances, targets and schedule."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.errors import UserInputError
from stylegan.tools.generate import render_ws, seed_ws
from stylegan.tools.projector import PixelPyramidDistance, ProjectionConfig, learning_rate, load_distance, \
    load_target, match_saturation, noise_buffers, noise_regularization, project, projection_frames, psnr



def w_plus_target(G, first_seed):
    """uint8 [C, H, W] image of a W+ latent: layer i takes the w of seed first_seed + i."""
    ws = seed_ws(G, list(range(first_seed, first_seed + G.num_ws)))
    ws = torch.stack([ws[i, i] for i in range(G.num_ws)])[None]
    image = render_ws(G, ws)[0]
    return torch.from_numpy(image).permute(2, 0, 1).contiguous(), ws


def test_w_plus_projection_recovers_a_generated_image(G):
    target, _ = w_plus_target(G, 100)
    # The target was made with the network's constant noise, so that noise is kept (not re-optimised);
    # a gentler w-noise start than the paper's 0.05 suits 600 steps.
    config = ProjectionConfig(optimize_noise=False, initial_noise_factor=0.02, w_avg_samples=2000)
    ws, info = project(G, target, num_steps=600, w_plus=True, distance="pixel-pyramid", config=config)
    assert ws.shape == (1, G.num_ws, G.w_dim)
    assert info.psnr >= 30, info.summary()
    assert info.distance == "pixel-pyramid" and info.steps == 600 and info.w_plus
    assert info.psnr == info.psnr_network_noise  # no noise was optimised, so generate --ws shows the same image
    rendered = render_ws(G, ws)[0]
    assert psnr(rendered, target.permute(1, 2, 0).numpy()) >= 30
    assert info.losses[-1] < 0.05 * info.losses[0]


def test_w_projection_broadcasts_one_w_and_leaves_G_alone(G):
    target, _ = w_plus_target(G, 7)
    before = {k: v.clone() for k, v in noise_buffers(G).items()}
    ws, info = project(G, target, num_steps=30, distance="pixel-pyramid", config=ProjectionConfig(w_avg_samples=500),
                       return_history=True)
    assert ws.shape == (30, G.num_ws, G.w_dim)
    assert torch.equal(ws[:, :1].expand_as(ws), ws)  # W: one w for every layer
    assert not info.w_plus and info.losses[-1] < info.losses[0]
    for name, value in info.noise.items():  # optimised noise maps are renormalised every step (appendix D)
        assert abs(float(value.mean())) < 1e-4 and abs(float(value.square().mean()) - 1) < 1e-3
    assert all(torch.equal(before[k], v) for k, v in noise_buffers(G).items())
    assert not any(p.requires_grad for p in G.parameters())
    frames = list(projection_frames(G, ws, target, info.noise, every=10))
    assert len(frames) == 4 and frames[0].shape == (16, 32, 3)  # steps 0, 10, 20 and the last
    assert np.array_equal(frames[-1][:, 16:], info.image)       # the last frame is the result
    assert np.array_equal(frames[0][:, :16], target.permute(1, 2, 0).numpy())


def test_noise_regularization_penalises_autocorrelation():
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1  # correlation -1 at shift 1
    white = torch.randn([64, 64], generator=torch.Generator().manual_seed(0))
    assert float(noise_regularization([checker])) > 100 * float(noise_regularization([white]))
    assert float(noise_regularization([white])) > 0


def test_learning_rate_ramps():
    lrs = [learning_rate(t, 0.1, 0.05, 0.25) for t in np.linspace(0, 1, 101)]
    assert lrs[0] == 0 and max(lrs) == pytest.approx(0.1) and lrs[-1] == pytest.approx(0, abs=1e-12)
    assert lrs[3] < lrs[5] == pytest.approx(0.1) and lrs[90] < lrs[75]


def test_pixel_pyramid_distance():
    dist = PixelPyramidDistance()
    a = torch.rand([2, 3, 32, 32]) * 2 - 1
    b = a.clone()
    b[1, :, 5, 5] += 0.5
    d = dist(b, dist.features(a))
    assert d[0] == 0 and d[1] > 0
    assert len(dist.features(a)) == 3 * 3  # 32, 16, 8: pixels and two gradients each


def test_match_saturation():
    target = torch.tensor([1.0, -1.0, 0.5, 1.0]).reshape(1, 1, 1, 4)
    images = torch.tensor([3.0, -2.0, 3.0, 0.5]).reshape(1, 1, 1, 4)
    assert match_saturation(images, target).flatten().tolist() == [1.0, -1.0, 3.0, 0.5]


def test_load_target_crops_resizes_and_converts(tmp_path):
    rgba = np.zeros([20, 30, 4], np.uint8)
    rgba[:, 5:25, 0] = 255  # the centred 20x20 square is red
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "wide.png")
    target, notes = load_target(tmp_path / "wide.png", 16, 3)
    assert target.shape == (3, 16, 16) and target.dtype == np.uint8
    assert (target[0] == 255).all() and (target[1:] == 0).all()
    assert any("centre-cropped from 30x20" in n for n in notes)
    assert any("resized from 20x20 to 16x16" in n for n in notes)
    assert any("converted from RGBA" in n for n in notes)
    Image.fromarray(np.full([16, 16], 77, np.uint8)).save(tmp_path / "gray.png")
    target, notes = load_target(tmp_path / "gray.png", 16, 3)
    assert (target == 77).all() and len(notes) == 1


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"\x89PNG broken"), "cannot read the image"),
    (lambda p: p.mkdir(), "is a directory"),
])
def test_load_target_errors(tmp_path, make, message):
    path = tmp_path / "t.png"
    make(path)
    with pytest.raises(UserInputError, match=message):
        load_target(path, 16, 3)


def test_bad_projection_requests(G):
    with pytest.raises(UserInputError, match="unknown distance"):
        load_distance("lpips-alex")
    with pytest.raises(UserInputError, match=r"uint8 \[3, 16, 16\]"):
        project(G, np.zeros([3, 32, 32], np.uint8), num_steps=1)
    with pytest.raises(UserInputError, match="steps"):
        project(G, np.zeros([3, 16, 16], np.uint8), num_steps=0)
    assert math.isinf(psnr(np.zeros([2, 2, 3], np.uint8), np.zeros([2, 2, 3], np.uint8)))
