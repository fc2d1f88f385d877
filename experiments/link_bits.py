"""Effective bits of one weight-stationary core at one operating point of its link: the bench's fibres as
opened (a campaign's ``bench.edge_fibre1.length_km`` makes a simulated variant) and the input lasers at
``power_offset_db`` from the bench's ``laser_power_dbm``. One point of a campaign, so it is small:

    labctl run link_bits --sim --out results/link --set power_offset_db=-3
    labctl campaign run examples/campaign_fibre_power.yaml --out results/fibre_power

(default bench: ``sim_backends/benches/ring_core.yaml``, the three-core center reached over edge + metro
fibre.) The core is calibrated at the bench's laser power and the calibration is **rescaled** to the
offset power (its path gains by the commanded power ratio, every receiver setting kept), as a calibrated
core meets a drop of its received power (:func:`experiments.common.stationary.rescaled`). It then measures:

* ``received_dbm``: optical power per channel at the photodiodes, full transmission and weight, read at
  the controller's ADCs (:func:`experiments.common.stationary.received_power_dbm`);
* ``bits_range`` (``log2(range / sigma)``), ``enob`` (``(SNR_dB - 1.76) / 6.02``) and ``nrmse`` of
  ``trials`` random products (``m x k @ k x n``, uniform [-1, 1]) against float64
  (:mod:`labctl.opu.precision`);
* ``drift_ratio``: the drift check's reference-product error over the calibration's own, at the bench's
  power (above ``2``: the calibration does not fit this bench).

**Calibration reuse** (``calibration_cache``, a folder): a calibration takes ~7-10 s, the products well
under a second, so a campaign of several powers per fibre length calibrates once per bench variant. The
cache is keyed by the bench file's content, its changes, the core, ``calibration_seed`` and the
calibration code. On a simulated bench the calibration is measured on its own bench, opened with the
same file and changes and the seed ``calibration_seed``, so it is the same whether it was computed now
or by an earlier point in another process: a point's figures depend on its own seed only (its
``calibration`` result says which: ``computed`` or ``cached``; with Dask that can differ from a serial run). On a real
bench it is measured on the bench itself and drift-checked at every reuse (redone when the check fails).
Loading a cached calibration also checks its operating point against the bench (fibres, lasers,
controller): a mismatch is refused, never silently used.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from experiments.common.energy import ProductEnergy
from experiments.common.precision import products
from experiments.common.stationary import received_power_dbm, rescaled
from labctl.bench import SYSTEM_BENCH_PATH, open_bench
from labctl.errors import LabctlError
from labctl.opu.calibration_file import path_operating_point
from labctl.opu.stationary import StationaryConfig, StationaryOPU, architecture, calibrate, drift_check
from labctl.opu.stationary import calibration as calibration_steps
from labctl.runner import Experiment, ExperimentError, RunContext


class Parameters(BaseModel):
    core: int = Field(0, ge=0, description="core index (bench file opu.cores)")
    power_offset_db: float = Field(0.0, ge=-30.0, le=10.0, allow_inf_nan=False,
                                   description="input laser power relative to the bench's laser_power_dbm (dB)")
    m: int = Field(64, ge=2, le=1024, description="rows of the random A")
    k: int = Field(64, ge=1, le=1024, description="inner dimension of the random products")
    n: int = Field(64, ge=1, le=1024, description="columns of the random B")
    trials: int = Field(1, ge=1, le=64, description="random product pairs (outputs pooled)")
    seed: int = Field(11, description="seed of the operands")
    calibration_cache: str | None = Field(None, description="folder of calibrations reused across runs, "
                                          "relative to the output folder (None: calibrate every run)")
    calibration_seed: int = Field(0, ge=0, description="seed of the simulated bench the calibration is "
                                                      "measured on (simulation only)")
    drift_threshold: float = Field(2.0, gt=1.0, description="reference-error growth that fails the drift check")
    baseline_repeats: int = Field(3, ge=1, description="CPU passes over the products for the energy baseline")


class LinkBits(Experiment):
    """Effective bits and received power of one calibrated core over its link, at one laser power."""

    name = "link_bits"
    Parameters = Parameters
    default_bench = SYSTEM_BENCH_PATH

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        bench = ctx.bench
        if architecture(bench) != "weight_stationary":
            raise ExperimentError("link_bits needs a weight-stationary bench (opu.architecture: weight_stationary, "
                                  "e.g. sim_backends/benches/ring_core.yaml)")
        config = StationaryConfig.from_bench(bench)
        if p.core >= len(config.cores):
            raise ExperimentError(f"core={p.core}: this bench has {len(config.cores)} core(s) "
                                  f"(0..{len(config.cores) - 1})")
        controller = config.cores[p.core].controller
        laser_dbm = config.laser_power_dbm + p.power_offset_db
        probe = StationaryOPU(bench, core=p.core)
        probe.config.laser_power_dbm = laser_dbm
        try:
            probe.lasers_on(True)   # refused outside the lasers' range or the bench's safety limit
        except (ValueError, LabctlError) as exc:
            raise ExperimentError(f"power_offset_db={p.power_offset_db:g}: {laser_dbm:g} dBm is refused: {exc}") \
                from None
        finally:
            probe.lasers_on(False)
        started = time.perf_counter()
        path, source = self._calibration(ctx, p, controller)
        calibration_s = time.perf_counter() - started

        opu = StationaryOPU(bench, path, core=p.core, accept_stale=False)
        drift = drift_check(opu, p.drift_threshold)
        if bench.mode != "sim" and drift.recalibrate:   # a real bench moved since the cached calibration
            path, source = self._calibrate_into(ctx, p, bench, controller, path), "recalibrated after drift"
            opu = StationaryOPU(bench, path, core=p.core)
            drift = drift_check(opu, p.drift_threshold)
        opu = StationaryOPU(bench, rescaled(opu.calibration, 10 ** (p.power_offset_db / 10)), core=p.core)
        opu.config.laser_power_dbm = laser_dbm

        energy = ProductEnergy(ctx.energy)
        received = received_power_dbm(opu)
        rng = np.random.default_rng(p.seed)
        operands = {"random": [(rng.uniform(-1, 1, (p.m, p.k)), rng.uniform(-1, 1, (p.k, p.n)))
                               for _ in range(p.trials)]}
        opu.prepare(force=True)
        figures = products(energy.metered(opu), operands)["random"]
        energy.finish(bench, repeats=p.baseline_repeats)
        ctx.energy_per(energy.products, "product")

        rec = ctx.recorder
        for key, value in figures.items():
            rec.write(f"products.{key}", np.array(value))
        rec.write("received_dbm", np.array(received))
        rec.write("laser_dbm", np.array(laser_dbm))
        rec.set_units(**{"received_dbm": "dBm (per channel, full transmission and weight)", "laser_dbm": "dBm",
                         "products.bits_range": "bit", "products.enob": "bit"})
        return {"core": controller, "laser_dbm": round(laser_dbm, 3), "received_dbm": received,
                "bits_range": figures["bits_range"], "enob": figures["enob"], "nrmse": figures["nrmse"],
                "drift_ratio": drift.ratio, "calibration": source, "calibration_file": str(path),
                "calibration_s": round(calibration_s, 2), "bench_changes": json.dumps(bench.changes, sort_keys=True)}

    def _calibration(self, ctx: RunContext, p: Parameters, controller: str) -> tuple[Path, str]:
        """The calibration file to use and where it came from (``cached`` or ``computed``)."""
        bench = ctx.bench
        if p.calibration_cache is None:
            target = ctx.artefact(f"{controller}.json")
        else:
            folder = ctx.out_dir / p.calibration_cache   # relative: beside the results (a campaign's points/)
            target = folder / f"{controller}-{cache_key(bench, p)}.json"
            if target.exists():
                return target, "cached"
        if bench.mode == "sim":
            with open_bench(bench.path, mode="sim", seed=p.calibration_seed, changes=bench.changes) as own:
                return self._calibrate_into(ctx, p, own, controller, target), "computed"
        return self._calibrate_into(ctx, p, bench, controller, target), "computed"

    @staticmethod
    def _calibrate_into(ctx: RunContext, p: Parameters, bench, controller: str, target: Path) -> Path:
        """Calibrate the core on ``bench`` into ``target`` (written atomically: concurrent points may race)."""
        try:
            calibrate(StationaryOPU(bench, core=p.core), target, max_delay_s=delay_window_s(bench, p.core))
        except (LabctlError, ValueError, RuntimeError) as exc:
            raise ExperimentError(f"{controller}: calibration failed on this bench ({bench.changes or 'as written'})"
                                  f": {type(exc).__name__}: {exc}") from None
        return target


#: The calibration's delay search reaches this far beyond the core's fibre delay (and never below its default).
_DELAY_MARGIN = 1.25
_DEFAULT_MAX_DELAY_S = inspect.signature(calibrate).parameters["max_delay_s"].default
#: Group delay per km of fibre per unit of group index (s): 1 km over c.
_S_PER_KM = 1e3 / 299_792_458.0
#: Group index of G.652.D fibre (PHYSICS.md table 2), the simulated fibre's default when a file gives none.
G652_GROUP_INDEX = 1.4682


def delay_window_s(bench, core: int) -> float:
    """The edge -> center delay the calibration searches: the default, or longer when the fibres on the
    core's path (from its lasers and controller along the bench's connections) delay the light more."""
    config = StationaryConfig.from_bench(bench).cores[core]
    point = path_operating_point(bench, [*dict.fromkeys(ch.laser for ch in config.channels), config.controller])
    components = bench.config.components
    seconds = sum(float(spec["length_km"]) * float(spec.get("group_index", G652_GROUP_INDEX)) * _S_PER_KM
                  for name, spec in components.items()
                  if spec.get("type") == "fibre" and f"components.{name}.length_km" in point)
    return max(_DEFAULT_MAX_DELAY_S, _DELAY_MARGIN * seconds)


def cache_key(bench, p: Parameters) -> str:
    """What a cached calibration depends on: the bench file, its changes, the core, the calibration seed
    (simulation) and the calibration code."""
    text = json.dumps({"bench": Path(bench.path).read_text(encoding="utf-8"), "changes": bench.changes,
                       "mode": bench.mode, "core": p.core,
                       "seed": p.calibration_seed if bench.mode == "sim" else None,
                       "code": Path(inspect.getfile(calibration_steps)).read_text(encoding="utf-8")},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["LinkBits", "Parameters", "cache_key", "delay_window_s"]
