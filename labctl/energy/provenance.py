"""Where each power figure comes from, and the power terms that carry it.

Every watt in an energy figure must say whether it was read from an instrument (:class:`Measured`),
copied from a datasheet (:class:`Datasheet`) or computed from a model (:class:`Model`): a number
without a source cannot be checked, so :class:`PowerTerm` refuses one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabctlError


class EnergyError(LabctlError, ValueError):
    """A power, time or op count is unusable (NaN, negative, unsourced, overlapping); nothing was recorded."""


def checked_number(name: str, value: Any, *, minimum: float | None = 0.0, strict: bool = False,
                   allow_none: bool = False) -> float | None:
    """``value`` as a float, refused unless it is a number, not NaN (a failed reading is not zero), finite and
    at least ``minimum`` (above it when ``strict``; None: any sign): the one check energy inputs go through."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EnergyError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise EnergyError(f"{name} is NaN; a failed reading is not zero")
    if math.isinf(value):
        raise EnergyError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise EnergyError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return value


def _text(kind: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise EnergyError(f"{kind}.{name} must be a non-empty string, got {value!r}")


@dataclass(frozen=True)
class Measured:
    """Read from an instrument: which one, and the command (or query) that produced the reading."""

    instrument: str
    command: str

    def __post_init__(self) -> None:
        _text("Measured", "instrument", self.instrument)
        _text("Measured", "command", self.command)


@dataclass(frozen=True)
class Datasheet:
    """Taken from a document: the figure as printed, its unit, and where to find it."""

    value: float
    unit: str
    document: str
    page: str

    def __post_init__(self) -> None:
        checked_number("Datasheet.value", self.value, minimum=None)
        _text("Datasheet", "unit", self.unit)
        _text("Datasheet", "document", self.document)
        _text("Datasheet", "page", str(self.page))


@dataclass(frozen=True)
class Model:
    """Computed: the equation used and the parameter values plugged into it."""

    equation: str
    parameters: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _text("Model", "equation", self.equation)
        if not isinstance(self.parameters, dict):
            raise EnergyError(f"Model.parameters must be a dict, got {type(self.parameters).__name__}")


Provenance = Measured | Datasheet | Model
PROVENANCE_TYPES = (Measured, Datasheet, Model)


def _check_time(name: str, value: float | None) -> None:
    checked_number(f"PowerTerm.{name} (s)", value, minimum=None, allow_none=True)


@dataclass(frozen=True)
class PowerTerm:
    """One device's power draw (W), with its source and, optionally, the interval [start_s, end_s] it held."""

    device: str
    power_w: float
    provenance: Provenance
    start_s: float | None = None
    end_s: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        _text("PowerTerm", "device", self.device)
        checked_number(f"{self.device}: power_w (W)", self.power_w)
        if self.provenance is None:
            raise EnergyError(f"{self.device}: power term has no provenance (Measured, Datasheet or Model)")
        if not isinstance(self.provenance, PROVENANCE_TYPES):
            raise EnergyError(
                f"{self.device}: provenance must be Measured, Datasheet or Model, "
                f"got {type(self.provenance).__name__}"
            )
        _check_time("start_s", self.start_s)
        _check_time("end_s", self.end_s)
        if (self.start_s is None) != (self.end_s is None):
            raise EnergyError(f"{self.device}: give both start_s and end_s, or neither")
        if self.start_s is not None and self.end_s < self.start_s:
            raise EnergyError(f"{self.device}: interval ends ({self.end_s} s) before it starts ({self.start_s} s)")

    @property
    def duration_s(self) -> float | None:
        """Length of the interval, or None for a term without one (a steady draw)."""
        if self.start_s is None:
            return None
        return self.end_s - self.start_s

    @property
    def energy_j(self) -> float | None:
        """Energy over the interval (W x s), or None when the term has no interval."""
        d = self.duration_s
        return None if d is None else self.power_w * d


__all__ = ["Datasheet", "EnergyError", "Measured", "Model", "PROVENANCE_TYPES", "PowerTerm", "Provenance"]
