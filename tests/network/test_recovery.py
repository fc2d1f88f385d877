"""Failures over loopback: an edge that vanishes frees its core; a center that dies and comes back is
reconnected to and the job in flight resubmitted, with no result lost or duplicated; SIGTERM is clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import labctl
from labctl.bench import SYSTEM_BENCH_PATH, open_bench
from labctl.network import AdmissionRefused, fingerprint, load_public
from labctl.opu import open_opu

from .conftest import SEED

_EDGE = """
import sys, time, numpy as np, labctl
remote = labctl.connect(sys.argv[1], key=sys.argv[2], center_key=sys.argv[3], timeout_s=30)
remote.matmul(np.ones((2, 16)), np.ones((16, 2)))
print("holding", flush=True)
time.sleep(600)
"""


def test_an_edge_that_disappears_frees_its_core(start_center, keys):
    center = start_center("--heartbeat", "0.2", "--edge-timeout", "1.5")
    args = [center.endpoint, str(keys["edge1"][1]), str(keys["center"][0])]
    edge = subprocess.Popen([sys.executable, "-c", _EDGE, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert edge.stdout.readline().strip() == "holding"
        with pytest.raises(AdmissionRefused) as refused:  # the one core is edge1's
            labctl.connect(center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0], timeout_s=0.5)
        assert refused.value.code == "no_free_cores"
        os.kill(edge.pid, signal.SIGKILL)  # no bye: the center notices the silence
    finally:
        edge.kill()
        edge.wait(30)
    with labctl.connect(center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0], timeout_s=20) as remote:
        assert [core.name for core in remote.cores] == ["occ1"]
        assert remote.matmul(np.ones((1, 16)), np.ones((16, 1))).shape == (1, 1)
    # the core was freed by the center's silence timeout (its log says so), not by anything the edge sent
    edge1 = fingerprint(load_public(keys["edge1"][0]))
    center.wait_for_log(rf"edge {edge1} silent for \d+\.\d s: freed cores occ1, dropped 0 queued job\(s\)")


def test_center_killed_and_restarted_the_edge_reconnects_and_resubmits(start_center, keys, calibration):
    rng = np.random.default_rng(3)
    a1, a2, b = rng.standard_normal((3, 16)), rng.standard_normal((3, 16)), rng.standard_normal((16, 5))
    first = start_center("--heartbeat", "0.2", "--edge-timeout", "1.5")
    remote = labctl.connect(first.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=120)
    try:
        completed = remote.matmul(a1, b)
        kept = completed.copy()
        os.kill(first.process.pid, signal.SIGSTOP)  # the next job reaches a center that never answers it
        results = {}
        worker = threading.Thread(target=lambda: results.update(product=remote.matmul(a2, b)))
        worker.start()
        time.sleep(0.5)
        first.kill()
        second = start_center("--heartbeat", "0.2", "--edge-timeout", "1.5", port=first.port)
        worker.join(120)
        assert not worker.is_alive() and "product" in results
        assert remote.last_stats["resubmits"] >= 1 and remote.discarded == 0
        # the restarted center computed it as its first product: the same as a fresh local engine's
        with open_bench(SYSTEM_BENCH_PATH, mode="sim", seed=SEED) as bench:
            expected = open_opu(bench, calibration, core=0).matmul(a2, b)
        assert np.array_equal(results["product"], expected)
        assert np.array_equal(completed, kept)  # the result completed before the crash is the edge's own
        assert remote.matmul(a1, b).shape == (3, 5)  # and the edge keeps working
    finally:
        remote.close()
    assert "said bye" in second.wait_for_log("said bye").group(0)
    code = second.terminate()
    assert code == 128 + signal.SIGTERM
    log = second.log()
    assert "center on tcp://127.0.0.1:" in log and "stopped" in log and "sources were shut down" in log
