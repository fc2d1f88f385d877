"""Benchmark: the network's control plane against bare ZeroMQ, and the center's throughput with 1-8 edges.

Run: ``python -m benchmarks.bench_network`` (prints the figures, writes benchmarks/results_network.json).
Nothing is asserted.

* **round trip**: on loopback, in one process, interleaved (``ROUNDS`` rounds of ``TRIPS`` trips each, the
  median trip of each kept, then the median over rounds; the machine is shared): a bare ZeroMQ REQ/REP round
  trip of one small frame (no encryption), the same with CURVE, and labctl's control plane: an admitted edge's
  heartbeat to a :class:`~labctl.network.center.Center` serving the system bench's core 1 and its answer (CURVE,
  ZAP-authenticated key, versioned JSON header encoded and checked at both ends, the center's poll loop).
  Peak memory: tracemalloc's peak over one extra, untimed round of each.
* **throughput**: the ``edge_load`` experiment (a center process, its simulated cores each in a process of
  its own, and 1, 2, 4, 8 concurrent edges, each with its own core while there are cores): jobs/s against one
  edge alone, with the aim of 1.7x at two edges where the center has a free core for each. The aim is
  judged on ``THROUGHPUT_ROUNDS`` interleaved runs of one and two edges (``JOBS_PER_EDGE`` products each,
  one calibration shared; the median of the rounds' ratios), since one run of under a second moves by tens of
  percent on a shared machine; the 1-8 edge table is one run. The 1-minute load average before and after is
  recorded: the center's cores and the edges share this machine's two CPUs with whatever else runs. Peak
  memory: the largest resident set of the center's processes (the center and its core processes) and this
  process's (the edges' threads).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

import zmq

from benchmarks.child import measure_in_child, print_measured
from benchmarks.timing import peak_bytes

HERE = Path(__file__).parent
ROUNDS = 5
TRIPS = 400
#: the aim at two edges, each with a free core of the center
AIM_TWO_EDGES = 1.7
THROUGHPUT_ROUNDS = 3
JOBS_PER_EDGE = 40


def _median_trip(send, receive, trips: int) -> float:
    times = []
    for _ in range(trips):
        t0 = time.perf_counter()
        send()
        receive()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class _Echo:
    """A REP socket echoing in a thread; ``curve``: with a CURVE server key pair."""

    def __init__(self, context: zmq.Context, curve: tuple[bytes, bytes] | None):
        self.socket = context.socket(zmq.REP)
        self.socket.linger = 0
        if curve is not None:
            self.socket.curve_server = True
            self.socket.curve_publickey, self.socket.curve_secretkey = curve
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.socket.poll(50):
                self.socket.send(self.socket.recv())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


def round_trips(rounds: int = ROUNDS, trips: int = TRIPS) -> dict:
    import labctl
    from labctl.network.center import Center
    from labctl.network.keys import create_keys, load_public, load_secret
    from labctl.network.messages import Admit, Heartbeat, Hello, decode, encode
    from labctl.opu.stationary import StationaryOPU

    context = zmq.Context()
    with tempfile.TemporaryDirectory() as tmp, labctl.open_bench(seed=0) as bench:
        folder = Path(tmp)
        center_public, center_secret = create_keys("center", folder)
        edge_public, edge_secret = create_keys("edge", folder)
        (folder / "allow").mkdir()
        (folder / "allow" / "edge.key").write_bytes(edge_public.read_bytes())
        server_keys = load_secret(center_secret)
        # heartbeats never reach an engine: core 1 uncalibrated is enough
        center = Center([StationaryOPU(bench, core=0)], bind="tcp://127.0.0.1:*", keys=server_keys,
                        allow_dir=folder / "allow")
        stop = threading.Event()
        serving = threading.Thread(target=center.serve, args=(stop.is_set,), daemon=True)
        serving.start()
        edge = context.socket(zmq.DEALER)
        edge.linger = 0
        edge.curve_serverkey = load_public(center_public)
        edge.curve_publickey, edge.curve_secretkey = load_secret(edge_secret)
        edge.connect(center.endpoint)
        edge.send_multipart(encode(Hello(edge="benchmark")))
        if not edge.poll(30_000) or not isinstance(decode(edge.recv_multipart())[0], Admit):
            raise RuntimeError("the benchmark's center did not admit its edge")
        heartbeat = encode(Heartbeat())

        def labctl_receive() -> None:
            header, _ = decode(edge.recv_multipart())
            if header.kind != "heartbeat":
                raise RuntimeError(f"expected a heartbeat, got {header.kind}")

        echoes = {"bare": _Echo(context, None), "curve": _Echo(context, server_keys)}
        clients = {}
        for name, echo in echoes.items():
            req = context.socket(zmq.REQ)
            req.linger = 0
            if name == "curve":
                req.curve_serverkey = server_keys[0]
                req.curve_publickey, req.curve_secretkey = zmq.curve_keypair()
            req.connect(echo.endpoint)
            clients[name] = req
        samples: dict[str, list[float]] = {"bare": [], "curve": [], "labctl": []}
        try:
            trip = {name: (lambda r=req: _median_trip(lambda: r.send(b"x" * 64), r.recv, trips))
                    for name, req in clients.items()}
            trip["labctl"] = lambda: _median_trip(lambda: edge.send_multipart(heartbeat), labctl_receive, trips)
            for _ in range(rounds):
                for name, one_round in trip.items():
                    samples[name].append(one_round())
            peak_mb = {name: peak_bytes(one_round) / 1e6 for name, one_round in trip.items()}  # untimed
        finally:
            for req in clients.values():
                req.close()
            for echo in echoes.values():
                echo.close()
            edge.close()
            stop.set()
            serving.join()
            center.close()
    context.term()
    med = {name: statistics.median(values) for name, values in samples.items()}
    return {"rounds": rounds, "trips_per_round": trips, "peak_mb": peak_mb,
            "bare_zmq_req_rep_us": med["bare"] * 1e6, "curve_zmq_req_rep_us": med["curve"] * 1e6,
            "labctl_heartbeat_us": med["labctl"] * 1e6,
            "labctl_over_bare": med["labctl"] / med["bare"], "labctl_over_curve": med["labctl"] / med["curve"],
            "per_round_us": {name: [v * 1e6 for v in values] for name, values in samples.items()}}


def throughput(rounds: int = THROUGHPUT_ROUNDS, jobs_per_edge: int = JOBS_PER_EDGE) -> dict:
    from labctl.runner import run_experiment

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        calibration = Path(tmp) / "calibration"  # made by the first run, loaded by the others
        result = run_experiment("edge_load", out=Path(tmp) / "levels", seed=0, show_progress=False,
                                overrides={"calibration": str(calibration)})
        ratios = []
        for k in range(rounds):
            pair = run_experiment("edge_load", out=Path(tmp) / f"round{k}", seed=0, show_progress=False,
                                  overrides={"edges": [1, 2], "jobs_per_edge": jobs_per_edge,
                                             "calibration": str(calibration)})
            ratios.append(pair.summary["speedup_2_edges"])
    summary = result.summary
    levels = {}
    for edges in (1, 2, 4, 8):
        levels[str(edges)] = {"jobs_per_s": summary.get(f"throughput_jobs_per_s_{edges}_edges"),
                              "vs_one_edge": summary.get(f"speedup_{edges}_edges", 1.0 if edges == 1 else None),
                              "p90_ms": summary.get(f"p90_latency_ms_{edges}_edges"),
                              "jain": summary.get(f"jain_{edges}_edges")}
    two = statistics.median(ratios)
    # peak resident memory: the largest of the center's processes (the center and its core processes, each
    # ended and waited for), and this process (the edges' threads, after the round trips above)
    kib = 1024 / 1e6  # ru_maxrss is in KiB
    peak = {"center_largest_process_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib,
            "edges_process_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib}
    return {"levels": levels, "peak_rss_mb": peak, "two_edges_rounds": ratios, "two_edges_median": two,
            "jobs_per_edge": jobs_per_edge,
            "aim_two_edges": AIM_TWO_EDGES, "two_edges_met": bool(two >= AIM_TWO_EDGES),
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0]}


def measure() -> dict:
    """All figures, measured in this process (``run`` starts it in a child)."""
    return {"round_trip": round_trips(), "throughput": throughput()}


def run() -> dict:
    """All figures, measured in a child process: its memory figures then do not depend on what ran before it in
    the same process (``make bench`` runs every benchmark from one)."""
    return measure_in_child("benchmarks.bench_network")


def save(results: dict) -> Path:
    out = HERE / "results_network.json"
    out.write_text(json.dumps(results, indent=2))
    return out


def report(results: dict) -> str:
    r, t = results["round_trip"], results["throughput"]
    levels = ", ".join(f"{n} edges {v['jobs_per_s']:.1f} jobs/s ({v['vs_one_edge']:.2f}x)"
                       for n, v in t["levels"].items() if v["jobs_per_s"] is not None)
    return (f"control plane: labctl heartbeat round trip {r['labctl_heartbeat_us']:.0f} us vs bare ZeroMQ REQ/REP "
            f"{r['bare_zmq_req_rep_us']:.0f} us ({r['labctl_over_bare']:.1f}x; CURVE REQ/REP "
            f"{r['curve_zmq_req_rep_us']:.0f} us, {r['labctl_over_curve']:.1f}x; traced peak MB per round: "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["peak_mb"].items()) + f"); center throughput: {levels}; "
            f"two edges vs one over {len(t['two_edges_rounds'])} rounds of {t['jobs_per_edge']} jobs per edge: "
            f"median {t['two_edges_median']:.2f}x (" + ", ".join(f"{x:.2f}" for x in t["two_edges_rounds"]) + "), "
            f"aim {t['aim_two_edges']}x, {'met' if t['two_edges_met'] else 'NOT met'} "
            f"(load average {t['load_average_before']:.1f} -> {t['load_average_after']:.1f}); peak RSS: largest "
            f"center process {t['peak_rss_mb']['center_largest_process_mb']:.0f} MB, edges' process "
            f"{t['peak_rss_mb']['edges_process_mb']:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    if parser.parse_args(argv).measure:
        return print_measured(measure)
    results = run()
    print(report(results))
    print(f"wrote {save(results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
