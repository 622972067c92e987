"""The StyleGAN2-ADA training loop, top to bottom: `train(opts)` over the run state of training/setup.py.

Each step draws one minibatch of reals and runs the step's phases (training/phases.py: G main, G reg, D main,
D reg with lazy regularisation); then the G EMA is updated and ADA adjusts p. Every `tick_kimg` thousand images a
tick line goes to log.txt, stats.jsonl and TensorBoard (training/reporting.py); every `snap_ticks` ticks a network
snapshot and a training checkpoint are written (training/snapshots.py).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data.sampler import InfiniteSampler
from ..runtime.hardware import synchronize
from .blur import blur_sigma
from .distributed import barrier
from .ema import ema_beta, update_ema
from .options import RunOptions
from .phases import PhaseInputs, run_phase
from .progressive import lod_images, optimizer_reset_needed
from .reporting import TickReporter, TrainingDiverged, progress_default
from .run_dir import OPTIONS_NAME, new_run_dir, write_json
from .setup import Run, label_draws, setup_run, split_batch
from .snapshots import ImageGrid, save_snapshot

__all__ = ["train", "TrainingDiverged"]


def make_loader(run: Run, per_rank: int):
    """Reals for this rank from where the run stands (state.data_items already consumed)."""
    opts, dist = run.opts, run.dist
    sampler = InfiniteSampler(len(run.dataset), rank=dist.rank, num_replicas=dist.world_size, seed=opts.seed,
                              start=run.state.data_items)
    return iter(torch.utils.data.DataLoader(run.dataset, sampler=sampler, batch_size=per_rank,
                                            num_workers=opts.workers, pin_memory=run.device.type == "cuda",
                                            prefetch_factor=2 if opts.workers else None,
                                            persistent_workers=opts.workers > 0,
                                            generator=torch.Generator().manual_seed(opts.seed)))


def follow_schedule(run: Run) -> float:
    """Progressive growing: set lod, learning rates and (at a new phase) fresh Adam moments from the image count;
    returns the lod (0 without a schedule)."""
    if run.schedule is None:
        return 0.0
    kimg = run.state.cur_nimg / 1000
    lod = run.schedule.lod_at(kimg)
    for opt, lr in zip((run.opt_G, run.opt_D), run.schedule.lr_at(kimg)):
        for group in opt.param_groups:
            group["lr"] = lr
    if run.state.prev_lod is not None and optimizer_reset_needed(run.state.prev_lod, lod):
        run.opt_G.state.clear()  # a new phase starts with fresh Adam moments, as the official loop does
        run.opt_D.state.clear()
    run.state.prev_lod = lod
    for module in (run.G, run.D, run.G_ema):
        module.set_lod(lod)
    return lod


def training_step(run: Run, loader, batch_size: int, batch_gpu: int, lod: float, report: TickReporter) -> None:
    """One minibatch through every phase due at this step, then the G EMA, the counters and ADA."""
    state, cfg, dist, device = run.state, run.cfg, run.dist, run.device
    batch_rank = batch_size // dist.world_size
    real_img, real_c = next(loader)  # reals for this rank; latents and labels for the whole batch (shared draws)
    state.data_items += batch_rank
    real_img = real_img.to(device).to(torch.float32) / 127.5 - 1
    if run.schedule is not None:
        real_img = lod_images(real_img, lod)
    real_c = real_c.to(device).to(torch.float32)
    all_z = torch.randn([len(run.phases), batch_size, run.G.z_dim], generator=run.gen)
    all_c = label_draws(run.dataset, run.c_dim, run.gen, [len(run.phases), batch_size])
    mine = slice(dist.rank * batch_rank, (dist.rank + 1) * batch_rank)
    blur = blur_sigma(state.cur_nimg, cfg.blur_init_sigma, cfg.blur_fade_kimg)
    for idx, phase in enumerate(run.phases):
        if state.step % phase.interval != 0:
            continue
        t0 = time.time()
        rounds = [PhaseInputs(*x, blur=blur, lod=lod) for x in zip(
            real_img.split(batch_gpu), real_c.split(batch_gpu), all_z[idx, mine].to(device).split(batch_gpu),
            all_c[idx, mine].to(device).split(batch_gpu))]
        trainable = run.trainable_D if phase.module is run.D else list(run.G.parameters())
        run_phase(phase, run.nets, cfg, rounds, run.pl_mean, report, run.precision_ctx, dist.world_size, run.ada,
                  trainable)
        synchronize(device)
        report.phase_time[phase.name] += time.time() - t0
    update_ema(run.G_ema, run.G, ema_beta(batch_size, cfg.ema_kimg, state.cur_nimg, cfg.ema_rampup))
    state.cur_nimg += batch_size
    state.step += 1
    if run.ada is not None:
        run.ada.update(batch_size)
    report.advance(batch_size)


def train(opts: RunOptions) -> Path:
    """Train as described by `opts`; returns the run directory."""
    run = setup_run(opts)
    state, cfg, dist = run.state, run.cfg, run.dist
    run_dir = run.resume_dir
    if dist.is_main and run_dir is None:
        desc = f"{Path(run.opts.data).stem}-{cfg.name}-gpus{dist.world_size}-batch{cfg.batch_size}"
        desc += ("-cond" if run.opts.cond else "") + (f"-{run.opts.desc}" if run.opts.desc else "")
        run_dir = new_run_dir(run.opts.outdir, desc)
    progress = progress_default(run.opts.progress)
    total_nimg = int(round(cfg.total_kimg * 1000))
    report = TickReporter(run_dir if dist.is_main else None, progress, total_nimg / 1000, state.cur_nimg / 1000,
                          [phase.name for phase in run.phases])
    batch_rank, batch_gpu, num_rounds = split_batch(cfg.batch_size, run.opts.batch_gpu, dist.world_size,
                                                    cfg.network.mbstd_group_size, clamp=run.schedule is not None)
    if dist.is_main:
        write_json(run_dir / OPTIONS_NAME, {**run.requested.to_dict(), "speed_path": run.choice.to_json()})
        report.say(f"{'Resuming' if run.resume_dir else 'Training'} in {run_dir}: {len(run.dataset)} images "
                   f"{run.dataset.resolution}x{run.dataset.resolution}x{run.dataset.num_channels}, labels "
                   f"{run.c_dim}, batch {cfg.batch_size} ({dist.world_size} process(es) x {num_rounds} round(s) x "
                   f"{batch_gpu}), device {run.device}, precision {run.opts.precision}")
        report.say(f"G {sum(p.numel() for p in run.G.parameters()):,} parameters, "
                   f"D {sum(p.numel() for p in run.D.parameters()):,}")
        report.say(run.choice.summary(), also_stdout=True)  # the execution path
    grid = ImageGrid(run)
    if dist.is_main and run.resume_dir is None and run.opts.image_snap:
        grid.save_reals(run, run_dir / "reals.png")
        grid.save_fakes(run.G_ema, run_dir / "fakes_init.png", run.device)

    loader, loader_batch, batch_size, lod = None, None, cfg.batch_size, 0.0
    start_elapsed, start_time = state.elapsed_s, time.time()
    done = state.cur_nimg >= total_nimg
    while not done:
        if run.schedule is not None:  # progressive growing: lod, batch and learning rates follow the image count
            lod = follow_schedule(run)
            batch_size = run.schedule.batch_size_at(state.cur_nimg / 1000)
            batch_rank, batch_gpu, _ = split_batch(batch_size, run.opts.batch_gpu, dist.world_size,
                                                   cfg.network.mbstd_group_size, clamp=True)
        if loader_batch != batch_rank:
            loader, loader_batch = make_loader(run, batch_rank), batch_rank
        training_step(run, loader, batch_size, batch_gpu, lod, report)
        done = state.cur_nimg >= total_nimg
        if run.opts.max_minutes is not None and time.time() - start_time >= run.opts.max_minutes * 60:
            done = True
        if not done and state.cur_nimg < state.tick_start_nimg + run.opts.tick_kimg * 1000:
            continue

        # Tick: stats, log line, snapshot.
        for name, p in run.G.named_parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(f"G weight {name} became NaN/Inf at {state.cur_nimg / 1000:.3f} kimg")
        elapsed = start_elapsed + (time.time() - start_time)
        extra = {"Progress/augment": float(run.augment_pipe.p) if run.augment_pipe is not None else 0.0,
                 "Progress/lod": lod, "Progress/batch": batch_size}
        if run.ada is not None and run.ada.r_t is not None:
            extra["Progress/ada_rt"] = run.ada.r_t
        report.tick(state.tick, state.cur_nimg / 1000, (state.cur_nimg - state.tick_start_nimg) / 1000, elapsed,
                    extra)
        state.tick += 1
        state.tick_start_nimg = state.cur_nimg
        state.elapsed_s = elapsed
        if done or state.tick % run.opts.snap_ticks == 0:
            state.pl_mean = float(run.pl_mean)
            state.ada = run.ada.state_dict() if run.ada is not None else {}
            if dist.is_main:
                save_snapshot(run, run_dir, grid, report.log)
            barrier(dist.world_size)
        report.restart_clock()
    report.close(f"Done: {state.cur_nimg / 1000:.3f} kimg in {run_dir}" if dist.is_main else None)
    return run_dir
