"""Evaluation grids: how a bench part with memory (a filter, a dispersive fibre) answers a pull at times ``t``.

The world pulls signals at arbitrary times. A part with memory (a filter, a dispersive fibre) can
only apply it on a record:

* ``t`` uniformly spaced with >= 2 points (every scope record, trigger-search chunk and power-meter
  averaging grid is): the part evaluates its upstream on an *extended* uniform grid -- padded before
  and after by its memory (impulse-response length of a filter, dispersive spread plus walk-off of a
  fibre), so the FFT's circular wrap-around never reaches the requested samples -- applies the
  FFT-based operation there and returns the samples at ``t``. A low-pass of bandwidth B needs a grid
  rate >= 2 B to represent its band: a coarser grid is oversampled by an integer factor
  k <= ``MAX_OVERSAMPLE`` (filtered on the fine grid, then every k-th sample returned, which also
  aliases the noise above the coarse Nyquist frequency into the band, as a real sampler does). A
  needlessly fine grid (faster than ``MAX_RATE_PER_BANDWIDTH`` x B, or ``MAX_FIELD_RATE_HZ`` for the
  fibre: e.g. a trigger comparator refining a crossing to femtoseconds) is evaluated at that rate
  and interpolated linearly.
* a single point, a non-uniform ``t``, or a grid too coarse to oversample (k > ``MAX_OVERSAMPLE`` or
  more than ``MAX_GRID_POINTS`` fine points): only the DC response (the loss) applies, and noise is
  drawn independently per sample with its full variance over the part's noise bandwidth -- the right
  statistics when samples are further apart than the part's memory.

Filters on the signal path (the MZM's EO response, the photodiode) and the fibre do not take their
grid from the request alone: they oversample a uniform request by the smallest integer k that reaches
``SIGNAL_RATE_PER_BANDWIDTH`` x their bandwidth (``MIN_FIELD_RATE_HZ`` for the fibre's field), because
their *input* has content beyond their own band (an AWG staircase, an intensity after two modulators)
that a coarse grid would alias into it (``signal_grid``). The filtered record is decimated back to the
request, so the value at an instant does not depend on how densely the detector samples: a scope at 1
sample per symbol reads what it reads at 48 (tests/physics/test_grid_independence.py). Receiver noise
then has the variance of the whole receiver band at every requested instant. Requests sparser than the
part's memory still take the DC path above. The AWG (``keysight_m8195a``) computes its analog output from
its DAC samples (hold and analog response in the frequency domain) and interpolates, so it too is
grid-independent. The scope's wide (110 GHz) front end keeps ``band_grid``: at coarse rates its response
is ~1 over the band of the signals it sees.

Average power is unaffected by dispersion (an all-pass on the field) and by the unit-DC-gain filters,
so a power meter (``World.average_power_into``) reads the same on either path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from sim_backends.physics.filters import LowPass

#: Largest integer oversampling of a requested grid that a band-limited part will use; a coarser grid
#: (samples > 2 / B apart, further than the part's memory) gets the DC response and independent noise.
MAX_OVERSAMPLE = 4
#: Largest fine grid (points) a part evaluates for one request; beyond it only the DC response applies.
MAX_GRID_POINTS = 1 << 23
#: Fastest grid on which the fibre propagates a field (+-500 GHz around the carrier, > 4x the widest
#: electrical band on the bench); finer requests are propagated at this rate and interpolated.
MAX_FIELD_RATE_HZ = 1e12


# -- uniform grids ---------------------------------------------------------------------------------


def uniform_step(t) -> float | None:
    """Spacing of ``t`` if it is a 1-D increasing uniform grid of >= 2 points, else None.

    Points are compared with the ideal grid t0 + k dt (dt from the end points) at up to ~4096
    evenly strided indices plus the last 16 (a jittered, gapped or concatenated time
    axis fails this; checking every point of a 10^6-point record would cost as much as a filter).
    Tolerates the rounding of absolute times (t0 ~ seconds): 1e-3 dt plus a few ulps of |t|.
    """
    t = np.asarray(t)
    if t.ndim != 1 or t.size < 2 or t.dtype.kind != "f":
        return None
    n = t.size
    t0 = float(t[0])
    dt = (float(t[-1]) - t0) / (n - 1)
    if not dt > 0:
        return None
    tol = 1e-3 * dt + 8 * np.finfo(float).eps * max(abs(t0), abs(float(t[-1])))
    if n > 2:
        for k in (np.arange(0, n, max(1, n // 4096)), np.arange(max(n - 16, 0), n)):
            if float(np.max(np.abs(t[k] - (t0 + k * dt)))) > tol:
                return None
    return dt


def rounded(x: float) -> float:
    """``x`` to 10 significant digits: a cache key that ignores last-bit rounding of sample rates."""
    return float(f"{x:.10e}")


def fast_length(n: int) -> int:
    """A record length >= n that FFTs fast: the next power of two when it is within 20 %, else the
    next 5-smooth length (pocketfft is fastest on powers of two)."""
    pow2 = 1 << max(int(n) - 1, 1).bit_length()
    return pow2 if pow2 <= 1.2 * n else sfft.next_fast_len(int(n), real=True)


class ResponseCache:
    """A response H(f) (real, complex, or j H(f) with ``imaginary``) on the rFFT bins of n-point
    records at rate fs, single precision, cached for a few (n, fs): records repeat their grids."""

    def __init__(self, response, size: int = 6, imaginary: bool = False):
        self._response, self._size, self._imaginary, self._store = response, size, imaginary, {}

    def on_grid(self, n: int, fs: float) -> np.ndarray:
        key = (int(n), rounded(fs))
        h = self._store.get(key)
        if h is None:
            h = np.asarray(self._response(sfft.rfftfreq(int(n), 1.0 / fs)))
            if self._imaginary:
                h = 1j * h
            h = h.astype(np.complex64 if np.iscomplexobj(h) else np.float32)
            if n % 2 == 0 and np.iscomplexobj(h):
                h[-1] = abs(h[-1])  # the Nyquist bin of a real record holds +-fs/2 at once: real response
            if len(self._store) >= self._size:
                self._store.pop(next(iter(self._store)))
            self._store[key] = h
        return h

    def filter(self, x: np.ndarray, fs: float) -> np.ndarray:
        """Real records ``x`` (float32 stays float32) filtered by H along the last axis (circular)."""
        n = x.shape[-1]
        return sfft.irfft(sfft.rfft(x, axis=-1) * self.on_grid(n, fs), n=n, axis=-1)


@dataclass
class Grid:
    """An extended (padded) uniform evaluation grid around a requested uniform record ``t``.

    ``times`` are the evaluation instants (``pre`` points before the first requested time, the
    length rounded up to a fast FFT size), spaced dt / k (oversampled, k >= 1); ``take`` picks the
    requested samples. A request much finer than the part can need (see ``max_rate_hz`` of
    ``band_grid``) is evaluated on a coarser grid instead and ``take`` interpolates linearly
    (``requested`` holds the times): e.g. a trigger comparator refining a crossing to femtoseconds.
    """

    times: np.ndarray
    fs: float
    pre: int
    n: int
    k: int
    requested: np.ndarray | None = None

    @classmethod
    def around(cls, t: np.ndarray, dt: float, memory_s: float, oversample: int = 1,
               max_rate_hz: float = np.inf) -> "Grid":
        k = int(oversample)
        fine = dt / k
        if 1.0 / fine > max_rate_hz:  # coarser than asked, then interpolated
            step = 1.0 / max_rate_hz
            pad = int(math.ceil(max(memory_s, 0.0) / step)) + 2
            span = int(math.ceil((float(t[-1]) - float(t[0])) / step)) + 1
            m = fast_length(span + 2 * pad)
            times = float(t[0]) + (np.arange(m) - pad) * step
            return cls(times, max_rate_hz, pad, t.size, 1, np.asarray(t, dtype=float))
        pad = int(math.ceil(max(memory_s, 0.0) / fine)) + 2
        span = (t.size - 1) * k + 1
        m = fast_length(span + 2 * pad)
        times = np.arange(-pad, m - pad, dtype=float)
        times *= fine
        times += float(t[0])
        return cls(times, 1.0 / fine, pad, t.size, k)

    def take(self, x: np.ndarray) -> np.ndarray:
        if self.requested is not None:
            if np.iscomplexobj(x):
                return (np.interp(self.requested, self.times, x.real)
                        + 1j * np.interp(self.requested, self.times, x.imag))
            return np.interp(self.requested, self.times, x)
        return x[..., self.pre: self.pre + (self.n - 1) * self.k + 1: self.k]


#: A band-limited part never evaluates its input faster than this many times its bandwidth.
MAX_RATE_PER_BANDWIDTH = 32
#: A filter with memory on the signal path (MZM electro-optic response, photodiode) evaluates its input
#: at >= this many times its own bandwidth, whatever grid the detector asks for: its input (an AWG
#: staircase after a 25 GHz response, an intensity after two modulators) has content well above the
#: part's own band, which a coarse grid would alias into it (tests/physics/test_grid_independence.py).
SIGNAL_RATE_PER_BANDWIDTH = 6
#: Fastest-needed grid for an optical field before a dispersive fibre: resolves a +-50 GHz band around
#: the carrier (2x the widest modulation bandwidth on the benches, 25 GHz AWGs into 10-25 GHz modulators).
MIN_FIELD_RATE_HZ = 100e9
#: Largest integer oversampling of a requested grid on the signal path; sparser requests (samples
#: further apart than ~64 fine samples, i.e. than the part's memory) get the DC response.
MAX_SIGNAL_OVERSAMPLE = 64


def signal_grid(t, bandwidth_hz: float, memory_s: float, min_rate_hz: float | None = None) -> Grid | None:
    """Evaluation grid for a filter on the signal path, independent of how coarsely ``t`` samples.

    The requested uniform grid is oversampled by the smallest integer k that reaches
    ``min_rate_hz`` (default ``SIGNAL_RATE_PER_BANDWIDTH`` x the bandwidth, never below 2 B), padded
    by the memory; the filtered record is decimated back to ``t`` exactly (no interpolation). So the
    values at the requested instants do not depend on the requested rate (up to the discretisation of a
    grid >= the minimum rate), and band-limited noise keeps its full variance N0 B_noise per sample.
    None for non-uniform or single-point ``t``, or samples further apart than the part's memory (their
    neighbourhoods do not overlap: a contiguous fine record would cost far more than the request) or so
    sparse that k > ``MAX_SIGNAL_OVERSAMPLE``: then each sample gets the DC response (and independent noise).
    """
    t = np.asarray(t)
    dt = uniform_step(t)
    if dt is None:
        return None
    rate = max(SIGNAL_RATE_PER_BANDWIDTH * bandwidth_hz if min_rate_hz is None else min_rate_hz,
               2.0 * bandwidth_hz)
    k = max(1, math.ceil(rate * dt * (1 - 1e-12)))
    if dt > memory_s or k > MAX_SIGNAL_OVERSAMPLE or t.size * k > MAX_GRID_POINTS:
        return None
    return Grid.around(t, dt, memory_s, k, max(MAX_RATE_PER_BANDWIDTH * bandwidth_hz, rate))


def cubic_at(y: np.ndarray, t0: float, step: float, t) -> np.ndarray:
    """Catmull-Rom (Keys a = -1/2) cubic interpolation of samples ``y`` at t0 + i step, at times ``t``.

    Error ~ (pi f step)^4 / 8 for a tone at f: < 4e-3 at f step = 0.1 and < 1e-4 at 0.04."""
    t = np.asarray(t, dtype=float)
    u = (t - t0) / step
    i = np.floor(u)
    mu = (u - i).astype(y.dtype if y.dtype.kind == "f" else float)
    i = np.clip(i.astype(np.int64), 1, y.size - 3)
    p0, p1, p2, p3 = y[i - 1], y[i], y[i + 1], y[i + 2]
    return p1 + 0.5 * mu * (p2 - p0 + mu * (2 * p0 - 5 * p1 + 4 * p2 - p3 + mu * (3 * (p1 - p2) + p3 - p0)))


def band_grid(t, bandwidth_hz: float, memory_s: float) -> Grid | None:
    """Evaluation grid for a part of bandwidth ``bandwidth_hz`` and memory ``memory_s`` at times ``t``.

    The grid rate is between 2 and ``MAX_RATE_PER_BANDWIDTH`` times the bandwidth (oversampling a
    coarse request, interpolating a needlessly fine one: linear interpolation of a signal sampled at
    32 B errs by < 0.5 % at B). None when only the DC response can apply (module docstring).
    """
    t = np.asarray(t)
    dt = uniform_step(t)
    if dt is None:
        return None
    k = max(1, math.ceil(2.0 * bandwidth_hz * dt * (1 - 1e-12)))
    if k > MAX_OVERSAMPLE or t.size * k > MAX_GRID_POINTS:
        return None
    return Grid.around(t, dt, memory_s, k, MAX_RATE_PER_BANDWIDTH * bandwidth_hz)


def delay_free(stage: LowPass):
    """H(f) exp(+j 2 pi f tau0) of a filters.LowPass: its response with the DC group delay removed
    (what ``LowPass.apply(..., remove_delay=True)`` applies), as a function of f for ResponseCache."""
    tau = stage.group_delay_s
    return lambda f: stage.response(f) * np.exp(2j * np.pi * f * tau)


def lowpass_memory_s(f3db_hz: float, order: int) -> float:
    """Padding for a low-pass: (2 n + 4) / f3db, > 1e-6 decay of a Butterworth/Bessel impulse response
    (slowest pole decays as exp(-2 pi f3db sin(pi/2n) t)) plus its removed DC group delay."""
    return (2 * int(order) + 4) / f3db_hz
