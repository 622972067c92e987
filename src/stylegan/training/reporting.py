"""What a run reports: statistics summed over a tick, and at each tick one line to log.txt (and stdout without a
progress bar), one row to stats.jsonl, TensorBoard scalars and the progress bar's postfix. Rank 0 writes; the other
ranks only check their values."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch


class TrainingDiverged(RuntimeError):
    """A loss or weight became NaN/Inf; no checkpoint was written after it happened."""


def format_time(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02d}m"
    return f"{s // 86400}d {(s // 3600) % 24:02d}h"


class Log:
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


class TickReporter:
    """Statistics of the current tick and the tick's outputs.

    run_dir:  where log.txt, stats.jsonl and the TensorBoard events go (None on ranks > 0, which write nothing).
    progress: show a tqdm bar (then the log does not echo to stdout).
    total_kimg, start_kimg: the bar's range.
    """

    def __init__(self, run_dir: Optional[Path], progress: bool, total_kimg: float, start_kimg: float,
                 phase_names: List[str]):
        from .tensorboard import EventWriter
        main = run_dir is not None
        self.log = Log(run_dir / "log.txt" if main else None, echo=main and not progress)
        self.stats_file = open(run_dir / "stats.jsonl", "a") if main else None
        self.events = EventWriter(run_dir) if main else None
        self.bar = None
        if progress and main:
            from tqdm import tqdm
            self.bar = tqdm(total=total_kimg, initial=start_kimg, unit="kimg", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]")
        self.sums: Dict[str, List[float]] = {}
        self.phase_time = {name: 0.0 for name in phase_names}
        self.kimg = start_kimg  # where the run stands, for messages
        self.tick_start_time = time.time()

    def __call__(self, name: str, values: torch.Tensor) -> None:
        """Add `values` to statistic `name` of this tick; NaN/Inf stops the run."""
        values = values.detach().float().flatten()
        if not torch.isfinite(values).all():
            raise TrainingDiverged(f"{name} became NaN/Inf at {self.kimg:.3f} kimg; the last checkpoint before it is "
                                   f"kept. Lower the learning rate (--glr/--dlr), raise --gamma, or use --precision "
                                   f"fp32.")
        sums = self.sums.setdefault(name, [0.0, 0])
        sums[0] += float(values.sum())
        sums[1] += values.numel()

    def say(self, line: str, also_stdout: bool = False) -> None:
        """A line in the log; also_stdout: on stdout too where the progress bar hides the log."""
        self.log(line)
        if also_stdout and self.bar is not None:
            print(line, flush=True)

    def advance(self, images: int) -> None:
        self.kimg += images / 1000
        if self.bar is not None:
            self.bar.update(images / 1000)

    def tick(self, tick: int, kimg: float, tick_kimg: float, elapsed: float, extra: Dict[str, float]) -> dict:
        """Close a tick: its statistics (means, timing, `extra`), written where rank 0 writes; returns them."""
        now = time.time()
        tick_sec = now - self.tick_start_time
        stats = {name: s / max(n, 1) for name, (s, n) in self.sums.items()}
        stats.update({"Progress/tick": tick, "Progress/kimg": kimg, **extra,
                      "Timing/total_sec": elapsed, "Timing/sec_per_tick": tick_sec,
                      "Timing/sec_per_kimg": tick_sec / max(tick_kimg, 1e-8),
                      "Timing/img_per_sec": tick_kimg * 1000 / max(tick_sec, 1e-8),
                      **{f"Timing/phase/{k}_sec": v for k, v in self.phase_time.items()}})
        if self.stats_file is not None:
            self.log(f"tick {tick:<5d} kimg {kimg:<8.3f} time {format_time(elapsed):<12s} sec/tick {tick_sec:<7.1f} "
                     f"sec/kimg {stats['Timing/sec_per_kimg']:<7.2f} img/s {stats['Timing/img_per_sec']:<7.1f} "
                     f"G {stats.get('Loss/G/loss', float('nan')):<6.3f} D {stats.get('Loss/D/loss', float('nan')):<6.3f}"
                     f" augment {stats['Progress/augment']:.3f}")
            self.stats_file.write(json.dumps({**stats, "timestamp": now}) + "\n")
            self.stats_file.flush()
            self.events.add_scalars(stats, step=int(kimg * 1000))
            if self.bar is not None:
                self.bar.set_postfix_str(f"{stats['Timing/img_per_sec']:.1f} img/s, {stats['Timing/sec_per_kimg']:.1f}"
                                         f" s/kimg, G {stats.get('Loss/G/loss', 0):.3f}, D "
                                         f"{stats.get('Loss/D/loss', 0):.3f}, p {stats['Progress/augment']:.3f}")
        self.sums.clear()
        self.phase_time = {k: 0.0 for k in self.phase_time}
        return stats

    def restart_clock(self) -> None:
        self.tick_start_time = time.time()

    def close(self, line: Optional[str] = None) -> None:
        if self.bar is not None:
            self.bar.close()
        if line is not None:
            self.log(line)
        if self.stats_file is not None:
            self.stats_file.close()
            self.events.close()
        self.log.close()


def progress_default(progress: Optional[bool]) -> bool:
    """The progress bar: as asked, else where stdout is a terminal."""
    return progress if progress is not None else sys.stdout.isatty()
