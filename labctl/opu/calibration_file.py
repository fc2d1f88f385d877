"""Versioned calibration files: JSON, tied to one bench and one operating point, written atomically.

Layout (``format_version`` 2)::

    {
      "format": "labctl-calibration",
      "format_version": 2,
      "bench": "characterisation-sim-bench",
      "bench_fingerprint": "sha256:...",          # bench_fingerprint(): the bench's instruments
      "created": "2025-01-01T12:00:00+00:00",     # ISO 8601, UTC
      "verified": null,                           # last passing drift check (ISO 8601, UTC) or null
      "operating_point": {"lasers.laser1_1.1.power_dbm": 13.0, "components.metro_fibre1.length_km": 10.0},
      "operating_point_hash": "sha256:...",       # operating_point_hash(operating_point)
      "sections": {"mzm1": {"v_pi": 5.0, "table": {"__ndarray__": [...], "dtype": "float64", "shape": [..]}}},
      "checksum": "sha256:..."                     # of the canonical JSON of everything above
    }

Sections are named dictionaries of parameters: numbers, strings, booleans, None, lists, nested dicts and
NumPy arrays (stored with dtype and shape, restored as arrays). Values must be finite. The bench
fingerprint is a SHA-256 over the sorted ``driver|resource`` pairs of the bench's instruments (instrument
names and simulation parameters do not enter: the same hardware at the same addresses is the same
bench).

The **operating point** is everything else a calibration's numbers depend on: what the instruments
report once the calibrated state is applied (laser powers, wavelengths and outputs, rates, ranges,
biases) and what only the bench file knows (fibre lengths, losses and dispersion of the components on
the optical path, the bench temperature). It is kept readable, so that :func:`check_operating_point`
can say *what* changed; a change is a :class:`CalibrationStale` error unless the caller accepts it
explicitly (then it is logged at WARNING with the differences).

``format_version`` changes with the file's layout (the fields above), and a file of another version
is refused. A section's parameters are its engine's: a parameter added later is optional there, its
absence meaning what files written before it measured (a stationary core's ``drift_reference_shape``),
so older files keep loading under the same version.

:func:`load` refuses, with a :class:`CalibrationError` subclass, a file of another bench, of another
format version, or one that is not valid: truncated, edited, binary, larger than
:data:`MAX_FILE_BYTES`, with duplicate keys, NaN/Infinity literals or numbers that overflow a double,
or with fields of the wrong type. No other exception comes out of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from pyvisa import rname

from labctl.errors import LabctlError

log = logging.getLogger(__name__)

__all__ = [
    "DRIFT_CHECK_AFTER_S",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "CalibrationBenchMismatch",
    "CalibrationCorrupt",
    "CalibrationDrift",
    "CalibrationError",
    "CalibrationFile",
    "CalibrationStale",
    "CalibrationVersionError",
    "bench_fingerprint",
    "check_operating_point",
    "drift_check_due",
    "load",
    "operating_point_differences",
    "operating_point_hash",
    "path_operating_point",
    "conclude_drift_check",
    "record_verified",
    "save",
]

FORMAT = "labctl-calibration"
FORMAT_VERSION = 2
#: Largest calibration file :func:`load` reads (a 16 x 16 core's file is ~0.2 MB; 64 MiB leaves room for
#: far larger cores while refusing to parse a runaway or hostile file into memory).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: A calibration not checked for this long (since ``created`` or the last passing drift check, wall
#: clock UTC) gets a drift check when it is loaded: heater, bias and laser drift over a working day.
DRIFT_CHECK_AFTER_S = 8 * 3600.0
#: Relative tolerance of operating-point numbers (readback rounding; a 0.1 nm ring shift is 6e-5).
_REL_TOL = 1e-6


class CalibrationError(LabctlError):
    """A calibration file cannot be used. ``path`` is the file."""

    def __init__(self, path, message: str):
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class CalibrationBenchMismatch(CalibrationError, ValueError):
    """The calibration file was made on a different bench (its instruments differ): recalibrate."""


class CalibrationVersionError(CalibrationError, ValueError):
    """The calibration file has an older or newer format version than this labctl reads."""


class CalibrationCorrupt(CalibrationError, ValueError):
    """The file is not a readable calibration file (truncated, edited, or something else)."""


class CalibrationStale(CalibrationError, ValueError):
    """The operating point differs from the calibrated one (``differences``): recalibrate, or accept it."""

    def __init__(self, path, message: str, differences: list[str]):
        self.differences = list(differences)
        super().__init__(path, message)


class CalibrationDrift(CalibrationError, ValueError):
    """The drift check run at load time failed: the bench no longer matches the calibration."""


def _canonical_resource(resource: str) -> str:
    try:
        return str(rname.parse_resource_name(resource))
    except Exception:  # not a VISA name pyvisa knows: use it as written
        return resource.strip()


#: The role whose instruments a calibration does not depend on (see :func:`bench_fingerprint`).
NOT_IN_FINGERPRINT = "power_analyzer"


def bench_fingerprint(bench: Any) -> str:
    """``"sha256:<hex>"`` of the sorted ``driver|resource`` pairs of a bench's instruments.

    ``bench``: an open :class:`labctl.Bench`, a :class:`labctl.BenchConfig`, a bench dict (with an
    ``instruments`` mapping), or an iterable of ``(driver, resource)`` pairs. Power analyzers are left
    out: they sit on the mains and touch no light, so adding or moving one keeps a calibration valid.
    """
    config = getattr(bench, "config", bench)
    instruments = getattr(config, "instruments", None)
    if instruments is None and isinstance(config, Mapping):
        instruments = config.get("instruments")
    if instruments is not None:
        pairs = []
        for spec in instruments.values():
            if isinstance(spec, Mapping):
                if spec.get("role") != NOT_IN_FINGERPRINT:
                    pairs.append((spec["driver"], spec["resource"]))
            elif spec.role != NOT_IN_FINGERPRINT:
                pairs.append((spec.driver, spec.resource))
    else:
        pairs = [tuple(p) for p in bench]
    if not pairs:
        raise ValueError("a bench fingerprint needs at least one instrument")
    lines = sorted(f"{driver}|{_canonical_resource(str(resource))}" for driver, resource in pairs)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            _flatten(f"{prefix}.{key}", value[key], out)
    elif isinstance(value, (list, tuple)) and any(isinstance(item, (Mapping, list, tuple)) for item in value):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value


def path_operating_point(bench: Any, sources: Iterable[str]) -> dict[str, Any]:
    """The part of an operating point that only the bench file knows, for the path from ``sources``.

    ``sources``: instrument or component names where the path starts (a core's lasers and controller).
    Every component downstream of them along ``connections`` enters with all its parameters
    (``components.<name>.<parameter>``: fibre length, loss, dispersion, ...), and the bench temperature.
    On a simulated bench also the mode and the simulation parameters of the instruments on the path:
    a calibration made in simulation is not one of the real bench at the same addresses.
    """
    config = getattr(bench, "config", bench)
    downstream: dict[str, set[str]] = {}
    for link in config.connections:
        text = link if isinstance(link, str) else " -> ".join(link)
        src, _, dst = text.partition("->")
        downstream.setdefault(src.strip().partition(".")[0], set()).add(dst.strip().partition(".")[0])
    seen: set[str] = set()
    todo = list(sources)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(downstream.get(name, ()))
    out: dict[str, Any] = {"bench.temperature_k": float(config.temperature_k)}
    mode = getattr(bench, "mode", None)
    if mode is not None:
        out["bench.mode"] = str(mode)
    for name in sorted(seen):
        if name in config.components:
            _flatten(f"components.{name}", config.components[name], out)
        elif name in config.instruments and mode == "sim":
            _flatten(f"instruments.{name}.sim", config.instruments[name].sim.params, out)
    return out


def operating_point_hash(operating_point: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of an operating point's canonical JSON (equal readings, equal hash)."""
    text = json.dumps(_encode(dict(operating_point), "operating_point"), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


#: key suffix -> unit shown in messages (longest first)
_UNITS = (("_db_per_km", "dB/km"), ("_ps_nm_km", "ps/nm/km"), ("_dbm", "dBm"), ("_vpp", "Vpp"), ("_ohm", "ohm"),
          ("_db", "dB"), ("_km", "km"), ("_nm", "nm"), ("_hz", "Hz"), ("_v", "V"), ("_s", "s"), ("_m", "m"),
          ("_k", "K"), ("_w", "W"))


def _unit(key: str) -> tuple[str, str]:
    for suffix, unit in _UNITS:
        if key.endswith(suffix):
            return key[: -len(suffix)], " " + unit
    return key, ""


def _show(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.6g}{unit}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item, "") for item in value) + "]" + unit
    return f"{value}{unit}"


