"""Frequency-domain filters for sampled signals: electrical low-pass responses and optical band-pass.

Every bandwidth-limited part of the bench (AWG analog output, MZM electro-optic S21, photodiode, TIA,
scope front end) is modelled as a low-pass response H(f) applied by FFT along the last axis; a chain
of them is the product of their responses (PHYSICS.md section 3, "bandwidth"). The ASE-limiting
filter after an EDFA is a band-pass on the complex optical envelope.

Conventions
-----------
* Filtering is circular (FFT over the record): the record is treated as one period of a periodic
  signal. Pad the record if the filter's impulse response (~ order / f3db) must not wrap.
* ``f3db_hz`` is where |H| = 1/sqrt(2) exactly (-3.0103 dB) for every kind and order.
* Butterworth and Bessel are the causal analog prototypes (they delay the signal; ``remove_delay``
  takes out their DC group delay). Gaussian is zero-phase: |H(f)| = exp(-(ln2 / 2) (f/f3db)^(2n)),
  n = ``order`` (n = 1 is the Gaussian, n > 1 a super-Gaussian).
* Optical envelope frequency f is the offset from the carrier: the real field is
  Re{E(t) exp(+j 2 pi nu0 t)}, so the FFT bin at +f is optical frequency nu0 + f (shorter wavelength).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

import numpy as np
import scipy.fft as sfft
from scipy import integrate, optimize, signal, special

from sim_backends.physics.validation import require_int, require_range

KINDS = ("butterworth", "bessel", "gaussian")
BANDPASS_SHAPES = ("rect",) + KINDS
_MAX_ORDER = 16


def _check_kind(kind: str, order: int, kinds=KINDS) -> tuple[str, int]:
    kind = str(kind).lower()
    if kind not in kinds:
        raise ValueError(f"kind={kind!r} is not one of {kinds}")
    return kind, require_int("order", order, 1, _MAX_ORDER)


@lru_cache(maxsize=None)
def _poles(kind: str, order: int) -> np.ndarray:
    """Analog prototype poles normalised so |H(j*1)| = 1/sqrt(2) (scipy buttap / besselap 'mag')."""
    if kind == "butterworth":
        _, p, _ = signal.buttap(order)
    else:
        _, p, _ = signal.besselap(order, norm="mag")
    return np.asarray(p, dtype=complex)


def response(f, f3db_hz: float, kind: str = "butterworth", order: int = 1) -> np.ndarray:
    """Complex low-pass response H(f), H(0) = 1, |H(f3db)| = 1/sqrt(2).

    Butterworth/Bessel: H = prod(-p_k) / prod(j f/f3db - p_k) over the normalised analog poles p_k,
    so |H|^2 = 1 / (1 + (f/f3db)^(2n)) for Butterworth. Gaussian: exp(-(ln 2/2) (f/f3db)^(2n)).
    ``f`` may be negative (two-sided spectra); H(-f) = conj(H(f)) (real impulse response).
    """
    kind, order = _check_kind(kind, order)
    f3db_hz = require_range("f3db_hz", f3db_hz, 1e-300)
    x = np.asarray(f, dtype=float) / f3db_hz
    if kind == "gaussian":
        return np.exp(-0.5 * np.log(2.0) * np.abs(x) ** (2 * order)).astype(complex)
    s = 1j * x
    h = np.ones(np.shape(x), dtype=complex)
    for p in _poles(kind, order):  # loop over poles (<= 16), not samples
        h *= -p / (s - p)
    return h


def group_delay_s(f3db_hz: float, kind: str = "butterworth", order: int = 1) -> float:
    """DC group delay of the response: tau0 = -sum_k Re(1/p_k) / (2 pi f3db); 0 for Gaussian."""
    kind, order = _check_kind(kind, order)
    f3db_hz = require_range("f3db_hz", f3db_hz, 1e-300)
    if kind == "gaussian":
        return 0.0
    return float(-np.sum(np.real(1.0 / _poles(kind, order)))) / (2 * np.pi * f3db_hz)


def noise_bandwidth(f3db_hz: float, kind: str = "butterworth", order: int = 1,
                    f_max_hz: float = np.inf) -> float:
    """Equivalent noise bandwidth ENBW = integral_0^f_max |H(f)|^2 df / |H(0)|^2, in Hz.

    White noise of one-sided PSD N0 has variance N0 * ENBW after the filter. Closed forms
    (f_max = inf): Butterworth fc (pi/2n) / sin(pi/2n) (RC: pi/2 fc); Gaussian
    fc Gamma(1 + 1/2n) / (ln 2)^(1/2n) (n = 1: 1.0645 fc). Bessel, and finite ``f_max_hz`` (e.g. the
    Nyquist frequency fs/2 of a sampled record), by numerical integration.
    """
    kind, order = _check_kind(kind, order)
    f3db_hz = require_range("f3db_hz", f3db_hz, 1e-300)
    f_max_hz = require_range("f_max_hz", f_max_hz, 0.0)
    a = 1.0 / (2 * order)
    if kind == "gaussian":
        # int_0^X exp(-ln2 x^2n) dx = Gamma(a) P(a, ln2 X^2n) * a / (ln2)^a
        x_max = f_max_hz / f3db_hz
        frac = 1.0 if np.isinf(x_max) else special.gammainc(a, np.log(2.0) * x_max ** (2 * order))
        return f3db_hz * special.gamma(1 + a) / np.log(2.0) ** a * frac
    if kind == "butterworth" and np.isinf(f_max_hz):
        return f3db_hz * (np.pi * a) / np.sin(np.pi * a)
    if kind == "butterworth" and order == 1:
        return f3db_hz * np.arctan(f_max_hz / f3db_hz)
    return f3db_hz * _integrate_power(lambda x: np.abs(response(x, 1.0, kind, order)) ** 2,
                                      f_max_hz / f3db_hz)


def _integrate_power(power_of_x: Callable, x_max: float) -> float:
    """int_0^x_max power(x) dx, split at x = 1 and 10 so quad resolves the knee and the tail."""
    total = 0.0
    edges = [0.0, 1.0, 10.0, np.inf]
    for lo, hi in zip(edges[:-1], edges[1:]):
        hi = min(hi, x_max)
        if hi > lo:
            total += integrate.quad(lambda x: float(power_of_x(x)), lo, hi, limit=200,
                                    epsabs=1e-13, epsrel=1e-10)[0]
    return total


@dataclass(frozen=True)
class LowPass:
    """One low-pass stage of a receiver/transmitter chain (e.g. ``LowPass(25e9, 'bessel', 4)``).

    Typical values (PHYSICS.md table 2): M8195A AWG ~25 GHz, LN MZM EO 10-40 GHz, DET08CFC PD 5 GHz,
    UXR scope up to 110 GHz. Scope front ends are close to Bessel/Gaussian (flat group delay);
    RC-limited photodiodes are first-order Butterworth.
    """

    f3db_hz: float
    kind: str = "butterworth"
    order: int = 1

    def __post_init__(self):
        kind, order = _check_kind(self.kind, self.order)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "f3db_hz", require_range("f3db_hz", self.f3db_hz, 1e-300))

    def response(self, f) -> np.ndarray:
        return response(f, self.f3db_hz, self.kind, self.order)

    def noise_bandwidth(self, f_max_hz: float = np.inf) -> float:
        return noise_bandwidth(self.f3db_hz, self.kind, self.order, f_max_hz)

    @property
    def group_delay_s(self) -> float:
        return group_delay_s(self.f3db_hz, self.kind, self.order)

    def apply(self, x, fs: float, remove_delay: bool = False) -> np.ndarray:
        return lowpass(x, fs, self.f3db_hz, self.kind, self.order, remove_delay)


def _as_stages(stages: Iterable) -> list[LowPass]:
    """Accept LowPass objects, (f3db, kind, order) tuples or dicts of LowPass arguments."""
    out = []
    for s in stages:
        if isinstance(s, LowPass):
            out.append(s)
        elif isinstance(s, dict):
            out.append(LowPass(**s))
        else:
            out.append(LowPass(*s))
    if not out:
        raise ValueError("stages must name at least one low-pass stage")
    return out


def cascade_response(f, stages: Iterable) -> np.ndarray:
    """Response of a chain of stages (e.g. AWG -> MZM EO -> PD -> scope): H = prod_i H_i(f)."""
    h = np.ones(np.shape(f), dtype=complex)
    for s in _as_stages(stages):
        h *= s.response(f)
    return h


def cascade_f3db(stages: Iterable) -> float:
    """Overall -3 dB frequency of a chain (two identical RC stages: fc sqrt(sqrt(2) - 1))."""
    stages = _as_stages(stages)
    hi = min(s.f3db_hz for s in stages)  # the chain is at most as wide as its narrowest stage
    g = lambda f: np.abs(cascade_response(f, stages)) ** 2 - 0.5  # noqa: E731
    return float(optimize.brentq(g, 0.0, hi, xtol=hi * 1e-13, rtol=1e-14))


def cascade_noise_bandwidth(stages: Iterable, f_max_hz: float = np.inf) -> float:
    """ENBW of a chain: integral_0^f_max prod_i |H_i(f)|^2 df (numerical), in Hz."""
    stages = _as_stages(stages)
    scale = min(s.f3db_hz for s in stages)
    power = lambda x: np.abs(cascade_response(x * scale, stages)) ** 2  # noqa: E731
    return scale * _integrate_power(power, require_range("f_max_hz", f_max_hz, 0.0) / scale)


def _check_fs(fs: float) -> float:
    return require_range("fs", fs, 1e-300)


def apply_response(x, fs: float, h_of_f: Callable[[np.ndarray], np.ndarray],
                   real_filter: bool = True) -> np.ndarray:
    """Filter ``x`` along its last axis by multiplying its spectrum by ``h_of_f(f)`` (f in Hz).

    Real ``x`` with ``real_filter`` (H(-f) = conj H(f)) goes through rFFT and stays real; complex
    ``x`` (or a non-Hermitian H, e.g. a shifted band-pass) through the full FFT with two-sided f.
    float32/complex64 input is filtered in single precision.
    """
    fs = _check_fs(fs)
    x, onesided = _as_record(x, real_filter)
    n = x.shape[-1]
    freqs = sfft.rfftfreq(n, 1.0 / fs) if onesided else sfft.fftfreq(n, 1.0 / fs)
    dtype = np.complex64 if x.dtype in (np.float32, np.complex64) else np.complex128
    return _filtered(x, _nyquist_real(np.asarray(h_of_f(freqs), dtype=dtype), n, real_filter), onesided)


def _as_record(x, real_filter: bool) -> tuple[np.ndarray, bool]:
    """``x`` as a float or complex record (single precision kept) and whether the rFFT applies."""
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError("x must have at least one sample along its last axis")
    if not np.iscomplexobj(x) and real_filter:
        return (x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)), True
    if x.dtype not in (np.complex64, np.complex128):
        x = x.astype(np.complex64 if x.dtype == np.float32 else np.complex128)
    return x, False


def _filtered(x: np.ndarray, h: np.ndarray, onesided: bool) -> np.ndarray:
    if onesided:
        return sfft.irfft(sfft.rfft(x, axis=-1) * h, n=x.shape[-1], axis=-1)
    return sfft.ifft(sfft.fft(x, axis=-1) * h, axis=-1)


def _nyquist_real(h: np.ndarray, n: int, real_filter: bool) -> np.ndarray:
    """For a real filter and even n, use |H(fs/2)| on the Nyquist bin: that bin holds +fs/2 and -fs/2
    at once, so its response must be real; |H| keeps cascades multiplicative and the -3 dB point."""
    if real_filter and n % 2 == 0 and h.ndim >= 1:
        h = h.copy()
        h[..., n // 2] = np.abs(h[..., n // 2])
    return h


def lowpass(x, fs: float, f3db_hz: float, kind: str = "butterworth", order: int = 1,
            remove_delay: bool = False) -> np.ndarray:
    """Low-pass ``x`` (real or complex, shape (..., n)) sampled at ``fs`` along its last axis.

    ``remove_delay`` multiplies by exp(+j 2 pi f tau0) so the output stays time-aligned with the
    input (tau0 = DC group delay). Refuses f3db above the Nyquist frequency fs/2: the record
    cannot represent the band the filter is meant to pass.
    """
    fs = _check_fs(fs)
    kind, order = _check_kind(kind, order)
    require_range("f3db_hz", f3db_hz, 1e-300, fs / 2)
    return cascade_lowpass(x, fs, [LowPass(f3db_hz, kind, order)], remove_delay)


def cascade_lowpass(x, fs: float, stages: Iterable, remove_delay: bool = False) -> np.ndarray:
    """Apply a chain of low-pass stages in one FFT (responses multiplied)."""
    fs = _check_fs(fs)
    stages = _as_stages(stages)
    for s in stages:
        if s.f3db_hz > fs / 2:
            raise ValueError(f"fs={fs!r} is below twice the stage bandwidth f3db_hz={s.f3db_hz!r}; "
                             f"need fs >= {2 * s.f3db_hz!r}")
    x, onesided = _as_record(x, True)
    single = x.dtype in (np.float32, np.complex64)
    return _filtered(x, _cascade_on_grid(tuple(stages), remove_delay, x.shape[-1], fs, onesided, single), onesided)


@lru_cache(maxsize=8)
def _cascade_on_grid(stages: tuple[LowPass, ...], remove_delay: bool, n: int, fs: float, onesided: bool,
                     single: bool) -> np.ndarray:
    """A chain's response on the FFT bins of n-point records at fs (DC group delay removed if asked),
    cached: a waveform chain filters records of the same grid again and again."""
    f = sfft.rfftfreq(n, 1.0 / fs) if onesided else sfft.fftfreq(n, 1.0 / fs)
    h = cascade_response(f, stages)
    if remove_delay:
        h *= np.exp(2j * np.pi * f * sum(s.group_delay_s for s in stages))
    h = _nyquist_real(h.astype(np.complex64 if single else np.complex128), n, True)
    h.flags.writeable = False
    return h


def bandpass_response(f, center_offset_hz: float, bandwidth_hz: float, shape: str = "gaussian",
                      order: int = 1) -> np.ndarray:
    """Optical band-pass H(f) around ``center_offset_hz``; ``bandwidth_hz`` is the full -3 dB width.

    ``rect``: ideal, 1 inside |f - f0| < B/2, 1/sqrt(2) on the edge, 0 outside (noise bandwidth B).
    Other shapes: the low-pass prototype of that kind with f3db = B/2, shifted to f0.
    """
    shape = str(shape).lower()
    _check_kind(shape, order, BANDPASS_SHAPES)
    bandwidth_hz = require_range("bandwidth_hz", bandwidth_hz, 1e-300)
    d = np.asarray(f, dtype=float) - float(center_offset_hz)
    if shape != "rect":
        return response(d, bandwidth_hz / 2, shape, order)
    half = bandwidth_hz / 2
    edge = np.isclose(np.abs(d), half, rtol=1e-9, atol=0.0)
    return np.where(edge, 2 ** -0.5, (np.abs(d) < half).astype(float)).astype(complex)


def bandpass_noise_bandwidth(bandwidth_hz: float, shape: str = "gaussian", order: int = 1) -> float:
    """Optical noise bandwidth int |H(f)|^2 df (two-sided, over all f) of ``bandpass_response``."""
    shape = str(shape).lower()
    _check_kind(shape, order, BANDPASS_SHAPES)
    bandwidth_hz = require_range("bandwidth_hz", bandwidth_hz, 1e-300)
    if shape == "rect":
        return bandwidth_hz
    return 2 * noise_bandwidth(bandwidth_hz / 2, shape, order)


def optical_bandpass(field, fs: float, center_offset_hz: float = 0.0, bandwidth_hz: float = 100e9,
                     shape: str = "gaussian", order: int = 1) -> np.ndarray:
    """Band-pass the complex envelope ``field`` (sqrt(W), shape (..., n)) sampled at ``fs``.

    Default 100 GHz (0.8 nm) full width: one channel of the ITU-T G.694.1 100-GHz DWDM grid, a common
    ASE-limiting filter after an EDFA. The pass band must lie inside the simulated band
    |f| <= fs/2, otherwise the record cannot represent what the filter passes (ValueError).
    """
    fs = _check_fs(fs)
    bandwidth_hz = require_range("bandwidth_hz", bandwidth_hz, 1e-300, fs)
    if abs(center_offset_hz) + bandwidth_hz / 2 > fs / 2 * (1 + 1e-12):
        raise ValueError(f"center_offset_hz={center_offset_hz!r} with bandwidth_hz={bandwidth_hz!r} "
                         f"reaches beyond the simulated band +-fs/2 = +-{fs / 2!r} Hz")
    field = np.asarray(field)
    if not np.iscomplexobj(field):
        field = field.astype(np.complex64 if field.dtype == np.float32 else np.complex128)
    return apply_response(field, fs, lambda f: bandpass_response(f, center_offset_hz, bandwidth_hz,
                                                                 shape, order), real_filter=False)
