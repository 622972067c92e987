"""What the ADA pipe costs as p grows, before and after its cost was made to follow p (issue #23), and per impl
('exact' against 'nvidia', issue #25), in one process.

    .venv/bin/python benchmarks/augment_cost_cpu.py --name augment_cost            # per call, and the warp's form
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/augment_cost_cpu.py --impls --threads 1 --name augment_impls_1thread
    .venv/bin/python benchmarks/augment_cost_cpu.py --name augment_loop --loop     # whole `stylegan train` ticks
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python ...          # as an AVX2-only CPU

"before" is `training/augment.py` as of --before-rev (the implementation before this change), read with
`git show` and imported from a temporary file; "after" is this tree's. Results: benchmarks/results/<name>_cpu.json.

- Per call (`bgc`, batch 32 at 32x32x1 and 64x64x3, p in 0 .. 0.6): each round seeds the RNG, then runs `--calls`
  calls of one pipe, then the same calls of the other (same seed, hence the same transforms on the same samples:
  the draws did not change), alternating which goes first; "fwd" is the pipe alone, "fwd_bwd" adds the backward
  to images that require grad (as D's pass on G's images). The figure is the median over rounds of the mean ms per
  call (not the fastest call: the calls differ in how many samples draw a transform).
- The warp's separable filters as matrices or as convolutions (`augment_ops.DENSE_MAX_SIDE`): forward + backward of
  the warp of 24 3-channel samples (fewer above 64 pixels), fastest of interleaved calls.
- With --impls: per call as above, `bgc` executed by impl='exact' and impl='nvidia' (the same draws), p = 0.01, 0.3
  and 0.6, forward + backward.
- With --loop: `cli.bench_loop.run_loop_case` (NVIDIA's small command line, fast_eager) with ADA adapting from
  p = 0 and with p fixed at 0.05 and 0.3, the before pipe swapped in for `training.setup.make_augment_pipe`.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import emit, race, write_results

from stylegan.training import augment, augment_ops, setup

REPO = Path(__file__).resolve().parents[1]
BEFORE_REV = "7edad3f"  # the last commit of the pipe that resampled every sample of a stage's subset with convolutions
SHAPES = ((32, 1, 32, 32), (32, 3, 64, 64))
PROBABILITIES = (0.0, 0.01, 0.05, 0.1, 0.3, 0.6)
IMPL_PROBABILITIES = (0.01, 0.3, 0.6)


def load_before(rev: str):
    """The module training/augment.py as of `rev`, imported from a temporary file."""
    source = subprocess.run(["git", "show", f"{rev}:src/stylegan/training/augment.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix="_augment_before.py", delete=False) as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("augment_before", f.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    os.unlink(f.name)
    return module


def per_call(pipes: dict, shape, p: float, backward: bool, rounds: int, calls: int) -> dict:
    """Median over rounds of the mean ms per call of each pipe, on the same draws."""
    x = torch.randn(shape)
    for pipe in pipes.values():
        pipe.set_probability(p)

    def run(pipe):
        images = x.detach().requires_grad_(backward)
        y = pipe(images)
        if backward:
            y.square().sum().backward()

    for pipe in pipes.values():  # warm-up: oneDNN builds its kernels, the matrices are built
        torch.manual_seed(0)
        for _ in range(2):
            run(pipe)
    samples = {key: [] for key in pipes}
    for round_idx in range(rounds):
        order = list(pipes) if round_idx % 2 == 0 else list(pipes)[::-1]
        for key in order:
            torch.manual_seed(1000 + round_idx)
            start = time.perf_counter()
            for _ in range(calls):
                run(pipes[key])
            samples[key].append((time.perf_counter() - start) / calls * 1e3)
    return {key: round(statistics.median(v), 2) for key, v in samples.items()}


def warp_forms(rounds: int) -> list:
    """Forward + backward of the warp with its filters as matrices and as convolutions, per image size."""
    pipe = augment.make_augment_pipe("bg", "exact")
    pipe.set_probability(1.0)
    rows = []
    for size, n in ((32, 24), (64, 24), (128, 8), (256, 2), (512, 1)):
        torch.manual_seed(0)
        x = torch.randn(n, 3, size, size, requires_grad=True)
        geom = pipe.sample_params(n, size, size).geom
        forms = {"matrices": pipe.matrices, "convolutions": None}

        def step(form):
            augment_ops.warp(x, geom, pipe.geom_filter, form).square().sum().backward()

        best = race({key: (lambda form=form: step(form)) for key, form in forms.items()}, rounds, 3)
        rows.append({"what": "warp_fwd_bwd_ms", "size": size, "samples": n, "channels": 3,
                     **{key: round(v * 1e3, 2) for key, v in best.items()},
                     "convolutions_over_matrices": round(best["convolutions"] / best["matrices"], 2)})
    return rows


@contextlib.contextmanager
def pipe_of(module):
    """`stylegan train` builds its pipe with `module.make_augment_pipe` while active."""
    original = setup.make_augment_pipe
    setup.make_augment_pipe = module.make_augment_pipe
    try:
        yield
    finally:
        setup.make_augment_pipe = original


def loop_rows(before, rounds: int, kimg: float) -> list:
    """Whole training runs, each pipe with ADA adapting and at fixed p, interleaved; then the best and the median
    s/kimg of each (a busy machine slows single runs by 2-5x: the best is the figure, the median the spread)."""
    from stylegan.cli.bench_loop import run_loop_case, synthetic_dataset
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = str(synthetic_dataset(Path(tmp) / "blobs.zip"))
        for round_idx in range(rounds):
            for aug_p in (None, 0.05, 0.3):
                order = (("before", before), ("after", augment))
                for label, module in (order if round_idx % 2 == 0 else order[::-1]):
                    with pipe_of(module):
                        row = run_loop_case(device="cpu", paths=["fast_eager"], kimg=kimg, tick_kimg=0.256,
                                            workers=0, aug_p=aug_p, data=data)[0]
                    rows.append({"what": "train_loop", "pipe": label, "round": round_idx,
                                 "aug_p": "ada from 0" if aug_p is None else aug_p,
                                 **{k: row[k] for k in ("sec_per_kimg", "img_per_s", "phase_sec", "loop_sec",
                                                         "kimg_timed", "config", "flags", "load_avg")}})
                    print(rows[-1], flush=True)
    for aug_p in ("ada from 0", 0.05, 0.3):
        for label in ("before", "after"):
            runs = [r["sec_per_kimg"] for r in rows if r["aug_p"] == aug_p and r["pipe"] == label]
            rows.append({"what": "train_loop_summary", "pipe": label, "aug_p": aug_p, "runs": len(runs),
                         "best_sec_per_kimg": min(runs), "median_sec_per_kimg": statistics.median(runs)})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="augment_cost", help="results file benchmarks/results/<name>_cpu.json")
    parser.add_argument("--before-rev", default=BEFORE_REV)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--loop", action="store_true", help="whole training ticks instead of per-call times")
    parser.add_argument("--impls", action="store_true", help="per call: impl 'exact' against 'nvidia'")
    parser.add_argument("--kimg", type=float, default=1.024, help="--loop: kimg per run (the first tick is warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    isa = {"ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
           "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY", "native"), "threads": torch.get_num_threads()}
    rows = []
    if args.impls:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        emit(rows, {"what": "machine", "lscpu": [line for line in flags.splitlines()
                                                 if line.split(":")[0] in ("Model name", "CPU(s)", "Flags")]})
        for shape in SHAPES:
            for p in IMPL_PROBABILITIES:
                pipes = {impl: augment.make_augment_pipe("bgc", impl) for impl in augment.AUGMENT_IMPLS}
                ms = per_call(pipes, shape, p, True, args.rounds, args.calls)
                emit(rows, {"what": "bgc_ms_per_call", "shape": list(shape), "mode": "fwd_bwd", "p": p, **ms,
                            "nvidia_over_exact": round(ms["nvidia"] / ms["exact"], 2), **isa,
                            "load": round(os.getloadavg()[0], 2)})
    elif args.loop:
        for row in loop_rows(load_before(args.before_rev), args.rounds, args.kimg):
            rows.append({**row, **isa})
    else:
        before = load_before(args.before_rev)
        for shape in SHAPES:
            for backward in (False, True):
                for p in PROBABILITIES:
                    pipes = {"before": before.make_augment_pipe("bgc"),
                             "after": augment.make_augment_pipe("bgc", "exact")}
                    ms = per_call(pipes, shape, p, backward, args.rounds, args.calls)
                    emit(rows, {"what": "bgc_ms_per_call", "shape": list(shape), "mode": "fwd_bwd" if backward
                                else "fwd", "p": p, **ms, "speedup": round(ms["before"] / ms["after"], 2), **isa,
                                "load": round(os.getloadavg()[0], 2)})
        for row in warp_forms(args.rounds):
            emit(rows, {**row, **isa})
    print(write_results(args.name, rows, torch.device("cpu")))


if __name__ == "__main__":
    sys.exit(main())
