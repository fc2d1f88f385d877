"""Simulated Yokogawa WT310E digital power meter, wired to the simulated instruments whose draw it measures.

SCPI as in *WT310E/WT310EH/WT332E/WT333E Digital Power Meter, Communication Interface User's Manual*
(IM WT310E-17EN):

* ``:INTEGrate:STARt``, ``:INTEGrate:STOP``, ``:INTEGrate:RESet``, ``:INTEGrate:STATe?`` (answered
  in the abbreviated form, ``:COMMunicate:VERBose OFF`` being the default: ``RES``, ``STAR``,
  ``STOP``, ``TIM``), ``:INTEGrate:MODE NORMal`` (CONTinuous, the repeating mode, is refused with
  221: not simulated), ``:INTEGrate:TIMer <h>,<m>,<s>`` (0,0,0: run until stopped);
* ``:NUMeric[:NORMal]:ITEM<x> {NONE|<function>[,<element>]}`` (x = 1..255; element 1, the WT310E
  has one input element), ``:NUMeric[:NORMal]:NUMber``, ``:NUMeric[:NORMal]:VALue? [<x>]``,
  ``:NUMeric:FORMat {ASCii|FLOat}`` (only ASCii is simulated);
* ``:COMMunicate:HEADer`` OFF only (replies carry no header; ON is refused, a simulator limit);
* ``:STATus:ERRor?`` reads the error queue: ``<code>,"<message>"`` with the manual's positive codes
  (113 "Undefined header", 102 "Syntax error", 222 "Data out of range", 350 "Queue overflow" ...);
  there is no ``SYSTem:ERRor?``.

What it measures: the bench items named in the instrument entry's ``measures`` (wiring, a field of the
bench file beside ``resource``, not a simulation parameter) are on its input, so the active
power ``P`` is the sum of their wall-plug draws now (``world.draws_w()``) and the integrated energy
is the World's energy of those instruments between integration start and stop on the simulated clock
(``world.energy_j(measures)``): the meter reads the physics, it adds nothing of its own. ``WH`` (and
``WHP``) is that energy in watt-hours, ``WHM`` is 0 (no simulated instrument returns power to the
mains), ``TIME`` the integration time in s. Items the simulation does not model (U, I, S, Q,
LAMBda, PHI, FU, FI, ...) answer ``NAN``, the manual's "no data"; so does every item whose function
is NONE.

Integration-state conflicts (starting a running or timed-up integration, stopping one that is not
running, resetting a running one) are answered with 221 "Setting conflict", the IEEE 488.2 execution
error in the manual's error table; whatever more specific code the meter itself gives in those cases
is not reproduced.

Its own draw (``idle_power_w``): by default the WT310E's entry in ``sim_backends.datasheets`` (an
assumed upper estimate; the reasoning is there). It does not measure itself unless listed in
``measures``, which is refused.
"""

from __future__ import annotations

from typing import Any

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.scpi import Call, CommandTree, ScpiError, format_number
from sim_backends.world import WiringError

DEFAULT_PARAMS: dict[str, Any] = {
    # W, its own draw (sim_backends.datasheets, assumed).
    "idle_power_w": datasheet_idle_w("yokogawa.WT310E"),
}
POWER = {"idle_power_w": (DEFAULT_PARAMS["idle_power_w"], 0.0, 1000.0)}
J_PER_WH = 3600.0
#: Numeric functions of the WT310E (IM WT310E-17EN, :NUMeric:NORMal:ITEM<x>), long forms.
FUNCTIONS = ("NONE", "U", "I", "P", "S", "Q", "LAMBda", "PHI", "FU", "FI", "UPPeak", "UMPeak", "IPPeak",
             "IMPeak", "PPPeak", "PMPeak", "TIME", "WH", "WHP", "WHM", "AH", "AHP", "AHM", "MATH")
MAX_ITEMS = 255
#: *RST items 1..10 (the first ten functions after NONE; an assumption of this simulator).
DEFAULT_ITEMS = ("U", "I", "P", "S", "Q", "LAMBDA", "PHI", "FU", "FI", "TIME")
#: Largest integration timer, in s (10000 h, the manual's maximum integration time).
MAX_TIMER_S = 10000 * 3600.0
#: Abbreviated :INTEGrate:STATe? answers.
STATE_WORDS = {"reset": "RES", "running": "STAR", "stopped": "STOP", "timeup": "TIM"}


