"""Run experiments: typed parameters, a bench, a progress bar, an incrementally written results file.

An experiment is a documented class with a pydantic ``Parameters`` model and a ``run(ctx)`` method
that measures through ``ctx.bench`` roles and records through ``ctx.recorder``. labctl finds
experiments through the ``labctl.experiments`` entry-point group (so labctl never imports the
experiments package), or by an explicit ``module:Class`` reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Iterable

from pydantic import BaseModel, ValidationError
from tqdm.auto import tqdm

from labctl.bench import Bench, Mode, open_bench
from labctl.errors import LabctlError
from labctl.store import Recorder


class ExperimentError(LabctlError):
    """An experiment cannot be found, or its parameters are invalid."""


class Experiment:
    """Base class of experiments. Subclasses set ``name``, ``Parameters`` and implement ``run``."""

    name: ClassVar[str] = ""
    Parameters: ClassVar[type[BaseModel]]

    def run(self, ctx: "RunContext") -> dict[str, Any]:
        """Measure; record through ``ctx.recorder``; return a short summary (printed by the CLI)."""
        raise NotImplementedError


@dataclass
class RunContext:
    """What an experiment gets: the open bench, validated parameters, the recorder and helpers."""

    bench: Bench
    params: BaseModel
    recorder: Recorder
    out_dir: Path
    show_progress: bool = True
    artefacts: list[Path] = field(default_factory=list)

    def progress(self, iterable: Iterable | None = None, **kwargs) -> tqdm:
        """A progress bar (hidden when running quietly, e.g. in tests)."""
        kwargs.setdefault("disable", not self.show_progress)
        kwargs.setdefault("leave", False)
        return tqdm(iterable, **kwargs)

    def artefact(self, filename: str) -> Path:
        """Path for an extra output (plot, table) next to the results file; remembered for the summary."""
        path = self.out_dir / filename
        self.artefacts.append(path)
        return path


@dataclass
class RunResult:
    experiment: str
    results_path: Path
    summary: dict[str, Any]
    artefacts: list[Path]


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


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["points=41", "wavelengths_nm=[1550,1551]"]`` -> dict (JSON values where they parse)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ExperimentError(f"--set expects name=value, got {pair!r}")
        try:
            values[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            values[key.strip()] = text
    return values


def make_parameters(cls: type[Experiment], overrides: dict[str, Any]) -> BaseModel:
    """Validate parameters; errors name the parameter and list the valid ones."""
    try:
        return cls.Parameters(**overrides)
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = ".".join(str(p) for p in problem["loc"])
        valid = ", ".join(cls.Parameters.model_fields)
        raise ExperimentError(f"parameter {name!r}: {problem['msg']} (parameters of {cls.name}: {valid})") from None


def results_path(out: str | Path | None, experiment: str) -> Path:
    """Where to write: ``out`` if it ends in .h5, else ``out/<experiment>.h5`` (default results/<time>)."""
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path("results") / f"{experiment}-{stamp}" / f"{experiment}.h5"
    out = Path(out)
    return out if out.suffix in (".h5", ".hdf5") else out / f"{experiment}.h5"


def run_experiment(
    experiment: str | type[Experiment],
    *,
    bench_path: str | Path | None = None,
    mode: Mode = "sim",
    seed: int | None = 0,
    overrides: dict[str, Any] | None = None,
    out: str | Path | None = None,
    show_progress: bool = True,
    bench: Bench | None = None,
) -> RunResult:
    """Run one experiment on a bench and write its results file; return where and what it found.

    Pass ``bench`` to reuse an open bench (it is left open); otherwise one is opened and closed
    (sources shut down) around the run, whatever happens.
    """
    cls = load_experiment(experiment) if isinstance(experiment, str) else experiment
    params = make_parameters(cls, overrides or {})
    path = results_path(out, cls.name)
    own_bench = bench is None
    if own_bench:
        bench = open_bench(bench_path, mode=mode, seed=seed)
    recorder = None
    try:
        recorder = Recorder(path, experiment=cls.name, parameters=params.model_dump(mode="json"),
                            snapshot=bench.snapshot(), seed=seed)
        ctx = RunContext(bench, params, recorder, path.parent, show_progress)
        summary = cls().run(ctx)
        recorder.set_result(**{k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))})
        recorder.close("complete")
        return RunResult(cls.name, path, summary, ctx.artefacts)
    except KeyboardInterrupt:
        if recorder is not None:
            recorder.close("interrupted")
        raise
    except BaseException as exc:
        if recorder is not None:
            recorder.close(f"failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        if own_bench:
            bench.close()


__all__ = [
    "Experiment",
    "ExperimentError",
    "RunContext",
    "RunResult",
    "available_experiments",
    "load_experiment",
    "run_experiment",
]

