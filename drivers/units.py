"""Unit conversions and the one constant drivers need, in one place for drivers and labctl.

Drivers sit below labctl and may not import it, so the conversions live here and
:mod:`labctl.units` re-exports them: a dBm is converted by the same code wherever it is met.
Scalars give floats, arrays give arrays.
"""

from __future__ import annotations

import numpy as np

#: Speed of light in vacuum, m/s (exact, SI definition).
SPEED_OF_LIGHT = 299_792_458.0

#: Power of ten of the SI factor of each linear unit a driver or a SCPI suffix may use (dBm is not
#: linear: see :func:`to_si`). Kept as exponents so both directions multiply by an exact power of ten:
#: ``from_si(x, "nm")`` is ``x * 1e9``, not ``x / 1e-9``, which differs in the last digit.
UNIT_EXPONENT = {"W": 0, "mW": -3, "uW": -6, "nW": -9, "pW": -12,
                 "V": 0, "Vpp": 0, "mV": -3, "uV": -6, "kV": 3, "A": 0, "mA": -3, "uA": -6,
                 "m": 0, "nm": -9, "Hz": 0, "THz": 12}


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
    """Convert ``value`` in ``unit`` (a key of :data:`UNIT_EXPONENT`, or ``"dBm"``) to SI (W, V, A, m, Hz)."""
    if unit == "dBm":
        return dbm_to_w(value)
    return float(value) * 10.0 ** UNIT_EXPONENT[unit]


def from_si(value: float, unit: str) -> float:
    """Convert an SI ``value`` (W, V, A, m, Hz) to ``unit`` (a key of :data:`UNIT_EXPONENT`, or ``"dBm"``)."""
    if unit == "dBm":
        return w_to_dbm(value)
    return float(value) * 10.0 ** -UNIT_EXPONENT[unit]