class SimYokogawaWT310E(SimInstrument):
    """WT310E single-element power meter measuring the draw of the bench items in ``measures``."""

    MODEL = "yokogawa.WT310E"
    IDN = ("YOKOGAWA", "WT310E", "F1.01")
    TERMINATION = b"\n"
    PORTS: dict[str, str] = {}
    #: Electrical-draw parameters (name -> default, low, high), as every simulated instrument declares them.
    POWER = POWER
    PARAMS = frozenset(DEFAULT_PARAMS)
    HAS_ERROR_QUEUE = True  # read with :STATus:ERRor?; SYSTem:ERRor? is undefined (see build)

    def __init__(self, name, world, params=None, serial="", measures=()):
        unknown = set(params or {}) - set(DEFAULT_PARAMS)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_PARAMS)}")
        p = {**DEFAULT_PARAMS, **(params or {})}
        if not isinstance(measures, (list, tuple)) or not all(isinstance(n, str) and n for n in measures):
            raise WiringError(f"measures must be a list of bench item names, got {measures!r}")
        self.measures = tuple(measures)
        if name in self.measures:
            raise WiringError(f"{name} cannot measure its own supply")
        if len(set(self.measures)) != len(self.measures):
            raise WiringError(f"{list(self.measures)!r} names an item twice: its draw would be counted twice")
        idle = float(p["idle_power_w"])
        if not 0.0 <= idle <= POWER["idle_power_w"][2]:
            raise ValueError(f"idle_power_w must be in 0 .. {POWER['idle_power_w'][2]:g} W, got {p['idle_power_w']!r}")
        self.idle_power_w = idle
        super().__init__(name, world, params, serial)

    def connect(self) -> None:
        """Check that every measured name is a bench item with a draw (an instrument or a drawing part)."""
        for item in self.measures:
            node = self.world.nodes.get(item)
            if node is None:
                raise WiringError(f"instruments.{self.name}.measures: no bench item named {item!r}")
            if not callable(getattr(node, "electrical_power_w", None)):
                raise WiringError(f"instruments.{self.name}.measures: {item!r} draws no electrical power (a "
                                  "passive part); list instruments and drawing components only")

    def reset(self) -> None:
        self.items: list[str] = list(DEFAULT_ITEMS) + ["NONE"] * (MAX_ITEMS - len(DEFAULT_ITEMS))
        self.number = len(DEFAULT_ITEMS)
        self.integration_mode = "NORMAL"
        self.timer_s = 0.0
        self._state = "reset"
        self._energy_j = 0.0  # accumulated over finished run segments
        self._time_s = 0.0
        self._start: tuple[float, float] | None = None  # (world time, world energy) at the last start

    # -- its own draw ------------------------------------------------------------------------------

    def electrical_power_w(self) -> float:
        """Wall-plug draw of the meter itself (rated maximum, see module docstring)."""
        return self.idle_power_w

    # -- what it measures --------------------------------------------------------------------------

    def _world_draws(self):
        """The World's draw accounting, or an execution error on a World that keeps none."""
        if not (callable(getattr(self.world, "draws_w", None)) and callable(getattr(self.world, "energy_j", None))):
            raise ScpiError(-200, "this simulated World does not account electrical draws (draws_w, energy_j)")
        return self.world

    def active_power_w(self) -> float:
        """P: the summed draw of the measured instruments now, in W."""
        draws = self._world_draws().draws_w()
        return float(sum(draws[n] for n in self.measures))

    def _measured_energy_j(self) -> float:
        return float(self._world_draws().energy_j(self.measures)) if self.measures else 0.0

    def _update(self) -> None:
        """Fold the running segment up to now; stop at the timer (time up)."""
        with self.world.lock:  # the clock and the energy are read as one instant
            self._fold()

    def _fold(self) -> None:
        if self._state != "running" or self._start is None:
            return
        t0, e0 = self._start
        now, energy = self.world.time, self._measured_energy_j()
        elapsed = now - t0
        if self.timer_s > 0 and self._time_s + elapsed >= self.timer_s:
            # Time up: the integral ends at the timer. Energy is drawn piecewise-constant between state
            # changes, so the part after the timer is removed at the current draw (exact unless the draw
            # changed after the timer expired, which only an unread meter lets happen).
            overshoot = self._time_s + elapsed - self.timer_s
            energy -= overshoot * self.active_power_w()
            elapsed -= overshoot
            self._state = "timeup"
        self._energy_j += energy - e0
        self._time_s += elapsed
        self._start = (now, energy) if self._state == "running" else None

    def integrated_energy_j(self) -> float:
        self._update()
        return self._energy_j

    def integration_time_s(self) -> float:
        self._update()
        return self._time_s

    def integration_state(self) -> str:
        self._update()
        return self._state

    # -- commands --------------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        tree.add(":INTEGrate:STARt", setter=self._start_cmd)
        tree.add(":INTEGrate:STOP", setter=self._stop_cmd)
        tree.add(":INTEGrate:RESet", setter=self._reset_cmd)
        tree.add(":INTEGrate:STATe", getter=self._state_query)
        tree.add(":INTEGrate:MODE", setter=self._mode_set, getter=self._mode_query)
        tree.add(":INTEGrate:TIMer", setter=self._timer_set, getter=self._timer_query)
        tree.add(":NUMeric[:NORMal]:ITEM#", setter=self._item_set, getter=self._item_query)
        tree.add(":NUMeric[:NORMal]:NUMber", setter=self._number_set, getter=self._number_query)
        tree.add(":NUMeric[:NORMal]:VALue", getter=self._value_query)
        tree.add(":NUMeric:FORMat", setter=self._format_set, getter=lambda call: (call.expect(0), "ASC")[1])
        tree.add(":STATus:ERRor", getter=self._error_query)
        tree.add("SYSTem:ERRor[:NEXT]", setter=self._undefined, getter=self._undefined)
        tree.add(":COMMunicate:HEADer", setter=self._header_set, getter=lambda call: (call.expect(0), "0")[1])

    def next_error(self) -> str:
        """The manual's form: positive codes (``113,"Undefined header"``), ``0,"No error"`` when empty."""
        entry = super().next_error()
        return entry[1:] if entry.startswith("-") else entry

    @staticmethod
    def _undefined(call: Call) -> None:
        """The base class's SYSTem:ERRor? is not a WT310E command: undefined header, as on the meter."""
        raise ScpiError(-113, "the WT310E reads its error queue with :STATus:ERRor?")

    def _error_query(self, call: Call) -> str:
        call.expect(0)
        return self.next_error()

    def _start_cmd(self, call: Call) -> None:
        call.expect(0)
        self._update()
        if self._state in ("running", "timeup"):
            raise ScpiError(-221, f"integration is {self._state}; stop (and reset after time up) first")
        self._state = "running"
        with self.world.lock:
            self._start = (self.world.time, self._measured_energy_j())

    def _stop_cmd(self, call: Call) -> None:
        call.expect(0)
        self._update()
        if self._state != "running":
            raise ScpiError(-221, f"integration is not running ({self._state})")
        self._state = "stopped"
        self._start = None

    def _reset_cmd(self, call: Call) -> None:
        call.expect(0)
        self._update()
        if self._state == "running":
            raise ScpiError(-221, "integration is running; stop it before resetting")
        self._state, self._energy_j, self._time_s, self._start = "reset", 0.0, 0.0, None

    def _state_query(self, call: Call) -> str:
        call.expect(0)
        return STATE_WORDS[self.integration_state()]

    def _mode_set(self, call: Call) -> None:
        call.expect(1)
        if self.integration_state() == "running":
            raise ScpiError(-221, "integration mode cannot change while integrating")
        mode = call.param().choice(("NORMal", "CONTinuous"))
        if mode != "NORMAL":
            raise ScpiError(-221, "continuous (repeating) integration is not simulated; use NORMal")
        self.integration_mode = mode

    def _mode_query(self, call: Call) -> str:
        call.expect(0)
        return self.integration_mode[:4]

    def _timer_set(self, call: Call) -> None:
        call.expect(3)
        hours = call.param(0).integer(0, 10000)
        minutes = call.param(1).integer(0, 59)
        seconds = call.param(2).integer(0, 59)
        total = hours * 3600.0 + minutes * 60.0 + seconds
        if total > MAX_TIMER_S:
            raise ScpiError(-222, "the integration timer ends at 10000:00:00")
        if self.integration_state() == "running":
            raise ScpiError(-221, "the timer cannot change while integrating")
        self.timer_s = total

    def _timer_query(self, call: Call) -> str:
        call.expect(0)
        total = int(self.timer_s)
        return f"{total // 3600},{total % 3600 // 60},{total % 60}"

    def _item_set(self, call: Call) -> None:
        index = call.suffix(0, 1, MAX_ITEMS)
        call.expect(1, optional=1)
        function = call.param(0).choice(FUNCTIONS)
        if len(call.params) == 2:
            call.param(1).integer(1, 1)  # the WT310E has one input element
        self.items[index - 1] = function

    def _item_query(self, call: Call) -> str:
        index = call.suffix(0, 1, MAX_ITEMS)
        call.expect(0)
        function = self.items[index - 1]
        return "NONE" if function == "NONE" else f"{function},1"

    def _number_set(self, call: Call) -> None:
        call.expect(1)
        self.number = call.param().integer(1, MAX_ITEMS)

    def _number_query(self, call: Call) -> str:
        call.expect(0)
        return str(self.number)

    def _header_set(self, call: Call) -> None:
        call.expect(1)
        if call.param().boolean():
            raise ScpiError(-221, "reply headers are not simulated; the simulated meter answers data only")

    def _format_set(self, call: Call) -> None:
        call.expect(1)
        if call.param().choice(("ASCii", "FLOat")) != "ASCII":
            raise ScpiError(-221, "only ASCii numeric output is simulated")

    def _value_query(self, call: Call) -> str:
        call.expect(0, optional=1)
        if call.params:
            index = call.param().integer(1, MAX_ITEMS)
            return self._item_value(self.items[index - 1])
        return ",".join(self._item_value(f) for f in self.items[: self.number])

    def _item_value(self, function: str) -> str:
        if function == "P":
            return format_number(self.active_power_w(), 4)
        if function in ("WH", "WHP"):
            return format_number(self.integrated_energy_j() / J_PER_WH, 5)
        if function == "WHM":
            self._update()
            return format_number(0.0, 5)
        if function == "TIME":
            return str(int(self.integration_time_s()))
        return "NAN"
