"""What Keysight's lightwave instruments share (the 8163 command set of the N77xx sources and meters).

One :class:`PowerUnit` for the ``:POWer:UNIT`` setting of both the N7714A laser and the N7744A meter,
with the unit name :func:`drivers.units.to_si` takes.
"""

from __future__ import annotations

from enum import IntEnum


class PowerUnit(IntEnum):
    """Power unit of ``:SOURce[n]:POWer:UNIT`` / ``:SENSe[n]:POWer:UNIT`` (query reply 0 or 1; mnemonic = name)."""

    DBM = 0
    W = 1

    @property
    def si_name(self) -> str:
        """The unit's name for :func:`drivers.units.to_si` (``"dBm"`` or ``"W"``)."""
        return "dBm" if self is PowerUnit.DBM else "W"
