"""`stylegan metrics`: FID, KID, precision/recall, PPL, IS and SWD for a network or any two image sets.

`--fakes A --data B` (`--reals` is the same as `--data`) compares any two image sets: folders (recursive) or zips of
images of any size and mode, `.npy`/`.npz` arrays, or dataset zips; when their formats differ both sides are
converted alike (see stylegan.metrics.preprocess) and a note says how. NVIDIA's calc_metrics.py line works as
written: `--metrics=fid50k_full,kid50k_full --data=... --mirror=1 --network=... --gpus=1 --verbose`.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..data.dataset_tool import RESIZE_FILTERS, TRANSFORMS
from .common import (NETWORK_FILES, CliError, bool_option, channels_last_option, comma_list, network_option, say_path,
                     user_errors)

_DEFAULT_CACHE = Path.home() / ".cache" / "stylegan" / "metrics"


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line to `path`, rewriting it through a temporary file and a rename."""
    from ..io.atomic import atomic_write_text

    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    atomic_write_text(path, old + json.dumps(record) + "\n")


@click.command("metrics")
@network_option(required=False, help=f"Generator file: {NETWORK_FILES}.", cache_dir=False)  # --cache-dir: stats
@click.option("--fakes", default=None,
              help="Generated images (instead of --network): folder or zip of images, .npy/.npz array, dataset zip.")
@click.option("--data", "--reals", "data", default=None,
              help="Real images: dataset zip, folder or zip of images, .npy/.npz array (--reals: the same).")
@click.option("--resolution", type=int, default=None,
              help="Common side when the two sides differ in size (default: the side whose images share one size, "
                   "the larger if both do).")
@click.option("--transform", type=click.Choice(TRANSFORMS), default=None,
              help="How the dataset tool matches sizes (default: resize square images); give the one the dataset "
                   "zip was made with, e.g. pad for MNIST-style 28->32.")
@click.option("--resize-filter", type=click.Choice(sorted(RESIZE_FILTERS)), default="lanczos", show_default=True,
              help="The dataset tool's resize filter for matching sizes.")
@bool_option("--mirror", help="Add x-flipped copies of the real images (NVIDIA's calc_metrics --mirror=1).")
@click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True,
              help="1 (one process); several: torchrun --nproc_per_node N -m stylegan metrics ...")
@bool_option("--verbose", help="Accepted for NVIDIA's command lines (progress goes to stderr anyway).")
@click.option("--metrics", "metric_names", default="fid50k_full", show_default=True,
              help="Comma-separated metric names (see docs/metrics.md).")
@click.option("--feature-net", default=None,
              help="inception | inception-nvidia:PATH | vgg16 | effnet-lite0 | fmnist, or NAME:PATH, or a path "
                   "to pytorch-fid Inception weights. Default: each metric's own (inception; vgg16 for pr50k3_full).")
@click.option("--ppl-distance", default=None,
              help="PPL distance: lpips-vgg16[:PATH] | effnet-lite0 | fmnist. Default: LPIPS when VGG16 weights "
                   "are found, else effnet-lite0.")
@click.option("--num", type=int, default=None, help="Override the number of generated images (PPL: latent pairs).")
@click.option("--num-real", type=int, default=None, help="Cap the number of real images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of everything random.")
@click.option("--noise-mode", type=click.Choice(["const", "random"]), default="const", show_default=True,
              help="Generator noise inputs ('random' is seeded per batch, as reproducible as 'const').")
@click.option("--batch", "batch_size", type=int, default=32, show_default=True, help="Images per forward pass.")
@click.option("--cache-dir", default=str(_DEFAULT_CACHE), show_default=True,
              help="Where real-image statistics are cached; '' disables the cache.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--run-dir", default=None, help="Append each result to RUN_DIR/metric-<name>.jsonl.")
@channels_last_option
def command(network_path, fakes, data, resolution, transform, resize_filter, mirror, gpus, verbose, metric_names,
            feature_net, ppl_distance, num, num_real, seed, noise_mode, batch_size, cache_dir, device, run_dir,
            channels_last):
    """Compute metrics and print one JSON line per metric."""
    from ..metrics.evaluate import compute_metric, metric_spec

    with user_errors():
        if (network_path is None) == (fakes is None):
            raise CliError("give exactly one of --network or --fakes")
        if gpus > 1:
            raise CliError(f"--gpus {gpus}: start the processes with torchrun --nproc_per_node {gpus} -m stylegan "
                           f"metrics ... (without --gpus); each computes its share of the batches")
        names = list(comma_list(metric_names))
        if not names:
            raise CliError("--metrics is empty; give e.g. --metrics fid50k_full,kid50k_full")
        for name in names:
            metric_spec(name)  # unknown names fail before any work
        generator = None
        if network_path is not None:
            from stylegan import load_generator

            from ..runtime.choice import prepare_inference

            generator = load_generator(network_path, device=device)
            # float32 always (metric values stay comparable); the layout is chosen for the images of all metrics
            images = sum(num if num is not None else metric_spec(name).num_fake for name in names)
            prepare_inference(generator, batch_size, images, "fp32", channels_last, allow_bf16=False, say=say_path)
        for name in names:
            record = compute_metric(name, generator=generator, fakes=fakes, data=data, feature_net=feature_net,
                                    num=num, num_real=num_real, seed=seed, batch_size=batch_size,
                                    cache_dir=cache_dir or None, device=device, ppl_distance=ppl_distance,
                                    noise_mode=noise_mode, resolution=resolution, transform=transform,
                                    resize_filter=resize_filter, mirror=mirror)
            if "matched" in record:
                click.echo(f"note: the two sides differ; matched as: {record['matched']}", err=True)
            record["network"] = network_path
            record["fakes"] = fakes
            record["data"] = data
            click.echo(json.dumps(record))
            if run_dir:
                append_jsonl(Path(run_dir) / f"metric-{name}.jsonl", record)
