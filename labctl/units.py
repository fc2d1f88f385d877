"""Unit conversions done once, at the edges (bench files, reports). Code inside uses SI."""

from __future__ import annotations

import numpy as np

NM = 1e-9
KM = 1e3


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


def db_to_ratio(db):
    """Power ratio in dB -> linear."""
    return _same_kind(db, 10 ** (np.asarray(db, dtype=float) / 10))


def ratio_to_db(ratio):
    """Linear power ratio -> dB."""
    with np.errstate(divide="ignore"):
        return _same_kind(ratio, 10 * np.log10(np.asarray(ratio, dtype=float)))
