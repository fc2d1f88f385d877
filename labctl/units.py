"""Unit conversions done once, at the edges (bench files, reports). Code inside uses SI.

The conversions are the drivers' (:mod:`drivers.units`), re-exported, so labctl and its drivers convert
a dBm with the same code.
"""

from drivers.units import dbm_to_w, to_si, w_to_dbm

__all__ = ["dbm_to_w", "to_si", "w_to_dbm"]
