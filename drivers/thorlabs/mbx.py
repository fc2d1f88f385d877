"""Thorlabs MBX modulator bias controller (Mach-Zehnder bias lock + variable optical attenuator).

Adapts pymeasure's :class:`~pymeasure.instruments.thorlabs.ThorlabsMBXSeries` (same command set,
same serial defaults: 115200 Bd, CR write and read termination, RS-232 through a null modem) and
adds what labctl's drivers share (one lock per resource, errors that raise).

Command reference: *Remote Control User Guide for the MX / MBX / TLX1 / TLX2 Series*, Thorlabs
TTN116413-D04, Rev. E (May 5, 2022), firmware V1.9.4 and later:

* section 2.1 "Command Return Codes": the MBX has **no SCPI error queue**. Every valid *command*
  answers ``1``; a valid *query* answers its value; anything the instrument rejects answers a line
  ``Err: <text>`` instead (``Err: Data out of range``, ``Err: Undefined header``, ``Err: Parameter
  error``, ``Err: Illegal parameter value``, ``Err: Data type error``, ``Err: Execution error``,
  ``Err: Feature not present`` ...). This driver therefore reads the reply of *every* command it
  writes (under the resource lock, so the ``1`` never lingers in the serial buffer to be mistaken
  for the answer of the next query) and raises :class:`~drivers.errors.InstrumentError` on an
  ``Err:`` line, mapped to the SCPI code of the same name (``-222`` for ``Data out of range``...).
  Queries answering ``Err:`` raise the same way. ``check_errors`` has nothing left to poll.
* section 2.4 (Mach-Zehnder modulator bias control) as used by pymeasure: ``MZM:MODE: <0..9>``,
  ``MZM:HOLD:VOLTage: <mV>`` (manual-mode setpoint, -10000..10000), ``MZM:HOLD:RATio: <1/100 %>``,
  ``MZM:VOLTage?`` (bias applied, V), ``MZM:TAP:MW?`` (modulator output power seen by the
  controller's tap, reported as the in-line power in mW), ``MZM:SETpoint?``, ``MZM:CALibrating?``,
  ``MZM:RESet``.
* section 2.6 (VOA): ``VOA:ATTen: <1.0..20.0 dB>``, ``VOA:MODE: 0|1``, ``VOA:OUTput:MW:
  <0.01..100>``, ``VOA:POWer: 0|1``, ``VOA:SETpoint?``, ``VOA:MEASured?``, ``VOA:ERRor?``,
  ``VOA:TAP:MW?``. The attenuation validator follows the manual (1.0..20.0 dB), not pymeasure's
  0.5 dB lower bound.

Termination: the guide says responses end with <NL>; pymeasure's driver, whose author used the
instrument over RS-232, reads up to <CR> (pymeasure PR #1361). This driver keeps pymeasure's
tested serial settings (they are fixed in pymeasure's ``__init__``).

Role: :class:`labctl.instruments.BiasController` in SI units on the instrument object
(``bias_voltage`` in V, ``measure_bias_voltage()`` in V, ``read_output_power()`` in W,
``lock_quadrature()``, ``shutdown()``).

**Safe state** (``shutdown``): bias held at 0 V in MANUAL mode. The guide excerpts available do
not state what the bias output does in mode OFF, while MANUAL at 0 V is an explicitly commanded
voltage that reads back as such; 0 V is inside every LiNbO3 modulator's bias rating.
"""

from __future__ import annotations

import threading
from enum import IntEnum

from pymeasure.instruments import Instrument
from pymeasure.instruments.thorlabs.thorlabsmbxseries import (
    MzmMode,
    RgbPowerMode,
    ThorlabsMBXSeries,
    ThorlabsMBXSeriesMZM,
    ThorlabsMBXSeriesRGB,
    ThorlabsMBXSeriesVOA,
    VoaMode,
)
from drivers.base import LabChannel, _LockedIO, in_range, in_set
from drivers.limits import CHILD, READ, SET, Limited, LimitedCommand, Reaches
from drivers.errors import InstrumentError

__all__ = ["ThorlabsMBX", "MzmMode", "VoaMode", "RgbPowerMode", "MBX_ERRORS"]

#: Bias range of the MZM output, in V (pymeasure validator; guide: MZM:HOLD:VOLTage +-10000 mV).
BIAS_RANGE_V = (-10.0, 10.0)
#: VOA attenuation setpoint range, in dB (guide section 2.6, VOA:ATTen).
VOA_ATTENUATION_RANGE_DB = (1.0, 20.0)
#: VOA output power setpoint range, in mW (guide section 2.6, VOA:OUTput:MW).
VOA_POWER_RANGE_MW = (0.01, 100.0)
#: MZM:HOLD:RATio range, in % (pymeasure validator; sent in 1/100 %).
RATIO_RANGE_PCT = (2.5, 100.0)

