"""StyleGAN (v1) generator and discriminator: shapes, noise, truncation, mixing, fade-in, gradients, size."""
import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan.networks.stylegan1 import (Generator1, SynthesisLayer1, adain, official_layer_param_counts,
                                         official_parameter_count)
from stylegan.networks.stylegan1_discriminator import Discriminator1
from stylegan.training.progressive import lod_images

SMALL = dict(fmap_base=64, fmap_max=16)


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny convolutions run far faster on one thread than on a contended pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)  # 16, 16, 8, 4, 2 feature maps at 4, 8, 16, 32, 64


def make_g(res=32, c_dim=0, seed=0, **kwargs):
    torch.manual_seed(seed)
    kw = dict(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=res, img_channels=3, **SMALL)
    kw.update(kwargs)
    return Generator1(**kw)


def make_d(res=32, c_dim=0, seed=1, **kwargs):
    torch.manual_seed(seed)
    return Discriminator1(c_dim=c_dim, img_resolution=res, img_channels=3, **SMALL, **kwargs)


def randomize_noise_strengths(G):
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, SynthesisLayer1) and m.use_noise:
                m.noise_strength.normal_()


def one_hot(n, c_dim):
    return F.one_hot(torch.arange(n) % c_dim, c_dim).float()


@pytest.fixture(scope="module")
def G32():
    G = make_g(32)
    randomize_noise_strengths(G)
    return G.eval()


@pytest.fixture(scope="module")
def D32():
    return make_d(32).eval()


# --- shapes and calling convention --------------------------------------------------------------------------


@pytest.mark.parametrize("res,c_dim", [(4, 0), (8, 3), (32, 0), (64, 5)])
def test_shapes(res, c_dim):
    G, D = make_g(res, c_dim), make_d(res, c_dim)
    n = 4
    z = torch.randn(n, G.z_dim)
    c = one_hot(n, c_dim) if c_dim else None
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels) == (16, c_dim, 16, res, 3)
    assert G.num_ws == 2 * (int(math.log2(res)) - 1)
    ws = G.mapping(z, c)
    assert ws.shape == (n, G.num_ws, G.w_dim)
    img = G(z, c)
    assert img.shape == (n, 3, res, res)
    assert torch.equal(G.synthesis(ws, noise_mode="const"), G(z, c, noise_mode="const"))
    assert D(img, c).shape == (n, 1)
    max_lod = int(math.log2(res)) - 2
    for lod in [max_lod, max_lod / 2]:
        assert G(z, c, lod=lod).shape == (n, 3, res, res)
        small = G(z, c, lod=lod, full_resolution=False)
        assert small.shape[-1] == res >> int(math.floor(lod))
        assert D(small, c, lod=lod).shape == (n, 1)


def test_constructor_kwargs_survive_json():
    kwargs = dict(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, img_channels=1,
                  mapping_kwargs=dict(num_layers=2, lr_multiplier=0.01), truncation_cutoff=4, fmap_base=32,
                  fmap_max=8, use_noise=True, blur_filter=(1, 2, 1))
    G = Generator1(**json.loads(json.dumps(kwargs)))
    assert G.mapping.num_layers == 2 and G.num_ws == 6
    D = Discriminator1(**json.loads(json.dumps(dict(c_dim=2, img_resolution=16, img_channels=1, fmap_base=32,
                                                    blur_filter=[1, 2, 1], mbstd_group_size=2))))
    assert D(G(torch.randn(2, 8), one_hot(2, 2)), one_hot(2, 2)).shape == (2, 1)


def test_bad_inputs(G32, D32):
    with pytest.raises(ValueError, match="power of two"):
        make_g(48)
    with pytest.raises(ValueError, match="power of two"):
        make_d(2)
    z = torch.randn(2, 16)
    with pytest.raises(ValueError, match="lod"):
        G32(z, lod=3.5)
    with pytest.raises(ValueError, match="lod"):
        G32.set_lod(-0.1)
    with pytest.raises(ValueError, match="noise_mode"):
        G32(z, noise_mode="fixed")
    with pytest.raises(ValueError, match="resolution"):
        D32(torch.randn(2, 3, 8, 8), lod=1)  # at lod 1 D needs at least 16x16
    with pytest.raises(AssertionError):
        G32.synthesis(torch.randn(2, G32.num_ws - 1, 16))


# --- AdaIN and noise ----------------------------------------------------------------------------------------


