"""The edge_load experiment: its own center process, concurrent edges, and the figures it computes from them."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from experiments.edge_load import EdgeLoad, Level
from labctl.energy import EnergyLedger
from labctl.runner import ExperimentError, run_experiment

from .conftest import SEED


def test_two_edges_on_one_core_take_turns(calibration, tmp_path):
    """One core: the second edge is admitted only when the first leaves, so the first finishes alone (Jain 1/2)."""
    settings = {"edges": [1, 2], "jobs_per_edge": 4, "shapes": [[8, 288, 32], [4, 16, 8]], "cores": 1,
                "calibration": str(calibration)}
    result = run_experiment(EdgeLoad, seed=SEED, overrides=settings, out=tmp_path, show_progress=False)
    s = result.summary
    assert s["center_cores"] == 1 and s["jain_1_edges"] == 1.0 and s["jain_2_edges"] == 0.5
    assert s["throughput_jobs_per_s_1_edges"] > 0 and s["throughput_jobs_per_s_2_edges"] > 0
    with h5py.File(result.results_path) as f:
        assert list(f["levels.edges"][()]) == [1, 2] and list(f["levels.jobs"][()]) == [4, 8]
        assert list(f["levels.macs"][()]) == [2 * (8 * 288 * 32 + 4 * 16 * 8), 4 * (8 * 288 * 32 + 4 * 16 * 8)]
        p50, p90, p99 = (f[f"levels.latency_{q}_s"][()] for q in ("p50", "p90", "p99"))
        assert (0 < p50).all() and (p50 <= p90).all() and (p90 <= p99).all()
        # the edge's latency holds the center's computation of the same job
        center_s = f["edges2.center_wall_s"][()]
        assert (center_s > 0).all() and (f["edges2.latency_s"][()] > center_s).all()
        assert (f["levels.edge_cpu_j_per_job"][()] > 0).all()
        # every job's energy at the center: its core's own analyzer feed, and its ops projected
        bench_j, projected_j = f["edges2.bench_j"][()], f["edges2.projected_j"][()]
        assert (bench_j > 0).all() and (projected_j > 0).all()
        assert f["levels.bench_j_per_job"][1] == pytest.approx(bench_j.mean())
        assert f["levels.bench_j_per_job_edge_min"][1] <= bench_j.mean() <= f["levels.bench_j_per_job_edge_max"][1]
        edge, done = f["edges2.edge"][()], f["edges2.done_s"][()]
        admitted = f["edges2.admission_s"][()]
        # the edge admitted second started after the other's last answer
        first, second = np.argsort(admitted)
        assert admitted[second] >= done[edge == first].max() and np.bincount(edge).tolist() == [4, 4]
    for name in ("edge_load.png", "edge_load_table.md", "center.log", "center_bench.yaml"):
        assert (tmp_path / name).stat().st_size > 0
    assert s["bench_j_per_job_2_edges"] > 0 and s["projected_j_per_job_2_edges"] > 0
    assert "own analyzer feed(s) wt_occ1" in s["energy_note"]
    # each edge's ledger of its jobs adds up to the figures recorded per job
    ledgers = json.loads((tmp_path / "edge_energy.json").read_text())["edges2"]
    total = sum(EnergyLedger.from_dict(d).summary("bench").energy_j for d in ledgers.values())
    with h5py.File(result.results_path) as f:
        assert total == pytest.approx(f["edges2.bench_j"][()].sum(), rel=1e-9)
    log = (tmp_path / "center.log").read_text()
    assert "(load2-edge0): cores occ1" in log and "(load2-edge1): cores occ1" in log
    assert "stopped" in log  # the center was shut down at the end of the run
    assert "| 2 | 8 |" in s["table"]


def test_jain_index_counts_jobs_done_when_the_first_edge_finished():
    # edge 0 finishes at t=2 with 2 jobs; edge 1 has 1 job done by then: (3)^2 / (2 * (4 + 1)) = 0.9
    level = Level(edges=2, edge=np.array([0, 0, 1, 1]), latency_s=np.ones(4), center_s=np.ones(4),
                  done_s=np.array([1.0, 2.0, 1.5, 3.0]), admission_s=np.zeros(2), macs=4, cpu_energy_j=1.0,
                  cpu_method="modelled", cpu_note="", bench_j=np.ones(4), projected_j=np.ones(4), energy_note="",
                  ledgers=[{}, {}])
    assert level.jain == pytest.approx(0.9) and level.throughput == pytest.approx(4 / 3.0)


@pytest.mark.parametrize("settings", [{"edges": [0]}, {"edges": [2, 2]}, {"shapes": [[0, 4, 4]]},
                                      {"jobs_per_edge": 0}])
def test_bad_settings_are_refused_before_a_center_starts(tmp_path, settings):
    with pytest.raises((ExperimentError, ValueError)):
        run_experiment(EdgeLoad, overrides=settings, out=tmp_path, show_progress=False)
    assert not (tmp_path / "center.log").exists()
