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
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise EnergyError(f"Datasheet.value must be a finite number, got {self.value!r}")
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
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EnergyError(f"PowerTerm.{name} must be a finite time in seconds or None, got {value!r}")


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
        p = self.power_w
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise EnergyError(f"{self.device}: power_w must be a number in watts, got {p!r}")
        if math.isnan(p):
            raise EnergyError(f"{self.device}: power reading is NaN; a failed reading is not zero watts")
        if p < 0 or math.isinf(p):
            raise EnergyError(f"{self.device}: power must be finite and >= 0 W, got {p!r}")
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
