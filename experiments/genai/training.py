"""Shared pieces of the training scripts: seeding, EMA weights, the LR schedule, sample grids and the
classifier-based evaluation written to each model's ``training.json``."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    return np.random.default_rng(seed)


class EMA:
    """Exponential moving average of a module's parameters (what is saved; standard for diffusion models)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm-up as in diffusers' EMAModel
        for s, p in zip(self.shadow.parameters(), module.parameters()):
            s.mul_(d).add_(p.detach(), alpha=1 - d)
        for s, b in zip(self.shadow.buffers(), module.buffers()):
            s.copy_(b)


def cosine_lr(step: int, total: int, peak: float, warmup: int = 100, floor: float = 0.02) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def batches(rng: np.random.Generator, n: int, batch: int):
    """Endless shuffled index batches (each epoch a fresh permutation)."""
    while True:
        perm = rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            yield torch.from_numpy(perm[i:i + batch])


def save_grid(images: np.ndarray, path: Path, cols: int = 16, title: str | None = None) -> None:
    """A PNG grid of (n, 8, 8) images in [0, 1] (white digit on black, as in load_digits)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    rows = int(math.ceil(n / cols))
    grid = np.zeros((rows * 9 + 1, cols * 9 + 1), dtype=np.float32) + 0.3
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[1 + r * 9:1 + r * 9 + 8, 1 + c * 9:1 + c * 9 + 8] = im
    fig = plt.figure(figsize=(cols * 0.3, rows * 0.3 + (0.3 if title else 0)), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1 if not title else rows * 0.3 / (rows * 0.3 + 0.3)))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        fig.text(0.5, 1 - 0.15 / (rows * 0.3 + 0.3), title, ha="center", va="center", fontsize=8)
    fig.savefig(path)
    plt.close(fig)


def evaluate(images: np.ndarray, requested: np.ndarray | None = None) -> dict:
    """Classifier figures of generated images: confidence, label histogram, accuracy on requested labels."""
    from .classifier import load_classifier

    labels, conf = load_classifier().classify(images)
    out = {
        "samples": int(len(images)),
        "classifier_mean_confidence": round(float(conf.mean()), 4),
        "classifier_fraction_confident_0.9": round(float((conf > 0.9).mean()), 4),
        "classifier_label_histogram": np.bincount(labels, minlength=10).tolist(),
    }
    if requested is not None:
        out["conditional_accuracy"] = round(float((labels == np.asarray(requested)).mean()), 4)
    return out


def write_report(out: Path, report: dict) -> None:
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*.safetensors"))}
    report["weight_files_bytes"] = sizes
    report["weights_total_bytes"] = sum(sizes.values())
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2), flush=True)


class Timer:
    def __enter__(self):
        self.t0 = time.time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.time() - self.t0
