"""Keysight N7744A (4-port) and N7745A (8-port) multiport optical power meters.

Command reference: *Keysight N77xx Series Programming Guide* (multiport power meters N7744A/N7745A;
the commands are those of the power-meter modules of the *8163A/B, 8164A/B & 8166A/B Mainframes
Programming Guide*, chapter 4 "Measurement Operations & Settings"; the later *Keysight N774xC
Series Multiport Power Meter Programming Guide* keeps the same forms). Each port is one slot
``n`` (1..4, or 1..8 on the N7745A) with a single channel ``m = 1``:

* ``:READ[n][:CHANnel[m]][:SCALar]:POWer[:DC]?`` triggers and reads one value;
  ``:FETCh[n]...:POWer?`` reads the last one; ``:INITiate[n][:CHANnel[m]][:IMMediate]`` triggers;
  ``:INITiate[n]...:CONTinuous 0|1`` selects continuous measurement.
  Replies are in the unit of ``:SENSe[n]:POWer:UNIT`` (``+0`` dBm, ``+1`` W), e.g.
  ``+1.33555600E-006``.
* ``:SENSe[n][:CHANnel[m]]:POWer:WAVelength <value>[PM|NM|UM|MM|M]`` (calibration wavelength, m),
  ``:POWer:ATIMe <value>[NS|US|MS|S]`` (averaging time, s), ``:POWer:RANGe[:UPPer] <value>DBM``
  (manual range, multiples of 10 dBm) and ``:POWer:RANGe:AUTO 0|1``.
* Logging: ``:SENSe[n]:FUNCtion:PARameter:LOGGing <points>,<averaging time>``,
  ``:SENSe[n]:FUNCtion:STATe LOGGing,STARt|STOP``, ``:SENSe[n]:FUNCtion:STATe?``
  (``<function>,<PROGRESS|COMPLETE>``) and ``:SENSe[n]:FUNCtion:RESult?`` (a definite-length
  binary block of little-endian float32 values).

**Over range.** A reading above the selected range (above range + 3 dB, or above +10 dBm on the
top range) is not a power: the meter answers a huge marker value instead. Any reply >= 1e37 is
taken as that marker (it covers both the largest float32, ``+3.40282347E+038``, which the
simulator sends together with a queued ``-231 "Data questionable"``, and SCPI's not-a-number
``9.91E+37``). :meth:`KeysightN7744AChannel.read_power` turns it into an
:class:`~drivers.errors.InstrumentError` (with the instrument's queued entry if there is one);
:meth:`KeysightN7744AChannel.log_power` returns such samples as ``inf``.

**dBm readings** cannot express a dark reading that noise made negative; read dark ports in W.

Ranges of the strict validators (N7744A/N7745A data sheet, typical published figures, not
re-verified): calibration wavelength 1250 nm .. 1650 nm, averaging time 1 us .. 10 s, manual
ranges -30 dBm .. +10 dBm in 10 dB steps, logging up to 1 000 000 samples.
"""

from __future__ import annotations

import time

import numpy as np
from pymeasure.instruments import Instrument
from drivers.base import LabChannel, LabInstrument, in_range, in_set
from drivers.keysight.lightwave import PowerUnit
from drivers.errors import DriverError, InstrumentError, ValueOutOfRange
from drivers.limits import READ, SET, channel_members
from drivers.units import to_si

#: Settable calibration wavelength, in m (InGaAs sensors, data sheet).
WAVELENGTH_RANGE_M = (1250e-9, 1650e-9)
#: Averaging time, in s (data sheet: 1 us .. 10 s).
AVERAGING_TIME_RANGE_S = (1e-6, 10.0)
#: Manual power ranges, in dBm (the range changes in 10 dB steps).
POWER_RANGES_DBM = (-30, -20, -10, 0, 10)
#: Logging buffer, in samples per port.
LOGGING_POINTS_RANGE = (1, 1_000_000)
#: Readings at or above this value are the instrument's "over range" marker, not a power.
OVER_RANGE_MARKER = 1e37


