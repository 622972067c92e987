"""StyleGAN3 generator beyond the two parity configs: presets and NVIDIA's counts, other configurations,
training-time behaviour (magnitude EMA, w_avg), gradients of the fast path, the transform helper, bad input."""
import math

import numpy as np
import pytest
import torch

from stylegan.cli.main import run
from stylegan.networks.alias_free_filters import layer_geometry, lowpass_filter
from stylegan.networks.registry import build_network
from stylegan.networks.stylegan3 import Generator3, make_transform
from stylegan.runtime.path import FAST, apply_path
from stylegan.presets import resolve_preset


def count(module):
    return sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers())


@pytest.mark.parametrize("cfg,res,g_params,g_buffers,d_params", [
    ("stylegan3-t", 1024, 22_313_167, 2_480, 29_012_513),
    ("stylegan3-r", 1024, 15_093_151, 5_600, 29_012_513),
    ("stylegan3-t", 256, 28_472_133, 2_456, 28_864_129),
    ("stylegan3-r", 256, 18_816_387, 5_576, 28_864_129),
])
def test_presets_give_nvidias_counts(cfg, res, g_params, g_buffers, d_params):
    net = resolve_preset(cfg, res).network
    with torch.device("meta"):
        G = build_network(net.generator_class, net.generator_kwargs(res, 3, 0))
        D = build_network(net.discriminator_class, net.discriminator_kwargs(res, 3, 0))
    assert type(G) is Generator3
    assert count(G) == (g_params, g_buffers)
    assert count(D)[0] == d_params


def test_preset_kwargs_are_train_pys():
    t, r = resolve_preset("stylegan3-t", 1024), resolve_preset("stylegan3-r", 1024)
    assert t.batch_size == 32 and t.network.map_depth == 2 and t.pl_weight == 0 and t.style_mixing_prob == 0
    gt = t.network.generator_kwargs(1024, 3, 0)
    gr = r.network.generator_kwargs(1024, 3, 0)
    assert gt["magnitude_ema_beta"] == 0.5 ** (32 / 20000)
    assert (gt["channel_base"], gt["channel_max"], gt["conv_kernel"], gt["use_radial_filters"]) == (32768, 512, 3, False)
    assert (gr["channel_base"], gr["channel_max"], gr["conv_kernel"], gr["use_radial_filters"]) == (65536, 1024, 1, True)
    assert r.network.discriminator_kwargs(1024, 3, 0)["channel_base"] == 32768  # D is not doubled


def test_summary_cli_prints_the_counts(capsys):
    assert run(["summary", "--cfg", "stylegan3-t", "--resolution", "1024"]) == 0
    totals = [line.split()[:3] for line in capsys.readouterr().out.splitlines() if line.startswith("Total")]
    assert totals == [["Total", "22313167", "2480"], ["Total", "29012513", "544"]]


def test_other_configuration_conditional_gray():
    torch.manual_seed(0)
    G = Generator3(z_dim=8, c_dim=5, w_dim=16, img_resolution=16, img_channels=1, channel_base=14, channel_max=8,
                   num_layers=6, num_critical=3, margin_size=4, conv_kernel=1, use_radial_filters=True,
                   mapping_kwargs={"num_layers": 3}).eval()
    assert G.num_ws == 8 and G.mapping.num_layers == 3
    assert G.mapping.embed.weight.shape == (16, 5) and G.mapping.fc0.weight.shape == (16, 8 + 16)
    geometry = layer_geometry(16, 1, 14, 8, num_layers=6, num_critical=3, margin_size=4)
    # channels rint((14 / 2) / 2) = rint(3.5) = 4 (half to even), not int(3.5) = 3
    assert geometry[0].channels == 4 and G.synthesis.input.channels == 4
    assert [g.size for g in geometry[-2:]] == [16, 16] and geometry[0].size == geometry[0].sampling_rate + 8
    assert [g.critically_sampled for g in geometry] == [False] * 3 + [True] * 4
    names = G.synthesis.layer_names
    assert len(names) == 7 and names[-1].endswith("_16_1")
    assert all(getattr(G.synthesis, n).down_radial == (i < 3) for i, n in enumerate(names[:-1]))
    c = torch.nn.functional.one_hot(torch.tensor([0, 3]), 5).float()
    img = G(torch.randn([2, 8]), c, truncation_psi=0.5)
    assert img.shape == (2, 1, 16, 16) and torch.isfinite(img).all()


