"""Everything a training run needs, built once: the typed run state `Run` that `training.loop.train` steps.

`setup_run(opts)` checks the options, resumes a run (its own options define the networks; length, logging and the
execution path come from now) or starts one, builds the data, the networks on their execution path
(runtime.path; 'auto' settings resolved by runtime.choice with a probe that times the phases below), the
optimizers, the phases, ADA and the RNG streams, and restores a checkpoint or a transfer-learning network.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..data.dataset import ImageDataset
from ..errors import UserInputError
from ..io.export import load_state_strict
from ..io.load import parse_device
from ..networks.registry import build_network
from ..presets import TrainingConfig
from ..runtime.choice import (Job, LayoutCopies, PathChoice, bf16_psnr, choose_path, is_stylegan3, probe_latents,
                              seconds_of)
from ..runtime.compile import check_compile_support, compile_problem, compiled
from ..runtime.path import FAST, REFERENCE, ExecutionPath, apply_path, has_layout_choice
from .ada import AdaController
from .augment import make_augment_pipe
from .checkpoint import load_checkpoint
from .distributed import DistInfo, broadcast_module_, init_from_env
from .options import COMPILE_CHOICES, PRECISIONS, RunOptions
from .phases import Phase, PhaseInputs, PhaseNetworks, build_phases, phase_backward, trainable_parameters
from .progressive import LodSchedule
from .run_dir import CHECKPOINT_NAME, OPTIONS_NAME, latest_run_with_checkpoint

# Options a resumed run takes from the new command line (the rest, which define the networks, from the run).
RESUME_OVERRIDES = ("tick_kimg", "snap_ticks", "workers", "device", "progress", "metrics", "metrics_num",
                    "image_snap", "max_minutes", "channels_last", "compile")


@dataclass
class RunState:
    """The counters and running values a checkpoint carries (besides networks, optimizers and RNG states)."""

    cur_nimg: int = 0
    step: int = 0
    tick: int = 0
    tick_start_nimg: int = 0
    elapsed_s: float = 0.0
    pl_mean: float = 0.0
    ada: dict = field(default_factory=dict)
    data_items: int = 0   # dataset items this rank consumed (the sampler continues from there)
    prev_lod: Optional[float] = None


@dataclass
class Run:
    """A training run, set up: what `train` steps and snapshots."""

    opts: RunOptions              # the options in force (the path choice's precision, layout and compile resolved)
    requested: RunOptions         # the options as given (saved in training_options.json)
    dist: DistInfo
    device: torch.device
    dataset: ImageDataset
    c_dim: int
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    nets: PhaseNetworks           # what the phases call
    phases: List[Phase]
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    trainable_D: List[nn.Parameter]  # D's parameters that train (frozen layers left out)
    augment_pipe: Optional[nn.Module]
    ada: Optional[AdaController]
    schedule: Optional[LodSchedule]
    choice: PathChoice
    gen: torch.Generator          # draws shared by all ranks: z, labels, mixing
    state: RunState
    pl_mean: torch.Tensor
    resume_dir: Optional[Path]

    @property
    def cfg(self) -> TrainingConfig:
        return self.opts.config

    def precision_ctx(self):
        return self.choice.path.autocast(self.device)


def device_of(opts: RunOptions, dist: DistInfo) -> torch.device:
    """The device of this process: with several processes on CUDA, the GPU of its local rank."""
    if opts.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = parse_device(opts.device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    return device


def resolve_resume(opts: RunOptions) -> Tuple[Optional[Path], Optional[Path]]:
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


def split_batch(batch_size: int, batch_gpu: Optional[int], world_size: int, mbstd: Optional[int],
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


def lazy_ratio(reg_interval: Optional[int]) -> float:
    """With lazy regularisation (StyleGAN2 appendix B) lr and betas are scaled by interval / (interval + 1)."""
    return reg_interval / (reg_interval + 1) if reg_interval else 1.0


def make_optimizer(module: nn.Module, lr: float, betas, eps: float, reg_interval: Optional[int]):
    """Adam, shared by the main and regularisation phases of one network; the fused kernel (one call for all
    parameters) on CPUs and GPUs (docs/performance.md: the per-tensor loop cost ~4% of a CPU step)."""
    ratio = lazy_ratio(reg_interval)
    device = next(module.parameters()).device
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=[b ** ratio for b in betas], eps=eps,
                            fused=device.type in ("cpu", "cuda") or None)


def rng_states(gen: torch.Generator, device: torch.device) -> Dict[str, torch.Tensor]:
    states = {"torch_cpu": torch.get_rng_state(), "global": gen.get_state()}
    if device.type == "cuda":
        states["torch_cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: Dict[str, torch.Tensor], gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(states["torch_cpu"])
    gen.set_state(states["global"])
    if device.type == "cuda" and "torch_cuda" in states:
        torch.cuda.set_rng_state(states["torch_cuda"], device)


def _options(opts: RunOptions) -> Tuple[RunOptions, Optional[Path], Optional[Path]]:
    """(the options in force, run folder to continue, network file for transfer learning), checked."""
    if opts.precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {PRECISIONS}, got {opts.precision!r}")
    if opts.compile not in COMPILE_CHOICES:
        raise UserInputError(f"compile must be one of {COMPILE_CHOICES}, got {opts.compile!r}")
    resume_dir, transfer_path = resolve_resume(opts)
    if resume_dir is not None:
        saved = RunOptions.from_dict(json.loads((resume_dir / OPTIONS_NAME).read_text()))
        if Path(opts.data).resolve() != Path(saved.data).resolve():
            raise UserInputError(f"{resume_dir} trained on {saved.data}, not {opts.data}: resume it with that --data, "
                                 f"or start a new run from one of its snapshots (--resume network-snapshot-....safetensors)")
        saved.config.total_kimg = opts.config.total_kimg
        for name in RESUME_OVERRIDES:
            setattr(saved, name, getattr(opts, name))
        saved.resume = opts.resume
        opts = saved
    if opts.metrics:  # fail now on a misspelt name, not at the first snapshot hours later
        from ..metrics.evaluate import metric_spec
        for name in opts.metrics:
            metric_spec(name)
    return opts, resume_dir, transfer_path


def stream_seeds(world_size: int) -> List[int]:
    """Seeds of a run's random streams, drawn from the initialisation stream right after the networks (the same
    on every rank): [0] for the draws all ranks share (latents, labels), [1 + r] for rank r's own (noise inputs,
    style mixing, augmentation). Fresh streams: seeding either with the run's seed again would replay the numbers
    the weights were drawn from (the first steps' latents were then the rows of the mapping's first weight)."""
    return [int(s) for s in torch.randint(0, 2 ** 62, [1 + world_size])]


def _networks(opts: RunOptions, resolution: int, channels: int, c_dim: int, device: torch.device):
    net_cfg = copy.deepcopy(opts.config.network)
    if opts.precision in ("fp32", "bf16"):
        net_cfg.num_fp16_res = 0
    torch.manual_seed(opts.seed)
    G = build_network(net_cfg.generator_class, net_cfg.generator_kwargs(resolution, channels, c_dim))
    D = build_network(net_cfg.discriminator_class, net_cfg.discriminator_kwargs(resolution, channels, c_dim))
    if opts.channels_last and net_cfg.arch == "stylegan3":
        raise UserInputError("--channels-last applies to StyleGAN2 networks; StyleGAN3 generators (filtered "
                             "leaky ReLU layers) have no channels-last path: train them without it")
    return (m.train().requires_grad_(False).to(device) for m in (G, D))


def _training_probe(G: nn.Module, D: nn.Module, cfg: TrainingConfig, base: ExecutionPath, batch: int,
                    device: torch.device):
    """measure(candidate) -> seconds of one G main + D main pass of the training phases, on copies of G and D in
    the candidate's layout (made on first use), and the bf16 PSNR check."""
    copies = LayoutCopies([G, D], base)
    z, c = probe_latents(G, batch, device)
    real = torch.zeros([batch, D.img_channels, D.img_resolution, D.img_resolution], device=device)
    x = PhaseInputs(real, c, z, c)
    pl_mean = torch.zeros([], device=device)

    def measure(cand) -> float:
        nets = PhaseNetworks(*(m.train() for m in copies.get(cand.channels_last)))  # the loop trains G in train mode
        ctx = lambda: base.replace(precision=cand.precision).autocast(device)  # noqa: E731

        def call():
            for name, module in (("Gmain", nets.G), ("Dmain", nets.D)):
                module.requires_grad_(True)
                phase_backward(Phase(name, module, None, 1), nets, cfg, [x], pl_mean, lambda *a: None, ctx)
                module.requires_grad_(False)
            for module in (nets.G, nets.D):
                module.zero_grad(set_to_none=True)
        return seconds_of(call, device)
    return measure, lambda: bf16_psnr(copy.deepcopy(G), z, c, base)


