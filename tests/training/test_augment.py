"""AugmentPipe (ADA paper appendix B): identity at p=0, firing rates and draw distributions, alignment, colour algebra,
gradients, and the cost-saving execution (untouched samples bit-identical, a batch as its samples one by one, the
matrix form of the filters equal to the convolutions)."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from stylegan.errors import UserInputError
from stylegan.training import augment_ops
from stylegan.training.augment import (AUGPIPE_PRESETS, TRANSFORMS, AugmentPipe, bilinear_sample, filter_bank,
                                       make_augment_pipe, resampling_filter)
from stylegan.training.augment_filters import mirror

H = W = 16


def images(n, c=3, h=H, w=W, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand([n, c, h, w], generator=g, dtype=dtype) * 2 - 1)


def pipe_with(p, **kwargs):
    """The pipe with probability p (impl='nvidia' unless `impl` says otherwise)."""
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


def test_pipe_moves_and_copies_like_a_module():
    import copy
    pipe = pipe_with(0.5, scale=1)
    pipe(images(2))  # builds its filter matrices
    moved = copy.deepcopy(pipe).to(torch.device("cpu"), torch.float64)
    assert moved.p.dtype == torch.float64 and float(moved.p) == 0.5
    assert moved(images(2, dtype=torch.float64)).dtype == torch.float64


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


def one_transform_params(name, n, p=0.5, seed=0, h=H, w=W):
    torch.manual_seed(seed)
    pipe = pipe_with(p, **{name: 1})
    return pipe.sample_params(n, h, w)


def assert_follows(values, cdf):
    """Kolmogorov-Smirnov distance below its 0.1% critical value (fixed seeds: the same verdict every run)."""
    values = values.double().numpy()
    assert len(values) > 300
    assert scipy.stats.kstest(values, cdf).statistic < 1.95 / math.sqrt(len(values))


@pytest.mark.parametrize("name, value, cdf", [
    ("scale", lambda q: -torch.log2(q.geom[:, 0, 0]), scipy.stats.norm(0, 0.2).cdf),
    ("aniso", lambda q: torch.log2(q.geom[:, 1, 1]), scipy.stats.norm(0, 0.2).cdf),
    ("xfrac", lambda q: -q.geom[:, 0, 2] / W, scipy.stats.norm(0, 0.125).cdf),
    ("xfrac", lambda q: -q.geom[:, 1, 2] / H, scipy.stats.norm(0, 0.125).cdf),
    ("rotate", lambda q: torch.atan2(q.geom[:, 0, 1], q.geom[:, 0, 0]), scipy.stats.uniform(-math.pi, 2 * math.pi).cdf),
    ("brightness", lambda q: q.color[:, 0, 3], scipy.stats.norm(0, 0.2).cdf),
    ("contrast", lambda q: torch.log2(q.color[:, 0, 0]), scipy.stats.norm(0, 0.5).cdf),
    ("saturation", lambda q: torch.log2((q.color[:, 0, 0] - 1 / 3) * 1.5), scipy.stats.norm(0, 1).cdf),
    ("hue", lambda q: torch.atan2((q.color[:, 1, 0] - q.color[:, 0, 1]) * math.sqrt(3) / 2,
                                  (q.color[:, 0, 0] - 1 / 3) * 1.5), scipy.stats.uniform(-math.pi, 2 * math.pi).cdf),
    ("noise", lambda q: q.noise_std / 0.1, scipy.stats.halfnorm().cdf),
    ("cutout", lambda q: q.cutout_center[:, 0], scipy.stats.uniform().cdf),
])
def test_each_fired_transform_draws_its_parameter_distribution(name, value, cdf):
    """What each sample draws (the constructor's distributions, as before the pipe's cost followed p): the
    parameter of every fired sample, recovered from its matrix, against the distribution's CDF."""
    params = one_transform_params(name, 20000)
    fired = params.fired[name]
    assert abs(fired.float().mean().item() - 0.5) < 4 * math.sqrt(0.25 / 20000)
    # rotate: one angle, or the sum of two where both chances fired, which is uniform on the circle as well
    assert_follows(value(params)[fired], cdf)
    if name != "cutout":  # the cutout centre is drawn for every sample; the other transforms are off: identity
        assert torch.equal(value(params)[~fired], value(params)[~fired][:1].expand(int((~fired).sum())))


