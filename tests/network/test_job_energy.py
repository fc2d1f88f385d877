"""Energy per job from the center to each edge: the center meters every job (its core's instruments over the
job's window, and the projection of its ops), returns it with the result, and each RemoteOPU keeps a ledger
of its jobs' energy that adds up to what the center reported."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

import labctl
from experiments.edge_load import meter_each_core
from labctl.bench import SYSTEM_BENCH_PATH
from labctl.energy import EnergyLedger, EnergyReport
from labctl.energy.projected import bench_projection
from labctl.network import ProtocolError, connect, load_secret
from labctl.network.center import Center
from labctl.network.metering import CoreMetering
from labctl.network.messages import ArraySpec, EnergyTerm, JobEnergy, Result, decode, encode
from labctl.opu import open_opu
from tests.shared_files import ring_core_calibration_folder

from .conftest import SEED


@pytest.fixture(scope="module")
def center(keys, tmp_path_factory):
    """A Center in a thread of this process serving occ1 and occ2 of the built-in center, metered per core."""
    folder = ring_core_calibration_folder(tmp_path_factory, cores=2)
    path = meter_each_core(SYSTEM_BENCH_PATH, tmp_path_factory.mktemp("bench") / "center_bench.yaml")
    with labctl.open_bench(path, mode="sim", seed=SEED) as bench:
        engines = [open_opu(bench, folder, core=k) for k in (0, 1)]
        served = Center(engines, bind="tcp://127.0.0.1:*", keys=load_secret(keys["center"][1]),
                        allow_dir=keys["allow"])
        stop = threading.Event()
        thread = threading.Thread(target=served.serve, args=(stop.is_set,), daemon=True)
        thread.start()
        yield served, bench
        stop.set()
        thread.join(60)
        served.close()


def _edge(center, keys, name: str):
    return connect(center.endpoint, key=keys[name][1], center_key=keys["center"][0], edge=name, timeout_s=60)


def test_each_edge_gets_its_jobs_energy_and_a_ledger_that_adds_up(center, keys, tmp_path):
    served, bench = center
    projection = bench_projection(bench)
    rng = np.random.default_rng(5)
    jobs = {"edge1": [(rng.standard_normal((8, 288)), rng.standard_normal((288, 32))) for _ in range(3)],
            "edge2": [(rng.standard_normal((16, 64)), rng.standard_normal((64, 16))) for _ in range(2)]}
    reported: dict[str, list] = {name: [] for name in jobs}
    ledgers: dict[str, EnergyLedger] = {}
    failures = []

    def run(name: str) -> None:
        try:
            with _edge(served, keys, name) as remote:
                for a, b in jobs[name]:
                    remote.matmul(a, b)
                    reported[name].append((remote.last_energy, remote.last_stats))
                ledgers[name] = remote.energy
        except Exception as exc:  # reported below with the edge's name
            failures.append(f"{name}: {exc!r}")

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    for name, results in reported.items():
        core = results[0][1]["core"]
        ledger = ledgers[name]
        for energy, stats in results:
            assert isinstance(energy, JobEnergy) and stats["core"] == core
            assert energy.bench_j > 0 and energy.end_s >= energy.start_s
            assert f"core {core}'s instruments" in energy.attribution
            lasers = ", ".join(f"laser{core[-1]}_{i}" for i in range(1, 5))
            assert {t.device for t in energy.terms} == {f"wt_{core} feed ({core}, {lasers})", f"wt_{core}"}
            assert energy.projected_j == pytest.approx(
                2 * stats["optical_macs"] * projection.total_w / projection.peak_ops_per_s, rel=1e-12)
        bench_view, projected = ledger.summary("bench"), ledger.summary("projected")
        assert bench_view.energy_j == pytest.approx(sum(e.bench_j for e, _ in results), rel=1e-9)
        assert projected.energy_j == pytest.approx(sum(e.projected_j for e, _ in results), rel=1e-9)
        assert ledger.ops == 2 * sum(s["optical_macs"] for _, s in results)
        # the window is the sum of the jobs' windows on the center's clock, laid end to end
        assert bench_view.time_s == pytest.approx(sum(e.end_s - e.start_s for e, _ in results), rel=1e-9)
        assert {t.provenance.__class__.__name__ for t in ledger.terms("bench")} == {"Measured", "Model"}
        assert all(core in t.device for t in ledger.terms("bench"))  # only its own core's instruments
        report = EnergyReport.from_ledger(ledger).to_text()  # `labctl energy report` reads it like a run's
        assert f"measured: wt_{core} (yokogawa.WT310E)" in report and "center projection" in report
        ledger.save(tmp_path / f"{name}.energy.json")
        again = EnergyLedger.load(tmp_path / f"{name}.energy.json")
        assert again.summary("bench").energy_j == pytest.approx(bench_view.energy_j, rel=1e-12)
    assert reported["edge1"][0][1]["core"] != reported["edge2"][0][1]["core"]


def _result(energy: dict) -> list[bytes]:
    product = np.zeros((2, 2))
    header = json.loads(encode(Result(job="j1", product=ArraySpec.of(product), stats={}), [product])[0])
    return [json.dumps({**header, "energy": energy}).encode(), product.tobytes()]


def test_a_result_carries_its_energy_and_bad_figures_are_refused():
    header, _ = decode(_result({"bench_j": 0.5, "start_s": 1.0, "end_s": 1.5, "projected_j": 1e-6,
                                "notes": ["bench: a note"]}))
    assert header.energy.bench_j == 0.5 and header.energy.notes == ["bench: a note"]
    assert decode(_result({}))[0].energy.bench_j is None  # a center that cannot say leaves the figures out
    for bad in ({"bench_j": -1.0}, {"bench_j": math.nan}, {"projected_j": math.inf}, {"bench_j": 1, "x": 2},
                {"terms": [{"device": "occ1", "power_w": 1.0, "start_s": 0, "end_s": 1, "provenance": {}},
                           ] * 33}):
        with pytest.raises(ProtocolError) as err:
            decode(_result(bad))
        assert err.value.code == "schema"


class _Exact:
    """A stand-in core (no bench): NumPy's product."""

    name, calibrated = "exact", True

    def __init__(self):
        self.last_stats = {}

    def matmul(self, a, b, **_):
        self.last_stats = {"macs": a.shape[0] * a.shape[1] * b.shape[1], "optical_macs": 0}
        return np.matmul(a, b)


def test_an_energy_the_edge_cannot_record_leaves_the_product_and_a_note(keys, monkeypatch):
    """A term whose provenance is of no known kind: the product still arrives; the edge's ledger says why the
    job's energy is missing."""
    bad = JobEnergy(bench_j=1.0, start_s=0.0, end_s=1.0, terms=[EnergyTerm(
        device="occ1", power_w=1.0, start_s=0.0, end_s=1.0, provenance={"kind": "guess"})])
    monkeypatch.setattr(CoreMetering, "run", lambda self, engine, compute: (compute(), bad))
    served = Center([_Exact()], bind="tcp://127.0.0.1:*", keys=load_secret(keys["center"][1]), allow_dir=keys["allow"])
    stop = threading.Event()
    thread = threading.Thread(target=served.serve, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        with _edge(served, keys, "edge1") as remote:
            a, b = np.eye(2), np.arange(4.0).reshape(2, 2)
            assert np.array_equal(remote.matmul(a, b), b) and remote.last_energy == bad
            assert not remote.energy.terms("bench")
            assert any("its energy at the center was not recorded" in n for n in remote.energy.notes("bench"))
    finally:
        stop.set()
        thread.join(60)
        served.close()
