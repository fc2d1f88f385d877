"""Soak: simulated experiments point after point under seeded random faults.

Does labctl recover or fail each point cleanly (typed errors, bounded waits), and does every point that
finished reach its HDF5 results file? Each bench session is one ``labctl`` run (runner + Recorder) of the
:class:`SoakPoints` experiment on a fresh simulated bench; before each point a fault may be injected
(timeouts, disconnects, garbled replies, error entries, slow replies, laser mode hops, bias drift, fibre
cuts, detector saturation, now and then an instrument that stays dead until "someone fixes it").

Run: ``python -m benchmarks.soak --minutes 30 --out benchmarks/results_soak.json`` (figures to the JSON,
results files and the fault log to ``--work-dir``). A benchmark, not a test: it reports, it does not assert.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pyvisa
from pydantic import BaseModel, Field

from labctl.bench import CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH, open_bench
from labctl.errors import DriverError, LabctlError
from labctl.resilience import InstrumentUnavailable
from labctl.runner import Experiment, RunContext, run_experiment
from labctl.store import read_results

#: Fault kinds drawn before a point, with their relative weights ("dead": a disconnect that lasts until cleared).
WEIGHTS = {"timeout": 2, "disconnect": 2, "garble": 2, "error": 1, "slow": 2, "mode_hop": 1, "bias_drift": 1,
           "fibre_cut": 1, "saturation": 1, "dead": 0.3}
#: Instruments with an error queue on each bench (for 'error' faults) and transport targets.
TRANSPORT_TARGETS = {"default": ("laser", "powermeter", "bias", "switch", "heaters", "scope"),
                     "ring_core": ("laser1_1", "laser2_3", "laser3_4", "occ1", "occ2", "occ3")}
NO_ERROR_QUEUE = {"bias"}
WAVELENGTH_M = 1550e-9


def _typed(exc: BaseException) -> bool:
    """Whether a failure is one of the typed errors the project promises (labctl's, a driver's, VISA's)."""
    return isinstance(exc, (LabctlError, DriverError, pyvisa.errors.VisaIOError))


# -- fault drawing -------------------------------------------------------------------------------------------


def draw_fault(rng: np.random.Generator, bench_kind: str) -> tuple[str, str, dict[str, Any]]:
    """(bench item, fault kind, parameters) of one random fault."""
    kinds = list(WEIGHTS)
    weights = np.array([WEIGHTS[k] for k in kinds], dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    targets = TRANSPORT_TARGETS[bench_kind]
    target = str(targets[int(rng.integers(len(targets)))])
    if kind == "timeout":
        return target, "timeout", {}
    if kind == "disconnect":
        return target, "disconnect", {"down_s": float(rng.uniform(0.1, 4.0)),
                                      "during": str(rng.choice(["any", "read", "write"]))}
    if kind == "dead":
        return target, "disconnect", {"down_s": None}
    if kind == "garble":
        return target, "garble", {"mode": str(rng.choice(["flip", "truncate"])), "flips": int(rng.integers(1, 4))}
    if kind == "error":
        target = target if target not in NO_ERROR_QUEUE else "laser"
        return (target if bench_kind == "default" else "occ1"), "error", {"code": -310}
    if kind == "slow":
        return target, "slow", {"delay_s": float(rng.choice([0.05, 0.5, 3.0, 60.0]))}
    duration = float(rng.uniform(0.05, 1.0))
    if bench_kind == "ring_core":  # the ring core's optics live inside the OCC: hop its lasers
        laser = f"laser{int(rng.integers(1, 4))}_{int(rng.integers(1, 5))}"
        return laser, "mode_hop", {"duration_s": duration}
    if kind == "mode_hop":
        return "laser", "mode_hop", {"port": "out1", "duration_s": duration}
    if kind == "bias_drift":
        return "bias", "bias_drift", {"rate_v_per_s": float(rng.uniform(0.5, 5.0)), "duration_s": duration}
    if kind == "fibre_cut":
        return "edge_fibre", "fibre_cut", {"duration_s": duration}
    return "powermeter", "saturation", {"port": "in1", "level_w": 1e-4, "duration_s": duration}


# -- one point on each bench ------------------------------------------------------------------------------


def default_point(bench, rng: np.random.Generator, index: int) -> dict[str, float]:
    """Laser on, switch to the power meter, a random bias, one power reading; a heater and a scope look
    now and then. Settings are re-applied every point, so a failed point leaves nothing behind."""
    laser, meter, switch = bench.role("laser", 1), bench.role("powermeter", 1), bench.role("switch")
    laser.wavelength = WAVELENGTH_M
    laser.power = 8e-3
    laser.output_enabled = True
    switch.route = 1
    bias_v = float(rng.uniform(-5, 5))
    bench.role("bias").bias_voltage = bias_v
    bench.settle(0.01)
    values = {"bias_v": bias_v, "power_w": meter.read_power(), "wavelength_m": laser.wavelength,
              "heater_v": math.nan, "scope_mean_v": math.nan}
    if index % 10 == 0:
        heater = bench.role("heaters", 1)
        heater.voltage = float(rng.uniform(0, 2))
        heater.output_enabled = True
        values["heater_v"] = heater.measure_voltage()
    if index % 50 == 0:
        switch.route = 2
        _, traces = bench.role("scope").capture([1])
        values["scope_mean_v"] = float(np.mean(traces[1]))
    return values


def ring_core_point(bench, rng: np.random.Generator, index: int) -> dict[str, float]:
    """One laser of one core to a random power and back; the core's settings read."""
    core_index = int(rng.integers(1, 4))
    laser = bench.role(f"laser{core_index}_{int(rng.integers(1, 5))}", int(rng.integers(1, 5)))
    power = float(rng.uniform(5e-3, 20e-3))
    laser.power = power
    laser.output_enabled = True
    core = bench.role(f"occ{core_index}")
    return {"core": float(core_index), "power_set_w": power, "power_read_w": laser.power,
            "symbol_rate_hz": core.symbol_rate, "outputs_on": float(bool(core.output_enabled))}


POINTS: dict[str, Callable] = {"default": default_point, "ring_core": ring_core_point}


class NonNumericReading(ValueError):
    """A driver handed back something that is not a number for a numeric quantity (a damaged reply that its
    parser let through); the soak refuses to store it."""


def numbers(values: dict[str, Any]) -> dict[str, float]:
    """``values`` as floats, or :class:`NonNumericReading` naming the first that is not a number."""
    for key, value in values.items():
        if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise NonNumericReading(f"{key} read as {value!r}")
    return {key: float(value) for key, value in values.items()}


def readback_mismatch(bench_kind: str, values: dict[str, float]) -> bool:
    """A value read back that differs from what was set: damage that parsed as a valid number."""
    if bench_kind == "default":
        return not math.isclose(values["wavelength_m"], WAVELENGTH_M, rel_tol=1e-6)
    return not math.isclose(values["power_read_w"], values["power_set_w"], rel_tol=1e-3)


# -- the experiment ---------------------------------------------------------------------------------------


class SoakParameters(BaseModel):
    bench_kind: Literal["default", "ring_core"] = "default"
    max_points: int = Field(2000, ge=1)
    stop_at: float = Field(description="wall time (time.time()) at which to stop")
    fault_rate: float = Field(0.1, ge=0, le=1, description="chance of a fault being injected before a point")
    seed: int = 0
    first_index: int = 0


class SoakPoints(Experiment):
    """Measure point after point, injecting random faults; record finished points, count failed ones."""

    name = "soak"
    Parameters = SoakParameters

    def run(self, ctx: RunContext) -> dict[str, Any]:
        p: SoakParameters = ctx.params  # type: ignore[assignment]
        bench, rec = ctx.bench, ctx.recorder
        faults = bench.sim.faults
        rng = np.random.default_rng([p.seed, 1])
        measure = POINTS[p.bench_kind]
        outcome: dict[str, Any] = {"finished": [], "failed": Counter(), "untyped": Counter(), "injected": Counter(),
                                   "recovered": 0, "with_faults": 0, "mismatches": 0, "point_wall_s": [],
                                   "attempted": 0}
        for index in range(p.first_index, p.first_index + p.max_points):
            if time.time() >= p.stop_at:
                break
            outcome["attempted"] += 1
            if rng.random() < p.fault_rate:
                name, kind, params = draw_fault(rng, p.bench_kind)
                faults.inject(name, kind, **params)
                outcome["injected"]["dead" if kind == "disconnect" and params["down_s"] is None else kind] += 1
            fired_before, recoveries_before = len(faults.log), len(bench.recoveries)
            started = time.perf_counter()
            try:
                values = numbers(measure(bench, rng, index))
            except Exception as exc:  # counted by type below; the next point re-applies every setting
                outcome["failed"][type(exc).__name__] += 1
                if not _typed(exc):
                    outcome["untyped"][f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                if isinstance(exc, InstrumentUnavailable):
                    faults.clear(exc.instrument)  # someone power-cycles it and plugs it back in
                values = None
            outcome["point_wall_s"].append(time.perf_counter() - started)
            if values is None:
                continue
            fired = len(faults.log) - fired_before
            recovered = len(bench.recoveries) - recoveries_before
            rec.append("point_index", index)
            rec.append("sim_time_s", bench.sim.world.time)
            rec.append("faults_during_point", fired)
            for key, value in values.items():
                rec.append(key, value)
            outcome["finished"].append(index)
            outcome["recovered"] += recovered > 0
            outcome["with_faults"] += fired > 0
            outcome["mismatches"] += readback_mismatch(p.bench_kind, values)
        return {"points_finished": len(outcome["finished"]), "outcome": outcome}


# -- driver -----------------------------------------------------------------------------------------------


def soak(minutes: float, out: Path, work_dir: Path, seed: int = 0, fault_rate: float = 0.1,
         session_points: int = 2000, ring_core_every: int = 3) -> dict[str, Any]:
    """Run sessions until ``minutes`` have passed; every ``ring_core_every``-th session on the ring-core bench."""
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    stop_at = started + minutes * 60
    totals: dict[str, Any] = {"finished": 0, "attempted": 0, "recovered": 0, "with_faults": 0, "mismatches": 0}
    failed, untyped, injected, fired_kinds, outcomes = Counter(), Counter(), Counter(), Counter(), Counter()
    point_wall: list[float] = []
    recovery_seconds: list[float] = []
    sessions: list[dict[str, Any]] = []
    shutdown_failures = 0
    fault_log_path = work_dir / "soak_fault_log.jsonl"
    with fault_log_path.open("w") as fault_log:
        session = 0
        while time.time() < stop_at:
            kind = "ring_core" if ring_core_every and session % ring_core_every == ring_core_every - 1 else "default"
            path = SYSTEM_BENCH_PATH if kind == "ring_core" else CHARACTERISATION_BENCH_PATH
            bench_seed = seed * 1000 + session
            bench = open_bench(path, seed=bench_seed)
            try:
                result = run_experiment(
                    SoakPoints, bench=bench, seed=bench_seed, show_progress=False,
                    out=work_dir / f"soak_{session:04d}_{kind}.h5",
                    overrides={"bench_kind": kind, "max_points": session_points if kind == "default" else
                               max(session_points // 4, 1), "stop_at": stop_at, "fault_rate": fault_rate,
                               "seed": bench_seed, "first_index": totals["attempted"]})
            finally:
                bench.sim.faults.clear()
                report = bench.close()
                if report is not None and report.failed:  # e.g. injected error entries met by a shutdown step
                    shutdown_failures += len(report.failed)
                    bench.close()  # their queues were read by the failed check: the retry goes through
            outcome = result.summary["outcome"]
            stored = [int(i) for i in read_results(result.results_path).get("point_index", [])]
            sessions.append({"bench": kind, "seed": bench_seed, "file": str(result.results_path),
                             "attempted": outcome["attempted"], "finished": len(outcome["finished"]),
                             "stored": len(stored), "all_finished_stored": stored == outcome["finished"]})
            for key in ("attempted", "recovered", "with_faults", "mismatches"):
                totals[key] += outcome[key]
            totals["finished"] += len(outcome["finished"])
            failed.update(outcome["failed"])
            untyped.update(outcome["untyped"])
            injected.update(outcome["injected"])
            point_wall.extend(outcome["point_wall_s"])
            for event in bench.sim.fault_log:
                fired_kinds[event.fault] += 1
                fault_log.write(json.dumps({"session": session, **event.as_dict()}) + "\n")
            for recovery in bench.recoveries:
                outcomes[recovery.outcome] += 1
                if recovery.outcome not in ("unavailable", ""):
                    recovery_seconds.append(recovery.seconds)
            session += 1
    stored_total = sum(s["stored"] for s in sessions)
    figures = {
        "benchmark": "soak",
        "minutes_requested": minutes,
        "wall_s": round(time.time() - started, 2),
        "seed": seed,
        "fault_rate_per_point": fault_rate,
        "sessions": {"default": sum(s["bench"] == "default" for s in sessions),
                     "ring_core": sum(s["bench"] == "ring_core" for s in sessions)},
        "points": {"attempted": totals["attempted"], "finished": totals["finished"], "stored": stored_total,
                   "failed": sum(failed.values()), "finished_after_reconnect": totals["recovered"],
                   "finished_while_a_fault_fired": totals["with_faults"],
                   "finished_with_a_wrong_readback": totals["mismatches"]},
        "failed_points_by_error": dict(failed.most_common()),
        "untyped_failures": dict(untyped.most_common(20)),
        "faults_injected": dict(injected.most_common()),
        "fault_events_logged": dict(fired_kinds.most_common()),
        "reconnects": sum(n for outcome, n in outcomes.items() if outcome != "unavailable"),
        "recovery_outcomes": dict(outcomes.most_common()),
        "worst_recovery_s_simulated": max(recovery_seconds, default=0.0),
        "median_recovery_s_simulated": statistics.median(recovery_seconds) if recovery_seconds else 0.0,
        "worst_point_wall_s": max(point_wall, default=0.0),
        "median_point_wall_ms": 1e3 * statistics.median(point_wall) if point_wall else 0.0,
        "shutdown_failures": shutdown_failures,
        "every_finished_point_stored": all(s["all_finished_stored"] for s in sessions)
                                       and stored_total == totals["finished"],
        "fault_log": str(fault_log_path),
        "results_files": len(sessions),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to soak (wall time)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results_soak.json")
    parser.add_argument("--work-dir", type=Path, default=Path("results") / "soak",
                        help="where the results files and the fault log go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.1, help="chance of a fault before each point")
    parser.add_argument("--session-points", type=int, default=2000, help="points per bench session")
    args = parser.parse_args(argv)
    figures = soak(args.minutes, args.out, args.work_dir, args.seed, args.fault_rate, args.session_points)
    print(json.dumps({k: figures[k] for k in ("wall_s", "points", "every_finished_point_stored", "reconnects",
                                              "worst_recovery_s_simulated")}, indent=2))
    return figures


if __name__ == "__main__":
    main()
