"""A weight-stationary core's drift verdict: the reference product's error now against at calibration.

The engine runs the product (:meth:`~labctl.opu.stationary.StationaryOPU.drift_check`); this module
holds the reference operands and the judgement, so it needs no engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["REFERENCE_SEED", "CoreDriftReport", "judge_drift", "reference_operands"]

#: Seed of the reference product's operands.
REFERENCE_SEED = 99


def reference_operands(seed: int = REFERENCE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The drift reference product's operands: 64 x 64 each, entries uniform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (64, 64)), rng.uniform(-1, 1, (64, 64))


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
