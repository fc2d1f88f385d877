"""Versioned calibration files: JSON, tied to one bench, written atomically.

Layout (``format_version`` 1)::

    {
      "format": "labctl-calibration",
      "format_version": 1,
      "bench": "default-sim-bench",
      "bench_fingerprint": "sha256:...",          # bench_fingerprint(): the bench's instruments
      "created": "2025-01-01T12:00:00+00:00",     # ISO 8601, UTC
      "sections": {"mzm1": {"v_pi": 5.0, "table": {"__ndarray__": [...], "dtype": "float64", "shape": [..]}}},
      "checksum": "sha256:..."                     # of the canonical JSON of everything above
    }

Sections are named dictionaries of parameters: numbers, strings, booleans, None, lists, nested dicts and
NumPy arrays (stored with dtype and shape, restored as arrays). Values must be finite. The bench
fingerprint is a SHA-256 over the sorted ``driver|resource`` pairs of the bench's instruments (instrument
names and simulation parameters do not enter: the same hardware at the same addresses is the same
bench). :func:`load` refuses, with a :class:`CalibrationError` subclass, a file of another bench, of
another format version, or one that is not valid (truncated, edited, not a calibration file).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from labctl.errors import LabctlError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CalibrationBenchMismatch",
    "CalibrationCorrupt",
    "CalibrationError",
    "CalibrationFile",
    "CalibrationVersionError",
    "bench_fingerprint",
    "load",
    "save",
]

FORMAT = "labctl-calibration"
FORMAT_VERSION = 1


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


def _canonical_resource(resource: str) -> str:
    try:
        from pyvisa import rname

        return str(rname.parse_resource_name(resource))
    except Exception:  # not a VISA name pyvisa knows: use it as written
        return resource.strip()


def bench_fingerprint(bench: Any) -> str:
    """``"sha256:<hex>"`` of the sorted ``driver|resource`` pairs of a bench's instruments.

    ``bench``: an open :class:`labctl.Bench`, a :class:`labctl.BenchConfig`, a bench dict (with an
    ``instruments`` mapping), or an iterable of ``(driver, resource)`` pairs.
    """
    config = getattr(bench, "config", bench)
    instruments = getattr(config, "instruments", None)
    if instruments is None and isinstance(config, Mapping):
        instruments = config.get("instruments")
    if instruments is not None:
        pairs = []
        for spec in instruments.values():
            if isinstance(spec, Mapping):
                pairs.append((spec["driver"], spec["resource"]))
            else:
                pairs.append((spec.driver, spec.resource))
    else:
        pairs = [tuple(p) for p in bench]
    if not pairs:
        raise ValueError("a bench fingerprint needs at least one instrument")
    lines = sorted(f"{driver}|{_canonical_resource(str(resource))}" for driver, resource in pairs)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


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
            arr = np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
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
    """A loaded calibration: metadata and the decoded sections (arrays restored)."""

    bench: str
    bench_fingerprint: str
    created: str
    sections: dict[str, dict] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    path: str | None = None

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


def save(path: str | os.PathLike, sections: Mapping[str, Mapping], *, bench_name: str, bench_fingerprint: str,
         created: datetime | None = None) -> Path:
    """Write a calibration file atomically (temporary file in the same directory, then ``os.replace``).

    ``sections``: name -> dict of parameters. Bad values (non-finite, unsupported types) raise
    ``ValueError`` naming the location before anything is written.
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
    created = created or datetime.now(timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bench": bench_name,
        "bench_fingerprint": bench_fingerprint,
        "created": created.isoformat(),
        "sections": encoded,
    }
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


def load(path: str | os.PathLike, bench_fingerprint: str | None) -> CalibrationFile:
    """Read a calibration file and check it belongs to the bench with ``bench_fingerprint``.

    ``bench_fingerprint=None`` skips the bench check (for inspecting files). Raises
    :class:`CalibrationCorrupt`, :class:`CalibrationVersionError` or :class:`CalibrationBenchMismatch`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError(path, "calibration file not found; run the calibration first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationCorrupt(path, f"cannot read the file ({exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationCorrupt(path, f"not valid JSON ({exc}); the file is truncated or damaged") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CalibrationCorrupt(path, f"not a labctl calibration file (no \"format\": \"{FORMAT}\")")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        age = "older" if isinstance(version, int) and version < FORMAT_VERSION else "newer or unknown"
        raise CalibrationVersionError(
            path, f"format version {version!r} is {age}; this labctl reads version {FORMAT_VERSION} -- recalibrate")
    for key, kind in (("bench", str), ("bench_fingerprint", str), ("created", str), ("sections", dict),
                      ("checksum", str)):
        if not isinstance(document.get(key), kind):
            raise CalibrationCorrupt(path, f"field {key!r} is missing or not a {kind.__name__}")
    if document["checksum"] != _checksum(document):
        raise CalibrationCorrupt(path, "checksum mismatch: the file was modified or damaged after it was written")
    if bench_fingerprint is not None and document["bench_fingerprint"] != bench_fingerprint:
        raise CalibrationBenchMismatch(
            path, f"made on bench {document['bench']!r} with different instruments "
            f"({document['bench_fingerprint'][:19]}... vs this bench's {bench_fingerprint[:19]}...); "
            "recalibrate on this bench")
    try:
        sections = {name: _decode(section) for name, section in document["sections"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationCorrupt(path, f"a stored array is malformed ({exc})") from None
    return CalibrationFile(bench=document["bench"], bench_fingerprint=document["bench_fingerprint"],
                           created=document["created"], sections=sections, format_version=version, path=str(path))
