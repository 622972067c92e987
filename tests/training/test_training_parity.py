"""Our training components against NVIDIA's training steps (tests/fixtures/training_parity, issue #25).

A prototype until the tests can drive the loop's own phases (issue #22): `nvidia_steps` runs NVIDIA's loop order
(training/training_loop.py: phases with lazy-regularisation intervals, per-round means summed, nan_to_num, Adam with
the interval / (interval + 1) scaling, G EMA with ramp-up) with OUR networks, losses (training/losses.py), D blur
and EMA functions, on NVIDIA's weights, batches and recorded draws (draw_replay.py). It covers the phases that see
no augmentation: our AugmentPipe is a different implementation (docs/training_parity.md, "Augmentation").

Tolerances (float32, what sets them): the same arithmetic in a different order (our fused bias/activation,
convolutions written differently) differs by a few ulp per op, so step-1 losses agree to 1e-5 and gradients to 1e-4
of each tensor's largest value (R1's near-zero bias gradients: 1e-6 of the phase's largest). Adam divides by
sqrt(v) + 1e-8, which magnifies such differences where gradients are small; measured after 20 steps: weights within
5.7e-7 (sg3t) and 3.6e-7 (sg2_noaug with the two fixes), 2.7e-6 with fused Adam as our loop uses; Adam moments
within 2.8e-4 of their tensor's largest.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
from unittest import mock

import pytest
import torch

from stylegan.data.sampler import InfiniteSampler
from stylegan.networks.registry import OFFICIAL_CLASS_NAMES, build_network
from stylegan.training import losses
from stylegan.training.ada import AdaController
from stylegan.training.blur import blur_images, blur_sigma
from stylegan.training.ema import ema_beta, update_ema

from draw_replay import CONFIGS, G_PASS_ROUTES, DrawReplay, ParityFixture, trainable

pytestmark = pytest.mark.training_parity

ATOL_WEIGHTS = 2e-6   # after 1 or 20 steps; measured: 5.7e-7 (sg3t, 20 steps), 3.6e-7 (sg2_noaug with the fixes)
RTOL_MOMENTS = 2e-3   # Adam moments, of the largest |value| per tensor; measured: 2.8e-4 (sg3t exp_avg, 20 steps)


def assert_close_rel(ours: torch.Tensor, ref: torch.Tensor, rel: float, what: str, floor: float = 1e-12) -> None:
    """Elementwise |ours - ref| <= rel * max|ref| + floor."""
    scale = ref.abs().max().item()
    err = (ours - ref).abs().max().item()
    assert err <= rel * scale + floor, f"{what}: max |diff| {err:.3g}, max |ref| {scale:.3g}"


def run_G(fx: ParityFixture, G, z, c, draws, update_emas=False):
    """A generator pass as NVIDIA's StyleGAN2Loss.run_G, with our style mixing, on the recorded draws."""
    prob = fx.config["loss_settings"]["style_mixing_prob"]
    with DrawReplay(draws, G_PASS_ROUTES):
        ws = G.mapping(z, c, update_emas=update_emas)
        if prob > 0:
            ws = losses.mix_styles(ws, G.mapping(torch.randn_like(z), c), prob)
        img = G.synthesis(ws, update_emas=update_emas)
    return img, ws


def make_optimizer(module, opt_kwargs: dict, reg_interval):
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return torch.optim.Adam(module.parameters(), lr=opt_kwargs["lr"] * ratio,
                            betas=[b ** ratio for b in opt_kwargs["betas"]], eps=opt_kwargs["eps"])


