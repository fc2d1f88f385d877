"""The optical processing unit (OPU): hardware-independent parts (docs/opu_design.md).

* :mod:`~labctl.opu.encoding` -- per-tensor scaling, offset / differential encoding and the exact decode;
* :mod:`~labctl.opu.tiling` -- a matrix product laid out on lanes x wavelength channels x symbol slots;
* :mod:`~labctl.opu.timing` -- preamble, symbol timing by cross-correlation, levels;
* :mod:`~labctl.opu.predistortion` -- MZM transfer inversion, lookup tables, AWG code mapping;
* :mod:`~labctl.opu.precision` -- error statistics and effective bits (both conventions);
* :mod:`~labctl.opu.calibration_file` -- versioned calibration files bound to a bench and an operating point;
* :mod:`~labctl.opu.engine` -- :class:`OPU`, the engine that runs products on a bench's roles;
* :mod:`~labctl.opu.calibrate` -- the calibration steps, ``calibrate`` (exported here as
  :func:`calibrate_opu`) and :func:`drift_check`.

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
    balanced_decode,
    complementary_encode,
    differential_decode,
    differential_split,
    offset_decode,
    offset_encode,
    offset_sum,
    scale_to_unit,
)
from labctl.opu.precision import ErrorStats, bits_from_snr_db, error_stats, output_sigma, residual_sigma
from labctl.opu.predistortion import AWGDrive, PredistortionTable, mzm_transmission, predistort
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
from labctl.opu.engine import OPU, OPUCalibration, OPUConfig, OPUError  # noqa: E402  (uses the modules above)
# the function is exported as calibrate_opu: the name labctl.opu.calibrate stays the module
from labctl.opu.calibrate import CalibrationResult, DriftReport, drift_check  # noqa: E402
from labctl.opu.calibrate import calibrate as calibrate_opu  # noqa: E402
from labctl.opu.stationary import StationaryOPU  # noqa: E402
from labctl.opu.interface import STATS_KEYS, OpticalMatmul  # noqa: E402
from labctl.opu.open import OPUSection, architecture, open_cores, open_opu, open_opus, opu_config  # noqa: E402

__all__ = [
    "STATS_KEYS",
    "OPUSection",
    "OpticalMatmul",
    "StationaryOPU",
    "architecture",
    "open_cores",
    "open_opu",
    "open_opus",
    "opu_config",
    "AWGDrive",
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
    "balanced_decode",
    "bench_fingerprint",
    "bits_from_snr_db",
    "calibrate_opu",
    "complementary_encode",
    "differential_decode",
    "differential_split",
    "drift_check",
    "error_stats",
    "estimate_levels",
    "find_symbol_timing",
    "load_calibration",
    "mzm_transmission",
    "offset_decode",
    "offset_encode",
    "offset_sum",
    "output_sigma",
    "plan_gemm",
    "prbs",
    "predistort",
    "residual_sigma",
    "sample_symbols",
    "save_calibration",
    "scale_to_unit",
]
