"""A power analyzer's ``measures`` in the bench file: what its input is wired to, checked like the rest of
the file (file, line and field named), so a draw is never counted twice, nor from a part that draws none."""

from pathlib import Path

import pytest
import yaml

from labctl.config import apply_changes, load_bench, parse_bench
from labctl.errors import ConfigError
from sim_backends.bench import COMPONENTS, build_bench, component_draws_power

BENCH = Path(__file__).parents[1] / "sim" / "benches" / "wt310e_bench.yaml"


def bench_data():
    return yaml.safe_load(BENCH.read_text())


def second_analyzer(data, measures):
    data["instruments"]["wt2"] = {"role": "power_analyzer", "driver": "yokogawa.WT310E",
                                  "resource": "USB0::0x0B21::0x0025::C2XA00002::INSTR", "measures": measures}


def with_edfa(data):
    data["components"] = {"amp": {"type": "edfa"}, "span": {"type": "fibre", "length_km": 1.0}}


def test_the_field_is_read_and_reaches_the_simulated_meter():
    config = load_bench(BENCH)
    assert config.instruments["wt"].measures == ["laser", "opm"]
    assert config.instruments["laser"].measures is None
    sim = build_bench(config.to_dict())
    assert sim.by_name["wt"].measures == ("laser", "opm")


def test_component_draws_follow_the_worlds_rule():
    """A component type draws power exactly when the World counts its draw (an electrical model)."""
    for kind, cls in COMPONENTS.items():
        assert component_draws_power(kind) == callable(getattr(cls, "electrical_power_w", None))
    assert not component_draws_power("fibre")
    assert not component_draws_power("no-such-type")


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["instruments"]["laser"].update(measures=["opm"]), "instruments.laser.measures",
     "only a power_analyzer"),
    (lambda d: d["instruments"]["wt"].pop("measures"), "instruments.wt.measures", "must list what its input"),
    (lambda d: d["instruments"]["wt"].update(measures=[]), "instruments.wt.measures", "must list what its input"),
    (lambda d: d["instruments"]["wt"].update(measures=["laser", "ghost"]), "instruments.wt.measures.1",
     "no instrument or component named 'ghost'"),
    (lambda d: d["instruments"]["wt"].update(measures=["wt"]), "instruments.wt.measures.0", "its own supply"),
    (lambda d: d["instruments"]["wt"].update(measures=["laser", "opm", "laser"]), "instruments.wt.measures.2",
     "listed twice"),
    (lambda d: d["instruments"]["wt"].update(measures="laser"), "instruments.wt.measures", "valid list"),
    (lambda d: (with_edfa(d), d["instruments"]["wt"].update(measures=["laser", "span"])),
     "instruments.wt.measures.1", "draws no electrical power"),
    (lambda d: second_analyzer(d, ["dc", "opm"]), "instruments.wt2.measures.1", "also measured by 'wt'"),
    (lambda d: d["instruments"]["wt"]["sim"]["params"].update(measures=["dc"]), "instruments.wt.sim.params.measures",
     "move it up to instruments.wt.measures"),
])
def test_bad_measures_are_refused_with_file_line_and_field(tmp_path, mutate, field, words):
    data = bench_data()
    mutate(data)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    assert err.value.field == field
    assert words in str(err.value)
    assert str(path) in str(err.value) and err.value.line is not None


def test_a_missing_list_names_the_analyzers_line(tmp_path):
    data = bench_data()
    data["instruments"]["wt"].pop("measures")
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    wt_line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip() == "wt:")
    assert err.value.line == wt_line


def test_two_analyzers_on_separate_feeds_and_an_analyzer_on_another_are_accepted():
    data = bench_data()
    second_analyzer(data, ["dc", "wt"])
    config = parse_bench(data)
    assert config.instruments["wt2"].measures == ["dc", "wt"]


def test_a_drawing_component_may_be_measured():
    data = bench_data()
    with_edfa(data)
    data["instruments"]["wt"]["measures"] = ["laser", "opm", "amp"]
    assert component_draws_power("edfa")
    assert parse_bench(data).instruments["wt"].measures[-1] == "amp"


def test_a_variant_keeps_the_wiring_and_cannot_move_it_into_sim_params():
    config = load_bench(BENCH)
    varied = apply_changes(config, {"wt.idle_power_w": 40.0})
    assert varied.instruments["wt"].measures == ["laser", "opm"]
    assert varied.instruments["wt"].sim.params["idle_power_w"] == 40.0
    with pytest.raises(ConfigError, match="move it up") as err:
        apply_changes(config, {"wt.measures": ["laser"]})
    assert err.value.field == "instruments.wt.sim.params.measures"
