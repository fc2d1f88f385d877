"""The bench graph and the passive parts against closed-form physics (PHYSICS.md section 3)."""

import numpy as np
import pytest

from sim_backends.physics.components import Fibre, Heater, MachZehnderModulator, Photodiode
from sim_backends.physics.constants import K_B, Q
from sim_backends.world import ELECTRICAL_OUT, OPTICAL_OUT, Component, Lightwave, WiringError, World


class Source(Component):
    """Constant light source with an optional sinusoidal drive output for tests."""

    PORTS = {"out": OPTICAL_OUT, "drive": ELECTRICAL_OUT}

    def __init__(self, power_w=1e-3, wavelength=1550e-9, volts=0.0):
        self.power_w, self.wavelength, self.volts = power_w, wavelength, volts

    def optical_output(self, port, t):
        # a time-stamped field lets delay tests see which emission time arrived
        return [Lightwave(self.wavelength, np.sqrt(self.power_w) * np.ones(np.shape(t)) + 0 * np.asarray(t))]

    def electrical_output(self, port, t):
        return np.full(np.shape(t), self.volts)


def chain(*parts, seed=0):
    world = World(seed=seed)
    for name, part in parts:
        world.add(name, part)
    return world


def test_wiring_refuses_unknown_ports_and_wrong_directions():
    world = chain(("src", Source()), ("f", Fibre("f", 1.0)), ("h", Heater("h")))
    with pytest.raises(WiringError, match="no port 'output'"):
        world.connect("src.output", "f.in")
    with pytest.raises(WiringError, match="unknown bench item"):
        world.connect("src.out", "nothing.in")
    with pytest.raises(WiringError, match="starts at an output"):
        world.connect("f.in", "f.out")
    with pytest.raises(WiringError, match="cannot connect"):
        world.connect("src.out", "h.in")
    world.connect("src.out", "f.in")
    with pytest.raises(WiringError, match="already fed by"):
        world.connect("src.out", "f.in")


@pytest.mark.parametrize("length_km, alpha", [(0.0, 0.2), (10.0, 0.2), (25.0, 0.22), (80.0, 0.18)])
def test_fibre_attenuates_by_alpha_l(length_km, alpha):
    world = chain(("src", Source(2e-3)), ("f", Fibre("f", length_km, alpha)))
    world.connect("src.out", "f.in")
    t = np.zeros(4)
    (out,) = world.nodes["f"].optical_output("out", t)
    assert np.allclose(out.power, 2e-3 * 10 ** (-alpha * length_km / 10))


def test_fibre_group_delay_is_length_times_group_index_over_c():
    fibre = Fibre("f", 25.0, group_index=1.4682)
    assert fibre.delay_s == pytest.approx(25e3 * 1.4682 / 299_792_458.0)


def test_unconnected_input_is_dark_and_unconnected_electrical_input_is_zero():
    world = chain(("m", MachZehnderModulator("m")))
    assert world.light_into("m", "in", np.zeros(3)) == []
    assert np.all(world.voltage_into("m", "rf", np.zeros(3)) == 0)


@pytest.mark.parametrize("bias", [-7.0, -2.5, 0.0, 1.0, 4.2])
def test_mzm_follows_cos_squared_with_finite_extinction(bias):
    mzm = MachZehnderModulator("m", v_pi=4.0, insertion_loss_db=3.0, extinction_ratio_db=20.0, phase_offset_v=0.7)
    world = chain(("src", Source(1e-3, volts=bias)), ("m", mzm))
    world.connect("src.out", "m.in")
    world.connect("src.drive", "m.bias")
    (out,) = mzm.optical_output("out", np.zeros(1))
    il, eps = 10 ** -0.3, 1 / (100 + 1)
    expected = 1e-3 * il * (eps + (1 - 2 * eps) * np.cos(np.pi * (bias + 0.7) / 8.0) ** 2)
    assert out.power[0] == pytest.approx(expected, rel=1e-12)


def test_mzm_extinction_ratio_between_peak_and_null():
    mzm = MachZehnderModulator("m", v_pi=5.0, extinction_ratio_db=25.0)
    peak, null = mzm.power_transmission(0.0), mzm.power_transmission(5.0)
    assert 10 * np.log10(peak / null) == pytest.approx(25.0, abs=1e-9)


@pytest.mark.parametrize("power_w, load", [(1e-3, 50.0), (1e-5, 50.0), (2e-4, 1000.0)])
def test_photodiode_mean_and_noise_variance_match_shot_plus_thermal(power_w, load):
    pd = Photodiode("pd", responsivity_a_per_w=0.8, dark_current_a=2e-9, bandwidth_hz=10e9, load_ohm=load)
    world = chain(("src", Source(power_w)), ("pd", pd), seed=7)
    world.connect("src.out", "pd.in")
    volts = pd.electrical_output("out", np.zeros(400_000))
    current = volts / load
    mean = 0.8 * power_w + 2e-9
    variance = 2 * Q * mean * 10e9 + 4 * K_B * 295.0 * 10e9 / load
    assert np.mean(current) == pytest.approx(mean, rel=1e-3)
    assert np.var(current) == pytest.approx(variance, rel=0.02)


