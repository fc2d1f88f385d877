"""The streaming OPU: K wavelength channels per lane, inputs and weights both streamed by AWGs, one
photodetector per lane read by a scope (docs/opu_design.md).

* :mod:`~labctl.opu.streaming.config` -- the bench file's ``opu:`` section and the modulators it wires;
* :mod:`~labctl.opu.streaming.hardware` -- the bench roles and the bulk operations on them;
* :mod:`~labctl.opu.streaming.state` -- what calibration measured, and its calibration-file sections;
* :mod:`~labctl.opu.streaming.sync` -- delay-measurement signal processing;
* :mod:`~labctl.opu.streaming.drift` -- the drift verdict;
* :mod:`~labctl.opu.streaming.engine` -- :class:`StreamingOPU`, the engine;
* :mod:`~labctl.opu.streaming.calibration` -- the calibration steps and :func:`calibrate`.

Dependencies run one way, in that order: calibration drives the engine through its public methods.
"""

from labctl.opu.streaming.calibration import STEPS, CalibrationResult, calibrate, drift_check, save
from labctl.opu.streaming.config import CALIBRATION_KIND, OPUConfig, OPUError, StreamingConfig
from labctl.opu.streaming.drift import DriftReport
from labctl.opu.streaming.engine import StreamingOPU
from labctl.opu.streaming.hardware import OPUHardware
from labctl.opu.streaming.state import OPUCalibration

__all__ = [
    "CALIBRATION_KIND",
    "STEPS",
    "CalibrationResult",
    "DriftReport",
    "OPUCalibration",
    "OPUConfig",
    "OPUError",
    "OPUHardware",
    "StreamingConfig",
    "StreamingOPU",
    "calibrate",
    "drift_check",
    "save",
]
