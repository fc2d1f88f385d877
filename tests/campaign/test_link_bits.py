"""link_bits, the campaign example's experiment: a cached calibration gives the same result as a fresh
one, the received power follows the laser offset dB for dB, bad settings are refused before calibrating."""

from __future__ import annotations

import pytest

from experiments.link_bits import cache_key, delay_window_s
from labctl.bench import CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH, open_bench
from labctl.runner import ExperimentError, run_experiment

#: Few small products: the figures here are about the calibration and the power, not the statistics.
SMALL = {"m": 16, "k": 16, "n": 16, "baseline_repeats": 1}
#: Edge fibre length of the variant (km) and the DCF that keeps the bench file's dispersion with it.
VARIANT = {"edge_fibre1.length_km": 6.0, "dcf1.length_km": 2.72}


def run(tmp_path, name, cache, seed, **overrides):
    return run_experiment("link_bits", bench_path=SYSTEM_BENCH_PATH, mode="sim", seed=seed, out=tmp_path / name,
                          overrides={**SMALL, "calibration_cache": str(cache), **overrides}, changes=VARIANT,
                          show_progress=False)


def test_a_cached_calibration_gives_the_result_of_a_fresh_one_and_power_follows_the_offset(tmp_path):
    cache = tmp_path / "cache"
    first = run(tmp_path, "a", cache, seed=5, power_offset_db=0.0).summary
    reused = run(tmp_path, "b", cache, seed=6, power_offset_db=-3.0).summary
    fresh = run(tmp_path, "c", tmp_path / "other_cache", seed=6, power_offset_db=-3.0).summary
    assert (first["calibration"], reused["calibration"], fresh["calibration"]) == ("computed", "cached", "computed")
    assert reused["calibration_file"] == first["calibration_file"]
    # the calibration is measured on its own bench (calibration_seed): where it came from changes nothing
    for key in ("received_dbm", "bits_range", "enob", "nrmse", "drift_ratio"):
        assert reused[key] == fresh[key], key
    # 3 dB less laser power is 3 dB less light at the photodiodes
    assert first["received_dbm"] - reused["received_dbm"] == pytest.approx(3.0, abs=0.1)
    assert reused["laser_dbm"] == pytest.approx(first["laser_dbm"] - 3.0)
    assert first["drift_ratio"] < 2.0 and first["bits_range"] > 4.0


def test_the_cache_key_follows_the_bench_variant_and_the_delay_window_the_fibre(tmp_path):
    from experiments.link_bits import Parameters

    p = Parameters()
    with open_bench(SYSTEM_BENCH_PATH, seed=1) as bench, \
            open_bench(SYSTEM_BENCH_PATH, seed=2) as reseeded, \
            open_bench(SYSTEM_BENCH_PATH, seed=1, changes={"edge_fibre1.length_km": 80.0}) as far:
        assert cache_key(bench, p) == cache_key(reseeded, p)     # the bench's noise seed is not the calibration's
        assert cache_key(bench, p) != cache_key(far, p)
        assert cache_key(bench, p) != cache_key(bench, Parameters(core=1))
        # 80 km + 10 km metro + DCF: ~0.45 ms of flight, beyond the calibration's default 0.4 ms window
        assert delay_window_s(far, 0) > 1.25 * 90 * 1.4682 / 299_792.458
        assert delay_window_s(bench, 0) == delay_window_s(bench, 1)


def test_bad_settings_are_refused_before_any_calibration(tmp_path):
    with pytest.raises(ExperimentError, match="core=3: this bench has 3 core"):
        run(tmp_path, "a", tmp_path / "cache", seed=1, core=3)
    with pytest.raises(ExperimentError, match="power_offset_db=-20: -7 dBm is refused"):
        run(tmp_path, "b", tmp_path / "cache", seed=1, power_offset_db=-20.0)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ExperimentError, match="weight-stationary bench"):
        run_experiment("link_bits", bench_path=CHARACTERISATION_BENCH_PATH, mode="sim", out=tmp_path / "c",
                       show_progress=False)
