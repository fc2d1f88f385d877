"""dBm <-> W, the one conversion the simulated instruments and models share."""

import math

import numpy as np
import pytest

from sim_backends.physics.units import dbm_to_w, w_to_dbm


def test_dbm_and_watts_round_trip_for_scalars_and_arrays():
    assert dbm_to_w(0.0) == pytest.approx(1e-3) and type(dbm_to_w(3)) is float
    assert dbm_to_w(13.5) == 1e-3 * 10 ** 1.35
    assert w_to_dbm(10e-3) == pytest.approx(10.0) and type(w_to_dbm(1e-3)) is float
    dbm = np.array([-60.0, -3.0, 0.0, 20.0])
    assert np.allclose(w_to_dbm(dbm_to_w(dbm)), dbm, rtol=0, atol=1e-12)


def test_zero_watts_is_minus_infinity_and_a_negative_power_is_refused():
    assert w_to_dbm(0.0) == -math.inf
    assert w_to_dbm(np.array([0.0, 1e-3]))[0] == -math.inf
    with pytest.raises(ValueError, match="only a power >= 0 W"):
        w_to_dbm(-1e-6)
    with pytest.raises(ValueError, match="only a power >= 0 W"):
        w_to_dbm(np.array([1e-3, np.nan]))
