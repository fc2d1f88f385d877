"""Symbol timing, sampling and level recovery on synthetic traces with closed-form waveforms.

A trace is offset + gain * s(t) + noise, where s(t) is a sequence of rectangular symbols starting at a
known (fractional) sample position, either point-sampled or passed through a Gaussian low-pass filter
(step response 0.5 (1 + erf(t / (sqrt(2) sigma))), exact at any delay: ISI with a known, zero group delay).
"""

import numpy as np
import pytest
from scipy.special import erf

from labctl.errors import LabctlError
from labctl.opu.timing import (
    Preamble,
    SymbolTimingError,
    estimate_levels,
    find_symbol_timing,
    prbs,
    sample_symbols,
)

FS = 80e9
OFFSET, GAIN = 0.2, 1.3


def synth(symbols, sps, delay, n_samples, isi_sigma=0.0, noise=0.0, rng=None):
    """Closed-form trace: symbol i occupies [delay + i sps, delay + (i+1) sps) samples."""
    t = (np.arange(n_samples) - delay) / sps          # time in symbols
    if isi_sigma == 0:
        idx = np.floor(t).astype(int)
        ok = (idx >= 0) & (idx < len(symbols))
        y = np.zeros(n_samples)
        y[ok] = symbols[idx[ok]]
    else:
        steps = np.diff(np.concatenate([[0.0], symbols, [0.0]]))
        edges = np.nonzero(steps)[0]
        y = (steps[edges, None] * 0.5 * (1 + erf((t[None, :] - edges[:, None]) / (np.sqrt(2) * isi_sigma)))).sum(0)
    trace = OFFSET + GAIN * y
    if noise:
        trace = trace + noise * rng.standard_normal(n_samples)
    return trace


def make_capture(sps, delay_symbols, isi_sigma=0.0, noise=0.0, seed=0, n_payload=120, lead=30, binary=False):
    rng = np.random.default_rng(seed)
    pre = Preamble()
    payload = rng.integers(0, 2, n_payload).astype(float) if binary else rng.uniform(0, 1, n_payload)
    symbols = np.concatenate([rng.uniform(0, 1, lead), pre.symbols(), payload])   # junk, preamble, payload
    delay = delay_symbols * sps
    n_samples = int(np.ceil((len(symbols) + delay_symbols + 2) * sps))
    trace = synth(symbols, sps, delay, n_samples, isi_sigma, noise, rng)
    first = delay + (lead + len(pre)) * sps       # true start of the first payload symbol, in samples
    return trace, first, payload, pre


def test_prbs_is_maximal_length():
    for order in (3, 4, 5, 6, 7, 9, 10, 11):
        period = 2**order - 1
        s = prbs(order, 2 * period)
        np.testing.assert_array_equal(s[:period], s[period:])
        assert s[:period].sum() == 2 ** (order - 1)          # balance property of m-sequences
        assert not any(np.array_equal(s[:period - d], s[d:period]) for d in range(1, period))
    with pytest.raises(ValueError, match="order"):
        prbs(8)
    with pytest.raises(ValueError, match="seed"):
        prbs(5, seed=0)


def test_preamble_symbols_and_prepend():
    pre = Preamble(n_alternating=4, sync_word=(1, 1, 0, 1))
    np.testing.assert_array_equal(pre.symbols(), [1, 0, 1, 0, 1, 1, 0, 1])
    streams = np.full((3, 5), 0.25)
    out = pre.prepend(streams, zero=0.1, full=0.9)
    assert out.shape == (3, 13)
    np.testing.assert_allclose(out[:, :8], np.broadcast_to(0.1 + 0.8 * pre.symbols(), (3, 8)))
    np.testing.assert_array_equal(out[:, 8:], streams)
    with pytest.raises(ValueError, match="n_alternating"):
        Preamble(n_alternating=3)


@pytest.mark.parametrize("sps", [1, 2, 3.3, 7.25, 16])
@pytest.mark.parametrize("delay", [0.0, 3.37, 211.5])
def test_point_sampled_timing_and_symbols_are_exact(sps, delay):
    trace, first, payload, pre = make_capture(sps, delay)
    timing = find_symbol_timing(trace, FS, FS / sps, pre, payload_symbols=len(payload))
    # point samples cannot tell delays apart within one sample: the estimate is within half a sample
    assert abs(timing.first_symbol - first) <= 0.5 + 0.02 * sps
    levels = estimate_levels(trace, timing, pre)
    assert levels.zero == pytest.approx(OFFSET, abs=1e-12) and levels.full == pytest.approx(OFFSET + GAIN, abs=1e-12)
    values = levels.normalise(sample_symbols(trace, timing, len(payload)))
    np.testing.assert_allclose(values, payload, atol=1e-12)


