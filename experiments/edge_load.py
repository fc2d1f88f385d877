"""Load on a shared optical computing center: 1, 2, 4, 8 concurrent edges, each with its own connection and
key, submitting the same job mix; throughput, latency percentiles, fairness and the edges' energy per job.

    labctl run edge_load --sim --out results/edge-load

The run starts **one center** (``labctl center serve --sim`` on the built-in optical computing center,
``center_bench`` with the run's seed, first ``cores`` cores, a subprocess bound to a free loopback port, each core
computing in a process of its own; its log is ``center.log``) with fresh CURVE keys in ``edge_load_keys/`` of the output folder (one pair per edge, all
allowed). Its cores are calibrated once at start-up (about 8 s each; ``--set calibration=DIR`` keeps and
reuses them). Then, for each count in ``edges``, that many edge threads start together (a barrier); each
opens its own :func:`labctl.network.connect` with one core (an edge holds whole cores, so edges beyond the
center's cores wait for admission until another edge leaves), submits ``jobs_per_edge`` products (job
``j`` has shape ``shapes[j % len(shapes)]``: ``rows x inner @ inner x cols``; the default is the
im2col product of one 3x3 convolution of the vae-digits decoder's first up-block, 32 -> 32 channels on a
2 x 2 latent, two images), then says bye.

Figures per edge count:

* **throughput**: all jobs over the time from the barrier to the last job's answer (admission included);
* **latency**: the edge's wall time of each product (network, the center's queue and the computation),
  percentiles p50, p90, p99, next to the center's own time computing it (``center_wall_s`` of the
  result's statistics; when it grows with the edges, the cores' simulations are competing for the
  host's CPUs); the wait for admission is reported on its own;
* **fairness**: Jain's index (sum x)^2 / (n sum x^2) over the jobs each edge had completed when the first
  edge finished its mix (all edges were competing until then): 1 when the center served them evenly,
  about ``cores / edges`` when edges beyond the cores waited for admission;
* **energy per job at the center**: the center meters each job and returns it with the result
  (:class:`labctl.network.messages.JobEnergy`): the **bench** energy, what the job's core's instruments drew
  over its window of the center's bench clock, and the **projected** energy of its ops on integrated
  optoelectronics; mean per job, and per edge (the spread across edges: min-max of the edges' means). With
  ``meter_cores`` (default) the center serves its bench with one power analyzer per core
  (:func:`meter_each_core`, written as ``center_bench.yaml``), so each job's draw is measured on its own
  feed while other cores compute; otherwise the bench's shared feeds cannot be split and the figure comes
  from the controller's readbacks and the instrument table, as ``energy_note`` says. The window is the
  job's span of the center's bench clock. The simulated center runs each core in its own process with its own
  copy of the bench (:mod:`labctl.network.cores`), so a job's window holds its own core's programs only and
  the bench energy per job does not depend on how many edges compute at once. ``edge_energy.json`` holds each edge's ledger of its
  jobs (:attr:`labctl.network.RemoteOPU.energy`) per level;
* **edges' CPU energy per job**: the edge threads of this process (:func:`labctl.energy.baseline.measure_cpu`:
  RAPL when the machine has it -- then the whole package, the center process included -- else the
  labelled per-core model over this process's CPU time). The run's own energy ledger meters the
  run's bench (not the center's) and is not a figure of this experiment.

Outputs: ``edge_load.h5`` (``levels.*``: one value per edge count; ``edges<n>.*``: every job of that count),
``edge_load.png`` (throughput and p90 latency vs edges), ``edge_load_table.md`` (also the summary's ``table``),
``edge_energy.json``. The center runs with ``--exit-with-parent``: it stops if this run dies.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, Field, field_validator

from labctl.bench import SYSTEM_BENCH_PATH
from labctl.energy.baseline import measure_cpu
from labctl.files import load_document
from labctl.network import connect, create_keys
from labctl.runner import Experiment, ExperimentError, RunContext

#: im2col product of the vae-digits decoder's up_blocks.0 resnet 3x3 convolution (32 -> 32 channels) on its
#: 2 x 2 latent for two images: (2*2*2 rows, 32*3*3 inner) @ (288, 32).
VAE_CONV_SHAPE = (8, 288, 32)


class Parameters(BaseModel):
    edges: list[int] = Field([1, 2, 4, 8], min_length=1, description="concurrent edge counts, one level each")
    jobs_per_edge: int = Field(40, ge=1, le=100_000, description="products each edge submits per level")
    shapes: list[tuple[int, int, int]] = Field([VAE_CONV_SHAPE], min_length=1,
                                               description="job mix: (rows, inner, cols) of each product, in turn")
    cores: int | None = Field(None, ge=1, description="cores the center serves (default: every core of its bench)")
    center_bench: str = Field(str(SYSTEM_BENCH_PATH), description="bench file the simulated center serves")
    meter_cores: bool = Field(True, description="serve center_bench with one power analyzer per core "
                              "(meter_each_core), so each job's bench energy is measured on its own feed")
    calibration: str | None = Field(None, description="folder of the center's core calibrations (made if missing); "
                                    "default: center_calibration/ in the output folder")
    heartbeat_s: float = Field(0.1, gt=0, le=10, description="heartbeat the center asks for; also how often an "
                               "edge waiting for a free core asks again")
    timeout_s: float = Field(120.0, gt=0, description="most an edge waits for admission, or for one product")
    startup_timeout_s: float = Field(300.0, gt=0, description="most the center may take to calibrate and serve")
    seed: int = Field(0, ge=0, description="seed of the operands (the center's noise takes the run's seed)")

    @field_validator("edges")
    @classmethod
    def _edge_counts(cls, v: list[int]) -> list[int]:
        if any(n < 1 or n > 64 for n in v) or len(set(v)) != len(v):
            raise ValueError(f"edge counts must be distinct and 1..64, got {v}")
        return v

    @field_validator("shapes")
    @classmethod
    def _shapes(cls, v: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        if any(d < 1 or d > 65_536 for shape in v for d in shape):
            raise ValueError(f"every dimension of a shape must be 1..65536, got {v}")
        return v


@dataclass
class Level:
    """One edge count: every job's edge, latency and completion time (s from the barrier)."""

    edges: int
    edge: np.ndarray
    latency_s: np.ndarray
    center_s: np.ndarray
    done_s: np.ndarray
    admission_s: np.ndarray
    macs: int
    cpu_energy_j: float
    cpu_method: str
    cpu_note: str
    bench_j: np.ndarray
    projected_j: np.ndarray
    energy_note: str
    ledgers: list[dict]

    def per_edge_j(self, figures: np.ndarray) -> np.ndarray:
        """Each edge's mean of ``figures`` (one per job) over its jobs."""
        return np.array([float(np.mean(figures[self.edge == e])) for e in range(self.edges)])

    @property
    def jobs(self) -> int:
        return len(self.edge)

    @property
    def throughput(self) -> float:
        return self.jobs / float(self.done_s.max())

    def percentile_s(self, q: float) -> float:
        return float(np.percentile(self.latency_s, q))

    @property
    def jain(self) -> float:
        """Jain's index over the jobs each edge had completed when the first edge finished its mix."""
        first_done = min(self.done_s[self.edge == e].max() for e in range(self.edges))
        x = np.array([np.count_nonzero((self.edge == e) & (self.done_s <= first_done)) for e in range(self.edges)],
                     dtype=float)
        return float(x.sum() ** 2 / (self.edges * (x**2).sum()))


