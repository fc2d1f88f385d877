"""Parameter validation for the physics models and simulated instruments: one wording for every refusal.

A non-physical parameter (out of range, NaN, not a number) is a ``ValueError`` that names the
parameter, the value and the allowed range, so a bench file's author sees which line to fix.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

#: Wavelengths any model here accepts, in m (UV to mid-IR: far beyond every band on the benches).
WAVELENGTH_RANGE_M = (200e-9, 3e-6)


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def require_range(name: str, value: Any, low: float, high: float = math.inf, unit: str = "") -> float:
    """``value`` as a float in [low, high]; a ValueError naming ``name`` otherwise (NaN included)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number in [{low}, {high}]{_unit(unit)}") from None
    if math.isnan(number) or not low <= number <= high:
        raise ValueError(f"{name}={number!r} is outside the physical range [{low}, {high}]{_unit(unit)}")
    return number


def require_positive(name: str, value: Any, high: float = math.inf, unit: str = "") -> float:
    """``value`` as a float in (0, high]: a size, rate or resistance that cannot be zero."""
    number = require_range(name, value, 0.0, high, unit)
    if number == 0.0:
        raise ValueError(f"{name}={number!r} must be positive (in (0, {high}]{_unit(unit)})")
    return number


def require_non_negative(name: str, value: Any, high: float = math.inf, unit: str = "") -> float:
    """``value`` as a float in [0, high]: a loss, noise level or power that may be zero."""
    return require_range(name, value, 0.0, high, unit)


def require_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; a bool, a fractional number or a string is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or int(value) != value or not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be an integer in [{low}, {high}]")
    return int(value)


def require_wavelengths(wavelength_m: Any, name: str = "wavelength_m") -> np.ndarray:
    """Wavelength(s) in m as a float array, each within ``WAVELENGTH_RANGE_M``."""
    low, high = WAVELENGTH_RANGE_M
    lam = np.asarray(wavelength_m, dtype=float)
    if np.any(np.isnan(lam)) or np.any(lam < low) or np.any(lam > high):
        raise ValueError(f"{name}={wavelength_m!r} is outside the physical range [{low}, {high}] m")
    return lam


def param(params: Mapping[str, Any], name: str, default: float, low: float, high: float = math.inf,
          unit: str = "") -> float:
    """Parameter ``name`` of a bench file's ``params`` (``default`` when absent), checked like ``require_range``."""
    return require_range(name, params.get(name, default), low, high, unit)
