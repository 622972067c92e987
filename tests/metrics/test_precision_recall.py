"""Improved precision/recall: limiting cases and agreement with a naive implementation."""
import numpy as np
import pytest

from stylegan.errors import UserInputError
from stylegan.metrics.precision_recall import precision_recall


def naive_precision_recall(real, fake, k):
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        return np.sort(d, axis=1)[:, k]
    def coverage(centres, r, probes):
        d = np.linalg.norm(probes[:, None] - centres[None], axis=2)
        return float(np.mean((d <= r[None]).any(axis=1)))
    return coverage(real, radii(real), fake), coverage(fake, radii(fake), real)


def test_identical_sets_give_one_and_one():
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert precision_recall(x, x.copy(), k=3) == dict(precision=1.0, recall=1.0)


def test_far_apart_clusters_give_zero_and_zero():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 4)), rng.normal(size=(40, 4)) + 100
    assert precision_recall(real, fake, k=3) == dict(precision=0.0, recall=0.0)


def test_narrow_set_inside_broad_set_has_full_precision_and_low_recall():
    # Reals on a grid with spacing h: each 3rd-neighbour radius is h, and every point of the square
    # lies within h / sqrt(2) of a grid point, so fakes drawn inside the square are all covered.
    h = 0.25
    axis = np.arange(-3, 3 + h / 2, h)
    real = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    fake = np.random.default_rng(2).uniform(-1, 1, size=(300, 2))
    result = precision_recall(real, fake, k=3)
    assert result["precision"] == 1.0
    assert result["recall"] < 0.5


def test_batched_matches_naive():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(37, 5)), rng.normal(0.3, 1.3, size=(29, 5))
    expected = naive_precision_recall(real, fake, k=3)
    result = precision_recall(real, fake, k=3, batch_size=8)  # several row/column blocks
    assert (result["precision"], result["recall"]) == pytest.approx(expected)


def test_too_few_samples_is_an_error():
    with pytest.raises(UserInputError, match="more than 3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
