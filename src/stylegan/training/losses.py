"""Losses and regularisers of StyleGAN2, each a small function (Karras et al. 2020, section 3 and appendix B).

- non-saturating logistic loss (Goodfellow et al. 2014) for G and D;
- R1 regularisation on reals (Mescheder et al. 2018), weighted by gamma/2 (StyleGAN2 eq. 4 setting);
- path length regularisation (StyleGAN2 eq. 4): E[(||J_w^T y||_2 - a)^2], a a running mean;
- style mixing regularisation (StyleGAN section 3.1): switch to a second latent at a random layer.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample -log sigmoid(D(G(z))) = softplus(-D(G(z)))."""
    return F.softplus(-fake_logits)


def d_logistic_loss_fake(fake_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample -log(1 - sigmoid(D(G(z)))) = softplus(D(G(z)))."""
    return F.softplus(fake_logits)


def d_logistic_loss_real(real_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample -log sigmoid(D(x)) = softplus(-D(x))."""
    return F.softplus(-real_logits)


def r1_penalty(real_img: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||^2 (R1); `real_img` must require grad. Keeps the graph for backprop."""
    (grads,) = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img], create_graph=True, only_inputs=True)
    return grads.square().sum(dim=[1, 2, 3])


def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """||J_w^T y||_2 per sample, y ~ N(0, I)/sqrt(H W) (StyleGAN2 section 3.2); averaged over the ws layers.

    autograd.grad with inputs=[ws] computes no weight gradients in this first pass (what the official
    `pl_no_weight_grad` arranges with a custom op); the graph it creates still depends on the weights.
    """
    if noise is None:
        noise = torch.randn_like(img)
    noise = noise / math.sqrt(img.shape[2] * img.shape[3])
    (grads,) = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True, only_inputs=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: torch.Tensor, pl_mean: torch.Tensor, decay: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(per-sample (length - a)^2, updated a) where a is the exponential moving average of lengths.

    As NVIDIA's StyleGAN2 loss, the gradient also flows through this batch's share of a (decay * mean length); the
    caller stores a detached copy of the updated a."""
    new_mean = pl_mean.lerp(lengths.mean(), decay)
    return (lengths - new_mean).square(), new_mean


def mix_styles(ws: torch.Tensor, ws2: torch.Tensor, prob: float, num_active: Optional[int] = None) -> torch.Tensor:
    """With probability `prob`, replace ws[:, cutoff:] by ws2[:, cutoff:] with cutoff ~ U{1, num_active - 1}.

    One cutoff for the whole minibatch, as in the official implementations. `num_active` limits the cutoff to the
    layers that influence the output (StyleGAN v1 during progressive growing); default all of them.
    """
    active = ws.shape[1] if num_active is None else num_active
    if prob <= 0 or active < 2:
        return ws
    cutoff = int(torch.randint(1, active, []))
    if float(torch.rand([])) >= prob:
        return ws
    return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