def test_average_power_of_a_static_bench_is_exact_and_advances_the_clock():
    world = chain(("src", Source(3e-3)), ("f", Fibre("f", 5.0)))
    world.connect("src.out", "f.in")
    assert world.average_power_into("f", "in", 0.1) == pytest.approx(3e-3)
    assert world.time == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs", [{"length_km": -1}, {"attenuation_db_per_km": -0.1}, {"group_index": 0.5}])
def test_non_physical_fibre_parameters_are_refused_with_their_name(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Fibre("f", **kwargs)


# -- the public graph API ------------------------------------------------------------------------


def _modulated_link():
    """src -> m (bias from src.drive) -> f -> pd; a lone heater h outside the light path."""
    world = chain(("src", Source(1e-3, volts=1.0)), ("m", MachZehnderModulator("m")), ("f", Fibre("f", 2.0)),
                  ("pd", Photodiode("pd")), ("h", Heater("h")))
    world.connect("src.out", "m.in")
    world.connect("src.drive", "m.bias")
    world.connect("m.out", "f.in")
    world.connect("f.out", "pd.in")
    return world


def test_graph_names_what_feeds_a_port_and_what_a_port_feeds():
    world = _modulated_link()
    assert world.source_of("f", "in") == ("m", "out")
    assert world.source_of("m", "bias") == ("src", "drive")
    assert world.source_of("m", "rf") is None
    assert world.destinations_of("m", "out") == [("f", "in")]
    assert world.destinations_of("pd", "out") == []
    with pytest.raises(WiringError, match="'m' has no port 'output'"):
        world.destinations_of("m", "output")
    with pytest.raises(WiringError, match="unknown bench item 'x'"):
        world.source_of("x", "in")


def test_upstream_nodes_are_transitive_and_exclude_unrelated_parts():
    world = _modulated_link()
    assert world.upstream_nodes("pd") == {"f", "m", "src"}
    assert world.upstream_nodes("src") == set()
    assert world.upstream_nodes("h") == set()
    with pytest.raises(WiringError, match="unknown bench item 'nope'"):
        world.upstream_nodes("nope")


def test_nodes_is_read_only_and_items_are_added_through_add():
    world = _modulated_link()
    with pytest.raises(TypeError):
        world.nodes["x"] = Heater("x")  # type: ignore[index]
    world.add("x", Heater("x"))
    assert "x" in world.nodes and world.nodes["x"].world is world


def test_evaluate_is_what_the_next_input_receives_and_shares_one_noise_draw_per_evaluation():
    world = _modulated_link()
    t = np.linspace(0.0, 1e-9, 64)
    (out,) = world.evaluate("m", "out", t, optical=True)
    (received,) = world.light_into("f", "in", t)
    assert np.allclose(out.field, received.field)
    with world.evaluation():
        first = world.evaluate("pd", "out", t, optical=False)
        again = world.evaluate("pd", "out", t, optical=False)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, world.evaluate("pd", "out", t, optical=False))  # a new noise draw


def test_named_streams_depend_on_seed_and_name_only_not_on_draw_order():
    a, b = World(seed=7), World(seed=7)
    a.rng_for("core0").random(100)          # core0 draws first in one world ...
    first_a = a.rng_for("core1").random(5)
    first_b = b.rng_for("core1").random(5)  # ... and not at all in the other
    assert np.array_equal(first_a, first_b)
    assert a.rng_for("core1") is a.rng_for("core1")  # the stream continues, no replay
    assert not np.array_equal(a.rng_for("core1").random(5), first_a)
    assert not np.array_equal(World(seed=7).rng_for("core0").random(5), World(seed=7).rng_for("core1").random(5))
    assert not np.array_equal(World(seed=7).rng_for("core0").random(5), World(seed=8).rng_for("core0").random(5))
    b.rng_for("core9").random(3)
    assert a.rng.random() == b.rng.random()  # the shared generator is untouched by named streams


def test_an_evaluation_may_draw_its_noise_from_a_named_stream_and_leaves_the_shared_one_untouched():
    t = np.zeros(64)
    a, b = _modulated_link(), _modulated_link()
    b.rng.random(10)  # the shared generators differ ...
    with a.evaluation(rng=a.rng_for("core")):
        first = a.evaluate("pd", "out", t, optical=False)
    with b.evaluation(rng=b.rng_for("core")):
        second = b.evaluate("pd", "out", t, optical=False)
    assert np.array_equal(first, second)  # ... the named streams do not
    assert a.rng.random() == _modulated_link().rng.random()  # the shared stream was not drawn from
