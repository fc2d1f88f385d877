"""Yokogawa WT310E digital power meter (single input element): active power and its integral, energy.

Why this instrument: it sits on the mains feed of bench instruments and integrates their active power
on its own clock, so the energy a run drew is a reading with a command behind it, not a model.

Command reference: *WT310E/WT310EH/WT332E/WT333E Digital Power Meter, Communication Interface User's
Manual* (IM WT310E-17EN; the WT310 edition IM WT310-17EN has the same commands):

* ``:INTEGrate:STARt``, ``:INTEGrate:STOP``, ``:INTEGrate:RESet`` (integration must be stopped before a
  reset), ``:INTEGrate:STATe?`` (``RESet|READy|STARt|STOP|ERRor|TIMeup``; abbreviated while
  ``:COMMunicate:VERBose`` is OFF, e.g. ``TIM``), ``:INTEGrate:MODE {NORMal|CONTinuous}``,
  ``:INTEGrate:TIMer <h>,<m>,<s>`` (0,0,0 with NORMal mode is manual integration: run until stopped);
* ``:NUMeric[:NORMal]:ITEM<x> {NONE|<function>,<element>}`` assigns a function to output slot ``x``,
  ``:NUMeric[:NORMal]:VALue? <x>`` reads that slot. Functions used here: ``P`` (active power, W),
  ``WH`` (watt-hours; the front panel shows it as "WP"), ``TIME`` (elapsed integration time, s). A slot
  with no data answers ``NAN``, an overrange ``INF``;
* ``:NUMeric:FORMat {ASCii|FLOat}`` (this driver reads ASCii), ``:COMMunicate:HEADer {ON|OFF}``;
* ``:STATus:ERRor?`` reads the error queue as ``<code>,"<message>"`` with positive codes
  (e.g. ``113,"Undefined header"``), ``0,"No error"`` when empty.

Role ``PowerAnalyzer`` in SI: :meth:`YokogawaWT310E.integrated_energy` converts watt-hours to J
(x 3600). Each role reading assigns its function to a fixed slot (1: P, 2: WH, 3: TIME) and reads that
slot in the same program message, so it reads what it asks for whatever the slots held before; slots
1 to 3 are therefore this driver's. A NaN, overrange or negative reading raises :class:`InvalidReading`.
"""

from __future__ import annotations

import math

from pymeasure.instruments import Instrument

from drivers.base import LabInstrument, in_set
from drivers.errors import DriverError, MalformedReply, ValueOutOfRange
from drivers.limits import READ, SET

J_PER_WH = 3600.0
#: Output slot of each numeric function a role reading uses.
SLOTS = {"P": 1, "WH": 2, "TIME": 3}
#: Longest integration timer (the manual's maximum integration time, 10000 h), in s.
MAX_TIMER_S = 10000 * 3600
#: ``:INTEGrate:STATe?`` answers (long and abbreviated forms) -> state name.
STATES = {"RES": "reset", "RESET": "reset", "READ": "ready", "READY": "ready", "STAR": "running",
          "START": "running", "STOP": "stopped", "ERR": "error", "ERROR": "error", "TIM": "timeup",
          "TIMEUP": "timeup"}
#: What the meter answers for "no data" and overrange in ASCii format.
_NOT_A_READING = {"NAN", "INF", "-INF", "+INF"}


class InvalidReading(DriverError, ValueError):
    """A reading that is not a usable value: no data (NAN), overrange (INF) or negative where a draw is read."""


def _last_word(reply: str) -> str:
    """The data of a reply, with or without its header (``:COMMunicate:HEADer ON`` prefixes one)."""
    words = reply.strip().split()
    return words[-1] if words else ""


