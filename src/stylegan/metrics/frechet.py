"""Fréchet distance between Gaussians fitted to features: FID (Heusel et al. 2017, eq. 6).

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

The trace of the matrix square root is computed with symmetric eigendecompositions instead of
`scipy.linalg.sqrtm`: S1 S2 is similar to the PSD matrix A = S1^(1/2) S2 S1^(1/2), so
Tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(A)). This stays real and finite when the covariances are
singular (fewer samples than dimensions), where sqrtm returns complex parts and NaNs.
"""
from __future__ import annotations

import numpy as np

from stylegan.errors import UserInputError


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (divides by N - 1, as numpy.cov) of `[N, D]` features.

    features: `[N, D]` array with N >= 2.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise UserInputError(f"need at least 2 feature vectors shaped [N, D], got shape {features.shape}")
    mu = features.mean(axis=0)
    centered = features - mu
    sigma = centered.T @ centered / (features.shape[0] - 1)
    return mu, sigma


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; negative round-off eigenvalues -> 0.

    matrix: `[D, D]` symmetric PSD array.
    """
    sym = (matrix + matrix.T) / 2
    eigvals, eigvecs = np.linalg.eigh(sym)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0, None))) @ eigvecs.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) for PSD S1, S2, via the eigenvalues of S1^(1/2) S2 S1^(1/2).

    sigma1: `[D, D]` covariance.
    sigma2: `[D, D]` covariance.
    """
    root1 = sqrtm_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    eigvals = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eigvals, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, S1) and N(mu2, S2) (FID eq. 6).

    mu1: `[D]` mean of the first set.
    sigma1: `[D, D]` covariance of the first set.
    mu2: `[D]` mean of the second set.
    sigma2: `[D, D]` covariance of the second set.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise UserInputError(f"statistics do not match: mu {mu1.shape} / {mu2.shape}, "
                             f"sigma {sigma1.shape} / {sigma2.shape}; both sets need the same feature net")
    mean_term = float(np.square(mu1 - mu2).sum())
    cov_term = float(np.trace(sigma1) + np.trace(sigma2)) - 2 * trace_sqrt_product(sigma1, sigma2)
    return max(mean_term + cov_term, 0.0)  # can dip below zero only by round-off


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two `[N, D]` feature sets.

    real: features of the real images.
    fake: features of the generated images.
    """
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))