def _same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=1e-15)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def operating_point_differences(recorded: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """What changed from ``recorded`` to ``live``, one line per value, e.g.
    ``"lasers.laser1_1.1.power 13 dBm -> 7 dBm"`` (numbers within a relative 1e-6 are equal)."""
    out = []
    for key in sorted(set(recorded) | set(live)):
        label, unit = _unit(key)
        if key not in live:
            out.append(f"{label} {_show(recorded[key], unit)} -> (absent)")
        elif key not in recorded:
            out.append(f"{label} (absent) -> {_show(live[key], unit)}")
        else:
            a, b = recorded[key], live[key]
            if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
                out.extend(f"{label}[{i}] {_show(x, unit)} -> {_show(y, unit)}"
                           for i, (x, y) in enumerate(zip(a, b)) if not _same(x, y))
            elif not _same(a, b):
                out.append(f"{label} {_show(a, unit)} -> {_show(b, unit)}")
    return out


def check_operating_point(cal: "CalibrationFile", live: Mapping[str, Any], *, recalibrate: str,
                          accept_stale: bool = False) -> list[str]:
    """Compare the file's operating point with ``live`` (the bench now); returns the differences.

    A difference raises :class:`CalibrationStale` naming what changed and ``recalibrate`` (the command
    that makes a new calibration); with ``accept_stale`` it is logged at WARNING instead and the
    calibration is used as it is.
    """
    if operating_point_hash(live) == cal.operating_point_hash:
        return []
    if cal.operating_point:
        differences = operating_point_differences(cal.operating_point, live)
    else:
        differences = ["the file records no operating point (it was not written by a calibration run)"]
    if not differences:
        return []
    shown = "; ".join(differences[:12]) + (f"; ... and {len(differences) - 12} more" if len(differences) > 12 else "")
    if accept_stale:
        log.warning("%s: using a stale calibration (accept_stale): the operating point changed since it was made "
                    "(%s): %s", cal.path, cal.created, shown)
        return differences
    raise CalibrationStale(cal.path, f"the operating point changed since calibration ({cal.created}): {shown}. "
                           f"Recalibrate: {recalibrate} -- or pass accept_stale=True (CLI: "
                           "--accept-stale-calibration) to use it anyway, knowing the products will be off",
                           differences)


def drift_check_due(cal: "CalibrationFile", now: datetime | None = None) -> bool:
    """True when the calibration was neither made nor drift-checked in the last :data:`DRIFT_CHECK_AFTER_S`
    (wall clock, UTC)."""
    last = datetime.fromisoformat(cal.verified or cal.created)
    if last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return (now - last).total_seconds() > DRIFT_CHECK_AFTER_S


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{where}: arrays must be numeric (got dtype {value.dtype})")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ValueError(f"{where}: calibration values must be finite")
        return {"__ndarray__": value.ravel().tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ValueError(f"{where}: calibration values must be finite, got {value!r}")
        return float(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be strings, got {key!r}")
            if key == "__ndarray__":
                raise ValueError(f"{where}: '__ndarray__' is a reserved key")
            out[key] = _encode(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ValueError(f"{where}: cannot store a {type(value).__name__} in a calibration file")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            dtype = np.dtype(value["dtype"])
            if dtype.kind not in "biuf" or not isinstance(value["shape"], list):
                raise ValueError(f"array of dtype {value['dtype']!r} and shape {value['shape']!r}: only numeric "
                                 "arrays with a list shape are stored")
            arr = np.asarray(value["__ndarray__"], dtype=dtype)
            if arr.ndim != 1:
                raise ValueError("an array's values must be a flat list")
            return arr.reshape(value["shape"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _checksum(document: Mapping) -> str:
    body = {key: document[key] for key in document if key != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CalibrationFile:
    """A loaded calibration: metadata, the operating point it was made at, and the decoded sections."""

    bench: str
    bench_fingerprint: str
    created: str
    sections: dict[str, dict] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    path: str | None = None
    operating_point: dict[str, Any] = field(default_factory=dict)
    operating_point_hash: str = ""
    verified: str | None = None

    def section(self, name: str) -> dict:
        """One section; a missing one raises :class:`CalibrationError` naming the ones present."""
        try:
            return self.sections[name]
        except KeyError:
            raise CalibrationError(self.path, f"no calibration section {name!r}; the file has "
                                   f"{', '.join(sorted(self.sections)) or 'none'} -- run that calibration") from None

    @property
    def created_datetime(self) -> datetime:
        return datetime.fromisoformat(self.created)


def _write_document(path: Path, document: dict) -> Path:
    """Sign and write atomically (temporary file in the same directory, then ``os.replace``)."""
    document["checksum"] = _checksum(document)
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a calibration is not a secret
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def save(path: str | os.PathLike, sections: Mapping[str, Mapping], *, bench_name: str, bench_fingerprint: str,
         operating_point: Mapping[str, Any] | None = None, created: datetime | None = None) -> Path:
    """Write a calibration file atomically.

    ``sections``: name -> dict of parameters. ``operating_point``: flat ``name -> value`` (numbers,
    strings, booleans, None, lists of them) of what the calibration depends on. Bad values
    (non-finite, unsupported types) raise ``ValueError`` naming the location before anything is written.
    """
    path = Path(path)
    if not isinstance(bench_name, str) or not bench_name:
        raise ValueError("bench_name must be a non-empty string")
    if not isinstance(bench_fingerprint, str) or not bench_fingerprint.startswith("sha256:"):
        raise ValueError("bench_fingerprint must come from bench_fingerprint() ('sha256:...')")
    encoded = {}
    for name, section in sections.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"section names must be non-empty strings, got {name!r}")
        if not isinstance(section, Mapping):
            raise ValueError(f"section {name!r} must be a dict of parameters")
        encoded[name] = _encode(section, name)
    point = _encode(dict(operating_point or {}), "operating_point")
    for key, value in point.items():
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)):
            raise ValueError(f"operating_point.{key}: values must be numbers, strings, booleans or flat lists")
    created = created or datetime.now(timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bench": bench_name,
        "bench_fingerprint": bench_fingerprint,
        "created": created.isoformat(),
        "verified": None,
        "operating_point": point,
        "operating_point_hash": operating_point_hash(point),
        "sections": encoded,
    }
    return _write_document(path, document)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a calibration may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]!r} overflows a double")
    return value


def _read_document(path: Path) -> dict:
    """The file's JSON document, checked for format, version, field types and checksum."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CalibrationError(path, "calibration file not found; run the calibration first") from None
    except OSError as exc:
        raise CalibrationCorrupt(path, f"cannot read the file ({exc})") from None
    if size > MAX_FILE_BYTES:
        raise CalibrationCorrupt(path, f"{size} bytes is larger than a calibration file may be "
                                 f"({MAX_FILE_BYTES} bytes); this is not a calibration file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CalibrationCorrupt(path, f"cannot read the file ({exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CalibrationCorrupt(path, f"larger than a calibration file may be ({MAX_FILE_BYTES} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CalibrationCorrupt(path, "binary data, not UTF-8 JSON; the file is damaged or not a calibration "
                                 "file") from None
    if "\x00" in text:
        raise CalibrationCorrupt(path, "binary data (NUL bytes); the file is damaged or not a calibration file")
    try:
        document = json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant,
                              parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise CalibrationCorrupt(path, f"not valid JSON ({exc}); the file is truncated or damaged") from None
    except (ValueError, RecursionError) as exc:  # hooks, int digit limit, nesting depth
        raise CalibrationCorrupt(path, f"not a valid calibration JSON ({str(exc)[:200]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CalibrationCorrupt(path, f"not a labctl calibration file (no \"format\": \"{FORMAT}\")")
    version = document.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        age = "older" if type(version) is int and version < FORMAT_VERSION else "newer or unknown"
        raise CalibrationVersionError(
            path, f"format version {str(version)[:24]} is {age}; this labctl reads version {FORMAT_VERSION} (files now "
            "record the operating point they were made at) -- recalibrate to write a new file")
    for key, kind in (("bench", str), ("bench_fingerprint", str), ("created", str), ("sections", dict),
                      ("operating_point", dict), ("operating_point_hash", str), ("checksum", str)):
        if not isinstance(document.get(key), kind):
            raise CalibrationCorrupt(path, f"field {key!r} is missing or not a {kind.__name__}")
    if document.get("verified") is not None and not isinstance(document["verified"], str):
        raise CalibrationCorrupt(path, "field 'verified' is not a string or null")
    try:
        intact = document["checksum"] == _checksum(document)
    except RecursionError:
        intact = False
    if not intact:
        raise CalibrationCorrupt(path, "checksum mismatch: the file was modified or damaged after it was written")
    for key in ("created", "verified"):
        if document.get(key) is not None:
            try:
                moment = datetime.fromisoformat(document[key])
                (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
            except (ValueError, OverflowError):
                raise CalibrationCorrupt(path, f"field {key!r} is not an ISO 8601 time (in UTC's range)") from None
    for key, value in document["operating_point"].items():
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)):
            raise CalibrationCorrupt(path, f"operating_point.{key} is not a number, string, boolean or flat list")
    try:
        point_hash = operating_point_hash(document["operating_point"])
    except ValueError as exc:  # e.g. the reserved key '__ndarray__'
        raise CalibrationCorrupt(path, f"the operating point cannot be read ({exc})") from None
    if point_hash != document["operating_point_hash"]:
        raise CalibrationCorrupt(path, "operating_point_hash does not match the operating point")
    return document


def load(path: str | os.PathLike, bench_fingerprint: str | None) -> CalibrationFile:
    """Read a calibration file and check it belongs to the bench with ``bench_fingerprint``.

    ``bench_fingerprint=None`` skips the bench check (for inspecting files). Raises
    :class:`CalibrationCorrupt`, :class:`CalibrationVersionError` or :class:`CalibrationBenchMismatch`
    (the operating point is checked by the engines, which know how to read it from the bench).
    """
    path = Path(path)
    document = _read_document(path)
    if bench_fingerprint is not None and document["bench_fingerprint"] != bench_fingerprint:
        raise CalibrationBenchMismatch(
            path, f"made on bench {document['bench']!r} with different instruments "
            f"({document['bench_fingerprint'][:19]}... vs this bench's {bench_fingerprint[:19]}...); "
            "recalibrate on this bench")
    sections = {}
    for name, section in document["sections"].items():
        if not isinstance(section, dict):
            raise CalibrationCorrupt(path, f"section {name!r} is not a dict of parameters")
        try:
            sections[name] = _decode(section)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CalibrationCorrupt(path, f"a stored array in section {name!r} is malformed ({exc})") from None
    return CalibrationFile(bench=document["bench"], bench_fingerprint=document["bench_fingerprint"],
                           created=document["created"], sections=sections, format_version=FORMAT_VERSION,
                           path=str(path), operating_point=dict(document["operating_point"]),
                           operating_point_hash=document["operating_point_hash"], verified=document.get("verified"))


def record_verified(path: str | os.PathLike, when: datetime | None = None) -> bool:
    """Record a passing drift check in the file (``verified``), so the next load within
    :data:`DRIFT_CHECK_AFTER_S` skips it. A file that cannot be rewritten (read-only folder) keeps its
    old time: logged at WARNING, and the check simply runs again next time. Returns whether it was written.
    """
    path = Path(path)
    document = _read_document(path)
    when = when or datetime.now(timezone.utc)
    document["verified"] = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).isoformat()
    try:
        _write_document(path, document)
    except OSError as exc:
        log.warning("%s: drift check passed but cannot be recorded in the file (%s); it will run again at the "
                    "next load", path, exc)
        return False
    return True


def conclude_drift_check(cal: "CalibrationFile", *, drifted: bool, reason: str, recalibrate: str,
                         accept_stale: bool = False) -> None:
    """Act on the drift check run when ``cal`` was loaded: record a pass in the file; otherwise raise
    :class:`CalibrationDrift` naming ``recalibrate``, or, with ``accept_stale``, log the drift at WARNING."""
    if not drifted:
        record_verified(cal.path)
        return
    message = (f"drift check at load (last checked {cal.verified or cal.created}, more than "
               f"{DRIFT_CHECK_AFTER_S / 3600:g} h ago): {reason}")
    if not accept_stale:
        raise CalibrationDrift(cal.path, f"{message} -- recalibrate: {recalibrate} (or pass accept_stale=True / "
                               "--accept-stale-calibration to use it anyway)")
    log.warning("%s: using a drifted calibration (accept_stale): %s", cal.path, message)