def meter_each_core(bench_file: str | Path, out: Path) -> Path:
    """Write to ``out`` the bench ``bench_file`` with its mains metered per core: one WT310E power analyzer
    ``wt_<controller>`` per core of its ``opu:`` section, measuring the controller and the lasers of its
    inputs (a feed that held them goes, or keeps only what is no core's). Only the mains wiring changes (the
    analyzers touch no light, and calibrations stay valid: they leave analyzers out of a bench's fingerprint),
    so each core's draw is measured on its own while the others compute."""
    data = load_document(bench_file).data
    instruments = data.get("instruments") or {}
    cores = (data.get("opu") or {}).get("cores") or []
    if not cores or any(not isinstance(core, dict) or "controller" not in core for core in cores):
        raise ExperimentError(f"{bench_file}: no opu.cores with a controller each to meter (a weight-stationary "
                              "bench such as sim_backends/benches/ring_core.yaml)")
    owned = {core["controller"]: [core["controller"], *dict.fromkeys(ch["laser"] for ch in core.get("channels", []))]
             for core in cores}
    everything = {name for items in owned.values() for name in items}
    for name, spec in list(instruments.items()):
        if spec.get("role") == "power_analyzer":
            rest = [item for item in spec.get("measures") or [] if item not in everything]
            if rest:
                spec["measures"] = rest
            else:
                del instruments[name]
    for controller, items in owned.items():
        name = f"wt_{controller}"
        if name in instruments:
            raise ExperimentError(f"{bench_file}: already has an instrument named {name}")
        instruments[name] = {"role": "power_analyzer", "driver": "yokogawa.WT310E",
                             "resource": f"TCPIP0::wt-{controller}.labsim::inst0::INSTR", "measures": items}
    data["description"] = f"{data.get('description', '')} -- mains metered per core (edge_load)".strip(" -")
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


