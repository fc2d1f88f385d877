"""Santec TSL-570 tunable laser: pymeasure's driver with labctl's behaviour and role interface.

Command reference: *Santec TSL-570 Operation Manual* (M-TSL570-E, v1.5), chapter 7.4 "command
reference"; pymeasure's :class:`pymeasure.instruments.santec.TSL570` implements its command set.
This module subclasses it and adds what labctl needs:

* the per-resource lock and *raising* error checks of :mod:`drivers.base` (``SYST:ERR?`` is read
  after every setting and an :class:`~drivers.errors.InstrumentError` is raised if it held
  anything);
* strict validators and ``check_set_errors=True`` on every setting (pymeasure leaves the
  wavelength, frequency and power setpoints unchecked and formats them with ``%g``, i.e. 6
  significant digits, which loses the 0.1 pm setting resolution; here ``%.10g``);
* the ``TunableLaser`` role in SI units (:attr:`wavelength` in m, :attr:`power` in W,
  :attr:`output_enabled`, :meth:`shutdown`).

**Units on the wire** depend on two instrument settings the front panel can change:
``:SYSTem:COMMunicate:CODe`` (0 = Legacy: wavelengths in nm, frequencies in THz; 1 = SCPI: m and
Hz) and ``:POWer:UNIT`` (0 = dBm, 1 = mW). The device-unit properties inherited from pymeasure
therefore accept a value that is in range in *either* unit system; the SI role properties ask
the instrument for the relevant setting first and convert, and never change it.

Note: pymeasure's ``power`` is the *monitored* power (``:POWer:ACTual?``). Here ``power`` is the
role's output power *setpoint* in W; the monitor is :attr:`power_monitor` (device units) and
:attr:`actual_power` (W).

Ranges (TSL-570 data sheet, figures not re-verified): 1480 nm .. 1640 nm (the C+L model; other
models cover other bands down to 1260 nm and up to 1680 nm), output power setting -15 dBm .. +13
dBm. The wavelength, frequency and power validators are dynamic, e.g.
``laser.wavelength_range = (1260e-9, 1360e-9)`` adapts them all to an O-band unit.
"""

from __future__ import annotations

import math

from pymeasure.instruments import Instrument
from pymeasure.instruments.santec.tsl570 import TSL570
from pymeasure.instruments.santec.tsl500series import SweepMode

from drivers.base import LabInstrument, in_integer_range, in_range, in_set
from drivers.errors import ValueOutOfRange
from drivers.laser import TunableLaserSI
from drivers.limits import READ, SET, Enables, Limited, LimitedCommand
from drivers.scpi import SCPI_NUMBER
from drivers.units import SPEED_OF_LIGHT, from_si, to_si

#: Wavelength range of the TSL-570 C+L model, in m.
WAVELENGTH_RANGE_M = (1480e-9, 1640e-9)
#: Output power setting range, in dBm.
POWER_RANGE_DBM = (-15.0, 13.0)


def _either_range(value, values):
    """Accept ``value`` if it lies in any of the ranges ``values = ((low, high), ...)``.

    Used where the unit of a device-unit property depends on an instrument setting (nm or m,
    THz or Hz, dBm or mW).
    """
    for low, high in values:
        if low <= value <= high:
            return value
    listed = " or ".join(f"[{low:g}, {high:g}]" for low, high in values)
    raise ValueOutOfRange(f"Value of {value:g} is not in {listed}")


def _wavelength_ranges(low_m: float, high_m: float):
    return ((low_m * 1e9, high_m * 1e9), (low_m, high_m))


def _frequency_ranges(low_m: float, high_m: float):
    f_low, f_high = SPEED_OF_LIGHT / high_m, SPEED_OF_LIGHT / low_m
    return ((f_low * 1e-12, f_high * 1e-12), (f_low, f_high))


def _step_ranges(low_m: float, high_m: float):
    span_m = high_m - low_m
    return ((1e-4, span_m * 1e9), (1e-13, span_m))


