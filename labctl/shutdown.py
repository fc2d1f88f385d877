"""Shutdown on every path: what a bench shutdown did, and signals turned into orderly interrupts.

A process driving a bench can end by an exception, Ctrl-C (once or repeatedly), SIGTERM (a job
scheduler, ``kill``), SIGHUP (a closed terminal or SSH session) or, in future, a lost network peer.
Every one of these must leave lasers and RF outputs off and results files with a status:

* :func:`terminate_as_interrupt` makes SIGTERM and SIGHUP raise :class:`Terminated` (a
  ``KeyboardInterrupt``) in the main thread, so the same ``finally``/``with`` blocks that handle
  Ctrl-C shut the bench down and close results files; the process then exits with 128 + signum.
* :func:`deferred_signals` holds SIGINT/SIGTERM/SIGHUP back while a shutdown runs (a second Ctrl-C
  must not stop it half-way) and delivers them once it is over.
* :class:`ShutdownReport` says what went off and what did not, so nobody claims sources are off
  when they may not be. :func:`collect_reports` gathers the reports of every bench closed in a block
  (the ``labctl`` command prints them), and :func:`close_open_benches` is the last resort for benches
  nobody closed.
"""

from __future__ import annotations

import signal
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

#: Signals that end a run in an orderly way (SIGHUP does not exist on Windows).
TERMINATING_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)
_DEFERRED = (signal.SIGINT, *TERMINATING_SIGNALS)


class Terminated(KeyboardInterrupt):
    """The process was asked to end by a signal (SIGTERM, SIGHUP); handled like Ctrl-C.

    ``exit_code`` is the shell convention for death by that signal, 128 + signum.
    """

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")


@dataclass(frozen=True)
class ShutdownReport:
    """The outcome of putting a bench's sources in their safe state, step by step.

    ``off``: steps that completed (e.g. ``"laser channel 1"``); ``failed``: (step, why) for steps that
    raised; ``unreached``: source instruments that were never opened (this process never touched
    them, so it cannot have left them on, but cannot say what state they are in either).
    """

    bench: str
    off: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    unreached: tuple[str, ...] = ()

    @property
    def all_off(self) -> bool:
        """True only if every source this bench opened was put in its safe state."""
        return not self.failed

    def may_be_on(self) -> list[str]:
        """Sources that may still be on, grouped by reason (e.g. all ports of one lost laser)."""
        by_reason: dict[str, list[str]] = {}
        for step, why in self.failed:
            by_reason.setdefault(why, []).append(step)
        return [f"{', '.join(steps)} (shutdown failed: {why})" for why, steps in by_reason.items()]

    def __str__(self) -> str:
        if self.all_off:
            text = f"bench {self.bench}: every source is off ({', '.join(self.off) or 'no sources'})"
        else:
            text = (f"bench {self.bench}: MAY STILL BE ON: {'; '.join(self.may_be_on())}. "
                    "Check these instruments by hand and switch their outputs off")
        if self.unreached:
            text += f"; never opened, state unknown: {', '.join(self.unreached)}"
        return text


def summarise(reports: list[ShutdownReport]) -> str:
    """One line for the user: sources shut down, or which may still be on."""
    if not reports:
        return "no bench was opened"
    if all(r.all_off for r in reports):
        unreached = [name for r in reports for name in r.unreached]
        return "sources were shut down" + (f" (never opened, state unknown: {', '.join(unreached)})"
                                           if unreached else "")
    return "; ".join(str(r) for r in reports if not r.all_off)


# -- signals ------------------------------------------------------------------------------------------


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _replace_handlers(signums: tuple[int, ...], handler: Any) -> dict[int, Any]:
    """Install ``handler`` for ``signums``; return the handlers replaced. Signals the process ignores
    stay ignored, and a handler installed outside Python (which Python could not put back) stays."""
    return {signum: signal.signal(signum, handler) for signum in signums
            if signal.getsignal(signum) not in (signal.SIG_IGN, None)}


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    A signal the process ignores stays ignored (``nohup labctl run ...`` must survive a closed
    terminal). Outside the main thread (where Python cannot install handlers) this does nothing.
    """
    if not _in_main_thread():
        yield
        return
    previous = _replace_handlers(TERMINATING_SIGNALS, _raise_terminated)
    try:
        yield
    finally:
        _restore(previous)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back during the block, then deliver them to their handlers.

    Used around shutdowns and results-file closing, which must finish once started. Outside the
    main thread signals are not delivered to the thread anyway, so this does nothing there.
    """
    if not _in_main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = _replace_handlers(_DEFERRED, hold)
    try:
        yield
    finally:
        _restore(previous)
        for signum in dict.fromkeys(received):  # each signal once, in arrival order
            signal.raise_signal(signum)


# -- reports of benches closed in this process ---------------------------------------------------------

_collectors: list[dict[int, ShutdownReport]] = []
_open_benches: "weakref.WeakSet[Any]" = weakref.WeakSet()
_registry_lock = threading.Lock()


def record(bench: Any, report: ShutdownReport) -> None:
    """Hand a bench's latest shutdown report to every active :func:`collect_reports` block."""
    with _registry_lock:
        for collector in _collectors:
            collector[id(bench)] = report


@contextmanager
def collect_reports() -> Iterator[dict[int, ShutdownReport]]:
    """Collect the latest shutdown report of each bench shut down during the block (from any thread)."""
    reports: dict[int, ShutdownReport] = {}
    with _registry_lock:
        _collectors.append(reports)
    try:
        yield reports
    finally:
        with _registry_lock:
            _collectors.remove(reports)


def opened(bench: Any) -> None:
    """Remember an open bench, so :func:`close_open_benches` can reach it."""
    with _registry_lock:
        _open_benches.add(bench)


def closed(bench: Any) -> None:
    """Forget a bench that is closed."""
    with _registry_lock:
        _open_benches.discard(bench)


def close_open_benches() -> list[ShutdownReport]:
    """Close every bench of this process still open (last resort before the process exits)."""
    with _registry_lock:
        benches = list(_open_benches)
    return [bench.close() for bench in benches]
