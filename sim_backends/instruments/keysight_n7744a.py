"""Simulated Keysight N7744A / N7745A multiport optical power meter (4 or 8 InGaAs ports).

SCPI as in the *Keysight N77xx Series Programming Guide* (power-meter commands shared with the
*8163A/B, 8164A/B & 8166A/B Mainframes Programming Guide*, chapter 4; same forms in the *Keysight
N774xC Series Multiport Power Meter Programming Guide*). Port ``k`` is slot ``n = k`` with the single
channel ``m = 1``:

* ``:READ[n][:CHANnel[m]][:SCALar]:POWer[:DC]?``, ``:FETCh[n]...:POWer[:DC]?``,
  ``:INITiate[n][:CHANnel[m]][:IMMediate]``, ``:INITiate[n][:CHANnel[m]]:CONTinuous``;
* ``:SENSe[n][:CHANnel[m]]:POWer:WAVelength|UNIT|ATIMe|RANGe[:UPPer]|RANGe:AUTO`` (and queries,
  with ``MIN|MAX|DEF`` for the numeric ones);
* ``:SENSe[n][:CHANnel[m]]:FUNCtion:PARameter:LOGGing``, ``:FUNCtion:STATe``,
  ``:FUNCtion:RESult?`` (a definite-length block of little-endian float32 values in W).

Replies look like the instrument's: ``+1.23456000E-003``, ``+0``/``+1`` for the unit,
``LOGGING_STABILITY,COMPLETE`` for the function state.

Physics (per reading on port ``k`` with averaging time ``tau``):

* mean power ``P = world.average_power_into(name, "in<k>", tau)`` (advances the clock by ``tau``);
* wavelength calibration: the meter divides the photocurrent by the responsivity at its *set*
  wavelength. With a constant quantum efficiency, R(lambda) ~ lambda, so a carrier at ``lambda_c``
  reads ``P_c * lambda_c / lambda_set`` (e.g. 1550 nm light with the meter set to 1310 nm reads
  18 % high). Carriers outside the InGaAs band (``detector_band_m``) are not detected;
* range: auto ranging picks the lowest range whose maximum displayable power (range + 3 dB, but
  +10 dBm for the +10 dBm range, as the N774xC user's guide defines "dynamic range") holds ``P``;
* noise: Gaussian, ``sigma = noise_1s_w * sqrt(1 s / tau) * 10^((range - lowest range) / 10)``,
  i.e. the dark noise at 1 s on the most sensitive range, shrinking as 1/sqrt(averaging time) and
  scaling with the range's full scale. A dark input therefore reads ~0 W (+/- sigma);
* over range: a reading above the range's maximum answers the marker ``+3.40282347E+038`` and
  queues ``-231 "Data questionable"``; logged samples above the (fixed) range are the same marker
  (no error queued);
* unit dBm: a reading <= 0 W (noise on a dark port) is answered as -200 dBm.

Logging runs in simulated time: ``FUNC:STAT LOGG,STAR`` acquires all points at once (advancing the
clock by points x averaging time) and the function state is ``COMPLETE`` immediately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.units import dbm_to_w, w_to_dbm
from sim_backends.physics.validation import require_non_negative
from sim_backends.scpi import Call, CommandTree, ScpiError, definite_block, format_number
from sim_backends.world import OPTICAL_IN, Lightwave

#: The largest float32: what the meter answers for a reading above its range.
OVER_RANGE_VALUE = float(np.finfo(np.float32).max)
#: Manual ranges, in dBm.
RANGES_DBM = (-30, -20, -10, 0, 10)
#: Settable averaging time, in s (data sheet: 1 us .. 10 s).
ATIME_RANGE = (1e-6, 10.0)
#: Logging buffer, samples per port (data sheet: 1 M samples).
MAX_LOG_POINTS = 1_000_000

DEFAULT_PARAMS = {
    # Number of ports: 4 (N7744A) or 8 (N7745A).
    "ports": 4,
    # Dark noise (1 sigma) of one reading with 1 s averaging on the lowest (-30 dBm) range, in W.
    # Chosen so that the peak-to-peak dark noise (~6 sigma) is ~20 pW, consistent with the
    # -80 dBm (10 pW) lower end of the N7744A data-sheet power range (+10 .. -80 dBm, dagger).
    "noise_1s_w": 3e-12,
    # Settable calibration wavelength range, in m (N7744A data sheet: 1250 .. 1650 nm).
    "wavelength_range_m": (1250e-9, 1650e-9),
    # Spectral band in which the InGaAs photodiodes respond, in m (typical InGaAs 800 .. 1700 nm).
    "detector_band_m": (800e-9, 1700e-9),
}


#: Numbers the way the instrument answers: ``+1.23456000E-003``.
nr3 = partial(format_number, digits=8, sign=True, exponent_digits=3)


@dataclass
class _Port:
    wavelength: float = 1550e-9
    unit: int = 0  # 0 dBm, 1 W
    atime: float = 100e-3
    range_dbm: int = 0
    auto_range: bool = True
    continuous: bool = True
    last_w: float | None = None  # last reading in W (OVER_RANGE_VALUE if over range)
    log_points: int = 100
    log_atime: float = 100e-6
    function: str = "NONE"
    result: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<f4"))


def _range_max_w(range_dbm: int) -> float:
    """Largest displayable power of a range, in W: range + 3 dB, except the top range."""
    top = range_dbm + (0 if range_dbm == RANGES_DBM[-1] else 3)
    return dbm_to_w(top)


class SimKeysightN7744A(SimInstrument):
    """Keysight N7744A (4 ports) / N7745A (``params: {ports: 8}``) multiport power meter."""

    MODEL = "keysight.N7744A"
    TERMINATION = b"\n"
    PORTS = {f"in{k}": OPTICAL_IN for k in range(1, 5)}
    #: Electrical draw (W): a meter with no source inside draws a constant ``idle_power_w``, by default
    #: this model's entry in ``sim_backends.datasheets`` (assumed; the reasoning is there).
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, 1e4)}
    PARAMS = frozenset(DEFAULT_PARAMS) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        merged = dict(DEFAULT_PARAMS)
        unknown = set(params or {}) - set(DEFAULT_PARAMS) - set(self.POWER)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_PARAMS)}")
        merged.update({k: v for k, v in (params or {}).items() if k not in self.POWER})
        self.port_count = int(merged["ports"])
        if self.port_count not in (4, 8) or merged["ports"] != self.port_count:
            raise ValueError(f"ports={merged['ports']!r} must be 4 (N7744A) or 8 (N7745A)")
        self.noise_1s_w = require_non_negative("noise_1s_w", merged["noise_1s_w"], 1e-6, "W")
        self.wavelength_range = self._pair("wavelength_range_m", merged["wavelength_range_m"], 400e-9, 2000e-9)
        self.detector_band = self._pair("detector_band_m", merged["detector_band_m"], 200e-9, 3000e-9)
        super().__init__(name, world, {**merged, **{k: v for k, v in (params or {}).items() if k in self.POWER}}, serial)

    @staticmethod
    def _pair(name, value, low, high):
        try:
            a, b = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r} must be a pair (low, high) in m") from None
        if not low <= a < b <= high:
            raise ValueError(f"{name}={value!r} is outside the physical range [{low}, {high}] m")
        return a, b

    @property
    def IDN(self):  # noqa: N802 - the base class's name
        model = "N7744A" if self.port_count == 4 else "N7745A"
        return ("Keysight Technologies", model, "V2.58")

    def ports(self):
        return {f"in{k}": OPTICAL_IN for k in range(1, self.port_count + 1)}

    # --- command table ---------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        base = ":SENSe#[:CHANnel#]"
        tree.add(":READ#[:CHANnel#][:SCALar]:POWer[:DC]", getter=self._read)
        tree.add(":FETCh#[:CHANnel#][:SCALar]:POWer[:DC]", getter=self._fetch)
        tree.add(":INITiate#[:CHANnel#][:IMMediate]", setter=self._initiate)
        tree.add(":INITiate#[:CHANnel#]:CONTinuous", setter=self._set_continuous, getter=self._get_continuous)
        tree.add(base + ":POWer:WAVelength", setter=self._set_wavelength, getter=self._get_wavelength)
        tree.add(base + ":POWer:UNIT", setter=self._set_unit, getter=self._get_unit)
        tree.add(base + ":POWer:ATIMe", setter=self._set_atime, getter=self._get_atime)
        tree.add(base + ":POWer:RANGe:AUTO", setter=self._set_auto, getter=self._get_auto)
        tree.add(base + ":POWer:RANGe[:UPPer]", setter=self._set_range, getter=self._get_range)
        tree.add(base + ":FUNCtion:PARameter:LOGGing", setter=self._set_logging, getter=self._get_logging)
        tree.add(base + ":FUNCtion:STATe", setter=self._set_function, getter=self._get_function)
        tree.add(base + ":FUNCtion:RESult", getter=self._get_result)

    def reset(self) -> None:
        self.port_state = [_Port() for _ in range(self.port_count)]

    def _port(self, call: Call) -> _Port:
        slot = call.suffix(0, 1, self.port_count)
        if len(call.suffixes) > 1:
            call.suffix(1, 1, 1)  # one channel per slot
        return self.port_state[slot - 1]

    def _slot(self, call: Call) -> int:
        return call.suffix(0, 1, self.port_count)

    # --- physics -----------------------------------------------------------------------------

    def _weight(self, wavelength: float, setting: float) -> float:
        low, high = self.detector_band
        return wavelength / setting if low <= wavelength <= high else 0.0

    def _spectral_factor(self, light: list[Lightwave], setting: float) -> float:
        """Power-weighted responsivity ratio of the carriers now at the input."""
        if not light:
            return 1.0
        powers = np.array([float(np.mean(c.power)) for c in light])
        weights = np.array([self._weight(c.wavelength, setting) for c in light])
        if powers.sum() > 0:
            return float((powers * weights).sum() / powers.sum())
        return float(weights.mean())

    def _auto_range(self, power_w: float) -> int:
        for r in RANGES_DBM:
            if power_w <= _range_max_w(r):
                return r
        return RANGES_DBM[-1]

    def _sigma(self, atime: float, range_dbm: int) -> float:
        return self.noise_1s_w * math.sqrt(1.0 / atime) * 10 ** ((range_dbm - RANGES_DBM[0]) / 10)

    def _measure(self, slot: int) -> float:
        """Take one reading on ``slot``: returns W, or OVER_RANGE_VALUE (and queues -231)."""
        port = self.port_state[slot - 1]
        name = f"in{slot}"
        now = np.array([self.world.time])
        factor = self._spectral_factor(self.world.light_into(self.name, name, now), port.wavelength)
        power = self.world.average_power_into(self.name, name, port.atime) * factor
        if port.auto_range:
            port.range_dbm = self._auto_range(power)
        reading = power + self._sigma(port.atime, port.range_dbm) * self.world.rng.standard_normal()
        if reading > _range_max_w(port.range_dbm):
            port.last_w = OVER_RANGE_VALUE
            self.push_error(ScpiError(-231, f"port {slot} input above the {port.range_dbm:+d} dBm range"))
        else:
            port.last_w = reading
        return port.last_w

    def _format_power(self, port: _Port, watt: float) -> str:
        if watt >= OVER_RANGE_VALUE or port.unit == 1:
            return nr3(watt)
        return nr3(w_to_dbm(watt)) if watt > 0 else nr3(-200.0)

    def _log(self, slot: int) -> np.ndarray:
        """Acquire the logging function's samples on ``slot`` (W, float32), advancing the clock."""
        port = self.port_state[slot - 1]
        points, atime = port.log_points, port.log_atime
        name = f"in{slot}"
        start = self.world.time
        period = self.world.modulation_period()
        if period and atime >= period:
            # every window holds whole periods: each sample is the period average
            light_now = self.world.light_into(self.name, name, np.array([start]))
            factor = self._spectral_factor(light_now, port.wavelength)
            mean = self.world.average_power_into(self.name, name, 0.0) * factor
            powers = np.full(points, mean)
        else:
            per_window = 1 if not period else max(1, min(16, (1 << 22) // points))
            offsets = (np.arange(per_window) + 0.5) / per_window
            t = start + ((np.arange(points)[:, None] + offsets[None, :]) * atime).ravel()
            detected = np.zeros(t.shape)
            for carrier in self.world.light_into(self.name, name, t):
                detected = detected + carrier.power * self._weight(carrier.wavelength, port.wavelength)
            powers = np.broadcast_to(detected, t.shape).reshape(points, per_window).mean(axis=1)
        self.world.advance_to(start + points * atime)
        if port.auto_range:  # the range is fixed during logging: auto ranging sees the mean power
            port.range_dbm = self._auto_range(float(powers.mean()))
        samples = powers + self._sigma(atime, port.range_dbm) * self.world.rng.standard_normal(points)
        samples = np.where(samples > _range_max_w(port.range_dbm), OVER_RANGE_VALUE, samples)
        return samples.astype("<f4")

    # --- handlers: measurement -----------------------------------------------------------------

    def _read(self, call: Call) -> str:
        call.expect(0)
        port = self._port(call)
        return self._format_power(port, self._measure(self._slot(call)))

    def _fetch(self, call: Call) -> str:
        call.expect(0)
        port = self._port(call)
        if port.continuous:
            return self._format_power(port, self._measure(self._slot(call)))
        if port.last_w is None:
            raise ScpiError(-230, "no reading since the last trigger")
        return self._format_power(port, port.last_w)

    def _initiate(self, call: Call) -> None:
        call.expect(0)
        port = self._port(call)
        if port.continuous:
            raise ScpiError(-213, "continuous measurement is on")
        self._measure(self._slot(call))

    def _set_continuous(self, call: Call) -> None:
        call.expect(1)
        self._port(call).continuous = call.param(0).boolean()

    def _get_continuous(self, call: Call) -> str:
        call.expect(0)
        return "1" if self._port(call).continuous else "0"

    # --- handlers: settings --------------------------------------------------------------------

    def _numeric_query(self, call: Call, current: float, low: float, high: float, default: float) -> str:
        call.expect(0, 1)
        if call.params:
            word = call.param(0).choice(["MINimum", "MAXimum", "DEFault"])
            current = {"MINIMUM": low, "MAXIMUM": high, "DEFAULT": default}[word]
        return nr3(current)

    def _set_wavelength(self, call: Call) -> None:
        call.expect(1)
        port = self._port(call)
        low, high = self.wavelength_range
        port.wavelength = call.param(0).number("M", low, high, 1550e-9)

    def _get_wavelength(self, call: Call) -> str:
        low, high = self.wavelength_range
        return self._numeric_query(call, self._port(call).wavelength, low, high, 1550e-9)

    def _set_unit(self, call: Call) -> None:
        call.expect(1)
        port = self._port(call)
        word = call.param(0).upper
        if word in ("0", "1"):
            port.unit = int(word)
        else:
            port.unit = 0 if call.param(0).choice(["DBM", "Watt"]) == "DBM" else 1

    def _get_unit(self, call: Call) -> str:
        call.expect(0)
        return f"+{self._port(call).unit}"

    def _set_atime(self, call: Call) -> None:
        call.expect(1)
        self._port(call).atime = call.param(0).number("S", *ATIME_RANGE, 100e-3)

    def _get_atime(self, call: Call) -> str:
        return self._numeric_query(call, self._port(call).atime, *ATIME_RANGE, 100e-3)

    def _set_range(self, call: Call) -> None:
        call.expect(1)
        port = self._port(call)
        value = call.param(0).number("DBM", RANGES_DBM[0], RANGES_DBM[-1], 0.0)
        port.range_dbm = int(10 * round(value / 10))
        port.auto_range = False

    def _get_range(self, call: Call) -> str:
        return self._numeric_query(call, self._port(call).range_dbm, RANGES_DBM[0], RANGES_DBM[-1], 0)

    def _set_auto(self, call: Call) -> None:
        call.expect(1)
        self._port(call).auto_range = call.param(0).boolean()

    def _get_auto(self, call: Call) -> str:
        call.expect(0)
        return "1" if self._port(call).auto_range else "0"

    # --- handlers: logging ---------------------------------------------------------------------

    def _set_logging(self, call: Call) -> None:
        call.expect(2)
        port = self._port(call)
        points = call.param(0).integer(1, MAX_LOG_POINTS, 100)
        atime = call.param(1).number("S", *ATIME_RANGE, 100e-6)
        port.log_points, port.log_atime = points, atime

    def _get_logging(self, call: Call) -> str:
        call.expect(0)
        port = self._port(call)
        return f"{port.log_points:+d},{nr3(port.log_atime)}"

    def _set_function(self, call: Call) -> None:
        call.expect(2)
        port = self._port(call)
        function = call.param(0).choice(["LOGGing", "STABility", "MINMax"])
        action = call.param(1).choice(["STARt", "STOP"])
        if function != "LOGGING":
            raise ScpiError(-224, f"{function} is not simulated; use LOGGing")
        if action == "STOP":
            port.function = "NONE"
            return
        port.result = self._log(self._slot(call))
        port.function = "LOGGING_STABILITY"

    def _get_function(self, call: Call) -> str:
        call.expect(0)
        return f"{self._port(call).function},COMPLETE"

    def _get_result(self, call: Call) -> bytes:
        call.expect(0)
        return definite_block(self._port(call).result.astype("<f4").tobytes())

    # --- introspection -------------------------------------------------------------------------

    def state(self):
        return {
            "ports": self.port_count,
            "port_state": [
                {"wavelength": p.wavelength, "unit": p.unit, "atime": p.atime, "range_dbm": p.range_dbm,
                 "auto_range": p.auto_range, "continuous": p.continuous, "function": p.function}
                for p in self.port_state
            ],
        }



class SimKeysightN7745A(SimKeysightN7744A):
    """Keysight N7745A: the 8-port member of the family (same commands)."""

    MODEL = "keysight.N7745A"

    def __init__(self, name, world, params=None, serial=""):
        super().__init__(name, world, {"ports": 8, **(params or {})}, serial)
