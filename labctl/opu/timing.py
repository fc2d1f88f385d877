"""Symbol timing and level recovery from one detector capture.

Every waveform of a layer starts with a known **preamble** (docs/opu_design.md), sent on every channel
of both the edge (x') and the center (w') modulators, so the lane photodiode sees the same pattern:

* ``n_alternating`` symbols alternating full scale / zero (1, 0, 1, ...): a tone at half the symbol rate
  whose phase gives the sub-sample symbol phase, and clean zero / full-scale levels;
* a pseudo-random **sync word** (an m-sequence, :func:`prbs`): its sharp autocorrelation gives the
  position of the preamble unambiguously, however many symbols the capture is delayed by.

Conventions: trace sample ``n`` is taken at time ``n / fs``. ``SymbolTiming.first_symbol`` is the
position, in (fractional) samples, of the *start* of the first payload symbol; symbol ``i`` (negative
for preamble symbols) is centred at ``first_symbol + (i + 1/2) * fs / symbol_rate``.

Algorithm of :func:`find_symbol_timing`: normalised (Pearson) cross-correlation of the trace with the
preamble rendered at the trace's sample rate, computed with one real FFT and running window sums; its
maximum gives the preamble start to within a sample. With at least 1.5 samples per symbol, the phase of
the half-symbol-rate tone of the alternating section (Hann-windowed single-bin DFT) refines it to a small
fraction of a sample; a zero-phase (symmetric) receiver response leaves that estimate unbiased, and a
causal one shifts it by the response's group delay, which is where the received symbols really are.
The detector polarity is assumed positive (more light = larger reading).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.errors import LabctlError

__all__ = [
    "Levels",
    "Preamble",
    "SymbolTiming",
    "SymbolTimingError",
    "estimate_levels",
    "find_symbol_timing",
    "prbs",
    "sample_symbols",
]

# Feedback taps (1-based exponents) of maximal-length Fibonacci LFSRs, x^n + x^m + 1
# (ITU-T O.150 for PRBS7/9/11/15/23/31; the others from standard m-sequence tables).
_PRBS_TAPS = {3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 9: (9, 5), 10: (10, 7), 11: (11, 9),
              15: (15, 14), 23: (23, 18), 31: (31, 28)}


class SymbolTimingError(LabctlError, RuntimeError):
    """The preamble was not found in a capture (or the capture is too short for the payload)."""


def prbs(order: int = 7, length: int | None = None, seed: int = 1) -> np.ndarray:
    """A maximal-length pseudo-random binary sequence (0/1, ``uint8``) of period ``2**order - 1``.

    ``order`` is one of 3, 4, 5, 6, 7, 9, 10, 11, 15, 23, 31; ``length`` defaults to one period;
    ``seed`` is the non-zero initial register state.
    """
    if order not in _PRBS_TAPS:
        raise ValueError(f"order must be one of {sorted(_PRBS_TAPS)}, got {order!r}")
    period = (1 << order) - 1
    length = period if length is None else int(length)
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if not 0 < seed <= period:
        raise ValueError(f"seed must be in [1, {period}] (a non-zero register state), got {seed}")
    a, b = _PRBS_TAPS[order]
    state = int(seed)
    out = np.empty(length, dtype=np.uint8)
    for i in range(length):
        bit = ((state >> (a - 1)) ^ (state >> (b - 1))) & 1
        out[i] = state & 1
        state = ((state << 1) | bit) & period
    return out


@dataclass(frozen=True)
class Preamble:
    """The known symbols that start every waveform: alternating 1/0, then a PRBS sync word.

    Default: 16 alternating symbols and a 63-chip PRBS6 word (79 symbols).
    """

    n_alternating: int = 16
    sync_word: tuple[int, ...] = field(default_factory=lambda: tuple(int(v) for v in prbs(6)))

    def __post_init__(self):
        if self.n_alternating < 0 or self.n_alternating % 2:
            raise ValueError(f"n_alternating must be an even number >= 0, got {self.n_alternating}")
        if any(v not in (0, 1) for v in self.sync_word):
            raise ValueError("sync_word must contain only 0 and 1")
        if len(self.sync_word) + self.n_alternating < 8:
            raise ValueError("a preamble needs at least 8 symbols to be found reliably")

    def __len__(self) -> int:
        return self.n_alternating + len(self.sync_word)

    def symbols(self) -> np.ndarray:
        """The preamble as transmissions (1 = full scale, 0 = zero), float64."""
        alt = np.tile([1.0, 0.0], self.n_alternating // 2)
        return np.concatenate([alt, np.asarray(self.sync_word, dtype=float)])

    def prepend(self, streams: Any, zero: float = 0.0, full: float = 1.0) -> np.ndarray:
        """Prefix every stream (last axis = slots) with the preamble at the given transmission levels."""
        s = np.asarray(streams)
        pre = zero + (full - zero) * self.symbols()
        pre = np.broadcast_to(pre.astype(s.dtype if s.dtype.kind == "f" else float), s.shape[:-1] + (len(self),))
        return np.concatenate([pre, s], axis=-1)


@dataclass(frozen=True)
class SymbolTiming:
    """Where the symbols are in a capture (see the module docstring for the conventions)."""

    first_symbol: float        #: sample position of the start of the first payload symbol
    samples_per_symbol: float
    preamble_length: int       #: symbols
    correlation: float         #: Pearson correlation of the trace with the preamble at the match (<= 1)
    method: str                #: "tone" (sub-sample phase) or "correlation" (sample-level only)

    @property
    def index(self) -> int:
        """The sample at or after which the first payload symbol starts (``ceil(first_symbol)``)."""
        return int(np.ceil(self.first_symbol))

    @property
    def phase(self) -> float:
        """Fraction of a sample between ``first_symbol`` and the next sample, in [0, 1)."""
        return float(self.index - self.first_symbol)

    @property
    def preamble_start(self) -> float:
        return self.first_symbol - self.preamble_length * self.samples_per_symbol

    def centres(self, n_symbols: int, start: int = 0) -> np.ndarray:
        """Sample positions of the centres of symbols ``start .. start + n_symbols - 1``."""
        i = np.arange(start, start + n_symbols, dtype=float)
        return self.first_symbol + (i + 0.5) * self.samples_per_symbol


@dataclass(frozen=True)
class Levels:
    """Zero and full-scale detector levels measured on the preamble, and the noise about them."""

    zero: float
    full: float
    noise_rms: float
    n_zero: int
    n_full: int

    def normalise(self, values: Any) -> np.ndarray:
        """``(v - zero) / (full - zero)``: readings as a fraction of the full-scale level.

        For a lane whose preamble sent full scale on all K channels, multiply by K to get the lane sum
        ``sum x'w'`` in units of one full-scale channel product.
        """
        return (np.asarray(values, dtype=float) - self.zero) / (self.full - self.zero)


def _trace_array(trace: Any) -> np.ndarray:
    x = np.asarray(trace, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"a trace is a 1-D array of samples, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("the trace contains NaN or infinite samples")
    return x


def _samples_per_symbol(fs: float, symbol_rate: float) -> float:
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"fs (sample rate) must be a finite number > 0 Hz, got {fs!r}")
    if not (np.isfinite(symbol_rate) and symbol_rate > 0):
        raise ValueError(f"symbol_rate must be a finite number > 0 Bd, got {symbol_rate!r}")
    sps = fs / symbol_rate
    if sps < 1.0:
        raise ValueError(f"fs / symbol_rate = {sps:g}: at least one sample per symbol is needed")
    return float(sps)


def find_symbol_timing(trace: Any, fs: float, symbol_rate: float, preamble: Preamble | None = None, *,
                       payload_symbols: int = 0, min_correlation: float = 0.5) -> SymbolTiming:
    """Locate the preamble in ``trace`` and return the timing of the first payload symbol.

    ``payload_symbols``: only preamble positions followed by that many whole symbols inside the trace are
    considered (a looped waveform may show the preamble twice). Raises :class:`SymbolTimingError` when the
    best normalised correlation is below ``min_correlation``.
    """
    preamble = preamble or Preamble()
    x = _trace_array(trace)
    sps = _samples_per_symbol(fs, symbol_rate)
    sym = preamble.symbols()
    n_pre = len(sym)
    # Reference rendered for a preamble starting at -1/2 sample: ref[n] = sym[floor((n + 1/2)/sps)].
    n_ref = int(np.ceil(n_pre * sps - 0.5))
    ref = sym[np.minimum(np.floor((np.arange(n_ref) + 0.5) / sps).astype(np.int64), n_pre - 1)]
    r0 = ref - ref.mean()
    r_norm = float(np.sqrt(np.sum(r0 * r0)))
    last_lag = min(x.size - n_ref,
                   int(np.floor(x.size - 0.5 - (n_pre + max(int(payload_symbols), 0) - 0.5) * sps)))
    if last_lag < 0:
        raise SymbolTimingError(
            f"the trace has {x.size} samples; the preamble ({n_pre} symbols) and {payload_symbols} payload "
            f"symbols need about {int(np.ceil((n_pre + payload_symbols) * sps))} at {sps:g} samples/symbol")
    xc = x - x.mean()
    nfft = 1 << int(np.ceil(np.log2(max(xc.size, 2))))
    corr = np.fft.irfft(np.fft.rfft(xc, nfft) * np.conj(np.fft.rfft(r0, nfft)), nfft)[:last_lag + 1]
    c1 = np.concatenate([[0.0], np.cumsum(xc)])
    c2 = np.concatenate([[0.0], np.cumsum(xc * xc)])
    s1 = c1[n_ref:n_ref + last_lag + 1] - c1[:last_lag + 1]
    s2 = c2[n_ref:n_ref + last_lag + 1] - c2[:last_lag + 1]
    var = np.maximum(s2 - s1 * s1 / n_ref, 0.0)
    floor = 1e-12 * max(float(np.max(var)), 1e-300)
    pearson = np.where(var > floor, corr / (np.sqrt(np.maximum(var, floor)) * r_norm), 0.0)
    lag = int(np.argmax(pearson))
    best = float(pearson[lag])
    if not best >= min_correlation:
        raise SymbolTimingError(
            f"no preamble found: the best correlation with the {n_pre}-symbol preamble is {best:.3f} "
            f"(< {min_correlation}); check the symbol rate, the trigger and that the light reaches the detector")
    start = lag - 0.5
    method = "correlation"
    tone = _tone_start(x, start, sps, preamble.n_alternating)
    if tone is not None:
        start, method = tone, "tone"
    return SymbolTiming(first_symbol=start + n_pre * sps, samples_per_symbol=sps, preamble_length=n_pre,
                        correlation=best, method=method)


def _tone_start(x: np.ndarray, coarse: float, sps: float, n_alt: int) -> float | None:
    """Refine the preamble start from the phase of the alternating section's half-rate tone."""
    if sps < 1.5 or n_alt < 6:
        return None
    lo = max(int(np.ceil(coarse + sps)), 0)
    hi = min(int(np.floor(coarse + (n_alt - 1) * sps)), x.size - 1)
    if hi - lo < 4 * sps:
        return None
    n = np.arange(lo, hi + 1)
    w = np.hanning(n.size + 2)[1:-1]
    seg = x[lo:hi + 1]
    seg = seg - np.sum(w * seg) / np.sum(w)
    z = np.sum(w * seg * np.exp(-1j * np.pi * n / sps))
    if abs(z) == 0.0:
        return None
    # The 1,0,1,0 pattern starting at tau has fundamental sin(pi (t - tau)/sps): arg z = -pi tau/sps - pi/2.
    tau = -(np.angle(z) + np.pi / 2) * sps / np.pi
    period = 2 * sps
    tau += period * np.round((coarse - tau) / period)
    if abs(tau - coarse) > max(1.5, 0.5 * sps):
        return None  # too noisy to trust; keep the sample-level estimate
    return float(tau)


