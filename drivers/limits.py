"""What each driver member and SCPI command does to a source's output, declared for a safety layer.

A driver knows its commands; a safety layer (``labctl.safety``) knows the bench's limits. So every driver
class declares, in one table (``safety_members``), what each of its public members is:

* :data:`READ` - a query or a local value; as a property it is read-only through a safety layer;
* :data:`SET` - a setting or action that changes no limited quantity (wavelength, output off, run);
* :class:`Limited` - sets a limited quantity (laser power, DC voltage, AWG amplitude ...) in a given unit;
* :class:`Enables` - turns an output on, so what it will emit (set earlier, perhaps by someone else) is
  read and checked first;
* :class:`Reaches` - hands a limited quantity to the instrument (an auto-lock picks its own bias), so it
  is allowed only when the instrument's whole span is within the limit;
* :data:`CHILD` - a channel sub-object or a collection of them, which has its own table;
* :data:`RAW` - direct I/O or driver internals (``write``, ``ask``, ``adapter``, ``reset`` ...).

Tables merge along the class hierarchy (:func:`member_table`), so a subclass declares only what it adds;
:data:`COMMON_MEMBERS` classifies what pymeasure's ``Instrument`` and ``Channel`` give every driver.

Each instrument class also declares ``limited_commands``: the SCPI headers that set a limited quantity,
in the manual's notation (``[:SOURce#]:POWer[:LEVel]``: ``[...]`` optional, capitals = short form, ``#`` =
numeric suffix), with the value's unit (fixed, by suffix, or by an instrument state that can be queried).
:func:`limited_settings` finds those settings in a program message, so a raw SCPI write can be checked too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

READ = "read"
SET = "set"
CHILD = "child"
RAW = "raw"


@dataclass(frozen=True)
class Limited:
    """A member that sets a limited ``quantity``.

    ``unit`` is the unit of the value (``"W"``, ``"dBm"``, ``"mW"``, ``"V"``, ``"mV"``, ``"Vpp"``, ``"A"``), or a
    function of the driver object returning it when an instrument setting decides (it may query).
    For a method, ``argument`` names the parameter holding the value(s): a number, a sequence, an array
    or a mapping whose values are the settings.
    """

    quantity: str
    unit: str | Callable[[Any], str]
    argument: str | None = None


@dataclass(frozen=True)
class Enables:
    """A member that turns a source's output on: the settings it will emit are read and checked first.

    ``reads`` lists ``(member, quantity, unit)``: a property, or a method called without arguments, whose
    value(s) are that quantity in that unit. For a property, setting a false value (off) is not checked.
    For a method, ``argument`` names its on/off parameter (None: it always turns outputs on) and
    ``channels`` the parameter listing the channels whose ``reads`` are checked (None given: all of them).
    """

    reads: tuple[tuple[str, str, str], ...]
    argument: str | None = None
    channels: str | None = None


@dataclass(frozen=True)
class Reaches:
    """A member after which the instrument itself sets ``quantity``, anywhere in ``span`` (in ``unit``).

    E.g. a bias controller's auto-lock modes choose the bias within the controller's whole range; a
    safety layer allows them only where that whole range is within the limit. Setting a property to
    one of ``unless`` (e.g. the manual mode, which holds a checked setpoint) is not such a hand-over.
    """

    quantity: str
    unit: str
    span: tuple[float, float]
    unless: tuple[Any, ...] = ()


#: What pymeasure's Instrument, Channel and SCPIMixin give every driver.
COMMON_MEMBERS: dict[str, Any] = {
    # identity and status queries
    "id": READ, "name": READ, "placeholder": READ, "insert_id": READ, "SCPI": READ, "isShutdown": READ,
    "error_query": READ, "complete": READ, "status": READ, "options": READ, "next_error": READ,
    "check_errors": READ, "check_get_errors": READ, "check_set_errors": READ, "drain_errors": READ,
    "wait_for": READ, "lock": READ, "safety_members": READ, "limited_commands": READ,
    # benign actions
    "shutdown": SET, "clear": SET,
    # sub-objects come out guarded
    "channels": CHILD,
    # direct I/O and driver internals
    "write": RAW, "read": RAW, "ask": RAW, "values": RAW, "binary_values": RAW, "write_bytes": RAW,
    "read_bytes": RAW, "write_binary_values": RAW, "read_binary_values": RAW, "adapter": RAW, "parent": RAW,
    "add_child": RAW, "remove_child": RAW, "get_channels": RAW, "get_channel_pairs": RAW,
    "control": RAW, "measurement": RAW, "setting": RAW,
    "ChannelCreator": RAW, "MultiChannelCreator": RAW, "BaseChannelCreator": RAW,
    # *RST returns every level to its default, which no guard can check
    "reset": RAW,
}


def member_table(cls: type) -> dict[str, Any]:
    """The merged ``safety_members`` of ``cls`` and its bases (a subclass entry wins)."""
    table = dict(COMMON_MEMBERS)
    for klass in reversed(cls.__mro__):
        table.update(vars(klass).get("safety_members", {}))
    return table


def channel_members(*ids: int, prefix: str = "ch_") -> dict[str, str]:
    """CHILD entries for channel attributes ``ch_1``, ``ch_2``, ... made by a pymeasure ChannelCreator."""
    return {f"{prefix}{i}": CHILD for i in ids}


# -- SCPI commands that set a limited quantity -------------------------------------------------------

POWER_SUFFIXES = {"PW": "pW", "NW": "nW", "UW": "uW", "MW": "mW", "W": "W", "DBM": "dBm"}
VOLTAGE_SUFFIXES = {"UV": "uV", "MV": "mV", "V": "V", "KV": "kV"}
CURRENT_SUFFIXES = {"UA": "uA", "MA": "mA", "A": "A"}


@dataclass(frozen=True)
class LimitedCommand:
    """A SCPI header that sets a limited quantity, and how to read its value.

    The value is the first parameter. Its unit is the suffix's (``suffixes``), else ``unit``; when
    ``unit`` is None the instrument state decides: ``unit_query`` (``{ch}`` = the header's first numeric
    suffix, default 1) answers a key of ``unit_replies``, and ``unit_header`` is the command that changes
    that state. ``block`` is the numpy dtype of a definite-length block value (e.g. ``"<f4"``).
    ``refuse`` makes the header always refused, saying why (e.g. ``*RCL`` recalls unchecked levels).
    ``span`` (in ``unit``): the command lets the instrument choose the quantity anywhere in it (see
    :class:`Reaches`), unless its parameter is one of ``unless``.
    """

    header: str
    quantity: str | None = None
    unit: str | None = None
    suffixes: Mapping[str, str] = field(default_factory=dict)
    unit_query: str | None = None
    unit_replies: Mapping[str, str] = field(default_factory=dict)
    unit_header: str | None = None
    block: str | None = None
    refuse: str | None = None
    span: tuple[float, float] | None = None
    unless: tuple[str, ...] = ()

    def matches(self, header: str) -> re.Match | None:
        return header_pattern(self.header).fullmatch(header)

    def sets_unit(self, header: str) -> bool:
        return self.unit_header is not None and header_pattern(self.unit_header).fullmatch(header) is not None


#: Refused through any raw access: a recalled setup restores levels nothing has checked.
COMMON_COMMANDS = (LimitedCommand("*RCL", refuse="the levels it recalls cannot be checked"),)

_patterns: dict[str, re.Pattern] = {}


def header_pattern(notation: str) -> re.Pattern:
    """Compile a header in the manual's notation into a pattern of absolute upper-case headers.

    Each mnemonic matches its short form up to its long form (``POW``, ``POWE``, ``POWER``), so the
    pattern matches at least what an instrument accepts.
    """
    if notation in _patterns:
        return _patterns[notation]
    text = notation if notation[:1] in (":", "[", "*") else ":" + notation
    parts: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "[":
            parts.append("(?:")
        elif c == "]":
            parts.append(")?")
        elif c == "#":
            parts.append(r"(\d*)")
        elif c.isalpha():
            j = i
            while j < len(text) and text[j].isalpha():
                j += 1
            word = text[i:j]
            short = len(word) - len(word.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) or len(word)
            rest = word[short:].upper()
            parts.append(re.escape(word[:short].upper()) + "".join(f"(?:{re.escape(ch)}" for ch in rest)
                         + ")?" * len(rest))
            i = j
            continue
        else:
            parts.append(re.escape(c))
        i += 1
    pattern = re.compile("".join(parts))
    _patterns[notation] = pattern
    return pattern


@dataclass(frozen=True)
class Command:
    """One command of a program message: its header as written, absolute forms, and parameter text."""

    text: str
    headers: tuple[str, ...]  #: upper-case absolute headers it may mean (path-resolved and from the root)
    parameters: str
    is_query: bool


def split_message(message: str) -> Iterator[Command]:
    """Split a SCPI program message into commands, resolving headers relative to the previous path.

    ``:SOUR1:WAV 1550NM;POW 5`` gives ``:SOUR1:WAV`` and ``:SOUR1:POW`` (also ``:POW``, in case the
    instrument resolves from the root); a trailing colon (``MZM:HOLD:VOLTAGE: 2500``) is dropped.
    """
    path: list[str] = []
    for text in _split_outside(message, ";"):
        text = text.strip()
        if not text:
            continue
        head, _, parameters = text.partition(" ")
        if "\t" in head:
            head, _, more = head.partition("\t")
            parameters = more + " " + parameters
        header = head.upper().rstrip(":")
        is_query = header.endswith("?")
        header = header.rstrip("?")
        if header.startswith("*"):
            yield Command(text, (header,), parameters.strip(), is_query)
            continue
        nodes = [n for n in header.lstrip(":").split(":") if n]
        resolved = nodes if header.startswith(":") else path + nodes
        path = resolved[:-1]
        headers = tuple(dict.fromkeys((":" + ":".join(resolved), ":" + ":".join(nodes))))
        yield Command(text, headers, parameters.strip(), is_query)


def _split_outside(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside quotes and parentheses."""
    parts, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif c == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


