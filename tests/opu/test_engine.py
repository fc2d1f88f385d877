"""labctl.OPU on the simulated OPU bench (sim_backends/benches/opu_core.yaml).

Accuracy is judged against the exact float64 product with the engine's own per-output error estimate
(which comes from calibration residuals, not from the product). That the product is optical is shown by
taking light away behind the engine's back: the result must break.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.shared_files import shared_file
import labctl
from labctl.errors import ConfigError, RoleError
from labctl.opu.streaming import calibration as cal_mod
from labctl.opu.encoding import EncodingRangeWarning
from labctl.opu import OPU, OPUConfig
from labctl.opu.interface import STATS_KEYS
from labctl.opu.precision import error_stats

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "sim_backends" / "benches" / "opu_core.yaml"
LIGHT = dict(bias_points=15, bias_coarse_points=5, bias_samples=1024, staircase_levels=32, staircase_hold=6,
             lane_slots=2048, decoder_products=2)




@pytest.fixture(scope="module")
def opu(tmp_path_factory):
    bench = labctl.open_bench(BENCH, seed=5)

    def make(path):
        cal_mod.calibrate(OPU(bench, samples_per_symbol_capture=10), path, **LIGHT)

    path = shared_file(tmp_path_factory, "opu_core_calibration.json", make)
    yield OPU(bench, calibration=path, samples_per_symbol_capture=10)
    bench.close()


def check_against_exact(y, sigma, ref, max_rms_z=2.5):
    assert y.shape == ref.shape and sigma.shape == ref.shape
    z = (np.asarray(y, float) - ref) / np.asarray(sigma, float)
    rms_z = float(np.sqrt(np.mean(z**2)))
    assert 0.3 < rms_z < max_rms_z, rms_z
    assert float(np.max(np.abs(z))) < 7
    return error_stats(np.asarray(y, float), ref)


# -- configuration and bad input (no optics needed) ---------------------------------------------------


def test_bench_without_opu_section_is_refused():
    with labctl.open_bench("characterisation") as bench:  # no OPU wiring
        with pytest.raises(ConfigError, match="opu"):
            OPU(bench)


def test_opu_section_errors_name_the_field(tmp_path):
    data = yaml.safe_load(BENCH.read_text())
    bad = copy.deepcopy(data)
    bad["opu"]["awg_sample_rate_hz"] = 60e9          # not a whole number of samples per symbol
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with labctl.open_bench(path) as bench:
        with pytest.raises(ConfigError, match="awg_sample_rate_hz"):
            OPU(bench)
    missing = copy.deepcopy(data)
    missing["opu"]["center_awg"] = "awg_nowhere"     # names an instrument the bench does not have
    path.write_text(yaml.safe_dump(missing))
    with labctl.open_bench(path) as bench:
        with pytest.raises(RoleError, match="awg_nowhere"):
            OPU(bench)
    wrong_role = copy.deepcopy(data)
    wrong_role["opu"]["edge_bias"] = "scope"         # an oscilloscope is no DC source
    path.write_text(yaml.safe_dump(wrong_role))
    with labctl.open_bench(path) as bench:
        with pytest.raises(RoleError, match="scope"):
            OPU(bench)
    shared = copy.deepcopy(data)
    shared["opu"]["lanes"][0]["channels"][1]["edge_awg_channel"] = 1   # two modulators on one AWG channel
    path.write_text(yaml.safe_dump(shared))
    with labctl.open_bench(path) as bench:
        with pytest.raises(ConfigError, match="drives both"):
            OPU(bench)


def test_config_describes_the_bench_wiring():
    with labctl.open_bench(BENCH) as bench:
        cfg = OPUConfig.from_bench(bench)
        assert cfg.awg_samples_per_symbol == 12 and cfg.channels_per_lane == 4
        engine = OPU(bench)
        assert engine.lanes == 1 and engine.channels == 4 and not engine.calibrated
        # the nominal (uncalibrated) drive: quadrature of cos^2(pi/2 (V + 0) / 5 V), amplitude V_pi_rf / gain
        mc = engine.calibration.modulators["L1.x1"]
        assert mc.bias_v == pytest.approx(2.5)
        assert mc.amplitude_vpp == pytest.approx(5.5 / 10)


def test_bad_operands_are_refused_before_anything_is_sent():
    with labctl.open_bench(BENCH) as bench:
        engine = OPU(bench)
        with pytest.raises(ValueError, match="do not match"):
            engine.matmul(np.ones((3, 4)), np.ones((5, 2)))
        with pytest.raises(ValueError, match="NaN or infinite"):
            engine.matmul(np.array([[1.0, np.nan]]), np.ones((2, 2)))
        with pytest.raises(ValueError, match="NaN or infinite"):
            engine.matmul(np.ones((2, 2)), np.array([[1.0, np.inf], [0, 1]]))
        with pytest.raises(ValueError, match="dimension"):
            engine.matmul(np.float64(2.0), np.ones((2, 2)))
        assert engine.hw.stats.uploads == 0 and engine.hw.stats.captures == 0


# -- products on the calibrated bench -----------------------------------------------------------------


def test_matmul_matches_exact_product_within_its_error_estimate(opu):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-1, 1, (10, 24)), rng.uniform(-3, 3, (24, 9))
    y, sigma = opu.matmul(a, b, return_error=True)
    assert y.dtype == np.float64
    st = check_against_exact(y, sigma, a @ b)
    # streaming lanes, full calibration: measured 5.72 bits range on these 90 outputs; the figure of so
    # few outputs spreads by ~0.1 bits (sigma estimated from 90 values: ~7 %), so 5.4 leaves ~3 spreads
    assert st.bits_range > 5.4
    s = opu.last_stats
    assert s["macs"] == 10 * 24 * 9 and s["passes"] == 1
    # bulk transfers: one waveform per AWG channel (2 AWGs x 4) and one capture per pass
    assert s["uploads"] == 8 and s["captures"] == 1
    assert s["slots_per_lane"] == 10 * 9 * 6            # outputs x ceil(24 / 4) chunks
    assert tuple(s)[:len(STATS_KEYS)] == STATS_KEYS      # the keys every engine reports, in the same order
    assert s["optical_macs"] == s["slots_per_lane"] * 4 and s["calibrated"] is True   # 4 channels per slot
    # one byte per AWG sample; the pattern is padded to a whole number of the AWGs' segment steps
    assert s["upload_bytes"] == 8 * opu.hw.pattern_symbols(s["symbols_per_lane"]) * opu.config.awg_samples_per_symbol
    assert s["optical_time_s"] == pytest.approx((s["slots_per_lane"] + 79) / 5.12e9)


def test_batched_and_vector_shapes_follow_numpy(opu):
    rng = np.random.default_rng(2)
    a = rng.uniform(-1, 1, (2, 3, 4, 8))
    b = rng.normal(0, 2, (3, 8, 5))   # Gaussian weights: scaled by max |b|, the error estimate follows
    y, sigma = opu.matmul(a, b, return_error=True)
    assert y.shape == (2, 3, 4, 5)
    check_against_exact(y, sigma, np.matmul(a, b))
    v = rng.uniform(-1, 1, 8)
    yv, sv = opu.matmul(v, b[0], return_error=True)
    assert yv.shape == (5,)
    check_against_exact(yv, sv, v @ b[0], max_rms_z=3.0)
    f32 = opu.matmul(a[0, 0].astype(np.float32), b[0].astype(np.float32))
    assert f32.dtype == np.float32


def test_torch_tensors_in_torch_tensors_out(opu):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(6, 12, generator=gen) * 2 - 1
    b = torch.rand(12, 7, generator=gen) * 2 - 1
    y, sigma = opu.matmul(a, b, return_error=True)
    assert isinstance(y, torch.Tensor) and isinstance(sigma, torch.Tensor)
    assert y.dtype == torch.float32 and y.shape == (6, 7) and y.device == a.device
    check_against_exact(y.numpy(), sigma.numpy(), (a.double() @ b.double()).numpy())


def test_several_passes_give_the_same_product(opu):
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-1, 1, (8, 16)), rng.uniform(-1, 1, (16, 20))
    small = OPU(opu.bench, calibration=opu.calibration, samples_per_symbol_capture=10, max_slots_per_pass=256)
    y, sigma = small.matmul(a, b, return_error=True)
    assert small.last_stats["passes"] == 3                # 640 slots in passes of 256
    assert small.last_stats["captures"] == 3
    check_against_exact(y, sigma, a @ b)


def test_values_beyond_a_fixed_scale_are_clipped_with_a_warning_and_counted(opu):
    a = np.array([[0.5, -2.0, 0.25, 3.0]])
    b = np.eye(4)
    with pytest.warns(EncodingRangeWarning, match="2 of 4"):
        y = opu.matmul(a, b, scale_a=1.0)
    assert opu.last_stats["clipped_a"] == 2 and opu.last_stats["clipped_b"] == 0
    np.testing.assert_allclose(y.ravel(), [0.5, -1.0, 0.25, 1.0], atol=0.3)


def test_the_product_comes_from_the_light(opu):
    """Switch one channel's laser off behind the engine's back: the product must break; restore: fine."""
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.2, 1, (6, 16)), rng.uniform(0.2, 1, (16, 6))
    ref = a @ b
    laser = opu.bench.role("laser", 3)
    opu.apply_settings()
    laser.output_enabled = False          # a direct role call: the engine does not know
    try:
        dark = opu.matmul(a, b)
    finally:
        opu.invalidate()
    lit, sigma = opu.matmul(a, b, return_error=True)
    assert bool(laser.output_enabled)
    assert error_stats(dark, ref).sigma > 10 * float(np.sqrt(np.mean(sigma**2)))
    check_against_exact(lit, sigma, ref)


def test_one_sample_per_symbol_capture(opu):
    """With a calibrated sampling phase the scope takes one sample at each symbol centre."""
    one = OPU(opu.bench, calibration=opu.calibration, samples_per_symbol_capture=1)
    assert opu.calibration.sampling_phase_s is not None
    a, b = np.full((4, 8), 0.5), np.full((8, 4), 0.5)
    y = one.matmul(a, b)
    s = one.last_stats
    assert s["capture_rate_hz"] == pytest.approx(5.12e9)             # one sample per symbol
    assert s["capture_record_points"] == s["symbols_per_lane"] + 16  # + 8 margin symbols each side
    assert np.all(np.isfinite(y)) and y.shape == (4, 4)