class CenterProcess:
    """``labctl center serve --sim --exit-with-parent`` on 127.0.0.1 (a free port), logging to ``log``;
    ``endpoint`` once serving. Its stdin is a pipe from this process, so it also stops if this process dies."""

    def __init__(self, command: list[str], log: Path, timeout_s: float):
        self.log_path = log
        self._log = open(log, "ab")
        self.process = subprocess.Popen([*command, "--exit-with-parent"], stdin=subprocess.PIPE, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        try:
            self.endpoint, self.cores = self._wait(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout_s: float) -> tuple[str, int]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            found = re.findall(r"serving (\d+) core\(s\) \(.*?\) on (tcp://127\.0\.0\.1:\d+)", text)
            if found:
                return found[-1][1], int(found[-1][0])
            if self.process.poll() is not None:
                raise ExperimentError(f"the center exited with code {self.process.returncode}; its log "
                                      f"({self.log_path}) ends:\n{text[-2000:]}")
            time.sleep(0.1)
        raise ExperimentError(f"the center did not serve within {timeout_s:g} s (see {self.log_path})")

    def stop(self) -> None:
        """SIGTERM (the center shuts its bench down), SIGKILL if it has not exited 30 s later."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.process.stdin.close()
        self._log.close()


def _figure(energy: Any, name: str) -> float:
    """A job's energy figure in J, NaN where the center gave none."""
    value = None if energy is None else getattr(energy, name)
    return float("nan") if value is None else float(value)


def _mean_or_none(values: np.ndarray) -> float | None:
    """The mean of the jobs' figures; None when the center gave none for some job (NaN there)."""
    return None if np.isnan(values).any() else float(np.mean(values))


def _milli(jobs: np.ndarray, edges: np.ndarray) -> str:
    """Mean per job in mJ, with the edges' min-max ("-" where the center gave no figure)."""
    if np.isnan(jobs).any():
        return "-"
    return f"{1e3 * np.mean(jobs):.3g} ({1e3 * np.min(edges):.3g}-{1e3 * np.max(edges):.3g})"


def _energy_note(energy: Any) -> str:
    """What the center's per-job energy figures cover, from a job's energy (its attribution and notes)."""
    if energy is None:
        return "the center reported no energy per job (it does not meter its cores)"
    return "; ".join([f"bench, as for the first job: {energy.attribution or 'not metered'}", *energy.notes])


class EdgeLoad(Experiment):
    """Concurrent edges on one shared center: throughput, latency percentiles, fairness, energy per job."""

    name = "edge_load"
    Parameters = Parameters

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: Parameters = ctx.params  # type: ignore[assignment]
        if getattr(ctx.bench, "mode", "sim") != "sim":
            raise ExperimentError("edge_load starts its own simulated center: run it with --sim (for a center on "
                                  "real instruments, start `labctl center serve` and use labctl.connect)")
        keys = self._keys(ctx.out_dir / "edge_load_keys", max(p.edges))
        calibration = Path(p.calibration) if p.calibration else ctx.out_dir / "center_calibration"
        calibration.mkdir(parents=True, exist_ok=True)
        center_bench = (meter_each_core(p.center_bench, ctx.artefact("center_bench.yaml")) if p.meter_cores
                        else Path(p.center_bench))
        command = [sys.executable, "-m", "labctl", "center", "serve", "--sim", "--bench", str(center_bench),
                   "--seed", str(ctx.bench.seed or 0), "--calibration", str(calibration), "--bind", "tcp://127.0.0.1:*",
                   "--key", str(keys["center"][1]), "--allow", str(keys["allow"]), "--heartbeat", str(p.heartbeat_s),
                   *(["--cores", str(p.cores)] if p.cores else [])]
        center = CenterProcess(command, ctx.artefact("center.log"), p.startup_timeout_s)
        try:
            levels = [self._level(center.endpoint, keys, n, p) for n in ctx.progress(p.edges, desc="edge counts")]
        finally:
            center.stop()
        self._record(ctx, levels)
        self._plot(ctx.artefact("edge_load.png"), levels, center.cores)
        table = self._table(levels, center.cores)
        ctx.artefact("edge_load_table.md").write_text(table + "\n")
        ctx.artefact("edge_energy.json").write_text(json.dumps(
            {f"edges{lv.edges}": {f"edge{i}": ledger for i, ledger in enumerate(lv.ledgers)} for lv in levels},
            indent=1))
        one = next((lv for lv in levels if lv.edges == 1), None)
        summary: dict[str, Any] = {"center_cores": center.cores, "table": table,
                                   "energy_note": levels[0].energy_note, "cpu_energy_note": levels[0].cpu_note}
        for lv in levels:
            summary[f"throughput_jobs_per_s_{lv.edges}_edges"] = round(lv.throughput, 3)
            summary[f"p90_latency_ms_{lv.edges}_edges"] = round(1e3 * lv.percentile_s(90), 2)
            summary[f"jain_{lv.edges}_edges"] = round(lv.jain, 3)
            summary[f"bench_j_per_job_{lv.edges}_edges"] = _mean_or_none(lv.bench_j)
            summary[f"projected_j_per_job_{lv.edges}_edges"] = _mean_or_none(lv.projected_j)
            if one is not None and lv is not one:
                summary[f"speedup_{lv.edges}_edges"] = round(lv.throughput / one.throughput, 3)
        return summary

    # -- the load -----------------------------------------------------------------------------------------

    @staticmethod
    def _keys(folder: Path, edges: int) -> dict:
        """Fresh key pairs of the center and ``edges`` edges (``edge<i>``), the edges' public keys allowed."""
        if folder.exists():
            shutil.rmtree(folder)
        pairs = {name: create_keys(name, folder) for name in ["center", *(f"edge{i}" for i in range(edges))]}
        allow = folder / "allow"
        allow.mkdir()
        for i in range(edges):
            shutil.copy(pairs[f"edge{i}"][0], allow)
        return {**pairs, "allow": allow}

    @staticmethod
    def _level(endpoint: str, keys: dict, edges: int, p: Parameters) -> Level:
        """``edges`` threads started together, each its own connection, key and job mix."""
        operands = []
        for i in range(edges):
            rng = np.random.default_rng([p.seed, edges, i])
            operands.append([(rng.standard_normal((r, k)), rng.standard_normal((k, c)))
                             for r, k, c in (p.shapes[j % len(p.shapes)] for j in range(p.jobs_per_edge))])
        records: list[list[tuple[float, ...]]] = [[] for _ in range(edges)]
        ledgers: list[dict] = [{} for _ in range(edges)]
        explained: list[Any] = []  # the first job's energy: what its figures cover
        admission = np.full(edges, np.nan)
        failures: list[str] = []
        barrier = threading.Barrier(edges + 1)
        t0 = [0.0]

        def edge(i: int) -> None:
            barrier.wait()
            try:
                with connect(endpoint, key=keys[f"edge{i}"][1], center_key=keys["center"][0], cores=1,
                             edge=f"load{edges}-edge{i}", timeout_s=p.timeout_s) as opu:
                    admission[i] = time.perf_counter() - t0[0]
                    for a, b in operands[i]:
                        start = time.perf_counter()
                        opu.matmul(a, b)
                        end = time.perf_counter()
                        energy = opu.last_energy
                        explained.append(energy)
                        records[i].append((end - start, opu.last_stats["center_wall_s"], end - t0[0],
                                           _figure(energy, "bench_j"), _figure(energy, "projected_j")))
                    ledgers[i] = opu.energy.to_dict()
            except Exception as exc:  # reported for the level below, with the edge that failed
                failures.append(f"edge{i}: {type(exc).__name__}: {exc}")

        def workload() -> None:
            threads = [threading.Thread(target=edge, args=(i,), name=f"edge{i}") for i in range(edges)]
            for thread in threads:
                thread.start()
            t0[0] = time.perf_counter()
            barrier.wait()
            for thread in threads:
                thread.join()

        macs = edges * sum(r * k * c for r, k, c in (p.shapes[j % len(p.shapes)] for j in range(p.jobs_per_edge)))
        cpu = measure_cpu(workload, 2 * macs, label="the edges' threads (this process)")
        if failures:
            raise ExperimentError(f"{edges} edges: {len(failures)} failed; first: {failures[0]}")
        edge_ids = np.concatenate([np.full(len(r), i) for i, r in enumerate(records)])
        latency, center_s, done, bench_j, projected_j = (np.array([x[k] for r in records for x in r])
                                                         for k in range(5))
        note = ("edges' CPU energy: " + (f"RAPL, the whole package (the center process included): {cpu.term.note}"
                                         if cpu.method == "measured" else "modelled, this process's CPU time "
                                         "(the edge threads, not the center) x W per core"))
        return Level(edges, edge_ids, latency, center_s, done, admission, macs, cpu.energy_j, cpu.method, note,
                     bench_j, projected_j, _energy_note(explained[0] if explained else None), ledgers)

    # -- outputs ------------------------------------------------------------------------------------------

    @staticmethod
    def _record(ctx: RunContext, levels: list[Level]) -> None:
        rec = ctx.recorder
        figures = {
            "edges": [lv.edges for lv in levels], "jobs": [lv.jobs for lv in levels],
            "throughput_jobs_per_s": [lv.throughput for lv in levels],
            "latency_p50_s": [lv.percentile_s(50) for lv in levels],
            "latency_p90_s": [lv.percentile_s(90) for lv in levels],
            "latency_p99_s": [lv.percentile_s(99) for lv in levels],
            "center_wall_p50_s": [float(np.median(lv.center_s)) for lv in levels],
            "jain": [lv.jain for lv in levels],
            "admission_wait_mean_s": [float(np.mean(lv.admission_s)) for lv in levels],
            "admission_wait_max_s": [float(np.max(lv.admission_s)) for lv in levels],
            "macs": [lv.macs for lv in levels],
            "edge_cpu_j_per_job": [lv.cpu_energy_j / lv.jobs for lv in levels],
            "bench_j_per_job": [float(np.mean(lv.bench_j)) for lv in levels],
            "bench_j_per_job_edge_min": [float(np.min(lv.per_edge_j(lv.bench_j))) for lv in levels],
            "bench_j_per_job_edge_max": [float(np.max(lv.per_edge_j(lv.bench_j))) for lv in levels],
            "projected_j_per_job": [float(np.mean(lv.projected_j)) for lv in levels],
        }
        for name, values in figures.items():
            rec.write(f"levels.{name}", np.array(values))
        rec.write("levels.edge_cpu_method", np.array([lv.cpu_method for lv in levels], dtype="S"),
                  note=levels[0].cpu_note)
        rec.write("levels.energy_note", np.array([lv.energy_note for lv in levels], dtype="S"))
        for lv in levels:
            rec.write(f"edges{lv.edges}.edge", lv.edge)
            rec.write(f"edges{lv.edges}.latency_s", lv.latency_s)
            rec.write(f"edges{lv.edges}.center_wall_s", lv.center_s)
            rec.write(f"edges{lv.edges}.done_s", lv.done_s)
            rec.write(f"edges{lv.edges}.admission_s", lv.admission_s)
            rec.write(f"edges{lv.edges}.bench_j", lv.bench_j)
            rec.write(f"edges{lv.edges}.projected_j", lv.projected_j)
        rec.set_units(**{f"levels.{k}": u for k, u in (
            ("throughput_jobs_per_s", "1/s"), ("latency_p50_s", "s"), ("latency_p90_s", "s"), ("latency_p99_s", "s"),
            ("center_wall_p50_s", "s"), ("admission_wait_mean_s", "s"), ("admission_wait_max_s", "s"),
            ("edge_cpu_j_per_job", "J"), ("bench_j_per_job", "J"), ("bench_j_per_job_edge_min", "J"),
            ("bench_j_per_job_edge_max", "J"), ("projected_j_per_job", "J"))},
                      **{f"edges{lv.edges}.{k}": "J" for lv in levels for k in ("bench_j", "projected_j")})

    @staticmethod
    def _table(levels: list[Level], cores: int) -> str:
        one = next((lv for lv in levels if lv.edges == 1), None)
        lines = [f"Center: {cores} core(s). Energy per job at the center: {levels[0].energy_note}. "
                 f"Edge CPU: {levels[0].cpu_note}.", "",
                 "| edges | jobs | jobs/s | vs 1 edge | p50 ms | p90 ms | p99 ms | center compute p50 ms | Jain "
                 "| admission wait ms (max) | bench mJ/job (edges' min-max) | projected uJ/job | edge CPU J/job |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for lv in levels:
            speedup = f"{lv.throughput / one.throughput:.2f}x" if one is not None else "-"
            lines.append(f"| {lv.edges} | {lv.jobs} | {lv.throughput:.1f} | {speedup} "
                         f"| {1e3 * lv.percentile_s(50):.1f} | {1e3 * lv.percentile_s(90):.1f} "
                         f"| {1e3 * lv.percentile_s(99):.1f} | {1e3 * np.median(lv.center_s):.1f} | {lv.jain:.3f} "
                         f"| {1e3 * np.mean(lv.admission_s):.0f} ({1e3 * np.max(lv.admission_s):.0f}) "
                         f"| {_milli(lv.bench_j, lv.per_edge_j(lv.bench_j))} | {1e6 * np.mean(lv.projected_j):.3g} "
                         f"| {lv.cpu_energy_j / lv.jobs:.3g} |")
        return "\n".join(lines)

    @staticmethod
    def _plot(path: Path, levels: list[Level], cores: int) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter

        n = [lv.edges for lv in levels]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        ax1.plot(n, [lv.throughput for lv in levels], "o-", label="measured")
        one = next((lv for lv in levels if lv.edges == 1), None)
        if one is not None:  # every core computing in parallel, each as fast as for one edge alone
            ax1.plot(n, [min(k, cores) * one.throughput for k in n], "k--", lw=1, label="1 edge x busy cores")
        ax1.axvline(cores, color="grey", ls=":", label=f"{cores} core(s)")
        ax1.set(xscale="log", xlabel="concurrent edges", ylabel="throughput (jobs/s)", title="center throughput")
        ax1.set_ylim(bottom=0)
        ax2.plot(n, [1e3 * lv.percentile_s(90) for lv in levels], "o-", color="C1", label="p90")
        ax2.plot(n, [1e3 * lv.percentile_s(50) for lv in levels], "s--", color="C2", label="p50")
        ax2.axvline(cores, color="grey", ls=":")
        ax2.set(xscale="log", xlabel="concurrent edges", ylabel="product latency at the edge (ms)",
                title="latency (network, queue, computation)")
        for ax in (ax1, ax2):
            ax.set_xticks(n, [str(k) for k in n])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