def test_lowpass_filter_properties():
    assert lowpass_filter(1, 2.0, 4.0, 32) is None
    sep = lowpass_filter(12, 4.0, 8.0, 32)
    rad = lowpass_filter(12, 4.0, 8.0, 32, radial=True)
    assert sep.dtype == rad.dtype == torch.float32 and sep.shape == (12,) and rad.shape == (12, 12)
    assert sep.sum().item() == pytest.approx(1, abs=1e-6) and rad.sum().item() == pytest.approx(1, abs=1e-6)
    assert torch.equal(sep, sep.flip(0)) and torch.allclose(rad, rad.t()) and torch.allclose(rad, rad.flip([0, 1]))


def _tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    return Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=64, channel_max=8,
                      num_layers=4, num_critical=2, **kwargs)


def test_update_emas_tracks_magnitudes_and_w_avg():
    G = _tiny(magnitude_ema_beta=0.9).train()
    seen = {}
    layer = getattr(G.synthesis, G.synthesis.layer_names[1])
    layer.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0].detach()))
    z = torch.randn([4, 8])
    with torch.no_grad():
        w = G.mapping(z, None)[:, 0]
        G(z, None)  # no update without update_emas
        assert layer.magnitude_ema.item() == 1 and G.mapping.w_avg.abs().max() == 0
        G(z, None, update_emas=True)
    expected = torch.tensor(1.0).lerp(seen["x"].square().mean(), 0.1)
    torch.testing.assert_close(layer.magnitude_ema, expected)
    torch.testing.assert_close(G.mapping.w_avg, w.mean(dim=0) * (1 - 0.998))


def test_cpu_modulation_is_per_sample_by_default(modconv_choices):
    """On the CPU the layers scale activations per sample around one shared convolution unless the caller asks
    for NVIDIA's grouped convolution (up to 1.6x faster there); both give the same images to rounding."""
    from stylegan.networks import stylegan3

    seen = modconv_choices(stylegan3)
    G = _tiny().eval()
    z = torch.randn([3, 8])
    with torch.no_grad():
        img = G(z, None)
        assert seen and set(seen) == {False}
        seen.clear()
        fused = G(z, None, fused_modconv=True)
        assert seen and set(seen) == {True}
    torch.testing.assert_close(img, fused, rtol=1e-4, atol=1e-5)


def test_magnitude_ema_is_an_input_gain():
    """Scaling magnitude_ema by k scales the layer's pre-activation by 1/sqrt(k): it changes the image."""
    G = _tiny().eval()
    ws = G.mapping(torch.randn([2, 8]), None)
    with torch.no_grad():
        before = G.synthesis(ws)
        getattr(G.synthesis, G.synthesis.layer_names[0]).magnitude_ema.fill_(4.0)
        after = G.synthesis(ws)
    assert (before - after).abs().max() > 1e-3


def test_fast_path_gradients_match_reference():
    G = _tiny(conv_clamp=None)
    z = torch.randn([2, 8])
    grads = {}
    for impl in ("reference", "fast"):
        G.zero_grad()
        apply_path(G, FAST.replace(ops={"filtered_lrelu": impl}))
        img = G(z, None)
        (img * torch.linspace(-1, 1, img.numel()).reshape(img.shape)).sum().backward()
        grads[impl] = {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}
    assert set(grads["fast"]) == {n for n, _ in G.named_parameters()}  # every parameter is trained
    for name, ref in grads["reference"].items():
        torch.testing.assert_close(grads["fast"][name], ref, atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_make_transform_and_set_transform():
    m = make_transform((0.125, -0.25), 90)
    np.testing.assert_allclose(m.numpy(), [[0, 1, 0.125], [-1, 0, -0.25], [0, 0, 1]], atol=1e-15)
    G = _tiny()
    G.set_transform((0.125, -0.25), 90)
    torch.testing.assert_close(G.synthesis.input.transform, torch.linalg.inv(m).float())
    # The buffer reaches the image, and the identity restores it (exact shifts are checked against NVIDIA in
    # test_stylegan3_parity.py).
    ws = G.mapping(torch.randn([1, 8]), None)
    with torch.no_grad():
        moved = G.synthesis(ws)
        G.set_transform((0, 0), 0)
        assert torch.equal(G.synthesis.input.transform, torch.eye(3))
        assert (G.synthesis(ws) - moved).abs().max() > 1e-3


def test_bad_input():
    G = _tiny()
    with pytest.raises(AssertionError, match="ws"):
        G.synthesis(torch.zeros([1, 3, 8]))
    with pytest.raises(ValueError, match="num_critical"):
        Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, num_layers=2, num_critical=2)
    with pytest.raises(TypeError):
        Generator3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, architecture="skip")
    assert math.isclose(G.synthesis.output_scale, 0.25)
