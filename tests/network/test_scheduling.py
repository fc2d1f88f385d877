"""Scheduling inside the center (in-process, over loopback): jobs of different edges alternate, and a long
product does not make its edge think the center died (heartbeats are answered meanwhile)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import labctl
from labctl.errors import LabctlError
from labctl.network import AdmissionRefused, KeyFileError, NetworkSettingError, load_secret
from labctl.network.center import Center
from labctl.network.messages import Hello, decode, encode
from labctl.opu import STATS_KEYS

from .test_center import RawEdge, _job


class InFlight:
    """Products under way on the cores of one center, and the most ever under way at once."""

    def __init__(self):
        self.lock, self.now, self.most = threading.Lock(), 0, 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


class SlowExactEngine:
    """A stand-in core: NumPy's product after ``delay_s``, appending the first element of ``a`` (which each
    test makes distinct per job) to ``order``; ``in_flight``, shared by the cores of one center, counts the
    products under way."""

    calibrated = True

    def __init__(self, name: str, delay_s: float, order: list[float], in_flight: InFlight | None = None):
        self.name, self.delay_s, self.order = name, delay_s, order
        self.in_flight = in_flight if in_flight is not None else InFlight()
        self.last_stats: dict = {}

    def matmul(self, a, b, *, return_error=False, scale_a=None, scale_b=None):
        with self.in_flight:
            time.sleep(self.delay_s)
        self.order.append(float(a.flat[0]))
        out = np.matmul(a, b)
        self.last_stats = dict.fromkeys(STATS_KEYS, 0) | {"macs": a.shape[0] * a.shape[1] * b.shape[1],
                                                           "wall_s": self.delay_s, "calibrated": True}
        return (out, np.zeros_like(out)) if return_error else out


@pytest.fixture
def serve(keys):
    """``serve(engines, **options)``: a Center in a thread of this process; stopped after the test."""
    running = []

    def start(engines, **options) -> Center:
        center = Center(engines, bind="tcp://127.0.0.1:*", keys=load_secret(keys["center"][1]),
                        allow_dir=keys["allow"], **options)
        stop = threading.Event()
        thread = threading.Thread(target=center.serve, args=(stop.is_set,), daemon=True)
        thread.start()
        running.append((center, stop, thread))
        return center

    yield start
    for center, stop, thread in running:
        stop.set()
        thread.join(30)
        center.close()


def test_cores_compute_in_parallel_and_an_edges_jobs_take_its_cores_in_turn(serve, keys):
    in_flight = InFlight()
    engines = [SlowExactEngine(f"slow{k}", 0.4, [], in_flight) for k in (1, 2, 3)]
    center = serve(engines, heartbeat_s=0.1, timeout_s=10)
    edges = [RawEdge(center, keys, "edge1"), RawEdge(center, keys, "edge2")]
    try:
        admitted = [raw.ask(encode(Hello(cores=cores))) for raw, cores in zip(edges, (2, 1))]
        assert [[c["name"] for c in reply["cores"]] for reply in admitted] == [["slow1", "slow2"], ["slow3"]]
        b = np.ones((16, 2))
        for index, (raw, jobs) in enumerate(zip(edges, (4, 2))):
            for k in range(1, jobs + 1):
                raw.socket.send_multipart(_job(f"e{index}-{k}", np.full((1, 16), 10.0 * index + k), b))
        cores_used = {}
        for index, (raw, jobs) in enumerate(zip(edges, (4, 2))):
            for _ in range(jobs):  # a job may finish before an earlier one that runs on another core
                assert raw.socket.poll(20_000), "a job was not answered"
                header, (product,) = decode(raw.socket.recv_multipart())
                assert header.kind == "result" and header.job.startswith(f"e{index}-")
                assert np.all(product == 16 * (10.0 * index + int(header.job.split("-")[1])))
                cores_used[header.job] = header.stats["core"]
    finally:
        for raw in edges:
            raw.close()
    # edge1's first jobs take its two cores in turn, the next ones whichever is free first (so each runs two);
    # edge2's run on its own core at the same time
    assert engines[0].order[0] == 1 and engines[1].order[0] == 2 and engines[2].order == [11, 12]
    assert sorted(engines[0].order + engines[1].order) == [1, 2, 3, 4] and len(engines[0].order) == 2
    assert {job: cores_used[job] for job in ("e0-1", "e0-2", "e1-1", "e1-2")} == {
        "e0-1": "slow1", "e0-2": "slow2", "e1-1": "slow3", "e1-2": "slow3"}
    assert in_flight.most == 3  # the three cores computed at the same time, not one after another


def test_a_long_product_keeps_its_edge_connected(serve, keys):
    center = serve([SlowExactEngine("slow1", 2.5, [])], heartbeat_s=0.2, timeout_s=1.0)
    with labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=30) as remote:
        a, b = np.arange(32.0).reshape(2, 16), np.ones((16, 3))
        assert np.array_equal(remote.matmul(a, b), a @ b)
        assert remote.reconnects == 0 and remote.last_stats["resubmits"] == 0
        assert remote.last_stats["center_wall_s"] == 2.5 and remote.last_stats["wall_s"] >= 2.5


def test_bad_center_settings_are_clear_errors(keys, tmp_path):
    secret = load_secret(keys["center"][1])
    engine = SlowExactEngine("slow1", 0.0, [])
    with pytest.raises(KeyFileError, match="allow folder .* does not exist"):
        Center([engine], bind="tcp://127.0.0.1:*", keys=secret, allow_dir=tmp_path / "missing")
    with pytest.raises(NetworkSettingError, match="heartbeat_s < timeout_s"):
        Center([engine], bind="tcp://127.0.0.1:*", keys=secret, allow_dir=keys["allow"], heartbeat_s=5, timeout_s=2)
    with pytest.raises(NetworkSettingError, match="at least one optical core"):
        Center([], bind="tcp://127.0.0.1:*", keys=secret, allow_dir=keys["allow"])
    with pytest.raises(LabctlError, match="cannot listen on tcp://256.0.0.1:1"):
        Center([engine], bind="tcp://256.0.0.1:1", keys=secret, allow_dir=keys["allow"])


def test_center_serve_refuses_a_public_key_file_before_opening_the_bench(keys):
    done = subprocess.run([sys.executable, "-m", "labctl", "center", "serve", "--sim", "--bind", "tcp://127.0.0.1:*",
                           "--key", str(keys["center"][0]), "--allow", str(keys["allow"])],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "holds no secret key" in done.stderr


def test_threads_sharing_one_remote_opu_take_turns(serve, keys):
    center = serve([SlowExactEngine("slow1", 0.05, [])], heartbeat_s=0.2, timeout_s=5)
    results = {}
    with labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=30) as remote:
        def work(k):
            a = np.full((2, 16), float(k))
            results[k] = [np.array_equal(remote.matmul(a, np.eye(16)), a) for _ in range(5)]

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert remote.discarded == 0 and remote.reconnects == 0
    assert results == {k: [True] * 5 for k in range(4)}


def test_an_idle_edge_keeps_its_core(serve, keys):
    center = serve([SlowExactEngine("slow1", 0.0, [])], heartbeat_s=0.2, timeout_s=1.0)
    with labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=10) as remote:
        time.sleep(2.5)  # idle for over twice the center's timeout
        with pytest.raises(AdmissionRefused) as refused:
            labctl.connect(center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0], timeout_s=0.5)
        assert refused.value.code == "no_free_cores"
        a = np.ones((1, 16))
        assert np.array_equal(remote.matmul(a, np.ones((16, 1))), [[16.0]])
        assert remote.reconnects == 0 and remote.last_stats["resubmits"] == 0 and remote.discarded == 0


def test_an_edge_queueing_too_many_jobs_is_told_and_the_rest_are_answered(serve, keys):
    center = serve([SlowExactEngine("slow1", 0.05, [])], heartbeat_s=0.2, timeout_s=5, max_queue=4)
    raw = RawEdge(center, keys, "edge1")
    try:
        assert raw.ask(encode(Hello(cores=1)))["kind"] == "admit"
        for k in range(10):
            raw.socket.send_multipart(_job(f"j{k}", np.full((1, 16), float(k)), np.ones((16, 1))))
        replies = {}
        for _ in range(10):
            assert raw.socket.poll(20_000), "a job got no reply"
            header = decode(raw.socket.recv_multipart())[0]
            replies[header.job] = header.kind if header.kind == "result" else header.code
    finally:
        raw.close()
    assert sorted(replies) == sorted(f"j{k}" for k in range(10))
    assert set(replies.values()) == {"result", "queue_full"}
    assert list(replies.values()).count("result") >= 4  # the queue's worth, and the one that was running