def sample_symbols(trace: Any, timing: SymbolTiming, n_symbols: int, start: int = 0,
                   window: float = 0.0) -> np.ndarray:
    """The trace at the centres of symbols ``start .. start + n_symbols - 1`` (negative = preamble).

    ``window = 0``: linear interpolation at the exact centre. ``0 < window <= 1``: the mean of the samples
    within ``window`` symbol periods centred on each symbol (less noise, more ISI as it approaches 1);
    a symbol whose window contains no sample falls back to interpolation.
    """
    x = _trace_array(trace)
    if not 0.0 <= window <= 1.0:
        raise ValueError(f"window must be in [0, 1] symbol periods, got {window!r}")
    n_symbols = int(n_symbols)
    if n_symbols < 0:
        raise ValueError(f"n_symbols must be >= 0, got {n_symbols}")
    c = timing.centres(n_symbols, start)
    if n_symbols == 0:
        return np.empty(0)
    if c[0] < 0 or c[-1] > x.size - 1:
        raise SymbolTimingError(
            f"symbols {start}..{start + n_symbols - 1} are centred at samples {c[0]:.1f}..{c[-1]:.1f}, "
            f"outside the {x.size}-sample trace; capture more samples or fewer symbols")
    values = np.interp(c, np.arange(x.size), x)
    if window > 0:
        h = 0.5 * window * timing.samples_per_symbol
        lo = np.clip(np.ceil(c - h).astype(np.int64), 0, x.size)
        hi = np.clip(np.floor(c + h).astype(np.int64) + 1, 0, x.size)
        cs = np.concatenate([[0.0], np.cumsum(x)])
        count = hi - lo
        ok = count > 0
        values[ok] = (cs[hi[ok]] - cs[lo[ok]]) / count[ok]
    return values


