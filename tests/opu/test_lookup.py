"""ColumnTables gives np.interp's values exactly, on the calibration's binary grid and on any other grid."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl.opu.lookup import ColumnTables


def _reference(x, xp, fp):
    return np.stack([np.interp(x[..., k], xp[k], fp[k]) for k in range(xp.shape[0])], axis=-1)


def _probes(xp, rng, n=3000):
    """Random values over and beyond the tables, every node, and each node's float neighbours."""
    k, length = xp.shape
    lo, hi = xp.min(), xp.max()
    span = hi - lo
    x = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, (n, k))
    nodes = xp.T[rng.integers(0, length, n)]
    return np.concatenate([x, nodes, np.nextafter(nodes, np.inf), np.nextafter(nodes, -np.inf)])


@pytest.mark.parametrize("grid", ["binary", "uniform", "random", "offset"])
def test_equals_np_interp(grid):
    rng = np.random.default_rng(3)
    k, length = 16, 257 if grid == "binary" else 101
    if grid in ("binary", "uniform"):
        xp = np.tile(np.linspace(0.0, 1.0, length), (k, 1))
    elif grid == "offset":
        xp = np.tile(np.linspace(-0.3, 0.7, length), (k, 1)) + rng.uniform(0, 1, (k, 1))
    else:
        xp = np.cumsum(rng.exponential(size=(k, length)) ** 3 + 1e-9, axis=1) - 5.0
    fp = rng.normal(0, 2000, (k, length))
    x = _probes(xp, rng)
    assert np.array_equal(ColumnTables(xp, fp)(x), _reference(x, xp, fp))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6), length=st.integers(2, 40), scale=st.floats(1e-6, 1e6))
def test_equals_np_interp_fuzzed(seed, k, length, scale):
    rng = np.random.default_rng(seed)
    xp = np.cumsum(rng.uniform(0.01, 1.0, (k, length)), axis=1) * scale - rng.uniform(0, 2 * scale)
    fp = rng.normal(0, 100, (k, length))
    x = _probes(xp, rng, 200)
    assert np.array_equal(ColumnTables(xp, fp)(x.reshape(2, -1, k)), _reference(x, xp, fp).reshape(2, -1, k))


def test_refuses_bad_tables_and_values():
    with pytest.raises(ValueError, match="strictly increasing"):
        ColumnTables([[0.0, 0.0, 1.0]], [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match="finite"):
        ColumnTables([[0.0, np.nan]], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="same shape"):
        ColumnTables([[0.0, 1.0]], [[0.0, 1.0, 2.0]])
    table = ColumnTables(np.tile([0.0, 0.5, 1.0], (2, 1)), np.tile([0.0, 3.0, 4.0], (2, 1)))
    with pytest.raises(ValueError, match="finite"):
        table(np.array([[0.2, np.nan]]))
    with pytest.raises(ValueError, match="2 columns"):
        table(np.zeros((4, 3)))
