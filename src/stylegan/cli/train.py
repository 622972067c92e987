"""`stylegan train`: flags -> TrainingConfig + RunOptions -> training.distributed.launch_training.

Flags override the preset exactly as NVIDIA's stylegan3 `train.py` does for its stylegan2 config. NVIDIA's
spellings of both train.py versions (stylegan2-ada-pytorch and stylegan3) work as written: boolean options take
`--mirror`, `--mirror=1`, `--mirror 0` or `--mirror=true`; `--gpus N` starts N local processes; `--metrics=none`,
`--subset`, `--nhwc`, `--nobench`, `--allow-tf32`, `-n` are understood, `--resume` takes URLs and NVIDIA's
names (`--resume=ffhq1024`, io.catalog), downloaded once into the cache, and the few that cannot apply here
(`--mirror-y=1`) are refused with a one-line reason.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..presets import ARCHITECTURES, LOSSES, PRESET_NAMES, resolve_preset, stylegan3_batch, with_stylegan1
from ..training.options import COMPILE_CHOICES, PRECISIONS, RunOptions
from ..training.run_dir import CHECKPOINT_NAME
from .common import CliError, bool_option, cache_dir_option, comma_list, network_file, user_errors


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter("must be positive")
    return value


def _either(channels_last, nhwc):
    """--channels-last or NVIDIA's --nhwc: None (automatic) when neither is given, else True if either says so."""
    if channels_last is None and nhwc is None:
        return None
    return bool(channels_last) or bool(nhwc)


def _resume_path(resume, dry_run):
    """NVIDIA's --resume spellings -> ours: 'noresume' is none; a URL, hf:// address or catalog name (NVIDIA's
    ffhq1024, ...) is downloaded once into the cache (a dry run only checks it)."""
    if resume is None or resume == "noresume":
        return None
    if resume == "auto":
        return resume
    return network_file(resume, "--resume", download=not dry_run)


def _transfers(resume) -> bool:
    """Whether --resume starts from a network file (transfer learning), not a run folder or checkpoint."""
    if resume is None or resume == "auto":
        return False
    path = Path(resume)
    return not path.is_dir() and path.name != CHECKPOINT_NAME


@click.command("train")
@click.option("--data", required=True, help="Dataset zip or folder of images.")
@click.option("--outdir", required=True, help="Parent folder of run directories.")
@click.option("--cfg", default="auto", show_default=True,
              help=f"Preset: {', '.join(PRESET_NAMES)}.")
@click.option("--arch", type=click.Choice(ARCHITECTURES), default="stylegan2", show_default=True,
              help="stylegan1: progressive growing, AdaIN (the preset sets the network size).")
@click.option("--loss", type=click.Choice(LOSSES), default=None, help="D loss: r1 (default) or wgan-gp.")
@click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local processes to start (one per GPU on CUDA with NCCL; gloo processes on a CPU).")
@click.option("--batch", type=int, callback=_positive, help="Total batch size.")
@click.option("--batch-gpu", type=int, callback=_positive, help="Batch per forward pass per process.")
@click.option("--gamma", type=click.FloatRange(min=0), help="R1 weight.")
@click.option("--kimg", type=float, callback=_positive, help="Training length in thousands of images (fractions ok).")
@click.option("--tick", type=float, default=4.0, show_default=True, callback=_positive, help="kimg per tick.")
@click.option("--snap", type=int, default=50, show_default=True, callback=_positive, help="Ticks between snapshots.")
@click.option("--img-snap", type=int, default=None, callback=_positive,
              help="NVIDIA's image-snapshot interval: image grids come with every snapshot, so it must equal --snap.")
@click.option("--snap-res", type=click.Choice(["1080p", "4k", "8k"]), default=None,
              help="Accepted for NVIDIA's command lines; the grid size here follows the resolution.")
