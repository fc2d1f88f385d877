"""The runner: typed parameters, HDF5 written as it goes, status on failure, the MZM experiment."""

import h5py
import numpy as np
import pytest
from pydantic import BaseModel

import labctl
from labctl.errors import ConfigError
from labctl.resilience import InstrumentUnavailable
from labctl.runner import Experiment, ExperimentError, load_experiment, parse_overrides, run_experiment
from labctl.store import read_results
from sim_backends import CHARACTERISATION_BENCH_PATH
from sim_backends.bench import load_bench_file

TRUTH = load_bench_file(CHARACTERISATION_BENCH_PATH)["components"]["mzm1"]


@pytest.fixture(scope="module")
def mzm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mzm")
    return run_experiment("mzm_transfer", overrides={"points": 41, "scope_points": 500}, out=out,
                          seed=2, show_progress=False)


def test_mzm_transfer_recovers_the_modulator_it_was_built_with(mzm_run):
    s = mzm_run.summary
    # README (demo): V_pi 5.000 V from the power meter and from the scope, ER 25.0 dB; with this run's 41
    # bias points and 500 scope points: 5.0000 / 4.9995 V and 25.00 / 24.89 dB (seeds 2, 3)
    assert s["v_pi_v"] == pytest.approx(TRUTH["v_pi"], rel=0.001)
    assert s["v_pi_scope_v"] == pytest.approx(TRUTH["v_pi"], rel=0.001)
    assert s["extinction_ratio_db"] == pytest.approx(TRUTH["extinction_ratio_db"], abs=0.1)
    assert s["extinction_ratio_scope_db"] == pytest.approx(TRUTH["extinction_ratio_db"], abs=0.3)
    # the fitted offset is the device's built-in bias point, seen as -V0 modulo 2 V_pi
    offset = (s["phase_offset_v"] - TRUTH["phase_offset_v"] + TRUTH["v_pi"]) % (2 * TRUTH["v_pi"]) - TRUTH["v_pi"]
    assert abs(offset) < 0.01     # measured within 0.0001 V


def test_results_file_holds_datasets_parameters_snapshot_and_status(mzm_run):
    data = read_results(mzm_run.results_path)
    attrs = data["attrs"]
    assert attrs["status"] == "complete"
    assert attrs["experiment"] == "mzm_transfer"
    assert attrs["parameters"]["points"] == 41
    assert "laser" in attrs["bench_snapshot"]["instruments"]
    assert data["bias_voltage_v"].shape == (41,)
    assert data["optical_power_w"].shape == (41,)
    assert data["scope_trace_v"].shape == (41, 500)
    assert attrs["result.v_pi_v"] == pytest.approx(mzm_run.summary["v_pi_v"])
    assert mzm_run.artefacts[0].name == "mzm_transfer.png" and mzm_run.artefacts[0].stat().st_size > 10_000


def test_laser_is_off_after_the_run(mzm_run):
    attrs = read_results(mzm_run.results_path)["attrs"]
    assert attrs["bench_snapshot"]["instruments"]["laser"]["channels"]["1"]["output_enabled"] is False  # at start
    assert np.all(np.diff(read_results(mzm_run.results_path)["bias_voltage_v"]) > 0)
    assert mzm_run.shutdown.all_off and "laser channel 1" in mzm_run.shutdown.off
    assert attrs["shutdown"] == str(mzm_run.shutdown)  # what the shutdown did is in the file


def test_a_bench_that_cannot_open_leaves_a_failed_file_not_a_running_one(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise InstrumentUnavailable("laser", "TCPIP0::laser.labsim::inst0::INSTR", 3, "no reply")

    monkeypatch.setattr("labctl.runner.open_bench", unreachable)   # the file is valid, an instrument is not there
    with pytest.raises(InstrumentUnavailable):
        run_experiment(Failing, out=tmp_path / "f.h5", show_progress=False)
    assert read_results(tmp_path / "f.h5")["attrs"]["status"].startswith("failed: InstrumentUnavailable")


@pytest.mark.parametrize("bench_path, changes, match", [
    ("missing.yaml", None, "not found"),
    (None, {"edge_fibre1.lenght_km": 50.0}, "unknown parameter 'lenght_km'"),
    (None, {"edge_fibre1.length_km": float("nan")}, "not a finite number"),
    (None, {"edge_fibre1.length_km": -5.0}, "outside the physical range"),
])
def test_a_broken_bench_file_or_change_is_an_error_before_any_results_file(tmp_path, bench_path, changes, match):
    with pytest.raises(ConfigError, match=match):
        run_experiment(Failing, bench_path=bench_path and tmp_path / bench_path, changes=changes,
                       out=tmp_path / "f.h5", show_progress=False)
    assert list(tmp_path.iterdir()) == []           # nothing was written: there was nothing to record


class Params(BaseModel):
    fail_after: int = 3


class Failing(Experiment):
    """Records points then fails, like an experiment hitting an instrument fault."""

    name = "failing"
    Parameters = Params

    def run(self, ctx):
        for i in range(10):
            if i == ctx.params.fail_after:
                raise RuntimeError("instrument fault")
            ctx.recorder.append("x", float(i))
        return {}


def test_a_failed_run_keeps_its_points_and_says_why(tmp_path):
    with pytest.raises(RuntimeError):
        run_experiment(Failing, out=tmp_path / "f.h5", show_progress=False)
    with h5py.File(tmp_path / "f.h5") as f:
        assert list(f["x"][()]) == [0.0, 1.0, 2.0]
        assert f.attrs["status"].startswith("failed: RuntimeError: instrument fault")


def test_bad_parameter_names_it_and_lists_valid_ones():
    with pytest.raises(ExperimentError, match="points") as err:
        run_experiment("mzm_transfer", overrides={"points": 2}, show_progress=False)
    assert "bias_start_v" in str(err.value)


def test_unknown_experiment_lists_known_ones():
    with pytest.raises(ExperimentError, match="mzm_transfer"):
        load_experiment("nope")


def test_overrides_parse_json_values_or_keep_strings():
    assert parse_overrides(["points=5", "scope=", "name=abc", "xs=[1,2]"]) == {
        "points": 5, "scope": "", "name": "abc", "xs": [1, 2]}
    with pytest.raises(ExperimentError):
        parse_overrides(["novalue"])
    with pytest.raises(ExperimentError, match="--change expects"):
        parse_overrides(["edge_fibre.length_km"], "--change")


def test_a_run_on_a_bench_variant_measures_the_variant_and_records_the_change(tmp_path):
    # another modulator in the same bench file: the fit finds the changed V_pi (as precisely as the file's own)
    run = run_experiment("mzm_transfer", overrides={"points": 41, "scope_points": 500}, out=tmp_path, seed=2,
                         show_progress=False, changes={"mzm1.v_pi": 4.2})
    assert run.summary["v_pi_v"] == pytest.approx(4.2, rel=0.02)
    assert read_results(run.results_path)["attrs"]["bench_snapshot"]["changes"] == {"mzm1.v_pi": 4.2}
    with labctl.open_bench("characterisation", seed=2) as bench, pytest.raises(ValueError, match="open_bench"):
        run_experiment("mzm_transfer", bench=bench, out=tmp_path / "x", changes={"mzm1.v_pi": 4.2},
                       show_progress=False)
