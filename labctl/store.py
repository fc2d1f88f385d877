"""Results files: HDF5, one dataset per recorded quantity, written as the run goes.

A run's file holds its parameters, the bench snapshot, code version, seed and timing as attributes
(JSON where nested), and one dataset per quantity. ``append`` grows a dataset one point at a time and
flushes, so an interrupted run keeps every point already measured; ``status`` says whether the run
finished (``complete``), failed (``failed: ...``) or was interrupted.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def code_version() -> str:
    """``git describe`` of the source tree, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Recorder:
    """Writes one run's results file incrementally."""

    def __init__(self, path: str | Path, *, experiment: str, parameters: dict[str, Any],
                 snapshot: dict[str, Any], seed: int | None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.path, "w")
        attrs = self._file.attrs
        attrs["experiment"] = experiment
        attrs["parameters"] = json.dumps(parameters, default=str)
        attrs["bench_snapshot"] = json.dumps(snapshot, default=str)
        attrs["code_version"] = code_version()
        attrs["seed"] = -1 if seed is None else int(seed)
        attrs["started_utc"] = datetime.now(timezone.utc).isoformat()
        attrs["status"] = "running"
        for key, value in parameters.items():
            if isinstance(value, (int, float, str, bool)):
                attrs[f"param.{key}"] = value
        self._file.flush()

    def append(self, name: str, value: Any) -> None:
        """Add one point (a scalar or an array of fixed shape) to dataset ``name`` and flush."""
        value = np.asarray(value)
        if name not in self._file:
            self._file.create_dataset(name, shape=(0, *value.shape), maxshape=(None, *value.shape),
                                      dtype=value.dtype, chunks=True)
        dataset = self._file[name]
        dataset.resize(dataset.shape[0] + 1, axis=0)
        dataset[-1] = value
        self._file.flush()

    def write(self, name: str, data: Any, **attrs: Any) -> None:
        """Store a whole array as dataset ``name`` (replacing it), with optional attributes (units...)."""
        if name in self._file:
            del self._file[name]
        dataset = self._file.create_dataset(name, data=np.asarray(data))
        for key, value in attrs.items():
            dataset.attrs[key] = value
        self._file.flush()

    def set_units(self, **units: str) -> None:
        """Record the unit of datasets as they appear (stored as file attributes ``unit.<name>``)."""
        for name, unit in units.items():
            self._file.attrs[f"unit.{name}"] = unit

    def set_result(self, **values: Any) -> None:
        """Record scalar results (fits, figures of merit) as ``result.<name>`` attributes."""
        for key, value in values.items():
            self._file.attrs[f"result.{key}"] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value, default=str)
        self._file.flush()

    def close(self, status: str = "complete") -> None:
        if not self._file.id.valid:
            return
        self._file.attrs["status"] = status
        self._file.attrs["finished_utc"] = datetime.now(timezone.utc).isoformat()
        self._file.close()


def read_results(path: str | Path) -> dict[str, Any]:
    """Load a results file into a dict: ``attrs`` (decoded) and one array per dataset."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        attrs = {}
        for key, value in f.attrs.items():
            if isinstance(value, bytes):
                value = value.decode()
            if key in ("parameters", "bench_snapshot"):
                value = json.loads(value)
            attrs[key] = value
        out["attrs"] = attrs
        for name, dataset in f.items():
            out[name] = dataset[()]
    return out
