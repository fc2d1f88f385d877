"""Image quality of optically generated images against electronic ones (same seeds) vs effective bits and
received optical power, on one weight-stationary core.

    labctl run genai_quality --sim --out results/genai-quality

on the built-in system (``--bench FILE`` for another weight-stationary bench). The name needs the entry point
``genai_quality = "experiments.genai_quality:GenAIQuality"`` in pyproject.toml's ``labctl.experiments`` group;
``labctl run experiments.genai_quality:GenAIQuality ...`` works without it.

At every **operating point** (``power_offsets_db``, default 0, -6, -10, -14 dB relative to the bench file's
``opu.laser_power_dbm``) on core ``core`` (default 0, ``occ1``):

1. the core is calibrated at that point (default; the 0 dB point uses the calibration of the bench's own
   operating point) or, with ``recalibrate=false``, the 0 dB calibration is reused with its path gains
   rescaled by the power ratio (what ``experiments/precision_sweep.py`` does by default: ADC range, dark
   level, lookups and heater map kept -- what a calibrated core sees when its received power drops; one
   calibration instead of one per point, and ~0.3 bit less at the lower points);
2. its **effective bits** are measured on ``trials`` random ``product_size``-cubed products (default one
   64 x 64 x 64, uniform [-1, 1], seed ``operand_seed``) in both conventions of
   :mod:`labctl.opu.precision`: ``bits = log2(range / sigma)`` and ENOB ``(SNR_dB - 1.76) / 6.02``;
   and the **received optical power per channel** (at full transmission and full weight, measured at the
   controller's ADCs and divided by the photodiodes' responsivity and load:
   :func:`experiments.common.stationary.received_power_dbm`);
3. every model of ``models`` (default ``ddpm-digits``, ``latent-digits`` with the labels ``i % 10``,
   ``vae-digits``) makes images ``seed .. seed + n - 1`` (default 8 images, ``steps`` denoising steps)
   electronically and with its matrix products on the core
   (:func:`experiments.genai.generate.generate`), and the optical set is compared with the electronic set
   (:mod:`experiments.genai.quality`): mean PSNR and SSIM, classifier agreement (same label for the
   same seed), conditional accuracy (conditional models: the requested digit), Frechet distance of the
   classifier's features.

**How the power is lowered.** The input lasers (N7714A) accept +6 .. +13.5 dBm, i.e. down to -7 dB
around the ring bench's +13 dBm, and no bench has a variable optical attenuator: labctl has no
attenuator role, so no optical power reduction exists in a simulation-independent form. Therefore:

* an offset the lasers can reach (``laser_power_dbm + offset`` not below the lasers' own minimum, asked
  from the instruments, or ``laser_min_dbm``) is made by **the lasers**: it runs on real benches too;
* a lower offset sets the lasers to their minimum and puts the remaining loss into the bench as **extra
  insertion loss** of ``loss_component`` (default ``mux<n>``, the WDM multiplexer of core n, 1-based).
  **Simulation only**: a variant of the bench, ``labctl.open_bench(path, mode="sim",
  changes={"<component>.insertion_loss_db": ...})`` with the run's seed (the results record the change as
  ``points.changes`` and in the variant's snapshot). On a real bench such
  offsets are refused with an error before anything is measured (put a real attenuator in the link
  and use offsets within the lasers' range).

The multiplexer sits after the modulators, before the fibres, so extra loss there is equivalent to
weaker lasers for everything downstream (relative intensity noise scales with the power). The 0 dB point
is the bench's own operating point (its calibration: made here, or ``calibration=<file or folder>``
reused after a drift check, as in ``precision_sweep``).

**Outputs.** ``genai_quality.h5``: ``points.offset_db | laser_dbm | extra_loss_db | received_dbm |
bits_range | enob | nrmse | recalibrated | status``, per model ``<model>.psnr_db_mean | ssim_mean |
classifier_agreement | accuracy | frechet_distance | confidence | optical_wall_s | optical_macs`` (one value
per point; NaN where not measured or not defined, e.g. the accuracy of an unconditional model),
``<model>.electronic_accuracy | electronic_confidence``, and the images: ``<model>.electronic`` (n, 8, 8),
``<model>.optical`` (points, n, 8, 8), ``<model>.seeds``, ``<model>.requested_labels``. Artefacts:
``quality_vs_bits.png`` (bits vs received power; classifier agreement / conditional accuracy vs bits;
PSNR vs bits), ``quality_table.txt`` (the plain-text table, also the summary's ``table``) and the
calibration of the bench's own point (``<controller>.json``). The summary's
``rows`` hold one dict per (point, model).

**Run time.** The simulated core computes every symbol: optical generation costs ~0.05-0.3 s per matrix
product call (51 calls per ddpm-digits step, ~90 per latent-digits step with guidance), growing slowly
with the number of images; a calibration takes ~10 s. The run limits torch and BLAS to ``threads``
(default 1) threads: on 2 busy cores that is 2-3x faster than their defaults. The default run (4 points,
4 calibrations, 3 models x 8 images x 10 steps) takes about 3.5 minutes on 2 shared cores (~45 s per
point). **A bigger run** -- more seeds (``n``) and more points::

    labctl run genai_quality --sim --out results/genai-quality-big \
        --set n=64 --set 'power_offsets_db=[0,-3,-6,-8,-10,-12,-14,-16]'

(~3.5 minutes per point with 64 images: ~30 minutes); add ``--set seed=64`` for the next 64 seeds,
``--seed`` for another noise realisation of the simulation, ``--set recalibrate=false`` to compare with the
rescaled calibration, ``--set steps=50`` for the diffusion models' full quality (5x the time).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, field_validator

from experiments.common.models import load_models
from experiments.common.stationary import received_power_dbm, rescaled
from experiments.genai.quality import format_table
from labctl.bench import open_bench
from labctl.errors import LabctlError
from labctl.opu.precision import error_stats
from labctl.opu.stationary import (
    StationaryCalibration,
    StationaryConfig,
    StationaryOPU,
    architecture,
    calibrate,
    drift_check,
)
from labctl.runner import Experiment, ExperimentError, RunContext

DEFAULT_MODELS = ("ddpm-digits", "latent-digits", "vae-digits")
#: per-model figures recorded at every point (keys of generate()'s quality metrics, plus the optical set's)
FIGURES = ("psnr_db_mean", "ssim_mean", "classifier_agreement", "accuracy", "frechet_distance", "confidence",
           "optical_wall_s", "optical_macs", "j_per_image_optical_bench", "j_per_image_optical_projected",
           "j_per_image_electronic")
#: what makes one point (or one model at a point) fail rather than the whole run
_POINT_ERRORS = (LabctlError, ValueError, RuntimeError, np.linalg.LinAlgError)
#: columns of the printed table and their headers
TABLE_COLUMNS = {"offset_db": "offset dB", "laser_dbm": "laser dBm", "extra_loss_db": "extra loss dB",
                 "received_dbm": "received dBm", "bits_range": "bits log2(R/s)", "enob": "ENOB", "model": "model",
                 "psnr_db_mean": "PSNR dB", "ssim_mean": "SSIM", "classifier_agreement": "agreement",
                 "accuracy": "accuracy", "frechet_distance": "Frechet"}


class Parameters(BaseModel):
    core: int = Field(0, ge=0, description="core index (bench file opu.cores)")
    power_offsets_db: list[float] = Field(default_factory=lambda: [0.0, -6.0, -10.0, -14.0],
                                          description="input power relative to the bench's laser_power_dbm (dB)")
    recalibrate: bool = Field(True, description="calibrate at every point (false: rescale the 0 dB "
                                                "calibration's path gains by the power ratio)")
    calibration: str | None = Field(None, description="calibration of the bench's own point (a file, or a folder "
                                                      "with <controller>.json); default: calibrate first")
    loss_component: str = Field("mux{n}", description="component whose insertion loss takes the power reduction "
                                                      "the lasers cannot make (simulation only; {n} = core, 1-based)")
    laser_min_dbm: float | None = Field(None, description="lowest laser setting used (default: asked from the lasers)")
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS), min_length=1,
                              description="bundled models (experiments.genai.models.MODEL_NAMES)")
    n: int = Field(8, ge=2, le=4096, description="images per model and point (seeds seed .. seed+n-1)")
    steps: int = Field(10, ge=1, le=1000, description="denoising steps of the diffusion models")
    seed: int = Field(0, ge=0, description="seed of the first image")
    guidance: float | None = Field(None, description="guidance scale of conditional models (default: theirs)")
    product_size: int = Field(64, ge=2, le=1024, description="M = K = N of the random products for the bits")
    trials: int = Field(1, ge=1, le=64, description="random products per point (outputs pooled)")
    operand_seed: int = Field(11, description="seed of the random products' operands")
    save_images: bool = Field(True, description="record the electronic and optical images")
    threads: int | None = Field(1, ge=1, le=256, description="torch and BLAS threads during the run (None: "
                                "leave them); 1 is fastest: the simulated core's many small numpy "
                                "operations only lose from threads on a busy 2-core machine")

    @field_validator("power_offsets_db")
    @classmethod
    def _offsets(cls, value):
        if not value:
            raise ValueError("give at least one power offset")
        if any(not math.isfinite(v) or not -40.0 <= v <= 10.0 for v in value):
            raise ValueError("power offsets must be finite, -40 .. +10 dB")
        if len({round(v, 9) for v in value}) != len(value):
            raise ValueError("power offsets must be distinct")
        return [float(v) for v in value]

    @field_validator("models")
    @classmethod
    def _models(cls, value):
        if len(set(value)) != len(value):
            raise ValueError(f"each model at most once, got {value}")
        return value


@dataclass
class Plan:
    """How one operating point is made: laser setting and extra loss (>0: a bench variant, sim only)."""

    offset_db: float
    laser_dbm: float
    extra_loss_db: float

    @property
    def label(self) -> str:
        return f"{self.offset_db:+g} dB" if self.offset_db else "0 dB (bench)"

    @property
    def on_bench_variant(self) -> bool:
        return self.extra_loss_db > 1e-9


@dataclass
class PointResult:
    plan: Plan
    recalibrated: bool = False
    status: str = "ok"
    received_dbm: float = float("nan")
    bits_range: float = float("nan")
    enob: float = float("nan")
    nrmse: float = float("nan")
    changes: dict[str, Any] = field(default_factory=dict)   # the bench variant this point ran on
    seconds: float = 0.0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)   # model -> figures (+ "status")


def plan_points(offsets: list[float], base_dbm: float, laser_min_dbm: float | None) -> list[Plan]:
    """Laser setting and extra loss of every offset (highest power first): the lasers make what they can
    (down to ``laser_min_dbm``); the rest is extra loss. ``laser_min_dbm=None``: the lasers make everything."""
    plans = []
    for offset in sorted(offsets, reverse=True):
        target = base_dbm + offset
        if laser_min_dbm is None or target >= laser_min_dbm - 1e-9:
            plans.append(Plan(offset, target, 0.0))
        else:
            plans.append(Plan(offset, float(laser_min_dbm), round(float(laser_min_dbm) - target, 9)))
    return plans


def laser_floor_dbm(opu: StationaryOPU) -> float | None:
    """The highest of the core's lasers' lowest power settings (dBm), asked from the lasers' roles
    (``power_range``, W); None if they cannot say."""
    floors = []
    for laser in opu.lasers:
        try:
            low = float(laser.power_range[0])
        except (AttributeError, LabctlError, ValueError, OSError):
            return None
        if not low > 0:
            return None
        floors.append(10 * math.log10(low / 1e-3))
    return max(floors) if floors else None


class GenAIQuality(Experiment):
    """Optical vs electronic image quality (same seeds) of the bundled generators vs bits and received power."""

    name = "genai_quality"
    Parameters = Parameters

    def run(self, ctx: RunContext) -> dict[str, Any]:
        t_start = time.perf_counter()
        p: Parameters = ctx.params  # type: ignore[assignment]
        with _threads(p.threads):
            return self._run(ctx, ctx.bench, p, {}, t_start)

    # -- set-up and checks ---------------------------------------------------------------------------------

    @staticmethod
    def _loss_component(bench, p: Parameters) -> str:
        name = p.loss_component.format(n=p.core + 1)
        components = bench.config.components
        spec = components.get(name)
        if not isinstance(spec, dict) or "insertion_loss_db" not in spec:
            have = sorted(k for k, v in components.items()
                          if isinstance(v, dict) and "insertion_loss_db" in v and v.get("type") != "mzm")
            raise ExperimentError(f"loss_component={p.loss_component!r}: the bench has no component {name!r} with an "
                                  f"insertion_loss_db; candidates: {', '.join(have) or '(none)'}")
        return name

    def _plan(self, bench, p: Parameters) -> tuple[list[Plan], str | None]:
        """Check everything that can be checked before measuring; the plan of the points."""
        if architecture(bench) != "weight_stationary":
            raise ExperimentError("genai_quality needs a weight-stationary bench (opu.architecture: weight_stationary)")
        config = StationaryConfig.from_bench(bench)
        if p.core >= len(config.cores):
            raise ExperimentError(f"core={p.core}: this bench has {len(config.cores)} core(s) "
                                  f"(0..{len(config.cores) - 1})")
        floor = p.laser_min_dbm
        needs_floor = any(o < 0 for o in p.power_offsets_db)
        if floor is None and needs_floor:
            floor = laser_floor_dbm(StationaryOPU(bench, core=p.core))
            if floor is None:
                raise ExperimentError("the core's lasers do not say their lowest power setting: give "
                                      "--set laser_min_dbm=<dBm>")
        plans = plan_points(p.power_offsets_db, config.laser_power_dbm, floor)
        lossy = [pl for pl in plans if pl.on_bench_variant]
        component = None
        if lossy:
            if getattr(bench, "mode", None) != "sim":
                raise ExperimentError(
                    f"offsets {', '.join(f'{pl.offset_db:+g}' for pl in lossy)} dB are below what the lasers can "
                    f"set (+{floor:g} dBm = {floor - config.laser_power_dbm:+g} dB around the bench's "
                    f"{config.laser_power_dbm:g} dBm) and this bench has no optical attenuator: they are made by "
                    "extra loss in a variant of the bench, which runs only on a simulated bench (--sim). On this "
                    "bench use offsets down to "
                    f"{floor - config.laser_power_dbm:+g} dB, or put an attenuator in the link")
            component = self._loss_component(bench, p)
        return plans, component

    # -- the run ---------------------------------------------------------------------------------------------

    def _run(self, ctx: RunContext, bench, p: Parameters, summary: dict[str, Any], t_start: float) -> dict[str, Any]:
        plans, component = self._plan(bench, p)       # refuse before anything is measured
        gens = load_models(p.models)
        config = StationaryConfig.from_bench(bench)
        controller = config.cores[p.core].controller
        rng = np.random.default_rng(p.operand_seed)
        s = p.product_size
        operands = [(rng.uniform(-1, 1, (s, s)), rng.uniform(-1, 1, (s, s))) for _ in range(p.trials)]
        summary.update({
            "core": controller,
            "convention_range": "bits = log2(range / sigma), sigma = RMS error vs float64",
            "convention_enob": "bits = (SNR_dB - 1.76) / 6.02, SNR = var(exact) / sigma^2",
            "random_operands": f"{p.trials} x ({s} x {s}) @ ({s} x {s}), uniform [-1, 1]",
            "images": f"{p.n} per model (seeds {p.seed}..{p.seed + p.n - 1}), {p.steps} steps; conditional models: "
                      "labels i % 10",
            "calibration_mode": "recalibrated at every point" if p.recalibrate else
                                "calibration of the 0 dB point, path gains rescaled by the power ratio",
        })
        if component:
            summary["extra_loss_in"] = f"{component} (bench variants, simulation only)"
        bar = ctx.progress(total=len(plans) * (1 + len(gens)) + 1, desc="genai quality")

        def step(message: str) -> None:
            bar.set_description(message)
            bar.update(1)

        base_cal = None
        if not p.recalibrate or any(pl.offset_db == 0 for pl in plans):
            base_cal = self._base_calibration(ctx, bench, p, controller, summary)
        step(f"{controller}: calibration of the bench's own point")

        results: list[PointResult] = []
        reference: dict[str, dict[str, Any]] = {}
        for plan in plans:
            results.append(self._point(ctx, bench, p, plan, component, base_cal, operands, gens, controller,
                                       reference, step))
        bar.close()

        rows = self._rows(results, p)
        table = format_rows(rows)
        ctx.artefact("quality_table.txt").write_text(table + "\n")
        self._record(ctx.recorder, results, p, reference)
        self._plot(ctx, results, p, controller)
        summary["table"] = "\n" + table
        for name, ref in reference.items():
            acc = ref.get("accuracy")
            summary[f"electronic_{name}"] = (f"confidence {ref['confidence']:.3f}"
                                             + (f", accuracy {acc:.3f}" if acc is not None else "")
                                             + ("" if ref.get("identical", True) else
                                                ", WARNING: electronic images differ between points"))
        problems = [f"{r.plan.label}: {r.status}" for r in results if r.status != "ok"]
        problems += [f"{r.plan.label} {m}: {f['status']}" for r in results for m, f in r.models.items()
                     if f.get("status", "ok") != "ok"]
        if problems:
            summary["problems"] = "; ".join(x[:240] for x in problems)
        summary["runtime_s"] = round(time.perf_counter() - t_start, 1)
        summary["rows"] = rows
        return summary

    def _base_calibration(self, ctx: RunContext, bench, p: Parameters, controller: str,
                          summary: dict[str, Any]) -> StationaryCalibration:
        if p.calibration:
            path = Path(p.calibration)
            if path.is_dir():
                path = path / f"{controller}.json"
            try:
                loaded = StationaryOPU(bench, path, core=p.core)
            except LabctlError as exc:
                raise ExperimentError(f"calibration={p.calibration!r}: {exc}") from None
            report = drift_check(loaded)
            if not report.recalibrate:
                summary["base_calibration"] = str(path)
                return loaded.calibration
            warnings.warn(f"{path}: the drift check fails on this bench ({report}); recalibrating", stacklevel=2)
            summary["base_calibration_stale"] = f"{path}: {report}"
        out = ctx.artefact(f"{controller}.json")
        cal = calibrate(StationaryOPU(bench, core=p.core), out).opu.calibration
        summary["base_calibration"] = str(out)
        return cal

    def _point(self, ctx: RunContext, bench, p: Parameters, plan: Plan, component: str | None,
               base_cal: StationaryCalibration | None, operands, gens: dict[str, Any], controller: str,
               reference: dict[str, dict[str, Any]], step) -> PointResult:
        t0 = time.perf_counter()
        res = PointResult(plan)
        where = bench
        variant = None
        try:
            if plan.on_bench_variant:
                loss = bench.config.components[component]["insertion_loss_db"]
                res.changes = {f"{component}.insertion_loss_db": round(float(loss) + plan.extra_loss_db, 9)}
                variant = where = open_bench(bench.path, mode="sim", seed=bench.seed,
                                             changes={**bench.changes, **res.changes})
            opu = StationaryOPU(where, core=p.core)
            opu.config.laser_power_dbm = plan.laser_dbm
            if plan.offset_db == 0 and base_cal is not None and not plan.on_bench_variant:
                opu.load_calibration(base_cal)     # the bench's own point: its own calibration
                res.recalibrated = True
            elif p.recalibrate:
                opu.lasers_on(True)     # refused outside the lasers' range or the bench's safety limit
                calibrate(opu)
                res.recalibrated = True
            else:
                opu.lasers_on(True)
                opu.load_calibration(rescaled(base_cal, 10 ** (plan.offset_db / 10)))
            res.received_dbm = received_power_dbm(opu)
            measured = np.concatenate([np.asarray(opu.matmul(a, b)).ravel() for a, b in operands])
            exact = np.concatenate([(a @ b).ravel() for a, b in operands])
            st = error_stats(measured, exact)
            res.bits_range, res.enob, res.nrmse = st.bits_range, st.enob, st.nrmse
            step(f"{plan.label}: {res.bits_range:.2f} bits")
            for name, gen in gens.items():
                res.models[name] = self._generate(gen, p, where, opu, reference)
                step(f"{plan.label}: {name}")
        except _POINT_ERRORS as exc:
            res.status = f"failed: {type(exc).__name__}: {exc}"
            warnings.warn(f"{plan.label}: point failed: {exc}", stacklevel=2)
            done = len(res.models) + (0 if math.isnan(res.bits_range) else 1)
            for _ in range(1 + len(gens) - done):
                step(f"{plan.label}: failed")
        finally:
            if variant is not None:
                variant.close()
        res.seconds = time.perf_counter() - t0
        return res

    @staticmethod
    def _generate(gen, p: Parameters, bench, opu: StationaryOPU,
                  reference: dict[str, dict[str, Any]]) -> dict[str, Any]:
        from experiments.genai.generate import generate  # imports torch (optional): only when generating

        label = [i % 10 for i in range(p.n)] if gen.conditional else None
        guidance = p.guidance if gen.conditional else None
        try:
            r = generate(gen, n=p.n, steps=p.steps, seed=p.seed, label=label, guidance=guidance, opu=opu,
                         bench=bench, progress=False)
        except _POINT_ERRORS as exc:
            warnings.warn(f"{gen.name}: generation failed: {exc}", stacklevel=2)
            return {"status": f"failed: {type(exc).__name__}: {exc}"}
        q, o, e = r.metrics["quality"] or {}, r.metrics["optical"] or {}, r.metrics["electronic"]
        out = {key: _num(q.get(key)) for key in ("psnr_db_mean", "ssim_mean", "classifier_agreement",
                                                 "frechet_distance")}
        out["accuracy"] = _num(o.get("accuracy"))
        out["confidence"] = _num(o.get("mean_confidence"))
        out["optical_wall_s"] = _num(o.get("wall_s"))
        out["optical_macs"] = _num(o.get("optical_macs"))
        for key, joules in r.metrics["energy"]["j_per_image"].items():  # the bench metered inside the run's
            out[f"j_per_image_{key}"] = _num(joules)                     # own meter (meters nest)
        out["optical"] = np.asarray(r.optical, dtype=np.float32)
        out["status"] = "ok"
        ref = reference.get(gen.name)
        electronic = np.asarray(r.electronic, dtype=np.float32)
        if ref is None:
            reference[gen.name] = {"images": electronic, "seeds": np.asarray(r.seeds),
                                   "requested": np.asarray(r.requested_labels),
                                   "confidence": float(e.get("mean_confidence") or float("nan")),
                                   "accuracy": e.get("accuracy"), "identical": True}
        elif not np.array_equal(ref["images"], electronic):
            ref["identical"] = False
        return out

    # -- outputs -------------------------------------------------------------------------------------------

    @staticmethod
    def _rows(results: list[PointResult], p: Parameters) -> list[dict[str, Any]]:
        rows = []
        for r in results:
            point = {"offset_db": r.plan.offset_db, "laser_dbm": r.plan.laser_dbm,
                     "extra_loss_db": r.plan.extra_loss_db, "received_dbm": _round(r.received_dbm), "bits_range": _round(r.bits_range),
                     "enob": _round(r.enob), "recalibrated": r.recalibrated, "status": r.status}
            for name in p.models:
                f = r.models.get(name, {})
                row = {**point, "model": name}
                for key in FIGURES:
                    value = f.get(key)
                    row[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) \
                        else _round(value)
                if f.get("status", "ok") != "ok":
                    row["status"] = f["status"]
                rows.append(row)
        return rows

    @staticmethod
    def _record(rec, results: list[PointResult], p: Parameters, reference: dict[str, dict[str, Any]]) -> None:
        rec.write("points.offset_db", np.array([r.plan.offset_db for r in results]))
        rec.write("points.laser_dbm", np.array([r.plan.laser_dbm for r in results]))
        rec.write("points.extra_loss_db", np.array([r.plan.extra_loss_db for r in results]))
        rec.write("points.received_dbm", np.array([r.received_dbm for r in results]))
        rec.write("points.bits_range", np.array([r.bits_range for r in results]))
        rec.write("points.enob", np.array([r.enob for r in results]))
        rec.write("points.nrmse", np.array([r.nrmse for r in results]))
        rec.write("points.recalibrated", np.array([r.recalibrated for r in results]))
        rec.write("points.seconds", np.array([r.seconds for r in results]))
        rec.write("points.status", _text([r.status for r in results]))
        rec.write("points.changes", _text([json.dumps(r.changes) if r.changes else "" for r in results]))
        units = {"points.offset_db": "dB", "points.laser_dbm": "dBm", "points.extra_loss_db": "dB",
                 "points.received_dbm": "dBm (per channel, full transmission and weight)",
                 "points.bits_range": "bit (log2(range/sigma))", "points.enob": "bit ((SNR_dB - 1.76)/6.02)",
                 "points.nrmse": "1 (sigma / range)", "points.seconds": "s"}
        for name in p.models:
            for key in FIGURES:
                rec.write(f"{name}.{key}", np.array([_num(r.models.get(name, {}).get(key)) for r in results]))
            rec.write(f"{name}.status", _text([r.models.get(name, {}).get("status", r.status) for r in results]))
            units.update({f"{name}.psnr_db_mean": "dB", f"{name}.optical_wall_s": "s",
                          f"{name}.classifier_agreement": "fraction of seeds", f"{name}.accuracy": "fraction"})
            ref = reference.get(name)
            if ref is None:
                continue
            rec.write(f"{name}.electronic_confidence", ref["confidence"])
            rec.write(f"{name}.electronic_accuracy", _num(ref["accuracy"]))
            rec.write(f"{name}.seeds", ref["seeds"])
            rec.write(f"{name}.requested_labels", ref["requested"])
            if p.save_images:
                rec.write(f"{name}.electronic", ref["images"])
                blank = np.full_like(ref["images"], np.nan)
                rec.write(f"{name}.optical", np.stack([r.models.get(name, {}).get("optical", blank)
                                                       for r in results]))
        rec.set_units(**units)

    @staticmethod
    def _plot(ctx: RunContext, results: list[PointResult], p: Parameters, controller: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ok = [r for r in results if math.isfinite(r.bits_range)]
        fig, axes = plt.subplots(1, 3, figsize=(16, 5))
        ax = axes[0]
        x = [r.received_dbm for r in ok]
        ax.plot(x, [r.bits_range for r in ok], "o-", color="C0", label="log2(range / σ)")
        ax.plot(x, [r.enob for r in ok], "s--", color="C0", mfc="white", label="ENOB (SNR_dB - 1.76) / 6.02")
        for r in ok:
            tag = f"{r.plan.offset_db:+g} dB" + (f"\n(+{r.plan.extra_loss_db:g} dB loss)" if r.plan.on_bench_variant
                                                 else "")
            ax.annotate(tag, (r.received_dbm, r.bits_range), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set(xlabel="received power per channel, full transmission and weight (dBm)", ylabel="effective bits",
               title=f"{controller}: random {p.product_size}³ products")
        ax.legend(fontsize=7)
        for j, name in enumerate(p.models):
            pts = [(r.bits_range, r.models.get(name, {})) for r in ok]
            bits = np.array([b for b, _ in pts])
            agree = np.array([_num(f.get("classifier_agreement")) for _, f in pts])
            acc = np.array([_num(f.get("accuracy")) for _, f in pts])
            psnr = np.array([_num(f.get("psnr_db_mean")) for _, f in pts])
            order = np.argsort(bits)
            if np.any(np.isfinite(agree)):
                axes[1].plot(bits[order], agree[order], "o-", color=f"C{j}", label=f"{name}: agreement")
            if np.any(np.isfinite(acc)):
                axes[1].plot(bits[order], acc[order], "^:", color=f"C{j}", mfc="white",
                             label=f"{name}: requested digit (accuracy)")
            if np.any(np.isfinite(psnr)):
                axes[2].plot(bits[order], psnr[order], "o-", color=f"C{j}", label=name)
        axes[1].set(xlabel="effective bits, log2(range / σ)", ylabel="fraction of seeds", ylim=(-0.05, 1.05),
                    title="classifier: optical label = electronic label (same seed)")
        axes[2].set(xlabel="effective bits, log2(range / σ)", ylabel="mean PSNR, optical vs electronic (dB)",
                    title="PSNR of the optical images")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.title.set_fontsize(9)
        for ax in axes[1:]:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        how = "recalibrated at every point" if p.recalibrate else "0 dB calibration, gains rescaled"
        fig.suptitle(f"optical vs electronic generation, same seeds ({p.n} images per model, {p.steps} steps; {how})",
                     fontsize=10)
        fig.tight_layout()
        fig.savefig(ctx.artefact("quality_vs_bits.png"), dpi=100)
        plt.close(fig)


@contextlib.contextmanager
def _threads(n: int | None):
    """torch and BLAS (threadpoolctl) limited to ``n`` threads inside the block; restored after."""
    if n is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(n))
        try:
            import torch
        except ImportError:
            torch = None
        previous = torch.get_num_threads() if torch is not None else None
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned plain-text table (experiments.genai.quality.format_table)."""
    return format_table(rows, list(TABLE_COLUMNS), TABLE_COLUMNS)


def _text(values: list[str]) -> np.ndarray:
    """Strings as a fixed-width bytes dataset (UTF-8, at most 200 bytes each)."""
    return np.array([v.encode("utf-8")[:200] for v in values], dtype="S")


def _num(value: Any) -> float:
    if value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _round(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (NaN and inf unchanged)."""
    value = float(value)
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))
