"""The optical processing unit (OPU): hardware-independent parts (docs/opu_design.md).

* :mod:`~labctl.opu.encoding` -- per-tensor scaling, offset encoding and its exact decode;
* :mod:`~labctl.opu.tiling` -- a matrix product laid out on lanes x wavelength channels x symbol slots;
* :mod:`~labctl.opu.timing` -- preamble, symbol timing by cross-correlation, levels;
* :mod:`~labctl.opu.predistortion` -- MZM transfer inversion and lookup tables;
* :mod:`~labctl.opu.precision` -- error statistics and effective bits (both conventions);
* :mod:`~labctl.opu.calibration_file` -- versioned calibration files bound to a bench and an operating point;
* :mod:`~labctl.opu.interface` -- :class:`OpticalMatmul`, what every engine offers (``offload`` needs only it);
* :mod:`~labctl.opu.frontend` -- operand checks, result types and statistics both engines share;
* :mod:`~labctl.opu.streaming` -- :class:`StreamingOPU` (AWG-driven lanes read by a scope), its
  calibration (:func:`calibrate_opu`) and drift check;
* :mod:`~labctl.opu.stationary` -- :class:`StationaryOPU` (weights held on microring banks), its
  calibration and drift check;
* :mod:`~labctl.opu.open` -- :func:`open_opus` / :func:`open_opu`: the engines a bench file's ``opu``
  section describes.

Only NumPy is used here; torch tensors are accepted at the edges and converted.
"""

from labctl.opu.calibration_file import (
    FORMAT_VERSION,
    CalibrationBenchMismatch,
    CalibrationCorrupt,
    CalibrationDrift,
    CalibrationError,
    CalibrationFile,
    CalibrationStale,
    CalibrationVersionError,
    bench_fingerprint,
)
from labctl.opu.calibration_file import load as load_calibration
from labctl.opu.calibration_file import save as save_calibration
from labctl.opu.encoding import (
    EncodingRangeWarning,
    offset_decode,
    scale_to_unit,
)
from labctl.opu.precision import ErrorStats, bits_from_snr_db, error_stats, output_sigma, residual_sigma
from labctl.opu.predistortion import PredistortionTable, mzm_transmission, predistort
from labctl.opu.tiling import Schedule, plan_gemm
from labctl.opu.timing import (
    Levels,
    Preamble,
    SymbolTiming,
    SymbolTimingError,
    estimate_levels,
    find_symbol_timing,
    prbs,
    sample_symbols,
)
from labctl.opu.interface import STATS_KEYS, OpticalMatmul, architecture
from labctl.opu.streaming import (
    CalibrationResult,
    DriftReport,
    OPUCalibration,
    OPUConfig,
    OPUError,
    StreamingConfig,
    StreamingOPU,
    drift_check,
)
from labctl.opu.streaming import calibrate as calibrate_opu
from labctl.opu.stationary import StationaryConfig, StationaryOPU
from labctl.opu.open import OPU, OPUSection, open_cores, open_opu, open_opus, opu_config

__all__ = [
    "STATS_KEYS",
    "StationaryConfig",
    "StreamingConfig",
    "StreamingOPU",
    "OPUSection",
    "OpticalMatmul",
    "StationaryOPU",
    "architecture",
    "open_cores",
    "open_opu",
    "open_opus",
    "opu_config",
    "CalibrationBenchMismatch",
    "CalibrationCorrupt",
    "CalibrationDrift",
    "CalibrationError",
    "CalibrationFile",
    "CalibrationResult",
    "CalibrationStale",
    "CalibrationVersionError",
    "DriftReport",
    "EncodingRangeWarning",
    "ErrorStats",
    "FORMAT_VERSION",
    "Levels",
    "OPU",
    "OPUCalibration",
    "OPUConfig",
    "OPUError",
    "Preamble",
    "PredistortionTable",
    "Schedule",
    "SymbolTiming",
    "SymbolTimingError",
    "bench_fingerprint",
    "bits_from_snr_db",
    "calibrate_opu",
    "drift_check",
    "error_stats",
    "estimate_levels",
    "find_symbol_timing",
    "load_calibration",
    "mzm_transmission",
    "offset_decode",
    "output_sigma",
    "plan_gemm",
    "prbs",
    "predistort",
    "residual_sigma",
    "sample_symbols",
    "save_calibration",
    "scale_to_unit",
]
