"""Precision of optical products against a float64 reference, in the two usual conventions.

Effective bits are reported two ways (PHYSICS.md section 3, "Precision"):

* **range convention** (common in optical-neural-network papers):
  ``bits_range = log2(range / sigma)``, ``range = max(ref) - min(ref)`` over the reference outputs,
  ``sigma`` the RMS error;
* **ENOB convention** (ADC / full-scale sine): ``enob = (SNR_dB - 1.76) / 6.02`` with
  ``SNR = var(ref) / sigma^2``.

By default ``sigma^2 = mean(err^2)``: a systematic offset of the outputs is an error of the product, so it
counts. With ``include_bias=False`` it is ``var(err)`` (the spread only); the mean error is reported as
``bias`` either way.

Error estimate of a decoded output (offset encoding, :mod:`labctl.opu.tiling`): a lane sum with noise
``sigma_slot`` (units of one full-scale channel product) decodes as ``4 y - ...``, so each chunk carries
``4 sigma_slot`` and an output of C independent chunks ``4 sqrt(C) sigma_slot``, times the two scale
factors (:func:`output_sigma`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "ErrorStats",
    "accumulator_bits",
    "bits_from_snr_db",
    "error_stats",
    "output_sigma",
    "residual_sigma",
    "snr_db_from_bits",
]

_ENOB_OFFSET_DB = 1.76   # 10 log10(3/2): full-scale sine vs uniform quantisation noise
_DB_PER_BIT = 6.02       # 20 log10(2)


def bits_from_snr_db(snr_db: Any) -> np.ndarray | float:
    """ENOB convention: ``(SNR_dB - 1.76) / 6.02``."""
    out = (np.asarray(snr_db, dtype=float) - _ENOB_OFFSET_DB) / _DB_PER_BIT
    return float(out) if out.ndim == 0 else out


def snr_db_from_bits(bits: Any) -> np.ndarray | float:
    """Inverse of :func:`bits_from_snr_db`: ``6.02 bits + 1.76`` dB."""
    out = np.asarray(bits, dtype=float) * _DB_PER_BIT + _ENOB_OFFSET_DB
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class ErrorStats:
    """Error of measured outputs against the float64 reference (see the module docstring).

    ``sigma``: RMS error (or its standard deviation with ``include_bias=False``); ``bias``: mean error;
    ``max_abs``: largest absolute error; ``range``: max - min of the reference; ``nrmse``: sigma / range;
    ``snr_db``: 10 log10(var(ref)/sigma^2); ``bits_range``: log2(range/sigma); ``enob``: (SNR_dB - 1.76)/6.02.
    """

    n: int
    bias: float
    sigma: float
    max_abs: float
    range: float
    nrmse: float
    snr_db: float
    bits_range: float
    enob: float
    include_bias: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"n={self.n}  sigma={self.sigma:.4g}  bias={self.bias:.3g}  range={self.range:.4g}  "
                f"SNR={self.snr_db:.2f} dB  bits: log2(range/sigma)={self.bits_range:.2f}, "
                f"(SNR_dB-1.76)/6.02={self.enob:.2f}")


def error_stats(measured: Any, reference: Any, include_bias: bool = True) -> ErrorStats:
    """Error statistics of ``measured`` against ``reference`` (same shape; float64 arithmetic)."""
    m = np.asarray(measured, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if m.shape != r.shape:
        raise ValueError(f"measured {m.shape} and reference {r.shape} must have the same shape")
    if m.size < 2:
        raise ValueError("need at least 2 outputs to estimate an error")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(r))):
        raise ValueError("measured and reference must be finite")
    err = (m - r).ravel()
    bias = float(err.mean())
    mse = float(np.mean(err * err)) if include_bias else float(np.var(err))
    sigma = float(np.sqrt(mse))
    rng = float(r.max() - r.min())
    var_ref = float(np.var(r))
    with np.errstate(divide="ignore"):
        snr_db = float(10 * np.log10(var_ref / mse)) if mse > 0 else float("inf")
        bits_range = float(np.log2(rng / sigma)) if sigma > 0 else float("inf")
    if var_ref == 0:
        snr_db = float("-inf") if mse > 0 else float("nan")
    if rng == 0:
        bits_range = float("-inf") if sigma > 0 else float("nan")
    return ErrorStats(n=int(err.size), bias=bias, sigma=sigma, max_abs=float(np.max(np.abs(err))), range=rng,
                      nrmse=sigma / rng if rng > 0 else float("inf"), snr_db=snr_db, bits_range=bits_range,
                      enob=float(bits_from_snr_db(snr_db)), include_bias=include_bias)


def residual_sigma(residuals: Any, robust: bool = False) -> float:
    """Noise of calibration residuals (lane-sum units): RMS, or 1.4826 x MAD with ``robust``."""
    r = np.asarray(residuals, dtype=float).ravel()
    if r.size < 2 or not np.all(np.isfinite(r)):
        raise ValueError("need at least 2 finite residuals")
    if robust:
        return float(1.482602218505602 * np.median(np.abs(r - np.median(r))))
    return float(np.sqrt(np.mean(r * r)))


def output_sigma(slot_sigma: Any, n_chunks: int, scale_a: float = 1.0, scale_b: float = 1.0) -> np.ndarray | float:
    """Standard error of a decoded output: ``4 sqrt(n_chunks) * slot_sigma * scale_a * scale_b``.

    ``slot_sigma`` is the noise of one lane sum in units of one full-scale channel product (e.g. from
    :func:`residual_sigma` of calibration residuals, or ``Levels.noise_rms`` normalised); chunks are
    assumed independent; 4 is the offset decode's gain (``sum xw = 4 sum x'w' - ...``).
    """
    if int(n_chunks) != n_chunks or n_chunks < 1:
        raise ValueError(f"n_chunks must be an integer >= 1, got {n_chunks!r}")
    s = np.asarray(slot_sigma, dtype=float)
    if np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("slot_sigma must be finite and >= 0")
    out = 4.0 * np.sqrt(n_chunks) * s * abs(scale_a) * abs(scale_b)
    return float(out) if out.ndim == 0 else out


def accumulator_bits(bits: float, n_terms: int) -> float:
    """Bits for an exact digital dot product of ``n_terms`` b-bit products: ``2 b + log2 N``."""
    if n_terms < 1:
        raise ValueError(f"n_terms must be >= 1, got {n_terms}")
    return float(2 * bits + np.log2(n_terms))
