"""Bench files: what instruments a bench has, where they are, how they are connected, and its limits.

A bench file is YAML (``.yaml``/``.yml``) or TOML (``.toml``), read strictly (:mod:`labctl.files`) and
validated as a whole; an error names the file, the line (where known) and the field
(``instruments.laser.driver``) and says what is allowed. Fields are described in docs/bench_files.md.
The same file drives a real bench (``resource`` = real VISA addresses, ``driver`` = real driver) and its
simulation (``driver`` selects the simulated model, ``sim.params`` its physical parameters,
``components``/``connections`` the passive optics that only the simulator needs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pyvisa import rname

from drivers import DRIVERS
from labctl.errors import ConfigError
from labctl.files import Document, check_plain, load_document
from labctl.instruments import ROLE_NAMES
from labctl.strict import StrictModel
from sim_backends.bench import COMPONENTS, BenchFileError, check_sim_params, component_draws_power, sim_model
from sim_backends.world import World
from sim_backends.faults import FaultConfig

Role = Literal[ROLE_NAMES]  # type: ignore[valid-type]


class _FieldError(ValueError):
    """A cross-field problem found by a model validator: the dotted field it concerns and, when the field
    itself is absent from the file, the location whose line to report instead."""

    def __init__(self, field: str, message: str, at: str | None = None):
        self.field = field
        self.at = at or field
        super().__init__(message)


class SimSettings(StrictModel):
    """How the simulator models this instrument (ignored on a real bench)."""

    params: dict[str, Any] = Field(default_factory=dict)
    serial: str = ""
    faults: list[FaultConfig] = Field(default_factory=list, description="faults to inject (sim_backends.faults)")


class InstrumentConfig(StrictModel):
    """One instrument: its role, the driver for its model, and its VISA resource."""

    role: Role
    driver: str
    resource: str
    channels: list[int] | None = None
    connection: dict[str, Any] = Field(default_factory=dict, description="extra pyvisa/pymeasure connection kwargs")
    measures: list[str] | None = Field(None, description="power_analyzer only: the instruments and drawing "
                                       "components wired through its input (wiring: true on hardware too)")
    sim: SimSettings = Field(default_factory=SimSettings)

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if value not in DRIVERS:
            raise ValueError(f"unknown driver {value!r}; known drivers: {', '.join(sorted(DRIVERS))}")
        return value

    @field_validator("resource")
    @classmethod
    def _valid_resource(cls, value: str) -> str:
        try:
            rname.parse_resource_name(value)
        except rname.InvalidResourceName as exc:
            raise ValueError(f"{value!r} is not a VISA resource name ({exc})") from None
        return value

    @field_validator("channels")
    @classmethod
    def _positive_channels(cls, value):
        if value is not None and (not value or any(ch < 1 for ch in value)):
            raise ValueError("channels must be a non-empty list of numbers >= 1")
        return value


#: Plausible range of each safety limit: (lowest, highest, unit, why the ceiling); the lowest is exclusive
#: when it is 0 (a zero limit refuses everything) and inclusive otherwise. A value outside is a mistake
#: (a unit slip, a sign, a typo), not a bench setting.
LIMIT_RANGES: dict[str, tuple[float, float, str, str]] = {
    "max_power_dbm": (-30.0, 27.0, "dBm", "+27 dBm (500 mW) is the IEC 60825-1 Class 3B ceiling; a stronger "
                      "beam needs Class 4 controls this software does not provide, and below -30 dBm (1 uW) no "
                      "bench laser can be set"),
    "max_amplitude_vpp": (0.0, 20.0, "Vpp", "20 Vpp is the largest swing of bench arbitrary waveform "
                          "generators, into high impedance"),
    "max_voltage_v": (0.0, 60.0, "V", "60 V DC is the SELV touch-safety limit of IEC 61140; modulator biases "
                      "and heaters need far less"),
    "max_current_a": (0.0, 10.0, "A", "modulator biases and heaters draw milliamps; 10 A is the top of bench "
                      "DC power modules"),
    "max_heater_voltage_v": (0.0, 24.0, "V", "integrated thermo-optic heaters tune a whole FSR below ~10 V; "
                             "24 V is the highest common heater-driver rail"),
    "max_bias_voltage_v": (0.0, 60.0, "V", "60 V DC is the SELV touch-safety limit of IEC 61140"),
    "max_dac_amplitude_vpp": (0.0, 20.0, "Vpp", "20 Vpp is the largest swing of bench signal converters"),
}

#: A limit is a real number given as such: strings, booleans, NaN and infinities are refused.
_Limit = Annotated[float | None, Field(None, strict=True, allow_inf_nan=False)]


class SafetyLimits(StrictModel):
    """Limits a setting must respect; a refused setting never reaches the instrument.

    Every key its instrument's role enforces (``SAFETY_KEYS_BY_ROLE``) must be set, or named in
    ``unlimited``: a missing limit is then a decision written in the file, never an omission.
    """

    max_power_dbm: _Limit = None
    max_amplitude_vpp: _Limit = None
    max_voltage_v: _Limit = None
    max_current_a: _Limit = None
    max_heater_voltage_v: _Limit = None
    max_bias_voltage_v: _Limit = None
    max_dac_amplitude_vpp: _Limit = None
    unlimited: list[str] = Field(default_factory=list, description="keys of the role deliberately left unlimited")

    @field_validator(*LIMIT_RANGES)
    @classmethod
    def _plausible(cls, value: float | None, info) -> float | None:
        if value is None:
            return value
        low, high, unit, why = LIMIT_RANGES[info.field_name]
        if not (low < value if low == 0 else low <= value) or value > high:
            bound = "> 0" if low == 0 else f">= {low:g}"
            raise ValueError(f"{value:g} {unit} is not a plausible limit; it must be {bound} and <= {high:g} "
                             f"{unit}: {why}")
        return value

    @field_validator("unlimited")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        twice = sorted({key for key in value if value.count(key) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(twice)} more than once")
        return value


#: The numeric limit fields of :class:`SafetyLimits` (everything but ``unlimited``).
LIMIT_KEYS: tuple[str, ...] = tuple(LIMIT_RANGES)


#: The safety keys each role enforces (labctl.safety.checks_for); any other key set for an instrument of
#: that role would be silently ignored, so a bench file that sets one is refused.
SAFETY_KEYS_BY_ROLE: dict[str, tuple[str, ...]] = {
    "tunable_laser": ("max_power_dbm",),
    "optical_power_meter": (),
    "awg": ("max_amplitude_vpp",),
    "oscilloscope": (),
    "bias_controller": ("max_voltage_v",),
    "dc_source": ("max_voltage_v", "max_current_a"),
    "optical_switch": (),
    "optical_core": ("max_heater_voltage_v", "max_bias_voltage_v", "max_dac_amplitude_vpp"),
    "power_analyzer": (),
}

#: Roles that emit light, voltage or current: each needs a ``safety`` entry.
SOURCE_ROLES: tuple[str, ...] = tuple(role for role, keys in SAFETY_KEYS_BY_ROLE.items() if keys)

_UNITS = {key: unit for key, (_, _, unit, _) in LIMIT_RANGES.items()}


class BenchConfig(StrictModel):
    """A whole bench file."""

    name: str
    description: str = ""
    temperature_k: float = Field(295.0, gt=0, allow_inf_nan=False)
    visa_library: str = Field("", description="pyvisa library spec for the real bench ('' = system default, '@py')")
    instruments: dict[str, InstrumentConfig]
    components: dict[str, dict[str, Any]] = Field(default_factory=dict)
    connections: list[str | list[str]] = Field(default_factory=list)
    safety: dict[str, SafetyLimits] = Field(default_factory=dict)
    opu: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _cross_checks(self):
        self._check_names()
        self._check_safety()
        seen: dict[str, str] = {}
        for name, inst in self.instruments.items():
            key = str(rname.parse_resource_name(inst.resource))
            if key in seen:
                raise _FieldError(f"instruments.{name}.resource", f"{key} is also used by {seen[key]!r}")
            seen[key] = name
        for index, link in enumerate(self.connections):
            text = link if isinstance(link, str) else " -> ".join(link)
            if "->" not in text or text.count("->") != 1:
                raise _FieldError(f"connections.{index}", f"{link!r} is not 'item.port -> item.port'")
            for end in text.split("->"):
                item = end.strip().partition(".")[0]
                if item not in self.instruments and item not in self.components:
                    raise _FieldError(f"connections.{index}", f"{item!r} is neither an instrument nor a component")
        try:
            check_sim_params({"instruments": {name: {"driver": inst.driver, "sim": {"params": inst.sim.params}}
                                              for name, inst in self.instruments.items()},
                              "components": self.components})
        except BenchFileError as exc:
            raise _FieldError(exc.field or "components", exc.reason) from None
        self._check_measures()
        return self

    def _check_names(self) -> None:
        """Instruments and components share one namespace (connections say ``name.port``)."""
        for section, names in (("instruments", self.instruments), ("components", self.components)):
            for name in names:
                if not name.strip() or "." in name or "->" in name or name != name.strip():
                    raise _FieldError(f"{section}.{name}", f"{name!r} cannot be used in connections "
                                      "('name.port'): use a name without dots, arrows or outer spaces")
        for name in self.components:
            if name in self.instruments:
                raise _FieldError(f"components.{name}", f"{name!r} is also the name of an instrument; one "
                                  "would silently stand for the other in connections: rename one")

    def _check_measures(self) -> None:
        """Every power analyzer says what its input measures, and every named item draws mains power and
        is on one analyzer only: a draw on two would be counted twice."""
        owner: dict[str, str] = {}
        for name, inst in self.instruments.items():
            field = f"instruments.{name}.measures"
            if inst.role != "power_analyzer":
                if inst.measures is not None:
                    raise _FieldError(field, f"only a power_analyzer measures other items' draw; role "
                                      f"{inst.role!r} cannot have 'measures'")
                continue
            if not inst.measures:
                raise _FieldError(field, "a power_analyzer must list what its input measures, e.g. "
                                  "'measures: [laser, opm]' (the instruments and drawing components on its feed)",
                                  at=field if inst.measures is not None else f"instruments.{name}")
            for index, item in enumerate(inst.measures):
                where = f"{field}.{index}"
                if item == name:
                    raise _FieldError(where, f"{name!r} cannot measure its own supply")
                if item in inst.measures[:index]:
                    raise _FieldError(where, f"{item!r} is listed twice")
                if item in self.components:
                    kind = self.components[item].get("type")
                    if not component_draws_power(kind):
                        raise _FieldError(where, f"{item!r} is a {kind!r} component, which draws no electrical "
                                          "power (the instrument feeding it holds its draw); list instruments "
                                          "and drawing components only")
                elif item not in self.instruments:
                    raise _FieldError(where, f"no instrument or component named {item!r}; instruments: "
                                      f"{', '.join(sorted(self.instruments))}")
                if item in owner:
                    raise _FieldError(where, f"{item!r} is also measured by {owner[item]!r}; a draw on two "
                                      "analyzers would be counted twice: wire it through one")
                owner[item] = name

    def _check_safety(self) -> None:
        """Every limit applies to its instrument's role, and every source has all of its role's limits
        (or says which it runs without), so a missing check is always a written decision."""
        for name, limits in self.safety.items():
            if name not in self.instruments:
                raise _FieldError(f"safety.{name}", f"no instrument named {name!r}; instruments: "
                                  f"{', '.join(sorted(self.instruments))}")
            role = self.instruments[name].role
            allowed = SAFETY_KEYS_BY_ROLE.get(role, ())
            takes = ", ".join(allowed) if allowed else "no safety limits"
            for key in LIMIT_KEYS:
                if getattr(limits, key) is not None and key not in allowed:
                    raise _FieldError(f"safety.{name}.{key}", f"does not apply to role {role!r} (it would be "
                                      f"ignored); role {role!r} takes {takes}")
            for index, key in enumerate(limits.unlimited):
                if key not in allowed:
                    raise _FieldError(f"safety.{name}.unlimited.{index}", f"{key!r} is not a limit of role "
                                      f"{role!r}; role {role!r} takes {takes}")
                if getattr(limits, key) is not None:
                    raise _FieldError(f"safety.{name}.unlimited.{index}", f"{key} is both set and listed as "
                                      "unlimited: remove one")
        for name, inst in self.instruments.items():
            keys = SAFETY_KEYS_BY_ROLE.get(inst.role, ())
            if not keys:
                continue
            limits = self.safety.get(name)
            if limits is None:
                example = ", ".join(f"{key}: <{_UNITS[key]}>" for key in keys)
                raise _FieldError(f"safety.{name}", f"instrument {name!r} (role {inst.role}) has no safety "
                                  f"limits; add '{name}: {{{example}}}' under 'safety' (a key it must run "
                                  "without goes in that entry's 'unlimited' list)", at=f"instruments.{name}")
            for key in keys:
                if getattr(limits, key) is None and key not in limits.unlimited:
                    raise _FieldError(f"safety.{name}.{key}", f"missing: set the limit in {_UNITS[key]}, or "
                                      f"add {key} to safety.{name}.unlimited to run without it",
                                      at=f"safety.{name}")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_bench(data: Any, path: str | Path | None = None, document: Document | None = None) -> BenchConfig:
    """Validate a bench description (already parsed into Python objects).

    ``document`` (from :func:`labctl.files.load_document`) supplies the lines errors name.
    """
    if document is None:
        if not isinstance(data, dict):
            raise ConfigError(path, None, "the top level must be a mapping of fields")
        document = Document(Path(path) if path is not None else Path("<data>"), data)
        check_plain(document, path)
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, _FieldError):
            field, message, at = cause.field, str(cause), cause.at.split(".")
        else:
            at = [str(part) for part in first["loc"]]
            field = ".".join(at) or None
            message = first["msg"].removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                message = "unknown field (check its spelling against docs/bench_files.md)"
            elif first["type"] == "missing":
                message = "required field is missing"
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(path, field, message, line=document.line_of(at)) from None


def load_bench(path: str | Path) -> BenchConfig:
    """Read and validate a bench file (YAML or TOML)."""
    document = load_document(path)
    return parse_bench(document.data, path, document)


def apply_changes(config: BenchConfig, changes: Mapping[str, Any], path: str | Path | None = None) -> BenchConfig:
    """A variant of ``config`` for the simulator: ``{"<component or instrument>.<sim parameter>": value}``.

    The variant is validated like a bench file, and every changed value is tried on its simulated model, so
    a misspelt name or an out-of-range value is a :class:`ConfigError` naming the field it would have in the
    file (``components.edge_fibre.length_km``; a variant has no lines). Experiments sweep a simulated bench
    this way instead of writing modified copies of its file.
    """
    data = config.to_dict()
    fields: dict[str, str] = {}
    for key, value in changes.items():
        name, _, param = str(key).partition(".")
        if not name or not param or "." in param:
            raise ConfigError(path, str(key), "a change is named '<component or instrument>.<parameter>', e.g. "
                              "'edge_fibre.length_km'")
        if name in data["components"]:
            if param == "type":
                raise ConfigError(path, f"components.{name}.type", "a change cannot replace a component by "
                                  "another type; write a bench file with the other component")
            data["components"][name][param] = value
            fields[key] = f"components.{name}.{param}"
        elif name in data["instruments"]:
            data["instruments"][name]["sim"]["params"][param] = value
            fields[key] = f"instruments.{name}.sim.params.{param}"
        else:
            raise ConfigError(path, str(key), f"the bench has no component or instrument named {name!r}; components: "
                              f"{', '.join(sorted(data['components'])) or '(none)'}; instruments: "
                              f"{', '.join(sorted(data['instruments']))}")
    varied = parse_bench(data, path)
    for name in {key.partition(".")[0] for key in fields}:
        mine = {key: field for key, field in fields.items() if key.partition(".")[0] == name}
        try:
            if name in varied.components:
                spec = dict(varied.components[name])
                kind = spec.pop("type")
                COMPONENTS[kind](name, **spec)
            else:
                inst = varied.instruments[name]
                sim_model(inst.driver)(name, World(), params=inst.sim.params, serial=inst.sim.serial)
        except (TypeError, ValueError) as exc:
            # the model names the parameter it refuses ("length_km=-3.0 is outside ..."): point at that change
            named = [key for key in mine if str(exc).startswith(key.partition(".")[2])]
            if named or len(mine) == 1:
                field = mine[(named or list(mine))[0]]
            else:
                field = ".".join(next(iter(mine.values())).split(".")[:2])
            given = ", ".join(f"{key}={changes[key]!r}" for key in mine)
            raise ConfigError(path, field, f"{exc} (with the change {given})") from None
    return varied


def simulated_value(config: BenchConfig, instrument: str, param: str) -> Any:
    """The value a simulated instrument uses for one of its ``sim.params``: the bench file's, else the
    simulated model's default (what a variant's sweep is compared with)."""
    spec = config.instruments.get(instrument)
    if spec is None:
        raise ConfigError(None, f"instruments.{instrument}", "no such instrument")
    if param in spec.sim.params:
        return spec.sim.params[param]
    model = sim_model(spec.driver)
    if param not in model.PARAMS:
        raise ConfigError(None, f"instruments.{instrument}.sim.params.{param}", f"the simulated {spec.driver} "
                          f"has no parameter {param!r}; it has {', '.join(sorted(model.PARAMS))}")
    return getattr(model(instrument, World(), params=spec.sim.params, serial=spec.sim.serial), param)


def opu_section(bench: Any, model: type[BaseModel], hint: str = "") -> Any:
    """The bench file's ``opu:`` section validated as ``model``; errors name the file and the dotted field."""
    config = getattr(bench, "config", bench)
    path = getattr(bench, "path", None)
    section = getattr(config, "opu", None)
    if not section:
        raise ConfigError(path, "opu", "this bench file has no 'opu' section describing the optical processing "
                          "unit's wiring" + (f" ({hint})" if hint else ""))
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "opu." + ".".join(str(p) for p in first["loc"]) if first["loc"] else "opu"
        message = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(first["type"],
                                                                                                 first["msg"])
        raise ConfigError(path, where, message) from None
