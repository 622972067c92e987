"""AugmentPipe (ADA paper appendix B): identity at p=0, firing rates, alignment, colour algebra, gradients."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.errors import UserInputError
from stylegan.training.augment import (AUGPIPE_PRESETS, TRANSFORMS, AugmentPipe, bilinear_sample, filter_bank,
                                       make_augment_pipe, resampling_filter)

H = W = 16


def images(n, c=3, h=H, w=W, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand([n, c, h, w], generator=g, dtype=dtype) * 2 - 1)


def pipe_with(p, **kwargs):
    pipe = AugmentPipe(**kwargs)
    pipe.set_probability(p)
    return pipe


def luma(x):
    return x.mean(dim=1, keepdim=True)


# ---- presets and identity -----------------------------------------------------------------------------

def test_presets_match_official_names():
    assert set(AUGPIPE_PRESETS) == {"blit", "geom", "color", "filter", "noise", "cutout",
                                    "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"}
    assert set(AUGPIPE_PRESETS["bgcfnc"]) == set(TRANSFORMS)
    assert set(AUGPIPE_PRESETS["bgc"]) == set(AUGPIPE_PRESETS["bg"]) | set(AUGPIPE_PRESETS["color"])
    assert all(v == 1 for preset in AUGPIPE_PRESETS.values() for v in preset.values())


def test_unknown_preset_lists_valid_names():
    with pytest.raises(UserInputError, match="bgcfnc"):
        make_augment_pipe("bgx")


@pytest.mark.parametrize("name", sorted(AUGPIPE_PRESETS))
@pytest.mark.parametrize("channels", [1, 3])
def test_identity_at_p_zero(name, channels):
    pipe = make_augment_pipe(name)
    assert float(pipe.p) == 0
    x = images(6, c=channels)
    y = pipe(x)
    assert torch.equal(y, x)


def test_state_dict_holds_only_p_and_official_kwargs_rebuild():
    official_kwargs = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1,
                           contrast=1, lumaflip=1, hue=1, saturation=1, imgfilter_bands=[1, 1, 1, 1])
    pipe = AugmentPipe(**official_kwargs)
    pipe.set_probability(0.25)
    state = pipe.state_dict()
    assert list(state) == ["p"] and state["p"].dtype == torch.float32 and state["p"].shape == ()
    clone = AugmentPipe(**pipe.init_kwargs)
    clone.load_state_dict(state)
    assert float(clone.p) == 0.25 and clone.init_kwargs == pipe.init_kwargs


# ---- firing rates ---------------------------------------------------------------------------------------

def expected_change_rate(name, p):
    """Probability that one transform visibly changes a random image, given it fires with probability p."""
    if name in ("xflip", "lumaflip"):
        return p / 2                                  # draws the identity half the time
    if name == "rotate90":
        return p * 3 / 4                              # rotation by 0 a quarter of the time
    if name == "xint":
        zero = min(1.0, 0.5 / (0.125 * W))            # round(U(-2, 2)) == 0 per axis
        return p * (1 - zero ** 2)
    if name == "imgfilter":
        return 1 - (1 - p) ** 4                       # each of the 4 bands fires independently
    return p


@pytest.mark.parametrize("name", TRANSFORMS)
def test_each_transform_fires_with_its_probability(name):
    torch.manual_seed(1234)
    n, p = 400, 0.3
    pipe = pipe_with(p, **{name: 1})
    x = images(n, seed=1)
    params = pipe.sample_params(n, H, W)
    y = pipe.apply(x, params)
    changed = (y != x).flatten(1).any(dim=1)
    fired = params.fired[name]
    assert not (changed & ~fired).any(), "a sample changed although its transform did not fire"
    rate, expected = changed.float().mean().item(), expected_change_rate(name, p)
    tolerance = 4 * math.sqrt(expected * (1 - expected) / n)
    assert abs(rate - expected) < tolerance, (rate, expected)
    assert abs(fired.float().mean().item() - (expected if name == "imgfilter" else p)) < 4 * math.sqrt(p * (1 - p) / n)


def test_probability_scales_with_multiplier():
    torch.manual_seed(0)
    pipe = pipe_with(0.8, noise=0.5)
    fired = pipe.sample_params(2000, H, W).fired["noise"]
    assert abs(fired.float().mean().item() - 0.4) < 4 * math.sqrt(0.24 / 2000)


# ---- gradients ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TRANSFORMS)
def test_gradients_reach_input_through_each_transform(name):
    torch.manual_seed(5)
    pipe = pipe_with(1.0, **{name: 1})
    x = images(4, seed=2).requires_grad_(True)
    weights = torch.randn(4, 3, H, W)
    (pipe(x, debug_percentile=0.8) * weights).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad.flatten(1).abs().sum(dim=1) > 0).all()


def test_second_order_gradients_through_full_pipe():
    """R1 differentiates D(augment(reals)) w.r.t. the reals and backprops again: check both orders in float64."""
    torch.manual_seed(7)
    pipe = pipe_with(1.0, **AUGPIPE_PRESETS["bgcfnc"])
    x = images(2, h=8, w=8, seed=3, dtype=torch.float64).requires_grad_(True)
    params = pipe.sample_params(2, 8, 8)
    assert all(params.fired[name].any() for name in ("xflip", "scale", "hue", "imgfilter"))

    def fn(inp):
        return pipe.apply(inp, params, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def test_output_keeps_dtype_and_shape():
    pipe = pipe_with(0.7, **AUGPIPE_PRESETS["bgcfnc"])
    for dtype in (torch.float32, torch.float64):
        x = images(3, h=12, w=12, dtype=dtype)
        y = pipe(x)
        assert y.dtype == dtype and y.shape == x.shape and torch.isfinite(y).all()


# ---- geometry -------------------------------------------------------------------------------------------

def test_xflip_twice_and_rotate90_four_times_are_identity():
    x = images(3)
    flip = pipe_with(1.0, xflip=1)
    once = flip(x, debug_percentile=0.75)
    assert torch.equal(once, x.flip(3))
    assert torch.equal(flip(once, debug_percentile=0.75), x)
    rot = pipe_with(1.0, rotate90=1)
    y = rot(x, debug_percentile=0.3)  # a quarter turn
    assert torch.equal(y, torch.rot90(x, -1, dims=(2, 3)))
    for _ in range(3):
        y = rot(y, debug_percentile=0.3)
    assert torch.equal(y, x)


def test_integer_translation_moves_a_dot():
    x = torch.zeros(1, 1, H, W)
    x[0, 0, 5, 4] = 1
    y = pipe_with(1.0, xint=1)(x, debug_percentile=1.0)  # shift by +xint_max * 16 = 2 pixels in x and y
    assert y[0, 0, 7, 6] == 1 and y.sum() == 1
    y = pipe_with(1.0, xint=1)(x, debug_percentile=0.0)  # -2 pixels
    assert y[0, 0, 3, 2] == 1 and y.sum() == 1


def centred_coordinates(h, w):
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5 - h / 2, torch.arange(w) + 0.5 - w / 2, indexing="ij")
    return xs.double(), ys.double()


def test_geometric_transforms_keep_images_aligned_with_coordinates():
    """Warp coordinate ramps and a smooth image with the same draw; the ramps must report exactly where each
    output pixel was sampled (the sampling matrices), and the image must agree with those coordinates."""
    h = w = 32
    torch.manual_seed(3)
    pipe = pipe_with(1.0, **AUGPIPE_PRESETS["bg"])
    n = 6
    params = pipe.sample_params(n, h, w)
    xs, ys = centred_coordinates(h, w)
    ramps = torch.stack([xs, ys])[None].expand(n, 2, h, w).contiguous()
    smooth = (torch.sin(2 * math.pi * xs / 16) * torch.cos(2 * math.pi * ys / 13))[None, None].expand(n, 1, h, w)
    warped = pipe.apply(torch.cat([ramps, smooth], dim=1), params)

    out = torch.stack([xs, ys, torch.ones_like(xs)])
    mid = torch.einsum("nij,jhw->nihw", params.geom.double(), out)[:, :2]  # output -> blitted image
    src = torch.einsum("nij,jhw->nihw", params.blit.double() @ params.geom.double(), out)[:, :2]  # -> input
    # Away from mirrored borders, both in the input and in the blitted image the warp reads from.
    interior = (src.abs() < w / 2 - 5).all(dim=1) & (mid.abs() < w / 2 - 5).all(dim=1)
    assert interior.float().mean() > 0.2
    err = (warped[:, :2] - src).abs().amax(dim=1)
    assert err[interior].max() < 1e-3
    expected = torch.sin(2 * math.pi * src[:, 0] / 16) * torch.cos(2 * math.pi * src[:, 1] / 13)
    assert (warped[:, 2] - expected)[interior].abs().max() < 0.03


def test_fractional_translation_by_whole_pixels_matches_blit_shift_on_smooth_images():
    h = w = 32
    pipe = pipe_with(1.0, xfrac=1, xint=1)
    params = pipe.sample_params(1, h, w, debug_percentile=1.0)
    xs, ys = centred_coordinates(h, w)
    smooth = (torch.cos(2 * math.pi * xs / 20) + torch.sin(2 * math.pi * ys / 24))[None, None]
    shift = pipe._blit(smooth, params.blit)          # integer shift of (4, 4) pixels
    frac = pipe._warp(smooth, params.blit.double())  # the same matrix through the resampling path
    assert (shift - frac)[..., 8:-8, 8:-8].abs().max() < 1e-3


def test_bilinear_sample_matches_grid_sample_with_reflection():
    x = images(2, h=7, w=9, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    px = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) * 30 - 10
    py = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) * 25 - 9
    grid = torch.stack([(px + 0.5) / 9 * 2 - 1, (py + 0.5) / 7 * 2 - 1], dim=-1)
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    assert torch.allclose(bilinear_sample(x, px, py), ref, atol=1e-12)


def test_resampling_filter_reproduces_polynomials():
    taps = np.array(resampling_filter(3))
    assert len(taps) == 12 and np.allclose(taps, taps[::-1])
    # Each phase interpolates polynomials up to degree 5 exactly at the quarter-pixel position.
    positions = np.arange(-6, 6) + 0.5
    for phase in (0, 1):
        t, d = 2 * taps[phase::2], positions[phase::2] / 2
        for degree in range(6):
            assert abs(np.sum(t * d ** degree) - (0.0 if degree else 1.0)) < 1e-12


def test_filter_bank_splits_the_spectrum_into_octaves():
    bank = filter_bank()
    assert bank.shape[0] == 4 and bank.shape[1] % 2 == 1
    impulse = np.zeros(bank.shape[1])
    impulse[bank.shape[1] // 2] = 1
    assert np.allclose(bank.sum(axis=0), impulse)
    assert np.allclose(bank, bank[:, ::-1])  # zero phase
    k = np.arange(bank.shape[1]) - bank.shape[1] // 2
    for band, omega in enumerate([0.0, 3 * math.pi / 16, 3 * math.pi / 8, 3 * math.pi / 4]):  # octave centres
        response = np.abs(np.cos(omega * k) @ bank.T)
        assert response.argmax() == band and response[band] > 0.65


# ---- colour ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hue", "saturation"])
def test_hue_and_saturation_keep_luma(name):
    torch.manual_seed(0)
    x = images(8)
    y = pipe_with(1.0, **{name: 1})(x)
    assert not torch.allclose(y, x, atol=1e-3)
    assert torch.allclose(luma(y), luma(x), atol=1e-5)


def test_brightness_shifts_and_contrast_scales():
    torch.manual_seed(0)
    x = images(8)
    pipe = pipe_with(1.0, brightness=1)
    params = pipe.sample_params(8, H, W)
    y = pipe.apply(x, params)
    offset = params.color[:, 0, 3]
    assert offset.abs().min() > 0
    assert torch.allclose(y - x, offset[:, None, None, None].expand_as(x), atol=1e-6)
    assert torch.allclose(y.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3)), offset, atol=1e-6)

    pipe = pipe_with(1.0, contrast=1)
    params = pipe.sample_params(8, H, W)
    gain = params.color[:, 0, 0]
    assert torch.allclose(pipe.apply(x, params), x * gain[:, None, None, None], atol=1e-6)


def test_lumaflip_negates_luma_and_keeps_chroma():
    x = images(4)
    y = pipe_with(1.0, lumaflip=1)(x, debug_percentile=0.9)
    assert torch.allclose(luma(y), -luma(x), atol=1e-6)
    assert torch.allclose(y - luma(y), x - luma(x), atol=1e-6)


def test_grayscale_colour_acts_on_luma_only():
    x = images(4, c=1)
    for name in ("hue", "saturation"):
        assert torch.allclose(pipe_with(1.0, **{name: 1})(x, debug_percentile=0.9), x, atol=1e-6)
    y = pipe_with(1.0, brightness=1)(x, debug_percentile=0.9)
    shift = 0.2 * math.sqrt(2) * torch.erfinv(torch.tensor(0.8)).item()  # 90th percentile of N(0, 0.2^2)
    assert torch.allclose(y - x, torch.full_like(x, shift), atol=1e-5)
    assert torch.allclose(pipe_with(1.0, lumaflip=1)(x, debug_percentile=0.9), -x, atol=1e-6)


# ---- filtering, noise, cutout -------------------------------------------------------------------------

def test_single_band_gains_keep_expected_power():
    torch.manual_seed(0)
    pipe = pipe_with(1.0, imgfilter=1, imgfilter_bands=[0, 0, 1, 0])
    gains = pipe.sample_params(64, H, W).filter_gains
    power = torch.tensor([10, 1, 1, 1]) / 13
    assert torch.allclose((gains.square() * power).sum(dim=1), torch.ones(64), atol=1e-5)
    assert torch.allclose(gains[:, 0], gains[:, 1]) and torch.allclose(gains[:, 0], gains[:, 3])


def test_noise_has_the_drawn_standard_deviation():
    torch.manual_seed(0)
    pipe = pipe_with(1.0, noise=1)
    x = images(4, h=32, w=32)
    params = pipe.sample_params(4, 32, 32)
    residual = pipe.apply(x, params) - x
    assert torch.allclose(residual.flatten(1).std(dim=1), params.noise_std, rtol=0.1)


def test_cutout_zeroes_a_centred_square():
    x = images(2)
    y = pipe_with(1.0, cutout=1)(x, debug_percentile=0.5)  # centre (0.5, 0.5), side 0.5 -> pixels 4..11
    hole = torch.zeros(H, W, dtype=torch.bool)
    hole[4:12, 4:12] = True
    assert (y[:, :, hole] == 0).all()
    assert torch.equal(y[:, :, ~hole], x[:, :, ~hole])


# ---- bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(xflip=-1), "xflip"),
    (dict(scale_std=float("nan")), "scale_std"),
    (dict(imgfilter_bands=[1, 1]), "imgfilter_bands"),
    (dict(cutout_size=2), "cutout_size"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        AugmentPipe(**kwargs)


def test_bad_images_and_settings():
    with pytest.raises(UserInputError, match="1 or 3 channels"):
        make_augment_pipe("bgc")(images(2, c=4))
    with pytest.raises(UserInputError, match="square"):
        make_augment_pipe("blit")(images(2, h=8, w=12))
    with pytest.raises(UserInputError, match=r"\[N, C, H, W\]"):
        make_augment_pipe("bgc")(torch.zeros(3, 16, 16))
    with pytest.raises(UserInputError, match="debug_percentile"):
        make_augment_pipe("bgc")(images(2), debug_percentile=1.5)
    with pytest.raises(UserInputError, match="p="):
        make_augment_pipe("bgc").set_probability(1.2)
    # Geometric transforms other than rotate90 work on any channel count and aspect ratio.
    y = pipe_with(0.9, xflip=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1)(images(3, c=4, h=8, w=12))
    assert y.shape == (3, 4, 8, 12)


@pytest.mark.parametrize("taps", ["geom", "random"])
def test_polyphase_resampling_matches_upfirdn2d(taps):
    """The warp's 2x up- and downsampling (polyphase / strided, at the low resolution) equal the reference
    upfirdn2d ops (zero insertion / filter then decimate), values and gradients, for the pipe's own filter and an
    arbitrary even-length one."""
    from stylegan.ops.upfirdn2d import upfirdn2d, upsample2d
    from stylegan.training.augment import downsample2x_valid, resampling_filter, upsample2x
    gen = torch.Generator().manual_seed(0)
    f = (torch.tensor(resampling_filter(), dtype=torch.float64) if taps == "geom"
         else torch.rand(8, generator=gen, dtype=torch.float64))
    x = torch.randn(3, 2, 11, 13, generator=gen, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(upsample2x(x, f), upsample2d(x, f, up=2))
    big = torch.randn(3, 2, 29, 31, generator=gen, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(downsample2x_valid(big, f), upfirdn2d(big, f, down=2))
    for fast, ref, inp in ((upsample2x, lambda a, g: upsample2d(a, g, up=2), x),
                           (downsample2x_valid, lambda a, g: upfirdn2d(a, g, down=2), big)):
        weight = torch.randn_like(ref(inp, f))
        grads = [torch.autograd.grad((fn(inp, f) * weight).sum(), inp)[0] for fn in (fast, ref)]
        torch.testing.assert_close(grads[0], grads[1])
