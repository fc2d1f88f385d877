"""Results files: HDF5, one dataset per recorded quantity, written as the run goes.

A run's file holds its parameters, the bench snapshot, code version, seed and timing as attributes
(JSON where nested), and one dataset per quantity. ``append`` grows a dataset one point at a time and
flushes, so an interrupted run keeps every point already measured; ``status`` says whether the run
finished (``complete``), failed (``failed: ...``) or was interrupted (``interrupted``).

No result is ever overwritten: a new run whose file name is taken writes to the next free name
(``name-1.h5``, ``name-2.h5``...). With ``overwrite=True`` the run writes to a temporary file next to
the target and replaces the earlier file only if it completes; a failed or interrupted re-run is kept
under the next free name and the earlier file stays as it was. A file whose recording process died
(``kill -9``, power cut) still says ``running``; :func:`run_status` tells that apart from a live run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.errors import LabctlError
from labctl.shutdown import deferred_signals

#: File name endings of results files.
SUFFIXES = (".h5", ".hdf5")
#: Status of a file whose recording process ended without closing it.
DIED = "running (process ended without finishing)"


class ResultsPathError(LabctlError, ValueError):
    """A results file cannot be written where asked (the path, its folder, permissions)."""


def code_version() -> str:
    """``git describe`` of the source tree, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def check_results_path(path: str | Path) -> Path:
    """``path`` if a results file can be created there; else a :class:`ResultsPathError` saying why.

    Checked before any instrument is touched, so a typo in ``--out`` costs nothing.
    """
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ResultsPathError(f"results file {path}: the name must end in {' or '.join(SUFFIXES)}")
    if path.is_dir():
        raise ResultsPathError(f"results file {path} is a directory; give a file name ending in .h5, "
                               "or the directory without a .h5 ending")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ResultsPathError(f"cannot write results file {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ResultsPathError(f"cannot write results file {path}: no permission to write in {ancestor}")
    return path


def free_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``stem-N`` name next to it."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _create(path: Path) -> tuple[Path, h5py.File]:
    """Create a new HDF5 file at ``path`` or the next free name (never opening an existing file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsPathError(f"cannot create the folder of results file {path}: {exc.strerror or exc}") from None
    while True:
        candidate = free_path(path)
        try:
            return candidate, h5py.File(candidate, "x", locking=False)  # readers may look while it runs
        except FileExistsError:
            continue  # taken since free_path looked (another run): try the next name
        except OSError as exc:
            if candidate.exists():
                continue
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ResultsPathError(f"cannot create results file {candidate}: {why}") from None


def _process_start(pid: int) -> str:
    """Start time of process ``pid`` (Linux ``/proc``; '' elsewhere): tells a reused pid from the recorder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] == "Z" else fields[19]  # a zombie has ended; field 22 of stat is the start time


