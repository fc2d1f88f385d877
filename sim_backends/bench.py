"""Build a simulated bench (world + instruments keyed by VISA resource) from a bench description.

Reads the parts of a bench file the simulator needs: ``instruments`` (driver name = simulated model,
resource, ``sim`` parameters, and a power analyzer's ``measures``), ``components`` (the parts that are
not instruments) and ``connections``. labctl validates the whole file; this module only trusts what it uses and names the
field when something is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import yaml
from pyvisa import rname

from sim_backends.instrument import SimInstrument
from sim_backends.physics.components import COMPONENTS as _BASIC_COMPONENTS
from sim_backends.physics.electrical import ELECTRICAL_COMPONENTS
from sim_backends.physics.network import NETWORK_COMPONENTS
from sim_backends.world import WiringError, World

_BENCH_DIR = Path(__file__).parent / "benches"
#: The seed system and the default bench: the optical computing center's three 16 x 16 weight-stationary
#: cores (labctl.opu.open_cores), each reached by an edge transmitter over edge + metro fibre.
SYSTEM_BENCH_PATH = _BENCH_DIR / "ring_core.yaml"
#: One edge transmitter, a fibre span, a switch and receivers: the bench that characterises links and parts.
CHARACTERISATION_BENCH_PATH = _BENCH_DIR / "characterisation.yaml"
#: Built-in bench files by name (``open_bench("characterisation")``, ``--bench characterisation``):
#: ``system`` and every file of the benches folder by its stem.
BUILTIN_BENCHES: dict[str, Path] = {"system": SYSTEM_BENCH_PATH,
                                    **{path.stem: path for path in sorted(_BENCH_DIR.glob("*.yaml"))}}


def builtin_bench(name_or_path: str | Path) -> Path:
    """The file a bench argument means: a built-in bench's name (no folder, no suffix) or a path as given."""
    text = str(name_or_path)
    if text in BUILTIN_BENCHES and Path(text).name == text and not Path(text).suffix:
        return BUILTIN_BENCHES[text]
    return Path(name_or_path)

#: Passive bench parts by the ``type`` used in bench files.
COMPONENTS = {**_BASIC_COMPONENTS, **ELECTRICAL_COMPONENTS, **NETWORK_COMPONENTS}

#: Simulated model of each real instrument model, by the driver name used in bench files.
SIM_MODELS: dict[str, str] = {
    "keysight.N7714A": "sim_backends.instruments.keysight_n7714a:SimKeysightN7714A",
    "santec.TSL570": "sim_backends.instruments.santec_tsl570:SimSantecTSL570",
    "keysight.N7744A": "sim_backends.instruments.keysight_n7744a:SimKeysightN7744A",
    "keysight.N7745A": "sim_backends.instruments.keysight_n7744a:SimKeysightN7745A",
    "thorlabs.PM100": "sim_backends.instruments.thorlabs_pm100:SimThorlabsPM100",
    "keysight.M8195A": "sim_backends.instruments.keysight_m8195a:SimKeysightM8195A",
    "keysight.Infiniium": "sim_backends.instruments.keysight_infiniium:SimKeysightInfiniium",
    "thorlabs.MBX": "sim_backends.instruments.thorlabs_mbx:SimThorlabsMBX",
    "keysight.N6700": "sim_backends.instruments.keysight_n6700:SimKeysightN6700",
    "dicon.MXS9100": "sim_backends.instruments.dicon_mxs9100:SimDiConMXS9100",
    "labctl.OCC16": "sim_backends.instruments.labctl_occ:SimLabctlOCC",
    "yokogawa.WT310E": "sim_backends.instruments.yokogawa_wt310e:SimYokogawaWT310E",
}


class BenchFileError(ValueError):
    """A bench description the simulator cannot build; the message names the field.

    ``field`` is the dotted location of the problem (when known) and ``reason`` the message without it,
    so a caller that knows the file and line can report all three.
    """

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)


