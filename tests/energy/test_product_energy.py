"""The CPU baseline of an experiment's products (experiments.common.energy): one pass from many, its ops from
the products' shapes, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.common.energy import cpu_baseline, per_pass
from labctl.energy import EnergyLedger
from labctl.energy.baseline import measure_cpu
from labctl.energy.provenance import EnergyError


def test_one_pass_is_the_total_over_the_passes():
    total = measure_cpu(lambda: sum(range(200_000)), 1e6, rapl_root=None, label="sum")
    one = per_pass(total, 4)
    assert one.energy_j == pytest.approx(total.energy_j / 4)
    assert (one.wall_s, one.cpu_s, one.ops) == pytest.approx((total.wall_s / 4, total.cpu_s / 4, 2.5e5))
    assert one.term.power_w == total.term.power_w                 # the same mean power, over a quarter of the time
    assert one.term.energy_j == pytest.approx(one.energy_j)
    assert one.term.note.endswith("one pass = the mean of 4 passes")
    assert one.mw_per_tops == pytest.approx(total.mw_per_tops)
    ledger = EnergyLedger()
    one.record(ledger)
    assert ledger.summary("baseline").energy_j == pytest.approx(total.energy_j / 4)


def test_ops_are_two_per_mac_of_the_same_products():
    rng = np.random.default_rng(0)
    pairs = [(rng.uniform(-1, 1, (8, 16)), rng.uniform(-1, 1, (16, 4))),           # 8 x 16 x 4 MACs
             (rng.uniform(-1, 1, (2, 3, 5)), rng.uniform(-1, 1, (5, 7)))]           # batch 2 x 3 x 5 x 7 MACs
    b = cpu_baseline(pairs, repeats=3, rapl_root=None, label="test products")
    assert b.ops == 2 * (8 * 16 * 4 + 2 * 3 * 5 * 7)
    assert b.energy_j > 0 and b.label.startswith("test products (2 product(s), 1 thread(s))")


@pytest.mark.parametrize("pairs, repeats, match", [
    ([], 1, "no products"),
    ([(np.ones((2, 2)), np.ones((2, 2)))], 0, "repeats"),
    ([(np.ones(3), np.ones((3, 2)))], 1, "2 dimensions or more"),
])
def test_refusals(pairs, repeats, match):
    with pytest.raises(EnergyError, match=match):
        cpu_baseline(pairs, repeats=repeats, rapl_root=None, label="x")
