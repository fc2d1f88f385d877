"""A small, strict SCPI engine: command trees, parameter parsing, errors, binary blocks.

Simulated instruments declare their commands as SCPI patterns, the way programming manuals print
them: ``[:SOURce#][:CHANnel#]:POWer[:LEVel][:IMMediate][:AMPLitude]``. Upper-case letters are the
short form, ``[...]`` marks optional nodes, ``#`` a numeric suffix (default 1). Matching is
case-insensitive and accepts the short or the long form of each node, as IEEE 488.2 / SCPI-99 require.

A program message may hold several commands separated by ``;``. A command that does not start with
``:`` or ``*`` is resolved relative to the path of the previous one (SCPI-99 section 6.2.4).
Parameters may carry unit suffixes with SI multipliers (``1550NM``, ``-3DBM``, ``2.5MW``) and the
special values ``MIN``, ``MAX`` and ``DEF``. Definite-length binary blocks ``#<n><len><bytes>``
pass through untouched.

Errors use the standard SCPI codes, so a driver sees what a real instrument would put in its
``SYSTem:ERRor?`` queue. Whatever bytes arrive, an error-queue entry is printable ASCII of at most
255 characters (SCPI-99 21.8): received text is escaped (``\\xNN``), embedded quotes doubled.

Allocation caps: the simulator never allocates more than ``MAX_ALLOCATION_BYTES`` for one array,
block or response, whatever a real instrument would accept, so no message can exhaust the host's
memory. Instruments cap the settings that size memory with this in mind, one module constant each
(``keysight_m8195a.SIM_MEMORY_CAP_SAMPLES``, ``keysight_infiniium.SIM_MAX_POINTS``,
``labctl_occ.MAX_PROGRAM_VALUES``/``MAX_TABLE_VALUES``, ``keysight_n7744a.MAX_LOG_POINTS``); the engine
caps binary blocks (``MAX_BLOCK_BYTES``, -223) and the responses to one message (``MAX_RESPONSE_BYTES``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

# --- standard SCPI error codes (SCPI-99 vol. 2, chapter 21) ------------------------------------

ERROR_MESSAGES = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -120: "Numeric data error",
    -121: "Invalid character in number",
    -123: "Exponent too large",
    -124: "Too many digits",
    -131: "Invalid suffix",
    -141: "Invalid character data",
    -148: "Character data not allowed",
    -151: "Invalid string data",
    -160: "Block data error",
    -161: "Invalid block data",
    -200: "Execution error",
    -211: "Trigger ignored",
    -213: "Init ignored",
    -221: "Settings conflict",
    -222: "Data out of range",
    -223: "Too much data",
    -224: "Illegal parameter value",
    -225: "Out of memory",
    -230: "Data corrupt or stale",
    -231: "Data questionable",
    -241: "Hardware missing",
    -300: "Device-specific error",
    -350: "Queue overflow",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
}


#: Longest error/event description plus device-dependent info in a queue entry (SCPI-99 21.8).
MAX_ERROR_TEXT = 255

#: The simulator's cap on one allocation (array, block or response), in bytes: 256 MiB. Real
#: instruments may hold more (the M8195A 16 GSa per channel); the simulator refuses beyond this.
MAX_ALLOCATION_BYTES = 1 << 28
#: Largest definite-length block a program message may carry (beyond: -223 "Too much data").
MAX_BLOCK_BYTES = MAX_ALLOCATION_BYTES
#: Largest response the output queue holds for one program message (beyond: -225 "Out of memory").
MAX_RESPONSE_BYTES = MAX_ALLOCATION_BYTES


def printable(text: str) -> str:
    """``text`` as printable ASCII: other characters escaped as ``\\xNN``/``\\uNNNN``."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in text)


