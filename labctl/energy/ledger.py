"""The energy ledger of a run: power terms per device and interval, the ops they paid for, and the figures.

Callers give times on the bench clock (the simulated clock in simulation, wall time on hardware); the
ledger never reads a clock itself, so the same arithmetic serves both. Terms belong to a *view*:

* ``bench``: what the instruments on the table drew (measured or datasheet);
* ``projected``: what integrated optoelectronics would draw for the same computation (model terms);
* ``baseline``: the electronics one would use instead (measured, or labelled as modelled).

Ops are shared by the views (the same computation) and come from the MACs sent to optics;
1 MAC = 2 ops (one multiply, one add). Two figures of merit are given, each labelled:

* utilisation-weighted: all the energy of the view's window divided by the ops done in it;
* at peak: the power drawn while computing divided by the peak op rate.

1 mW/TOPS = 1e-3 W / 1e12 op/s = 1e-15 J/op = 1 fJ/op.
"""

from __future__ import annotations

import bisect
import heapq
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labctl.energy.provenance import (
    PROVENANCE_TYPES, Datasheet, EnergyError, Measured, Model, PowerTerm, Provenance, checked_number,
)

OPS_PER_MAC = 2
#: J/op -> mW/TOPS (and fJ/op): 1 mW/TOPS = 1 fJ/op = 1e-15 J/op.
MW_PER_TOPS_PER_J_PER_OP = 1e15
VIEWS = ("bench", "projected", "baseline")
FORMAT = "labctl.energy.ledger/1"
NO_OPS = "no MACs were sent to optics in this run, so per-op figures (TOPS, J/op, mW/TOPS) are undefined"


def _count(name: str, value: Any) -> int:
    """A MAC count: a non-negative integer (an integral float such as 1e12 is accepted)."""
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()  # numpy scalars
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise EnergyError(f"{name} must be >= 0, got {value!r}")
        return value  # exact, however large (a float would round counts above 2**53)
    v = checked_number(name, value)
    if v != int(v):
        raise EnergyError(f"{name} must be a whole number of MACs, got {value!r}")
    return int(v)


def _check_view(view: str) -> str:
    if view not in VIEWS:
        raise EnergyError(f"unknown view {view!r}; use one of {', '.join(VIEWS)}")
    return view


def provenance_kind(p: Provenance) -> str:
    """``measured``, ``datasheet`` or ``model``: the word a report shows for where a number comes from."""
    return {Measured: "measured", Datasheet: "datasheet", Model: "model"}[type(p)]


def describe_provenance(p: Provenance) -> str:
    """One line saying where a power figure comes from, for the provenance column of a report."""
    if isinstance(p, Measured):
        return f"measured: {p.instrument} `{p.command}`"
    if isinstance(p, Datasheet):
        return f"datasheet: {p.value:g} {p.unit}, {p.document} p. {p.page}"
    params = ", ".join(f"{k}={v}" for k, v in p.parameters.items())
    return f"model: {p.equation}" + (f" ({params})" if params else "")


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def provenance_to_dict(p: Provenance) -> dict[str, Any]:
    return {"kind": provenance_kind(p), **_json_safe(asdict(p))}


def provenance_from_dict(d: Mapping[str, Any]) -> Provenance:
    fields = {k: v for k, v in d.items() if k != "kind"}
    try:
        cls = {"measured": Measured, "datasheet": Datasheet, "model": Model}[d["kind"]]
        return cls(**fields)
    except (KeyError, TypeError) as exc:
        raise EnergyError(f"unreadable provenance {dict(d)!r}: {exc}") from None


@dataclass(frozen=True)
class OpsRecord:
    """MACs done optically in one stretch: how many, how long the light computed, and where the count came from.

    ``macs`` are the MACs sent to optics (padding included: the optics did them); ``useful_macs`` those of
    the product asked for, when known. ``start_s``/``end_s`` (bench clock) mark when it ran, if known.
    """

    macs: int
    source: str
    useful_macs: int | None = None
    optical_time_s: float | None = None
    start_s: float | None = None
    end_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "macs", _count("macs", self.macs))
        if self.useful_macs is not None:
            object.__setattr__(self, "useful_macs", _count("useful_macs", self.useful_macs))
        checked_number("optical_time_s", self.optical_time_s, allow_none=True)
        checked_number("ops start_s", self.start_s, allow_none=True, minimum=None)
        checked_number("ops end_s", self.end_s, allow_none=True, minimum=None)
        if (self.start_s is None) != (self.end_s is None):
            raise EnergyError("ops interval: give both start_s and end_s, or neither")
        if self.start_s is not None and self.end_s < self.start_s:
            raise EnergyError(f"ops interval ends ({self.end_s} s) before it starts ({self.start_s} s)")
        if not isinstance(self.source, str) or not self.source.strip():
            raise EnergyError("say where the MAC count comes from (source)")


