"""The simulated chain's value at an instant does not depend on the grid the detector samples on.

A PAM-4 stream at 5.12 GBd (12 DAC samples per symbol at 61.44 GSa/s) runs AWG (25 GHz response) ->
driver amplifier -> MZM (10 GHz first-order EO response) -> 2 km SSMF -> photodiode (20 GHz). The
photocurrent at the symbol centres, requested on grids of 1, 2 and 4 samples per symbol, must agree with
the same instants taken from a 48 samples-per-symbol record (every part then evaluates on a different,
finer grid) to < 0.5 % rms. Before the signal-grid rule the figures were 22 / 14 / 3 % (the AWG
staircase aliased into the EO response, walk-off applied on a coarse field grid).

Receiver noise at the symbol centres has the closed-form variance N0 B_noise (B_noise = the receiver's
noise bandwidth, pi/(2n sin(pi/2n)) B for an n-th order Butterworth) on coarse and on fine grids.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.keysight.m8195a import KeysightM8195A
from sim_backends.physics.constants import K_B, Q
from sim_backends.world import OPTICAL_OUT, Component, Lightwave

AWG_RES = "TCPIP0::awg.labsim::hislip0::INSTR"
F_DAC = 61.44e9
SPS_DAC = 12
T_SYM = SPS_DAC / F_DAC
N_SYM = 640
LAMBDA = 1550e-9


class CW(Component):
    """A noiseless CW carrier of 1 mW."""

    PORTS = {"out": OPTICAL_OUT}

    def optical_output(self, port, t):
        return [Lightwave(LAMBDA, np.full(np.shape(t), math.sqrt(1e-3), dtype=np.complex64))]


def pam_chain(sim_bench, open_sim, noise: bool, seed: int = 5):
    components = {
        # noise bandwidth 1 Hz: the amplifier's thermal noise is negligible (deterministic chain)
        "amp": {"type": "rf_amplifier", "gain_db": 20.0, "saturated_output_vpp": 8.0,
                "noise_bandwidth_hz": 1e9 if noise else 1.0},
        "mzm": {"type": "mzm", "v_pi": 5.0, "v_pi_rf": 5.5, "phase_offset_v": -2.5, "insertion_loss_db": 4.0,  # quadrature
                "eo_bandwidth_hz": 10e9, "eo_response": "butterworth", "eo_order": 1},
        "fibre": {"type": "fibre", "length_km": 2.0},
        "pd": {"type": "photodiode", "responsivity_a_per_w": 0.9, "dark_current_a": 5e-9, "bandwidth_hz": 20e9,
               "response": "butterworth", "response_order": 2, "load_ohm": 50.0},
        "probe": {"type": "heater", "resistance_ohm": 50.0},
    }
    lib = sim_bench({"awg": {"driver": "keysight.M8195A", "resource": AWG_RES,
                             "sim": {"params": {"enob_bits": 5.5 if noise else 8.0, "analog_bandwidth_hz": 25e9}}}},
                    components=components,
                    connections=["awg.ch1 -> amp.in", "amp.out -> mzm.rf", "mzm.out -> fibre.in",
                                 "fibre.out -> pd.in", "pd.out -> probe.in"], seed=seed)
    world = lib.world
    world.add("cw", CW())
    world.connect("cw.out", "mzm.in")
    pd = world.nodes["pd"]
    if not noise:
        pd.noise_psd = lambda p: 0.0 * np.asarray(p)
    awg = open_sim(KeysightM8195A, lib, AWG_RES)
    awg.sample_rate = F_DAC
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 4, N_SYM) / 3.0 * 2 - 1  # PAM-4 in [-1, 1]
    ch = awg.channels[1]
    ch.upload_waveform(0.9 * np.repeat(levels, SPS_DAC))
    ch.amplitude, ch.output_enabled = 0.5, True  # +-0.25 V -> +-2.5 V after 20 dB: about V_pi,rf / 2
    awg.run()
    sim_awg = world.nodes["awg"]
    delay = world.nodes["fibre"].delay_s
    return world, sim_awg.t_start + delay, pd


def centre_times(origin: float, sps: int, first: int = 64, count: int = 512) -> np.ndarray:
    """A grid of ``sps`` samples per symbol whose every sps-th sample is a symbol centre."""
    n = np.arange(count * sps)
    return origin + (first + 0.5) * T_SYM + n * (T_SYM / sps)


def test_symbol_centre_power_does_not_depend_on_the_sampling_grid(sim_bench, open_sim):
    world, origin, _ = pam_chain(sim_bench, open_sim, noise=False)
    ref_sps = 48
    ref = world.voltage_into("probe", "in", centre_times(origin, ref_sps))[::ref_sps]
    assert np.std(ref) > 0.2 * np.mean(ref)  # a real PAM-4 eye, not a flat line
    errors = {}
    for sps in (1, 2, 4):
        v = world.voltage_into("probe", "in", centre_times(origin, sps))[::sps]
        errors[sps] = float(np.sqrt(np.mean((v - ref) ** 2)) / np.std(ref))
    print("rms difference vs 48 samples/symbol, relative to the signal's rms swing:",
          {k: f"{100 * e:.3f} %" for k, e in errors.items()})
    for sps, err in errors.items():
        assert err < 5e-3, f"{sps} samples/symbol differ by {100 * err:.2f} % rms"


def n0(power, responsivity=0.9, dark=5e-9, load=50.0, temperature=295.0):
    """One-sided current-noise PSD, A^2/Hz: shot 2 q I + thermal 4 k T / R_L."""
    return 2 * Q * (responsivity * power + dark) + 4 * K_B * temperature / load


@pytest.mark.parametrize("sps", [1, 2, 16])
def test_receiver_noise_at_symbol_centres_has_the_full_band_variance(sim_bench, open_sim, sps):
    world, origin, pd = pam_chain(sim_bench, open_sim, noise=False, seed=7)
    pd.noise_psd = type(pd).noise_psd.__get__(pd)  # receiver noise back on (the rest stays noiseless)
    t = centre_times(origin, sps, first=0, count=N_SYM * 4)  # 4 pattern repetitions
    current = world.voltage_into("probe", "in", t)[::sps] / 50.0
    clean = pam_signal = None
    pd.noise_psd = lambda p: 0.0 * np.asarray(p)
    clean = world.voltage_into("probe", "in", t)[::sps] / 50.0
    noise = current - clean
    power = (clean - 5e-9) / 0.9
    b_noise = 20e9 * (np.pi / 4) / math.sin(np.pi / 4)  # 2nd-order Butterworth noise bandwidth
    expected = np.mean(n0(power)) * b_noise
    del pam_signal
    # 2560 nearly independent samples (symbol spacing 195 ps >> 1 / B): 5 sigma = 14 %; 3 % for the estimate
    assert np.var(noise) == pytest.approx(expected, rel=0.1)
