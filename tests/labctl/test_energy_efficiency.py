"""End to end: ``labctl run energy_efficiency --sim`` runs products on the optical computing center's cores,
writes the itemised tables, the sensitivity table and a baseline of the same products measured (or labelled
as modelled) in the same run, and a ledger with the bench, projected and baseline views."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

import labctl
from labctl.cli import main
from labctl.energy import EnergyLedger
from labctl.energy.projected import bench_projection
from labctl.runner import ExperimentError, run_experiment
from labctl.store import read_json_dataset, read_results
from sim_backends import CHARACTERISATION_BENCH_PATH
from tests.shared_files import RING_CORE, ring_core_calibration

ROWS, PRODUCTS = 256, 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cal")
    shutil.copy(ring_core_calibration(tmp_path_factory, 0), folder / "occ1.json")   # made at bench seed 1
    out = tmp_path_factory.mktemp("energy") / "energy.h5"
    return run_experiment("energy_efficiency", out=out, seed=1, show_progress=False,
                          overrides={"repeats": 20, "rows": ROWS, "products": PRODUCTS, "cores": [0],
                                     "calibration": str(folder)})


def test_paper_and_ring_core_figures(run):
    s = run.summary
    assert s["paper_mw_per_tops_peak"] == pytest.approx(118.6, rel=0.10)
    assert s["paper_tops_peak"] == pytest.approx(3.6)
    assert s["ring_core_tops_peak"] == pytest.approx(2 * 16 * 16 * 0.25e9 * 3 * 1e-12)
    assert s["ring_core_mw_per_tops_peak"] > 10 * 118.6
    attrs = read_results(run.results_path)["attrs"]
    assert attrs["result.paper_mw_per_tops"] == pytest.approx(s["paper_mw_per_tops_peak"], abs=0.01)


def test_terms_carry_provenance(run):
    for key in ("paper", "ring_core"):
        terms = read_json_dataset(run.results_path, f"energy_efficiency/{key}/terms")
        assert {t["device"] for t in terms} >= {"laser", "modulators", "ring heaters", "PD/TIA", "DACs", "ADCs"}
        for t in terms:
            assert t["provenance"]["kind"] == "Model" and t["provenance"]["equation"]
        total_fj = sum(t["fj_per_op"] for t in terms)
        assert total_fj == pytest.approx(run.summary[f"{key}_mw_per_tops_peak"], rel=1e-3)


def test_runs_on_the_optical_computing_center_by_default(run):
    snapshot = read_results(run.results_path)["attrs"]["bench_snapshot"]
    assert {"occ1", "occ2", "occ3"} <= set(snapshot["instruments"])   # ring_core.yaml, though no --bench
    workload = read_json_dataset(run.results_path, "energy_efficiency/workload")
    assert workload["cores"] == ["occ1"] and workload["products"] == PRODUCTS
    assert workload["macs"] == PRODUCTS * ROWS * 16 * 16
    assert run.summary["optical_products"] == PRODUCTS


def test_the_ledger_has_all_three_views_of_the_same_products(run):
    ledger = EnergyLedger.load(run.results_path)
    assert ledger.views() == ("bench", "projected", "baseline")
    assert ledger.macs == PRODUCTS * ROWS * 16 * 16          # 16 x 16 core, K = 16: no padding
    bench, projected, baseline = (ledger.summary(v) for v in ("bench", "projected", "baseline"))
    assert bench.energy_j > 0 and bench.j_per_op == pytest.approx(bench.energy_j / ledger.ops)
    # projected: the bench's three cores in integrated form at their peak rate 2 N M f_s x 3, for the ledger's ops
    with labctl.open_bench(RING_CORE, seed=1) as b:
        proj = bench_projection(b)
    assert proj.peak_ops_per_s == pytest.approx(2 * 16 * 16 * 0.25e9 * 3)
    assert projected.energy_j == pytest.approx(proj.total_w * ledger.ops / proj.peak_ops_per_s)
    rows = read_json_dataset(run.results_path, "energy_efficiency/baseline")
    assert len(rows) == 1 and rows[0]["ops"] == 2 * ledger.macs      # one pass over the very same products
    assert baseline.energy_j == pytest.approx(rows[0]["energy_j"])
    attrs = read_results(run.results_path)["attrs"]
    for view, s in (("bench", bench), ("projected", projected), ("baseline", baseline)):
        assert attrs[f"result.energy_{view}_j_per_product"] == pytest.approx(s.energy_j / PRODUCTS)
    assert "per product (2)" in run.summary["energy"]


def test_baseline_measured_or_labelled(run):
    b = read_json_dataset(run.results_path, "energy_efficiency/baseline")[0]
    if b["method"] == "modelled":
        assert "[modelled]" in b["device"] and "no RAPL" in b["why"]
        assert b["provenance"]["kind"] == "Model"
    else:
        assert b["provenance"]["kind"] == "Measured"
    assert b["energy_j"] > 0 and b["mw_per_tops"] > 0
    accel = read_json_dataset(run.results_path, "energy_efficiency/accelerators")
    assert {a["device"] for a in accel} == {"NVIDIA A100 SXM", "NVIDIA H100 SXM"}


def test_markdown_artefact(run):
    md = next(p for p in run.artefacts if p.name == "energy_efficiency.md").read_text()
    for heading in ("Projected integrated view: paper configuration", "Published vs assumed", "Sensitivity",
                    "ring_core.yaml", "What would have to change", "Electronic baseline", "Published accelerators",
                    f"{PRODUCTS} products ({ROWS}x16)@(16x16) on occ1"):
        assert heading in md


def test_the_report_command_prints_the_three_views(run):
    out = CliRunner().invoke(main, ["energy", "report", str(run.results_path)])
    assert out.exit_code == 0, out.output
    for title in ("[bench (instruments on the table)]", "[projected (integrated optoelectronics)]",
                  "[baseline (electronic)]"):
        assert title in out.output
    assert "not recorded in this run" not in out.output


def test_the_experiments_list_names_its_bench():
    out = CliRunner().invoke(main, ["experiments"])
    assert "(with --sim and no --bench: " in out.output and "ring_core.yaml" in out.output


def test_a_bench_without_cores_runs_the_cpu_only(tmp_path):
    result = run_experiment("energy_efficiency", bench_path=CHARACTERISATION_BENCH_PATH, out=tmp_path / "e.h5",
                            show_progress=False, overrides={"repeats": 5, "rows": 64, "products": 1})
    assert result.summary["optical_products"] == 0 and result.summary["optical_cores"] == "none (CPU only)"
    ledger = result.energy
    assert ledger.views() == ("bench",) and ledger.ops == 0
    assert any("no weight-stationary optical cores" in n for n in ledger.notes("bench"))
    assert ledger.notes("projected") and ledger.notes("baseline")       # why those views are missing
    assert read_json_dataset(result.results_path, "energy_efficiency/baseline")[0]["ops"] == 2 * 64 * 16 * 16
    with pytest.raises(ExperimentError, match="no weight-stationary optical cores"):
        run_experiment("energy_efficiency", bench_path=CHARACTERISATION_BENCH_PATH, out=tmp_path / "c.h5",
                       show_progress=False, overrides={"cores": [0]})


def test_unknown_cores_are_refused(tmp_path):
    with pytest.raises(ExperimentError, match=r"3 core\(s\) \(0\.\.2\)"):
        run_experiment("energy_efficiency", out=tmp_path / "e.h5", show_progress=False, overrides={"cores": [5]})
