"""mvm_precision records the energy of its products on the streaming bench: every product in the ledger, the
CPU baseline of the same products, and a note saying why a streaming bench has no projected view."""

from __future__ import annotations

import pytest

from experiments.mvm_precision import MVMPrecision
from labctl.energy import EnergyLedger
from labctl.runner import run_experiment
from tests.labctl.test_opu_experiments import BENCH, calibration_run  # noqa: F401 (the shared calibration fixture)

M, K, N = 4, 16, 4


@pytest.fixture(scope="module")
def run(calibration_run, tmp_path_factory):  # noqa: F811 (the imported fixture)
    return run_experiment(MVMPrecision, bench_path=BENCH, out=tmp_path_factory.mktemp("mvm_energy"),
                          show_progress=False, seed=2, overrides=dict(
                              calibration=calibration_run["summary"]["calibration_file"], samples_per_symbol_capture=10,
                              m=M, k=K, n=N, trials=1, power_offsets_db=[0.0], compare_uncalibrated=False,
                              try_nominal=False, baseline_repeats=2))


def test_every_product_is_recorded_with_its_baseline(run):
    ledger = EnergyLedger.load(run.results_path)
    # one product per state, offset and trial, then the same product twice for the repeatability figures
    assert len(ledger.ops_records) == 3 == run.summary["optical_products"]
    assert all(r.useful_macs == M * K * N and r.optical_time_s > 0 for r in ledger.ops_records)
    assert ledger.views() == ("bench", "baseline")
    assert any("no projection of this bench" in n for n in ledger.notes("projected"))
    baseline = ledger.summary("baseline")
    assert baseline.energy_j > 0 and baseline.j_per_op == pytest.approx(baseline.energy_j / ledger.ops)
    assert "per product (3): bench " in run.summary["energy"] and ", baseline " in run.summary["energy"]
