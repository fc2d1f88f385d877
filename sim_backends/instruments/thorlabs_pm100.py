"""Simulated Thorlabs PM100D / PM100USB console with an S155C-class InGaAs photodiode head.

SCPI as in the *Thorlabs PM100D Optical Power and Energy Meter Operation Manual*, section 6.4
"PM100D SCPI Commands" (same command set in the PM100USB operation manual, chapter 7):

* ``SYSTem:SENSor:IDN?`` -> ``<name>,<sn>,<cal_msg>,<type>,<subtype>,<flags>``;
* ``[SENSe:]CORRection:WAVelength {MIN|MAX|<nm>}`` and ``:WAVelength? [MIN|MAX]`` (nm);
* ``[SENSe:]CORRection:POWer[:PDIOde][:RESPonse]?`` (responsivity at the set wavelength, A/W);
* ``[SENSe:]AVERage[:COUNt] {MIN|MAX|<n>}`` ("1 sample takes approx. 3 ms") and its query;
* ``[SENSe:]POWer[:DC]:RANGe:AUTO``, ``[SENSe:]POWer[:DC]:RANGe[:UPPer]``, ``[SENSe:]POWer[:DC]:UNIT``;
* ``MEASure[:SCALar]:POWer?``, ``CONFigure[:SCALar]:POWer``, ``INITiate[:IMMediate]``, ``FETCh?``,
  ``READ?``, ``ABORt``.

Physics of one reading (``count`` samples of ``sample_time_s``, ``tau = count * sample_time_s``):

* mean power ``P = world.average_power_into(name, "in", tau)`` (advances the clock by ``tau``);
* wavelength calibration as for every photodiode meter: R(lambda) ~ lambda at constant quantum
  efficiency, so a carrier at ``lambda_c`` reads ``P_c * lambda_c / lambda_set``; carriers outside
  the head's band (its settable wavelength range) are not detected;
* noise: Gaussian with ``sigma = noise_w / sqrt(count)`` (``noise_w`` = one sample's noise, the
  S155C's 1 nW resolution, dagger), so a dark head reads ~0 W;
* saturation: the reading cannot exceed the selected range (decades below ``max_power_w``; auto
  ranging picks the smallest that holds ``P``), so above ``max_power_w`` it is clipped there;
* unit DBM: a reading <= 0 W (noise on a dark head) is answered as -200 dBm.
"""

from __future__ import annotations

import math
import re
from functools import partial

import numpy as np

from sim_backends.datasheets import USB2_BUS_POWER_W, datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.units import w_to_dbm
from sim_backends.physics.validation import require_range
from sim_backends.scpi import Call, CommandTree, ScpiError, format_number
from sim_backends.world import OPTICAL_IN, Lightwave

H_C_OVER_Q = 1.23984198e-6  # h c / q, in W m / A: R = eta * lambda / 1.2398e-6 m

DEFAULT_PARAMS = {
    # Head (S155C, Thorlabs spec sheet, dagger): InGaAs, 800 .. 1700 nm, up to 20 mW.
    "sensor": "S155C",
    "wavelength_range_nm": (800.0, 1700.0),
    "max_power_w": 20e-3,
    # One sample's noise (1 sigma), in W: the S155C's 1 nW resolution (dagger).
    "noise_w": 1e-9,
    # Duration of one sample, in s (manual: "1 sample takes approx. 3 ms").
    "sample_time_s": 3e-3,
    # Quantum efficiency used for the reported responsivity (0.8 -> ~1.0 A/W at 1550 nm).
    "quantum_efficiency": 0.8,
}
#: Largest averaging count (a simulator limit: it allocates nothing, but bounds one reading to 30 s of
#: simulated time at the 3 ms sample time).
MAX_COUNT = 10000
RANGE_DECADES = 7  # max_power_w, /10, ..., /1e6
_WITH_UNIT = re.compile(r"^[+-]?(\d+(?:\.\d*)?|\.\d+)(E[+-]?\d+)?[A-Z]+$")  # linear time on long digit runs


#: Numbers the way the PM100 answers: ``1.23456789E-03``.
_number = partial(format_number, digits=8)


