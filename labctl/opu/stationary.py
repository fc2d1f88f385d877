"""The weight-stationary OPU: weights held on microring banks, inputs streamed (docs/opu_design.md).

A **core** is N_in input modulators (one wavelength each, driven by the core controller's fast DACs
at the edge node), a broadcast splitter and N_out microring weight banks at the center, each ending on
a photodiode read by the controller's ADCs (``sim_backends/benches/ring_core.yaml``). Ring k of bank
q sets how much of wavelength k reaches photodiode q, so in every symbol slot photodiode q adds
``sum_k x_k w_qk``: a whole N_out x N_in matrix-vector product per slot, done optically.

Mapping ``A (M x K') @ B (K' x N)``: B is cut into N_in x N_out blocks (tiles); each tile's weights are
held by the heaters while the M rows of the matching A block stream through as M symbol slots; the
digital side adds the partial products of the K'/N_in tiles of an output. All tiles of a product go
to the controller as one program: one heater table and one input block, one result block -- a few
binary transfers per layer, never one transaction per multiply.

Encoding (all values scaled into [-1, 1] per tensor, scales kept digitally; offset encoding
x' = (1 + x)/2, w' = (1 + w)/2). The calibration (:mod:`labctl.opu.stationary_calibration`) gives

* per input k a lookup code(u): the DAC code at which the modulator's transmission above its minimum
  is the fraction u of its range (u = x');
* per output q a common path-gain range [G_lo, G_lo + dG] (ADC volts per unit u) that every ring of
  bank q reaches, and per ring the heater lookup G -> heater power (blue side of its Lorentzian drop
  resonance) with the bank's thermal crosstalk solved out (P = (I + F)^-1 P_isolated);
* the residual floor eps (the modulators' transmission at u = 0, relative to the range), the dark
  offset o_q, and an end-to-end affine decoder per output.

Photodiode q then reads ``y_q = o_q + sum_k G_qk (eps + u_k)`` with G_qk = G_lo + w'_qk dG, so

    sum_k x'_k w'_qk = [y_q - o_q - eps (K G_lo + dG sum w') - G_lo sum x'] / dG

and ``sum x w = 4 sum x'w' - K - sum x - sum w``: every offset term is an exact digital sum of the
encoded operands, never of the product.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from labctl.config import ConfigError, opu_section
from labctl.errors import LabctlError
from labctl.opu.encoding import EncodingRangeWarning, as_float_array


__all__ = ["CoreConfig", "StationaryConfig", "StationaryCalibration", "StationaryOPU", "architecture",
           "open_cores"]

#: largest program (tiles x slots x inputs codes) sent at once: 64 MB of int16 codes
MAX_PROGRAM_CODES = 1 << 25
#: ADC code scale (docs/occ_protocol.md): volts = offset + code / 65536 x range
_ADC_SCALE = 65536.0


class StationaryOPUError(LabctlError, RuntimeError):
    """The weight-stationary OPU cannot run (missing calibration, bad wiring, bad operands)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputChannel(_Strict):
    """One input of a core: the laser port that lights its modulator and the wavelength it emits."""

    laser: str
    laser_port: int = Field(ge=1)
    wavelength_m: float = Field(gt=1.0e-7, lt=3.0e-6)


class CoreConfig(_Strict):
    """One core: its controller (role ``optical_core``) and its input channels in DAC order."""

    controller: str
    channels: list[InputChannel] = Field(min_length=1)


class Nominal(_Strict):
    """Datasheet values used to place the modulator bias before it is measured."""

    v_pi: float = Field(5.0, gt=0)
    v_pi_rf: float = Field(5.5, gt=0)
    driver_gain_db: float = Field(20.0, ge=-20, le=60)
    driver_saturated_vpp: float = Field(8.0, gt=0)


