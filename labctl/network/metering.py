"""The energy of each job a center computes: what its core's own instruments drew, and its projection."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Sequence

from labctl.energy import OPS_PER_MAC
from labctl.energy.ledger import EnergyLedger, provenance_from_dict, provenance_to_dict
from labctl.energy.metering import BenchMeter
from labctl.energy.projected import bench_projection
from labctl.energy.provenance import EnergyError, Model, PowerTerm
from labctl.errors import LabctlError
from labctl.network.messages import EnergyTerm, JobEnergy, ProjectionFigure

__all__ = ["CoreMetering", "JobLedger", "core_metering"]


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


class JobLedger:
    """An :class:`EnergyLedger` (``ledger``) of the jobs one user had a center compute, from each job's
    :class:`JobEnergy` as the center metered it."""

    def __init__(self, label: str):
        self.ledger = EnergyLedger(label=label)
        self._clock = 0.0  # end of the last job laid on the ledger's bench timeline

    def record(self, energy: JobEnergy, stats: dict[str, Any], job: str) -> None:
        """Add job ``job``'s energy and ops (``stats``: its engine statistics); a job whose figures the ledger
        refuses leaves a note instead (the product stands)."""
        try:
            self._add(energy, stats)
        except EnergyError as exc:
            self.note("bench", f"job {job}: its energy at the center was not recorded: {exc}")

    def _add(self, energy: JobEnergy, stats: dict[str, Any]) -> None:
        """One job's energy at the center into :attr:`ledger`, as the center metered it (same terms, same
        provenance). Bench view: the job's terms and ops on its window of the center's bench clock, moved so
        that each job follows the previous one (the center's clock restarts with the center, and only the
        windows' lengths matter), so the view's time is the sum of this edge's jobs' windows. Projected view:
        the center's projection (one term, its parts in the provenance) at its peak rate, over the ops."""
        macs = int(stats.get("optical_macs", stats.get("macs", 0)))
        useful = stats.get("macs") if "optical_macs" in stats else None
        source = f"the center's statistics of job products on {stats.get('core', '?')}"
        if energy.start_s is not None and energy.end_s is not None and energy.bench_j is not None:
            shift = self._clock - energy.start_s
            terms = [PowerTerm(f"center {term.device}", term.power_w, provenance_from_dict(term.provenance),
                               start_s=term.start_s + shift, end_s=term.end_s + shift, note=term.note)
                     for term in energy.terms]  # all checked before any is recorded
            for term in terms:
                self.ledger.add(term, view="bench")
            self.ledger.add_ops(macs, useful_macs=useful, optical_time_s=stats.get("optical_time_s"),
                                start_s=energy.start_s + shift, end_s=energy.end_s + shift, source=source)
            self._clock = energy.end_s + shift
            self.note("bench", f"per job: {energy.attribution}; each job's window of the center's bench clock "
                                "follows the previous job's")
        else:
            self.ledger.add_ops(macs, useful_macs=useful, optical_time_s=stats.get("optical_time_s"), source=source)
        for note in energy.notes:
            view, _, text = note.partition(": ")
            self.note(view if view in ("bench", "projected") else "bench", text if view in ("bench", "projected")
                       else note)
        figure = energy.projection
        if figure is not None:
            device = f"center projection ({figure.name})"
            known = [t for t in self.ledger.terms("projected") if t.device == device]
            if not known:
                self.ledger.add(PowerTerm(device, figure.power_w, Model(
                    "sum of the center's projected terms (labctl.energy.projected.bench_projection), at peak",
                    {f"{name}_w": power for name, power in figure.terms.items()})), view="projected")
                self.ledger.set_peak_rate("projected", figure.peak_ops_per_s, Model(
                    "2 x N x M x f_s x cores, the center's projection (1 MAC = 2 ops)",
                    {"peak_ops_per_s": figure.peak_ops_per_s}))
            elif known[0].power_w != figure.power_w:
                self.note("projected", f"a job reported another projection ({figure.power_w:.6g} W) than the "
                                        f"first ({known[0].power_w:.6g} W): the view keeps the first")

    def note(self, view: str, text: str) -> None:
        if text not in self.ledger.notes(view):
            self.ledger.add_note(view, text)