@pytest.mark.parametrize("sps", [1.7, 2, 3.3, 4, 7.25, 16])
@pytest.mark.parametrize("delay", [0.0, 3.37, 57.81])
def test_timing_through_isi_is_sub_sample(sps, delay):
    trace, first, payload, pre = make_capture(sps, delay, isi_sigma=0.3)
    timing = find_symbol_timing(trace, FS, FS / sps, pre, payload_symbols=len(payload))
    assert timing.method == "tone"
    assert abs(timing.first_symbol - first) / sps < 0.01
    assert timing.index - timing.phase == pytest.approx(timing.first_symbol) and 0 <= timing.phase < 1


@pytest.mark.parametrize("sps", [2, 4, 16])
def test_timing_with_noise_and_isi(sps):
    errors = []
    for seed in range(4):
        trace, first, payload, pre = make_capture(sps, 40.3 + seed, isi_sigma=0.25, noise=0.1 * GAIN, seed=seed)
        timing = find_symbol_timing(trace, FS, FS / sps, pre, payload_symbols=len(payload))
        errors.append((timing.first_symbol - first) / sps)
    assert np.max(np.abs(errors)) < 0.06


def test_heavy_noise_still_locates_preamble_and_decides_binary_payload():
    sps = 8
    trace, first, payload, pre = make_capture(sps, 123.45, isi_sigma=0.2, noise=0.35 * GAIN, seed=3, binary=True)
    timing = find_symbol_timing(trace, FS, FS / sps, pre, payload_symbols=len(payload))
    assert abs(timing.first_symbol - first) / sps < 0.1
    levels = estimate_levels(trace, timing, pre, which="sync")
    values = levels.normalise(sample_symbols(trace, timing, len(payload), window=0.5))
    np.testing.assert_array_equal(values > 0.5, payload > 0.5)
    assert levels.noise_rms == pytest.approx(0.35 * GAIN / 2, rel=0.3)   # 4-sample average of white noise


def test_levels_and_noise_from_preamble():
    sps, noise = 8, 0.02
    trace, first, payload, pre = make_capture(sps, 10.0, noise=noise, seed=5)
    timing = find_symbol_timing(trace, FS, FS / sps, pre)
    levels = estimate_levels(trace, timing, pre, window=1.0)     # 8 samples averaged per symbol
    assert levels.zero == pytest.approx(OFFSET, abs=4 * noise / np.sqrt(8 * levels.n_zero))
    assert levels.full == pytest.approx(OFFSET + GAIN, abs=4 * noise / np.sqrt(8 * levels.n_full))
    assert levels.noise_rms == pytest.approx(noise / np.sqrt(8), rel=0.3)


def test_looped_capture_picks_the_preamble_followed_by_the_payload():
    sps, n_payload = 4, 200
    rng = np.random.default_rng(6)
    pre = Preamble()
    period = np.concatenate([pre.symbols(), rng.uniform(0, 1, n_payload)])
    looped = np.concatenate([period[-150:], period, period[:100]])   # tail, one full period, next preamble
    trace = synth(looped, sps, 2.0, int((len(looped) + 1) * sps))
    timing = find_symbol_timing(trace, FS, FS / sps, pre, payload_symbols=n_payload)
    assert timing.first_symbol == pytest.approx(2.0 + (150 + len(pre)) * sps, abs=0.5)


def test_no_preamble_raises_typed_error():
    rng = np.random.default_rng(7)
    with pytest.raises(SymbolTimingError, match="no preamble found") as info:
        find_symbol_timing(rng.standard_normal(5000), FS, FS / 4)
    assert isinstance(info.value, LabctlError)
    trace, *_ = make_capture(4, 0.0)
    with pytest.raises(SymbolTimingError, match="no preamble found"):
        find_symbol_timing(-trace, FS, FS / 4)                   # inverted polarity


def test_short_trace_and_bad_arguments():
    trace, first, payload, pre = make_capture(4, 0.0, n_payload=20)
    with pytest.raises(SymbolTimingError, match="samples"):
        find_symbol_timing(trace, FS, FS / 4, pre, payload_symbols=1000)
    with pytest.raises(ValueError, match="one sample per symbol"):
        find_symbol_timing(trace, FS, 2 * FS)
    with pytest.raises(ValueError, match="NaN"):
        find_symbol_timing(np.array([0.0, np.nan] * 500), FS, FS / 4)
    timing = find_symbol_timing(trace, FS, FS / 4, pre)
    with pytest.raises(SymbolTimingError, match="outside"):
        sample_symbols(trace, timing, 1000)
    with pytest.raises(ValueError, match="window"):
        sample_symbols(trace, timing, 5, window=1.5)
