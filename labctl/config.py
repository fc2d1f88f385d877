"""Bench files: what instruments a bench has, where they are, how they are connected, and its limits.

A bench file is YAML (``.yaml``/``.yml``) or TOML (``.toml``). It is validated as a whole when read;
an error names the file and the field (``instruments.laser.driver``) and says what is allowed.
The same file drives a real bench (``resource`` = real VISA addresses, ``driver`` = real driver) and its
simulation (``driver`` selects the simulated model, ``sim.params`` its physical parameters,
``components``/``connections`` the passive optics that only the simulator needs).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pyvisa import rname

from drivers import DRIVERS
from labctl.errors import ConfigError
from labctl.instruments import ROLE_NAMES

Role = Literal[ROLE_NAMES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimSettings(_Strict):
    """How the simulator models this instrument (ignored on a real bench)."""

    params: dict[str, Any] = Field(default_factory=dict)
    serial: str = ""


class InstrumentConfig(_Strict):
    """One instrument: its role, the driver for its model, and its VISA resource."""

    role: Role
    driver: str
    resource: str
    channels: list[int] | None = None
    connection: dict[str, Any] = Field(default_factory=dict, description="extra pyvisa/pymeasure connection kwargs")
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


class SafetyLimits(_Strict):
    """Limits a setting must respect; a refused setting never reaches the instrument."""

    max_power_dbm: float | None = None
    max_amplitude_vpp: float | None = None
    max_voltage_v: float | None = None
    max_current_a: float | None = None
    max_heater_voltage_v: float | None = Field(None, ge=0)
    max_bias_voltage_v: float | None = Field(None, ge=0)
    max_dac_amplitude_vpp: float | None = Field(None, ge=0)


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
}


class BenchConfig(_Strict):
    """A whole bench file."""

    name: str
    description: str = ""
    temperature_k: float = Field(295.0, gt=0)
    visa_library: str = Field("", description="pyvisa library spec for the real bench ('' = system default, '@py')")
    instruments: dict[str, InstrumentConfig]
    components: dict[str, dict[str, Any]] = Field(default_factory=dict)
    connections: list[str | list[str]] = Field(default_factory=list)
    safety: dict[str, SafetyLimits] = Field(default_factory=dict)
    opu: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _cross_checks(self):
        for name, limits in self.safety.items():
            if name not in self.instruments:
                raise ValueError(f"safety.{name}: no instrument named {name!r}")
            role = self.instruments[name].role
            allowed = SAFETY_KEYS_BY_ROLE.get(role, ())
            for key in sorted(limits.model_fields_set):
                if getattr(limits, key) is not None and key not in allowed:
                    takes = ", ".join(allowed) if allowed else "no safety limits"
                    raise ValueError(f"safety.{name}.{key}: does not apply to role {role!r} (it would be "
                                     f"ignored); role {role!r} takes {takes}")
        seen: dict[str, str] = {}
        for name, inst in self.instruments.items():
            key = str(rname.parse_resource_name(inst.resource))
            if key in seen:
                raise ValueError(f"instruments.{name}.resource: {key} is also used by {seen[key]!r}")
            seen[key] = name
        for index, link in enumerate(self.connections):
            text = link if isinstance(link, str) else " -> ".join(link)
            if "->" not in text or text.count("->") != 1:
                raise ValueError(f"connections[{index}]: {link!r} is not 'item.port -> item.port'")
            for end in text.split("->"):
                item = end.strip().partition(".")[0]
                if item not in self.instruments and item not in self.components:
                    raise ValueError(f"connections[{index}]: {item!r} is neither an instrument nor a component")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_bench(data: Any, path: str | Path | None = None) -> BenchConfig:
    """Validate a bench description (already parsed into Python objects)."""
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field (check its spelling against docs/bench_files.md)"
        elif first["type"] == "missing":
            message = "required field is missing"
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(path, field, message) from None


def load_bench(path: str | Path) -> BenchConfig:
    """Read and validate a bench file (YAML or TOML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, "file not found")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, None, f"cannot parse: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, None, "the top level must be a mapping of fields")
    return parse_bench(data, path)


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
