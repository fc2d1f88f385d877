"""DAC/ADC models against closed forms: ideal quantiser ENOB, configured ENOB, jitter SNR, clipping, filters."""

import numpy as np
import pytest

from sim_backends.physics.converters import (
    ADC,
    DAC,
    lowpass_response,
    noise_bandwidth,
    sine_fit,
    sine_fit_enob,
)

N = 2**14
CYCLES = 1021  # prime: coherent sampling visits every quantiser phase


def coherent_sine(fs, amplitude, cycles=CYCLES, n=N, phase=0.3, offset=0.0):
    f = cycles * fs / n
    t = np.arange(n) / fs
    return f, amplitude * np.sin(2 * np.pi * f * t + phase) + offset


@pytest.mark.parametrize("bits", [6, 8, 12])
def test_ideal_quantiser_enob_equals_bits(bits):
    adc = ADC(bits=bits, full_scale_v=1.0, enob=None, bandwidth_hz=None, sample_rate=100e9)
    f, v = coherent_sine(adc.sample_rate, 0.4999)
    out = adc.sample(v, np.random.default_rng(0))
    assert sine_fit_enob(out, adc.sample_rate, f, full_scale=1.0) == pytest.approx(bits, abs=0.05)
    # full-scale sine: SINAD convention (SINAD - 1.76) / 6.02 agrees with the full-scale-referred one
    assert sine_fit(out, adc.sample_rate, f).enob() == pytest.approx(bits, abs=0.05)


@pytest.mark.parametrize("enob", [4.0, 5.5, 7.0])
def test_adc_excess_noise_reaches_configured_enob(enob):
    adc = ADC(bits=10, full_scale_v=0.8, enob=enob, bandwidth_hz=None, sample_rate=256e9)
    f, v = coherent_sine(adc.sample_rate, 0.3)  # below full scale: full-scale-referred ENOB still holds
    out = adc.sample(v, np.random.default_rng(1))
    assert sine_fit_enob(out, adc.sample_rate, f, full_scale=0.8) == pytest.approx(enob, abs=0.1)


def test_dac_excess_noise_reaches_configured_enob():
    dac = DAC(bits=8, full_scale_v=1.0, enob=5.5, sample_rate=64e9)
    f, v = coherent_sine(dac.sample_rate, 0.49)
    out = dac.convert(v, np.random.default_rng(2), analog=False)
    assert sine_fit_enob(out, dac.sample_rate, f, full_scale=1.0) == pytest.approx(5.5, abs=0.1)


def test_frequency_dependent_enob_table():
    adc = ADC(bits=10, enob=[(0.0, 6.0), (100e9, 5.2)], bandwidth_hz=None, sample_rate=256e9)
    assert adc.enob_at(50e9) == pytest.approx(5.6)
    for cycles in (211, 3203):  # ~3.3 GHz and ~50 GHz
        f, v = coherent_sine(adc.sample_rate, 0.45, cycles=cycles)
        out = adc.sample(v, np.random.default_rng(cycles))
        expected = 6.0 - 0.8 * f / 100e9
        assert sine_fit_enob(out, adc.sample_rate, f, full_scale=1.0) == pytest.approx(expected, abs=0.1)


def test_jitter_limited_snr():
    sigma_t = 100e-15
    adc = ADC(bits=16, enob=None, jitter_s=sigma_t, bandwidth_hz=None, sample_rate=256e9)
    f, v = coherent_sine(adc.sample_rate, 0.45, cycles=1279)  # ~20 GHz
    expected = -20 * np.log10(2 * np.pi * f * sigma_t)
    assert adc.jitter_limited_snr_db(f) == pytest.approx(expected)
    fit = sine_fit(adc.sample(v, np.random.default_rng(3)), adc.sample_rate, f)
    assert fit.sinad_db == pytest.approx(expected, abs=0.3)
    # exact path: evaluate the sine at jittered instants, then digitise without further jitter
    t = adc.sample_instants(N, np.random.default_rng(4))
    exact = adc.sample(0.45 * np.sin(2 * np.pi * f * t + 0.3), np.random.default_rng(5), apply_jitter=False)
    assert sine_fit(exact, adc.sample_rate, f).sinad_db == pytest.approx(expected, abs=0.3)


