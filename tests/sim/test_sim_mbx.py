"""The unchanged ThorlabsMBX driver against the simulated MBX, with a modulator in the loop.

Bench: constant test source -> MZM (LN81S class) -> MBX ``in`` (tap) -> VOA -> MBX ``out`` -> sink;
MBX ``bias`` drives the MZM bias electrode. Tap power is checked against the closed form
P IL [eps + (1 - 2 eps) cos^2(pi (V + V0) / (2 V_pi))]; locks are checked on the closed-form curve.
"""

import math

import numpy as np
import pytest

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.thorlabs.mbx import LockMode, MzmMode, ThorlabsMBX, VoaMode
from sim_backends.bench import BenchFileError
from sim_backends.world import OPTICAL_IN, OPTICAL_OUT, Component, Lightwave, total_power

RESOURCE = "ASRL1::INSTR"
P_SOURCE = 1e-3  # W


class ConstantSource(Component):
    """Test-only CW source: constant power at one wavelength."""

    PORTS = {"out": OPTICAL_OUT}

    def __init__(self, name, power_w, wavelength_m=1550e-9):
        self.name, self.power_w, self.wavelength_m = name, power_w, wavelength_m

    def optical_output(self, port, t):
        return [Lightwave(self.wavelength_m, np.full(np.shape(t), math.sqrt(self.power_w), dtype=complex))]


class Sink(Component):
    """Test-only optical termination, to look at what leaves the MBX."""

    PORTS = {"in": OPTICAL_IN}

    def __init__(self, name):
        self.name = name


def transmission(volts, v_pi, v0, il_db=4.0, er_db=25.0):
    """Closed-form MZM power transmission (PHYSICS.md section 3)."""
    eps = 1 / (10 ** (er_db / 10) + 1)
    return 10 ** (-il_db / 10) * (eps + (1 - 2 * eps) * np.cos(np.pi * (np.asarray(volts) + v0) / (2 * v_pi)) ** 2)


@pytest.fixture
def bench(sim_bench, open_sim):
    def _bench(v_pi=5.0, v0=1.3, params=None, seed=1):
        lib = sim_bench(
            {"bias": {"driver": "thorlabs.MBX", "resource": RESOURCE, "sim": {"params": params or {}}}},
            {"mzm": {"type": "mzm", "v_pi": v_pi, "phase_offset_v": v0,
                     "insertion_loss_db": 4.0, "extinction_ratio_db": 25.0}},
            ["bias.bias -> mzm.bias", "mzm.out -> bias.in"],
            seed=seed,
        )
        lib.world.add("src", ConstantSource("src", P_SOURCE))
        lib.world.add("sink", Sink("sink"))
        lib.world.connect("src.out", "mzm.in")
        lib.world.connect("bias.out", "sink.in")
        return lib, open_sim(ThorlabsMBX, lib, RESOURCE)

    return _bench


def out_power(lib):
    t = lib.world.time + np.arange(4) * 1e-6
    return float(np.mean(total_power(lib.world.light_into("sink", "in", t), t)))


# -- SCPI behaviour ---------------------------------------------------------------------------------


def test_identity_and_reset_state(bench):
    lib, mbx = bench()
    assert mbx.id.startswith("Thorlabs,MBX,")
    assert mbx.mzm.mode is MzmMode.OFF
    assert mbx.measure_bias_voltage() == 0.0
    assert mbx.voa.enabled is False


def test_every_command_is_acknowledged_and_replies_end_with_cr(bench):
    lib, mbx = bench()
    sim = lib.instrument(RESOURCE)
    sim.handle_write(b"MZM:HOLD:VOLTAGE: 1500\r")
    assert bytes(sim.output) == b"1\r"
    sim.handle_write(b"MZM:HOLD:VOLT?\r")  # short form; the unread "1" stays in the buffer (serial)
    assert bytes(sim.output) == b"1\r1500\r"


@pytest.mark.parametrize("command", ["MZM:MODE 7", "mzm:mode: 7", "MZM:MODE: 7"])
def test_header_forms(bench, command):
    lib, mbx = bench()
    assert mbx.ask(command) == "1"
    assert mbx.mzm.mode is MzmMode.MANUAL


