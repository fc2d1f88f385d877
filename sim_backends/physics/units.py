"""Power units of the simulation: dBm <-> W (one home for the models and the simulated instruments)."""

from __future__ import annotations

import math

import numpy as np


def dbm_to_w(dbm):
    """Power in W of ``dbm`` (dB relative to 1 mW); a float for a scalar, an array for an array."""
    if np.ndim(dbm) == 0:
        return 1e-3 * 10 ** (float(dbm) / 10)
    return 1e-3 * np.power(10.0, np.asarray(dbm, dtype=float) / 10)


def w_to_dbm(watt):
    """Power in dBm of ``watt`` W (-inf for 0 W); a negative or NaN power is a ValueError."""
    power = np.asarray(watt, dtype=float)
    if np.any(np.isnan(power)) or np.any(power < 0):
        raise ValueError(f"watt={watt!r}: only a power >= 0 W has a dBm value")
    if power.ndim == 0:
        return 10 * math.log10(float(power) / 1e-3) if power > 0 else -math.inf
    with np.errstate(divide="ignore"):
        return 10 * np.log10(power / 1e-3)
