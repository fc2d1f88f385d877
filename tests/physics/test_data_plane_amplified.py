"""An amplifier in an edge's link, in process: the ASE an edge launches is its EDFA's, and the center's detectors see
it as they see their own pre-amplifier's, so an amplified edge at 50 km gives the center's own amplified chain's
statistics at 50 km (docs/network.md, "Data plane in simulation")."""

from __future__ import annotations

import math

import numpy as np
import pytest

import labctl
from labctl.bench import SYSTEM_BENCH_PATH
from labctl.errors import LabctlError
from labctl.network.edge import EdgeTransmitter
from labctl.opu.precision import error_stats
from labctl.opu.stationary import StationaryOPU, calibrate
from sim_backends.instruments.labctl_occ import Drive
from sim_backends.physics.constants import C, H

AMPLIFIED_CENTER = SYSTEM_BENCH_PATH.with_name("ring_core_amplified.yaml")
AMPLIFIED_EDGE = SYSTEM_BENCH_PATH.with_name("edge_metro_amplified.yaml")
EDGE = SYSTEM_BENCH_PATH.with_name("edge_metro.yaml")
DRIVE = Drive(symbol_rate_hz=0.25e9, dac_amplitude_v=0.9, gap_slots=0, bias_v=(0.0,) * 16, rin_band_hz=2e8,
              dac_noise_referral=1.0)
#: core 1's link at 50 km: DCF matched (2.04 + 48 x 17 / 100 km), pre-amplifier gain = the link's loss
DCF_50_KM = 2.04 + 48 * 17 / 100
REACH_50_KM = {"edge_fibre1.length_km": 50.0, "dcf1.length_km": DCF_50_KM,
               "preamp1.gain_db": 60 * 0.2 + DCF_50_KM * 0.5}


def test_the_ase_an_edge_launches_is_its_amplifiers():
    """The edge's ASE at the center's input port is the EDFA's 2 S_sp B over its 4.4 THz emission band in 16
    slices, S_sp = (NF G - 1) h nu / 2 at its saturated gain G (the amplified over the unamplified edge's light),
    through the DCF after it (2.04 km at 0.5 dB/km); an edge without an amplifier launches none."""
    codes = np.zeros((1, 2, 16))
    with EdgeTransmitter(AMPLIFIED_EDGE) as amplified, EdgeTransmitter(EDGE) as plain:
        _, idle_amp, ase = amplified.launch(codes, DRIVE)
        _, idle_plain, none = plain.launch(codes, DRIVE)
    assert none.shape == (0, 2) and ase.shape == (16, 2) and ase.dtype == np.float64
    gain = idle_amp.astype(float) / idle_plain.astype(float)
    np.testing.assert_allclose(gain, gain.mean(), rtol=1e-5)  # one gain for all channels (shared saturation)
    g = float(gain.mean())
    assert 1.0 < g < 10 ** 0.342  # compressed below its small-signal 3.42 dB by the 16 channels' power
    nu = C / ase[:, 0]
    assert np.ptp(nu) == pytest.approx(4.4e12 * 15 / 16, rel=1e-6)  # slice centres across the C band
    expected = (10 ** 0.5 * g - 1) * H * nu * (4.4e12 / 16) * 10 ** (-0.5 * 2.04 / 10)
    np.testing.assert_allclose(ase[:, 1], expected, rtol=1e-4)  # float32 light: the gain is known to ~1e-6


@pytest.fixture(scope="module")
def center_at_50_km():
    """The amplified center with core 1's link at 50 km, calibrated with its own amplified chain."""
    with labctl.open_bench(AMPLIFIED_CENTER, mode="sim", seed=1, changes=REACH_50_KM) as bench:
        delay = (60 * 1.4682 + DCF_50_KM * 1.47) * 1e3 / C
        cal = calibrate(StationaryOPU(bench, core=0), max_delay_s=1.25 * delay + 50e-6).opu.calibration
        opu = StationaryOPU(bench, cal, core=0)
        yield opu, bench.sim.world.nodes[opu.name]


def test_an_amplified_edge_at_50_km_gives_the_centers_own_amplified_chain(center_at_50_km):
    """Same operands through the center's own amplified chain and through an edge with the same link and
    amplifier: bias and bits agree within the noise of the estimates and the received power is the same. The
    ASE's background matters: the same edge with its ASE dropped is biased by many standard errors."""
    opu, controller = center_at_50_km
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (64, 64)), rng.uniform(-1, 1, (64, 64))
    own = error_stats(opu.matmul(a, b), a @ b)
    with EdgeTransmitter(AMPLIFIED_EDGE, seed=7, changes=REACH_50_KM) as edge:
        try:
            controller.set_light_source(edge.launch)
            edge_stats = error_stats(opu.matmul(a, b), a @ b)
            ratio, background = controller.last_edge_power_ratio, controller.last_edge_background_w
            controller.set_light_source(lambda codes, drive: (*edge.launch(codes, drive)[:2], np.zeros((0, 2))))
            dropped = error_stats(opu.matmul(a, b), a @ b)
        finally:
            controller.set_light_source(None)
    n = own.n
    standard_error = math.sqrt(2) * own.sigma / math.sqrt(n)  # of a difference of two means of n errors
    assert ratio == pytest.approx(1.0, abs=1e-3)
    assert np.all(background > 0)
    assert abs(edge_stats.bias - own.bias) < 5 * standard_error
    assert abs(edge_stats.bits_range - own.bits_range) < 5 * math.sqrt(2) * math.log2(math.e) / math.sqrt(2 * n)
    assert abs(dropped.bias - own.bias) > 5 * standard_error


@pytest.mark.parametrize("ase, match", [(np.array([[1550e-9, -1e-6]]), ">= 0"),
                                        (np.array([[1550e-9, np.nan]]), ">= 0"),
                                        (np.array([[15e-6, 1e-6]]), "outside"),
                                        (np.array([[1550e-9, 100.0]]), "above"),
                                        (np.zeros((2, 3)), "shape")])
def test_the_center_refuses_ase_that_is_not_light(center_at_50_km, ase, match):
    """A light source's ASE that is negative, NaN, outside the optical band, beyond what an amplifier emits, or
    not (wavelength, power) pairs fails the program with a SCPI error; the next program runs."""
    opu, controller = center_at_50_km
    with EdgeTransmitter(AMPLIFIED_EDGE, seed=7, changes=REACH_50_KM) as edge:
        try:
            controller.set_light_source(lambda codes, drive: (*edge.launch(codes, drive)[:2], ase))
            with pytest.raises(LabctlError, match=match):
                opu.matmul(np.ones((2, 16)), np.ones((16, 3)))
        finally:
            controller.set_light_source(None)
    assert opu.matmul(np.ones((2, 16)), np.ones((16, 3))).shape == (2, 3)
