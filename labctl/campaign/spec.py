"""Campaign files: which experiment, on which bench, at which points, how often, and when to stop.

A campaign file is YAML or TOML read strictly (:mod:`labctl.files`) and checked as a whole before
anything runs: an error is a :class:`~labctl.errors.ConfigError` naming the file, the line and the field
(an unknown experiment or parameter, a sweep with no points, a value the experiment's ``Parameters``
refuse, a bench change the simulated bench refuses). Fields are described in docs/campaigns.md.

Sweeps (``sweep:``, any of the three; several are combined as an outer product in the order written):

* ``grid``: ``{name: [values] | {start, stop, num} | {start, stop, step}}``, every combination;
* ``zip``: ``{name: [values], ...}``, lists of equal length walked together;
* ``random``: ``{num, seed, params: {name: {low, high} | [choices]}}``, ``num`` draws.

A swept ``name`` is a parameter of the experiment, or ``bench.<component>.<parameter>`` for a simulated
bench's component (``bench.edge_fibre.length_km``), opened as a variant of its file for that point.
Each point runs ``repeats`` times; each run gets its own seed derived from the campaign ``seed`` and the
point's content, so a point's result does not depend on the order or the process that runs it.

``suspend`` declares Bluesky suspenders (:mod:`labctl.campaign.suspend`): ``power`` (a received-power
floor read with the light on) and ``drift`` (a calibrated core's drift check); their instruments,
channels and calibration file are checked here.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from labctl.bench import bench_config
from labctl.errors import ConfigError, LabctlError
from labctl.files import load_document
from labctl.runner import SEED_RANGE, ExperimentError, load_experiment, make_parameters
from labctl.strict import StrictModel

#: Prefix of a swept name that changes a simulated bench component instead of an experiment parameter.
BENCH_PREFIX = "bench."


class Span(StrictModel):
    """Evenly spaced values: ``num`` from ``start`` to ``stop`` inclusive, or every ``step``."""

    start: float = Field(allow_inf_nan=False)
    stop: float = Field(allow_inf_nan=False)
    num: int | None = Field(None, ge=1)
    step: float | None = Field(None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_way(self):
        if (self.num is None) == (self.step is None):
            raise ValueError("give either num (how many values) or step (their spacing), not both or neither")
        return self

    def values(self) -> list[float]:
        if self.num is not None:
            return [float(v) for v in np.linspace(self.start, self.stop, self.num)]
        count = int(np.floor(abs(self.stop - self.start) / self.step + 1e-9)) + 1
        sign = 1.0 if self.stop >= self.start else -1.0
        return [float(self.start + sign * i * self.step) for i in range(count)]


class Bounds(StrictModel):
    """A uniform draw between ``low`` and ``high``."""

    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        return self


class RandomSweep(StrictModel):
    num: int = Field(ge=1)
    seed: int = Field(0, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    params: dict[str, Bounds | list[Any]]


class Adaptive(StrictModel):
    """A coarse pass over one parameter, then ``rounds`` of ``points`` new values in each interval next to a
    feature of one result: its ``min`` (a null, e.g. of a transfer function), its ``max`` (a peak) or its
    ``knee`` (largest change of slope, e.g. where an SNR curve saturates)."""

    param: str
    start: float = Field(allow_inf_nan=False)
    stop: float = Field(allow_inf_nan=False)
    num: int = Field(ge=3, description="values of the coarse pass (a feature needs neighbours)")
    result: str
    feature: Literal["min", "max", "knee"]
    rounds: int = Field(1, ge=1)
    points: int = Field(1, ge=1, description="new values per round in each interval next to the feature")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.start < self.stop:
            raise ValueError(f"start ({self.start:g}) must be below stop ({self.stop:g})")
        return self


class Sweep(StrictModel):
    grid: dict[str, list[Any] | Span] | None = None
    zip: dict[str, list[Any]] | None = None
    random: RandomSweep | None = None
    adaptive: Adaptive | None = None

    @model_validator(mode="after")
    def _adaptive_alone(self):
        if self.adaptive is not None and (self.grid or self.zip or self.random):
            raise ValueError("an adaptive sweep refines one parameter: it cannot be combined with grid, zip or random")
        return self


class StopWhen(StrictModel):
    """Stop once a result of a finished point crosses a value (e.g. the SNR has fallen below 10 dB)."""

    result: str
    below: float | None = Field(None, allow_inf_nan=False)
    above: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_side(self):
        if (self.below is None) == (self.above is None):
            raise ValueError("give either below or above")
        return self

    def met(self, results: dict[str, Any]) -> bool:
        value = results.get(self.result)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return value < self.below if self.below is not None else value > self.above


class Stop(StrictModel):
    max_failures: int | None = Field(None, ge=1, description="stop after this many failed points")
    max_duration_s: float | None = Field(None, gt=0, allow_inf_nan=False, description="stop starting points after")
    when: list[StopWhen] = Field(default_factory=list)


class PowerSuspend(StrictModel):
    """Suspend while the received optical power, read between points with the light on, is below a floor."""

    meter: str = Field(description="power meter instrument")
    channel: int | None = Field(None, ge=1, description="its channel (None: the instrument itself)")
    laser: str | None = Field(None, description="laser switched on for the reading (restored after)")
    laser_channel: int | None = Field(None, ge=1)
    switch: str | None = Field(None, description="optical switch routed to the meter for the reading")
    route: int | None = Field(None, ge=1, description="the switch's route to the meter")
    below_dbm: float = Field(allow_inf_nan=False, description="suspend below this received power")
    resume_dbm: float | None = Field(None, allow_inf_nan=False, description="resume at or above (default below_dbm)")
    settle_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="wait after lighting, before reading")
    poll_s: float = Field(1.0, gt=0, allow_inf_nan=False, description="reading interval while suspended")
    sleep_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="wait after recovery before resuming")

    @model_validator(mode="after")
    def _consistent(self):
        if self.resume_dbm is not None and self.resume_dbm < self.below_dbm:
            raise ValueError(f"resume_dbm ({self.resume_dbm:g}) must be at least below_dbm ({self.below_dbm:g})")
        if (self.switch is None) != (self.route is None):
            raise ValueError("give both switch and route (the switch's route to the meter), or neither")
        if self.laser_channel is not None and self.laser is None:
            raise ValueError("laser_channel needs laser")
        return self


class DriftSuspend(StrictModel):
    """Suspend while a calibrated core's drift check fails (its reference error grew ``threshold``-fold)."""

    calibration: str = Field(description="the core's calibration file, relative to the campaign file")
    core: int = Field(0, ge=0)
    threshold: float = Field(2.0, gt=1, allow_inf_nan=False)
    resume_below: float | None = Field(None, gt=0, allow_inf_nan=False, description="resume at or below this "
                                       "ratio (default threshold)")
    poll_s: float = Field(10.0, gt=0, allow_inf_nan=False, description="check interval while suspended")
    sleep_s: float = Field(0.0, ge=0, allow_inf_nan=False, description="wait after recovery before resuming")

    @model_validator(mode="after")
    def _consistent(self):
        if self.resume_below is not None and self.resume_below > self.threshold:
            raise ValueError(f"resume_below ({self.resume_below:g}) must be at most threshold ({self.threshold:g})")
        return self


