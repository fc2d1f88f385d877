"""Simulated Thorlabs MBX modulator bias controller: a real bias lock on the tap it measures.

Command set: *Remote Control User Guide for the MX / MBX / TLX1 / TLX2 Series*, Thorlabs
TTN116413-D04, Rev. E (May 5, 2022), as driven by pymeasure's ``ThorlabsMBXSeries``:

* ``MZM:MODE: <n>`` / ``MZM:MODE?`` (0 OFF, 1 AUTOPEAK, 2 AUTONULL, 3 AUTOQUADPOS, 4 AUTOQUADNEG,
  5 HOLDQUADPOS, 6 HOLDQUADNEG, 7 MANUAL, 8 AUTOPOWERPOS, 9 AUTOPOWERNEG);
  ``MZM:HOLD:VOLTage: <mV>`` (-10000..10000) and query; ``MZM:HOLD:RATio: <1/100 %>`` (250..10000)
  and query; ``MZM:VOLTage?`` (V); ``MZM:TAP:MW?`` (mW); ``MZM:SETpoint?``; ``MZM:CALibrating?``;
  ``MZM:RESet``.
* ``VOA:ATTen: <1.0..20.0>`` and query, ``VOA:MODE: 0|1``, ``VOA:OUTput:MW: <0.01..100>``,
  ``VOA:POWer: 0|1``, ``VOA:SETpoint?``, ``VOA:MEASured?``, ``VOA:ERRor?``, ``VOA:TAP:MW?``
  (guide section 2.6); ``RGB:POWer``/``RED``/``GREen``/``BLUe``/``WHIte`` (pymeasure).
* Replies (guide section 2.1): ``1`` to every valid command, the value to a valid query, and
  ``Err: <text>`` to anything rejected. There is **no** ``SYSTem:ERRor?`` queue. Headers may end
  in ``:`` before the parameter (``MZM:MODE: 3``) or not. Responses end with <CR> over RS-232, the
  termination pymeasure's hardware-tested driver reads (the guide prints <NL>). Unread replies stay
  in the output buffer, as bytes already sent over a serial line do.

Physics (ports: electrical out ``bias``; optical in ``in`` = the modulator's output through the
controller's tap; optical out ``out`` = after the internal VOA):

* ``bias`` carries the controller's bias voltage: the hold voltage in MANUAL, 0 V in OFF, and in
  the automatic modes whatever the lock loop has found.
* The lock loop only *measures its tap* (``world.average_power_into(self.name, "in", dwell)``,
  which advances the clock): on entering an automatic mode (or ``MZM:RESet``) it sweeps its own
  bias over -10..10 V, takes P_min and P_max, picks the target point nearest 0 V (peak, null, the
  mid level (P_max + P_min)/2 on the rising or falling slope, or ratio x P_max for AUTOPOWER), then
  refines it with small bias steps (+-dither): Newton steps on the measured slope for a level,
  parabolic steps on the measured curvature for an extremum. In AUTO modes a few refinement steps
  run again whenever the modulator is queried (tracking drift); HOLDQUAD modes lock once and hold.
  It never reads the modulator's parameters.
* ``MZM:TAP:MW?`` reports the in-line power arriving at ``in``: the tap photodiode sees
  ``tap_ratio`` of it plus Gaussian noise ``tap_pd_noise_w`` (``world.rng``), divided back by the
  tap ratio.
* ``in`` -> ``out``: P_out = P_in 10^(-L/10). With the VOA off L = ``insertion_loss_db``. The VOA
  loop holds the attenuation *measured between its two taps* (``VOA:MEASured?``) at the setpoint,
  so with the VOA on L = max(setpoint, insertion loss) in ATTENUATION mode and
  L = clip(10 log10(P_in / P_set), IL, IL + ``voa_range_db``) in POWER mode.

Parameters (``sim.params``), defaults marked † are typical figures, not re-verified against a
datasheet revision; set them from your unit's test data:

* ``insertion_loss_db`` 0.8 dB † (tap + VOA path with the VOA off; the guide's smallest VOA
  setpoint, 1.0 dB, must be reachable), ``tap_ratio`` 0.01 † (1 % monitor tap),
  ``tap_pd_noise_w`` 1e-11 W † (tap photodiode noise per reading), ``voa_range_db`` 20 dB (guide:
  VOA:ATTen up to 20 dB), ``tap_averaging_s`` 1e-3 s per tap reading, ``sweep_step_v`` 0.1 V,
  ``dither_v`` 0.05 V, ``lock_tolerance`` 0.02 (fraction of P_max - P_min for ``MZM:SETpoint?``).
"""

