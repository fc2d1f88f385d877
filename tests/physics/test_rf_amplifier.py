"""RF driver amplifier: small-signal gain, saturation, output noise against closed forms."""

import numpy as np
import pytest

from sim_backends.physics.constants import K_B
from sim_backends.physics.electrical import RFAmplifier
from sim_backends.world import ELECTRICAL_OUT, Component, World


class Source(Component):
    PORTS = {"out": ELECTRICAL_OUT}

    def __init__(self, volts):
        self.volts = volts

    def electrical_output(self, port, t):
        return np.full(np.shape(t), self.volts)


def amp_world(volts, **kwargs):
    world = World(seed=3)
    world.add("src", Source(volts))
    amp = world.add("amp", RFAmplifier("amp", **kwargs))
    world.connect("src.out", "amp.in")
    return amp


def test_small_signal_gain_is_the_voltage_gain():
    amp = amp_world(0.01, gain_db=20.0, saturated_output_vpp=8.0)
    assert amp.electrical_output("out", 0.0) == pytest.approx(4.0 * np.tanh(10 * 0.01 / 4.0))
    assert amp.electrical_output("out", 0.0) == pytest.approx(0.1, rel=1e-3)


def test_output_saturates_at_half_the_saturated_swing():
    amp = amp_world(5.0, gain_db=20.0, saturated_output_vpp=8.0)
    assert amp.electrical_output("out", 0.0) == pytest.approx(4.0, rel=1e-6)


def test_output_noise_matches_noise_figure_formula():
    amp = amp_world(0.0, gain_db=20.0, noise_figure_db=6.0, noise_bandwidth_hz=20e9)
    noise = amp.electrical_output("out", np.arange(200_000) * 1e-11)
    expected = np.sqrt(10 ** 0.6 * K_B * 295.0 * 20e9 * 50.0) * 10.0
    assert np.std(noise) == pytest.approx(expected, rel=0.02)


def test_non_physical_gain_is_refused():
    with pytest.raises(ValueError, match="gain_db"):
        RFAmplifier("a", gain_db=100)