class Suspend(StrictModel):
    power: PowerSuspend | None = None
    drift: DriftSuspend | None = None

    @property
    def any(self) -> bool:
        return self.power is not None or self.drift is not None


class Report(StrictModel):
    """What the end-of-campaign figures and summary table show."""

    results: list[str] | None = Field(None, min_length=1, description="results to draw and tabulate, in this "
                                      "order (default: the first few numeric ones in name order)")


class CampaignFile(StrictModel):
    experiment: str
    description: str = ""
    bench: str | None = Field(None, description="bench file (relative to the campaign file); None: the "
                              "experiment's default simulated bench")
    mode: Literal["sim", "real"] = "sim"
    seed: int = Field(0, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    repeats: int = Field(1, ge=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    sweep: Sweep = Field(default_factory=Sweep)
    stop: Stop = Field(default_factory=Stop)
    suspend: Suspend = Field(default_factory=Suspend)
    report: Report = Field(default_factory=Report)


@dataclass(frozen=True)
class Point:
    """One run of the campaign: its swept values, repeat number, seed and identity (``key``)."""

    index: int
    key: str
    values: dict[str, Any]
    repeat: int
    seed: int
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def changes(self) -> dict[str, Any]:
        """The simulated bench changes of this point (``{"edge_fibre.length_km": 5.0}``)."""
        return {k[len(BENCH_PREFIX):]: v for k, v in self.values.items() if k.startswith(BENCH_PREFIX)}

    def overrides(self, fixed: dict[str, Any]) -> dict[str, Any]:
        """The experiment parameters of this point: the fixed ones, then the swept ones."""
        return {**fixed, **{k: v for k, v in self.values.items() if not k.startswith(BENCH_PREFIX)}}


@dataclass(frozen=True)
class Campaign:
    """A checked campaign file: the settings, the resolved bench file and every point."""

    path: Path
    spec: CampaignFile
    bench_path: Path | None
    points: tuple[Point, ...]
    swept: tuple[str, ...]
    digest: str  # identity of what the campaign measures (see :func:`canonical`)

    @property
    def name(self) -> str:
        return self.path.stem

    def canonical(self) -> str:
        return canonical(self.spec, self.bench_path)


def canonical(spec: CampaignFile, bench_path: Path | None) -> str:
    """The campaign's content that decides its points and their results, as canonical JSON: experiment,
    mode, bench (its file's content), seed, repeats, parameters and sweeps. Stop conditions, suspenders
    and the report are left out: a resumed campaign may be given more time, or watched differently."""
    bench_text = bench_path.read_text(encoding="utf-8") if bench_path is not None else None
    content = {"experiment": spec.experiment, "mode": spec.mode, "seed": spec.seed, "repeats": spec.repeats,
               "parameters": spec.parameters, "sweep": spec.sweep.model_dump(mode="json", exclude_none=True),
               "bench": None if bench_text is None else hashlib.sha256(bench_text.encode()).hexdigest()}
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def point_seed(campaign_seed: int, key: str) -> int:
    """The seed of a point's run: a function of the campaign seed and the point's content only."""
    digest = hashlib.sha256(f"{campaign_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (SEED_RANGE[1] + 1)


def _key(values: dict[str, Any], repeat: int) -> str:
    text = json.dumps({"values": values, "repeat": repeat}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Problem(Exception):
    def __init__(self, where: tuple[str, ...], message: str):
        self.where, self.message = where, message
        super().__init__(message)


def _axes(sweep: Sweep) -> list[list[tuple[dict[str, Any], dict[str, tuple[str, ...]]]]]:
    """Each sweep as a list of (values, source location of each value); empty sweeps are refused."""
    blocks = []
    if sweep.grid is not None:
        if not sweep.grid:
            raise _Problem(("sweep", "grid"), "no parameter to sweep; give at least one, or remove 'grid'")
        lists = []
        for name, given in sweep.grid.items():
            if isinstance(given, Span):
                values = given.values()
                lists.append([(name, v, ("sweep", "grid", name)) for v in values])
            else:
                lists.append([(name, v, ("sweep", "grid", name, str(i))) for i, v in enumerate(given)])
            if not lists[-1]:
                raise _Problem(("sweep", "grid", name), "the sweep has no points; give at least one value")
        blocks.append([({n: v for n, v, _ in combo}, {n: w for n, _, w in combo})
                       for combo in itertools.product(*lists)])
    if sweep.zip is not None:
        if not sweep.zip:
            raise _Problem(("sweep", "zip"), "no parameter to sweep; give at least one, or remove 'zip'")
        lengths = {name: len(values) for name, values in sweep.zip.items()}
        for name, length in lengths.items():
            if length == 0:
                raise _Problem(("sweep", "zip", name), "the sweep has no points; give at least one value")
        if len(set(lengths.values())) > 1:
            first = next(iter(sweep.zip))
            odd = next(n for n in lengths if lengths[n] != lengths[first])
            raise _Problem(("sweep", "zip", odd), f"has {lengths[odd]} values but {first!r} has "
                           f"{lengths[first]}; zipped lists must have equal lengths")
        names = list(sweep.zip)
        blocks.append([({n: sweep.zip[n][i] for n in names}, {n: ("sweep", "zip", n, str(i)) for n in names})
                       for i in range(lengths[names[0]])])
    if sweep.adaptive is not None:
        a = sweep.adaptive
        blocks.append([({a.param: float(v)}, {a.param: ("sweep", "adaptive", "param")})
                       for v in np.linspace(a.start, a.stop, a.num)])
    if sweep.random is not None:
        rnd = sweep.random
        if not rnd.params:
            raise _Problem(("sweep", "random", "params"), "no parameter to draw; give at least one")
        rng = np.random.default_rng(rnd.seed)
        draws = []
        for _ in range(rnd.num):
            values, sources = {}, {}
            for name, spec in rnd.params.items():
                if isinstance(spec, Bounds):
                    values[name] = float(rng.uniform(spec.low, spec.high))
                else:
                    if not spec:
                        raise _Problem(("sweep", "random", "params", name), "no choices to draw from")
                    values[name] = spec[int(rng.integers(len(spec)))]
                sources[name] = ("sweep", "random", "params", name)
            draws.append((values, sources))
        blocks.append(draws)
    return blocks


def make_point(spec: CampaignFile, index: int, values: dict[str, Any], repeat: int,
               sources: dict[str, tuple[str, ...]] | None = None) -> Point:
    key = _key(values, repeat)
    return Point(index, key, values, repeat, point_seed(spec.seed, key), sources or {})


def expand(spec: CampaignFile) -> tuple[list[Point], tuple[str, ...]]:
    """Every point of the campaign (sweeps combined, each repeated) and the swept names."""
    combos: list[tuple[dict[str, Any], dict[str, tuple[str, ...]]]] = [({}, {})]
    swept: list[str] = []
    for block in _axes(spec.sweep):
        for name in block[0][0]:
            if name in swept:
                raise _Problem(block[0][1][name], f"{name!r} is swept twice; sweep it in one place")
            swept.append(name)
        combos = [({**v1, **v2}, {**s1, **s2}) for v1, s1 in combos for v2, s2 in block]
    points, seen = [], set()
    for values, sources in combos:
        for repeat in range(spec.repeats):
            key = _key(values, repeat)
            if key in seen:
                raise _Problem(next(iter(sources.values()), ("sweep",)), f"the point {values} is given twice; "
                               "use 'repeats' to measure a point more than once")
            seen.add(key)
            points.append(make_point(spec, len(points), values, repeat, sources))
    return points, tuple(swept)


def _check_points(spec: CampaignFile, bench_path: Path | None, points: list[Point]) -> None:
    """Every point's parameters and bench changes, checked as the experiment and the bench would."""
    try:
        cls = load_experiment(spec.experiment)
    except ExperimentError as exc:
        raise _Problem(("experiment",), str(exc)) from None
    fields = cls.Parameters.model_fields
    known = set(fields) | {info.alias for info in fields.values() if info.alias}
    for name in spec.parameters:
        if name not in known:
            raise _Problem(("parameters", name), f"{cls.name} has no parameter {name!r} (parameters: "
                           f"{', '.join(fields)})")
    for point in points[:1]:
        for name, where in point.sources.items():
            where = where[:-1] if where[-1].isdigit() else where  # the name's line, not its first value's
            if name.startswith(BENCH_PREFIX):
                if spec.mode != "sim":
                    raise _Problem(where, "a bench change needs a simulated bench (mode: sim); a real bench "
                                   "changes only by changing the bench")
                if name.count(".") != 2:
                    raise _Problem(where, f"{name!r}: a bench change is named 'bench.<component>.<parameter>'")
            elif name not in known:
                raise _Problem(where, f"{cls.name} has no parameter {name!r} (parameters: {', '.join(fields)})")
    if spec.mode == "real" and bench_path is None:
        raise _Problem(("mode",), "a real bench needs a bench file: set 'bench'")
    checked_changes: set[str] = set()
    checked_values: set[str] = set()
    for point in points:
        exp_values = point.overrides(spec.parameters)
        text = json.dumps(exp_values, sort_keys=True, default=str)
        if text not in checked_values:
            checked_values.add(text)
            try:
                cls.Parameters(**exp_values)
            except ValidationError as exc:
                problem = exc.errors()[0]
                name = str(problem["loc"][0]) if problem["loc"] else ""
                where = point.sources.get(name, ("parameters", name))
                raise _Problem(where, f"{cls.name} parameter {name!r}: {problem['msg']}") from None
            try:
                make_parameters(cls, exp_values)
            except ExperimentError as exc:
                raise _Problem(("parameters",), str(exc)) from None
        changes = point.changes
        text = json.dumps(changes, sort_keys=True, default=str)
        if changes and text not in checked_changes:
            checked_changes.add(text)
            try:
                bench_config(bench_path if bench_path is not None else cls.default_bench, spec.mode, changes)
            except ConfigError as exc:
                name = BENCH_PREFIX + next((k for k in changes if exc.field and exc.field.endswith(k.partition(".")[2])
                                            and k.partition(".")[0] in exc.field), next(iter(changes)))
                raise _Problem(point.sources.get(name, ("sweep",)), f"bench change: {exc}") from None


def _check_suspend(spec: CampaignFile, path: Path, bench_path: Path | None) -> None:
    """The suspenders' instruments exist on the bench (with the channels named) and the drift check's
    calibration file is there."""
    if not spec.suspend.any:
        return
    try:
        default = load_experiment(spec.experiment).default_bench
    except ExperimentError as exc:
        raise _Problem(("experiment",), str(exc)) from None
    config, _ = bench_config(bench_path if bench_path is not None else default, spec.mode)
    power = spec.suspend.power
    if power is not None:
        for field_name, channel_field in (("meter", "channel"), ("laser", "laser_channel"), ("switch", None)):
            name = getattr(power, field_name)
            if name is None:
                continue
            if name not in config.instruments:
                raise _Problem(("suspend", "power", field_name), f"the bench has no instrument {name!r} "
                               f"(instruments: {', '.join(sorted(config.instruments))})")
            channel = getattr(power, channel_field) if channel_field else None
            channels = config.instruments[name].channels
            if channel is not None and channels and channel not in channels:
                raise _Problem(("suspend", "power", channel_field), f"{name} has channels "
                               f"{', '.join(map(str, channels))}, not {channel}")
    drift = spec.suspend.drift
    if drift is not None:
        calibration = Path(drift.calibration)
        calibration = calibration if calibration.is_absolute() else path.parent / calibration
        if not calibration.is_file():
            raise _Problem(("suspend", "drift", "calibration"), f"no calibration file {calibration} (make one "
                           "with labctl run calibrate_core)")


def load_campaign(path: str | Path) -> Campaign:
    """Read and check a campaign file; every problem is a :class:`ConfigError` with its line and field."""
    path = Path(path)
    document = load_document(path)
    try:
        spec = CampaignFile.model_validate(document.data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        if isinstance(first.get("input"), dict):  # a mapping given where a list or a span may be: the span's error
            first = next((e for e in errors if any("Span" in str(p) or "Bounds" in str(p) for p in e["loc"])),
                         first)
        at = [str(part) for part in first["loc"]]
        # a union (list | span) reports each alternative: name the field, not pydantic's alternative
        at = [part for part in at if "[" not in part and part not in ("Span", "Bounds")]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field (check its spelling against docs/campaigns.md)"
        elif first["type"] == "missing":
            message = "required field is missing"
        raise ConfigError(path, ".".join(at) or None, message, line=document.line_of(at)) from None
    bench_path = None
    if spec.bench is not None:
        bench_path = Path(spec.bench) if Path(spec.bench).is_absolute() else path.parent / spec.bench
        try:
            bench_config(bench_path, spec.mode)
        except LabctlError as exc:
            raise ConfigError(path, "bench", f"the bench file cannot be used: {exc}",
                              line=document.line_of(["bench"])) from None
    try:
        points, swept = expand(spec)
        _check_points(spec, bench_path, points)
        _check_suspend(spec, path, bench_path)
    except _Problem as problem:
        raise ConfigError(path, ".".join(problem.where), problem.message,
                          line=document.line_of(problem.where)) from None
    digest = hashlib.sha256(canonical(spec, bench_path).encode()).hexdigest()
    return Campaign(path, spec, bench_path, tuple(points), swept, digest)


__all__ = ["BENCH_PREFIX", "Campaign", "CampaignFile", "DriftSuspend", "Point", "PowerSuspend", "Suspend",
           "canonical", "expand", "load_campaign", "point_seed"]
