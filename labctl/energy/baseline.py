"""The electronic baseline: what this machine's CPU spends on a workload, and published accelerator rows.

Measured when the machine exposes Intel/AMD RAPL counters under ``/sys/class/powercap`` (the package
domains ``intel-rapl:<n>``; the counter wraps at ``max_energy_range_uj``). Where it does not (VMs, CI),
the energy is **modelled** and labelled so: CPU-seconds used by this process x a per-core power taken
from a named datasheet -- never a silent zero. Zeus was not used: it would add eight packages (NVML,
AMD SMI, ...) to the environment for a counter this module reads in a few lines, and needs the same sysfs.

Published accelerator figures (NVIDIA datasheets, dense peak and TDP) are separate rows, never mixed
with the measurement.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.energy.ledger import EnergyLedger
from labctl.energy.provenance import Datasheet, EnergyError, Measured, Model, PowerTerm

RAPL_ROOT = Path("/sys/class/powercap")
_PACKAGE = re.compile(r"^intel-rapl:\d+$")

#: Modelled CPU power per busy core: AMD EPYC 7763, 280 W default TDP over 64 cores. This machine reports
#: only "AMD EPYC" (a VM hides the model), so the 7763 is an assumption; pass your CPU's figure instead.
CPU_W_PER_CORE = Datasheet(280.0 / 64, "W/core", "AMD EPYC 7763 product specifications (280 W default TDP, "
                           "64 cores); assumed for this VM's unnamed 'AMD EPYC'", "amd.com product page, specs")


class BaselineError(EnergyError):
    """The baseline cannot be measured as asked (no RAPL, unreadable counter); says why."""


@dataclass(frozen=True)
class RaplDomain:
    name: str
    path: Path
    max_energy_range_uj: int


class RaplReader:
    """Package energy counters of RAPL (``intel-rapl:<n>/energy_uj``), with wrap-around handled."""

    def __init__(self, root: str | Path = RAPL_ROOT):
        self.root = Path(root)
        if not self.root.is_dir():
            raise BaselineError(f"no RAPL: {self.root} does not exist (VM or no powercap driver)")
        domains = []
        for d in sorted(self.root.iterdir()):
            if _PACKAGE.match(d.name) and (d / "energy_uj").exists():
                try:
                    name = (d / "name").read_text().strip() if (d / "name").exists() else d.name
                    rng = int((d / "max_energy_range_uj").read_text().strip())
                except (OSError, ValueError) as exc:
                    raise BaselineError(f"RAPL domain {d}: unreadable max_energy_range_uj: {exc}") from exc
                if rng <= 0:
                    raise BaselineError(f"RAPL domain {d}: max_energy_range_uj must be > 0, got {rng}")
                domains.append(RaplDomain(name, d, rng))
        if not domains:
            raise BaselineError(f"no RAPL package domain (intel-rapl:<n>/energy_uj) under {self.root}")
        self.domains = tuple(domains)

    def sample(self) -> dict[str, int]:
        """The counters now, in uJ (one per package domain)."""
        out = {}
        for d in self.domains:
            try:
                v = int((d.path / "energy_uj").read_text().strip())
            except (OSError, ValueError) as exc:
                raise BaselineError(f"RAPL {d.path}/energy_uj unreadable (permission? RAPL is root-only on "
                                    f"recent kernels): {exc}") from exc
            if v < 0 or v > d.max_energy_range_uj:
                raise BaselineError(f"RAPL {d.path}/energy_uj = {v} outside [0, {d.max_energy_range_uj}]")
            out[str(d.path)] = v
        return out

    def energy_j(self, before: dict[str, int], after: dict[str, int]) -> float:
        """Joules between two samples, summed over packages; a counter that went down wrapped once."""
        total_uj = 0
        for d in self.domains:
            key = str(d.path)
            a, b = before[key], after[key]
            total_uj += b - a if b >= a else b + d.max_energy_range_uj - a
        return total_uj * 1e-6


@dataclass(frozen=True)
class BaselineMeasurement:
    """The CPU's energy for one workload: measured (RAPL) or modelled, with its power term."""

    label: str
    method: str  # "measured" or "modelled"
    energy_j: float
    wall_s: float
    cpu_s: float
    ops: float
    term: PowerTerm
    why: str = ""

    @property
    def j_per_op(self) -> float:
        if self.ops <= 0:
            raise EnergyError("the workload has no ops; J/op is undefined")
        return self.energy_j / self.ops

    @property
    def mw_per_tops(self) -> float:
        """Utilisation as run (not peak): energy / ops, in fJ/op = mW/TOPS."""
        return self.j_per_op * 1e15

    def record(self, ledger: EnergyLedger) -> None:
        """Put this measurement in the ledger's ``baseline`` view, over its own wall time."""
        ledger.add(self.term, view="baseline")
        ledger.set_window("baseline", self.term.start_s, self.term.end_s)
        if self.why:
            ledger.add_note("baseline", self.why)

    def row(self) -> dict[str, Any]:
        return {"device": self.label, "method": self.method, "energy_j": self.energy_j, "wall_s": self.wall_s,
                "cpu_s": self.cpu_s, "ops": self.ops, "mw_per_tops": self.mw_per_tops, "why": self.why}


