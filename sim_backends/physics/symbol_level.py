"""Symbol-level building blocks shared by the core models: ISI taps, pulse responses, fast Gaussian
deviates, and the waveform-level twin of one link that validates them.

The waveform level simulates fields and voltages at several samples per symbol (``converters.DAC`` -> MZM
-> ``fibre.FibreSpan`` -> [EDFA] -> ``receiver.Receiver`` -> ``converters.ADC``: ``waveform_link``). The
symbol level reduces the same parameter objects to one value per symbol slot
(``sim_backends.physics.stationary_core``, the model the OCC-16 simulator runs); this module gives it

* **inter-symbol-interference taps** h_k = p(t_s + k T) (``isi_taps``): the response of one NRZ symbol
  (a rectangular pulse of one symbol period T) through a linear chain, sampled at the symbol rate around
  the sampling instant t_s (k > 0 post-cursors: earlier symbols; k < 0 pre-cursors), by an inverse FFT
  of P(f) H(f) on a fine periodic grid (P = T sinc(f T) e^{-j pi f T}, the exact spectrum of the
  rectangle; ``pulse_response``);
* **fast Gaussian deviates** (``standard_normal_f32``) from the caller's seeded ``numpy.random.Generator``:
  its raw 16-bit words index a 65536-cell inverse-CDF table of cell-conditional means; the two outermost
  cells (|z| > 4.17) are replaced by exact tail draws (``scipy.special.ndtri``), so the deviates have unit
  variance to < 1e-6 and exact tails (numpy's own ziggurat is ~10x slower here).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.fft as sfft
from scipy import special

from sim_backends.physics.validation import require_range

__all__ = ["isi_taps", "pulse_response", "standard_normal_f32", "waveform_link"]

_TABLE_BITS = 16


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


def _fill_normal(gen: np.random.Generator, out: np.ndarray) -> None:
    """Fill the 1-D float32 ``out`` with standard normal deviates from ``gen`` (see the module docstring)."""
    n = out.size
    words = gen.bit_generator.random_raw((n + 3) // 4)
    idx = words.view(np.uint16)[:n]
    np.take(_normal_table(), idx, out=out, mode="clip")
    # outermost cells (probability 2^-16 each): exact draws from the tails |z| > ndtri(1 - 2^-16)
    tail = np.flatnonzero((idx - np.uint16(1)) >= np.uint16((1 << _TABLE_BITS) - 2))
    if tail.size:
        z = -special.ndtri(gen.random(tail.size) * 2.0**-_TABLE_BITS)  # upper tail, > 4.17
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
    symbol_rate = require_range("symbol_rate", symbol_rate, 1.0, 1e13)
    if int(max_taps) != max_taps or not 0 <= max_taps <= 64:
        raise ValueError(f"max_taps={max_taps!r} must be an integer in [0, 64]")
    tolerance = require_range("tolerance", tolerance, 0.0, 1.0)
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


# -- the waveform-level twin (reference for the agreement test and the benchmark) ------------------------


def waveform_link(drive_v, rng: np.random.Generator, *, symbol_rate: float, dac, mzm, receiver, adc,
                  bias_v: float = 0.0, laser_power_w: float = 1e-3, drive_gain: float = 1.0, eo_filter=None,
                  fibre=None, wavelength_m: float | None = None, preamp=None, upsample: int = 2,
                  noise: bool = True, sample_index: int | None = None, return_waveform: bool = False):
    """Simulate one path at waveform level (the reference for ``stationary_core.StationaryCore``).

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
    symbol_rate = require_range("symbol_rate", symbol_rate, 1.0, 1e13)
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
