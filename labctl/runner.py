"""Run experiments: typed parameters, a bench, a progress bar, an incrementally written results file.

An experiment is a documented class with a pydantic ``Parameters`` model and a ``run(ctx)`` method
that measures through ``ctx.bench`` roles and records through ``ctx.recorder``. labctl finds
experiments through the ``labctl.experiments`` entry-point group (so labctl never imports the
experiments package), or by an explicit ``module:Class`` reference.

Every run is metered: a :class:`~labctl.energy.metering.BenchMeter` brackets ``run(ctx)`` on the bench
clock, the experiment records the MACs it sends to optics on ``ctx.energy.ledger``, and the ledger is
stored in the results file (``energy/ledger``, read by ``labctl energy report``). A failed or interrupted
run records no energy: its bench view would cover a computation that did not finish.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable, ClassVar, Iterable

from pydantic import BaseModel, ValidationError
from tqdm.auto import tqdm

from labctl.bench import Bench, Mode, bench_config, open_bench
from labctl.energy.ledger import EnergyLedger
from labctl.energy.metering import BenchMeter
from labctl.energy.provenance import EnergyError
from labctl.energy.report import format_si
from labctl.errors import LabctlError
from labctl.shutdown import ShutdownReport, Terminated, deferred_signals
from labctl.store import SUFFIXES, Recorder, ResultsPathError

#: Seeds the simulation accepts (numpy's legacy generators take 32-bit seeds).
SEED_RANGE = (0, 2**32 - 1)


class ExperimentError(LabctlError):
    """An experiment cannot be found, or its parameters are invalid."""


class Experiment:
    """Base class of experiments. Subclasses set ``name``, ``Parameters`` and implement ``run``.

    ``default_bench``: the bench file or built-in bench name a simulated run opens when none is given
    (``labctl run NAME --sim`` without ``--bench``), for experiments made for another bench than the system
    (e.g. ``"characterisation"`` for link measurements); None: the built-in system, the optical computing
    center. A real bench is always given explicitly.
    """

    name: ClassVar[str] = ""
    Parameters: ClassVar[type[BaseModel]]
    default_bench: ClassVar[str | Path | None] = None

    def run(self, ctx: "RunContext") -> dict[str, Any]:
        """Measure; record through ``ctx.recorder``; return a short summary (printed by the CLI)."""
        raise NotImplementedError


@dataclass
class RunContext:
    """What an experiment gets: the open bench, validated parameters, the recorder and helpers.

    ``energy`` meters the bench over the run: record each optical product on ``energy.ledger``
    (``add_stats(opu.last_stats, start_s=..., end_s=...)`` with times from ``energy.now()`` taken before and
    after it) and call ``energy.sample()`` after it; the runner stops the meter and stores the ledger.
    """

    bench: Bench
    params: BaseModel
    recorder: Recorder
    out_dir: Path
    energy: BenchMeter
    show_progress: bool = True
    artefacts: list[Path] = field(default_factory=list)
    items: tuple[int, str] | None = None

    def progress(self, iterable: Iterable | None = None, **kwargs) -> tqdm:
        """A progress bar (hidden when running quietly, e.g. in tests)."""
        kwargs.setdefault("disable", not self.show_progress)
        kwargs.setdefault("leave", False)
        return tqdm(iterable, **kwargs)

    def artefact(self, filename: str) -> Path:
        """Path for an extra output (plot, table, calibration file) next to the results file; remembered
        for the summary. Its name is kept even if a file of that name exists (experiments and users find
        calibration files by name); only results files are never replaced."""
        path = self.out_dir / filename
        self.artefacts.append(path)
        return path

    def energy_per(self, count: int, item: str) -> None:
        """Say how many items (products, images) the run made, so its energy figures include the energy
        per item of every view (``energy_<view>_j_per_<item>`` in the results)."""
        if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
            raise ExperimentError(f"energy_per: count must be a whole number >= 0, got {count!r}")
        if not (isinstance(item, str) and item.isidentifier()):
            raise ExperimentError(f"energy_per: item must be a plain word such as 'product', got {item!r}")
        self.items = (count, item)


@dataclass
class RunResult:
    experiment: str
    results_path: Path
    summary: dict[str, Any]
    artefacts: list[Path]
    energy: EnergyLedger  # the run's ledger, as stored in the results file
    shutdown: ShutdownReport | None = None  # None when the caller passed its own (still open) bench


def available_experiments() -> dict[str, str]:
    """Registered experiments: name -> ``module:Class``."""
    return {ep.name: ep.value for ep in entry_points(group="labctl.experiments")}


def load_experiment(name: str) -> type[Experiment]:
    """Find an experiment class by registered name or ``module:Class``."""
    target = available_experiments().get(name, name)
    if ":" not in target:
        known = ", ".join(sorted(available_experiments())) or "(none registered)"
        raise ExperimentError(f"unknown experiment {name!r}; known experiments: {known}")
    module, cls_name = target.split(":", 1)
    try:
        cls = getattr(import_module(module), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ExperimentError(f"cannot load experiment {name!r} from {target}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise ExperimentError(f"{target} is not an Experiment")
    return cls


def parse_overrides(pairs: Iterable[str], option: str = "--set") -> dict[str, Any]:
    """``["points=41", "wavelengths_nm=[1550,1551]"]`` -> dict (JSON values where they parse); ``option``
    names the command-line option in errors."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ExperimentError(f"{option} expects name=value, got {pair!r}")
        try:
            values[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            values[key.strip()] = text
    return values


def make_parameters(cls: type[Experiment], overrides: dict[str, Any]) -> BaseModel:
    """Validate parameters; errors name the parameter and list the valid ones.

    Unknown names are refused (a typo must not silently run the defaults), and so are NaN and
    infinity anywhere in the values: they would reach instruments as settings.
    """
    fields = cls.Parameters.model_fields
    valid = ", ".join(fields)
    known = set(fields) | {info.alias for info in fields.values() if info.alias}
    for name in overrides:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ExperimentError(f"unknown parameter {name!r} of {cls.name}{hint} (parameters: {valid})")
    try:
        params = cls.Parameters(**overrides)
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = ".".join(str(p) for p in problem["loc"])
        raise ExperimentError(f"parameter {name!r}: {problem['msg']} (parameters of {cls.name}: {valid})") from None
    for name in fields:
        where = _non_finite(getattr(params, name), name)
        if where is not None:
            raise ExperimentError(f"parameter {where!r} is not a finite number; give a finite value")
    return params


def _non_finite(value: Any, where: str) -> str | None:
    """The location of the first NaN or infinity in ``value`` (nested lists, dicts, models), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        items: Iterable = value.items()
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if isinstance(value, dict) else f"{where}[{key}]")
        if found is not None:
            return found
    return None


def check_seed(seed: int | None) -> None:
    """Refuse a seed the simulation cannot take, before anything is opened."""
    low, high = SEED_RANGE
    if seed is not None and not (isinstance(seed, int) and low <= seed <= high):
        raise ExperimentError(f"seed {seed!r} is outside {low}..{high}, the seeds the simulation accepts; "
                              "give a seed in that range")


def results_path(out: str | Path | None, experiment: str) -> Path:
    """Where to write: ``out`` if it ends in .h5, else ``out/<experiment>.h5`` (default results/<time>).

    A path that cannot hold a results file (``out`` is a file without a .h5 ending, ...) is an error.
    """
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path("results") / f"{experiment}-{stamp}" / f"{experiment}.h5"
    out = Path(out)
    if out.suffix in SUFFIXES:
        return out
    if out.exists() and not out.is_dir():
        raise ResultsPathError(f"--out {out} is a file, not a directory; give a directory or a file name "
                               "ending in .h5")
    return out / f"{experiment}.h5"


def run_experiment(
    experiment: str | type[Experiment],
    *,
    bench_path: str | Path | None = None,
    mode: Mode = "sim",
    seed: int | None = 0,
    overrides: dict[str, Any] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    bench: Bench | None = None,
    changes: Mapping[str, Any] | None = None,
    on_results_file: Callable[[Path, Path], None] | None = None,
) -> RunResult:
    """Run one experiment on a bench and write its results file; return where and what it found.

    Parameters, seed and output path are checked, and the results file created (``running``), before
    any instrument is touched; the file always ends ``complete``, ``failed: <why>`` or ``interrupted``.
    An existing results file is never overwritten (see :class:`labctl.store.Recorder`; ``overwrite``
    replaces it only with a complete run). ``on_results_file(path, requested)`` is told where the file
    is being written once it exists, and the path asked for (they differ when that name was taken).

    Pass ``bench`` to reuse an open bench (it is left open); otherwise one is opened and closed
    (sources shut down, the report stored in the file as ``shutdown``) around the run, whatever happens;
    ``changes`` opens it as a simulated variant of its file (:func:`labctl.bench.open_bench`). Without
    ``bench_path`` a simulated run opens the experiment's ``default_bench`` when it has one.

    The run is metered (:class:`~labctl.energy.metering.BenchMeter`, ``ctx.energy``); a completed run
    stores its ledger in the results file and its energy line in the summary (``energy``).
    """
    cls = load_experiment(experiment) if isinstance(experiment, str) else experiment
    if bench is not None and changes:
        raise ValueError("changes make the bench run_experiment opens; for an open bench, open it with "
                         "open_bench(..., changes=...) instead")
    if bench is None and bench_path is None and mode == "sim":
        bench_path = cls.default_bench
    params = make_parameters(cls, overrides or {})
    check_seed(seed)
    if bench is None:
        bench_config(bench_path, mode, changes)  # a broken file or change is an error before any results file
    recorder = Recorder(results_path(out, cls.name), experiment=cls.name,
                        parameters=params.model_dump(mode="json"), seed=seed, overwrite=overwrite)
    own_bench = bench is None
    status = "interrupted"  # what an interrupt leaves; the other ends set their own
    report = None
    meter = None
    try:
        if on_results_file is not None:
            on_results_file(recorder.path, recorder.requested)
        if own_bench:
            bench = open_bench(bench_path, mode=mode, seed=seed, changes=changes)
        recorder.set_snapshot(bench.snapshot())
        meter = BenchMeter(bench, label=f"{cls.name} ({recorder.path.name})")
        meter.start()
        ctx = RunContext(bench, params, recorder, recorder.path.parent, meter, show_progress)
        summary = cls().run(ctx)
        ledger = meter.stop()
        ledger.save(recorder)
        line, figures = energy_figures(ledger, ctx.items)
        summary = {**summary, "energy": line}
        recorder.set_result(**{k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))},
                            **figures)
        status = "complete"
    except KeyboardInterrupt as exc:
        recorder.set_attribute("interrupted_by", str(exc) if isinstance(exc, Terminated) else "Ctrl-C")
        raise
    except BaseException as exc:
        status = f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        with deferred_signals():
            try:
                if meter is not None:
                    meter.abort()  # a run that did not complete records no energy (no-op once stopped)
            finally:
                try:
                    if own_bench and bench is not None:
                        report = bench.close()
                        recorder.set_attribute("shutdown", str(report))
                finally:
                    path = recorder.close(status)
    return RunResult(cls.name, path, summary, ctx.artefacts, ledger, report)


def energy_figures(ledger: EnergyLedger, items: tuple[int, str] | None = None) -> tuple[str, dict[str, float]]:
    """The run's energy in one line (each recorded view's energy and J/op, or "no ops"; per item when
    ``items`` = (count, name) is given) and its figures for the results file (``energy_<view>_j``,
    ``energy_<view>_j_per_op``, ``energy_<view>_j_per_<item>``)."""
    parts: list[str] = []
    figures: dict[str, float] = {}
    per_item: list[str] = []
    for view in ledger.views():
        try:
            s = ledger.summary(view)
        except EnergyError as exc:
            parts.append(f"{view} n/a ({exc})")
            continue
        figures[f"energy_{view}_j"] = s.energy_j
        text = f"{view} {format_si(s.energy_j, 'J')}"
        if view == "bench":
            text += f" over {format_si(s.time_s, 's')}"
        if s.j_per_op is None:
            text += ", no ops"
        else:
            figures[f"energy_{view}_j_per_op"] = s.j_per_op
            text += f", {format_si(s.j_per_op, 'J/op')}"
        parts.append(text)
        if items is not None and items[0] > 0:
            figures[f"energy_{view}_j_per_{items[1]}"] = s.energy_j / items[0]
            per_item.append(f"{view} {format_si(s.energy_j / items[0], 'J')}")
    if not parts:
        parts.append("bench: no drawing item recorded (" + "; ".join(ledger.notes("bench")) + ")")
    if per_item:
        parts.append(f"per {items[1]} ({items[0]}): " + ", ".join(per_item))
    return "; ".join(parts), figures


__all__ = [
    "Experiment",
    "ExperimentError",
    "RunContext",
    "RunResult",
    "available_experiments",
    "check_seed",
    "energy_figures",
    "load_experiment",
    "run_experiment",
]

