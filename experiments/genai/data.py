"""The training data of the bundled generative models: scikit-learn's ``load_digits`` (1797 handwritten
digits, 8x8 pixels, 16 grey levels; UCI "Optical Recognition of Handwritten Digits", bundled with
scikit-learn, so nothing is downloaded).

``digits()`` gives the images scaled to [-1, 1] (the diffusion models' range) and the labels, with a fixed,
stratified train/held-out split shared by every training script, so the classifier's held-out accuracy is
measured on images no generator and no classifier has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.2


@dataclass(frozen=True)
class Digits:
    train_x: np.ndarray  # (n, 8, 8) float32 in [-1, 1]
    train_y: np.ndarray  # (n,) int64 in 0..9
    test_x: np.ndarray
    test_y: np.ndarray


def to_unit(images: np.ndarray) -> np.ndarray:
    """load_digits grey levels (0..16) -> [0, 1]."""
    return np.asarray(images, dtype=np.float32) / 16.0


def digits() -> Digits:
    """The 8x8 digits scaled to [-1, 1], split 80/20 (stratified, seed ``SPLIT_SEED``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = to_unit(d.images) * 2.0 - 1.0
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=HELD_OUT_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return Digits(xtr.astype(np.float32), ytr, xte.astype(np.float32), yte)


def shift_augment(x, rng):
    """Random shifts of up to one pixel (zero = background -1 filled), a torch batch (n, 1, 8, 8)."""
    import torch

    n = x.shape[0]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=-1.0)
    dy = torch.from_numpy(rng.integers(0, 3, n))
    dx = torch.from_numpy(rng.integers(0, 3, n))
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8]
    return out