from __future__ import annotations

import math

import numpy as np

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.validation import param
from sim_backends.scpi import MAX_RESPONSE_BYTES, Call, CommandTree, ScpiError, absolute_headers, split_message
from sim_backends.world import ELECTRICAL_OUT, OPTICAL_IN, OPTICAL_OUT, total_power

OFF, AUTOPEAK, AUTONULL, AUTOQUADPOS, AUTOQUADNEG, HOLDQUADPOS, HOLDQUADNEG, MANUAL, \
    AUTOPOWERPOS, AUTOPOWERNEG = range(10)
#: Modes whose loop keeps tracking after the first lock.
TRACKING = {AUTOPEAK, AUTONULL, AUTOQUADPOS, AUTOQUADNEG, AUTOPOWERPOS, AUTOPOWERNEG}
#: Modes that lock (sweep + refine) when entered.
LOCKING = TRACKING | {HOLDQUADPOS, HOLDQUADNEG}

BIAS_LIMIT_V = 10.0

#: ``Err:`` texts of the guide (section 2.1) for the SCPI codes the engine raises.
ERROR_TEXT = {
    -100: "Undefined header", -101: "Data type error", -102: "Undefined header",
    -104: "Data type error", -108: "Parameter error", -109: "Parameter error",
    -113: "Undefined header", -114: "Undefined header", -120: "Numeric data error",
    -131: "Data type error", -141: "Illegal parameter value", -151: "Data type error",
    -160: "Data type error", -200: "Execution error", -221: "Execution error",
    -222: "Data out of range", -224: "Illegal parameter value", -241: "Feature not present",
}

DEFAULTS = {
    "insertion_loss_db": (0.8, 0.0, 10.0),
    "tap_ratio": (0.01, 1e-4, 0.5),
    "tap_pd_noise_w": (1e-11, 0.0, 1e-3),
    "voa_range_db": (20.0, 1.0, 60.0),
    "tap_averaging_s": (1e-3, 1e-6, 10.0),
    "sweep_step_v": (0.1, 0.005, 2.0),
    "dither_v": (0.05, 1e-3, 1.0),
    "lock_tolerance": (0.02, 1e-4, 0.5),
}