@pytest.mark.parametrize("name, values", [("xflip", (1.0, -1.0)), ("rotate90", (0, 1, 2, 3)), ("lumaflip", (0, 1))])
def test_discrete_transforms_draw_each_value_equally_often(name, values):
    params = one_transform_params(name, 8000, p=1.0)
    if name == "xflip":
        drawn = params.blit[:, 0, 0]
    elif name == "rotate90":
        drawn = torch.round(torch.atan2(params.blit[:, 0, 1], params.blit[:, 0, 0]) / (math.pi / 2)) % 4
    else:
        drawn = torch.round((1 - params.color[:, 0, 0]) * 1.5)  # 1 - 2/3 * flip on the diagonal
    counts = torch.stack([(drawn == v).sum() for v in values]).float()
    assert counts.sum() == 8000
    expected = 8000 / len(values)
    assert ((counts - expected).abs() < 4 * math.sqrt(expected)).all(), counts


def test_gates_are_independent_across_transforms_and_samples():
    """Every transform fires with probability p independently of the others and of the other samples."""
    torch.manual_seed(2)
    n, p = 6000, 0.4
    params = pipe_with(p, **AUGPIPE_PRESETS["bgc"]).sample_params(n, H, W)
    names = [t for t in AUGPIPE_PRESETS["bgc"] if t != "rotate"]
    fired = torch.stack([params.fired[t] for t in names], dim=1).float()  # [n, transforms]
    tolerance = 4 * math.sqrt(p * (1 - p) / n)
    assert ((fired.mean(dim=0) - p).abs() < tolerance).all()
    joint = (fired.T @ fired) / n  # P(both fire)
    off_diagonal = ~torch.eye(len(names), dtype=torch.bool)
    assert ((joint - p * p)[off_diagonal].abs() < 4 * math.sqrt(p * p * (1 - p * p) / n)).all()
    neighbours = (fired[1:] * fired[:-1]).mean(dim=0)  # the next sample's draw is independent too
    assert ((neighbours - p * p).abs() < 4 * math.sqrt(p * p * (1 - p * p) / n)).all()


# ---- the cost follows p ---------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.02, 0.1])
def test_samples_that_drew_nothing_come_out_bit_identical(p):
    """In a batch where other samples are transformed, a sample whose transforms all stayed off is its input,
    exactly, and so is one whose transforms fired but compose to the identity (an x-flip drawing no flip)."""
    torch.manual_seed(4)
    n = 96
    pipe = pipe_with(p, **AUGPIPE_PRESETS["bgcfnc"])
    x = images(n, seed=5)
    params = pipe.sample_params(n, H, W)
    y = pipe.apply(x, params)
    none_fired = ~torch.stack(list(params.fired.values())).any(dim=0)
    assert 0 < none_fired.sum() < n
    assert torch.equal(y[none_fired], x[none_fired])
    assert not torch.equal(y[~none_fired], x[~none_fired])

    flip = pipe_with(1.0, xflip=1, lumaflip=1)
    params = flip.sample_params(n, H, W)
    y = flip.apply(x, params)
    kept = (params.blit[:, 0, 0] == 1) & (params.color[:, 0, 0] == 1)
    assert params.fired["xflip"].all() and 0 < kept.sum() < n
    assert torch.equal(y[kept], x[kept])


def test_a_batch_is_its_samples_one_by_one():
    """Running each stage on the subset of samples it changes gives every sample what it gives that sample
    alone: the other samples' draws do not matter."""
    torch.manual_seed(6)
    n = 24
    pipe = pipe_with(0.35, **AUGPIPE_PRESETS["bgcf"], cutout=1, impl="exact")  # NVIDIA's pads by the batch
    x = images(n, seed=7, dtype=torch.float64)
    params = pipe.sample_params(n, H, W)
    y = pipe.apply(x, params)
    for k in range(n):
        one = type(params)(**{f: (getattr(params, f)[k:k + 1] if torch.is_tensor(getattr(params, f)) else
                                  getattr(params, f)) for f in ("blit", "geom", "color", "filter_gains",
                                                                "noise_std", "cutout_center", "cutout_size")},
                           fired={t: v[k:k + 1] for t, v in params.fired.items()})
        torch.testing.assert_close(pipe.apply(x[k:k + 1], one), y[k:k + 1], rtol=0, atol=1e-12)


def test_a_stage_runs_on_the_samples_it_changes_only():
    x = torch.arange(5.0)[:, None]
    calls = []

    def stage(images, index):
        calls.append(images.clone())
        return images + 10 * (torch.arange(5.0)[index][:, None] + 1)

    assert augment_ops.on_samples(x, torch.zeros(5, dtype=torch.bool), stage) is x and not calls
    active = torch.tensor([False, True, False, True, False])
    y = augment_ops.on_samples(x, active, stage)
    assert torch.equal(calls[0], x[active]) and torch.equal(y[:, 0], torch.tensor([0.0, 21, 2, 43, 4]))
    assert torch.equal(augment_ops.on_samples(x, torch.ones(5, dtype=torch.bool), stage)[:, 0],
                       torch.arange(5.0) * 11 + 10)