@dataclass(frozen=True)
class DeviceEnergy:
    """One device's line in a view: energy over the window, mean power, and where its figures come from."""

    device: str
    energy_j: float
    mean_power_w: float
    provenance: tuple[str, ...]
    kinds: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ViewSummary:
    """The figures of one view. Per-op fields are None when undefined, and ``no_ops``/``no_peak`` say why."""

    view: str
    devices: tuple[DeviceEnergy, ...]
    energy_j: float
    time_s: float
    window_s: tuple[float, float]
    window_basis: str
    mean_power_w: float | None
    macs: int
    ops: int
    ops_per_mac: int
    # utilisation-weighted: energy over the whole window / ops
    tops: float | None
    j_per_op: float | None
    mw_per_tops: float | None
    no_ops: str | None
    # at peak: power while computing / peak op rate
    peak_power_w: float | None
    peak_power_basis: str
    peak_ops_per_s: float | None
    peak_rate_basis: str
    peak_tops: float | None
    peak_j_per_op: float | None
    peak_mw_per_tops: float | None
    no_peak: str | None
    labels: dict[str, str] = field(default_factory=dict)


def _max_total_draw(terms: list[PowerTerm], t0: float, t1: float) -> float:
    """The largest total draw of ``terms`` at ``t0`` or at any term's start before ``t1``: steady terms always,
    a timed one over [start, end) (a zero-length one at its start). Swept in time order, so a long run's
    thousands of terms cost n log n, not n^2; each total adds the active terms in their recorded order."""
    steady = [i for i, t in enumerate(terms) if t.start_s is None]
    timed = sorted((t.start_s, i) for i, t in enumerate(terms) if t.start_s is not None)
    points = sorted({t0} | {start for start, _ in timed if start < t1})
    running: list[tuple[float, int]] = []  # (end, index) of the terms started so far, soonest end first
    nxt, best = 0, None
    for p in points:
        while nxt < len(timed) and timed[nxt][0] <= p:
            heapq.heappush(running, (terms[timed[nxt][1]].end_s, timed[nxt][1]))
            nxt += 1
        while running and running[0][0] < p:  # ended before p: inactive here and at every later point
            heapq.heappop(running)
        active = [i for _, i in running
                  if terms[i].start_s <= p < terms[i].end_s or terms[i].start_s == terms[i].end_s == p]
        total = sum(terms[i].power_w for i in sorted(steady + active))
        best = total if best is None else max(best, total)
    return best


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _interval(term: PowerTerm) -> tuple[float, float]:
    return term.start_s, term.end_s


def _overlap(a: float, b: float, merged: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, d) - max(a, c)) for c, d in merged)