@click.option("--cbase", type=int, callback=_positive, help="Channel base.")
@click.option("--cmax", type=int, callback=_positive, help="Max channels.")
@click.option("--map-depth", type=int, callback=_positive, help="Mapping network depth.")
@click.option("--glr", type=float, callback=_positive, help="G learning rate.")
@click.option("--dlr", type=float, callback=_positive, help="D learning rate.")
@click.option("--mbstd-group", type=int, callback=_positive, help="Minibatch-stddev group size.")
@click.option("--blur-sigma", type=click.FloatRange(min=0), default=None,
              help="D blur sigma at the start, in pixels (StyleGAN3-R: 10, others: 0 = off); fades out linearly.")
@click.option("--blur-fade-kimg", type=click.FloatRange(min=0), default=None,
              help="kimg until the D blur is gone (default with a blur: batch*200/32, as NVIDIA's stylegan3-r).")
@bool_option("--mirror", help="Add x-flips of the dataset.")
@bool_option("--mirror-y", help="NVIDIA's y-flips (not supported: only 0 is accepted).")
@bool_option("--cond", help="Train on dataset labels (class-conditional).")
@click.option("--aug", type=click.Choice(["ada", "noaug", "fixed"]), default=None,
              help="Augmentation: ada (default), noaug (default with --arch stylegan1), fixed.")
@click.option("--p", "aug_p", type=float, default=0.2, show_default=True, help="Augment probability for --aug fixed.")
@click.option("--target", type=float, default=0.6, show_default=True, help="ADA target.")
@click.option("--augpipe", default="bgc", show_default=True, help="Augmentation pipe preset.")
@click.option("--augment-impl", type=click.Choice(["nvidia", "exact"]), default="nvidia", show_default=True,
              help="How the pipe executes its transforms: nvidia (NVIDIA's augment.py: blits through the sym6 warp) "
                   "or exact (exact blits, Lagrange resampling).")
@click.option("--resume", default=None,
              help="'auto', a run folder/checkpoint, or a network (transfer: a file, URL, hf:// address or "
                   "`stylegan pretrained` name); 'noresume' = none.")
@cache_dir_option
@click.option("--freezed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Freeze the first N D layers.")
@click.option("--seed", type=int, default=0, show_default=True)
@bool_option("--fp32", help="Disable float16 (same as --precision fp32).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="auto: float16 blocks on CUDA; on a CPU bf16 where it is native, faster in a quick probe and "
                   "holds quality, else fp32.")
@click.option("--resample", type=click.Choice(["fast", "reference"]), default="fast", show_default=True,
              help="fast ops, or the plain reference ops (resampling, bias/activation) for checking them.")
@bool_option("--channels-last", default=None,
             help="Channels-last (NHWC) activations and weights (StyleGAN2); default: where a quick probe measures "
                  "it faster.")
@bool_option("--nhwc", default=None, help="NVIDIA's spelling of --channels-last.")
@bool_option("--nobench", help="Disable cuDNN benchmarking (CUDA).")
@bool_option("--allow-tf32", help="Allow TF32 in matmuls and convolutions (CUDA, Ampere and later).")
@click.option("--compile", "compile_mode", type=click.Choice(COMPILE_CHOICES), default="auto", show_default=True,
              is_flag=False, flag_value="default",
              help="torch.compile the G main and D main passes (--compile alone: mode 'default'; "
                   "'reduce-overhead' adds CUDA graphs). Compiling costs tens of seconds per graph at the start; "
                   "auto: on a CPU where the toolchain works and the run pays the compile time back.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--desc", default=None, help="Extra words for the run folder name.")
@click.option("--metrics", default="", help="Comma-separated metrics at each snapshot ('none' or empty: none).")
@click.option("--metrics-num", type=int, default=None, callback=_positive,
              help="Images per metric instead of the count in its name (quick checks).")