def phase_pass(fx: ParityFixture, G, D, step: int, phase: str, pl_mean: torch.Tensor, sigma: float):
    """One phase of `step` as NVIDIA's StyleGAN2Loss.accumulate_gradients, every round: forward, loss, backward
    (gradients accumulate in the trainable network). Returns the per-round values NVIDIA reported."""
    lk = fx.config["loss_settings"]
    interval = fx.interval(phase)
    idx = fx.phases.index(phase)
    real_img, real_c = (t.split(fx.batch_gpu) for t in fx.reals(step))
    all_z, all_c = fx.gen_z(step)[idx].split(fx.batch_gpu), fx.gen_c(step)[idx].split(fx.batch_gpu)
    values = []
    for rnd, (r_img, r_c, z, c) in enumerate(zip(real_img, real_c, all_z, all_c)):
        draws = fx.draws(step, phase, rnd, group="G")
        if phase in ("Gmain", "Gboth"):
            img, _ = run_G(fx, G, z, c, draws)
            loss = losses.g_nonsaturating_loss(D(blur_images(img, sigma), c))
            loss.mean().mul(interval).backward()
            values.append(loss.detach().flatten())
        elif phase == "Greg":
            n = z.shape[0] // lk["pl_batch_shrink"]
            img, ws = run_G(fx, G, z[:n], c[:n], draws)
            (noise,) = fx.draws(step, phase, rnd, tag="pl_noise")
            lengths = losses.path_lengths(img, ws, noise=noise.value)
            penalty, pl_mean_new = losses.path_length_penalty(lengths, pl_mean, lk["pl_decay"])
            pl_mean.copy_(pl_mean_new.detach())
            (penalty * lk["pl_weight"]).mean().mul(interval).backward()
            values.append(penalty.detach())
        elif phase == "Dmain":
            img, _ = run_G(fx, G, z, c, draws, update_emas=True)
            fake = D(blur_images(img, sigma), c)
            losses.d_logistic_loss_fake(fake).mean().mul(interval).backward()
            real = D(blur_images(r_img, sigma), r_c)
            losses.d_logistic_loss_real(real).mean().mul(interval).backward()
            values.append(torch.cat([fake.detach().flatten(), real.detach().flatten()]))
        else:  # Dreg
            r_img = r_img.detach().requires_grad_(True)
            real = D(blur_images(r_img, sigma), r_c)
            penalty = losses.r1_penalty(r_img, real)
            (penalty * (lk["r1_gamma"] / 2)).mean().mul(interval).backward()
            values.append(penalty.detach())
    return values


def nvidia_steps(fx: ParityFixture, steps: int):
    """`steps` training steps in NVIDIA's loop order with our components; returns the final state."""
    k = fx.loop_kwargs
    lk = fx.config["loss_settings"]
    G, D = fx.build("G"), fx.build("D")
    G_ema = copy.deepcopy(G).eval()
    opts = {"G": make_optimizer(G, k["G_opt_kwargs"], k["G_reg_interval"]),
            "D": make_optimizer(D, k["D_opt_kwargs"], k["D_reg_interval"])}
    pl_mean = torch.zeros([])
    cur_nimg = 0
    for step in range(steps):
        sigma = blur_sigma(cur_nimg, lk["blur_init_sigma"], lk["blur_fade_kimg"])
        for phase in fx.phases:
            if step % fx.interval(phase):
                continue
            module, opt = (G, opts["G"]) if phase.startswith("G") else (D, opts["D"])
            opt.zero_grad(set_to_none=True)
            with trainable(module):
                phase_pass(fx, G, D, step, phase, pl_mean, sigma)
            for p in module.parameters():
                if p.grad is not None:
                    torch.nan_to_num_(p.grad, nan=0, posinf=1e5, neginf=-1e5)
            opt.step()
        update_ema(G_ema, G, ema_beta(fx.batch, k["ema_kimg"], cur_nimg, k["ema_rampup"]))
        cur_nimg += fx.batch
    return dict(G=G, D=D, G_ema=G_ema, opt_G=opts["G"], opt_D=opts["D"], pl_mean=pl_mean)


@contextlib.contextmanager
def with_fixes(pl_mean_gradient: bool = True, reference_bias_act: bool = True):
    """Our components with the two differences the step-1 gradients expose undone (docs/training_parity.md):
    pl_mean_gradient: the path-length running mean keeps its gradient (NVIDIA's `pl_mean` is not detached);
    reference_bias_act: bias_act takes the reference implementation (the fast one hands ToRGB biases a zero
    gradient, not none, in the path-length phase, so Adam counts a step for them)."""
    def penalty(lengths, pl_mean, decay):
        new_mean = pl_mean.lerp(lengths.mean(), decay)
        return (lengths - new_mean).square(), new_mean

    def build(self, role, file="init"):
        module = build_fast(self, role, file)
        for m in module.modules():
            if hasattr(m, "bias_act_impl"):
                m.bias_act_impl = "reference"
        return module

    build_fast = ParityFixture.build
    with contextlib.ExitStack() as stack:
        if pl_mean_gradient:
            stack.enter_context(mock.patch.object(losses, "path_length_penalty", penalty))
        if reference_bias_act:
            stack.enter_context(mock.patch.object(ParityFixture, "build", build))
        yield


