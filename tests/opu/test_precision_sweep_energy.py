"""precision_sweep records the energy of its products: each product on the run's bench in the ledger, the
bench's cores projected and the CPU baseline of the same products; products on bench variants are not
counted against this bench's draw."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.precision_sweep import PrecisionSweep
from labctl.energy import EnergyLedger
from labctl.runner import run_experiment
from labctl.store import read_results
from tests.shared_files import calibrate_core_run

BENCH = Path(__file__).resolve().parents[2] / "sim_backends" / "benches" / "ring_core.yaml"
SIZE = 32
SETTINGS = {"power_offsets_db": [], "symbol_rates_hz": [], "adc_bits": [], "model": None, "m": SIZE, "k": SIZE,
            "n": SIZE, "ablation": False, "baseline_repeats": 3, "fibre_lengths_km": [5.0]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    core_run = calibrate_core_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("sweep_energy")
    return run_experiment(PrecisionSweep, bench_path=BENCH, seed=5, out=out, show_progress=False,
                          overrides={**SETTINGS, "calibration": str(core_run)})


def test_every_product_on_the_bench_is_in_the_ledger_and_variant_products_are_not(run):
    ledger = EnergyLedger.load(run.results_path)
    # the base point: calibrated, partial and uncalibrated states, one random product each
    records = ledger.ops_records
    assert len(records) == 3 == run.summary["optical_products"]
    for r in records:
        assert r.useful_macs == SIZE ** 3 and r.source == "occ1 last_stats"
        assert r.optical_time_s > 0 and r.end_s >= r.start_s >= ledger.window("bench")[0]
    # the 5 km point ran the same three products on a simulated variant of the bench
    assert any(n.startswith("3 product(s) ran on other benches") for n in ledger.notes("bench"))
    assert list(read_results(run.results_path)["fibre.status"]) == [b"ok"]


def test_three_views_and_energy_per_product(run):
    ledger = EnergyLedger.load(run.results_path)
    assert ledger.views() == ("bench", "projected", "baseline")
    attrs = read_results(run.results_path)["attrs"]
    for view in ledger.views():
        s = ledger.summary(view)
        assert s.j_per_op == pytest.approx(s.energy_j / ledger.ops)
        assert attrs[f"result.energy_{view}_j_per_product"] == pytest.approx(s.energy_j / 3)
    # the baseline is one pass over the same three products: 2 ops per MAC
    baseline_term = ledger.terms("baseline")[0]
    assert "one pass = the mean of 3 passes" in baseline_term.note
    assert "per product (3): bench " in run.summary["energy"]
    assert run.summary["cpu_baseline"].startswith("CPU torch FP32 matmul of the run's products (3 product(s)")
