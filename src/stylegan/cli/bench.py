"""`stylegan bench`: fast paths against the float32 reference path, as JSON lines (and a table on stderr).

    stylegan bench --cfg stylegan2 --resolution 32          # quick: about two minutes on two CPU cores
    stylegan bench --cfg stylegan2 --resolution 32 --full   # batch 1/8/16, training batch 8, >= 2 s each
    stylegan bench --cfg stylegan3-t --resolution 32 --cbase 2048 --cmax 64   # a StyleGAN3 small enough for a CPU
"""
from __future__ import annotations

import json
import time
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
@click.option("--full", is_flag=True,
              help="The full sweep: batch 1,8,16, training batch 8, at least 2 s per measurement (tens of minutes "
                   "on a small CPU). Default: the quick sweep, batch 1,8, training batch 2 without the reference "
                   "path (training speedups against fast), >= 0.5 s and 1 call each.")
@click.option("--batch", "batches", default=None,
              help="Inference batch sizes, comma-separated [quick: 1,8; full: 1,8,16].")
@click.option("--train-batch", type=int, default=None, help="Training batch size [quick: 2; full: 8].")
@click.option("--paths", default=None,
              help="Comma-separated paths to measure [reference,fast, plus fast_bf16 where the hardware has bf16]: "
                   "reference, fast, fast_plain_bias_act, fast_bf16, channels_last, channels_last_bf16, compiled, "
                   "compiled_bf16 (torch.compile: tens of seconds per graph), fp16, compiled_fp16 (CUDA).")
@click.option("--seconds", type=float, default=None, help="Minimum timing per measurement [quick: 0.5; full: 2].")
@click.option("--calls", type=int, default=None,
              help="Minimum timed calls per measurement, after a warm-up [quick: 1; full: 2].")
@click.option("--cbase", type=int, default=None,
              help="Override the preset's channel_base (G and D; StyleGAN3-R still doubles G's) [preset].")
@click.option("--cmax", type=int, default=None, help="Override the preset's channel_max [preset].")
@click.option("--no-train", is_flag=True, help="Inference only.")
@click.option("--out", default=None, help="Also write the JSON lines to this file.")
def command(cfg, resolution, device, full, batches, train_batch, paths, seconds, calls, cbase, cmax, no_train, out):
    """Measure G inference and a training cycle, each path against the float32 reference."""
    with user_errors():
        import torch

        from ..tools.bench import SWEEPS, emulated_bf16_paths, run_benchmarks, summary_lines
        sweep = SWEEPS["full" if full else "quick"]
        try:
            batch_sizes = [int(b) for b in batches.split(",") if b] if batches else list(sweep.batch_sizes)
        except ValueError:
            raise CliError(f"--batch must be a comma-separated list of integers, got {batches!r}") from None
        train_batch = sweep.train_batch if train_batch is None else train_batch
        seconds = sweep.min_seconds if seconds is None else seconds
        calls = sweep.min_calls if calls is None else calls
        path_list = None if paths is None else [p for p in paths.split(",") if p]
        if not batch_sizes or min(batch_sizes) < 1 or train_batch < 1 or seconds < 0 or calls < 1:
            raise CliError("batch sizes and --calls must be positive, --seconds at least 0")
        if any(v is not None and v < 1 for v in (cbase, cmax)):
            raise CliError(f"--cbase and --cmax must be positive, got {cbase} and {cmax}")
        device = str(parse_device(device))
        if resolution < 4 or resolution & (resolution - 1):
            raise CliError(f"--resolution must be a power of two >= 4, got {resolution}")
        slow = emulated_bf16_paths(path_list or [], torch.device(device))
        if slow:
            click.echo(f"warning: this {device} has no bf16 instructions (AVX-512-BF16/AMX), so {', '.join(slow)} "
                       "run emulated, hundreds of times slower than float32", err=True)
        start = time.perf_counter()
        widths = {k: v for k, v in (("channel_base", cbase), ("channel_max", cmax)) if v is not None}
        rows = run_benchmarks(cfg, resolution, device, batch_sizes, train_batch, seconds, path_list,
                              training=not no_train, emit=lambda row: click.echo(json.dumps(row)), min_calls=calls,
                              train_reference=sweep.train_reference, **widths)
        for line in summary_lines(rows):
            click.echo(line, err=True)
        click.echo(f"measured in {time.perf_counter() - start:.0f} s"
                   + ("" if full else "; --full for the full sweep"), err=True)
        if out:
            with atomic_path(Path(out)) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
