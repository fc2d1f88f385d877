"""The EDFA's wall-plug draw: the pump pays for the power the amplifier adds to the light (signal and ASE),
through its conversion and wall-plug efficiencies, plus the unit's TEC and control electronics.

Expected figures are computed here from the amplifier's closed forms (compressed gain
G = 2 G0 / (1 + sqrt(1 + 4 G0 P_in / P_sat)); ASE of the emission band (NF G - 1) h nu B), never read
back from the model. The input is found by evaluating the graph upstream only when a part upstream
changes, with noise from a stream of its own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import labctl
from labctl.config import apply_changes, load_bench, parse_bench
from labctl.errors import ConfigError
from sim_backends import CHARACTERISATION_BENCH_PATH
from sim_backends.bench import build_bench
from sim_backends.physics.constants import C, H
from sim_backends.physics.network import EDFA_POWER_CONVERSION, EDFAComponent
from sim_backends.world import OPTICAL_OUT, Component, Lightwave, World

AWGR_BENCH = CHARACTERISATION_BENCH_PATH.parent / "awgr_core.yaml"
WAVELENGTH = 1550e-9
# P answers with 5 significant digits, WH with 6
P_REL, WH_REL = 1e-4, 1e-5


class Source(Component):
    """A CW source of ``power_w`` (its state), counting how often the graph pulls its light. With a
    ``period`` it is a repeating source whose waveform-level output draws noise from the World's
    generator, like a laser's RIN."""

    PORTS = {"out": OPTICAL_OUT}

    def __init__(self, power_w: float, period: float | None = None):
        self.power_w, self.period, self.pulls = power_w, period, 0

    def optical_output(self, port, t):
        self.pulls += 1
        t = np.asarray(t, dtype=float)
        power = np.full(t.shape, self.power_w)
        if t.size > 1:
            power = power * (1.0 + 1e-3 * self.world.rng.standard_normal(t.shape))
        return [Lightwave(WAVELENGTH, np.sqrt(power).astype(complex))]

    def modulation_period(self):
        return self.period

    def state(self):
        return {"power_w": self.power_w}


def amplified(power_w: float, period: float | None = None, **params):
    world = World(seed=3)
    source = world.add("src", Source(power_w, period))
    amp = world.add("amp", EDFAComponent("amp", **params))
    world.connect("src.out", "amp.in")
    return world, source, amp


def compressed_gain(p_in: float, gain_db: float = 20.0, p_sat_dbm: float = 20.0) -> float:
    g0, p_sat = 10 ** (gain_db / 10), 1e-3 * 10 ** (p_sat_dbm / 10)
    return 2 * g0 / (1 + math.sqrt(1 + 4 * g0 * p_in / p_sat))


def test_hand_computed_draw_of_a_noiseless_stage():
    """-10 dBm in, 20 dB small-signal gain compressed to 19.62 dB by a +20 dBm P_sat: 9.16 mW out."""
    world, _, amp = amplified(1e-4, add_ase=False, power_conversion_efficiency=0.5,
                              pump_wall_plug_efficiency=0.25, control_power_w=2.0)
    g = compressed_gain(1e-4)
    assert g == pytest.approx(91.607, rel=1e-4)
    expected = (g * 1e-4 - 1e-4) / 0.5 / 0.25 + 2.0
    assert amp.electrical_power_w() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(2.0725, rel=1e-4)
    assert world.draws_w() == {"amp": pytest.approx(expected, rel=1e-12)}


def test_the_ase_of_the_whole_emission_band_is_paid_for_even_behind_a_filter():
    """ASE power (NF G - 1) h nu B over the 4.4 THz band at its centre frequency, with or without the
    100 GHz band-pass that lets only part of it out."""
    for bandwidth in (None, 100e9):
        _, _, amp = amplified(1e-4, optical_bandwidth_hz=bandwidth, control_power_w=0.0)
        g = compressed_gain(1e-4)
        nu = C / 1547.3e-9
        ase = (10 ** 0.5 * g - 1) * H * nu * 4.4e12
        expected = (g * 1e-4 + ase - 1e-4) / EDFA_POWER_CONVERSION / 0.3
        assert amp.electrical_power_w() == pytest.approx(expected, rel=1e-9)


def test_the_default_conversion_is_the_measured_quantum_conversion_times_the_photon_energy_ratio():
    assert EDFA_POWER_CONVERSION == pytest.approx(0.89 * 980 / 1550)


def test_the_draw_rises_with_input_power():
    draws = []
    for dbm in (-30, -20, -10, 0, 5):
        _, _, amp = amplified(1e-3 * 10 ** (dbm / 10))
        draws.append(amp.electrical_power_w())
    assert all(b > a for a, b in zip(draws, draws[1:]))
    # with no input the pump still pays for the ASE: above the control electronics alone
    _, _, dark = amplified(0.0)
    assert 10.0 < dark.electrical_power_w() < draws[0]


