"""Effective bits of calibrated optical products on a weight-stationary core vs received optical power,
symbol rate, fibre length and ADC resolution; random and real model-weight operands; calibrated vs not.

    labctl run precision_sweep --sim --out results/precision

takes about 2 minutes on 2 cores (9 core calibrations of ~10 s; everything else takes seconds). Pass
``--set calibration=cal/`` (the output folder of ``labctl run calibrate_core``) to reuse the calibration
of the bench's own operating point; it is drift-checked first and redone when it no longer fits.

**Precision conventions** (:mod:`labctl.opu.precision`; both reported everywhere):

* range convention: ``bits = log2(range / sigma)``, range = max - min of the exact (float64) outputs,
  sigma = RMS error of the optical outputs (mean error included);
* ENOB convention: ``bits = (SNR_dB - 1.76) / 6.02`` with SNR = var(exact) / sigma^2. Dot products of
  many terms have nearly Gaussian outputs (range ~ 6-7 std), so this reads ~3.2 bits below the range
  convention for the same error; heavy-tailed model outputs widen the gap.

**Operands** at every sweep point, each product with the OPU's default scaling:

* ``random``: ``trials`` pairs A (m x k) @ B (k x n), entries uniform in [-1, 1]; outputs pooled;
* ``model``: real weights of the bundled diffusion model (``experiments/genai``, ``model``, default
  ``ddpm-digits``): for each layer of ``model_layers`` in its UNet, B = the weight as (in, out) (Linear:
  W^T; Conv2d: W reshaped (out, in*kh*kw), transposed) and A = that layer's input recorded by a torch
  forward hook during one denoising pass (``model_batch`` N(0, 1) images at timestep ``model_timestep``;
  Conv2d inputs unfolded into im2col patch rows, so A @ B is the convolution without its bias),
  ``model_rows`` rows drawn at random. Bits are computed per layer and averaged over the layers
  (``model_activations="gaussian"`` replaces the recorded activations by N(0, 1) entries).

**Calibration states** at every point: ``calibrated`` (the full calibration of that operating point);
``partial`` (``partial_removes``, default: without the modulator-floor correction and the end-to-end
decoder: the ring/heater map with its thermal-crosstalk solve only) and ``uncalibrated``
(``uncalibrated_removes``, default: without the thermal-crosstalk compensation, the floor correction and
the decoder; bias, delay, dark level, ring Lorentzians and transfer tables are kept because without them
the core cannot map values at all). Without the crosstalk solve every ring sits detuned by its
neighbours' heat, so "uncalibrated" products are wrong by more than their range (negative bits). At the
bench's own operating point each correction is also removed alone (``ablation.*``, ``precision_ablation.png``).

**Sweeps** (a sweep value equal to the bench's own setting reuses the base point, no recalibration):

* ``power_offsets_db`` (default -6, -3, 0 dB): every input laser of the core at the bench's
  ``laser_power_dbm`` + offset. By default **not recalibrated**: the calibration's path gains are
  rescaled digitally by the commanded power ratio and every receiver setting (ADC range, dark level)
  is kept -- what a calibrated core does when its received power drops. ``power_recalibrate=true``
  recalibrates at each power instead (ADC range re-matched, decoder refitted). The x axis is the
  received power per channel at full transmission and full weight, **measured** at every point: every
  input at full transmission through every weight at full, read by the controller's ADCs (dark level
  subtracted), over the responsivity and transimpedance/load of the photodiodes the bench file wires to
  the controller's ADCs (:func:`experiments.common.stationary.received_power_dbm`). Offsets that take a laser outside its setting range or safety limit are skipped with a warning
  (the N7714A sets +6..+13.5 dBm: -7..+0.5 dB around the ring bench's +13 dBm).
* ``symbol_rates_hz`` (default: the bench's rate x 0.5, 1, 2, 4): the controller's symbol rate,
  **recalibrated at each rate** (ISI, sampling phase and noise bandwidth change with it).
* ``fibre_lengths_km`` (default: the bench's length x 0.2, 1, 1.5): length of the core's metro fibre
  (component ``fibre``, default ``metro_fibre<n>`` for core n). **Simulation only**: each point is a
  variant of the bench, ``labctl.open_bench(path, mode="sim", changes={"<fibre>.length_km": L, ...})``
  (the changes are recorded per point as ``fibre.changes``), recalibrated there. With ``dcf`` (default ``dcf<n>``)
  the dispersion-compensating fibre is rescaled so that the link's total dispersion stays what the bench
  file has (each link deployed with its matched DCF: the sweep shows loss and delay); with ``dcf=null``
  it is kept and the residual dispersion walks the WDM inputs apart by whole symbols, which one common
  input advance cannot align. Links beyond ~20 km exceed the calibration's delay window (100 us), and
  from ~20 km the weaker signal can defeat the calibration's bias step: reported as failed points. On a
  real bench this is a campaign with fibre spools: refused there.
* ``adc_bits`` (default 8, 10, 12): resolution of the controller's ADCs, sim params ``adc_bits`` = b and
  ``adc_enob`` = b - ``adc_enob_loss`` (bench variants, simulation only, recalibrated at each point). The bench's own converter (RFSoC class: 14 bit, ENOB 9.5) is the
  reference point (a star in the plot). The simulated converter's noise (quantisation included) is set
  by its ENOB, hence the ENOB axis (10 bit / ENOB 9.5 reads like the bench's 14 bit / ENOB 9.5). At 6-7
  bits the calibration's bias step, which reads its first ramps on the widest ADC range, may no longer
  see the modulators (reported as a failed point).

On a real bench the fibre and ADC sweeps are left out by default and refused when asked for.

**Energy**: every product on the run's bench is recorded in the run's energy ledger (its MACs over its
stretch of the bench clock; :class:`experiments.common.energy.ProductEnergy`), with the projection of the
bench's cores in integrated form and the CPU baseline of the same products (``baseline_repeats`` passes of
torch float32 matmuls on the same operands); the summary's energy line gives the energy per product of each
view and ``labctl energy report precision_sweep.h5`` the itemised views. Products on the simulated variants
of the fibre and ADC sweeps ran on other benches, which this run's meter does not cover: they are not counted.

Plots: ``precision_power.png``, ``precision_symbol_rate.png``, ``precision_fibre.png``,
``precision_adc.png`` (range convention left, ENOB right; random blue vs model weights orange;
calibrated solid, partial dotted, uncalibrated dashed) and ``precision_ablation.png``. Every figure is
also in ``precision_sweep.h5`` (``<sweep>.<state>.<operand>.bits_range|enob|nrmse``, the swept variable,
``<sweep>.received_dbm``, ``<sweep>.status``, ``<sweep>.changes`` of bench variants, per-layer bits).

**A bigger campaign** (each recalibrated point costs one calibration, ~10 s; 256^3 products take a
second or two per state)::

    labctl run calibrate_core --sim --out cal/
    labctl run precision_sweep --sim --out results/precision-big \
        --set calibration=cal/ --set m=256 --set k=256 --set n=256 --set trials=4 --set model_rows=256 \
        --set model_batch=16 --set 'power_offsets_db=[-7,-6,-5,-4,-3,-2,-1,0,0.5]' --set power_recalibrate=true \
        --set 'symbol_rates_hz=[1.25e8,2.5e8,5e8,7.5e8,1e9,1.5e9,2e9,2.5e9]' \
        --set 'fibre_lengths_km=[0,2,5,8,10,12,15,20]' --set 'adc_bits=[7,8,9,10,11,12,14]' \
        --set 'model_layers=["conv_in","down_blocks.0.resnets.0.conv1","down_blocks.1.attentions.0.to_q",
               "mid_block.resnets.0.conv1","up_blocks.0.resnets.0.conv1","conv_out"]'

(~35 calibrations: 6-8 minutes); repeat with other ``--seed`` values (the simulation's noise) and
``--set core=1`` / ``core=2`` for the spread over noise realisations and cores.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from experiments.common.energy import ProductEnergy
from experiments.common.operands import ModelOperandError, model_operands
from experiments.common.precision import STATES, Point, plot_ablation, plot_sweep, products
from experiments.common.stationary import CORRECTIONS, received_power_dbm, rescaled, without
from labctl.bench import open_bench
from labctl.config import simulated_value
from labctl.errors import LabctlError
from labctl.opu.stationary import (
    StationaryCalibration,
    StationaryConfig,
    StationaryOPU,
    architecture,
    calibrate,
    drift_check,
)
from labctl.runner import Experiment, ExperimentError, RunContext

DEFAULT_LAYERS = ["down_blocks.0.resnets.0.conv1", "mid_block.attentions.0.to_q", "mid_block.resnets.0.conv1"]
SWEEPS = ("power", "symbol_rate", "fibre", "adc")
DEFAULT_RATE_FACTORS = (0.5, 1.0, 2.0, 4.0)
DEFAULT_LENGTH_FACTORS = (0.2, 1.0, 1.5)
DEFAULT_ADC_BITS = (8, 10, 12)


class Parameters(BaseModel):
    core: int = Field(0, ge=0, description="core index (bench file opu.cores)")
    calibration: str | None = Field(None, description="calibration of the bench's own operating point: a file, or "
                                                      "a folder with <controller>.json (default: calibrate first)")
    m: int = Field(64, ge=2, description="rows of the random A")
    k: int = Field(64, ge=1, description="inner dimension of the random products")
    n: int = Field(64, ge=1, description="columns of the random B")
    trials: int = Field(1, ge=1, description="random product pairs per point (outputs pooled)")
    power_offsets_db: list[float] = Field(default_factory=lambda: [-6.0, -3.0, 0.0],
                                          description="laser power relative to the bench's laser_power_dbm (dB)")
    power_recalibrate: bool = Field(False, description="recalibrate at each power (default: rescale the gains)")
    symbol_rates_hz: list[float] | None = Field(None, description="controller symbol rates, recalibrated at each "
                                                "(default: the bench's rate x 0.5, 1, 2, 4)")
    fibre_lengths_km: list[float] | None = Field(None, description="metro fibre lengths, simulation only "
                                                 "(default: the bench's length x 0.2, 1, 1.5)")
    fibre: str = Field("metro_fibre{n}", description="fibre component swept ({n} = core number, 1-based)")
    dcf: str | None = Field("dcf{n}", description="dispersion-compensating fibre rescaled to keep the link's "
                                                  "dispersion (None: kept as it is)")
    adc_bits: list[int] | None = Field(None, description="controller ADC resolutions, simulation only "
                                       "(default: 8, 10, 12 bits)")
    adc_enob_loss: float = Field(0.5, ge=0.0, description="adc_enob = adc_bits - adc_enob_loss")
    model: str | None = Field("ddpm-digits", description="bundled model whose UNet weights are operands (None: off)")
    model_layers: list[str] = Field(default_factory=lambda: list(DEFAULT_LAYERS),
                                    description="Linear/Conv2d modules of the UNet")
    model_rows: int = Field(64, ge=2, description="rows of A per layer (drawn from the recorded activations)")
    model_batch: int = Field(4, ge=1, le=256, description="images in the recording forward pass")
    model_timestep: int = Field(500, ge=0, description="diffusion timestep of the recording pass")
    model_activations: Literal["forward", "gaussian"] = Field("forward", description="A: hooked inputs or N(0,1)")
    compare_uncalibrated: bool = True
    uncalibrated_removes: list[Literal["crosstalk", "floor", "decoder"]] = Field(
        default_factory=lambda: ["crosstalk", "floor", "decoder"],
        description="corrections removed from the calibration for the 'uncalibrated' state")
    partial_removes: list[Literal["crosstalk", "floor", "decoder"]] = Field(
        default_factory=lambda: ["floor", "decoder"],
        description="corrections removed for the 'partial' state ([]: no partial state)")
    ablation: bool = Field(True, description="at the base point, remove each correction alone too")
    seed: int = Field(11, description="seed of the operands")
    baseline_repeats: int = Field(5, ge=1, description="CPU passes over the run's products for the electronic "
                                                       "baseline (their energy / passes = one pass)")

    @field_validator("symbol_rates_hz")
    @classmethod
    def _rates(cls, value):
        if value is not None and any(not (r > 0 and math.isfinite(r)) for r in value):
            raise ValueError("symbol rates must be positive (Hz)")
        return value

    @field_validator("fibre_lengths_km")
    @classmethod
    def _lengths(cls, value):
        if value is not None and any(not (x >= 0 and math.isfinite(x)) for x in value):
            raise ValueError("fibre lengths must be >= 0 km")
        return value

    @field_validator("adc_bits")
    @classmethod
    def _bits(cls, value):
        if value is not None and any(not 4 <= b <= 16 for b in value):
            raise ValueError("ADC resolutions must be 4..16 bits")
        return value

    @model_validator(mode="after")
    def _enob(self):
        if self.adc_bits and min(self.adc_bits) - self.adc_enob_loss < 0:
            raise ValueError(f"adc_enob_loss={self.adc_enob_loss} leaves a negative ENOB at {min(self.adc_bits)} bits")
        return self


class PrecisionSweep(Experiment):
    """Effective bits of calibrated products on a weight-stationary core vs power, rate, fibre, ADC."""

    name = "precision_sweep"
    Parameters = Parameters

    def run(self, ctx: RunContext) -> dict[str, Any]:
        t_start = time.perf_counter()
        p: Parameters = ctx.params  # type: ignore[assignment]
        bench, rec = ctx.bench, ctx.recorder
        self._check(bench, p)        # refuse before anything is measured
        self._energy = ProductEnergy(ctx.energy)
        config = StationaryConfig.from_bench(bench)
        grid = self._grid(bench, p)
        controller = config.cores[p.core].controller
        rng = np.random.default_rng(p.seed)
        operands: dict[str, Any] = {"random": [(rng.uniform(-1, 1, (p.m, p.k)), rng.uniform(-1, 1, (p.k, p.n)))
                                               for _ in range(p.trials)]}
        summary: dict[str, Any] = {
            "convention_range": "bits = log2(range / sigma), sigma = RMS error vs float64",
            "convention_enob": "bits = (SNR_dB - 1.76) / 6.02, SNR = var(exact) / sigma^2",
            "core": controller,
            "random_operands": f"{p.trials} x ({p.m} x {p.k}) @ ({p.k} x {p.n}), uniform [-1, 1]",
        }
        if p.model:
            try:
                layers = model_operands(p.model, p.model_layers, rows=p.model_rows, batch=p.model_batch,
                                        timestep=p.model_timestep, activations=p.model_activations, seed=p.seed)
            except ModelOperandError as exc:
                warnings.warn(f"model operands unavailable, random operands only: {exc}", stacklevel=2)
                summary["model_operands"] = f"unavailable: {exc}"
            else:
                operands["model"] = layers
                shapes = [f"{name} ({a.shape[0]}x{a.shape[1]})@({b.shape[0]}x{b.shape[1]})"
                          for name, (a, b) in layers.items()]
                summary["model_operands"] = (f"{p.model} UNet, A = {p.model_activations} activations: "
                                             + ", ".join(shapes))
                for name, (a, b) in layers.items():
                    rec.write(f"model.{name}.a_shape", np.array(a.shape))
                    rec.write(f"model.{name}.b_shape", np.array(b.shape))

        bar = ctx.progress(total=2 + sum(len(v) for v in grid.values()) + (1 if grid["adc"] else 0),
                           desc="precision sweep")

        def step(message: str) -> None:
            bar.set_description(message)
            bar.update(1)

        # -- the bench's own operating point -----------------------------------------------------------
        if p.calibration:
            path = Path(p.calibration)
            if path.is_dir():
                path = path / f"{controller}.json"
            loaded = StationaryOPU(bench, path, core=p.core)
            report = drift_check(loaded)
            step(f"{controller}: calibration loaded from {path}")
            if report.recalibrate:
                warnings.warn(f"{path}: the drift check fails on this bench ({report}); recalibrating", stacklevel=2)
                summary["base_calibration_stale"] = f"{path}: {report}"
            else:
                base_cal = loaded.calibration
                summary["base_calibration"] = str(path)
        if not p.calibration or "base_calibration_stale" in summary:
            base_cal = calibrate(StationaryOPU(bench, core=p.core), ctx.artefact(f"{controller}.json")).opu.calibration
            step(f"{controller}: calibrated at the bench's operating point")
            summary["base_calibration"] = str(ctx.out_dir / f"{controller}.json")

        def on_bench(b, **overrides) -> Callable[[StationaryCalibration], StationaryOPU]:
            def make(cal: StationaryCalibration) -> StationaryOPU:
                opu = StationaryOPU(b, cal, core=p.core)
                for key, value in overrides.items():
                    setattr(opu.config, key, value)
                return opu
            return make

        base = Point(0.0, "bench", recalibrated=False)
        base.received_dbm = received_power_dbm(on_bench(bench)(base_cal))
        base.results = self._measure(on_bench(bench), base_cal, operands, p, ablation=p.ablation)
        step("base point measured")
        self._record_ablation(rec, base, operands)
        summary["base_received_dbm"] = round(base.received_dbm, 2)
        for state in base.results:
            for operand in base.results[state]:
                bits, enob = base.figure(state, operand, "bits_range"), base.figure(state, operand, "enob")
                summary[f"base_{state}_{operand}"] = f"{bits:.2f} bits log2(range/sigma), {enob:.2f} ENOB"

        sweeps: dict[str, list[Point]] = {}
        # -- received optical power ----------------------------------------------------------------------
        if grid["power"]:
            sweeps["power"] = self._power_sweep(bench, p, grid["power"], base, base_cal, operands, on_bench, step)
        # -- symbol rate -----------------------------------------------------------------------------------
        if grid["symbol_rate"]:
            points = []
            for rate in grid["symbol_rate"]:
                if math.isclose(rate, config.symbol_rate_hz, rel_tol=1e-9):
                    points.append(_reuse(base, rate, f"{rate / 1e9:g} GBd (bench)"))
                    step("symbol rate: base point")
                    continue
                pt = Point(rate, f"{rate / 1e9:g} GBd", recalibrated=True)
                opu = StationaryOPU(bench, core=p.core)
                opu.config.symbol_rate_hz = rate
                self._calibrate_and_measure(pt, opu, on_bench(bench, symbol_rate_hz=rate), operands, p, controller)
                points.append(pt)
                step(f"symbol rate {rate / 1e9:g} GBd")
            sweeps["symbol_rate"] = points
        # -- fibre length (simulation only) -----------------------------------------------------------------
        if grid["fibre"]:
            sweeps["fibre"] = self._fibre_sweep(ctx, p, grid["fibre"], base, operands, controller, step)
        # -- ADC resolution (simulation only) ---------------------------------------------------------------
        if grid["adc"]:
            sweeps["adc"] = self._adc_sweep(ctx, p, grid["adc"], base, operands, controller, step)
        if bench.mode != "sim" and (p.fibre_lengths_km is None or p.adc_bits is None):
            summary["skipped"] = "fibre-length and ADC sweeps: simulation only"
        bar.close()

        for sweep, points in sweeps.items():
            self._record(rec, sweep, points, operands)
            plot_sweep(ctx.artefact(f"precision_{sweep}.png"), sweep, points, p, controller)
            summary.update(self._summarise(sweep, points, operands))
        if p.ablation and len(base.results) > 1:
            plot_ablation(ctx.artefact("precision_ablation.png"), base)
        baseline = self._energy.finish(bench, repeats=p.baseline_repeats)
        ctx.energy_per(self._energy.products, "product")
        summary["optical_products"] = self._energy.products
        if baseline is not None:
            summary["cpu_baseline"] = f"{baseline.label}: {baseline.method}"
        summary["runtime_s"] = round(time.perf_counter() - t_start, 1)
        return summary

    # -- checks ------------------------------------------------------------------------------------------

    @staticmethod
    def _check(bench, p: Parameters) -> None:
        if architecture(bench) != "weight_stationary":
            raise ExperimentError("precision_sweep needs a weight-stationary bench (opu.architecture: "
                                  "weight_stationary, e.g. sim_backends/benches/ring_core.yaml); for the streaming "
                                  "OPU run `labctl run mvm_precision`")
        config = StationaryConfig.from_bench(bench)
        if p.core >= len(config.cores):
            raise ExperimentError(f"core={p.core}: this bench has {len(config.cores)} core(s) "
                                  f"(0..{len(config.cores) - 1})")
        simulated = getattr(bench, "mode", None) == "sim"
        refused = [name for name, values in (("fibre_lengths_km", p.fibre_lengths_km), ("adc_bits", p.adc_bits))
                   if values]   # None (the default) means: these sweeps where the bench is simulated
        if refused and not simulated:
            raise ExperimentError(
                f"the {' and '.join(refused)} sweep(s) change the bench itself (a variant of the bench opened in "
                "simulation): they run only on a simulated bench (--sim). On a real bench the fibre sweep is a "
                "campaign with fibre spools and the ADC sweep needs other converters; run the power and symbol-rate "
                "sweeps with --set fibre_lengths_km=[] --set adc_bits=[]")
        if simulated:
            components = bench.config.components
            if p.fibre_lengths_km:
                name = p.fibre.format(n=p.core + 1)
                if components.get(name, {}).get("type") != "fibre":
                    fibres = sorted(k for k, v in components.items() if v.get("type") == "fibre")
                    raise ExperimentError(f"fibre={p.fibre!r}: the bench has no fibre component {name!r}; its fibres: "
                                          f"{', '.join(fibres) or '(none)'}")
                if p.dcf:
                    dcf = p.dcf.format(n=p.core + 1)
                    spec = components.get(dcf, {})
                    if spec.get("type") != "fibre" or not spec.get("dispersion_ps_nm_km"):
                        raise ExperimentError(f"dcf={p.dcf!r}: the bench has no dispersive fibre component {dcf!r} "
                                              "(set dcf=null to keep the link's other fibres as they are)")

    @staticmethod
    def _grid(bench, p: Parameters) -> dict[str, list]:
        """The sweep values: as given, or the defaults relative to the bench (fibre and ADC: simulation only)."""
        config = StationaryConfig.from_bench(bench)
        simulated = getattr(bench, "mode", None) == "sim"
        rates = p.symbol_rates_hz
        if rates is None:
            rates = [f * config.symbol_rate_hz for f in DEFAULT_RATE_FACTORS]
        lengths = p.fibre_lengths_km
        if lengths is None:
            lengths = []
            spec = bench.config.components.get(p.fibre.format(n=p.core + 1), {})
            dcf = bench.config.components.get(p.dcf.format(n=p.core + 1), {}) if p.dcf else {"type": "fibre"}
            if simulated and spec.get("type") == "fibre" and dcf.get("type") == "fibre":
                own = float(spec["length_km"])
                lengths = [round(f * own, 6) for f in DEFAULT_LENGTH_FACTORS]
        adc = p.adc_bits
        if adc is None:
            adc = list(DEFAULT_ADC_BITS) if simulated else []
        return {"power": sorted(set(p.power_offsets_db)), "symbol_rate": sorted(set(rates)),
                "fibre": sorted(set(lengths)), "adc": sorted(set(adc))}

    # -- measuring ---------------------------------------------------------------------------------------

    def _measure(self, make: Callable[[StationaryCalibration], StationaryOPU], cal: StationaryCalibration,
                 operands: dict[str, Any], p: Parameters, ablation: bool = False) -> dict[str, dict[str, Any]]:
        """state -> operand -> figures, for the calibrated state and the requested reduced ones."""
        states: dict[str, StationaryCalibration] = {"calibrated": cal}
        if p.partial_removes:
            states["partial"] = without(cal, p.partial_removes)
        if p.compare_uncalibrated:
            states["uncalibrated"] = without(cal, p.uncalibrated_removes)
        if ablation:
            for corr in CORRECTIONS:
                states[f"no_{corr}"] = without(cal, (corr,))
        out = {}
        for state, c in states.items():
            opu = make(c)
            opu.prepare(force=True)
            out[state] = products(self._energy.metered(opu), operands)
        return out

    def _calibrate_and_measure(self, pt: Point, opu: StationaryOPU, make, operands, p: Parameters,
                               controller: str) -> StationaryCalibration | None:
        try:
            cal = calibrate(opu).opu.calibration
        except _POINT_ERRORS as exc:
            pt.status = f"failed: {type(exc).__name__}: {exc}"
            warnings.warn(f"{pt.label}: calibration failed, point skipped: {exc}", stacklevel=2)
            return None
        pt.received_dbm = received_power_dbm(make(cal))
        pt.results = self._measure(make, cal, operands, p)
        return cal

    def _power_sweep(self, bench, p: Parameters, offsets: list[float], base: Point, base_cal, operands, on_bench,
                     step) -> list[Point]:
        config = StationaryConfig.from_bench(bench)
        controller = config.cores[p.core].controller
        points = []
        for offset in offsets:
            dbm = config.laser_power_dbm + offset
            if offset == 0:
                pt = _reuse(base, 0.0, "0 dB (bench)")
                pt.extra["laser_dbm"] = dbm
                points.append(pt)
                step("power: base point")
                continue
            pt = Point(float(offset), f"{offset:+g} dB", recalibrated=p.power_recalibrate)
            pt.extra["laser_dbm"] = dbm
            opu = StationaryOPU(bench, core=p.core)
            opu.config.laser_power_dbm = dbm
            try:
                opu.lasers_on(True)     # refused outside the lasers' range or the bench's safety limit
            except (ValueError, LabctlError) as exc:
                warnings.warn(f"laser power offset {offset:+g} dB skipped: {exc}", stacklevel=2)
                pt.status = f"skipped: {exc}"
                points.append(pt)
                step(f"power {offset:+g} dB skipped")
                continue
            make = on_bench(bench, laser_power_dbm=dbm)
            if p.power_recalibrate:
                self._calibrate_and_measure(pt, opu, make, operands, p, controller)
            else:
                cal = rescaled(base_cal, 10 ** (offset / 10))
                pt.received_dbm = received_power_dbm(make(cal))   # the lasers at the offset, read at the ADCs
                pt.results = self._measure(make, cal, operands, p)
            points.append(pt)
            step(f"power {offset:+g} dB")
        return points

    def _variant_points(self, ctx: RunContext, p: Parameters, base: Point, operands, controller: str,
                        variants: list[tuple[float, str, dict[str, Any] | None, dict[str, float]]],
                        step) -> list[Point]:
        """Points on simulated variants of the bench: (x, label, changes or None = the bench itself, extra).
        Each variant is opened with ``open_bench(changes=...)`` and the run's seed (its snapshot records the
        changes) and recalibrated there."""
        points = []
        for x, label, changes, extra in variants:
            if changes is None:
                pt = _reuse(base, x, label)
                pt.extra.update(extra)
                points.append(pt)
                step(f"{label}: base point")
                continue
            pt = Point(x, label, recalibrated=True, extra=dict(extra))
            pt.changes = dict(changes)
            try:
                variant = open_bench(ctx.bench.path, mode="sim", seed=ctx.bench.seed,
                                     changes={**ctx.bench.changes, **changes})
            except _POINT_ERRORS as exc:
                pt.status = f"failed: {type(exc).__name__}: {exc}"
                warnings.warn(f"{label}: the bench variant does not open, point skipped: {exc}", stacklevel=2)
            else:
                with variant:
                    opu = StationaryOPU(variant, core=p.core)
                    make = (lambda b: (lambda cal: StationaryOPU(b, cal, core=p.core)))(variant)
                    self._calibrate_and_measure(pt, opu, make, operands, p, controller)
            points.append(pt)
            step(label)
        return points

    def _fibre_sweep(self, ctx: RunContext, p: Parameters, lengths: list[float], base: Point, operands,
                     controller: str, step):
        components = ctx.bench.config.components
        name = p.fibre.format(n=p.core + 1)
        spec = components[name]
        own = float(spec["length_km"])
        dcf_name = p.dcf.format(n=p.core + 1) if p.dcf else None
        variants = []
        for length in lengths:
            extra = {"length_km": length}
            if math.isclose(length, own, rel_tol=1e-9, abs_tol=1e-12):
                if dcf_name:
                    extra["dcf_km"] = float(components[dcf_name]["length_km"])
                variants.append((length, f"{length:g} km (bench)", None, extra))
                continue
            changes: dict[str, Any] = {f"{name}.length_km": float(length)}
            if dcf_name:
                dcf = components[dcf_name]
                # keep sum(D L): the DCF takes up the dispersion the length change adds
                added = (length - own) * float(spec.get("dispersion_ps_nm_km", 0.0))
                dcf_len = float(dcf["length_km"]) - added / float(dcf["dispersion_ps_nm_km"])
                if dcf_len < 0:
                    warnings.warn(f"{length:g} km: the matched DCF would be {dcf_len:.3g} km; set to 0", stacklevel=2)
                    dcf_len = 0.0
                changes[f"{dcf_name}.length_km"] = extra["dcf_km"] = round(dcf_len, 6)
            variants.append((length, f"{length:g} km", changes, extra))
        return self._variant_points(ctx, p, base, operands, controller, variants, step)

    def _adc_sweep(self, ctx: RunContext, p: Parameters, adc_bits: list[int], base: Point, operands,
                   controller: str, step):
        own_bits = int(simulated_value(ctx.bench.config, controller, "adc_bits"))
        own_enob = float(simulated_value(ctx.bench.config, controller, "adc_enob"))
        variants = [(own_enob, f"{own_bits} bit, ENOB {own_enob:g} (bench)", None,
                     {"adc_bits": own_bits, "adc_enob": own_enob, "reference": 1.0})]
        for bits in adc_bits:
            enob = round(bits - p.adc_enob_loss, 6)
            variants.append((enob, f"{bits} bit, ENOB {enob:g}",
                             {f"{controller}.adc_bits": int(bits), f"{controller}.adc_enob": float(enob)},
                             {"adc_bits": bits, "adc_enob": enob, "reference": 0.0}))
        return self._variant_points(ctx, p, base, operands, controller, variants, step)

    # -- recording, summary, plots --------------------------------------------------------------------------

    @staticmethod
    def _record_ablation(rec, base: Point, operands) -> None:
        states = list(base.results)
        rec.write("ablation.states", np.array(states, dtype="S"))
        for operand in operands:
            for key in ("bits_range", "enob", "nrmse"):
                rec.write(f"ablation.{operand}.{key}", np.array([base.figure(s, operand, key) for s in states]))

    @staticmethod
    def _record(rec, sweep: str, points: list[Point], operands) -> None:
        x_name, unit = _AXES[sweep]
        rec.write(f"{sweep}.{x_name}", np.array([pt.value for pt in points]))
        rec.write(f"{sweep}.received_dbm", np.array([pt.received_dbm for pt in points]))
        rec.write(f"{sweep}.recalibrated", np.array([pt.recalibrated for pt in points]))
        rec.write(f"{sweep}.status", np.array([pt.status[:200] for pt in points], dtype="S"))
        if any(pt.changes for pt in points):
            rec.write(f"{sweep}.changes", np.array([json.dumps(pt.changes) for pt in points], dtype="S"))
        units = {f"{sweep}.{x_name}": unit, f"{sweep}.received_dbm": "dBm (per channel, full transmission and weight)"}
        for key in sorted({k for pt in points for k in pt.extra}):
            rec.write(f"{sweep}.{key}", np.array([pt.extra.get(key, np.nan) for pt in points]))
        for state in STATES:
            if not any(state in pt.results for pt in points):
                continue
            for operand in operands:
                for key in ("bits_range", "enob", "nrmse"):
                    name = f"{sweep}.{state}.{operand}.{key}"
                    rec.write(name, np.array([pt.figure(state, operand, key) for pt in points]))
                    units[name] = "bit" if key != "nrmse" else "1 (sigma / range)"
                if operand == "model":
                    layers = list(operands["model"])
                    for key in ("bits_range", "enob"):
                        per = np.array([[pt.results.get(state, {}).get("model", {}).get("layers", {})
                                         .get(layer, {}).get(key, np.nan) for layer in layers] for pt in points])
                        rec.write(f"{sweep}.{state}.model.{key}_per_layer", per, layers=",".join(layers))
        rec.set_units(**units)

    @staticmethod
    def _summarise(sweep: str, points: list[Point], operands) -> dict[str, str]:
        out: dict[str, str] = {}
        out[f"{sweep}_points"] = ", ".join(pt.label for pt in points)
        if sweep in ("power", "fibre"):
            out[f"{sweep}_received_dbm"] = ", ".join(f"{pt.received_dbm:.1f}" for pt in points)
        for state in STATES:
            for operand in operands:
                if not any(state in pt.results for pt in points):
                    continue
                rng = " ".join(f"{pt.figure(state, operand, 'bits_range'):.2f}" for pt in points)
                enob = " ".join(f"{pt.figure(state, operand, 'enob'):.2f}" for pt in points)
                out[f"{sweep}_{state}_{operand}"] = f"log2(range/sigma) {rng} | ENOB {enob}"
        problems = [f"{pt.label}: {pt.status}" for pt in points if pt.status != "ok"]
        if problems:
            out[f"{sweep}_problems"] = "; ".join(s[:240] for s in problems)
        return out

#: what makes one sweep point fail (recorded in its status) rather than the whole run
_POINT_ERRORS = (LabctlError, ValueError, RuntimeError)   # RuntimeError includes NotImplementedError

_AXES = {"power": ("offset_db", "dB"), "symbol_rate": ("symbol_rate_hz", "Hz"), "fibre": ("length_km", "km"),
         "adc": ("adc_enob", "bit")}


def _reuse(base: Point, value: float, label: str) -> Point:
    return Point(value, label, recalibrated=False, status=base.status, received_dbm=base.received_dbm,
                 results=base.results)