#: ``Err:`` texts of the guide (section 2.1) and the SCPI-99 code of the same meaning.
MBX_ERRORS = {
    "feature not present": -241,
    "hardware missing": -241,
    "parameter error": -220,
    "illegal parameter value": -224,
    "data out of range": -222,
    "numeric data error": -120,
    "data type error": -104,
    "storage fault": -250,
    "system error": -310,
    "execution error": -200,
    "undefined header": -113,
    "tunable laser not selected": -221,
    "laser is locked": -221,
}


class LockMode(IntEnum):
    """Bias points the controller can lock to (subset of :class:`MzmMode`)."""

    PEAK = MzmMode.AUTOPEAK
    NULL = MzmMode.AUTONULL
    QUADRATURE_POSITIVE = MzmMode.AUTOQUADPOS
    QUADRATURE_NEGATIVE = MzmMode.AUTOQUADNEG


def _is_query(command: str) -> bool:
    return "?" in command.split(" ", 1)[0]


def parse_error_reply(reply: str) -> tuple[int, str] | None:
    """Return ``(scpi_code, text)`` for an ``Err: <text>`` reply of the MBX, else None."""
    text = reply.strip()
    if not text.lower().startswith("err"):
        return None
    message = text.split(":", 1)[1].strip() if ":" in text else text
    return MBX_ERRORS.get(message.lower(), -200), message


class _MBXChannelIO(LabChannel):
    """Channel I/O of the MBX: a non-query ``ask`` returns the command's acknowledgement."""

    def ask(self, command, query_delay=None):
        return self._root().ask(self.insert_id(command), query_delay)


class ThorlabsMBXModulator(_MBXChannelIO, ThorlabsMBXSeriesMZM):
    """Mach-Zehnder modulator bias control of the MBX (guide section 2.4)."""

    # Auto modes and the calibration sweep move the bias anywhere in the controller's range.
    safety_members = {
        "mode": Reaches("bias_voltage", "V", BIAS_RANGE_V, unless=(MzmMode.MANUAL,)),
        "voltage_setpoint": Limited("bias_voltage", "V"),
        "ratio_setpoint": SET, "calibrate": Reaches("bias_voltage", "V", BIAS_RANGE_V),
        "voltage": READ, "power": READ, "is_stable": READ, "is_calibrating": READ,
    }

    mode = Instrument.control(
        "MZM:MODE?",
        "MZM:MODE: %d",
        """Control the bias mode (:class:`MzmMode`: OFF, AUTOPEAK, AUTONULL, AUTOQUADPOS,
        AUTOQUADNEG, HOLDQUADPOS, HOLDQUADNEG, MANUAL, AUTOPOWERPOS, AUTOPOWERNEG; int 0..9).""",
        validator=in_set,
        values=list(MzmMode),
        cast=int,
        get_process=lambda v: MzmMode(v),
        check_set_errors=True,
    )

    voltage_setpoint = Instrument.control(
        "MZM:HOLD:VOLTAGE?",
        "MZM:HOLD:VOLTAGE: %d",
        """Control the bias voltage held in MANUAL mode (float, V, strictly -10..10; sent in mV).""",
        validator=in_range,
        values=BIAS_RANGE_V,
        get_process=lambda v: v / 1000,
        set_process=lambda v: round(v * 1000),
        check_set_errors=True,
    )

    ratio_setpoint = Instrument.control(
        "MZM:HOLD:RATIO?",
        "MZM:HOLD:RATIO: %d",
        """Control the output/peak power ratio held in AUTOPOWERPOS/AUTOPOWERNEG mode
        (float, %, strictly 2.5..100; sent in 1/100 %).""",
        validator=in_range,
        values=RATIO_RANGE_PCT,
        get_process=lambda v: v / 100,
        set_process=lambda v: round(v * 100),
        check_set_errors=True,
    )

    voltage = Instrument.measurement(
        "MZM:VOLTAGE?",
        """Measure the bias voltage applied to the modulator (float, V, -10..10).""",
    )

    power = Instrument.measurement(
        "MZM:TAP:MW?",
        """Measure the modulator output power at the controller's tap, as in-line power
        (float, mW, >= 0).""",
    )

    is_stable = Instrument.measurement(
        "MZM:SETPOINT?",
        """Get whether the bias is locked at its setpoint (bool).""",
        cast=int,
        get_process=lambda v: bool(v),
    )

    is_calibrating = Instrument.measurement(
        "MZM:CALIBRATING?",
        """Get whether a bias calibration sweep is running (bool).""",
        cast=int,
        get_process=lambda v: bool(v),
    )

    def calibrate(self):
        """Run a bias calibration sweep (``MZM:RESET``) and restart the lock."""
        self.ask("MZM:RESET")