def test_the_world_integrates_the_draw_piecewise_with_the_input_in_force():
    world, source, amp = amplified(1e-4)
    low = amp.electrical_power_w()
    world.time += 10.0
    source.power_w = 1e-3
    high = amp.electrical_power_w()
    world.time += 5.0
    assert high > low
    assert world.energy_j(["amp"]) == pytest.approx(10.0 * low + 5.0 * high, rel=1e-12)


def test_the_graph_is_evaluated_again_only_when_a_part_upstream_changes():
    world, source, amp = amplified(1e-4)
    for _ in range(50):
        world.time += 0.1
        world.draws_w()
    assert source.pulls == 1
    source.power_w = 2e-4
    world.time += 0.1
    world.time += 0.1
    assert source.pulls == 2


def test_a_repeating_input_is_averaged_over_its_period_without_touching_the_worlds_noise():
    world, source, amp = amplified(1e-4, period=1e-9, add_ase=False, control_power_w=0.0)
    before = world.rng.bit_generator.state
    draw = amp.electrical_power_w()
    assert world.rng.bit_generator.state == before
    g = compressed_gain(1e-4)
    assert draw == pytest.approx((g - 1) * 1e-4 / EDFA_POWER_CONVERSION / 0.3, rel=1e-3)


@pytest.mark.parametrize("params, words", [
    ({"power_conversion_efficiency": 0.0}, "must be positive"),
    ({"power_conversion_efficiency": 0.7}, "power_conversion_efficiency=0.7 is outside"),  # 980 nm: <= 0.64
    ({"pump_wavelength_m": 1480e-9, "power_conversion_efficiency": 0.98}, "power_conversion_efficiency"),
    ({"pump_wavelength_m": 1600e-9}, "pump_wavelength_m"),
    ({"pump_wall_plug_efficiency": 0.0}, "must be positive"),
    ({"pump_wall_plug_efficiency": 1.5}, "pump_wall_plug_efficiency"),
    ({"control_power_w": -1.0}, "control_power_w"),
    ({"control_power_w": float("nan")}, "control_power_w"),
])
def test_unphysical_parameters_are_refused(params, words):
    with pytest.raises(ValueError, match=words):
        EDFAComponent("amp", **params)


def test_a_1480_nm_pump_may_convert_more_than_a_980_nm_one():
    assert EDFAComponent("amp", pump_wavelength_m=1480e-9, power_conversion_efficiency=0.9)


def test_a_bad_parameter_for_the_bench_names_its_field():
    with pytest.raises(ConfigError, match="outside the physical range") as err:
        apply_changes(load_bench(AWGR_BENCH), {"preamp.pump_wall_plug_efficiency": 2.0})
    assert err.value.field == "components.preamp.pump_wall_plug_efficiency"


def test_the_analyzer_on_awgr_core_measures_the_edfa_with_the_instruments():
    config = load_bench(AWGR_BENCH)
    assert "preamp" in config.instruments["wt"].measures
    with labctl.open_bench(AWGR_BENCH, seed=1) as bench:
        world = bench.sim.world
        wt, laser = bench.role("wt"), bench.role("laser", 1)
        measured = config.instruments["wt"].measures
        dark = world.draws_w()["preamp"]
        wt.reset_integration()
        e0 = world.energy_j(measured)
        wt.start_integration()
        laser.power = 10e-3
        laser.output_enabled = True
        bench.settle(20.0)
        draws = world.draws_w()
        assert draws["preamp"] > dark
        assert wt.measure_power() == pytest.approx(sum(draws[n] for n in measured), rel=P_REL)
        assert wt.measure_power() - sum(draws[n] for n in measured if n != "preamp") == pytest.approx(
            draws["preamp"], rel=1e-2)
        wt.stop_integration()
        assert wt.integrated_energy() == pytest.approx(world.energy_j(measured) - e0, rel=WH_REL)


def test_a_simulated_bench_builds_the_edfa_from_its_file_parameters():
    data = load_bench(AWGR_BENCH).to_dict()
    data["components"]["preamp"].update(control_power_w=25.0, pump_wall_plug_efficiency=0.5)
    amp = build_bench(parse_bench(data).to_dict()).world.nodes["preamp"]
    assert (amp.control_power_w, amp.pump_wall_plug_efficiency) == (25.0, 0.5)


def test_a_source_whose_state_cannot_be_pickled_is_still_followed():
    world, source, amp = amplified(1e-4)
    source.state = lambda: {"power_w": source.power_w, "callback": lambda: None}
    low = amp.electrical_power_w()
    source.power_w = 1e-3
    assert amp.electrical_power_w() > low
    assert source.pulls == 2
