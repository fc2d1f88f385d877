"""Bench files: the default one validates; every kind of mistake names the file and the field."""

import math
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from labctl import files
from labctl.config import (
    LIMIT_KEYS,
    LIMIT_RANGES,
    SAFETY_KEYS_BY_ROLE,
    SafetyLimits,
    apply_changes,
    load_bench,
    parse_bench,
    simulated_value,
)
from labctl.errors import ConfigError
from labctl.safety import checks_for
from sim_backends import CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH, SIM_MODELS, BenchFileError, build_bench, load_bench_file
from sim_backends.bench import COMPONENTS, component_params, sim_model
from sim_backends.instruments.keysight_n7714a import SimKeysightN7714A


def write(tmp_path, data, name="bench.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def default_data():
    return yaml.safe_load(CHARACTERISATION_BENCH_PATH.read_text())


def test_default_bench_is_valid():
    config = load_bench(CHARACTERISATION_BENCH_PATH)
    assert config.instruments["laser"].role == "tunable_laser"
    assert config.safety["laser"].max_power_dbm == 10.0


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["instruments"]["laser"].update(driver="acme.Nope"), "instruments.laser.driver", "known drivers"),
    (lambda d: d["instruments"]["laser"].update(role="toaster"), "instruments.laser.role", "tunable_laser"),
    (lambda d: d["instruments"]["laser"].update(resource="not a resource"), "instruments.laser.resource", "VISA"),
    (lambda d: d["instruments"]["laser"].update(chanels=[1]), "instruments.laser.chanels", "unknown field"),
    (lambda d: d["instruments"]["laser"].pop("driver"), "instruments.laser.driver", "missing"),
    (lambda d: d["safety"].update(nobody={"max_voltage_v": 1}), None, "safety.nobody"),
    (lambda d: d["safety"]["laser"].update(max_power_dbm="lots"), "safety.laser.max_power_dbm", "number"),
    (lambda d: d["connections"].append("laser.out2 -> ghost.in"), None, "ghost"),
    (lambda d: d["instruments"]["scope"].update(resource=d["instruments"]["laser"]["resource"]), None, "also used"),
])
def test_bad_fields_are_named(tmp_path, mutate, field, words):
    data = default_data()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    message = str(err.value)
    assert str(path) in message
    if field:
        assert err.value.field == field
    assert words in message