@pytest.mark.parametrize("h, w", [(16, 16), (8, 12), (5, 7)])
def test_filters_as_matrices_equal_the_convolutions(h, w):
    """The warp's up/downsampling and the band filter as matrix products (images up to DENSE_MAX_SIDE a side)
    against the convolutions (larger images): values and gradients, in float64, borders included (the band
    filter's 43 taps fold over a 5-pixel image several times)."""
    torch.manual_seed(8)
    pipe = pipe_with(1.0, **AUGPIPE_PRESETS["bgcf"], impl="exact")
    params = pipe.sample_params(3, h, w)
    x = images(3, c=2, h=h, w=w, seed=9, dtype=torch.float64).requires_grad_(True)
    weight = torch.randn(3, 2, h, w, dtype=torch.float64)
    for stage in (lambda m: augment_ops.warp(x, params.geom, pipe.geom_filter, m),
                  lambda m: augment_ops.band_filter(x, params.filter_gains, pipe.band_filters, m)):
        outs = [stage(m) for m in (augment_ops.FilterMatrices(), None)]
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-12)
        grads = [torch.autograd.grad((out * weight).sum(), x)[0] for out in outs]
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_matrix_form_is_chosen_by_image_size(monkeypatch):
    small, large = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, augment_ops.DENSE_MAX_SIDE + 1)
    assert augment_ops.use_matrices(small) and not augment_ops.use_matrices(large)
    pipe = pipe_with(1.0, scale=1, impl="exact")
    pipe(images(2))
    pipe(images(2, dtype=torch.float64))
    assert sorted((kind, size, str(dtype)) for kind, size, dtype, _ in pipe.matrices._built) == [
        ("down", H, "torch.float32"), ("down", H, "torch.float64"), ("up", H, "torch.float32"),
        ("up", H, "torch.float64")]


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


@pytest.mark.parametrize("form", ["matrices", "convolutions"])
def test_second_order_gradients_through_full_pipe(form, monkeypatch):
    """R1 differentiates D(augment(reals)) w.r.t. the reals and backprops again: check both orders in float64,
    with the separable filters as matrices (small images) and as convolutions (large ones)."""
    if form == "convolutions":
        monkeypatch.setattr(augment_ops, "DENSE_MAX_SIDE", 4)
    torch.manual_seed(7)
    pipe = pipe_with(1.0, **AUGPIPE_PRESETS["bgcfnc"])
    x = images(2, h=8, w=8, seed=3, dtype=torch.float64).requires_grad_(True)
    params = pipe.sample_params(2, 8, 8)
    assert all(params.fired[name].any() for name in ("xflip", "scale", "hue", "imgfilter"))

    def fn(inp):
        return pipe.apply(inp, params, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def test_autocast_leaves_the_pipe_in_full_precision():
    """The bf16 training path runs D's pass, the pipe included, under autocast: the pipe computes in float32
    anyway (bf16 matrix products would blur the images by up to 0.1)."""
    pipe = pipe_with(0.5, **AUGPIPE_PRESETS["bgcf"])
    x = images(8)
    params = pipe.sample_params(8, H, W)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pipe.apply(x, params)
    assert y.dtype == torch.float32 and torch.equal(y, pipe.apply(x, params))


def test_output_keeps_dtype_and_shape():
    pipe = pipe_with(0.7, **AUGPIPE_PRESETS["bgcfnc"])
    for dtype in (torch.float32, torch.float64):
        x = images(3, h=12, w=12, dtype=dtype)
        y = pipe(x)
        assert y.dtype == dtype and y.shape == x.shape and torch.isfinite(y).all()


# ---- geometry -------------------------------------------------------------------------------------------

def test_xflip_twice_and_rotate90_four_times_are_identity():
    x = images(3)
    flip = pipe_with(1.0, xflip=1, impl="exact")
    once = flip(x, debug_percentile=0.75)
    assert torch.equal(once, x.flip(3))
    assert torch.equal(flip(once, debug_percentile=0.75), x)
    rot = pipe_with(1.0, rotate90=1, impl="exact")
    y = rot(x, debug_percentile=0.3)  # a quarter turn (counter-clockwise on screen, as NVIDIA's)
    assert torch.equal(y, torch.rot90(x, 1, dims=(2, 3)))
    for _ in range(3):
        y = rot(y, debug_percentile=0.3)
    assert torch.equal(y, x)


def test_integer_translation_moves_a_dot():
    x = torch.zeros(1, 1, H, W)
    x[0, 0, 5, 4] = 1
    y = pipe_with(1.0, xint=1, impl="exact")(x, debug_percentile=1.0)  # shift by +xint_max * 16 = 2 pixels
    assert y[0, 0, 7, 6] == 1 and y.sum() == 1
    y = pipe_with(1.0, xint=1, impl="exact")(x, debug_percentile=0.0)  # -2 pixels
    assert y[0, 0, 3, 2] == 1 and y.sum() == 1


def centred_coordinates(h, w):
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5 - h / 2, torch.arange(w) + 0.5 - w / 2, indexing="ij")
    return xs.double(), ys.double()


