"""Shared fixtures: simulated benches for driver-against-simulator tests."""

from __future__ import annotations

import pytest

from sim_backends.highlevel import LabSimVisaLibrary


def make_bench(instruments: dict, components: dict | None = None, connections: list | None = None, seed: int = 1):
    """A simulated VISA library on a fresh world built from the given bench parts."""
    config = {"instruments": instruments, "components": components or {}, "connections": connections or []}
    return LabSimVisaLibrary.from_config(config, seed=seed)


@pytest.fixture
def sim_bench():
    """Factory fixture: ``lib = sim_bench(instruments, components, connections, seed)``."""
    return make_bench


@pytest.fixture
def open_sim():
    """Open ``driver_cls`` on the instrument at ``resource`` of a simulated library."""
    opened = []

    def _open(driver_cls, lib, resource, **kwargs):
        instrument = driver_cls(resource, visa_library=lib, **kwargs)
        opened.append(instrument)
        return instrument

    yield _open
    for instrument in opened:
        instrument.adapter.close()