class ScpiError(Exception):
    """An error a command puts in the instrument's error queue (code, message, detail)."""

    def __init__(self, code: int, detail: str = ""):
        self.code = code
        self.detail = detail
        super().__init__(self.entry())

    def entry(self) -> str:
        """``<code>,"<message>[;<detail>]"``: printable ASCII, quotes doubled, at most 255 characters."""
        message = ERROR_MESSAGES.get(self.code, "Error")
        if self.detail:
            message = f"{message};{printable(self.detail)}"
        message = message.replace('"', '""')[:MAX_ERROR_TEXT]
        if (len(message) - len(message.rstrip('"'))) % 2:
            message = message[:-1]  # truncation split a doubled quote
        return f'{self.code},"{message}"'


# --- units ----------------------------------------------------------------------------------

_MULTIPLIERS = {
    "EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3,
    "": 1.0, "M": 1e-3, "U": 1e-6, "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18,
}

#: Base unit suffixes understood by the engine; DBM/DB are logarithmic and take no multiplier.
UNITS = ("DBM", "DB", "HZ", "W", "M", "V", "A", "S", "OHM", "PCT", "SA/S", "C")

# unambiguous (linear time on long digit or space runs): each part can match in one way only
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+))?(?:\s*([A-Za-z/%]+))?\s*$")
_NUMBER_START = re.compile(r"^\s*[+-]?\.?\d")
#: IEEE 488.2 7.7.2.4.1: a mantissa of at most 255 digits, an exponent within +/-32000.
MAX_MANTISSA_DIGITS = 255
MAX_EXPONENT = 32000
#: SCPI-99 7.2.1.5 special numeric values, refused where a finite number is required.
_SPECIAL_NUMBERS = ("INFINITY", "INF", "NINFINITY", "NINF", "NAN")


def parse_unit_suffix(suffix: str, expected: str) -> float:
    """Return the multiplier of ``suffix`` for the base unit ``expected`` (e.g. ``NM`` -> 1e-9).

    SCPI unit suffixes are case-insensitive, so ``M`` as a multiplier means milli and ``MA`` mega,
    except for the two exceptions SCPI makes: ``MHZ`` is megahertz and ``MOHM`` megaohm.
    """
    s = suffix.upper()
    e = expected.upper()
    if not s:
        return 1.0
    if e in ("DBM", "DB"):
        if s == e:
            return 1.0
        raise ScpiError(-131, f"unit {suffix} not allowed here; use {expected}")
    if s == "MHZ" and e == "HZ":
        return 1e6
    if s == "MOHM" and e == "OHM":
        return 1e6
    if s.endswith(e):
        prefix = s[: -len(e)]
        if prefix in _MULTIPLIERS:
            return _MULTIPLIERS[prefix]
    raise ScpiError(-131, f"unit {suffix} not allowed here; use {expected}")


# --- parameters ----------------------------------------------------------------------------


