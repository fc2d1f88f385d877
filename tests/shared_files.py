"""Files made once per test session and shared by pytest-xdist workers."""

import fcntl
import os
from pathlib import Path


def shared_file(tmp_path_factory, name: str, make) -> Path:
    """``make(path)`` once per test session, shared by pytest-xdist workers (a calibration takes seconds).

    Under xdist the workers' temporary directories share a per-session parent; a lock file there lets the
    first worker make the file and the others wait and reuse it. Without xdist: the session's own dir.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / name
    with open(root / (name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not path.exists():
                make(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


RING_CORE = Path(__file__).resolve().parents[1] / "sim_backends" / "benches" / "ring_core.yaml"


def ring_core_calibration(tmp_path_factory, core: int) -> Path:
    """Core ``core`` of the built-in ring-core bench calibrated as written (bench seed 1), once per session."""

    def make(path: Path) -> None:
        import labctl
        from labctl.opu.stationary import calibration as stationary_calibration

        with labctl.open_bench(RING_CORE, seed=1) as bench:
            stationary_calibration.calibrate(bench, path, core=core)

    return shared_file(tmp_path_factory, f"ring_core_occ{core + 1}_seed1.json", make)


def ring_core_calibration_folder(tmp_path_factory, cores: int = 3) -> Path:
    """A calibration folder as ``--calibration`` and ``open_opus`` take it: the first ``cores`` cores'
    session calibrations (:func:`ring_core_calibration`) as ``occ<k>.json``."""
    import shutil

    folder = tmp_path_factory.mktemp("ring_core_calibration")
    for core in range(cores):
        shutil.copy2(ring_core_calibration(tmp_path_factory, core), folder / f"occ{core + 1}.json")
    return folder


def calibrate_core_run(tmp_path_factory) -> Path:
    """Output folder of the ``calibrate_core`` experiment on core 0 (occ1, seed 3), once per session."""

    def make(path: Path) -> None:
        import shutil

        from experiments.calibrate_core import CalibrateCore
        from labctl.runner import run_experiment

        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run_experiment(CalibrateCore, bench_path=RING_CORE, seed=3, overrides={"cores": [0]}, out=partial,
                       show_progress=False)
        partial.rename(path)

    return shared_file(tmp_path_factory, "calibrate_core_occ1", make)
