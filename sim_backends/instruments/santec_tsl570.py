"""Simulated Santec TSL-570 tunable laser (one optical output, port ``out``).

SCPI follows the *Santec TSL-570 Operation Manual* (M-TSL570-E, v1.5), chapter 7.4 command
reference, as used by pymeasure's ``TSL570`` driver:

* ``:SYSTem:COMMunicate:CODe 0|1`` selects the command set. **Legacy** (0): wavelengths in nm,
  frequencies in THz; **SCPI** (1): m and Hz. Unit suffixes (``1550NM``, ``10DBM``) are accepted
  in either. ``:SYSTem:ALERt?`` answers ``No alerts.``;
* ``:POWer:STATe 0|1``, ``:POWer:UNIT 0|1`` (dBm | mW), ``:POWer[:LEVel] <v>|MIN|MAX`` (in the
  power unit), ``:POWer:ACTual[:LEVel]?`` (monitor);
* ``:WAVelength <v>|MIN|MAX``, ``:WAVelength:MINimum?``, ``:WAVelength:MAXimum?``,
  ``:WAVelength:UNIT 0|1`` (display unit only), ``[:WAVelength]:FREQuency`` (+ ``:MINimum?``,
  ``:MAXimum?``);
* sweeps: ``:WAVelength:SWEep:STARt|STOP|STEP|SPEed|MODe|DWELl|DELay|CYCLes``,
  ``[:WAVelength]:FREQuency:SWEep:STARt|STOP|STEP``, ``:WAVelength:SWEep[:STATe] 0|1`` (query: 0
  stopped, 1 running), ``:WAVelength:SWEep[:STATe]:REPeat``, ``:WAVelength:SWEep:COUNt?``,
  ``[:WAVelength][:FREQuency]:SWEep:RANGe:MINimum?|MAXimum?``.

Errors use the codes the manual lists (-102, -108, -109, -113, -222, ...). Replies end with CR.
Legacy replies: wavelength ``1550.0000`` (nm, 0.1 pm), frequency ``193.41449`` (THz), power
``10.00`` (dBm) or ``10.0000`` (mW); SCPI replies use ``1.550000000E-06`` style.

Physics: as the N7714A model (PHYSICS.md section 3, :func:`laser_field`): an enabled laser emits
``Lightwave(wavelength, sqrt(P (1 + n_RIN)) exp(j phi))``; off = no light. While a sweep runs (on
the simulated clock ``world.time``), the emitted wavelength follows the sweep profile (continuous:
``start + speed * t``; stepped: ``start + k * step`` every ``dwell + step / speed``), evaluated at
the mean of the requested times.

Default parameters (``sim.params``; data-sheet figures not re-verified): ``wavelength_min_nm`` /
``wavelength_max_nm`` 1480 / 1640 nm (TSL-570 C+L model), ``power_min_dbm`` / ``power_max_dbm``
-15 / +13 dBm (setting range; +13 dBm peak output), ``linewidth_hz`` 100 kHz, ``rin_db_per_hz``
-145 dB/Hz, ``monitor_floor_dbm`` -40 dBm (model assumption: what ``:POWer:ACTual?`` reads with the
output off).

Power-on / *RST state (model assumption; on the real TSL-570 *RST only aborts a sweep and clears
queues): Legacy command set, 1550 nm, 0 dBm in dBm units, output off, sweep 1500..1600 nm at
10 nm/s, continuous one-way, stopped.
"""

from __future__ import annotations

import math
import re

import numpy as np

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.constants import C
from sim_backends.physics.laser import laser_field
from sim_backends.physics.power import laser_draw_w
from sim_backends.physics.units import dbm_to_w, w_to_dbm
from sim_backends.physics.validation import param
from sim_backends.scpi import Call, CommandTree, Param, ScpiError, format_number
from sim_backends.world import OPTICAL_OUT, Lightwave

SWEEP_SPEEDS_NM_S = (1, 2, 5, 10, 20, 50, 100, 200)
_SUFFIXED = re.compile(r"[0-9.]\s*[A-Za-z/]+\s*$")


def _suffixed(param: Param) -> bool:
    return bool(_SUFFIXED.search(param.text))