def test_initial_weights_are_nvidias_for_the_same_seed():
    """NVIDIA's loop creates its DataLoader iterator (one int64 draw for the workers' base seed) before the
    networks; with that draw skipped, our constructors draw the same numbers in the same order."""
    for name in CONFIGS:
        fx = ParityFixture(name)
        torch.manual_seed(fx.loop_kwargs["random_seed"])
        torch.empty((), dtype=torch.int64).random_()
        for role in ("G", "D"):
            ours = build_network(OFFICIAL_CLASS_NAMES[fx.config["network_classes"][role]],
                                 fx.config["network_kwargs"][role]).state_dict()
            ref = fx.state("init", role)
            assert ours.keys() == ref.keys()
            for key, value in ref.items():
                # StyleGAN3's mapping layers divide randn by lr_multiplier where NVIDIA multiplies by
                # (1 / lr_multiplier): one rounding apart (docs/training_parity.md, "Initialisation").
                torch.testing.assert_close(ours[key], value, rtol=2e-7 if name == "sg3t" else 0, atol=0,
                                           msg=f"{name} {role}.{key}")


def test_data_order_is_nvidias():
    """NVIDIA's InfiniteSampler over the x-flipped dataset (48 items, seed 0) and ours deal the same items."""
    for name in CONFIGS:
        fx = ParityFixture(name)
        expected = [i for step in fx.config["dataset"]["items_per_step"] for i in step]
        ours = InfiniteSampler(fx.config["dataset"]["len"], seed=fx.loop_kwargs["random_seed"])
        assert list(itertools.islice(iter(ours), len(expected))) == expected


def check_step1_phase(fx: ParityFixture, phase: str) -> None:
    """Phase `phase` of step 1 from NVIDIA's state before it: per-sample losses (NVIDIA's reports) to 1e-5 and
    gradients to 1e-4 of the largest |value| of each tensor (+ 1e-6 of the phase's largest)."""
    G, D = fx.build_before(phase)
    module = G if phase.startswith("G") else D
    lk = fx.config["loss_settings"]
    with trainable(module):
        values = phase_pass(fx, G, D, 0, phase, torch.zeros([]), blur_sigma(0, lk["blur_init_sigma"],
                                                                            lk["blur_fade_kimg"]))
    report = {"Gmain": "Loss/G/loss", "Gboth": "Loss/G/loss", "Greg": "Loss/pl_penalty", "Dreg": "Loss/r1_penalty"}
    for rnd, value in enumerate(values):
        if phase == "Dmain":
            ref = torch.cat([fx.reports(0, phase, rnd, "Loss/scores/fake"), fx.reports(0, phase, rnd, "Loss/scores/real")])
        else:
            ref = fx.reports(0, phase, rnd, report[phase])
        assert_close_rel(value, ref, 1e-5, f"{fx.name} {phase} round {rnd} {report.get(phase, 'D logits')}")
    grads = {k.split(".", 1)[1]: v for k, v in fx.tensors("grads1").items() if k.startswith(phase + ".")}
    largest = max(v.abs().max().item() for v in grads.values())
    for key, p in module.named_parameters():
        ref = grads.get(key)
        assert (p.grad is None) == (ref is None), f"{phase}.{key}: a gradient in one code only"
        if ref is not None:  # a tensor of near-zero gradients (R1's biases) is held to the phase's largest
            assert_close_rel(p.grad, ref, 1e-4, f"{fx.name} {phase} grad {key}", floor=1e-6 * largest)


STEP1_CASES = [("sg2_noaug", "Gmain"), ("sg2_noaug", "Dmain"), ("sg2_noaug", "Dreg"), ("sg2_noaug", "Greg"),
               ("sg2", "Greg"), ("sg2_cond", "Greg"),
               ("sg3t", "Gboth"), ("sg3t", "Dmain"), ("sg3t", "Dreg")]


