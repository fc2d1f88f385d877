"""A weight-stationary core's drift verdict: the reference product's error now against at calibration.

The engine runs the product (:meth:`~labctl.opu.stationary.StationaryOPU.drift_check`); this module
holds the reference operands and the judgement, so it needs no engine.

The reference is 256 deep because the chip-temperature drift that limits a core's products adds up over
the terms an output sums (every ring's gain moves the same way) while the noise adds only in quadrature: a
shallow reference under-reports it (64 deep: 1.3x for the 1.7x a 256-deep product loses at +0.3 mK of
ring warming). Its depth is counted in terms, not tiles, because that is what the error adds over, so it
does not grow with the core's input count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LEGACY_REFERENCE_SHAPE", "REFERENCE_SEED", "REFERENCE_SHAPE", "REFERENCE_SHAPES", "CoreDriftReport",
           "judge_drift", "reference_operands"]

#: Seed of the reference product's operands.
REFERENCE_SEED = 99
#: (M, K, N) of the reference product ``(M x K) @ (K x N)`` a calibration measures now: 256 deep, 64 x 64 outputs.
REFERENCE_SHAPE = (64, 256, 64)
#: The 64-deep reference of calibrations whose files record no shape: their error at calibration was measured on it.
LEGACY_REFERENCE_SHAPE = (64, 64, 64)
#: The references a calibration file may name (any other shape is a damaged file).
REFERENCE_SHAPES = (LEGACY_REFERENCE_SHAPE, REFERENCE_SHAPE)


def reference_operands(shape: tuple[int, int, int] = REFERENCE_SHAPE,
                       seed: int = REFERENCE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The drift reference product's operands for ``shape`` (M, K, N): M x K and K x N, uniform in [-1, 1]."""
    m, k, n = shape
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (m, k)), rng.uniform(-1, 1, (k, n))


@dataclass
class CoreDriftReport:
    """Error of the reference product now vs at calibration time."""

    rms_error: float
    calibration_rms_error: float
    ratio: float
    recalibrate: bool

    def __str__(self) -> str:
        verdict = "recalibrate" if self.recalibrate else "calibration still good"
        return (f"rms error {self.rms_error:.4g} vs {self.calibration_rms_error:.4g} at calibration "
                f"({self.ratio:.2f}x): {verdict}")


def judge_drift(rms_error: float, calibration_rms_error: float, threshold: float) -> CoreDriftReport:
    """Recalibrate when the error grew more than ``threshold``-fold since calibration."""
    ratio = rms_error / calibration_rms_error if calibration_rms_error > 0 else float("inf")
    return CoreDriftReport(rms_error, calibration_rms_error, ratio, ratio > threshold)
