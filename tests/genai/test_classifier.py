"""The bundled digit classifier: held-out accuracy, features, Frechet distance against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.genai.classifier import frechet_distance
from experiments.genai.data import digits


def test_held_out_accuracy_above_95_percent(classifier):
    d = digits()
    labels, conf = classifier.classify((d.test_x + 1) / 2)  # 360 images never seen in training
    acc = float((labels == d.test_y).mean())
    print(f"held-out accuracy {acc:.4f}, mean confidence {conf.mean():.4f}")
    assert acc > 0.95
    assert len(d.test_y) == 360 and set(np.unique(d.test_y)) == set(range(10))


def test_probabilities_and_features(classifier):
    d = digits()
    x = (d.test_x[:20] + 1) / 2
    p = classifier.probabilities(x)
    assert p.shape == (20, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    f = classifier.features(x)
    assert f.shape == (20, classifier.config.hidden) and np.all(f >= 0)  # post-ReLU
    # (n, 1, 8, 8) and torch inputs give the same answer
    import torch

    np.testing.assert_allclose(classifier.probabilities(torch.from_numpy(x[:, None])), p, rtol=1e-5)


def test_bad_image_shape(classifier):
    with pytest.raises(ValueError, match="images"):
        classifier.classify(np.zeros((3, 28, 28)))


def test_frechet_distance_closed_form():
    # N(0, I) vs N(mu, 4 I) in d dims: |mu|^2 + d (1 + 4 - 2 * 2) = |mu|^2 + d
    rng = np.random.default_rng(0)
    d, n = 3, 200_000
    mu = np.array([1.0, -2.0, 0.5])
    a = rng.standard_normal((n, d))
    b = mu + 2.0 * rng.standard_normal((n, d))
    expected = float(mu @ mu) + d
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_bad_input():
    with pytest.raises(ValueError, match="same d"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_frechet_distance_separates_digit_sets(classifier):
    # the classifier's features tell two different digit classes apart far more than two halves of one set
    d = digits()
    x = (d.test_x + 1) / 2
    ones, sevens = classifier.features(x[d.test_y == 1]), classifier.features(x[d.test_y == 7])
    half = len(ones) // 2
    within = frechet_distance(ones[:half], ones[half:])
    between = frechet_distance(ones, sevens)
    print(f"FD within '1': {within:.1f}, between '1' and '7': {between:.1f}")
    assert between > 5 * within


def test_frechet_distance_matches_matrix_square_root_formula():
    # full-rank, non-commuting covariances: the eigen-decomposition route equals Tr(sqrtm(S_a S_b))
    from scipy import linalg

    rng = np.random.default_rng(1)
    a = rng.standard_normal((60, 4)) @ rng.standard_normal((4, 4))
    b = rng.standard_normal((80, 4)) @ rng.standard_normal((4, 4)) + 0.5
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a) + np.trace(s_b)
           - 2 * np.trace(np.real(linalg.sqrtm(s_a @ s_b))))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
