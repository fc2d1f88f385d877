"""Timing and memory helpers shared by the benchmarks: interleaved medians (the machine is shared, so the
cases alternate round by round), a call's peak of traced allocations and a process's peak resident set, and the
simulated core's noise draws (how many it makes, what one costs): the floor its products are measured against."""

from __future__ import annotations

import contextlib
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Callable


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, the calls alternating round by round."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes traced by tracemalloc while ``fn`` runs."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def status_kb(field: str, pid: int | str = "self") -> int | None:
    """``field`` (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status`` in KiB; None where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRSS:
    """A process's peak resident set from now on: its ``VmHWM``, reset here by writing 5 to its
    ``/proc/<pid>/clear_refs`` (Linux >= 4.0). Reading it costs the process nothing, so timed work can be
    measured as it runs, and it sees what tracemalloc does not: other processes, native (torch) buffers. Memory
    the process's allocator already held is not counted again, so the rise is a lower bound."""

    def __init__(self, pid: int | str = "self"):
        self.pid = pid
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.method = "VmHWM"
        except OSError:
            self.method = "VmHWM not reset: the peak since the process started"
        self.before_kb = status_kb("VmRSS", pid)

    def result(self) -> dict:
        """Peak resident MB, its rise over the resident MB at the reset, and the method."""
        peak = status_kb("VmHWM", self.pid)
        if peak is None or self.before_kb is None:
            return {"peak_rss_mb": None, "peak_rise_mb": None, "memory_method": "no /proc status"}
        return {"peak_rss_mb": peak * 1024 / 1e6, "peak_rise_mb": max(peak - self.before_kb, 0) * 1024 / 1e6,
                "memory_method": self.method}


def torch_peak_mb(m: int, k: int, n: int) -> float:
    """Peak (MB) of torch's own allocations in one untimed (m x k) @ (k x n) ``torch.matmul``, from its profiler's
    memory events: tracemalloc does not see torch's allocator."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    a, b = torch.rand(m, k), torch.rand(k, n)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        torch.matmul(a, b)
    held = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return peak / 1e6


class DrawCounter:
    """Counts the Gaussian deviates the core model draws (``standard_normal_f32`` as the symbol-level core calls
    it) while installed: what a product must draw, beyond the floor's one value per reading."""

    def __init__(self):
        self.values = 0

    @contextlib.contextmanager
    def installed(self):
        from sim_backends.physics import stationary_core

        draw = stationary_core.standard_normal_f32

        def counted(rng, size, out=None):
            result = draw(rng, size, out=out)
            self.values += result.size
            return result

        stationary_core.standard_normal_f32 = counted
        try:
            yield self
        finally:
            stationary_core.standard_normal_f32 = draw


def draw_in_pieces(rng, out, piece: int = 1 << 15) -> None:
    """Fill the float32 array ``out`` with Gaussian deviates as the symbol-level core draws them
    (``standard_normal_f32`` into pieces of ``piece`` values)."""
    from sim_backends.physics.symbol_level import standard_normal_f32

    for i in range(0, out.size, piece):
        standard_normal_f32(rng, None, out=out[i:i + piece])


def seconds_per_draw(values: int = 1 << 22, repeats: int = 5) -> float:
    """Median seconds per Gaussian deviate, ``values`` drawn on a PCG64 generator as the core draws them
    (:func:`draw_in_pieces`)."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(7))
    out = np.empty(values, dtype=np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw_in_pieces(rng, out)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / values


def _array_work(repeats: int) -> float:
    """Seconds of NumPy work on a cache-sized array (draws and ufuncs, as the simulated core does), in a pool worker."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.empty(1 << 16, dtype=np.float32)
    start = time.perf_counter()
    for _ in range(repeats):
        rng.standard_normal(out=x, dtype=np.float32)
        np.multiply(x, x, out=x)
        np.sqrt(x, out=x)
    return time.perf_counter() - start


def two_process_ceiling(repeats: int = 2000, rounds: int = 3) -> dict:
    """What this machine gives two processes now: the same NumPy work done twice one after another against twice
    at once, in two warmed-up spawned processes (medians of ``rounds`` interleaved rounds). On shared machines
    busy neighbours cut it below 2, and no parallel run in the same minutes can do better."""
    from multiprocessing import get_context

    with get_context("spawn").Pool(2) as pool:
        pool.map(_array_work, [10, 10])  # warm: imports, first pages
        serial, together = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            pool.apply(_array_work, (repeats,))
            pool.apply(_array_work, (repeats,))
            serial.append(time.perf_counter() - start)
            start = time.perf_counter()
            pool.map(_array_work, [repeats, repeats], chunksize=1)
            together.append(time.perf_counter() - start)
    s, t = statistics.median(serial), statistics.median(together)
    return {"one_after_another_s": s, "together_s": t, "ratio": s / t}
