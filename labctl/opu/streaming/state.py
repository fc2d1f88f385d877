"""What calibration measured for the streaming OPU, and its calibration-file sections.

:class:`OPUCalibration` holds everything the engine uses that calibration measures (bias points, drive
tables, delays, lane offset terms, decoder); :meth:`OPUCalibration.nominal` is the uncalibrated state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.opu import calibration_file as calfile
from labctl.opu.predistortion import PredistortionTable
from labctl.opu.streaming.config import CALIBRATION_KIND, StreamingConfig, modulators_of

__all__ = ["LaneCal", "ModulatorCal", "OPUCalibration"]


def _linear_table(name: str = "") -> PredistortionTable:
    """The uncalibrated drive: transmission t in [0, 1] -> AWG sample 2 t - 1 (linear)."""
    return PredistortionTable(t=np.array([0.0, 1.0]), volts=np.array([-1.0, 1.0]), name=name)


@dataclass
class ModulatorCal:
    """How one modulator is driven: DC bias, AWG amplitude, transmission -> AWG sample table."""

    bias_v: float
    amplitude_vpp: float
    table: PredistortionTable
    fit: dict[str, float] | None = None        # DC transfer fit (v_pi, phase_offset_v, p_max, p_min, ...)
    drive: dict[str, Any] | None = None        # staircase results (extinction, branch, residual)


@dataclass
class LaneCal:
    """Per-lane detector and decoder calibration (units: preamble-normalised lane sums)."""

    gain: float = 1.0                           # coefficient of sum_k x'_k w'_k
    channel_gains: np.ndarray | None = None     # (K,) per-channel coefficients after equalisation
    alpha: np.ndarray | None = None             # (K,) coefficients of x'_k (finite extinction)
    beta: np.ndarray | None = None              # (K,) coefficients of w'_k
    offset: float = 0.0
    x_scale: np.ndarray | None = None           # (K,) drive scale of each input channel (gain equalisation)
    laser_power_dbm: np.ndarray | None = None   # (K,)
    zero_v: float | None = None                 # detector levels at calibration (vertical range)
    full_v: float | None = None
    residual_sigma: float | None = None         # lane-sum noise of the affine fit
    d0: float = 0.0                             # end-to-end decoder: lane sum = d0 + d1 * estimate
    d1: float = 1.0
    decoder_sigma: float | None = None


@dataclass
class OPUCalibration:
    """Everything the engine uses that calibration measures; ``nominal()`` is the uncalibrated state."""

    modulators: dict[str, ModulatorCal]
    lanes: list[LaneCal]
    delays_s: dict[str, float] | None = None
    sampling_phase_s: float | None = None
    sections: set[str] = field(default_factory=set)   # which calibration steps are present
    validation: dict[str, Any] = field(default_factory=dict)
    source: str | None = None                          # file it was loaded from
    created: str | None = None

    @classmethod
    def nominal(cls, config: StreamingConfig) -> "OPUCalibration":
        nom = config.nominal
        gain = 10 ** (nom.driver_gain_db / 20)
        v_q = nom.v_pi / 2 - nom.phase_offset_v          # nominal quadrature of cos^2(pi/2 (V + V0)/V_pi)
        while v_q < 0:
            v_q += 2 * nom.v_pi
        amplitude = float(min(max(nom.v_pi_rf / gain, 0.075), 1.0))
        mods = {m.key: ModulatorCal(bias_v=float(v_q), amplitude_vpp=amplitude, table=_linear_table(m.key))
                for m in modulators_of(config)}
        k = config.channels_per_lane
        lanes = [LaneCal(alpha=np.zeros(k), beta=np.zeros(k), x_scale=np.ones(k),
                         laser_power_dbm=np.full(k, float(config.laser_power_dbm))) for _ in config.lanes]
        return cls(modulators=mods, lanes=lanes)

    @property
    def calibrated(self) -> bool:
        return bool(self.sections & {"bias", "drive", "lanes"})

    def only(self, config: StreamingConfig, steps) -> "OPUCalibration":
        """A copy keeping only the calibration sections ``steps`` (others back to nominal), e.g.
        ``("bias", "timing")`` for a run without predistortion, offset terms or decoder."""
        keep = set(steps) | {"opu"}
        sections = {k: v for k, v in self.to_sections(config).items() if k in keep}
        copy = calfile.CalibrationFile(bench="", bench_fingerprint="", created=self.created or "",
                                       sections=sections, path=self.source)
        return OPUCalibration.from_file(copy, config)

    # -- file sections -----------------------------------------------------------------------------

    def to_sections(self, config: StreamingConfig) -> dict[str, dict]:
        sections: dict[str, dict] = {"opu": _identity_section(config)}
        if "bias" in self.sections:
            sections["bias"] = {k: {"bias_v": c.bias_v, **(c.fit or {})} for k, c in self.modulators.items()}
        if "drive" in self.sections:
            sections["drive"] = {k: {"amplitude_vpp": c.amplitude_vpp, "t": c.table.t, "samples": c.table.volts,
                                     **(c.drive or {})} for k, c in self.modulators.items()}
        if "timing" in self.sections:
            sections["timing"] = {"delays_s": dict(self.delays_s or {}),
                                  "sampling_phase_s": self.sampling_phase_s}
        if "lanes" in self.sections:
            sections["lanes"] = {f"L{i + 1}": {
                "gain": ln.gain, "channel_gains": np.asarray(ln.channel_gains if ln.channel_gains is not None
                                                             else np.full(len(ln.alpha), ln.gain), float),
                "alpha": np.asarray(ln.alpha, float), "beta": np.asarray(ln.beta, float),
                "offset": ln.offset, "x_scale": np.asarray(ln.x_scale, float),
                "laser_power_dbm": np.asarray(ln.laser_power_dbm, float), "zero_v": ln.zero_v, "full_v": ln.full_v,
                "residual_sigma": ln.residual_sigma} for i, ln in enumerate(self.lanes)}
        if "decoder" in self.sections:
            sections["decoder"] = {f"L{i + 1}": {"d0": ln.d0, "d1": ln.d1, "residual_sigma": ln.decoder_sigma}
                                   for i, ln in enumerate(self.lanes)}
        if self.validation:
            sections["validation"] = dict(self.validation)
        return sections

    @classmethod
    def from_file(cls, cal: calfile.CalibrationFile, config: StreamingConfig) -> "OPUCalibration":
        ident = cal.sections.get("opu")
        want = _identity_section(config)
        if ident is None:
            raise calfile.CalibrationCorrupt(cal.path, "no 'opu' section: not an OPU calibration file")
        if ident.get("kind") != CALIBRATION_KIND:
            raise calfile.CalibrationVersionError(cal.path, f"OPU calibration kind {ident.get('kind')!r}; this "
                                                  f"labctl reads {CALIBRATION_KIND!r} -- recalibrate")
        for key in ("symbol_rate_hz", "awg_sample_rate_hz", "modulators", "channels_per_lane"):
            if ident.get(key) != want[key]:
                raise calfile.CalibrationBenchMismatch(
                    cal.path, f"the bench's opu section changed since calibration ({key}: file "
                    f"{ident.get(key)!r}, bench {want[key]!r}) -- recalibrate")
        out = cls.nominal(config)
        out.source, out.created = cal.path, cal.created
        try:
            if "bias" in cal.sections:
                for key, sec in cal.sections["bias"].items():
                    mc = out.modulators[key]
                    mc.bias_v = float(sec["bias_v"])
                    mc.fit = {k: v for k, v in sec.items() if k != "bias_v"}
                out.sections.add("bias")
            if "drive" in cal.sections:
                for key, sec in cal.sections["drive"].items():
                    mc = out.modulators[key]
                    mc.amplitude_vpp = float(sec["amplitude_vpp"])
                    mc.table = PredistortionTable(t=np.asarray(sec["t"], float),
                                                  volts=np.asarray(sec["samples"], float), name=key)
                    mc.drive = {k: v for k, v in sec.items() if k not in ("amplitude_vpp", "t", "samples")}
                out.sections.add("drive")
            if "timing" in cal.sections:
                sec = cal.sections["timing"]
                out.delays_s = {k: float(v) for k, v in sec["delays_s"].items()}
                missing = set(out.modulators) - set(out.delays_s)
                if missing:
                    raise KeyError(f"timing.delays_s lacks {sorted(missing)}")
                phase = sec.get("sampling_phase_s")
                out.sampling_phase_s = None if phase is None else float(phase)
                out.sections.add("timing")
            if "lanes" in cal.sections:
                for i, ln in enumerate(out.lanes):
                    sec = cal.sections["lanes"][f"L{i + 1}"]
                    ln.gain, ln.offset = float(sec["gain"]), float(sec["offset"])
                    ln.channel_gains = np.asarray(sec.get("channel_gains", np.full(len(sec["alpha"]), ln.gain)), float)
                    ln.alpha, ln.beta = np.asarray(sec["alpha"], float), np.asarray(sec["beta"], float)
                    ln.x_scale = np.asarray(sec["x_scale"], float)
                    ln.laser_power_dbm = np.asarray(sec["laser_power_dbm"], float)
                    ln.zero_v, ln.full_v = sec.get("zero_v"), sec.get("full_v")
                    ln.residual_sigma = sec.get("residual_sigma")
                out.sections.add("lanes")
            if "decoder" in cal.sections:
                for i, ln in enumerate(out.lanes):
                    sec = cal.sections["decoder"][f"L{i + 1}"]
                    ln.d0, ln.d1 = float(sec["d0"]), float(sec["d1"])
                    ln.decoder_sigma = sec.get("residual_sigma")
                out.sections.add("decoder")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise calfile.CalibrationCorrupt(cal.path, f"an OPU calibration section is incomplete or of the wrong "
                                             f"type ({type(exc).__name__}: {exc})") from None
        out.validation = dict(cal.sections.get("validation", {}))
        return out


def _identity_section(config: StreamingConfig) -> dict:
    return {"kind": CALIBRATION_KIND, "symbol_rate_hz": float(config.symbol_rate_hz),
            "awg_sample_rate_hz": float(config.awg_sample_rate_hz),
            "modulators": [m.key for m in modulators_of(config)], "channels_per_lane": config.channels_per_lane,
            "lanes": len(config.lanes)}
