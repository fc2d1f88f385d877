"""A simulated center's cores, each in its own process (labctl.network.cores): the same numbers as the core in
this process, refused jobs and dead processes reported, and cores computing at once."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pytest

from labctl.bench import SYSTEM_BENCH_PATH, open_bench
from labctl.errors import LabctlError
from labctl.network.cores import (
    CoreOpenError,
    CoreProcessFault,
    CoreRefusedJob,
    ProcessCore,
    process_cores,
    thread_cores,
)
from labctl.opu import open_opu
from tests.shared_files import ring_core_calibration_folder

SEED = 5
OPTIONS = {"return_error": False, "scale_a": None, "scale_b": None}


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    return ring_core_calibration_folder(tmp_path_factory, cores=2)


@pytest.fixture(scope="module")
def processes(calibration):
    with process_cores(SYSTEM_BENCH_PATH, [0, 1], mode="sim", seed=SEED, calibration=calibration) as cores:
        yield cores


def _operands(seed: int, rows: int = 4, inner: int = 40, cols: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, inner)), rng.standard_normal((inner, cols))


def _untimed(stats: dict) -> dict:
    """Statistics without the host's wall-clock times."""
    return {key: value for key, value in stats.items() if key not in ("wall_s", "hardware_s")}


def test_a_core_process_computes_what_the_core_computes_in_this_process(processes, calibration):
    """Core 2 in its own process and in a bench opened here with the same file, seed and calibration: the
    same products, statistics and job energy figures, job after job (its noise streams are its own)."""
    jobs = [_operands(k) for k in range(3)]
    remote = [processes[1].compute(a, b, OPTIONS) for a, b in jobs]
    with open_bench(SYSTEM_BENCH_PATH, mode="sim", seed=SEED) as bench:
        (local,) = thread_cores([open_opu(bench, calibration, core=1)])
        here = [local.compute(a, b, OPTIONS) for a, b in jobs]
    assert processes[1].name == local.name == "occ2" and processes[1].calibrated and processes[1].takes_light
    for (out_p, energy_p, stats_p), (out_l, energy_l, stats_l), (a, b) in zip(remote, here, jobs):
        np.testing.assert_array_equal(out_p, out_l)
        assert np.abs(out_p - a @ b).max() < 0.2 * np.abs(a @ b).max()  # a product, not noise
        assert _untimed(stats_p) == _untimed(stats_l)
        assert energy_p.bench_j == pytest.approx(energy_l.bench_j) and energy_p.bench_j > 0
        assert energy_p.projected_j == pytest.approx(energy_l.projected_j) and energy_p.projected_j > 0


def test_a_refused_job_names_its_error_and_the_process_keeps_serving(processes):
    a, b = _operands(1)
    with pytest.raises(CoreRefusedJob) as refused:
        processes[0].compute(a, b[:-1], OPTIONS)  # inner sizes differ
    assert refused.value.kind and "40" in str(refused.value)
    out, _, stats = processes[0].compute(a, b, OPTIONS)
    assert out.shape == (4, 20) and stats["macs"] == 4 * 40 * 20


def test_light_from_the_center_reaches_the_core_process_and_its_failure_fails_the_job(processes):
    """A job with edge light: each program asks this process for its light; a light source that fails makes
    the job fail, and the core computes from its own input chain again afterwards."""
    a, b = _operands(2)
    asked = []

    def no_light(codes, drive):
        asked.append((codes.shape, drive.symbol_rate_hz))
        raise RuntimeError("the edge is gone")

    with pytest.raises((CoreRefusedJob, CoreProcessFault)) as failed:
        processes[0].compute(a, b, OPTIONS, no_light)
    assert "the edge is gone" in str(failed.value)
    assert asked and asked[0][1] > 0 and asked[0][0][-1] == 16
    out, _, stats = processes[0].compute(a, b, OPTIONS)
    assert "edge_light_db" not in stats and np.abs(out - a @ b).max() < 0.2 * np.abs(a @ b).max()


def test_a_core_that_cannot_open_stops_the_others_and_says_which(calibration):
    """A typed labctl error (the command prints it as one line), naming the core and what went wrong."""
    assert issubclass(CoreOpenError, LabctlError)
    with pytest.raises(CoreOpenError, match=r"core 7 \(counting from 0\) could not open: StationaryOPUError: core=7 "
                                            r"does not exist"):
        with process_cores(SYSTEM_BENCH_PATH, [0, 7], mode="sim", seed=SEED, calibration=calibration):
            pass


def test_a_dead_core_process_fails_its_job_and_the_next_job_gets_a_new_one(calibration):
    core = ProcessCore(SYSTEM_BENCH_PATH, mode="sim", seed=SEED, core=0, calibration=calibration)
    try:
        core.wait_ready()
        first = core.pid
        os.kill(first, signal.SIGKILL)
        a, b = _operands(3)
        with pytest.raises(CoreProcessFault, match=r"occ1's process .*(exited with code -9|is gone)"):
            core.compute(a, b, OPTIONS)
        out, _, _ = core.compute(a, b, OPTIONS)  # a new process, the calibration loaded again
        assert core.pid != first and core.name == "occ1" and core.calibrated
        assert np.abs(out - a @ b).max() < 0.2 * np.abs(a @ b).max()
    finally:
        core.close()


@pytest.mark.parametrize(("flags", "processes"), [((), True), (("--one-process",), False)])
def test_center_serve_runs_simulated_cores_in_processes_unless_asked_not_to(monkeypatch, tmp_path, flags, processes):
    from click.testing import CliRunner

    import labctl.network.center
    from labctl.cli import main

    seen = {}
    monkeypatch.setattr(labctl.network.center, "serve", lambda *args, **kwargs: seen.update(kwargs))
    (tmp_path / "allow").mkdir()
    result = CliRunner().invoke(main, ["center", "serve", "--sim", "--bind", "tcp://127.0.0.1:*", "--key",
                                       str(tmp_path / "c.key_secret"), "--allow", str(tmp_path / "allow"), *flags])
    assert result.exit_code == 0, result.output
    assert seen["core_processes"] is processes and seen["mode"] == "sim"


def test_core_processes_end_with_their_center_even_when_it_is_killed(keys, calibration, tmp_path):
    """A center killed outright (no orderly shutdown) leaves no core process behind: each sees its pipe end."""
    from .conftest import CenterProcess
    from .test_orphans import _alive, _wait_for

    center = CenterProcess(keys, calibration, tmp_path / "center.log", args=("--cores", "2"))
    try:
        pids = [int(pid) for pid in re.findall(r"occ\d computes in process (\d+)", center.log())]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        os.kill(center.process.pid, signal.SIGKILL)  # the center only, not its process group
        center.process.wait(30)
        _wait_for(lambda: not any(_alive(pid) for pid in pids), "the core processes outlived their center", 60.0)
    finally:
        center.kill()
