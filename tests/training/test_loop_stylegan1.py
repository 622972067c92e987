"""StyleGAN (v1) training: progressive growing through every phase, exact resume, WGAN-GP option."""
import json

import pytest
import torch

import stylegan
from stylegan.presets import with_stylegan1
from stylegan.training.checkpoint import load_checkpoint
from stylegan.training.loop import train
from stylegan.training.progressive import LodSchedule

from train_helpers import make_dataset, tiny_config, tiny_options


def v1_config(total_kimg=0.112, **overrides):
    cfg = with_stylegan1(tiny_config(total_kimg=total_kimg), 16)
    # 8x8 for 16 images, fade 16x16 in over 16 images, then 16x16: every phase within 7 steps of 8.
    cfg.progressive = LodSchedule(img_resolution=16, initial_resolution=8, lod_training_kimg=0.016,
                                  lod_transition_kimg=0.032, minibatch_base=8, G_lrate_base=0.002,
                                  D_lrate_base=0.002).to_dict()
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "blobs")


def test_progressive_growing_walks_every_phase(data, tmp_path):
    run_dir = train(tiny_options(data, tmp_path, config=v1_config(), tick_kimg=0.008))
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    lods = [s["Progress/lod"] for s in stats]
    assert lods[0] == 1.0 and lods[-1] == 0.0 and any(0 < lod < 1 for lod in lods)
    assert lods == sorted(lods, reverse=True)
    assert all("Loss/r1_penalty" in s and "Loss/pl_penalty" not in s for s in stats)
    nets = stylegan.load_network(next(run_dir.glob("network-snapshot-*")))
    G = nets["G_ema"]
    assert type(G).__name__ == "Generator1" and float(G.synthesis.lod) == 0.0
    img = G(torch.randn(2, G.z_dim), None, noise_mode="const")
    assert img.shape == (2, 1, 16, 16) and torch.isfinite(img).all()


def test_exact_resume_across_a_fade_in(data, tmp_path):
    straight = train(tiny_options(data, tmp_path / "a", config=v1_config()))
    train(tiny_options(data, tmp_path / "b", config=v1_config(total_kimg=0.032)))  # stops inside the fade-in
    resumed = train(tiny_options(data, tmp_path / "b", config=v1_config(), resume="auto"))
    a = load_checkpoint(straight / "checkpoint.safetensors")
    b = load_checkpoint(resumed / "checkpoint.safetensors")
    for role in ("G", "D", "G_ema"):
        for key, value in a["modules"][role].items():
            assert torch.equal(value, b["modules"][role][key]), f"{role}.{key}"


def test_wgan_gp_loss_trains(data, tmp_path, monkeypatch):
    """--loss wgan-gp trains D with training.wgan_gp's critic loss in every step and G with its generator loss, and
    never with the logistic losses or R1; the logged D loss is the critic loss's mean."""
    import stylegan.training.phases as phases
    from stylegan.training import losses
    calls, d_losses = [], []

    def recording(name, fn):
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            calls.append(name)
            if name == "wgan_gp_d_losses":
                d_losses.append(float(out[0].mean()))
            return out
        return call
    for name in ("wgan_gp_d_losses", "wgan_g_loss"):
        monkeypatch.setattr(phases, name, recording(name, getattr(phases, name)))
    for name in ("d_logistic_loss_fake", "g_nonsaturating_loss", "r1_penalty"):
        monkeypatch.setattr(losses, name, lambda *a: pytest.fail(f"{name} called in a WGAN-GP run"))
    run_dir = train(tiny_options(data, tmp_path, config=v1_config(total_kimg=0.024, loss="wgan-gp"),
                                 tick_kimg=0.008))
    assert calls == ["wgan_g_loss", "wgan_gp_d_losses"] * 3  # 3 steps of 8 images: G main, then Dboth
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["Loss/D/loss"] for s in stats] == pytest.approx(d_losses, rel=1e-6)
    assert all("Loss/r1_penalty" not in s for s in stats)


def test_ada_adjusts_p_in_the_combined_d_pass(data, tmp_path):
    cfg = v1_config(total_kimg=0.048, aug="ada", ada_kimg=0.1)
    run_dir = train(tiny_options(data, tmp_path, config=cfg))
    ckpt = load_checkpoint(run_dir / "checkpoint.safetensors")
    assert ckpt["state"]["ada"]["p"] > 0  # signs of D(real) from the combined pass reach the controller
