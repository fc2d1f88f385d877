"""Simulated Keysight N6700C modular power system with up to four N673xB/N674xB DC modules.

SCPI per the *Keysight N6700 Modular Power System Programmer's Reference Guide* (as printed in the
Agilent "Series N6700 User's Guide" and the SCPI chapter of the N6700C Operating and Service Guide,
2017+ editions). Every output command ends
with a channel list ``(@1)``, ``(@1,3)``, ``(@1:4)``, ``(@1:2,4)``: a setting applies its one value to
every listed channel, a query answers one value per listed channel (in list order, comma
separated). The generic tokenizer splits parameters on commas, so this model first re-joins the
pieces of a ``(@...)`` list.

Commands: ``[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]`` (and ``?  [MIN|MAX,]``),
``[SOURce:]CURRent[...]``, ``[SOURce:]VOLTage:PROTection[:LEVel]``, ``OUTPut[:STATe] ON|OFF
[,NORelay]``, ``OUTPut:PROTection:CLEar``, ``MEASure[:SCALar]:VOLTage[:DC]?``,
``MEASure[:SCALar]:CURRent[:DC]?``, ``STATus:OPERation:CONDition?`` (CV=1, CC=2, OFF=4),
``STATus:QUEStionable:CONDition?`` (OV=1), ``SYSTem:CHANnel[:COUNt]?``, ``SYSTem:CHANnel:MODel?``,
plus the IEEE 488.2 commands and ``SYSTem:ERRor?`` from the base class. *RST: voltage 0 V, current
limit MIN (0 A), OVP MAX, outputs off, protection cleared.

Errors: a value outside the module's range -> -222; a channel that is not installed -> -222 (the
channel list parameter is out of range); a malformed channel list -> -104; a missing channel list
-> -109.

Physics (per output ``outN``): with the output on, the load is ``world.load_on(name, "outN")`` (ohm,
inf when open). The module regulates constant voltage, I = V_set/R, unless that exceeds the current
limit; then it regulates constant current, I = I_lim and V = I_lim R. With the output off, or
disabled by a protection trip, V = 0 and I = 0. Over-voltage protection trips when the output
voltage exceeds the OVP level: the output is disabled and the questionable OV bit is set until
``OUTPut:PROTection:CLEar`` (no error-queue entry, as on the real instrument). Readbacks add
Gaussian noise of sigma = measurement resolution / sqrt(12) from ``world.rng``; each MEASure takes
the default acquisition time (1024 points x 20.48 us) of simulated clock.

Parameters (``sim.params``), defaults from the *N6700 Modular Power System Family Specifications
Guide* (N6731B-N6745B table: programming range 102 % of rating, OVP maximum setting, measurement
resolution): ``modules`` (one model name for all slots, or a list per slot; default ``N6733B``,
20 V / 2.5 A / 50 W: 20.4 V, 2.55 A programmable, OVP <= 22 V, resolution 10 mV / 3 mA),
``channels`` (installed outputs, 1..4; default 4, or the list length), ``voltage_noise_v`` and
``current_noise_a`` (readback noise sigma, override the per-module default) and
``measurement_time_s`` (default 20.97 ms).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.power import dc_supply_draw_w
from sim_backends.physics.validation import require_non_negative
from sim_backends.scpi import Call, CommandTree, Param, ScpiError, format_number
from sim_backends.world import ELECTRICAL_OUT


@dataclass(frozen=True)
class _Module:
    max_voltage: float  # V, programming maximum (102 % of rating)
    max_current: float  # A, programming maximum
    max_ovp: float  # V, maximum OVP setting
    voltage_resolution: float  # V, measurement resolution
    current_resolution: float  # A, measurement resolution


# N6700 Family Specifications Guide, table for N6731B-N6735B / N6741B-N6745B (50 W / 100 W).
MODULES: dict[str, _Module] = {
    "N6731B": _Module(5.1, 10.2, 7.5, 3e-3, 10e-3),
    "N6732B": _Module(8.16, 6.375, 10.0, 4e-3, 7e-3),
    "N6733B": _Module(20.4, 2.55, 22.0, 10e-3, 3e-3),
    "N6734B": _Module(35.7, 1.53, 38.5, 18e-3, 2e-3),
    "N6735B": _Module(61.2, 0.85, 66.0, 30e-3, 1e-3),
    "N6741B": _Module(5.1, 20.4, 7.5, 3e-3, 10e-3),
    "N6742B": _Module(8.16, 12.75, 10.0, 4e-3, 7e-3),
    "N6743B": _Module(20.4, 5.1, 22.0, 10e-3, 3e-3),
    "N6744B": _Module(35.7, 3.06, 38.5, 18e-3, 2e-3),
    "N6745B": _Module(61.2, 1.7, 66.0, 30e-3, 1e-3),
}

MAX_CHANNELS = 4  # slots of the N6700C mainframe
#: Default acquisition: SENSe:SWEep:POINts 1024 x SENSe:SWEep:TINTerval 20.48 us (*RST values).
DEFAULT_MEASUREMENT_TIME_S = 1024 * 20.48e-6

# status bits (Programmer's Reference, Status Subsystem)
OPER_CV = 1
OPER_CC = 2
OPER_OFF = 4
QUES_OV = 1

#: Electrical draw. The N6700C mainframe's idle draw (fans, controller, module housekeeping) defaults to
#: its entry in ``sim_backends.datasheets`` (assumed); its modules are switching regulators, taken as
#: 75 % efficient from mains to output (assumed: the Specifications Guide rates output power, not
#: efficiency).
POWER = {"idle_power_w": (datasheet_idle_w("keysight.N6700"), 0.0, 1e4), "efficiency": (0.75, 0.01, 1.0)}
_PARAM_KEYS = {"modules", "channels", "voltage_noise_v", "current_noise_a", "measurement_time_s", *POWER}
_CHANNEL_ITEM = re.compile(r"^\s*(\d{1,9})\s*(?::\s*(\d{1,9})\s*)?$")


@dataclass
class OutputState:
    """Settings and latched status of one output channel."""

    model: str
    module: _Module
    voltage_noise: float
    current_noise: float
    voltage: float = 0.0
    current: float = 0.0
    ovp: float = 0.0
    enabled: bool = False
    ov_tripped: bool = False


#: Numbers as the N6700 returns them: +n.nnnnnnE+nn.
_fmt = partial(format_number, digits=6, sign=True)


def _rejoin_channel_list(params: list[Param]) -> list[Param]:
    """Re-join the comma-split pieces of a ``(@...)`` channel list into one parameter."""
    out: list[Param] = []
    pending: list[str] | None = None
    for p in params:
        text = p.text.strip()
        if pending is None:
            if text.startswith("(") and not text.endswith(")"):
                pending = [text]
            else:
                out.append(Param(text, p.block))
        else:
            pending.append(text)
            if text.endswith(")"):
                out.append(Param(",".join(pending)))
                pending = None
    if pending is not None:
        raise ScpiError(-104, f"unterminated channel list {','.join(pending)!r}")
    return out


class SimKeysightN6700(SimInstrument):
    """Keysight N6700C mainframe with DC power modules driving electrical loads (e.g. heaters)."""

    MODEL = "keysight.N6700"
    IDN = ("Keysight Technologies", "N6700C", "D.04.07")
    TERMINATION = b"\n"
    PORTS = {f"out{n}": ELECTRICAL_OUT for n in range(1, MAX_CHANNELS + 1)}
    PARAMS = frozenset(_PARAM_KEYS)
    POWER = POWER

    def __init__(self, name, world, params=None, serial=""):
        params = dict(params or {})
        unknown = set(params) - _PARAM_KEYS
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(_PARAM_KEYS))}")
        self._outputs = self._build_outputs(params)
        self._measurement_time = require_non_negative(
            "measurement_time_s", params.get("measurement_time_s", DEFAULT_MEASUREMENT_TIME_S), 10.0)
        super().__init__(name, world, params, serial)

    # -- parameters -----------------------------------------------------------------------------

    @staticmethod
    def _build_outputs(params: dict[str, Any]) -> dict[int, OutputState]:
        modules = params.get("modules", "N6733B")
        if isinstance(modules, str):
            names = [modules] * int(params.get("channels", MAX_CHANNELS))
        elif isinstance(modules, (list, tuple)):
            names = [str(m) for m in modules]
            if "channels" in params and int(params["channels"]) != len(names):
                raise ValueError(f"channels={params['channels']} but modules lists {len(names)} modules")
        else:
            raise ValueError(f"modules={modules!r} must be a model name or a list of model names")
        if not 1 <= len(names) <= MAX_CHANNELS:
            raise ValueError(f"channels={len(names)} is outside the physical range [1, {MAX_CHANNELS}]")
        outputs = {}
        for ch, model in enumerate(names, start=1):
            key = model.upper()
            if key not in MODULES:
                raise ValueError(f"modules: unknown module {model!r}; known: {', '.join(MODULES)}")
            module = MODULES[key]
            vn = require_non_negative("voltage_noise_v", params.get("voltage_noise_v",
                                                      module.voltage_resolution / math.sqrt(12)), 1.0)
            cn = require_non_negative("current_noise_a", params.get("current_noise_a",
                                                      module.current_resolution / math.sqrt(12)), 1.0)
            outputs[ch] = OutputState(key, module, vn, cn)
        return outputs

    def ports(self):
        return {f"out{ch}": ELECTRICAL_OUT for ch in self._outputs}

    # -- command table ----------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        tree.add("[:SOURce]:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                 setter=lambda c: self._set_level(c, "voltage"), getter=lambda c: self._get_level(c, "voltage"))
        tree.add("[:SOURce]:CURRent[:LEVel][:IMMediate][:AMPLitude]",
                 setter=lambda c: self._set_level(c, "current"), getter=lambda c: self._get_level(c, "current"))
        tree.add("[:SOURce]:VOLTage:PROTection[:LEVel]",
                 setter=lambda c: self._set_level(c, "ovp"), getter=lambda c: self._get_level(c, "ovp"))
        tree.add("OUTPut[:STATe]", setter=self._set_output, getter=self._get_output)
        tree.add("OUTPut:PROTection:CLEar", setter=self._clear_protection)
        tree.add("MEASure[:SCALar]:VOLTage[:DC]", getter=lambda c: self._measure(c, "voltage"))
        tree.add("MEASure[:SCALar]:CURRent[:DC]", getter=lambda c: self._measure(c, "current"))
        tree.add("STATus:OPERation:CONDition", getter=self._operation_condition)
        tree.add("STATus:QUEStionable:CONDition", getter=self._questionable_condition)
        tree.add("SYSTem:CHANnel[:COUNt]", getter=self._channel_count)
        tree.add("SYSTem:CHANnel:MODel", getter=self._channel_model)

    def reset(self) -> None:
        for out in self._outputs.values():
            out.voltage = 0.0
            out.current = 0.0  # *RST MIN
            out.ovp = out.module.max_ovp  # *RST MAX
            out.enabled = False
            out.ov_tripped = False

    # -- channel lists ----------------------------------------------------------------------------

    def _parse_channel_list(self, param: Param) -> list[int]:
        text = param.text.strip()
        m = re.fullmatch(r"\(\s*@(.*)\)", text, flags=re.S)
        if not m:
            raise ScpiError(-104, f"expected a channel list (@...), got {text!r}")
        channels: list[int] = []
        for item in m.group(1).split(","):
            im = _CHANNEL_ITEM.match(item)
            if not im:
                raise ScpiError(-104, f"bad channel list item {item.strip()!r}")
            first = int(im.group(1))
            last = int(im.group(2)) if im.group(2) else first
            step = 1 if last >= first else -1
            for ch in (first, last):
                if ch not in self._outputs:
                    raise ScpiError(-222, f"channel {ch} not installed (channels 1..{len(self._outputs)})")
            channels.extend(range(first, last + step, step))
        return channels

    def _split(self, call: Call, values: int, optional: int = 0) -> tuple[list[Param], list[int]]:
        """Return (value parameters, channels) of a command whose last parameter is a channel list."""
        params = _rejoin_channel_list(call.params)
        if not params or not params[-1].text.strip().startswith("("):
            raise ScpiError(-109, "missing channel list (@<chanlist>)")
        head = params[:-1]
        if len(head) < values:
            raise ScpiError(-109)
        if len(head) > values + optional:
            raise ScpiError(-108)
        return head, self._parse_channel_list(params[-1])

    # -- settings -------------------------------------------------------------------------------------

    def _limits(self, out: OutputState, what: str) -> tuple[str, float]:
        if what == "voltage":
            return "V", out.module.max_voltage
        if what == "current":
            return "A", out.module.max_current
        return "V", out.module.max_ovp

    def _set_level(self, call: Call, what: str) -> None:
        (value,), channels = self._split(call, 1)
        new = {}
        for ch in channels:  # validate everything first: an error changes nothing
            out = self._outputs[ch]
            unit, high = self._limits(out, what)
            new[ch] = value.number(unit, 0.0, high)
        for ch, v in new.items():
            setattr(self._outputs[ch], what, v)
        self._update_protection()

    def _get_level(self, call: Call, what: str) -> str:
        head, channels = self._split(call, 0, optional=1)
        replies = []
        for ch in channels:
            out = self._outputs[ch]
            if head:
                which = head[0].choice(["MINimum", "MAXimum"])
                replies.append(0.0 if which == "MINIMUM" else self._limits(out, what)[1])
            else:
                replies.append(getattr(out, what))
        return ",".join(_fmt(v) for v in replies)

    def _set_output(self, call: Call) -> None:
        head, channels = self._split(call, 1, optional=1)
        state = head[0].boolean()
        if len(head) > 1:
            head[1].choice(["NORelay"])
        for ch in channels:
            self._outputs[ch].enabled = state
        self._update_protection()

    def _get_output(self, call: Call) -> str:
        _, channels = self._split(call, 0)
        return ",".join("1" if self._outputs[ch].enabled else "0" for ch in channels)

    def _clear_protection(self, call: Call) -> None:
        _, channels = self._split(call, 0)
        for ch in channels:
            self._outputs[ch].ov_tripped = False
        self._update_protection()  # a condition still present trips again at once

    # -- physics ---------------------------------------------------------------------------------------

    def operating_point(self, ch: int) -> tuple[float, float, int]:
        """(output voltage V, output current A, operation-condition bits) of channel ``ch``."""
        out = self._outputs[ch]
        if not out.enabled:
            return 0.0, 0.0, OPER_OFF
        if out.ov_tripped:
            return 0.0, 0.0, 0
        load = self.world.load_on(self.name, f"out{ch}")
        if math.isinf(load):
            return out.voltage, 0.0, OPER_CV
        if load <= 0.0 or out.voltage / load > out.current:
            return out.current * max(load, 0.0), out.current, OPER_CC
        return out.voltage, out.voltage / load, OPER_CV

    def state_power_w(self) -> float:
        """What the outputs deliver (V*I at each operating point, the heater loads' V^2/R) over the
        mains-to-output efficiency."""
        delivered = [volts * amps for volts, amps, _ in map(self.operating_point, self._outputs)]
        return dc_supply_draw_w(delivered, self.power_params["efficiency"])

    def _update_protection(self) -> None:
        for ch, out in self._outputs.items():
            if out.enabled and not out.ov_tripped:
                volts, _, _ = self.operating_point(ch)
                if volts > out.ovp:
                    out.ov_tripped = True

    def electrical_output(self, port: str, t: np.ndarray) -> np.ndarray:
        ch = int(port.removeprefix("out"))
        volts, _, _ = self.operating_point(ch)
        return np.full(np.shape(t), volts, dtype=float)

    # -- queries ---------------------------------------------------------------------------------------

    def _measure(self, call: Call, what: str) -> str:
        _, channels = self._split(call, 0)
        self._update_protection()
        readings = []
        for ch in channels:
            out = self._outputs[ch]
            volts, amps, _ = self.operating_point(ch)
            if what == "voltage":
                readings.append(volts + out.voltage_noise * self.world.rng.standard_normal())
            else:
                readings.append(amps + out.current_noise * self.world.rng.standard_normal())
        self.world.advance(self._measurement_time)
        return ",".join(_fmt(v) for v in readings)

    def _operation_condition(self, call: Call) -> str:
        _, channels = self._split(call, 0)
        self._update_protection()
        return ",".join(str(self.operating_point(ch)[2]) for ch in channels)

    def _questionable_condition(self, call: Call) -> str:
        _, channels = self._split(call, 0)
        self._update_protection()
        return ",".join(str(QUES_OV if self._outputs[ch].ov_tripped else 0) for ch in channels)

    def _channel_count(self, call: Call) -> str:
        call.expect(0)
        return str(len(self._outputs))

    def _channel_model(self, call: Call) -> str:
        _, channels = self._split(call, 0)
        return ",".join(self._outputs[ch].model for ch in channels)

    def state(self) -> dict[str, Any]:
        return {f"out{ch}": {"model": o.model, "voltage": o.voltage, "current": o.current, "ovp": o.ovp,
                             "enabled": o.enabled, "ov_tripped": o.ov_tripped}
                for ch, o in self._outputs.items()}
