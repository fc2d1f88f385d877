"""Unit conversions and the one constant drivers need, in one place for drivers and labctl.

Drivers sit below labctl and may not import it, so the conversions live here and
:mod:`labctl.units` re-exports them: a dBm is converted by the same code wherever it is met.
Scalars give floats, arrays give arrays.
"""

from __future__ import annotations

import numpy as np

#: Speed of light in vacuum, m/s (exact, SI definition).
SPEED_OF_LIGHT = 299_792_458.0

#: SI factor of each linear unit a driver or a SCPI suffix may use (dBm is not linear: see :func:`to_si`).
UNIT_SCALE = {"W": 1.0, "mW": 1e-3, "uW": 1e-6, "nW": 1e-9, "pW": 1e-12,
              "V": 1.0, "Vpp": 1.0, "mV": 1e-3, "uV": 1e-6, "kV": 1e3, "A": 1.0, "mA": 1e-3, "uA": 1e-6}


def _same_kind(value, result):
    """Return a float for scalar input, an array for array input."""
    return result if np.ndim(value) else float(result)


def dbm_to_w(dbm):
    """Power in dBm -> W."""
    return _same_kind(dbm, 1e-3 * 10 ** (np.asarray(dbm, dtype=float) / 10))


def w_to_dbm(watts):
    """Power in W -> dBm (-inf for 0 W)."""
    with np.errstate(divide="ignore"):
        return _same_kind(watts, 10 * np.log10(np.asarray(watts, dtype=float) / 1e-3))


def to_si(value: float, unit: str) -> float:
    """Convert ``value`` in ``unit`` (a key of :data:`UNIT_SCALE`, or ``"dBm"``) to SI (W, V, A)."""
    if unit == "dBm":
        return dbm_to_w(value)
    return float(value) * UNIT_SCALE[unit]


def from_si(value: float, unit: str) -> float:
    """Convert an SI ``value`` (W, V, A) to ``unit`` (a key of :data:`UNIT_SCALE`, or ``"dBm"``)."""
    if unit == "dBm":
        return w_to_dbm(value)
    return float(value) / UNIT_SCALE[unit]
