"""Thorlabs PM100D / PM100USB optical power meter console with a photodiode head (e.g. S155C).

Adapts pymeasure's :class:`pymeasure.instruments.thorlabs.ThorlabsPM100USB` to labctl: the resource
lock and raising error checks of :mod:`drivers.base`, strict validators, and the
``OpticalPowerMeter`` role in SI units.

Command reference: *Thorlabs PM100D Optical Power and Energy Meter Operation Manual*, section 6.4
"PM100D SCPI Commands" (the PM100USB operation manual, chapter 7 "Computer Interface", documents the
same command set):

* ``[SENSe:]CORRection:WAVelength {MINimum|MAXimum|<numeric_value>[nm]}`` and
  ``:WAVelength? [{MINimum|MAXimum}]`` (operation wavelength, **nm**);
* ``[SENSe:]AVERage[:COUNt] {MINimum|MAXimum|<numeric_value>}`` - the averaging rate, a number of
  samples, "1 sample takes approx. 3 ms";
* ``[SENSe:]POWer[:DC]:RANGe:AUTO {ON|OFF}``, ``[SENSe:]POWer[:DC]:RANGe[:UPPer] <value>[W]``,
  ``[SENSe:]POWer[:DC]:UNIT {W|DBM}``;
* ``MEASure[:SCALar]:POWer?`` (reply in the unit of ``POWer:UNIT``) and ``SYSTem:SENSor:IDN?``
  (``<name>,<sn>,<cal_msg>,<type>,<subtype>,<flags>``).

**Averaging.** The PM100 averages a *count* of samples, not a time. :attr:`ThorlabsPM100.
averaging_time` maps a time to ``count = round(t / SAMPLE_TIME_S)`` with ``SAMPLE_TIME_S = 3e-3``
(the manual's "approx. 3 ms" per sample), and reads back ``count * SAMPLE_TIME_S``. The mapping is
approximate by nature; set :attr:`ThorlabsPM100.sample_time` on an instance to recalibrate it.

**Differences from the pymeasure class.** Nothing is sent at construction (pymeasure's
``__init__`` queries the head; here call :meth:`ThorlabsPM100.identify_sensor` when needed, which
also narrows the wavelength validator to the head's range), ``wavelength`` is in m (the role's unit;
``wavelength_nm`` is the device unit), and ``power`` does not need the head flags.

Validator ranges (defaults; the head decides): operation wavelength 800 nm .. 1700 nm (S155C
InGaAs head, Thorlabs spec sheet), averaging count 1 .. 10000 (assumed console limit; the console
reports its own with ``SENS:AVER:COUN? MAX``).
"""

from __future__ import annotations

import math
import threading

from pymeasure.instruments import Instrument, SCPIMixin
from pymeasure.instruments.thorlabs import ThorlabsPM100USB
from drivers.base import LabInstrument, in_integer_range, in_range, in_set
from drivers.errors import ValueOutOfRange
from drivers.limits import READ, SET
from drivers.units import to_si

#: Operation wavelength range of the default head (S155C, InGaAs), in nm.
WAVELENGTH_RANGE_NM = (800.0, 1700.0)
#: Averaging count range.
AVERAGING_COUNT_RANGE = (1, 10000)
#: Duration of one averaged sample, in s (manual: "1 sample takes approx. 3 ms").
SAMPLE_TIME_S = 3e-3


