"""StyleGAN3 training: the D blur against its formula, the presets against NVIDIA's train.py, the magnitude EMAs
training, exact resume, and `stylegan train --cfg stylegan3-t / stylegan3-r` end to end on tiny networks."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

import stylegan
from stylegan.cli.main import run
from stylegan.errors import UserInputError
from stylegan.presets import resolve_preset, stylegan3_batch
from stylegan.training.blur import blur_filter, blur_images, blur_radius, blur_sigma
from stylegan.training.checkpoint import load_checkpoint
from stylegan.training.loop import train

from train_helpers import assert_same_training_state, make_dataset, tiny_options


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "blobs")


def tiny_stylegan3(name="stylegan3-t", **overrides):
    """The preset with a tiny network: 16 channels, 16-d latents, float32; the rest as train.py sets it."""
    cfg = resolve_preset(name, 16)
    net = cfg.network
    net.z_dim = net.w_dim = 16
    net.channel_base, net.channel_max, net.num_fp16_res = 256, 16, 0
    stylegan3_batch(cfg, 8)
    cfg.r1_gamma, cfg.ada_kimg, cfg.total_kimg = 1.0, 0.1, 0.016
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


# ----------------------------------------------------------------------------------------------------------
# The D blur


def test_blur_schedule_is_the_formula():
    # sigma = max(1 - cur_nimg / (fade_kimg * 1e3), 0) * init_sigma
    for nimg, expected in [(0, 10.0), (50_000, 7.5), (100_000, 5.0), (199_968, 10 * 32 / 200_000), (200_000, 0.0),
                           (10 ** 7, 0.0)]:
        assert blur_sigma(nimg, 10.0, 200.0) == pytest.approx(expected, abs=1e-12)
    assert blur_sigma(0, 10.0, 0.0) == 0.0  # no fade, no blur (StyleGAN3-T, StyleGAN2)
    assert blur_sigma(0, 0.0, 200.0) == 0.0


def test_blur_filter_is_the_formula():
    for sigma in (10.0, 2.5, 0.7, 1 / 3):
        radius = math.floor(3 * sigma)  # floor, as NVIDIA's loss (not ceil)
        assert blur_radius(sigma) == radius
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        expected = 2 ** (-(x / sigma) ** 2)  # base 2, as NVIDIA's exp2
        expected /= expected.sum()
        taps = blur_filter(sigma)
        assert taps.dtype == torch.float32 and taps.shape == (2 * radius + 1,)
        torch.testing.assert_close(taps.double(), expected, rtol=0, atol=1e-7)
    assert blur_filter(10.0).shape == (61,)
    torch.testing.assert_close(blur_filter(0.5), torch.tensor([1 / 18, 16 / 18, 1 / 18]))  # [2^-4, 1, 2^-4] / 1.125
    assert blur_radius(0.33) == 0 and blur_radius(0.0) == 0


def test_blur_images_is_a_zero_padded_separable_convolution():
    torch.manual_seed(0)
    img = torch.randn(2, 3, 16, 16)
    for sigma in (0.5, 1.7, 10.0):
        f = blur_filter(sigma).double()
        kernel = torch.outer(f, f)[None, None].repeat(3, 1, 1, 1)
        r = blur_radius(sigma)
        expected = F.conv2d(F.pad(img.double(), [r, r, r, r]), kernel, groups=3)
        out = blur_images(img, sigma)
        assert out.shape == img.shape and out.dtype == torch.float32
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-6)
    # an impulse in the middle spreads into the 2-D kernel
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[0, 0, 4, 4] = 1
    torch.testing.assert_close(blur_images(impulse, 1.0)[0, 0, 1:8, 1:8], torch.outer(blur_filter(1.0), blur_filter(1.0)))
    assert blur_images(img, 0.3) is img and blur_images(img, 0.0) is img  # radius 0: untouched


# ----------------------------------------------------------------------------------------------------------
# Presets and flags against train.py


def test_presets_follow_train_py():
    t, r = resolve_preset("stylegan3-t", 256), resolve_preset("stylegan3-r", 256)
    for cfg in (t, r):
        assert cfg.network.arch == "stylegan3" and cfg.network.map_depth == 2 and cfg.batch_size == 32
        assert cfg.pl_weight == 0 and cfg.style_mixing_prob == 0 and cfg.g_reg_interval is None
        assert cfg.d_reg_interval == 16 and cfg.g_lr == 0.0025 and cfg.d_lr == 0.002 and cfg.ema_kimg == 10.0
        assert cfg.network.magnitude_ema_beta == 0.5 ** (32 / 20000) and cfg.aug == "ada"
    assert (t.network.conv_kernel, t.network.use_radial_filters, t.network.g_channel_mult) == (3, False, 1)
    assert (r.network.conv_kernel, r.network.use_radial_filters, r.network.g_channel_mult) == (1, True, 2)
    assert (t.blur_init_sigma, t.blur_fade_kimg) == (0.0, 0.0)
    assert (r.blur_init_sigma, r.blur_fade_kimg) == (10.0, 200.0)
    stylegan3_batch(r, 64)
    assert (r.batch_size, r.ema_kimg, r.blur_fade_kimg) == (64, 20.0, 400.0)
    assert r.network.magnitude_ema_beta == 0.5 ** (64 / 20000)
    G_kwargs = r.network.generator_kwargs(256, 3, 0)
    assert (G_kwargs["channel_base"], G_kwargs["channel_max"]) == (65536, 1024)  # doubled for G only
    assert r.network.discriminator_kwargs(256, 3, 0)["channel_base"] == 32768


def _dry_run(capsys, data, tmp_path, *flags):
    code = run(["train", "--data", str(data), "--outdir", str(tmp_path), "--dry-run", *flags])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)["config"]


def test_batch_and_blur_flags(data, tmp_path, capsys):
    cfg = _dry_run(capsys, data, tmp_path, "--cfg=stylegan3-r", "--batch=16", "--gamma=2")
    assert (cfg["blur_init_sigma"], cfg["blur_fade_kimg"], cfg["ema_kimg"], cfg["r1_gamma"]) == (10.0, 100.0, 5.0, 2.0)
    assert cfg["network"]["magnitude_ema_beta"] == 0.5 ** (16 / 20000) and cfg["g_reg_interval"] is None
    cfg = _dry_run(capsys, data, tmp_path, "--cfg=stylegan3-t", "--batch=8", "--blur-sigma=3")
    assert (cfg["blur_init_sigma"], cfg["blur_fade_kimg"]) == (3.0, 50.0)
    cfg = _dry_run(capsys, data, tmp_path, "--cfg=stylegan3-r", "--blur-fade-kimg=7", "--blur-sigma=0")
    assert (cfg["blur_init_sigma"], cfg["blur_fade_kimg"]) == (0.0, 7.0)
    assert run(["train", "--data", str(data), "--outdir", str(tmp_path), "--cfg=stylegan3-r", "--arch=stylegan1"]) == 2
    assert "does not combine with --cfg stylegan3-r" in capsys.readouterr().err
    cfg = _dry_run(capsys, data, tmp_path, "--cfg=stylegan2", "--batch=8")
    assert (cfg["blur_init_sigma"], cfg["blur_fade_kimg"], cfg["network"]["magnitude_ema_beta"]) == (0.0, 0.0, 0.999)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------------
# Training


def test_exact_resume(data, tmp_path):
    """3 steps + stop + 3 steps == 6 steps, bit for bit: weights, Adam moments, magnitude EMAs, w_avg, ADA p, with
    the blur fading during the run (its position comes from the image counter) and R1 every 2 steps."""
    def cfg(kimg):
        return tiny_stylegan3(total_kimg=kimg, blur_init_sigma=2.0, blur_fade_kimg=0.048, d_reg_interval=2,
                              ada_kimg=0.02)
    straight = train(tiny_options(data, tmp_path / "a", config=cfg(0.048)))
    first = train(tiny_options(data, tmp_path / "b", config=cfg(0.024)))
    resumed = train(tiny_options(data, tmp_path / "b", config=cfg(0.048), resume="auto"))
    assert resumed == first
    a, b = load_checkpoint(straight / "checkpoint.safetensors"), load_checkpoint(resumed / "checkpoint.safetensors")
    assert a["state"]["cur_nimg"] == b["state"]["cur_nimg"] == 48 and a["state"]["step"] == 6
    assert a["state"]["ada"] == b["state"]["ada"]
    emas = [k for k in a["modules"]["G"] if k.endswith("magnitude_ema")]
    assert len(emas) == 15  # 14 layers + ToRGB
    assert all(float(a["modules"]["G"][k]) != 1.0 for k in emas)
    assert_same_training_state(a, b)
    # G has no lazy regularisation in StyleGAN3: its Adam runs at the preset's lr and betas, unscaled
    group = a["optimizers"]["G"]["param_groups"][0]
    assert group["lr"] == 0.0025 and list(group["betas"]) == [0.0, 0.99]


def test_magnitude_emas_update_only_in_the_d_pass(data, tmp_path, monkeypatch):
    """As NVIDIA's StyleGAN2Loss: update_emas=True exactly in the generator pass of D main, once per step; the
    EMA then equals beta-lerps of the mean square of each layer's input."""
    from stylegan.networks.stylegan3 import SynthesisLayer3
    calls, inputs = [], []
    original = SynthesisLayer3.forward

    def spy(self, x, w, update_emas=False, **kwargs):
        if self.is_torgb:
            calls.append(update_emas)
            if update_emas:
                inputs.append(x.detach().square().mean())
        return original(self, x, w, update_emas=update_emas, **kwargs)
    monkeypatch.setattr(SynthesisLayer3, "forward", spy)
    cfg = tiny_stylegan3(total_kimg=0.024, aug="noaug")
    run_dir = train(tiny_options(data, tmp_path, config=cfg))
    assert calls == [False, True] * 3  # per step: G main (no update), D main (update)
    expected = torch.tensor(1.0)
    for m in inputs:
        expected = m.lerp(expected, cfg.network.magnitude_ema_beta)
    G = load_checkpoint(run_dir / "checkpoint.safetensors")["modules"]["G"]
    torch.testing.assert_close(G["synthesis.L14_16_1.magnitude_ema"], expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ["stylegan3-t", "stylegan3-r"])
