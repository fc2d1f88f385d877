"""The data plane in simulation over loopback: edges launch their own light over their own links into one
center process, which detects it (docs/network.md, "Data plane in simulation")."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

import labctl
from labctl.bench import SYSTEM_BENCH_PATH
from labctl.network.errors import AdmissionRefused
from labctl.network.messages import ArraySpec, Hello, Light, encode
from labctl.opu.precision import error_stats
from tests.network.conftest import CenterProcess
from tests.network.test_center import RawEdge, _job
from tests.shared_files import ring_core_calibration_folder

EDGE_BENCHES = {1: SYSTEM_BENCH_PATH.with_name("edge_metro.yaml"), 2: SYSTEM_BENCH_PATH.with_name("edge_metro_core2.yaml"),
                3: SYSTEM_BENCH_PATH.with_name("edge_metro_core3.yaml")}
TIMEOUT_S = 60.0
SIZE = 64  # 64 x 64 operands: 4096 outputs, so a sigma is known to ~1 % (1 / sqrt(2 x 4096))
#: the fibre's loss (sim_backends/benches/ring_core.yaml, G.652.D)
DB_PER_KM = 0.2


def _operands(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (SIZE, SIZE)), rng.uniform(-1, 1, (SIZE, SIZE))


@pytest.fixture(scope="module")
def center(keys, tmp_path_factory):
    """The built-in center (named explicitly), two calibrated cores, in its own process."""
    folder = ring_core_calibration_folder(tmp_path_factory, cores=2)
    process = CenterProcess(keys, folder, tmp_path_factory.mktemp("center") / "center.log",
                            args=("--bench", str(SYSTEM_BENCH_PATH), "--cores", "2"))
    yield process
    process.kill()


def assert_edge_is_centers_core(center_path, edge_path, core: int) -> tuple[dict, dict]:
    """Every part of the edge bench is core ``core``'s part of the center bench (the edge's own power
    analyzer apart), and its link ends at the DCF's output, the center's input port; returns both files."""
    center = yaml.safe_load(center_path.read_text())
    edge = yaml.safe_load(edge_path.read_text())
    for section in ("instruments", "components", "safety"):
        assert edge[section], section
        for name, spec in edge[section].items():
            if section == "instruments" and spec["role"] == "power_analyzer":
                assert name not in center[section]   # the edge's own meter on its own mains
                continue
            assert center[section][name] == spec, (section, name)
    assert set(edge["connections"]) <= set(center["connections"])
    assert edge["opu"]["cores"] == [center["opu"]["cores"][core - 1]]
    ends = {link.split(" -> ")[0].split(".")[0] for link in edge["connections"]}
    assert f"dcf{core}" not in ends  # the link ends at the DCF's output: the center's input port
    return center, edge


@pytest.mark.parametrize("core", [1, 2, 3])
def test_edge_benches_are_the_centers_reference_transmitters(core):
    """Every part of an edge bench is core n's part of the built-in center, so the edge fits its calibration."""
    assert_edge_is_centers_core(SYSTEM_BENCH_PATH, EDGE_BENCHES[core], core)


def test_reference_edge_over_the_data_plane_matches_the_local_path(center, keys):
    """Same center, same core, same operands: the edge's own light gives the statistics of the center's own
    input chain, to within the noise of the estimates."""
    a, b = _operands()
    stats = {}
    for mode, bench in (("local", None), ("edge", EDGE_BENCHES[1])):
        with labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=TIMEOUT_S,
                            edge_bench=bench, edge_seed=7) as remote:
            assert remote.cores[0].name == "occ1"
            y = remote.matmul(a, b, scale_a=1.0, scale_b=1.0)
            stats[mode] = (error_stats(y, a @ b), remote.last_stats.get("edge_light_db"))
    (local, none), (edge, light_db) = stats["local"], stats["edge"]
    assert none is None and abs(light_db) < 0.01  # the same link as the center's own: the same power
    n = local.n
    # the bias is a mean of n errors (std sigma / sqrt(n)); sigma is known to 1 / sqrt(2 n) relative
    assert abs(edge.bias - local.bias) < 5 * math.sqrt(2) * local.sigma / math.sqrt(n)
    assert abs(edge.bits_range - local.bits_range) < 5 * math.sqrt(2) * math.log2(math.e) / math.sqrt(2 * n)
    assert local.bits_range > 8  # a working core, not two equally broken paths