@click.option("--max-images", type=int, default=None, callback=_positive, help="Use at most N dataset images.")
@click.option("--subset", type=int, default=None, callback=_positive, help="NVIDIA's spelling of --max-images.")
@click.option("--no-progress", is_flag=True, help="Plain tick lines instead of a progress bar.")
@click.option("-n", "--dry-run", is_flag=True, help="Print the resolved options and exit.")
def command(data, outdir, cfg, arch, loss, gpus, batch, batch_gpu, gamma, kimg, tick, snap, img_snap, snap_res, cbase,
            cmax, map_depth, glr, dlr, mbstd_group, blur_sigma, blur_fade_kimg, mirror, mirror_y, cond, aug, aug_p,
            target, augpipe, augment_impl, resume, freezed, seed, fp32, precision, resample, channels_last, nhwc,
            nobench, allow_tf32, compile_mode, workers, device, desc, metrics, metrics_num, max_images, subset,
            no_progress, dry_run):
    """Train StyleGAN2(-ADA), StyleGAN3 (--cfg stylegan3-t / stylegan3-r) or StyleGAN v1 on a dataset."""
    with user_errors():
        from ..data.dataset import ImageDataset
        from ..training.augment import AUGPIPE_PRESETS
        if augpipe not in AUGPIPE_PRESETS:
            raise CliError(f"unknown --augpipe {augpipe!r}; choose one of {', '.join(sorted(AUGPIPE_PRESETS))}")
        if not 0 <= aug_p <= 1:
            raise CliError("--p must be in [0, 1]")
        if mirror_y:
            raise CliError("--mirror-y: y-flipped copies of the dataset are not supported (x-flips: --mirror=1)")
        if img_snap is not None and img_snap != snap:
            raise CliError(f"--img-snap {img_snap}: image grids are written with every network snapshot; "
                           f"use --snap {img_snap} for both")
        if subset is not None and max_images is not None and subset != max_images:
            raise CliError("--subset is NVIDIA's name for --max-images; give one of them")
        resume = _resume_path(resume, dry_run)
        dataset = ImageDataset(data)
        config = resolve_preset(cfg, dataset.resolution, num_gpus=gpus)
        if arch == "stylegan1":
            if config.network.arch == "stylegan3":
                raise CliError(f"--arch stylegan1 does not combine with --cfg {cfg} (a StyleGAN3 preset); "
                               f"use --cfg stylegan2, paper256/512/1024 or cpu with it")
            config = with_stylegan1(config, dataset.resolution, num_gpus=gpus)
        if loss is not None:
            config.loss = loss
        net = config.network
        if batch is not None:
            config.batch_size = batch
            if cfg != "cpu":
                config.ema_kimg = batch * 10 / 32
            if net.arch == "stylegan3":  # magnitude EMA beta and blur fade follow the batch (train.py)
                stylegan3_batch(config, batch)
        if blur_sigma is not None:
            config.blur_init_sigma = blur_sigma
            if blur_sigma > 0 and not config.blur_fade_kimg:
                config.blur_fade_kimg = config.batch_size * 200 / 32
        if blur_fade_kimg is not None:
            config.blur_fade_kimg = blur_fade_kimg
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
        config.augment_impl = augment_impl
        if fp32:
            precision = "fp32"
        if _transfers(resume):  # as NVIDIA's train.py --resume: ADA reacts faster, no EMA ramp-up, no blur fade
            config.ada_kimg, config.ema_rampup, config.blur_init_sigma = 100, None, 0.0
        opts = RunOptions(data=data, outdir=outdir, config=config, cond=cond, mirror=mirror, tick_kimg=tick,
                          snap_ticks=snap, seed=seed, resume=resume, batch_gpu=batch_gpu, workers=workers,
                          device=device, precision=precision, resample=resample, desc=desc,
                          channels_last=_either(channels_last, nhwc), compile=compile_mode,
                          progress=False if no_progress else None,
                          metrics=comma_list(metrics), metrics_num=metrics_num,
                          max_size=max_images if max_images is not None else subset,
                          num_processes=gpus, cudnn_benchmark=not nobench, allow_tf32=allow_tf32)
        if snap_res is not None:
            click.echo(f"note: --snap-res {snap_res} has no effect here (the image grid size follows the resolution)",
                       err=True)
        if dry_run:
            click.echo(json.dumps(opts.to_dict(), indent=2, sort_keys=True))
            return
        from ..training.distributed import launch_training
        launch_training(opts)