@pytest.mark.parametrize("name, phase", STEP1_CASES)
def test_step1_phase(name, phase):
    check_step1_phase(ParityFixture(name), phase)


@pytest.mark.parametrize("name", ["sg2_noaug", "sg2", "sg2_cond"])
def test_step1_path_length_with_fixes(name):
    """Both fixes of `with_fixes` make the path-length phase NVIDIA's (the augmented configs too: G reg runs no D)."""
    with with_fixes():
        check_step1_phase(ParityFixture(name), "Greg")


def test_step1_path_length_running_mean_gradient():
    """Fixed: the gradient flows through the running mean, as NVIDIA's (loss.py: pl_mean = self.pl_mean.lerp(
    pl_lengths.mean(), pl_decay))."""
    with with_fixes(pl_mean_gradient=False):
        check_step1_phase(ParityFixture("sg2_noaug"), "Greg")


def test_step1_path_length_bias_gradients_absent():
    """Fixed: ops.bias_act's fast path leaves ToRGB biases without a gradient in G reg, as NVIDIA's autograd does
    (a zero gradient would count as an Adam step for them)."""
    with with_fixes(reference_bias_act=False):
        check_step1_phase(ParityFixture("sg2_noaug"), "Greg")


@pytest.mark.parametrize("name", ["sg2", "sg2_cond"])
def test_ada_p_follows_nvidias(name):
    """Our AdaController, fed the signs of D's real logits NVIDIA's loop reported (D main and D reg, as its
    collector gathers them), moves p as NVIDIA's loop did after every step."""
    fx = ParityFixture(name)
    k = fx.loop_kwargs
    pipe = torch.nn.Module()
    pipe.register_buffer("p", torch.tensor(float(k["augment_p"])))
    ada = AdaController(pipe, target=k["ada_target"], ada_interval=k["ada_interval"], ada_kimg=k["ada_kimg"])
    expected = [s["augment_p"] for s in fx.config["scalars_before_each_step"][1:]]
    ours = []
    for step in range(fx.config["steps"]):
        for row in fx.config["reports"]["rows"]:
            if row[0] == step and row[3] == "Loss/signs/real":
                ada.accumulate(torch.tensor(row[4]))
        ada.update(fx.batch)
        ours.append(float(pipe.p))
    assert ours == pytest.approx(expected, abs=1e-7)
    assert len(set(ours)) > 3  # p moved at several of the 5 adjustments


def check_state(fx: ParityFixture, steps: int) -> None:
    """G, D, G_ema (parameters and buffers: w_avg, magnitude_ema), Adam moments and pl_mean after `steps` steps."""
    state = nvidia_steps(fx, steps)
    ref = fx.tensors(f"step{steps}")
    for role in ("G", "D", "G_ema"):
        ours = state[role].state_dict()
        for key, value in fx.state(f"step{steps}", role).items():
            torch.testing.assert_close(ours[key], value, rtol=0, atol=ATOL_WEIGHTS, msg=f"{fx.name} {role}.{key}")
    for key in ("opt_G", "opt_D"):
        opt = state[key]
        for pname, p in state["G" if key == "opt_G" else "D"].named_parameters():
            if f"{key}.step.{pname}" not in ref:
                assert p not in opt.state, f"{key}: {pname} has an Adam state, NVIDIA's has none"
                continue
            assert float(opt.state[p]["step"]) == float(ref[f"{key}.step.{pname}"]), f"{key}.step.{pname}"
            for field in ("exp_avg", "exp_avg_sq"):
                expected = ref[f"{key}.{field}.{pname}"]
                assert_close_rel(opt.state[p][field], expected, RTOL_MOMENTS, f"{fx.name} {key}.{field}.{pname}")
    torch.testing.assert_close(state["pl_mean"], ref["loss.pl_mean"], rtol=1e-5, atol=0)


@pytest.mark.parametrize("steps", [1, 20])
@pytest.mark.parametrize("name", ["sg3t", "sg2_noaug"])
def test_state_after_steps(name, steps):
    check_state(ParityFixture(name), steps)


@pytest.mark.parametrize("steps", [1, 20])
def test_state_after_steps_with_fixes(steps):
    with with_fixes():
        check_state(ParityFixture("sg2_noaug"), steps)