def _frequency_step_ranges(low_m: float, high_m: float):
    span_hz = SPEED_OF_LIGHT / low_m - SPEED_OF_LIGHT / high_m
    return ((1e-5, span_hz * 1e-12), (1e7, span_hz))


def _power_ranges(low_dbm: float, high_dbm: float):
    # the mW range is rounded inwards to 0.1 uW so that it never exceeds the dBm range
    low_mw = math.ceil(10 ** (low_dbm / 10) * 1e4) / 1e4  # 10 ** (dBm / 10) is the power in mW
    high_mw = math.floor(10 ** (high_dbm / 10) * 1e4) / 1e4
    return ((low_dbm, high_dbm), (low_mw, high_mw))


def _wavelength_control(command: str, what: str, ranges) -> property:
    return Instrument.control(
        f"{command}?",
        f"{command} {SCPI_NUMBER}",
        f"""Control the {what}, in nm (Legacy command set) or m (SCPI command set)
        (float strictly in {ranges[0][0]:g} .. {ranges[0][1]:g} nm or the same range in m).""",
        validator=_either_range,
        values=ranges,
        check_set_errors=True,
        dynamic=True,
    )


def _frequency_control(command: str, what: str, ranges) -> property:
    return Instrument.control(
        f"{command}?",
        f"{command} {SCPI_NUMBER}",
        f"""Control the {what}, in THz (Legacy command set) or Hz (SCPI command set)
        (float strictly in {ranges[0][0]:g} .. {ranges[0][1]:g} THz or the same range in Hz).""",
        validator=_either_range,
        values=ranges,
        check_set_errors=True,
        dynamic=True,
    )


