"""Benchmark: ``matmul`` on both simulated OPU architectures against ``torch.matmul``, with a cost split.

Run: ``python -m benchmarks.bench_opu`` (prints a table, writes benchmarks/results_opu.json). Nothing is
asserted. The figures are measured in a child process with single-threaded OpenBLAS (``OPENBLAS_NUM_THREADS=1``,
as in bench_physics: on 2 cores NumPy's idle OpenBLAS workers spin against torch's pool); torch runs once with
1 thread and once with its default thread count, both in the same run as the OPU. Calibration is done once per
bench, outside the timing, and a small untimed product puts the core in its operating state first.

**(a) Weight-stationary core** (``sim_backends/benches/ring_core.yaml``, core 0: 16 x 16, weights on microring
banks, symbol-level controller model) for the issue's target shape (256x256)@(256x1024) and two smaller ones:

* ``first``: a product with weights the bench has not seen (new ``b`` every repeat): the simulated controller
  evaluates the bench's ring physics (``World``) for every tile's heater row;
* ``steady``: the same weights again with new activations ``a`` every repeat -- a layer's weights at every
  diffusion step -- so the controller's per-heater-row gain cache holds and only the slot simulation runs.

Cost split of each call (seconds, they add up to the wall time):

* ``physics``: ``World.physics_seconds`` delta (the ring/fibre/modulator physics) + the controller's
  symbol-level slot simulation = the time inside the simulated instrument's INITiate handler
  (``SimLabctlOCC._run``, wrapped with a timer here) plus any world physics outside it;
* ``control``: instrument control -- drivers, VISA, SCPI, binary block transfers, the simulated instrument's
  parsing: the rest of ``StationaryOPU.run_program_codes`` (also wrapped with a timer here);
* ``electronic``: encode (scales, DAC-code lookup, heater solve) and decode -- the rest of ``matmul``.

**(b) Streaming core** (``sim_backends/benches/opu_core.yaml``: AWG lanes + scope, weights modulated into light,
waveform-level physics) for its small shapes, as before.

**Energy per product** (``energy`` of each shape): one product per shape (the first ``first`` call; the
streaming product) is metered on the bench clock (:class:`labctl.energy.metering.BenchMeter`, outside the
timing) and gives, each with its method: the **bench** J (what the simulated instruments drew over the
product: analyzer feeds measured, readbacks, table figures), the **projected** J (the bench's cores in
integrated form at their peak rate, for the same MACs; none for the streaming bench, which says why) and
the **CPU** J (torch float32 matmul of the same operands, RAPL or the labelled model, mean of
``ENERGY_CPU_REPEATS`` passes), with the product's ledger.

**Peak memory** next to every time, in a pass after all timed calls (with operands of its own, so the timed
calls see the same operands and bench state as without it), each figure with its method in ``memory_method``:
an OPU product's is the tracemalloc peak of one more call of each kind (NumPy's buffers are traced; tracing slows
allocation, hence not timed); torch's is the peak of torch's own allocations in one more product, from torch's
profiler (tracemalloc does not see torch's allocator, and a resident-set rise misses memory the process already
holds); a calibration's is the process's peak resident set while it runs (VmHWM, which costs nothing to read, so
the timed run itself).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from experiments.common.energy import ProductEnergy
from labctl.energy.ledger import VIEWS
from labctl.energy.metering import BenchMeter
from benchmarks.child import measure_in_child
from benchmarks.timing import PeakRSS, peak_bytes, torch_peak_mb

HERE = Path(__file__).parent
RING_BENCH = HERE.parent / "sim_backends" / "benches" / "ring_core.yaml"
STREAM_BENCH = HERE.parent / "sim_backends" / "benches" / "opu_core.yaml"
#: (M, K, N): A (M x K) @ B (K x N), B held on the rings. The last one is the issue's target shape.
RING_SHAPES = ((64, 64, 64), (128, 256, 256), (256, 256, 1024))
#: The streaming bench's one lane needs M*K*N/16 slots of waveform simulation: the target shape would take hours.
STREAM_SHAPES = ((16, 32, 16), (32, 64, 64))
FIRST_REPEATS = 3
STEADY_REPEATS = 5
#: CPU passes over a metered product for its baseline (one product is too short to measure alone).
ENERGY_CPU_REPEATS = 20


# -- torch reference ----------------------------------------------------------------------------------------


def _torch_times(m: int, k: int, n: int, threads: int, repeats: int = 25) -> list[float]:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(m, k), torch.rand(k, n)
    for _ in range(3):  # warm-up: thread pool and kernel selection
        torch.matmul(a, b)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        samples.append(time.perf_counter() - start)
    return samples


class _Torch:
    """torch.matmul float32 medians with 1 thread and the default thread count, sampled in several blocks
    interleaved with the OPU calls of the same shape (load changes hit both sides)."""

    def __init__(self, m: int, k: int, n: int, default_threads: int):
        self.shape, self.default = (m, k, n), default_threads
        self.samples: dict[int, list[float]] = {1: [], default_threads: []}

    def sample(self) -> None:
        for threads in self.samples:
            self.samples[threads] += _torch_times(*self.shape, threads)

    def median(self, threads: int) -> float:
        return statistics.median(self.samples[threads])


def _traced_mb(opu, a: np.ndarray, b: np.ndarray) -> float:
    """tracemalloc peak (MB) of one untimed ``opu.matmul(a, b)``, the operands made before it."""
    return peak_bytes(lambda: opu.matmul(a, b)) / 1e6


# -- timers around the simulated instrument and the programs (benchmark only) ---------------------------------


class _SplitTimers:
    """Wraps ``SimLabctlOCC._run`` (the INITiate handler's work) and ``StationaryOPU.run_program_codes`` (a
    product's programs) with timers, recording the world physics seconds inside each; restored on exit."""

    def __init__(self, world):
        self.world = world
        self.occ_s = self.occ_world_s = self.program_s = self.program_world_s = 0.0

    def snapshot(self) -> dict:
        return {"occ_s": self.occ_s, "occ_world_s": self.occ_world_s, "program_s": self.program_s,
                "program_world_s": self.program_world_s, "world_s": self.world.physics_seconds}

    @contextlib.contextmanager
    def installed(self):
        from labctl.opu.stationary import StationaryOPU
        from sim_backends.instruments.labctl_occ import SimLabctlOCC

        run0, program0 = SimLabctlOCC._run, StationaryOPU.run_program_codes
        timers = self

        def run(occ, table, codes):
            w0, t0 = occ.world.physics_seconds, time.perf_counter()
            try:
                return run0(occ, table, codes)
            finally:
                timers.occ_s += time.perf_counter() - t0
                timers.occ_world_s += occ.world.physics_seconds - w0

        def run_program(opu, heater_volts, codes):
            w0, t0 = timers.world.physics_seconds, time.perf_counter()
            try:
                return program0(opu, heater_volts, codes)
            finally:
                timers.program_s += time.perf_counter() - t0
                timers.program_world_s += timers.world.physics_seconds - w0

        SimLabctlOCC._run, StationaryOPU.run_program_codes = run, run_program
        try:
            yield self
        finally:
            SimLabctlOCC._run, StationaryOPU.run_program_codes = run0, program0


def _timed_matmul(opu, timers: _SplitTimers, a: np.ndarray, b: np.ndarray) -> dict:
    before = timers.snapshot()
    start = time.perf_counter()
    y = opu.matmul(a, b)
    wall = time.perf_counter() - start
    d = {k: v - before[k] for k, v in timers.snapshot().items()}
    stats = opu.last_stats
    world_outside_occ = d["world_s"] - d["occ_world_s"]
    physics = d["occ_s"] + world_outside_occ
    control = d["program_s"] - d["occ_s"] - (d["program_world_s"] - d["occ_world_s"])
    electronic = wall - d["program_s"] - (d["world_s"] - d["program_world_s"])
    ref = a @ b
    sigma = float(np.sqrt(np.mean((y - ref) ** 2)))
    return {"wall_s": wall, "physics_s": physics, "world_physics_s": d["world_s"],
            "slot_simulation_s": d["occ_s"] - d["occ_world_s"], "control_s": control, "electronic_s": electronic,
            "programs": stats["programs"], "tiles": stats["tiles"], "slots": stats["slots"],
            "upload_bytes": stats["upload_bytes"], "optical_time_s": stats["optical_time_s"],
            "rms_error": sigma, "bits_range": float(np.log2(np.ptp(ref) / sigma)) if sigma > 0 else float("inf")}


# -- energy per product ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def metered_product(bench, opu, a: np.ndarray, b: np.ndarray):
    """Meters the one product ``opu`` makes of ``a`` and ``b`` inside the block (timed as the caller wants;
    the meter starts before and stops after it): yields a dict that, after the block, holds the product's
    energy per view (:func:`energy_row`)."""
    out: dict = {}
    with BenchMeter(bench, label=f"{opu.name} ({a.shape[0]}x{a.shape[1]})@({b.shape[0]}x{b.shape[1]})") as meter:
        start = meter.now()
        yield out
        energy = ProductEnergy(meter)
        energy.record(opu, a, b, start, meter.now())
    out.update(energy_row(bench, energy))


def energy_row(bench, energy: ProductEnergy) -> dict:
    """The energy of the one product ``energy`` recorded (its bench view already metered), in J per view
    (bench, projected, cpu), with each view's method (the devices per provenance kind) or why it is missing,
    and the ledger."""
    energy.finish(bench, repeats=ENERGY_CPU_REPEATS)
    ledger = energy.meter.ledger
    row: dict = {"macs": energy.useful_macs, "optical_macs": energy.optical_macs}
    for view, key in zip(VIEWS, ("bench", "projected", "cpu")):
        if view not in ledger.views():
            row[f"{key}_j"] = row[f"{key}_mw_per_tops"] = None
            row[f"{key}_method"] = {"missing": ledger.notes(view)}
            continue
        s = ledger.summary(view)
        methods: dict[str, list[str]] = {}
        for device in s.devices:
            for kind in device.kinds:
                methods.setdefault(kind, []).append(device.device)
        row[f"{key}_j"], row[f"{key}_mw_per_tops"], row[f"{key}_method"] = s.energy_j, s.mw_per_tops, methods
    row["ledger"] = ledger.to_dict()
    return row


def _energy_text(e: dict) -> str:
    def view(key: str) -> str:
        if e[f"{key}_j"] is None:
            return f"{key} n/a"
        return f"{key} {e[f'{key}_j']:.3g} J ({'+'.join(e[f'{key}_method'])})"

    return "energy per product: " + ", ".join(view(k) for k in ("bench", "projected", "cpu"))


def _summary(calls: list[dict], torch_1: float, torch_default: float) -> dict:
    """Medians over the repeats; shares and ratios from the medians."""
    keys = ("wall_s", "physics_s", "world_physics_s", "slot_simulation_s", "control_s", "electronic_s",
            "rms_error", "bits_range")
    out = {k: statistics.median(c[k] for c in calls) for k in keys}
    for k in ("programs", "tiles", "slots", "upload_bytes", "optical_time_s"):
        out[k] = calls[0][k]
    total = out["physics_s"] + out["control_s"] + out["electronic_s"]
    out.update(repeats=len(calls), physics_share=out["physics_s"] / total, control_share=out["control_s"] / total,
               electronic_share=out["electronic_s"] / total, over_torch_1_thread=out["wall_s"] / torch_1,
               over_torch_default_threads=out["wall_s"] / torch_default,
               simulated_macs_per_s=None)
    return out


def weight_stationary(default_threads: int) -> dict:
    import labctl
    from labctl.opu.stationary import StationaryOPU
    from labctl.opu.stationary.calibration import calibrate

    results: dict = {"bench": RING_BENCH.name, "core": 0, "shapes": []}
    with labctl.open_bench(RING_BENCH, mode="sim", seed=1) as bench:
        peak = PeakRSS()
        start = time.perf_counter()
        opu = calibrate(StationaryOPU(bench, core=0), None).opu
        results["calibration_seconds"] = time.perf_counter() - start
        results["calibration_memory"] = peak.result()
        results["core_name"] = opu.name
        results["core_size"] = [opu.n_out, opu.n_in]
        rng = np.random.default_rng(0)
        opu.matmul(rng.random((16, 16)) - 0.5, rng.random((16, 16)) - 0.5)  # untimed: operating state, caches
        timers = _SplitTimers(bench.sim.world)
        with timers.installed():
            for m, k, n in RING_SHAPES:
                torch_ref = _Torch(m, k, n, default_threads)
                torch_ref.sample()
                first = []
                for i in range(FIRST_REPEATS):  # new weights every time: the ring physics for every tile
                    a, b = rng.random((m, k)) - 0.5, rng.random((k, n)) - 0.5
                    if i == 0:
                        with metered_product(bench, opu, a, b) as energy:
                            first.append(_timed_matmul(opu, timers, a, b))
                    else:
                        first.append(_timed_matmul(opu, timers, a, b))
                torch_ref.sample()
                steady = []
                for _ in range(STEADY_REPEATS):  # the last weights again, new activations
                    steady.append(_timed_matmul(opu, timers, rng.random((m, k)) - 0.5, b))
                torch_ref.sample()
                t1, td = torch_ref.median(1), torch_ref.median(default_threads)
                macs = m * k * n
                row = {"shape": f"({m}x{k})@({k}x{n})", "macs": macs, "torch_1_thread_s": t1,
                       "torch_default_threads_s": td, "first": _summary(first, t1, td),
                       "steady": _summary(steady, t1, td), "energy": energy}
                for phase in ("first", "steady"):
                    row[phase]["simulated_macs_per_s"] = macs / row[phase]["wall_s"]
                results["shapes"].append(row)
        memory_rng = np.random.default_rng(1)
        for row, (m, k, n) in zip(results["shapes"], RING_SHAPES):
            b = memory_rng.random((k, n)) - 0.5
            opu.matmul(memory_rng.random((m, k)) - 0.5, b)  # these weights on the rings, as for the steady calls
            row["steady"]["peak_mb"] = _traced_mb(opu, memory_rng.random((m, k)) - 0.5, b)
            b = memory_rng.random((k, n)) - 0.5
            row["first"]["peak_mb"] = _traced_mb(opu, memory_rng.random((m, k)) - 0.5, b)
            row["torch_peak_mb"] = torch_peak_mb(m, k, n)
    return results


# -- (b) the streaming bench ---------------------------------------------------------------------------------


def streaming(default_threads: int) -> dict:
    import labctl
    from labctl.opu.streaming.calibration import calibrate

    results: dict = {"bench": STREAM_BENCH.name, "shapes": []}
    with labctl.open_bench(STREAM_BENCH, mode="sim", seed=1) as bench:
        peak = PeakRSS()
        start = time.perf_counter()
        opu = calibrate(bench, None, lane_slots=1024, decoder_products=1).opu
        results["calibration_seconds"] = time.perf_counter() - start
        results["calibration_memory"] = peak.result()
        world = bench.sim.world
        rng = np.random.default_rng(0)
        for m, k, n in STREAM_SHAPES:
            a, b = rng.random((m, k)) - 0.5, rng.random((k, n)) - 0.5
            with metered_product(bench, opu, a, b) as energy:
                physics_before = world.physics_seconds
                start = time.perf_counter()
                y = opu.matmul(a, b)
                wall = time.perf_counter() - start
                physics = world.physics_seconds - physics_before
            stats = opu.last_stats
            electronic = stats["plan_s"] + stats["decode_s"]
            control = max(wall - physics - electronic, 0.0)
            ref = a @ b
            sigma = float(np.sqrt(np.mean((y - ref) ** 2)))
            torch_ref = _Torch(m, k, n, default_threads)
            torch_ref.sample()
            t1, td = torch_ref.median(1), torch_ref.median(default_threads)
            results["shapes"].append({
                "shape": f"({m}x{k})@({k}x{n})", "macs": m * k * n, "slots": stats["slots_per_lane"],
                "opu_seconds": wall, "torch_1_thread_s": t1, "torch_default_threads_s": td,
                "over_torch_1_thread": wall / t1, "over_torch_default_threads": wall / td,
                "physics_seconds": physics, "control_seconds": control, "electronic_seconds": electronic,
                "control_share": control / wall, "physics_share": physics / wall,
                "uploads": stats["uploads"], "upload_bytes": stats["upload_bytes"], "captures": stats["captures"],
                "capture_points": stats["capture_points"], "optical_time_s": stats["optical_time_s"],
                "rms_error": sigma, "bits_range": float(np.log2(np.ptp(ref) / sigma)), "energy": energy,
            })
        memory_rng = np.random.default_rng(1)
        for row, (m, k, n) in zip(results["shapes"], STREAM_SHAPES):
            row["peak_mb"] = _traced_mb(opu, memory_rng.random((m, k)) - 0.5, memory_rng.random((k, n)) - 0.5)
            row["torch_peak_mb"] = torch_peak_mb(m, k, n)
    return results


# -- driver ---------------------------------------------------------------------------------------------------


def measure() -> dict:
    """All figures, measured in this process (run() starts it in a child with single-threaded OpenBLAS)."""
    import torch

    default_threads = torch.get_num_threads()
    start = time.perf_counter()
    out = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "numpy": np.__version__, "torch": torch.__version__},
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "torch_default_threads": default_threads,
        "notes": {"first": f"new weights each call, median of {FIRST_REPEATS}",
                  "steady": f"same weights, new activations each call, median of {STEADY_REPEATS}",
                  "over_torch": "OPU wall time / torch.matmul float32 median, same shape, same run"},
        "memory_method": {
            "opu": "peak_mb: tracemalloc peak of one more, untimed product (NumPy buffers included)",
            "torch": "torch_peak_mb: peak of torch's own allocations in one more, untimed product (torch.profiler "
                     "memory events; BLAS workspace outside torch's allocator not included)",
            "calibration": "calibration_memory: the process's peak resident set (VmHWM) during the timed "
                           "calibration"},
    }
    with contextlib.redirect_stdout(sys.stderr):
        out["weight_stationary"] = weight_stationary(default_threads)
        out["streaming"] = streaming(default_threads)
    out["seconds"] = time.perf_counter() - start
    return out