class YokogawaWT310E(LabInstrument):
    """Yokogawa WT310E / WT310EH power meter; satisfies the ``PowerAnalyzer`` role.

    Nothing is sent at construction.

    .. code-block:: python

        wt = YokogawaWT310E("USB0::0x0B21::0x0025::C2XXXXXXX::INSTR")
        wt.reset_integration()
        wt.start_integration()
        ...  # run the workload
        wt.stop_integration()
        print(wt.integrated_energy(), "J over", wt.integration_time(), "s")
    """

    error_query = ":STAT:ERR?"

    # A meter: it reads the mains, it drives nothing.
    safety_members = {
        **dict.fromkeys(("integration_mode", "integration_timer", "start_integration", "stop_integration",
                         "reset_integration", "headers_enabled"), SET),
        **dict.fromkeys(("integration_state", "measure_power", "integrated_energy", "integration_time",
                         "read_numeric", "reading_command", "energy_command", "integration_time_resolution"), READ),
    }

    def __init__(self, adapter, name="Yokogawa WT310E", **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        super().__init__(adapter, name, **kwargs)

    # --- settings ------------------------------------------------------------------------------

    integration_mode = Instrument.control(
        ":INTEG:MODE?",
        ":INTEG:MODE %s",
        """Control the integration mode (str strictly 'normal' or 'continuous'): normal stops at the
        timer (or runs until stopped with a zero timer), continuous restarts when the timer expires.""",
        validator=in_set,
        values={"normal": "NORM", "continuous": "CONT"},
        map_values=True,
        get_process=lambda reply: _last_word(reply).upper()[:4],
        check_set_errors=True,
    )

    headers_enabled = Instrument.control(
        ":COMM:HEAD?",
        ":COMM:HEAD %d",
        """Control whether replies carry their header (bool); this driver reads either form.""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        get_process=lambda reply: int(_last_word(reply)),
        check_set_errors=True,
    )

    @property
    def integration_state(self) -> str:
        """Get the integration state (str: 'reset', 'ready', 'running', 'stopped', 'error' or 'timeup')."""
        command = ":INTEG:STAT?"
        reply = self.ask(command)
        try:
            return STATES[_last_word(reply).upper()]
        except KeyError:
            raise MalformedReply(self.name, command, reply) from None

    @property
    def integration_timer(self) -> float:
        """Control the integration timer, in s (int, 0 .. 36 000 000; 0 with mode 'normal' = manual
        integration, until stopped); sent as hours, minutes, seconds."""
        command = ":INTEG:TIM?"
        reply = _last_word(self.ask(command))
        try:
            hours, minutes, seconds = (int(part) for part in reply.split(","))
        except ValueError:
            raise MalformedReply(self.name, command, reply) from None
        return float(hours * 3600 + minutes * 60 + seconds)

    @integration_timer.setter
    def integration_timer(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds != int(seconds) or not 0 <= seconds <= MAX_TIMER_S:
            raise ValueOutOfRange(f"integration timer {seconds!r} s: give whole seconds in 0 .. {MAX_TIMER_S}")
        total = int(seconds)
        self.write(f":INTEG:TIM {total // 3600},{total % 3600 // 60},{total % 60}")
        self.check_errors()

    # --- integration ---------------------------------------------------------------------------

    def start_integration(self) -> None:
        """Start integrating (or resume after a stop); the meter refuses it when already running or timed up."""
        self.write(":INTEG:STAR")
        self.check_errors()

    def stop_integration(self) -> None:
        """Stop integrating; energy and time are held until reset."""
        self.write(":INTEG:STOP")
        self.check_errors()

    def reset_integration(self) -> None:
        """Zero the integrated values (the meter refuses it while integrating: stop first)."""
        self.write(":INTEG:RES")
        self.check_errors()

    # --- readings ------------------------------------------------------------------------------

    @staticmethod
    def reading_command(function: str) -> str:
        """The program message that reads ``function`` (``"P"``, ``"WH"`` or ``"TIME"``): the provenance of a
        measured figure names it."""
        try:
            slot = SLOTS[function]
        except KeyError:
            raise ValueOutOfRange(f"numeric function {function!r}: this driver reads {', '.join(SLOTS)}") from None
        return f":NUM:NORM:ITEM{slot} {function},1;:NUM:NORM:VAL? {slot}"

    #: Resolution of the integration time this driver reads, in s: the meter answers TIME in whole
    #: seconds (assumed from the front panel's h:mm:ss display; the manual's numeric format was not at hand).
    integration_time_resolution = 1.0

    @property
    def energy_command(self) -> str:
        """Get the program messages that read the integrated energy and its time (str): what a measured
        energy figure names as its provenance."""
        return f"{self.reading_command('WH')} (Wh x 3600 = J); {self.reading_command('TIME')}"

    def read_numeric(self, function: str) -> float:
        """Read one numeric function (``"P"``, ``"WH"`` or ``"TIME"``) in the meter's unit (W, Wh, s).

        Assigns the function to its slot and reads the slot in one message, then checks the error queue.
        """
        command = self.reading_command(function)
        reply = self.ask(command)
        self.check_errors()
        word = _last_word(reply).upper()
        if word in _NOT_A_READING:
            raise InvalidReading(f"{self.name} answered {word} to {function}: "
                                 f"{'no data' if word == 'NAN' else 'over range'}; check the wiring and range")
        try:
            value = float(word)
        except ValueError:
            raise MalformedReply(self.name, command, reply) from None
        if not math.isfinite(value) or abs(value) >= 9.9e37:  # SCPI-99 NaN/INF as numbers
            raise InvalidReading(f"{self.name} answered {word} to {function}: not a measured value")
        return value

    def _draw(self, function: str, what: str) -> float:
        value = self.read_numeric(function)
        if value < 0:
            raise InvalidReading(f"{self.name} read {what} {value:g}: negative, so power flowed back into the "
                                 "mains or the input is wired reversed; a draw cannot be negative")
        return value

    def measure_power(self) -> float:
        """Return the active power drawn now, in W."""
        return self._draw("P", "active power")

    def integrated_energy(self) -> float:
        """Return the energy integrated so far, in J (the meter's watt-hours x 3600)."""
        return self._draw("WH", "integrated energy") * J_PER_WH

    def integration_time(self) -> float:
        """Return the elapsed integration time, in s."""
        return self._draw("TIME", "integration time")
