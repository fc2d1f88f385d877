"""Surviving flaky instruments: bounded reconnects with exponential backoff, and typed failure.

A bench opens every instrument through :func:`retry_call` (transient open errors are retried with
backoff; a resource that does not exist is not) and gives each driver a :class:`ResilientAdapter`.
When a connection is lost mid-run the adapter re-opens the resource, drains the error queue (the
entries are recorded, not dropped), and retries the interrupted *query* once, because reading
again is harmless. An interrupted *setting* is never re-sent silently: by default it raises
:class:`CommandInterrupted` (the connection is back, the caller decides); with
``RetryPolicy(resend_settings=True)`` it is re-sent and the recovery says so. Whatever happens the
wait is bounded (``attempts`` and ``budget_s``), and a resource that stays away ends in
:class:`InstrumentUnavailable` naming instrument, resource, attempts and the last error.

Waits go through a :class:`Clock`: wall time on a real bench, the simulated clock on a simulated
one (so a simulated outage of N seconds ends after N simulated seconds of backoff, with no sleep).
Timeouts are not retried here: a query that gets no answer in its timeout raises pyvisa's
``VisaIOError`` as before (drivers use it, e.g. a program still running), and the next query works.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, TypeVar

import pyvisa
from pymeasure.adapters import VISAAdapter

from labctl.errors import ConfigError, LabctlError
from sim_backends import UnknownResource

log = logging.getLogger(__name__)
T = TypeVar("T")
StatusCode = pyvisa.constants.StatusCode

#: VISA codes meaning the session is gone and the resource must be re-opened.
CONNECTION_LOST_CODES = frozenset({StatusCode.error_connection_lost, StatusCode.error_invalid_object,
                                   StatusCode.error_io})
#: VISA codes worth retrying when opening: the resource may be rebooting, busy or briefly away.
TRANSIENT_OPEN_CODES = CONNECTION_LOST_CODES | {StatusCode.error_resource_not_found, StatusCode.error_resource_busy,
                                                StatusCode.error_resource_locked, StatusCode.error_timeout}
#: Connection settings carried over when a resource is re-opened.
_SETTINGS = ("timeout", "read_termination", "write_termination", "chunk_size", "baud_rate", "data_bits",
             "parity", "stop_bits", "flow_control")


class InstrumentUnavailable(LabctlError, ConnectionError):
    """An instrument could not be reached within the retry budget."""

    def __init__(self, instrument: str, resource: str, attempts: int, last_error: BaseException | str,
                 waited_s: float = 0.0):
        self.instrument = instrument
        self.resource = resource
        self.attempts = attempts
        self.last_error = last_error
        self.waited_s = waited_s
        last = last_error if isinstance(last_error, str) else f"{type(last_error).__name__}: {last_error}"
        super().__init__(
            f"instrument {instrument!r} ({resource}) is unavailable after {attempts} attempt(s) over "
            f"{waited_s:.3g} s; last error: {last}. Check that it is powered, connected and reachable "
            f"at that address, then `labctl bench check --bench FILE`.")


#: Why an interrupted command was not repeated, and what to do (by CommandInterrupted.reason).
_NOT_REPEATED = {
    "setting": ("the command was not re-sent, so it may or may not have taken effect: send it again (or read "
                "the setting back) before relying on it, or open the bench with RetryPolicy(resend_settings=True) "
                "to re-send settings automatically"),
    "partial reply": ("part of its reply had already been read, so it cannot be asked again mid-transfer: repeat "
                      "the measurement"),
}


class CommandInterrupted(LabctlError, ConnectionError):
    """The connection was lost during a command that is unsafe to repeat (a setting, or a reply already half
    read); the connection was re-opened but the command was not repeated."""

    def __init__(self, instrument: str, resource: str, command: str, cause: BaseException,
                 reason: str = "setting"):
        self.instrument = instrument
        self.resource = resource
        self.command = command
        self.cause = cause
        self.reason = reason
        super().__init__(
            f"the connection to {instrument!r} ({resource}) was lost during {command!r} "
            f"({type(cause).__name__}: {cause}); it was re-opened, but {_NOT_REPEATED[reason]}.")


# -- clocks -----------------------------------------------------------------------------------------------


class Clock(Protocol):
    """Where waits happen: ``now()`` in s and ``sleep(s)``."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """Real time (a real bench)."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class SimClock:
    """A simulated bench's clock: sleeping advances the world's time instead of waiting."""

    def __init__(self, world: Any):
        self.world = world

    def now(self) -> float:
        return float(self.world.time)

    def sleep(self, seconds: float) -> None:
        with self.world.lock:
            self.world.advance(seconds)


