"""The StyleGAN2 generator: mapping network + synthesis network, with the official calling convention."""
from __future__ import annotations

from typing import Optional

from .generator import StyleGenerator
from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork


class Generator(StyleGenerator):
    """G(z, c) -> image in [-1, 1], NCHW.

    z_dim:             latent size.
    c_dim:             label size (0 = unconditional).
    w_dim:             intermediate latent size.
    img_resolution:    output resolution.
    img_channels:      output channels.
    mapping_kwargs:    passed to MappingNetwork (num_layers, lr_multiplier, ...).
    synthesis_kwargs:  passed to SynthesisNetwork (channel_base, channel_max, num_fp16_res, conv_clamp,
                       architecture, fused_modconv_default, ...).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: Optional[dict] = None, **synthesis_kwargs):
        super().__init__(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=mapping_kwargs,
                         **synthesis_kwargs)
        # stylegan2-ada-pytorch passes the synthesis kwargs as one dict.
        synthesis_kwargs = {**synthesis_kwargs.pop("synthesis_kwargs", {}), **synthesis_kwargs}
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

