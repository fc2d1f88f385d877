"""The ``TunableLaser`` role's SI members over a laser's device units, shared by the laser drivers.

Why: a laser's power unit is an instrument setting that the front panel or another program may change,
so every laser driver must ask for it before it converts. The conversions (dBm, mW, W; Hz from m) and
the checks on the role's SI values live here once; a driver says only how to read its power setpoint
with its unit and how to send a power.
"""

from __future__ import annotations

from pymeasure.instruments import Channel

from drivers.errors import ValueOutOfRange
from drivers.units import SPEED_OF_LIGHT, to_si, w_to_dbm


class TunableLaserSI:
    """Mixin: :attr:`frequency` (Hz) and :attr:`power` (W) over the driver's ``wavelength`` (m) and power hooks.

    Put it first among the bases so its SI members take precedence over a device-unit member of the
    same name inherited from a pymeasure class.
    """

    def _power_reading(self) -> tuple[float, str]:
        """The power setpoint as the instrument reports it, with its unit (``"dBm"``, ``"W"`` or ``"mW"``)."""
        raise NotImplementedError

    def _send_power(self, watt: float, dbm: float) -> None:
        """Send the power setpoint ``watt`` (``dbm`` in dBm); raise ValueOutOfRange if the model refuses it."""
        raise NotImplementedError

    @property
    def frequency(self) -> float:
        """Control the optical frequency setpoint, in Hz, as c / :attr:`wavelength` (float)."""
        return SPEED_OF_LIGHT / self.wavelength

    @frequency.setter
    def frequency(self, hertz: float) -> None:
        if not hertz > 0:
            raise ValueOutOfRange(f"frequency {hertz!r} Hz is not a positive optical frequency")
        self.wavelength = SPEED_OF_LIGHT / hertz

    @property
    def power(self) -> float:
        """Control the output power setpoint, in W (float, within the model's power range).

        Reading asks the instrument's power unit first, then the setpoint, and converts.
        """
        reading, unit = self._power_reading()
        return to_si(reading, unit)

    @power.setter
    def power(self, watt: float) -> None:
        if not watt > 0:
            raise ValueOutOfRange(f"power {watt!r} W is not a positive optical power")
        dbm = w_to_dbm(watt)
        try:
            self._send_power(watt, dbm)
        except ValueOutOfRange as exc:
            where = f" for port {self.id}" if isinstance(self, Channel) else ""
            raise ValueOutOfRange(f"power {watt:g} W ({dbm:.2f} dBm) refused{where}: {exc}") from None
