"""The streaming OPU's drift verdict: known products now against the error recorded at calibration.

The engine runs the products (:meth:`~labctl.opu.streaming.StreamingOPU.drift_check`); this module
holds the reference operands and the judgement, so it needs no engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from labctl.opu.precision import error_stats
from labctl.opu.streaming.sync import SYNC_SEED

__all__ = ["DECODER_SEED", "DriftReport", "judge_drift", "random_products"]

#: Seed of the decoder-fit products, which the drift check reruns.
DECODER_SEED = SYNC_SEED + 4


def random_products(seed: int, count: int, m: int, k: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` operand pairs (M x K', K' x N), entries uniform in [-1, 1], the same for a seed."""
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1, 1, (m, k)), rng.uniform(-1, 1, (k, n))) for _ in range(count)]


@dataclass
class DriftReport:
    """Result of a drift check. ``recalibrate`` is the verdict; ``ratio`` = sigma now / at calibration."""

    sigma: float
    reference_sigma: float | None
    ratio: float | None
    bias: float
    bits_range: float
    threshold: float
    timing_error_symbols: float
    recalibrate: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def judge_drift(measured: np.ndarray, reference: np.ndarray, *, reference_sigma: float | None, threshold: float,
                timing_error_symbols: float, max_timing_error: float | None) -> DriftReport:
    """Recalibrate when the RMS error exceeds ``threshold`` times ``reference_sigma`` (or, without one, when
    the products have fewer than 4 bits), or when the preamble arrived more than ``max_timing_error``
    symbols from its calibrated position (None: no calibrated sampling phase to compare with)."""
    stats = error_stats(measured, reference)
    ratio = stats.sigma / reference_sigma if reference_sigma else None
    reasons = []
    if ratio is not None and ratio > threshold:
        reasons.append(f"error {stats.sigma:.3g} is {ratio:.2f}x the calibrated {reference_sigma:.3g} "
                       f"(> {threshold:g}x)")
    if ratio is None and stats.bits_range < 4:
        reasons.append(f"no calibration record and only {stats.bits_range:.2f} bits")
    if max_timing_error is not None and timing_error_symbols > max_timing_error:
        reasons.append(f"the preamble arrives {timing_error_symbols:.2f} symbols from its calibrated position")
    return DriftReport(sigma=stats.sigma, reference_sigma=reference_sigma, ratio=ratio, bias=stats.bias,
                       bits_range=stats.bits_range, threshold=threshold, timing_error_symbols=timing_error_symbols,
                       recalibrate=bool(reasons), reason="; ".join(reasons) or "within tolerance")