_NUMBER = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)")


@dataclass(frozen=True)
class LimitedSetting:
    """A limited setting found in a message. ``value`` is None when it cannot be read (then refuse)."""

    command: Command
    declaration: LimitedCommand
    value: float | None
    unit: str | None  #: None: the unit is the instrument state (query ``unit_query``)
    channel: str
    why: str = ""  #: why the value cannot be read


def first_parameter(parameters: str) -> str:
    return _split_outside(parameters, ",")[0].strip()


def limited_settings(message: str, declarations: tuple[LimitedCommand, ...]) -> list[LimitedSetting]:
    """The limited settings a text program message makes (values unread where they cannot be parsed)."""
    found = []
    commands = list(split_message(message))
    for command in commands:
        if command.is_query:
            continue
        for declaration in declarations:
            # the path-resolved and the root reading of a header may name different channels: check both
            matches = [m for m in map(declaration.matches, command.headers) if m]
            channels = dict.fromkeys(next((g for g in m.groups() if g), "1") for m in matches)
            for channel in channels:
                found += _setting(command, commands, declaration, channel)
    return found


def _setting(command: Command, commands: list[Command], declaration: LimitedCommand,
             channel: str) -> list[LimitedSetting]:
    """What ``command`` sets under ``declaration`` on ``channel`` (``commands``: the whole message)."""
    if declaration.refuse:
        return [LimitedSetting(command, declaration, None, None, channel, declaration.refuse)]
    if declaration.span:
        if first_parameter(command.parameters).upper() in declaration.unless:
            return []
        return [LimitedSetting(command, declaration, end, declaration.unit, channel) for end in declaration.span]
    if declaration.block:
        return [LimitedSetting(command, declaration, None, None, channel,
                               "its value is a binary block: send it with write_binary_values")]
    setting = _read_value(command, declaration, channel)
    if setting.value is not None and setting.unit is None and any(
            declaration.sets_unit(h) for c in commands for h in c.headers):
        setting = LimitedSetting(command, declaration, None, None, channel,
                                 "the same message changes the unit its value is read in; send the unit "
                                 "change on its own first, or give the value a unit suffix")
    return [setting]


def _read_value(command: Command, declaration: LimitedCommand, channel: str) -> LimitedSetting:
    text = first_parameter(command.parameters)
    number = _NUMBER.fullmatch(text)
    if number is None:
        why = f"its value {text!r} is not a number (give the number, not MIN/MAX/DEF/UP/DOWN)"
        return LimitedSetting(command, declaration, None, None, channel, why)
    value, suffix = float(number.group(1)), number.group(2).upper()
    if suffix:
        unit = declaration.suffixes.get(suffix)
        if unit is None:
            allowed = ", ".join(declaration.suffixes) or "none"
            return LimitedSetting(command, declaration, None, None, channel,
                                  f"its unit suffix {suffix!r} is not one it knows (known: {allowed})")
        return LimitedSetting(command, declaration, value, unit, channel)
    return LimitedSetting(command, declaration, value, declaration.unit, channel)
