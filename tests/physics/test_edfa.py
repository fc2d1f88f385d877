"""EDFA against closed forms: ASE power 2 n_sp (G-1) h nu B_o, gain, saturation, NF from SNR degradation."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backends.physics.constants import C, H
from sim_backends.physics.edfa import EDFA
from sim_backends.physics.filters import LowPass

LAM = 1550e-9
HNU = H * C / LAM


def _s_sp(g, nf):
    """Per-polarisation ASE PSD n_sp (G - 1) h nu with n_sp = NF G / (2 (G - 1)) (PHYSICS.md)."""
    return nf * g / (2 * (g - 1)) * (g - 1) * HNU


def _cw(p, rows, n):
    return np.full((rows, n), np.sqrt(p), dtype=complex)


@pytest.mark.parametrize("shape,noise_bw_factor", [("rect", 1.0), ("gaussian", np.sqrt(np.pi / (4 * np.log(2))))])
def test_total_ase_power_in_optical_bandwidth(shape, noise_bw_factor):
    g_db, nf_db, b_o = 20.0, 5.0, 50e9
    amp = EDFA(g_db, nf_db, optical_bandwidth_hz=b_o, filter_shape=shape)
    fs, n, rows = 200e9, 2 ** 16, 8
    e_in = _cw(1e-5, rows, n)  # -20 dBm in, 0 dBm out: 1 % below G0 at P_sat = +20 dBm
    g = amp.gain(1e-5)
    assert g == pytest.approx(10 ** (g_db / 10), rel=0.015)
    co, ortho = amp.amplify_dual_pol(e_in, fs, LAM, np.random.default_rng(11), input_power_w=1e-5)
    ase_co = co - np.sqrt(g) * e_in  # the filter passes the CW carrier unchanged
    p_ase = np.mean(np.abs(ase_co) ** 2) + np.mean(np.abs(ortho) ** 2)
    nf = 10 ** (nf_db / 10)
    closed = 2 * _s_sp(g, nf) * b_o * noise_bw_factor  # both polarisations
    assert p_ase == pytest.approx(closed, rel=0.03)
    # exact signal-spontaneous relation n_sp (G - 1) = (NF G - 1) / 2 (module doc)
    assert p_ase == pytest.approx((nf * g - 1) * HNU * b_o * noise_bw_factor, rel=0.01)
    assert np.mean(np.abs(ase_co) ** 2) == pytest.approx(np.mean(np.abs(ortho) ** 2), rel=0.03)
    assert amp.ase_power_w(amp.noise_bandwidth_hz(fs), gain=g) == pytest.approx(closed, rel=0.01)
    # the co-polarised ASE is white inside a rect pass band: two-sided envelope PSD = S_sp
    if shape == "rect":
        psd = np.mean(np.abs(np.fft.fft(ase_co, axis=-1)) ** 2, axis=0) / (n * fs)
        inband = np.abs(np.fft.fftfreq(n, 1 / fs)) < 0.45 * b_o
        assert np.mean(psd[inband]) == pytest.approx(_s_sp(g, nf), rel=0.03)
        assert np.mean(psd[np.abs(np.fft.fftfreq(n, 1 / fs)) > 0.55 * b_o]) < 1e-12 * _s_sp(g, nf)


def test_unfiltered_ase_fills_the_simulated_band():
    amp = EDFA(25.0, 4.5)
    fs = 80e9
    _, ortho = amp.amplify_dual_pol(np.zeros((4, 2 ** 16), complex), fs, LAM, np.random.default_rng(5))
    g = 10 ** 2.5
    assert np.mean(np.abs(ortho) ** 2) == pytest.approx(_s_sp(g, 10 ** 0.45) * fs, rel=0.02)


def test_ase_scales_with_photon_energy_per_channel():
    amp = EDFA(20.0, 5.0)
    lams = np.array([1530e-9, 1565e-9])
    out = amp.amplify(np.zeros((2, 2 ** 20), complex), 50e9, lams, np.random.default_rng(9))
    p = np.mean(np.abs(out) ** 2, axis=-1)
    assert p[0] / p[1] == pytest.approx(1565 / 1530, rel=0.006)  # S_sp proportional to h nu


def test_signal_gain():
    amp = EDFA(gain_db=17.0, noise_figure_db=5.5, saturation_output_dbm=23.0)
    rng = np.random.default_rng(3)
    e_in = (rng.standard_normal((2, 4096)) + 1j * rng.standard_normal((2, 4096))) * 1e-3
    clean = amp.amplify(e_in, 50e9, LAM, rng, add_noise=False, input_power_w=0.0)
    assert clean == pytest.approx(10 ** (17 / 20) * e_in, rel=1e-12)
    noisy = amp.amplify(e_in, 50e9, LAM, rng, input_power_w=0.0)
    measured = np.vdot(e_in, noisy) / np.vdot(e_in, e_in)  # the ASE is uncorrelated with the input
    assert measured.real == pytest.approx(10 ** (17 / 20), rel=0.01)
    assert abs(measured.imag) < 0.01 * 10 ** (17 / 20)


def test_compression_saturation_model():
    amp = EDFA(gain_db=20.0, saturation_output_dbm=20.0)
    g0, p_sat = 100.0, 0.1
    # 3 dB compression exactly when the output reaches P_sat: P_in = 2 P_sat / G0
    p_in = 2 * p_sat / g0
    assert amp.gain(p_in) == pytest.approx(g0 / 2, rel=1e-12)
    out = amp.amplify(_cw(p_in, 1, 256), 10e9, LAM, None, add_noise=False)
    assert np.mean(np.abs(out) ** 2) == pytest.approx(p_sat, rel=1e-12)
    # self-consistency G = G0 / (1 + G P_in / P_sat), monotone compression
    p = np.logspace(-7, 0, 30)
    g = amp.gain(p)
    assert g == pytest.approx(g0 / (1 + g * p / p_sat), rel=1e-12)
    assert np.all(np.diff(g) < 0)
    assert amp.gain(1e-9) == pytest.approx(g0, rel=1e-6)  # small-signal limit
    # WDM channels share the gain: two channels of P_in / 2 saturate like one of P_in
    two = amp.amplify(_cw(p_in / 2, 2, 256), 10e9, [1549e-9, 1551e-9], None, add_noise=False)
    assert np.sum(np.mean(np.abs(two) ** 2, axis=-1)) == pytest.approx(p_sat, rel=1e-12)


def test_clamp_saturation_model():
    amp = EDFA(gain_db=30.0, saturation_output_dbm=17.0, saturation_model="clamp")
    p_sat = 10 ** 1.7 * 1e-3
    assert amp.gain(1e-8) == pytest.approx(1000.0)
    for p_in in (1e-4, 1e-3, 1e-2):  # G0 P_in above P_sat: output pinned at P_sat
        out = amp.amplify(_cw(p_in, 1, 64), 10e9, LAM, None, add_noise=False)
        assert np.mean(np.abs(out) ** 2) == pytest.approx(p_sat, rel=1e-12)


def test_noise_figure_recovered_from_snr_degradation():
    """NF = SNR_in / SNR_out for a shot-noise-limited input (IEC 61290-3 signal-spontaneous NF).

    Ideal detector (eta = 1) in photon-power units: shot variance 2 h nu P B_e. The field model carries
    the classical ASE; the shot noise of the detected light is added from its closed form.
    """
    g_db, nf_db = 20.0, 5.0
    amp = EDFA(g_db, nf_db)
    fs, n, rows, p_in = 100e9, 2 ** 18, 4, 1e-5
    co, ortho = amp.amplify_dual_pol(_cw(p_in, rows, n), fs, LAM, np.random.default_rng(21))
    rx = LowPass(10e9, "bessel", 4)
    detected = rx.apply(np.abs(co) ** 2 + np.abs(ortho) ** 2, fs)
    b_e = rx.noise_bandwidth(f_max_hz=fs / 2)
    g = amp.gain(p_in * rows)
    p_out = g * p_in
    excess = np.var(detected, axis=-1).mean()  # signal-ASE (+ tiny ASE-ASE) beat
    assert excess == pytest.approx(4 * p_out * _s_sp(g, 10 ** 0.5) * b_e, rel=0.03)  # PHYSICS.md sig-ASE beat
    snr_in = p_in / (2 * HNU * b_e)
    snr_out = p_out ** 2 / (2 * HNU * p_out * b_e + excess)
    assert 10 * np.log10(snr_in / snr_out) == pytest.approx(nf_db, abs=0.1)


def test_same_generator_state_gives_same_co_polarised_field():
    amp = EDFA()
    e = _cw(1e-4, 2, 512).astype(np.complex64)
    a = amp.amplify(e, 50e9, LAM, np.random.default_rng(1))
    b, ortho = amp.amplify_dual_pol(e, 50e9, LAM, np.random.default_rng(1))
    c = amp.amplify(e, 50e9, LAM, np.random.default_rng(2))
    assert a.dtype == np.complex64 and ortho.dtype == np.complex64
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_refuses_non_physical_parameters():
    with pytest.raises(ValueError, match="noise_figure_db"):
        EDFA(noise_figure_db=2.9)  # below the 3 dB quantum limit
    with pytest.raises(ValueError, match="noise_figure_db"):
        EDFA(gain_db=30.0, noise_figure_db=3.0)  # n_sp < 1: needs NF >= 2 - 1/G = 3.008 dB
    with pytest.raises(ValueError, match="gain_db"):
        EDFA(gain_db=-3.0)
    with pytest.raises(ValueError, match="saturation_model"):
        EDFA(saturation_model="soft")
    with pytest.raises(ValueError, match="filter_shape"):
        EDFA(filter_shape="triangle")
    amp = EDFA(optical_bandwidth_hz=100e9)
    with pytest.raises(ValueError, match="fs"):
        amp.amplify(np.ones(64, complex), 50e9, LAM, np.random.default_rng(0))  # fs < B_o
    with pytest.raises(ValueError, match="rng"):
        EDFA().amplify(np.ones(64, complex), 50e9, LAM, 0)
    with pytest.raises(ValueError, match="wavelength_m"):
        EDFA().amplify(np.ones(64, complex), 50e9, 1550.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="input_power_w"):
        EDFA().gain(-1e-3)
