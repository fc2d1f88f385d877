"""Every built-in bench has its mains on WT310E power analyzers: each drawing item is on exactly one
analyzer's input, and what the analyzers read through labctl is the World's draw of those items."""

from pathlib import Path

import pytest

import labctl
from labctl.config import load_bench
from sim_backends import CHARACTERISATION_BENCH_PATH
from sim_backends.bench import build_bench

BUILT_IN = sorted(Path(CHARACTERISATION_BENCH_PATH).parent.glob("*.yaml"))
# The meter answers P with 5 significant digits.
P_REL = 1e-4


def analyzers(config):
    return {name: spec.measures for name, spec in config.instruments.items() if spec.role == "power_analyzer"}


@pytest.mark.parametrize("path", BUILT_IN, ids=lambda p: p.name)
def test_every_drawing_item_is_on_exactly_one_analyzer(path):
    config = load_bench(path)
    meters = analyzers(config)
    assert meters
    world = build_bench(config.to_dict()).world
    measured = [item for items in meters.values() for item in items]
    assert len(measured) == len(set(measured))
    assert set(measured) == set(world.draws_w()) - set(meters)


@pytest.mark.parametrize("path", BUILT_IN, ids=lambda p: p.name)
def test_the_analyzers_read_the_worlds_draw_of_their_feed(path):
    with labctl.open_bench(path, seed=1) as bench:
        world = bench.sim.world
        draws = world.draws_w()
        for name, items in analyzers(bench.config).items():
            assert bench.role(name).measure_power() == pytest.approx(sum(draws[i] for i in items), rel=P_REL)