def choose_training_path(opts: RunOptions, G: nn.Module, D: nn.Module, device: torch.device, batch_gpu: int,
                         world_size: int = 1, progressive: bool = False) -> PathChoice:
    """The execution path of a training run: the ops `--resample` names, the 'auto' precision, layout and
    compilation resolved for this machine (runtime.choice), the flags' values kept."""
    base = REFERENCE if opts.resample == "reference" else FAST
    arch3 = is_stylegan3(G)
    calls = int(max(opts.config.total_kimg * 1000, 0) // max(batch_gpu, 1))  # G+D passes
    job = Job("train", batch_gpu, calls, opts.max_minutes * 60 if opts.max_minutes else None,
              compilable=not (arch3 or progressive),
              no_probe="several processes: not probed" if world_size > 1 else None)
    measure, psnr_check = _training_probe(G, D, opts.config, base, batch_gpu, device)
    choice = choose_path(job, device, precision=opts.precision, channels_last=opts.channels_last,
                         compile=opts.compile, layout_choice=has_layout_choice(G) and has_layout_choice(D) and not arch3,
                         measure=measure, bf16_psnr=psnr_check, compile_check=lambda: compile_problem(device),
                         base_path=base)
    cfg = opts.config
    if cfg.pl_weight > 0 and cfg.g_reg_interval and choice.path.ops.get("filtered_lrelu") == "triton":
        # The Triton filtered_lrelu differentiates once; path length differentiates G twice.
        choice.path = choice.path.replace(ops={"filtered_lrelu": "fast"})
    return choice


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


def setup_run(opts: RunOptions, say=print) -> Run:
    """Build the run of `opts` (see the module docstring); `say` gets the lines of a failing compilation."""
    requested = opts
    opts, resume_dir, transfer_path = _options(opts)
    cfg = opts.config
    dist = init_from_env(device_of(opts, DistInfo()).type)
    device = device_of(opts, dist)

    dataset = ImageDataset(opts.data, use_labels=opts.cond, xflip=opts.mirror, max_size=opts.max_size,
                           random_seed=opts.seed)
    if opts.cond and not dataset.has_labels:
        raise UserInputError(f"--cond needs labels, but {opts.data} has no dataset.json labels; "
                             f"make one with `stylegan dataset ... --labels-from-folders`")
    c_dim = dataset.label_dim if opts.cond else 0
    mbstd = cfg.network.mbstd_group_size
    schedule = LodSchedule.from_dict(cfg.progressive) if cfg.progressive else None
    _, batch_gpu, _ = split_batch(cfg.batch_size, opts.batch_gpu, dist.world_size, mbstd, clamp=schedule is not None)
    G, D = _networks(opts, dataset.resolution, dataset.num_channels, c_dim, device)
    seeds = stream_seeds(dist.world_size)
    if schedule is not None:
        if not hasattr(G, "set_lod"):
            raise UserInputError("progressive growing needs StyleGAN (v1) networks (--arch stylegan1)")
        phase_kimg = schedule.lod_training_kimg + schedule.lod_transition_kimg
        for idx in range(schedule.max_lod + 1):  # check every scheduled minibatch now, not when its phase starts
            split_batch(schedule.batch_size_at(idx * phase_kimg), opts.batch_gpu, dist.world_size, mbstd, clamp=True)

    choice = choose_training_path(opts, G, D, device, batch_gpu, dist.world_size, progressive=schedule is not None)
    opts = dataclasses.replace(opts, precision=choice.precision if choice.precision != "fp16" else "auto",
                               channels_last=choice.channels_last, compile=choice.compile)
    for module in (G, D):
        apply_path(module, choice.path)
    G_ema = copy.deepcopy(G).eval()

    main_passes = {}
    if opts.compile != "off":
        if schedule is not None:
            raise UserInputError("--compile does not combine with progressive growing (the fade-in changes the "
                                 "graph at every step); train StyleGAN v1 without it")
        check_compile_support(device)
        torch._dynamo.reset()  # compiled code of earlier runs in this process would count against the variant limit
        main_passes = dict(zip(("G_mapping_main", "G_synthesis_main", "D_main"),
                               (compiled(m, opts.compile, say) for m in (G.mapping, G.synthesis, D))))

    augment_pipe = ada = None
    if cfg.aug != "noaug":
        augment_pipe = make_augment_pipe(cfg.augpipe, cfg.augment_impl).train().requires_grad_(False).to(device)
        augment_pipe.p.fill_(cfg.aug_p if cfg.aug == "fixed" else 0.0)
        if cfg.aug == "ada":
            ada = AdaController(augment_pipe, target=cfg.ada_target, ada_interval=cfg.ada_interval,
                                ada_kimg=cfg.ada_kimg)
    nets = PhaseNetworks(G, D, augment_pipe=augment_pipe, style_mixing_prob=cfg.style_mixing_prob,
                         progressive=schedule is not None, **main_passes)
    opt_G = make_optimizer(G, cfg.g_lr, cfg.betas, cfg.eps, cfg.g_reg_interval)
    opt_D = make_optimizer(D, cfg.d_lr, cfg.betas, cfg.eps, cfg.d_reg_interval if cfg.loss == "r1" else None)
    phases = build_phases(cfg, G, D, opt_G, opt_D)

    gen = torch.Generator().manual_seed(seeds[0])
    torch.manual_seed(seeds[1 + dist.rank])  # per-rank draws: noise, augmentation
    state = RunState()
    if transfer_path is not None:
        loaded = _load_transfer(transfer_path, G, D, G_ema)
        if augment_pipe is not None and "augment_p" in loaded and cfg.aug == "ada":
            augment_pipe.p.fill_(float(loaded["augment_p"]))
    if resume_dir is not None:
        ckpt = load_checkpoint(resume_dir / CHECKPOINT_NAME)
        for role, module in (("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", augment_pipe)):
            if module is not None:
                load_state_strict(module, ckpt["modules"][role], f"{resume_dir} [{role}]")
        opt_G.load_state_dict(ckpt["optimizers"]["G"])
        opt_D.load_state_dict(ckpt["optimizers"]["D"])
        state = RunState(**ckpt["state"])
        if ada is not None and state.ada:
            ada.load_state_dict(state.ada)
        _set_rng_states(ckpt["rng"], gen, device)
        if dist.rank > 0:  # only rank 0's stream is saved; the others restart theirs deterministically
            torch.manual_seed(opts.seed * dist.world_size + dist.rank + 7919 * state.step)
    for module in (G, D, G_ema):
        broadcast_module_(module, dist.world_size)
    pl_mean = torch.tensor(state.pl_mean, dtype=torch.float32, device=device)
    return Run(opts=opts, requested=requested, dist=dist, device=device, dataset=dataset, c_dim=c_dim, G=G, D=D,
               G_ema=G_ema, nets=nets, phases=phases, opt_G=opt_G, opt_D=opt_D,
               trainable_D=trainable_parameters(D), augment_pipe=augment_pipe, ada=ada, schedule=schedule,
               choice=choice, gen=gen, state=state, pl_mean=pl_mean, resume_dir=resume_dir)


def label_draws(dataset: ImageDataset, c_dim: int, gen: torch.Generator, shape: List[int]) -> torch.Tensor:
    """Labels of random dataset items [*shape, c_dim] (zeros [*shape, 0] unconditionally), drawn from `gen`."""
    label_idx = torch.randint(len(dataset), shape, generator=gen)
    if not c_dim:
        return torch.zeros([*shape, 0])
    labels = np.stack([dataset.get_label(int(i)) for i in label_idx.flatten()])
    return torch.from_numpy(labels).float().reshape(*shape, c_dim)
