"""`make demo`: Fashion-MNIST at 32x32, the `cpu` preset for a fixed time, a sample grid and a short report."""
from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Optional, Union

from ..presets import TrainingConfig, resolve_preset
from .generate import generate_images
from ..io.images import make_grid, save_image


def run_demo(outdir: Union[str, os.PathLike] = "demo-out", minutes: float = 10.0, kimg: Optional[float] = None,
             seed: int = 0, workers: int = 0, progress: Optional[bool] = None, fast: bool = True,
             config: Optional[TrainingConfig] = None) -> dict:
    """Prepare data, train, write `samples.png` and `REPORT.md` in `outdir`; returns the report as a dict.

    outdir:   folder for the dataset zip, the run directory and the results.
    minutes:  training time budget (the run stops at the first tick after it).
    kimg:     optional cap on training length in thousands of images.
    seed:     random seed.
    workers:  data loader processes; 0 decodes in the training process (32 small PNGs a step), faster on 2 cores
              than workers competing with the training threads (docs/performance.md, Whole loop).
    progress: progress bar (default: when stdout is a terminal).
    fast:     train on the fastest path measured: channels-last; where the hardware has bf16, bf16 autocast and
              torch.compile (compiled bf16 trained the `cpu` preset 1.8x faster than eager bf16, which pays back
              the 1.5 minutes of compiling within the 10); float32 and eager elsewhere (compiled float32 trained
              it no faster than eager: 177 against 191 img/s with AVX2 only, so compiling would only cost time;
              docs/performance.md, Whole loop). Compilation is skipped, with a message, where it cannot work.
              False: the default path (float32, eager, NCHW).
    config:   the training configuration (default: the `cpu` preset at 32x32; benchmarks/demo_presets.py
              compares others in the same 10 minutes).
    """
    from ..data.fashion_mnist import DEMO_LAYOUTS, prepare_demo_dataset
    from ..io.load import load_generator
    from ..training.loop import train
    from ..training.options import RunOptions

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    data = outdir / "fashion-mnist-32.zip"
    source_file = outdir / "dataset-source.json"
    if not data.exists():
        summary = prepare_demo_dataset(data, resolution=32)
        print(summary)
        if summary.source_kind != "fashion-mnist":
            print("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist); using scikit-learn's "
                  "8x8 digits instead")
        print(f"layout: {DEMO_LAYOUTS[summary.source_kind]}")
        source_file.write_text(json.dumps({"source": summary.source_kind}))
    source = json.loads(source_file.read_text())["source"] if source_file.exists() else "existing zip"
    if source in DEMO_LAYOUTS:
        source = f"{source}, {DEMO_LAYOUTS[source]}"

    config = copy.deepcopy(config) if config is not None else resolve_preset("cpu", 32)
    if kimg is not None:
        config.total_kimg = kimg
    speed = _fast_options() if fast else dict(precision="fp32", channels_last=False, compile="off")
    t0 = time.time()
    # A snapshot (network, checkpoint, 128-image grid) every 10 kimg, about a minute: every 2 kimg cost several
    # percent of a fast run's time; the last one is written when the time is up.
    run_dir = train(RunOptions(data=str(data), outdir=str(outdir / "runs"), config=config, tick_kimg=1.0,
                               snap_ticks=10, seed=seed, workers=workers, progress=progress, max_minutes=minutes,
                               **speed))
    seconds = time.time() - t0
    snapshot = sorted(run_dir.glob("network-snapshot-*.safetensors"))[-1]
    G = load_generator(snapshot)
    images = generate_images(G, range(64), truncation_psi=1.0, noise_mode="const", batch_size=32)
    save_image(make_grid(images, cols=8), outdir / "samples.png")
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    kimg_done = stats[-1]["Progress/kimg"]
    img_per_s = kimg_done * 1000 / max(sum(s["Timing/sec_per_tick"] for s in stats), 1e-8)
    report = {"dataset": source, "dataset_zip": str(data), "run_dir": str(run_dir), "snapshot": str(snapshot),
              "samples": str(outdir / "samples.png"), "kimg": kimg_done, "train_img_per_s": round(img_per_s, 1),
              "wall_seconds": round(seconds, 1)}
    path = (f"{speed['precision']}, channels-last, compile {speed['compile']}" if fast else "default path")
    report["path"] = path
    lines = ["# stylegan demo", "",
             f"- data: {source} ({data})",
             f"- trained the `{config.name}` preset for {seconds / 60:.1f} min ({path}): {kimg_done:.2f} kimg at "
             f"{img_per_s:.1f} img/s",
             f"- run directory: {run_dir} (log.txt, stats.jsonl, fakes*.png, checkpoint)",
             f"- final network: {snapshot}",
             f"- 64 samples (seeds 0-63): {outdir / 'samples.png'}", "",
             "Try (with .venv/bin on PATH): `stylegan generate --network " + str(snapshot)
             + " --seeds 0-15 --grid --outdir out`"]
    (outdir / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


def _fast_options() -> dict:
    """The fastest measured path, with the device it was checked on: channels-last; with native bf16, bf16 and
    torch.compile where it works here (else eager, with a message); float32 and eager without."""
    import torch

    from ..errors import UserInputError
    from ..runtime.compile import check_compile_support
    from ..runtime.hardware import native_bf16
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = native_bf16(device)  # emulated bf16 (no AVX-512-BF16/AMX) would be hundreds of times slower
    compile_mode = "off"
    if bf16:
        try:
            check_compile_support(device)
            compile_mode = "default"
            print("compiling the networks first (about 1.5 minutes on two cores; later runs reuse the cache)")
        except UserInputError as exc:
            print(f"training without torch.compile: {exc}")
    return dict(device=str(device), precision="bf16" if bf16 else "fp32", channels_last=True, compile=compile_mode)
