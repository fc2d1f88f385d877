"""Shared behaviour of labctl's drivers on top of pymeasure.

Two things differ from plain pymeasure, on purpose:

* **Fail loudly.** ``check_errors`` raises :class:`InstrumentError` naming the last command, instead of
  only logging (pymeasure's default). Settings declared with ``check_set_errors=True`` therefore raise
  as soon as the instrument rejects them.
* **One lock per resource.** ``ask``/``values``/``binary_values`` hold ``self.lock`` (an ``RLock``)
  across their write and read, so two threads never interleave a query on one resource. The bench
  replaces ``lock`` with the lock it keeps for that resource; channels use their parent's lock.
"""

from __future__ import annotations

import threading

from pymeasure.instruments import Channel, Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.errors import InstrumentError, MalformedReply, ValueOutOfRange


def typed_validator(validator):
    """Wrap a pymeasure validator so a refused value raises :class:`ValueOutOfRange` before sending."""

    def checked(value, values):
        try:
            return validator(value, values)
        except (ValueError, TypeError) as exc:
            raise ValueOutOfRange(str(exc)) from None

    checked.__name__ = validator.__name__
    return checked


in_range = typed_validator(strict_range)
in_set = typed_validator(strict_discrete_set)


def in_integer_range(value, values):
    """Strictly accept an integer (not a bool) within ``values`` = (low, high), as an ``int``.

    Why not ``in_range``: a count, port or channel number of 2.5 must be refused, not truncated.
    """
    try:
        whole = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueOutOfRange(f"{value!r} is not an integer") from None
    if isinstance(value, bool) or whole != value:
        raise ValueOutOfRange(f"{value!r} is not an integer")
    return int(in_range(whole, values))


def _block_size(values) -> str:
    """How an error report names a binary block: its size, never its content."""
    if isinstance(values, (bytes, bytearray, memoryview)):
        return f"{len(values)}-byte"
    return f"{len(values)}-value"


class _LockedIO:
    """Hold the resource lock across each query's write and read, and remember the last command."""

    def _resource_lock(self) -> threading.RLock:
        raise NotImplementedError

    def write(self, command, **kwargs):
        with self._resource_lock():
            root = self._root()
            if command != root.error_query:
                root._last_command = command
            super().write(command, **kwargs)

    def write_binary_values(self, command, values, *args, **kwargs):
        with self._resource_lock():
            self._root()._last_command = f"{command}<{_block_size(values)} block>"
            super().write_binary_values(command, values, *args, **kwargs)

    def ask(self, command, query_delay=None):
        with self._resource_lock():
            return super().ask(command, query_delay)

    def values(self, command, *args, **kwargs):
        with self._resource_lock():
            return super().values(command, *args, **kwargs)

    def binary_values(self, command, query_delay=None, **kwargs):
        with self._resource_lock():
            return super().binary_values(command, query_delay, **kwargs)

    def _root(self):
        node = self
        while getattr(node, "parent", None) is not None:
            node = node.parent
        return node


class RaisingErrorsMixin:
    """Read the whole SYSTem:ERRor? queue and raise :class:`InstrumentError` if it held anything."""

    _last_command: str | None = None
    error_query = "SYST:ERR?"

    def check_errors(self):
        found = self.drain_errors()
        if found:
            raise InstrumentError(self.name, self._last_command, found)
        return found

    def drain_errors(self) -> list[tuple[int, str]]:
        """Read the whole error queue and return its ``(code, message)`` entries without raising.

        Why: entries left by the front panel or another program before we took over would otherwise be
        blamed on our next checked command; call it when the instrument is opened and report what it held.
        """
        found: list[tuple[int, str]] = []
        if not self.error_query:
            return found
        while True:
            reply = self.ask(self.error_query).strip()
            code_text, _, message = reply.partition(",")
            try:
                code = int(code_text)
            except ValueError:
                raise MalformedReply(self.name, self.error_query, reply) from None
            if code == 0:
                break
            found.append((code, message.strip().strip('"')))
            if len(found) > 100:  # a queue that never empties is itself an error
                break
        return found


class LabInstrument(_LockedIO, RaisingErrorsMixin, SCPIMixin, Instrument):
    """Base class of labctl's SCPI drivers: pymeasure Instrument + resource lock + raising errors."""

    def __init__(self, adapter, name, **kwargs):
        self.lock = threading.RLock()
        super().__init__(adapter, name, **kwargs)

    def _resource_lock(self):
        return self.lock


class LabChannel(_LockedIO, Channel):
    """Base class of labctl's driver channels: queries hold the parent instrument's lock."""

    def _resource_lock(self):
        return self._root().lock

    def check_errors(self):
        return self._root().check_errors()

    def check_set_errors(self):
        return self._root().check_errors()

    def check_get_errors(self):
        return self._root().check_errors()
