"""Base class of every simulated instrument: IEEE 488.2 behaviour around a model's command tree.

A subclass declares its model's commands in ``build(tree)`` and keeps its settings as plain
attributes. This base provides what every SCPI instrument has: ``*IDN?``, ``*RST``, ``*CLS``,
``*OPC``/``*OPC?``, ``*ESR?``, ``*ESE``, ``*STB?``, ``*OPT?``, ``*WAI``, ``*TST?``, the
``SYSTem:ERRor[:NEXT]?`` queue (30 entries, -350 on overflow) and the output queue. A query with
nothing to answer leaves the output queue empty, so the VISA read times out, as on a real
instrument, and -420 "Query UNTERMINATED" goes in the error queue.

No message makes the simulator raise: an unexpected Python exception in a handler is a simulator
bug, so it is logged at ERROR, counted in ``internal_errors`` (tests assert it stays 0) and queued
as -300 "Device-specific error;internal <type>: ...". Responses to one message are capped at
``MAX_RESPONSE_BYTES`` (beyond: -225 "Out of memory", the response discarded).
"""

from __future__ import annotations

import logging
import traceback
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from sim_backends.physics.power import DrawError, checked_w
from sim_backends.physics.validation import require_range
from sim_backends.world import Component
from sim_backends.scpi import (
    MAX_RESPONSE_BYTES,
    Call,
    CommandTree,
    ScpiError,
    absolute_headers,
    split_message,
)

if TYPE_CHECKING:
    from sim_backends.world import World

ERROR_QUEUE_SIZE = 30

log = logging.getLogger(__name__)

# Standard Event Status Register bits (IEEE 488.2 11.5.1)
ESR_OPC = 1 << 0
ESR_QUERY_ERROR = 1 << 2
ESR_DEVICE_ERROR = 1 << 3
ESR_EXECUTION_ERROR = 1 << 4
ESR_COMMAND_ERROR = 1 << 5