def _process_alive(pid: int, started: str) -> bool:
    if Path("/proc/self/stat").exists():
        now = _process_start(pid)
        return bool(now) and (not started or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Recorder:
    """Writes one run's results file incrementally; never opens an existing file for writing.

    ``path`` is where the file ends up (see the module docstring for taken names and ``overwrite``);
    ``requested`` is the path asked for.
    """

    def __init__(self, path: str | Path, *, experiment: str, parameters: dict[str, Any],
                 snapshot: dict[str, Any] | None = None, seed: int | None, overwrite: bool = False):
        self.requested = check_results_path(path)
        self._replace = overwrite and self.requested.exists()
        target = self.requested.with_name(f"{self.requested.stem}.new{self.requested.suffix}") if self._replace \
            else self.requested
        self.path, self._file = _create(target)
        attrs = self._file.attrs
        attrs["experiment"] = experiment
        attrs["parameters"] = json.dumps(parameters, default=str)
        attrs["code_version"] = code_version()
        attrs["seed"] = -1 if seed is None else int(seed)
        attrs["started_utc"] = datetime.now(timezone.utc).isoformat()
        attrs["status"] = "running"
        attrs["pid"] = os.getpid()
        attrs["pid_started"] = _process_start(os.getpid())
        attrs["host"] = socket.gethostname()
        for key, value in parameters.items():
            if isinstance(value, (int, float, str, bool)):
                attrs[f"param.{key}"] = value
        if snapshot is not None:
            self.set_snapshot(snapshot)
        self._file.flush()

    def set_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Record the bench snapshot (settings of every instrument at the start of the run)."""
        self._file.attrs["bench_snapshot"] = json.dumps(snapshot, default=str)
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

    def write_json(self, name: str, payload: Any, **attrs: Any) -> None:
        """Store ``payload`` as JSON text in dataset ``name`` (``group/name`` makes the group), replacing it:
        structured records (an energy ledger) that are not arrays keep their shape and stay readable."""
        write_json_dataset(self._file, name, payload, **attrs)
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

    def set_attribute(self, name: str, value: str) -> None:
        """Record a note about the run (e.g. ``shutdown``: which sources went off) as a file attribute."""
        self._file.attrs[name] = value
        self._file.flush()

    def close(self, status: str = "complete") -> Path:
        """Write the final status (``complete``, ``failed: <why>`` or ``interrupted``) and close; return
        where the file is. Signals are held back until the file is closed and in its place."""
        if not (status in ("complete", "interrupted") or status.startswith("failed: ")):
            raise ValueError(f"status must be 'complete', 'interrupted' or 'failed: <why>', not {status!r}")
        with deferred_signals():
            if not self._file.id.valid:
                return self.path
            self._file.attrs["status"] = status
            self._file.attrs["finished_utc"] = datetime.now(timezone.utc).isoformat()
            self._file.close()
            if self._replace:
                final = self.requested if status == "complete" else free_path(self.requested)
                os.replace(self.path, final)
                self.path = final
        return self.path


def write_json_dataset(file: h5py.File | h5py.Group, name: str, payload: Any, **attrs: Any) -> None:
    """Write ``payload`` as a JSON string dataset ``name`` of an open HDF5 file or group (replacing it)."""
    if name in file:
        del file[name]
    dataset = file.create_dataset(name, data=json.dumps(payload), dtype=h5py.string_dtype())
    for key, value in attrs.items():
        dataset.attrs[key] = value


def read_json_dataset(path: str | Path, name: str) -> Any:
    """The JSON payload of dataset ``name`` of results file ``path`` (KeyError if it has none)."""
    with _open_for_reading(path) as f:
        if name not in f:
            raise KeyError(f"{path} has no {name!r}")
        raw = f[name][()]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def run_status(attrs: dict[str, Any]) -> str:
    """The status of a run from its file's attributes, telling a live run from one whose process died."""
    status = str(attrs.get("status", "no status (not a labctl results file?)"))
    if status != "running" or "finished_utc" in attrs:
        return status
    if "pid" not in attrs:
        return "running (no process recorded; it may have ended without finishing)"
    if attrs.get("host") != socket.gethostname():
        return f"running (on host {attrs.get('host')}; cannot check its process from here)"
    return "running" if _process_alive(int(attrs["pid"]), str(attrs.get("pid_started", ""))) else DIED


def _open_for_reading(path: str | Path) -> h5py.File:
    try:
        return h5py.File(path, "r", locking=False)  # a live run holds a write lock; reading is still safe
    except FileNotFoundError:
        raise ResultsPathError(f"no results file {path}") from None
    except OSError as exc:
        raise ResultsPathError(f"{path} is not a readable results file: {exc}") from None


def _decoded_attrs(f: h5py.File) -> dict[str, Any]:
    attrs = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if key in ("parameters", "bench_snapshot"):
            value = json.loads(value)
        attrs[key] = value
    attrs["status"] = run_status(attrs)
    return attrs


def read_results(path: str | Path) -> dict[str, Any]:
    """Load a results file into a dict: ``attrs`` (decoded; ``status`` as :func:`run_status` says) and
    one array per dataset."""
    out: dict[str, Any] = {}
    with _open_for_reading(path) as f:
        out["attrs"] = _decoded_attrs(f)
        for name, dataset in f.items():
            if isinstance(dataset, h5py.Dataset):  # groups (e.g. ``energy``) have their own readers
                out[name] = dataset[()]
    return out


def results_summary(path: str | Path) -> dict[str, Any]:
    """Status, experiment, start time and points per dataset of a results file (no data loaded)."""
    with _open_for_reading(path) as f:
        attrs = _decoded_attrs(f)
        points = {name: int(d.shape[0]) if d.shape else 1 for name, d in f.items() if isinstance(d, h5py.Dataset)}
    return {"status": attrs["status"], "experiment": attrs.get("experiment", "?"),
            "started_utc": attrs.get("started_utc", "?"), "finished_utc": attrs.get("finished_utc"),
            "points": points}