class SimThorlabsPM100(SimInstrument):
    """Thorlabs PM100D/PM100USB console with one photodiode head on optical input ``in``."""

    MODEL = "thorlabs.PM100"
    IDN = ("Thorlabs", "PM100USB", "1.7.0")
    TERMINATION = b"\n"
    PORTS = {"in": OPTICAL_IN}
    #: Electrical draw (W): the PM100USB is powered from its USB port, so it draws at most the USB 2.0
    #: bus budget; by default this model's entry in ``sim_backends.datasheets`` (assumed).
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, USB2_BUS_POWER_W)}
    PARAMS = frozenset(DEFAULT_PARAMS) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        unknown = set(params or {}) - set(DEFAULT_PARAMS) - set(self.POWER)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_PARAMS)}")
        p = {**DEFAULT_PARAMS, **{k: v for k, v in (params or {}).items() if k not in self.POWER}}
        self.sensor = str(p["sensor"])
        try:
            low, high = (float(v) for v in p["wavelength_range_nm"])
        except (TypeError, ValueError):
            raise ValueError(f"wavelength_range_nm={p['wavelength_range_nm']!r} must be a pair (low, high) in nm") from None
        if not 150.0 <= low < high <= 25000.0:
            raise ValueError(f"wavelength_range_nm={p['wavelength_range_nm']!r} is outside the physical range [150, 25000] nm")
        self.wavelength_range_nm = (low, high)
        self.max_power_w = require_range("max_power_w", p["max_power_w"], 1e-6, 250.0)
        self.noise_w = require_range("noise_w", p["noise_w"], 0.0, 1e-3)
        self.sample_time_s = require_range("sample_time_s", p["sample_time_s"], 1e-6, 1.0)
        self.quantum_efficiency = require_range("quantum_efficiency", p["quantum_efficiency"], 0.01, 1.0)
        super().__init__(name, world, {**p, **{k: v for k, v in (params or {}).items() if k in self.POWER}}, serial)


    # --- command table ---------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        tree.add("SYSTem:SENSor:IDN", getter=self._sensor_idn)
        tree.add("[SENSe]:CORRection:WAVelength", setter=self._set_wavelength, getter=self._get_wavelength)
        tree.add("[SENSe]:CORRection:POWer[:PDIOde][:RESPonse]", getter=self._get_response)
        tree.add("[SENSe]:AVERage[:COUNt]", setter=self._set_count, getter=self._get_count)
        tree.add("[SENSe]:POWer[:DC]:RANGe:AUTO", setter=self._set_auto, getter=self._get_auto)
        tree.add("[SENSe]:POWer[:DC]:RANGe[:UPPer]", setter=self._set_range, getter=self._get_range)
        tree.add("[SENSe]:POWer[:DC]:UNIT", setter=self._set_unit, getter=self._get_unit)
        tree.add("MEASure[:SCALar]:POWer", getter=self._meas_power)
        tree.add("CONFigure[:SCALar]:POWer", setter=self._configure)
        tree.add("INITiate[:IMMediate]", setter=self._initiate)
        tree.add("ABORt", setter=self._abort)
        tree.add("FETCh", getter=self._fetch)
        tree.add("READ", getter=self._read)

    def reset(self) -> None:
        self.wavelength_nm = 1550.0 if self.wavelength_range_nm[0] <= 1550.0 <= self.wavelength_range_nm[1] \
            else self.wavelength_range_nm[0]
        self.count = 1
        self.auto_range = True
        self.range_w = self.max_power_w
        self.unit = "W"
        self.last_w: float | None = None
        self.configured = False

    # --- physics -------------------------------------------------------------------------------

    def _ranges(self) -> list[float]:
        return [self.max_power_w / 10 ** k for k in range(RANGE_DECADES)][::-1]  # ascending

    def _weight(self, wavelength_m: float) -> float:
        low, high = self.wavelength_range_nm
        return wavelength_m / (self.wavelength_nm * 1e-9) if low <= wavelength_m * 1e9 <= high else 0.0

    def _spectral_factor(self, light: list[Lightwave]) -> float:
        if not light:
            return 1.0
        powers = np.array([float(np.mean(c.power)) for c in light])
        weights = np.array([self._weight(c.wavelength) for c in light])
        if powers.sum() > 0:
            return float((powers * weights).sum() / powers.sum())
        return float(weights.mean())

    def _measure(self) -> float:
        factor = self._spectral_factor(self.world.light_into(self.name, "in", np.array([self.world.time])))
        power = self.world.average_power_into(self.name, "in", self.count * self.sample_time_s) * factor
        if self.auto_range:
            self.range_w = next((r for r in self._ranges() if power <= r), self.max_power_w)
        reading = power + self.noise_w / math.sqrt(self.count) * self.world.rng.standard_normal()
        self.last_w = min(reading, self.range_w)
        return self.last_w

    def _format(self, watt: float) -> str:
        if self.unit == "W":
            return _number(watt)
        return _number(w_to_dbm(watt) if watt > 0 else -200.0)

    # --- handlers ------------------------------------------------------------------------------

    def _sensor_idn(self, call: Call) -> str:
        call.expect(0)
        # flags: power sensor (1) + response settable (16) + wavelength settable (32)
        return f"{self.sensor},{self.serial}H,01-Jan-2024,1,18,49"

    def _min_max_query(self, call: Call, current, low, high) -> float:
        call.expect(0, 1)
        if call.params:
            word = call.param(0).choice(["MINimum", "MAXimum"])
            return low if word == "MINIMUM" else high
        return current

    def _set_wavelength(self, call: Call) -> None:
        call.expect(1)
        low, high = self.wavelength_range_nm
        param = call.param(0)
        if _WITH_UNIT.match(param.upper):  # e.g. 1550NM, 1.55UM: a length with its unit
            self.wavelength_nm = param.number("M", low * 1e-9, high * 1e-9) * 1e9
        else:  # a bare number (nm, the default unit) or MIN/MAX
            self.wavelength_nm = param.number("", low, high)

    def _get_wavelength(self, call: Call) -> str:
        return _number(self._min_max_query(call, self.wavelength_nm, *self.wavelength_range_nm))

    def _get_response(self, call: Call) -> str:
        call.expect(0)
        return _number(self.quantum_efficiency * self.wavelength_nm * 1e-9 / H_C_OVER_Q)

    def _set_count(self, call: Call) -> None:
        call.expect(1)
        # "If only specific numeric values are accepted, the power/energy meter will automatically
        # round the input numeric parameters" (manual, SCPI parameter types)
        value = call.param(0).number("", 0.5, MAX_COUNT + 0.5, 1)
        self.count = min(MAX_COUNT, max(1, math.floor(value + 0.5)))

    def _get_count(self, call: Call) -> str:
        return str(int(self._min_max_query(call, self.count, 1, MAX_COUNT)))

    def _set_auto(self, call: Call) -> None:
        call.expect(1)
        self.auto_range = call.param(0).boolean()

    def _get_auto(self, call: Call) -> str:
        call.expect(0)
        return "1" if self.auto_range else "0"

    def _set_range(self, call: Call) -> None:
        call.expect(1)
        ranges = self._ranges()
        value = call.param(0).number("W", ranges[0], ranges[-1])
        self.range_w = next(r for r in ranges if value <= r * (1 + 1e-9))
        self.auto_range = False

    def _get_range(self, call: Call) -> str:
        ranges = self._ranges()
        return _number(self._min_max_query(call, self.range_w, ranges[0], ranges[-1]))

    def _set_unit(self, call: Call) -> None:
        call.expect(1)
        self.unit = call.param(0).choice(["W", "DBM"])

    def _get_unit(self, call: Call) -> str:
        call.expect(0)
        return self.unit

    def _meas_power(self, call: Call) -> str:
        call.expect(0)
        self.configured = True
        return self._format(self._measure())

    def _configure(self, call: Call) -> None:
        call.expect(0)
        self.configured = True

    def _initiate(self, call: Call) -> None:
        call.expect(0)
        self._measure()

    def _abort(self, call: Call) -> None:
        call.expect(0)

    def _fetch(self, call: Call) -> str:
        call.expect(0)
        if self.last_w is None:
            raise ScpiError(-230, "no measurement initiated")
        return self._format(self.last_w)

    def _read(self, call: Call) -> str:
        call.expect(0)
        return self._format(self._measure())
