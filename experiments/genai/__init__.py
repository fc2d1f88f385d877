"""Generative AI on the optical computing center: bundled, trained digit generators and the digit
classifier that judges their images.

    >>> from experiments.genai import load_model, MODEL_NAMES
    >>> images = load_model("ddpm-digits").generate(16, seed=0, steps=50)

See :mod:`experiments.genai.models` (generators), :mod:`experiments.genai.classifier` (judge, Frechet
distance) and ``experiments/genai/README.md`` (training, figures). torch/diffusers are imported lazily.
"""

from __future__ import annotations

__all__ = ["MODEL_NAMES", "load_model", "load_classifier", "frechet_distance"]


def __getattr__(name: str):
    if name in ("MODEL_NAMES", "load_model"):
        from . import models

        return getattr(models, name)
    if name in ("load_classifier", "frechet_distance"):
        from . import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