@pytest.mark.parametrize("command, code", [
    ("MZM:HOLD:VOLTAGE: 10001", -222),
    ("MZM:MODE: 12", -224),
    ("MZM:HOLD:RATIO: 100", -222),
    ("VOA:ATTEN: 0.5", -222),
    ("VOA:POWER: 2", -222),
    ("MZM:FOO: 1", -113),
    ("MZM:HOLD:VOLTAGE: abc", -104),
])
def test_rejected_commands_answer_err_and_raise(bench, command, code):
    lib, mbx = bench()
    with pytest.raises(InstrumentError) as info:
        mbx.write(command)
    assert info.value.codes == [code]
    assert info.value.command == command
    assert mbx.mzm.mode is MzmMode.OFF  # the next query is not disturbed


def test_there_is_no_scpi_error_queue(bench):
    lib, mbx = bench()
    with pytest.raises(InstrumentError) as info:
        mbx.ask("SYST:ERR?")
    assert info.value.codes == [-113]


def test_driver_refuses_out_of_range_before_sending(bench):
    lib, mbx = bench()
    mbx.bias_voltage = 1.0
    with pytest.raises(ValueOutOfRange):
        mbx.bias_voltage = 10.5
    assert lib.instrument(RESOURCE).hold_mv == 1000


def test_reset_returns_to_off(bench):
    lib, mbx = bench()
    mbx.bias_voltage = 3.0
    assert mbx.ask("*RST") == "1"
    assert mbx.mzm.mode is MzmMode.OFF
    assert mbx.measure_bias_voltage() == 0.0


@pytest.mark.parametrize("params", [{"tap_ratio": 0.0}, {"insertion_loss_db": -1}, {"bogus": 1}])
def test_non_physical_parameters_are_refused(sim_bench, params):
    with pytest.raises(BenchFileError):
        sim_bench({"bias": {"driver": "thorlabs.MBX", "resource": RESOURCE, "sim": {"params": params}}})


# -- physics: manual bias, tap power ---------------------------------------------------------------


@pytest.mark.parametrize("volts", [-10.0, -6.3, -2.5, 0.0, 1.2, 3.7, 7.75, 10.0])
def test_tap_power_follows_the_mzm_transfer_curve(bench, volts):
    lib, mbx = bench()
    mbx.bias_voltage = volts
    assert mbx.mzm.mode is MzmMode.MANUAL
    assert mbx.measure_bias_voltage() == pytest.approx(volts, abs=1e-3)
    expected = P_SOURCE * transmission(volts, 5.0, 1.3)
    assert mbx.read_output_power() == pytest.approx(expected, rel=2e-3, abs=1e-8)


def test_off_mode_applies_zero_volts(bench):
    lib, mbx = bench()
    mbx.bias_voltage = 4.0
    mbx.mzm.mode = MzmMode.OFF
    assert mbx.measure_bias_voltage() == 0.0
    assert mbx.read_output_power() == pytest.approx(P_SOURCE * transmission(0.0, 5.0, 1.3), rel=2e-3)


def test_shutdown_holds_zero_volts(bench):
    lib, mbx = bench()
    mbx.lock_quadrature()
    mbx.shutdown()
    assert mbx.mzm.mode is MzmMode.MANUAL
    assert mbx.bias_voltage == 0.0
    assert mbx.measure_bias_voltage() == 0.0


# -- physics: the lock loop (it only sees its tap) -----------------------------------------------------


def _position(v, v_pi, v0):
    """Where V sits between the transmission minimum (0) and maximum (1), and the slope sign."""
    t = transmission(v, v_pi, v0)
    t_min, t_max = transmission(v_pi - v0, v_pi, v0), transmission(-v0, v_pi, v0)
    slope = transmission(v + 1e-4, v_pi, v0) - transmission(v - 1e-4, v_pi, v0)
    return (t - t_min) / (t_max - t_min), np.sign(slope)


@pytest.mark.parametrize("v_pi, v0", [(5.0, 1.3), (5.0, 0.0), (4.2, -2.2), (6.5, 3.1)])
def test_autoquadpos_locks_halfway_on_the_rising_slope(bench, v_pi, v0):
    lib, mbx = bench(v_pi=v_pi, v0=v0)
    mbx.lock_quadrature(positive=True)
    v = mbx.measure_bias_voltage()
    level, slope = _position(v, v_pi, v0)
    assert level == pytest.approx(0.5, abs=0.01)
    assert slope > 0
    assert mbx.is_locked
    t_mid = (transmission(v_pi - v0, v_pi, v0) + transmission(-v0, v_pi, v0)) / 2
    assert mbx.read_output_power() == pytest.approx(P_SOURCE * t_mid, rel=0.02)


