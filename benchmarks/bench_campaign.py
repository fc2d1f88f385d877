"""Benchmark: campaign throughput on Dask with 1 and 2 workers, and the campaign's own cost per point.

Run: ``python -m benchmarks.bench_campaign`` (prints the figures, writes benchmarks/results_campaign.json).
Nothing is asserted. The campaign is the example's experiment (receiver_snr on the built-in simulated bench,
one VOA step per point) over ``POINTS`` fibre lengths.

* **throughput**: points per second of the same campaign on a LocalCluster of 1 and of 2 single-threaded
  worker processes, each started and warmed up (labctl imported in every worker) outside the timing; the
  time runs from the start document to the stop document. Both runs are on this machine's cores, which
  other processes share: each count runs ``ATTEMPTS`` times, interleaved, and the fastest run of each is
  kept; the 1-minute load average before and after is recorded with the figures.
* **overhead**: the serial (RunEngine) campaign's time per point, start to stop document, against the
  time ``run_experiment`` itself took for the point (its bench opened and closed, its results file written):
  what the RunEngine, the documents and the campaign file add per point; measured in every attempt, the
  lowest kept (a burst of load elsewhere during one point inflates it).
* **where a second worker loses time**, measured with each throughput run: the points' wall time
  (``duration_s``) and the CPU time of the thread that ran them (``cpu_s``; ``cpu_share`` = CPU / wall: 1
  when a worker had a core to itself), the client process's own CPU time between the start and stop
  documents (the scheduler, the documents, the campaign file: it competes with the workers for the
  cores), the workers' BLAS/OpenMP thread settings (one thread each: Dask's ``pre-spawn-environ``), and
  the **ceiling without Dask**: the same points in one process, then split over two concurrent processes
  (a spawn pool, warmed up), interleaved with the Dask runs. When the ceiling is below 2, the two
  processes did not have two free cores (other load, shared memory bandwidth): Dask cannot do better.
  ``busy_fraction`` is the points' wall time over workers x campaign time (what Dask's scheduling and the
  client leave idle); ``estimated_speedup_on_free_cores`` combines it with the CPU time per point (which
  grows when two points share the machine's caches and memory): workers x busy fraction / CPU per point, 2
  workers over 1 -- an estimate from these measurements, not a measurement.
* **peak memory** next to every time, measured on the timed runs themselves: the peak resident set (``VmHWM``,
  reset just before; reading it costs the processes nothing) of every process that does the work, since the
  points run in other processes, which tracemalloc cannot see: each Dask worker and this process (the client,
  the in-process scheduler and nannies, the documents, the campaign file); this process for the serial
  campaign; each plain process of the ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.child import measure_in_child, print_measured
from benchmarks.timing import PeakRSS

HERE = Path(__file__).parent
POINTS = 16
#: Runs of each worker count, interleaved; the fastest of each is reported (the machine is shared).
ATTEMPTS = 3
#: The workers' thread settings that matter for numpy/torch work (one thread per single-threaded worker).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CAMPAIGN = f"""\
experiment: receiver_snr
seed: 1
parameters: {{attenuations_db: [3.0], record_length: 8192}}
sweep:
  grid:
    fibre_length_km: {{start: 0.0, stop: 35.0, num: {POINTS}}}
