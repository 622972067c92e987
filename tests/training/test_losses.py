"""Losses, regularisers, style mixing and EMA against their formulas."""

import pytest
import torch

from stylegan.training import losses
from stylegan.training.ema import ema_beta, update_ema


def test_logistic_losses():
    logits = torch.tensor([-2.0, 0.0, 3.0])
    sig = torch.sigmoid(logits)
    torch.testing.assert_close(losses.g_nonsaturating_loss(logits), -torch.log(sig))
    torch.testing.assert_close(losses.d_logistic_loss_real(logits), -torch.log(sig))
    torch.testing.assert_close(losses.d_logistic_loss_fake(logits), -torch.log(1 - sig))


def test_r1_penalty_of_a_quadratic_critic():
    # D(x) = sum(a * x^2) has gradient 2 a x, so R1 = sum (2 a x)^2 per sample.
    a = torch.rand(1, 2, 3, 3)
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    logits = (a * x.square()).sum(dim=[1, 2, 3])
    torch.testing.assert_close(losses.r1_penalty(x, logits), (2 * a * x).square().sum(dim=[1, 2, 3]))


def test_path_lengths_match_explicit_jacobian():
    torch.manual_seed(0)
    A = torch.randn(3, 2, 4, 4, 5, dtype=torch.float64)  # img[n] = sum over 3 layers of A_l w_l
    ws = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    img = torch.einsum("lchwk,nlk->nchw", A, ws)
    y = torch.randn_like(img)
    lengths = losses.path_lengths(img, ws, noise=y)
    y = y / 4  # / sqrt(H W)
    # J_w^T y per layer: sum_chw A[l, c, h, w, k] y[n, c, h, w]; squared over k, averaged over layers.
    jty = torch.einsum("lchwk,nchw->nlk", A, y)
    torch.testing.assert_close(lengths, jty.square().sum(2).mean(1).sqrt())
    penalty, new_mean = losses.path_length_penalty(lengths, torch.tensor(1.0, dtype=torch.float64), 0.01)
    torch.testing.assert_close(new_mean, 1 + 0.01 * (lengths.mean() - 1))
    torch.testing.assert_close(penalty, (lengths - new_mean).square())


def test_mix_styles_cutoffs():
    torch.manual_seed(1)
    ws, ws2 = torch.zeros(2, 8, 3), torch.ones(2, 8, 3)
    cutoffs = []
    for _ in range(300):
        mixed = losses.mix_styles(ws, ws2, prob=1.0)
        switched = mixed[0, :, 0]
        cut = int((switched == 0).sum())
        assert torch.equal(switched[cut:], torch.ones(8 - cut)) and 1 <= cut <= 7
        cutoffs.append(cut)
    assert set(cutoffs) == set(range(1, 8))
    assert torch.equal(losses.mix_styles(ws, ws2, prob=0.0), ws)
    unmixed = sum(torch.equal(losses.mix_styles(ws, ws2, prob=0.5), ws) for _ in range(400))
    assert 140 < unmixed < 260
    # Only the first 4 layers are active (progressive growing): the cutoff stays below 4.
    for _ in range(100):
        mixed = losses.mix_styles(ws, ws2, prob=1.0, num_active=4)
        assert 1 <= int((mixed[0, :, 0] == 0).sum()) <= 3


def test_ema_half_life():
    beta = ema_beta(batch_size=32, ema_kimg=10, cur_nimg=10 ** 9)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    ramped = ema_beta(batch_size=32, ema_kimg=10, cur_nimg=1000, ema_rampup=0.05)  # half-life 50 images
    assert ramped ** (50 / 32) == pytest.approx(0.5)
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = b.weight.detach() * 0.25 + a.weight.detach() * 0.75
    update_ema(a, b, beta=0.75)
    torch.testing.assert_close(a.weight, expected)
