"""The training phases of StyleGAN2 (section 3.1 and appendix B, lazy regularisation) and their losses.

Each step runs up to four phases: G main (non-saturating loss, every step), G reg (path length, every
`g_reg_interval` steps), D main (logistic loss, every step) and D reg (R1, every `d_reg_interval` steps); StyleGAN v1
and WGAN-GP runs have one D phase, `Dboth`, with the main loss and its regulariser in one pass. A phase's loss is
scaled by its interval (lazy regularisation).

`phase_loss` computes one phase's per-sample loss for one round of images from the small functions of
`training.losses` and `training.wgan_gp`; `run_phase` runs a phase over a step's rounds and updates its network.
The benchmarks and the automatic path choice time these same functions.

StyleGAN3, as NVIDIA's StyleGAN2Loss: the generator pass of D main runs with update_emas=True, which updates every
synthesis layer's `magnitude_ema`, and every image D sees is first blurred with the fading D blur of
training/blur.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from ..presets import TrainingConfig
from . import losses
from .ada import AdaController
from .blur import blur_images
from .distributed import all_reduce_mean_
from .wgan_gp import wgan_g_loss, wgan_gp_d_losses

PHASE_NAMES = ("Gmain", "Greg", "Dmain", "Dreg", "Dboth")
Report = Callable[[str, torch.Tensor], None]


@dataclass
class Phase:
    name: str             # one of PHASE_NAMES
    module: nn.Module     # the network this phase updates
    opt: Optional[torch.optim.Optimizer]
    interval: int         # run every `interval` steps; the loss is scaled by it


def build_phases(cfg: TrainingConfig, G: nn.Module, D: nn.Module, opt_G=None, opt_D=None) -> List[Phase]:
    """The phases a run of `cfg` cycles through, in order."""
    phases = [Phase("Gmain", G, opt_G, 1)]
    if cfg.pl_weight > 0 and cfg.g_reg_interval:
        phases.append(Phase("Greg", G, opt_G, cfg.g_reg_interval))
    if cfg.loss == "r1" and cfg.d_reg_interval:
        phases.append(Phase("Dmain", D, opt_D, 1))
        if cfg.r1_gamma > 0:
            phases.append(Phase("Dreg", D, opt_D, cfg.d_reg_interval))
    else:
        phases.append(Phase("Dboth", D, opt_D, 1))
    return phases


@dataclass
class PhaseNetworks:
    """What the phases call: G and D, the callables of the main passes (compiled ones on compiled paths; the
    regularisers need double backward, which compiled graphs do not provide, and call the modules), the augment
    pipe, and the settings that shape a pass.

    G_mapping_main, G_synthesis_main, D_main: the main passes' callables (default: the modules').
    augment_pipe:      ADA's pipe or None; it runs when its p > 0.
    style_mixing_prob: style mixing probability.
    progressive:       StyleGAN v1 progressive growing (mixing limited to the layers of the current lod).
    synthesis_kwargs:  extra arguments of every synthesis call (the benchmarks' `fused_modconv`).
    """

    G: nn.Module
    D: nn.Module
    G_mapping_main: Optional[Callable] = None
    G_synthesis_main: Optional[Callable] = None
    D_main: Optional[Callable] = None
    augment_pipe: Optional[nn.Module] = None
    style_mixing_prob: float = 0.0
    progressive: bool = False
    synthesis_kwargs: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self):
        # `is None`, not `or`: a compiled module's truth value asks the module for a length
        self.G_mapping_main = self.G.mapping if self.G_mapping_main is None else self.G_mapping_main
        self.G_synthesis_main = self.G.synthesis if self.G_synthesis_main is None else self.G_synthesis_main
        self.D_main = self.D if self.D_main is None else self.D_main
        self.magnitude_emas = [b for name, b in self.G.named_buffers() if name.endswith("magnitude_ema")]

    def run_G(self, z: torch.Tensor, c: torch.Tensor, main: bool = False, update_emas: bool = False,
              lod: float = 0.0):
        """(images, ws); style mixing from a second latent (per-rank draws, like the noise inputs);
        update_emas: update the synthesis running averages (StyleGAN3 magnitude_ema) in this pass."""
        mapping, synthesis = (self.G_mapping_main, self.G_synthesis_main) if main else (self.G.mapping,
                                                                                        self.G.synthesis)
        ws = mapping(z, c)
        if self.style_mixing_prob > 0:
            active = self.G.num_ws - 2 * int(math.floor(lod)) if self.progressive else None
            ws = losses.mix_styles(ws, mapping(torch.randn_like(z), c), self.style_mixing_prob, num_active=active)
        emas = {"update_emas": True} if update_emas and self.magnitude_emas else {}
        return synthesis(ws, **self.synthesis_kwargs, **emas), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, main: bool = False, blur: float = 0.0) -> torch.Tensor:
        """D's logits for `img`, blurred (StyleGAN3's fading D blur; nothing at sigma 0) and augmented first."""
        img = blur_images(img, blur)
        if self.augment_pipe is not None and float(self.augment_pipe.p) > 0:
            img = self.augment_pipe(img)
        return (self.D_main if main else self.D)(img, c)


@dataclass
class PhaseInputs:
    """One round of one phase: reals, latents and labels, and the step's settings."""

    real_img: torch.Tensor
    real_c: torch.Tensor
    z: torch.Tensor
    c: torch.Tensor
    blur: float = 0.0     # D blur sigma (StyleGAN3)
    lod: float = 0.0      # level of detail (StyleGAN v1 progressive growing)


