"""Energy efficiency: the paper's 118.6 mW/TOPS reconstructed term by term, labctl's ring_core projected,
products on the optical computing center metered, and this machine's CPU measured on the same products.

    labctl run energy_efficiency --sim --out results/energy/energy.h5
    labctl energy report results/energy/energy.h5

Without ``--bench`` a simulated run opens the optical computing center (``ring_core.yaml``); it calibrates
its cores first (about 10 s each; ``--set calibration=cal/`` keeps and reuses the calibrations).

What it computes (all in :mod:`labctl.energy.projected` and :mod:`labctl.energy.baseline`):

* the **paper configuration** (Nature Communications 16:6097 (2025)): the projected integrated
  optoelectronics (laser, modulators, ring heaters, PD/TIA, DACs, ADCs, EDFA), each term with its
  equation, parameters and sources; which numbers are published and which assumed; a one-at-a-time
  sensitivity table over core size, symbol rate, converter energy, laser efficiency and heater power;
* the **ring_core projection**: the same accounting for ``sim_backends/benches/ring_core.yaml`` (its
  cores, symbol rate, laser power, OCC-16 converters, ring heater hold from the ring model) and what
  would have to change to reach the paper's figure;
* a **workload on the bench's optical cores**: ``products`` random products (``rows`` x N) @ (N x M) per
  core (N inputs, M outputs: the core's shape), each recorded in the run's energy ledger on the bench
  clock, so the ledger's **bench view** is what the instruments drew (power analyzers, readbacks, table
  figures) while the run calibrated the cores and computed; its **projected view** is the bench's own
  cores in integrated form (:func:`labctl.energy.projected.bench_projection`);
* the **electronic baseline, measured in this run**: the same products (same operands) as torch float32
  matmuls on the CPU, energy from RAPL when the machine exposes it, and otherwise a model labelled as such
  (which one, with its parameters); it is the ledger's **baseline view**. Published A100/H100 rows apart.

The tables give the optical projections at **peak** (every symbol slot used; 1 MAC = 2 ops; mW/TOPS =
fJ/op) and the CPU **as run**; ``labctl energy report FILE`` gives the three views of this run's products,
utilisation-weighted and at peak. On a bench without weight-stationary cores no product is sent to optics:
the baseline then runs products of the shape ``inputs`` x ``outputs`` for the tables only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from experiments.common.energy import ProductEnergy, cpu_baseline
from labctl.bench import SYSTEM_BENCH_PATH
from labctl.energy.baseline import PUBLISHED_ACCELERATORS, accelerator_markdown
from labctl.energy.projected import (PAPER_MW_PER_TOPS, PUBLISHED_VS_ASSUMED, gap_to, paper_configuration, project,
                                     ring_core_configuration, sensitivity, sensitivity_markdown)
from labctl.opu import architecture, open_opu, open_opus
from labctl.opu.stationary import StationaryConfig
from labctl.runner import Experiment, ExperimentError, RunContext


class Parameters(BaseModel):
    ring_core_bench: str = Field(str(SYSTEM_BENCH_PATH), description="weight-stationary bench file to project")
    calibration: str | None = Field(None, description="folder of the cores' calibrations (<controller>.json; cores "
                                    "without one are calibrated and saved there); default: calibrate now")
    cores: list[int] | None = Field(None, description="cores to compute on (default: every core of the bench)")
    products: int = Field(4, ge=1, description="products per core")
    rows: int = Field(4096, ge=1, description="rows of the activations (symbols) per product")
    inputs: int = Field(16, ge=1, description="inner dimension K of the CPU-only products (bench without cores)")
    outputs: int = Field(16, ge=1, description="columns of the CPU-only products (bench without cores)")
    repeats: int = Field(500, ge=1, description="CPU passes over the products for the baseline measurement")
    threads: int = Field(1, ge=1, description="torch CPU threads")
    rapl_root: str = Field("/sys/class/powercap", description="where RAPL counters are looked for")
    seed: int = Field(0, description="seed of the operands")


class EnergyEfficiency(Experiment):
    """Metered products on the optical cores, projected (paper, ring_core) and on the CPU: three energy views."""

    name = "energy_efficiency"
    Parameters = Parameters

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        rec = ctx.recorder
        paper = project(paper_configuration())
        ring = project(ring_core_configuration(p.ring_core_bench))
        sens = sensitivity(paper.config)
        energy = ProductEnergy(ctx.energy)
        engines = self._engines(ctx, p)
        rng = np.random.default_rng(p.seed)
        for opu in ctx.progress(engines, desc="products"):
            for _ in range(p.products):
                energy.matmul(opu, rng.uniform(-1, 1, (p.rows, opu.n_in)), rng.uniform(-1, 1, (opu.n_in, opu.n_out)))
        baseline = energy.finish(ctx.bench, repeats=p.repeats, threads=p.threads, rapl_root=p.rapl_root)
        if baseline is None:  # no optical cores: products of the default core shape, for the tables only
            pairs = [(rng.uniform(-1, 1, (p.rows, p.inputs)), rng.uniform(-1, 1, (p.inputs, p.outputs)))
                     for _ in range(p.products)]
            baseline = cpu_baseline(pairs, repeats=p.repeats, threads=p.threads, rapl_root=p.rapl_root,
                                    label="CPU torch FP32 matmul, products of the default core shape")
        ctx.energy_per(energy.products, "product")
        workload = {"cores": [opu.name for opu in engines], "products": energy.products,
                    "shapes": sorted({f"({p.rows}x{opu.n_in})@({opu.n_in}x{opu.n_out})" for opu in engines}),
                    "macs": energy.useful_macs, "optical_macs": energy.optical_macs}
        rec.write_json("energy_efficiency/workload", workload)

        for key, proj in (("paper", paper), ("ring_core", ring)):
            rec.write_json(f"energy_efficiency/{key}/terms", [
                {**row, "provenance": _provenance(t)} for row, t in zip(proj.rows(), proj.terms)])
            rec.write_json(f"energy_efficiency/{key}/config", {k: v for k, v in proj.config.__dict__.items()})
        rec.write_json("energy_efficiency/sensitivity", sens)
        rec.write_json("energy_efficiency/baseline", [baseline.row() | {"provenance": _provenance(baseline.term)}])
        rec.write_json("energy_efficiency/accelerators", [
            {"device": a.device, "precision": a.precision, "peak_tops": a.peak_tops, "tdp_w": a.tdp_w,
             "mw_per_tops": a.mw_per_tops, "source": a.source} for a in PUBLISHED_ACCELERATORS])
        rec.set_result(paper_mw_per_tops=paper.mw_per_tops, paper_tops=paper.tops, paper_total_w=paper.total_w,
                       ring_core_mw_per_tops=ring.mw_per_tops, ring_core_tops=ring.tops,
                       ring_core_total_w=ring.total_w, cpu_mw_per_tops=baseline.mw_per_tops,
                       cpu_method=baseline.method)

        text = self._markdown(paper, ring, sens, baseline, workload)
        path = ctx.artefact("energy_efficiency.md")
        path.write_text(text)
        print(text)
        return {
            "optical_products": energy.products,
            "optical_cores": ", ".join(workload["cores"]) or "none (CPU only)",
            "paper_mw_per_tops_peak": round(paper.mw_per_tops, 2),
            "paper_published_mw_per_tops": PAPER_MW_PER_TOPS.value,
            "paper_tops_peak": round(paper.tops, 3),
            "ring_core_mw_per_tops_peak": round(ring.mw_per_tops, 1),
            "ring_core_tops_peak": round(ring.tops, 4),
            "cpu_baseline": baseline.label,
            "cpu_method": baseline.method,
            "cpu_mw_per_tops_as_run": round(baseline.mw_per_tops, 1),
            "convention": "1 MAC = 2 ops; mW/TOPS = fJ/op; optical at peak, CPU as run",
            "tables": str(path),
        }

    @staticmethod
    def _engines(ctx: RunContext, p: Parameters) -> list:
        """The bench's weight-stationary cores, calibrated (none on another bench); the calibration's span of
        the bench clock is noted in the ledger, since the bench view's window includes it."""
        if architecture(ctx.bench) != "weight_stationary":
            if p.cores:
                raise ExperimentError(f"cores={p.cores}: this bench has no weight-stationary optical cores")
            ctx.energy.ledger.add_note("bench", "this bench has no weight-stationary optical cores: no product "
                                                "was sent to optics")
            return []
        count = len(StationaryConfig.from_bench(ctx.bench).cores)
        if p.cores is not None and any(not 0 <= c < count for c in p.cores):
            raise ExperimentError(f"cores={p.cores}: this bench has {count} core(s) (0..{count - 1})")
        start = ctx.energy.now()
        if p.cores is None:
            engines = open_opus(ctx.bench, p.calibration)
        else:
            engines = [open_opu(ctx.bench, p.calibration, core=c) for c in dict.fromkeys(p.cores)]
        ctx.energy.sample()
        ctx.energy.ledger.add_note("bench", f"the window includes opening (calibrating or loading) {len(engines)} "
                                            f"core(s): {ctx.energy.now() - start:.4g} s of the bench clock")
        return engines

    @staticmethod
    def _markdown(paper, ring, sens, baseline, workload) -> str:
        b = baseline
        if workload["products"]:
            products = (f"{workload['products']} products {', '.join(workload['shapes'])} on "
                        f"{', '.join(workload['cores'])}; the CPU computed the same products (same operands)")
        else:
            products = "no optical cores on this bench: the CPU computed products of the default core shape"
        parts = [
            "# Energy efficiency (1 MAC = 2 ops; mW/TOPS = fJ/op)", "",
            paper.markdown(), "",
            f"Published: {PAPER_MW_PER_TOPS.value} mW/TOPS; reconstructed: {paper.mw_per_tops:.4g} mW/TOPS "
            "at peak.", "",
            "#### Published vs assumed", "", PUBLISHED_VS_ASSUMED, "",
            sensitivity_markdown(sens, "paper configuration"), "",
            ring.markdown(), "",
            "#### What would have to change to reach the paper's figure", "",
            *gap_to(PAPER_MW_PER_TOPS.value, ring),
            "", "Each term must fall below its share of 118.6 fJ/op: lasers sized by the receiver's needs "
            "(not +13 dBm per channel for 13 dB of splitting and fibre), ADCs sampling once per symbol at "
            "~6 effective bits (not 10x oversampled at 9.5), ring heaters replaced or trimmed, and a higher "
            "symbol rate to amortise static power.", "",
            "### Electronic baseline, measured in this run", "", products + ". The bench, projected and "
            "baseline views of this run's products: `labctl energy report <results file>`.", "",
            "| device | method | energy (J) | wall (s) | CPU (s) | ops | mW/TOPS as run | note |",
            "|---|---|---:|---:|---:|---:|---:|---|",
            f"| {b.label} | {b.method} | {b.energy_j:.4g} | {b.wall_s:.4g} | {b.cpu_s:.4g} | {b.ops:.4g} | "
            f"{b.mw_per_tops:.4g} | {b.why or b.term.note} |", "",
            accelerator_markdown(), "",
        ]
        return "\n".join(parts)


def _provenance(term) -> dict[str, Any]:
    prov = term.provenance
    return {"kind": type(prov).__name__, **{k: v for k, v in prov.__dict__.items()}}
