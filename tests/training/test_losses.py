"""Losses, regularisers, style mixing and EMA against their formulas."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

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


class ConvolutionBackwardMasks(TorchDispatchMode):
    """Records which gradients (input, weight, bias) each convolution backward is asked to compute."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(tuple(args[-1]))
        return func(*args, **(kwargs or {}))


def test_regularisers_compute_no_weight_gradients_in_their_first_pass():
    """R1 and path length differentiate with respect to images / ws only: no convolution computes a weight
    gradient there (NVIDIA's code needs a custom op, `no_weight_gradients`, for this)."""
    from stylegan.tools.bench import build_networks
    torch.manual_seed(0)
    G, D = build_networks("cpu", 16, torch.device("cpu"))
    G.requires_grad_(True)
    D.requires_grad_(True)
    real = torch.randn(2, 3, 16, 16, requires_grad=True)
    logits = D(real, None)
    with ConvolutionBackwardMasks() as r1_pass:
        penalty = losses.r1_penalty(real, logits)
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    img = G.synthesis(ws)
    with ConvolutionBackwardMasks() as pl_pass:
        lengths = losses.path_lengths(img, ws)
    for masks in (r1_pass.masks, pl_pass.masks):
        assert len(masks) >= 8 and all(mask[0] and not mask[1] for mask in masks)
    # ...and the second pass still reaches every weight.
    (penalty.sum() + lengths.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for name, p in D.named_parameters()
               if name.endswith("weight"))
    assert all(p.grad is not None for name, p in G.synthesis.named_parameters() if name.endswith("affine.weight"))


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