def test_autoquadneg_locks_halfway_on_the_falling_slope(bench):
    lib, mbx = bench(v_pi=5.0, v0=1.3)
    mbx.lock_quadrature(positive=False)
    level, slope = _position(mbx.measure_bias_voltage(), 5.0, 1.3)
    assert level == pytest.approx(0.5, abs=0.01)
    assert slope < 0


@pytest.mark.parametrize("point, expected", [(LockMode.PEAK, 1.0), (LockMode.NULL, 0.0)])
def test_peak_and_null_locks(bench, point, expected):
    lib, mbx = bench(v_pi=5.0, v0=0.7)
    mbx.lock_to(point)
    level, _ = _position(mbx.measure_bias_voltage(), 5.0, 0.7)
    assert level == pytest.approx(expected, abs=0.005)


def test_lock_tracks_modulator_drift(bench):
    lib, mbx = bench(v_pi=5.0, v0=1.3)
    mbx.lock_quadrature()
    before = mbx.measure_bias_voltage()
    lib.world.nodes["mzm"].phase_offset_v = 1.7  # the modulator drifts by +0.4 V
    for _ in range(3):
        after = mbx.measure_bias_voltage()
    level, slope = _position(after, 5.0, 1.7)
    assert level == pytest.approx(0.5, abs=0.01) and slope > 0
    assert after - before == pytest.approx(-0.4, abs=0.02)


def test_autopower_locks_to_the_ratio_of_peak(bench):
    lib, mbx = bench(v_pi=5.0, v0=1.3)
    mbx.mzm.ratio_setpoint = 25
    mbx.mzm.mode = MzmMode.AUTOPOWERPOS
    v = mbx.measure_bias_voltage()
    t_max = transmission(-1.3, 5.0, 1.3)
    assert transmission(v, 5.0, 1.3) / t_max == pytest.approx(0.25, abs=0.005)
    assert _position(v, 5.0, 1.3)[1] > 0


def test_no_light_no_lock(sim_bench, open_sim):
    lib = sim_bench({"bias": {"driver": "thorlabs.MBX", "resource": RESOURCE}})
    mbx = open_sim(ThorlabsMBX, lib, RESOURCE)
    mbx.lock_quadrature()
    assert mbx.is_locked is False
    assert mbx.read_output_power() == pytest.approx(0.0, abs=1e-8)


# -- physics: VOA --------------------------------------------------------------------------------------


def test_voa_off_passes_the_insertion_loss(bench):
    lib, mbx = bench(params={"insertion_loss_db": 0.8})
    mbx.bias_voltage = -1.3  # transmission peak
    p_in = P_SOURCE * transmission(-1.3, 5.0, 1.3)
    assert out_power(lib) == pytest.approx(p_in * 10 ** (-0.8 / 10), rel=1e-9)
    assert mbx.voa.attenuation == pytest.approx(0.8, abs=0.02)


@pytest.mark.parametrize("att_db", [1.0, 3.0, 6.5, 20.0])
def test_voa_attenuation_mode(bench, att_db):
    lib, mbx = bench()
    mbx.bias_voltage = -1.3
    p_in = P_SOURCE * transmission(-1.3, 5.0, 1.3)
    mbx.voa.attenuation_setpoint = att_db
    mbx.voa.mode = VoaMode.ATTENUATION
    mbx.voa.enabled = True
    assert out_power(lib) == pytest.approx(p_in * 10 ** (-att_db / 10), rel=1e-9)
    assert mbx.voa.attenuation == pytest.approx(att_db, abs=0.02)
    assert mbx.voa.power * 1e-3 == pytest.approx(p_in * 10 ** (-att_db / 10), rel=0.01, abs=1e-8)
    assert mbx.voa.is_stable


def test_voa_power_mode_holds_the_output_power(bench):
    lib, mbx = bench()
    mbx.bias_voltage = -1.3
    mbx.voa.power_setpoint = 0.05
    mbx.voa.mode = VoaMode.POWER
    mbx.voa.enabled = True
    assert out_power(lib) == pytest.approx(0.05e-3, rel=1e-9)
    mbx.bias_voltage = 1.2  # less light in: the VOA opens up to keep 0.05 mW
    assert out_power(lib) == pytest.approx(0.05e-3, rel=1e-9)