def test_clipping_at_full_scale():
    adc = ADC(bits=8, full_scale_v=1.0, enob=None, bandwidth_hz=None, offset_v=0.1)
    v = np.array([-5.0, -0.4 - 1e-9, 0.1, 0.6 + 1e-9, 5.0])
    codes = adc.sample(v, np.random.default_rng(0), return_codes=True)
    assert codes[0] == 0 and codes[1] == 0 and codes[-1] == 255 and codes[-2] == 255
    volts = adc.levels(codes)
    lsb = 1.0 / 256
    assert volts[0] == pytest.approx(-0.4 + lsb / 2) and volts[-1] == pytest.approx(0.6 - lsb / 2)
    assert volts[2] == pytest.approx(0.1 + lsb / 2)  # mid-rise level just above the centre
    dac = DAC(bits=4, full_scale_v=2.0, enob=None)
    assert np.allclose(dac.convert(np.array([-9.0, 9.0]), np.random.default_rng(0), analog=False),
                       [-1 + 1 / 16, 1 - 1 / 16])


def test_dac_codes_and_reconstruction_filter():
    dac = DAC(bits=12, full_scale_v=1.0, enob=None, sample_rate=64e9, bandwidth_hz=25e9)
    levels = dac.convert(np.array([0, 2048, 4095]), np.random.default_rng(0), analog=False)
    assert np.allclose(levels, [-0.5 + 0.5 / 4096, 0.5 / 4096, 0.5 - 0.5 / 4096])
    with pytest.raises(ValueError, match=r"\[0, 4095\]"):
        dac.convert(np.array([4096]), np.random.default_rng(0))
    # zero-order hold x Butterworth: amplitude = A |sinc(f / fs)| |H(f)|
    f, v = coherent_sine(dac.sample_rate, 0.4, cycles=2557, n=2**13)  # ~20 GHz
    up = 8
    out = dac.convert(v, np.random.default_rng(1), upsample=up)
    fit = sine_fit(out, dac.sample_rate * up, f)
    expected = 0.4 * abs(np.sinc(f / dac.sample_rate)) * lowpass_response(f, 25e9, "butterworth", 4)
    assert fit.amplitude == pytest.approx(expected, rel=0.01)


def test_adc_front_end_bandwidth_is_3db():
    adc = ADC(bits=12, enob=None, sample_rate=256e9, bandwidth_hz=110e9)
    f = 110e9
    t = np.arange(4096) / adc.sample_rate
    cycles = round(f * 4096 / adc.sample_rate)
    f = cycles * adc.sample_rate / 4096
    out = adc.sample(0.4 * np.cos(2 * np.pi * f * t), np.random.default_rng(0))
    gain = sine_fit(out, adc.sample_rate, f).amplitude / 0.4
    assert gain == pytest.approx(float(lowpass_response(f, 110e9)), rel=0.01)
    assert 20 * np.log10(float(lowpass_response(110e9, 110e9))) == pytest.approx(-3.0103, abs=1e-3)


def test_noise_bandwidths_match_numerical_integral():
    f = np.linspace(0, 200e9, 2_000_001)
    for shape in ("brickwall", "butterworth", "gaussian"):
        numeric = np.trapezoid(lowpass_response(f, 10e9, shape, 4) ** 2, f)
        assert noise_bandwidth(10e9, shape, 4) == pytest.approx(numeric, rel=1e-3)


def test_sine_fit_finds_frequency_offset():
    fs = 10e9
    t = np.arange(5000) / fs
    x = 0.7 * np.cos(2 * np.pi * 1.0003e9 * t + 1.1) + 0.05
    fit = sine_fit(x, fs, 1.0e9)
    assert fit.frequency == pytest.approx(1.0003e9, rel=1e-9)
    assert fit.amplitude == pytest.approx(0.7, rel=1e-9)
    assert fit.phase == pytest.approx(1.1, abs=1e-8)
    assert fit.offset == pytest.approx(0.05, abs=1e-9)


def test_non_physical_parameters_raise():
    with pytest.raises(ValueError, match="sample_rate.*bandwidth_hz"):
        ADC(sample_rate=100e9, bandwidth_hz=60e9)
    with pytest.raises(ValueError, match="sample_rate.*bandwidth_hz"):
        DAC(sample_rate=40e9, bandwidth_hz=25e9)
    with pytest.raises(ValueError, match="enob"):
        ADC(bits=8, enob=9.0)
    with pytest.raises(ValueError, match="bits"):
        DAC(bits=0)
    with pytest.raises(ValueError, match="jitter_s"):
        ADC(jitter_s=-1e-15)
    with pytest.raises(ValueError, match="full_scale_v"):
        ADC(full_scale_v=0.0)
    with pytest.raises(ValueError, match="integer multiple"):
        ADC(sample_rate=100e9, bandwidth_hz=None).sample(np.zeros(16), np.random.default_rng(0), input_rate=150e9)