def test_adain_sets_channel_statistics():
    x = torch.randn(3, 5, 8, 8) * 4 + 2
    style = torch.randn(3, 10)
    y = adain(x, style)
    scale, bias = style[:, :5], style[:, 5:]
    torch.testing.assert_close(y.mean(dim=[2, 3]), bias, atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=[2, 3], unbiased=False), (1 + scale).abs(), atol=1e-4, rtol=1e-4)


def test_noise_modes(G32):
    ws = G32.mapping(torch.randn(2, 16), None)
    const = G32.synthesis(ws, noise_mode="const")
    assert torch.equal(const, G32.synthesis(ws, noise_mode="const"))
    none = G32.synthesis(ws, noise_mode="none")
    assert torch.equal(none, G32.synthesis(ws, noise_mode="none"))
    assert not torch.allclose(const, none)
    torch.manual_seed(5)
    r1 = G32.synthesis(ws, noise_mode="random")
    r2 = G32.synthesis(ws, noise_mode="random")
    torch.manual_seed(5)
    assert torch.equal(r1, G32.synthesis(ws, noise_mode="random"))
    assert not torch.allclose(r1, r2) and not torch.allclose(r1, const)
    # One constant noise buffer per layer, at the layer's resolution; strengths are per channel.
    layers = [m for m in G32.modules() if isinstance(m, SynthesisLayer1)]
    assert len(layers) == G32.num_ws
    for layer in layers:
        assert layer.noise_const.shape == (layer.resolution, layer.resolution)
        assert layer.noise_strength.shape == (layer.out_channels,)
        assert "noise_const" in dict(layer.named_buffers())


def test_noise_strengths_scale_each_channel():
    G = make_g(8).eval()
    ws = G.mapping(torch.randn(2, 16), None)
    base = G.synthesis(ws, noise_mode="const")
    with torch.no_grad():
        G.synthesis.b8.layer1.noise_strength[3] = 1.0  # one channel of the last layer
    assert not torch.equal(base, G.synthesis(ws, noise_mode="const"))
    assert torch.equal(base, G.synthesis(ws, noise_mode="none"))  # strength only matters with noise
    assert not any("noise_const" in name for name, _ in make_g(8, use_noise=False).named_buffers())


# --- truncation and style mixing ----------------------------------------------------------------------------


def test_truncation_default_cutoff_is_eight_layers():
    G = make_g(64)  # 10 layers
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    z = torch.randn(3, 16)
    ws = G.mapping(z, None)
    wt = G.mapping(z, None, truncation_psi=0.5)
    torch.testing.assert_close(wt[:, :8], G.mapping.w_avg.lerp(ws[:, :8], 0.5))
    assert torch.equal(wt[:, 8:], ws[:, 8:])
    all_layers = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=G.num_ws)
    torch.testing.assert_close(all_layers, G.mapping.w_avg.lerp(ws, 0.5))
    cut2 = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.equal(cut2[:, 2:], ws[:, 2:]) and not torch.allclose(cut2[:, :2], ws[:, :2])
    assert torch.equal(G.mapping(z, None, truncation_psi=1), ws)
    # G(...) and G.synthesis(G.mapping(...)) agree on the default cutoff.
    img = G(z, None, truncation_psi=0.5, noise_mode="const")
    assert torch.equal(img, G.synthesis(wt, noise_mode="const"))
    psi0 = G(z, None, truncation_psi=0, truncation_cutoff=G.num_ws, noise_mode="none")
    torch.testing.assert_close(psi0[0], psi0[1])  # every sample collapses to w_avg's image


def test_update_emas_tracks_w_avg():
    G = make_g(8)
    before = G.mapping.w_avg.clone()
    G(torch.randn(4, 16), None)
    assert torch.equal(G.mapping.w_avg, before)
    G(torch.randn(4, 16), None, update_emas=True)
    assert not torch.equal(G.mapping.w_avg, before)


