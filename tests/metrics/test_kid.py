"""KID against a brute-force double loop over the unbiased MMD^2 formula."""
import numpy as np
import pytest

from stylegan.errors import UserInputError
from stylegan.metrics.kid import kernel_inception_distance, mmd2_unbiased


def brute_force_mmd2(x, y):
    m, d = len(x), x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_mmd_matches_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 4)), rng.normal(0.5, 1.2, size=(9, 4))
    assert mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)


def test_single_full_subset_equals_mmd_of_all_samples():
    # With one subset holding every sample the random choice is a permutation, which MMD ignores.
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(8, 3)), rng.normal(1, 1, size=(8, 3))
    kid = kernel_inception_distance(real, fake, num_subsets=1, max_subset_size=1000)
    assert kid == pytest.approx(brute_force_mmd2(fake, real), rel=1e-10)


def test_kid_separates_distributions_and_is_seeded():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 16))
    same = rng.normal(size=(300, 16))
    other = rng.normal(0.7, 1, size=(300, 16))
    kid_same = kernel_inception_distance(real, same, num_subsets=20, max_subset_size=100, seed=3)
    kid_other = kernel_inception_distance(real, other, num_subsets=20, max_subset_size=100, seed=3)
    assert abs(kid_same) < 0.1 * kid_other
    assert kid_other == kernel_inception_distance(real, other, num_subsets=20, max_subset_size=100, seed=3)
    assert kid_other != kernel_inception_distance(real, other, num_subsets=20, max_subset_size=100, seed=4)


def test_kid_rejects_bad_shapes():
    with pytest.raises(UserInputError, match="equal D"):
        kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(UserInputError, match="at least 2"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))
