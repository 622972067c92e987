"""WGAN-GP losses (Gulrajani et al. 2017) with ProGAN's drift term (Karras et al. 2018, appendix A.1).

As NVIDIA's TF release (`training/loss.py`: `G_wgan`, `D_wgan_gp`) defines them, per sample i:

    L_D,i = D(fake_i) - D(real_i) + lambda / target**2 (||grad_x D(x_hat_i)|| - target)**2 + eps D(real_i)**2
    L_G,i = -D(fake_i)

with x_hat_i = real_i + u_i (fake_i - real_i), u_i ~ U[0, 1) (Gulrajani eq. 3) and eps = 0.001 keeping the
critic's output near zero. The losses below average over the batch.

`D` is any callable `D(img, c) -> [N, 1]`; pass e.g. `functools.partial(D, lod=lod)` to pin a level of detail.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

Critic = Callable[[torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Per-sample generator loss -D(G(z)) (official G_wgan); the scores must carry G's graph."""
    return -fake_scores


def drift_penalty(real_scores: torch.Tensor) -> torch.Tensor:
    """Per-sample drift term D(real)**2 (ProGAN appendix A.1, epsilon_drift)."""
    return real_scores.square().flatten()


def gradient_penalty(D: Critic, real: torch.Tensor, fake: torch.Tensor, c: Optional[torch.Tensor] = None,
                     target: float = 1.0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Per-sample (||grad D(x_hat)|| - target)**2 at random interpolates x_hat (Gulrajani eq. 3).

    The graph is kept (create_graph) so the penalty's gradient reaches D's parameters.

    D:         critic.
    real:      real images [N, C, H, W].
    fake:      generated images of the same shape (detached here).
    c:         labels [N, c_dim] or None.
    target:    gradient-norm target (1 in WGAN-GP).
    generator: random generator for the interpolation factors.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake shapes differ: {list(real.shape)} vs {list(fake.shape)}")
    u = torch.rand([real.shape[0]] + [1] * (real.ndim - 1), generator=generator).to(device=real.device,
                                                                                    dtype=real.dtype)
    x_hat = torch.lerp(real.detach(), fake.detach(), u).requires_grad_(True)
    scores = D(x_hat, c)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).square().sum(dim=1).sqrt()
    return (norms - target).square()


def wgan_gp_d_losses(D: Critic, real: torch.Tensor, fake: torch.Tensor, c: Optional[torch.Tensor] = None,
                     gp_lambda: float = 10.0, drift: float = 0.001, target: float = 1.0,
                     generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(per-sample critic loss, D(real) scores [N, 1]): D(fake) - D(real) + gp_lambda / target**2 * GP
    + drift * D(real)**2 (official D_wgan_gp). D sees the fakes, the reals, then the interpolates.

    D:         critic.
    real:      real images [N, C, H, W].
    fake:      generated images (detached here, so the loss trains D only).
    c:         labels [N, c_dim] or None (the same for real and fake, as in the official loss).
    gp_lambda: gradient-penalty weight (10).
    drift:     drift-term weight epsilon (0.001).
    target:    gradient-norm target (1).
    generator: random generator for the interpolation factors.
    """
    fake_scores = D(fake.detach(), c)
    real_scores = D(real.detach(), c)
    loss = fake_scores.flatten() - real_scores.flatten()
    if gp_lambda != 0:
        gp = gradient_penalty(D, real, fake, c, target=target, generator=generator)
        loss = loss + gp * (gp_lambda / target ** 2)
    if drift != 0:
        loss = loss + drift_penalty(real_scores) * drift
    return loss, real_scores


def wgan_gp_d_loss(D: Critic, real: torch.Tensor, fake: torch.Tensor, c: Optional[torch.Tensor] = None,
                   **kwargs) -> torch.Tensor:
    """The batch mean of wgan_gp_d_losses (same arguments)."""
    return wgan_gp_d_losses(D, real, fake, c, **kwargs)[0].mean()
