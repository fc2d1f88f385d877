"""The ``calibrate`` and ``mvm_precision`` experiments on the simulated OPU bench.

Run lightly (10 scope samples per symbol, short sweeps, small matrices) to stay fast. The full-size runs
(the bench default of 25 samples per symbol) are what the issue's >= 6-bit figure refers to; here the
calibrated products must clearly beat the uncalibrated ones and exceed 5.3 bits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import labctl
from experiments.calibrate import Calibrate
from experiments.mvm_precision import MVMPrecision
from labctl.opu import open_opu
from labctl.runner import ExperimentError, run_experiment
from labctl.store import read_results
from tests.shared_files import shared_file

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "sim_backends" / "benches" / "opu_core.yaml"
LIGHT = dict(samples_per_symbol_capture=10, bias_points=15, bias_samples=1024, staircase_levels=32,
             staircase_hold=6, lane_slots=2048, decoder_products=2, drift_check=False)


@pytest.fixture(scope="module")
def calibration_run(tmp_path_factory):
    """The calibrate experiment's summary and results file (run once per session, shared by workers)."""

    def make(path):
        run = run_experiment(Calibrate, bench_path=BENCH, out=path.parent / "calibrate_run", show_progress=False,
                             seed=2, overrides=LIGHT)
        path.write_text(json.dumps({"summary": run.summary, "results_path": str(run.results_path)}, default=str))

    return json.loads(shared_file(tmp_path_factory, "calibrate_experiment.json", make).read_text())


def test_calibrate_writes_a_calibration_the_opu_loads(calibration_run):
    summary = calibration_run["summary"]
    parts = yaml.safe_load(BENCH.read_text())["components"]
    for side in ("x", "w"):
        for k in range(1, 5):
            assert summary[f"v_pi_L1.{side}{k}"] == pytest.approx(parts[f"mzm_{side}{k}"]["v_pi"], rel=0.02)
    path = Path(summary["calibration_file"])
    assert path.is_file() and (path.parent / "calibration.png").is_file()
    results = read_results(calibration_run["results_path"])
    assert results["attrs"]["status"] == "complete"
    assert results["bias.L1.x1.sweep_v"].size == 15 and results["drive.L1.w3.staircase_samples"].size == 32
    with labctl.open_bench(BENCH) as bench:
        opu = open_opu(bench, path)
        assert opu.calibrated and opu.calibration.sections >= {"bias", "timing", "drive", "lanes", "decoder"}


def test_calibrate_rejects_unknown_steps(tmp_path):
    with pytest.raises(ExperimentError, match="steps"):
        run_experiment(Calibrate, bench_path=BENCH, out=tmp_path, show_progress=False,
                       overrides={"steps": ["bias", "wizardry"]})


def test_mvm_precision_calibrated_beats_uncalibrated(calibration_run, tmp_path):
    run = run_experiment(MVMPrecision, bench_path=BENCH, out=tmp_path, show_progress=False, seed=2, overrides=dict(
        calibration=calibration_run["summary"]["calibration_file"], samples_per_symbol_capture=10, m=12, k=32, n=12,
        trials=1, power_offsets_db=[-5.0, 0.0], try_nominal=False))
    s = run.summary
    print({k: v for k, v in s.items() if not k.startswith("convention")})
    assert s["calibrated_bits_range"] > 5.3
    assert s["calibrated_bits_range"] > s["uncalibrated_bits_range"] + 2
    assert s["calibrated_enob"] > s["uncalibrated_enob"] + 2
    # the estimate the engine reports is the error it makes
    assert s["calibrated_sigma_estimate"] == pytest.approx(s["calibrated_sigma"], rel=0.5)
    results = read_results(run.results_path)
    # received power follows the laser power (linear detector): 5 dB apart
    received = results["calibrated.received_dbm"]
    assert received[1] - received[0] == pytest.approx(5.0, abs=0.3)
    # more light, more bits (thermal noise of the 50-ohm detector matters at these powers)
    assert results["calibrated.bits_range"][1] > results["calibrated.bits_range"][0]
    assert (tmp_path / "mvm_precision.png").is_file()
