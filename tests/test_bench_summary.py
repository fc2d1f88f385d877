"""``make bench``'s summary: every speed target with its value and verdict, and peaks that grew since the last run."""

import json

import pytest

from benchmarks import summary
from benchmarks.bench_genai import GENERATION_TARGET


def _results(steady=13.0, ddpm=61.0, processes=1.61, like=3.0, full=0.6, edges=2.1):
    return {
        "core": {"over_floor": {"steady": steady, "first": 21.0}, "over_draws": {"steady": 4.6},
                 "targets": {"steady": 2.0, "first": 4.0}, "met": {"steady": steady <= 2.0, "first": False},
                 "peak_mb": {"steady": 78.0, "first": 101.0}},
        "genai": {"models": {"ddpm-digits": {"optical_over_electronic_time": ddpm, "memory": {"peak_rss_mb": 690.0}}},
                  "parallel_speedup": {"processes": processes, "target": 1.6}},
        "waveform": {"speed": {"like_for_like": {"opticommpy_over_labctl": like, "target": ">= 2", "met": like >= 2},
                               "full_chain": {"labctl_full_over_opticommpy_like_for_like": full, "target": "<= 1",
                                              "met": full <= 1},
                               "peak_memory_bytes": {"labctl_full_chain": 42e6}}},
        "network": {"throughput": {"two_edges_median": edges, "aim_two_edges": 1.7, "two_edges_met": edges >= 1.7,
                                   "peak_rss_mb": {"edges_process_mb": 200.0}}},
        "campaign": {"overhead": {"memory": {"peak_rss_mb": 225.0}}},
    }


def _verdicts(rows):
    return {r["measure"]: r["met"] for r in rows}


def test_every_target_is_listed_with_its_verdict():
    rows = summary.targets(_results())
    verdicts = _verdicts(rows)
    assert verdicts["core steady product / noise floor"] is False
    assert verdicts["ddpm-digits optical / electronic time"] is False
    assert verdicts["three models on three core processes / one after another"] is True
    assert verdicts["OptiCommPy / labctl, like-for-like chain"] is True
    assert verdicts["network: two edges / one edge"] is True
    assert {r["target"] for r in rows} >= {"<= 2", "<= 4", f"<= {GENERATION_TARGET:g}", ">= 1.6", ">= 1.7"}


@pytest.mark.parametrize("ddpm, met", [(GENERATION_TARGET, True), (GENERATION_TARGET * 1.01, False)])
def test_generation_verdict_follows_the_ratio_at_the_boundary(ddpm, met):
    assert _verdicts(summary.targets(_results(ddpm=ddpm)))["ddpm-digits optical / electronic time"] is met


def test_a_run_missing_a_benchmark_lists_the_others():
    results = _results()
    del results["genai"], results["waveform"]
    measures = [r["measure"] for r in summary.targets(results)]
    assert "core steady product / noise floor" in measures
    assert not any("electronic time" in m or "OptiCommPy" in m for m in measures)


def test_a_peak_above_the_tolerance_is_reported_as_grown():
    before = summary.peaks(_results())
    after = dict(before)
    after["core steady"] = before["core steady"] * (summary.PEAK_GROWTH_TOLERANCE + 0.01)
    after["core first"] = before["core first"] * summary.PEAK_GROWTH_TOLERANCE  # at the tolerance: not grown
    grown = {c["peak"] for c in summary.peak_changes(after, before) if c["grew"]}
    assert grown == {"core steady"}
    assert "core steady: 78.0 ->" in summary.report([], summary.peak_changes(after, before))


def test_previous_results_skip_missing_and_broken_files(tmp_path):
    (tmp_path / "results_core.json").write_text(json.dumps(_results()["core"]))
    (tmp_path / "results_genai.json").write_text("{not json")
    previous = summary.previous_results(tmp_path)
    assert set(previous) == {"core"}
    assert summary.peaks(previous) == {"core steady": 78.0, "core first": 101.0}


def test_generation_noise_floor_scales_readings_and_draws_by_one_deviates_time():
    from benchmarks.bench_genai import _noise_floor

    z = _noise_floor(readings=1_000_000, draws=3_000_000, s_per_draw=2e-9, electronic_s=0.1, optical_s=6.0)
    assert z["draws_per_reading"] == 3.0
    assert z["floor_s"] == pytest.approx(2e-3) and z["draws_s"] == pytest.approx(6e-3)
    assert z["floor_over_electronic"] == pytest.approx(0.02) and z["draws_over_electronic"] == pytest.approx(0.06)
    assert z["optical_over_draws"] == pytest.approx(1000.0)
    assert _noise_floor(0, 0, 2e-9, 0.1, 1.0)["draws_per_reading"] is None