class SimSantecTSL570(SimInstrument):
    """Simulated Santec TSL-570 with one optical output ``out``."""

    MODEL = "santec.TSL570"
    IDN = ("SANTEC", "TSL-570", "0001.000.0001")
    TERMINATION = b"\r"
    PORTS = {"out": OPTICAL_OUT}
    #: Electrical draw (W). ``idle_power_w`` (controller, display, fans, cavity motor at rest) defaults
    #: to this model's entry in ``sim_backends.datasheets`` (assumed; the reasoning is there). Assumed
    #: too: the lit laser adds its output over a ~10 % wall-plug efficiency and its TEC.
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, 1e4), "wall_plug_efficiency": (0.1, 1e-4, 1.0),
             "tec_power_w": (2.0, 0.0, 100.0)}
    PARAMS = frozenset({"wavelength_min_nm", "wavelength_max_nm", "power_min_dbm", "power_max_dbm",
                        "rin_db_per_hz", "linewidth_hz", "monitor_floor_dbm"}) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        p = dict(params or {})
        self.wavelength_min = param(p, "wavelength_min_nm", 1480.0, 800.0, 2000.0) * 1e-9
        self.wavelength_max = param(p, "wavelength_max_nm", 1640.0, 800.0, 2000.0) * 1e-9
        if self.wavelength_min >= self.wavelength_max:
            raise ValueError("wavelength_min_nm must be below wavelength_max_nm")
        self.power_min_dbm = param(p, "power_min_dbm", -15.0, -60.0, 30.0)
        self.power_max_dbm = param(p, "power_max_dbm", 13.0, -60.0, 30.0)
        if self.power_min_dbm >= self.power_max_dbm:
            raise ValueError("power_min_dbm must be below power_max_dbm")
        self.rin_db_per_hz = param(p, "rin_db_per_hz", -145.0, -200.0, -80.0)
        self.linewidth_hz = param(p, "linewidth_hz", 100e3, 0.0, 1e9)
        self.monitor_floor_dbm = param(p, "monitor_floor_dbm", -40.0, -100.0, self.power_min_dbm)
        super().__init__(name, world, p, serial)

    # -- state ------------------------------------------------------------------------------

    def state_power_w(self) -> float:
        """The lit laser: its output over the wall-plug efficiency, plus its TEC; nothing when off."""
        if not self.enabled:
            return 0.0
        p = self.power_params
        return laser_draw_w(self.power_w, p["wall_plug_efficiency"], p["tec_power_w"])

    def reset(self) -> None:
        self.legacy = True
        self.power_unit_mw = False
        self.display_thz = False
        self.enabled = False
        self.wavelength = min(max(1550e-9, self.wavelength_min), self.wavelength_max)
        self.power_w = dbm_to_w(min(max(0.0, self.power_min_dbm), self.power_max_dbm))
        self.sweep_start = max(1500e-9, self.wavelength_min)
        self.sweep_stop = min(1600e-9, self.wavelength_max)
        self.sweep_step = 1e-9
        self.frequency_step = 100e9
        self.sweep_speed = 10  # nm/s
        self.sweep_mode = 1  # continuous, one way
        self.sweep_dwell = 0.0
        self.sweep_delay = 0.0
        self.sweep_cycles = 0
        self.sweep_t0: float | None = None
        self.sweep_repeat = False
        self.sweep_completed = 0

    # -- number formats and parsing ------------------------------------------------------------

    def _fmt_wavelength(self, metres: float) -> str:
        return f"{metres * 1e9:.4f}" if self.legacy else format_number(metres, 9)

    def _fmt_frequency(self, hertz: float) -> str:
        return f"{hertz * 1e-12:.5f}" if self.legacy else format_number(hertz, 9)

    def _fmt_power(self, watt: float) -> str:
        if self.power_unit_mw:
            return f"{watt * 1e3:.4f}"
        return f"{w_to_dbm(watt):.2f}"

    def _wavelength_param(self, param: Param, low: float, high: float) -> float:
        """Parse a wavelength (nm or m by command set, or suffixed); return m."""
        if _suffixed(param):
            return param.number("M", low, high)
        scale = 1e-9 if self.legacy else 1.0
        return param.number("", low / scale, high / scale) * scale

    def _frequency_param(self, param: Param, low: float, high: float) -> float:
        """Parse a frequency (THz or Hz by command set, or suffixed); return Hz."""
        if _suffixed(param):
            return param.number("HZ", low, high)
        scale = 1e12 if self.legacy else 1.0
        return param.number("", low / scale, high / scale) * scale

    def _power_param(self, param: Param) -> float:
        """Parse a power (dBm or mW by :POWer:UNIT, or suffixed); return W."""
        low_w, high_w = dbm_to_w(self.power_min_dbm), dbm_to_w(self.power_max_dbm)
        if _suffixed(param):
            def from_dbm(dbm: float) -> float:
                if not self.power_min_dbm <= dbm <= self.power_max_dbm:
                    raise ScpiError(-222, f"{dbm:g} dBm outside [{self.power_min_dbm:g}, {self.power_max_dbm:g}]")
                return dbm_to_w(dbm)
            return param.number("W", low_w * (1 - 1e-12), high_w * (1 + 1e-12), alt_units={"DBM": from_dbm})
        if self.power_unit_mw:
            return param.number("", low_w * 1e3, high_w * 1e3) * 1e-3
        return dbm_to_w(param.number("", self.power_min_dbm, self.power_max_dbm))

    @property
    def frequency_min(self) -> float:
        return C / self.wavelength_max

    @property
    def frequency_max(self) -> float:
        return C / self.wavelength_min

    # -- command table --------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        tree.add(":SYSTem:COMMunicate:CODe", setter=self._set_code,
                 getter=lambda call: self._answer(call, "1" if not self.legacy else "0"))
        tree.add(":SYSTem:ALERt", getter=lambda call: self._answer(call, "No alerts."))
        # power
        tree.add(":POWer:STATe", setter=self._set_state,
                 getter=lambda call: self._answer(call, "1" if self.enabled else "0"))
        tree.add(":POWer:UNIT", setter=self._set_power_unit,
                 getter=lambda call: self._answer(call, "1" if self.power_unit_mw else "0"))
        tree.add(":POWer:ACTual[:LEVel]", getter=self._get_actual_power)
        tree.add(":POWer[:LEVel]", setter=self._set_power, getter=self._get_power)
        # wavelength and frequency
        tree.add(":WAVelength", setter=self._set_wavelength, getter=self._get_wavelength)
        tree.add(":WAVelength:MINimum", getter=lambda call: self._answer(
            call, self._fmt_wavelength(self.wavelength_min)))
        tree.add(":WAVelength:MAXimum", getter=lambda call: self._answer(
            call, self._fmt_wavelength(self.wavelength_max)))
        tree.add(":WAVelength:UNIT", setter=self._set_display_unit,
                 getter=lambda call: self._answer(call, "1" if self.display_thz else "0"))
        tree.add("[:WAVelength]:FREQuency", setter=self._set_frequency, getter=self._get_frequency)
        tree.add("[:WAVelength]:FREQuency:MINimum", getter=lambda call: self._answer(
            call, self._fmt_frequency(self.frequency_min)))
        tree.add("[:WAVelength]:FREQuency:MAXimum", getter=lambda call: self._answer(
            call, self._fmt_frequency(self.frequency_max)))
        # sweep
        sweep = ":WAVelength:SWEep"
        tree.add(sweep + "[:STATe]", setter=self._set_sweep_state, getter=self._get_sweep_state)
        tree.add(sweep + "[:STATe]:REPeat", setter=self._start_repeat)
        tree.add(sweep + ":COUNt", getter=self._get_sweep_count)
        tree.add(sweep + ":STARt", setter=lambda call: self._set_sweep_wl(call, "sweep_start"),
                 getter=lambda call: self._answer(call, self._fmt_wavelength(self.sweep_start)))
        tree.add(sweep + ":STOP", setter=lambda call: self._set_sweep_wl(call, "sweep_stop"),
                 getter=lambda call: self._answer(call, self._fmt_wavelength(self.sweep_stop)))
        tree.add(sweep + ":STEP", setter=self._set_sweep_step,
                 getter=lambda call: self._answer(call, self._fmt_wavelength(self.sweep_step)))
        tree.add(sweep + ":SPEed", setter=self._set_sweep_speed,
                 getter=lambda call: self._answer(call, f"{self.sweep_speed:.1f}"))
        tree.add(sweep + ":MODe", setter=self._set_sweep_mode,
                 getter=lambda call: self._answer(call, str(self.sweep_mode)))
        tree.add(sweep + ":DWELl", setter=lambda call: self._set_seconds(call, "sweep_dwell"),
                 getter=lambda call: self._answer(call, f"{self.sweep_dwell:.1f}"))
        tree.add(sweep + ":DELay", setter=lambda call: self._set_seconds(call, "sweep_delay"),
                 getter=lambda call: self._answer(call, f"{self.sweep_delay:.1f}"))
        tree.add(sweep + ":CYCLes", setter=self._set_sweep_cycles,
                 getter=lambda call: self._answer(call, str(self.sweep_cycles)))
        tree.add(sweep + ":RANGe:MINimum", getter=lambda call: self._answer(
            call, self._fmt_wavelength(self.wavelength_min)))
        tree.add(sweep + ":RANGe:MAXimum", getter=lambda call: self._answer(
            call, self._fmt_wavelength(self.wavelength_max)))
        fsweep = "[:WAVelength]:FREQuency:SWEep"
        tree.add(fsweep + ":STARt", setter=lambda call: self._set_sweep_freq(call, "sweep_start"),
                 getter=lambda call: self._answer(call, self._fmt_frequency(C / self.sweep_start)))
        tree.add(fsweep + ":STOP", setter=lambda call: self._set_sweep_freq(call, "sweep_stop"),
                 getter=lambda call: self._answer(call, self._fmt_frequency(C / self.sweep_stop)))
        tree.add(fsweep + ":STEP", setter=self._set_frequency_step,
                 getter=lambda call: self._answer(call, self._fmt_frequency(self.frequency_step)))
        tree.add(fsweep + ":RANGe:MINimum", getter=lambda call: self._answer(
            call, self._fmt_frequency(self.frequency_min)))
        tree.add(fsweep + ":RANGe:MAXimum", getter=lambda call: self._answer(
            call, self._fmt_frequency(self.frequency_max)))

    @staticmethod
    def _answer(call: Call, text: str) -> str:
        call.expect(0)
        return text

    @staticmethod
    def _flag(call: Call) -> bool:
        call.expect(1)
        return bool(call.param().integer(0, 1))

    # -- handlers ----------------------------------------------------------------------------

    def _set_code(self, call: Call) -> None:
        self.legacy = not self._flag(call)

    def _set_state(self, call: Call) -> None:
        call.expect(1)
        self.enabled = call.param().boolean()

    def _set_power_unit(self, call: Call) -> None:
        self.power_unit_mw = self._flag(call)

    def _set_display_unit(self, call: Call) -> None:
        self.display_thz = self._flag(call)

    def _set_power(self, call: Call) -> None:
        call.expect(1)
        self.power_w = self._power_param(call.param())

    def _get_power(self, call: Call) -> str:
        call.expect(0)
        return self._fmt_power(self.power_w)

    def _get_actual_power(self, call: Call) -> str:
        call.expect(0)
        watt = self.power_w if self.enabled else dbm_to_w(self.monitor_floor_dbm)
        return self._fmt_power(watt)

    def _set_wavelength(self, call: Call) -> None:
        call.expect(1)
        self.wavelength = self._wavelength_param(call.param(), self.wavelength_min, self.wavelength_max)

    def _get_wavelength(self, call: Call) -> str:
        call.expect(0)
        return self._fmt_wavelength(self.wavelength)

    def _set_frequency(self, call: Call) -> None:
        call.expect(1)
        self.wavelength = C / self._frequency_param(call.param(), self.frequency_min, self.frequency_max)

    def _get_frequency(self, call: Call) -> str:
        call.expect(0)
        return self._fmt_frequency(C / self.wavelength)

    def _set_sweep_wl(self, call: Call, attribute: str) -> None:
        call.expect(1)
        setattr(self, attribute, self._wavelength_param(call.param(), self.wavelength_min, self.wavelength_max))

    def _set_sweep_freq(self, call: Call, attribute: str) -> None:
        call.expect(1)
        hertz = self._frequency_param(call.param(), self.frequency_min, self.frequency_max)
        setattr(self, attribute, C / hertz)

    def _set_sweep_step(self, call: Call) -> None:
        call.expect(1)
        self.sweep_step = self._wavelength_param(call.param(), 1e-13, self.wavelength_max - self.wavelength_min)

    def _set_frequency_step(self, call: Call) -> None:
        call.expect(1)
        self.frequency_step = self._frequency_param(call.param(), 1e7, self.frequency_max - self.frequency_min)

    def _set_sweep_speed(self, call: Call) -> None:
        call.expect(1)
        speed = call.param().number("", 0, max(SWEEP_SPEEDS_NM_S))
        if speed not in SWEEP_SPEEDS_NM_S:
            raise ScpiError(-222, f"sweep speed {speed:g} nm/s not one of {SWEEP_SPEEDS_NM_S}")
        self.sweep_speed = speed

    def _set_sweep_mode(self, call: Call) -> None:
        call.expect(1)
        self.sweep_mode = call.param().integer(0, 3)

    def _set_seconds(self, call: Call, attribute: str) -> None:
        call.expect(1)
        setattr(self, attribute, call.param().number("S", 0.0, 999.9))

    def _set_sweep_cycles(self, call: Call) -> None:
        call.expect(1)
        self.sweep_cycles = call.param().integer(0, 999)

    def _start(self, repeat: bool) -> None:
        if not self.sweep_start < self.sweep_stop:
            raise ScpiError(-221, "sweep start wavelength must be below the stop wavelength")
        self.sweep_t0 = self.world.time
        self.sweep_repeat = repeat
        self.sweep_completed = 0

    def _set_sweep_state(self, call: Call) -> None:
        if self._flag(call):
            self._start(repeat=False)
        else:
            self._update_sweep()
            self.sweep_t0 = None

    def _start_repeat(self, call: Call) -> None:
        call.expect(0)
        self._start(repeat=True)

    def _get_sweep_state(self, call: Call) -> str:
        call.expect(0)
        self._update_sweep()
        return "1" if self.sweep_t0 is not None else "0"

    def _get_sweep_count(self, call: Call) -> str:
        call.expect(0)
        self._update_sweep()
        return str(self.sweep_completed)

    # -- sweep timing (on the simulated clock) ----------------------------------------------------

    def _sweep_times(self) -> tuple[float, float]:
        """(one-way duration, one sweep's duration) in s."""
        span = self.sweep_stop - self.sweep_start
        speed = self.sweep_speed * 1e-9
        if self.sweep_mode % 2 == 1:  # continuous
            one_way = span / speed
        else:  # stepped: every step tunes (step / speed) and dwells
            steps = max(1, math.ceil(span / self.sweep_step - 1e-9))
            one_way = steps * (self.sweep_dwell + self.sweep_step / speed)
        return one_way, one_way * (2 if self.sweep_mode >= 2 else 1)

    def _sweep_total(self) -> float:
        _, cycle = self._sweep_times()
        if not self.sweep_repeat:
            return cycle
        if self.sweep_cycles == 0:
            return math.inf
        return self.sweep_cycles * (cycle + self.sweep_delay) - self.sweep_delay

    def _update_sweep(self) -> None:
        """Finish a sweep whose time is up; update the completed-sweep count."""
        if self.sweep_t0 is None:
            return
        _, cycle = self._sweep_times()
        elapsed = self.world.time - self.sweep_t0
        if elapsed >= self._sweep_total():
            self.sweep_completed = self.sweep_cycles if self.sweep_repeat else 1
            self.sweep_t0 = None
        else:
            self.sweep_completed = int(elapsed // (cycle + self.sweep_delay))

    def _sweep_wavelength(self, when: float) -> float | None:
        """Wavelength during a running sweep at time ``when`` (None when no sweep runs then)."""
        if self.sweep_t0 is None:
            return None
        elapsed = when - self.sweep_t0
        if elapsed < 0 or elapsed >= self._sweep_total():
            return None
        one_way, cycle = self._sweep_times()
        tau = elapsed % (cycle + self.sweep_delay) if self.sweep_repeat else elapsed
        if tau >= cycle:  # waiting between sweeps, parked at the start
            return self.sweep_start
        x = tau if tau <= one_way else cycle - tau  # two-way: come back
        if self.sweep_mode % 2 == 1:
            offset = self.sweep_speed * 1e-9 * x
        else:
            per_step = self.sweep_dwell + self.sweep_step / (self.sweep_speed * 1e-9)
            offset = math.floor(x / per_step) * self.sweep_step
        return min(self.sweep_start + offset, self.sweep_stop)

    # -- physics ------------------------------------------------------------------------------

    def optical_output(self, port: str, t) -> list[Lightwave]:
        if not self.enabled:
            return []
        swept = self._sweep_wavelength(float(np.mean(t)))
        wavelength = self.wavelength if swept is None else swept
        field = laser_field(self.power_w, t, self.rin_db_per_hz, self.linewidth_hz, self.world.rng)
        return [Lightwave(wavelength, field)]
