"""DAC/AWG and ADC/scope models: quantisation, excess noise to an ENOB, clipping, jitter, bandwidth.

Conventions (PHYSICS.md section 3, "Scope/ADC" and "Precision"):

* Full scale ``FS`` is the peak-to-peak range, centred on ``offset_v``: [offset - FS/2, offset + FS/2].
  N bits give the step Delta = FS / 2^N and mid-rise levels offset - FS/2 + (k + 1/2) Delta,
  k = 0 .. 2^N - 1; an ideal quantiser adds noise of variance Delta^2 / 12. Inputs beyond the range
  clip to the end levels.
* ENOB is full-scale referred (IEEE Std 1241): ENOB = log2(FS / (sqrt(12) sigma_nad)), which equals
  (SINAD_dB - 1.76) / 6.02 for a full-scale sine. To reach a configured ENOB the model adds Gaussian
  noise of variance sigma_x^2 = FS^2 / 12 * (4^-ENOB - 4^-N), so quantisation + excess = FS^2 4^-ENOB / 12.
* Aperture jitter (rms sigma_t) adds v'(t) * dt with dt ~ N(0, sigma_t^2); for a sine at f this alone
  gives SNR = -20 log10(2 pi f sigma_t).
* Analogue bandwidth: zero-phase low-pass magnitude responses applied on the (periodic) record by FFT.
  A converter must sample at least twice the bandwidth it represents (else ValueError).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import scipy.fft as sfft

from sim_backends.physics.validation import require_int, require_range

RESPONSES = ("brickwall", "butterworth", "gaussian")


def lowpass_response(f, bandwidth_hz: float, shape: str = "butterworth", order: int = 4) -> np.ndarray:
    """Zero-phase amplitude response |H(f)| with 3-dB (half-power) frequency ``bandwidth_hz``.

    brickwall: 1 for |f| <= B else 0;  butterworth: |H|^2 = 1 / (1 + (f/B)^(2n));
    gaussian: |H|^2 = 2^(-(f/B)^2).
    """
    f = np.abs(np.asarray(f, dtype=float)) / bandwidth_hz
    if shape == "brickwall":
        return (f <= 1.0).astype(float)
    if shape == "butterworth":
        return 1.0 / np.sqrt(1.0 + f ** (2 * order))
    if shape == "gaussian":
        return 2.0 ** (-0.5 * f**2)
    raise ValueError(f"response shape {shape!r} is not one of {RESPONSES}")


def noise_bandwidth(bandwidth_hz: float, shape: str = "butterworth", order: int = 4) -> float:
    """Noise-equivalent bandwidth B_e = integral_0^inf |H(f)|^2 df of ``lowpass_response``.

    brickwall: B;  butterworth order n: B (pi / 2n) / sin(pi / 2n);  gaussian: (B / 2) sqrt(pi / ln 2).
    """
    if shape == "brickwall":
        return float(bandwidth_hz)
    if shape == "butterworth":
        x = np.pi / (2 * order)
        return float(bandwidth_hz * x / np.sin(x))
    if shape == "gaussian":
        return float(0.5 * bandwidth_hz * np.sqrt(np.pi / np.log(2.0)))
    raise ValueError(f"response shape {shape!r} is not one of {RESPONSES}")


def apply_lowpass(x, fs: float, bandwidth_hz: float, shape: str = "butterworth", order: int = 4) -> np.ndarray:
    """Filter real records ``x`` (..., n) sampled at ``fs`` with ``lowpass_response`` (circular, by FFT).
    float32 records are filtered in single precision, anything else in float64."""
    x = _real_record(x)
    n = x.shape[-1]
    h = lowpass_on_grid(n, fs, bandwidth_hz, shape, order, x.dtype == np.float32)
    return sfft.irfft(sfft.rfft(x, axis=-1) * h, n=n, axis=-1)


@lru_cache(maxsize=8)
def lowpass_on_grid(n: int, fs: float, bandwidth_hz: float, shape: str, order: int, single: bool) -> np.ndarray:
    """``lowpass_response`` on the rFFT bins of n-point records at ``fs`` (read-only, cached: a waveform
    chain filters records of the same grid again and again)."""
    h = lowpass_response(sfft.rfftfreq(n, 1.0 / fs), bandwidth_hz, shape, order).astype(np.float32 if single else float)
    h.flags.writeable = False
    return h


def _real_record(x) -> np.ndarray:
    """``x`` as float32 if it is float32, else as float64."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(float)


