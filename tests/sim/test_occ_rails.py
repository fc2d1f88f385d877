"""The simulated OCC-16's power monitors (docs/occ_protocol.md "Power monitors"), on core 1 of ring_core.yaml.

Expected rails are computed here from the bench file's heater loads and the draw parameters this test sets
(not the defaults, so a changed default cannot hide a wrong formula): SYSTEM = idle, DAC = N_in x per-DAC,
ADC = N_out x per-ADC, TIA = N_out x per-TIA while a program runs, HEATER = rail x sum(V/R) of the heater DAC
levels. The board's draw (what the World integrates) must be exactly the sum of the rails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_backends.bench import load_bench_file
from sim_backends.instruments.labctl_occ import RAILS
from tests.sim.test_labctl_occ import BENCH, Core, core_config, tiles, zero_codes

#: draw parameters of this test's controller (W, W per channel, V)
IDLE_W, DAC_W, ADC_W, TIA_W, HEATER_RAIL_V = 30.0, 0.25, 0.5, 0.125, 15.0


@pytest.fixture(scope="module")
def rails_config() -> dict:
    config = core_config(load_bench_file(BENCH))
    occ = config["opu"]["cores"][0]["controller"]
    config["instruments"][occ]["sim"]["params"].update(
        idle_power_w=IDLE_W, dac_channel_power_w=DAC_W, adc_channel_power_w=ADC_W, tia_channel_power_w=TIA_W,
        heater_rail_v=HEATER_RAIL_V)
    return config


@pytest.fixture
def core(rails_config) -> Core:
    return Core(rails_config)


def heater_w(core: Core, volts: np.ndarray) -> float:
    """Rail power of the heater DACs holding ``volts`` (N_out x N_in): the DAC levels' currents x the rail."""
    occ, world = core.occ, core.world
    ohms = np.array([[world.load_on(occ.name, f"heater{q}_{k}") for k in range(1, occ.n_in + 1)]
                     for q in range(1, occ.n_out + 1)])
    assert np.isfinite(ohms).all(), "every heater output of the core drives a ring heater"
    lsb = occ.heater_range_v / 2**occ.heater_dac_bits
    levels = np.round(volts / lsb) * lsb
    return HEATER_RAIL_V * float(np.sum(levels / ohms))


def scpi_rails(core: Core) -> dict[str, float]:
    names = [name.strip('"') for name in core.ask(":MEAS:RAIL:CAT?").split(",")]
    return dict(zip(names, (float(word) for word in core.ask(":MEAS:RAIL:POW?").split(","))))


def test_catalog_names_the_rails_in_order_and_queries_take_no_parameters(core):
    assert core.ask(":MEASure:RAIL:CATalog?") == '"SYSTEM","DAC","ADC","TIA","HEATER"'
    assert tuple(core.occ.rail_powers_w()) == RAILS
    for query in (":MEAS:RAIL:CAT? 1", ":MEAS:RAIL:POW? 1", ":MEAS:POW? 1"):
        assert core.ask(query) == ""
        assert core.errors() == [-108], query


def test_outputs_off_only_the_idle_rails_draw(core):
    assert scpi_rails(core) == {"SYSTEM": IDLE_W, "DAC": 0.0, "ADC": 0.0, "TIA": 0.0, "HEATER": 0.0}
    assert core.number(":MEAS:POW?") == core.occ.electrical_power_w() == IDLE_W


def test_held_heaters_draw_rail_times_current_and_follow_the_volts(core):
    core.write_ok(":OUTP ON;:TILE:SETT 20US")
    last = []
    for volts in (1.0, 2.0):
        core.run(tiles(1, volts), zero_codes(1, 16))
        rails = scpi_rails(core)
        assert rails == core.occ.rail_powers_w()  # the reply carries every digit
        expected = heater_w(core, tiles(1, volts)[0])
        assert rails["HEATER"] == pytest.approx(expected, rel=1e-12)
        assert (rails["SYSTEM"], rails["DAC"], rails["ADC"], rails["TIA"]) == (IDLE_W, 0.0, 0.0, 0.0)
        assert core.number(":MEAS:POW?") == core.occ.electrical_power_w() == math.fsum(rails.values())
        last.append(rails["HEATER"])
    assert last[1] == pytest.approx(2 * last[0], rel=1e-4)  # linear in V (up to the DAC levels' rounding)
    core.write_ok(":OUTP OFF")
    assert scpi_rails(core)["HEATER"] == 0.0


def test_while_a_program_runs_every_converter_rail_draws_and_the_world_integrates_their_sum(core, monkeypatch):
    """The rails are read at the instant the program ends, before the clock leaves it (the run moves the
    clock with World.advance_to): the converters and TIAs draw, the heaters at the table's mean."""
    occ, world = core.occ, core.world
    core.write_ok(":OUTP ON;:SYMB:RATE 1GHZ;:TILE:SETT 20US")
    t, s = 2, 100
    volts = tiles(t, 0.0)
    volts[0], volts[1] = 1.0, 2.0
    seen = []
    advance_to = world.advance_to

    def spy(time_s):
        seen.append((occ.rail_powers_w(), occ.electrical_power_w()))
        return advance_to(time_s)

    monkeypatch.setattr(world, "advance_to", spy)
    start, e0 = world.time, world.energy_j([occ.name])
    core.run(volts, zero_codes(t, s))
    assert len(seen) == 1, "the program moves the clock once, at its end"
    rails, draw = seen[0]
    n_in, n_out = occ.n_in, occ.n_out
    mean_heaters = (heater_w(core, volts[0]) + heater_w(core, volts[1])) / 2
    assert rails["SYSTEM"] == IDLE_W
    assert (n_in, n_out) == (16, 16)
    assert (rails["DAC"], rails["ADC"], rails["TIA"]) == (16 * 0.25, 16 * 0.5, 16 * 0.125)
    assert rails["HEATER"] == pytest.approx(mean_heaters, rel=1e-12)
    assert draw == math.fsum(rails.values())
    duration = t * (20e-6 + s / 1e9)
    assert world.time - start == pytest.approx(duration, rel=1e-12)
    assert world.energy_j([occ.name]) - e0 == pytest.approx(draw * duration, rel=1e-12)
    # afterwards the converters rest and the heaters hold the last row
    after = occ.rail_powers_w()
    assert (after["DAC"], after["ADC"], after["TIA"]) == (0.0, 0.0, 0.0)
    assert after["HEATER"] == pytest.approx(heater_w(core, volts[1]), rel=1e-12)
    e1 = world.energy_j([occ.name])
    world.advance(0.5)
    assert world.energy_j([occ.name]) - e1 == pytest.approx(math.fsum(after.values()) * 0.5, rel=1e-12)
