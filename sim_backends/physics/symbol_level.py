"""Symbol-level model of the optical bench: one value per symbol per path, derived from the waveform models.

Issue 4, "two fidelity levels sharing one set of parameters". The waveform level simulates fields and
voltages at several samples per symbol (``converters.DAC`` -> MZM -> ``fibre.FibreSpan`` -> ``AWGR``
-> ``receiver.Receiver`` -> ``converters.ADC``). The symbol level reduces the same parameter objects to

* **per-path power transmissions** ``T[i, j]`` (input i's modulator output -> photodiode j): fibre
  loss, AWGR transmission of every carrier of the input (``AWGR.transmission``), pre-amplifier gain;
* **inter-symbol-interference taps** h_k = p(t_s + k T): the response of one NRZ symbol (a rectangular
  pulse of one symbol period T) through the linear chain, sampled at the symbol rate around the
  sampling instant t_s (k > 0 post-cursors: earlier symbols; k < 0 pre-cursors). The chain is the
  product of the DAC's analogue response, the MZM electro-optic low-pass (``filters.LowPass``, its DC
  delay removed as the bench MZM does), the fibre's small-signal intensity response
  ``FibreSpan.small_signal_response`` (CD power fading, Wang & Petermann 1992), the receiver response
  and the ADC front end. The pulse response is evaluated by an inverse FFT of P(f) H(f) on a fine
  periodic grid (P = T sinc(f T) e^{-j pi f T}, the exact spectrum of the rectangle);
* **noise variances** per output as a polynomial in the symbol's mean output v (volts at the ADC):
  sigma^2(v) = a + b v + c v^2, built from ``Receiver.noise_variances`` (shot, thermal, RIN,
  signal-ASE, ASE-ASE) with the receiver's noise bandwidth replaced by the bandwidth that actually
  reaches the ADC sampler, B_eff = int_0^inf |H_rx H_adc|^2 df, plus the ADC's quantisation
  (Delta^2 / 12) and ENOB excess noise (``ADC.excess_noise_rms``); optional aperture jitter adds
  (sigma_t dv/dt)^2 with dv/dt from derivative taps p'(t_s + k T).

``SymbolCore.detect(x, rng)`` then simulates a whole N_in x N_out core on a batch of symbol slots:
photodetection adds powers, so it is ONE float32 matrix product ``x @ G`` (G = gain R T h_0), plus
the remaining ISI taps as a short convolution along the slot axis, plus Gaussian noise of the
per-symbol variance sigma^2(v).

Validity (what the symbol level assumes; use the waveform level where it does not hold)
--------------------------------------------------------------------------------------
* The chain is linear in optical power. Filters after the photodiode are (exactly); the DAC and EO
  filters act on the drive voltage before the MZM's cos^2, and fibre dispersion acts on the field,
  so their ISI is exact only to first order in the modulation depth (small-signal). The symbol
  level applies the MZM transfer per symbol, then all taps to the power; for full-swing drives
  through wide-band electronics (ISI mostly from the receiver) the error is second order.
* Shot, signal-ASE and RIN variances are evaluated at the symbol's filtered mean current (the
  waveform level weights the instantaneous current by the squared impulse response): equal on
  average, different per symbol only where the signal changes within the receiver's memory.
* Noise samples are independent from slot to slot (the receiver noise is coloured at the
  waveform level; ``noise_correlation`` reports the neglected lag-k correlation).
* Carriers reaching one photodiode are distinct wavelengths spaced far more than the receiver
  bandwidth (their beat terms average out), and arrive time-aligned: a fibre walk-off spread of
  more than a quarter symbol raises ValueError. RIN is taken as common to all inputs (inputs split
  from one laser or comb), i.e. RIN_lin I^2 B_eff on the total current.
* Slots before the first and after the last slot of a batch are dark (zero input).

Gaussian deviates for ``detect`` come from the caller's seeded ``numpy.random.Generator``: two
child generators are seeded from it per call (fixed count, so results do not depend on threading),
(SFC64) and their raw 16-bit words index a 65536-cell inverse-CDF table of cell-conditional means; the two
outermost cells (|z| > 4.17) are replaced by exact tail draws (``scipy.special.ndtri``), so the
deviates have unit variance to < 1e-6 and exact tails. (numpy's own ziggurat is ~10x slower here.)
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import scipy.fft as sfft
from scipy import integrate, special

from sim_backends.physics.converters import lowpass_response
from sim_backends.physics.receiver import NOISE_TERMS

__all__ = ["SymbolCore", "isi_taps", "pulse_response", "standard_normal_f32", "waveform_link"]

#: independent random streams per ``detect`` call (fixed, so threads never change the result)
STREAMS = 2
#: symbol slots per chunk of ``detect`` (keeps its working set in cache)
CHUNK_SLOTS = 8192
#: OpenBLAS runs a GEMM on the calling thread when M N K <= 65536 * 4 (interface/gemm.c)
GEMM_SINGLE_THREAD_MNK = 1 << 18
_TABLE_BITS = 16

_pool: ThreadPoolExecutor | None = None


def _require(name: str, value: float, low: float, high: float = float("inf")) -> float:
    """Refuse a non-physical parameter with an error that names it and the allowed range."""
    value = float(value)
    if math.isnan(value) or not (low <= value <= high):
        raise ValueError(f"{name}={value!r} is outside the physical range [{low}, {high}]")
    return value


# -- fast Gaussian deviates --------------------------------------------------------------------------


def _normal_table() -> np.ndarray:
    """E[Z | Z in cell k] for the 2^16 equal-probability cells of the standard normal (float32)."""
    global _TABLE
    if _TABLE is None:
        n = 1 << _TABLE_BITS
        edges = special.ndtri(np.arange(n + 1) / n)  # -inf .. +inf
        pdf = np.exp(-0.5 * edges**2) / math.sqrt(2 * math.pi)
        pdf[0] = pdf[-1] = 0.0
        _TABLE = ((pdf[:-1] - pdf[1:]) * n).astype(np.float32)
    return _TABLE


_TABLE: np.ndarray | None = None


def _fill_normal(gen: np.random.Generator, out: np.ndarray, table: np.ndarray | None = None,
                 scale: float = 1.0) -> None:
    """Fill the 1-D float32 ``out`` with normal deviates of std ``scale`` (``table`` = scale x the
    standard table) from ``gen`` (see the module docstring)."""
    n = out.size
    words = gen.bit_generator.random_raw((n + 3) // 4)
    idx = words.view(np.uint16)[:n]
    np.take(_normal_table() if table is None else table, idx, out=out, mode="clip")
    # outermost cells (probability 2^-16 each): exact draws from the tails |z| > ndtri(1 - 2^-16)
    tail = np.flatnonzero((idx - np.uint16(1)) >= np.uint16((1 << _TABLE_BITS) - 2))
    if tail.size:
        z = -special.ndtri(gen.random(tail.size) * 2.0**-_TABLE_BITS) * scale  # upper tail, > 4.17
        out[tail] = np.where(idx[tail] == 0, -z, z)


def standard_normal_f32(rng: np.random.Generator, size, out: np.ndarray | None = None) -> np.ndarray:
    """Standard normal float32 deviates of shape ``size`` from the seeded generator ``rng``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator (seeded by the caller)")
    if out is None:
        out = np.empty(size, dtype=np.float32)
    elif out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float32 array")
    _fill_normal(rng, out.reshape(-1))
    return out


