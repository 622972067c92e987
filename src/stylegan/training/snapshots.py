"""What a run writes besides its statistics: the image grids (reals.png, fakes*.png), the network snapshot (our
export: G, G_ema, D and the training-set description), the training checkpoint (everything needed to resume
exactly) and the metrics evaluated at each snapshot. Rank 0 writes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..io.export import save_network
from ..io.images import make_grid, save_image, to_uint8
from .checkpoint import save_checkpoint
from .run_dir import CHECKPOINT_NAME, snapshot_name
from .setup import Run, label_draws, rng_states


class ImageGrid:
    """The fixed latents and labels of a run's fakes grids (the same in every snapshot), sized by resolution."""

    def __init__(self, run: Run):
        resolution = run.dataset.resolution
        self.cols = int(np.clip(512 // resolution, 4, 16))
        rows = int(np.clip(256 // resolution, 4, 8))
        gen = torch.Generator().manual_seed(run.opts.seed + 12345)
        self.z = torch.randn([rows * self.cols, run.G.z_dim], generator=gen)
        self.c = label_draws(run.dataset, run.c_dim, gen, [rows * self.cols])

    def save_reals(self, run: Run, path: Path) -> None:
        dataset = run.dataset
        reals = np.stack([dataset[i][0] for i in range(min(len(dataset), len(self.z)))]).transpose(0, 2, 3, 1)
        save_image(make_grid(reals, self.cols), path)

    @torch.no_grad()
    def save_fakes(self, G_ema: nn.Module, path: Path, device: torch.device) -> None:
        images = [to_uint8(G_ema(z.to(device), c.to(device), noise_mode="const"))
                  for z, c in zip(self.z.split(32), self.c.split(32))]
        save_image(make_grid(np.concatenate(images), self.cols), path)


def save_snapshot(run: Run, run_dir: Path, grid: ImageGrid, log) -> None:
    """Network snapshot, checkpoint, fakes grid and metrics at the current image count (rank 0 only)."""
    state, opts = run.state, run.opts
    augment_p = float(run.augment_pipe.p) if run.augment_pipe is not None else 0.0
    extra = {"augment_p": augment_p,
             "training_set_kwargs": {"path": str(opts.data), "use_labels": opts.cond, "xflip": opts.mirror,
                                     "resolution": run.dataset.resolution},
             "cur_nimg": state.cur_nimg}
    save_network(run_dir / snapshot_name(state.cur_nimg), {"G": run.G, "G_ema": run.G_ema, "D": run.D}, extra)
    modules = {"G": run.G, "D": run.D, "G_ema": run.G_ema}
    if run.augment_pipe is not None:
        modules["augment_pipe"] = run.augment_pipe
    save_checkpoint(run_dir / CHECKPOINT_NAME, modules, {"G": run.opt_G, "D": run.opt_D},
                    rng_states(run.gen, run.device), dataclasses.asdict(state))
    if opts.image_snap:
        grid.save_fakes(run.G_ema, run_dir / f"fakes{state.cur_nimg // 1000:06d}.png", run.device)
    for name in opts.metrics:
        from ..metrics.evaluate import compute_metric
        result = compute_metric(name, generator=run.G_ema, data=opts.data, device=run.device, num=opts.metrics_num,
                                num_real=opts.metrics_num, cache_dir=Path(opts.outdir) / ".metric-cache")
        with open(run_dir / f"metric-{name}.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        log(f"metric {json.dumps(result)}")
