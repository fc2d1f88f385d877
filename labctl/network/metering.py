"""The energy of each job a center computes: what its core's own instruments drew, and its projection."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Sequence

from labctl.energy import OPS_PER_MAC
from labctl.energy.ledger import provenance_to_dict
from labctl.energy.metering import BenchMeter
from labctl.energy.projected import bench_projection
from labctl.errors import LabctlError
from labctl.network.messages import EnergyTerm, JobEnergy, ProjectionFigure

__all__ = ["CoreMetering", "core_metering"]


class _CoreScope:
    """A bench seen through some of its instruments: a :class:`BenchMeter` over it reads and counts only those."""

    def __init__(self, bench: Any, names: set[str]):
        self.config = SimpleNamespace(instruments={name: spec for name, spec in bench.config.instruments.items()
                                                   if name in names})
        self.clock, self.role, self.mode = bench.clock, bench.role, getattr(bench, "mode", None)


class CoreMetering:
    """How the center meters the jobs of one core.

    The bench view of a job is a :class:`BenchMeter` over the job's window on the bench clock, on the bench
    seen through the core's own instruments only: its controller, the lasers that light its inputs, and an
    analyzer whose feed holds nothing else. A feed shared with other cores is left out (its reading cannot
    be split between jobs that run at the same time); the controller is then read back by its board's
    power monitor and the lasers come from the instrument table, as the meter's terms say. Cores run in
    parallel, each job metered in its core's worker thread, and no source of one core's meter covers
    another core, so concurrent jobs never count each other's draw. The projected view is the job's ops
    (2 x ``optical_macs``) at the energy per op of the bench's projection at peak (:func:`bench_projection`).
    """

    def __init__(self, engine: Any, projection: Any = None, why_not_projected: str = ""):
        self.scope: _CoreScope | None = None
        self.attribution = ""
        self.notes: list[str] = []
        self.projection = None
        if projection is not None:
            self.projection = ProjectionFigure(name=projection.config.name[:200], power_w=projection.total_w,
                                               peak_ops_per_s=projection.peak_ops_per_s,
                                               terms={t.device[:64]: t.power_w for t in projection.terms})
            self.j_per_op = projection.j_per_op
        elif why_not_projected:
            self.notes.append(f"projected: {why_not_projected}")
        bench, core = getattr(engine, "bench", None), getattr(engine, "core_config", None)
        if bench is None or core is None:
            self.notes.append(f"bench: {engine.name} names no bench instruments (a controller and its lasers), "
                              "so its jobs' draw is not metered")
            return
        own = {core.controller, *(channel.laser for channel in core.channels)}
        feeds, shared = [], []
        for name, spec in bench.config.instruments.items():
            covered = set(spec.measures or ()) if spec.role == "power_analyzer" else set()
            if covered and covered <= own:
                feeds.append(name)
            elif covered & own:
                shared.append(f"{name} meters {', '.join(sorted(covered & own))} together with "
                              f"{', '.join(sorted(covered - own))}")
        self.scope = _CoreScope(bench, own | set(feeds))
        items = ", ".join([core.controller, *sorted(own - {core.controller})])
        self.attribution = (f"the draw of core {engine.name}'s instruments ({items}) over the job's window on the "
                            f"bench clock, from " + (f"their own analyzer feed(s) {', '.join(feeds)} (with the "
                                                    "analyzer's own draw, from the instrument table)" if feeds else
                                                    "their readbacks and the instrument table (no analyzer feed "
                                                    "holds only them)") + "; other cores' instruments are not in it")
        for text in shared:
            self.notes.append(f"bench: {text}: that feed cannot be split between concurrent jobs, so it is left "
                              "out of each job's figure; readbacks are snapshots at the job's start and end, so "
                              "a program's draw between them is missed (one analyzer per core measures it all)")

    def run(self, engine: Any, compute: Callable[[], Any]) -> tuple[Any, JobEnergy]:
        """``compute()`` (the job's product on ``engine``) metered; returns its output and the job's energy.
        A meter that fails leaves the product alone: the energy then says why it has no bench figure."""
        notes = list(self.notes)
        meter = None
        if self.scope is not None:
            meter = BenchMeter(self.scope, label=f"job on {engine.name}")
            try:
                meter.start()
            except LabctlError as exc:
                notes.append(f"bench: not metered: {exc}")
                meter = None
        try:
            out = compute()
        except BaseException:
            if meter is not None:
                meter.abort()
            raise
        figures: dict[str, Any] = {}
        if self.projection is not None:
            stats = engine.last_stats
            figures["projected_j"] = OPS_PER_MAC * int(stats.get("optical_macs", stats.get("macs", 0))) * self.j_per_op
        if meter is not None:
            try:
                ledger = meter.stop()
                bench = {"bench_j": ledger.summary("bench").energy_j, "start_s": meter.start_s, "end_s": meter.end_s,
                         "terms": [EnergyTerm(device=t.device, power_w=t.power_w, start_s=t.start_s, end_s=t.end_s,
                                              provenance=provenance_to_dict(t.provenance), note=t.note)
                                   for t in ledger.terms("bench")]}
            except (LabctlError, ValueError) as exc:  # a reading refused, or a term the schema cannot carry
                notes.append(f"bench: not metered: {exc}")
            else:
                figures.update(bench)
                notes += [f"bench: {note}" for note in ledger.notes("bench")]
        return out, JobEnergy(attribution=self.attribution, projection=self.projection,
                              notes=[note[:1000] for note in notes[:16]], **figures)


def core_metering(engines: Sequence[Any]) -> list[CoreMetering]:
    """One :class:`CoreMetering` per engine; the projection of each bench is made once."""
    projections: dict[int, tuple[Any, str]] = {}
    metering = []
    for engine in engines:
        bench = getattr(engine, "bench", None)
        if bench is None:
            metering.append(CoreMetering(engine, None, "the engine names no bench to project"))
            continue
        if id(bench) not in projections:
            try:
                projections[id(bench)] = (bench_projection(bench), "")
            except LabctlError as exc:
                projections[id(bench)] = (None, f"no projection of this bench: {exc}")
        metering.append(CoreMetering(engine, *projections[id(bench)]))
    return metering
