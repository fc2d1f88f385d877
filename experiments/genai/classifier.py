"""The bundled digit classifier: judges generated 8x8 digits (confidence, accuracy on a requested class) and
gives the penultimate-layer features for a Frechet distance between two image sets.

A small CNN (two 3x3 convolutions, max-pool, two linear layers; ~38 k parameters) trained on the training
split of scikit-learn's ``load_digits`` (see :mod:`experiments.genai.data`) with one-pixel shifts and mild
Gaussian pixel noise as augmentation, so it also reads slightly noisy (e.g. optically computed) images.
Its held-out accuracy is in ``models/digit-classifier/training.json`` and the README there.

    >>> clf = load_classifier()                        # from experiments/genai/models/digit-classifier
    >>> labels, confidence = clf.classify(images)      # images (n, 8, 8) in [0, 1], numpy or torch
    >>> feats = clf.features(images)                   # (n, 64) penultimate features
    >>> frechet_distance(feats_a, feats_b)

It is a diffusers ``ModelMixin``/``ConfigMixin``: ``save_pretrained``/``from_pretrained(local_path)`` with
safetensors weights, like the generators. Retrain (fixed seed, ~20 s on one core)::

    python -m experiments.genai.classifier
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

CLASSIFIER_DIR = Path(__file__).resolve().parent / "models" / "digit-classifier"
SEED = 0


class DigitClassifier(ModelMixin, ConfigMixin):
    """CNN over 8x8 digits. ``forward`` takes images in [0, 1] ((n, 8, 8) or (n, 1, 8, 8)), returns logits."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 64, num_classes: int = 10):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = nn.Linear(c2 * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    @staticmethod
    def _prepare(images) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images,
                            dtype=torch.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(f"images: expected shape (n, 8, 8) or (n, 1, 8, 8), got {tuple(x.shape)}")
        return x * 2.0 - 1.0  # [0, 1] -> [-1, 1]

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        """Features (n, hidden) of images already in [-1, 1], shape (n, 1, 8, 8)."""
        h = F.relu(self.conv1(x))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, images) -> torch.Tensor:
        return self.fc2(self.penultimate(self._prepare(images)))

    @torch.no_grad()
    def probabilities(self, images) -> np.ndarray:
        """Class probabilities (n, 10) of images in [0, 1]."""
        return torch.softmax(self.eval()(images), dim=-1).numpy()

    def classify(self, images) -> tuple[np.ndarray, np.ndarray]:
        """(labels (n,), confidence = max probability (n,)) of images in [0, 1]."""
        p = self.probabilities(images)
        return p.argmax(axis=1), p.max(axis=1)

    @torch.no_grad()
    def features(self, images) -> np.ndarray:
        """Penultimate-layer features (n, hidden) of images in [0, 1], for a Frechet distance."""
        return self.eval().penultimate(self._prepare(images)).numpy().astype(np.float64)


def load_classifier(path: str | Path = CLASSIFIER_DIR) -> DigitClassifier:
    """The bundled classifier (or one saved at ``path``), in eval mode."""
    from .models import _load_component

    return _load_component(DigitClassifier, Path(path), None, "digit-classifier").eval()


def frechet_distance(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (n_a, d) and (n_b, d):

    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Dowson & Landau 1982; the FID of Heusel et al.
    2017 on this classifier's features instead of Inception's). Each set needs at least 2 rows.
    """
    from scipy import linalg

    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features: expected two (n, d) arrays with the same d, got {a.shape} and {b.shape}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("features: each set needs at least 2 rows (n >= 2) for a covariance")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr((S_a S_b)^(1/2)) = sum of sqrt(eig(S_a^(1/2) S_b S_a^(1/2))): symmetric PSD eigenproblems, stable
    # for the singular covariances of few samples or dead ReLU features (unlike sqrtm of S_a S_b)
    w, v = linalg.eigh(np.atleast_2d(s_a))
    half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = linalg.eigvalsh(half @ np.atleast_2d(s_b) @ half)
    tr_covmean = float(np.sum(np.sqrt(np.clip(ev, 0, None))))
    d = float(np.sum((mu_a - mu_b) ** 2) + np.trace(np.atleast_2d(s_a)) + np.trace(np.atleast_2d(s_b))
              - 2.0 * tr_covmean)
    return max(d, 0.0)


def train(out: Path = CLASSIFIER_DIR, epochs: int = 40, seed: int = SEED) -> dict:
    """Train on the training split, report held-out accuracy, save to ``out``."""
    from .data import digits, shift_augment

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = digits()
    xtr = torch.from_numpy(data.train_x)[:, None]
    ytr = torch.from_numpy(data.train_y)
    model = DigitClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps_per_epoch = int(np.ceil(len(xtr) / 64))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * steps_per_epoch)
    t0 = time.time()
    for epoch in range(epochs):
        perm = torch.from_numpy(rng.permutation(len(xtr)))
        total = 0.0
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            x = shift_augment(xtr[idx], rng)
            x = x + 0.1 * torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))
            x = x.clamp(-1, 1)
            logits = model.fc2(model.penultimate(x))
            loss = F.cross_entropy(logits, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        print(f"epoch {epoch + 1}/{epochs} loss {total / len(xtr):.4f}", flush=True)
    seconds = time.time() - t0
    model.eval()
    test_unit = (data.test_x + 1.0) / 2.0
    pred, conf = model.classify(test_unit)
    acc = float((pred == data.test_y).mean())
    train_pred, _ = model.classify((data.train_x + 1.0) / 2.0)
    report = {
        "model": "digit-classifier",
        "seed": seed,
        "epochs": epochs,
        "train_images": int(len(xtr)),
        "held_out_images": int(len(data.test_y)),
        "train_accuracy": float((train_pred == data.train_y).mean()),
        "held_out_accuracy": acc,
        "held_out_mean_confidence": float(conf.mean()),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
    }
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    torch.set_num_threads(1)
    train()
