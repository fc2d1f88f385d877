"""Calibrate the bench's optical processing unit and write a versioned calibration file.

    labctl run calibrate --sim --bench sim_backends/benches/opu_core.yaml --out cal/

runs the steps of :mod:`labctl.opu.streaming.calibration` on the wiring the bench file's ``opu:`` section describes
(bias sweeps and transfer fits, AWG -> detector delays and sampling phase, AWG staircases ->
predistortion tables, per-lane gain equalisation and offset terms, end-to-end decoder fit), writes
``cal/opu_calibration.json`` (load it with ``labctl.opu.open_opu(bench, "cal/opu_calibration.json")``;
it records the operating point -- laser powers, bias voltages, rates, the bench file's optical path -- and
loading it at another one is refused with ``CalibrationStale`` until this experiment is run again),
records every measured curve in the results file and plots them. Roles only: it runs the same on a real
bench.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, field_validator

from labctl.opu import calibration_file as calfile
from labctl.opu.streaming import STEPS, StreamingOPU, calibrate, drift_check
from labctl.runner import Experiment, RunContext


class Parameters(BaseModel):
    output: str = Field("opu_calibration.json",
                        description="calibration file (relative to the run's output directory unless absolute)")
    steps: list[str] = Field(default_factory=lambda: list(STEPS), description=f"subset of {list(STEPS)}")
    samples_per_symbol_capture: int | None = Field(None, ge=1, le=64,
                                                   description="scope samples per symbol (default: the bench's)")
    bias_points: int = Field(21, ge=7, description="bias voltages per fine sweep")
    bias_samples: int = Field(2048, ge=64, description="scope samples averaged per bias reading")
    staircase_levels: int = Field(48, ge=8, description="AWG levels per staircase")
    staircase_hold: int = Field(8, ge=4, description="symbols each staircase level is held")
    lane_slots: int = Field(4096, ge=256, description="random slots per lane-fit capture")
    decoder_products: int = Field(4, ge=1, description="random products for the decoder fit and validation")
    equalise_lasers: bool = Field(True, description="equalise channel gains with the laser powers first")
    drift_check: bool = Field(True, description="run the drift check once after calibrating")

    @field_validator("steps")
    @classmethod
    def _steps(cls, value):
        bad = sorted(set(value) - set(STEPS))
        if bad:
            raise ValueError(f"unknown steps {bad}; steps are {list(STEPS)}")
        return value


class Calibrate(Experiment):
    """Calibrate the OPU of the bench and write the calibration file."""

    name = "calibrate"
    Parameters = Parameters
    default_bench = "opu_core"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        rec = ctx.recorder
        path = Path(p.output)
        if not path.is_absolute():
            path = ctx.artefact(p.output)
        opu = StreamingOPU(ctx.bench, samples_per_symbol_capture=p.samples_per_symbol_capture)
        bar = ctx.progress(total=None, desc="calibrate")

        def progress(message: str) -> None:
            bar.set_description(message)
            bar.update(1)

        result = calibrate(opu, path, steps=tuple(p.steps), progress=progress, lane_slots=p.lane_slots,
                           decoder_products=p.decoder_products, equalise_lasers=p.equalise_lasers,
                           bias_points=p.bias_points, bias_samples=p.bias_samples,
                           staircase_levels=p.staircase_levels, staircase_hold=p.staircase_hold)
        bar.close()
        steps = result.steps
        summary: dict[str, Any] = {"calibration_file": str(result.path), "steps": ",".join(p.steps),
                                   "operating_point": calfile.load(result.path, None).operating_point_hash}
        rec.set_units(bias_sweep_v="V", bias_detector_v="V", staircase_samples="1", staircase_detector_v="V",
                      delays_s="s")
        for key, res in steps.get("bias", {}).items():
            rec.write(f"bias.{key}.sweep_v", res["sweep_v"])
            rec.write(f"bias.{key}.detector_v", res["sweep_detector_v"])
            summary[f"v_pi_{key}"] = round(float(res["v_pi"]), 4)
            summary[f"bias_v_{key}"] = round(float(res["bias_v"]), 4)
        for key, res in steps.get("drive", {}).items():
            rec.write(f"drive.{key}.staircase_samples", res["staircase_samples"])
            rec.write(f"drive.{key}.staircase_detector_v", res["staircase_detector_v"])
            table = opu.calibration.modulators[key].table
            rec.write(f"drive.{key}.table_t", table.t)
            rec.write(f"drive.{key}.table_samples", table.volts)
            summary[f"amplitude_vpp_{key}"] = round(float(res["amplitude_vpp"]), 4)
        timing = steps.get("timing", {})
        if "delays_s" in timing:
            keys = sorted(timing["delays_s"])
            rec.write("delays_s", np.array([timing["delays_s"][k] for k in keys]), modulators=",".join(keys))
            for k in keys:
                summary[f"delay_ns_{k}"] = round(timing["delays_s"][k] * 1e9, 4)
        if timing.get("sampling_phase_s") is not None:
            summary["sampling_phase_ps"] = round(timing["sampling_phase_s"] * 1e12, 2)
        for lane, res in steps.get("lanes", {}).items():
            rec.write(f"lanes.{lane}.gains", res["gains"])
            rec.write(f"lanes.{lane}.alpha", res["alpha"])
            rec.write(f"lanes.{lane}.beta", res["beta"])
            rec.write(f"lanes.{lane}.laser_power_dbm", res["laser_power_dbm"])
            summary[f"gain_spread_{lane}"] = round(float(res["gain_spread"]), 5)
            summary[f"slot_sigma_{lane}"] = round(float(res["residual_sigma"]), 5)
        validation = steps.get("decoder", {}).get("validation")
        if validation:
            summary["validation_bits_range"] = round(validation["bits_range"], 3)
            summary["validation_enob"] = round(validation["enob"], 3)
            summary["validation_sigma"] = round(validation["sigma"], 5)
        if p.drift_check and "decoder" in p.steps:
            report = drift_check(opu)
            summary["drift_recalibrate"] = report.recalibrate
            summary["drift_ratio"] = round(report.ratio, 3) if report.ratio is not None else -1.0
        self._plot(ctx, opu, steps)
        return summary

    def _plot(self, ctx: RunContext, opu: StreamingOPU, steps: dict[str, Any]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        ax1, ax2, ax3 = axes
        for key, res in steps.get("bias", {}).items():
            line, = ax1.plot(res["sweep_v"], np.asarray(res["sweep_detector_v"]) * 1e3, ".", ms=3)
            v = np.linspace(res["sweep_v"][0], res["sweep_v"][-1], 400)
            a = (res["p_max_v"] + res["p_min_v"]) / 2
            b = (res["p_max_v"] - res["p_min_v"]) / 2
            ax1.plot(v, (a + b * np.cos(np.pi * (v + res["phase_offset_v"]) / res["v_pi"])) * 1e3, lw=0.8,
                     color=line.get_color(), label=f"{key}: V$_\\pi$ {res['v_pi']:.3f} V")
            ax1.axvline(res["bias_v"], color=line.get_color(), lw=0.4, ls=":")
        ax1.set(xlabel="DC bias (V)", ylabel="detector (mV)", title="1. bias sweeps, cos$^2$ fits, quadrature")
        ax1.legend(fontsize=6)
        for key, res in steps.get("drive", {}).items():
            table = opu.calibration.modulators[key].table
            line, = ax2.plot(res["staircase_samples"], res["staircase_detector_v"] * 1e3, ".", ms=3)
            lo, hi = res["branch_detector_v"]
            ax2.plot(table.volts, (lo + (hi - lo) * table.t) * 1e3, lw=0.8, color=line.get_color(),
                     label=f"{key}: {res['amplitude_vpp']:.2f} Vpp")
        ax2.set(xlabel="AWG sample (normalised)", ylabel="detector (mV)",
                title="3. staircases and predistortion branch")
        ax2.legend(fontsize=6)
        lanes = steps.get("lanes", {})
        for i, (lane, res) in enumerate(lanes.items()):
            k = np.arange(1, len(res["gains"]) + 1)
            ax3.bar(k - 0.2 + 0.4 * i, res["gains"], width=0.4, label=f"{lane} gains (after equalisation)")
            ax3.plot(k, res["alpha"], "o", label=f"{lane} a_k (x' terms)")
            ax3.plot(k, res["beta"], "s", label=f"{lane} b_k (w' terms)")
        ax3.set(xlabel="channel", ylabel="coefficient (preamble-normalised)", title="4. lane fit")
        ax3.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(ctx.artefact("calibration.png"), dpi=110)
        plt.close(fig)