def test_an_edge_bench_is_admitted_to_its_own_core_whatever_the_order(center, keys):
    """An edge's transmitter fits only the core calibrated with it: the edge asks for that core by name, so an
    edge of core 2 connecting first gets occ2, not the first free core; a core the center does not serve is
    refused before any light is sent."""
    with labctl.connect(center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0], timeout_s=TIMEOUT_S,
                        edge_bench=EDGE_BENCHES[2]) as second:
        assert [c.name for c in second.cores] == ["occ2"]
        with labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0],
                            timeout_s=TIMEOUT_S, edge_bench=EDGE_BENCHES[1]) as first:
            assert [c.name for c in first.cores] == ["occ1"]
    with pytest.raises(AdmissionRefused) as refused:   # this center serves two cores
        labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=TIMEOUT_S,
                       edge_bench=EDGE_BENCHES[3])
    assert refused.value.code == "no_such_core" and "occ1, occ2" in str(refused.value)
    with pytest.raises(ValueError, match="distinct"):
        Hello(cores=2, core_names=["occ1", "occ1"])


EDGE_SCRIPT = textwrap.dedent("""
    import json, pathlib, sys, time
    import numpy as np
    import labctl
    from labctl.opu.precision import error_stats
    endpoint, key, center_key, bench, fibre, km, go, out = sys.argv[1:]
    with labctl.connect(endpoint, key=key, center_key=center_key, timeout_s=120, edge_bench=bench, edge_seed=3,
                        edge_changes={fibre: float(km)}) as remote:
        print("admitted", remote.cores[0].name, flush=True)
        while not pathlib.Path(go).exists():
            time.sleep(0.05)
        rng = np.random.default_rng(0)
        a, b = rng.uniform(-1, 1, (64, 64)), rng.uniform(-1, 1, (64, 64))
        y = remote.matmul(a, b, scale_a=1.0, scale_b=1.0)
        s = error_stats(y, a @ b)
        pathlib.Path(out).write_text(json.dumps({"core": remote.last_stats["core"], "bits": s.bits_range,
                                                 "light_db": remote.last_stats["edge_light_db"]}))
""")


