"""AugmentPipe(impl='nvidia') against NVIDIA's training/augment.py: every augmentation of NVIDIA's recorded training
step 1 replayed (tests/fixtures/training_parity, sg2: grayscale 16x16, sg2_cond: RGB 8x8, 'bgc' at p = 0.2), and the
constants and padding it is built from."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.errors import UserInputError

from stylegan.training import augment_nvidia, augment_ops
from stylegan.training.augment import AUGPIPE_PRESETS, AugmentPipe, make_augment_pipe
from stylegan.training.augment_filters import filter_bank, halfband_filter, reflect

from draw_replay import AUGMENT_ROUTES, DrawReplay, ParityFixture

# float32 arithmetic in another order (the sampling grid in float64 here, float32 there; the resampling as matrix
# products): measured 1.8e-6 (sg2) and 1.7e-6 (sg2_cond) at most on these [-1, 1] images (calls where nothing
# fired: NVIDIA filters them, 1.3e-6); the exact pipe misses by 0.15 to 2.4.
REPLAY_ATOL = 1e-5


def recorded_calls(fx: ParityFixture):
    """(phase, round, subject, input, output, draws) of every AugmentPipe call of NVIDIA's step 1."""
    aug = fx.tensors("aug1")
    for phase in fx.phases:
        for rnd in range(fx.batch // fx.batch_gpu):
            for subject in ("fake", "real"):
                key = f"{phase}.{rnd}.{subject}"
                if f"{key}.in" in aug:
                    draws = [d for d in fx.draws(0, phase, rnd, group="augment") if d.subject == subject]
                    yield phase, rnd, subject, aug[f"{key}.in"], aug[f"{key}.out"], draws


def replay(fx: ParityFixture, impl: str = "nvidia"):
    """Our pipe's outputs for NVIDIA's inputs and draws, and NVIDIA's outputs, per call."""
    kwargs = dict(fx.config["training_loop_kwargs"]["augment_kwargs"])
    assert kwargs.pop("class_name") == "training.augment.AugmentPipe" and kwargs == AUGPIPE_PRESETS["bgc"]
    pipe = make_augment_pipe("bgc", impl=impl)
    pipe.p.fill_(fx.config["scalars_before_each_step"][0]["augment_p"])
    out = []
    for phase, rnd, subject, x, expected, draws in recorded_calls(fx):
        assert draws, (phase, rnd, subject)
        with DrawReplay(draws, AUGMENT_ROUTES):
            out.append((f"{phase}.{rnd}.{subject}", pipe(x), expected))
    return out


@pytest.mark.training_parity
@pytest.mark.parametrize("name", ["sg2", "sg2_cond"])
def test_replayed_draws_reproduce_nvidias_augmentation(name):
    """Every augmentation of step 1 (G main fakes, D main fakes and reals, D reg reals): NVIDIA's draws in NVIDIA's
    order (DrawReplay fails on an unused draw or a rand answered by a randn) give NVIDIA's images."""
    fx = ParityFixture(name)
    calls = replay(fx)
    assert len(calls) == 8
    for key, ours, expected in calls:
        torch.testing.assert_close(ours, expected, rtol=0, atol=REPLAY_ATOL, msg=key)


@pytest.mark.training_parity
@pytest.mark.parametrize("name", ["sg2", "sg2_cond"])
def test_the_replay_tells_the_pipes_apart(name):
    """The recorded calls transform their images visibly, and our exact pipe on the same draws misses them by far
    more than the tolerance: the replay would notice another filter, padding or sign."""
    fx = ParityFixture(name)
    moved = max(float((expected - x).abs().max()) for *_, x, expected, _ in recorded_calls(fx))
    assert moved > 0.5
    worst = max(float((ours - expected).abs().max()) for _, ours, expected in replay(fx, impl="exact"))
    assert worst > 100 * REPLAY_ATOL


# ---- the constants -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, moments", [(augment_nvidia.SYM6, 6), (augment_nvidia.SYM2, 2)])
def test_symlet_filters_are_orthonormal_with_vanishing_moments(h, moments):
    """What defines a Daubechies-family low-pass filter of N vanishing moments: sum sqrt 2, orthonormal to its
    even shifts, the high-pass (-1)^k h[k] orthogonal to polynomials of degree < N. A mistyped digit fails (the
    published sym6 digits hold these to 8e-13)."""
    h = np.asarray(h)
    assert len(h) == 2 * moments
    assert abs(h.sum() - math.sqrt(2)) < 1e-11
    auto = np.convolve(h, h[::-1])
    centre = len(h) - 1
    assert abs(auto[centre] - 1) < 1e-11
    assert np.abs(auto[centre + 2::2]).max() < 1e-11
    k = np.arange(len(h))
    for degree in range(moments):
        assert abs(((-1.0) ** k * k ** degree * h).sum()) < 1e-10 * max(1, len(h) ** degree)


def test_nvidias_band_filters_are_the_deslauriers_dubuc_bank():
    """H(z) H(1/z) / 2 of sym2 is the 4-point Deslauriers-Dubuc half-band filter, so NVIDIA's bank (built from it)
    is our dyadic bank; and the bank sums to a unit impulse."""
    lo = augment_nvidia.band_lowpass()
    np.testing.assert_allclose(lo, np.array([-1, 0, 9, 16, 9, 0, -1]) / 32, rtol=0, atol=1e-15)
    np.testing.assert_allclose(lo, halfband_filter(), rtol=0, atol=1e-15)
    bank = filter_bank(lo=lo)
    assert bank.shape == (4, 43)
    np.testing.assert_allclose(bank, filter_bank(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(bank.sum(axis=0), np.eye(43)[21], rtol=0, atol=1e-15)
    torch.testing.assert_close(AugmentPipe(impl="nvidia").band_filters, torch.tensor(bank, dtype=torch.float32))


def test_reflect_is_pytorchs_reflect_padding_to_any_reach():
    x = torch.arange(7.0)[None, None]
    for pad in (1, 3, 6):
        ref = F.pad(x, [pad, pad], mode="reflect")[0, 0]
        assert torch.equal(x[0, 0][reflect(torch.arange(-pad, 7 + pad), 7)], ref)
    far = reflect(torch.arange(-20, 27), 7)  # beyond one reflection: periodic with period 12
    assert torch.equal(far[12:], far[:-12]) and far.min() == 0 and far.max() == 6
    assert torch.equal(reflect(torch.arange(-3, 4), 1), torch.zeros(7, dtype=torch.long))


def test_margin_is_the_batchs_reach_plus_six_pixels():
    eye = torch.eye(3)[None]
    assert augment_nvidia.warp_margin(eye, 16, 16) == (6, 6, 6, 6)
    shift = eye.clone()
    shift[0, 0, 2] = -3.5  # samples 3.5 pixels left of each output pixel: the left side needs 3.5 more
    assert augment_nvidia.warp_margin(torch.cat([eye, shift]), 16, 16) == (10, 6, 6, 6)
    assert augment_nvidia.warp_margin(eye * torch.tensor([4.0, 4.0, 1.0])[:, None], 16, 16) == (15, 15, 15, 15)


def test_untouched_samples_pass_and_the_margin_is_the_batchs():
    """Samples whose composed matrix is the identity are not resampled (NVIDIA's pipe filters them: a few e-6);
    a sample warped with other samples gets NVIDIA's padding for the whole batch."""
    torch.manual_seed(0)
    pipe = make_augment_pipe("bg")
    pipe.p.fill_(0.3)
    x = torch.rand(32, 3, 16, 16) * 2 - 1
    params = pipe.sample_params(32, 16, 16, channels=3)
    y = pipe.apply(x, params)
    touched = (params.blit @ params.geom != torch.eye(3)).flatten(1).any(dim=1)
    assert 0 < touched.sum() < 32
    assert torch.equal(y[~touched], x[~touched]) and not torch.equal(y[touched], x[touched])
    matrices = params.blit @ params.geom
    margin = augment_nvidia.warp_margin(matrices, 16, 16)
    k = int(touched.nonzero()[0])
    alone = augment_nvidia.warp(x[k:k + 1], matrices[k:k + 1], margin, pipe.geom_filter)
    torch.testing.assert_close(alone, y[k:k + 1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("preset", ["bg", "bgcfnc"])
def test_second_order_gradients_through_nvidias_warp(preset):
    """R1 differentiates through the pipe twice: zeros-padded bilinear sampling, reflection and sym6 resampling."""
    torch.manual_seed(1)
    pipe = make_augment_pipe(preset)
    pipe.p.fill_(1.0)
    x = (torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    params = pipe.sample_params(2, 8, 8, channels=3)

    def fn(inp):
        return pipe.apply(inp, params)

    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


# ---- training chooses the pipe ----------------------------------------------------------------------------------

def test_training_runs_nvidias_pipe_and_old_runs_resume_with_the_exact_one(tmp_path):
    """New runs train with impl='nvidia' and record it in training_options.json; a run saved before the field
    existed (no `augment_impl` in its options) resumes with the exact pipe it trained with."""
    import json

    from stylegan.training.loop import train
    from stylegan.training.setup import setup_run
    from train_helpers import make_dataset, tiny_config, tiny_options

    data = make_dataset(tmp_path / "data", count=8)
    run_dir = train(tiny_options(data, tmp_path / "runs", config=tiny_config(total_kimg=0.008)))
    options = json.loads((run_dir / "training_options.json").read_text())
    assert options["config"]["augment_impl"] == "nvidia"
    resumed = tiny_options(data, tmp_path / "runs", config=tiny_config(total_kimg=0.016), resume=str(run_dir))
    assert setup_run(resumed, say=lambda *_: None).augment_pipe.impl == "nvidia"
    del options["config"]["augment_impl"]
    (run_dir / "training_options.json").write_text(json.dumps(options))
    assert setup_run(resumed, say=lambda *_: None).augment_pipe.impl == "exact"


def test_train_command_chooses_the_impl(tmp_path, capsys):
    import json

    from stylegan.cli.main import run as cli_run
    from train_helpers import make_dataset

    data = make_dataset(tmp_path / "data", count=4)
    for flags, impl in (([], "nvidia"), (["--augment-impl", "exact"], "exact")):
        assert cli_run(["train", f"--data={data}", f"--outdir={tmp_path}", *flags, "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["config"]["augment_impl"] == impl
    assert cli_run(["train", f"--data={data}", f"--outdir={tmp_path}", "--augment-impl", "fast", "--dry-run"]) != 0
    with pytest.raises(UserInputError, match="impl='fast' is unknown"):
        AugmentPipe(impl="fast")


@pytest.mark.parametrize("h, w", [(16, 16), (8, 12), (5, 7)])
def test_nvidias_filters_as_matrices_equal_the_convolutions(h, w):
    """The warp's padding + sym6 upsampling and its downsampling, and the band filter with reflected borders, as
    matrix products (images up to DENSE_MAX_SIDE a side) against reflection padding and upfirdn2d / grouped
    convolutions (larger images): values and gradients in float64 (the 43-tap bank reflects over a 5-pixel image
    several times)."""
    torch.manual_seed(2)
    pipe = make_augment_pipe("bgcf")
    pipe.p.fill_(1.0)
    params = pipe.sample_params(3, h, w)
    matrices = params.blit @ params.geom
    margin = augment_nvidia.warp_margin(matrices, h, w)
    x = (torch.rand(3, 2, h, w, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    weight = torch.randn(3, 2, h, w, dtype=torch.float64)
    for stage in (lambda m: augment_nvidia.warp(x, matrices, margin, pipe.geom_filter.double(), m),
                  lambda m: augment_ops.band_filter(x, params.filter_gains, pipe.band_filters, m, borders="reflect")):
        outs = [stage(m) for m in (augment_ops.FilterMatrices(), None)]
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-12)
        grads = [torch.autograd.grad((out * weight).sum(), x)[0] for out in outs]
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)
