"""The StyleGAN2-ADA training loop, flat and top to bottom.

Each step draws one minibatch of reals and runs up to four phases (StyleGAN2 section 3.1, lazy
regularisation): G main (non-saturating loss, every step), G reg (path length, every g_reg_interval steps),
D main (logistic loss, every step) and D reg (R1, every d_reg_interval steps). Regularised optimizers use the
learning rate and betas scaled by interval / (interval + 1). Then the G EMA is updated and ADA adjusts p.

StyleGAN3, as NVIDIA's StyleGAN2Loss: the generator pass of D main runs with update_emas=True, which updates
every synthesis layer's `magnitude_ema` (averaged over processes afterwards, so ranks stay identical), and every
image D sees is first blurred with the fading D blur of training/blur.py (sigma from the image counter).

Every `tick_kimg` thousand images a tick line goes to log.txt, stats.jsonl and TensorBoard; every
`snap_ticks` ticks a network snapshot (our export) and a training checkpoint (everything needed to resume
exactly) are written.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..data.dataset import ImageDataset
from ..data.sampler import InfiniteSampler
from ..errors import UserInputError
from ..io.export import load_state_strict, save_network
from ..io.load import parse_device
from ..networks.fast_paths import check_compile_support, compile_module, set_channels_last
from ..networks.layers import set_bias_act_impl, set_resample_impl
from ..networks.registry import build_network
from ..networks.stylegan3 import set_filtered_lrelu_impl
from ..tools.images import make_grid, save_image, to_uint8
from ..tools.speed_path import EagerFallback, choose_training_path
from . import losses
from .ada import AdaController
from .augment import make_augment_pipe
from .blur import blur_images, blur_sigma
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import DistInfo, all_reduce_mean_, barrier, broadcast_module_, init_from_env
from .ema import ema_beta, update_ema
from .options import COMPILE_CHOICES, PRECISIONS, RunOptions
from .progressive import LodSchedule, lod_images, optimizer_reset_needed
from .run_dir import (CHECKPOINT_NAME, OPTIONS_NAME, latest_run_with_checkpoint, new_run_dir, snapshot_name,
                      write_json)
from .tensorboard import EventWriter
from .wgan_gp import drift_penalty, gradient_penalty


class TrainingDiverged(RuntimeError):
    """A loss or weight became NaN/Inf; no checkpoint was written after it happened."""


@dataclass
class Phase:
    name: str             # Gmain, Greg, Dmain, Dreg, or Dboth (main loss and R1 in one pass)
    module: nn.Module     # the network this phase updates
    opt: torch.optim.Optimizer
    interval: int         # run every `interval` steps; the loss is scaled by it


# ----------------------------------------------------------------------------------------------------------
# Setup helpers


def _device(opts: RunOptions, dist: DistInfo) -> torch.device:
    """The device of this process: with several processes on CUDA, the GPU of its local rank."""
    if opts.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = parse_device(opts.device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    return device


def _resolve_resume(opts: RunOptions):
    """(run_dir to continue or None, network file for transfer learning or None)."""
    if opts.resume is None:
        return None, None
    if opts.resume == "auto":
        return latest_run_with_checkpoint(opts.outdir), None
    path = Path(opts.resume)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise UserInputError(f"--resume {path}: no {CHECKPOINT_NAME} in that folder")
        return path, None
    if path.name == CHECKPOINT_NAME:
        return path.parent, None
    if not path.is_file():
        raise UserInputError(f"--resume {path}: no such file or run folder")
    return None, path


def _split_batch(batch_size: int, batch_gpu: Optional[int], world_size: int, mbstd: Optional[int],
                 clamp: bool = False) -> Tuple[int, int, int]:
    """(images per process, images per pass, passes) for a global batch, checked.

    clamp: cap the per-pass batch at the per-process batch (progressive growing shrinks the batch as it grows).
    """
    if batch_size % world_size:
        raise UserInputError(f"--batch {batch_size} must be divisible by the number of processes ({world_size})")
    per_rank = batch_size // world_size
    per_pass = min(batch_gpu or per_rank, per_rank) if clamp else batch_gpu or per_rank
    if per_rank % per_pass:
        raise UserInputError(f"--batch-gpu {per_pass} must divide the per-process batch {per_rank}")
    if mbstd and per_pass % min(mbstd, per_pass):
        raise UserInputError(f"--mbstd-group {mbstd} must divide the per-pass batch {per_pass}")
    return per_rank, per_pass, per_rank // per_pass


def _lazy_ratio(reg_interval: Optional[int]) -> float:
    """With lazy regularisation (StyleGAN2 appendix B) lr and betas are scaled by interval / (interval + 1)."""
    return reg_interval / (reg_interval + 1) if reg_interval else 1.0


def _make_optimizer(module: nn.Module, lr: float, betas, eps: float, reg_interval: Optional[int]):
    """Adam, shared by the main and regularisation phases of one network.

    The fused kernel (one call for all parameters) on CPUs and GPUs: the per-tensor Python loop of the default
    CPU Adam cost ~4% of a training step at the small widths a CPU trains (measured: 3.5 vs 0.9 ms per G step).
    """
    ratio = _lazy_ratio(reg_interval)
    device = next(module.parameters()).device
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=[b ** ratio for b in betas], eps=eps,
                            fused=device.type in ("cpu", "cuda") or None)


def _precision_context(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _rng_states(gen: torch.Generator, device: torch.device) -> Dict[str, torch.Tensor]:
    states = {"torch_cpu": torch.get_rng_state(), "global": gen.get_state()}
    if device.type == "cuda":
        states["torch_cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: Dict[str, torch.Tensor], gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(states["torch_cpu"])
    gen.set_state(states["global"])
    if device.type == "cuda" and "torch_cuda" in states:
        torch.cuda.set_rng_state(states["torch_cuda"], device)


def _grid_inputs(G: nn.Module, dataset: ImageDataset, seed: int, resolution: int):
    cols = int(np.clip(512 // resolution, 4, 16))
    rows = int(np.clip(256 // resolution, 4, 8))
    gen = torch.Generator().manual_seed(seed + 12345)
    z = torch.randn([rows * cols, G.z_dim], generator=gen)
    if G.c_dim:
        idx = torch.randint(len(dataset), [rows * cols], generator=gen)
        c = torch.from_numpy(np.stack([dataset.get_label(int(i)) for i in idx])).float()
    else:
        c = torch.zeros([rows * cols, 0])
    return z, c, cols


@torch.no_grad()
def _save_fakes(G_ema: nn.Module, z: torch.Tensor, c: torch.Tensor, cols: int, path: Path, device) -> None:
    images = [to_uint8(G_ema(zb.to(device), cb.to(device), noise_mode="const")) for zb, cb in zip(z.split(32), c.split(32))]
    save_image(make_grid(np.concatenate(images), cols), path)


def _format_time(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02d}m"
    return f"{s // 86400}d {(s // 3600) % 24:02d}h"


class _Log:
    """log.txt (and stdout when there is no progress bar), written by rank 0 only."""

    def __init__(self, path: Optional[Path], echo: bool):
        self.file = open(path, "a") if path is not None else None
        self.echo = echo

    def __call__(self, line: str) -> None:
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()
        if self.echo:
            print(line, flush=True)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


# ----------------------------------------------------------------------------------------------------------
# The loop


def train(opts: RunOptions) -> Path:
    """Train as described by `opts`; returns the run directory."""
    if opts.precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {PRECISIONS}, got {opts.precision!r}")
    if opts.compile not in COMPILE_CHOICES:
        raise UserInputError(f"compile must be one of {COMPILE_CHOICES}, got {opts.compile!r}")
    resume_dir, transfer_path = _resolve_resume(opts)
    if resume_dir is not None:  # the run's own options define the networks; length and logging come from now
        saved = RunOptions.from_dict(json.loads((resume_dir / OPTIONS_NAME).read_text()))
        if Path(opts.data).resolve() != Path(saved.data).resolve():
            raise UserInputError(f"{resume_dir} trained on {saved.data}, not {opts.data}: resume it with that --data, "
                                 f"or start a new run from one of its snapshots (--resume network-snapshot-....safetensors)")
        saved.config.total_kimg = opts.config.total_kimg
        for name in ("tick_kimg", "snap_ticks", "workers", "device", "progress", "metrics", "metrics_num",
                     "image_snap", "max_minutes", "channels_last", "compile"):
            setattr(saved, name, getattr(opts, name))
        saved.resume = opts.resume
        opts = saved
    cfg = opts.config
    if opts.metrics:  # fail now on a misspelt name, not at the first snapshot hours later
        from ..metrics.evaluate import metric_spec
        for name in opts.metrics:
            metric_spec(name)
    dist = init_from_env(_device(opts, DistInfo()).type)
    device = _device(opts, dist)

    # Data.
    dataset = ImageDataset(opts.data, use_labels=opts.cond, xflip=opts.mirror, max_size=opts.max_size,
                           random_seed=opts.seed)
    if opts.cond and not dataset.has_labels:
        raise UserInputError(f"--cond needs labels, but {opts.data} has no dataset.json labels; "
                             f"make one with `stylegan dataset ... --labels-from-folders`")
    resolution, channels, c_dim = dataset.resolution, dataset.num_channels, dataset.label_dim if opts.cond else 0
    mbstd = cfg.network.mbstd_group_size
    batch_rank, batch_gpu, num_rounds = _split_batch(cfg.batch_size, opts.batch_gpu, dist.world_size, mbstd,
                                                     clamp=cfg.progressive is not None)

    # Networks.
    net_cfg = copy.deepcopy(cfg.network)
    if opts.precision in ("fp32", "bf16"):
        net_cfg.num_fp16_res = 0
    G_kwargs = net_cfg.generator_kwargs(resolution, channels, c_dim)
    D_kwargs = net_cfg.discriminator_kwargs(resolution, channels, c_dim)
    torch.manual_seed(opts.seed)
    G = build_network(net_cfg.generator_class, G_kwargs).train().requires_grad_(False).to(device)
    D = build_network(net_cfg.discriminator_class, D_kwargs).train().requires_grad_(False).to(device)
    schedule = LodSchedule.from_dict(cfg.progressive) if cfg.progressive else None
    if schedule is not None and not hasattr(G, "set_lod"):
        raise UserInputError("progressive growing needs StyleGAN (v1) networks (--arch stylegan1)")
    if schedule is not None:  # check every scheduled minibatch now, not when its phase starts
        phase_kimg = schedule.lod_training_kimg + schedule.lod_transition_kimg
        for idx in range(schedule.max_lod + 1):
            _split_batch(schedule.batch_size_at(idx * phase_kimg), opts.batch_gpu, dist.world_size, mbstd, clamp=True)
    if opts.channels_last and net_cfg.arch == "stylegan3":
        raise UserInputError("--channels-last applies to StyleGAN2 networks; StyleGAN3 generators (filtered "
                             "leaky ReLU layers) have no channels-last path: train them without it")
    for module in (G, D):
        set_resample_impl(module, opts.resample)
        set_bias_act_impl(module, "reference" if opts.resample == "reference" else "fused")
        if net_cfg.arch == "stylegan3" and module is G:
            set_filtered_lrelu_impl(G, "reference" if opts.resample == "reference" else "fast")
        if opts.channels_last:
            set_channels_last(module, True)
    # --- Automatic path choice (tools/speed_path.py, issue #15): the 'auto' precision, layout and compile settings
    # resolved for this machine; training_options.json keeps the flags' values and records the choice beside them.
    requested_opts = opts
    speed = choose_training_path(opts, G, D, device, batch_gpu, dist.world_size, progressive=schedule is not None)
    opts = dataclasses.replace(opts, precision=speed.precision, channels_last=speed.channels_last, compile=speed.compile)
    if speed.channels_last and requested_opts.channels_last is None:
        for module in (G, D):
            set_channels_last(module, True)
    # --- end of automatic path choice
    G_ema = copy.deepcopy(G).eval()
    # What the G main and D main passes call: compiled with --compile (the same parameters); the regularisers
    # need double backward, which compiled graphs do not provide, and call the modules.
    G_mapping_main, G_synthesis_main, D_main = G.mapping, G.synthesis, D
    if opts.compile != "off":
        if schedule is not None:
            raise UserInputError("--compile does not combine with progressive growing (the fade-in changes the "
                                 "graph at every step); train StyleGAN v1 without it")
        check_compile_support(device)
        torch._dynamo.reset()  # compiled code of earlier runs in this process would count against the variant limit
        G_mapping_main, G_synthesis_main, D_main = (EagerFallback(compile_module(m, opts.compile), m)
                                                    for m in (G.mapping, G.synthesis, D))
    magnitude_emas = [b for name, b in G.named_buffers() if name.endswith("magnitude_ema")]  # StyleGAN3 only
    frozen_D = {name for name, p in D.named_parameters()
                if not getattr(D.get_submodule(name.rsplit(".", 1)[0]), "trainable", True)}

    augment_pipe = None
    ada = None
    if cfg.aug != "noaug":
        augment_pipe = make_augment_pipe(cfg.augpipe).train().requires_grad_(False).to(device)
        augment_pipe.p.fill_(cfg.aug_p if cfg.aug == "fixed" else 0.0)
        if cfg.aug == "ada":
            ada = AdaController(augment_pipe, target=cfg.ada_target, ada_interval=cfg.ada_interval, ada_kimg=cfg.ada_kimg)

    opt_G = _make_optimizer(G, cfg.g_lr, cfg.betas, cfg.eps, cfg.g_reg_interval)
    opt_D = _make_optimizer(D, cfg.d_lr, cfg.betas, cfg.eps, cfg.d_reg_interval if cfg.loss == "r1" else None)
    phases = [Phase("Gmain", G, opt_G, 1)]
    if cfg.pl_weight > 0 and cfg.g_reg_interval:
        phases.append(Phase("Greg", G, opt_G, cfg.g_reg_interval))
    if cfg.loss == "r1" and cfg.d_reg_interval:
        phases.append(Phase("Dmain", D, opt_D, 1))
        if cfg.r1_gamma > 0:
            phases.append(Phase("Dreg", D, opt_D, cfg.d_reg_interval))
    else:
        phases.append(Phase("Dboth", D, opt_D, 1))

    # State that a checkpoint carries.
    gen = torch.Generator().manual_seed(opts.seed)  # draws shared by all ranks: z, labels, mixing
    torch.manual_seed(opts.seed * dist.world_size + dist.rank)  # per-rank draws: noise, augmentation
    state = dict(cur_nimg=0, step=0, tick=0, tick_start_nimg=0, elapsed_s=0.0, pl_mean=0.0, ada={}, data_items=0,
                 prev_lod=None)
    if transfer_path is not None:
        nets = _load_transfer(transfer_path, G, D, G_ema)
        if augment_pipe is not None and "augment_p" in nets and cfg.aug == "ada":
            augment_pipe.p.fill_(float(nets["augment_p"]))
    if resume_dir is not None:
        ckpt = load_checkpoint(resume_dir / CHECKPOINT_NAME)
        for role, module in (("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", augment_pipe)):
            if module is not None:
                load_state_strict(module, ckpt["modules"][role], f"{resume_dir} [{role}]")
        opt_G.load_state_dict(ckpt["optimizers"]["G"])
        opt_D.load_state_dict(ckpt["optimizers"]["D"])
        state.update(ckpt["state"])
        if ada is not None and state["ada"]:
            ada.load_state_dict(state["ada"])
        _set_rng_states(ckpt["rng"], gen, device)
        if dist.rank > 0:  # only rank 0's stream is saved; the others restart theirs deterministically
            torch.manual_seed(opts.seed * dist.world_size + dist.rank + 7919 * state["step"])
    for module in (G, D, G_ema):
        broadcast_module_(module, dist.world_size)
    pl_mean = torch.tensor(state["pl_mean"], dtype=torch.float32, device=device)

    # Run directory, logs (rank 0).
    run_dir = resume_dir
    if dist.is_main and run_dir is None:
        desc = f"{Path(opts.data).stem}-{cfg.name}-gpus{dist.world_size}-batch{cfg.batch_size}"
        desc += "-cond" if opts.cond else ""
        desc += f"-{opts.desc}" if opts.desc else ""
        run_dir = new_run_dir(opts.outdir, desc)
    progress = opts.progress if opts.progress is not None else sys.stdout.isatty()
    log = _Log(run_dir / "log.txt" if dist.is_main else None, echo=dist.is_main and not progress)
    stats_file = open(run_dir / "stats.jsonl", "a") if dist.is_main else None
    events = EventWriter(run_dir) if dist.is_main else None
    if dist.is_main:
        write_json(run_dir / OPTIONS_NAME, {**requested_opts.to_dict(), "speed_path": speed.to_json()})
        log(f"{'Resuming' if resume_dir else 'Training'} in {run_dir}: {len(dataset)} images {resolution}x{resolution}"
            f"x{channels}, labels {c_dim}, batch {cfg.batch_size} ({dist.world_size} process(es) x {num_rounds} "
            f"round(s) x {batch_gpu}), device {device}, precision {opts.precision}")
        log(f"G {sum(p.numel() for p in G.parameters()):,} parameters, D {sum(p.numel() for p in D.parameters()):,}")
        log(speed.summary())  # the automatic path choice
        if progress:  # the log echoes to stdout only without a progress bar
            print(speed.summary(), flush=True)

    grid_z, grid_c, grid_cols = _grid_inputs(G, dataset, opts.seed, resolution)
    if dist.is_main and resume_dir is None and opts.image_snap:
        reals = np.stack([dataset[i][0] for i in range(min(len(dataset), len(grid_z)))]).transpose(0, 2, 3, 1)
        save_image(make_grid(reals, grid_cols), run_dir / "reals.png")
        _save_fakes(G_ema, grid_z, grid_c, grid_cols, run_dir / "fakes_init.png", device)

    def make_loader(per_rank: int):
        """Reals for this rank from where the run stands (state['data_items'] already consumed)."""
        sampler = InfiniteSampler(len(dataset), rank=dist.rank, num_replicas=dist.world_size, seed=opts.seed,
                                  start=state["data_items"])
        return iter(torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=per_rank,
                                                num_workers=opts.workers, pin_memory=device.type == "cuda",
                                                prefetch_factor=2 if opts.workers else None,
                                                persistent_workers=opts.workers > 0,
                                                generator=torch.Generator().manual_seed(opts.seed)))

    loader, loader_batch = None, None
    batch_size = cfg.batch_size
    lod = 0.0
    total_nimg = int(round(cfg.total_kimg * 1000))
    bar = None
    if progress and dist.is_main:
        from tqdm import tqdm
        bar = tqdm(total=total_nimg / 1000, initial=state["cur_nimg"] / 1000, unit="kimg", dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]")

    precision_ctx = lambda: _precision_context(opts.precision, device)
    tick_sums: Dict[str, List[float]] = {}
    phase_time: Dict[str, float] = {ph.name: 0.0 for ph in phases}
    tick_start_time = time.time()
    start_elapsed = state["elapsed_s"]
    start_time = time.time()
    done = state["cur_nimg"] >= total_nimg

    def report(name: str, values: torch.Tensor) -> None:
        values = values.detach().float().flatten()
        if not torch.isfinite(values).all():
            raise TrainingDiverged(f"{name} became NaN/Inf at {state['cur_nimg'] / 1000:.3f} kimg; the last "
                                   f"checkpoint before it is kept. Lower the learning rate (--glr/--dlr), raise "
                                   f"--gamma, or use --precision fp32.")
        sums = tick_sums.setdefault(name, [0.0, 0])
        sums[0] += float(values.sum())
        sums[1] += values.numel()

    def run_G(z, c, main=False, update_emas=False):
        """update_emas: update the synthesis running averages (StyleGAN3 magnitude_ema) in this pass."""
        mapping, synthesis = (G_mapping_main, G_synthesis_main) if main else (G.mapping, G.synthesis)
        ws = mapping(z, c)
        if cfg.style_mixing_prob > 0:  # per-rank draws, like the noise inputs
            active = G.num_ws - 2 * int(math.floor(lod)) if schedule is not None else None
            ws = losses.mix_styles(ws, mapping(torch.randn_like(z), c), cfg.style_mixing_prob, num_active=active)
        return synthesis(ws, **({"update_emas": True} if update_emas and magnitude_emas else {})), ws

    def run_D(img, c, main=False):
        img = blur_images(img, blur)  # StyleGAN3's fading D blur (nothing when sigma is 0), before augmenting
        if augment_pipe is not None and float(augment_pipe.p) > 0:
            img = augment_pipe(img)
        return (D_main if main else D)(img, c)

    while not done:
        if schedule is not None:  # progressive growing: lod, batch and learning rates follow the image counter
            kimg = state["cur_nimg"] / 1000
            lod = schedule.lod_at(kimg)
            batch_size = schedule.batch_size_at(kimg)
            batch_rank, batch_gpu, num_rounds = _split_batch(batch_size, opts.batch_gpu, dist.world_size, mbstd,
                                                             clamp=True)
            for opt, lr in zip((opt_G, opt_D), schedule.lr_at(kimg)):
                for group in opt.param_groups:
                    group["lr"] = lr
            if state["prev_lod"] is not None and optimizer_reset_needed(state["prev_lod"], lod):
                opt_G.state.clear()  # a new phase starts with fresh Adam moments, as the official loop does
                opt_D.state.clear()
            state["prev_lod"] = lod
            for module in (G, D, G_ema):
                module.set_lod(lod)
        if loader_batch != batch_rank:
            loader, loader_batch = make_loader(batch_rank), batch_rank

        # Data for this step: reals for this rank; latents and labels for the whole batch (shared draws).
        real_img, real_c = next(loader)
        state["data_items"] += batch_rank
        real_img = real_img.to(device).to(torch.float32) / 127.5 - 1
        if schedule is not None:
            real_img = lod_images(real_img, lod)
        real_img = real_img.split(batch_gpu)
        real_c = real_c.to(device).to(torch.float32).split(batch_gpu)
        all_z = torch.randn([len(phases), batch_size, G.z_dim], generator=gen)
        label_idx = torch.randint(len(dataset), [len(phases), batch_size], generator=gen)
        if c_dim:
            all_c = torch.from_numpy(np.stack([dataset.get_label(int(i)) for i in label_idx.flatten()]))
            all_c = all_c.float().reshape(len(phases), batch_size, c_dim)
        else:
            all_c = torch.zeros([len(phases), batch_size, 0])
        mine = slice(dist.rank * batch_rank, (dist.rank + 1) * batch_rank)
        blur = blur_sigma(state["cur_nimg"], cfg.blur_init_sigma, cfg.blur_fade_kimg)

        for phase_idx, phase in enumerate(phases):
            if state["step"] % phase.interval != 0:
                continue
            t0 = time.time()
            gen_z = all_z[phase_idx, mine].to(device).split(batch_gpu)
            gen_c = all_c[phase_idx, mine].to(device).split(batch_gpu)
            phase.opt.zero_grad(set_to_none=True)
            trainable = [p for name, p in phase.module.named_parameters()
                         if phase.module is not D or name not in frozen_D]
            for p in trainable:
                p.requires_grad_(True)
            # Each round's loss is a mean over its images: dividing by the rounds makes the sum a mean over the
            # batch (NVIDIA sums per-round means; under Adam the two differ only through eps).
            gain = phase.interval / num_rounds
            w_sum = torch.zeros([G.w_dim], device=device)
            for r_img, r_c, z, c in zip(real_img, real_c, gen_z, gen_c):
                with precision_ctx():
                    if phase.name == "Gmain":
                        img, _ = run_G(z, c, main=True)
                        logits = run_D(img, c, main=True)
                        loss = -logits if cfg.loss == "wgan-gp" else losses.g_nonsaturating_loss(logits)
                        report("Loss/scores/fake", logits)
                        report("Loss/G/loss", loss)
                    elif phase.name == "Greg":
                        n = max(z.shape[0] // cfg.pl_batch_shrink, 1)
                        img, ws = run_G(z[:n], c[:n])
                        lengths = losses.path_lengths(img.float(), ws)
                        penalty, pl_mean_new = losses.path_length_penalty(lengths, pl_mean, cfg.pl_decay)
                        pl_mean.copy_(pl_mean_new.detach())
                        loss = penalty * cfg.pl_weight
                        report("Loss/pl_penalty", penalty)
                    elif phase.name == "Dmain":
                        img, ws = run_G(z, c, main=True, update_emas=True)
                        w_sum += ws[:, 0].detach().float().sum(dim=0)
                        fake_logits = run_D(img.detach(), c, main=True)
                        real_logits = run_D(r_img, r_c, main=True)
                        loss = losses.d_logistic_loss_fake(fake_logits) + losses.d_logistic_loss_real(real_logits)
                        report("Loss/scores/fake", fake_logits)
                        report("Loss/scores/real", real_logits)
                        report("Loss/signs/real", real_logits.sign())
                        report("Loss/D/loss", loss)
                        if ada is not None:
                            ada.accumulate(real_logits)
                    elif phase.name == "Dreg":
                        r_img = r_img.detach().requires_grad_(True)
                        real_logits = run_D(r_img, r_c)
                        penalty = losses.r1_penalty(r_img, real_logits.float())
                        loss = penalty * (cfg.r1_gamma / 2)
                        report("Loss/r1_penalty", penalty)
                    elif cfg.loss == "wgan-gp":  # Dboth: E[D(fake)] - E[D(real)] + GP + drift (wgan_gp module)
                        img, ws = run_G(z, c, update_emas=True)
                        w_sum += ws[:, 0].detach().float().sum(dim=0)
                        fake_logits = run_D(img.detach(), c)
                        real_logits = run_D(r_img, r_c)
                        gp = gradient_penalty(run_D, r_img, img.detach(), r_c)
                        loss = fake_logits.flatten() - real_logits.flatten() + gp * 10.0 + drift_penalty(real_logits) * 0.001
                        report("Loss/D/loss", loss)
                        report("Loss/signs/real", real_logits.sign())
                        if ada is not None:
                            ada.accumulate(real_logits)
                    else:  # Dboth: logistic loss and R1 in one pass (no lazy regularisation, as StyleGAN v1)
                        img, ws = run_G(z, c, update_emas=True)
                        w_sum += ws[:, 0].detach().float().sum(dim=0)
                        fake_logits = run_D(img.detach(), c)
                        r_img = r_img.detach().requires_grad_(cfg.r1_gamma > 0)
                        real_logits = run_D(r_img, r_c)
                        loss = losses.d_logistic_loss_fake(fake_logits) + losses.d_logistic_loss_real(real_logits)
                        report("Loss/D/loss", loss)
                        report("Loss/scores/real", real_logits)
                        report("Loss/signs/real", real_logits.sign())
                        if ada is not None:
                            ada.accumulate(real_logits)
                        if cfg.r1_gamma > 0:
                            penalty = losses.r1_penalty(r_img, real_logits.float())
                            loss = loss + penalty * (cfg.r1_gamma / 2)
                            report("Loss/r1_penalty", penalty)
                loss.float().mean().mul(gain).backward()
            for p in trainable:
                p.requires_grad_(False)
            grads = [p.grad for p in trainable if p.grad is not None]
            all_reduce_mean_(grads, dist.world_size)
            for g in grads:
                torch.nan_to_num_(g, nan=0.0, posinf=1e5, neginf=-1e5)
            phase.opt.step()
            if phase.name in ("Dmain", "Dboth") and G.mapping.w_avg_beta is not None:
                # Track the average w for truncation over the whole global batch, identically on every rank (once
                # per step from the D pass; NVIDIA updates it on every training mapping pass of its rank).
                all_reduce_mean_([w_sum], dist.world_size)
                w_mean = w_sum / batch_rank
                G.mapping.w_avg.copy_(w_mean.lerp(G.mapping.w_avg, G.mapping.w_avg_beta))
            if phase.name in ("Dmain", "Dboth"):
                # Each rank updated its magnitude EMAs from its own images; the lerp is linear, so their mean is
                # the update from the whole batch (NVIDIA lets the ranks drift apart and snapshots rank 0's).
                all_reduce_mean_(magnitude_emas, dist.world_size)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            phase_time[phase.name] += time.time() - t0

        # G EMA, counters, ADA.
        update_ema(G_ema, G, ema_beta(batch_size, cfg.ema_kimg, state["cur_nimg"], cfg.ema_rampup))
        state["cur_nimg"] += batch_size
        state["step"] += 1
        if ada is not None:
            ada.update(batch_size)
        if bar is not None:
            bar.update(batch_size / 1000)
        done = state["cur_nimg"] >= total_nimg
        if opts.max_minutes is not None and time.time() - start_time >= opts.max_minutes * 60:
            done = True
        if not done and state["cur_nimg"] < state["tick_start_nimg"] + opts.tick_kimg * 1000:
            continue

        # Tick: stats, log line, snapshot.
        for name, p in G.named_parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(f"G weight {name} became NaN/Inf at {state['cur_nimg'] / 1000:.3f} kimg")
        now = time.time()
        tick_sec = now - tick_start_time
        tick_kimg = (state["cur_nimg"] - state["tick_start_nimg"]) / 1000
        elapsed = start_elapsed + (now - start_time)
        stats = {name: s / max(n, 1) for name, (s, n) in tick_sums.items()}
        stats.update({
            "Progress/tick": state["tick"], "Progress/kimg": state["cur_nimg"] / 1000,
            "Progress/augment": float(augment_pipe.p) if augment_pipe is not None else 0.0,
            "Progress/lod": lod, "Progress/batch": batch_size,
            "Timing/total_sec": elapsed, "Timing/sec_per_tick": tick_sec,
            "Timing/sec_per_kimg": tick_sec / max(tick_kimg, 1e-8),
            "Timing/img_per_sec": tick_kimg * 1000 / max(tick_sec, 1e-8),
            **{f"Timing/phase/{k}_sec": v for k, v in phase_time.items()},
        })
        if ada is not None and ada.r_t is not None:
            stats["Progress/ada_rt"] = ada.r_t
        if dist.is_main:
            log(f"tick {state['tick']:<5d} kimg {state['cur_nimg'] / 1000:<8.3f} time {_format_time(elapsed):<12s} "
                f"sec/tick {tick_sec:<7.1f} sec/kimg {stats['Timing/sec_per_kimg']:<7.2f} "
                f"img/s {stats['Timing/img_per_sec']:<7.1f} G {stats.get('Loss/G/loss', float('nan')):<6.3f} "
                f"D {stats.get('Loss/D/loss', float('nan')):<6.3f} augment {stats['Progress/augment']:.3f}")
            stats_file.write(json.dumps({**stats, "timestamp": now}) + "\n")
            stats_file.flush()
            events.add_scalars(stats, step=int(state["cur_nimg"] / 1000 * 1000))
            if bar is not None:
                bar.set_postfix_str(f"{stats['Timing/img_per_sec']:.1f} img/s, {stats['Timing/sec_per_kimg']:.1f} "
                                    f"s/kimg, G {stats.get('Loss/G/loss', 0):.3f}, D {stats.get('Loss/D/loss', 0):.3f}, "
                                    f"p {stats['Progress/augment']:.3f}")
        state["tick"] += 1
        state["tick_start_nimg"] = state["cur_nimg"]
        state["elapsed_s"] = elapsed
        tick_sums.clear()
        phase_time = {k: 0.0 for k in phase_time}

        if done or state["tick"] % opts.snap_ticks == 0:
            state["pl_mean"] = float(pl_mean)
            state["ada"] = ada.state_dict() if ada is not None else {}
            if dist.is_main:
                extra = {"augment_p": float(augment_pipe.p) if augment_pipe is not None else 0.0,
                         "training_set_kwargs": {"path": str(opts.data), "use_labels": opts.cond,
                                                 "xflip": opts.mirror, "resolution": resolution},
                         "cur_nimg": state["cur_nimg"]}
                save_network(run_dir / snapshot_name(state["cur_nimg"]), {"G": G, "G_ema": G_ema, "D": D}, extra)
                modules = {"G": G, "D": D, "G_ema": G_ema}
                if augment_pipe is not None:
                    modules["augment_pipe"] = augment_pipe
                save_checkpoint(run_dir / CHECKPOINT_NAME, modules, {"G": opt_G, "D": opt_D},
                                _rng_states(gen, device), state)
                if opts.image_snap:
                    _save_fakes(G_ema, grid_z, grid_c, grid_cols, run_dir / f"fakes{state['cur_nimg'] // 1000:06d}.png",
                                device)
                if opts.metrics:
                    _evaluate_metrics(opts, run_dir, G_ema, log, device)
            barrier(dist.world_size)
        tick_start_time = time.time()

    if bar is not None:
        bar.close()
    if dist.is_main:
        log(f"Done: {state['cur_nimg'] / 1000:.3f} kimg in {run_dir}")
        stats_file.close()
        events.close()
    log.close()
    return run_dir


def _load_transfer(path: Path, G: nn.Module, D: nn.Module, G_ema: nn.Module) -> dict:
    """Initialise G, D and G_ema from a network file (weights only; shapes must match)."""
    from ..io.load import load_network
    nets = load_network(path)
    for role, module in (("G", G), ("D", D), ("G_ema", G_ema)):
        source = nets.get(role) or (nets.get("G_ema") if role == "G" else None)
        if source is None:
            continue
        state = source.state_dict()
        load_state_strict(module, {k: v.to(next(module.parameters()).device) for k, v in state.items()},
                          f"{path} [{role}]")
    return nets


def _evaluate_metrics(opts: RunOptions, run_dir: Path, G_ema: nn.Module, log, device) -> None:
    from ..metrics.evaluate import compute_metric
    for name in opts.metrics:
        result = compute_metric(name, generator=G_ema, data=opts.data, device=device, num=opts.metrics_num,
                                num_real=opts.metrics_num, cache_dir=Path(opts.outdir) / ".metric-cache")
        with open(run_dir / f"metric-{name}.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        log(f"metric {json.dumps(result)}")