# -- policy and retries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` tries at most, waits growing ``first_delay_s`` x ``factor``^k (capped at
    ``max_delay_s``), never waiting more than ``budget_s`` in all. ``io_timeout_s`` bounds opening a
    resource. ``resend_settings`` re-sends a setting interrupted by a lost connection (and says so)."""

    attempts: int = 5
    first_delay_s: float = 0.25
    factor: float = 2.0
    max_delay_s: float = 4.0
    budget_s: float = 15.0
    io_timeout_s: float = 5.0
    resend_settings: bool = False

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.first_delay_s < 0 or self.factor < 1 or self.max_delay_s < 0 or self.budget_s < 0:
            raise ValueError("RetryPolicy delays and budget must be >= 0 and factor >= 1")

    def delays(self) -> Iterator[float]:
        """The waits before the 2nd, 3rd, ... attempt (the budget is enforced by :func:`retry_call`)."""
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield min(delay, self.max_delay_s)
            delay *= self.factor


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the session is dead (re-open the resource)."""
    if isinstance(exc, pyvisa.errors.VisaIOError):
        return exc.error_code in CONNECTION_LOST_CODES
    # InvalidSession: the session was closed, e.g. by an earlier reconnect that ran out of attempts.
    return isinstance(exc, (pyvisa.errors.InvalidSession, ConnectionError))


def is_transient_open_error(exc: BaseException) -> bool:
    """Whether opening may succeed if tried again (not: a name the simulated bench does not have)."""
    if isinstance(exc, UnknownResource):
        return False
    if isinstance(exc, pyvisa.errors.VisaIOError):
        return exc.error_code in TRANSIENT_OPEN_CODES
    return isinstance(exc, OSError)  # refused/reset connections, a serial port that is not there (yet)


def retry_call(fn: Callable[[], T], *, instrument: str, resource: str, policy: RetryPolicy, clock: Clock,
               transient: Callable[[BaseException], bool] = is_transient_open_error) -> tuple[T, int]:
    """``(fn(), attempts)``, retrying transient failures with backoff; raise :class:`InstrumentUnavailable`
    when the attempts or the wait budget run out (a non-transient error propagates at once)."""
    started = clock.now()
    attempts = 0
    last: BaseException | None = None
    for delay in (0.0, *policy.delays()):
        if delay:
            if clock.now() - started + delay > policy.budget_s:
                break
            clock.sleep(delay)
        attempts += 1
        try:
            return fn(), attempts
        except Exception as exc:
            if not transient(exc):
                raise
            last = exc
            log.info("%s (%s): attempt %d failed: %s", instrument, resource, attempts, exc)
    raise InstrumentUnavailable(instrument, resource, attempts, last or "no attempt made",
                                clock.now() - started)


def call_with_deadline(fn: Callable[[], T], seconds: float, *, instrument: str, resource: str) -> T:
    """``fn()``, or :class:`InstrumentUnavailable` if it has not returned after ``seconds`` of wall time.

    For calls that may block in a driver or OS stack beyond VISA's own timeouts (a TCP connect to a host
    that never answers). The call keeps running in a daemon thread; its result is dropped."""
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"open {instrument}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise InstrumentUnavailable(instrument, resource, 1, f"no answer within {seconds:g} s", seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def real_visa_library(spec: str, path: Any = None) -> Any:
    """The VISA library of a real bench: ``spec`` as pyvisa reads it ('' = the IVI library if one is
    installed, else pyvisa-py; '@py' = pyvisa-py; 'path@ivi' = that vendor library)."""
    try:
        return pyvisa.ResourceManager(spec).visalib
    except (ValueError, OSError) as exc:
        raise ConfigError(path, "visa_library", (
            f"cannot load the VISA library {spec or '(system default)'!r}: {exc}. Install the pure-Python "
            "back end (pip install 'labctl[real]') and set visa_library: '@py', or install a vendor VISA "
            "(NI-VISA, Keysight IO Libraries) and leave visa_library empty")) from None