def _logging_parameters(value, values):
    """Validate ``(points, averaging_time)`` for the logging function."""
    try:
        points, averaging_time = value
    except (TypeError, ValueError):
        raise ValueOutOfRange(f"logging parameters must be (points, averaging_time), got {value!r}") from None
    if int(points) != points:
        raise ValueOutOfRange(f"logging points must be an integer, got {points!r}")
    point_range, time_range = values
    in_range(int(points), point_range)
    in_range(averaging_time, time_range)
    return int(points), float(averaging_time)


class KeysightN7744AChannel(LabChannel):
    """One optical input port (slot ``n``) of an N7744A/N7745A; satisfies ``OpticalPowerMeter``."""

    # A receiver: no setting of it drives a source.
    safety_members = {
        **dict.fromkeys(("wavelength", "averaging_time", "power_unit", "auto_range", "range_dbm",
                         "continuous_measurement", "logging_parameters", "function_state", "initiate"), SET),
        **dict.fromkeys(("power", "fetched_power", "read_power", "log_power"), READ),
    }

    # --- settings ------------------------------------------------------------------------------

    wavelength = Instrument.control(
        ":SENS{ch}:POW:WAV?",
        ":SENS{ch}:POW:WAV %.7E",
        """Control the calibration wavelength of this port, in m (float strictly from 1250e-9 to
        1650e-9).""",
        validator=in_range,
        values=WAVELENGTH_RANGE_M,
        check_set_errors=True,
        dynamic=True,
    )

    averaging_time = Instrument.control(
        ":SENS{ch}:POW:ATIM?",
        ":SENS{ch}:POW:ATIM %.6E",
        """Control the averaging time of one reading, in s (float strictly from 1e-6 to 10).""",
        validator=in_range,
        values=AVERAGING_TIME_RANGE_S,
        check_set_errors=True,
        dynamic=True,
    )

    power_unit = Instrument.control(
        ":SENS{ch}:POW:UNIT?",
        ":SENS{ch}:POW:UNIT %d",
        """Control the unit of the power readings (:class:`PowerUnit` DBM or W).""",
        validator=in_set,
        values=list(PowerUnit),
        set_process=int,
        get_process=lambda reply: PowerUnit(int(reply)),
        check_set_errors=True,
    )

    range_dbm = Instrument.control(
        ":SENS{ch}:POW:RANG?",
        ":SENS{ch}:POW:RANG %dDBM",
        """Control the manual power range (its nominal upper limit), in dBm; setting it turns
        auto ranging off (int strictly one of -30, -20, -10, 0, +10).""",
        validator=in_set,
        values=POWER_RANGES_DBM,
        check_set_errors=True,
        dynamic=True,
    )

    auto_range = Instrument.control(
        ":SENS{ch}:POW:RANG:AUTO?",
        ":SENS{ch}:POW:RANG:AUTO %d",
        """Control whether the port selects its power range automatically (bool).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    continuous_measurement = Instrument.control(
        ":INIT{ch}:CONT?",
        ":INIT{ch}:CONT %d",
        """Control whether the port measures continuously (bool); with it off, each
        :meth:`initiate` takes one reading.""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    logging_parameters = Instrument.control(
        ":SENS{ch}:FUNC:PAR:LOGG?",
        ":SENS{ch}:FUNC:PAR:LOGG %d,%.6E",
        """Control the logging function's (points, averaging time in s) (tuple of int strictly
        from 1 to 1000000 and float strictly from 1e-6 to 10).""",
        validator=_logging_parameters,
        values=(LOGGING_POINTS_RANGE, AVERAGING_TIME_RANGE_S),
        get_process_list=lambda v: (int(v[0]), float(v[1])),
        check_set_errors=True,
    )

    # --- measurements --------------------------------------------------------------------------

    power = Instrument.measurement(
        ":READ{ch}:POW?",
        """Measure one reading (triggered by the query), in the unit of :attr:`power_unit`
        (float, dBm or W; >= 1e37 means over range).""",
    )

    fetched_power = Instrument.measurement(
        ":FETC{ch}:POW?",
        """Get the last reading without triggering, in the unit of :attr:`power_unit` (float).""",
    )

    function_state = Instrument.measurement(
        ":SENS{ch}:FUNC:STAT?",
        """Get the data acquisition function and its progress (tuple of str, e.g.
        ``('LOGGING_STABILITY', 'COMPLETE')``).""",
        cast=str,
        get_process_list=lambda v: tuple(s.strip() for s in v),
    )

    def initiate(self) -> None:
        """Trigger one reading (continuous measurement must be off), then check errors."""
        self.write(":INIT{ch}:IMM")
        self.check_errors()

    # --- role interface (SI) -------------------------------------------------------------------

    def read_power(self) -> float:
        """Trigger one measurement and return the optical power, in W.

        Asks the power unit first so the reading converts correctly whatever the display shows.
        Raises :class:`InstrumentError` if the input is above the selected range.
        """
        unit = self.power_unit
        reading = self.power
        if reading >= OVER_RANGE_MARKER:
            self.check_errors()  # raises with the instrument's own -231 entry if it queued one
            raise InstrumentError(self.parent.name, self.insert_id(":READ{ch}:POW?"),
                                  [(-231, f"port {self.id}: input power above the selected range")])
        return to_si(reading, unit.si_name)

    def log_power(self, points: int, averaging_time: float, timeout: float | None = None) -> np.ndarray:
        """Log ``points`` consecutive readings of ``averaging_time`` s each; return them in W.

        Sets the power unit to W, configures and starts the logging function, waits until it is
        complete (polling ``:SENSe[n]:FUNCtion:STATe?``), reads the float32 result block and
        stops the function. Samples above the (fixed) range come back as ``inf``.
        """
        points, averaging_time = _logging_parameters(
            (points, averaging_time), (LOGGING_POINTS_RANGE, AVERAGING_TIME_RANGE_S))
        self.power_unit = PowerUnit.W
        self.logging_parameters = (points, averaging_time)
        self.write(":SENS{ch}:FUNC:STAT LOGG,STAR")
        self.check_errors()
        limit = timeout if timeout is not None else 10.0 + 2.0 * points * averaging_time
        deadline = time.monotonic() + limit
        while True:
            function, status = self.function_state
            if status.upper().startswith("COMP"):
                break
            if time.monotonic() > deadline:
                raise DriverError(f"{self.parent.name} port {self.id}: logging not complete after {limit:g} s")
            time.sleep(min(0.05, max(1e-3, points * averaging_time / 20)))
        data = self._read_block(":SENS{ch}:FUNC:RES?")
        self.write(":SENS{ch}:FUNC:STAT LOGG,STOP")
        self.check_errors()
        values = np.frombuffer(data, dtype="<f4").astype(float)
        values[values >= OVER_RANGE_MARKER] = np.inf
        return values

    def _read_block(self, command: str) -> bytes:
        """Send ``command`` and read its definite-length block reply (and the terminator)."""
        with self._resource_lock():
            self.write(command)
            head = self.read_bytes(2)
            if head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
                raise DriverError(f"{self.parent.name}: expected a definite-length block, got {head!r}")
            length = int(self.read_bytes(int(head[1:2])))
            payload = self.read_bytes(length) if length else b""
            self.read_bytes(1)  # the response message terminator (LF)
        if len(payload) % 4:
            raise DriverError(f"{self.parent.name}: block of {len(payload)} bytes is not float32 data")
        return payload


class KeysightN7744A(LabInstrument):
    """Keysight N7744A 4-port optical power meter; ``ch_1`` .. ``ch_4`` are its ports."""

    channels = Instrument.MultiChannelCreator(KeysightN7744AChannel, (1, 2, 3, 4), prefix="ch_")

    safety_members = channel_members(1, 2, 3, 4)

    def __init__(self, adapter, name="Keysight N7744A", **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 20000)
        super().__init__(adapter, name, **kwargs)


class KeysightN7745A(KeysightN7744A):
    """Keysight N7745A 8-port optical power meter; ``ch_1`` .. ``ch_8`` are its ports."""

    channels = Instrument.MultiChannelCreator(KeysightN7744AChannel, tuple(range(1, 9)), prefix="ch_")

    safety_members = channel_members(*range(1, 9))

    def __init__(self, adapter, name="Keysight N7745A", **kwargs):
        super().__init__(adapter, name, **kwargs)