"""


class _Clock:
    """Times a campaign from its start document to its stop document (wall, and this process's CPU)."""

    def __init__(self) -> None:
        self.start = self.stop = self.cpu_start = self.cpu_stop = 0.0

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self.start, self.cpu_start = time.perf_counter(), time.process_time()
        elif name == "stop":
            self.stop, self.cpu_stop = time.perf_counter(), time.process_time()

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_stop - self.cpu_start

    @property
    def seconds(self) -> float:
        return self.stop - self.start


def _campaign(folder: Path):
    from labctl.campaign import load_campaign

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench_campaign.yaml"
    path.write_text(CAMPAIGN)
    return load_campaign(path)


def throughput(workers: int, folder: Path) -> dict:
    import dask
    from distributed import Client, LocalCluster

    from labctl.campaign import run_campaign

    campaign = _campaign(folder)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster) as client:
            client.run(lambda: __import__("experiments.receiver_snr") and None)  # warm up every worker
            threads = client.run(lambda: {name: os.environ.get(name) for name in THREAD_VARIABLES})
            pids = list(client.run(os.getpid).values())
        worker_peaks, client_peak = [PeakRSS(pid) for pid in pids], PeakRSS()
        clock = _Clock()
        result = run_campaign(campaign, folder / f"dask{workers}", scheduler=cluster.scheduler_address,
                              show_progress=False, subscribers=[clock])
        memory = {"workers": [peak.result() for peak in worker_peaks], "client": client_peak.result()}
    finally:
        cluster.close()
    assert result.status == "complete", result.status
    wall = sum(r["duration_s"] for r in result.records)
    cpu = sum(r["cpu_s"] for r in result.records)
    return {"workers": workers, "points": len(result.records), "seconds": clock.seconds,
            "points_per_s": len(result.records) / clock.seconds, "point_wall_s": wall / len(result.records),
            "point_cpu_s": cpu / len(result.records), "cpu_share": cpu / wall,
            "busy_fraction": wall / (workers * clock.seconds),
            "client_cpu_s_per_point": clock.cpu_seconds / len(result.records),
            "worker_threads": sorted({json.dumps(t, sort_keys=True) for t in threads.values()}), "memory": memory}


def _warm(_: int) -> int:
    import experiments.receiver_snr  # noqa: F401 - imported once per pool process, outside the timing

    return os.getpid()


def _single_threaded() -> None:
    """Pool processes get what Dask gives its workers: one BLAS/OpenMP thread (set before numpy loads)."""
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))


def _points(jobs: list[dict]) -> dict:
    """Runs the points in this pool process; returns its peak resident set while it did."""
    from labctl.campaign.point import run_point

    peak = PeakRSS()
    for job in jobs:
        run_point(job)
    return peak.result()


def ceiling(pool, folder: Path) -> dict:
    """The campaign's points run by plain processes: all in one, then half in each of two at once."""
    from labctl.campaign.point import point_job

    campaign = _campaign(folder)
    jobs = [point_job(campaign, p, folder / "one") for p in campaign.points]
    started = time.perf_counter()
    one_memory = pool.apply(_points, (jobs,))
    one = time.perf_counter() - started
    jobs = [point_job(campaign, p, folder / "two") for p in campaign.points]
    started = time.perf_counter()
    two_memory = pool.map(_points, [jobs[0::2], jobs[1::2]], chunksize=1)
    two = time.perf_counter() - started
    return {"one_process_s": one, "two_processes_s": two, "ratio": one / two,
            "memory": {"one_process": one_memory, "two_processes": two_memory}}


def overhead(folder: Path) -> dict:
    from labctl.campaign import run_campaign

    campaign = _campaign(folder)
    clock, peak = _Clock(), PeakRSS()
    result = run_campaign(campaign, folder / "serial", show_progress=False, subscribers=[clock])
    memory = peak.result()
    experiment_s = sum(r["duration_s"] for r in result.records) / len(result.records)
    per_point = clock.seconds / len(result.records)
    return {"points": len(result.records), "campaign_s_per_point": per_point, "experiment_s_per_point": experiment_s,
            "overhead_s_per_point": per_point - experiment_s,
            "overhead_percent": 100 * (per_point - experiment_s) / experiment_s, "memory": memory}


def run() -> dict:
    """All figures, measured in a child process: its memory figures then do not depend on what ran before it in
    the same process (``make bench`` runs every benchmark from one)."""
    return measure_in_child("benchmarks.bench_campaign")


