"""The OPU benchmark's energy per product: one product metered on the bench clock, in J per view (bench,
projected, CPU) with each view's method, as the ledger's arithmetic gives them."""

from __future__ import annotations

import numpy as np
import pytest

import labctl
from benchmarks.bench_opu import ENERGY_CPU_REPEATS, _energy_text, metered_product
from labctl.energy import EnergyLedger
from labctl.energy.projected import bench_projection
from labctl.opu.stationary import StationaryOPU
from tests.shared_files import RING_CORE, ring_core_calibration


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    path = ring_core_calibration(tmp_path_factory, 0)
    rng = np.random.default_rng(4)
    a, b = rng.uniform(-1, 1, (16, 32)), rng.uniform(-1, 1, (32, 16))
    with labctl.open_bench(RING_CORE, seed=1) as bench:
        opu = StationaryOPU(bench, path, core=0)
        with metered_product(bench, opu, a, b) as energy:
            opu.matmul(a, b)
        projection = bench_projection(bench)
    return energy, projection


def test_each_view_in_joules_per_product_from_the_ledger(product):
    energy, projection = product
    ledger = EnergyLedger.from_dict(energy["ledger"])
    assert energy["macs"] == 16 * 32 * 16 and ledger.macs == energy["optical_macs"]
    assert energy["bench_j"] == pytest.approx(ledger.summary("bench").energy_j)
    assert energy["bench_j"] > 0
    # projected: the integrated cores' total power for the time the same ops take at their peak rate
    assert energy["projected_j"] == pytest.approx(projection.total_w * 2 * energy["optical_macs"]
                                                  / projection.peak_ops_per_s)
    assert energy["cpu_j"] == pytest.approx(ledger.summary("baseline").energy_j) and energy["cpu_j"] > 0
    assert f"mean of {ENERGY_CPU_REPEATS} passes" in ledger.terms("baseline")[0].note


def test_each_view_says_how_it_was_obtained(product):
    energy, _ = product
    assert set(energy["bench_method"]) <= {"measured", "datasheet", "model"} and energy["bench_method"]
    assert energy["projected_method"] == {"model": [t["device"] for t in energy["ledger"]["terms"]["projected"]]}
    assert list(energy["cpu_method"]) in (["measured"], ["model"])
    text = _energy_text(energy)
    assert text.startswith("energy per product: bench ") and "projected" in text and "cpu" in text