def test_each_layer_reads_its_own_w(G32):
    """Mixing at cutoff k: layers < k are styled by the first latent, layers >= k by the second."""
    ws1 = G32.mapping(torch.randn(2, 16), None)
    ws2 = G32.mapping(torch.randn(2, 16), None)
    layers = [m for m in G32.synthesis.modules() if isinstance(m, SynthesisLayer1)]
    for cutoff in [1, 3, 6]:
        mixed = torch.cat([ws1[:, :cutoff], ws2[:, cutoff:]], dim=1)
        seen = []
        hooks = [layer.style.register_forward_hook(lambda mod, inp, out: seen.append(inp[0])) for layer in layers]
        try:
            G32.synthesis(mixed, noise_mode="const")
        finally:
            for h in hooks:
                h.remove()
        assert len(seen) == G32.num_ws
        for idx, w in enumerate(seen):
            assert torch.equal(w, (ws1 if idx < cutoff else ws2)[:, idx])


def test_mixing_inactive_layers_changes_nothing(G32):
    ws1 = G32.mapping(torch.randn(2, 16), None)
    ws2 = G32.mapping(torch.randn(2, 16), None)
    for lod in [0, 1, 2, 3]:
        active = G32.synthesis.num_active_ws(lod)
        mixed = torch.cat([ws1[:, :active], ws2[:, active:]], dim=1)
        assert torch.equal(G32.synthesis(ws1, "const", lod=lod), G32.synthesis(mixed, "const", lod=lod))
        if active < G32.num_ws:  # mixing one layer earlier does change the image
            earlier = torch.cat([ws1[:, :active - 1], ws2[:, active - 1:]], dim=1)
            assert not torch.allclose(G32.synthesis(ws1, "const", lod=lod), G32.synthesis(earlier, "const", lod=lod))


# --- progressive fade-in ------------------------------------------------------------------------------------


