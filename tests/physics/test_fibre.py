"""Fibre span against closed forms: CD power-fading nulls, walk-off, Parseval, SPM phase, soliton."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backends.physics.constants import C
from sim_backends.physics.fibre import FibreSpan

LAM = 1550e-9
D_SI = 17e-6  # 17 ps/nm/km in s/m^2


def _detected_tone_response(span, freqs_bins, n, fs, chirp_alpha=0.0, m=0.02):
    """Modulate a small sinusoidal intensity on the field, propagate, square-law detect; return the
    received/sent complex RF tone ratio for each tone (one tone per row)."""
    k = np.asarray(freqs_bins)[:, None]
    p = 1e-3 * (1 + m * np.cos(2 * np.pi * k * np.arange(n) / n))  # tone k on bin k: f = k fs / n
    field = np.sqrt(p) * np.exp(0.5j * chirp_alpha * np.log(p))  # dnu = alpha/(4 pi) dlnP/dt
    out = span.propagate(field, fs, LAM)
    sent = np.fft.fft(p, axis=-1)[np.arange(len(k)), k[:, 0]]
    got = np.fft.fft(np.abs(out) ** 2, axis=-1)[np.arange(len(k)), k[:, 0]]
    return got / sent / span.power_transmission


def _first_sign_change(f, r):
    i = np.flatnonzero(np.sign(r[:-1]) != np.sign(r[1:]))[0]
    return f[i] - r[i] * (f[i + 1] - f[i]) / (r[i + 1] - r[i])


@pytest.mark.parametrize("length_km,null_ghz", [(10, 19.2), (25, 12.1), (50, 8.6), (80, 6.8)])
def test_cd_power_fading_first_null(length_km, null_ghz):
    span = FibreSpan(length_km)  # loss on: the normalised response must not care
    fs, n = 102.4e9, 2048  # 50 MHz bins
    closed = np.sqrt(C / (2 * D_SI * length_km * 1e3 * LAM ** 2))
    assert closed / 1e9 == pytest.approx(null_ghz, rel=0.01)  # PHYSICS.md numbers
    bins = np.arange(int(0.4 * closed / (fs / n)), int(1.5 * closed / (fs / n)))
    f = bins * fs / n
    r = _detected_tone_response(span, bins, n, fs)
    theta = np.pi * D_SI * length_km * 1e3 * LAM ** 2 * f ** 2 / C
    assert np.abs(r.imag).max() < 0.01  # chirp-free: no quadrature component
    assert r.real == pytest.approx(np.cos(theta), abs=0.01)
    measured = _first_sign_change(f, r.real)
    assert measured / 1e9 == pytest.approx(null_ghz, rel=0.02)
    assert measured == pytest.approx(closed, rel=0.005)
    assert span.fading_nulls_hz(1)[0] == pytest.approx(closed, rel=1e-12)
    assert span.small_signal_response(f) == pytest.approx(np.cos(theta), abs=1e-12)


@pytest.mark.parametrize("alpha", [-1.5, 1.0])
def test_chirped_fading_follows_wang_petermann(alpha):
    # H(f) = sqrt(1 + a^2) cos(theta + arctan a); a > 0 pulls the first null below the chirp-free one
    span = FibreSpan(25)
    fs, n = 102.4e9, 2048
    bins = np.arange(1, 400)
    f = bins * fs / n
    r = _detected_tone_response(span, bins, n, fs, chirp_alpha=alpha, m=0.01)
    theta = np.pi * D_SI * 25e3 * LAM ** 2 * f ** 2 / C
    expected = np.sqrt(1 + alpha ** 2) * np.cos(theta + np.arctan(alpha))
    assert r.real == pytest.approx(expected, abs=0.03)
    assert span.small_signal_response(f, alpha) == pytest.approx(expected, abs=1e-12)
    null = np.sqrt((0.5 - np.arctan(alpha) / np.pi) * C / (D_SI * 25e3 * LAM ** 2))
    assert _first_sign_change(f, r.real) == pytest.approx(null, rel=0.01)
    assert span.fading_nulls_hz(1, alpha)[0] == pytest.approx(null, rel=1e-12)
    assert (null < span.fading_nulls_hz(1)[0]) == (alpha > 0)


@pytest.mark.parametrize("length_km,walk_ps", [(25, 340.0), (50, 680.0)])
def test_wdm_walk_off(length_km, walk_ps):
    span = FibreSpan(length_km)
    assert (span.group_delay(LAM + 0.8e-9) - span.group_delay(LAM)) * 1e12 == pytest.approx(walk_ps, rel=1e-9)
    assert span.group_delay(LAM) == pytest.approx(length_km * 1e3 * 1.4682 / C, rel=1e-12)
    # simulated: the power centroid of an unchirped pulse moves only by the group delay
    fs, n = 200e9, 4096
    t = np.arange(n) / fs
    pulse = np.exp(-0.5 * ((t - 10e-9) / 50e-12) ** 2) * 1e-2
    out = span.propagate(np.stack([pulse, pulse]), fs, [LAM, LAM + 0.8e-9])
    power = np.abs(out) ** 2
    centroid = np.sum(power * t, axis=-1) / np.sum(power, axis=-1)
    assert centroid[0] == pytest.approx(10e-9, abs=1e-15)  # reference wavelength: no shift
    assert (centroid[1] - centroid[0]) * 1e12 == pytest.approx(walk_ps, abs=0.01)
    # longer wavelength arrives later on D > 0 fibre
    assert centroid[1] > centroid[0]


def test_energy_conservation_parseval():
    rng = np.random.default_rng(2)
    field = (rng.standard_normal((3, 4096)) + 1j * rng.standard_normal((3, 4096))) * 0.01
    lossless = FibreSpan(80, attenuation_db_per_km=0.0)
    e_in = np.sum(np.abs(field) ** 2, axis=-1)
    out = lossless.propagate(field, 100e9, [1530e-9, 1550e-9, 1565e-9])
    assert np.sum(np.abs(out) ** 2, axis=-1) == pytest.approx(e_in, rel=1e-12)
    out_nl = lossless.propagate(field, 100e9, nonlinear=True, steps=50)
    assert np.sum(np.abs(out_nl) ** 2, axis=-1) == pytest.approx(e_in, rel=1e-12)
    # with loss: exp(-alpha L) = 10^(-0.2 * 80 / 10) = 16 dB
    lossy = FibreSpan(80)
    e_out = np.sum(np.abs(lossy.propagate(field, 100e9)) ** 2, axis=-1)
    assert e_out == pytest.approx(e_in * 10 ** -1.6, rel=1e-12)


def test_linear_propagation_is_exact_and_linear():
    rng = np.random.default_rng(4)
    fs, n, L = 64e9, 1024, 50e3
    x = rng.standard_normal(n) + 1j * rng.standard_normal(n)  # ~1 W: SPM would show if present
    y = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    span = FibreSpan(50)
    a, b = 0.3 - 2j, 1.7
    lin = span.propagate(a * x + b * y, fs)
    assert lin == pytest.approx(a * span.propagate(x, fs) + b * span.propagate(y, fs), abs=1e-12)
    # closed form, engineering convention: exp(-alpha L/2) exp(-j beta2 w^2 L / 2), beta2 = -D lam^2/(2 pi c)
    w = 2 * np.pi * np.fft.fftfreq(n, 1 / fs)
    beta2 = -D_SI * LAM ** 2 / (2 * np.pi * C)
    assert beta2 * 1e27 == pytest.approx(-21.7, abs=0.05)  # ps^2/km, PHYSICS.md table 2
    h = np.exp(-0.2 * np.log(10) / 10 / 1e3 * L / 2) * np.exp(-0.5j * beta2 * w ** 2 * L)
    assert lin == pytest.approx(np.fft.ifft(np.fft.fft(a * x + b * y) * h), abs=1e-12)
    # the nonlinear solver at negligible power reduces to the linear result
    weak = 1e-6 * x  # ~ -57 dBm: SPM phase ~ 1e-10 rad
    lin_weak = span.propagate(weak, fs)
    nl_weak = span.propagate(weak, fs, nonlinear=True, steps=20)
    assert nl_weak == pytest.approx(lin_weak, abs=1e-8 * np.abs(lin_weak).max())
    # while at ~1 W the same solver departs from the linear result
    assert np.abs(span.propagate(x, fs, nonlinear=True, steps=200) - lin).max() > 0.1 * np.abs(lin).max()


@pytest.mark.parametrize("length_km,leff_km", [(25, 14.8), (50, 19.5), (80, 21.2)])
def test_spm_phase_of_cw_is_gamma_p_leff(length_km, leff_km):
    span = FibreSpan(length_km)
    assert span.effective_length_m / 1e3 == pytest.approx(leff_km, abs=0.05)  # PHYSICS.md section 2
    a = 0.2 * np.log(10) / 10 / 1e3
    leff = (1 - np.exp(-a * length_km * 1e3)) / a
    p = 0.05  # 17 dBm CW
    cw = np.full((1, 64), np.sqrt(p), dtype=complex)
    out = span.propagate(cw, 10e9, nonlinear=True)
    phase = np.angle(out[0, 0])
    assert -phase == pytest.approx(1.3e-3 * p * leff, rel=1e-9)  # SPM retards the phase (module doc)
    assert np.abs(out) ** 2 == pytest.approx(p * np.exp(-a * length_km * 1e3), rel=1e-12)
    assert span.nonlinear_phase(p) == pytest.approx(1.3e-3 * p * leff, rel=1e-12)
    assert np.angle(span.propagate(cw, 10e9)[0, 0]) == pytest.approx(0.0, abs=1e-12)  # linear: no SPM


def test_fundamental_soliton_keeps_its_shape():
    # N = 1 soliton: P0 = |beta2| / (gamma T0^2) balances anomalous dispersion and SPM (Agrawal ch. 5)
    span = FibreSpan(25, attenuation_db_per_km=0.0)
    beta2 = abs(span.beta2())
    t0 = 10e-12
    p0 = beta2 / (1.3e-3 * t0 ** 2)
    ld = t0 ** 2 / beta2
    assert span.length_m / ld > 5  # several dispersion lengths
    fs, n = 1.6e12, 2048
    t = (np.arange(n) - n / 2) / fs
    a0 = np.sqrt(p0) / np.cosh(t / t0)
    out = span.propagate(a0, fs, nonlinear=True)
    assert np.abs(out) == pytest.approx(np.abs(a0), abs=1e-4 * np.sqrt(p0))
    dispersed = span.propagate(a0, fs)  # without SPM the same pulse spreads
    assert np.abs(dispersed).max() < 0.6 * np.sqrt(p0)


def test_refuses_non_physical_parameters():
    with pytest.raises(ValueError, match="attenuation_db_per_km"):
        FibreSpan(10, attenuation_db_per_km=-0.1)
    with pytest.raises(ValueError, match="length_km"):
        FibreSpan(-1)
    with pytest.raises(ValueError, match="group_index"):
        FibreSpan(1, group_index=0.5)
    with pytest.raises(ValueError, match="gamma_per_w_km"):
        FibreSpan(1, gamma_per_w_km=-1)
    with pytest.raises(ValueError, match="wavelength_m"):
        FibreSpan(1).propagate(np.ones(8), 1e9, wavelength_m=1550.0)
    with pytest.raises(ValueError, match="fs"):
        FibreSpan(1).propagate(np.ones(8), 0.0)
