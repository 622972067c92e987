"""`stylegan train`: flags -> TrainingConfig + RunOptions -> training.loop.train.

Flags override the preset exactly as NVIDIA's stylegan3 `train.py` does for its stylegan2 config.
"""
from __future__ import annotations

import json

import click

from ..presets import (
    ARCHITECTURES,
    LOSSES,
    PRESET_NAMES,
    resolve_preset,
    with_stylegan1,
)
from ..training.options import COMPILE_CHOICES, PRECISIONS, RunOptions
from .common import CliError, user_errors


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter("must be positive")
    return value


@click.command("train")
@click.option("--data", required=True, help="Dataset zip or folder of images.")
@click.option("--outdir", required=True, help="Parent folder of run directories.")
@click.option("--cfg", type=click.Choice(PRESET_NAMES), default="auto", show_default=True, help="Preset.")
@click.option("--arch", type=click.Choice(ARCHITECTURES), default="stylegan2", show_default=True,
              help="stylegan1: progressive growing, AdaIN (the preset sets the network size).")
@click.option("--loss", type=click.Choice(LOSSES), default=None, help="D loss: r1 (default) or wgan-gp.")
@click.option("--batch", type=int, callback=_positive, help="Total batch size.")
@click.option("--batch-gpu", type=int, callback=_positive, help="Batch per forward pass per process.")
@click.option("--gamma", type=float, help="R1 weight.")
@click.option("--kimg", type=float, callback=_positive, help="Training length in thousands of images (fractions ok).")
@click.option("--tick", type=float, default=4.0, show_default=True, callback=_positive, help="kimg per tick.")
@click.option("--snap", type=int, default=50, show_default=True, callback=_positive, help="Ticks between snapshots.")
@click.option("--cbase", type=int, callback=_positive, help="Channel base.")
@click.option("--cmax", type=int, callback=_positive, help="Max channels.")
@click.option("--map-depth", type=int, callback=_positive, help="Mapping network depth.")
@click.option("--glr", type=float, callback=_positive, help="G learning rate.")
@click.option("--dlr", type=float, callback=_positive, help="D learning rate.")
@click.option("--mbstd-group", type=int, callback=_positive, help="Minibatch-stddev group size.")
@click.option("--mirror", is_flag=True, help="Add x-flips of the dataset.")
@click.option("--cond", is_flag=True, help="Train on dataset labels (class-conditional).")
@click.option("--aug", type=click.Choice(["ada", "noaug", "fixed"]), default=None,
              help="Augmentation: ada (default), noaug (default with --arch stylegan1), fixed.")
@click.option("--p", "aug_p", type=float, default=0.2, show_default=True, help="Augment probability for --aug fixed.")
@click.option("--target", type=float, default=0.6, show_default=True, help="ADA target.")
@click.option("--augpipe", default="bgc", show_default=True, help="Augmentation pipe preset.")
@click.option("--resume", default=None, help="'auto', a run folder/checkpoint, or a network file (transfer).")
@click.option("--freezed", type=int, default=0, show_default=True, help="Freeze the first N D layers.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fp32", is_flag=True, help="Disable float16 (same as --precision fp32).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
@click.option("--resample", type=click.Choice(["fast", "reference"]), default="fast", show_default=True,
              help="fast ops, or the plain reference ops (resampling, bias/activation) for checking them.")
@click.option("--channels-last", is_flag=True, help="Channels-last (NHWC) activations and weights (StyleGAN2).")
@click.option("--compile", "compile_mode", type=click.Choice(COMPILE_CHOICES), default="off", show_default=True,
              is_flag=False, flag_value="default",
              help="torch.compile the G main and D main passes (--compile alone: mode 'default'; "
                   "'reduce-overhead' adds CUDA graphs). Compiling costs tens of seconds per graph at the start.")
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--desc", default=None, help="Extra words for the run folder name.")
@click.option("--metrics", default="", help="Comma-separated metrics at each snapshot.")
@click.option("--metrics-num", type=int, default=None, callback=_positive,
              help="Images per metric instead of the count in its name (quick checks).")
@click.option("--max-images", type=int, default=None, callback=_positive, help="Use at most N dataset images.")
@click.option("--no-progress", is_flag=True, help="Plain tick lines instead of a progress bar.")
@click.option("--dry-run", is_flag=True, help="Print the resolved options and exit.")
def command(data, outdir, cfg, arch, loss, batch, batch_gpu, gamma, kimg, tick, snap, cbase, cmax, map_depth, glr, dlr,
            mbstd_group, mirror, cond, aug, aug_p, target, augpipe, resume, freezed, seed, fp32, precision, resample,
            channels_last, compile_mode, workers, device, desc, metrics, metrics_num, max_images, no_progress, dry_run):
    """Train StyleGAN2(-ADA) on a dataset."""
    with user_errors():
        from ..data.dataset import ImageDataset
        from ..training.augment import AUGPIPE_PRESETS
        if augpipe not in AUGPIPE_PRESETS:
            raise CliError(f"unknown --augpipe {augpipe!r}; choose one of {', '.join(sorted(AUGPIPE_PRESETS))}")
        if not 0 <= aug_p <= 1:
            raise CliError("--p must be in [0, 1]")
        dataset = ImageDataset(data)
        config = resolve_preset(cfg, dataset.resolution)
        if arch == "stylegan1":
            config = with_stylegan1(config, dataset.resolution)
        if loss is not None:
            config.loss = loss
        net = config.network
        if batch is not None:
            config.batch_size = batch
            if cfg != "cpu":
                config.ema_kimg = batch * 10 / 32
        if gamma is not None:
            config.r1_gamma = gamma
        if kimg is not None:
            config.total_kimg = kimg
        for value, name in ((cbase, "channel_base"), (cmax, "channel_max"), (map_depth, "map_depth"),
                            (mbstd_group, "mbstd_group_size")):
            if value is not None:
                setattr(net, name, value)
        if glr is not None:
            config.g_lr = glr
        if dlr is not None:
            config.d_lr = dlr
        net.freeze_d_layers = freezed
        if aug is not None:
            config.aug = aug
        config.aug_p, config.ada_target, config.augpipe = aug_p, target, augpipe
        if fp32:
            precision = "fp32"
        opts = RunOptions(data=data, outdir=outdir, config=config, cond=cond, mirror=mirror, tick_kimg=tick,
                          snap_ticks=snap, seed=seed, resume=resume, batch_gpu=batch_gpu, workers=workers,
                          device=device, precision=precision, resample=resample, desc=desc,
                          channels_last=channels_last, compile=compile_mode,
                          progress=False if no_progress else None,
                          metrics=tuple(m for m in metrics.split(",") if m), metrics_num=metrics_num,
                          max_size=max_images)
        if dry_run:
            click.echo(json.dumps(opts.to_dict(), indent=2, sort_keys=True))
            return
        from ..training.loop import train
        train(opts)
