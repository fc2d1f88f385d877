"""An amplifier in an edge's link over the data plane in simulation: its gain reaches the center with the light and
its ASE with the light message, and the center's detectors see that ASE as they see their own pre-amplifier's
(docs/network.md, "Data plane in simulation")."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import labctl
from labctl.bench import SYSTEM_BENCH_PATH
from labctl.network.edge import EdgeTransmitter
from labctl.network.messages import ArraySpec, Hello, Light, decode, encode
from labctl.opu.precision import error_stats
from tests.network.conftest import CenterProcess
from tests.network.test_center import RawEdge, _job
from tests.network.test_data_plane import assert_edge_is_centers_core
from sim_backends.instruments.labctl_occ import Drive
from tests.shared_files import shared_file

AMPLIFIED_CENTER = SYSTEM_BENCH_PATH.with_name("ring_core_amplified.yaml")
AMPLIFIED_EDGE = SYSTEM_BENCH_PATH.with_name("edge_metro_amplified.yaml")
EDGE = SYSTEM_BENCH_PATH.with_name("edge_metro.yaml")
TIMEOUT_S = 60.0
SIZE = 64  # 64 x 64 operands: 4096 outputs, so a sigma is known to ~1 % (1 / sqrt(2 x 4096))
#: the 50 km link of core 1 with its DCF matched (edge_reach's choice) and the pre-amplifier's gain = its loss:
#: 50 + 10 km at 0.2 dB/km and 2.04 + 48 x 17 / 100 km of DCF at 0.5 dB/km
DCF_50_KM = 2.04 + 48 * 17 / 100
LOSS_50_KM_DB = 60 * 0.2 + DCF_50_KM * 0.5
REACH_50_KM = {"edge_fibre1.length_km": 50.0, "dcf1.length_km": DCF_50_KM}


def _operands(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (SIZE, SIZE)), rng.uniform(-1, 1, (SIZE, SIZE))


@pytest.fixture(scope="module")
def amplified_center(keys, tmp_path_factory):
    """The amplified center (ring_core_amplified.yaml), core occ1 calibrated with its own amplified chain (bench
    seed 1), in its own process."""

    def make(path):
        from labctl.opu.stationary import calibration as stationary_calibration

        with labctl.open_bench(AMPLIFIED_CENTER, seed=1) as bench:
            stationary_calibration.calibrate(bench, path, core=0)

    folder = tmp_path_factory.mktemp("amplified_calibration")
    (folder / "occ1.json").write_bytes(shared_file(tmp_path_factory, "ring_core_amplified_occ1_seed1.json",
                                                   make).read_bytes())
    process = CenterProcess(keys, folder, tmp_path_factory.mktemp("center") / "center.log",
                            args=("--bench", str(AMPLIFIED_CENTER)))
    yield process
    process.kill()


def test_amplified_edge_bench_is_the_amplified_centers_reference_transmitter():
    """Every part of the amplified edge bench, its pre-amplifier included, is core 1's of the amplified center."""
    _, edge = assert_edge_is_centers_core(AMPLIFIED_CENTER, AMPLIFIED_EDGE, 1)
    assert edge["components"]["preamp1"]["type"] == "edfa"
    assert {"metro_fibre1.out -> preamp1.in", "preamp1.out -> dcf1.in"} <= set(edge["connections"])


