"""Fréchet distance against closed forms, scipy's sqrtm and singular covariances."""
import numpy as np
import pytest
import scipy.linalg

from stylegan.errors import UserInputError
from stylegan.metrics.frechet import feature_statistics, fid_from_features, frechet_distance, sqrtm_psd


def test_diagonal_covariances_match_closed_form():
    rng = np.random.default_rng(0)
    d = 7
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 3, size=d), rng.uniform(0.1, 3, size=d)
    # For diagonal covariances Tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt(a) - sqrt(b))^2.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_general_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(1)
    d = 12
    m1, m2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(d), m2 @ m2.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_identical_and_shifted_sets_with_singular_covariance():
    # 10 samples in 50 dimensions: rank-9 covariances, where sqrtm is unreliable.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 50))
    assert np.linalg.matrix_rank(feature_statistics(x)[1]) < 50
    assert fid_from_features(x, x) == pytest.approx(0, abs=1e-8)
    shift = rng.normal(size=50)
    value = fid_from_features(x, x + shift)
    assert np.isfinite(value)
    assert value == pytest.approx(np.sum(shift ** 2), rel=1e-7)


def test_statistics_match_numpy_and_sqrt_is_a_square_root():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 5))
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))
    root = sqrtm_psd(sigma)
    np.testing.assert_allclose(root @ root, sigma, atol=1e-12)


def test_mismatched_statistics_are_rejected():
    with pytest.raises(UserInputError, match="same feature net"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(UserInputError, match="at least 2"):
        feature_statistics(np.zeros((1, 3)))
