"""The waveform chain's fast paths keep its physics: one summed white-noise draw, ASE-ASE drawn as a spectrum,
nothing drawn for terms of zero power, single-precision records, a real field's spectrum by rFFT, cached
transfer functions that follow a span changed in place."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backends.physics.converters import ADC, DAC
from sim_backends.physics.fibre import FibreSpan
from sim_backends.physics.receiver import Receiver, white_spectrum

ASE = dict(ase_psd=1e-16, optical_bw=12.5e9)  # an EDFA's S_sp at ~30 dB gain (NF 5 dB), 12.5 GHz optical filter


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_detect_with_ase_has_the_closed_form_total_variance(dtype):
    # shot + thermal + RIN + signal-ASE drawn as one white term, ASE-ASE as its triangular spectrum
    # a quiet TIA and a weak signal after a high-gain pre-amplifier: both ASE beats matter
    rx = Receiver(responsivity=0.8, dark_current=5e-9, bandwidth_hz=5e9, rin_db_per_hz=-135.0,
                  tia_gain_ohm=1e3, input_noise_a_per_rthz=2e-12)
    p = 2e-6
    current = rx.detect(np.full(2**17, p, dtype=dtype), 40e9, np.random.default_rng(4), **ASE)
    assert current.dtype == dtype
    variances = rx.noise_variances(p, **ASE)
    assert variances["ase_ase"] > 0.2 * variances["total"] and variances["signal_ase"] > 0.2 * variances["total"]
    assert np.var(current) == pytest.approx(float(variances["total"]), rel=0.03)
    assert np.mean(current) == pytest.approx(0.8 * p + 5e-9, abs=5 * np.sqrt(variances["total"] / 2**15))


def test_terms_of_zero_power_draw_nothing():
    rx = Receiver(bandwidth_hz=5e9)  # no RIN, no amplifier
    n, fs = 4096, 20e9
    rng, reference = np.random.default_rng(1), np.random.default_rng(1)
    rx.detect(np.full(n, 1e-3, dtype=np.float32), fs, rng)
    reference.standard_normal(n, dtype=np.float32)  # the one draw: shot and thermal together
    assert rng.bit_generator.state == reference.bit_generator.state
    samples = rx.noise_samples(np.full(n, 1e-3), fs, np.random.default_rng(2))
    for name in ("rin", "signal_ase", "ase_ase"):
        assert not samples[name].any(), name
    assert samples["shot"].any() and samples["thermal"].any()


@pytest.mark.parametrize("n", [2**14, 2**14 + 1])
def test_white_spectrum_is_unit_white_noise(n):
    x = np.fft.irfft(white_spectrum((8, n), np.random.default_rng(3), single=False), n=n, axis=-1)
    assert np.var(x) == pytest.approx(1.0, rel=0.02)
    assert abs(np.mean(x)) < 5 / np.sqrt(x.size)
    lag1 = np.mean(x[:, 1:] * x[:, :-1])
    assert abs(lag1) < 5 / np.sqrt(x.size)


def test_single_precision_records_agree_with_double():
    rng = np.random.default_rng(5)
    power = rng.uniform(0, 2e-3, 2**14)
    rx = Receiver(bandwidth_hz=10e9)
    single = rx.detect(power.astype(np.float32), 40e9, None, noise=False)
    double = rx.detect(power, 40e9, None, noise=False)
    assert single.dtype == np.float32 and double.dtype == np.float64
    assert np.abs(single - double).max() < 1e-6 * np.abs(double).max()
    # converters of <= 16 bits quantise float32 records to the same levels (a code may differ only where
    # rounding puts a value on the other side of a decision threshold, by one step)
    adc = ADC(bits=10, enob=None, sample_rate=40e9, bandwidth_hz=None)
    v = rng.uniform(-0.6, 0.6, 2**14)
    a32, a64 = adc.sample(v.astype(np.float32), None), adc.sample(v, None)
    assert a32.dtype == np.float32
    differ = a32 != a64.astype(np.float32)
    assert differ.mean() < 1e-3 and np.abs(a32.astype(float) - a64).max() <= adc.lsb_v * 1.0001
    assert np.allclose(a64, adc.levels(adc.codes(v)), rtol=0, atol=1e-12)
    dac = DAC(bits=8, enob=None)
    levels = dac.convert(v, None, analog=False)
    assert levels.dtype == np.float32
    assert np.allclose(levels, dac.levels(dac.codes(v)), rtol=0, atol=1e-7)


@pytest.mark.parametrize("n", [1024, 1023])
def test_a_real_field_crosses_the_span_as_by_the_full_fft(n):
    span = FibreSpan(25.0)
    fs = 64e9
    field = np.sqrt(np.random.default_rng(6).uniform(0, 1e-3, n))
    expected = np.fft.ifft(np.fft.fft(field) * span.transfer_function(np.fft.fftfreq(n, 1 / fs)))
    scale = np.abs(expected).max()
    for stored in (field, field + 0j):
        assert np.abs(span.propagate(stored, fs) - expected).max() < 1e-12 * scale
    for stored in (field.astype(np.float32), (field + 0j).astype(np.complex64)):
        out = span.propagate(stored, fs)
        assert out.dtype == np.complex64
        assert np.abs(out - expected).max() < 1e-5 * scale


def test_a_span_changed_in_place_is_not_served_its_old_transfer_function():
    span = FibreSpan(20.0)
    field = np.full(256, np.sqrt(1e-3), dtype=complex)
    first = span.propagate(field, 100e9)
    span.attenuation_db_per_km = 0.5
    second = span.propagate(field, 100e9)
    assert np.mean(np.abs(first) ** 2) == pytest.approx(1e-3 * 10 ** (-0.2 * 20 / 10), rel=1e-12)
    assert np.mean(np.abs(second) ** 2) == pytest.approx(1e-3 * 10 ** (-0.5 * 20 / 10), rel=1e-12)
