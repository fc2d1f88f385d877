"""One campaign point: run the experiment once and return its record (plain data, so that a Dask worker
can run it and send it back, and a results index can hold it).

A point that fails (an experiment error, a refused setting, a lost instrument) is recorded as failed with
the reason, and the campaign goes on; an interrupt is not caught.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py

from labctl.bench import Bench
from labctl.campaign.spec import Campaign, Point
from labctl.runner import run_experiment

#: Prefix of the attributes in which a results file holds its summary scalars and energy figures.
RESULT_PREFIX = "result."


def point_job(campaign: Campaign, point: Point, points_dir: Path) -> dict[str, Any]:
    """Everything a process needs to run ``point`` (plain data)."""
    return {"experiment": campaign.spec.experiment, "mode": campaign.spec.mode,
            "bench_path": None if campaign.bench_path is None else str(campaign.bench_path),
            "index": point.index, "key": point.key, "repeat": point.repeat, "seed": point.seed,
            "values": point.values, "overrides": point.overrides(campaign.spec.parameters),
            "changes": point.changes, "out": str(points_dir / f"point-{point.index:05d}-{point.key}.h5")}


def results_of(path: str | Path) -> dict[str, Any]:
    """The summary scalars and energy figures a results file holds (its ``result.*`` attributes)."""
    with h5py.File(path, "r", locking=False) as f:
        out = {}
        for name, value in f.attrs.items():
            if name.startswith(RESULT_PREFIX):
                value = value.decode() if isinstance(value, bytes) else value
                out[name[len(RESULT_PREFIX):]] = value.item() if hasattr(value, "item") else value
    return out


def run_point(job: dict[str, Any], bench: Bench | None = None) -> dict[str, Any]:
    """Run one point; return its record: the job's identity, ``status`` (``complete`` or ``failed: ...``),
    ``results`` (summary scalars and energy figures), ``results_file``, ``duration_s`` (wall) and ``cpu_s``
    (the CPU time of the thread that ran it: on a loaded machine much less than ``duration_s``).

    ``bench``: an open bench to measure on (a real bench, opened once for the campaign); otherwise a
    simulated bench is opened for the point with the point's seed and changes.
    """
    started, cpu_started = time.perf_counter(), time.thread_time()
    found: dict[str, Path] = {}
    record = {name: job[name] for name in ("index", "key", "repeat", "seed", "values")}
    try:
        result = run_experiment(job["experiment"], bench_path=job["bench_path"], mode=job["mode"], seed=job["seed"],
                                overrides=job["overrides"], out=job["out"], show_progress=False, bench=bench,
                                changes=job["changes"] or None,
                                on_results_file=lambda path, requested: found.setdefault("path", path))
        record.update(status="complete", results=results_of(result.results_path),
                      results_file=str(result.results_path))
    except Exception as exc:  # noqa: BLE001 - any failure of one point is that point's result, recorded
        record.update(status=f"failed: {type(exc).__name__}: {exc}", results={},
                      results_file=str(found["path"]) if "path" in found else "")
    record["duration_s"] = time.perf_counter() - started
    record["cpu_s"] = time.thread_time() - cpu_started   # this thread's CPU: duration_s minus waiting for a CPU
    return record


__all__ = ["point_job", "results_of", "run_point"]
