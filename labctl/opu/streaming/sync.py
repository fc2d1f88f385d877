"""Signal processing of the streaming OPU's delay measurement (pure functions, no instruments).

Random binary sync patterns, one per stream and mutually uncorrelated, are played and captured; circular
cross-correlation of the symbol-averaged trace gives each stream's delay to a symbol, and the sides of
the correlation peak, rendered at the scope rate, refine it to a fraction of a scope sample.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.fft as sfft

__all__ = ["SYNC_SEED", "fast_pattern", "peak_by_sides", "refine_delay", "symbol_means", "sync_patterns"]

#: Seed of the calibration's random patterns (sync patterns; later steps use SYNC_SEED + step number).
SYNC_SEED = 0x5EED


def sync_patterns(keys: list[str], n_symbols: int) -> dict[str, np.ndarray]:
    """One random binary pattern (0/1) of ``n_symbols`` per stream key, the same on every run."""
    rng = np.random.default_rng(SYNC_SEED)
    return {key: rng.integers(0, 2, n_symbols).astype(float) for key in keys}


def fast_pattern(pattern_symbols: Callable[[int], int], n_min: int) -> int:
    """A pattern length >= n_min symbols, valid by ``pattern_symbols`` (valid length >= n), whose FFT is
    fast (5-smooth)."""
    n = pattern_symbols(n_min)
    while sfft.next_fast_len(n, real=True) != n:
        n = pattern_symbols(n + 1)
    return n


def symbol_means(trace: np.ndarray, fs: float, symbol_rate: float, n: int) -> np.ndarray:
    """Mean of the trace over consecutive symbol-long bins starting at its first sample."""
    edges = np.floor(np.arange(n + 1) * fs / symbol_rate).astype(np.int64)
    edges = np.minimum(edges, trace.size)
    cs = np.concatenate([[0.0], np.cumsum(trace)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    return (cs[edges[1:]] - cs[edges[:-1]]) / counts


def peak_by_sides(lags: np.ndarray, corr: np.ndarray) -> float:
    """Centre of a (rounded) triangular correlation peak: intersection of lines fitted to its two sides."""
    i = int(np.argmax(corr))
    top = corr[i]
    base = float(np.min(corr))
    lo_lvl, hi_lvl = base + 0.25 * (top - base), base + 0.75 * (top - base)

    def side(indices):
        picked = []
        for j in indices:          # walk down one flank of the peak, stop where it leaves the band
            if corr[j] < lo_lvl:
                break
            if corr[j] <= hi_lvl:
                picked.append(j)
        return picked

    left = side(range(i, -1, -1))
    right = side(range(i, corr.size))
    if len(left) < 2 or len(right) < 2:
        # too few samples on a side: parabola through the top three
        if 0 < i < corr.size - 1:
            a, b, c = corr[i - 1], corr[i], corr[i + 1]
            den = a - 2 * b + c
            frac = 0.5 * (a - c) / den if den != 0 else 0.0
            return float(lags[i] + frac * (lags[1] - lags[0]))
        return float(lags[i])
    pl = np.polyfit(lags[left], corr[left], 1)
    pr = np.polyfit(lags[right], corr[right], 1)
    if pl[0] == pr[0]:
        return float(lags[i])
    return float((pr[1] - pl[1]) / (pl[0] - pr[0]))



def refine_delay(trace: np.ndarray, fs: float, t0: float, R: float, pattern: np.ndarray, sign: float, coarse: float,
                 period: float, max_points: int = 16384) -> float:
    """Sub-sample delay: correlate the trace with the pattern rendered at the scope rate around ``coarse``."""
    n = pattern.size
    trace = trace[:max_points]
    span = int(math.ceil(1.5 * fs / R))
    lags = np.arange(-span, span + 1)
    u = (t0 - coarse + np.arange(trace.size) / fs) * R          # time in symbols since symbol 0 arrived
    x = (trace - trace.mean()) * sign
    idx = np.floor(u[None, :] - lags[:, None] * (R / fs)).astype(np.int64) % n
    r = pattern[idx]
    corr = ((r - r.mean(axis=1, keepdims=True)) @ x).astype(float)
    best = peak_by_sides(lags.astype(float), corr)
    return float((coarse + best / fs) % period)
