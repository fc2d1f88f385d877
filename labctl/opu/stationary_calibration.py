"""Import path of the weight-stationary core's calibration, kept for existing code.

The steps live in :mod:`labctl.opu.stationary.calibration`.
"""

import warnings

from labctl.opu.stationary.calibration import (
    STEPS,
    CoreCalibrationResult,
    calibrate,
    calibrate_bias,
    calibrate_decoder,
    calibrate_rings,
    calibrate_transfer,
    drift_check,
    measure_dark,
    measure_delay,
    measure_floor,
    refine_delay,
)
from labctl.opu.stationary.drift import CoreDriftReport

__all__ = [
    "STEPS",
    "CoreCalibrationResult",
    "CoreDriftReport",
    "calibrate",
    "calibrate_bias",
    "calibrate_decoder",
    "calibrate_rings",
    "calibrate_transfer",
    "drift_check",
    "measure_dark",
    "measure_delay",
    "measure_floor",
    "refine_delay",
]

warnings.warn("labctl.opu.stationary_calibration is deprecated: import from labctl.opu.stationary.calibration",
              DeprecationWarning, stacklevel=2)