def test_fade_in_starts_from_upsampled_lower_resolution(G32):
    ws = G32.mapping(torch.randn(2, 16), None)
    for level in range(G32.synthesis.max_lod):  # fading in resolution 32 >> level
        coarse_lod = level + 1
        coarse = G32.synthesis(ws, "const", lod=coarse_lod)
        coarse_small = G32.synthesis(ws, "const", lod=coarse_lod, full_resolution=False)
        # Lower-resolution output reaches full size by nearest-neighbour upsampling (the TF release's upscale2d).
        assert coarse_small.shape[-1] == 32 >> coarse_lod
        factor = 2 ** coarse_lod
        assert torch.equal(coarse, coarse_small.repeat_interleave(factor, 2).repeat_interleave(factor, 3))
        start = G32.synthesis(ws, "const", lod=coarse_lod - 1e-6)
        torch.testing.assert_close(start, coarse, atol=1e-5 * coarse.abs().max().item(), rtol=0)
        # Linear alpha blend between the two levels.
        fine = G32.synthesis(ws, "const", lod=level)
        mid = G32.synthesis(ws, "const", lod=level + 0.25)
        torch.testing.assert_close(mid, 0.75 * fine + 0.25 * coarse, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(fine, coarse)


def test_lod_buffer_drives_forward_and_is_saved():
    G = make_g(16).eval()
    ws = G.mapping(torch.randn(2, 16), None)
    G.set_lod(1.5)
    assert torch.equal(G.synthesis(ws, "const"), G.synthesis(ws, "const", lod=1.5))
    assert G.synthesis.lod.item() == 1.5
    G2 = make_g(16, seed=0)
    G2.load_state_dict(G.state_dict())
    assert G2.synthesis.lod.item() == 1.5
    D = make_d(16)
    D.set_lod(0.5)
    img = torch.randn(4, 3, 16, 16)
    assert torch.equal(D(img), D(img, lod=0.5))
    assert "lod" in D.state_dict()


def _perturbed(module, names):
    module = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if any(name.startswith(n) for n in names):
                p.add_(torch.randn_like(p))
    return module


def test_integer_lod_uses_only_current_resolution(G32, D32):
    ws = G32.mapping(torch.randn(2, 16), None)
    img = torch.randn(4, 3, 32, 32)
    for lod in [0, 1, 2, 3]:
        cur = 32 >> lod
        finer_g = [f"synthesis.b{r}." for r in G32.synthesis.block_resolutions if r > cur]
        coarser_rgb = [f"synthesis.b{r}.torgb" for r in G32.synthesis.block_resolutions if r < cur]
        ref = G32.synthesis(ws, "const", lod=lod)
        assert torch.equal(ref, _perturbed(G32, finer_g + coarser_rgb).synthesis(ws, "const", lod=lod))
        assert not torch.allclose(ref, _perturbed(G32, [f"synthesis.b{cur}.torgb"]).synthesis(ws, "const", lod=lod))
        finer_d = [f"b{r}." for r in D32.block_resolutions if r > cur]
        coarser_fromrgb = [f"b{r}.fromrgb" for r in D32.block_resolutions + [4] if r < cur]
        score = D32(img, lod=lod)
        assert torch.equal(score, _perturbed(D32, finer_d + coarser_fromrgb)(img, lod=lod))
        if lod < 3:  # the next coarser fromRGB only joins during the fade-in
            coarser = f"b{cur // 2}.fromrgb"
            assert not torch.allclose(D32(img, lod=lod + 0.5), _perturbed(D32, [coarser])(img, lod=lod + 0.5))


def test_discriminator_fade_in_and_input_resolution(D32):
    img = torch.randn(4, 3, 32, 32)
    for level in range(D32.max_lod):
        coarse_lod = level + 1
        torch.testing.assert_close(D32(img, lod=coarse_lod - 1e-6), D32(img, lod=coarse_lod), atol=1e-5, rtol=0)
        for lod in [level, level + 0.5]:
            # Full-size reals faded to `lod` score the same as the same reals at the current resolution.
            full, small = lod_images(img, lod), lod_images(img, lod, full_resolution=False)
            torch.testing.assert_close(D32(full, lod=lod), D32(small, lod=lod), atol=1e-5, rtol=1e-5)
        # At an integer lod D sees only the box-downsampled image.
        blocky = F.interpolate(F.avg_pool2d(img, 2 ** level), scale_factor=2 ** level, mode="nearest")
        torch.testing.assert_close(D32(img, lod=level), D32(blocky, lod=level), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(D32(img, lod=0), D32(img, lod=0.5))


# --- gradients ----------------------------------------------------------------------------------------------


def _params_with_grad(module):
    return {name for name, p in module.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def _step(G, D, lod, c_dim):
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    c = one_hot(4, c_dim)
    loss = -D(G(torch.randn(4, G.z_dim), c, lod=lod), c, lod=lod).mean()  # a fake loss
    loss.backward()
    for p in list(G.parameters()) + list(D.parameters()):
        assert p.grad is None or torch.isfinite(p.grad).all()
    return _params_with_grad(G), _params_with_grad(D)


def test_gradient_reaches_every_parameter():
    G, D = make_g(16, c_dim=3).train(), make_d(16, c_dim=3).train()
    g_all = {n for n, _ in G.named_parameters()}
    d_all = {n for n, _ in D.named_parameters()}
    g0, d0 = _step(G, D, 0, 3)
    # At lod 0 only the coarser toRGB / fromRGB layers are idle.
    assert g_all - g0 == {f"synthesis.b{r}.torgb.{k}" for r in (4, 8) for k in ("weight", "bias")}
    assert d_all - d0 == {f"b{r}.fromrgb.{k}" for r in (4, 8) for k in ("weight", "bias")}
    g_seen, d_seen = set(g0), set(d0)
    for lod in [0.5, 1.5, 2]:
        g, d = _step(G, D, lod, 3)
        g_seen |= g
        d_seen |= d
    assert g_seen == g_all and d_seen == d_all


@pytest.mark.parametrize("lod", [0, 0.5, 2])
def test_double_backward_through_discriminator(lod):
    D = make_d(16, c_dim=2)
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    c = one_hot(4, 2)
    (grad,) = torch.autograd.grad(D(img, c, lod=lod).sum(), img, create_graph=True)
    r1 = grad.square().sum(dim=[1, 2, 3]).mean()  # R1 (Mescheder et al. 2018)
    r1.backward()
    grads = {n: p.grad for n, p in D.named_parameters() if p.grad is not None}
    assert grads and all(torch.isfinite(g).all() for g in grads.values())
    assert D.b4.conv.weight.grad.abs().sum() > 0 and D.b4.fc.weight.grad.abs().sum() > 0


# --- size of the official network ---------------------------------------------------------------------------


def test_official_ffhq_parameter_count():
    with torch.device("meta"):
        G = Generator1(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3)
    assert official_parameter_count(G) == 26_219_627
    # Every trainable parameter is in the official table, and no buffer is.
    assert official_parameter_count(G) == sum(p.numel() for p in G.parameters())
    counts = official_layer_param_counts(G)
    assert len(counts) == 8 + G.num_ws + 9  # mapping dense layers, synthesis layers, toRGBs
    buffers = dict(G.named_buffers())
    assert {"mapping.w_avg", "synthesis.lod"} <= set(buffers)
    assert sum(1 for n in buffers if n.endswith("noise_const")) == 18


def test_conditional_embedding_is_the_official_label_concat():
    with torch.device("meta"):
        G = Generator1(z_dim=512, c_dim=10, w_dim=256, img_resolution=32, img_channels=3)
    counts = official_layer_param_counts(G)
    assert counts["G_mapping/LabelConcat"] == 10 * 512  # official [label_size, latent_size] weight, no bias
    assert G.mapping.embed.bias is None and G.mapping.fc0.in_features == 2 * 512
    assert official_parameter_count(G) == sum(p.numel() for p in G.parameters())


def test_label_concat_normalises_z_and_embedding_together():
    """Official G_mapping: pixel_norm(concat(z, c @ W)), not concat(norm(z), norm(c @ W))."""
    G = make_g(8, c_dim=3)
    z, c = torch.randn(4, 16) * 3, one_hot(4, 3)
    with torch.no_grad():
        x = torch.cat([z, G.mapping.embed(c)], dim=1)
        x = x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for idx in range(G.mapping.num_layers):
            x = getattr(G.mapping, f"fc{idx}")(x)
        torch.testing.assert_close(G.mapping(z, c)[:, 0], x)


@pytest.mark.parametrize("lod", [0, 0.5])
def test_fused_bias_act_matches_reference_with_r1(lod):
    """The default fused bias/activation gives the reference op's images, logits and gradients (R1 included)."""
    from stylegan.runtime.path import FAST, apply_path

    def run(G, D):
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        torch.manual_seed(5)
        img = G(torch.randn(3, G.z_dim), None, lod=lod, noise_mode="const")
        real = img.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(real, None, lod=lod).sum(), real, create_graph=True)
        (D(img, None, lod=lod).sum() + grad.square().sum()).backward()
        grads = {n: p.grad for n, p in list(G.named_parameters()) + list(D.named_parameters()) if p.grad is not None}
        return img.detach(), grads

    G, D = make_g(16).train(), make_d(16).train()
    with torch.no_grad():  # a constant input with zero noise is spatially flat, and instance norm makes the
        for name, p in G.named_parameters():  # gradient of its bias rounding noise; noise makes it well-posed
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    img, grads = run(G, D)
    plain = FAST.replace(ops={"bias_act": "reference"})
    img_ref, grads_ref = run(apply_path(copy.deepcopy(G), plain), apply_path(copy.deepcopy(D), plain))
    torch.testing.assert_close(img, img_ref)
    assert grads.keys() == grads_ref.keys() and len(grads) > 20
    for name in grads:
        # Instance normalisation makes some gradients (e.g. of the 4x4 noise strengths) nearly zero: rounding level.
        atol = max(1e-5 * grads_ref[name].abs().max().item(), 1e-6)
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-4, atol=atol,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_trained_conditional_network_survives_export(tmp_path):
    """A conditional one-channel v1 G/D after a few optimizer steps, mid fade-in, exported and read back."""
    from stylegan.io.export import load_export, save_network
    G = make_g(16, c_dim=3, img_channels=1)
    torch.manual_seed(1)
    D = Discriminator1(c_dim=3, img_resolution=16, img_channels=1, **SMALL)
    opt = torch.optim.Adam([*G.parameters(), *D.parameters()], lr=0.01)
    c = one_hot(4, 3)
    for _ in range(3):
        img = G(torch.randn(4, 16), c, lod=0.5, update_emas=True)
        loss = F.softplus(D(img, c, lod=0.5)).mean() + F.softplus(-D(torch.randn(4, 1, 16, 16), c, lod=0.5)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    G.set_lod(0.5)
    D.set_lod(0.5)
    assert G.mapping.w_avg.abs().sum() > 0
    save_network(tmp_path / "v1.safetensors", {"G_ema": G, "D": D})
    back = load_export(tmp_path / "v1.safetensors")
    z, real = torch.randn(4, 16), torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        for psi in (1, 0.7):
            assert torch.equal(back["G_ema"](z, c, truncation_psi=psi, noise_mode="const"),
                               G(z, c, truncation_psi=psi, noise_mode="const"))
        assert torch.equal(back["D"](real, c), D(real, c))
    assert float(back["G_ema"].synthesis.lod) == 0.5 and float(back["D"].lod) == 0.5