class ThorlabsMBXAttenuator(_MBXChannelIO, ThorlabsMBXSeriesVOA):
    """Variable optical attenuator of the MBX (guide section 2.6)."""

    # An attenuator only takes light away: none of its settings can raise a source's output.
    safety_members = {
        "enabled": SET, "attenuation_setpoint": SET, "power_setpoint": SET, "mode": SET,
        "is_stable": READ, "attenuation": READ, "attenuation_error": READ, "power": READ,
        "hold_attenuation": SET, "release": SET, "attenuation_range_db": READ,
    }

    enabled = Instrument.control(
        "VOA:POWER?",
        "VOA:POWER: %d",
        """Control whether the VOA control loop is on; off = 0 V VOA bias, minimum loss (bool).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    attenuation_setpoint = Instrument.control(
        "VOA:ATTEN?",
        "VOA:ATTEN: %g",
        """Control the attenuation held in ATTENUATION mode (float, dB, strictly 1.0..20.0).""",
        validator=in_range,
        values=VOA_ATTENUATION_RANGE_DB,
        check_set_errors=True,
    )

    power_setpoint = Instrument.control(
        "VOA:OUTPUT:MW?",
        "VOA:OUTPUT:MW: %g",
        """Control the output power held in POWER mode (float, mW, strictly 0.01..100).""",
        validator=in_range,
        values=VOA_POWER_RANGE_MW,
        check_set_errors=True,
    )

    is_stable = Instrument.measurement(
        "VOA:SETPOINT?",
        """Get whether the VOA attenuation is within 0.1 dB of its setpoint (bool).""",
        cast=int,
        get_process=lambda v: bool(v),
    )

    attenuation = Instrument.measurement(
        "VOA:MEASURED?",
        """Measure the VOA attenuation, ratio of the taps before and after it (float, dB).""",
    )

    attenuation_error = Instrument.measurement(
        "VOA:ERROR?",
        """Measure the measured minus the set VOA attenuation (float, dB).""",
    )

    power = Instrument.measurement(
        "VOA:TAP:MW?",
        """Measure the optical power after the VOA (float, mW, >= 0).""",
    )

    @property
    def mode(self):
        """Control the VOA mode (:class:`VoaMode`: ATTENUATION = 0, POWER = 1)."""
        return VoaMode(int(self.values("VOA:MODE?")[0]))

    @mode.setter
    def mode(self, value):
        in_set(value, list(VoaMode))
        self.ask(f"VOA:MODE: {int(value)}")

    # -- role interface (VariableAttenuator) -----------------------------------------------------

    @property
    def attenuation_range_db(self) -> tuple[float, float]:
        """Get the attenuation the VOA holds in ATTENUATION mode (dB)."""
        low, high = VOA_ATTENUATION_RANGE_DB
        return float(low), float(high)

    def hold_attenuation(self, attenuation_db: float) -> None:
        """Hold ``attenuation_db`` (dB): ATTENUATION mode, the setpoint, the control loop on."""
        in_range(attenuation_db, VOA_ATTENUATION_RANGE_DB)
        self.mode = VoaMode.ATTENUATION
        self.attenuation_setpoint = float(attenuation_db)
        self.enabled = True

    def release(self) -> None:
        """Stop attenuating: control loop off, 0 V on the VOA, minimum loss."""
        self.enabled = False


class ThorlabsMBXLighting(_MBXChannelIO, ThorlabsMBXSeriesRGB):
    """Under-chassis accent lighting of the MBX (pymeasure's channel, with labctl's I/O)."""

    safety_members = {"mode": SET, "red": SET, "green": SET, "blue": SET, "white": SET, "rgb": SET}


class ThorlabsMBX(_LockedIO, ThorlabsMBXSeries):
    """Thorlabs MBX modulator bias controller, satisfying the ``BiasController`` role.

    .. code-block:: python

        mbx = ThorlabsMBX("ASRL1::INSTR")
        mbx.bias_voltage = 2.5          # V, MANUAL mode
        mbx.lock_quadrature()           # AUTOQUADPOS
        mbx.read_output_power()         # W at the tap
    """

    #: The MBX has no SYSTem:ERRor? queue; errors come back in place of the reply.
    error_query = None

    safety_members = {
        "mzm": CHILD, "voa": CHILD, "rgb": CHILD, "attenuator": CHILD,
        "bias_voltage": Limited("bias_voltage", "V"), "measure_bias_voltage": READ, "read_output_power": READ,
        "lock_quadrature": Reaches("bias_voltage", "V", BIAS_RANGE_V),
        "lock_to": Reaches("bias_voltage", "V", BIAS_RANGE_V), "is_locked": READ,
    }
    #: The manual-mode bias setpoint (sent in mV); a mode other than MANUAL or a calibration (``MZM:RESet``)
    #: lets the controller choose the bias anywhere in its range (guide section 2.4).
    limited_commands = (
        LimitedCommand("MZM:HOLD:VOLTage", "bias_voltage", unit="mV"),
        LimitedCommand("MZM:MODE", "bias_voltage", unit="V", span=BIAS_RANGE_V,
                       unless=(str(int(MzmMode.MANUAL)),)),
        LimitedCommand("MZM:RESet", "bias_voltage", unit="V", span=BIAS_RANGE_V),
    )
    _last_command: str | None = None

    mzm = Instrument.ChannelCreator(ThorlabsMBXModulator, "mzm")
    voa = Instrument.ChannelCreator(ThorlabsMBXAttenuator, "voa")
    rgb = Instrument.ChannelCreator(ThorlabsMBXLighting, "rgb")

    @property
    def attenuator(self) -> ThorlabsMBXAttenuator:
        """Get the VOA behind the modulator (the ``VariableAttenuator`` role)."""
        return self.voa

    def __init__(self, adapter, name="Thorlabs MBX modulator bias controller", **kwargs):
        self.lock = threading.RLock()
        self._last_ack = None
        super().__init__(adapter, name=name, **kwargs)

    def _resource_lock(self):
        return self.lock

    # -- I/O: every command is acknowledged with "1" or "Err: ..." -------------------------------

    def write(self, command, **kwargs):
        """Send ``command``; for a non-query, read its acknowledgement and raise on ``Err:``."""
        with self.lock:
            super().write(command, **kwargs)
            if not _is_query(command):
                self._last_ack = self.read()

    def read(self, **kwargs):
        """Read one reply; an ``Err: ...`` reply raises :class:`InstrumentError`."""
        reply = super().read(**kwargs)
        error = parse_error_reply(reply)
        if error is not None:
            raise InstrumentError(self.name, self._last_command, [error])
        return reply

    def ask(self, command, query_delay=None):
        """Query ``command``; for a non-query command return its acknowledgement (``"1"``)."""
        if _is_query(command):
            return super().ask(command, query_delay)
        with self.lock:
            self.write(command)
            return self._last_ack

    def check_errors(self):
        """Return [] : the MBX reports errors in the reply itself, already checked by write/read."""
        return []

    def drain_errors(self):
        """Return [] : the MBX keeps no error queue that could hold stale entries."""
        return []

    def check_set_errors(self):
        """Return [] : the acknowledgement of a setting is checked when it is written."""
        return []

    def check_get_errors(self):
        """Return [] : an ``Err:`` reply to a query raises when it is read."""
        return []

    # -- BiasController role (SI units) ----------------------------------------------------------

    @property
    def bias_voltage(self) -> float:
        """Control the bias voltage held in MANUAL mode, in V (-10..10); setting it selects MANUAL.

        The hold voltage is sent before the mode, so the output never visits a stale setpoint.
        """
        return self.mzm.voltage_setpoint

    @bias_voltage.setter
    def bias_voltage(self, volts: float) -> None:
        in_range(volts, BIAS_RANGE_V)
        with self.lock:
            self.mzm.voltage_setpoint = volts
            self.mzm.mode = MzmMode.MANUAL

    def measure_bias_voltage(self) -> float:
        """Measure the bias voltage applied to the modulator, in V."""
        return float(self.mzm.voltage)

    def read_output_power(self) -> float:
        """Measure the modulator output power at the controller's tap (in-line power), in W."""
        return float(self.mzm.power) * 1e-3

    def lock_quadrature(self, positive: bool = True) -> None:
        """Lock the bias to quadrature on the rising (``positive``) or falling slope."""
        self.mzm.mode = MzmMode.AUTOQUADPOS if positive else MzmMode.AUTOQUADNEG

    def lock_to(self, point: LockMode) -> None:
        """Lock the bias to a point of the transfer curve (:class:`LockMode`)."""
        in_set(point, list(LockMode))
        self.mzm.mode = MzmMode(int(point))

    @property
    def is_locked(self) -> bool:
        """Get whether the bias controller reports its setpoint reached (bool)."""
        return self.mzm.is_stable

    def shutdown(self) -> None:
        """Put the bias output in its safe state: 0 V held in MANUAL mode."""
        with self.lock:
            self.mzm.voltage_setpoint = 0.0
            self.mzm.mode = MzmMode.MANUAL