def test_cli_trains_loads_and_generates(data, tmp_path, capsys, monkeypatch, name):
    import stylegan.training.phases as phases
    sigmas = []

    def record_blur(img, sigma):
        sigmas.append(sigma)
        return blur_images(img, sigma)
    monkeypatch.setattr(phases, "blur_images", record_blur)
    code = run(["train", f"--cfg={name}", "--data", str(data), "--outdir", str(tmp_path / "runs"), "--gpus=1",
                "--batch=8", "--gamma=1", "--cbase=256", "--cmax=16", "--kimg=0.016", "--tick=0.016", "--snap=1",
                "--workers=0", "--no-progress", "--metrics=none"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    run_dir = next((tmp_path / "runs").iterdir())
    options = json.loads((run_dir / "training_options.json").read_text())["config"]
    fade = 8 * 200 / 32 if name == "stylegan3-r" else 0.0
    assert options["blur_fade_kimg"] == fade and options["network"]["magnitude_ema_beta"] == 0.5 ** (8 / 20000)
    # every D call of the two steps: G main (1), D main (2), R1 at step 0 (1); sigma from the image counter
    expected = [blur_sigma(n, options["blur_init_sigma"], fade) for n in (0,) * 4 + (8,) * 3]
    assert sigmas == expected
    if name == "stylegan3-r":
        assert sigmas[0] == 10.0 and sigmas[-1] == pytest.approx(10 * (1 - 8 / 50_000))

    snapshot = run_dir / "network-snapshot-000000.safetensors"
    nets = stylegan.load_network(snapshot)
    G, G_ema = nets["G"], nets["G_ema"]
    for net in (G, G_ema):
        emas = torch.stack([b for n, b in net.named_buffers() if n.endswith("magnitude_ema")])
        assert len(emas) == 15 and (emas != 1).all()  # every layer's EMA moved from its initial 1
        assert net.mapping.w_avg.abs().max() > 0  # w_avg moved from zero
    assert torch.equal(emas, torch.stack([b for n, b in G.named_buffers() if n.endswith("magnitude_ema")]))
    layer = getattr(G.synthesis, G.synthesis.layer_names[1])
    assert G.synthesis.input.weight.shape[0] == (32 if name == "stylegan3-r" else 16)  # R doubles G's channels
    assert layer.weight.shape[-1] == (1 if name == "stylegan3-r" else 3) and layer.down_radial == (name == "stylegan3-r")

    code = run(["generate", "--network", str(snapshot), "--seeds", "0-1", "--outdir", str(tmp_path / "gen")])
    assert code == 0, capsys.readouterr().err
    from PIL import Image
    images = sorted((tmp_path / "gen").glob("*.png"))
    assert len(images) == 2 and Image.open(images[0]).size == (16, 16)


def test_channels_last_refused_in_one_line(data, tmp_path, capsys):
    with pytest.raises(UserInputError, match="StyleGAN3 generators"):
        train(tiny_options(data, tmp_path, config=tiny_stylegan3(), channels_last=True))
    code = run(["train", "--cfg=stylegan3-t", "--data", str(data), "--outdir", str(tmp_path), "--nhwc=1",
                "--cbase=256", "--cmax=16", "--batch=8", "--kimg=0.008", "--workers=0", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--channels-last" in err


def test_compiled_passes_train_like_eager(data, tmp_path, monkeypatch):
    """--compile with StyleGAN3: the G main and D main passes (the latter updating the magnitude EMAs inside the
    graph) captured as graphs with eager kernels reproduce eager training bit for bit."""
    from safetensors.torch import load_file
    from train_helpers import capture_compiles
    config = tiny_stylegan3(total_kimg=0.016, blur_init_sigma=2.0, blur_fade_kimg=0.1)
    eager = load_file(train(tiny_options(data, tmp_path / "eager", config=config)) / "checkpoint.safetensors")
    compiled, graph_runs = capture_compiles(monkeypatch)
    run_dir = train(tiny_options(data, tmp_path / "compiled", config=config, compile="default"))
    graphs = load_file(run_dir / "checkpoint.safetensors")
    assert sorted(compiled) == [("Discriminator", "default"), ("MappingNetwork", "default"),
                                ("SynthesisNetwork3", "default")]
    assert len(graph_runs) >= 2 * 6  # 2 steps x (G main: mapping, synthesis, D; D main: mapping, synthesis, D x2)
    assert eager.keys() == graphs.keys()
    for key in eager:
        assert torch.equal(eager[key], graphs[key]), key
    assert float(graphs["net.G.synthesis.L0_36_16.magnitude_ema"]) != 1.0


def _distributed_worker(rank, world, port, data, outdir, config):
    import os
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(tiny_options(data, outdir, config=config))
    torch.distributed.destroy_process_group()


def test_two_processes_match_one(data, tmp_path):
    """One step on two gloo processes (as torchrun / --gpus 2) equals one process: the magnitude EMAs, averaged
    over the ranks after the D pass, equal the single process's; so do weights and w_avg (float rounding)."""
    import socket
    import torch.multiprocessing as mp
    # No per-process randomness (augmentation), a smooth first Adam step (large eps), no minibatch stddev (its
    # groups depend on how the batch is split): see tests/training/test_distributed.py.
    config = tiny_stylegan3(total_kimg=0.008, aug="noaug", eps=1.0, blur_init_sigma=2.0, blur_fade_kimg=0.1)
    config.network.mbstd_num_channels = 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_distributed_worker, args=(2, port, data, tmp_path / "dist", config), nprocs=2, join=True)
    single = train(tiny_options(data, tmp_path / "single", config=config))
    a = load_checkpoint(next((tmp_path / "dist").iterdir()) / "checkpoint.safetensors")
    b = load_checkpoint(single / "checkpoint.safetensors")
    assert a["state"]["cur_nimg"] == b["state"]["cur_nimg"] == 8
    emas = [k for k in a["modules"]["G"] if k.endswith("magnitude_ema")]
    assert len(emas) == 15 and all(float(a["modules"]["G"][k]) != 1.0 for k in emas)
    for role in ("G", "D", "G_ema"):
        for key, value in a["modules"][role].items():
            torch.testing.assert_close(value, b["modules"][role][key], atol=1e-6, rtol=1e-5, msg=f"{role}.{key}")


def test_reference_ops_path(data, tmp_path, monkeypatch):
    """--resample reference also puts every StyleGAN3 layer on the plain filtered_lrelu."""
    import stylegan.networks.stylegan3 as sg3
    impls = []
    original = sg3.filtered_lrelu

    def record(*args, impl="fast", **kwargs):
        impls.append(impl)
        return original(*args, impl=impl, **kwargs)
    monkeypatch.setattr(sg3, "filtered_lrelu", record)
    train(tiny_options(data, tmp_path, config=tiny_stylegan3(total_kimg=0.008), resample="reference"))
    assert len(impls) == 2 * 15 and set(impls) == {"reference"}  # G main and D main passes, 15 layers each