@dataclass
class Param:
    """One parameter of a command as received: text, or raw bytes for a binary block."""

    text: str
    block: bytes | None = None

    @property
    def upper(self) -> str:
        return self.text.strip().upper()

    def number(
        self,
        unit: str = "",
        low: float | None = None,
        high: float | None = None,
        default: float | None = None,
        alt_units: dict[str, Callable[[float], float]] | None = None,
    ) -> float:
        """Parse a numeric parameter with optional unit suffix, MIN/MAX/DEF and a range check.

        ``alt_units`` maps other accepted base units to a converter into ``unit``, e.g. a power
        command that takes both DBM and W. Values outside [low, high] raise -222.
        """
        word = self.upper
        if word in ("MIN", "MINIMUM"):
            if low is None:
                raise ScpiError(-224, "MIN not defined for this parameter")
            return low
        if word in ("MAX", "MAXIMUM"):
            if high is None:
                raise ScpiError(-224, "MAX not defined for this parameter")
            return high
        if word in ("DEF", "DEFAULT"):
            if default is None:
                raise ScpiError(-224, "DEF not defined for this parameter")
            return default
        if word in _SPECIAL_NUMBERS:
            raise ScpiError(-224, f"{word} not allowed here; send a finite number")
        match = _NUMBER.match(self.text)
        if not match:
            if _NUMBER_START.match(self.text):
                raise ScpiError(-121, f"{self.text.strip()!r} is not a decimal number")
            raise ScpiError(-104, f"expected a number, got {self.text.strip()!r}")
        mantissa, exponent, suffix = match.groups(default="")
        if sum(c.isdigit() for c in mantissa) > MAX_MANTISSA_DIGITS:
            raise ScpiError(-124, f"more than {MAX_MANTISSA_DIGITS} digits")
        if exponent:
            digits = exponent.lstrip("+-").lstrip("0") or "0"
            if len(digits) > len(str(MAX_EXPONENT)) or int(digits) > MAX_EXPONENT:
                raise ScpiError(-123, f"exponent beyond +/-{MAX_EXPONENT}")
            mantissa = f"{mantissa}e{'-' if exponent.startswith('-') else ''}{digits}"
        value = float(mantissa)
        try:
            if suffix and alt_units:
                for base, convert in alt_units.items():
                    try:
                        mult = parse_unit_suffix(suffix, base)
                    except ScpiError:
                        continue
                    value = convert(value * mult)
                    break
                else:
                    value *= parse_unit_suffix(suffix, unit)
            else:
                value *= parse_unit_suffix(suffix, unit) if unit else _no_suffix(suffix)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise ScpiError(-222, f"{self.text.strip()} is beyond any value this parameter takes{_bounds(low, high)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ScpiError(-222, f"{value:g} outside{_bounds(low, high)}")
        return value + 0.0  # -0 is 0

    def integer(self, low: int | None = None, high: int | None = None, default: int | None = None) -> int:
        """Parse an integer parameter (MIN/MAX/DEF allowed) with a range check."""
        value = self.number("", low, high, default)
        if value != int(value):
            raise ScpiError(-104, f"expected an integer, got {self.text.strip()!r}")
        return int(value)

    def boolean(self) -> bool:
        """Parse ON/OFF/1/0."""
        word = self.upper
        if word in ("ON", "1"):
            return True
        if word in ("OFF", "0"):
            return False
        raise ScpiError(-224, f"expected ON|OFF|1|0, got {self.text.strip()!r}")

    def choice(self, options: Iterable[str]) -> str:
        """Parse character data against SCPI mnemonics (short or long form); return the long form."""
        word = self.upper
        for option in options:
            if _node_matches(Node(option, False), word):
                return option.upper()
        raise ScpiError(-224, f"{self.text.strip()!r} not one of {', '.join(options)}")

    def string(self) -> str:
        """Parse a quoted string parameter (a doubled quote inside stands for one)."""
        text = self.text.strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            quote, inner = text[0], text[1:-1]
            if quote not in inner.replace(quote * 2, ""):
                return inner.replace(quote * 2, quote)
        raise ScpiError(-151, f"expected a quoted string, got {text!r}")

    def binary(self) -> bytes:
        """Return the payload of a definite-length binary block."""
        if self.block is None:
            raise ScpiError(-104, "expected a definite-length block #<n><len><data>")
        return self.block


def _bounds(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    return f" [{'-inf' if low is None else format(low, 'g')}, {'inf' if high is None else format(high, 'g')}]"


def _no_suffix(suffix: str) -> float:
    if suffix:
        raise ScpiError(-131, f"unit {suffix} not allowed here")
    return 1.0


# --- binary blocks -------------------------------------------------------------------------


#: What SCPI-99 (7.2.1) answers for an infinite or undefined number.
SCPI_INFINITY = 9.9e37
SCPI_NAN = 9.91e37


def format_number(value: float, digits: int | None = None, *, sign: bool = False, exponent_digits: int = 2) -> str:
    """A number in NR3 form as a simulated instrument answers it: ``digits`` after the point
    (None: the fewest, from 6, that read back as exactly the same double), a leading ``+`` when
    ``sign``, the exponent zero-padded to ``exponent_digits`` (``format_number(1.55e-6, 8, sign=True,
    exponent_digits=3)`` is ``+1.55000000E-006``). Infinities and NaN are SCPI-99's +-9.9E37 and 9.91E37."""
    value = float(value)
    if math.isnan(value):
        value = SCPI_NAN
    elif math.isinf(value):
        value = math.copysign(SCPI_INFINITY, value)
    if digits is None:
        digits = next((d for d in range(6, 17) if float(f"{value:.{d}E}") == value), 16)
    mantissa, exponent = f"{value:{'+' if sign else ''}.{digits}E}".split("E")
    return f"{mantissa}E{int(exponent):+0{exponent_digits + 1}d}"


def definite_block(payload: bytes) -> bytes:
    """Format ``payload`` as an IEEE 488.2 definite-length arbitrary block."""
    length = str(len(payload)).encode()
    if len(length) > 9:
        raise ValueError("block too long for a definite-length header")
    return b"#" + str(len(length)).encode() + length + payload


def _read_block(data: bytes, pos: int) -> tuple[bytes, int]:
    """Parse a block starting at ``data[pos] == '#'``; return (payload, position after it).

    A header that is not ``#<1-9><that many digits>`` is -160; a length the message does not hold,
    or data after the block other than a separator, is -161 (the header lies); a block larger than
    ``MAX_BLOCK_BYTES`` is -223 and is not copied.
    """
    digit = data[pos + 1 : pos + 2]
    if digit == b"0":
        raise ScpiError(-160, "indefinite-length blocks are not supported; send #<n><len><data>")
    if not (b"1" <= digit <= b"9"):
        raise ScpiError(-160, "malformed block header; send #<n><len><data>")
    ndigits = int(digit)
    field = data[pos + 2 : pos + 2 + ndigits]
    if len(field) != ndigits or not field.isdigit():
        raise ScpiError(-160, f"block length must be {ndigits} decimal digits")
    length = int(field)
    if length > MAX_BLOCK_BYTES:
        raise ScpiError(-223, f"block of {length} bytes; the simulator takes at most {MAX_BLOCK_BYTES}")
    start = pos + 2 + ndigits
    end = start + length
    if end > len(data):
        raise ScpiError(-161, f"block announced {length} bytes, got {len(data) - start}")
    after = end
    while after < len(data) and data[after] in b" \t":
        after += 1
    if after < len(data) and data[after] not in b",;\r\n":
        raise ScpiError(-161, f"data continue after the {length} bytes the block announced")
    return data[start:end], end


# --- splitting a program message -----------------------------------------------------------


@dataclass
class ParsedCommand:
    header: str
    params: list[Param] = field(default_factory=list)

    @property
    def is_query(self) -> bool:
        return self.header.endswith("?")


def _text(raw: bytes | bytearray) -> str:
    """Received bytes as text; bytes beyond ASCII (only legal inside strings) kept as ``\\xNN``."""
    return raw.decode("ascii", errors="backslashreplace")


def _check_ascii(data: bytes, start: int = 0, end: int | None = None) -> None:
    """Raise -101 for the first byte beyond ASCII in ``data[start:end]``."""
    if data[start:end].isascii():
        return
    index = next(i for i in range(start, len(data) if end is None else end) if data[i] > 0x7F)
    raise ScpiError(-101, f"byte 0x{data[index]:02X} at position {index} outside a string; SCPI is ASCII")


def split_message(data: bytes) -> list[ParsedCommand]:
    """Split one program message into commands, honouring quotes and binary blocks.

    A byte beyond ASCII outside a quoted string or a block is -101 "Invalid character".
    """
    if not any(c in data for c in (b'"', b"'", b"#")):
        _check_ascii(data)
        return _split_plain(data)
    commands: list[ParsedCommand] = []
    n = len(data)
    pos = 0
    while pos < n:
        # header
        while pos < n and data[pos] in b" \t\r\n;":
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and data[pos] not in b" \t;\r\n":
            pos += 1
        _check_ascii(data, start, pos)
        header = data[start:pos].decode("ascii")
        cmd = ParsedCommand(header)
        # parameters
        while pos < n and data[pos] in b" \t":
            pos += 1
        text = bytearray()
        quote = None
        while pos < n:
            c = data[pos]
            if quote is not None:
                text.append(c)
                if c == quote:
                    quote = None
                pos += 1
                continue
            if c in b"'\"":
                quote = c
                text.append(c)
                pos += 1
            elif c == ord("#") and not text.strip():
                payload, pos = _read_block(data, pos)
                cmd.params.append(Param("#block", payload))
                text = bytearray()
                while pos < n and data[pos] in b" \t":
                    pos += 1
                if pos < n and data[pos] == ord(","):
                    pos += 1
                    continue
                break
            elif c == ord(","):
                cmd.params.append(Param(_text(text)))
                text = bytearray()
                pos += 1
            elif c in b";\r\n":
                break
            elif c > 0x7F:
                _check_ascii(data, pos, pos + 1)
            else:
                text.append(c)
                pos += 1
        if quote is not None:
            raise ScpiError(-151, "unterminated string")
        if text.strip():
            cmd.params.append(Param(_text(text).strip()))
        elif cmd.params and cmd.params[-1].block is None and data[pos - 1 : pos] == b",":
            raise ScpiError(-109, "trailing comma")
        commands.append(cmd)
        if pos < n and data[pos] == ord(";"):
            pos += 1
    return commands


def _split_plain(data: bytes) -> list[ParsedCommand]:
    """Fast path of ``split_message`` for messages without strings or blocks (most of them)."""
    commands = []
    for part in data.decode("ascii").replace("\r", "\n").replace("\n", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        header, _, rest = part.partition(" ")
        if "\t" in header:
            header, _, tail = header.partition("\t")
            rest = f"{tail} {rest}"
        params = []
        rest = rest.strip()
        if rest:
            pieces = rest.split(",")
            if any(not piece.strip() for piece in pieces[1:]) and pieces[-1].strip() == "":
                raise ScpiError(-109, "trailing comma")
            params = [Param(piece.strip()) for piece in pieces]
        commands.append(ParsedCommand(header, params))
    return commands


# --- command patterns ----------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One node of a command pattern: its mnemonic, whether it may be left out, whether it takes a suffix."""

    mnemonic: str  # as printed, e.g. "SOURce"
    optional: bool
    suffix: bool = False  # takes a numeric suffix ('#')

    @property
    def short(self) -> str:
        return "".join(ch for ch in self.mnemonic if not ch.islower()).upper()

    @property
    def long(self) -> str:
        return self.mnemonic.upper()


_SUFFIXED = re.compile(r"^([A-Za-z*_]+)(\d*)$")
#: Numeric header suffixes address units and channels: a longer one is -114 without being converted.
MAX_SUFFIX_DIGITS = 9
#: Headers longer than this are resolved but not remembered, so the cache stays small.
_CACHED_HEADER_LENGTH = 128


def _node_matches(node: Node, word: str) -> tuple[bool, int | None] | bool:
    """Match one header word against a node; return (matched, suffix) for suffixed nodes."""
    word = word.upper()
    m = _SUFFIXED.match(word)
    if not m:
        return (False, None) if node.suffix else False
    stem, digits = m.group(1), m.group(2)
    if node.suffix:
        if stem in (node.short, node.long):
            if len(digits) > MAX_SUFFIX_DIGITS:
                raise ScpiError(-114, f"suffix of {len(digits)} digits on {stem}")
            return True, int(digits) if digits else None
        return False, None
    if digits:
        # mnemonics may legitimately end in digits only if declared so (e.g. "*IDN")
        return word in (node.short, node.long)
    return stem in (node.short, node.long)


def parse_pattern(pattern: str) -> list[Node]:
    """The nodes of a pattern as manuals print it: ``[:SOURce#]:POWer[:LEVel]``."""
    nodes = []
    for part in re.findall(r"\[:?[^\]]+\]|:?[^:\[]+", pattern):
        optional = part.startswith("[")
        part = part.strip("[]").lstrip(":")
        suffix = part.endswith("#")
        nodes.append(Node(part.rstrip("#"), optional, suffix))
    return nodes


Handler = Callable[["Call"], "str | bytes | None"]


@dataclass
class Call:
    """What a handler receives: numeric suffixes (in pattern order), parameters, query flag."""

    suffixes: list[int]
    params: list[Param]
    is_query: bool

    def suffix(self, index: int = 0, low: int = 1, high: int = 1) -> int:
        """Return the index-th numeric suffix, checking it addresses an existing unit (-114)."""
        value = self.suffixes[index]
        if not low <= value <= high:
            raise ScpiError(-114, f"suffix {value} outside {low}..{high}")
        return value

    def param(self, index: int = 0) -> Param:
        """Return the index-th parameter or raise -109 (missing parameter)."""
        if index >= len(self.params):
            raise ScpiError(-109)
        return self.params[index]

    def expect(self, count: int, optional: int = 0) -> None:
        """Check the parameter count: ``count`` required, up to ``optional`` more allowed."""
        if len(self.params) < count:
            raise ScpiError(-109)
        if len(self.params) > count + optional:
            raise ScpiError(-108)


@dataclass
class _Command:
    pattern: str
    nodes: list[Node]
    setter: Handler | None
    getter: Handler | None


class CommandTree:
    """The set of commands one instrument understands, matched by SCPI rules."""

    def __init__(self) -> None:
        self._commands: list[_Command] = []
        self._resolved: dict[str, tuple[_Command, list[int]]] = {}

    def add(self, pattern: str, setter: Handler | None = None, getter: Handler | None = None) -> None:
        """Declare a command. ``setter`` handles the form without ``?``, ``getter`` the query.

        Declaring a pattern again replaces it, so a model can override a common command (``*RST``).
        """
        command = _Command(pattern, parse_pattern(pattern), setter, getter)
        self._resolved.clear()
        for index, existing in enumerate(self._commands):
            if existing.nodes == command.nodes:
                self._commands[index] = command
                return
        self._commands.append(command)

    def patterns(self) -> list[tuple[str, bool, bool]]:
        """Every declared command as (pattern, has a set form, has a query form), for generators and docs."""
        return [(c.pattern, c.setter is not None, c.getter is not None) for c in self._commands]

    def resolve(self, header: str) -> tuple[_Command, list[int]]:
        """Find the command a (full, absolute) header names; raise -113 if there is none."""
        key = header.upper()
        hit = self._resolved.get(key)
        if hit is not None:
            return hit[0], list(hit[1])
        command, suffixes = self._search(header)
        if len(self._resolved) < 4096 and len(key) <= _CACHED_HEADER_LENGTH:
            self._resolved[key] = (command, suffixes)
        return command, list(suffixes)

    def _search(self, header: str) -> tuple[_Command, list[int]]:
        words = [w for w in header.strip(":").rstrip("?").split(":")]
        for command in self._commands:
            suffixes = _match(command.nodes, words)
            if suffixes is not None:
                return command, suffixes
        raise ScpiError(-113, header)


def _match(nodes: Sequence[Node], words: Sequence[str]) -> list[int] | None:
    """Match words against nodes, skipping optional nodes; return suffixes or None."""
    if not nodes:
        return [] if not words else None
    node, rest = nodes[0], nodes[1:]
    if words:
        hit = _node_matches(node, words[0])
        matched, value = hit if node.suffix else (hit, None)
        if matched:
            tail = _match(rest, words[1:])
            if tail is not None:
                return ([value if value is not None else 1] if node.suffix else []) + tail
    if node.optional:
        tail = _match(rest, words)
        if tail is not None:
            return ([1] if node.suffix else []) + tail
    return None


def absolute_headers(commands: list[ParsedCommand]) -> list[str]:
    """Resolve headers relative to the previous command's path (SCPI-99 6.2.4)."""
    resolved = []
    path: list[str] = []
    for cmd in commands:
        header = cmd.header
        if header.startswith("*"):
            resolved.append(header)
            continue
        if header.startswith(":"):
            full = header[1:]
        elif path:
            full = ":".join(path + [header])
        else:
            full = header
        words = full.split(":")
        path = words[:-1]
        resolved.append(full)
    return resolved