def estimate_levels(trace: Any, timing: SymbolTiming, preamble: Preamble | None = None, *,
                    window: float = 0.5, which: str = "all") -> Levels:
    """Zero and full-scale levels (and the noise about them) from the preamble symbols of a capture.

    ``which``: ``"all"`` preamble symbols, or only the ``"alternating"`` or ``"sync"`` part. The first
    preamble symbol is skipped (whatever preceded it leaks into it through the receiver's ISI).
    """
    preamble = preamble or Preamble()
    if len(preamble) != timing.preamble_length:
        raise ValueError("the preamble does not match the one the timing was found with")
    sym = preamble.symbols()
    vals = sample_symbols(trace, timing, len(sym), start=-len(sym), window=window)
    use = np.ones(len(sym), dtype=bool)
    if which == "alternating":
        use[preamble.n_alternating:] = False
    elif which == "sync":
        use[:preamble.n_alternating] = False
    elif which != "all":
        raise ValueError(f"which must be 'all', 'alternating' or 'sync', got {which!r}")
    use[0] = False
    ones, zeros = vals[use & (sym == 1)], vals[use & (sym == 0)]
    if ones.size < 2 or zeros.size < 2:
        raise ValueError("too few preamble symbols of each level to estimate the levels")
    full, zero = float(ones.mean()), float(zeros.mean())
    if not full > zero:
        raise SymbolTimingError(
            f"the full-scale level ({full:.4g}) is not above the zero level ({zero:.4g}): no modulation "
            "reached the detector, or its polarity is inverted")
    resid = np.concatenate([ones - full, zeros - zero])
    noise = float(np.sqrt(np.sum(resid * resid) / max(resid.size - 2, 1)))
    return Levels(zero=zero, full=full, noise_rms=noise, n_zero=int(zeros.size), n_full=int(ones.size))
