"""The genai_quality experiment (experiments/genai_quality.py): optical vs electronic image quality against
effective bits and received power on the simulated weight-stationary bench (ring_core.yaml).

The calibration of the bench's own point is the one the calibrate_core tests make once per session (same
name, same settings: shared with tests/opu/test_precision_sweep.py under xdist); the tiny run calibrates
only its lower point (on a bench variant with more mux loss), so it stays under 40 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from experiments.genai_quality import GenAIQuality, Parameters, plan_points
from labctl.config import load_bench
from labctl.runner import ExperimentError, run_experiment
from labctl.store import read_results
from tests.shared_files import calibrate_core_run

BENCH = Path(__file__).resolve().parents[2] / "sim_backends" / "benches" / "ring_core.yaml"


@pytest.fixture(scope="session")
def core_run(tmp_path_factory) -> Path:
    return calibrate_core_run(tmp_path_factory)


def test_tiny_run_records_table_and_plot_and_lower_power_gives_fewer_bits(core_run, tmp_path):
    settings = {"models": ["vae-digits"], "n": 2, "power_offsets_db": [0, -12], "calibration": str(core_run)}
    result = run_experiment(GenAIQuality, bench_path=BENCH, seed=5, overrides=settings, out=tmp_path,
                            show_progress=False)
    res = read_results(result.results_path)
    assert res["attrs"]["status"] == "complete"
    # the bench's own point, and -12 dB = lasers at their +6 dBm floor (-7 dB) + 5 dB more mux loss
    assert list(res["points.offset_db"]) == [0.0, -12.0]
    assert list(res["points.laser_dbm"]) == [13.0, 6.0]
    assert list(res["points.extra_loss_db"]) == pytest.approx([0.0, 5.0])
    assert [s.decode() for s in res["points.status"]] == ["ok", "ok"]
    assert list(res["points.recalibrated"]) == [True, True]        # 0 dB: the bench's own calibration
    assert not list(tmp_path.glob("*.yaml"))                               # a bench variant, not a copy
    changes = [json.loads(c) if c else {} for c in (x.decode() for x in res["points.changes"])]
    assert changes == [{}, {"mux1.insertion_loss_db": pytest.approx(3.5 + 5.0)}]
    # lower received power -> fewer bits, in both conventions
    received, bits, enob = res["points.received_dbm"], res["points.bits_range"], res["points.enob"]
    # measured at the ADCs: 7 dB less from the lasers + 5 dB more mux loss; the two points have their own
    # calibrations, each mapping u = 1 to its own measured top of the modulator transfer (0.1 dB apart here)
    assert received[1] == pytest.approx(received[0] - 12.0, abs=0.2)
    # README (genai_quality table): -12.5 dBm and 8.66 bits / 5.47 ENOB at the bench's point; a run's spread
    # over noise seeds is about +-0.15 bit
    assert received[0] == pytest.approx(-12.5, abs=0.3)
    assert 8.4 < bits[0] < 9.2 and 5.2 < enob[0] < 6.0
    assert bits[1] < bits[0] - 1.0 and enob[1] < enob[0] - 1.0
    # the quality figures, one per point; worse at the lower power
    psnr, ssim = res["vae-digits.psnr_db_mean"], res["vae-digits.ssim_mean"]
    assert psnr.shape == (2,) and np.all(np.isfinite(psnr)) and psnr[1] < psnr[0]
    assert ssim[1] < ssim[0] <= 1.0
    # README (genai_quality table, the bench's point): vae-digits 35.0 dB PSNR, 100 % agreement over 8 seeds;
    # 2 seeds here spread by a few dB (measured 33.0 dB, SSIM 0.996)
    assert psnr[0] > 31.0 and ssim[0] > 0.99 and res["vae-digits.classifier_agreement"][0] == 1.0
    assert np.all((0 <= res["vae-digits.classifier_agreement"]) & (res["vae-digits.classifier_agreement"] <= 1))
    assert np.all(np.isnan(res["vae-digits.accuracy"]))                     # unconditional: no accuracy
    assert np.all(np.isfinite(res["vae-digits.frechet_distance"]))
    assert res["vae-digits.electronic"].shape == (2, 8, 8)
    assert res["vae-digits.optical"].shape == (2, 2, 8, 8)
    assert list(res["vae-digits.seeds"]) == [0, 1]
    # energy per image at every point, from generate()'s own meter nested in the run's: the bench's draw
    # (watts) over the optics' simulated time, far above the projected integrated hardware
    bench_j, projected_j = res["vae-digits.j_per_image_optical_bench"], res["vae-digits.j_per_image_optical_projected"]
    cpu_j = res["vae-digits.j_per_image_electronic"]
    assert np.all(np.isfinite(bench_j)) and np.all(np.isfinite(projected_j)) and np.all(np.isfinite(cpu_j))
    assert np.all(bench_j > projected_j) and np.all(projected_j > 0) and np.all(cpu_j > 0)
    assert res["attrs"]["unit.points.received_dbm"].startswith("dBm")
    # artefacts and summary
    assert (tmp_path / "quality_vs_bits.png").stat().st_size > 10_000
    text = (tmp_path / "quality_table.txt").read_text()
    assert "vae-digits" in text and "ENOB" in text and "agreement" in text
    summary = result.summary
    assert summary["table"].strip() == text.strip()
    rows = summary["rows"]
    assert [(r["offset_db"], r["model"]) for r in rows] == [(0.0, "vae-digits"), (-12.0, "vae-digits")]
    assert rows[1]["bits_range"] < rows[0]["bits_range"] and rows[0]["psnr_db_mean"] == pytest.approx(psnr[0], rel=1e-3)
    assert summary["base_calibration"].endswith("occ1.json")


def test_rescaled_calibration_scales_the_received_power_exactly(core_run, tmp_path):
    settings = {"models": ["vae-digits"], "n": 2, "power_offsets_db": [0, -6], "recalibrate": False,
                "calibration": str(core_run)}
    result = run_experiment(GenAIQuality, bench_path=BENCH, seed=5, overrides=settings, out=tmp_path,
                            show_progress=False)
    res = read_results(result.results_path)
    assert list(res["points.recalibrated"]) == [True, False] and list(res["points.extra_loss_db"]) == [0.0, 0.0]
    # measured at the ADCs with the lasers 6 dB down (not the commanded ratio): averaged noise ~0.01 dB
    assert res["points.received_dbm"][1] == pytest.approx(res["points.received_dbm"][0] - 6.0, abs=0.05)
    assert res["points.bits_range"][1] < res["points.bits_range"][0]
    assert [x.decode() for x in res["points.changes"]] == ["", ""]     # the lasers made it: no bench variant


def test_plan_uses_the_lasers_first_then_extra_loss():
    plans = plan_points([-14, 0, -6], base_dbm=13.0, laser_min_dbm=6.0)
    assert [(p.offset_db, p.laser_dbm, p.extra_loss_db) for p in plans] == [
        (0, 13.0, 0.0), (-6, 7.0, 0.0), (-14, 6.0, 7.0)]
    assert [p.on_bench_variant for p in plans] == [False, False, True]


def test_loss_points_are_refused_on_a_real_bench_before_measuring():
    real = SimpleNamespace(config=load_bench(BENCH), mode="real", path=BENCH)   # never touched: refused first
    with pytest.raises(ExperimentError, match=r"-10, -14 dB.*simulated bench"):
        GenAIQuality()._plan(real, Parameters(laser_min_dbm=6.0))
    plans, component = GenAIQuality()._plan(real, Parameters(laser_min_dbm=6.0, power_offsets_db=[0, -6]))
    assert component is None and [p.laser_dbm for p in plans] == [13.0, 7.0]


def test_unknown_model_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(ExperimentError, match=r"unknown 'nope'.*ddpm-digits"):
        run_experiment(GenAIQuality, bench_path=BENCH, overrides={"models": ["nope"]}, out=tmp_path,
                       show_progress=False)
    with pytest.raises(ExperimentError, match="loss_component"):
        run_experiment(GenAIQuality, bench_path=BENCH, overrides={"loss_component": "no_such_mux"},
                       out=tmp_path, show_progress=False)