class ThorlabsPM100(LabInstrument, ThorlabsPM100USB):
    """Thorlabs PM100D/PM100USB console with one photodiode head; satisfies ``OpticalPowerMeter``."""

    #: Duration of one averaged sample, in s (used by :attr:`averaging_time`).
    sample_time = SAMPLE_TIME_S

    # A receiver: no setting of it drives a source.
    safety_members = {
        **dict.fromkeys(("wavelength", "wavelength_nm", "averaging_time", "averaging_count", "auto_range",
                         "range_w", "power_unit", "identify_sensor"), SET),
        **dict.fromkeys(("power", "read_power", "energy", "wavelength_min", "wavelength_max", "sample_time"), READ),
    }

    def __init__(self, adapter, name="Thorlabs PM100", **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        self.lock = threading.RLock()
        # Skip ThorlabsPM100USB.__init__ (it queries the head at construction) and
        # SCPIUnknownMixin.__init__ (a FutureWarning; the PM100 does speak SCPI): go straight to
        # SCPIMixin, which continues with Instrument.__init__.
        SCPIMixin.__init__(self, adapter, name, **kwargs)

    # --- settings ------------------------------------------------------------------------------

    wavelength_nm = Instrument.control(
        "SENS:CORR:WAV?",
        "SENS:CORR:WAV %.3f",
        """Control the operation (calibration) wavelength, in nm (float strictly from 800 to 1700
        for the default head; :meth:`identify_sensor` sets the connected head's range).""",
        validator=in_range,
        values=WAVELENGTH_RANGE_NM,
        check_set_errors=True,
        dynamic=True,
    )

    averaging_count = Instrument.control(
        "SENS:AVER:COUN?",
        "SENS:AVER:COUN %d",
        """Control the number of samples averaged per reading, ~3 ms each (int strictly from 1 to
        10000).""",
        validator=in_integer_range,
        values=AVERAGING_COUNT_RANGE,
        cast=int,
        check_set_errors=True,
        dynamic=True,
    )

    auto_range = Instrument.control(
        "SENS:POW:RANG:AUTO?",
        "SENS:POW:RANG:AUTO %d",
        """Control whether the console selects its power range automatically (bool).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    range_w = Instrument.control(
        "SENS:POW:RANG?",
        "SENS:POW:RANG %.6E",
        """Control the manual power range (upper limit), in W; setting it turns auto ranging off
        and the console rounds up to its next range (float strictly from 1e-9 to 1).""",
        validator=in_range,
        values=(1e-9, 1.0),
        check_set_errors=True,
        dynamic=True,
    )

    power_unit = Instrument.control(
        "SENS:POW:UNIT?",
        "SENS:POW:UNIT %s",
        """Control the unit of power readings (str strictly 'W' or 'DBM').""",
        validator=in_set,
        values=("W", "DBM"),
        cast=str,
        get_process=lambda reply: reply.strip().upper(),
        check_set_errors=True,
    )

    power = Instrument.measurement(
        "MEAS:POW?",
        """Measure the optical power, in the unit of :attr:`power_unit` (float, W by default).""",
    )

    # --- head ----------------------------------------------------------------------------------

    def identify_sensor(self) -> str:
        """Read the head's identity and flags and narrow the wavelength validator to its range.

        Returns the head name (e.g. ``'S155C'``); raises ``OSError`` if no head is connected.
        """
        self._set_flags()
        if self.wavelength_settable:
            self.wavelength_nm_values = (self.wavelength_min, self.wavelength_max)
        return self.sensor_name

    # --- role interface (SI) -------------------------------------------------------------------

    @property
    def wavelength(self) -> float:
        """Control the operation (calibration) wavelength, in m (float, head range, default
        800e-9 to 1700e-9); sent in nm."""
        return self.wavelength_nm / 1e9

    @wavelength.setter
    def wavelength(self, metres: float) -> None:
        self.wavelength_nm = metres * 1e9

    @property
    def averaging_time(self) -> float:
        """Control the averaging time per reading, in s, as ``averaging_count * sample_time``
        (float strictly from 1 to 10000 samples of ~3 ms)."""
        return self.averaging_count * self.sample_time

    @averaging_time.setter
    def averaging_time(self, seconds: float) -> None:
        low, high = (n * self.sample_time for n in AVERAGING_COUNT_RANGE)
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)) or not low <= seconds <= high:
            raise ValueOutOfRange(
                f"averaging time {seconds!r} s is outside [{low:g}, {high:g}] s "
                f"({AVERAGING_COUNT_RANGE[0]}..{AVERAGING_COUNT_RANGE[1]} samples of {self.sample_time:g} s)")
        self.averaging_count = max(1, round(seconds / self.sample_time))

    def read_power(self) -> float:
        """Trigger one measurement and return the optical power, in W.

        Asks the power unit first so the reading converts correctly whatever the display shows.
        """
        unit = self.power_unit
        reading = self.power
        return to_si(reading, "dBm" if unit == "DBM" else "W")