def test_two_edges_of_different_reach_share_one_center(center, keys, tmp_path):
    """Two edge processes, 2 km and 50 km (no amplifier), each with its own transmitter and link, compute at
    once on one center process: the far edge's light arrives 0.2 dB/km x 48 km weaker, and it gets fewer
    effective bits, by no more than the received power allows."""
    script = tmp_path / "edge.py"
    script.write_text(EDGE_SCRIPT)
    go = tmp_path / "go"
    edges = {"near": (1, "edge1", 2.0), "far": (2, "edge2", 50.0)}
    processes = {}
    try:
        for name, (core, key, km) in edges.items():  # in turn: the first admitted gets occ1, the second occ2
            processes[name] = subprocess.Popen(
                [sys.executable, str(script), center.endpoint, str(keys[key][1]), str(keys["center"][0]),
                 str(EDGE_BENCHES[core]), f"edge_fibre{core}.length_km", str(km), str(go), str(tmp_path / name)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            line = processes[name].stdout.readline()
            assert line.strip() == f"admitted occ{core}", line + processes[name].stdout.read()
        go.touch()
        for name, process in processes.items():
            assert process.wait(300) == 0, process.stdout.read()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    near, far = (json.loads((tmp_path / name).read_text()) for name in edges)
    assert (near["core"], far["core"]) == ("occ1", "occ2")
    extra_db = DB_PER_KM * (50.0 - 2.0)
    # the center's input monitor: a mean over 64 x 64 x 16 slots of RIN ~1e-3 and DAC noise: << 0.01 dB
    assert abs(near["light_db"]) < 0.01
    assert abs(far["light_db"] + extra_db) < 0.01
    # square-law detection: the photocurrent falls as the power, so noise independent of the light (thermal,
    # ADC) costs 2 x 9.6 dB of SNR (3.19 bits) and noise proportional to it (RIN, DAC) none: the drop lies
    # between; measurably above 0 (the bits estimate is known to ~0.02) and not beyond the bound
    drop = near["bits"] - far["bits"]
    bound = 2 * extra_db / (20 * math.log10(2))
    assert 0.5 < drop < bound + 0.1, (near, far)


def test_malformed_light_is_refused_and_the_center_keeps_serving(center, keys):
    """Light that does not fit its drive, negative, NaN or float64 light, light for no waiting program: error
    replies; the job whose light was refused fails (job_failed); the center serves on."""
    raw = RawEdge(center, keys, "edge2")
    try:
        assert raw.ask(encode(Hello(cores=1, edge="raw")))["kind"] == "admit"
        a, b = np.ones((2, 16)), np.ones((16, 16))
        good, idle = np.zeros((1, 2, 16), dtype=np.float32), np.zeros(16, dtype=np.float32)

        def light(job, arrays):
            return encode(Light(job=job, program=0, light=ArraySpec.of(arrays[0]), idle=ArraySpec.of(arrays[1])),
                          arrays)

        assert raw.ask(light("nobody", [good, idle]))["code"] == "not_waiting"
        wide = encode(Light(job="wide", program=0, light=ArraySpec.of(good), idle=ArraySpec.of(idle)), [good, idle])
        wide[0] = wide[0].replace(b'"float32"', b'"float64"', 1)
        wide[1] = good.astype("<f8").tobytes()
        for job, frames, code in (("shape", light("shape", [np.zeros((1, 3, 16), np.float32), idle]), "light"),
                                  ("negative", light("negative", [good - np.float32(1e-3), idle]), "light"),
                                  ("nan", light("nan", [good + np.float32("nan"), idle]), "not_finite"),
                                  ("wide", wide, "schema")):
            drive = raw.ask(_job(job, a, b, edge_light=True))
            assert drive["kind"] == "drive" and drive["job"] == job and drive["codes"]["shape"] == [1, 2, 16]
            replies = [raw.ask(frames)]
            while replies[-1].get("code") != "job_failed":
                assert raw.socket.poll(TIMEOUT_S * 1000), replies
                replies.append(json.loads(raw.socket.recv_multipart()[0]))
            assert replies[0]["code"] == code and replies[0]["job"] == job, replies
    finally:
        raw.close()
    with labctl.connect(center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0], timeout_s=TIMEOUT_S) as edge:
        assert edge.matmul(np.ones((2, 16)), np.ones((16, 3))).shape == (2, 3)
    assert center.process.poll() is None


def test_edge_reach_runs_each_reach_as_its_own_edge(tmp_path):
    """edge_reach's data_plane mode: one center calibration, one edge per reach; the received power falls by the
    added link loss and the bits with it; the table and plots are written."""
    from experiments.edge_reach import EdgeReach
    from labctl.runner import run_experiment
    from labctl.store import read_results

    result = run_experiment(EdgeReach, bench_path=SYSTEM_BENCH_PATH, seed=3, out=tmp_path, show_progress=False,
                            overrides={"reaches_km": [2, 50], "modes": ["data_plane"], "models": []})
    res = read_results(result.results_path)
    assert res["attrs"]["status"] == "complete"
    assert [m.decode() for m in res["points.mode"]] == ["data_plane"] * 2
    assert [s.decode() for s in res["points.status"]] == ["ok"] * 2
    rx, bits, loss = res["points.received_dbm"], res["points.bits_range"], res["points.link_loss_db"]
    # the DCF is matched to each reach, so its extra length adds its loss too: the monitor sees all of it
    assert rx[0] - rx[1] == pytest.approx(loss[1] - loss[0], abs=0.01)
    assert bits[1] < bits[0] - 1.0
    assert res["points.calibration_seconds"][0] == res["points.calibration_seconds"][1]  # one calibration
    assert (tmp_path / "reach_table.md").read_text().count("\n| data_plane") == 2
    assert (tmp_path / "reach_bits.png").stat().st_size > 0
