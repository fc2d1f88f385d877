"""No result is ever overwritten or left without status; bad paths, seeds and parameters are refused
before any instrument is touched; a killed run's file reads as such."""

import math
import signal
import sys

import h5py
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from labctl import runner
from labctl.cli import entry, main
from labctl.runner import Experiment, ExperimentError, make_parameters, run_experiment
from labctl.store import DIED, Recorder, ResultsPathError, read_results, results_summary
from tests.labctl.test_shutdown import start_probe


class Params(BaseModel):
    points: int = 3
    fail: bool = False
    gain: float = 1.0
    levels: list[float] = [0.0, 1.0]


class Counting(Experiment):
    """Records ``points`` points, then fails if asked."""

    name = "counting"
    Parameters = Params

    def run(self, ctx):
        for i in range(ctx.params.points):
            ctx.recorder.append("x", float(i))
        if ctx.params.fail:
            raise RuntimeError("instrument fault")
        return {"points": ctx.params.points}


def run(out, overwrite=False, **overrides):
    return run_experiment(Counting, out=out, overrides=overrides, overwrite=overwrite, show_progress=False)


def points(path):
    with h5py.File(path, "r") as f:
        return len(f["x"])


def test_a_second_run_never_truncates_the_first(tmp_path):
    out = tmp_path / "r.h5"
    first = run(out, points=5)
    second = run(out, points=2)
    third = run(out, points=1)
    assert first.results_path == out and points(out) == 5
    assert second.results_path == tmp_path / "r-1.h5" and points(second.results_path) == 2
    assert third.results_path == tmp_path / "r-2.h5"
    assert read_results(out)["attrs"]["status"] == "complete"


def test_overwrite_replaces_only_with_a_complete_run(tmp_path):
    out = tmp_path / "r.h5"
    run(out, points=5)
    with pytest.raises(RuntimeError):
        run(out, points=2, fail=True, overwrite=True)
    assert points(out) == 5 and read_results(out)["attrs"]["status"] == "complete"  # the earlier run is intact
    failed = tmp_path / "r-1.h5"  # the failed re-run is kept, with its points and why
    assert points(failed) == 2 and read_results(failed)["attrs"]["status"].startswith("failed: RuntimeError")
    replaced = run(out, points=7, overwrite=True)
    assert replaced.results_path == out and points(out) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-1.h5", "r.h5"]  # no temporary file left


def test_output_path_problems_are_one_line_errors_before_the_bench_opens(tmp_path, monkeypatch):
    def must_not_open(*args, **kwargs):
        raise AssertionError("the bench was opened before the output path was checked")

    monkeypatch.setattr(runner, "open_bench", must_not_open)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    (tmp_path / "dir.h5").mkdir()
    cases = {
        a_file: "is a file, not a directory",
        a_file / "r.h5": "is a file, not a directory",
        a_file / "deeper" / "r.h5": "is a file, not a directory",
        tmp_path / "dir.h5": "is a directory",
        "/proc/no_results_here.h5": "cannot create results file",
    }
    for out, message in cases.items():
        with pytest.raises(ResultsPathError, match=message) as err:
            run(out)
        assert "\n" not in str(err.value)


def test_seed_outside_what_the_simulation_accepts_is_refused(monkeypatch):
    monkeypatch.setattr(runner, "open_bench", lambda *a, **k: pytest.fail("bench opened"))
    for seed in (-1, 2**32, 2**64):
        with pytest.raises(ExperimentError, match="seed"):
            run_experiment(Counting, seed=seed, show_progress=False)


def test_unknown_and_non_finite_parameters_are_refused_by_name():
    with pytest.raises(ExperimentError, match="unknown parameter 'pointz'.*did you mean 'points'"):
        make_parameters(Counting, {"pointz": 3})
    for value in ("nan", float("nan"), float("inf"), "-Infinity"):
        with pytest.raises(ExperimentError, match="'gain' is not a finite number"):
            make_parameters(Counting, {"gain": value})
    with pytest.raises(ExperimentError, match=r"'levels\[1\]' is not a finite number"):
        make_parameters(Counting, {"levels": [0.0, float("inf")]})


@settings(max_examples=40, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_parameter_is_accepted_exactly_when_finite(value):
    if math.isfinite(value):
        assert make_parameters(Counting, {"gain": value}).gain == value
    else:
        with pytest.raises(ExperimentError, match="gain"):
            make_parameters(Counting, {"gain": value})


def test_every_status_is_final_and_nothing_else_is_accepted(tmp_path):
    recorder = Recorder(tmp_path / "s.h5", experiment="x", parameters={}, seed=0)
    with pytest.raises(ValueError, match="status must be"):
        recorder.close("done")
    assert read_results(recorder.path)["attrs"]["status"] == "running"  # still open, in this live process
    recorder.close("interrupted")
    assert read_results(recorder.path)["attrs"]["status"] == "interrupted"


def test_cli_run_refuses_bad_seed_set_and_out_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.h5").mkdir()
    for args, message in [
        (["--seed", str(2**32)], "not in the range"),
        (["--set", "pointz=3"], "unknown parameter 'pointz'"),
        (["--set", "bias_start_v=NaN"], "'bias_start_v' is not a finite number"),
        (["--out", "dir.h5"], "is a directory"),
    ]:
        monkeypatch.setattr(sys, "argv", ["labctl", "run", "mzm_transfer", "--sim", *args])
        with pytest.raises(SystemExit) as exit_:
            entry()
        err = capsys.readouterr().err
        assert exit_.value.code == 2, err
        assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.h5"]  # nothing was written for a refused run


def test_a_run_killed_with_sigkill_keeps_its_points_and_reads_as_died(tmp_path):
    out = tmp_path / "killed.h5"
    proc = start_probe(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    data = read_results(out)
    assert data["attrs"]["status"] == DIED
    assert len(data["x"]) >= 3 and list(data["x"][:3]) == [0.0, 1.0, 2.0]
    show = CliRunner().invoke(main, ["results", "show", str(out)], catch_exceptions=False)
    assert show.exit_code == 0 and DIED in show.output and "sources_on_until_stopped" in show.output
    listing = CliRunner().invoke(main, ["results", "list", str(tmp_path)], catch_exceptions=False)
    assert DIED in listing.output and str(out) in listing.output


def test_results_list_and_show_report_status_experiment_and_start(tmp_path):
    run(tmp_path / "a.h5", points=2)
    with pytest.raises(RuntimeError):
        run(tmp_path / "b.h5", fail=True)
    (tmp_path / "junk.h5").write_text("not hdf5")
    listing = CliRunner().invoke(main, ["results", "list", str(tmp_path)], catch_exceptions=False)
    lines = {line.split()[-1] if "unreadable" not in line else "junk": line for line in listing.output.splitlines()}
    assert "complete" in lines[str(tmp_path / "a.h5")] and "counting" in lines[str(tmp_path / "a.h5")]
    assert "failed: RuntimeError: instrument fault" in lines[str(tmp_path / "b.h5")]
    assert "unreadable" in lines["junk"]
    started = results_summary(tmp_path / "a.h5")["started_utc"]
    assert started[:19] in lines[str(tmp_path / "a.h5")]
    show = CliRunner().invoke(main, ["results", "show", str(tmp_path / "a.h5")], catch_exceptions=False)
    assert "status:     complete" in show.output and "x: 2 points" in show.output
