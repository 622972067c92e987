"""Improved precision and recall (Kynkäänniemi et al. 2019, section 2, eqs. 1-2).

The manifold of a feature set is the union of balls around each sample with radius equal to the
distance to its k-th nearest neighbour in the same set (k = 3 in the paper):

    f(phi, Phi) = 1 if ||phi - phi'|| <= ||phi' - NN_k(phi')|| for some phi' in Phi, else 0
    precision = mean over fakes of f(fake, reals);   recall = mean over reals of f(real, fakes)

Distances are computed in row/column blocks so memory stays bounded for 50k x 50k comparisons.
"""
from __future__ import annotations

import numpy as np
import torch

from stylegan.errors import UserInputError


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances `[N, M]` between rows of a `[N, D]` and b `[M, D]` (float64).

    a: first set of feature rows.
    b: second set of feature rows.
    """
    sq = a.square().sum(1, keepdim=True) + b.square().sum(1)[None] - 2 * a @ b.T
    return sq.clamp_min(0).sqrt()


def knn_radii(features: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row in the same set.

    Keeps only the k + 1 smallest distances per row while sweeping column blocks, so memory stays
    at about batch_size^2 values whatever the set size.

    features: `[N, D]` rows.
    k: neighbour rank (the row itself, at distance 0, is not counted).
    batch_size: rows (and columns) compared at once.
    """
    radii = []
    for i in range(0, features.shape[0], batch_size):
        best = None
        for j in range(0, features.shape[0], batch_size):
            dist = pairwise_distances(features[i:i + batch_size], features[j:j + batch_size])
            pool = dist if best is None else torch.cat([best, dist], dim=1)
            best = pool.topk(min(k + 1, pool.shape[1]), dim=1, largest=False).values
        radii.append(best[:, k])  # sorted ascending; index k skips the zero self-distance
    return torch.cat(radii)


def manifold_coverage(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor,
                      batch_size: int) -> float:
    """Fraction of probe rows inside at least one ball (manifold[j], radii[j]) (eq. 1).

    manifold: `[N, D]` centres.
    radii: `[N]` ball radii.
    probes: `[M, D]` rows to test.
    batch_size: rows compared at once.
    """
    inside = []
    for i in range(0, probes.shape[0], batch_size):
        hit = torch.zeros(min(batch_size, probes.shape[0] - i), dtype=torch.bool)
        for j in range(0, manifold.shape[0], batch_size):
            dist = pairwise_distances(probes[i:i + batch_size], manifold[j:j + batch_size])
            hit |= (dist <= radii[j:j + batch_size][None]).any(dim=1)
        inside.append(hit)
    return float(torch.cat(inside).double().mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, batch_size: int = 5000) -> dict:
    """Improved precision and recall of generated features against real ones (k-NN manifolds).

    real: `[N, D]` real features.
    fake: `[M, D]` generated features.
    k: the neighbourhood size (paper: 3).
    batch_size: rows per distance block (memory is about batch_size^2 doubles).
    """
    real_t = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    fake_t = torch.as_tensor(np.asarray(fake), dtype=torch.float64)
    if real_t.ndim != 2 or fake_t.ndim != 2 or real_t.shape[1] != fake_t.shape[1]:
        raise UserInputError(f"precision/recall needs [N, D] features of equal D, got {tuple(real_t.shape)} and {tuple(fake_t.shape)}")
    if min(real_t.shape[0], fake_t.shape[0]) <= k:
        raise UserInputError(f"precision/recall with k={k} needs more than {k} real and generated images, "
                             f"got {real_t.shape[0]} and {fake_t.shape[0]}")
    precision = manifold_coverage(real_t, knn_radii(real_t, k, batch_size), fake_t, batch_size)
    recall = manifold_coverage(fake_t, knn_radii(fake_t, k, batch_size), real_t, batch_size)
    return dict(precision=precision, recall=recall)