def phase_loss(name: str, nets: PhaseNetworks, cfg: TrainingConfig, x: PhaseInputs, pl_mean: torch.Tensor,
               report: Report, ada: Optional[AdaController] = None, w_means: Optional[List[torch.Tensor]] = None
               ) -> torch.Tensor:
    """The per-sample loss of phase `name` for one round, reporting its statistics through `report`.

    pl_mean: the path-length running mean, updated in place by G reg.
    ada:     accumulates the signs of D's real logits (D main, D reg and Dboth: every real pass, as NVIDIA's
             loop collects `Loss/signs/real` from all of them).
    w_means: gets the mean w of the D pass's images appended (for the w_avg update), where given.
    """
    if name == "Gmain":
        img, _ = nets.run_G(x.z, x.c, main=True, lod=x.lod)
        logits = nets.run_D(img, x.c, main=True, blur=x.blur)
        loss = wgan_g_loss(logits) if cfg.loss == "wgan-gp" else losses.g_nonsaturating_loss(logits)
        report("Loss/scores/fake", logits)
        report("Loss/G/loss", loss)
        return loss
    if name == "Greg":
        n = max(x.z.shape[0] // cfg.pl_batch_shrink, 1)
        img, ws = nets.run_G(x.z[:n], x.c[:n], lod=x.lod)
        penalty, pl_mean_new = losses.path_length_penalty(losses.path_lengths(img.float(), ws), pl_mean,
                                                          cfg.pl_decay)
        pl_mean.copy_(pl_mean_new.detach())
        report("Loss/pl_penalty", penalty)
        return penalty * cfg.pl_weight
    if name == "Dreg":
        r_img = x.real_img.detach().requires_grad_(True)
        real_logits = nets.run_D(r_img, x.real_c, blur=x.blur)
        report("Loss/scores/real", real_logits)
        report("Loss/signs/real", real_logits.sign())
        if ada is not None:
            ada.accumulate(real_logits)
        penalty = losses.r1_penalty(r_img, real_logits.float())
        report("Loss/r1_penalty", penalty)
        return penalty * (cfg.r1_gamma / 2)

    # D main and Dboth: fakes from a G pass that updates the StyleGAN3 magnitude EMAs.
    main = name == "Dmain"
    img, ws = nets.run_G(x.z, x.c, main=main, update_emas=True, lod=x.lod)
    if w_means is not None:
        w_means.append(ws[:, 0].detach().float().mean(dim=0))
    fake = img.detach()
    if name == "Dboth" and cfg.loss == "wgan-gp":
        loss, real_logits = wgan_gp_d_losses(lambda im, c: nets.run_D(im, c, blur=x.blur), x.real_img, fake, x.c)
        fake_logits = None
    else:
        fake_logits = nets.run_D(fake, x.c, main=main, blur=x.blur)
        r1 = name == "Dboth" and cfg.r1_gamma > 0
        r_img = x.real_img.detach().requires_grad_(True) if r1 else x.real_img
        real_logits = nets.run_D(r_img, x.real_c, main=main, blur=x.blur)
        loss = losses.d_logistic_loss_fake(fake_logits) + losses.d_logistic_loss_real(real_logits)
    if main:
        report("Loss/scores/fake", fake_logits)
        report("Loss/scores/real", real_logits)
        report("Loss/signs/real", real_logits.sign())
        report("Loss/D/loss", loss)
    else:
        report("Loss/D/loss", loss)
        if fake_logits is not None:
            report("Loss/scores/real", real_logits)
        report("Loss/signs/real", real_logits.sign())
    if ada is not None:
        ada.accumulate(real_logits)
    if name == "Dboth" and cfg.loss != "wgan-gp" and cfg.r1_gamma > 0:
        penalty = losses.r1_penalty(r_img, real_logits.float())
        report("Loss/r1_penalty", penalty)
        loss = loss + penalty * (cfg.r1_gamma / 2)
    return loss


def phase_backward(phase: Phase, nets: PhaseNetworks, cfg: TrainingConfig, rounds: Sequence[PhaseInputs],
                   pl_mean: torch.Tensor, report: Report, precision_ctx: Callable, ada=None,
                   w_means: Optional[List[torch.Tensor]] = None) -> None:
    """The gradients of one phase over a step's rounds, accumulated in the parameters' .grad.

    As NVIDIA's loop: each round's mean loss times the phase's interval, summed over the rounds (so the gradient
    grows with the number of rounds; Adam notices only through its eps: docs/training_parity.md, row 5)."""
    for x in rounds:
        with precision_ctx():
            loss = phase_loss(phase.name, nets, cfg, x, pl_mean, report, ada, w_means)
        loss.float().mean().mul(phase.interval).backward()


def trainable_parameters(module: nn.Module) -> List[torch.nn.Parameter]:
    """The parameters of `module` a phase updates: all but those of layers marked `trainable = False` (frozen D
    layers of transfer learning)."""
    params = []
    for name, p in module.named_parameters():
        owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
        if getattr(owner, "trainable", True):
            params.append(p)
    return params


def run_phase(phase: Phase, nets: PhaseNetworks, cfg: TrainingConfig, rounds: Sequence[PhaseInputs],
              pl_mean: torch.Tensor, report: Report, precision_ctx: Callable, world_size: int = 1,
              ada: Optional[AdaController] = None, trainable: Optional[List[torch.nn.Parameter]] = None) -> None:
    """One phase of one step: gradients over the rounds, averaged over the processes, made finite, an optimizer
    step; after a D phase the w_avg tracking and the StyleGAN3 magnitude EMAs are averaged over the processes.

    trainable:  the parameters to update (default: trainable_parameters(phase.module)).
    """
    d_pass = phase.name in ("Dmain", "Dboth")
    G = nets.G
    w_means: Optional[List[torch.Tensor]] = [] if d_pass else None
    params = trainable if trainable is not None else trainable_parameters(phase.module)
    phase.opt.zero_grad(set_to_none=True)
    for p in params:
        p.requires_grad_(True)
    phase_backward(phase, nets, cfg, rounds, pl_mean, report, precision_ctx, ada, w_means)
    for p in params:
        p.requires_grad_(False)
    grads = [p.grad for p in params if p.grad is not None]
    all_reduce_mean_(grads, world_size)
    for g in grads:
        torch.nan_to_num_(g, nan=0.0, posinf=1e5, neginf=-1e5)
    phase.opt.step()
    if d_pass and G.mapping.w_avg_beta is not None:
        # Track the average w for truncation as NVIDIA's mapping does in the D pass: one update per round, from
        # that round's images (here the round's images of every rank, so that all ranks keep the same w_avg;
        # NVIDIA's ranks each track their own and rank 0's is saved).
        means = torch.stack(w_means)  # [rounds, w_dim]
        all_reduce_mean_([means], world_size)
        for w_mean in means:
            G.mapping.w_avg.copy_(w_mean.lerp(G.mapping.w_avg, G.mapping.w_avg_beta))
    if d_pass:
        # Each rank updated its magnitude EMAs from its own images; the lerp is linear, so their mean is the update
        # from the whole batch (NVIDIA lets the ranks drift apart and snapshots rank 0's).
        all_reduce_mean_(nets.magnitude_emas, world_size)