@pytest.mark.parametrize("impl, ramp_tol, image_tol", [("exact", 1e-3, 0.03), ("nvidia", 0.15, 0.06)])
def test_geometric_transforms_keep_images_aligned_with_coordinates(impl, ramp_tol, image_tol):
    """Warp coordinate ramps and a smooth image with the same draw; the ramps must report where each output pixel
    was sampled (the sampling matrices), and the image must agree with those coordinates. NVIDIA's sym6 pair is
    not linear-phase: a warp through it moves ramps by up to 0.13 pixel and the smooth image by 0.045 (this draw;
    NVIDIA's own pipe gives these outputs within 3e-5, scripts/compare_augment_nvidia.py)."""
    h = w = 32
    torch.manual_seed(3)
    pipe = pipe_with(1.0, **AUGPIPE_PRESETS["bg"], impl=impl)
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
    assert err[interior].max() < ramp_tol
    expected = torch.sin(2 * math.pi * src[:, 0] / 16) * torch.cos(2 * math.pi * src[:, 1] / 13)
    assert (warped[:, 2] - expected)[interior].abs().max() < image_tol


def test_fractional_translation_by_whole_pixels_matches_blit_shift_on_smooth_images():
    h = w = 32
    pipe = pipe_with(1.0, xfrac=1, xint=1, impl="exact")
    params = pipe.sample_params(1, h, w, debug_percentile=1.0)
    xs, ys = centred_coordinates(h, w)
    smooth = (torch.cos(2 * math.pi * xs / 20) + torch.sin(2 * math.pi * ys / 24))[None, None]
    shift = augment_ops.blit(smooth, params.blit)    # integer shift of (4, 4) pixels
    frac = pipe._warp(smooth, params.blit.double())  # the same matrix through the resampling path
    assert (shift - frac)[..., 8:-8, 8:-8].abs().max() < 1e-3


def bilinear_sample_reference(x, px, py):
    """Bilinear sampling of x [N, C, H, W] at pixel coordinates px, py [N, Ho, Wo] (pixel i centred at i) with the
    signal extended symmetrically about the border, in plain gather ops."""
    h, w = x.shape[2:]
    x0, y0 = px.floor(), py.floor()
    fx, fy = (px - x0)[:, None].to(x.dtype), (py - y0)[:, None].to(x.dtype)
    ix = (mirror(x0.long(), w), mirror(x0.long() + 1, w))
    iy = (mirror(y0.long(), h), mirror(y0.long() + 1, h))
    pick = augment_ops.gather_pixels
    top = pick(x, iy[0], ix[0]) * (1 - fx) + pick(x, iy[0], ix[1]) * fx
    bottom = pick(x, iy[1], ix[0]) * (1 - fx) + pick(x, iy[1], ix[1]) * fx
    return top * (1 - fy) + bottom * fy


def test_bilinear_sample_is_symmetric_extension_with_double_backward():
    """Far outside the image too (several periods of the extension): values, gradients and second-order gradients
    of the grid_sample-based sampling equal the plain-ops reference."""
    x = images(2, h=7, w=9, dtype=torch.float64).requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    px = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) * 40 - 15
    py = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) * 35 - 14
    grid = torch.stack([(px + 0.5) / 9 * 2 - 1, (py + 0.5) / 7 * 2 - 1], dim=-1)
    out = bilinear_sample(x, grid)
    ref = bilinear_sample_reference(x, px, py)
    assert torch.allclose(out, ref, atol=1e-12)
    weight = torch.randn(out.shape, generator=g, dtype=torch.float64).requires_grad_(True)
    grads = [torch.autograd.grad((y * weight).sum(), x, create_graph=True)[0] for y in (out, ref)]
    assert torch.allclose(grads[0], grads[1], atol=1e-12)
    probe = torch.randn(x.shape, generator=g, dtype=torch.float64)
    second = [torch.autograd.grad((gr * probe).sum(), weight)[0] for gr in grads]  # through the backward
    assert torch.allclose(second[0], second[1], atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda inp: bilinear_sample(inp, grid), (x,))


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
