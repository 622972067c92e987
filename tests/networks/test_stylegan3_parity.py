"""Our StyleGAN3 G (and the shared StyleGAN2 D) reproduce NVIDIA's official outputs (tests/fixtures/sg3/README.md).

t32 is StyleGAN3-T (3x3 convolutions, separable filters, identity transform buffer), r32 is StyleGAN3-R (1x1
convolutions, radial down filters, a non-identity stored transform). Both were perturbed so every affine,
bias, w_avg and magnitude_ema is non-trivial.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stylegan.networks.discriminator import Discriminator
from stylegan.networks.layers import FullyConnectedLayer
from stylegan.networks.stylegan3 import Generator3, make_transform
from stylegan.runtime.path import FAST, apply_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sg3"
NAMES = ["t32", "r32"]
IMG_TOL = dict(atol=1e-4, rtol=1e-4)
WS_TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    folder = FIXTURES / request.param
    cfg = json.loads((folder / "config.json").read_text())
    G = Generator3(**cfg["G_kwargs"]).eval().requires_grad_(False)
    D = Discriminator(**cfg["D_kwargs"]).eval().requires_grad_(False)
    G.load_state_dict(load_file(str(folder / "G.safetensors")), strict=True)
    D.load_state_dict(load_file(str(folder / "D.safetensors")), strict=True)
    return cfg, G, D, load_file(str(folder / "io.safetensors"))


def test_parameter_counts_and_names(case):
    cfg, G, D, _ = case
    counts = cfg["num_params"]
    assert sum(p.numel() for p in G.parameters()) == counts["G"]
    assert sum(b.numel() for b in G.buffers()) == counts["G_buffers"]
    assert sum(p.numel() for p in D.parameters()) == counts["D"]
    assert sum(b.numel() for b in D.buffers()) == counts["D_buffers"]
    assert G.num_ws == cfg["num_ws"]
    assert G.synthesis.layer_names == [layer["name"] for layer in cfg["synthesis_layers"][1:]]


def test_layer_geometry_matches_official_table(case):
    cfg, G, _, _ = case
    official_input = cfg["synthesis_layers"][0]
    inp = G.synthesis.input
    assert (inp.channels, [inp.size] * 2, inp.sampling_rate, inp.bandwidth) == (
        official_input["channels"], official_input["size"], official_input["sampling_rate"], official_input["bandwidth"])
    for spec in cfg["synthesis_layers"][1:]:
        layer = getattr(G.synthesis, spec["name"])
        assert layer.is_torgb == spec["is_torgb"]
        assert layer.is_critically_sampled == spec["is_critically_sampled"]
        assert layer.use_fp16 == spec["use_fp16_declared"]
        assert (layer.in_channels, layer.out_channels) == (spec["in_channels"], spec["out_channels"])
        assert ([layer.in_size] * 2, [layer.out_size] * 2) == (spec["in_size"], spec["out_size"])
        assert (layer.in_sampling_rate, layer.out_sampling_rate, layer.tmp_sampling_rate) == (
            spec["in_sampling_rate"], spec["out_sampling_rate"], spec["tmp_sampling_rate"])
        np.testing.assert_allclose([layer.in_cutoff, layer.out_cutoff, layer.in_half_width, layer.out_half_width],
                                   [spec["in_cutoff"], spec["out_cutoff"], spec["in_half_width"],
                                    spec["out_half_width"]], rtol=1e-15)
        assert (layer.conv_kernel, layer.up_factor, layer.down_factor, layer.up_taps, layer.down_taps) == (
            spec["conv_kernel"], spec["up_factor"], spec["down_factor"], spec["up_taps"], spec["down_taps"])
        assert layer.down_radial == spec["down_radial"]
        assert layer.padding == spec["padding"]
        assert layer.conv_clamp == spec["conv_clamp"]


def test_fresh_network_has_official_buffers(case):
    """Built with the official seed, our constructor draws freqs/phases in NVIDIA's order and designs the same
    filters (scipy firwin / jinc, float64 -> float32): every stored buffer but the calibrated ones is bit-equal."""
    cfg, G, _, _ = case
    torch.manual_seed(cfg["torch_manual_seed"])
    fresh = Generator3(**cfg["G_kwargs"]).state_dict()
    stored = G.state_dict()
    checked = 0
    for key, value in stored.items():
        if key.endswith(("freqs", "phases", "up_filter", "down_filter")):
            assert torch.equal(fresh[key], value), key
            checked += 1
    assert checked == 2 + 2 * 14  # ToRGB has neither filter (identity, absent from the state dict)
    assert torch.equal(fresh["synthesis.input.transform"], torch.eye(3))


def test_fresh_network_replays_the_fixture_construction(case):
    """Replaying the fixture's RNG order (config.json rng_order: build G, build D, perturb G's parameters in
    named_parameters order, then w_avg) on our classes yields the stored weights: same registration order,
    same initialisation (incl. the input affine's zero weight and (1, 0, 0, 0) bias). Only the mapping weights
    differ, by 1 ulp: NVIDIA's SG3 layer computes randn * (1 / lr_multiplier), our shared layer (as NVIDIA's
    SG2) randn / lr_multiplier."""
    cfg, G, _, _ = case
    torch.manual_seed(cfg["torch_manual_seed"])
    fresh = Generator3(**cfg["G_kwargs"])
    Discriminator(**cfg["D_kwargs"])
    lr = {f"{name}.{p}": m.bias_gain for name, m in fresh.named_modules() if isinstance(m, FullyConnectedLayer)
          for p in ("weight", "bias")}
    with torch.no_grad():
        for name, p in fresh.named_parameters():
            p += torch.randn_like(p) * (0.2 / lr.get(name, 1.0))
        fresh.mapping.w_avg += torch.randn_like(fresh.mapping.w_avg) * 0.5
    stored = G.state_dict()
    for key, value in fresh.state_dict().items():
        if key.endswith(("magnitude_ema", "transform")):  # calibrated / set after construction
            continue
        if key.startswith("mapping.fc") and key.endswith("weight"):
            torch.testing.assert_close(value, stored[key], rtol=0, atol=1e-4)  # entries ~100, ulp 7.6e-6
        else:
            assert torch.equal(value, stored[key]), key


def test_mapping(case):
    _, G, _, io = case
    torch.testing.assert_close(G.mapping(io["z"], None), io["ws"], **WS_TOL)
    torch.testing.assert_close(G.mapping(io["z"], None, truncation_psi=0.7), io["ws_psi07"], **WS_TOL)
    torch.testing.assert_close(G.mapping(io["z"], None, truncation_psi=0.5, truncation_cutoff=2),
                               io["ws_psi05_cut2"], **WS_TOL)
    cut = int(io["mix_cutoff"])
    ws = G.mapping(io["z"], None)
    ws[:, cut:] = G.mapping(io["z2"], None)[:, cut:]
    torch.testing.assert_close(ws, io["ws_mix"], **WS_TOL)


@pytest.mark.parametrize("impl", ["fast", "fast_inplace", "reference"])
def test_synthesis(case, impl):
    _, G, _, io = case
    apply_path(G, FAST.replace(ops={"filtered_lrelu": impl}))
    try:
        with torch.no_grad():
            img = G.synthesis(io["ws"], noise_mode="const")
        torch.testing.assert_close(img, io["img_const"], **IMG_TOL)
    finally:
        apply_path(G, FAST)


def test_generator_call_and_mixing(case):
    _, G, _, io = case
    torch.testing.assert_close(G(io["z"], None, truncation_psi=0.7, noise_mode="const"), io["img_psi07"], **IMG_TOL)
    torch.testing.assert_close(G.synthesis(io["ws_mix"], noise_mode="const"), io["img_mix"], **IMG_TOL)


def test_noise_mode_is_accepted_and_ignored(case):
    _, G, _, io = case
    ws = io["ws"][:1]
    const = G.synthesis(ws, noise_mode="const")
    for mode in ("random", "none"):
        assert torch.equal(G.synthesis(ws, noise_mode=mode), const)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")


def _with_transform(G, matrix, run):
    saved = G.synthesis.input.transform.clone()
    try:
        G.synthesis.input.transform.copy_(matrix)
        return run()
    finally:
        G.synthesis.input.transform.copy_(saved)


def test_user_transforms(case):
    cfg, G, _, io = case
    img = _with_transform(G, io["transform_case_buffer"], lambda: G.synthesis(io["ws"], noise_mode="const"))
    torch.testing.assert_close(img, io["img_transform"], **IMG_TOL)
    # Zoomed in: some input frequencies exceed the bandwidth and are faded out.
    img = _with_transform(G, io["zoom_case_buffer"], lambda: G.synthesis(io["ws"], noise_mode="const"))
    torch.testing.assert_close(img, io["img_transform_zoom"], **IMG_TOL)
    if "img_identity_transform" in io:
        img = _with_transform(G, torch.eye(3), lambda: G.synthesis(io["ws"], noise_mode="const"))
        torch.testing.assert_close(img, io["img_identity_transform"], **IMG_TOL)
    # set_transform builds gen_images.py's matrix.
    case_spec = cfg["transform_cases"]["img_transform"]
    torch.testing.assert_close(make_transform(case_spec["translate"], case_spec["angle"]),
                               io["transform_case_make_transform"], atol=1e-15, rtol=0)
    saved = G.synthesis.input.transform.clone()
    try:
        G.set_transform(case_spec["translate"], case_spec["angle"])
        torch.testing.assert_close(G.synthesis.input.transform, io["transform_case_buffer"].float())
    finally:
        G.synthesis.input.transform.copy_(saved)


def test_stored_transform_is_used():
    """r32 stores a non-identity transform: ignoring the buffer would give img_identity_transform instead."""
    io = load_file(str(FIXTURES / "r32" / "io.safetensors"))
    assert (io["img_const"] - io["img_identity_transform"]).abs().max() > 0.1


def test_intermediates(case):
    _, G, D, io = case
    seen = {}
    hooks = [G.synthesis.input.affine.register_forward_hook(
        lambda m, i, out: seen.__setitem__("inter.G.synthesis.input.affine", out))]
    for name in ["input"] + G.synthesis.layer_names:
        hooks.append(getattr(G.synthesis, name).register_forward_hook(
            lambda m, i, out, key=f"inter.G.synthesis.{name}": seen.__setitem__(key, out)))
    for name in ("b32", "b16", "b8"):
        hooks.append(getattr(D, name).register_forward_hook(
            lambda m, i, out, key=f"inter.D.{name}.x": seen.__setitem__(key, out[0])))
    try:
        G.synthesis(io["ws"][:1], noise_mode="const")
        D(io["img_const"][:1], None)
    finally:
        for h in hooks:
            h.remove()
    expected = {k: v for k, v in io.items() if k.startswith("inter.")}
    assert set(expected) == set(seen)
    assert len(expected) == 2 + 15 + 3
    for key, ref in expected.items():
        ours = seen[key][:, :ref.shape[1]] if ref.ndim == 4 else seen[key]  # fixtures keep the first channels
        torch.testing.assert_close(ours, ref, **IMG_TOL, msg=lambda m, key=key: f"{key}: {m}")
    # The last layer is before output_scale.
    torch.testing.assert_close(seen[f"inter.G.synthesis.{G.synthesis.layer_names[-1]}"] * 0.25,
                               io["img_const"][:1], **IMG_TOL)


def test_discriminator_and_r1(case):
    _, _, D, io = case
    torch.testing.assert_close(D(io["img_const"], None), io["d_fake"], **IMG_TOL)
    torch.testing.assert_close(D(io["real"], None), io["d_real"], **IMG_TOL)
    real = io["real"].clone().requires_grad_(True)
    (grads,) = torch.autograd.grad(D(real, None).sum(), real, create_graph=True)
    scale = io["r1_grads"].abs().max()
    torch.testing.assert_close(grads.detach(), io["r1_grads"], atol=1e-3 * float(scale), rtol=0)
    penalty = grads.square().sum(dim=[1, 2, 3])
    torch.testing.assert_close(penalty.detach(), io["r1_penalty"], rtol=1e-3, atol=0)
    torch.testing.assert_close(penalty.mean().detach(), io["r1"], rtol=1e-3, atol=0)
