"""Error statistics and effective bits against closed forms."""

import numpy as np
import pytest

from labctl.opu.precision import (
    accumulator_bits,
    bits_from_snr_db,
    error_stats,
    output_sigma,
    residual_sigma,
    snr_db_from_bits,
)


def test_statistics_of_a_constructed_error():
    ref = np.linspace(-3.0, 5.0, 1000)
    s = 0.01
    err = s * np.where(np.arange(1000) % 2, 1.0, -1.0)         # zero mean, rms exactly s
    stats = error_stats(ref + err, ref)
    assert stats.sigma == pytest.approx(s, rel=1e-12)
    assert stats.bias == pytest.approx(0.0, abs=1e-15)
    assert stats.range == pytest.approx(8.0)
    assert stats.bits_range == pytest.approx(np.log2(8.0 / s), rel=1e-12)
    snr_db = 10 * np.log10(np.var(ref) / s**2)
    assert stats.snr_db == pytest.approx(snr_db, rel=1e-12)
    assert stats.enob == pytest.approx((snr_db - 1.76) / 6.02, rel=1e-12)
    assert stats.max_abs == pytest.approx(s)
    assert "log2(range/sigma)" in str(stats)


def test_bias_counts_unless_excluded():
    ref = np.linspace(0, 1, 100)
    err = 0.03 + 0.04 * np.where(np.arange(100) % 2, 1.0, -1.0)
    with_bias = error_stats(ref + err, ref)
    spread = error_stats(ref + err, ref, include_bias=False)
    assert with_bias.sigma == pytest.approx(0.05) and spread.sigma == pytest.approx(0.04)
    assert with_bias.bias == pytest.approx(0.03) == spread.bias


def test_ideal_quantiser_of_a_full_scale_sine_has_enob_n():
    """Classic check of the ENOB convention: an ideal N-bit quantiser gives SNR = 6.02 N + 1.76 dB."""
    n_bits = 10  # at few bits the sine's arcsine density inflates the noise above delta^2/12 (+7 % at 6 bits)
    t = np.arange(200_000)
    ref = np.sin(2 * np.pi * t * 0.1234567)                    # full scale [-1, 1]
    delta = 2.0 / 2**n_bits
    measured = (np.floor(ref / delta) + 0.5) * delta            # mid-rise quantiser, 2^N levels
    stats = error_stats(measured, ref)
    assert stats.enob == pytest.approx(n_bits, abs=0.02)
    # range convention: sigma = delta/sqrt(12), range = 2^N delta -> N + log2(sqrt(12)) bits
    assert stats.bits_range == pytest.approx(n_bits + np.log2(np.sqrt(12)), abs=0.02)


def test_bit_conversions():
    assert bits_from_snr_db(6.02 * 6 + 1.76) == pytest.approx(6.0)
    assert snr_db_from_bits(bits_from_snr_db(41.0)) == pytest.approx(41.0)
    # PHYSICS.md worked example: SNR 41 dB is about 6.5 bits
    assert bits_from_snr_db(41.0) == pytest.approx(6.52, abs=0.01)
    assert accumulator_bits(6, 256) == 20.0


def test_output_sigma_formula():
    assert output_sigma(1e-3, 16, 2.0, 0.5) == pytest.approx(4 * 4 * 1e-3 * 1.0)
    assert output_sigma(1e-3, 9) == pytest.approx(4 * 3 * 1e-3)
    np.testing.assert_allclose(output_sigma(np.array([1e-3, 2e-3]), 4), [8e-3, 16e-3])
    with pytest.raises(ValueError, match="n_chunks"):
        output_sigma(1e-3, 0)
    with pytest.raises(ValueError, match="slot_sigma"):
        output_sigma(-1.0, 1)


def test_residual_sigma_rms_and_robust():
    rng = np.random.default_rng(2)
    r = 0.02 * rng.standard_normal(20_000)
    assert residual_sigma(r) == pytest.approx(0.02, rel=0.02)
    r[:50] = 10.0                                               # outliers move the RMS, not the MAD
    assert residual_sigma(r, robust=True) == pytest.approx(0.02, rel=0.03)
    assert residual_sigma(r) > 0.2


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        error_stats(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        error_stats(np.array([0.0, np.nan]), np.zeros(2))
    exact = error_stats(np.arange(5.0), np.arange(5.0))
    assert exact.sigma == 0 and exact.bits_range == np.inf and exact.enob == np.inf
