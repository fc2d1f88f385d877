"""Safety limits enforced in front of the drivers: a refused setting never reaches an instrument.

The bench hands experiments *guarded* role objects (:class:`Guarded`). A guarded object exposes only the
members its driver classifies (``safety_members``, see :mod:`drivers.limits`): reads, settings that
change no limited quantity, and :class:`~drivers.limits.Limited` settings, which are converted to SI and
checked against the bench file's limits before the driver sees them. Turning an output on
(:class:`~drivers.limits.Enables`) first reads back what it would emit - a setpoint the front panel or
another program left over a limit keeps the output off. Channel sub-objects come out guarded too. Anything else - an unclassified member, direct I/O (``write``, ``ask``), the driver's internals -
raises :class:`UnguardedMemberError`, which points to the one explicit way around the guard:
``bench.raw(name)`` (:class:`RawAccess`), which logs every message it sends, checks the limited settings it
can parse (``limited_commands`` of the driver), refuses those it cannot read, and reads the error queue
after each of its own commands so that nothing it caused is blamed on a later one.

This is a guard against mistakes and shortcuts, not a sandbox: Python introspection can reach anything.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import numpy as np
from pyvisa import util as visa_util

from drivers.errors import InstrumentError
from drivers.limits import (
    CHILD, COMMON_COMMANDS, RAW, READ, SET, Enables, Limited, LimitedCommand, LimitedSetting, Reaches,
    limited_settings, member_table, split_message,
)
from labctl.config import SafetyLimits
from labctl.errors import SafetyLimitError
from labctl.units import dbm_to_w, to_si, w_to_dbm

log = logging.getLogger(__name__)

Check = Callable[[float], None]


class UnguardedMemberError(SafetyLimitError, AttributeError):
    """A member of a guarded role object that the safety layer does not let through."""


def _at_most(what: str, limit: float, unit: str) -> Check:
    def check(value):
        if abs(float(value)) > limit * (1 + 1e-12):
            raise SafetyLimitError(
                f"{what} {float(value):g} {unit} exceeds the safety limit {limit:g} {unit} of the bench "
                f"file; nothing was sent. Raise the limit in the bench file's 'safety' section only if the "
                f"hardware allows it."
            )
    return check


def _laser_power_check(max_dbm: float) -> Check:
    def check(value):
        if float(value) > dbm_to_w(max_dbm) * (1 + 1e-12):
            raise SafetyLimitError(
                f"laser power {float(value) * 1e3:g} mW ({w_to_dbm(value):.2f} dBm) exceeds the safety limit "
                f"{max_dbm:g} dBm of the bench file; nothing was sent."
            )
    return check


#: Per role: quantity a driver declares -> (limit key, how to build its check from the limit).
ROLE_QUANTITIES: dict[str, dict[str, tuple[str, Callable[[float], Check]]]] = {
    "tunable_laser": {"optical_power": ("max_power_dbm", _laser_power_check)},
    "awg": {
        "awg_amplitude": ("max_amplitude_vpp", lambda lim: _at_most("AWG amplitude", lim, "Vpp")),
        "awg_offset": ("max_amplitude_vpp", lambda lim: _at_most("AWG offset", lim / 2, "V")),
        # a high or low level: offset + amplitude/2 within the two limits above reaches at most lim
        "awg_level": ("max_amplitude_vpp", lambda lim: _at_most("AWG output level", lim, "V")),
    },
    "bias_controller": {"bias_voltage": ("max_voltage_v", lambda lim: _at_most("bias voltage", lim, "V"))},
    "dc_source": {
        "dc_voltage": ("max_voltage_v", lambda lim: _at_most("DC source voltage", lim, "V")),
        "dc_current_limit": ("max_current_a", lambda lim: _at_most("DC source current limit", lim, "A")),
    },
    "optical_core": {
        "heater_voltage": ("max_heater_voltage_v", lambda lim: _at_most("OCC heater voltage", lim, "V")),
        "bias_voltage": ("max_bias_voltage_v", lambda lim: _at_most("OCC bias voltage", lim, "V")),
        "dac_amplitude": ("max_dac_amplitude_vpp", lambda lim: _at_most("OCC DAC amplitude", lim, "Vpp")),
    },
}


def checks_for(role: str, limits: SafetyLimits | None) -> dict[str, Check]:
    """Checks of a role's limited quantities (SI values in, raise when over), from its instrument's limits.

    A limit that is None (unlimited) gets no check.
    """
    if limits is None:
        return {}
    checks: dict[str, Check] = {}
    for quantity, (key, build) in ROLE_QUANTITIES.get(role, {}).items():
        limit = getattr(limits, key)
        if limit is not None:
            checks[quantity] = build(limit)
    return checks


def _extremes(values: Any, what: str) -> list[float]:
    """The smallest and largest number in ``values`` (a number, sequence, array or mapping); NaN ignored.

    NaN is left to the driver, whose validators refuse it before sending anything.
    """
    if isinstance(values, Mapping):
        values = list(values.values())
    try:
        array = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise SafetyLimitError(f"{what}: {values!r} is not numbers the safety limits can be checked against; "
                               "nothing was sent") from None
    array = array[~np.isnan(array)]
    if not array.size:
        return []
    return [float(array.min()), float(array.max())]


def _check_values(checks: dict[str, Check], quantity: str, values: Any, unit: str, what: str) -> None:
    check = checks.get(quantity)
    if check is None:
        return
    for value in _extremes(values, what):
        check(to_si(value, unit))


class Guarded:
    """A role object that lets through only classified members, checking limited settings first."""

    __slots__ = ("_target", "_checks", "_label", "_members", "_children")

    def __init__(self, target: Any, checks: dict[str, Check], label: str):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_checks", checks)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_members", member_table(type(target)))
        object.__setattr__(self, "_children", {})

    def _refuse(self, name: str, kind: Any) -> UnguardedMemberError:
        where = f"{self._label}: {type(self._target).__name__}.{name}"
        if kind == RAW:
            why = "is direct instrument I/O or driver internals"
        elif kind == READ:
            why = "is read-only"
        elif kind is None:
            why = "is not classified in the driver's safety_members table, so the safety layer does not pass it"
        else:
            why = "cannot be replaced"
        return UnguardedMemberError(
            f"{where} {why}. Use the role's classified members; for explicit, logged SCPI access use "
            f"bench.raw(name) (limited settings are still checked). A driver author adds new members to the "
            f"class's safety_members (drivers/limits.py).")

    def __getattr__(self, name: str) -> Any:
        kind = self._members.get(name) if not name.startswith("_") else None
        if kind is None or kind == RAW:
            raise self._refuse(name, kind)
        value = getattr(self._target, name)
        if kind == CHILD:
            return self._child(name, value)
        if isinstance(kind, Limited) and inspect.ismethod(value):
            if kind.argument is None:  # a declaration that names no value cannot be checked
                raise self._refuse(name, None)
            return self._checked_method(name, kind, value)
        if isinstance(kind, Enables) and inspect.ismethod(value):
            return self._enabling_method(name, kind, value)
        if isinstance(kind, Reaches) and inspect.ismethod(value):
            return self._reaching_method(name, kind, value)
        if inspect.ismethod(value):
            return _plain_function(value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        kind = self._members.get(name) if not name.startswith("_") else None
        static = inspect.getattr_static(type(self._target), name, None)
        settable = isinstance(static, property) and static.fset is not None
        if isinstance(kind, Limited) and settable and kind.argument is None:
            self._check(name, kind, value)
        elif isinstance(kind, Enables) and settable and kind.argument is None:
            if value:
                self._check_emitted(self._target, name, kind)
        elif isinstance(kind, Reaches) and settable:
            if value not in kind.unless:
                self._check_span(name, kind)
        elif kind != SET or not settable:
            raise self._refuse(name, kind)
        setattr(self._target, name, value)

    def __delattr__(self, name: str) -> None:
        raise self._refuse(name, self._members.get(name))

    def __dir__(self) -> list[str]:
        missing = object()  # getattr_static: reading a property would query the instrument
        return sorted(n for n, kind in self._members.items()
                      if kind != RAW and inspect.getattr_static(self._target, n, missing) is not missing)

    def __repr__(self) -> str:
        return f"<guarded {self._label}: {self._target!r}>"

    def _check(self, name: str, limited: Limited, values: Any) -> None:
        unit = limited.unit(self._target) if callable(limited.unit) else limited.unit
        _check_values(self._checks, limited.quantity, values, unit, f"{self._label}: {name}")

    def _checked_method(self, name: str, limited: Limited, method: Callable) -> Callable:
        signature = inspect.signature(method)

        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            self._check(name, limited, bound.arguments[limited.argument])
            return method(*args, **kwargs)

        checked.__name__ = name
        checked.__doc__ = method.__doc__
        return checked

    def _check_emitted(self, target: Any, name: str, enables: Enables) -> None:
        """Read what ``target`` would emit once on, and refuse if any of it is over a limit."""
        for member, quantity, unit in enables.reads:
            if quantity not in self._checks:
                continue  # unlimited: nothing to read
            value = getattr(target, member)
            try:
                _check_values(self._checks, quantity, value() if callable(value) else value, unit, member)
            except SafetyLimitError as exc:
                raise SafetyLimitError(f"{self._label}: {name} refused, the output stays as it was: its present "
                                       f"{member} (set earlier, perhaps outside labctl) is over the limit: {exc}. "
                                       f"Set {member} within the limit first.") from None

    def _check_span(self, name: str, reaches: Reaches) -> None:
        try:
            _check_values(self._checks, reaches.quantity, reaches.span, reaches.unit, name)
        except SafetyLimitError as exc:
            low, high = reaches.span
            raise SafetyLimitError(f"{self._label}: {name} refused: it lets the instrument set {reaches.quantity} "
                                   f"anywhere in {low:g} .. {high:g} {reaches.unit}, beyond the bench's limit "
                                   f"({exc}). Set the value yourself within the limit instead.") from None

    def _reaching_method(self, name: str, reaches: Reaches, method: Callable) -> Callable:
        def checked(*args, **kwargs):
            self._check_span(name, reaches)
            return method(*args, **kwargs)

        checked.__name__ = name
        checked.__doc__ = method.__doc__
        return checked

    def _enabling_method(self, name: str, enables: Enables, method: Callable) -> Callable:
        signature = inspect.signature(method)

        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            if enables.argument is None or bound.arguments[enables.argument]:
                chosen = bound.arguments.get(enables.channels) if enables.channels else None
                channels = getattr(self._target, "channels", {}) if enables.channels else {}
                targets = ([channels[c] for c in (channels if chosen is None else chosen) if c in channels]
                           if enables.channels else [self._target])
                for target in targets:
                    self._check_emitted(target, name, enables)
            return method(*args, **kwargs)

        checked.__name__ = name
        checked.__doc__ = method.__doc__
        return checked

    def _child(self, name: str, value: Any) -> Any:
        cached = self._children.get(name)
        if cached is not None and cached[0] is value:
            return cached[1]
        if isinstance(value, Mapping):
            guarded: Any = _GuardedMapping({key: Guarded(item, self._checks, f"{self._label} {name}[{key!r}]")
                                            for key, item in value.items()})
        else:
            guarded = Guarded(value, self._checks, f"{self._label} {name}")
        self._children[name] = (value, guarded)
        return guarded


class _GuardedMapping(Mapping):
    """A read-only mapping of guarded channel objects (``role.channels``)."""

    def __init__(self, items: dict):
        self._items = items

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _plain_function(method: Callable) -> Callable:
    """The bound method as a plain function, so ``__self__`` does not hand out the raw driver."""

    def call(*args, **kwargs):
        return method(*args, **kwargs)

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class RawAccess:
    """Explicit SCPI access to one instrument: logged, and checked against every limit it can parse.

    Every message sent is logged (logger ``labctl.safety``, WARNING). A message that sets a limited
    quantity (the driver's ``limited_commands``) is checked in SI after reading its unit (suffix, or the
    instrument's unit setting, queried); a limited setting it cannot read - ``MAX``, an unknown suffix, a
    block in a text message - is refused. Nothing is sent when anything in the message is refused. After
    each of its own commands it reads the error queue and raises :class:`InstrumentError` for what it
    held, so a later valid command is not blamed for it.
    """

    def __init__(self, driver: Any, name: str, checks: dict[str, Check],
                 commands: tuple[LimitedCommand, ...]):
        self._driver = driver
        self._name = name
        self._checks = checks
        self._commands = COMMON_COMMANDS + tuple(commands)
        self._pending_query: str | None = None
        log.warning("raw SCPI access to %s opened: only the limits its driver declares are checked", name)

    def __repr__(self) -> str:
        return f"<raw access to {self._name}>"

    @property
    def id(self) -> str:
        """Get the instrument's ``*IDN?`` reply (str)."""
        return self.ask("*IDN?").strip()

    # -- sending -------------------------------------------------------------------------------------

    def write(self, command: str) -> None:
        """Send ``command`` after checking it; read the error queue after it unless it is a query."""
        with self._driver.lock:
            self._screen(command)
            self._log(command)
            self._driver.write(command)
            if _has_query(command):
                self._pending_query = command
            else:
                self._after(command)

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Send ``command`` (checked, logged), read its reply, then the error queue."""
        return self._query(command, lambda: self._driver.ask(command, query_delay))

    def values(self, command: str, **kwargs) -> list:
        """Like :meth:`ask`, parsing the reply into values (pymeasure ``values``)."""
        return self._query(command, lambda: self._driver.values(command, **kwargs))

    def binary_values(self, command: str, **kwargs) -> Any:
        """Like :meth:`ask`, reading a binary block reply (pymeasure ``binary_values``)."""
        return self._query(command, lambda: self._driver.binary_values(command, **kwargs))

    def write_binary_values(self, command: str, values: Any, datatype: str = "f", is_big_endian: bool = False,
                            **kwargs) -> None:
        """Send ``command`` followed by ``values`` as one definite-length block (pyvisa semantics).

        A block for a limited header (e.g. an OCC heater table) is decoded as the driver declares and
        every value is checked.
        """
        payload = visa_util.to_binary_block(values, b"", datatype, is_big_endian)
        with self._driver.lock:
            self._screen(command, block=payload)
            self._log(f"{command}<{len(payload)}-byte block>")
            self._driver.write_binary_values(command, values, datatype=datatype, is_big_endian=is_big_endian,
                                             **kwargs)
            self._after(command)

    def read(self) -> str:
        """Read one reply (of a query sent with :meth:`write`), then the error queue."""
        with self._driver.lock:
            reply = self._driver.read()
            self._read_done()
            return reply

    def read_bytes(self, count: int, **kwargs) -> bytes:
        """Read ``count`` bytes of a reply (pymeasure ``read_bytes``)."""
        with self._driver.lock:
            return self._driver.read_bytes(count, **kwargs)

    def check_errors(self) -> list:
        """Read the error queue now; raise :class:`InstrumentError` if it held anything."""
        with self._driver.lock:
            self._pending_query = None
            return self._driver.check_errors()

    # -- checking ------------------------------------------------------------------------------------

    def _query(self, command: str, send: Callable[[], Any]) -> Any:
        with self._driver.lock:
            self._screen(command)
            self._log(command)
            try:
                reply = send()
            except Exception as exc:  # e.g. a refused query is never answered: its error is in the queue
                found = self._driver.drain_errors()
                if found:
                    raise InstrumentError(self._driver.name, command, found) from exc
                raise
            self._after(command)
            return reply

    def _read_done(self) -> None:
        if self._pending_query is not None:
            command, self._pending_query = self._pending_query, None
            self._after(command)

    def _after(self, command: str) -> None:
        found = self._driver.drain_errors()
        if found:
            raise InstrumentError(self._driver.name, command, found)

    def _log(self, message: str) -> None:
        log.warning("raw SCPI to %s: %s", self._name, message)

    def _screen(self, message: str, block: bytes | None = None) -> None:
        """Raise :class:`SafetyLimitError` if any limited setting of ``message`` is over a limit or unreadable."""
        try:
            self._screen_settings(message, block)
        except SafetyLimitError as exc:
            log.warning("raw SCPI to %s refused: %s (%s)", self._name, message, exc)
            raise

    def _screen_settings(self, message: str, block: bytes | None) -> None:
        last = list(split_message(message))[-1:] if block is not None else []
        for setting in limited_settings(message, self._commands):
            if block is not None and last and setting.command == last[0]:
                self._screen_block(setting, block)
            elif setting.value is None:
                self._refuse(message, setting, setting.why)
            elif setting.declaration.span:
                try:
                    _check_values(self._checks, setting.declaration.quantity, setting.value, setting.unit, "")
                except SafetyLimitError as exc:
                    low, high = setting.declaration.span
                    self._refuse(message, setting, f"it lets the instrument choose it anywhere in {low:g} .. "
                                                   f"{high:g} {setting.unit}, beyond the limit ({exc})")
            else:
                unit = setting.unit or self._state_unit(message, setting)
                _check_values(self._checks, setting.declaration.quantity, setting.value, unit,
                              f"raw {self._name}")

    def _screen_block(self, setting: LimitedSetting, block: bytes) -> None:
        declaration = setting.declaration
        if declaration.refuse:
            self._refuse(setting.command.text, setting, declaration.refuse)
        if not declaration.block:
            self._refuse(setting.command.text, setting, "its value is a number, not a binary block")
        dtype = np.dtype(declaration.block)
        if len(block) % dtype.itemsize:
            self._refuse(setting.command.text, setting, f"the block is not whole {dtype} values")
        _check_values(self._checks, declaration.quantity, np.frombuffer(block, dtype=dtype),
                      declaration.unit or "V", f"raw {self._name}")

    def _state_unit(self, message: str, setting: LimitedSetting) -> str:
        query = setting.declaration.unit_query
        if query is None:
            self._refuse(message, setting, "its unit is not declared")
        reply = str(self._driver.ask(query.format(ch=setting.channel))).strip().upper()
        replies = {key.upper(): unit for key, unit in setting.declaration.unit_replies.items()}
        if reply not in replies:
            self._refuse(message, setting, f"the unit query {query.format(ch=setting.channel)!r} answered "
                                           f"{reply!r}, not a unit it knows")
        return replies[reply]

    def _refuse(self, message: str, setting: LimitedSetting, why: str) -> None:
        what = setting.declaration.quantity or "a stored state"
        raise SafetyLimitError(f"raw SCPI {message!r} to {self._name} refused: {setting.command.text!r} sets "
                               f"{what} and {why}; nothing was sent. Send a plain number (with a unit suffix "
                               f"where the instrument takes one), or use the role object.")


def _has_query(message: str) -> bool:
    return any(command.is_query for command in split_message(message))


def exposed_members(guarded: Guarded) -> set[str]:
    """Names a guarded object lets through and its driver has (read statically: nothing is queried)."""
    return set(dir(guarded))


def guarded_type(guarded: Guarded) -> type:
    """The driver class behind a guarded object (for messages and reviews)."""
    return type(object.__getattribute__(guarded, "_target"))
