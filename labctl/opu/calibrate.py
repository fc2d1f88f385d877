"""Import path of the streaming OPU's calibration, kept for existing code.

The steps live in :mod:`labctl.opu.streaming.calibration`.
"""

import warnings

from labctl.opu.streaming.calibration import (
    STEPS,
    CalibrationResult,
    LaneFit,
    StaircaseFit,
    branch_table,
    calibrate,
    calibrate_bias,
    calibrate_decoder,
    calibrate_drive,
    calibrate_lanes,
    drift_check,
    fit_lane,
    fit_staircase,
    laser_limits_dbm,
    measure_delays,
    measure_sampling_phase,
    measure_staircase,
    save,
)
from labctl.opu.streaming.drift import DriftReport

__all__ = [
    "STEPS",
    "CalibrationResult",
    "DriftReport",
    "LaneFit",
    "StaircaseFit",
    "branch_table",
    "calibrate",
    "calibrate_bias",
    "calibrate_decoder",
    "calibrate_drive",
    "calibrate_lanes",
    "drift_check",
    "fit_lane",
    "fit_staircase",
    "laser_limits_dbm",
    "measure_delays",
    "measure_sampling_phase",
    "measure_staircase",
    "save",
]

warnings.warn("labctl.opu.calibrate is deprecated: import from labctl.opu.streaming.calibration",
              DeprecationWarning, stacklevel=2)
