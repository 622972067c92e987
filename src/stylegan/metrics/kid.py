"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", section 3 and eq. 4).

KID is the unbiased estimate of the squared MMD with the cubic polynomial kernel
k(x, y) = (x . y / d + 1)^3, averaged over random subsets of equal size m:

    MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i, j} k(x_i, y_j)

Defaults follow StyleGAN2-ADA's `kid50k_full`: 100 subsets of at most 1000 samples each.
"""
from __future__ import annotations

import numpy as np

from stylegan.errors import UserInputError


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for all pairs (Bińkowski et al. 2018, section 3).

    x: `[N, D]` features.
    y: `[M, D]` features.
    """
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two equally sized samples (Bińkowski et al. 2018, eq. 4).

    x: `[m, D]` features of one set.
    y: `[m, D]` features of the other set.
    """
    m = x.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """Mean unbiased MMD^2 over random subsets drawn without replacement (StyleGAN2-ADA kid50k_full).

    real: `[N, D]` real features.
    fake: `[M, D]` generated features.
    num_subsets: number of random subsets averaged.
    max_subset_size: subset size cap; the size is min(N, M, max_subset_size).
    seed: seed of the subset sampling.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise UserInputError(f"KID needs [N, D] features of equal D, got {real.shape} and {fake.shape}")
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise UserInputError(f"KID needs at least 2 real and 2 generated images, got {real.shape[0]} and {fake.shape[0]}")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        total += mmd2_unbiased(x, y)
    return total / num_subsets