class EnergyLedger:
    """Power terms per device and interval, per view, and the ops of the run; figures via :meth:`summary`."""

    def __init__(self, label: str = ""):
        self.label = label
        self._terms: dict[str, list[PowerTerm]] = {v: [] for v in VIEWS}
        #: per view and device, its terms ordered by (start, end) (a steady term alone): the overlap check looks at
        #: the neighbours only, so a run of thousands of jobs does not compare every term with every other
        self._by_device: dict[str, dict[str, list[PowerTerm]]] = {v: {} for v in VIEWS}
        self._ops: list[OpsRecord] = []
        self._windows: dict[str, tuple[float, float]] = {}
        self._peak_rates: dict[str, tuple[float, Provenance]] = {}
        self._notes: dict[str, list[str]] = {v: [] for v in VIEWS}

    # -- recording ------------------------------------------------------------------------------------

    def add(self, term: PowerTerm, *, view: str = "bench") -> PowerTerm:
        """Record one power term in ``view``; refuses a term that overlaps another of the same device.

        A term without an interval is a steady draw over the whole window of the view, so it cannot share
        a device with any other term.
        """
        _check_view(view)
        if not isinstance(term, PowerTerm):
            raise EnergyError(f"record a PowerTerm (with provenance), not {type(term).__name__}")
        same = self._by_device[view].setdefault(term.device, [])
        if same and (term.start_s is None or same[0].start_s is None):
            raise EnergyError(
                f"{view}: {term.device} already has a term; a steady term (no interval) covers the whole run "
                "and cannot share a device with another")
        at = bisect.bisect_left(same, (term.start_s, term.end_s), key=_interval) if same else 0
        # the device's terms never overlap, so ordered by (start, end) their ends rise too: of those before this
        # term only the last can reach into it, and of those after it only the ones starting before its end
        neighbours = same[max(0, at - 1):at]
        for other in same[at:]:
            if other.start_s >= term.end_s:
                break
            neighbours.append(other)
        for other in neighbours:
            if term.start_s < other.end_s and other.start_s < term.end_s:
                raise EnergyError(
                    f"{view}: {term.device} [{term.start_s}, {term.end_s}] s overlaps its term "
                    f"[{other.start_s}, {other.end_s}] s; one device draws one power at a time")
        same.insert(at, term)
        self._terms[view].append(term)
        return term

    def add_ops(self, macs: int, *, source: str, useful_macs: int | None = None,
                optical_time_s: float | None = None, start_s: float | None = None,
                end_s: float | None = None) -> OpsRecord:
        """Record MACs sent to optics (1 MAC = 2 ops), with where the count comes from."""
        record = OpsRecord(macs=macs, source=source, useful_macs=useful_macs, optical_time_s=optical_time_s,
                           start_s=start_s, end_s=end_s)
        self._ops.append(record)
        return record

    def add_stats(self, stats: Mapping[str, Any], *, start_s: float | None = None, end_s: float | None = None,
                  source: str = "OpticalMatmul.last_stats") -> OpsRecord:
        """Record one product from an engine's ``last_stats``: ``optical_macs`` (what the optics did,
        padding included; ``macs`` if absent), ``macs`` as the useful count, ``optical_time_s``."""
        if not isinstance(stats, Mapping) or ("optical_macs" not in stats and "macs" not in stats):
            raise EnergyError("stats must be a mapping with 'optical_macs' or 'macs' (an engine's last_stats)")
        macs = stats.get("optical_macs", stats.get("macs"))
        useful = stats.get("macs") if "optical_macs" in stats else None
        return self.add_ops(macs, source=source, useful_macs=useful, optical_time_s=stats.get("optical_time_s"),
                            start_s=start_s, end_s=end_s)

    def add_offload(self, offload: Any, *, optical_time_s: float | None = None, start_s: float | None = None,
                    end_s: float | None = None, source: str = "offload ledger total_macs") -> OpsRecord:
        """Record the MACs an offloaded model sent to optics (its ledger's ``total_macs``)."""
        total = offload.get("total_macs") if isinstance(offload, Mapping) else getattr(offload, "total_macs", None)
        if total is None:
            raise EnergyError("an offload ledger (or its dict) with 'total_macs' is needed")
        return self.add_ops(total, source=source, optical_time_s=optical_time_s, start_s=start_s, end_s=end_s)

    def add_note(self, view: str, text: str) -> None:
        """Say something a reader of the view must know that is not a term (e.g. a draw left out, and why)."""
        _check_view(view)
        if not isinstance(text, str) or not text.strip():
            raise EnergyError("a note must be a non-empty string")
        self._notes[view].append(text)

    def notes(self, view: str) -> list[str]:
        return list(self._notes[_check_view(view)])

    def set_window(self, view: str, start_s: float, end_s: float) -> None:
        """Fix the interval a view covers (else: the extent of its interval terms, or of the ops)."""
        _check_view(view)
        a = checked_number("window start_s", start_s, minimum=None)
        b = checked_number("window end_s", end_s, minimum=None)
        if b < a:
            raise EnergyError(f"{view}: window ends ({b} s) before it starts ({a} s)")
        self._windows[view] = (a, b)

    def set_peak_rate(self, view: str, ops_per_s: float, provenance: Provenance) -> None:
        """The view's peak op rate (e.g. 2 N M f_s for a core), with its source; else ops / optical time."""
        _check_view(view)
        rate = checked_number("peak ops_per_s", ops_per_s)
        if rate == 0:
            raise EnergyError(f"{view}: a peak op rate of 0 op/s cannot give a per-op figure")
        if not isinstance(provenance, PROVENANCE_TYPES):
            raise EnergyError(f"{view}: the peak op rate needs a provenance (Measured, Datasheet or Model)")
        self._peak_rates[view] = (rate, provenance)

    # -- reading --------------------------------------------------------------------------------------

    def terms(self, view: str = "bench") -> list[PowerTerm]:
        return list(self._terms[_check_view(view)])

    def peak_rate(self, view: str) -> tuple[float, Provenance] | None:
        """The view's peak op rate and its source (:meth:`set_peak_rate`), or None."""
        return self._peak_rates.get(_check_view(view))

    @property
    def ops_records(self) -> list[OpsRecord]:
        return list(self._ops)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self._ops)

    @property
    def ops(self) -> int:
        return OPS_PER_MAC * self.macs

    def views(self) -> tuple[str, ...]:
        """The views that have at least one term."""
        return tuple(v for v in VIEWS if self._terms[v])

    def window(self, view: str) -> tuple[float, float] | None:
        """The interval the view covers, or None; :meth:`window_basis` says which rule chose it."""
        return self._window_and_basis(view)[0]

    def window_basis(self, view: str) -> str:
        """How the view's window was chosen (set, its terms' intervals, the ops' intervals, ops at peak rate)."""
        return self._window_and_basis(view)[1]

    def _window_and_basis(self, view: str) -> tuple[tuple[float, float] | None, str]:
        # The ops' intervals are on the bench clock, so only the bench view may take its window from them;
        # the projected and baseline views run on their own time (the projected hardware at its peak rate).
        _check_view(view)
        if view in self._windows:
            return self._windows[view], "window set"
        spans = [(t.start_s, t.end_s) for t in self._terms[view] if t.start_s is not None]
        if spans:
            return (min(a for a, _ in spans), max(b for _, b in spans)), "extent of the view's power intervals"
        if view == "bench":
            spans = [(r.start_s, r.end_s) for r in self._ops if r.start_s is not None]
            if spans:
                return (min(a for a, _ in spans), max(b for _, b in spans)), "extent of the ops' compute intervals"
        elif view in self._peak_rates and self.ops > 0:
            return (0.0, self.ops / self._peak_rates[view][0]), "time for the ops at the view's peak op rate"
        return None, "no window"

    def summary(self, view: str = "bench") -> ViewSummary:
        """Energy per device and total, time, TOPS, J/op and mW/TOPS of ``view`` (utilisation-weighted and
        at peak). Raises EnergyError when the view has no terms or steady terms have no window."""
        _check_view(view)
        terms = self._terms[view]
        if not terms:
            raise EnergyError(f"the {view} view has no power terms")
        win, window_basis = self._window_and_basis(view)
        if win is None:
            why = f"; {NO_OPS}" if self.ops == 0 and view in self._peak_rates else ""
            raise EnergyError(f"{view}: steady terms (no interval) need a window: call set_window, give the terms "
                              f"intervals, or (projected/baseline) set_peak_rate so the ops' time can be computed{why}")
        t0, t1 = win
        for t in terms:
            if t.start_s is not None and (t.start_s < t0 or t.end_s > t1):
                raise EnergyError(f"{view}: {t.device} [{t.start_s}, {t.end_s}] s lies outside the window "
                                  f"[{t0}, {t1}] s")
        time_s = t1 - t0

        def energy_of(t: PowerTerm) -> float:
            return t.power_w * (time_s if t.start_s is None else t.end_s - t.start_s)

        devices: list[DeviceEnergy] = []
        for name in dict.fromkeys(t.device for t in terms):
            mine = [t for t in terms if t.device == name]
            e = sum(energy_of(t) for t in mine)
            devices.append(DeviceEnergy(
                device=name, energy_j=e, mean_power_w=e / time_s if time_s > 0 else max(t.power_w for t in mine),
                provenance=tuple(dict.fromkeys(describe_provenance(t.provenance) for t in mine)),
                kinds=tuple(dict.fromkeys(provenance_kind(t.provenance) for t in mine)),
                notes=tuple(dict.fromkeys(t.note for t in mine if t.note))))
        energy = sum(d.energy_j for d in devices)
        macs, ops = self.macs, self.ops

        no_ops = None
        tops = j_per_op = mw_per_tops = None
        if ops == 0:
            no_ops = NO_OPS
        else:
            j_per_op = energy / ops
            mw_per_tops = j_per_op * MW_PER_TOPS_PER_J_PER_OP
            if time_s > 0:
                tops = ops / time_s / 1e12

        peak_power, power_basis = self._power_while_computing(view, t0, t1)
        rate, rate_basis = self._peak_rate(view)
        no_peak = None
        peak_tops = peak_j = peak_mw = None
        if ops == 0 and view not in self._peak_rates:
            no_peak = NO_OPS
        elif rate is None:
            no_peak = rate_basis
        else:
            peak_tops = rate / 1e12
            peak_j = peak_power / rate
            peak_mw = peak_j * MW_PER_TOPS_PER_J_PER_OP

        return ViewSummary(
            view=view, devices=tuple(devices), energy_j=energy, time_s=time_s, window_s=(t0, t1), window_basis=window_basis,
            mean_power_w=energy / time_s if time_s > 0 else None, macs=macs, ops=ops, ops_per_mac=OPS_PER_MAC,
            tops=tops, j_per_op=j_per_op, mw_per_tops=mw_per_tops, no_ops=no_ops,
            peak_power_w=peak_power, peak_power_basis=power_basis, peak_ops_per_s=rate, peak_rate_basis=rate_basis,
            peak_tops=peak_tops, peak_j_per_op=peak_j, peak_mw_per_tops=peak_mw, no_peak=no_peak,
            labels={
                "ops": f"1 MAC = {OPS_PER_MAC} ops; ops counted from MACs sent to optics",
                "utilisation": "utilisation-weighted: energy over the whole window / ops done in it",
                "peak": "at peak: power while computing / peak op rate",
                "units": "1 mW/TOPS = 1 fJ/op = 1e-15 J/op",
            })

    def _power_while_computing(self, view: str, t0: float, t1: float) -> tuple[float, str]:
        terms = self._terms[view]
        if view != "bench":  # compute intervals are on the bench clock
            return self._max_draw(terms, t0, t1, "the compute intervals are on the bench clock")
        compute = _merge((max(r.start_s, t0), min(r.end_s, t1)) for r in self._ops
                         if r.start_s is not None and min(r.end_s, t1) > max(r.start_s, t0))
        busy = sum(b - a for a, b in compute)
        if self._ops and all(r.start_s is not None for r in self._ops) and busy > 0:
            e = sum(t.power_w * (busy if t.start_s is None else _overlap(t.start_s, t.end_s, compute)) for t in terms)
            return e / busy, "mean total draw during the compute intervals"
        return self._max_draw(terms, t0, t1, "no compute intervals recorded")

    @staticmethod
    def _max_draw(terms: list[PowerTerm], t0: float, t1: float, why: str) -> tuple[float, str]:
        return _max_total_draw(terms, t0, t1), f"max total draw over the window ({why})"

    def _peak_rate(self, view: str) -> tuple[float | None, str]:
        if view in self._peak_rates:
            rate, prov = self._peak_rates[view]
            return rate, f"peak op rate given ({describe_provenance(prov)})"
        if not self._ops:
            return None, NO_OPS
        if view != "bench":
            return None, "no peak op rate given for this view (the optical time is the bench's, not its own)"
        if any(r.optical_time_s is None for r in self._ops):
            return None, "no peak op rate: some MAC counts have no optical_time_s, and none was set (set_peak_rate)"
        t = sum(r.optical_time_s for r in self._ops)
        if t <= 0:
            return None, "no peak op rate: the optical time is 0 s, and none was set (set_peak_rate)"
        return self.ops / t, "ops / time the light computed (optical_time_s)"

    def energy_per_item(self, count: int) -> dict[str, float | None]:
        """Energy per item of the run (an image, a product) in J, per view that has terms; None where the
        view cannot be summarised (its summary's error says why)."""
        n = _count("count", count)
        if n == 0:
            raise EnergyError("energy per item of a run with no items is undefined")
        out: dict[str, float | None] = {}
        for view in self.views():
            try:
                out[view] = self.summary(view).energy_j / n
            except EnergyError:
                out[view] = None
        return out

    # -- storage --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of everything recorded (not the derived figures: those are recomputed)."""
        return {
            "format": FORMAT, "label": self.label, "ops_per_mac": OPS_PER_MAC,
            "terms": {v: [{"device": t.device, "power_w": t.power_w, "provenance": provenance_to_dict(t.provenance),
                           "start_s": t.start_s, "end_s": t.end_s, "note": t.note} for t in ts]
                      for v, ts in self._terms.items()},
            "ops": [asdict(r) for r in self._ops],
            "windows": {v: list(w) for v, w in self._windows.items()},
            "peak_rates": {v: {"ops_per_s": r, "provenance": provenance_to_dict(p)}
                           for v, (r, p) in self._peak_rates.items()},
            "notes": {v: list(n) for v, n in self._notes.items() if n},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnergyLedger:
        """Rebuild a ledger from :meth:`to_dict`; every term is checked again as it is re-recorded."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise EnergyError(f"not an energy ledger record (format {FORMAT!r} expected)")
        ledger = cls(label=d.get("label", ""))
        try:
            for view, terms in d["terms"].items():
                for t in terms:
                    ledger.add(PowerTerm(device=t["device"], power_w=t["power_w"],
                                         provenance=provenance_from_dict(t["provenance"]), start_s=t["start_s"],
                                         end_s=t["end_s"], note=t.get("note", "")), view=view)
            for r in d["ops"]:
                ledger._ops.append(OpsRecord(**r))
            for view, (a, b) in d.get("windows", {}).items():
                ledger.set_window(view, a, b)
            for view, pr in d.get("peak_rates", {}).items():
                ledger.set_peak_rate(view, pr["ops_per_s"], provenance_from_dict(pr["provenance"]))
            for view, texts in d.get("notes", {}).items():
                for text in texts:
                    ledger.add_note(view, text)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, EnergyError):
                raise
            raise EnergyError(f"unreadable energy ledger record: {exc!r}") from None
        return ledger

    def save(self, target: Any) -> Path | None:
        """Write the ledger: into a live :class:`~labctl.store.Recorder` (``energy/ledger``), into the
        ``energy`` group of an existing results HDF5 file, or as a JSON sidecar (a ``.json`` path)."""
        from labctl.store import Recorder, write_json_dataset

        if isinstance(target, Recorder):
            target.write_json(HDF5_DATASET, self.to_dict(), format=FORMAT)
            return None
        path = Path(target)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=1))
            return path
        import h5py

        try:
            with h5py.File(path, "a", locking=False) as f:
                write_json_dataset(f, HDF5_DATASET, self.to_dict(), format=FORMAT)
        except OSError as exc:
            raise EnergyError(f"cannot write the energy ledger into {path}: {exc}") from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> EnergyLedger:
        """Read a ledger from a JSON sidecar, or from the ``energy`` group of a results file (falling back
        to the sidecar ``<file>.energy.json`` next to it)."""
        from labctl.store import ResultsPathError, read_json_dataset

        path = Path(path)
        if path.suffix == ".json":
            try:
                return cls.from_dict(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise EnergyError(f"cannot read the energy ledger {path}: {exc}") from None
        try:
            return cls.from_dict(read_json_dataset(path, HDF5_DATASET))
        except KeyError:
            sidecar = sidecar_path(path)
            if sidecar.exists():
                return cls.load(sidecar)
            raise EnergyError(f"{path} has no energy record (no '{HDF5_DATASET}' and no sidecar {sidecar.name}); "
                              "the run recorded no energy") from None
        except ResultsPathError as exc:
            raise EnergyError(str(exc)) from None


HDF5_DATASET = "energy/ledger"


def sidecar_path(results: str | Path) -> Path:
    """Where a results file's JSON energy sidecar lives: ``<name>.energy.json`` next to it."""
    results = Path(results)
    return results.with_name(f"{results.stem}.energy.json")


__all__ = [
    "EnergyLedger", "DeviceEnergy", "HDF5_DATASET", "MW_PER_TOPS_PER_J_PER_OP", "NO_OPS", "OPS_PER_MAC", "OpsRecord",
    "VIEWS", "ViewSummary", "describe_provenance", "provenance_kind", "sidecar_path",
]