class SimInstrument(Component):
    """A simulated SCPI instrument attached to the bench's physics ``World``.

    Subclasses set ``MODEL`` (the driver name in bench files, e.g. ``"keysight.N7714A"``), ``IDN``
    (manufacturer, model, firmware) and ``TERMINATION``, and implement ``build`` and ``reset``.
    ``params`` are the instrument's physical parameters from the bench file.
    """

    MODEL: ClassVar[str] = ""
    IDN: ClassVar[tuple[str, str, str]] = ("labctl", "SIM", "1.0")
    OPTIONS: ClassVar[str] = "0"
    #: How the instrument ends its responses.
    TERMINATION: ClassVar[bytes] = b"\n"
    #: Whether SYSTem:ERRor? exists (some instruments, e.g. serial controllers, lack it).
    HAS_ERROR_QUEUE: ClassVar[bool] = True
    #: Electrical-draw parameters: name -> (default, low, high). Defaults come from the model's
    #: datasheet (cited where each subclass defines them); a bench file may change them in
    #: ``sim.params`` (so every subclass's ``PARAMS`` includes these names).
    POWER: ClassVar[dict[str, tuple[float, float, float]]] = {}

    def __init__(self, name: str, world: "World", params: dict[str, Any] | None = None, serial: str = ""):
        self.name = name
        self.world = world
        self.params = dict(params or {})
        #: the electrical-draw parameters in force (``POWER`` defaults, overridden by ``params``)
        self.power_params = {key: require_range(key, self.params.get(key, default), low, high)
                             for key, (default, low, high) in self.POWER.items()}
        self.serial = serial or f"SIM{zlib.crc32(name.encode()) % 10**8:08d}"
        self.errors: deque[ScpiError] = deque()
        self.output = bytearray()
        self.esr = 0
        self.ese = 0
        #: Unexpected Python exceptions raised while handling messages (simulator bugs), and the
        #: traceback of the last one.
        self.internal_errors = 0
        self.last_internal_error = ""
        self.tree = CommandTree()
        self._build_common(self.tree)
        self.build(self.tree)
        self.reset()

    # -- to implement ----------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        """Declare the model's commands."""
        raise NotImplementedError

    def reset(self) -> None:
        """Return every setting to its *RST value."""
        raise NotImplementedError

    def connect(self) -> None:
        """Called once the world is wired: attach to physics components."""

    # -- electrical draw -----------------------------------------------------------------------

    def electrical_power_w(self) -> float:
        """Wall-plug draw now, in W, from the instrument's state (a subclass adds its state-dependent
        terms to ``idle_power_w``); a NaN or negative draw is a ``DrawError``."""
        if "idle_power_w" not in self.power_params:
            raise NotImplementedError(f"{type(self).__name__} has no electrical draw model: declare its "
                                      "datasheet idle power in POWER and its state-dependent terms")
        return checked_w(self.name, self.power_params["idle_power_w"] + self.state_power_w())

    def state_power_w(self) -> float:
        """Draw above idle that the current state adds, in W (0 for an instrument whose datasheet
        gives one typical figure)."""
        return 0.0

    def energy_between_j(self, start_s: float, end_s: float) -> float:
        """Energy drawn over [start_s, end_s] of the simulated clock, with the state in force now held
        over the whole step (the World calls this as its clock moves, before any later change)."""
        if end_s < start_s:
            raise DrawError(f"{self.name}: an energy interval cannot end ({end_s} s) before it starts ({start_s} s)")
        return self.electrical_power_w() * (end_s - start_s)

    # -- message processing ------------------------------------------------------------------

    def handle_write(self, data: bytes) -> None:
        """Take one program message (one VISA write with END); never raises."""
        try:
            self.process_message(data)
        except ScpiError as err:
            self.push_error(err)
        except Exception as exc:
            self.push_error(self.internal_error(exc, data))

    def process_message(self, data: bytes) -> None:
        """Execute the commands of one program message and queue their responses."""
        try:
            commands = split_message(data)
        except ScpiError as err:
            self.push_error(err)
            return
        if self.output:
            # A new message while a response is unread discards it (IEEE 488.2 6.3.2.3).
            self.output.clear()
            self.push_error(ScpiError(-410))
        responses: list[bytes] = []
        size = 0
        for cmd, header in zip(commands, absolute_headers(commands)):
            try:
                reply = self.execute(header, cmd.params, cmd.is_query)
            except ScpiError as err:
                self.push_error(err)
                break  # a command error aborts the rest of the message
            if reply is not None:
                responses.append(reply if isinstance(reply, bytes) else reply.encode("ascii"))
                size += len(responses[-1]) + 1
                if size > MAX_RESPONSE_BYTES:
                    self.push_error(ScpiError(-225, f"responses above {MAX_RESPONSE_BYTES} bytes; "
                                                    "query less per message"))
                    return
        if responses:  # appended in place: a block reply can be megabytes, each copy of it counts
            for i, reply in enumerate(responses):
                if i:
                    self.output += b";"
                self.output += reply
            self.output += self.TERMINATION

    def execute(self, header: str, params, is_query: bool):
        """Run one command; an unexpected exception in its handler becomes a -300 ``ScpiError``."""
        command, suffixes = self.tree.resolve(header)
        handler = command.getter if is_query else command.setter
        if handler is None:
            raise ScpiError(-113, f"{header} has no {'query' if is_query else 'command'} form")
        try:
            return handler(Call(suffixes, params, is_query))
        except ScpiError:
            raise
        except Exception as exc:
            raise self.internal_error(exc, header.encode()) from None

    def internal_error(self, exc: Exception, data: bytes) -> ScpiError:
        """Record a simulator bug (log, counter) and return the -300 entry that reports it."""
        self.internal_errors += 1
        self.last_internal_error = "".join(traceback.format_exception(exc))
        log.error("%s: internal error on %r", self.name, bytes(data[:200]), exc_info=exc)
        return ScpiError(-300, f"internal {type(exc).__name__}: {exc}")

    def read_output(self, count: int) -> tuple[bytes, bool]:
        """Take up to ``count`` bytes of the output queue; the flag says whether it is now empty."""
        with memoryview(self.output) as queued:  # one copy of what is taken, not two
            chunk = bytes(queued[:count])
        del self.output[:count]
        return chunk, not self.output

    def query_unterminated(self) -> None:
        """A read found nothing to answer: record -420, as the instrument would."""
        self.push_error(ScpiError(-420))

    # -- error queue --------------------------------------------------------------------------

    def push_error(self, err: ScpiError) -> None:
        if -199 <= err.code <= -100:
            self.esr |= ESR_COMMAND_ERROR
        elif -299 <= err.code <= -200:
            self.esr |= ESR_EXECUTION_ERROR
        elif -399 <= err.code <= -300:
            self.esr |= ESR_DEVICE_ERROR
        elif -499 <= err.code <= -400:
            self.esr |= ESR_QUERY_ERROR
        if len(self.errors) >= ERROR_QUEUE_SIZE:
            self.errors[-1] = ScpiError(-350)
            return
        self.errors.append(err)

    def next_error(self) -> str:
        if self.errors:
            return self.errors.popleft().entry()
        return '0,"No error"'

    # -- IEEE 488.2 common commands ----------------------------------------------------------

    def _build_common(self, tree: CommandTree) -> None:
        def idn(call: Call) -> str:
            call.expect(0)
            maker, model, firmware = self.IDN
            return f"{maker},{model},{self.serial},{firmware}"

        def rst(call: Call) -> None:
            call.expect(0)
            self.reset()

        def cls(call: Call) -> None:
            call.expect(0)
            self.errors.clear()
            self.esr = 0

        def opc_set(call: Call) -> None:
            call.expect(0)
            self.esr |= ESR_OPC

        def esr_query(call: Call) -> str:
            call.expect(0)
            value, self.esr = self.esr, 0
            return str(value)

        def ese_set(call: Call) -> None:
            call.expect(1)
            self.ese = call.param().integer(0, 255)

        def stb(call: Call) -> str:
            call.expect(0)
            status = 0
            if self.errors:
                status |= 1 << 2  # error/event queue not empty
            if self.esr & self.ese:
                status |= 1 << 5
            if self.output:
                status |= 1 << 4
            return str(status)

        tree.add("*IDN", getter=idn)
        tree.add("*RST", setter=rst)
        tree.add("*CLS", setter=cls)
        def answer(reply):
            """A query without parameters (-108 if some are sent) answering ``reply()``."""

            def getter(call: Call) -> str:
                call.expect(0)
                return reply()

            return getter

        tree.add("*OPC", setter=opc_set, getter=answer(lambda: "1"))
        tree.add("*WAI", setter=lambda call: call.expect(0))
        tree.add("*ESR", getter=esr_query)
        tree.add("*ESE", setter=ese_set, getter=answer(lambda: str(self.ese)))
        tree.add("*STB", getter=stb)
        tree.add("*TST", getter=answer(lambda: "0"))
        tree.add("*OPT", getter=answer(lambda: self.OPTIONS))
        if self.HAS_ERROR_QUEUE:
            tree.add("SYSTem:ERRor[:NEXT]", getter=answer(self.next_error))

    # -- introspection for tests and snapshots ---------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The instrument's settings as a plain dict (for tests and debugging)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in _INTERNAL}


_INTERNAL = {"name", "world", "params", "power_params", "serial", "errors", "output", "tree", "esr", "ese", "internal_errors",
             "last_internal_error"}