def test_unparsable_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "instruments: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse") as err:
        load_bench(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_bench(tmp_path / "nope.yaml")


def test_toml_bench_files_are_accepted(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(
        'name = "toml bench"\n'
        '[instruments.laser]\nrole = "tunable_laser"\ndriver = "keysight.N7714A"\n'
        'resource = "TCPIP0::lab-laser.example::inst0::INSTR"\nchannels = [1, 2]\n'
        '[safety.laser]\nmax_power_dbm = 3.0\n'
    )
    config = load_bench(path)
    assert config.instruments["laser"].channels == [1, 2]
    assert config.safety["laser"].max_power_dbm == 3.0


# -- every built-in bench passes ------------------------------------------------------------------

BUILT_IN = sorted((Path(CHARACTERISATION_BENCH_PATH).parent).glob("*.yaml"))


@pytest.mark.parametrize("path", BUILT_IN, ids=lambda p: p.name)
def test_built_in_benches_are_valid_and_limit_every_source(path):
    config = load_bench(path)
    sources = [name for name, inst in config.instruments.items() if SAFETY_KEYS_BY_ROLE[inst.role]]
    assert sources
    for name in sources:
        limits = config.safety[name]
        for key in SAFETY_KEYS_BY_ROLE[config.instruments[name].role]:
            assert getattr(limits, key) is not None or key in limits.unlimited, (name, key)


def test_ring_core_file_is_what_its_generator_writes():
    from sim_backends.benches.make_ring_core import build

    assert SYSTEM_BENCH_PATH.read_text() == build()


# -- limits: finite, positive, plausible -----------------------------------------------------------


def line_of(path, needle):
    """1-based line of the first line of ``path`` containing ``needle``."""
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


@pytest.mark.parametrize("key, value, words", [
    ("max_power_dbm", ".nan", "not a finite number"),
    ("max_power_dbm", ".inf", "not a finite number"),
    ("max_power_dbm", "-.inf", "not a finite number"),
    ("max_power_dbm", "28.0", "IEC 60825-1"),
    ("max_power_dbm", "-31", "plausible"),
    ("max_power_dbm", "'10'", "valid number"),
    ("max_power_dbm", "true", "valid number"),
    ("max_voltage_v", "-1.0", "must be > 0"),
    ("max_voltage_v", "0", "must be > 0"),
    ("max_voltage_v", "61", "SELV"),
    ("max_current_a", "11", "10 A"),
    ("max_amplitude_vpp", "25", "20 Vpp"),
    ("max_amplitude_vpp", "[1]", "valid number"),
])
def test_implausible_limits_are_refused_with_file_line_and_field(tmp_path, key, value, words):
    owner = {"max_power_dbm": "laser", "max_voltage_v": "heaters", "max_current_a": "heaters",
             "max_amplitude_vpp": "awg"}[key]
    text = CHARACTERISATION_BENCH_PATH.read_text()
    original = next(line for line in text.splitlines() if line.startswith(f"  {owner}: {{"))
    start = original.index(key) + len(key) + 2
    end = min(i for i in (original.find(",", start), original.find("}", start)) if i > 0)
    path = write(tmp_path, text.replace(original, original[:start] + value + original[end:]))
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    assert err.value.field == f"safety.{owner}.{key}"
    assert err.value.line == line_of(path, f"  {owner}: {{")
    assert words in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("key", LIMIT_KEYS)
def test_every_limit_has_a_documented_plausible_range(key):
    low, high, unit, why = LIMIT_RANGES[key]
    assert low < high and unit and why
    assert SafetyLimits(**{key: high}).model_dump()[key] == high
    for bad in (high * 1.01 + 1e-9, math.nan, math.inf, -math.inf) + ((0.0, -1.0) if low == 0 else (low - 1,)):
        with pytest.raises(ValidationError):
            SafetyLimits(**{key: bad})


def test_a_missing_limit_is_refused_and_says_how_to_fix_it(tmp_path):
    path = write(tmp_path, CHARACTERISATION_BENCH_PATH.read_text().replace("max_voltage_v: 8.0, ", ""))
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    assert err.value.field == "safety.heaters.max_voltage_v"
    assert err.value.line == line_of(path, "  heaters: {max_current_a")
    assert "safety.heaters.unlimited" in str(err.value)


def test_a_null_limit_counts_as_missing(tmp_path):
    path = write(tmp_path, CHARACTERISATION_BENCH_PATH.read_text().replace("max_voltage_v: 8.0", "max_voltage_v: null"))
    with pytest.raises(ConfigError, match="missing") as err:
        load_bench(path)
    assert err.value.field == "safety.heaters.max_voltage_v"


@pytest.mark.parametrize("name, role_words", [
    ("laser", "add 'laser: {max_power_dbm: <dBm>}'"),
    ("heaters", "add 'heaters: {max_voltage_v: <V>, max_current_a: <A>}'"),
])
def test_a_source_without_a_safety_entry_is_refused(tmp_path, name, role_words):
    data = default_data()
    del data["safety"][name]
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    assert err.value.field == f"safety.{name}"
    assert err.value.line == line_of(path, f"  {name}:")  # the instrument's own entry
    assert role_words in str(err.value)


def test_unlimited_keys_are_explicit_and_reach_the_guard_as_no_check(tmp_path):
    data = default_data()
    data["safety"]["heaters"] = {"max_voltage_v": 8.0, "unlimited": ["max_current_a"]}
    config = load_bench(write(tmp_path, data))
    limits = config.safety["heaters"]
    assert limits.max_current_a is None and limits.unlimited == ["max_current_a"]
    checks = set(checks_for("dc_source", limits))  # the guard gets the voltage check and no current check
    assert checks == set(checks_for("dc_source", SafetyLimits(max_voltage_v=8.0)))
    assert checks < set(checks_for("dc_source", SafetyLimits(max_voltage_v=8.0, max_current_a=0.05)))


@pytest.mark.parametrize("entry, field, words", [
    ({"max_voltage_v": 8.0, "max_current_a": 0.05, "unlimited": ["max_current_a"]}, "safety.heaters.unlimited.0",
     "both set and listed"),
    ({"max_voltage_v": 8.0, "unlimited": ["max_power_dbm"]}, "safety.heaters.unlimited.0", "not a limit of role"),
    ({"max_voltage_v": 8.0, "unlimited": ["max_current_a", "max_current_a"]}, "safety.heaters.unlimited",
     "more than once"),
    ({"max_voltage_v": 8.0, "unlimited": "max_current_a"}, "safety.heaters.unlimited", "valid list"),
])
def test_bad_unlimited_lists_are_refused(tmp_path, entry, field, words):
    data = default_data()
    data["safety"]["heaters"] = entry
    with pytest.raises(ConfigError, match=words) as err:
        load_bench(write(tmp_path, data))
    assert err.value.field == field


def test_a_limit_for_a_role_that_has_none_is_refused(tmp_path):
    data = default_data()
    data["safety"]["scope"] = {"unlimited": ["max_power_dbm"]}
    with pytest.raises(ConfigError, match="takes no safety limits") as err:
        load_bench(write(tmp_path, data))
    assert err.value.field == "safety.scope.unlimited.0"


# -- duplicates --------------------------------------------------------------------------------------


@pytest.mark.parametrize("replacements, field", [
    ([("name: characterisation-sim-bench\n", "name: characterisation-sim-bench  #FIRST\nname: other  #AGAIN\n")], "name"),
    ([("  laser:\n", "  laser:  #FIRST\n"),
      ("  powermeter:\n", "  laser:  #AGAIN\n    role: tunable_laser\n  powermeter:\n")], "instruments.laser"),
    ([("        linewidth_hz: 100.0e+3",
       "        linewidth_hz: 100.0e+3  #FIRST\n        'linewidth_hz': 1.0  #AGAIN")],
     "instruments.laser.sim.params.linewidth_hz"),
    ([("  awg: {max_amplitude_vpp: 1.0}",
       "  awg: {max_amplitude_vpp: 1.0,  #FIRST\n    max_amplitude_vpp: 9.0}  #AGAIN")],
     "safety.awg.max_amplitude_vpp"),
])
def test_a_key_given_twice_is_refused_at_any_level(tmp_path, replacements, field):
    text = CHARACTERISATION_BENCH_PATH.read_text()
    for old, new in replacements:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="given twice") as err:
        load_bench(path)
    assert err.value.field == field
    assert f"first on line {line_of(path, '#FIRST')}" in str(err.value)
    assert err.value.line == line_of(path, "#AGAIN")


def test_toml_refuses_a_table_or_key_given_twice(tmp_path):
    base = ('name = "t"\n[instruments.laser]\nrole = "tunable_laser"\ndriver = "keysight.N7714A"\n'
            'resource = "TCPIP0::l.example::inst0::INSTR"\n[safety.laser]\nmax_power_dbm = 3.0\n')
    for extra, line in (('[instruments.laser]\nrole = "awg"\n', 8), ('[safety.laser]\nmax_power_dbm = 9.0\n', 8),
                        ('name = "u"\n', 2)):
        path = tmp_path / "bench.toml"
        path.write_text(base + extra if not extra.startswith("name") else extra + base)
        with pytest.raises(ConfigError, match="cannot parse as TOML") as err:
            load_bench(path)
        assert str(path) in str(err.value) and err.value.line == line


def test_a_component_named_like_an_instrument_is_refused(tmp_path):
    data = default_data()
    data["components"]["laser"] = data["components"].pop("pd1")
    with pytest.raises(ConfigError, match="also the name of an instrument") as err:
        load_bench(write(tmp_path, data))
    assert err.value.field == "components.laser"


@pytest.mark.parametrize("name", ["la.ser", " laser", "a->b", ""])
def test_names_that_connections_cannot_spell_are_refused(tmp_path, name):
    data = default_data()
    data["instruments"][name] = data["instruments"].pop("switch")
    with pytest.raises(ConfigError, match="cannot be used in connections") as err:
        load_bench(write(tmp_path, data))
    assert err.value.field == f"instruments.{name}"


# -- simulation parameters ------------------------------------------------------------------------------


def test_an_unknown_sim_param_is_refused_with_the_accepted_names(tmp_path):
    text = CHARACTERISATION_BENCH_PATH.read_text().replace("        linewidth_hz: 100.0e+3",
                                                  "        linewidth_hz: 100.0e+3\n        linewdth_hz: 1.0")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    assert err.value.field == "instruments.laser.sim.params.linewdth_hz"
    assert err.value.line == line_of(path, "linewdth_hz")
    assert "unknown parameter 'linewdth_hz'" in str(err.value)
    assert ", ".join(sorted(SimKeysightN7714A.PARAMS)) in str(err.value)


def test_an_unknown_component_param_or_type_is_refused(tmp_path):
    path = write(tmp_path, CHARACTERISATION_BENCH_PATH.read_text().replace("    v_pi: 5.0 ", "    v_pie: 5.0 "))
    with pytest.raises(ConfigError, match="unknown parameter 'v_pie'") as err:
        load_bench(path)
    assert (err.value.field, err.value.line) == ("components.mzm1.v_pie", line_of(path, "v_pie"))
    data = default_data()
    data["components"]["pd1"]["type"] = "photodetector"
    with pytest.raises(ConfigError, match="'photodetector' is not one of") as err:
        load_bench(write(tmp_path, data))
    assert err.value.field == "components.pd1.type"


@pytest.mark.parametrize("driver", sorted(SIM_MODELS))
def test_every_simulated_model_declares_its_params_and_refuses_others(driver):
    accepted = sim_model(driver).PARAMS
    assert isinstance(accepted, frozenset) and accepted and all(isinstance(k, str) for k in accepted)
    config = {"instruments": {"x": {"driver": driver, "resource": "TCPIP0::x.labsim::inst0::INSTR",
                                    "sim": {"params": {"not_a_param": 1}}}}}
    with pytest.raises(BenchFileError) as err:
        build_bench(config)
    assert err.value.field == "instruments.x.sim.params.not_a_param"
    assert ", ".join(sorted(accepted)) in str(err.value)


@pytest.mark.parametrize("kind", sorted(COMPONENTS))
def test_every_component_type_declares_its_params_and_refuses_others(kind):
    accepted = component_params(kind)
    assert accepted and "name" not in accepted and "type" not in accepted
    with pytest.raises(BenchFileError) as err:
        build_bench({"components": {"c": {"type": kind, "not_a_param": 1}}})
    assert err.value.field == "components.c.not_a_param"
    assert ", ".join(sorted(accepted)) in str(err.value)


def test_declared_params_are_the_ones_the_models_accept():
    """Each declared name builds (with its default bench's value or a plain one), so none is stale."""
    for name, spec in default_data()["instruments"].items():
        params = spec["sim"]["params"]
        assert set(params) <= sim_model(spec["driver"]).PARAMS, name
        alone = {key: value for key, value in spec.items() if key != "measures"}  # wiring names the others
        build_bench({"instruments": {name: alone}})


# -- the file itself ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"# only a comment\n", "empty"),
    (b"{}\n", "has no fields"),
    (b"- a\n- b\n", "top level is a list"),
    (b"just text\n", "top level is a text"),
    (b"name: x\n---\nname: y\n", "cannot parse as YAML"),
    (b"name: x\x00\n", "binary file"),
    (b"name: caf\xe9\n", "not UTF-8"),
    (b"name: &a [*a]\n", "refers to itself"),
    (b"name: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested too deeply"),
    (b"name: 2026-13-45\n", "cannot parse as YAML"),
    (b"name: !!binary aGk=\n", "not allowed"),
    (b"? [a]\n: 1\n", "cannot parse as YAML"),
    (b"1: x\n", "keys must be text"),
])
def test_files_that_are_not_bench_files_are_refused(tmp_path, content, words):
    path = tmp_path / "bench.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=words) as err:
        load_bench(path)
    assert str(err.value).startswith(str(path))


