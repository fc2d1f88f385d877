"""Precision of optical matrix products against float64, calibrated and uncalibrated, vs received power.

    labctl run mvm_precision --sim --bench sim_backends/benches/opu_core.yaml --out results/precision

For random matrices A (M x K') and B (K' x N) with entries uniform in [-1, 1], ``StreamingOPU.matmul``
computes A @ B on the bench; the error against the float64 product gives the effective bits in both
conventions (:mod:`labctl.opu.precision`):

* range convention: ``bits = log2(range / sigma)``, range = max - min of the exact outputs, sigma the
  RMS error (mean included);
* ENOB convention: ``(SNR_dB - 1.76) / 6.02`` with SNR = var(exact) / sigma^2. For dot products of K'
  independent terms the outputs are nearly Gaussian, range ~ 7 std, so this is ~2.8 bits below the
  range convention for the same error.

Three operating states are compared: **calibrated** (the full calibration file), **uncalibrated**
(only the bias and timing sections: modulators at quadrature and streams aligned -- the minimum for the
engine to work at all -- but a linear drive at the nominal amplitude, no offset terms, no decoder), and
**nominal** (no calibration at all: datasheet bias, which may leave a modulator near a null; recorded as
failed when the engine cannot even find its sync patterns). The laser powers are swept below their
calibrated values to vary the received optical power (reported per channel at full transmission, from
the detector swing and the detector datasheet values of the bench's ``opu`` section). The calibrated
product is measured twice at the highest power: the difference of the two runs separates the random
part of the error (noise) from the repeatable part (model error: nonlinearity, crosstalk, ISI).
Without a ``calibration`` file the bench is calibrated first (into the output directory).

Energy: every product is recorded in the run's energy ledger (its MACs over its stretch of the bench
clock), with the CPU baseline of the same products (``baseline_repeats`` passes of torch float32 matmuls on
the same operands); a streaming bench has no integrated projection, and the ledger says so. The summary's
energy line gives the energy per product of each view (``labctl energy report mvm_precision.h5``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from experiments.common.energy import ProductEnergy
from labctl.opu.precision import error_stats
from labctl.opu.streaming import OPUError, StreamingOPU, calibrate
from labctl.opu.streaming.calibration import laser_limits_dbm
from labctl.opu.timing import SymbolTimingError
from labctl.runner import Experiment, RunContext


class Parameters(BaseModel):
    calibration: str | None = Field(None, description="calibration file (default: calibrate first)")
    m: int = Field(32, ge=1, description="rows of A")
    k: int = Field(64, ge=1, description="inner dimension K'")
    n: int = Field(32, ge=1, description="columns of B")
    trials: int = Field(2, ge=1, description="random product pairs per point")
    power_offsets_db: list[float] = Field(default_factory=lambda: [-6.0, -4.0, -2.0, 0.0],
                                          description="laser power relative to the calibrated powers (dB)")
    samples_per_symbol_capture: int | None = Field(None, ge=1, le=64, description="default: the bench's")
    compare_uncalibrated: bool = True
    try_nominal: bool = Field(True, description="also try with no calibration at all")
    seed: int = 11
    baseline_repeats: int = Field(5, ge=1, description="CPU passes over the run's products for the electronic "
                                                       "baseline (their energy / passes = one pass)")


class MVMPrecision(Experiment):
    """Effective bits of optical products vs received power, calibrated vs uncalibrated."""

    name = "mvm_precision"
    Parameters = Parameters
    default_bench = "opu_core"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        bench, rec = ctx.bench, ctx.recorder
        energy = ProductEnergy(ctx.energy)
        if p.calibration:
            # Loaded by the OPU from the file, so its operating point and drift are checked against this bench.
            cal_opu = StreamingOPU(bench, calibration=Path(p.calibration),
                          samples_per_symbol_capture=p.samples_per_symbol_capture)
            cal = cal_opu.calibration
        else:
            result = calibrate(bench if p.samples_per_symbol_capture is None else
                               StreamingOPU(bench, samples_per_symbol_capture=p.samples_per_symbol_capture),
                               ctx.artefact("opu_calibration.json"))
            cal = result.opu.calibration
            cal_opu = StreamingOPU(bench, calibration=cal, samples_per_symbol_capture=p.samples_per_symbol_capture)
        states = {"calibrated": cal_opu}
        if p.compare_uncalibrated:
            states["uncalibrated"] = StreamingOPU(bench, calibration=cal.only(cal_opu.config, ("bias", "timing")),
                                         samples_per_symbol_capture=p.samples_per_symbol_capture)
        offsets = self._allowed_offsets(cal_opu, p.power_offsets_db)
        rng = np.random.default_rng(p.seed)
        pairs = [(rng.uniform(-1, 1, (p.m, p.k)), rng.uniform(-1, 1, (p.k, p.n))) for _ in range(p.trials)]
        rows = []
        kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        bar = ctx.progress(total=len(states) * len(offsets) * p.trials, desc="products")
        for state, opu in states.items():
            for offset in offsets:
                opu.laser_power_offset_db = offset
                measured, reference, estimate, power = [], [], [], []
                for a, b in pairs:
                    y, sigma = energy.matmul(opu, a, b, return_error=True)
                    measured.append(y.ravel())
                    reference.append((a @ b).ravel())
                    estimate.append(sigma.ravel())
                    power.append(np.nanmean([v for v in opu.last_stats["received_power_w"] if v is not None]
                                            or [np.nan]))
                    bar.update(1)
                st = error_stats(np.concatenate(measured), np.concatenate(reference))
                row = {"state": state, "offset_db": offset, "received_dbm": _dbm(np.mean(power)),
                       "sigma": st.sigma, "bias": st.bias, "range": st.range, "bits_range": st.bits_range,
                       "enob": st.enob, "snr_db": st.snr_db,
                       "sigma_estimate": float(np.sqrt(np.mean(np.concatenate(estimate) ** 2)))}
                rows.append(row)
                if offset == max(offsets):
                    kept[state] = (np.concatenate(reference), np.concatenate(measured))
            opu.laser_power_offset_db = 0.0
        bar.close()
        nominal = self._nominal(bench, pairs[0], p, energy) if p.try_nominal else None
        repeat = self._repeatability(cal_opu, pairs[0], max(offsets), energy)
        for key in ("offset_db", "received_dbm", "sigma", "bias", "bits_range", "enob", "sigma_estimate"):
            for state in states:
                rec.write(f"{state}.{key}", np.array([r[key] for r in rows if r["state"] == state], dtype=float))
        for state, (ref, meas) in kept.items():
            rec.write(f"{state}.reference", ref)
            rec.write(f"{state}.measured", meas)
        rec.set_units(**{f"{s}.received_dbm": "dBm" for s in states})
        self._plot(ctx, rows, kept, states, p)
        best = {s: max((r for r in rows if r["state"] == s), key=lambda r: r["offset_db"]) for s in states}
        summary: dict[str, Any] = {
            "convention_range": "bits = log2(range / sigma), sigma = RMS error vs float64",
            "convention_enob": "bits = (SNR_dB - 1.76) / 6.02, SNR = var(exact) / sigma^2",
            "shape": f"({p.m} x {p.k}) @ ({p.k} x {p.n})",
        }
        for s, r in best.items():
            summary[f"{s}_bits_range"] = round(r["bits_range"], 3)
            summary[f"{s}_enob"] = round(r["enob"], 3)
            summary[f"{s}_sigma"] = round(r["sigma"], 5)
            summary[f"{s}_received_dbm"] = round(r["received_dbm"], 2)
        summary["calibrated_sigma_estimate"] = round(best["calibrated"]["sigma_estimate"], 5)
        summary.update(repeat)
        if nominal is not None:
            summary.update(nominal)
        baseline = energy.finish(bench, repeats=p.baseline_repeats)
        ctx.energy_per(energy.products, "product")
        summary["optical_products"] = energy.products
        if baseline is not None:
            summary["cpu_baseline"] = f"{baseline.label}: {baseline.method}"
        return summary

    @staticmethod
    def _allowed_offsets(opu: StreamingOPU, offsets: list[float]) -> list[float]:
        """The requested offsets that keep every laser inside its setting range and safety limit."""
        keep = []
        powers = opu.laser_powers_dbm()
        for off in sorted(set(offsets)):
            ok = all(laser_limits_dbm(opu, key)[0] - 1e-9 <= dbm + off <= laser_limits_dbm(opu, key)[1] + 1e-9
                     for key, dbm in powers.items())
            if ok:
                keep.append(float(off))
            else:
                warnings.warn(f"laser power offset {off:g} dB skipped: it takes a laser outside its range",
                              stacklevel=2)
        if not keep:
            raise ValueError("no power offset keeps the lasers within their range")
        return keep

    @staticmethod
    def _repeatability(opu: StreamingOPU, pair, offset: float, energy: ProductEnergy) -> dict[str, float]:
        """Random vs repeatable error: the same product measured twice."""
        a, b = pair
        opu.laser_power_offset_db = offset
        y1 = np.asarray(energy.matmul(opu, a, b)).ravel()
        y2 = np.asarray(energy.matmul(opu, a, b)).ravel()
        opu.laser_power_offset_db = 0.0
        ref = (a @ b).ravel()
        total = float(np.sqrt(np.mean(((y1 + y2) / 2 - ref) ** 2 + ((y1 - y2) / 2) ** 2)))
        random = float(np.std(y1 - y2) / math.sqrt(2))
        repeatable = float(np.sqrt(max(np.mean((y1 - ref) ** 2) - random**2, 0.0)))
        return {"calibrated_random_sigma": round(random, 5), "calibrated_repeatable_sigma": round(repeatable, 5),
                "calibrated_total_sigma_repeat": round(total, 5)}

    @staticmethod
    def _nominal(bench, pair, p: Parameters, energy: ProductEnergy) -> dict[str, Any]:
        a, b = pair
        opu = StreamingOPU(bench, samples_per_symbol_capture=p.samples_per_symbol_capture)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = energy.matmul(opu, a, b)
        except (OPUError, SymbolTimingError) as exc:
            return {"nominal_failed": f"{type(exc).__name__}: {str(exc)[:160]}"}
        st = error_stats(y, a @ b)
        return {"nominal_bits_range": round(st.bits_range, 3), "nominal_enob": round(st.enob, 3),
                "nominal_sigma": round(st.sigma, 5)}

    def _plot(self, ctx, rows, kept, states, p: Parameters) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        for i, state in enumerate(states):
            rs = sorted((r for r in rows if r["state"] == state), key=lambda r: r["received_dbm"])
            x = [r["received_dbm"] for r in rs]
            ax1.plot(x, [r["bits_range"] for r in rs], "o-", color=f"C{i}", label=f"{state}: log2(range/sigma)")
            ax1.plot(x, [r["enob"] for r in rs], "s--", color=f"C{i}", label=f"{state}: (SNR_dB-1.76)/6.02")
        ax1.axhline(6, color="k", lw=0.5, ls=":")
        ax1.set(xlabel="received power per channel at full transmission (dBm)", ylabel="effective bits",
                title=f"({p.m}x{p.k}) @ ({p.k}x{p.n}), random uniform [-1, 1]")
        ax1.legend(fontsize=7)
        for i, (state, (ref, meas)) in enumerate(kept.items()):
            ax2.plot(ref, meas, ".", ms=2, color=f"C{i}", alpha=0.6, label=state)
        lim = max(abs(np.concatenate([r for r, _ in kept.values()]))) * 1.1
        ax2.plot([-lim, lim], [-lim, lim], "k", lw=0.5)
        ax2.set(xlabel="exact (float64)", ylabel="optical", title="outputs at the highest power")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(ctx.artefact("mvm_precision.png"), dpi=110)
        plt.close(fig)


def _dbm(watts: float) -> float:
    return float(10 * np.log10(watts / 1e-3)) if watts and np.isfinite(watts) and watts > 0 else float("nan")
