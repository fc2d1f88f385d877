"""Keysight N7714A (4-port) and N7711A (1-port) tunable laser sources.

Command reference: *Keysight N77xx Series Programming Guide* (N7711A/N7714A tunable laser
systems; the source command set is the one of the *8163A/B, 8164A/B & 8166A/B Mainframes
Programming Guide*, chapter 4 "Measurement Operations & Settings"):

* ``[:SOURce[n]][:CHANnel[m]]:WAVelength <value>[PM|NM|UM|MM|M]|MIN|MAX|DEF`` and
  ``:WAVelength? [MIN|MAX|DEF]`` (reply in m, e.g. ``+1.55000000E-006``);
* ``[:SOURce[n]][:CHANnel[m]]:POWer[:LEVel][:IMMediate][:AMPLitude] <value>[PW|NW|UW|MW|W|DBM]``
  ``|MIN|MAX|DEF`` and its query; *without* a unit suffix the value is taken, and the query
  answers, in the unit selected by ``:POWer:UNIT DBM|W`` (reply ``+0`` = dBm, ``+1`` = W);
* ``[:SOURce[n]][:CHANnel[m]]:POWer:STATe 0|1|OFF|ON`` and its query.

Each laser port is one source ``n`` (1..4 on the N7714A, 1 on the N7711A), so one driver channel
per port. **Power units:** the reply of ``:POWer?`` depends on ``:POWer:UNIT``, which the front
panel or another program may change. This driver therefore always *sends* power with an explicit
``DBM`` suffix and, when it *reads* power, first asks ``:POWer:UNIT?`` and converts the reply
accordingly; it never changes the unit setting behind the user's back.

Ranges (defaults of the strict validators, see the N7711A/N7714A data sheet; figures not
re-verified): C-band tuning 1527.605 nm .. 1565.496 nm (196.25 .. 191.50 THz) and a power
setting range of +6 dBm .. +13.5 dBm. The wavelength and power validators are *dynamic*: a port
fitted with another band can be opened up per instance, e.g. ``laser.ch_1.wavelength_values =
(1570.0e-9, 1608.8e-9)``.
"""

from __future__ import annotations

from pymeasure.instruments import Instrument
from drivers.base import LabChannel, LabInstrument, in_range, in_set
from drivers.keysight.lightwave import PowerUnit
from drivers.laser import TunableLaserSI
from drivers.limits import POWER_SUFFIXES, READ, SET, Enables, Limited, LimitedCommand, channel_members
from drivers.units import from_si, to_si, w_to_dbm

#: C-band tuning range of the N7711A/N7714A, in m (data sheet: 191.50 THz .. 196.25 THz).
WAVELENGTH_RANGE_M = (1527.605e-9, 1565.496e-9)
#: Output power setting range, in dBm (data sheet).
POWER_RANGE_DBM = (6.0, 13.5)




