"""The training phases (training/phases.py): which phases a config runs, and each phase's loss against its written
definition on tiny networks (fixed draws, so the same random numbers reach both)."""
import contextlib

import pytest
import torch

from stylegan.networks.registry import build_network
from stylegan.training.phases import PhaseInputs, PhaseNetworks, build_phases, phase_loss

from train_helpers import tiny_config


def _nets(cfg, c_dim=0):
    torch.manual_seed(0)
    net = cfg.network
    G = build_network(net.generator_class, net.generator_kwargs(16, 1, c_dim))
    D = build_network(net.discriminator_class, net.discriminator_kwargs(16, 1, c_dim))
    return G, D


def _inputs(G, n=4):
    gen = torch.Generator().manual_seed(1)
    real = torch.rand([n, 1, 16, 16], generator=gen) * 2 - 1
    z = torch.randn([n, G.z_dim], generator=gen)
    c = torch.zeros([n, 0])
    return PhaseInputs(real, c, z, c)


def _loss(name, cfg, nets, x, pl_mean=None, seed=5):
    torch.manual_seed(seed)
    pl_mean = torch.zeros([]) if pl_mean is None else pl_mean
    return phase_loss(name, nets, cfg, x, pl_mean, lambda *a: None)


def test_phases_follow_the_config():
    cfg = tiny_config()
    G, D = _nets(cfg)
    assert [(p.name, p.interval) for p in build_phases(cfg, G, D)] == [("Gmain", 1), ("Greg", 4), ("Dmain", 1),
                                                                       ("Dreg", 16)]
    cfg.pl_weight, cfg.loss = 0.0, "wgan-gp"
    assert [p.name for p in build_phases(cfg, G, D)] == ["Gmain", "Dboth"]


def test_wgan_gp_phase_is_its_definition():
    """Dboth with --loss wgan-gp: D(fake) - D(real) + 10 (||grad D(x_hat)|| - 1)^2 + 0.001 D(real)^2 per sample,
    x_hat = lerp(real, fake, u) with u drawn after the G pass (Gulrajani et al. eq. 3, ProGAN's drift)."""
    cfg = tiny_config(loss="wgan-gp", style_mixing_prob=0.0, aug="noaug")
    G, D = _nets(cfg)
    nets, x = PhaseNetworks(G, D), _inputs(G)
    loss = _loss("Dboth", cfg, nets, x)
    torch.manual_seed(5)
    fake = G(x.z, x.c).detach()
    u = torch.rand([4, 1, 1, 1])
    x_hat = torch.lerp(x.real_img, fake, u).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat, x.c).sum(), x_hat)
    real_scores = D(x.real_img, x.c).flatten()
    expected = (D(fake, x.c).flatten() - real_scores + 10 * (grad.flatten(1).norm(dim=1) - 1) ** 2
                + 0.001 * real_scores ** 2)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    g_loss = _loss("Gmain", cfg, nets, x)
    torch.manual_seed(5)
    torch.testing.assert_close(g_loss, -D(G(x.z, x.c), x.c), rtol=1e-6, atol=1e-6)


def test_logistic_phases_are_their_definitions():
    """G main softplus(-D(G(z))); D main softplus(D(G(z))) + softplus(-D(x)); D reg gamma/2 ||grad_x D(x)||^2;
    Dboth (StyleGAN v1) the D main loss plus the R1 term in one pass."""
    cfg = tiny_config(style_mixing_prob=0.0, aug="noaug", r1_gamma=3.0)
    G, D = _nets(cfg)
    nets, x = PhaseNetworks(G, D), _inputs(G)
    sp = torch.nn.functional.softplus
    torch.manual_seed(5)
    fake = G(x.z, x.c)
    torch.testing.assert_close(_loss("Gmain", cfg, nets, x), sp(-D(fake, x.c)))
    d_main = sp(D(fake.detach(), x.c)) + sp(-D(x.real_img, x.c))
    torch.testing.assert_close(_loss("Dmain", cfg, nets, x), d_main)
    real = x.real_img.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real, x.c).sum(), real)
    r1 = grad.square().sum(dim=[1, 2, 3])
    torch.testing.assert_close(_loss("Dreg", cfg, nets, x), r1 * 1.5)
    torch.testing.assert_close(_loss("Dboth", cfg, nets, x), d_main + r1 * 1.5)


