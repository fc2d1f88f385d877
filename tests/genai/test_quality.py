"""Image-quality metrics (experiments/genai/quality.py) against closed forms and a direct, loop-by-loop SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.genai.classifier import frechet_distance
from experiments.genai.data import digits
from experiments.genai.quality import (
    K1,
    K2,
    classifier_agreement,
    conditional_accuracy,
    feature_frechet_distance,
    format_table,
    gaussian_window,
    mean_confidence,
    psnr,
    quality_table,
    ssim,
    ssim_map,
)

C1, C2 = K1**2, K2**2  # data range 1


def _random_images(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 8, 8))


# -- PSNR ------------------------------------------------------------------------------------------------


def test_psnr_identical_is_inf():
    a = _random_images()
    out = psnr(a, a)
    assert out.shape == (4,) and np.all(np.isposinf(out))
    assert psnr(a[0], a[0]) == math.inf


def test_psnr_known_error():
    a = np.full((8, 8), 0.5)
    sign = np.where((np.arange(8)[:, None] + np.arange(8)) % 2 == 0, 1.0, -1.0)  # checkerboard +-1
    b = a + 0.1 * sign  # every pixel off by exactly 0.1: MSE = 0.01
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-9)
    assert psnr(a, b, data_range=2.0) == pytest.approx(20.0 + 20 * math.log10(2), abs=1e-9)
    # per image, with different known errors
    stack_a = np.stack([a, a, a])
    stack_b = np.stack([a + 0.1 * sign, a + 0.01 * sign, a + 0.3 * sign])
    np.testing.assert_allclose(psnr(stack_a, stack_b), [20.0, 40.0, 10 * math.log10(1 / 0.09)], atol=1e-9)


def test_psnr_gaussian_noise_matches_definition():
    rng = np.random.default_rng(3)
    a = rng.random((5, 8, 8))
    b = a + rng.normal(0, 0.05, a.shape)
    mse = ((a - b) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(psnr(a, b), 10 * np.log10(1.0 / mse), rtol=1e-12)
    assert np.all((psnr(a, b) > 20) & (psnr(a, b) < 32))  # sigma 0.05 -> about 26 dB


def test_psnr_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="data_range"):
        psnr(np.zeros((8, 8)), np.zeros((8, 8)), data_range=0)


# -- SSIM ------------------------------------------------------------------------------------------------


def test_window_is_the_papers_gaussian_truncated_to_fit():
    w = gaussian_window(7)
    assert w.shape == (7, 7) and w.sum() == pytest.approx(1.0)
    r = np.arange(7) - 3
    expected = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(w, expected / expected.sum(), rtol=1e-12)
    # 8x8 images: 7x7 window, 2x2 positions; large images: the paper's 11x11
    assert ssim_map(np.zeros((8, 8)), np.zeros((8, 8))).shape == (2, 2)
    assert ssim_map(np.zeros((3, 16, 16)), np.zeros((3, 16, 16))).shape == (3, 6, 6)
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(6)


def test_ssim_identical_is_one():
    a = _random_images()
    np.testing.assert_allclose(ssim(a, a), 1.0, rtol=0, atol=1e-12)
    assert ssim(a[0], a[0]) == pytest.approx(1.0, abs=1e-12)


def test_ssim_constant_images_closed_form():
    # no variance: the contrast-structure term is C2/C2 = 1, SSIM = luminance term
    for c1, c2 in [(0.2, 0.7), (0.5, 0.5), (0.0, 1.0)]:
        expected = (2 * c1 * c2 + C1) / (c1**2 + c2**2 + C1)
        assert ssim(np.full((8, 8), c1), np.full((8, 8), c2)) == pytest.approx(expected, rel=1e-12)


def test_ssim_offset_closed_form():
    # y = x + d: sigma_y = sigma_x, sigma_xy = sigma_x^2, so SSIM(window) = (2 mu (mu+d) + C1)/(mu^2 + (mu+d)^2 + C1)
    x = _random_images(1, seed=5)[0] * 0.5
    d = 0.3
    w = gaussian_window(7)
    mus = np.array([[np.sum(w * x[i:i + 7, j:j + 7]) for j in range(2)] for i in range(2)])
    expected = np.mean((2 * mus * (mus + d) + C1) / (mus**2 + (mus + d) ** 2 + C1))
    assert ssim(x, x + d) == pytest.approx(expected, rel=1e-10)
    assert ssim(x, x + d) < 1


def _ssim_direct(x, y, sigma=1.5, size=7):
    """SSIM written out from Wang et al. (2004), eqs. 13-17, one window position at a time."""
    r = np.arange(size) - size // 2
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    w /= w.sum()
    values = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            px, py = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
            mx, my = np.sum(w * px), np.sum(w * py)
            vx, vy = np.sum(w * (px - mx) ** 2), np.sum(w * (py - my) ** 2)
            cxy = np.sum(w * (px - mx) * (py - my))
            values.append(((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
    return float(np.mean(values))


def test_ssim_agrees_with_direct_computation():
    rng = np.random.default_rng(7)
    a = rng.random((3, 8, 8))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    got = ssim(a, b)
    for k in range(3):
        assert got[k] == pytest.approx(_ssim_direct(a[k], b[k]), rel=1e-10)
    # 10x10 images: the window is truncated to 9x9 (2x2 positions); an explicit 7x7 window (4x4 positions)
    x, y = rng.random((10, 10)), rng.random((10, 10))
    assert ssim(x, y) == pytest.approx(_ssim_direct(x, y, size=9), rel=1e-10)
    assert ssim(x, y, window=7) == pytest.approx(_ssim_direct(x, y, size=7), rel=1e-10)


def test_ssim_symmetric_and_below_one_when_perturbed():
    rng = np.random.default_rng(11)
    a = rng.random((6, 8, 8))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    np.testing.assert_allclose(ssim(a, b), ssim(b, a), rtol=1e-12)
    assert np.all(ssim(a, b) < 1) and np.all(ssim(a, b) > 0.5)
    # more noise -> lower SSIM; inverted structure -> negative
    c = np.clip(a + rng.normal(0, 0.3, a.shape), 0, 1)
    assert np.all(ssim(a, c) < ssim(a, b))
    assert np.all(ssim(a, 1 - a) < 0)


# -- classifier metrics ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def held_out(classifier):
    """Held-out digits the classifier reads correctly, two per class, in [0, 1]."""
    d = digits()
    x = (d.test_x + 1) / 2
    labels, _ = classifier.classify(x)
    ok = labels == d.test_y
    pick = np.concatenate([np.flatnonzero(ok & (d.test_y == c))[:2] for c in range(10)])
    return x[pick], d.test_y[pick]


def test_classifier_agreement_and_accuracy(classifier, held_out):
    x, y = held_out  # 20 images: classes 0,0,1,1,...,9,9
    assert classifier_agreement(x, x, classifier) == 1.0
    # replace the first 5 images by images of another class: agreement drops to exactly 15/20
    other = x.copy()
    for i in range(5):
        other[i] = x[(i + 4) % 20 if y[(i + 4) % 20] != y[i] else (i + 6) % 20]
    assert classifier_agreement(x, other, classifier) == pytest.approx(15 / 20)
    assert conditional_accuracy(x, y, classifier) == 1.0
    assert conditional_accuracy(x, (y + 1) % 10, classifier) == 0.0
    requested = y.copy()
    requested[:10] = -1  # nothing requested for these: left out
    requested[10] = (y[10] + 1) % 10
    assert conditional_accuracy(x, requested, classifier) == pytest.approx(9 / 10)
    assert conditional_accuracy(x, np.full(20, -1), classifier) is None
    with pytest.raises(ValueError, match="requested"):
        conditional_accuracy(x, y[:3], classifier)


def test_mean_confidence(classifier, held_out):
    x, _ = held_out
    expected = float(classifier.probabilities(x).max(axis=1).mean())
    assert mean_confidence(x, classifier) == pytest.approx(expected, rel=1e-6)
    assert 0.1 <= mean_confidence(np.full((4, 8, 8), 0.5), classifier) <= 1.0


def test_feature_frechet_distance(classifier, held_out):
    x, _ = held_out
    assert feature_frechet_distance(x, x, classifier) == pytest.approx(0.0, abs=1e-6)
    noisy = np.clip(x + np.random.default_rng(0).normal(0, 0.3, x.shape), 0, 1).astype(np.float32)
    d = feature_frechet_distance(x, noisy, classifier)
    assert d > 1.0
    assert d == pytest.approx(frechet_distance(classifier.features(x), classifier.features(noisy)), rel=1e-9)
    assert feature_frechet_distance(noisy, x, classifier) == pytest.approx(d, rel=1e-6)


def test_quality_table(classifier, held_out):
    x, y = held_out
    rng = np.random.default_rng(1)
    slight = np.clip(x + rng.normal(0, 0.02, x.shape), 0, 1).astype(np.float32)
    heavy = np.clip(x + rng.normal(0, 0.3, x.shape), 0, 1).astype(np.float32)
    rows = quality_table(x, {"slight": slight, "heavy": heavy}, requested=y, classifier=classifier,
                         extra={"slight": {"bits": 6.0}, "heavy": {"bits": 2.0}})
    assert [r["set"] for r in rows] == ["electronic", "slight", "heavy"]
    ref, s, h = rows
    assert ref["psnr_db_mean"] == math.inf and ref["ssim_mean"] == pytest.approx(1.0)
    assert ref["classifier_agreement"] == 1.0 and ref["accuracy"] == 1.0 and ref["frechet_distance"] < 1e-6
    assert s["bits"] == 6.0 and h["bits"] == 2.0 and "bits" not in ref
    assert s["psnr_db_mean"] == pytest.approx(float(np.mean(psnr(x, slight))))
    assert s["ssim_min"] == pytest.approx(float(np.min(ssim(x, slight))))
    assert s["psnr_db_mean"] > h["psnr_db_mean"] and s["ssim_mean"] > h["ssim_mean"]
    assert s["frechet_distance"] < h["frechet_distance"]
    assert s["classifier_agreement"] >= 0.9
    with pytest.raises(ValueError, match="extra"):
        quality_table(x, {"slight": slight}, classifier=classifier, extra={"nope": {}})


def test_format_table_is_aligned():
    rows = [{"set": "electronic", "psnr": math.inf, "n": 16, "acc": None},
            {"set": "optical-long-name", "psnr": 31.23456, "n": 8, "acc": 0.9, "extra": "x"}]
    text = format_table(rows, headers={"psnr": "PSNR dB"})
    lines = text.splitlines()
    assert len(lines) == 4
    header, rule = lines[0], lines[1]
    assert header.split() == ["set", "PSNR", "dB", "n", "acc", "extra"]
    assert set(rule.replace(" ", "")) == {"-"}
    # numbers right-aligned: each number ends where its header ends
    end = header.index("PSNR dB") + len("PSNR dB")
    assert lines[2][:end].endswith("inf") and lines[3][:end].endswith("31.2346")
    n_end = header.index(" n ") + 2
    assert lines[2][:n_end].endswith("16") and lines[3][:n_end].endswith(" 8")
    assert lines[2].split()[3] == "-"  # None
    assert format_table(rows, columns=["n"]).splitlines() == [" n", "--", "16", " 8"]