class SantecTSL570(TunableLaserSI, LabInstrument, TSL570):
    """Santec TSL-570 tunable laser; also a ``TunableLaser`` in SI units.

    .. code-block:: python

        laser = SantecTSL570("TCPIP0::tsl.lab::5000::SOCKET")
        laser.wavelength = 1550.1234e-9   # sent as ':WAVelength 1550.1234' in Legacy mode
        laser.power = 2e-3                 # sent as ':POWer 3.0103' when the unit is dBm
        laser.output_enabled = True
    """

    # --- settings, re-declared with strict validators and error checks ----------------------------

    command_set = Instrument.control(
        ":SYSTem:COMMunicate:CODe?",
        ":SYSTem:COMMunicate:CODe %d",
        """Control the command set, "Legacy" (nm, THz) or "SCPI" (m, Hz) (str).""",
        validator=in_set,
        values={"Legacy": 0, "SCPI": 1},
        map_values=True,
        check_set_errors=True,
    )

    output_enabled = Instrument.control(
        ":POWer:STATe?",
        ":POWer:STATe %d",
        """Control whether the laser output is on (bool).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    power_unit = Instrument.control(
        ":POWer:UNIT?",
        ":POWer:UNIT %d",
        """Control the unit of power values on the wire (str, 'dBm' or 'mW').""",
        validator=in_set,
        values={"dBm": 0, "mW": 1},
        map_values=True,
        check_set_errors=True,
    )

    power_setpoint = Instrument.control(
        ":POWer?",
        ":POWer %.6g",
        """Control the output power setpoint in the unit of :attr:`power_unit`
        (float strictly in -15 .. +13 dBm or 0.0317 .. 19.9526 mW).""",
        validator=_either_range,
        values=_power_ranges(*POWER_RANGE_DBM),
        check_set_errors=True,
        dynamic=True,
    )

    power_monitor = Instrument.measurement(
        ":POWer:ACTual?",
        """Measure the monitored optical output power in the unit of :attr:`power_unit` (float).""",
    )

    wavelength_setpoint = _wavelength_control(
        ":WAVelength", "output wavelength", _wavelength_ranges(*WAVELENGTH_RANGE_M))
    wavelength_start = _wavelength_control(
        ":WAVelength:SWEep:STARt", "sweep start wavelength", _wavelength_ranges(*WAVELENGTH_RANGE_M))
    wavelength_stop = _wavelength_control(
        ":WAVelength:SWEep:STOP", "sweep stop wavelength", _wavelength_ranges(*WAVELENGTH_RANGE_M))
    wavelength_step = _wavelength_control(
        ":WAVelength:SWEep:STEP", "step of a stepped sweep", _step_ranges(*WAVELENGTH_RANGE_M))

    frequency_setpoint = _frequency_control(
        ":FREQuency", "output frequency", _frequency_ranges(*WAVELENGTH_RANGE_M))
    frequency_start = _frequency_control(
        ":FREQuency:SWEep:STARt", "sweep start frequency", _frequency_ranges(*WAVELENGTH_RANGE_M))
    frequency_stop = _frequency_control(
        ":FREQuency:SWEep:STOP", "sweep stop frequency", _frequency_ranges(*WAVELENGTH_RANGE_M))
    frequency_step = _frequency_control(
        ":FREQuency:SWEep:STEP", "frequency step of a stepped sweep",
        _frequency_step_ranges(*WAVELENGTH_RANGE_M))

    sweep_mode = Instrument.control(
        ":WAVelength:SWEep:MODe?",
        ":WAVelength:SWEep:MODe %d",
        """Control the sweep mode (:class:`SweepMode`: stepped/continuous, one-/two-way).""",
        validator=in_set,
        values=[m.value for m in SweepMode],
        get_process=lambda v: SweepMode(int(v)),
        set_process=lambda v: int(SweepMode(v)),
        check_set_errors=True,
    )

    sweep_speed = Instrument.control(
        ":WAVelength:SWEep:SPEed?",
        ":WAVelength:SWEep:SPEed %d",
        """Control the sweep speed, in nm/s (int one of 1, 2, 5, 10, 20, 50, 100, 200).""",
        validator=in_set,
        values={1, 2, 5, 10, 20, 50, 100, 200},
        check_set_errors=True,
    )

    sweep_dwell = Instrument.control(
        ":WAVelength:SWEep:DWELl?",
        ":WAVelength:SWEep:DWELl %.1f",
        """Control the wait time between steps of a stepped sweep, in s
        (float strictly from 0 to 999.9).""",
        validator=in_range,
        values=(0, 999.9),
        check_set_errors=True,
    )

    sweep_delay = Instrument.control(
        ":WAVelength:SWEep:DELay?",
        ":WAVelength:SWEep:DELay %.1f",
        """Control the wait time between consecutive sweeps, in s (float strictly from 0 to 999.9).""",
        validator=in_range,
        values=(0, 999.9),
        check_set_errors=True,
    )

    sweep_cycles = Instrument.control(
        ":WAVelength:SWEep:CYCLes?",
        ":WAVelength:SWEep:CYCLes %d",
        """Control the number of sweep repetitions (int strictly from 0 to 999).""",
        validator=in_integer_range,
        values=(0, 999),
        check_set_errors=True,
    )

    safety_members = {
        "power": Limited("optical_power", "W"),
        "power_setpoint": Limited("optical_power", lambda laser: laser.power_unit),  # "dBm" or "mW"
        "power_unit": SET, "power_monitor": READ, "actual_power": READ, "power_range_dbm": READ, "power_range": READ,
        "command_set": SET, "output_enabled": Enables((("power", "optical_power", "W"),)), "wavelength": SET, "frequency": SET,
        "wavelength_range": READ, "wavelength_min": READ, "wavelength_max": READ,
        "frequency_min": READ, "frequency_max": READ,
        "wavelength_setpoint": SET, "wavelength_start": SET, "wavelength_stop": SET, "wavelength_step": SET,
        "frequency_setpoint": SET, "frequency_start": SET, "frequency_stop": SET, "frequency_step": SET,
        "sweep_mode": SET, "sweep_speed": SET, "sweep_dwell": SET, "sweep_delay": SET, "sweep_cycles": SET,
        "sweep_pattern": SET, "sweep_routing": SET, "sweep_status": READ, "sweep_count": READ,
        "start_sweep": SET, "stop_sweep": SET, "start_repeat": SET,
    }
    #: The power setpoint, in the unit of ``:POWer:UNIT`` (0 = dBm, 1 = mW); the TSL takes no suffix.
    limited_commands = (
        LimitedCommand(":POWer[:LEVel]", "optical_power", unit_query=":POW:UNIT?",
                       unit_replies={"0": "dBm", "1": "mW"}, unit_header=":POWer:UNIT"),
    )

    def __init__(self, adapter, name="Santec TSL-570", **kwargs):
        kwargs.setdefault("read_termination", "\r")
        kwargs.setdefault("write_termination", "\r")
        super().__init__(adapter, name, **kwargs)
        self._wavelength_range_m = WAVELENGTH_RANGE_M
        self._power_range_dbm = POWER_RANGE_DBM

    # --- model range ----------------------------------------------------------------------

    @property
    def wavelength_range(self) -> tuple[float, float]:
        """Control the model's wavelength range used by the validators, in m (tuple of floats)."""
        return self._wavelength_range_m

    @wavelength_range.setter
    def wavelength_range(self, limits: tuple[float, float]) -> None:
        low, high = (float(v) for v in limits)
        if not 0 < low < high:
            raise ValueOutOfRange(f"wavelength range {limits!r} is not (low, high) in m")
        self._wavelength_range_m = (low, high)
        self.wavelength_setpoint_values = _wavelength_ranges(low, high)
        self.wavelength_start_values = _wavelength_ranges(low, high)
        self.wavelength_stop_values = _wavelength_ranges(low, high)
        self.wavelength_step_values = _step_ranges(low, high)
        self.frequency_setpoint_values = _frequency_ranges(low, high)
        self.frequency_start_values = _frequency_ranges(low, high)
        self.frequency_stop_values = _frequency_ranges(low, high)
        self.frequency_step_values = _frequency_step_ranges(low, high)

    @property
    def power_range_dbm(self) -> tuple[float, float]:
        """Control the model's power setting range used by the validators, in dBm (tuple)."""
        return self._power_range_dbm

    @power_range_dbm.setter
    def power_range_dbm(self, limits: tuple[float, float]) -> None:
        low, high = (float(v) for v in limits)
        if not low < high:
            raise ValueOutOfRange(f"power range {limits!r} is not (low, high) in dBm")
        self._power_range_dbm = (low, high)
        self.power_setpoint_values = _power_ranges(low, high)

    @property
    def power_range(self) -> tuple[float, float]:
        """Get the (lowest, highest) settable output power, in W (from :attr:`power_range_dbm`)."""
        return tuple(to_si(v, "dBm") for v in self._power_range_dbm)

    # --- role interface (SI) ----------------------------------------------------------------

    def _legacy(self) -> bool:
        return self.command_set == "Legacy"

    @property
    def wavelength(self) -> float:
        """Control the output wavelength setpoint, in m (float strictly within
        :attr:`wavelength_range`). Asks the command set first, then converts."""
        legacy = self._legacy()
        value = self.wavelength_setpoint
        return to_si(value, "nm") if legacy else value

    @wavelength.setter
    def wavelength(self, metres: float) -> None:
        in_range(metres, self._wavelength_range_m)
        self.wavelength_setpoint = from_si(metres, "nm") if self._legacy() else metres

    def _power_reading(self) -> tuple[float, str]:
        unit = self.power_unit
        return self.power_setpoint, unit

    def _send_power(self, watt: float, dbm: float) -> None:
        in_range(dbm, self._power_range_dbm)
        unit = self.power_unit
        self.power_setpoint = from_si(watt, unit)

    @property
    def actual_power(self) -> float:
        """Measure the monitored optical output power, in W (float)."""
        unit = self.power_unit
        return to_si(self.power_monitor, unit)

    def shutdown(self) -> None:
        """Turn the laser output off (the safe state)."""
        self.output_enabled = False
        super().shutdown()
