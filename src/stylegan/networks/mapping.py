"""The mapping network z -> w (StyleGAN, section 2 and figure 1b), with class conditioning and truncation."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..ops.misc import assert_shape, normalize_2nd_moment
from .layers import FullyConnectedLayer


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: Optional[int] = None) -> torch.Tensor:
    """The truncation trick (StyleGAN, section 3.1): w' = w_avg + psi (w - w_avg) on the first `cutoff` layers."""
    if psi == 1:
        return ws
    if cutoff is None or ws.ndim == 2:
        return w_avg.lerp(ws, psi)
    head = w_avg.lerp(ws[:, :cutoff], psi)
    return torch.cat([head, ws[:, cutoff:]], dim=1)


class MappingNetwork(nn.Module):
    """An MLP from latent z (and label c) to intermediate latent w, broadcast to `num_ws` layers.

    z_dim:          latent size (0 = labels only, as in the discriminator's label mapping).
    c_dim:          label size (0 = unconditional).
    w_dim:          intermediate latent size.
    num_ws:         number of ws to output ([N, num_ws, w_dim]); None returns [N, w_dim].
    num_layers:     number of fully-connected layers.
    embed_features: label embedding size (default w_dim).
    layer_features: hidden width (default w_dim).
    activation:     hidden activation.
    lr_multiplier:  learning-rate multiplier of every layer (0.01: StyleGAN, appendix C).
    w_avg_beta:     decay of the running average of w used by truncation; None disables tracking.
    label_concat:   embed labels as NVIDIA's TensorFlow G_mapping (v1, v2) does: `LabelConcat`, a bias-free
                    linear map (embed_features default z_dim) concatenated to z BEFORE one joint
                    normalisation; False (PyTorch releases): embedding with bias, z and embedding
                    normalised separately.
    normalize_latents: normalise z (with label_concat: the concatenation) to unit second moment, the official
                    default; False skips it (a label embedding without label_concat stays normalised, as in
                    TF stylegan2-ada).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: Optional[int], num_layers: int = 8,
                 embed_features: Optional[int] = None, layer_features: Optional[int] = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: Optional[float] = 0.998,
                 label_concat: bool = False, normalize_latents: bool = True):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        self.label_concat = label_concat
        self.normalize_latents = normalize_latents
        default_embed = z_dim if label_concat else w_dim
        embed_features = (default_embed if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features, bias=not label_concat)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Optional[torch.Tensor], c: Optional[torch.Tensor], truncation_psi: float = 1,
                truncation_cutoff: Optional[int] = None, update_emas: bool = False) -> torch.Tensor:
        # Normalised apart (PyTorch releases), or concatenated first and normalised together (TF LabelConcat).
        parts = []
        if self.z_dim > 0:
            assert_shape(z, [None, self.z_dim], "z")
            z = z.to(torch.float32)
            parts.append(normalize_2nd_moment(z) if self.normalize_latents and not self.label_concat else z)
        if self.c_dim > 0:
            assert_shape(c, [None, self.c_dim], "c")
            y = self.embed(c.to(torch.float32))
            parts.append(y if self.label_concat else normalize_2nd_moment(y))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if self.normalize_latents and self.label_concat:
            x = normalize_2nd_moment(x)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("truncation needs w_avg, which this mapping network does not track")
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
