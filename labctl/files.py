"""Strict reading of configuration files (YAML or TOML) into plain data with the line of every key.

A configuration file decides what reaches an instrument, so it is read so that it cannot say one thing
and mean another: a key given twice, a binary or oversized file, a NaN, a recursive or explosively
aliased structure, or a value that is not plain data (text, numbers, true/false, lists, mappings) is
refused with a :class:`ConfigError` naming the file, the line (where the loader knows it) and the field.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from labctl.errors import ConfigError

#: Largest file read (16 MiB): the biggest built-in bench is ~0.3 MiB; anything near the cap is a wrong file.
MAX_FILE_BYTES = 16 * 2**20
#: Deepest nesting of mappings and lists: a bench file needs about six levels.
MAX_DEPTH = 64
#: Most values once YAML aliases are expanded: stops "billion laughs" files from exhausting memory.
MAX_VALUES = 2_000_000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN = (str, bool, int, float, type(None))


@dataclass(frozen=True)
class Document:
    """A configuration file's data and the 1-based line of each key, by its path of keys and indices."""

    path: Path
    data: dict[str, Any]
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def line_of(self, location: Iterable[Any]) -> int | None:
        """Line of the deepest known key on ``location`` (a dotted field's parts)."""
        parts = tuple(str(part) for part in location)
        for end in range(len(parts), 0, -1):
            line = self.lines.get(parts[:end])
            if line is not None:
                return line
        return None


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file, refusing missing, oversized and binary files."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, "file not found (or not a regular file)")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(path, None, f"file is {size} bytes, more than the {MAX_FILE_BYTES} bytes a "
                          "configuration file may have; check that this is the right file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    return decode(raw, path)


def decode(raw: bytes, path: str | Path | None) -> str:
    """``raw`` as UTF-8 text; a NUL byte or invalid UTF-8 means a binary file, refused."""
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(path, None, f"more than {MAX_FILE_BYTES} bytes; check that this is the right file")
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise ConfigError(path, None, "a binary file (it contains NUL bytes), not a text configuration file",
                          line=line)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(path, None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          "save the file as UTF-8", line=line) from None


def load_document(path: str | Path) -> Document:
    """Read and parse ``path`` (TOML for ``.toml``, YAML otherwise) into a checked :class:`Document`."""
    path = Path(path)
    return parse_document(read_text(path), path, toml=path.suffix.lower() == ".toml")


