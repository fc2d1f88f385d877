"""What calibration measured for one weight-stationary core, and its calibration-file section."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np

from labctl.opu.calibration_file import CalibrationCorrupt
from labctl.opu.stationary.drift import LEGACY_REFERENCE_SHAPE, REFERENCE_SHAPE, REFERENCE_SHAPES

__all__ = ["StationaryCalibration"]


@dataclass
class StationaryCalibration:
    """What calibration measured for one core (arrays indexed [output q, input k] or [input k])."""

    biases_v: np.ndarray                 # (K,) modulator bias DAC volts
    input_advance_s: float
    adc_range_v: float
    adc_offset_v: float
    dark_v: np.ndarray                   # (Q,) ADC volts with the lasers off
    code_table: np.ndarray               # (K, L) DAC codes, increasing transmission
    u_table: np.ndarray                  # (K, L) transmission above minimum / range, 0..1 increasing
    ring_peak_v: np.ndarray              # (Q, K) path gain at resonance, ADC volts per unit u
    ring_center_p: np.ndarray            # (Q, K) heater V^2 at resonance (neighbours cold)
    ring_half_width_p: np.ndarray        # (Q, K) Lorentzian half width in heater V^2
    thermal_crosstalk: np.ndarray        # (Q,) nearest-neighbour fraction f of each bank (K_ij = f^|i-j|)
    g_lo_v: np.ndarray                   # (Q,) common path-gain range: low end
    g_span_v: np.ndarray                 # (Q,) and its width
    eps: float = 0.0                     # modulator floor relative to its range
    decoder_gain: np.ndarray | None = None    # (Q,) affine decoder: sum xw -> gain * decoded + offset
    decoder_offset: np.ndarray | None = None
    slot_sigma_v: np.ndarray | None = None    # (Q,) rms noise of one slot reading (ADC volts)
    drift_reference_rms: float = 0.0          # error of the drift-check product at calibration time
    # (M, K, N) of that product: its error now is only comparable on the same operands
    drift_reference_shape: tuple[int, int, int] = REFERENCE_SHAPE
    steps: list[str] = field(default_factory=list)

    def to_section(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_section(cls, section: dict, path: Any = None) -> "StationaryCalibration":
        """The calibration a file's ``core:<controller>`` section holds; anything missing, of the wrong
        type or shape, or not finite raises :class:`~labctl.opu.calibration_file.CalibrationCorrupt`.

        A section without ``drift_reference_shape`` was written before it was recorded, when the reference
        was 64 deep: it is judged on that product, which its ``drift_reference_rms`` was measured on."""
        if not isinstance(section, dict):
            raise CalibrationCorrupt(path, "the core section is not a dict of parameters")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(section) - set(known))
        missing = sorted(name for name, f in known.items() if name not in section
                         and f.default is MISSING and f.default_factory is MISSING)
        if unknown or missing:
            raise CalibrationCorrupt(path, f"core section: unknown fields {unknown}, missing fields {missing}")
        data: dict[str, Any] = {}
        try:
            for name, value in section.items():
                kind = str(known[name].type)
                if name == "steps":
                    if not isinstance(value, list) or not all(isinstance(step, str) for step in value):
                        raise ValueError("steps must be a list of step names")
                    data[name] = list(value)
                elif name == "drift_reference_shape":
                    data[name] = _reference_shape(value)
                elif value is None and "None" in kind:
                    data[name] = None
                elif "np.ndarray" in kind:
                    if isinstance(value, (str, bytes, dict, bool)):
                        raise ValueError(f"{name} must be a numeric array")
                    data[name] = np.asarray(value, dtype=float)
                elif isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                    raise ValueError(f"{name} must be a number, not {type(value).__name__}")
                else:
                    data[name] = float(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CalibrationCorrupt(path, f"core section: {exc}") from None
        k = data["biases_v"].shape[0] if data["biases_v"].ndim == 1 else -1
        q = data["dark_v"].shape[0] if data["dark_v"].ndim == 1 else -1
        table = data["code_table"].shape[1:] if data["code_table"].ndim == 2 else (-1,)
        for name, value in data.items():
            if isinstance(value, np.ndarray):
                want = _SHAPES[name](k, q, table)
                if value.shape != want or k < 1 or q < 1 or table[0] < 2:
                    raise CalibrationCorrupt(path, f"core section: {name} has shape {value.shape}; a core with "
                                             f"{k} inputs and {q} outputs needs {want}")
                if not np.all(np.isfinite(value)):
                    raise CalibrationCorrupt(path, f"core section: {name} holds non-finite values")
            elif isinstance(value, float) and not np.isfinite(value):
                raise CalibrationCorrupt(path, f"core section: {name} is not finite")
        if not np.all(data["g_span_v"] > 0) or data["adc_range_v"] <= 0:
            raise CalibrationCorrupt(path, "core section: g_span_v and adc_range_v must be positive")
        if not np.all((data["thermal_crosstalk"] >= 0) & (data["thermal_crosstalk"] < 1)):
            raise CalibrationCorrupt(path, "core section: thermal_crosstalk must be in [0, 1) (a fraction of the "
                                     "neighbour's heat)")
        data.setdefault("drift_reference_shape", LEGACY_REFERENCE_SHAPE)
        return cls(**data)


def _reference_shape(value: Any) -> tuple[int, int, int]:
    """A recorded drift reference shape, if it is one this labctl can rerun (ValueError if not)."""
    shape = tuple(value) if isinstance(value, (list, tuple)) else None
    if shape not in REFERENCE_SHAPES or not all(type(n) is int for n in shape):
        known = " or ".join(str(list(s)) for s in REFERENCE_SHAPES)
        raise ValueError(f"drift_reference_shape {str(value)[:60]} is not a drift reference product labctl knows "
                         f"({known}), so its drift check cannot be judged -- recalibrate to write a new file")
    return shape


#: expected shape of each array field for K inputs, Q outputs and table shape (L,)
_SHAPES = {
    "biases_v": lambda k, q, t: (k,), "dark_v": lambda k, q, t: (q,), "code_table": lambda k, q, t: (k, *t),
    "u_table": lambda k, q, t: (k, *t), "ring_peak_v": lambda k, q, t: (q, k),
    "ring_center_p": lambda k, q, t: (q, k), "ring_half_width_p": lambda k, q, t: (q, k),
    "thermal_crosstalk": lambda k, q, t: (q,), "g_lo_v": lambda k, q, t: (q,), "g_span_v": lambda k, q, t: (q,),
    "decoder_gain": lambda k, q, t: (q,), "decoder_offset": lambda k, q, t: (q,),
    "slot_sigma_v": lambda k, q, t: (q,),
}
