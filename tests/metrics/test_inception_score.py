"""Inception Score against its definition."""
import numpy as np
import pytest

from stylegan.errors import UserInputError
from stylegan.metrics.inception_score import inception_score, softmax


def test_confident_balanced_predictions_score_the_class_count():
    probs = np.eye(5)[np.arange(100) % 5]          # each split holds all 5 classes equally
    mean, std = inception_score(probs, num_splits=4)
    assert mean == pytest.approx(5.0, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_one_class_or_uniform_predictions_score_one():
    assert inception_score(np.eye(5)[np.zeros(50, int)], num_splits=5)[0] == pytest.approx(1.0)
    assert inception_score(np.full((50, 5), 0.2), num_splits=5)[0] == pytest.approx(1.0)


def test_matches_definition_per_split():
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(60, 7)) * 2)
    scores = []
    for part in np.array_split(probs, 3):
        py = part.mean(0)
        scores.append(np.exp(np.mean([np.sum(p * np.log(p / py)) for p in part])))
    mean, std = inception_score(probs, num_splits=3)
    assert mean == pytest.approx(np.mean(scores), rel=1e-10)
    assert std == pytest.approx(np.std(scores), rel=1e-8)


def test_softmax_rows_sum_to_one_and_bad_shapes_fail():
    p = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(p.sum(1), 1)
    assert p[0, 0] == pytest.approx(1.0)
    with pytest.raises(UserInputError, match="splits"):
        inception_score(np.full((5, 3), 1 / 3), num_splits=10)
