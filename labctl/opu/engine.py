"""Import path of the streaming OPU's engine names, kept for existing code.

The engine lives in :mod:`labctl.opu.streaming`; open a bench's OPU with :func:`labctl.opu.open_opu`.
"""

import warnings

from labctl.opu.open import OPU
from labctl.opu.streaming.config import (
    CALIBRATION_KIND,
    ChannelWiring,
    LaneWiring,
    Modulator,
    OPUConfig,
    OPUError,
    StreamingConfig,
)
from labctl.opu.streaming.engine import LaneReading, StreamingOPU
from labctl.opu.streaming.hardware import OPUHardware
from labctl.opu.streaming.state import OPUCalibration

__all__ = [
    "CALIBRATION_KIND",
    "ChannelWiring",
    "LaneReading",
    "LaneWiring",
    "Modulator",
    "OPU",
    "OPUCalibration",
    "OPUConfig",
    "OPUError",
    "OPUHardware",
    "StreamingConfig",
    "StreamingOPU",
]

warnings.warn("labctl.opu.engine is deprecated: import from labctl.opu.streaming (or labctl.opu.open_opu)",
              DeprecationWarning, stacklevel=2)