def test_path_length_phase_is_its_definition():
    """G reg on the batch shrunk by pl_batch_shrink: lengths ||J_w^T y|| with y ~ N(0, I) / sqrt(H W), the running
    mean a = lerp(a, mean length, decay) updated in place, penalty pl_weight (length - a)^2 (StyleGAN2 eq. 4)."""
    cfg = tiny_config(style_mixing_prob=0.0, aug="noaug", pl_weight=2.0, pl_decay=0.1, pl_batch_shrink=2)
    G, D = _nets(cfg)
    nets, x = PhaseNetworks(G, D), _inputs(G)
    pl_mean = torch.full([], 0.5)
    loss = _loss("Greg", cfg, nets, x, pl_mean)
    torch.manual_seed(5)
    ws = G.mapping(x.z[:2], x.c[:2])
    img = G.synthesis(ws)
    noise = torch.randn_like(img) / 16  # sqrt(H W)
    (grad,) = torch.autograd.grad((img * noise).sum(), ws)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    a = 0.5 + (lengths.mean() - 0.5) * 0.1
    torch.testing.assert_close(pl_mean, a.detach())
    torch.testing.assert_close(loss, (lengths - a) ** 2 * 2.0)


def test_dmain_tracks_w_and_ada_signs():
    from stylegan.training.ada import AdaController
    from stylegan.training.augment import make_augment_pipe
    cfg = tiny_config(style_mixing_prob=0.0)
    G, D = _nets(cfg)
    pipe = make_augment_pipe("bgc")
    ada = AdaController(pipe, target=0.6, ada_interval=4, ada_kimg=0.1)
    nets, x = PhaseNetworks(G, D, augment_pipe=pipe), _inputs(G)
    w_means = []
    torch.manual_seed(5)
    phase_loss("Dmain", nets, cfg, x, torch.zeros([]), lambda *a: None, ada, w_means)
    torch.manual_seed(5)
    expected = G.mapping(x.z, x.c)[:, 0].mean(dim=0)
    assert len(w_means) == 1
    torch.testing.assert_close(w_means[0], expected)
    assert ada.state_dict()["sign_count"] == 4  # one sign per real image


def test_dreg_feeds_ada_and_reports_real_scores():
    """As NVIDIA's loop, whose ADA statistic collects `Loss/signs/real` from D main and D reg alike."""
    from stylegan.training.ada import AdaController
    cfg = tiny_config()
    G, D = _nets(cfg)
    pipe = torch.nn.Module()
    pipe.register_buffer("p", torch.tensor(0.0))
    ada = AdaController(pipe, target=0.6, ada_interval=1, ada_kimg=0.1)
    seen = {}
    x = _inputs(G)
    phase_loss("Dreg", PhaseNetworks(G, D), cfg, x, torch.zeros([]), lambda k, v: seen.setdefault(k, v), ada)
    logits = D(x.real_img, x.real_c).detach()
    torch.testing.assert_close(seen["Loss/scores/real"], logits)
    state = ada.state_dict()
    assert (state["sign_sum"], state["sign_count"]) == (float(logits.sign().sum()), 4.0)


def test_w_avg_follows_each_round():
    """As NVIDIA's mapping in the D pass: w_avg moves once per round, towards that round's mean w."""
    from stylegan.training.phases import Phase, run_phase
    cfg = tiny_config(style_mixing_prob=0.0)
    G, D = _nets(cfg)
    x = _inputs(G)
    rounds = [PhaseInputs(*(t[i:i + 2] for t in (x.real_img, x.real_c, x.z, x.c))) for i in (0, 2)]
    beta = G.mapping.w_avg_beta
    expected = G.mapping.w_avg.clone()
    for r in rounds:
        expected = G.mapping(r.z, r.c)[:, 0].mean(dim=0).lerp(expected, beta)
    phase = Phase("Dmain", D, torch.optim.Adam(D.parameters()), 1)
    run_phase(phase, PhaseNetworks(G, D), cfg, rounds, torch.zeros([]), lambda *a: None, contextlib.nullcontext)
    torch.testing.assert_close(G.mapping.w_avg, expected)


@pytest.mark.parametrize("name", ["Gmain", "Dmain"])
def test_phase_losses_report_finite_statistics(name):
    cfg = tiny_config(style_mixing_prob=0.9)
    G, D = _nets(cfg)
    seen = {}
    torch.manual_seed(5)
    phase_loss(name, PhaseNetworks(G, D, style_mixing_prob=0.9), cfg, _inputs(G), torch.zeros([]),
               lambda key, value: seen.setdefault(key, value))
    assert seen and all(torch.isfinite(v).all() for v in seen.values())
    assert ("Loss/G/loss" in seen) == (name == "Gmain") and ("Loss/D/loss" in seen) == (name == "Dmain")