def sim_model(driver: str) -> type[SimInstrument]:
    try:
        target = SIM_MODELS[driver]
    except KeyError:
        raise BenchFileError(
            f"no simulated model for driver {driver!r}; simulated models exist for: {', '.join(sorted(SIM_MODELS))}"
        ) from None
    module, cls = target.split(":")
    return getattr(import_module(module), cls)


def instrument_params(driver: str) -> frozenset[str]:
    """The ``sim.params`` names the simulated model of ``driver`` reads."""
    return sim_model(driver).PARAMS


def component_params(kind: str) -> frozenset[str]:
    """The parameters a component ``type`` takes: the keyword arguments of its constructor."""
    signature = inspect.signature(COMPONENTS[kind])
    return frozenset(name for name, p in signature.parameters.items()
                     if name != "name" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def component_draws_power(kind: Any) -> bool:
    """Whether a component ``type`` draws mains power of its own (has an electrical draw model, as the
    World counts it); a passive part's light is paid for by the instrument feeding it."""
    return callable(getattr(COMPONENTS.get(kind), "electrical_power_w", None))


def takes_measures(cls: type[SimInstrument]) -> bool:
    """Whether a simulated model is wired to the items whose draw it measures (a power analyzer)."""
    return "measures" in inspect.signature(cls).parameters


def check_sim_params(config: Mapping[str, Any]) -> None:
    """Refuse parameters no simulated model or component reads (a misspelt one would be ignored).

    Instruments whose driver has no simulated model are skipped (a real-only bench); a component
    ``type`` must be known.
    """
    for name, spec in (config.get("instruments") or {}).items():
        if not isinstance(spec, Mapping) or spec.get("driver") not in SIM_MODELS:
            continue
        sim = spec.get("sim")
        params = sim.get("params") if isinstance(sim, Mapping) else None
        if isinstance(params, Mapping):
            if "measures" in params and takes_measures(sim_model(spec["driver"])):
                raise BenchFileError(f"'measures' is wiring, not a simulation parameter: move it up to "
                                     f"instruments.{name}.measures (it holds on the real bench too)",
                                     f"instruments.{name}.sim.params.measures")
            _refuse_unknown(params, instrument_params(spec["driver"]), f"instruments.{name}.sim.params",
                            f"the simulated {spec['driver']}")
    for name, spec in (config.get("components") or {}).items():
        if not isinstance(spec, Mapping):
            raise BenchFileError("must be a mapping with a 'type' and the component's parameters",
                                 f"components.{name}")
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in COMPONENTS:
            raise BenchFileError(f"{kind!r} is not one of {', '.join(sorted(COMPONENTS))}", f"components.{name}.type")
        _refuse_unknown({k: v for k, v in spec.items() if k != "type"}, component_params(kind),
                        f"components.{name}", f"a {kind!r} component")


def _refuse_unknown(params: Mapping[str, Any], accepted: frozenset[str], where: str, what: str) -> None:
    for key in params:
        if key not in accepted:
            raise BenchFileError(f"unknown parameter {key!r}: {what} accepts "
                                 f"{', '.join(sorted(accepted)) or 'no parameters'}", f"{where}.{key}")


def normalise_resource(resource: str) -> str:
    """Canonical VISA resource name, so 'TCPIP::host::INSTR' and 'TCPIP0::host::inst0::INSTR' match."""
    return str(rname.parse_resource_name(resource))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping key given twice (plain PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        first: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if (key.tag, key.value) in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key.value!r} is given twice (first on line {first[key.tag, key.value]})",
                        key.start_mark)
                first[key.tag, key.value] = key.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load_bench_file(path: str | Path) -> dict[str, Any]:
    """Read a bench file for the simulator (labctl.config validates the whole file; this refuses only
    what would make the simulator read something else than the file says: a parse error or a repeated key)."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if len(path.parts) == 1 and not path.suffix:  # a bare word: meant as a built-in bench's name
            hint = f"; built-in benches by name: {', '.join(BUILTIN_BENCHES)}"
        raise BenchFileError(f"bench file {path} does not exist{hint}")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = yaml.load(text, Loader=_UniqueKeyLoader)
    except Exception as exc:  # a parse error: say which file
        raise BenchFileError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise BenchFileError(f"{path}: the top level must be a mapping")
    return data


@dataclass
class SimBench:
    """A built simulated bench: the physics world and its instruments by canonical resource name."""

    world: World
    by_resource: dict[str, SimInstrument]
    by_name: dict[str, SimInstrument]

    def reset(self) -> None:
        """Return every instrument to its *RST state and clear queues (between tests)."""
        for instrument in self.by_name.values():
            instrument.reset()
            instrument.errors.clear()
            instrument.output.clear()


def build_bench(config: dict[str, Any], seed: int | None = 0) -> SimBench:
    """Create the world, its instruments and components, and wire the connections."""
    check_sim_params(config)
    world = World(seed=seed, temperature_k=float(config.get("temperature_k", 295.0)))
    by_resource: dict[str, SimInstrument] = {}
    by_name: dict[str, SimInstrument] = {}
    for name, spec in (config.get("instruments") or {}).items():
        where = f"instruments.{name}"
        if not isinstance(spec, dict) or "driver" not in spec or "resource" not in spec:
            raise BenchFileError(f"{where}: needs 'driver' and 'resource'")
        cls = sim_model(spec["driver"])
        sim = spec.get("sim") or {}
        wiring = {}
        if spec.get("measures") is not None:
            if not takes_measures(cls):
                raise BenchFileError(f"the simulated {spec['driver']} measures no other item's draw (only a "
                                     "power analyzer has 'measures')", f"{where}.measures")
            wiring["measures"] = spec["measures"]
        try:
            instrument = cls(name, world, params=sim.get("params", {}), serial=sim.get("serial", ""), **wiring)
        except WiringError as exc:
            raise BenchFileError(str(exc), f"{where}.measures") from exc
        except (TypeError, ValueError) as exc:
            raise BenchFileError(f"{where}.sim.params: {exc}") from exc
        world.add(name, instrument)
        try:
            key = normalise_resource(spec["resource"])
        except rname.InvalidResourceName as exc:
            raise BenchFileError(f"{where}.resource: {exc}") from exc
        if key in by_resource:
            raise BenchFileError(f"{where}.resource: {key} is already used by {by_resource[key].name}")
        by_resource[key] = instrument
        by_name[name] = instrument
    for name, spec in (config.get("components") or {}).items():
        where = f"components.{name}"
        spec = dict(spec or {})
        kind = spec.pop("type", None)
        if kind not in COMPONENTS:
            raise BenchFileError(f"{where}.type: {kind!r} is not one of {', '.join(COMPONENTS)}")
        try:
            world.add(name, COMPONENTS[kind](name, **spec))
        except (TypeError, ValueError) as exc:
            raise BenchFileError(f"{where}: {exc}") from exc
    for index, link in enumerate(config.get("connections") or []):
        try:
            source, destination = parse_connection(link)
            world.connect(source, destination)
        except ValueError as exc:
            raise BenchFileError(f"connections[{index}]: {exc}") from exc
    for instrument in by_name.values():
        instrument.connect()
    return SimBench(world, by_resource, by_name)


def parse_connection(link: Any) -> tuple[str, str]:
    """Accept ``"a.out -> b.in"`` or ``[a.out, b.in]``."""
    if isinstance(link, str) and "->" in link:
        source, destination = (part.strip() for part in link.split("->", 1))
        return source, destination
    if isinstance(link, (list, tuple)) and len(link) == 2:
        return str(link[0]), str(link[1])
    raise ValueError(f"{link!r} is not 'item.port -> item.port'")
