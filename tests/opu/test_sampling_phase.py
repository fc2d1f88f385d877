"""Calibration puts each core's reading window at the centre of its symbol, wherever the fibre's delay falls
within a symbol: the advance follows the fibre's group delay, and the effective bits do not depend on it.

Two edge fibres 0.4 m apart (2 ns of delay, half a 4 ns symbol) put the sampling phase at two different
places within a symbol. What calibration must find is computed from the bench file's numbers (delay
L n_g / c), never from earlier simulator output.
"""

from __future__ import annotations

import numpy as np
import pytest

import labctl
from labctl.opu import open_opu
from labctl.opu.precision import error_stats
from sim_backends.bench import SYSTEM_BENCH_PATH, load_bench_file

C_LIGHT = 299_792_458.0
BASE_KM = 2.0
EXTRA_KM = 0.0004


def calibrated_core(length_km: float):
    bench = labctl.open_bench(SYSTEM_BENCH_PATH, seed=3, changes={"edge_fibre1.length_km": length_km})
    return bench, open_opu(bench, core=0)


@pytest.fixture(scope="module")
def two_reaches():
    out = []
    for km in (BASE_KM, BASE_KM + EXTRA_KM):
        bench, core = calibrated_core(km)
        rng = np.random.default_rng(1)
        a, b = rng.uniform(-1, 1, (64, 64)), rng.uniform(-1, 1, (64, 128))
        out.append((core.calibration.input_advance_s, error_stats(core.matmul(a, b), a @ b).bits_range))
        bench.close()
    return out


def test_the_advance_follows_the_fibres_group_delay_to_a_small_part_of_a_symbol(two_reaches):
    data = load_bench_file(SYSTEM_BENCH_PATH)
    fibre = data["components"]["edge_fibre1"]
    symbol_s = 1.0 / data["opu"]["symbol_rate_hz"]
    expected = EXTRA_KM * 1e3 * fibre["group_index"] / C_LIGHT      # 1.96 ns: half a symbol
    (first, _), (second, _) = two_reaches
    assert abs((second - first) - expected) < 0.02 * symbol_s, (second - first, expected)


def test_the_effective_bits_do_not_depend_on_where_the_delay_falls_within_a_symbol(two_reaches):
    (_, bits_first), (_, bits_second) = two_reaches
    assert bits_first > 8.0
    assert abs(bits_first - bits_second) < 0.1, (bits_first, bits_second)
