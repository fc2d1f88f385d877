"""Filters against closed forms: -3 dB points, Butterworth magnitude, ENBW, white-noise variance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from sim_backends.physics import filters as F

ALL = [(k, n) for k in F.KINDS for n in (1, 2, 3, 4, 6, 8)]


@pytest.mark.parametrize("kind,order", ALL)
def test_minus_3db_at_f3db_and_unity_at_dc(kind, order):
    fc = 7.3e9
    h = F.response([0.0, fc, -fc], fc, kind, order)
    assert abs(h[0] - 1) < 1e-12
    assert np.abs(h[1:]) ** 2 == pytest.approx([0.5, 0.5], abs=1e-12)
    assert h[2] == pytest.approx(np.conj(h[1]), abs=1e-12)  # real impulse response


@pytest.mark.parametrize("order", [1, 2, 3, 5, 8])
def test_butterworth_magnitude(order):
    fc = 1e9
    f = np.linspace(0, 20e9, 2001)
    expected = 1 / (1 + (f / fc) ** (2 * order))
    assert np.abs(F.response(f, fc, "butterworth", order)) ** 2 == pytest.approx(expected, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("order", [2, 4, 6])
def test_bessel_matches_scipy_transfer_polynomial(order):
    fc = 3e9
    b, a = signal.bessel(order, 2 * np.pi * fc, analog=True, norm="mag")
    f = np.linspace(0, 30e9, 301)
    _, h = signal.freqs(b, a, worN=2 * np.pi * f)
    assert F.response(f, fc, "bessel", order) == pytest.approx(h, rel=1e-9, abs=1e-12)


def test_gaussian_closed_form():
    f = np.linspace(-50e9, 50e9, 1001)
    assert F.response(f, 10e9, "gaussian") == pytest.approx(np.exp(-np.log(2) / 2 * (f / 10e9) ** 2), rel=1e-12)


@pytest.mark.parametrize("kind,order", [("butterworth", 1), ("butterworth", 4), ("bessel", 4), ("gaussian", 1)])
def test_sine_at_f3db_comes_out_at_minus_3db(kind, order):
    fs, n = 64e9, 4096
    k = 320  # f3db on an exact FFT bin
    fc = k * fs / n
    t = np.arange(n) / fs
    y = F.lowpass(np.cos(2 * np.pi * fc * t), fs, fc, kind, order)
    assert y.dtype == np.float64
    assert np.sqrt(2 * np.mean(y ** 2)) == pytest.approx(2 ** -0.5, rel=1e-9)
    # complex input uses the two-sided spectrum: a tone at -fc is attenuated the same way
    z = F.lowpass(np.exp(-2j * np.pi * fc * t), fs, fc, kind, order)
    assert np.mean(np.abs(z) ** 2) == pytest.approx(0.5, rel=1e-9)
    # single precision stays single precision
    assert F.lowpass(np.cos(2 * np.pi * fc * t).astype(np.float32), fs, fc, kind, order).dtype == np.float32


def test_enbw_closed_forms():
    fc = 2e9
    assert F.noise_bandwidth(fc, "butterworth", 1) == pytest.approx(np.pi / 2 * fc, rel=1e-12)  # RC
    for n in (2, 3, 4, 8):
        expected = fc * (np.pi / (2 * n)) / np.sin(np.pi / (2 * n))
        assert F.noise_bandwidth(fc, "butterworth", n) == pytest.approx(expected, rel=1e-12)
        # the numerical path (finite f_max) agrees with the closed form once the tail is negligible
        assert F.noise_bandwidth(fc, "butterworth", n, f_max_hz=1e4 * fc) == pytest.approx(expected, rel=1e-6)
    assert F.noise_bandwidth(fc, "gaussian", 1) == pytest.approx(fc * np.sqrt(np.pi / (4 * np.log(2))), rel=1e-12)
    # truncated RC: fc * arctan(fmax / fc)
    assert F.noise_bandwidth(fc, "butterworth", 1, f_max_hz=5 * fc) == pytest.approx(fc * np.arctan(5), rel=1e-12)
    # Bessel: numerical integral; the first-order Bessel is the RC
    assert F.noise_bandwidth(fc, "bessel", 1) == pytest.approx(np.pi / 2 * fc, rel=1e-8)


@pytest.mark.parametrize("kind,order", [("butterworth", 1), ("butterworth", 4), ("bessel", 4), ("gaussian", 1)])
def test_white_noise_variance_is_n0_times_enbw(kind, order):
    rng = np.random.default_rng(7)
    fs, n, n0 = 100e9, 2 ** 20, 1e-20  # N0: one-sided PSD, per-sample variance N0 fs / 2
    fc = fs / 40
    x = rng.standard_normal(n) * np.sqrt(n0 * fs / 2)
    y = F.lowpass(x, fs, fc, kind, order)
    expected = n0 * F.noise_bandwidth(fc, kind, order, f_max_hz=fs / 2)  # the record holds f <= fs/2
    assert np.var(y) == pytest.approx(expected, rel=0.03)
    if kind != "butterworth" or order != 1:  # steep filters: the Nyquist truncation is negligible
        assert np.var(y) == pytest.approx(n0 * F.noise_bandwidth(fc, kind, order), rel=0.03)


def test_cascade_multiplies_responses():
    fc = 10e9
    rc = F.LowPass(fc, "butterworth", 1)
    # two identical RC stages: -3 dB at fc sqrt(sqrt(2) - 1), ENBW int dx/(1+x^2)^2 = pi/4 fc
    assert F.cascade_f3db([rc, rc]) == pytest.approx(fc * np.sqrt(np.sqrt(2) - 1), rel=1e-10)
    assert F.cascade_noise_bandwidth([rc, rc]) == pytest.approx(np.pi / 4 * fc, rel=1e-8)
    chain = [F.LowPass(25e9, "butterworth", 2), (30e9, "gaussian", 1),
             {"f3db_hz": 5e9, "kind": "bessel", "order": 4}]
    f = np.linspace(-40e9, 40e9, 81)
    expected = (F.response(f, 25e9, "butterworth", 2) * F.response(f, 30e9, "gaussian")
                * F.response(f, 5e9, "bessel", 4))
    assert F.cascade_response(f, chain) == pytest.approx(expected, rel=1e-12)
    # one FFT with the product == filtering stage by stage
    x = np.random.default_rng(1).standard_normal((3, 1024))
    staged = F.lowpass(F.lowpass(F.lowpass(x, 100e9, 25e9, "butterworth", 2), 100e9, 30e9, "gaussian"),
                       100e9, 5e9, "bessel", 4)
    assert F.cascade_lowpass(x, 100e9, chain) == pytest.approx(staged, abs=1e-12)


@pytest.mark.parametrize("kind,order,tau_norm", [("butterworth", 1, 1.0), ("butterworth", 2, np.sqrt(2)),
                                                 ("bessel", 1, 1.0)])
def test_pulse_centroid_moves_by_dc_group_delay(kind, order, tau_norm):
    # for H(0) = 1 the time centroid of the output is the input's plus the DC group delay,
    # which for these prototypes is tau_norm / (2 pi fc) (RC: RC; Butterworth-2: sqrt(2)/wc)
    fs, n, fc = 200e9, 8192, 5e9
    t = np.arange(n) / fs
    x = np.exp(-0.5 * ((t - 10e-9) / 0.5e-9) ** 2)
    centroid = lambda y: np.sum(t * y) / np.sum(y)  # noqa: E731
    y = F.lowpass(x, fs, fc, kind, order)
    assert centroid(y) - centroid(x) == pytest.approx(tau_norm / (2 * np.pi * fc), rel=1e-6)
    y0 = F.lowpass(x, fs, fc, kind, order, remove_delay=True)
    assert abs(centroid(y0) - centroid(x)) < 1e-16


def test_optical_bandpass_passes_centre_and_attenuates_edges():
    fs, n = 200e9, 2000
    t = np.arange(n) / fs
    f0, bw = 20e9, 30e9  # tones on exact bins (df = 100 MHz)
    tones = np.exp(2j * np.pi * np.array([[f0], [f0 + bw / 2], [f0 - bw / 2], [-f0]]) * t)
    x = 2 * f0 / (bw / 2)  # the tone at -f0 is 2 f0 from the centre
    far = {"rect": 0.0, "gaussian": np.exp(-np.log(2) * x ** 2), "butterworth": 1 / (1 + x ** 2)}
    for shape, p_far in far.items():
        y = F.optical_bandpass(tones, fs, f0, bw, shape)
        p = np.mean(np.abs(y) ** 2, axis=-1)
        assert p == pytest.approx([1.0, 0.5, 0.5, p_far], rel=1e-9, abs=1e-15)  # +f is above the carrier


def test_optical_bandpass_noise_power():
    rng = np.random.default_rng(3)
    fs, n, s0 = 100e9, 2 ** 18, 1e-18  # complex white noise, PSD s0 over the band fs
    e = (rng.standard_normal((4, n)) + 1j * rng.standard_normal((4, n))) * np.sqrt(s0 * fs / 2)
    for shape in ("rect", "gaussian"):
        y = F.optical_bandpass(e, fs, -10e9, 25e9, shape)
        closed = 25e9 if shape == "rect" else 25e9 * np.sqrt(np.pi / (4 * np.log(2)))
        assert F.bandpass_noise_bandwidth(25e9, shape) == pytest.approx(closed, rel=1e-12)
        assert np.mean(np.abs(y) ** 2) == pytest.approx(s0 * closed, rel=0.02)


def test_refuses_non_physical_parameters():
    with pytest.raises(ValueError, match="f3db_hz"):
        F.lowpass(np.zeros(16), 10e9, 6e9)  # above Nyquist
    with pytest.raises(ValueError, match="f3db_hz"):
        F.response(1.0, -1.0)
    with pytest.raises(ValueError, match="kind"):
        F.response(1.0, 1.0, "chebyshev")
    with pytest.raises(ValueError, match="order"):
        F.response(1.0, 1.0, "butterworth", 0)
    with pytest.raises(ValueError, match="fs"):
        F.lowpass(np.zeros(16), 0.0, 1.0)
    with pytest.raises(ValueError, match="bandwidth_hz"):
        F.optical_bandpass(np.zeros(16, complex), 10e9, 0.0, -1e9)
    with pytest.raises(ValueError, match="center_offset_hz"):
        F.optical_bandpass(np.zeros(16, complex), 10e9, 4e9, 4e9)