def test_aliases_that_expand_past_the_cap_are_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]  # 10^7 values
    path = tmp_path / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="more than 2000000 values") as err:
        load_bench(path)
    assert err.value.field == "a6" and err.value.line == 7


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = write(tmp_path, CHARACTERISATION_BENCH_PATH.read_text())
    monkeypatch.setattr(files, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ConfigError, match="more than") as err:
        load_bench(path)
    assert str(path) in str(err.value)


def test_a_directory_is_not_a_bench_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_bench(tmp_path)


def test_nan_anywhere_is_refused_also_in_data_given_directly():
    data = default_data()
    data["components"]["edge_fibre"]["length_km"] = math.nan
    with pytest.raises(ConfigError, match="not a finite number") as err:
        parse_bench(data)
    assert err.value.field == "components.edge_fibre.length_km"


def test_config_error_keeps_its_three_argument_form():
    err = ConfigError("b.yaml", "safety.laser", "bad")
    assert (err.line, str(err)) == (None, "b.yaml, field 'safety.laser': bad")
    assert str(ConfigError("b.yaml", None, "bad", line=3)) == "b.yaml, line 3: bad"


def test_the_simulators_own_reader_refuses_a_key_given_twice(tmp_path):
    """pyvisa's '<file>@labsim' reads a bench file without labctl: it must not keep the last of two keys."""
    path = write(tmp_path, "name: a\ncomponents:\n  f: {type: fibre, length_km: 1.0, length_km: 2.0}\n")
    with pytest.raises(BenchFileError, match="'length_km' is given twice") as err:
        load_bench_file(path)
    assert str(path) in str(err.value)
    assert load_bench_file(CHARACTERISATION_BENCH_PATH) == default_data()