class SimThorlabsMBX(SimInstrument):
    """Thorlabs MBX bias controller with tap, lock loop and VOA (see module docstring)."""

    MODEL = "thorlabs.MBX"
    IDN = ("Thorlabs", "MBX", "V1.9.5")
    TERMINATION = b"\r"
    HAS_ERROR_QUEUE = False
    PORTS = {"bias": ELECTRICAL_OUT, "in": OPTICAL_IN, "out": OPTICAL_OUT}
    #: Electrical draw (W). The benchtop controller (bias DAC, tap photodiode, processor) draws
    #: ``idle_power_w``, by default this model's entry in ``sim_backends.datasheets`` (assumed); its
    #: VOA's actuator adds ~1 W when on (assumed).
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, 1e3), "voa_power_w": (1.0, 0.0, 100.0)}
    PARAMS = frozenset(DEFAULTS) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        params = dict(params or {})
        unknown = set(params) - set(DEFAULTS) - set(self.POWER)
        if unknown:
            raise ValueError(f"unknown MBX parameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        for key, (default, low, high) in DEFAULTS.items():
            setattr(self, "_" + key, param(params, key, default, low, high))
        super().__init__(name, world, params, serial)

    # -- settings ---------------------------------------------------------------------------------

    def state_power_w(self) -> float:
        """The VOA's actuator while it is on."""
        return self.power_params["voa_power_w"] if self.voa_on else 0.0

    def reset(self) -> None:
        self.mode = OFF
        self.hold_mv = 0
        self.ratio = 5000  # 1/100 %
        self.bias_v = 0.0
        self.calibrating = False
        self.voa_on = False
        self.voa_mode = 0
        self.voa_attenuation_db = 1.0
        self.voa_power_mw = 1.0
        self.rgb = {"POWER": 0, "RED": 0, "GREEN": 0, "BLUE": 0, "WHITE": 0}
        self._sweep: tuple[np.ndarray, np.ndarray] | None = None
        self._locked = False

    # -- message processing: "1" / value / "Err: ..." per command, no error queue ------------------

    def process_message(self, data: bytes) -> None:
        try:
            commands = split_message(data)
            headers = absolute_headers(commands)
        except ScpiError as err:
            self._reply(self._err(err))
            return
        for cmd, header in zip(commands, headers):
            try:
                reply = self.execute(header, cmd.params, cmd.is_query)
            except ScpiError as err:
                reply = self._err(err)
            if reply is None:
                reply = "1"
            self._reply(reply)

    def _reply(self, text: str) -> None:
        """Queue a reply; unread replies stay (a serial link), up to MAX_RESPONSE_BYTES, then new ones are lost."""
        reply = text.encode("ascii") + self.TERMINATION
        if len(self.output) + len(reply) <= MAX_RESPONSE_BYTES:
            self.output += reply

    @staticmethod
    def _err(err: ScpiError) -> str:
        return f"Err: {ERROR_TEXT.get(err.code, 'Execution error')}"

    # -- command table ------------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        tree.add("MZM:MODE", setter=self._set_mode, getter=lambda c: str(self.mode))
        tree.add("MZM:HOLD:VOLTage", setter=self._set_hold, getter=lambda c: str(self.hold_mv))
        tree.add("MZM:HOLD:RATio", setter=self._set_ratio, getter=lambda c: str(self.ratio))
        tree.add("MZM:VOLTage", getter=self._get_voltage)
        tree.add("MZM:TAP:MW", getter=self._get_tap)
        tree.add("MZM:SETpoint", getter=self._get_setpoint)
        tree.add("MZM:CALibrating", getter=lambda c: "1" if self.calibrating else "0")
        tree.add("MZM:RESet", setter=self._reset_lock, getter=self._reset_lock)
        tree.add("VOA:ATTen", setter=self._set_voa_att, getter=lambda c: f"{self.voa_attenuation_db:.2f}")
        tree.add("VOA:MODE", setter=self._set_voa_mode, getter=lambda c: str(self.voa_mode))
        tree.add("VOA:OUTput:MW", setter=self._set_voa_power, getter=lambda c: f"{self.voa_power_mw:.3f}")
        tree.add("VOA:POWer", setter=self._set_voa_on, getter=lambda c: "1" if self.voa_on else "0")
        tree.add("VOA:SETpoint", getter=self._get_voa_setpoint)
        tree.add("VOA:MEASured", getter=lambda c: f"{self._measured_attenuation():.2f}")
        tree.add("VOA:ERRor", getter=self._get_voa_error)
        tree.add("VOA:TAP:MW", getter=lambda c: f"{self._read_out_tap() * 1e3:.6f}")
        tree.add("RGB:POWer", setter=self._rgb_setter("POWER", 2), getter=self._rgb_getter("POWER"))
        for colour in ("RED", "GREen", "BLUe", "WHIte"):
            key = colour.upper()
            tree.add(f"RGB:{colour}", setter=self._rgb_setter(key, 100), getter=self._rgb_getter(key))

    @staticmethod
    def _integer(call: Call, low: int, high: int) -> int:
        call.expect(1)
        value = call.param().number("", low, high)
        return int(round(value))

    def _set_mode(self, call: Call) -> None:
        call.expect(1)
        value = call.param().number()
        if value != int(value) or not 0 <= value <= 9:
            raise ScpiError(-224, f"mode {value:g} not in 0..9")
        self.mode = int(value)
        self._locked = False
        if self.mode == OFF:
            self.bias_v = 0.0
        elif self.mode == MANUAL:
            self.bias_v = self.hold_mv / 1000
        else:
            self._calibrate()
            self._acquire()

    def _set_hold(self, call: Call) -> None:
        self.hold_mv = self._integer(call, -10000, 10000)
        if self.mode == MANUAL:
            self.bias_v = self.hold_mv / 1000

    def _set_ratio(self, call: Call) -> None:
        self.ratio = self._integer(call, 250, 10000)
        if self.mode in (AUTOPOWERPOS, AUTOPOWERNEG) and self._sweep is not None:
            self._acquire()

    def _reset_lock(self, call: Call) -> str:
        call.expect(0)
        if self.mode in LOCKING:
            self._calibrate()
            self._acquire()
        return "1"

    def _get_voltage(self, call: Call) -> str:
        call.expect(0)
        self._track()
        return f"{self.bias_v:.3f}"

    def _get_tap(self, call: Call) -> str:
        call.expect(0)
        self._track()
        return f"{max(self._read_tap(self.bias_v), 0.0) * 1e3:.6f}"

    def _get_setpoint(self, call: Call) -> str:
        call.expect(0)
        if self.mode == OFF:
            return "0"
        if self.mode == MANUAL:
            return "1"
        self._track()
        return "1" if self._at_setpoint() else "0"

    def _set_voa_att(self, call: Call) -> None:
        call.expect(1)
        self.voa_attenuation_db = call.param().number("DB", 1.0, 20.0)

    def _set_voa_mode(self, call: Call) -> None:
        self.voa_mode = self._integer(call, 0, 1)

    def _set_voa_power(self, call: Call) -> None:
        call.expect(1)
        self.voa_power_mw = call.param().number("", 0.01, 100.0)

    def _set_voa_on(self, call: Call) -> None:
        self.voa_on = bool(self._integer(call, 0, 1))

    def _get_voa_error(self, call: Call) -> str:
        return f"{self._measured_attenuation() - self.voa_attenuation_db:.2f}"

    def _get_voa_setpoint(self, call: Call) -> str:
        if not self.voa_on:
            return "0"
        if self.voa_mode == 0:
            ok = abs(self._measured_attenuation() - self.voa_attenuation_db) <= 0.1
        else:
            out_mw = self._read_out_tap() * 1e3
            ok = out_mw > 0 and abs(10 * math.log10(out_mw / self.voa_power_mw)) <= 0.1
        return "1" if ok else "0"

    def _rgb_setter(self, key: str, high: int):
        def setter(call: Call) -> None:
            self.rgb[key] = self._integer(call, 0, high)
        return setter

    def _rgb_getter(self, key: str):
        return lambda call: str(self.rgb[key])

    # -- the lock loop: it only sees its tap ------------------------------------------------------------

    def _read_tap(self, bias_v: float) -> float:
        """Apply ``bias_v`` and read the tap: in-line power at ``in`` in W (takes tap_averaging_s)."""
        self.bias_v = float(np.clip(bias_v, -BIAS_LIMIT_V, BIAS_LIMIT_V))
        inline = self.world.average_power_into(self.name, "in", self._tap_averaging_s)
        detected = self._tap_ratio * inline + self._tap_pd_noise_w * self.world.rng.standard_normal()
        return detected / self._tap_ratio

    def _calibrate(self) -> None:
        """Sweep the bias over its whole range and keep the tap power curve."""
        self.calibrating = True
        volts = np.arange(-BIAS_LIMIT_V, BIAS_LIMIT_V + self._sweep_step_v / 2, self._sweep_step_v)
        power = np.array([self._read_tap(v) for v in volts])
        self._sweep = (volts, power)
        self.calibrating = False

    def _contrast(self) -> tuple[float, float]:
        _, power = self._sweep
        return float(power.min()), float(power.max())

    def _target(self) -> tuple[str, float, int]:
        """(kind, level or extremum sign, slope sign) the current mode locks to."""
        p_min, p_max = self._contrast()
        if self.mode == AUTOPEAK:
            return "extremum", 0.0, -1
        if self.mode == AUTONULL:
            return "extremum", 0.0, +1
        if self.mode in (AUTOQUADPOS, HOLDQUADPOS):
            return "level", (p_min + p_max) / 2, +1
        if self.mode in (AUTOQUADNEG, HOLDQUADNEG):
            return "level", (p_min + p_max) / 2, -1
        level = max(self.ratio / 10000 * p_max, p_min)
        return "level", level, +1 if self.mode == AUTOPOWERPOS else -1

    def _acquire(self) -> None:
        """Pick the target nearest 0 V from the calibration sweep, then refine it."""
        volts, power = self._sweep
        p_min, p_max = self._contrast()
        if p_max - p_min <= 10 * self._tap_pd_noise_w / self._tap_ratio:
            self.bias_v = 0.0  # no light, no lock
            self._locked = False
            return
        kind, level, sign = self._target()
        candidates = []
        if kind == "extremum":
            extreme = p_max if sign < 0 else p_min
            near = np.abs(power - extreme) <= 0.05 * (p_max - p_min)
            # one candidate per run of near-extreme samples: its best sample
            runs = np.split(np.arange(len(volts)), np.where(np.diff(near.astype(int)) != 0)[0] + 1)
            for run in runs:
                if near[run[0]]:
                    best = run[np.argmax(power[run])] if sign < 0 else run[np.argmin(power[run])]
                    candidates.append(volts[best])
        else:
            below, above = power[:-1] - level, power[1:] - level
            crossing = (below * above <= 0) & (np.sign(power[1:] - power[:-1]) == sign)
            for i in np.where(crossing)[0]:
                span = power[i + 1] - power[i]
                frac = (level - power[i]) / span if span else 0.5
                candidates.append(volts[i] + frac * (volts[i + 1] - volts[i]))
        if not candidates:
            self.bias_v = 0.0
            self._locked = False
            return
        start = min(candidates, key=abs)
        self.bias_v = float(start)
        self._locked = True
        self._refine(iterations=12)

    def _refine(self, iterations: int) -> None:
        """Small bias steps around the present point, using only tap readings."""
        kind, level, sign = self._target()
        d = self._dither_v
        v = self.bias_v
        for _ in range(iterations):
            p_minus, p_zero, p_plus = self._read_tap(v - d), self._read_tap(v), self._read_tap(v + d)
            if kind == "level":
                slope = (p_plus - p_minus) / (2 * d)
                if slope * sign <= 0:
                    break  # wrong side of the curve: keep the last good point
                step = -(p_zero - level) / slope
            else:
                curvature = p_plus - 2 * p_zero + p_minus
                if curvature * sign <= 0:
                    break
                step = d * (p_minus - p_plus) / (2 * curvature)
            step = float(np.clip(step, -0.5, 0.5))
            v = float(np.clip(v + step, -BIAS_LIMIT_V, BIAS_LIMIT_V))
            if abs(step) < 2e-4:
                break
        self.bias_v = v

    def _track(self) -> None:
        if self.mode in TRACKING and self._locked:
            self._refine(iterations=3)

    def _at_setpoint(self) -> bool:
        if not self._locked or self._sweep is None:
            return False
        p_min, p_max = self._contrast()
        kind, level, sign = self._target()
        v, d = self.bias_v, self._dither_v
        if kind == "level":
            error = self._read_tap(v) - level
        else:
            error = (self._read_tap(v + d) - self._read_tap(v - d)) / 2
        self.bias_v = v
        return abs(error) <= self._lock_tolerance * (p_max - p_min)

    # -- VOA ---------------------------------------------------------------------------------------------

    def _loss_db(self, inline_w: float) -> float:
        """In -> out loss in dB for the mean in-line input power ``inline_w``."""
        il = self._insertion_loss_db
        if not self.voa_on:
            return il
        if self.voa_mode == 0:
            return max(self.voa_attenuation_db, il)
        if inline_w <= 0:
            return il + self._voa_range_db
        wanted = 10 * math.log10(inline_w / (self.voa_power_mw * 1e-3))
        return float(np.clip(wanted, il, il + self._voa_range_db))

    def _read_out_tap(self) -> float:
        """In-line power after the VOA, in W, as its tap reads it (takes tap_averaging_s)."""
        inline = self.world.average_power_into(self.name, "in", self._tap_averaging_s)
        out = inline * 10 ** (-self._loss_db(inline) / 10)
        noise = self._tap_pd_noise_w * self.world.rng.standard_normal() / self._tap_ratio
        return max(out + noise, 0.0)

    def _measured_attenuation(self) -> float:
        before = self._read_tap(self.bias_v)
        after = self._read_out_tap()
        if before <= 0 or after <= 0:
            return 0.0
        return 10 * math.log10(before / after)

    # -- physics -----------------------------------------------------------------------------------------

    def electrical_output(self, port, t):
        return np.full(np.shape(t), self.bias_v, dtype=float)

    def optical_output(self, port, t):
        light = self.world.light_into(self.name, "in", t)
        if not light:
            return []
        inline = float(np.mean(total_power(light, t)))
        amplitude = math.sqrt(10 ** (-self._loss_db(inline) / 10))
        return [carrier.scaled(amplitude) for carrier in light]

    def state(self):
        return {"mode": self.mode, "hold_mv": self.hold_mv, "ratio": self.ratio, "bias_v": self.bias_v,
                "voa_on": self.voa_on, "voa_mode": self.voa_mode,
                "voa_attenuation_db": self.voa_attenuation_db, "voa_power_mw": self.voa_power_mw}