class StationaryConfig(_Strict):
    """The bench file's ``opu:`` section for ``architecture: weight_stationary``."""

    architecture: Literal["weight_stationary"]
    laser_power_dbm: float
    symbol_rate_hz: float = Field(1e9, gt=0)
    dac_amplitude_vpp: float = Field(0.9, gt=0, le=1.0)
    heater_max_v: float = Field(1.6, gt=0, le=10.0)
    settle_time_s: float = Field(20e-6, ge=1e-6, le=1e-2)
    nominal: Nominal = Field(default_factory=Nominal)
    cores: list[CoreConfig] = Field(min_length=1)

    @classmethod
    def from_bench(cls, bench) -> "StationaryConfig":
        return opu_section(bench, cls, "see sim_backends/benches/ring_core.yaml")


def architecture(bench) -> str:
    """The bench's OPU architecture: ``"streaming"`` (AWG + scope lanes) or ``"weight_stationary"``."""
    section = getattr(getattr(bench, "config", bench), "opu", None) or {}
    return section.get("architecture", "streaming") if isinstance(section, dict) else "streaming"


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
    steps: list[str] = field(default_factory=list)

    def to_section(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_section(cls, section: dict, path: Any = None) -> "StationaryCalibration":
        """The calibration a file's ``core:<controller>`` section holds; anything missing, of the wrong
        type or shape, or not finite raises :class:`~labctl.opu.calibration_file.CalibrationCorrupt`."""
        from labctl.opu.calibration_file import CalibrationCorrupt

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
        return cls(**data)


#: expected shape of each array field for K inputs, Q outputs and table shape (L,)
_SHAPES = {
    "biases_v": lambda k, q, t: (k,), "dark_v": lambda k, q, t: (q,), "code_table": lambda k, q, t: (k, *t),
    "u_table": lambda k, q, t: (k, *t), "ring_peak_v": lambda k, q, t: (q, k),
    "ring_center_p": lambda k, q, t: (q, k), "ring_half_width_p": lambda k, q, t: (q, k),
    "thermal_crosstalk": lambda k, q, t: (q,), "g_lo_v": lambda k, q, t: (q,), "g_span_v": lambda k, q, t: (q,),
    "decoder_gain": lambda k, q, t: (q,), "decoder_offset": lambda k, q, t: (q,),
    "slot_sigma_v": lambda k, q, t: (q,),
}


class StationaryOPU:
    """One weight-stationary optical core of a bench: ``matmul(a, b)`` with b held on the rings."""

    architecture = "weight_stationary"

    def __init__(self, bench, calibration: Any = None, *, core: int = 0, accept_stale: bool = False):
        self.bench = bench
        self.config = StationaryConfig.from_bench(bench)
        if not 0 <= core < len(self.config.cores):
            raise StationaryOPUError(f"core={core} does not exist; this bench has {len(self.config.cores)} core(s)")
        self.core = core
        self.core_config = self.config.cores[core]
        self.controller = bench.role(self.core_config.controller)
        self.n_in = int(self.controller.n_inputs)
        self.n_out = int(self.controller.n_outputs)
        if len(self.core_config.channels) != self.n_in:
            raise ConfigError(getattr(bench, "path", None), f"opu.cores.{core}.channels",
                              f"lists {len(self.core_config.channels)} inputs; the controller has {self.n_in}")
        self.lasers = [bench.role(ch.laser, ch.laser_port) for ch in self.core_config.channels]
        self.calibration: StationaryCalibration | None = None
        self.last_stats: dict[str, Any] = {}
        self._prepared = False
        if calibration is not None:
            self.load_calibration(calibration, accept_stale=accept_stale)

    # -- set-up ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.core_config.controller

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None and "decoder" in self.calibration.steps

    def load_calibration(self, calibration: Any, *, accept_stale: bool = False) -> None:
        """Use a calibration: a StationaryCalibration (used as given), or a calibration file path.

        A file is checked against the bench (instruments), then the core is put in its calibrated
        state and the operating point it reports (plus the bench file's optical path) is compared with
        the file's: a difference raises :class:`~labctl.opu.calibration_file.CalibrationStale`. A file
        neither made nor drift-checked within ``calibration_file.DRIFT_CHECK_AFTER_S`` (8 h) gets a drift
        check now; a failed one raises :class:`~labctl.opu.calibration_file.CalibrationDrift`, a passing
        one is recorded in the file. ``accept_stale=True`` turns both errors into WARNING log records.
        """
        from labctl.opu import calibration_file as calfile

        if isinstance(calibration, StationaryCalibration):
            self.calibration = calibration
            self._prepared = False
            return
        cal = calfile.load(calibration, calfile.bench_fingerprint(self.bench))
        try:
            section = cal.section(f"core:{self.name}")
        except calfile.CalibrationError as exc:
            raise StationaryOPUError(f"{calibration}: no calibration for core {self.name}: {exc}") from None
        loaded = StationaryCalibration.from_section(section, cal.path)
        if loaded.biases_v.shape != (self.n_in,) or loaded.dark_v.shape != (self.n_out,):
            raise calfile.CalibrationBenchMismatch(
                cal.path, f"made for a core with {loaded.biases_v.size} inputs and {loaded.dark_v.size} outputs; "
                f"{self.name} has {self.n_in} and {self.n_out} -- recalibrate: {self.recalibrate_command(cal.path)}")
        previous = self.calibration
        self.calibration = loaded
        self._prepared = False
        try:
            self.prepare()
            calfile.check_operating_point(cal, self.operating_point(), recalibrate=self.recalibrate_command(cal.path),
                                          accept_stale=accept_stale)
            if calfile.drift_check_due(cal):
                self._drift_check_at_load(cal, accept_stale)
        except BaseException:
            self.calibration = previous
            self._prepared = False
            raise

    def _drift_check_at_load(self, cal, accept_stale: bool) -> None:
        from labctl.opu import calibration_file as calfile
        from labctl.opu.stationary_calibration import drift_check

        report = drift_check(self)
        calfile.conclude_drift_check(cal, drifted=report.recalibrate, reason=str(report),
                                     recalibrate=self.recalibrate_command(cal.path), accept_stale=accept_stale)

    def recalibrate_command(self, calibration_path: Any = None) -> str:
        """The command that recalibrates this core (into the folder of ``calibration_path``)."""
        from pathlib import Path

        bench_file = getattr(self.bench, "path", None) or "<bench file>"
        sim = " --sim" if getattr(self.bench, "mode", None) == "sim" else ""
        out = Path(calibration_path).parent if calibration_path is not None else "<calibration folder>"
        return f"labctl run calibrate_core{sim} --bench {bench_file} --set cores=[{self.core}] --out {out}"

    def operating_point(self) -> dict[str, Any]:
        """What this core's products depend on besides the calibration itself: the settings the lasers
        and the controller report now (call it in the calibrated state, after :meth:`prepare`) and the
        bench file's optical path of the core (fibres, mux, splitter, rings, receivers, temperature)."""
        from labctl.opu import calibration_file as calfile

        channels = self.core_config.channels
        point = calfile.path_operating_point(self.bench, [*dict.fromkeys(ch.laser for ch in channels), self.name])
        for laser, ch in zip(self.lasers, channels):
            key = f"lasers.{ch.laser}.{ch.laser_port}"
            point[f"{key}.power_dbm"] = round(10.0 * np.log10(max(float(laser.power), 1e-30) / 1e-3), 3)
            point[f"{key}.wavelength_nm"] = round(float(laser.wavelength) * 1e9, 4)
            point[f"{key}.output"] = bool(laser.output_enabled)
        ctl = self.controller
        key = f"controller.{self.name}"
        point[f"{key}.symbol_rate_hz"] = float(ctl.symbol_rate)
        point[f"{key}.dac_amplitude_vpp"] = float(ctl.dac_amplitude)
        point[f"{key}.adc_range_v"] = float(ctl.adc_range)
        point[f"{key}.adc_offset_v"] = float(ctl.adc_offset)
        point[f"{key}.input_advance_s"] = float(ctl.input_advance)
        point[f"{key}.settle_time_s"] = float(ctl.settle_time)
        point[f"{key}.heater_limit_v"] = float(ctl.heater_limit)
        point[f"{key}.output"] = bool(ctl.output_enabled)
        point[f"{key}.bias_v"] = [round(float(ctl.get_bias(k + 1)), 6) for k in range(self.n_in)]
        return point

    def lasers_on(self, on: bool = True) -> None:
        """Tune and power the input lasers (or turn them off: the dark reference)."""
        power = 10 ** (self.config.laser_power_dbm / 10) * 1e-3
        for laser, ch in zip(self.lasers, self.core_config.channels):
            if on:
                laser.wavelength = ch.wavelength_m
                laser.power = power
            laser.output_enabled = on
        self.bench.settle(0.0)

    def prepare(self, force: bool = False) -> None:
        """Put the core in its calibrated operating state (lasers, rates, ranges, biases, advance)."""
        if self._prepared and not force:
            return
        cal = self._require_calibration()
        ctl = self.controller
        self.lasers_on(True)
        ctl.symbol_rate = self.config.symbol_rate_hz
        ctl.dac_amplitude = self.config.dac_amplitude_vpp
        ctl.heater_limit = self.config.heater_max_v
        ctl.settle_time = self.config.settle_time_s
        ctl.adc_range = cal.adc_range_v
        ctl.adc_offset = cal.adc_offset_v
        ctl.input_advance = cal.input_advance_s
        ctl.set_biases(list(cal.biases_v))
        ctl.output_enabled = True
        self._prepared = True

    def _require_calibration(self) -> StationaryCalibration:
        if self.calibration is None:
            raise StationaryOPUError(f"core {self.name} is not calibrated: run `labctl run calibrate_core --sim "
                                     "--bench <file>` (or labctl.opu.stationary_calibration.calibrate) first")
        return self.calibration

    # -- the hardware program -------------------------------------------------------------------

    def run_program(self, heater_volts: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Run tiles (heater volts (T, Q, K), input codes (T, S, K) int16) -> ADC volts (T, S, Q)."""
        ctl = self.controller
        slots = codes.shape[1]
        if int(ctl.slots_per_tile) != slots:
            ctl.slots_per_tile = slots
        # float32 rounding must not lift a value at the limit above it (the table would be refused)
        heaters = np.minimum(np.asarray(heater_volts, dtype=np.float64), self.config.heater_max_v * (1 - 1e-6))
        raw = ctl.execute(np.ascontiguousarray(heaters, dtype=np.float32), np.ascontiguousarray(codes, dtype=np.int16))
        return ctl.adc_offset + raw.astype(np.float64) * (ctl.adc_range / _ADC_SCALE)

    # -- encoding --------------------------------------------------------------------------------

    def input_codes(self, u: np.ndarray) -> np.ndarray:
        """DAC codes for target fractions u (..., K) in [0, 1] (per-input measured lookup)."""
        cal = self._require_calibration()
        out = np.empty(u.shape, dtype=np.int16)
        for k in range(self.n_in):
            out[..., k] = np.round(np.interp(u[..., k], cal.u_table[k], cal.code_table[k])).astype(np.int16)
        return out

    def heater_volts(self, w_prime: np.ndarray) -> np.ndarray:
        """Heater volts (T, Q, K) that give path gains G_lo + w' dG, thermal crosstalk solved out."""
        cal = self._require_calibration()
        g = cal.g_lo_v[None, :, None] + w_prime * cal.g_span_v[None, :, None]
        peak, center, half = cal.ring_peak_v[None], cal.ring_center_p[None], cal.ring_half_width_p[None]
        ratio = np.clip(peak / np.maximum(g, 1e-30) - 1.0, 0.0, None)
        isolated = np.clip(center - half * np.sqrt(ratio), 0.0, None)  # blue side of the resonance
        p = np.empty_like(isolated)
        idx = np.arange(self.n_in)
        for q in range(self.n_out):
            f = cal.thermal_crosstalk[q]
            mix = f ** np.abs(idx[:, None] - idx[None, :])  # (I + F), K_ii = 1
            p[:, q, :] = np.linalg.solve(mix, isolated[:, q, :].T).T
        p = np.clip(p, 0.0, self.config.heater_max_v ** 2)
        return np.sqrt(p)

    # -- products ----------------------------------------------------------------------------------

    def matmul(self, a: Any, b: Any, *, return_error: bool = False, scale_a: float | None = None,
               scale_b: float | None = None):
        """``a @ b`` on the optical core (``np.matmul`` semantics, NumPy arrays or torch tensors).

        ``b`` (the weights) is held on the ring banks, ``a``'s rows stream through. Returns the product
        in ``a``'s type (torch tensor for torch input) and, with ``return_error=True``, the per-output
        standard error estimate. ``scale_a``/``scale_b`` fix the operands' full scale (values beyond are
        clipped with an EncodingRangeWarning and counted in ``last_stats``); default max |value|.
        """
        t_all = time.perf_counter()
        from labctl.opu.engine import _result_dtype, _to_torch, _torch_info

        info = _torch_info(a) or _torch_info(b)
        out_dtype = _result_dtype(a, b)
        a_arr = as_float_array(a, "a")
        b_arr = as_float_array(b, "b")
        drop_m, drop_n = a_arr.ndim == 1, b_arr.ndim == 1
        a2 = a_arr[None, :] if drop_m else a_arr
        b2 = b_arr[:, None] if drop_n else b_arr
        if a_arr.ndim == 0 or b_arr.ndim == 0:
            raise ValueError("matmul operands must have at least one dimension (scalars are not matrices)")
        if a2.shape[-1] != b2.shape[-2]:
            raise ValueError(f"shapes {a_arr.shape} and {b_arr.shape} do not match for a matrix product: "
                             f"the inner dimensions are {a2.shape[-1]} and {b2.shape[-2]}")
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        m, kk, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
        a_b = np.broadcast_to(a2, (*batch, m, kk)).reshape(-1, m, kk)
        b_b = np.broadcast_to(b2, (*batch, kk, n)).reshape(-1, kk, n)
        if b2.ndim == 2 or all(s == 1 for s in b2.shape[:-2]):
            # one weight matrix for every batch element (Linear/Conv layers): its rows stream together
            a_b, b_b = a_b.reshape(1, -1, kk), b_b[:1]
        # full scales: per row of a (each input vector) and per column of b (each output), applied
        # digitally on both sides -- or the caller's fixed scalars
        sa = (np.max(np.abs(a_b), axis=2) if scale_a is None else np.full(a_b.shape[:2], float(scale_a)))
        sb = (np.max(np.abs(b_b), axis=1) if scale_b is None else np.full((b_b.shape[0], n), float(scale_b)))
        sa = np.where(sa > 0, sa, 1.0)
        sb = np.where(sb > 0, sb, 1.0)
        clipped_a = int(np.count_nonzero(np.abs(a_b) > sa[:, :, None] * (1 + 1e-12)))
        clipped_b = int(np.count_nonzero(np.abs(b_b) > sb[:, None, :] * (1 + 1e-12)))
        if clipped_a or clipped_b:
            warnings.warn(EncodingRangeWarning(f"clipped {clipped_a} value(s) of a and {clipped_b} of b to the "
                                               "encodable range"), stacklevel=2)
        self.prepare()
        stats = {"programs": 0, "tiles": 0, "slots": 0, "upload_bytes": 0, "hardware_s": 0.0}
        if a_b.size == 0 or b_b.size == 0:
            y_out = np.zeros((*batch, m, n))
            var = np.zeros((*batch, m, n))
        else:
            x = np.clip(a_b / sa[:, :, None], -1, 1)
            w = np.clip(b_b / sb[:, None, :], -1, 1)
            out, v = self._product(x, w, stats)  # (B, R, N)
            scale = sa[:, :, None] * sb[:, None, :]
            y_out = (out * scale).reshape(*batch, m, n)
            var = (v * scale ** 2).reshape(*batch, m, n)
        sigma = np.sqrt(var)
        if drop_m:
            y_out, sigma = y_out[..., 0, :], sigma[..., 0, :]
        if drop_n:
            y_out, sigma = y_out[..., 0], sigma[..., 0]
        wall = time.perf_counter() - t_all
        self.last_stats = {"macs": int(np.prod(batch, dtype=np.int64)) * m * kk * n, "wall_s": wall,
                           "clipped_a": clipped_a, "clipped_b": clipped_b, "calibrated": self.calibrated,
                           "core": self.name, **stats, "uploads": stats["programs"], "captures": stats["programs"],
                           "optical_macs": stats["slots"] * self.n_in * self.n_out,
                           "optical_time_s": stats["slots"] / self.config.symbol_rate_hz
                           + stats["tiles"] * self.config.settle_time_s}
        y_out = y_out.astype(out_dtype)
        sigma = sigma.astype(out_dtype)
        if info is not None:
            y_out, sigma = _to_torch(y_out, info), _to_torch(sigma, info)
        return (y_out, sigma) if return_error else y_out

    def _product(self, x: np.ndarray, w: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray]:
        """x (B x M x K') in [-1,1] @ w (B x K' x N) in [-1,1] -> (sum xw, variance), one program per
        at most ``MAX_PROGRAM_CODES`` codes: every tile of every batch element goes in the same program."""
        cal = self._require_calibration()
        kin, kout = self.n_in, self.n_out
        nb, m, kk = x.shape
        n = w.shape[2]
        nk, nn = -(-kk // kin), -(-n // kout)
        xp = np.zeros((nb, m, nk * kin))
        xp[:, :, :kk] = x
        wp = np.zeros((nb, nk * kin, nn * kout))
        wp[:, :kk, :n] = w
        # block floating point: every 16-wide chunk of an input row and every column of a weight tile
        # gets its own full scale (digital, exact), so small blocks use the whole optical range
        wb = wp.reshape(nb, nk, kin, nn * kout)
        sb_blk = np.max(np.abs(wb), axis=2)  # (B, nk, N')
        sb_blk = np.where(sb_blk > 0, sb_blk, 1.0)
        wb = wb / sb_blk[:, :, None, :]
        # tiles (b, kb, nb'): weights W[q, k] = wb[b, kb, k, nb'*kout + q]
        wt = wb.reshape(nb, nk, kin, nn, kout).transpose(0, 1, 3, 4, 2).reshape(nb * nk * nn, kout, kin)
        heaters = self.heater_volts((1.0 + wt) / 2.0)  # (T, Q, K)
        sum_w = wt.sum(axis=2)  # (T, Q)
        x_blocks = xp.reshape(nb, m, nk, kin).transpose(0, 2, 1, 3)  # (B, nk, M, K)
        sa_blk = np.max(np.abs(x_blocks), axis=3)  # (B, nk, M)
        sa_blk = np.where(sa_blk > 0, sa_blk, 1.0)
        x_blocks = x_blocks / sa_blk[..., None]
        codes_all = self.input_codes((1.0 + x_blocks) / 2.0)
        sum_x = x_blocks.sum(axis=3)  # (B, nk, M)
        tiles = nb * nk * nn
        acc = np.zeros((nb, m, nn * kout))
        var = np.zeros((nb, m, nn * kout))
        rows_per_program = max(1, min(m, MAX_PROGRAM_CODES // max(1, tiles * kin)))
        sigma_slot = cal.slot_sigma_v if cal.slot_sigma_v is not None else np.zeros(kout)
        slot_var = (4.0 * sigma_slot / cal.g_span_v) ** 2  # (Q,) variance of one decoded tile sum
        dec_gain = cal.decoder_gain if cal.decoder_gain is not None else np.ones(kout)
        dec_offset = cal.decoder_offset if cal.decoder_offset is not None else np.zeros(kout)
        for r0 in range(0, m, rows_per_program):
            r1 = min(m, r0 + rows_per_program)
            s = r1 - r0
            tile_codes = np.broadcast_to(codes_all[:, :, None, r0:r1, :], (nb, nk, nn, s, kin)).reshape(tiles, s, kin)
            t0 = time.perf_counter()
            volts = self.run_program(heaters, tile_codes)  # (T, S, Q)
            stats["hardware_s"] += time.perf_counter() - t0
            stats["programs"] += 1
            stats["tiles"] += tiles
            stats["slots"] += tiles * s
            stats["upload_bytes"] += tile_codes.nbytes + heaters.nbytes
            # the decode, folded into one affine map per output (float32 over the (T, S, Q) readings):
            # 4 [y - dark - eps (K G_lo + dG sum w') - G_lo sum x'] / dG - K - sum x - sum w, then the decoder
            gain_a = (dec_gain * 4.0 / cal.g_span_v).astype(np.float32)
            coef_w = dec_gain * (-2.0 * cal.eps - 1.0)
            coef_x = (dec_gain * (-2.0 * cal.g_lo_v / cal.g_span_v - 1.0)).astype(np.float32)
            const = dec_gain * (-4.0 * (cal.dark_v + cal.eps * kin * cal.g_lo_v + cal.eps * cal.g_span_v * kin / 2.0
                                        + cal.g_lo_v * kin / 2.0) / cal.g_span_v - kin) + dec_offset
            xw = volts.astype(np.float32) * gain_a
            xw += (const + coef_w * sum_w).astype(np.float32)[:, None, :]
            sx = np.broadcast_to(sum_x[:, :, None, r0:r1], (nb, nk, nn, s)).reshape(tiles, s)
            xw += sx.astype(np.float32)[:, :, None] * coef_x
            # undo the block scales per tile, then add the K'/16 partial sums of every output
            tiles_xw = xw.reshape(nb, nk, nn, s, kout)
            tiles_xw *= sb_blk.reshape(nb, nk, nn, 1, kout).astype(np.float32)
            tiles_xw *= sa_blk[:, :, None, r0:r1, None].astype(np.float32)
            part = tiles_xw.sum(axis=1, dtype=np.float64)  # (B, nn, S, Q)
            acc[:, r0:r1] = part.transpose(0, 2, 1, 3).reshape(nb, s, nn * kout)
            tile_var = np.einsum("bks,bknq->bnsq", sa_blk[:, :, r0:r1] ** 2,
                                 sb_blk.reshape(nb, nk, nn, kout) ** 2) * slot_var  # (B, nn, S, Q)
            var[:, r0:r1] = tile_var.transpose(0, 2, 1, 3).reshape(nb, s, nn * kout)
        return acc[:, :, :n], var[:, :, :n]


def open_cores(bench, calibration_dir: Any = None, *, accept_stale: bool = False) -> list:
    """Every OPU of a bench, ready to use: one per weight-stationary core (or the one streaming OPU).

    ``calibration_dir``: a folder with one calibration file per core (``<controller>.json``, written by
    ``labctl run calibrate_core``); cores without a file there are calibrated now (and saved there).
    A file made at another operating point, or one that fails its drift check, is an error unless
    ``accept_stale`` (see :meth:`StationaryOPU.load_calibration`).
    """
    from pathlib import Path

    if architecture(bench) != "weight_stationary":
        from labctl.opu.engine import OPU

        return [OPU(bench)]
    from labctl.opu.stationary_calibration import calibrate

    config = StationaryConfig.from_bench(bench)
    cores = []
    for index, core in enumerate(config.cores):
        path = Path(calibration_dir) / f"{core.controller}.json" if calibration_dir else None
        if path is not None and path.is_file():
            cores.append(StationaryOPU(bench, path, core=index, accept_stale=accept_stale))
        else:
            cores.append(calibrate(StationaryOPU(bench, core=index), path).opu)
    return cores
