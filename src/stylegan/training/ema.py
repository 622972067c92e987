"""Exponential moving average of the generator weights (Karras et al. 2018, section 5; Yazici et al. 2019)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def ema_beta(batch_size: int, ema_kimg: float, cur_nimg: int, ema_rampup: Optional[float] = None) -> float:
    """Per-step decay for a half-life of `ema_kimg` thousand images, shortened early on by `ema_rampup`."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema <- beta G_ema + (1 - beta) G for parameters; buffers (w_avg, noise) copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b.detach())
