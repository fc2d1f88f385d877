"""Bench files: the default one validates; every kind of mistake names the file and the field."""

import pytest
import yaml

from labctl.config import load_bench
from labctl.errors import ConfigError
from sim_backends import DEFAULT_BENCH_PATH


def write(tmp_path, data, name="bench.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def default_data():
    return yaml.safe_load(DEFAULT_BENCH_PATH.read_text())


def test_default_bench_is_valid():
    config = load_bench(DEFAULT_BENCH_PATH)
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
