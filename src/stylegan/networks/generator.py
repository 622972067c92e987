"""What every generator version shares: G = synthesis(mapping(z, c)) with NVIDIA's calling convention.

`Generator` (StyleGAN2), `Generator1` (v1) and `Generator3` (StyleGAN3) differ in their mapping defaults and
synthesis networks only; each builds `self.mapping` and `self.synthesis` after calling this constructor.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn


class StyleGenerator(nn.Module):
    """G(z, c) -> image in [-1, 1], NCHW; subclasses set `self.mapping`, `self.synthesis` and `self.num_ws`.

    z_dim:          latent size.
    c_dim:          label size (0 = unconditional).
    w_dim:          intermediate latent size.
    img_resolution: output resolution.
    img_channels:   output channels.
    init_kwargs:    the subclass's other constructor kwargs (mapping_kwargs, synthesis kwargs, ...), recorded with
                    the ones above in `self.init_kwargs` so that an export can rebuild the network.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int, **init_kwargs):
        super().__init__()
        init_kwargs["mapping_kwargs"] = init_kwargs.get("mapping_kwargs") or {}
        self.init_kwargs = copy.deepcopy(dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                              img_channels=img_channels, **init_kwargs))
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1,
                truncation_cutoff: Optional[int] = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
