"""Fuzzing the bench-file loader: whatever the bytes, only ConfigError comes out, and whatever loads keeps
every promise of a bench file (finite plausible limits, a limit or an explicit 'unlimited' for every source).

Counter-examples found while writing these are kept as ``@example``s and in the plain tests at the end.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labctl.config import LIMIT_KEYS, LIMIT_RANGES, SAFETY_KEYS_BY_ROLE, BenchConfig, load_bench
from labctl.errors import ConfigError
from sim_backends import CHARACTERISATION_BENCH_PATH

BENCHES = Path(CHARACTERISATION_BENCH_PATH).parent
#: Built-in benches small enough to load many times (ring_core takes ~0.4 s a load).
SMALL = {name: (BENCHES / name).read_text() for name in ("characterisation.yaml", "awgr_core.yaml", "opu_core.yaml")}
#: A small TOML bench (tables, inline tables, arrays, comments) for the line and byte edits.
SMALL["bench.toml"] = """name = "toml bench"  # a laser, a heater source, a fibre
connections = ["laser.out1 -> span.in", "heaters.out1 -> h1.in"]
[instruments.laser]
role = "tunable_laser"
driver = "keysight.N7714A"
resource = "TCPIP0::laser.labsim::inst0::INSTR"
channels = [1, 2, 3, 4]
sim = { params = { rin_db_per_hz = -145.0, linewidth_hz = 1.0e5 } }
[instruments.heaters]
role = "dc_source"
driver = "keysight.N6700"
resource = "TCPIP0::heaters.labsim::inst0::INSTR"
[components.span]
type = "fibre"
length_km = 2.0
[components.h1]
type = "heater"
resistance_ohm = 500.0
[safety]
laser = { max_power_dbm = 10.0 }
heaters = { max_voltage_v = 4.0, unlimited = ["max_current_a"] }
"""


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def assert_keeps_its_promises(config: BenchConfig) -> None:
    """What a loaded bench guarantees to labctl.safety: no None limit unless the file said so."""
    for name, inst in config.instruments.items():
        keys = SAFETY_KEYS_BY_ROLE[inst.role]
        if keys:
            limits = config.safety[name]
            for key in keys:
                assert getattr(limits, key) is not None or key in limits.unlimited, (name, key)
    for name, limits in config.safety.items():
        for key in LIMIT_KEYS:
            value = getattr(limits, key)
            if value is not None:
                low, high, _, _ = LIMIT_RANGES[key]
                assert math.isfinite(value) and low <= value <= high and (low != 0 or value > 0), (name, key)
                assert key in SAFETY_KEYS_BY_ROLE[config.instruments[name].role]


def load_or_refuse(path: Path) -> BenchConfig | None:
    """Load ``path``; a refusal must be a ConfigError naming the file. Any other exception fails the test."""
    try:
        config = load_bench(path)
    except ConfigError as err:
        assert str(err).startswith(str(path)), str(err)
        return None
    assert_keeps_its_promises(config)
    return config


def write(workdir: Path, content: str | bytes, suffix: str = ".yaml") -> Path:
    path = workdir / f"bench{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# -- random text and bytes -------------------------------------------------------------------------------

#: Pieces of YAML and TOML syntax, so random text reaches deep into the parsers (anchors, tags, flow
#: collections, merges, documents, tables, special floats), not only their first error.
TOKENS = ["name", "instruments", "safety", "laser", "role", "driver", "resource", "sim", "params", "components",
          "type", "connections", "unlimited", "max_power_dbm", "max_voltage_v", "tunable_laser", "dc_source",
          "keysight.N7714A", "keysight.N6700", "TCPIP0::l.example::inst0::INSTR", ":", ": ", "- ", "  ", "\n",
          "\n  ", "\n    ", "{", "}", "[", "]", ",", "&a ", "*a", "<<: ", "!!binary ", "!!set ", "!!float ",
          "!!timestamp ", "!!python/object ", "? ", "---\n", "...\n", "'", '"', "#", ".nan", ".inf", "-.inf",
          "1e999", "0x1F", "-1", "0", "10.0", "13.5", "null", "~", "true", "2026-13-45", "[[t]]", "[t]",
          "!!bool ", "!!int ", "!!null ", "!!omap ", "!!pairs ", "!!str ", "!!map ", "!!seq ", "x",
          "[instruments.laser]", " = ", '"x"', "\t", "\\u0000", "\x00", "\ufeff", "%YAML 1.1\n", "|\n", ">\n"]


@FUZZ
@given(text=st.text(max_size=400), suffix=st.sampled_from([".yaml", ".toml"]))
@example(text="a: " + "[" * 3000 + "]" * 3000, suffix=".yaml")  # RecursionError in PyYAML's composer
@example(text="a = " + "[" * 3000 + "]" * 3000, suffix=".toml")  # RecursionError in tomllib
@example(text="name: 2026-13-45", suffix=".yaml")                # ValueError building the timestamp
@example(text="a: &a [*a]", suffix=".yaml")                      # a recursive structure
@example(text="\x85", suffix=".yaml")                            # non-printable character (ReaderError)
@example(text="1: x", suffix=".yaml")                            # a number as a key
@example(text="name: !!set {a, b}", suffix=".yaml")              # a set: not plain data
@example(text="!!timestamp", suffix=".yaml")                     # AttributeError inside PyYAML
@example(text="a: !!int x", suffix=".yaml")                      # ValueError building a tagged int
@example(text="a: !!bool x", suffix=".yaml")                     # KeyError inside PyYAML
def test_random_text_is_loaded_or_refused_with_config_error(workdir, text, suffix):
    load_or_refuse(write(workdir, text, suffix))


@FUZZ
@given(pieces=st.lists(st.sampled_from(TOKENS), max_size=60), suffix=st.sampled_from([".yaml", ".toml"]))
def test_random_yaml_and_toml_syntax_is_loaded_or_refused_with_config_error(workdir, pieces, suffix):
    load_or_refuse(write(workdir, "".join(pieces), suffix))


TAGS = ["!!null", "!!bool", "!!int", "!!float", "!!binary", "!!timestamp", "!!omap", "!!pairs", "!!set", "!!str",
        "!!seq", "!!map", "!!merge", "!!value", "!!python/tuple", "!custom", "!<tag:yaml.org,2002:int>"]
TAGGED = ["", "x", "1", "-1.5e3", "0x1F", "0b102", "2026-13-45", "2026-01-01 25:00", "~", "true", "@@",
          "[1, 2]", "{a: 1}", "[{a: 1}, {b: 2}]", "[[1, 2]]", '"\\x00"']


@pytest.mark.parametrize("tag", TAGS)
def test_yaml_tags_on_any_value_are_loaded_or_refused(workdir, tag):
    """Every YAML tag on every kind of value, as a value and as a key (exhaustive: PyYAML's constructors
    raise ValueError, KeyError or AttributeError on some of them)."""
    for value in TAGGED:
        load_or_refuse(write(workdir, f"name: {tag} {value}\n"))
        load_or_refuse(write(workdir, f"? {tag} {value}\n: 1\n"))


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".yaml", ".toml"]))
@example(raw=b"name: x\x00", suffix=".yaml")
@example(raw=b"\xff\xfe", suffix=".toml")
def test_random_bytes_are_loaded_or_refused_with_config_error(workdir, raw, suffix):
    load_or_refuse(write(workdir, raw, suffix))


# -- mutations of the built-in benches ---------------------------------------------------------------------


def paths_of(data, where=()):
    """Every (path of keys/indices) in a parsed bench, containers included."""
    yield where
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths_of(value, (*where, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from paths_of(value, (*where, index))


BAD_VALUES = [math.nan, math.inf, -math.inf, -1.0, 0, -1e308, 1e308, "", "lots", True, False, None, [], {},
              [math.nan], {"x": math.nan}, "x" * 100_000, list(range(10_000)), 2**80]
DATA = {name: yaml.safe_load(text) for name, text in SMALL.items() if name.endswith(".yaml")}
#: One optical core of ring_core.yaml (its controller and lasers, their limits): the optical_core role's
#: limits without the 0.4 s it takes to load the whole file.
_RING = yaml.safe_load((BENCHES / "ring_core.yaml").read_text())
DATA["one_core.yaml"] = {"name": "one core", "instruments": {k: v for k, v in _RING["instruments"].items()
                                                             if k.startswith(("occ1", "laser1_"))}}
DATA["one_core.yaml"]["safety"] = {k: _RING["safety"][k] for k in DATA["one_core.yaml"]["instruments"]}
SMALL["one_core.yaml"] = yaml.safe_dump(DATA["one_core.yaml"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_benches_mutated_here_load_as_they_are(workdir, name):
    config = load_or_refuse(write(workdir, SMALL[name], Path(name).suffix))
    assert config is not None and config.safety


PATHS = {name: [p for p in paths_of(data) if p] for name, data in DATA.items()}


def deep(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


@FUZZ
@given(name=st.sampled_from(sorted(DATA)), data=st.data(),
       value=st.sampled_from(BAD_VALUES) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
       | st.integers(min_value=0, max_value=70).map(deep),
       delete=st.booleans())
def test_a_bench_with_a_value_replaced_or_deleted_is_loaded_or_refused(workdir, name, data, value, delete):
    bench = copy.deepcopy(DATA[name])
    where = data.draw(st.sampled_from(PATHS[name]), label="path")
    parent = bench
    for part in where[:-1]:
        parent = parent[part]
    if delete:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    load_or_refuse(write(workdir, yaml.safe_dump(bench, allow_unicode=True)))


@FUZZ
@given(name=st.sampled_from(sorted(DATA)), data=st.data())
def test_a_bench_with_limits_set_to_anything_is_loaded_or_refused(workdir, name, data):
    bench = copy.deepcopy(DATA[name])
    for entry in bench["safety"].values():
        for key in list(entry):
            entry[key] = data.draw(st.one_of(st.floats(), st.integers(), st.none(), st.text(max_size=4),
                                             st.booleans()), label=key)
        if data.draw(st.booleans(), label="unlimited"):
            entry["unlimited"] = data.draw(st.lists(st.sampled_from(list(LIMIT_KEYS) + ["nope"]), max_size=3))
    load_or_refuse(write(workdir, yaml.safe_dump(bench)))


@FUZZ
@given(name=st.sampled_from(sorted(SMALL)), data=st.data(),
       edit=st.sampled_from(["duplicate", "delete", "insert", "truncate", "swap"]))
def test_a_bench_text_with_lines_or_bytes_edited_is_loaded_or_refused(workdir, name, data, edit):
    lines = SMALL[name].encode().splitlines(keepends=True)
    suffix = Path(name).suffix
    index = data.draw(st.integers(0, len(lines) - 1), label="line")
    if edit == "duplicate":
        lines.insert(index, lines[index])
    elif edit == "delete":
        del lines[index]
    elif edit == "swap":
        other = data.draw(st.integers(0, len(lines) - 1), label="other")
        lines[index], lines[other] = lines[other], lines[index]
    else:
        offset = data.draw(st.integers(0, len(lines[index])), label="offset")
        extra = data.draw(st.binary(max_size=8) | st.sampled_from([b"\x00", b"\xff", b": x", b"\n  - ", b"&a",
                                                                   b"*a", b"{", b".nan"]), label="bytes")
        lines[index] = lines[index][:offset] + (extra if edit == "insert" else b"")
        if edit == "truncate":
            lines = lines[: index + 1]
    load_or_refuse(write(workdir, b"".join(lines), suffix))


# -- counter-examples ---------------------------------------------------------------------------------------


def test_deep_toml_is_a_config_error(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text("a = " + "[" * 3000 + "]" * 3000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_bench(path)