def drain_errors(driver: Any) -> list[tuple[int, str]]:
    """Read a driver's whole error queue; return its entries (empty if none, or if it has no queue)."""
    drain = getattr(driver, "drain_errors", None)
    return list(drain()) if drain is not None else []


# -- the adapter ------------------------------------------------------------------------------------------


@dataclass
class Recovery:
    """One lost connection and what was done about it."""

    instrument: str
    resource: str
    cause: str
    command: str | None
    started: float  # clock time
    seconds: float = 0.0  # clock time until the connection was back (or given up)
    attempts: int = 0
    outcome: str = ""  # "retried query", "re-sent setting", "setting not re-sent", "unavailable"
    drained_errors: list[tuple[int, str]] = field(default_factory=list)


def is_idempotent(command: str | bytes | None) -> bool:
    """Whether a program message only asks (every command in it is a query), so sending it again is safe."""
    if command is None:
        return False
    text = command.decode("ascii", "replace") if isinstance(command, bytes) else command
    parts = [part.strip() for part in text.split(";") if part.strip()]
    return bool(parts) and all(part.split(None, 1)[0].endswith("?") for part in parts)


class ResilientAdapter(VISAAdapter):
    """A pymeasure VISA adapter that re-opens its resource when the connection is lost (see module doc).

    Built around a driver's own adapter (same connection, same settings). ``drain`` reads the
    instrument's error queue after a reconnect and returns its entries; ``recoveries`` collects one
    :class:`Recovery` per lost connection (shared by a bench's instruments)."""

    def __init__(self, adapter: VISAAdapter, *, instrument: str, policy: RetryPolicy, clock: Clock,
                 drain: Callable[[], list[tuple[int, str]]] | None = None,
                 recoveries: list[Recovery] | None = None):
        super().__init__(adapter)
        self.instrument = instrument
        self.policy = policy
        self.clock = clock
        self.drain = drain
        self.recoveries = recoveries if recoveries is not None else []
        self._settings = {name: getattr(adapter.connection, name) for name in _SETTINGS
                          if hasattr(adapter.connection, name)}
        adapter.connection = None  # the connection is ours now: the old adapter must not close it when collected
        self._last_command: str | bytes | None = None
        self._reply_started = False  # part of the reply to the last command has been read
        self._recovering = False
        self._dead = False  # the last reconnect ran out of attempts: no session is open

    # -- pymeasure's low-level I/O -------------------------------------------------------------------

    def _write(self, command: str, **kwargs) -> None:
        self._last_command, self._reply_started = command, False
        self._guarded(lambda: VISAAdapter._write(self, command, **kwargs), command, resend=True)

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        self._last_command, self._reply_started = content, False
        self._guarded(lambda: VISAAdapter._write_bytes(self, content, **kwargs), content, resend=True)

    def _read(self, **kwargs) -> str:
        return self._read_part(lambda: VISAAdapter._read(self, **kwargs))

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs) -> bytes:
        return self._read_part(lambda: VISAAdapter._read_bytes(self, count, break_on_termchar, **kwargs))

    def _read_part(self, operation: Callable[[], T]) -> T:
        """One read of a reply (a binary block takes several: header, then data)."""
        value = self._guarded(operation, self._last_command, resend=False, partial=self._reply_started)
        self._reply_started = True
        return value

    # -- recovery ------------------------------------------------------------------------------------

    def _guarded(self, operation: Callable[[], T], command: str | bytes | None, resend: bool,
                 partial: bool = False) -> T:
        """Run one I/O operation; on a lost connection re-open, then retry once if that is safe (never in the
        middle of a reply: ``partial`` says part of it was already read)."""
        if self._dead and not self._recovering:
            # Nothing was sent yet, so sending after a successful re-open is safe for any command.
            self._reconnect(ConnectionError("no open session since an earlier reconnect failed"), command)
            self.recoveries[-1].outcome = "re-opened before sending"
        try:
            return operation()
        except Exception as exc:
            if self._recovering or not is_connection_lost(exc):
                raise
            cause = exc
        recovery = self._reconnect(cause, command)
        text = command.decode("ascii", "replace")[:80] if isinstance(command, bytes) else (command or "")
        if partial:
            recovery.outcome = "reply interrupted"
            raise CommandInterrupted(self.instrument, str(self.resource_name), text or "(read)", cause,
                                     reason="partial reply")
        if is_idempotent(command):
            recovery.outcome = "retried query"
            return self._retry_once(operation, command, recovery, is_read=not resend)
        if resend and self.policy.resend_settings:
            recovery.outcome = "re-sent setting"
            log.warning("%s: connection lost during setting %r; re-opened and re-sent it (resend_settings=True)",
                        self.instrument, text)
            return self._retry_once(operation, command, recovery, is_read=False)
        recovery.outcome = "command not re-sent"
        raise CommandInterrupted(self.instrument, str(self.resource_name), text or "(read)", cause)

    def _retry_once(self, operation, command, recovery: Recovery, is_read: bool):
        try:
            if is_read:  # the reply was lost with the connection: ask again on the new one
                VISAAdapter._write(self, command) if isinstance(command, str) else VISAAdapter._write_bytes(
                    self, command)
            return operation()
        except Exception as exc:
            if not is_connection_lost(exc):
                raise
            recovery.outcome = "unavailable"
            raise InstrumentUnavailable(self.instrument, str(self.resource_name), recovery.attempts + 1, exc,
                                        self.clock.now() - recovery.started) from exc

    def _reconnect(self, cause: BaseException, command: str | bytes | None) -> Recovery:
        text = command.decode("ascii", "replace")[:80] if isinstance(command, bytes) else command
        recovery = Recovery(self.instrument, str(self.resource_name), f"{type(cause).__name__}: {cause}", text,
                            self.clock.now())
        self.recoveries.append(recovery)
        log.warning("%s (%s): connection lost (%s); re-opening", self.instrument, self.resource_name, cause)
        self._close_quietly()
        try:
            recovery.drained_errors, recovery.attempts = retry_call(
                self._reopen, instrument=self.instrument, resource=str(self.resource_name), policy=self.policy,
                clock=self.clock, transient=lambda exc: is_transient_open_error(exc) or is_connection_lost(exc))
        except InstrumentUnavailable as exc:
            recovery.attempts = exc.attempts
            recovery.outcome = "unavailable"
            recovery.seconds = self.clock.now() - recovery.started
            self._dead = True
            raise
        except Exception as exc:  # e.g. the drain's reply timed out or was damaged: that session is closed
            recovery.outcome = f"failed: {type(exc).__name__}"
            recovery.seconds = self.clock.now() - recovery.started
            self._dead = True
            raise
        self._dead = False
        recovery.seconds = self.clock.now() - recovery.started
        if recovery.drained_errors:
            log.warning("%s: error queue after reconnect held %s", self.instrument, recovery.drained_errors)
        return recovery

    def _reopen(self) -> list[tuple[int, str]]:
        """Open a new session and drain the error queue through it (the first real I/O: some back ends
        only find out at the first transfer that nobody answers); return the entries drained."""
        self.connection = self.manager.open_resource(self.resource_name, **self._settings)
        if self.drain is None:
            return []
        self._recovering = True
        try:
            return list(self.drain())
        except BaseException:
            self._close_quietly()
            raise
        finally:
            self._recovering = False

    def _close_quietly(self) -> None:
        # The session is dead or unwanted; closing it may fail the same way, which changes nothing.
        with contextlib.suppress(pyvisa.errors.Error, OSError):
            self.connection.close()


__all__ = [
    "Clock",
    "CommandInterrupted",
    "InstrumentUnavailable",
    "Recovery",
    "ResilientAdapter",
    "RetryPolicy",
    "SimClock",
    "WallClock",
    "call_with_deadline",
    "drain_errors",
    "real_visa_library",
    "is_connection_lost",
    "is_idempotent",
    "is_transient_open_error",
    "retry_call",
]
