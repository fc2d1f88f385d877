"""Calibrate every weight-stationary optical core of a bench and write one calibration file per core.

    labctl run calibrate_core --sim --out cal/

For each core (parameter ``cores``: indices into the bench file's ``opu.cores``, default all) the steps of
:mod:`labctl.opu.stationary.calibration` run through the core's controller (dark levels, edge -> center
delay, modulator bias and transfer tables, microring Lorentzians with thermal crosstalk, sampling phase,
modulator floor, end-to-end decoder fit) and ``cal/<controller>.json`` is written (e.g. ``cal/occ1.json``;
load it with ``labctl.opu.open_opu(bench, "cal/occ1.json")`` for core 0, ``open_opu(bench, "cal/", core=i)``
or ``labctl.opu.open_opus(bench, "cal/")`` for all). Each file also records the core's operating
point (laser powers and wavelengths, controller rates, ranges and biases as the instruments report them,
the bench file's fibres and other components on the core's path, the temperature): loading it at another
operating point is refused (``CalibrationStale``) until the core is recalibrated with this experiment
(``--set cores=[i]`` for core i). The results file records per core the
delay, bias voltages, thermal-crosstalk fractions, modulator floor eps, decoder RMS error before/after the
affine fit, the fitted rings and the precision of one calibrated random 64 x 64 x 64 product (uniform
[-1, 1] operands, a seed of its own), in both conventions of :mod:`labctl.opu.precision`:

* range convention: ``bits = log2(range / sigma)`` (range = max - min of the exact outputs, sigma the
  RMS error against float64, mean included);
* ENOB convention: ``bits = (SNR_dB - 1.76) / 6.02``, SNR = var(exact) / sigma^2 (about 2.8-3 bits below
  the range convention for these nearly Gaussian outputs).

After every core is calibrated, a drift check (:func:`labctl.opu.stationary.drift_check`)
reruns each core's reference product and says whether the calibration still holds. The plot
``calibrate_core.png`` shows, per core, the ring path-gain ranges (per bank: every ring's peak and
cold-heater gain and the common range the decoder uses), the measured modulator lookups and the rings'
resonance heater powers. Roles only: it runs the same on a real bench.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from labctl.opu import calibration_file as calfile
from labctl.opu.precision import error_stats
from labctl.opu.stationary import StationaryConfig, StationaryOPU, architecture, calibrate, drift_check
from labctl.runner import Experiment, ExperimentError, RunContext


class Parameters(BaseModel):
    cores: list[int] | None = Field(None, description="core indices (bench file opu.cores) to calibrate; default all")
    precision_size: int = Field(64, ge=2, le=1024, description="M = K' = N of the random validation product")
    seed: int = Field(23, description="seed of the validation product's operands")
    drift_check: bool = Field(True, description="run the drift check on every core after calibrating")
    drift_threshold: float = Field(2.0, gt=1.0, description="error growth that asks for recalibration")


class CalibrateCore(Experiment):
    """Calibrate the weight-stationary cores of the bench: one calibration file per core."""

    name = "calibrate_core"
    Parameters = Parameters

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        bench, rec = ctx.bench, ctx.recorder
        if architecture(bench) != "weight_stationary":
            raise ExperimentError("calibrate_core needs a weight-stationary bench (opu.architecture: "
                                  "weight_stationary, e.g. sim_backends/benches/ring_core.yaml); for the "
                                  "streaming OPU run `labctl run calibrate`")
        config = StationaryConfig.from_bench(bench)
        n_cores = len(config.cores)
        cores = list(range(n_cores)) if p.cores is None else list(p.cores)
        bad = [c for c in cores if not 0 <= c < n_cores]
        if bad or not cores or len(set(cores)) != len(cores):
            raise ExperimentError(f"cores={p.cores}: give distinct indices in 0..{n_cores - 1} (this bench has "
                                  f"{n_cores} core(s): {', '.join(c.controller for c in config.cores)})")

        rec.set_units(**{f"{config.cores[c].controller}.{key}": unit for c in cores for key, unit in _UNITS.items()})
        summary: dict[str, Any] = {
            "convention_range": "bits = log2(range / sigma), sigma = RMS error vs float64",
            "convention_enob": "bits = (SNR_dB - 1.76) / 6.02, SNR = var(exact) / sigma^2",
            "validation_product": f"({p.precision_size} x {p.precision_size}) @ ({p.precision_size} x "
                                  f"{p.precision_size}), uniform [-1, 1]",
        }
        results: list[dict[str, Any]] = []
        bar = ctx.progress(total=len(cores) * 8, desc="calibrate")

        def progress(message: str) -> None:
            bar.set_description(message)
            bar.update(1)

        for index in cores:
            controller = config.cores[index].controller
            path = ctx.artefact(f"{controller}.json")
            t0 = time.perf_counter()
            result = calibrate(StationaryOPU(bench, core=index), path, progress=progress)
            seconds = time.perf_counter() - t0
            opu, steps = result.opu, result.steps
            cal = opu.calibration
            stats = self._validation(opu, p)
            results.append({"index": index, "controller": controller, "path": result.path, "opu": opu,
                            "steps": steps, "stats": stats, "seconds": seconds})
            self._record(rec, controller, cal, steps, stats, seconds)
            summary[f"{controller}_file"] = str(result.path)
            summary[f"{controller}_operating_point"] = calfile.load(result.path, None).operating_point_hash
            summary[f"{controller}_bits_range"] = round(stats.bits_range, 3)
            summary[f"{controller}_enob"] = round(stats.enob, 3)
            summary[f"{controller}_sigma"] = round(stats.sigma, 5)
            summary[f"{controller}_delay_us"] = round(float(steps["delay_s"]) * 1e6, 4)
            summary[f"{controller}_eps"] = round(float(steps["eps"]), 5)
            summary[f"{controller}_thermal_crosstalk"] = round(float(np.mean(steps["thermal_crosstalk"])), 4)
            summary[f"{controller}_decoder_rms"] = (f"{steps['decoder_rms_before']:.4f} -> "
                                                    f"{steps['decoder_rms_after']:.4f}")
            summary[f"{controller}_seconds"] = round(seconds, 1)
        bar.close()

        if p.drift_check:
            for r in results:
                report = drift_check(r["opu"], threshold=p.drift_threshold)
                r["drift"] = report
                prefix = r["controller"]
                rec.write(f"{prefix}.drift.rms_error", report.rms_error)
                rec.write(f"{prefix}.drift.calibration_rms_error", report.calibration_rms_error)
                rec.write(f"{prefix}.drift.ratio", report.ratio)
                summary[f"{prefix}_drift"] = (f"{report.ratio:.2f}x the calibration-time error: "
                                              + ("recalibrate" if report.recalibrate else "still good"))
            summary["drift_recalibrate"] = any(r["drift"].recalibrate for r in results)

        rec.write("cores.index", np.array([r["index"] for r in results]))
        rec.write("cores.controller", np.array([r["controller"] for r in results], dtype="S"))
        rec.write("cores.bits_range", np.array([r["stats"].bits_range for r in results]))
        rec.write("cores.enob", np.array([r["stats"].enob for r in results]))
        summary["calibration_files"] = ",".join(str(r["path"]) for r in results)
        summary["mean_bits_range"] = round(float(np.mean([r["stats"].bits_range for r in results])), 3)
        summary["mean_enob"] = round(float(np.mean([r["stats"].enob for r in results])), 3)
        self._plot(ctx, results)
        return summary

    @staticmethod
    def _validation(opu: StationaryOPU, p: Parameters):
        """Error of one calibrated random product (operands at full scale) against float64."""
        rng = np.random.default_rng(p.seed)
        size = p.precision_size
        a, b = rng.uniform(-1, 1, (size, size)), rng.uniform(-1, 1, (size, size))
        y = opu.matmul(a, b, scale_a=1.0, scale_b=1.0)
        return error_stats(y, a @ b)

    @staticmethod
    def _record(rec, controller: str, cal, steps: dict[str, Any], stats, seconds: float) -> None:
        pre = f"{controller}."
        rec.write(pre + "delay_s", float(steps["delay_s"]))
        rec.write(pre + "bias_v", np.asarray(cal.biases_v))
        rec.write(pre + "thermal_crosstalk", np.asarray(cal.thermal_crosstalk))
        rec.write(pre + "eps", float(cal.eps))
        rec.write(pre + "decoder_rms_before", float(steps["decoder_rms_before"]))
        rec.write(pre + "decoder_rms_after", float(steps["decoder_rms_after"]))
        rec.write(pre + "decoder_gain", np.asarray(cal.decoder_gain))
        rec.write(pre + "decoder_offset", np.asarray(cal.decoder_offset))
        rec.write(pre + "dark_v", np.asarray(cal.dark_v))
        rec.write(pre + "ring_peak_v", np.asarray(cal.ring_peak_v), axes="bank q, ring k")
        rec.write(pre + "ring_center_p", np.asarray(cal.ring_center_p), axes="bank q, ring k")
        rec.write(pre + "ring_half_width_p", np.asarray(cal.ring_half_width_p), axes="bank q, ring k")
        rec.write(pre + "g_lo_v", np.asarray(cal.g_lo_v))
        rec.write(pre + "g_span_v", np.asarray(cal.g_span_v))
        rec.write(pre + "code_table", np.asarray(cal.code_table), axes="input k, table point")
        rec.write(pre + "u_table", np.asarray(cal.u_table), axes="input k, table point")
        rec.write(pre + "precision.bits_range", stats.bits_range, convention="log2(range / sigma)")
        rec.write(pre + "precision.enob", stats.enob, convention="(SNR_dB - 1.76) / 6.02")
        rec.write(pre + "precision.sigma", stats.sigma)
        rec.write(pre + "seconds", seconds)

    def _plot(self, ctx: RunContext, results: list[dict[str, Any]]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = len(results)
        fig, axes = plt.subplots(rows, 3, figsize=(16, 4.0 * rows), squeeze=False)
        for row, r in zip(axes, results):
            cal = r["opu"].calibration
            ax1, ax2, ax3 = row
            peak = np.asarray(cal.ring_peak_v) * 1e3                       # (Q, K) mV per unit u
            cold = peak / (1 + (np.asarray(cal.ring_center_p) / np.asarray(cal.ring_half_width_p)) ** 2)
            banks = np.arange(1, peak.shape[0] + 1)
            lo, span = np.asarray(cal.g_lo_v) * 1e3, np.asarray(cal.g_span_v) * 1e3
            ax1.bar(banks, span, bottom=lo, width=0.6, color="C2", alpha=0.35, label="common range (decoder)")
            for q in range(peak.shape[0]):
                ax1.plot(np.full(peak.shape[1], banks[q]) - 0.15, peak[q], ".", ms=3, color="C0",
                         label="ring peak gain" if q == 0 else None)
                ax1.plot(np.full(peak.shape[1], banks[q]) + 0.15, cold[q], "x", ms=3, color="C3",
                         label="cold-heater gain" if q == 0 else None)
            ax1.set(xlabel="weight bank (photodiode) q", ylabel="path gain (mV at the ADC per unit u)",
                    title=f"{r['controller']}: ring path-gain ranges\ncalibrated 64³ product: "
                          f"{r['stats'].bits_range:.2f} bits log2(range/σ), {r['stats'].enob:.2f} bits ENOB")
            ax1.legend(fontsize=7)
            codes, u = np.asarray(cal.code_table), np.asarray(cal.u_table)
            for k in range(codes.shape[0]):
                ax2.plot(codes[k], u[k], lw=0.8)
            ax2.set(xlabel="DAC code", ylabel="u (transmission above null / range)",
                    title=f"input modulator lookups ({codes.shape[0]} inputs)\nmodulator floor eps = {cal.eps:.4f}")
            im = ax3.imshow(np.asarray(cal.ring_center_p), aspect="auto", origin="lower",
                            extent=(0.5, peak.shape[1] + 0.5, 0.5, peak.shape[0] + 0.5))
            fig.colorbar(im, ax=ax3, label="heater V² at resonance")
            steps = r["steps"]
            ax3.set(xlabel="ring k (input wavelength)", ylabel="bank q",
                    title=f"ring resonances; thermal crosstalk {np.mean(steps['thermal_crosstalk']):.3f}\n"
                          f"decoder rms {steps['decoder_rms_before']:.3f} -> {steps['decoder_rms_after']:.3f}")
        for ax in axes.flat:
            ax.title.set_fontsize(9)
        fig.tight_layout()
        fig.savefig(ctx.artefact("calibrate_core.png"), dpi=100)
        plt.close(fig)


_UNITS = {
    "delay_s": "s", "bias_v": "V", "thermal_crosstalk": "1", "eps": "1", "dark_v": "V",
    "decoder_rms_before": "1 (units of full-scale operand products)", "decoder_rms_after": "1",
    "ring_peak_v": "V per unit u", "ring_center_p": "V^2", "ring_half_width_p": "V^2", "g_lo_v": "V per unit u",
    "g_span_v": "V per unit u", "code_table": "DAC code", "u_table": "1", "precision.bits_range": "bit",
    "precision.enob": "bit", "precision.sigma": "1 (units of full-scale operand products)", "seconds": "s",
    "drift.rms_error": "1", "drift.calibration_rms_error": "1", "drift.ratio": "1",
}