def measure() -> dict:
    """All figures, measured in this process."""
    from multiprocessing import get_context

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, get_context("spawn").Pool(2, initializer=_single_threaded) as pool:
        folder = Path(tmp)
        pool.map(_warm, [0, 1], chunksize=1)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        ceilings, serials = [], []
        for attempt in range(ATTEMPTS):  # interleaved, so a burst of load elsewhere hits all of them
            serials.append(overhead(folder / f"serial{attempt}"))
            for workers in (1, 2):
                runs[workers].append(throughput(workers, folder / f"attempt{attempt}"))
            ceilings.append(ceiling(pool, folder / f"ceiling{attempt}"))
        serial = min(serials, key=lambda r: r["overhead_percent"])
        one, two = (max(runs[w], key=lambda r: r["points_per_s"]) for w in (1, 2))
    # what the same runs would give if every worker had a core to itself: workers x busy fraction / CPU per point
    free = [w["workers"] * w["busy_fraction"] / w["point_cpu_s"] for w in (one, two)]
    return {"points": POINTS, "experiment": "receiver_snr", "overhead": serial,
            "overhead_percent_per_attempt": [r["overhead_percent"] for r in serials], "dask_1_worker": one,
            "dask_2_workers": two, "speedup_2_vs_1": two["points_per_s"] / one["points_per_s"],
            "speedups_per_attempt": [b["points_per_s"] / a["points_per_s"] for a, b in zip(runs[1], runs[2])],
            "estimated_speedup_on_free_cores": free[1] / free[0],
            "ceiling_without_dask": max(ceilings, key=lambda c: c["ratio"]),
            "ceiling_ratios_per_attempt": [c["ratio"] for c in ceilings],
            "cpus": os.cpu_count(), "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
            "memory_method": "memory: peak resident set (VmHWM) of each process during the timed run, reset before it "
                             "(peak_rise_mb: above its resident set then)"}


def save(results: dict) -> Path:
    out = HERE / "results_campaign.json"
    out.write_text(json.dumps(results, indent=2))
    return out


def _mb(*memories: dict) -> str:
    return " + ".join("n/a" if m["peak_rss_mb"] is None else f"{m['peak_rss_mb']:.0f}" for m in memories) + " MB"


def _memory_text(results: dict) -> str:
    one, two, ceiling = results["dask_1_worker"], results["dask_2_workers"], results["ceiling_without_dask"]
    return (f"peak RSS (VmHWM): Dask 1 worker {_mb(*one['memory']['workers'])} (client {_mb(one['memory']['client'])}),"
            f" 2 workers {_mb(*two['memory']['workers'])} (client {_mb(two['memory']['client'])}); serial "
            f"{_mb(results['overhead']['memory'])}; without Dask one process {_mb(ceiling['memory']['one_process'])}, "
            f"two {_mb(*ceiling['memory']['two_processes'])}")


def report(results: dict) -> str:
    o = results["overhead"]
    return (f"campaign of {results['points']} points ({results['experiment']}): Dask 1 worker "
            f"{results['dask_1_worker']['points_per_s']:.2f} points/s, 2 workers "
            f"{results['dask_2_workers']['points_per_s']:.2f} points/s -> {results['speedup_2_vs_1']:.2f}x; "
            f"serial overhead {o['overhead_s_per_point'] * 1e3:.0f} ms/point = {o['overhead_percent']:.1f} % of "
            f"the experiment's {o['experiment_s_per_point']:.2f} s; without Dask two processes reach "
            f"{results['ceiling_without_dask']['ratio']:.2f}x; busy fraction 1 worker "
            f"{results['dask_1_worker']['busy_fraction']:.2f}, 2 workers {results['dask_2_workers']['busy_fraction']:.2f}"
            f" (estimate on free cores {results['estimated_speedup_on_free_cores']:.2f}x); points' CPU share 1 worker "
            f"{results['dask_1_worker']['cpu_share']:.2f}, 2 workers {results['dask_2_workers']['cpu_share']:.2f} "
            f"(load average {results['load_average_1min']['before']:.1f} on {results['cpus']} CPUs)\n"
            + _memory_text(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args(argv).measure:
        return print_measured(measure)
    figures = run()
    print(report(figures))
    print(f"written to {save(figures)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
