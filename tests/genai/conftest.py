"""Fixtures of the generative-model tests: the bundled models, loaded once per test session."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # the suite runs with -n 2 on 2 cores: one torch thread per worker avoids oversubscription
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def models():
    from experiments.genai.models import MODEL_NAMES, load_model

    return {name: load_model(name) for name in MODEL_NAMES}


@pytest.fixture(scope="session")
def classifier():
    from experiments.genai.classifier import load_classifier

    return load_classifier()