def _child_generators(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator (seeded by the caller)")
    seeds = rng.integers(0, 2**63, size=count)
    # SFC64 (passes PractRand/BigCrush) gives raw bits ~15 % faster than PCG64 here
    return [np.random.Generator(np.random.SFC64(int(s))) for s in seeds]


# -- pulse responses and ISI taps ----------------------------------------------------------------------


def _grid(symbol_rate: float, oversample: int, period_symbols: int):
    t_sym = 1.0 / symbol_rate
    m = period_symbols * oversample
    f = sfft.rfftfreq(m, t_sym / oversample)
    return t_sym, m, f


def pulse_response(h_of_f: Callable[[np.ndarray], np.ndarray], width_s: float, sample_time_s: float,
                   step_s: float, count_before: int, count_after: int, *, symbol_rate: float,
                   oversample: int = 1024, period_symbols: int = 128, derivative: bool = False) -> np.ndarray:
    """p(sample_time + n step) for n = -count_before .. count_after, p = rect[0, width) through H.

    Evaluated as p(t) = (1/L) sum_m P(f_m) H(f_m) e^{j 2 pi f_m t} over the bins f_m = m / L of a
    period L = ``period_symbols`` / ``symbol_rate`` (tails beyond L wrap around: choose L longer than
    the chain's memory), truncated at oversample * symbol_rate / 2. ``step_s`` must be a whole number
    of grid steps 1 / (oversample symbol_rate). ``derivative`` returns dp/dt instead.
    """
    t_sym, m, f = _grid(symbol_rate, oversample, period_symbols)
    dt = t_sym / oversample
    step = step_s / dt
    if abs(step - round(step)) > 1e-6 * max(step, 1.0) or round(step) < 1:
        raise ValueError(f"step_s={step_s!r} must be a positive whole number of grid steps {dt!r} s")
    step = int(round(step))
    if (count_before + count_after + 1) * step > m:
        raise ValueError("the requested samples span more than one period of the evaluation grid")
    spec = width_s * np.sinc(f * width_s) * np.exp(-1j * np.pi * f * width_s)
    spec = spec * np.asarray(h_of_f(f), dtype=complex) * np.exp(2j * np.pi * f * sample_time_s)
    if derivative:
        spec = spec * (2j * np.pi * f)
    if m % 2 == 0:
        spec[-1] = spec[-1].real  # the Nyquist bin of a real record (negligible by construction)
    p = sfft.irfft(spec, n=m) * (m / (period_symbols * t_sym))
    idx = (np.arange(-count_before, count_after + 1) * step) % m
    return p[idx]


def isi_taps(h_of_f: Callable[[np.ndarray], np.ndarray], symbol_rate: float, sample_time_s: float | None = None,
             max_taps: int = 8, tolerance: float = 1e-3, oversample: int = 1024,
             period_symbols: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """ISI taps of an NRZ symbol through the linear response ``h_of_f`` (H(0) = DC gain).

    Returns (offsets, taps): taps[i] = p(sample_time + offsets[i] T), offsets in -max_taps..max_taps
    with |tap| >= tolerance * max|tap| (always including 0, the main cursor); the sum of the dropped
    taps is added to the main cursor so a constant input is reproduced exactly (sum taps = H(0)).
    ``sample_time_s`` is measured from the start of the symbol; default T / 2 (zero-phase chains).
    """
    symbol_rate = _require("symbol_rate", symbol_rate, 1.0, 1e13)
    if int(max_taps) != max_taps or not 0 <= max_taps <= 64:
        raise ValueError(f"max_taps={max_taps!r} must be an integer in [0, 64]")
    tolerance = _require("tolerance", tolerance, 0.0, 1.0)
    t_sym = 1.0 / symbol_rate
    t_s = 0.5 * t_sym if sample_time_s is None else float(sample_time_s)
    all_taps = pulse_response(h_of_f, t_sym, t_s, t_sym, max_taps, max_taps, symbol_rate=symbol_rate,
                              oversample=oversample, period_symbols=period_symbols)
    offsets = np.arange(-max_taps, max_taps + 1)
    dc = float(np.real(np.asarray(h_of_f(np.zeros(1)))[0]))
    keep = np.abs(all_taps) >= tolerance * np.max(np.abs(all_taps))
    keep[max_taps] = True
    taps = all_taps[keep].copy()
    offsets = offsets[keep]
    taps[offsets == 0] += dc - taps.sum()
    return offsets, taps


# -- the symbol-level core ----------------------------------------------------------------------------


class SymbolCore:
    """An N_in x N_out optical core at symbol level: y = (x * h) @ (gain R T) + offset + noise.

    Low-level constructor (``from_physics`` derives every argument from the waveform-level objects):

    ``transmission`` (N_in, N_out) optical power transmissions; ``responsivity`` A/W; ``gain_ohm``
    V/A; ``dark_current`` A; ``background_power_w``: unmodulated power on every detector (ASE,
    m_t S_sp B_o), W; ``taps``/``tap_offsets``: ISI taps, shape (K,) common to all paths or
    (N_in, K) per input (offsets (K,) integers, 0 = main cursor); ``noise_terms``: name ->
    (a, b, c) with variance a + b v + c v^2 in V^2 at mean output v (V); ``saturation_v``: the output
    clips there (photodiode saturation current x gain); ``adc``: a ``converters.ADC`` used when
    ``detect(..., quantise=True)`` (then the "adc_quantisation" term is not added as noise);
    ``jitter_taps``: derivative taps dp/dt (same offsets) for aperture jitter ``jitter_s``;
    ``threads``: worker threads for ``detect`` (default 1; the result never depends on it). Not
    thread-safe: ``detect`` reuses per-core scratch buffers.
    """

    def __init__(self, transmission, *, responsivity: float, gain_ohm: float, dark_current: float = 0.0,
                 background_power_w: float = 0.0, taps=(1.0,), tap_offsets=(0,), noise_terms: dict | None = None, saturation_v: float = np.inf,
                 adc=None, symbol_rate: float | None = None, jitter_s: float = 0.0, jitter_taps=None,
                 threads: int | None = None):
        t = np.array(transmission, dtype=float)
        if t.ndim != 2 or t.size == 0:
            raise ValueError("transmission must be a 2-D (N_in, N_out) array of power transmissions")
        if np.any(~np.isfinite(t)) or np.any(t < 0):
            raise ValueError("transmission entries must be finite and >= 0 (power transmissions)")
        self.transmission = t
        self.responsivity = _require("responsivity", responsivity, 1e-6, 1.3)
        self.gain_ohm = _require("gain_ohm", gain_ohm, 1e-3, 1e12)
        self.dark_current = _require("dark_current", dark_current, 0.0, 1e-3)
        self.background_power_w = _require("background_power_w", background_power_w, 0.0, 10.0)
        self.saturation_v = float(saturation_v)
        self.symbol_rate = None if symbol_rate is None else _require("symbol_rate", symbol_rate, 1.0, 1e13)
        self.adc = adc
        offsets = np.asarray(tap_offsets)
        taps = np.asarray(taps, dtype=float)
        if offsets.ndim != 1 or not np.issubdtype(offsets.dtype, np.integer) or 0 not in offsets:
            raise ValueError("tap_offsets must be a 1-D integer array containing 0 (the main cursor)")
        if len(set(offsets.tolist())) != offsets.size:
            raise ValueError("tap_offsets must not repeat")
        if taps.shape not in ((offsets.size,), (t.shape[0], offsets.size)):
            raise ValueError(f"taps must have shape ({offsets.size},) or ({t.shape[0]}, {offsets.size})")
        self.tap_offsets = offsets.astype(int)
        self.taps = taps
        self.jitter_s = _require("jitter_s", jitter_s, 0.0, 1e-6)
        self.jitter_taps = None if jitter_taps is None else np.asarray(jitter_taps, dtype=float)
        if self.jitter_s > 0 and (self.jitter_taps is None or self.jitter_taps.shape[-1] != offsets.size):
            raise ValueError("jitter_s > 0 needs jitter_taps with one derivative tap per offset")
        self.noise_terms = {k: tuple(float(c) for c in v) for k, v in (noise_terms or {}).items()}
        for name, coeffs in self.noise_terms.items():
            if len(coeffs) != 3 or not all(math.isfinite(c) for c in coeffs):
                raise ValueError(f"noise term {name!r} must be three finite coefficients (a, b, c)")
        self.threads = threads
        self.walk_off_spread_s = 0.0
        self.sample_time_s: float | None = None
        self.noise_bandwidth_hz: float | None = None
        self._prepare()

    # -- derived arrays ---------------------------------------------------------------------------

    @property
    def n_in(self) -> int:
        return self.transmission.shape[0]

    @property
    def n_out(self) -> int:
        return self.transmission.shape[1]

    @property
    def offset_v(self) -> float:
        """Output with no input signal: gain x (dark current + R x background (ASE) power)."""
        return self.gain_ohm * (self.dark_current + self.responsivity * self.background_power_w)

    @property
    def common_taps(self) -> bool:
        return self.taps.ndim == 1

    def _prepare(self):
        main = int(np.flatnonzero(self.tap_offsets == 0)[0])
        scale = self.gain_ohm * self.responsivity
        self._main = main
        if self.common_taps:
            h0 = self.taps[main]
            self._w = (scale * h0 * self.transmission).astype(np.float32)
            rel = self.taps / h0 if h0 != 0 else None
            if rel is None:
                raise ValueError("the main cursor tap is 0: choose another sample_time_s")
            self._post = [(int(k), np.float32(r)) for k, r in zip(self.tap_offsets, rel) if k != 0]
        else:
            self._w = (scale * self.transmission).astype(np.float32)
            self._post = []
        self._modes = {q: self._noise_mode(*self._coefficients(q)) for q in (False, True)}
        self._buffers: dict = {}

    def _noise_mode(self, a: float, b: float, c: float) -> tuple:
        """How the noise stage evaluates sigma(v) z cheaply: (kind, scale, beta, alpha, table).

        "none": no noise; "const": sigma = sqrt(a); "quad": sigma = sqrt(c) sqrt((v + beta)^2 + alpha)
        (alpha >= 0, i.e. b^2 <= 4 a c, so never negative); "lin": sigma = sqrt(b) sqrt(max(v + beta, 0));
        "general": sqrt(max(a + b v + c v^2 [+ jitter], 0)). The scale multiplies the Gaussian table.
        """
        if self.jitter_s > 0:
            return ("general", 1.0, 0.0, 0.0, _normal_table())
        if a == 0 and b == 0 and c == 0:
            return ("none", 0.0, 0.0, 0.0, None)
        if b == 0 and c == 0:
            scale = math.sqrt(max(a, 0.0))
            kind, beta, alpha = "const", 0.0, 0.0
        elif c > 0 and b * b <= 4 * a * c:
            scale, beta = math.sqrt(c), b / (2 * c)
            kind, alpha = "quad", a / c - beta * beta
        elif c == 0 and b > 0:
            scale, kind, beta, alpha = math.sqrt(b), "lin", a / b, 0.0
        else:
            return ("general", 1.0, 0.0, 0.0, _normal_table())
        return (kind, scale, beta, alpha, (_normal_table() * np.float32(scale)).astype(np.float32))

    def _coefficients(self, quantise: bool) -> tuple[float, float, float]:
        a = b = c = 0.0
        for name, (ta, tb, tc) in self.noise_terms.items():
            if quantise and name == "adc_quantisation":
                continue
            a, b, c = a + ta, b + tb, c + tc
        return a, b, c

    # -- closed forms -------------------------------------------------------------------------------

    def noise_variances(self, mean_output_v) -> dict[str, np.ndarray]:
        """Variance (V^2) of every noise term at mean output ``mean_output_v`` (V), and 'total'."""
        v = np.asarray(mean_output_v, dtype=float)
        out = {name: a + b * v + c * v * v for name, (a, b, c) in self.noise_terms.items()}
        out["total"] = sum(out.values()) if out else np.zeros_like(v)
        return out

    def mean(self, x) -> np.ndarray:
        """Noiseless outputs (float64) for input powers ``x`` (slots, N_in): the reference of ``detect``."""
        x = self._check_x(x, np.float64)
        scale = self.gain_ohm * self.responsivity
        xs = self._convolve_inputs(x, self.taps if not self.common_taps else None)
        y = xs @ (scale * self.transmission)
        if self.common_taps:
            y = self._convolve(y, self.taps)
        return np.minimum(y + self.offset_v, self.saturation_v)

    def _convolve(self, y: np.ndarray, taps: np.ndarray) -> np.ndarray:
        """sum_k taps[k] y[t - offset_k] along axis 0 (zero outside the batch)."""
        out = np.zeros_like(y)
        s = y.shape[0]
        for k, h in zip(self.tap_offsets, taps):
            k = int(k)
            if abs(k) >= s:
                continue
            if k >= 0:
                out[k:] += h * y[: s - k]
            else:
                out[: s + k] += h * y[-k:]
        return out

    def _convolve_inputs(self, x: np.ndarray, taps) -> np.ndarray:
        if taps is None:
            return x
        out = np.zeros_like(x)
        for i in range(x.shape[1]):
            out[:, i] = self._convolve(x[:, i:i + 1], taps[i])[:, 0]
        return out

    def _check_x(self, x, dtype) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"x must have shape (slots, {self.n_in}); got {x.shape}")
        x = np.ascontiguousarray(x, dtype=dtype)
        if x.size and not x.min() >= 0:
            raise ValueError("input optical powers x must be >= 0 W (and not NaN)")
        return x

    # -- simulation ----------------------------------------------------------------------------------

    def detect(self, x, rng: np.random.Generator, *, quantise: bool = False, noise: bool = True,
               out: np.ndarray | None = None) -> np.ndarray:
        """Detector outputs (V at the ADC, float32, shape (slots, N_out)) for input powers ``x`` (W).

        One float32 matrix product, the ISI taps along the slot axis, Gaussian noise with the
        per-symbol variance, saturation; ``quantise`` clips and quantises with the ADC's levels.
        """
        x = self._check_x(x, np.float32)
        if not self.common_taps:
            x = self._convolve_inputs(x, self.taps).astype(np.float32)
        slots = x.shape[0]
        shape = (slots, self.n_out)
        if out is None:
            out = np.empty(shape, np.float32)
        elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
        gens = _child_generators(rng, STREAMS) if noise else [None] * STREAMS
        bounds = np.linspace(0, slots, STREAMS + 1).astype(int)
        mode = self._modes[bool(quantise)]
        jobs = [(x, out, int(bounds[i]), int(bounds[i + 1]), gens[i], mode, quantise, i) for i in range(STREAMS)]
        threads = 1 if self.threads is None else int(self.threads)
        if threads > 1 and slots * self.n_out >= 1 << 18:
            global _pool
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=STREAMS, thread_name_prefix="symbol-core")
            for f in [_pool.submit(self._stage, *job) for job in jobs]:
                f.result()
        else:
            for job in jobs:
                self._stage(*job)
        return out

    def _stage(self, x, out, s0, s1, gen, mode, quantise, stream):
        """Slots s0..s1, chunk by chunk so every pass stays in cache: the matrix product of the chunk
        (plus the neighbours its ISI taps reach), ISI, noise, saturation (and quantisation)."""
        n = self.n_out
        kind, scale, beta, alpha, table = mode
        if gen is None:
            kind = "none"
        chunk = CHUNK_SLOTS
        reach_back = max(0, int(self.tap_offsets.max()))  # post-cursors need earlier slots
        reach_ahead = max(0, -int(self.tap_offsets.min()))
        rows = chunk + reach_back + reach_ahead
        bufs = self._buffers.get(stream)
        if bufs is None or bufs[0].shape != (rows, n) or bufs[1].size != chunk * n:
            bufs = self._buffers[stream] = (np.empty((rows, n), np.float32), np.empty(chunk * n, np.float32),
                                            np.empty(chunk * n, np.float32))
        ybuf, t, z = bufs
        # matrix products small enough that OpenBLAS runs them on the calling thread (its M N K <= 2^18
        # rule): no thread wake-ups per chunk, and no contention with other BLAS thread pools
        step = max(1, GEMM_SINGLE_THREAD_MNK // (self.n_in * n))
        w = self._w
        off = np.float32(self.offset_v)
        beta, alpha = np.float32(beta), np.float32(alpha)
        a, b, c = (np.float32(v) for v in self._coefficients(quantise))
        of = out.reshape(-1)
        slots = x.shape[0]
        v_sat = self.saturation_v
        for c0 in range(s0, s1, chunk):
            c1 = min(s1, c0 + chunk)
            m = (c1 - c0) * n
            r0, r1 = max(0, c0 - reach_back), min(slots, c1 + reach_ahead)
            yb = ybuf[:r1 - r0]
            for q0 in range(r0, r1, step):
                q1 = min(r1, q0 + step)
                np.matmul(x[q0:q1], w, out=yb[q0 - r0:q1 - r0])
            ybf = yb.reshape(-1)
            o = of[c0 * n: c1 * n]
            tt, zz = t[:m], z[:m]
            np.add(ybf[(c0 - r0) * n:(c1 - r0) * n], off, out=o)
            for k, h in self._post:  # ISI: o[s] += h y[s - k]
                lo, hi = max(c0, k), min(c1, slots + k)
                if hi <= lo:
                    continue
                seg = slice((lo - c0) * n, (hi - c0) * n)
                np.multiply(ybf[(lo - k - r0) * n:(hi - k - r0) * n], h, out=tt[seg])
                o[seg] += tt[seg]
            if kind != "none":
                _fill_normal(gen, zz, table, scale)
                if kind == "const":
                    o += zz
                else:
                    if kind == "quad":  # sqrt((v + beta)^2 + alpha) (scale sqrt(c) is in the table)
                        np.add(o, beta, out=tt)
                        np.square(tt, out=tt)
                        tt += alpha
                    elif kind == "lin":  # sqrt(max(v + beta, 0)) (scale sqrt(b) in the table)
                        np.add(o, beta, out=tt)
                        np.maximum(tt, 0, out=tt)
                    else:
                        np.multiply(o, c, out=tt)
                        tt += b
                        tt *= o
                        tt += a
                        if self.jitter_s > 0:
                            slope = self._slope(yb, r0, c0, c1, slots)
                            slope *= np.float32(self.jitter_s)
                            slope *= slope
                            tt += slope
                        np.maximum(tt, 0, out=tt)
                    np.sqrt(tt, out=tt)
                    tt *= zz
                    o += tt
            if np.isfinite(v_sat) and o.size and o.max() > v_sat:
                np.minimum(o, np.float32(v_sat), out=o)
            if quantise:
                self._quantise(o)

    def _slope(self, yb, r0, c0, c1, slots) -> np.ndarray:
        """dv/dt at the sampling instants of slots c0..c1: derivative taps on the pre-ISI outputs
        ``yb`` (rows r0.. of the matrix product, scaled by the main cursor)."""
        h0 = self.taps[self._main] if self.common_taps else 1.0
        out = np.zeros((c1 - c0, yb.shape[1]), np.float32)
        for k, h in zip(self.tap_offsets, self.jitter_taps / h0):
            k = int(k)
            lo, hi = max(c0, k), min(c1, slots + k)
            if hi > lo:
                out[lo - c0: hi - c0] += np.float32(h) * yb[lo - k - r0: hi - k - r0]
        return out.reshape(-1)

    def _quantise(self, o: np.ndarray) -> None:
        """The ADC's clip + mid-rise quantiser (``ADC.codes`` then ``ADC.levels``), in float32 in place."""
        adc = self.adc
        if adc is None:
            raise ValueError("quantise=True needs the core's adc (a converters.ADC)")
        v_min = adc.offset_v - adc.full_scale_v / 2
        lsb = adc.lsb_v
        np.subtract(o, np.float32(v_min), out=o)
        o *= np.float32(1.0 / lsb)
        np.floor(o, out=o)
        np.clip(o, 0, 2**adc.bits - 1, out=o)
        o += np.float32(0.5)
        o *= np.float32(lsb)
        o += np.float32(v_min)

    # -- drive mode ------------------------------------------------------------------------------------

    def powers_from_drive(self, drive_v, rng: np.random.Generator | None = None, noise: bool = True) -> np.ndarray:
        """Optical powers (W, float64) at the modulator outputs for DAC target voltages (slots, N_in).

        The drive is quantised to the DAC's levels (``DAC.codes``/``levels``), gets the DAC excess
        noise (and driver noise) referred to one value per symbol, passes the driver's gain/tanh and
        the MZM transfer at the bias, times the laser power. Needs a core built by ``from_physics``.
        """
        drive = getattr(self, "_drive", None)
        if drive is None:
            raise ValueError("this core has no modulator model: build it with SymbolCore.from_physics(mzm=...)")
        v = np.asarray(drive_v, dtype=float)
        if v.ndim != 2 or v.shape[1] != self.n_in:
            raise ValueError(f"drive_v must have shape (slots, {self.n_in}); got {v.shape}")
        dac = drive["dac"]
        if dac is not None:
            v = dac.levels(dac.codes(v))
        if noise and drive["sigma_in"] > 0:
            if not isinstance(rng, np.random.Generator):
                raise ValueError("rng must be a numpy.random.Generator (seeded by the caller)")
            v = v + drive["sigma_in"] * rng.standard_normal(v.shape)
        v_rf = drive["amplify"](v)
        return drive["laser_w"] * _mzm_power(drive["mzm"], v_rf, drive["bias_v"])

    def detect_drive(self, drive_v, rng: np.random.Generator, **kwargs) -> np.ndarray:
        """``detect(powers_from_drive(drive_v, rng), rng, **kwargs)``."""
        return self.detect(self.powers_from_drive(drive_v, rng, kwargs.get("noise", True)), rng, **kwargs)

    # -- derivation from the waveform-level objects ---------------------------------------------------

    @classmethod
    def from_physics(cls, symbol_rate: float, *, receiver, adc=None, dac=None, mzm=None, bias_v: float = 0.0,
                     laser_power_w=1e-3, driver=None, drive_gain: float = 1.0, eo_filter=None,
                     fibre=None, awgr=None, wavelengths_m=None, carrier_weights=None, transmission=None,
                     n_inputs: int | None = None, preamp=None, preamp_input_power_w: float = 0.0,
                     ase_psd_w_per_hz: float = 0.0, optical_bw_hz: float = 0.0, polarizations: int = 2,
                     sample_time_s: float | None = None, max_taps: int = 8, tap_tolerance: float = 1e-3,
                     signal_frequency_hz: float = 0.0, threads: int | None = None) -> "SymbolCore":
        """Reduce the waveform-level parameter objects to a symbol-level core.

        Chain per input i: [``dac`` (converters.DAC) -> ``driver`` (electrical.RFAmplifier: gain,
        tanh, noise) or ``drive_gain`` -> ``mzm`` (bench MachZehnderModulator, its ``eo_filter``
        or ``eo_filter`` given here, DC delay removed) at ``bias_v``, laser ``laser_power_w``] ->
        ``fibre`` (FibreSpan, or a list with one per input, or None) -> ``awgr`` (carriers
        ``wavelengths_m`` (N_in,) or (N_in, n_carriers) with power fractions ``carrier_weights``;
        default: input i on the wavelength routed to output i) or an explicit ``transmission``
        (N_in, N_out) -> ``preamp`` (EDFA in front of every photodiode; ASE from its PSD and its
        optical filter, which must be set) -> ``receiver`` (Receiver) -> ``adc`` (ADC).

        AWGR default: every input carries the N wavelengths of its routing-table row (a comb; carrier
        c goes to output c) with power fractions ``carrier_weights`` (N_in, N), default 1/N each, so
        T[i, j] ~ IL w[i, j] plus crosstalk: the weights of an AWGR matrix-vector product.

        ``sample_time_s`` (from the symbol's start): default T/2 + the DC group delays of causal
        stages (none for the bench's zero-phase and delay-removed filters). Walk-off across the
        carriers of more than T/4 raises ValueError (see the module docstring).
        """
        symbol_rate = _require("symbol_rate", symbol_rate, 1.0, 1e13)
        t_sym = 1.0 / symbol_rate
        fibres, t, wl = _paths(fibre, awgr, wavelengths_m, carrier_weights, transmission, n_inputs)
        n_in = t.shape[0]

        # walk-off across every carrier that reaches a detector
        delays = []
        for i, fb in enumerate(fibres):
            if fb is not None and wl is not None:
                delays.extend(np.atleast_1d(fb.walk_off(wl[i])).tolist())
        spread = (max(delays) - min(delays)) if delays else 0.0
        if spread > 0.25 * t_sym:
            raise ValueError(f"the carriers walk off by {spread:.3g} s over the fibre, more than a quarter of the "
                             f"symbol period {t_sym:.3g} s; the symbol level assumes aligned symbols "
                             "(use the waveform level, or one fibre per input)")

        # electrical / intensity response of each path
        pre = []
        dac_m = 1
        if dac is not None:
            ratio = dac.sample_rate / symbol_rate
            if abs(ratio - round(ratio)) > 1e-9 * ratio or round(ratio) < 1:
                raise ValueError(f"symbol_rate={symbol_rate:g} must divide the DAC sample_rate={dac.sample_rate:g} "
                                 "(a whole number of DAC samples per symbol)")
            dac_m = int(round(ratio))
            if dac.bandwidth_hz is not None:
                pre.append(lambda f, d=dac: lowpass_response(f, d.bandwidth_hz, d.response, d.response_order))
        eo = eo_filter if eo_filter is not None else getattr(mzm, "eo_filter", None)
        if eo is not None:
            tau = eo.group_delay_s
            pre.append(lambda f, e=eo, tau=tau: e.response(f) * np.exp(2j * np.pi * f * tau))
        post = [lambda f: lowpass_response(f, receiver.bandwidth_hz, receiver.response, receiver.response_order)]
        if adc is not None and adc.bandwidth_hz is not None:
            post.append(lambda f: lowpass_response(f, adc.bandwidth_hz, adc.response, adc.response_order))

        def chain(stages):
            def h(f):
                out = np.ones(np.shape(f), dtype=complex)
                for s in stages:
                    out = out * s(f)
                return out
            return h

        def fibre_stage(fb, lam):
            if fb is None:
                return []
            lam0 = None if lam is None else float(np.mean(lam))
            return [lambda f, fb=fb, lam0=lam0: fb.small_signal_response(f, 0.0, lam0)]

        bandwidths = [s for s in (getattr(dac, "bandwidth_hz", None), getattr(eo, "f3db_hz", None),
                                  receiver.bandwidth_hz, getattr(adc, "bandwidth_hz", None)) if s]
        f_lo = min(bandwidths)
        period = int(2 ** math.ceil(math.log2(max(128, 40 * symbol_rate / f_lo, 4 * (max_taps + 1)))))
        oversample = 1024 * dac_m
        if sample_time_s is None:
            sample_time_s = 0.5 * t_sym
        kw = dict(symbol_rate=symbol_rate, oversample=oversample, period_symbols=period)
        taps, offsets = [], None
        for i, fb in enumerate(fibres):
            lam = None if wl is None else wl[i]
            off, tp = isi_taps(chain(pre + fibre_stage(fb, lam) + post), symbol_rate, sample_time_s, max_taps,
                               tap_tolerance, oversample, period)
            taps.append(dict(zip(off.tolist(), tp.tolist())))
        offsets = sorted(set().union(*taps))
        tap_array = np.array([[d.get(k, 0.0) for k in offsets] for d in taps])
        ref = np.abs(tap_array).max()
        if np.all(np.abs(tap_array - tap_array[0]) <= tap_tolerance * ref):
            tap_array = tap_array.mean(axis=0)

        # derivative taps for aperture jitter (full window, first path's chain)
        jitter_s = float(getattr(adc, "jitter_s", 0.0) or 0.0)
        jitter_taps = None
        if jitter_s > 0:
            full = pulse_response(chain(pre + fibre_stage(fibres[0], None if wl is None else wl[0]) + post), t_sym,
                                  sample_time_s, t_sym, max_taps, max_taps, derivative=True, **kw)
            jitter_taps = full[np.asarray(offsets) + max_taps]

        # pre-amplifier gain and ASE
        gain = 1.0
        if preamp is not None:
            if preamp.optical_bandwidth_hz is None:
                raise ValueError("preamp needs optical_bandwidth_hz (the ASE filter) at symbol level")
            gain = float(preamp.gain(preamp_input_power_w))
            lam_c = 1550e-9 if wl is None else float(np.mean(wl))
            ase_psd_w_per_hz = float(preamp.ase_psd_w_per_hz(lam_c, gain))
            optical_bw_hz = float(preamp.noise_bandwidth_hz(1.0))
        t = t * gain

        # noise at the ADC sampler
        h_noise = chain(post)
        b_eff = _power_integral(lambda f: np.abs(h_noise(f)) ** 2, bandwidths_of(receiver, adc))
        terms = _receiver_terms(receiver, ase_psd_w_per_hz, optical_bw_hz, polarizations, b_eff, h_noise,
                                bandwidths_of(receiver, adc))
        g = receiver.gain_ohm
        r = receiver.responsivity
        p_bg = polarizations * ase_psd_w_per_hz * optical_bw_hz  # ASE power on the detector
        v_0 = g * (receiver.dark_current + r * p_bg)
        noise_terms = {}
        for name, (c0, c1, c2) in terms.items():
            # signal power P = (v - v_0) / (g r): sigma_V^2 = g^2 (c0 + c1 P + c2 P^2)
            al, be = 1.0 / (g * r), -v_0 / (g * r)
            noise_terms[name] = (g * g * (c0 + c1 * be + c2 * be * be), g * g * (c1 * al + 2 * c2 * al * be),
                                 g * g * c2 * al * al)
        if adc is not None:
            noise_terms["adc_quantisation"] = (adc.lsb_v ** 2 / 12.0, 0.0, 0.0)
            noise_terms["adc_excess"] = (adc.excess_noise_rms(signal_frequency_hz) ** 2, 0.0, 0.0)

        core = cls(t, responsivity=r, gain_ohm=g, dark_current=receiver.dark_current, background_power_w=p_bg,
                   taps=tap_array, tap_offsets=np.array(offsets), noise_terms=noise_terms,
                   saturation_v=g * receiver.saturation_current, adc=adc, symbol_rate=symbol_rate,
                   jitter_s=jitter_s, jitter_taps=jitter_taps, threads=threads)
        core.sample_time_s = float(sample_time_s)
        core.noise_bandwidth_hz = b_eff
        core.walk_off_spread_s = spread
        core._noise_filter = h_noise

        # drive side: DAC excess noise and driver noise referred to one value per symbol
        if mzm is not None:
            laser = np.broadcast_to(np.asarray(laser_power_w, dtype=float), (n_in,)).copy()
            if np.any(laser < 0):
                raise ValueError("laser_power_w must be >= 0 W")
            h_sum2 = float(np.sum(np.atleast_2d(core.taps) [0] ** 2))
            var_in = 0.0
            full_chain = chain(pre + fibre_stage(fibres[0], None if wl is None else wl[0]) + post)
            if dac is not None:
                sigma_x = dac.excess_noise_rms(signal_frequency_hz)
                if sigma_x > 0:
                    span = (max_taps + 1) * dac_m
                    g_dac = pulse_response(full_chain, t_sym / dac_m, sample_time_s, t_sym / dac_m, span, span, **kw)
                    var_in += sigma_x**2 * float(np.sum(g_dac**2)) / h_sum2
            gain_v = drive_gain
            amplify = (lambda v, k=float(drive_gain): k * v)
            if driver is not None:
                gain_v = driver.voltage_gain
                v_sat = driver.saturated_output_vpp / 2
                amplify = (lambda v, k=gain_v, s=v_sat: s * np.tanh(k * v / s))
                world = getattr(driver, "world", None)
                temp = world.temperature_k if world is not None else receiver.temperature_k
                f_n = 10 ** (driver.noise_figure_db / 10)
                psd = f_n * 1.380649e-23 * temp * 50.0 * gain_v**2  # V^2/Hz (one-sided), as RFAmplifier
                after = chain(([pre[-1]] if eo is not None else []) + fibre_stage(fibres[0], None) + post)
                bw = bandwidths_of(receiver, adc) + ([eo.f3db_hz] if eo is not None else [])
                var_drv = psd * _power_integral(lambda f: np.abs(after(f)) ** 2, bw)
                var_in += var_drv / gain_v**2 / h_sum2  # referred to the driver input, per symbol
            core._drive = dict(dac=dac, mzm=mzm, bias_v=float(bias_v), laser_w=laser, amplify=amplify,
                               sigma_in=math.sqrt(var_in))
        return core

    def noise_correlation(self, lag: int = 1) -> float:
        """Correlation of the receiver noise between samples ``lag`` symbols apart (neglected here)."""
        if self.symbol_rate is None or getattr(self, "_noise_filter", None) is None:
            raise ValueError("noise_correlation needs a core built by from_physics")
        h = self._noise_filter
        tau = lag / self.symbol_rate
        num = integrate.quad(lambda f: float(np.abs(h(np.array([f]))[0]) ** 2 * np.cos(2 * np.pi * f * tau)),
                             0, 20 * self.noise_bandwidth_hz, limit=2000)[0]
        return num / self.noise_bandwidth_hz


def bandwidths_of(receiver, adc) -> list[float]:
    out = [receiver.bandwidth_hz]
    if adc is not None and adc.bandwidth_hz is not None:
        out.append(adc.bandwidth_hz)
    return out


def _power_integral(power_of_f: Callable, breakpoints: Sequence[float], weight=None) -> float:
    """int_0^inf power(f) [weight(f)] df, split at the bandwidths so quad resolves knees and brickwalls."""
    if weight is None:
        def fun(f):
            return float(power_of_f(np.array([f]))[0])
    else:
        def fun(f):
            return float(power_of_f(np.array([f]))[0] * weight(f))
    top = 40 * max(breakpoints)
    edges = sorted({0.0, *breakpoints, *(4 * b for b in breakpoints), top})
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        total += integrate.quad(fun, lo, hi, limit=400, epsabs=0.0, epsrel=1e-10)[0]
    # the tail beyond 40x the widest stage, in the scaled variable u = f / top (quad's map of an infinite
    # range has unit scale: unscaled it would miss a tail of width ~top)
    total += top * integrate.quad(lambda u: fun(top * u), 1.0, np.inf, limit=400, epsabs=1e-12 * total / top,
                                  epsrel=1e-8)[0]
    return total


def _receiver_terms(receiver, ase_psd, optical_bw, polarizations, b_eff, h_noise, breakpoints) -> dict:
    """Each Receiver noise term as a quadratic in the optical power P (A^2), at the ADC's bandwidth.

    The coefficients come from ``Receiver.noise_variances`` at P = 0, p1, 2 p1 (each term is at most
    quadratic in P); white terms are rescaled from the receiver's B_e to ``b_eff``, ASE-ASE from
    (2 B_o - b) b to int_0^B_o 2 (B_o - f) |H|^2 df.
    """
    p1 = 1e-3
    vals = [receiver.noise_variances(p, ase_psd, optical_bw, polarizations) for p in (0.0, p1, 2 * p1)]
    b_rx = receiver.noise_bandwidth_hz
    out = {}
    for name in NOISE_TERMS:
        v0, v1, v2 = (float(v[name]) for v in vals)
        c2 = (v2 - 2 * v1 + v0) / (2 * p1 * p1)
        c1 = (v1 - v0) / p1 - c2 * p1
        if name == "ase_ase":
            if v0 == 0:
                continue
            b = min(b_rx, optical_bw)
            tri = _power_integral(lambda f: np.abs(h_noise(f)) ** 2, list(breakpoints) + [optical_bw],
                                  weight=lambda f: 2 * max(optical_bw - f, 0.0))
            scale = tri / ((2 * optical_bw - b) * b)
        else:
            scale = b_eff / b_rx
        if v0 == 0 and c1 == 0 and c2 == 0:
            continue
        out[name] = (v0 * scale, c1 * scale, c2 * scale)
    return out


def _mzm_power(mzm, v_rf, bias_v):
    """MZM power transmission for RF drive ``v_rf`` at ``bias_v`` (bench model or a plain transfer)."""
    if hasattr(mzm, "field_transmission"):
        return np.asarray(mzm.field_transmission(v_rf, bias_v)) ** 2
    return np.asarray(mzm.power_transmission(np.asarray(v_rf) + bias_v))


def _paths(fibre, awgr, wavelengths_m, carrier_weights, transmission, n_inputs):
    """(fibre per input, T (N_in, N_out) without the pre-amplifier, wavelengths per input or None)."""
    if transmission is not None and awgr is not None:
        raise ValueError("give either awgr or transmission, not both")
    wl = None
    if awgr is not None:
        n = awgr.ports
        if wavelengths_m is None:  # a comb per input: carrier c goes to output c
            ports = np.arange(1, n + 1)
            wl = awgr.wavelength_for(ports[:, None], ports[None, :])
            if carrier_weights is None:
                carrier_weights = np.full((n, n), 1.0 / n)
        else:
            wl = np.asarray(wavelengths_m, dtype=float).reshape(n, -1)
        w = np.ones_like(wl) if carrier_weights is None else np.asarray(carrier_weights, float).reshape(wl.shape)
        if np.any(w < 0):
            raise ValueError("carrier_weights must be >= 0 (power fractions)")
        ports = np.arange(1, n + 1)
        tm = awgr.transmission(ports[:, None, None], ports[None, :, None], wl[:, None, :])  # (i, j, c)
        t = np.sum(tm * w[:, None, :], axis=2)
    elif transmission is not None:
        t = np.asarray(transmission, dtype=float)
        if t.ndim != 2:
            raise ValueError("transmission must be a 2-D (N_in, N_out) array")
        if wavelengths_m is not None:
            wl = np.asarray(wavelengths_m, dtype=float).reshape(t.shape[0], -1)
    else:
        n = 1 if n_inputs is None else int(n_inputs)
        t = np.eye(n)
        if wavelengths_m is not None:
            wl = np.asarray(wavelengths_m, dtype=float).reshape(n, -1)
    n_in = t.shape[0]
    if fibre is None or not isinstance(fibre, (list, tuple)):
        fibres = [fibre] * n_in
    else:
        if len(fibre) != n_in:
            raise ValueError(f"fibre must be one FibreSpan or a list of {n_in} (one per input)")
        fibres = list(fibre)
    loss = np.array([1.0 if fb is None else fb.power_transmission for fb in fibres])
    return fibres, t * loss[:, None], wl


# -- the waveform-level twin (reference for the agreement test and the benchmark) ------------------------


def waveform_link(drive_v, rng: np.random.Generator, *, symbol_rate: float, dac, mzm, receiver, adc,
                  bias_v: float = 0.0, laser_power_w: float = 1e-3, drive_gain: float = 1.0, eo_filter=None,
                  fibre=None, wavelength_m: float | None = None, preamp=None, upsample: int = 2,
                  noise: bool = True, sample_index: int | None = None, return_waveform: bool = False):
    """Simulate one path at waveform level from the same objects as ``SymbolCore.from_physics``.

    ``drive_v`` (n_symbols,) DAC target voltages -> ``dac.convert`` (quantise, ENOB noise, hold,
    analogue filter; ``upsample`` points per DAC sample) -> x ``drive_gain`` -> MZM EO filter
    (``eo_filter`` or ``mzm.eo_filter``, DC delay removed) -> MZM field transmission at ``bias_v``
    times sqrt(laser power) -> ``fibre.propagate`` -> ``preamp.amplify_dual_pol`` (both
    polarisations of ASE) -> ``receiver.detect`` (volts = current x gain) -> ``adc.sample`` (the ADC
    runs at the waveform rate) -> the sample of each symbol at ``sample_index`` (default the middle
    of the symbol). The record is periodic (FFT filters). Returns (samples, sample_time_s) where
    sample_time_s is the equivalent continuous-time instant from the symbol's start (the held DAC
    sample n covers [(n - 1/2), (n + 1/2)) fine steps), or also the ADC waveform.
    """
    symbol_rate = _require("symbol_rate", symbol_rate, 1.0, 1e13)
    m = dac.sample_rate / symbol_rate
    if abs(m - round(m)) > 1e-9 * m:
        raise ValueError("symbol_rate must divide the DAC sample_rate")
    m = int(round(m))
    fs = dac.sample_rate * upsample
    sps = m * upsample
    if abs(adc.sample_rate - fs) > 1e-6 * fs:
        raise ValueError(f"adc.sample_rate must equal the waveform rate {fs:g} Sa/s here")
    drive = np.repeat(np.asarray(drive_v, dtype=float), m)
    v = dac.convert(drive, rng, upsample=upsample, analog=True) * drive_gain
    eo = eo_filter if eo_filter is not None else getattr(mzm, "eo_filter", None)
    if eo is not None:
        v = eo.apply(v, fs, remove_delay=True)
    if hasattr(mzm, "field_transmission"):
        field = mzm.field_transmission(v, bias_v)
    else:
        field = np.sqrt(mzm.power_transmission(v + bias_v))
    field = field * math.sqrt(laser_power_w) + 0j
    if fibre is not None:
        field = fibre.propagate(field, fs, wavelength_m)
    power = np.abs(field) ** 2
    if preamp is not None:
        lam = 1550e-9 if wavelength_m is None else wavelength_m
        co, ortho = preamp.amplify_dual_pol(field, fs, lam, rng, add_noise=noise)
        power = np.abs(co) ** 2 + np.abs(ortho) ** 2
    volts = receiver.detect(power, fs, rng, noise=noise) * receiver.gain_ohm
    samples = adc.sample(volts, rng, input_rate=fs)
    k = sps // 2 if sample_index is None else int(sample_index)
    picked = samples[k::sps]
    t_s = (k + 0.5) / fs
    if return_waveform:
        return picked, t_s, samples
    return picked, t_s
