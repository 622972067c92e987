"""Progressive-growing schedule, faded reals, lod-aware style mixing, and the WGAN-GP losses (wgan_gp.py)."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.networks.stylegan1 import Generator1
from stylegan.networks.stylegan1_discriminator import Discriminator1
from stylegan.training.progressive import LodSchedule, lod_images, official_ffhq_schedule, optimizer_reset_needed
from stylegan.training.wgan_gp import drift_penalty, gradient_penalty, wgan_g_loss, wgan_gp_d_loss


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny convolutions run far faster on one thread than on a contended pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the schedule -------------------------------------------------------------------------------------------


def test_official_ffhq_schedule_phases():
    s = official_ffhq_schedule(1024)
    assert s.max_lod == 7 and s.lod_at(0) == 7 and s.resolution_at(0) == 8
    assert s.lod_at(599.9) == 7 and not s.is_fading_at(599.9)
    assert s.lod_at(900) == pytest.approx(6.5) and s.is_fading_at(900)
    assert s.resolution_at(900) == 16  # the resolution being faded in
    assert s.lod_at(1200) == 6 and s.resolution_at(1200) == 16
    assert s.lod_at(4800) == 3 and s.resolution_at(4800) == 128
    assert s.lod_at(8400) == 0 and s.lod_at(25000) == 0 and s.resolution_at(25000) == 1024
    assert s.batch_size_at(0) == 128 and s.batch_size_at(2400) == 64
    assert s.batch_size_at(3600) == 32 and s.batch_size_at(4800) == 16
    assert s.batch_size_at(25000) == 4  # 1024 is not in the dict: minibatch_base
    assert s.lr_at(0) == (0.001, 0.001) and s.lr_at(4800) == (0.0015, 0.0015) and s.lr_at(25000) == (0.003, 0.003)
    assert s.tick_kimg_at(0) == 140 and s.tick_kimg_at(25000) == 20
    assert official_ffhq_schedule(1024, num_gpus=8).batch_size_at(0) == 256


def test_lod_is_continuous_and_decreasing():
    s = LodSchedule(img_resolution=256, initial_resolution=4, lod_training_kimg=30, lod_transition_kimg=20)
    kimgs = [i * 0.5 for i in range(700)]
    lods = [s.lod_at(k) for k in kimgs]
    assert lods[0] == 6 and lods[-1] == 0
    steps = [a - b for a, b in zip(lods, lods[1:])]
    assert all(0 <= d <= 0.5 / 20 + 1e-12 for d in steps)
    for k, lod in zip(kimgs, lods):  # stable phases hold integer lods, fades move linearly
        phase_kimg = k % 50
        assert (lod == math.floor(lod)) == (phase_kimg <= 30 or lod == 0)


def test_schedule_is_a_pure_function_of_kimg():
    s = official_ffhq_schedule(256, num_gpus=2)
    restored = LodSchedule.from_dict(json.loads(json.dumps(s.to_dict())))
    assert restored == s
    kimgs = [3000.0, 10.0, 7777.7, 600.0, 899.5]
    expected = [(s.lod_at(k), s.batch_size_at(k), s.lr_at(k)) for k in kimgs]
    again = [(restored.lod_at(k), restored.batch_size_at(k), restored.lr_at(k)) for k in reversed(kimgs)]
    assert again == expected[::-1]


def test_schedule_options():
    s = LodSchedule(img_resolution=64, minibatch_base=30, num_gpus=4, max_minibatch_per_gpu={4: 2},
                    lrate_rampup_kimg=100)
    assert s.batch_size_at(0) == 8  # capped at 2 per GPU
    assert s.batch_size_at(10_000) == 28  # rounded down to a multiple of the GPU count
    assert s.lr_at(50) == (pytest.approx(0.0005), pytest.approx(0.0005))
    with pytest.raises(ValueError):
        LodSchedule(img_resolution=48)
    with pytest.raises(ValueError):
        LodSchedule(img_resolution=16, initial_resolution=32)


def test_optimizer_reset_at_phase_boundaries():
    assert optimizer_reset_needed(2.0, 1.99)  # a fade begins
    assert optimizer_reset_needed(1.01, 1.0)  # a fade ends
    assert not optimizer_reset_needed(1.6, 1.5)
    assert not optimizer_reset_needed(2.0, 2.0)


# --- faded reals and style mixing ---------------------------------------------------------------------------


def test_lod_images():
    img = torch.randn(2, 3, 16, 16)
    assert torch.equal(lod_images(img, 0), img)
    for level in [1, 2]:
        expected = F.avg_pool2d(img, 2 ** level)
        torch.testing.assert_close(lod_images(img, level, full_resolution=False), expected)
        torch.testing.assert_close(lod_images(img, level), F.interpolate(expected, scale_factor=2 ** level))
        torch.testing.assert_close(lod_images(img, level - 1e-6), lod_images(img, level), atol=1e-5, rtol=0)
    mid = lod_images(img, 0.5)
    torch.testing.assert_close(mid, 0.5 * (lod_images(img, 0) + lod_images(img, 1)))
    with pytest.raises(ValueError):
        lod_images(torch.randn(1, 3, 6, 6), 1.5)  # 6 is not divisible by 4


# --- WGAN-GP ------------------------------------------------------------------------------------------------


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, img, c=None):
        return img.flatten(1) @ self.w.unsqueeze(1)


def test_gradient_penalty_of_linear_critics():
    real, fake = torch.randn(5, 2, 4, 4), torch.randn(5, 2, 4, 4)
    w = torch.randn(32)
    unit = LinearCritic(w / w.norm())
    assert gradient_penalty(unit, real, fake).abs().max() < 1e-10
    double = LinearCritic(2 * w / w.norm())
    gp = gradient_penalty(double, real, fake)
    torch.testing.assert_close(gp, torch.ones(5))
    # The penalty's gradient reaches the critic's weights: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    gp.mean().backward()
    torch.testing.assert_close(double.w.grad, 2 * (2 - 1) * w / w.norm())


def test_gradient_penalty_positive_for_nonlinear_critic():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    gp = gradient_penalty(lambda x, c: critic(x), torch.randn(6, 2, 4, 4), torch.randn(6, 2, 4, 4))
    assert gp.shape == (6,) and (gp > 0).all()


def test_wgan_losses_match_their_definition():
    real, fake = torch.randn(4, 2, 4, 4), torch.randn(4, 2, 4, 4)
    w = torch.randn(32)
    critic = LinearCritic(3 * w / w.norm())
    loss = wgan_gp_d_loss(critic, real, fake, gp_lambda=10, drift=0.001)
    real_scores, fake_scores = critic(real).flatten(), critic(fake).flatten()
    expected = (fake_scores - real_scores).mean() + 10 * (3 - 1) ** 2 + 0.001 * real_scores.square().mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(drift_penalty(critic(real)), real_scores.square())
    torch.testing.assert_close(wgan_g_loss(critic(fake)), -critic(fake))
    # D's loss does not train G: fake images are detached.
    g_param = torch.nn.Parameter(torch.ones([]))
    wgan_gp_d_loss(critic, real, fake * g_param).backward()
    assert g_param.grad is None and critic.w.grad is not None


def test_gradient_penalty_is_reproducible_with_a_generator():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 1), torch.nn.Softplus())
    real, fake = torch.randn(4, 2, 4, 4), torch.randn(4, 2, 4, 4)
    a = gradient_penalty(lambda x, c: critic(x), real, fake, generator=torch.Generator().manual_seed(3))
    b = gradient_penalty(lambda x, c: critic(x), real, fake, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


# --- a whole progressive run in miniature -------------------------------------------------------------------


def test_tiny_schedule_trains_through_every_phase():
    torch.manual_seed(0)
    G = Generator1(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, img_channels=3, fmap_base=32, fmap_max=8,
                   mapping_kwargs=dict(num_layers=2))
    D = Discriminator1(c_dim=2, img_resolution=16, img_channels=3, fmap_base=32, fmap_max=8)
    s = LodSchedule(img_resolution=16, initial_resolution=4, lod_training_kimg=0.01, lod_transition_kimg=0.01,
                    minibatch_base=4, minibatch_dict={4: 8}, G_lrate_base=0.001)
    g_opt = torch.optim.Adam(G.parameters(), betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), betas=(0.0, 0.99))
    reals = torch.rand(8, 3, 16, 16) * 2 - 1
    labels = F.one_hot(torch.arange(8) % 2, 2).float()

    nimg, prev_lod, phases, resets = 0, s.lod_at(0), [], 0
    while nimg <= 60:
        kimg = nimg / 1000
        lod, batch = s.lod_at(kimg), s.batch_size_at(kimg)
        if optimizer_reset_needed(prev_lod, lod):
            resets += 1
            g_opt = torch.optim.Adam(G.parameters(), betas=(0.0, 0.99))
            d_opt = torch.optim.Adam(D.parameters(), betas=(0.0, 0.99))
        for opt, lr in zip((g_opt, d_opt), s.lr_at(kimg)):
            for group in opt.param_groups:
                group["lr"] = lr
        G.set_lod(lod)
        D.set_lod(lod)
        phase = ("fade" if s.is_fading_at(kimg) else "stable", s.resolution_at(kimg))
        if not phases or phases[-1] != phase:
            phases.append(phase)

        real, c = lod_images(reals[:batch], lod), labels[:batch]
        z = torch.randn(batch, G.z_dim)
        d_opt.zero_grad(set_to_none=True)
        d_loss = wgan_gp_d_loss(D, real, G(z, c), c)
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        g_loss = wgan_g_loss(D(G(z, c), c)).mean()
        g_loss.backward()
        active = G.synthesis.b4.layer0.style.weight.grad
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss) and active.abs().sum() > 0
        rgb8 = G.synthesis.b8.torgb.weight.grad  # used while 8x8 is current (1 <= lod < 2) or fading out
        assert (rgb8 is not None) == (0 < lod < 2)
        g_opt.step()
        prev_lod = lod
        nimg += 4  # a real loop adds the batch size; small steps visit every phase at least twice

    assert phases == [("stable", 4), ("fade", 8), ("stable", 8), ("fade", 16), ("stable", 16)]
    assert resets == 4
