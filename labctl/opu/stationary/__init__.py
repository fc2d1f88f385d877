"""The weight-stationary OPU: weights held on microring banks, inputs streamed by a core controller's
fast DACs, one whole matrix-vector product per symbol slot (docs/opu_design.md).

* :mod:`~labctl.opu.stationary.config` -- the bench file's ``opu:`` section (``architecture:
  weight_stationary``);
* :mod:`~labctl.opu.stationary.state` -- what calibration measured for a core, and its file section;
* :mod:`~labctl.opu.stationary.drift` -- the drift verdict;
* :mod:`~labctl.opu.stationary.engine` -- :class:`StationaryOPU`, one core;
* :mod:`~labctl.opu.stationary.calibration` -- the calibration steps and :func:`calibrate`.

Dependencies run one way, in that order: calibration drives the engine through its public methods.
"""

from labctl.opu.interface import architecture
from labctl.opu.stationary.calibration import STEPS, CoreCalibrationResult, calibrate, drift_check
from labctl.opu.stationary.config import CoreConfig, InputChannel, Nominal, StationaryConfig, StationaryOPUError
from labctl.opu.stationary.drift import CoreDriftReport
from labctl.opu.stationary.engine import MAX_PROGRAM_CODES, StationaryOPU
from labctl.opu.stationary.state import StationaryCalibration

__all__ = [
    "MAX_PROGRAM_CODES",
    "STEPS",
    "CoreCalibrationResult",
    "CoreConfig",
    "CoreDriftReport",
    "InputChannel",
    "Nominal",
    "StationaryCalibration",
    "StationaryConfig",
    "StationaryOPU",
    "StationaryOPUError",
    "architecture",
    "calibrate",
    "drift_check",
]