def measure_cpu(workload: Callable[[], Any], ops: float, *, rapl_root: str | Path | None = RAPL_ROOT,
                w_per_core: Datasheet = CPU_W_PER_CORE,
                label: str = "this machine's CPU (torch)") -> BaselineMeasurement:
    """Run ``workload`` once and return its CPU energy: RAPL when available, else the labelled model
    E = W_per_core x CPU-seconds (process time over all threads = busy cores x wall time)."""
    if not (isinstance(ops, (int, float)) and math.isfinite(ops) and ops > 0):
        raise EnergyError(f"ops must be a positive number, got {ops!r}")
    reader, why = None, ""
    if rapl_root is not None:
        try:
            reader = RaplReader(rapl_root)
            before = reader.sample()
        except BaselineError as exc:
            reader, why = None, str(exc)
    else:
        why = "RAPL not requested"
    t0, c0 = time.perf_counter(), time.process_time()
    workload()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if reader is not None:
        energy = reader.energy_j(before, reader.sample())
        term = PowerTerm(label, energy / wall if wall > 0 else 0.0,
                         Measured("RAPL " + ", ".join(d.name for d in reader.domains),
                                  "read energy_uj before/after (wrap at max_energy_range_uj)"),
                         start_s=0.0, end_s=wall, note="whole package: includes other processes")
        return BaselineMeasurement(label, "measured", energy, wall, cpu, float(ops), term)
    if w_per_core.value <= 0:
        raise BaselineError(f"modelled baseline needs a positive per-core power, got {w_per_core.value}")
    energy = w_per_core.value * cpu
    model = Model("E = P_core x CPU-seconds (time.process_time over the workload)",
                  {"P_core_w": w_per_core.value, "P_core_source": f"{w_per_core.document} ({w_per_core.page})",
                   "cpu_s": cpu, "wall_s": wall, "logical_cpus": os.cpu_count()})
    term = PowerTerm(label, energy / wall if wall > 0 else 0.0, model, start_s=0.0, end_s=wall,
                     note=f"MODELLED, not measured: {why}")
    return BaselineMeasurement(f"{label} [modelled]", "modelled", energy, wall, cpu, float(ops), term,
                               why=f"{why}; modelled as {w_per_core.value:.3g} W per busy core x CPU-seconds")


@dataclass(frozen=True)
class AcceleratorRow:
    """A published accelerator figure: dense peak ops/s and TDP from its datasheet (no measurement)."""

    device: str
    precision: str
    peak_tops: float
    tdp_w: float
    source: str

    @property
    def mw_per_tops(self) -> float:
        """At peak and at TDP: TDP / peak (mW/TOPS = fJ/op)."""
        return self.tdp_w * 1e3 / self.peak_tops

    def term(self) -> PowerTerm:
        return PowerTerm(f"{self.device} {self.precision}", self.tdp_w,
                         Datasheet(self.tdp_w, "W (TDP)", self.source, "specifications table"),
                         note=f"peak {self.peak_tops:g} TOPS dense")


_A100 = ("NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web; "
         "A100 80GB SXM column)")
_H100 = "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column; sparsity figures halved to dense)"
#: FP32 is non-tensor FP32 (1 FLOP = 1 op; an FMA counts 2); INT8 is dense tensor-core peak.
PUBLISHED_ACCELERATORS = (
    AcceleratorRow("NVIDIA A100 SXM", "FP32", 19.5, 400.0, _A100),
    AcceleratorRow("NVIDIA A100 SXM", "INT8 (dense)", 624.0, 400.0, _A100),
    AcceleratorRow("NVIDIA H100 SXM", "FP32", 67.0, 700.0, _H100),
    AcceleratorRow("NVIDIA H100 SXM", "INT8 (dense)", 1979.0, 700.0, _H100),
)


def accelerator_markdown(rows=PUBLISHED_ACCELERATORS) -> str:
    lines = ["### Published accelerators (datasheet peak and TDP, not measured)", "",
             "| device | precision | peak TOPS | TDP (W) | mW/TOPS at peak | source |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.device} | {r.precision} | {r.peak_tops:g} | {r.tdp_w:g} | {r.mw_per_tops:.4g} | "
                     f"{r.source} |")
    return "\n".join(lines)


__all__ = ["AcceleratorRow", "BaselineError", "BaselineMeasurement", "CPU_W_PER_CORE", "PUBLISHED_ACCELERATORS",
           "RaplReader", "accelerator_markdown", "measure_cpu"]