def parse_document(text: str, path: str | Path | None, toml: bool = False) -> Document:
    """Parse ``text`` as TOML or YAML; the top level must be a non-empty mapping of plain data."""
    shown = Path(path) if path is not None else None
    try:
        if toml:
            data, lines = tomllib.loads(text), {}
        else:
            data, lines = _load_yaml(text, shown)
    except RecursionError:
        raise ConfigError(shown, None, f"nested too deeply (a bench file needs fewer than {MAX_DEPTH} "
                          "levels)") from None
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+)", str(exc))  # Python < 3.14 gives the position only in the text
        raise ConfigError(shown, None, f"cannot parse as TOML: {exc}",
                          line=getattr(exc, "lineno", None) or (int(where[1]) if where else None)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
        raise ConfigError(shown, None, f"cannot parse as YAML: {what}",
                          line=mark.line + 1 if mark is not None else None) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(shown, None, f"cannot parse as YAML: character {exc.character!r} is not allowed "
                          "in a YAML file", line=text[: exc.position].count("\n") + 1) from None
    except yaml.YAMLError as exc:
        raise ConfigError(shown, None, f"cannot parse as YAML: {exc}") from None
    if data is None or data == {}:
        raise ConfigError(shown, None, f"the file {'is empty' if data is None else 'has no fields'}; a bench "
                          "file is a mapping of fields (see docs/bench_files.md)")
    if not isinstance(data, dict):
        raise ConfigError(shown, None, f"the top level is a {_kind(data)}, not a mapping of fields "
                          "(see docs/bench_files.md)", line=1)
    document = Document(shown or Path("<text>"), data, lines)
    check_plain(document, shown)
    return document


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records the line of every mapping key and refuses a key given twice."""

    def keyed_document(self, path: Path | None) -> tuple[Any, dict[tuple[str, ...], int]]:
        node = self.get_single_node()
        if node is None:
            return None, {}
        lines = self._key_lines(node, path)
        try:
            return self.construct_document(node), lines
        except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as exc:
            # PyYAML's constructors fail this way on some values ('2026-13-45', '!!timestamp', '!!bool x')
            raise ConfigError(path, None, f"cannot parse as YAML: a value cannot be built ({exc}); check "
                              "dates and explicitly tagged values (!!...)") from None

    @staticmethod
    def _key_lines(root: yaml.Node, path: Path | None) -> dict[tuple[str, ...], int]:
        lines: dict[tuple[str, ...], int] = {}
        seen: set[int] = set()
        stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
        while stack:
            node, where = stack.pop()
            if id(node) in seen:  # an alias: its keys were recorded where the anchor is
                continue
            seen.add(id(node))
            if len(where) > MAX_DEPTH:
                raise ConfigError(path, ".".join(where), f"nested deeper than {MAX_DEPTH} levels",
                                  line=node.start_mark.line + 1)
            if isinstance(node, yaml.MappingNode):
                first: dict[tuple[str, str], int] = {}
                for key, value in node.value:
                    if key.tag == _MERGE_TAG:
                        continue
                    line = key.start_mark.line + 1
                    name = str(key.value) if isinstance(key, yaml.ScalarNode) else f"<{key.id} key>"
                    if isinstance(key, yaml.ScalarNode):
                        identity = (key.tag, key.value)
                        if identity in first:
                            raise ConfigError(path, ".".join((*where, name)),
                                              f"key {name!r} is given twice (first on line {first[identity]}); "
                                              "a later one would silently replace the earlier: keep one",
                                              line=line)
                        first[identity] = line
                    lines[(*where, name)] = line
                    stack.append((value, (*where, name)))
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    lines.setdefault((*where, str(index)), item.start_mark.line + 1)
                    stack.append((item, (*where, str(index))))
        return lines


def _load_yaml(text: str, path: Path | None) -> tuple[Any, dict[tuple[str, ...], int]]:
    loader = _LineLoader(text)
    try:
        return loader.keyed_document(path)
    finally:
        loader.dispose()


def _kind(value: Any) -> str:
    return {list: "list", str: "text", bool: "true/false", int: "number", float: "number"}.get(type(value),
                                                                                               type(value).__name__)


def check_plain(document: Document, path: str | Path | None) -> None:
    """Refuse cycles, non-finite numbers, non-text keys and non-plain values; bound depth and expanded size.

    Every number of a configuration file is a physical quantity or a count: NaN or infinity is a mistake
    (and a NaN limit would silently disable its check, since every comparison with NaN is false).
    """
    expanded: dict[int, int] = {}
    on_path: set[int] = set()

    def fail(where: tuple[str, ...], message: str) -> ConfigError:
        return ConfigError(path, ".".join(where) or None, message, line=document.line_of(where))

    # iterative post-order walk: (value, where, children done?)
    stack: list[tuple[Any, tuple[str, ...], bool]] = [(document.data, (), False)]
    while stack:
        value, where, done = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            key = id(value)
            if done:
                on_path.discard(key)
                children = value.values() if isinstance(value, dict) else value
                total = 1 + sum(expanded.get(id(c), 1) for c in children)
                if total > MAX_VALUES:
                    raise fail(where, f"holds more than {MAX_VALUES} values once its aliases are expanded")
                expanded[key] = total
                continue
            if key in on_path:
                raise fail(where, "refers to itself through a YAML alias (a recursive structure)")
            if key in expanded:
                continue
            if len(where) > MAX_DEPTH:
                raise fail(where, f"nested deeper than {MAX_DEPTH} levels")
            on_path.add(key)
            stack.append((value, where, True))
            if isinstance(value, dict):
                for name, item in value.items():
                    if not isinstance(name, str):
                        raise fail(where, f"key {name!r} is a {_kind(name)}; keys must be text (quote it)")
                    stack.append((item, (*where, name), False))
            else:
                stack.extend((item, (*where, str(index)), False) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise fail(where, f"{value!r} is not a finite number; write the value itself")
        elif not isinstance(value, _PLAIN):
            raise fail(where, f"a {_kind(value)} value is not allowed; use text, numbers, true/false, lists "
                       "and mappings only")