def test_a_variant_is_a_validated_copy_and_leaves_the_config_alone():
    config = load_bench(CHARACTERISATION_BENCH_PATH)
    varied = apply_changes(config, {"edge_fibre.length_km": 40.0, "laser.linewidth_hz": 1e6}, CHARACTERISATION_BENCH_PATH)
    assert varied.components["edge_fibre"]["length_km"] == 40.0
    assert varied.instruments["laser"].sim.params["linewidth_hz"] == 1e6
    assert config.components["edge_fibre"]["length_km"] == default_data()["components"]["edge_fibre"]["length_km"]
    assert config.instruments["laser"].sim.params["linewidth_hz"] == 100e3       # the file's own value
    # the same checks as the file: a NaN is refused by the plain-data check, before any model sees it
    with pytest.raises(ConfigError, match="not a finite number") as err:
        apply_changes(config, {"edge_fibre.length_km": math.nan})
    assert err.value.field == "components.edge_fibre.length_km"
    # two changes of one component refused together: the field named is the one the model refuses
    with pytest.raises(ConfigError, match="v_pi") as err:
        apply_changes(config, {"mzm1.phase_offset_v": 0.5, "mzm1.v_pi": -1.0})
    assert err.value.field == "components.mzm1.v_pi"


def test_simulated_value_is_the_files_or_the_models_default():
    config = load_bench(SYSTEM_BENCH_PATH)
    assert simulated_value(config, "occ1", "inputs") == config.instruments["occ1"].sim.params["inputs"]
    defaults = sim_model("labctl.OCC16")("occ1", None, params={})     # the simulated model, built alone
    assert simulated_value(config, "occ1", "adc_bits") == defaults.adc_bits
    with pytest.raises(ConfigError) as err:
        simulated_value(config, "occ1", "adc_bitz")
    assert err.value.field == "instruments.occ1.sim.params.adc_bitz"
