"""The edge_reach experiment (experiments/edge_reach.py): bits, received power and image quality of a
weight-stationary core vs edge fibre length, with and without the pre-amplifier of ring_core_amplified.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from experiments.edge_reach import AMPLIFIED_BENCH_PATH, EdgeReach, Parameters
from labctl.config import load_bench
from labctl.runner import ExperimentError, run_experiment
from labctl.store import read_results

BENCHES = Path(__file__).resolve().parents[2] / "sim_backends" / "benches"
BENCH = BENCHES / "ring_core.yaml"


def _names():
    return {"edge": "edge_fibre1", "metro": "metro_fibre1", "dcf": "dcf1", "amplifier": "preamp1"}


def test_link_keeps_the_dispersion_and_adds_up_loss_and_delay():
    components = load_bench(BENCH).components
    changes, loss, max_delay = EdgeReach._link(components, _names(), 50.0)
    # 48 km more G.652 at 17 ps/nm/km is taken up by 48 x 17 / 100 km more DCF at -100 ps/nm/km
    dcf = 2.04 + 48 * 17 / 100
    assert changes == {"edge_fibre1.length_km": 50.0, "dcf1.length_km": pytest.approx(dcf)}
    assert loss == pytest.approx(50 * 0.2 + 10 * 0.2 + dcf * 0.5)
    # the search window covers the link's group delay (n_g L / c) with room to spare
    delay = (60 * 1.4682 + dcf * 1.47) * 1e3 / 299_792_458.0
    assert delay < max_delay < 1.5 * delay
    kept, _, _ = EdgeReach._link(components, {**_names(), "dcf": None}, 50.0)
    assert kept == {"edge_fibre1.length_km": 50.0}


def test_amplified_bench_differs_from_the_ring_bench_only_by_the_preamplifiers():
    plain, amplified = load_bench(BENCH), load_bench(AMPLIFIED_BENCH_PATH)
    assert plain.instruments.keys() == amplified.instruments.keys()
    extra = set(amplified.components) - set(plain.components)
    assert extra == {"preamp1", "preamp2", "preamp3"}
    assert all(amplified.components[name]["type"] == "edfa" for name in extra)
    for name, spec in plain.components.items():
        assert amplified.components[name] == spec
    assert "preamp1" in amplified.instruments["wt_cores"].measures      # its pump draw is metered


def test_parameters_refuse_bad_reaches():
    with pytest.raises(ValidationError):
        Parameters(reaches_km=[-1.0])
    with pytest.raises(ValidationError):
        Parameters(reaches_km=[])
    assert Parameters(reaches_km=[25, 0, 25]).reaches_km == [0.0, 25.0]


def test_missing_amplified_bench_is_refused_before_measuring(tmp_path):
    with pytest.raises(ExperimentError, match="amplified_bench"):
        run_experiment(EdgeReach, bench_path=BENCH, seed=3, out=tmp_path, show_progress=False,
                       overrides={"amplified_bench": str(tmp_path / "none.yaml"), "models": []})


def test_point_without_light_is_reported_failed_not_a_crash(tmp_path):
    result = run_experiment(EdgeReach, bench_path=BENCH, seed=3, out=tmp_path, show_progress=False,
                            overrides={"reaches_km": [150], "modes": ["unamplified"], "models": []})
    res = read_results(result.results_path)
    assert res["attrs"]["status"] == "complete"
    status = res["points.status"][0].decode()
    assert status.startswith("failed: calibration") and "delay peak" in status
    assert np.isnan(res["points.bits_range"][0])


def test_small_run_bits_fall_with_reach_and_amplification_recovers_power(tmp_path):
    settings = {"reaches_km": [0, 50], "models": ["vae-digits"], "n": 2, "steps": 2}
    result = run_experiment(EdgeReach, bench_path=BENCH, seed=3, out=tmp_path, show_progress=False,
                            overrides=settings)
    res = read_results(result.results_path)
    assert res["attrs"]["status"] == "complete"
    modes = [m.decode() for m in res["points.mode"]]
    assert modes == ["unamplified", "unamplified", "amplified", "amplified"]
    assert list(res["points.reach_km"]) == [0.0, 50.0, 0.0, 50.0]
    assert [s.decode() for s in res["points.status"]] == ["ok"] * 4
    changes = [json.loads(c.decode()) for c in res["points.changes"]]
    assert changes[1]["edge_fibre1.length_km"] == 50.0 and "preamp1.gain_db" not in changes[1]
    assert changes[3]["preamp1.gain_db"] == pytest.approx(res["points.link_loss_db"][3])
    rx, bits, enob = res["points.received_dbm"], res["points.bits_range"], res["points.enob"]
    loss = res["points.link_loss_db"]
    # without amplification the received power falls by the added link loss, and the bits with it
    assert rx[0] - rx[1] == pytest.approx(loss[1] - loss[0], abs=0.5)
    assert bits[1] < bits[0] - 1.0 and enob[1] < enob[0] - 1.0
    # the pre-amplifier, its gain set to the link loss, keeps the received power within ~1 dB (its gain
    # compression near +23 dBm and ASE take a little more at higher gain) and gives back most of the bits
    assert rx[3] == pytest.approx(rx[2], abs=1.0) and rx[3] > rx[1] + 10.0
    assert bits[3] > bits[1] + 1.0
    # each point calibrated: the delay grows with the fibre (~5 us per km)
    delay = res["points.calibration_delay_us"]
    assert delay[1] - delay[0] == pytest.approx((50 * 1.4682 + 48 * 0.17 * 1.47) * 1e3 / 299.792458, rel=0.02)
    psnr = res["vae-digits.psnr_db_mean"]
    assert np.all(np.isfinite(psnr)) and psnr[1] < psnr[0]
    table = (tmp_path / "reach_table.md").read_text()
    assert table.count("\n| unamplified") == 2 and table.count("\n| amplified") == 2
    assert (tmp_path / "reach_bits.png").stat().st_size > 0 and (tmp_path / "reach_quality.png").stat().st_size > 0


def test_amplified_bench_file_is_what_its_generator_writes():
    from sim_backends.benches.make_ring_core import build

    assert AMPLIFIED_BENCH_PATH.read_text() == build(amplified=True)
    assert BENCH.read_text() == build()


def test_amplified_bench_without_the_amplifier_is_refused_before_measuring(tmp_path):
    with pytest.raises(ExperimentError, match="no EDFA 'preamp1'"):
        run_experiment(EdgeReach, bench_path=BENCH, seed=3, out=tmp_path, show_progress=False,
                       overrides={"amplified_bench": str(BENCH), "models": []})
