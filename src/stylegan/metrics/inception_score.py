"""Inception Score (Salimans et al. 2016, section 4): IS = exp(E_x KL(p(y|x) || p(y))).

As in the original code (and StyleGAN2-ADA's is50k), the images are split into 10 parts, the score
is computed per part with p(y) the mean prediction of that part, and the mean and standard
deviation over parts are reported.
"""
from __future__ import annotations

import numpy as np

from stylegan.errors import UserInputError


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of `[N, K]` logits, computed stably in float64.

    logits: class scores.
    """
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def inception_score(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """Mean and std over splits of exp(mean_x KL(p(y|x) || p(y))) (Salimans et al. 2016).

    probs: `[N, K]` class probabilities p(y|x) (rows sum to 1); use `softmax` on logits first.
    num_splits: number of equal parts the images are split into.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] < num_splits:
        raise UserInputError(f"inception score needs [N, K] probabilities with N >= {num_splits} splits, "
                             f"got shape {probs.shape}")
    scores = []
    for part in np.array_split(probs, num_splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = part * (np.log(part + 1e-30) - np.log(marginal + 1e-30))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
