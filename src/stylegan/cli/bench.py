"""`stylegan bench`: fast paths against the float32 reference path, as JSON lines."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..io.atomic import atomic_path
from ..io.load import parse_device
from ..presets import PRESET_NAMES
from .common import CliError, user_errors


@click.command("bench")
@click.option("--cfg", type=click.Choice(PRESET_NAMES), default="stylegan2", show_default=True, help="Preset.")
@click.option("--resolution", type=int, default=32, show_default=True)
@click.option("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu", show_default=True)
@click.option("--batch", "batches", default="1,8,16", show_default=True, help="Inference batch sizes.")
@click.option("--train-batch", type=int, default=8, show_default=True, help="Training batch size.")
@click.option("--paths", default="reference,fast,fast_bf16", show_default=True,
              help="Comma-separated paths to measure: reference, fast, fast_plain_bias_act, fast_bf16, channels_last, "
                   "channels_last_bf16, compiled, compiled_bf16 (torch.compile: tens of seconds per graph), fp16, "
                   "compiled_fp16 (CUDA).")
@click.option("--seconds", type=float, default=2.0, show_default=True, help="Minimum timing per measurement.")
@click.option("--no-train", is_flag=True, help="Inference only.")
@click.option("--out", default=None, help="Also write the JSON lines to this file.")
def command(cfg, resolution, device, batches, train_batch, paths, seconds, no_train, out):
    """Measure G inference and a full training step, each path against the float32 reference."""
    with user_errors():
        from ..tools.bench import run_benchmarks
        try:
            batch_sizes = [int(b) for b in batches.split(",") if b]
        except ValueError:
            raise CliError(f"--batch must be a comma-separated list of integers, got {batches!r}") from None
        path_list = [p for p in paths.split(",") if p]
        if not batch_sizes or min(batch_sizes) < 1 or train_batch < 1 or seconds <= 0:
            raise CliError("batch sizes and --seconds must be positive")
        device = str(parse_device(device))
        if resolution < 4 or resolution & (resolution - 1):
            raise CliError(f"--resolution must be a power of two >= 4, got {resolution}")
        rows = run_benchmarks(cfg, resolution, device, batch_sizes, train_batch, seconds, path_list,
                              training=not no_train, emit=lambda row: click.echo(json.dumps(row), nl=True))
        if out:
            with atomic_path(Path(out)) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