def spectral_derivative(x, fs: float) -> np.ndarray:
    """dx/dt of a band-limited periodic record (..., n) sampled at ``fs`` (exact for such records)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spectrum = np.fft.rfft(x, axis=-1) * (2j * np.pi * f)
    if n % 2 == 0:
        spectrum[..., -1] = 0.0  # the Nyquist bin has no defined derivative
    return np.fft.irfft(spectrum, n=n, axis=-1)


class _Converter:
    """Shared quantiser / ENOB bookkeeping for the ADC and the DAC."""

    def _setup(self, bits, full_scale_v, enob, sample_rate, bandwidth_hz, offset_v, response, response_order):
        self.bits = require_int("bits", bits, 1, 24)
        self.full_scale_v = require_range("full_scale_v", full_scale_v, 1e-6, 1e3)
        self.offset_v = float(offset_v)
        self.sample_rate = require_range("sample_rate", sample_rate, 1.0, 1e13)
        if response not in RESPONSES:
            raise ValueError(f"response={response!r} is not one of {RESPONSES}")
        self.response = response
        self.response_order = int(require_range("response_order", response_order, 1, 20))
        self.bandwidth_hz = None if bandwidth_hz is None else require_range("bandwidth_hz", bandwidth_hz, 1.0, 1e13)
        if self.bandwidth_hz is not None and self.sample_rate < 2 * self.bandwidth_hz:
            raise ValueError(
                f"sample_rate={self.sample_rate:g} Sa/s is below twice bandwidth_hz={self.bandwidth_hz:g} Hz; "
                f"allowed sample_rate >= {2 * self.bandwidth_hz:g}")
        self._enob_table = None
        self.enob = None
        if enob is None:
            return
        if np.ndim(enob) == 0:
            self.enob = require_range("enob", enob, 0.0, self.bits)
            return
        table = np.asarray(enob, dtype=float)
        if table.ndim != 2 or table.shape[1] != 2 or len(table) < 1:
            raise ValueError("enob table must be a sequence of (frequency_hz, enob) pairs")
        table = table[np.argsort(table[:, 0])]
        for f_hz, e in table:
            require_range("enob table frequency", f_hz, 0.0)
            require_range("enob", e, 0.0, self.bits)
        self._enob_table = table

    @property
    def lsb_v(self) -> float:
        """Quantisation step Delta = FS / 2^N."""
        return self.full_scale_v / 2**self.bits

    def enob_at(self, frequency_hz: float = 0.0) -> float:
        """ENOB at a signal frequency (linear interpolation of the table; the ideal N when unset)."""
        if self._enob_table is not None:
            return float(np.interp(frequency_hz, self._enob_table[:, 0], self._enob_table[:, 1]))
        return float(self.bits if self.enob is None else self.enob)

    def excess_noise_rms(self, frequency_hz: float = 0.0) -> float:
        """sigma_x = FS / sqrt(12) * sqrt(4^-ENOB - 4^-N): the noise added to an ideal quantiser."""
        e = self.enob_at(frequency_hz)
        return float(self.full_scale_v / np.sqrt(12.0) * np.sqrt(max(4.0**-e - 4.0**-self.bits, 0.0)))

    def codes(self, v) -> np.ndarray:
        """Clip to full scale and quantise to integer codes 0 .. 2^N - 1 (nearest mid-rise level)."""
        v_min = self.offset_v - self.full_scale_v / 2
        code = np.floor((np.asarray(v, dtype=float) - v_min) / self.lsb_v)
        return np.clip(code, 0, 2**self.bits - 1).astype(np.int64)

    def levels(self, codes) -> np.ndarray:
        """Voltages of integer codes: offset - FS/2 + (code + 1/2) Delta."""
        return self.offset_v - self.full_scale_v / 2 + (np.asarray(codes) + 0.5) * self.lsb_v

    def _quantised(self, v: np.ndarray) -> np.ndarray:
        """``levels(codes(v))`` in v's float precision without the integer round trip; float32 only
        for converters of <= 16 bits (single precision resolves 2^-24 of full scale, 256 x finer
        than a 16-bit step), else float64."""
        dtype = np.float32 if v.dtype == np.float32 and self.bits <= 16 else np.float64
        v_min = dtype(self.offset_v - self.full_scale_v / 2)
        lsb = dtype(self.lsb_v)
        x = (v.astype(dtype, copy=False) - v_min) / lsb
        np.floor(x, out=x)
        np.clip(x, 0, 2**self.bits - 1, out=x)
        x += dtype(0.5)
        x *= lsb
        x += v_min
        return x

    def _dominant_frequency(self, v, fs: float) -> float:
        """Frequency of the largest non-DC spectral line of records v (..., n) (for ENOB tables)."""
        v = np.asarray(v, dtype=float)
        spectrum = np.abs(np.fft.rfft(v - v.mean(axis=-1, keepdims=True), axis=-1)) ** 2
        spectrum = spectrum.reshape(-1, spectrum.shape[-1]).sum(axis=0)
        return float(np.fft.rfftfreq(v.shape[-1], 1.0 / fs)[np.argmax(spectrum)])


class ADC(_Converter):
    """Real-time scope / ADC: front-end low-pass, aperture jitter, excess noise to ENOB, clip, quantise.

    Defaults: Keysight UXR class, 10-bit ADC, 256 GSa/s, 110 GHz, ENOB 5.5 (PHYSICS.md table 2:
    256 GSa/s checked in Al-Kayed 2025; 10 bit, 110 GHz, ENOB ~5-6.5 are datasheet figures).
    ``enob`` may be a number or a table of (frequency_hz, enob) pairs, e.g. [(0, 6.0), (100e9, 5.2)]
    for M8199B + UXR (PHYSICS.md table 2). ``jitter_s`` defaults to 0 because datasheet ENOB values
    already include jitter at their test frequency; set it when ``enob`` describes amplitude noise only.
    ``full_scale_v`` 1 V is a representative vertical setting, not a datasheet figure.
    """

    def __init__(self, bits: int = 10, full_scale_v: float = 1.0, enob: float | Sequence | None = 5.5,
                 jitter_s: float = 0.0, sample_rate: float = 256e9, bandwidth_hz: float | None = 110e9,
                 offset_v: float = 0.0, response: str = "butterworth", response_order: int = 4):
        self._setup(bits, full_scale_v, enob, sample_rate, bandwidth_hz, offset_v, response, response_order)
        self.jitter_s = require_range("jitter_s", jitter_s, 0.0, 1e-6)

    def jitter_limited_snr_db(self, frequency_hz: float) -> float:
        """SNR of a sine at f limited by jitter alone: -20 log10(2 pi f sigma_t)."""
        return float(-20 * np.log10(2 * np.pi * frequency_hz * self.jitter_s))

    def sample_instants(self, n: int, rng: np.random.Generator, t0: float = 0.0) -> np.ndarray:
        """Jittered sampling times t0 + k / fs + dt_k: evaluate a signal there and call
        ``sample(..., apply_jitter=False)`` for exact jitter on any waveform."""
        k = np.arange(int(n))
        return t0 + k / self.sample_rate + self.jitter_s * rng.standard_normal(k.shape)

    def sample(self, v, rng: np.random.Generator, *, input_rate: float | None = None, slope=None,
               signal_frequency_hz: float | None = None, apply_bandwidth: bool = True,
               apply_jitter: bool = True, return_codes: bool = False) -> np.ndarray:
        """Digitise analogue records ``v`` (..., n) in V; returns volts (or integer codes).

        ``v`` is sampled at ``input_rate`` (an integer multiple of ``sample_rate``; default equal to
        it) and treated as one period of a band-limited signal. Jitter noise uses ``slope`` (dv/dt,
        V/s, same shape) if given, else the spectral derivative of ``v``. With an ENOB table the
        excess noise is set at ``signal_frequency_hz`` (default: the strongest spectral line).
        """
        v = _real_record(v)
        rate = self.sample_rate if input_rate is None else require_range("input_rate", input_rate, 1.0)
        step = rate / self.sample_rate
        if abs(step - round(step)) > 1e-9 * step or round(step) < 1:
            raise ValueError(f"input_rate={rate:g} must be an integer multiple (>= 1) of sample_rate="
                             f"{self.sample_rate:g}")
        step = int(round(step))
        if apply_bandwidth and self.bandwidth_hz is not None:
            v = apply_lowpass(v, rate, self.bandwidth_hz, self.response, self.response_order)
        if apply_jitter and self.jitter_s > 0:
            dvdt = spectral_derivative(v, rate) if slope is None else np.broadcast_to(slope, v.shape)
            dvdt = dvdt[..., ::step]
        v = v[..., ::step]
        if apply_jitter and self.jitter_s > 0:
            v = v + dvdt * (self.jitter_s * rng.standard_normal(v.shape, dtype=v.dtype))
        if signal_frequency_hz is None:
            signal_frequency_hz = self._dominant_frequency(v, self.sample_rate) if self._enob_table is not None else 0.0
        sigma = self.excess_noise_rms(signal_frequency_hz)
        if sigma > 0:
            noise = rng.standard_normal(v.shape, dtype=v.dtype)
            noise *= v.dtype.type(sigma)
            noise += v
            v = noise
        if return_codes:
            return self.codes(v)
        return self._quantised(v)


class DAC(_Converter):
    """DAC / AWG channel: quantise to N bits, add excess noise to ENOB, zero-order hold, analogue low-pass.

    Defaults: Keysight M8195A class, 8-bit, 64 GSa/s (53.76-65 GSa/s checked), ~25 GHz analogue
    bandwidth, 1 Vpp single-ended, ENOB ~5.5 (PHYSICS.md table 2; BW, amplitude, ENOB are datasheet
    figures). The configured ENOB holds for the held samples at the DAC rate (``analog=False``); the
    reconstruction filter then shapes signal and noise alike. Output records are float32 for up to
    16 bits (float64 beyond).
    """

    def __init__(self, bits: int = 8, full_scale_v: float = 1.0, enob: float | Sequence | None = 5.5,
                 sample_rate: float = 64e9, bandwidth_hz: float | None = 25e9, offset_v: float = 0.0,
                 response: str = "butterworth", response_order: int = 4):
        self._setup(bits, full_scale_v, enob, sample_rate, bandwidth_hz, offset_v, response, response_order)

    def convert(self, codes_or_values, rng: np.random.Generator, *, upsample: int = 1, analog: bool = True,
                signal_frequency_hz: float | None = None) -> np.ndarray:
        """Output voltage for integer codes (0 .. 2^N - 1) or float target voltages (..., n).

        Integer dtype = codes (validated); float = volts, clipped and quantised to the nearest level.
        With ``analog`` the held samples are repeated ``upsample`` times (zero-order hold, output at
        upsample * sample_rate) and low-passed at ``bandwidth_hz``.
        """
        x = np.asarray(codes_or_values)
        if np.issubdtype(x.dtype, np.integer):
            if x.size and (x.min() < 0 or x.max() > 2**self.bits - 1):
                raise ValueError(f"DAC codes must lie in [0, {2**self.bits - 1}] for bits={self.bits}")
            v = self.levels(x.astype(np.int64))
        else:
            v = self._quantised(x.astype(float, copy=False))
        if self.bits <= 16:  # single precision resolves 2^-24 of full scale: far below the step
            v = v.astype(np.float32)
        if signal_frequency_hz is None:
            signal_frequency_hz = self._dominant_frequency(v, self.sample_rate) if self._enob_table is not None else 0.0
        sigma = self.excess_noise_rms(signal_frequency_hz)
        if sigma > 0:
            noise = rng.standard_normal(v.shape, dtype=v.dtype)
            noise *= v.dtype.type(sigma)
            v = noise + v
        if not analog:
            return v
        upsample = require_int("upsample", upsample, 1, 1 << 20)
        v = np.repeat(v, upsample, axis=-1)
        if self.bandwidth_hz is not None:
            v = apply_lowpass(v, self.sample_rate * upsample, self.bandwidth_hz, self.response, self.response_order)
        return v


@dataclass
class SineFit:
    """Result of a 4-parameter sine fit x = A cos(2 pi f t + phi) + C."""

    amplitude: float
    frequency: float
    phase: float
    offset: float
    residual_rms: float

    @property
    def sinad_db(self) -> float:
        """10 log10((A^2 / 2) / residual^2)."""
        return float(10 * np.log10(self.amplitude**2 / 2 / self.residual_rms**2))

    def enob(self, full_scale: float | None = None) -> float:
        """IEEE 1241 ENOB = log2(FS / (sqrt(12) rms residual)); without FS, (SINAD - 1.76) / 6.02."""
        if full_scale is None:
            return (self.sinad_db - 1.76) / 6.02
        return float(np.log2(full_scale / (np.sqrt(12.0) * self.residual_rms)))


def sine_fit(samples, fs: float, f_signal: float, iterations: int = 30) -> SineFit:
    """IEEE Std 1241 four-parameter least-squares sine fit, started from the 3-parameter fit at f_signal."""
    x = np.asarray(samples, dtype=float).ravel()
    fs = require_range("fs", fs, 1e-12)
    f_signal = require_range("f_signal", f_signal, 1e-12)
    if x.size < 8:
        raise ValueError("sine_fit needs at least 8 samples")
    alias = (f_signal / fs) % 1.0
    if min(alias, abs(alias - 0.5), 1 - alias) < 1.0 / x.size:
        raise ValueError(f"f_signal={f_signal:g} aliases to DC or Nyquist at fs={fs:g}; no sine can be fitted")
    t = np.arange(x.size) / fs
    w = 2 * np.pi * f_signal
    basis = np.column_stack([np.cos(w * t), np.sin(w * t), np.ones_like(t)])
    (a, b, c), *_ = np.linalg.lstsq(basis, x, rcond=None)
    scale = t[-1] if t[-1] > 0 else 1.0
    for _ in range(iterations):
        cos, sin = np.cos(w * t), np.sin(w * t)
        jac = np.column_stack([cos, sin, np.ones_like(t), (t / scale) * (-a * sin + b * cos)])
        (a, b, c, dw), *_ = np.linalg.lstsq(jac, x, rcond=None)
        w += dw / scale
        if abs(dw / scale) < 1e-13 * w:
            break
    residual = x - (a * np.cos(w * t) + b * np.sin(w * t) + c)
    return SineFit(amplitude=float(np.hypot(a, b)), frequency=float(w / (2 * np.pi)),
                   phase=float(np.arctan2(-b, a)), offset=float(c),
                   residual_rms=float(np.sqrt(np.mean(residual**2))))


def sine_fit_enob(samples, fs: float, f_signal: float, full_scale: float | None = None) -> float:
    """ENOB of a record of a sine via the 4-parameter fit (full-scale referred when ``full_scale`` given)."""
    return sine_fit(samples, fs, f_signal).enob(full_scale)
