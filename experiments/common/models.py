"""The bundled generative models an experiment asks for by name, loaded before anything is measured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labctl.errors import LabctlError
from labctl.runner import ExperimentError


def load_models(names: Sequence[str]) -> dict[str, Any]:
    """``{name: generator}`` for ``names``; an ``ExperimentError`` saying what to do when torch/diffusers are
    missing, a name is unknown (listing the known ones) or a model cannot be loaded."""
    try:
        from experiments.genai.models import MODEL_NAMES, load_model  # torch and diffusers: only when asked
    except ImportError as exc:
        raise ExperimentError(f"the generative models cannot be imported ({exc}); pip install -e '.[ml,gen]'") \
            from None
    unknown = [m for m in names if m not in MODEL_NAMES]
    if unknown:
        raise ExperimentError(f"models: unknown {', '.join(map(repr, unknown))}; known models: "
                              f"{', '.join(MODEL_NAMES)}")
    gens = {}
    for name in names:
        try:
            gens[name] = load_model(name)
        except LabctlError as exc:
            raise ExperimentError(f"model {name}: {exc}") from None
    return gens
