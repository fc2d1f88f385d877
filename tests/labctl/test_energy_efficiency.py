"""End to end: ``labctl run energy_efficiency --sim`` writes the itemised tables, the sensitivity table and
a baseline measured (or labelled as modelled) in the same run."""

from __future__ import annotations

import pytest

from labctl.runner import run_experiment
from labctl.store import read_json_dataset, read_results


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("energy") / "energy.h5"
    result = run_experiment("energy_efficiency", out=out, seed=0, show_progress=False,
                            overrides={"repeats": 50, "rows": 1024})
    return result


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


def test_baseline_measured_or_labelled(run):
    rows = read_json_dataset(run.results_path, "energy_efficiency/baseline")
    assert len(rows) == 1
    b = rows[0]
    assert b["ops"] == 2 * 1024 * 16 * 16 * 50
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
                    "ring_core.yaml", "What would have to change", "Electronic baseline", "Published accelerators"):
        assert heading in md