def test_amplified_reference_edge_matches_the_centers_own_amplified_chain(amplified_center, keys):
    """Same center, same core, same operands: the amplified edge's light and ASE give the statistics of the
    center's own amplified chain, to within the noise of the estimates; the received power is the same."""
    a, b = _operands()
    stats = {}
    for mode, bench in (("local", None), ("edge", AMPLIFIED_EDGE)):
        with labctl.connect(amplified_center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0],
                            timeout_s=TIMEOUT_S, edge_bench=bench, edge_seed=7) as remote:
            y = remote.matmul(a, b, scale_a=1.0, scale_b=1.0)
            stats[mode] = (error_stats(y, a @ b), remote.last_stats.get("edge_light_db"))
    (local, _), (edge, light_db) = stats["local"], stats["edge"]
    assert abs(light_db) < 0.01  # the same link and amplifier as the center's own: the same power
    n = local.n
    assert abs(edge.bias - local.bias) < 5 * math.sqrt(2) * local.sigma / math.sqrt(n)
    assert abs(edge.bits_range - local.bits_range) < 5 * math.sqrt(2) * math.log2(math.e) / math.sqrt(2 * n)
    assert local.bits_range > 8


def test_at_50_km_an_amplified_edge_gets_more_bits_than_an_unamplified_one(amplified_center, keys):
    """Through the same center, a 50 km edge with its pre-amplifier's gain at the link's loss arrives at about the
    power the center was calibrated for; without it the light is 17 dB weaker, and far fewer bits are left."""
    a, b = _operands(1)
    found = {}
    for name, bench, changes in (("amplified", AMPLIFIED_EDGE, {**REACH_50_KM, "preamp1.gain_db": LOSS_50_KM_DB}),
                                 ("unamplified", EDGE, REACH_50_KM)):
        with labctl.connect(amplified_center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0],
                            timeout_s=TIMEOUT_S, edge_bench=bench, edge_seed=5, edge_changes=changes) as remote:
            y = remote.matmul(a, b, scale_a=1.0, scale_b=1.0)
            found[name] = (error_stats(y, a @ b).bits_range, remote.last_stats["edge_light_db"])
    (amp_bits, amp_db), (plain_bits, plain_db) = found["amplified"], found["unamplified"]
    # the amplifier restores the mux's power but for its saturation (+23 dBm): its gain compresses more than at
    # the reference reach, since the 4.1 dB of extra DCF its gain makes up for lie after it, so it sees more light
    assert -1.0 < amp_db < 0.0
    # unamplified: the link's loss plus the reference's pre-amplifier gain are missing, ~ -17 dB
    assert plain_db == pytest.approx(-LOSS_50_KM_DB, abs=1.0)
    assert amp_bits > plain_bits + 2.0, found


def _ask_job(raw: RawEdge, job: str, light: list[np.ndarray], ase: np.ndarray | None) -> list:
    """Send job ``job``, answer its drive with ``light`` (and ``ase``), return the replies up to its end."""
    a, b = np.ones((2, 16)), np.ones((16, 16))
    drive = raw.ask(_job(job, a, b, edge_light=True))
    assert drive["kind"] == "drive" and drive["codes"]["shape"] == [1, 2, 16], drive
    arrays = light + ([ase] if ase is not None else [])
    frames = encode(Light(job=job, program=0, light=ArraySpec.of(light[0]), idle=ArraySpec.of(light[1]),
                          ase=ArraySpec.of(ase) if ase is not None else None), arrays)
    raw.socket.send_multipart(frames)
    replies = []
    while not replies or not (replies[-1][0].kind == "result" or getattr(replies[-1][0], "code", "") == "job_failed"):
        assert raw.socket.poll(TIMEOUT_S * 1000), replies
        replies.append(decode(raw.socket.recv_multipart()))
    return replies