class KeysightN7714ALaser(TunableLaserSI, LabChannel):
    """One laser port (``:SOURce<n>``) of an N7714A/N7711A; satisfies the ``TunableLaser`` role."""

    safety_members = {
        "wavelength": SET, "wavelength_min": READ, "wavelength_max": READ, "frequency": SET,
        "power": Limited("optical_power", "W"), "power_dbm": Limited("optical_power", "dBm"),
        "power_setpoint_dbm": Limited("optical_power", "dBm"),
        "power_unit": SET, "power_level": READ, "power_level_min": READ, "power_level_max": READ,
        "power_range": READ, "output_enabled": Enables((("power", "optical_power", "W"),)),
    }

    # --- wavelength -------------------------------------------------------------------------

    wavelength = Instrument.control(
        ":SOUR{ch}:WAV?",
        ":SOUR{ch}:WAV %.4fNM",
        """Control the emission wavelength setpoint of this port, in m, sent in nm with 0.1 pm
        resolution (float strictly from 1527.605e-9 to 1565.496e-9).""",
        validator=in_range,
        values=WAVELENGTH_RANGE_M,
        set_process=lambda metres: from_si(metres, "nm"),
        check_set_errors=True,
        dynamic=True,
    )

    wavelength_min = Instrument.measurement(
        ":SOUR{ch}:WAV? MIN",
        """Get the shortest settable wavelength of this port, in m (float).""",
    )

    wavelength_max = Instrument.measurement(
        ":SOUR{ch}:WAV? MAX",
        """Get the longest settable wavelength of this port, in m (float).""",
    )

    # --- power ------------------------------------------------------------------------------

    power_unit = Instrument.control(
        ":SOUR{ch}:POW:UNIT?",
        ":SOUR{ch}:POW:UNIT %s",
        """Control the unit in which the instrument reports power and reads unsuffixed power
        values (:class:`PowerUnit` DBM or W).""",
        validator=in_set,
        values=list(PowerUnit),
        set_process=lambda unit: PowerUnit(unit).name,
        get_process=lambda reply: PowerUnit(int(reply)),
        check_set_errors=True,
    )

    power_level = Instrument.measurement(
        ":SOUR{ch}:POW?",
        """Get the output power setpoint as the instrument reports it, in the unit of
        :attr:`power_unit` (float, dBm or W).""",
    )

    power_level_min = Instrument.measurement(
        ":SOUR{ch}:POW? MIN",
        """Get the lowest settable output power, in the unit of :attr:`power_unit` (float).""",
    )

    power_level_max = Instrument.measurement(
        ":SOUR{ch}:POW? MAX",
        """Get the highest settable output power, in the unit of :attr:`power_unit` (float).""",
    )

    power_setpoint_dbm = Instrument.setting(
        ":SOUR{ch}:POW %.4fDBM",
        """Set the output power setpoint in dBm, with an explicit DBM suffix so that it does not
        depend on :attr:`power_unit` (float strictly from +6 to +13.5).""",
        validator=in_range,
        values=POWER_RANGE_DBM,
        check_set_errors=True,
        dynamic=True,
    )

    output_enabled = Instrument.control(
        ":SOUR{ch}:POW:STAT?",
        ":SOUR{ch}:POW:STAT %d",
        """Control whether this port emits light (bool).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    # --- role interface (SI) --------------------------------------------------------------------

    def _power_reading(self) -> tuple[float, str]:
        unit = self.power_unit
        return self.power_level, unit.si_name

    def _send_power(self, watt: float, dbm: float) -> None:
        self.power_setpoint_dbm = dbm

    @property
    def power_dbm(self) -> float:
        """Control the output power setpoint, in dBm (float strictly from +6 to +13.5)."""
        return w_to_dbm(self.power)

    @power_dbm.setter
    def power_dbm(self, dbm: float) -> None:
        self.power_setpoint_dbm = dbm

    @property
    def power_range(self) -> tuple[float, float]:
        """Get the (lowest, highest) settable output power the instrument reports, in W."""
        unit = self.power_unit.si_name
        return to_si(self.power_level_min, unit), to_si(self.power_level_max, unit)

    def shutdown(self) -> None:
        """Turn this port's output off (the safe state)."""
        self.output_enabled = False


class KeysightN7714A(LabInstrument):
    """Keysight N7714A four-port tunable laser source; ports are ``ch_1`` .. ``ch_4``.

    .. code-block:: python

        laser = KeysightN7714A("TCPIP0::laser::inst0::INSTR")
        port = laser.ch_1               # a TunableLaser: SI units
        port.wavelength = 1550.12e-9
        port.power = 5e-3               # sent as +6.9897DBM
        port.output_enabled = True
    """

    channels = Instrument.MultiChannelCreator(KeysightN7714ALaser, (1, 2, 3, 4))

    safety_members = channel_members(1, 2, 3, 4)
    #: Power setpoints: a suffix gives the unit, else the port's ``:POWer:UNIT`` (0 = dBm, 1 = W) does.
    limited_commands = (
        LimitedCommand("[:SOURce#][:CHANnel#]:POWer[:LEVel][:IMMediate][:AMPLitude]", "optical_power",
                       suffixes=POWER_SUFFIXES, unit_query=":SOUR{ch}:POW:UNIT?",
                       unit_replies={"0": "dBm", "+0": "dBm", "DBM": "dBm", "1": "W", "+1": "W", "W": "W"},
                       unit_header="[:SOURce#][:CHANnel#]:POWer:UNIT"),
    )

    def __init__(self, adapter, name="Keysight N7714A", **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    def shutdown(self) -> None:
        """Turn every port off (the safe state)."""
        for port in self.channels.values():
            port.shutdown()
        super().shutdown()


class KeysightN7711A(KeysightN7714A):
    """Keysight N7711A single-port tunable laser source; its port is ``ch_1``."""

    channels = Instrument.MultiChannelCreator(KeysightN7714ALaser, (1,))

    def __init__(self, adapter, name="Keysight N7711A", **kwargs):
        super().__init__(adapter, name, **kwargs)
