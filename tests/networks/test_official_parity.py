"""Our StyleGAN2 G and D reproduce NVIDIA's official outputs (tests/fixtures/official/README.md).

Official state dicts load by name into networks built from the official constructor kwargs; every stored
output matches within the fixture README's tolerances, on both modulated-convolution paths.
"""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stylegan.networks.discriminator import Discriminator
from stylegan.networks.stylegan2 import Generator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "official"
NAMES = ["tiny16", "cond32", "gray32_orig", "gray32_resnet"]
IMG_TOL = dict(atol=1e-4, rtol=1e-4)
WS_TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    folder = FIXTURES / request.param
    cfg = json.loads((folder / "config.json").read_text())
    G = Generator(**cfg["G_kwargs"]).eval().requires_grad_(False)
    D = Discriminator(**cfg["D_kwargs"]).eval().requires_grad_(False)
    G.load_state_dict(load_file(str(folder / "G.safetensors")), strict=True)
    D.load_state_dict(load_file(str(folder / "D.safetensors")), strict=True)
    return cfg, G, D, load_file(str(folder / "io.safetensors"))


def test_parameter_counts(case):
    cfg, G, D, _ = case
    counts = cfg["num_params"]
    assert sum(p.numel() for p in G.parameters()) == counts["G"]
    assert sum(b.numel() for b in G.buffers()) == counts["G_buffers"]
    assert sum(p.numel() for p in D.parameters()) == counts["D"]
    assert sum(b.numel() for b in D.buffers()) == counts["D_buffers"]
    assert G.num_ws == cfg["num_ws"]


def test_mapping(case):
    _, G, _, io = case
    c = io.get("c")
    torch.testing.assert_close(G.mapping(io["z"], c), io["ws"], **WS_TOL)
    torch.testing.assert_close(G.mapping(io["z"], c, truncation_psi=0.7), io["ws_psi07"], **WS_TOL)
    torch.testing.assert_close(G.mapping(io["z"], c, truncation_psi=0.5, truncation_cutoff=2), io["ws_psi05_cut2"], **WS_TOL)


@pytest.mark.parametrize("fused", [True, False])
def test_synthesis(case, fused):
    _, G, _, io = case
    torch.testing.assert_close(G.synthesis(io["ws"], noise_mode="const", fused_modconv=fused), io["img_const"], **IMG_TOL)
    torch.testing.assert_close(G.synthesis(io["ws"], noise_mode="none", fused_modconv=fused), io["img_none"], **IMG_TOL)
    torch.testing.assert_close(G.synthesis(io["ws_mix"], noise_mode="const", fused_modconv=fused), io["img_mix"], **IMG_TOL)
    img = G(io["z"], io.get("c"), truncation_psi=0.7, noise_mode="const", fused_modconv=fused)
    torch.testing.assert_close(img, io["img_psi07"], **IMG_TOL)


def test_style_mixing_latents(case):
    _, G, _, io = case
    cut = int(io["mix_cutoff"])
    ws = G.mapping(io["z"], io.get("c"))
    ws[:, cut:] = G.mapping(io["z2"], io.get("c"))[:, cut:]
    torch.testing.assert_close(ws, io["ws_mix"], **WS_TOL)


def test_block_intermediates(case):
    _, G, D, io = case
    seen = {}
    hooks = []
    for prefix, net in [("inter.G.", G), ("inter.D.", D)]:
        for name, mod in net.named_modules():
            if f"{prefix}{name}.x" in io or f"{prefix}{name}.img" in io:
                hooks.append(mod.register_forward_hook(
                    lambda m, i, out, key=prefix + name: seen.__setitem__(key, out)))
    G.synthesis(io["ws"], noise_mode="const")
    D(io["img_const"], io.get("c"))
    for h in hooks:
        h.remove()
    expected = [k for k in io if k.startswith("inter.")]
    assert expected
    for key in expected:
        base, which = key.rsplit(".", 1)
        x, img = seen[base]
        out = x if which == "x" else img
        torch.testing.assert_close(out[:1], io[key], **IMG_TOL, msg=lambda m: f"{key}: {m}")


def test_discriminator_and_r1(case):
    _, _, D, io = case
    c = io.get("c")
    torch.testing.assert_close(D(io["img_const"], c), io["d_fake"], **IMG_TOL)
    real = io["real"].clone().requires_grad_(True)
    logits = D(real, c)
    torch.testing.assert_close(logits, io["d_real"], **IMG_TOL)
    (grads,) = torch.autograd.grad(logits.sum(), real)
    torch.testing.assert_close(grads, io["r1_grads"], atol=1e-4, rtol=1e-3)
    penalty = grads.square().sum(dim=[1, 2, 3])
    torch.testing.assert_close(penalty, io["r1_penalty"], atol=1e-6, rtol=1e-3)
    torch.testing.assert_close(penalty.mean(), io["r1"], atol=1e-6, rtol=1e-3)


def test_conditional_cmap():
    folder = FIXTURES / "cond32"
    cfg = json.loads((folder / "config.json").read_text())
    D = Discriminator(**cfg["D_kwargs"]).eval()
    D.load_state_dict(load_file(str(folder / "D.safetensors")))
    io = load_file(str(folder / "io.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(D.mapping(None, io["c"]), io["D_cmap"], **IMG_TOL)


def test_reference_resampling_path_matches_too(case):
    # The plain reference resampling (upsample, filter, convolve at full resolution) gives the same networks.
    import copy
    from stylegan.runtime.path import FAST, apply_path
    _, G, D, io = case
    reference_resampling = FAST.replace(ops={"conv2d_resample": "reference"})
    G_ref, D_ref = (apply_path(copy.deepcopy(m), reference_resampling) for m in (G, D))
    assert all(m.conv2d_resample_impl == "reference" for m in G_ref.modules() if hasattr(m, "conv2d_resample_impl"))
    torch.testing.assert_close(G_ref.synthesis(io["ws"], noise_mode="const"), io["img_const"], **IMG_TOL)
    torch.testing.assert_close(D_ref(io["img_const"], io.get("c")), io["d_fake"], **IMG_TOL)
