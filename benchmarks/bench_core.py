"""Benchmark: the simulated weight-stationary core's program path against its noise floor.

Run: ``python -m benchmarks.bench_core`` (prints a summary, writes benchmarks/results_core.json); add
``--reference OTHER.json`` to put another run's figures (e.g. the same benchmark on an older commit) side
by side and check that the effective bits agree within 0.2 bit. Nothing is asserted. Measured in a child
process with single-threaded OpenBLAS and torch pinned to 1 thread, as bench_opu.

Why a floor: at symbol level a product cannot cost less than drawing one independent Gaussian per ADC
reading (every tile's every output in every slot is its own reading): for (256x256)@(256x1024) on a
16 x 16 core that is 1024 tiles (16 x 64 weight blocks) x 256 slots (the rows of A) x 16 outputs = 4.2 M
values. The floor is timed here with the
generator the core draws with (``standard_normal_f32`` on a PCG64 ``numpy.random.Generator``), in the same
process and interleaved with the other measurements (absolute times on these shared machines move by tens
of percent; the ratios are what is compared). The model draws more than that: each input's DAC and driver
noise and its laser's RIN are independent per slot and shared by every photodiode the input reaches, so they
cannot merge into the readings' draws. ``draws`` times drawing as many values as a steady product draws
(counted, not assumed), as the core draws them: the cost of the model's noise alone.

Per round (medians over the rounds): the floor; ``torch.matmul`` of the same shape (float32, 1 thread);
``steady``: the same weights with new activations (the controller's gain cache holds: a layer's weights at
every diffusion step); ``first``: weights the core has not seen (the ring physics runs for every heater
row). For both the wall time of ``matmul`` and the part of it inside the simulated controller's program
run (``SimLabctlOCC._run``, wrapped with a timer here: the core's program path) are kept; ``first_gains``, the
first call's program run less the steady one's in the same round, is what new weights add (the static network
evaluation, the ring physics for every new heater row). cProfile's top entries of a steady and of a first call
are published with their share of the call. Peak memory
(tracemalloc, from one extra untimed call of each: tracing slows allocation; torch's from its profiler's memory
events, since tracemalloc does not see torch's allocator) is reported next to every time. The effective bits,
log2(range of the exact product / rms error), come from fixed operands on a bench's three cores, on benches opened with two fixed seeds (``BITS_SEEDS``), averaged. Threads: the three
cores, one steady product each, in three threads against one after another, next to the same on pure
NumPy work (what the machine gives threads at the time: busy neighbours on these shared cores cut it), with the
CPUs the process kept busy in each run (its CPU time over the wall time: one busy CPU in threads means something
serialises them, the NumPy pair's figure is what the machine allowed) and the time the World lock was held and
waited for (``World.lock`` wrapped with a timer for that part).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
from benchmarks.child import measure_in_child, print_measured
from benchmarks.timing import DrawCounter, draw_in_pieces, peak_bytes, torch_peak_mb
from labctl.bench import SYSTEM_BENCH_PATH

HERE = Path(__file__).parent
M, K, N = 256, 256, 1024
ROUNDS = 5
THREAD_ROUNDS = 3
PROFILE_ENTRIES = 15
#: the core draws its deviates in pieces of this many values (stationary_core._DRAW_VALUES): faster per value
PIECE = 1 << 15
#: targets of the issue: steady product <= 2 x floor, first call <= 4 x floor, threads >= 1.6 x
TARGETS = {"steady": 2.0, "first": 4.0, "threads_speedup": 1.6}
BITS_AGREEMENT = 0.2
#: bench seeds whose three cores give the effective bits: each core's calibration and noise is one realisation,
#: and one realisation's figure moves by ~0.1 bit (sometimes 0.3), so six are averaged
BITS_SEEDS = (1, 2)


class _ProgramTimer:
    """Wraps ``SimLabctlOCC._run`` (the INITiate handler: the core's program path) with a timer; restored on exit."""

    def __init__(self):
        self.seconds = 0.0
        self._local = threading.local()

    @contextlib.contextmanager
    def installed(self):
        from sim_backends.instruments.labctl_occ import SimLabctlOCC

        run0 = SimLabctlOCC._run
        timer = self

        def run(occ, table, codes):
            start = time.perf_counter()
            try:
                return run0(occ, table, codes)
            finally:
                timer._local.seconds = getattr(timer._local, "seconds", 0.0) + time.perf_counter() - start

        SimLabctlOCC._run = run
        try:
            yield self
        finally:
            SimLabctlOCC._run = run0

    def take(self) -> float:
        """Program seconds of this thread since the last take."""
        seconds = getattr(self._local, "seconds", 0.0)
        self._local.seconds = 0.0
        return seconds


class _LockTimer:
    """Stands in for ``World.lock`` (an RLock) while installed, adding up the seconds it was held (outermost
    acquire to last release, per thread) and the seconds threads waited for it."""

    def __init__(self):
        self._lock = threading.RLock()
        self._local = threading.local()
        self._sums = threading.Lock()
        self.held = self.waited = 0.0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        start = time.perf_counter()
        got = self._lock.acquire(blocking, timeout)
        if got:
            now = time.perf_counter()
            depth = getattr(self._local, "depth", 0)
            if depth == 0:
                self._local.since = now
            self._local.depth = depth + 1
            with self._sums:
                self.waited += now - start
        return got

    def release(self) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            with self._sums:
                self.held += time.perf_counter() - self._local.since
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    @contextlib.contextmanager
    def installed(self, world):
        lock, world.lock = world.lock, self
        try:
            yield self
        finally:
            world.lock = lock

    def take(self) -> tuple[float, float]:
        """(held, waited) seconds since the last take."""
        with self._sums:
            out, self.held, self.waited = (self.held, self.waited), 0.0, 0.0
        return out


def _peak_mb(fn) -> float:
    """Peak traced memory (MB) while ``fn()`` runs."""
    return peak_bytes(fn) / 1e6


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _timed_cpu(fn) -> tuple[float, float]:
    """(wall s, CPU s of the whole process) of ``fn()``: their ratio is how many CPUs it kept busy."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def _bits(y: np.ndarray, ref: np.ndarray) -> float:
    sigma = float(np.sqrt(np.mean((y - ref) ** 2)))
    return float(np.log2(np.ptp(ref) / sigma))


def _profile(fn) -> list[dict]:
    """The top entries (by own time) of a cProfile of ``fn()``, with their share of the total."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:PROFILE_ENTRIES]
    out = []
    for (path, line, name), (_, calls, own, cumulative, _) in rows:
        where = f"{Path(path).name}:{line}({name})" if line else name
        out.append({"function": where, "calls": calls, "own_s": own, "cumulative_s": cumulative,
                    "own_share": own / total if total else 0.0})
    return out


def measure() -> dict:
    """All figures, measured in this process (``run`` starts it in a child with single-threaded OpenBLAS)."""
    import torch

    import labctl
    from labctl.opu.stationary import StationaryOPU
    from labctl.opu.stationary.calibration import calibrate
    from sim_backends.physics.symbol_level import standard_normal_f32

    torch.set_num_threads(1)
    start_all = time.perf_counter()
    out: dict = {"machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                             "cores": os.cpu_count(), "numpy": np.__version__, "torch": torch.__version__},
                 "commit": _commit(), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                 "shape": f"({M}x{K})@({K}x{N})", "rounds": ROUNDS, "targets": TARGETS}
    with labctl.open_bench(SYSTEM_BENCH_PATH, mode="sim", seed=BITS_SEEDS[0]) as bench:
        start = time.perf_counter()
        opus = [calibrate(StationaryOPU(bench, core=c), None).opu for c in range(3)]
        out["calibration_seconds"] = time.perf_counter() - start
        opu = opus[0]
        out["core"] = {"name": opu.name, "size": [opu.n_out, opu.n_in]}
        tiles = (K // opu.n_in) * (N // opu.n_out)
        readings = tiles * M * opu.n_out
        out["floor_values"] = readings
        rng = np.random.default_rng(0)
        for core in opus:  # untimed: operating state, caches
            core.matmul(rng.random((16, 16)) - 0.5, rng.random((16, 16)) - 0.5)

        per_core = _effective_bits(opus)

        floor_rng = np.random.Generator(np.random.PCG64(7))
        noise = np.empty(readings, dtype=np.float32)
        ta, tb = torch.rand(M, K), torch.rand(K, N)
        samples: dict[str, list[float]] = {k: [] for k in ("floor", "floor_pieces", "draws", "torch", "steady",
                                                           "steady_program", "first", "first_program")}
        timer = _ProgramTimer()
        with timer.installed():
            b = rng.random((K, N)) - 0.5
            opu.matmul(rng.random((M, K)) - 0.5, b)
            with DrawCounter().installed() as counter:  # untimed: how many deviates a steady product draws
                opu.matmul(rng.random((M, K)) - 0.5, b)
            out["draw_values"] = counter.values
            drawn = np.empty(counter.values, dtype=np.float32)
            for _ in range(ROUNDS):
                samples["floor"].append(_timed(lambda: standard_normal_f32(floor_rng, noise.shape, out=noise)))
                samples["floor_pieces"].append(_timed(lambda: draw_in_pieces(floor_rng, noise, PIECE)))
                samples["draws"].append(_timed(lambda: draw_in_pieces(floor_rng, drawn, PIECE)))
                samples["torch"].append(min(_timed(lambda: torch.matmul(ta, tb)) for _ in range(5)))
                a = rng.random((M, K)) - 0.5
                timer.take()
                samples["steady"].append(_timed(lambda: opu.matmul(a, b)))
                samples["steady_program"].append(timer.take())
                b_new = rng.random((K, N)) - 0.5
                samples["first"].append(_timed(lambda: opu.matmul(a, b_new)))
                samples["first_program"].append(timer.take())
            b = b_new
            memory = {"floor": _peak_mb(lambda: standard_normal_f32(floor_rng, noise.shape)),
                      "torch": torch_peak_mb(M, K, N),
                      "steady": _peak_mb(lambda: opu.matmul(rng.random((M, K)) - 0.5, b)),
                      "first": _peak_mb(lambda: opu.matmul(rng.random((M, K)) - 0.5, rng.random((K, N)) - 0.5))}
            out["profile_steady"] = _profile(lambda: opu.matmul(rng.random((M, K)) - 0.5, b))
            out["profile_first"] = _profile(lambda: opu.matmul(rng.random((M, K)) - 0.5, rng.random((K, N)) - 0.5))
        samples["first_gains"] = [f - s for f, s in zip(samples["first_program"], samples["steady_program"])]
        med = {k: statistics.median(v) for k, v in samples.items()}
        out["seconds"] = med
        out["samples"] = samples
        out["peak_mb"] = memory
        floor = med["floor"]
        out["over_floor"] = {k: med[k] / floor for k in ("steady", "steady_program", "first", "first_program",
                                                         "first_gains", "torch", "floor_pieces", "draws")}
        out["over_draws"] = {k: med[k] / med["draws"] for k in ("steady", "steady_program", "first")}
        out["over_torch"] = {k: med[k] / med["torch"] for k in ("steady", "first", "floor")}
        out["met"] = {"steady": med["steady"] <= TARGETS["steady"] * floor,
                      "steady_program": med["steady_program"] <= TARGETS["steady"] * floor,
                      "first": med["first"] <= TARGETS["first"] * floor,
                      "first_program": med["first_program"] <= TARGETS["first"] * floor}
        out["threads"] = _threads(opus, rng, bench.sim.world)
    with labctl.open_bench(SYSTEM_BENCH_PATH, mode="sim", seed=BITS_SEEDS[1]) as bench:
        per_core += _effective_bits([calibrate(StationaryOPU(bench, core=c), None).opu for c in range(3)])
    out["effective_bits"] = {k: statistics.mean(c[k] for c in per_core) for k in ("first", "steady")}
    out["effective_bits_spread"] = {k: statistics.stdev(c[k] for c in per_core) for k in ("first", "steady")}
    out["effective_bits_per_core"] = per_core
    out["measured_seconds"] = time.perf_counter() - start_all
    return out


def _effective_bits(opus) -> list[dict]:
    """Effective bits of fixed operands on each core: a first call (new weights), then steady."""
    ops = np.random.default_rng(123)
    a, b, a2 = (ops.random(s) - 0.5 for s in ((M, K), (K, N), (M, K)))
    return [{"first": _bits(opu.matmul(a, b), a @ b), "steady": _bits(opu.matmul(a2, b), a2 @ b)} for opu in opus]


def _threads(opus, rng, world) -> dict:
    """One steady product on each core: in one thread each against one after another (interleaved rounds), next
    to the same pair on pure NumPy work, with the World lock's held and waited seconds of both runs."""
    weights = [rng.random((K, N)) - 0.5 for _ in opus]
    for opu, b in zip(opus, weights):
        opu.matmul(rng.random((M, K)) - 0.5, b)  # the weights on the rings: steady from here on
    runs = ("serial", "threads", "numpy_serial", "numpy_threads")
    samples: dict[str, list[float]] = {k: [] for k in runs + tuple(f"cpus_{r}" for r in runs) + (
        "lock_held_serial", "lock_held_threads", "lock_waited_threads")}
    x = np.random.default_rng(1).random(1 << 17).astype(np.float32)

    def ufunc_work():  # what the machine gives threads now: pure GIL-free NumPy work (busy neighbours cut it)
        for _ in range(300):
            np.cos(x)

    def products(acts):
        return [lambda o=o, a=a, b=b: o.matmul(a, b) for o, a, b in zip(opus, acts, weights)]

    def run(name, fn):
        wall, cpu = _timed_cpu(fn)
        samples[name].append(wall)
        samples["cpus_" + name].append(cpu / wall)

    lock = _LockTimer()
    with lock.installed(world):
        for _ in range(THREAD_ROUNDS):
            run("numpy_serial", lambda: [ufunc_work() for _ in opus])
            run("numpy_threads", lambda: _in_threads([ufunc_work] * len(opus)))
            acts = [rng.random((M, K)) - 0.5 for _ in opus]
            lock.take()
            run("serial", lambda: [job() for job in products(acts)])
            samples["lock_held_serial"].append(lock.take()[0])
            run("threads", lambda: _in_threads(products(acts)))
            held, waited = lock.take()
            samples["lock_held_threads"].append(held)
            samples["lock_waited_threads"].append(waited)
    med = {k: statistics.median(v) for k, v in samples.items()}
    memory = {"serial": _peak_mb(lambda: [job() for job in products([rng.random((M, K)) - 0.5 for _ in opus])]),
              "threads": _peak_mb(lambda: _in_threads(products([rng.random((M, K)) - 0.5 for _ in opus]))),
              "numpy_serial": _peak_mb(lambda: [ufunc_work() for _ in opus]),
              "numpy_threads": _peak_mb(lambda: _in_threads([ufunc_work] * len(opus)))}
    speedup = med["serial"] / med["threads"]
    return {"cores": len(opus), "serial_s": med["serial"], "threads_s": med["threads"], "speedup": speedup,
            "met": speedup >= TARGETS["threads_speedup"], "peak_mb": memory,
            "numpy_serial_s": med["numpy_serial"], "numpy_threads_s": med["numpy_threads"],
            "numpy_ufunc_speedup": med["numpy_serial"] / med["numpy_threads"],
            "lock_held_serial_s": med["lock_held_serial"], "lock_held_threads_s": med["lock_held_threads"],
            "lock_waited_threads_s": med["lock_waited_threads"], "cpus_busy": {r: med["cpus_" + r] for r in runs},
            "samples": samples}


def _in_threads(jobs) -> None:
    """Run every job in its own thread; the first exception of any is raised after all have ended."""
    errors: list[BaseException] = []

    def work(job):
        try:
            job()
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def run() -> dict:
    """The figures, measured in a child process with single-threaded OpenBLAS."""
    return measure_in_child("benchmarks.bench_core")


def compare(results: dict, reference: dict) -> dict:
    """Another run's figures next to these; the effective bits must agree within ``BITS_AGREEMENT``."""
    bits = {k: results["effective_bits"][k] - reference["effective_bits"][k] for k in results["effective_bits"]}
    return {"commit": reference.get("commit"), "seconds": reference["seconds"], "over_floor": reference["over_floor"],
            "peak_mb": reference["peak_mb"], "effective_bits": reference["effective_bits"],
            "threads_speedup": reference["threads"]["speedup"], "bits_change": bits,
            "bits_agree": all(abs(d) <= BITS_AGREEMENT for d in bits.values())}


def save(results: dict) -> Path:
    out = HERE / "results_core.json"
    out.write_text(json.dumps(results, indent=2))
    return out


def report(results: dict) -> str:
    s, x, mb, met = results["seconds"], results["over_floor"], results["peak_mb"], results["met"]
    floor = s["floor"]
    lines = [f"weight-stationary core {results['core']['name']} {results['shape']}, median of {results['rounds']} "
             f"interleaved rounds (commit {results.get('commit')})",
             f"  noise floor  {floor * 1e3:7.1f} ms  ({results['floor_values'] / 1e6:.1f} M standard_normal_f32 "
             f"values in one draw; peak {mb['floor']:.0f} MB); in pieces of {PIECE} as the core draws: "
             f"{s['floor_pieces'] * 1e3:.1f} ms",
             f"  the model's own draws: {results['draw_values'] / 1e6:.1f} M values "
             f"({results['draw_values'] / results['floor_values']:.2f} per reading: each input's drive noise and RIN "
             f"per slot as well as each reading's noise) take {s['draws'] * 1e3:.1f} ms = {x['draws']:.2f} x floor; "
             f"steady = {results['over_draws']['steady']:.2f} x them, first = {results['over_draws']['first']:.2f} x",
             f"  torch.matmul {s['torch'] * 1e3:7.2f} ms  (1 thread; floor = {results['over_torch']['floor']:.0f} x "
             "torch)"]
    for phase in ("steady", "first"):
        verdict = {k: "met" if met[k] else "not met" for k in (phase, phase + "_program")}
        if phase == "first":
            lines.append(f"  new weights add {s['first_gains'] * 1e3:.1f} ms = {x['first_gains']:.2f} x floor to the "
                         "program run (static network evaluation: the rings at every new heater row)")
        lines.append(f"  {phase:<6} matmul {s[phase] * 1e3:7.1f} ms = {x[phase]:5.2f} x floor ({verdict[phase]}: "
                     f"<= {TARGETS[phase]:g}x), program run {s[phase + '_program'] * 1e3:6.1f} ms = "
                     f"{x[phase + '_program']:5.2f} x floor ({verdict[phase + '_program']}); "
                     f"{results['over_torch'][phase]:.0f} x torch; peak {mb[phase]:.0f} MB; "
                     f"{results['effective_bits'][phase]:.2f} bits (sd over realisations "
                     f"{results['effective_bits_spread'][phase]:.2f})")
    th = results["threads"]
    tm = th["peak_mb"]
    lines.append(f"  {th['cores']} cores: one after another {th['serial_s']:.3f} s (peak {tm['serial']:.0f} MB), in "
                 f"{th['cores']} threads {th['threads_s']:.3f} s (peak {tm['threads']:.0f} MB): {th['speedup']:.2f}x "
                 f"({'met' if th['met'] else 'not met'}: >= {TARGETS['threads_speedup']}x)")
    lines.append(f"    pure NumPy the same way now: {th['numpy_serial_s']:.3f} s (peak {tm['numpy_serial']:.0f} MB) vs "
                 f"{th['numpy_threads_s']:.3f} s (peak {tm['numpy_threads']:.0f} MB): {th['numpy_ufunc_speedup']:.2f}x "
                 "(what the machine gives threads)")
    busy = th["cpus_busy"]
    lines.append(f"    CPUs the process kept busy: cores {busy['serial']:.2f} one after another, {busy['threads']:.2f} "
                 f"in threads; pure NumPy {busy['numpy_serial']:.2f} and {busy['numpy_threads']:.2f}")
    lines.append(f"    World lock held {th['lock_held_serial_s'] * 1e3:.1f} ms one after another, "
                 f"{th['lock_held_threads_s'] * 1e3:.1f} ms in threads (waited for "
                 f"{th['lock_waited_threads_s'] * 1e3:.1f} ms, summed over threads)")
    ref = results.get("reference")
    if ref:
        lines.append(f"  reference run (commit {ref['commit']}): steady {ref['seconds']['steady'] * 1e3:.1f} ms = "
                     f"{ref['over_floor']['steady']:.2f} x its floor, first {ref['seconds']['first'] * 1e3:.1f} ms = "
                     f"{ref['over_floor']['first']:.2f} x, threads {ref['threads_speedup']:.2f}x; bits change "
                     + ", ".join(f"{k} {v:+.3f}" for k, v in ref["bits_change"].items())
                     + f" ({'within' if ref['bits_agree'] else 'NOT within'} {BITS_AGREEMENT} bit)")
    for phase in ("steady", "first"):
        lines.append(f"  profile of a {phase} product (own time, top {PROFILE_ENTRIES}):")
        for row in results["profile_" + phase]:
            lines.append(f"    {row['own_share']:6.1%} {row['own_s'] * 1e3:7.1f} ms {row['calls']:>6}  "
                         f"{row['function']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help="another run's results_core.json to compare with")
    args = parser.parse_args(argv)
    if args.measure:
        return print_measured(measure)
    results = run()
    if args.reference is not None:
        results["reference"] = compare(results, json.loads(args.reference.read_text()))
    out = save(results)
    print(report(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