def test_ase_is_carried_and_bad_ase_is_refused_while_the_center_serves_on(amplified_center, keys):
    """ASE sent with a program's light reaches the center's detectors (the same dark light with and without
    100 uW of ASE decodes differently); negative, NaN, out-of-band or absurd ASE gets an error reply, fails only
    its job, and the center serves on."""
    with EdgeTransmitter(AMPLIFIED_EDGE, seed=0) as edge:  # the ASE's spectral slices as the edge's amplifier emits
        _, _, ase = edge.launch(np.zeros((1, 2, 16)), Drive(0.25e9, 0.9, 0, (0.0,) * 16, 2e8, 1.0))
    assert ase.shape == (16, 2) and np.all(ase[:, 1] > 0)
    dark = [np.zeros((1, 2, 16), np.float32), np.zeros(16, np.float32)]
    strong = np.stack([ase[:, 0], np.full(len(ase), 100e-6 / len(ase))], axis=1)
    raw = RawEdge(amplified_center, keys, "edge2")
    try:
        assert raw.ask(encode(Hello(cores=1, edge="raw")))["kind"] == "admit"
        products = {}
        for job, carried in (("dark", None), ("ase", strong)):
            header, arrays = _ask_job(raw, job, dark, carried)[-1]
            assert header.kind == "result", header
            products[job] = arrays[0]
        assert np.mean(products["ase"]) != pytest.approx(np.mean(products["dark"]), abs=1e-3)
        bad = {"negative": (strong * [1, -1], "light"), "band": (strong * [10, 1], "light"),
               "absurd": (strong * [1, 1e6], "light"), "nan": (strong * [1, np.nan], "not_finite")}
        for job, (carried, code) in bad.items():
            replies = _ask_job(raw, job, dark, carried)
            assert replies[0][0].kind == "error" and replies[0][0].code == code and replies[0][0].job == job, replies
            assert replies[-1][0].code == "job_failed"
        wide = encode(Light(job="x", program=0, light=ArraySpec.of(dark[0]), idle=ArraySpec.of(dark[1]),
                            ase=ArraySpec.of(strong)), [*dark, strong])
        wide[0] = json.dumps({**json.loads(wide[0]), "ase": {"dtype": "float64", "shape": [16, 3], "nbytes": 384}})
        assert raw.ask([wide[0].encode(), wide[1], wide[2], bytes(384)])["code"] == "schema"
    finally:
        raw.close()
    with labctl.connect(amplified_center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0],
                        timeout_s=TIMEOUT_S) as edge:
        assert edge.matmul(np.ones((2, 16)), np.ones((16, 3))).shape == (2, 3)
    assert amplified_center.process.poll() is None


def test_edge_reach_runs_amplified_edges_into_one_amplified_center(tmp_path):
    """edge_reach's data_plane_amplified mode: one calibration of the amplified center, one amplified edge per
    reach with its gain at the link's loss; the received power stays within a dB of the reference reach's, and at
    50 km the amplified edge keeps more bits than the unamplified one of mode data_plane."""
    from experiments.edge_reach import EdgeReach
    from labctl.runner import run_experiment
    from labctl.store import read_results

    result = run_experiment(EdgeReach, bench_path=SYSTEM_BENCH_PATH, seed=3, out=tmp_path, show_progress=False,
                            overrides={"reaches_km": [2, 50], "modes": ["data_plane", "data_plane_amplified"],
                                       "models": []})
    res = read_results(result.results_path)
    assert res["attrs"]["status"] == "complete"
    assert [m.decode() for m in res["points.mode"]] == ["data_plane"] * 2 + ["data_plane_amplified"] * 2
    assert [s.decode() for s in res["points.status"]] == ["ok"] * 4
    changes = [json.loads(c.decode()) for c in res["points.changes"]]
    loss, gain = res["points.link_loss_db"], res["points.gain_db"]
    assert "preamp1.gain_db" not in changes[1] and changes[3]["preamp1.gain_db"] == pytest.approx(loss[3])
    assert list(gain[2:]) == pytest.approx(list(loss[2:]))
    rx, bits = res["points.received_dbm"], res["points.bits_range"]
    assert rx[3] == pytest.approx(rx[2], abs=1.0) and rx[3] > rx[1] + 10.0
    assert bits[3] > bits[1] + 2.0
    seconds = res["points.calibration_seconds"]
    assert seconds[2] == seconds[3] and seconds[0] == seconds[1]  # one calibration per center
    assert (tmp_path / "reach_table.md").read_text().count("\n| data_plane_amplified") == 2