def run() -> dict:
    """All issue-5 figures, measured in a child process with single-threaded OpenBLAS."""
    return measure_in_child("benchmarks.bench_opu")


def save(results: dict) -> Path:
    out = HERE / "results_opu.json"
    out.write_text(json.dumps(results, indent=2))
    return out


def _calibration_text(bench: dict) -> str:
    return (f"calibration {bench['calibration_seconds']:.1f} s, peak RSS "
            f"{bench['calibration_memory']['peak_rss_mb']:.0f} MB, untimed")


def _torch_text(r: dict, scale: float, unit: str) -> str:
    return (f"{r['torch_1_thread_s'] * scale:.3g} / {r['torch_default_threads_s'] * scale:.3g} {unit}, peak "
            f"{r['torch_peak_mb']:.2g} MB")


def report(results: dict) -> str:
    ws = results["weight_stationary"]
    lines = [f"weight-stationary {ws['core_size'][0]}x{ws['core_size'][1]} core ({ws['bench']}, {ws['core_name']}; "
             f"{_calibration_text(ws)}); torch float32 with 1 / {results['torch_default_threads']} threads; "
             f"peak MB: tracemalloc of one more call, untimed",
             f"{'shape':<22}{'call':<7}{'OPU s':>8}{'peak MB':>8}{'x torch1':>9}{'x torchN':>9}{'physics':>8}"
             f"{'(world)':>8}{'control':>8}{'electr.':>8}{'ctl %':>6}{'bits':>6}{'tiles':>6}{'slots':>8}"
             f"  torch 1 / N thr"]
    for r in ws["shapes"]:
        for phase in ("first", "steady"):
            p = r[phase]
            torch_col = f"  {_torch_text(r, 1e3, 'ms')}" if phase == "first" else ""
            lines.append(f"{r['shape'] if phase == 'first' else '':<22}{phase:<7}{p['wall_s']:>8.3f}"
                         f"{p['peak_mb']:>8.1f}{p['over_torch_1_thread']:>9.0f}"
                         f"{p['over_torch_default_threads']:>9.0f}{p['physics_s']:>8.3f}{p['world_physics_s']:>8.3f}"
                         f"{p['control_s']:>8.3f}{p['electronic_s']:>8.3f}{p['control_share']:>6.0%}"
                         f"{p['bits_range']:>6.2f}{p['tiles']:>6}{p['slots']:>8}{torch_col}")
        lines.append(f"{'':<22}{_energy_text(r['energy'])}")
    st = results["streaming"]
    lines.append(f"streaming core ({st['bench']}; {_calibration_text(st)})")
    for r in st["shapes"]:
        lines.append(f"{r['shape']:<20}OPU {r['opu_seconds']:.2f} s, peak {r['peak_mb']:.0f} MB vs torch 1 / "
                     f"{results['torch_default_threads']} thr {_torch_text(r, 1e6, 'us')} "
                     f"({r['over_torch_1_thread']:.3g}x 1 thr); physics {r['physics_share']:.0%}, control "
                     f"{r['control_share']:.0%}; {r['uploads']} uploads, {r['captures']} captures; "
                     f"{r['bits_range']:.2f} bits")
        lines.append(f"{'':<20}{_energy_text(r['energy'])}")
    lines.append(f"measured in {results['seconds']:.0f} s (OpenBLAS threads: {results['blas_threads']})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true",
                        help="measure in this process and print the JSON (what the child started by run() does)")
    if parser.parse_args().measure:
        print(json.dumps(measure()))
        return 0
    results = run()
    out = save(results)
    print(report(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
