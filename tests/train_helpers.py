"""Tiny datasets and configs for training tests."""
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylegan.presets import NetworkConfig, TrainingConfig
from stylegan.training.options import RunOptions


def make_dataset(folder: Path, count: int = 32, resolution: int = 16, channels: int = 1, labels: bool = False) -> Path:
    """Blobs at random places (class = quadrant), as PNGs in class subfolders when labelled."""
    rng = np.random.RandomState(0)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:resolution, :resolution]
    for i in range(count):
        cls = i % 4
        cy = (cls // 2 + 0.5) * resolution / 2 + rng.randn()
        cx = (cls % 2 + 0.5) * resolution / 2 + rng.randn()
        img = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (resolution / 8) ** 2))
        img = np.repeat(img[:, :, None], channels, axis=2).astype(np.uint8)
        sub = folder / f"class{cls}" if labels else folder
        sub.mkdir(exist_ok=True)
        Image.fromarray(img[:, :, 0] if channels == 1 else img).save(sub / f"img{i:04d}.png")
    if labels:
        import json
        names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
        (folder / "dataset.json").write_text(json.dumps({"labels": [[n, int(n[5])] for n in names]}))
    return folder


def tiny_config(**overrides) -> TrainingConfig:
    network = NetworkConfig(z_dim=16, w_dim=16, map_depth=2, channel_base=128, channel_max=16, num_fp16_res=0,
                            conv_clamp=256, mbstd_group_size=4)
    cfg = TrainingConfig(name="tiny", network=network, batch_size=8, g_lr=0.002, d_lr=0.002, r1_gamma=1.0,
                         ema_kimg=0.01, ema_rampup=0.05, total_kimg=0.048, aug="ada", augpipe="bgc",
                         ada_kimg=0.1, ref_gpus=1)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def tiny_options(data: Path, outdir: Path, **overrides) -> RunOptions:
    opts = RunOptions(data=str(data), outdir=str(outdir), config=overrides.pop("config", tiny_config()),
                      tick_kimg=0.016, snap_ticks=1, workers=0, progress=False, image_snap=False)
    for key, value in overrides.items():
        setattr(opts, key, value)
    return opts


def capture_compiles(monkeypatch, where=None):
    """Make everything that compiles through runtime.compile (the training loop's passes, the tools' synthesis)
    compile by graph capture as
    'aot_eager' does (eager kernels, so results match eager bit for bit, and compiling takes no time). Returns
    (compiled, runs): (class name, mode) of each compiled module, and one entry per run of a compiled graph."""
    from torch._dynamo.backends.registry import lookup_backend

    from stylegan.runtime import compile as runtime_compile
    from stylegan.runtime.compile import compile_module
    where = runtime_compile if where is None else where
    aot_eager = lookup_backend("aot_eager")
    compiled, runs = [], []

    def backend(gm, example_inputs):
        graph = aot_eager(gm, example_inputs)

        def run(*args):
            runs.append(1)
            return graph(*args)
        return run

    def capture(fn, mode):
        compiled.append((type(fn).__name__, mode))
        return compile_module(fn, mode, backend=backend)
    monkeypatch.setattr(where, "compile_module", capture)
    return compiled, runs


def assert_same_training_state(a: dict, b: dict) -> None:
    """Two loaded checkpoints hold bit-identical networks (G, D, G_ema, augment pipe) and Adam states."""
    for role in ("G", "D", "G_ema", "augment_pipe"):
        for key, value in a["modules"][role].items():
            assert torch.equal(value, b["modules"][role][key]), f"{role}.{key} differs after resume"
    for name in ("G", "D"):
        for idx, entry in a["optimizers"][name]["state"].items():
            for key, value in entry.items():
                other = b["optimizers"][name]["state"][idx][key]
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(other)), f"{name} Adam {idx}.{key} differs"
