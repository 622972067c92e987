"""`stylegan bench`: fast paths against the float32 reference path, as JSON lines (and a table on stderr).

    stylegan bench --cfg stylegan2 --resolution 32          # quick: about two minutes on two CPU cores
    stylegan bench --cfg stylegan2 --resolution 32 --full   # batch 1/8/16, training batch 8, >= 2 s each
    stylegan bench --cfg stylegan3-t --resolution 32 --cbase 2048 --cmax 64   # a StyleGAN3 small enough for a CPU
    stylegan bench --case small --full --paths reference,fast,channels_last   # NVIDIA's small CPU network
    stylegan bench --case loop --kimg 0.768                 # whole `stylegan train` ticks (s/kimg) per path
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


CASE_NAMES = ("seed", "small", "loop")  # tools.bench.CASES plus tools.bench.LOOP_CASE (kept here: no torch import)


@click.command("bench")
@click.option("--case", type=click.Choice(CASE_NAMES), default="seed", show_default=True,
              help="seed: the preset (--cfg, --resolution) as given; small: NVIDIA's small CPU network (stylegan2, "
                   "--cbase 2048 --cmax 64 --map-depth 2, 32x32, 1 channel; inference batch 16, training batch 32; "
                   "flags given override it); loop: whole `stylegan train` ticks of the small config per path "
                   "(s/kimg, cli.bench_loop).")
@click.option("--cfg", type=click.Choice(PRESET_NAMES), default=None, help="Preset [stylegan2].")
@click.option("--resolution", type=int, default=None, help="[32]")
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
                   "compiled_bf16, compiled_channels_last, compiled_channels_last_bf16 (torch.compile: tens of "
                   "seconds per graph), fp16, compiled_fp16 (CUDA).")
@click.option("--seconds", type=float, default=None, help="Minimum timing per measurement [quick: 0.5; full: 2].")
@click.option("--calls", type=int, default=None,
              help="Minimum timed calls per measurement, after a warm-up [quick: 1; full: 2].")
@click.option("--cbase", type=int, default=None,
              help="Override the preset's channel_base (G and D; StyleGAN3-R still doubles G's) [preset].")
@click.option("--cmax", type=int, default=None, help="Override the preset's channel_max [preset].")
@click.option("--map-depth", type=int, default=None, help="Override G's mapping network depth [preset].")
@click.option("--channels", type=int, default=None, help="Image channels [3; case small: 1].")
@click.option("--rounds", type=int, default=1, show_default=True,
              help="Measure the paths in this many interleaved rounds (A B C A B C ...), each keeping its best: "
                   "on a shared machine, load changes then hit every path alike.")
@click.option("--kimg", type=float, default=None, help="Case loop: training length of each run [bench_loop's].")
@click.option("--no-train", is_flag=True, help="Inference only.")
@click.option("--out", default=None, help="Also write the JSON lines to this file (case loop: appended).")
def command(case, cfg, resolution, device, full, batches, train_batch, paths, seconds, calls, cbase, cmax, map_depth,
            channels, rounds, kimg, no_train, out):
    """Measure G inference and a training cycle, each path against the float32 reference."""
    with user_errors():
        import torch

        from ..tools.bench import CASES, LOOP_CASE, SWEEPS, emulated_bf16_paths, run_benchmarks, summary_lines
        path_list = None if paths is None else [p for p in paths.split(",") if p]
        if case == LOOP_CASE:
            _loop_case(str(parse_device(device)), path_list, kimg, out)
            return
        if kimg is not None:
            raise CliError("--kimg applies to --case loop only")
        spec = CASES[case]
        cfg = spec.cfg if cfg is None else cfg
        resolution = spec.resolution if resolution is None else resolution
        cbase = spec.channel_base if cbase is None else cbase
        cmax = spec.channel_max if cmax is None else cmax
        map_depth = spec.map_depth if map_depth is None else map_depth
        channels = spec.img_channels if channels is None else channels
        sweep = SWEEPS["full" if full else "quick"]
        try:
            batch_sizes = ([int(b) for b in batches.split(",") if b] if batches
                           else list(spec.batch_sizes or sweep.batch_sizes))
        except ValueError:
            raise CliError(f"--batch must be a comma-separated list of integers, got {batches!r}") from None
        train_batch = (spec.train_batch or sweep.train_batch) if train_batch is None else train_batch
        seconds = sweep.min_seconds if seconds is None else seconds
        calls = sweep.min_calls if calls is None else calls
        if not batch_sizes or min(batch_sizes) < 1 or train_batch < 1 or seconds < 0 or calls < 1 or rounds < 1:
            raise CliError("batch sizes, --calls and --rounds must be positive, --seconds at least 0")
        if any(v is not None and v < 1 for v in (cbase, cmax)):
            raise CliError(f"--cbase and --cmax must be positive, got {cbase} and {cmax}")
        if (map_depth is not None and map_depth < 1) or channels < 1:
            raise CliError(f"--map-depth and --channels must be positive, got {map_depth} and {channels}")
        device = str(parse_device(device))
        if resolution < 4 or resolution & (resolution - 1):
            raise CliError(f"--resolution must be a power of two >= 4, got {resolution}")
        slow = emulated_bf16_paths(path_list or [], torch.device(device))
        if slow:
            click.echo(f"warning: this {device} has no bf16 instructions (AVX-512-BF16/AMX), so {', '.join(slow)} "
                       "run emulated, hundreds of times slower than float32", err=True)
        start = time.perf_counter()
        widths = {k: v for k, v in (("channel_base", cbase), ("channel_max", cmax), ("map_depth", map_depth))
                  if v is not None}
        if channels != 3:
            widths["img_channels"] = channels
        rows = run_benchmarks(cfg, resolution, device, batch_sizes, train_batch, seconds, path_list,
                              training=not no_train, emit=lambda row: click.echo(json.dumps(row)), min_calls=calls,
                              train_reference=sweep.train_reference, case=None if case == "seed" else case,
                              **widths, **({"rounds": rounds} if rounds != 1 else {}))
        for line in summary_lines(rows):
            click.echo(line, err=True)
        click.echo(f"measured in {time.perf_counter() - start:.0f} s"
                   + ("" if full else "; --full for the full sweep"), err=True)
        if out:
            with atomic_path(Path(out)) as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _loop_case(device: str, paths, kimg, out) -> None:
    """`--case loop`: cli.bench_loop.run_loop_case (imported here: it is the training loop's benchmark) prints
    one JSON line per path and round, like the network rows."""
    from .bench_loop import run_loop_case

    kwargs = {"device": device, "out": out}
    if paths is not None:
        kwargs["paths"] = paths
    if kimg is not None:
        kwargs["kimg"] = kimg
    for row in run_loop_case(**kwargs):
        click.echo(json.dumps(row))
