"""calibrate_core and precision_sweep experiments on the simulated weight-stationary bench (ring_core.yaml).

One core calibration is made once per session by the calibrate_core experiment and shared; each sweep test
adds at most one calibration (small grids, small matrices), so every test stays well under 30 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import labctl
from experiments.calibrate_core import CalibrateCore
from experiments.common.operands import model_operands
from experiments.common.stationary import path_gain_power_dbm, received_power_dbm, rescaled, without
from experiments.precision_sweep import PrecisionSweep
from labctl.opu import open_opu
from labctl.opu.precision import error_stats
from labctl.opu.stationary import StationaryOPU
from labctl.runner import ExperimentError, run_experiment
from labctl.store import read_results
from tests.shared_files import calibrate_core_run

BENCH = Path(__file__).resolve().parents[2] / "sim_backends" / "benches" / "ring_core.yaml"
#: the smallest useful sweep: no sweep at all unless a test asks for one
NO_SWEEPS = {"power_offsets_db": [], "symbol_rates_hz": [], "fibre_lengths_km": [], "adc_bits": [],
             "model": None, "m": 32, "k": 32, "n": 32, "ablation": False}


@pytest.fixture(scope="session")
def core_run(tmp_path_factory) -> Path:
    return calibrate_core_run(tmp_path_factory)


def _sweep(tmp_path, core_run, **overrides):
    settings = {**NO_SWEEPS, "calibration": str(core_run), **overrides}
    result = run_experiment(PrecisionSweep, bench_path=BENCH, seed=5, overrides=settings, out=tmp_path,
                            show_progress=False)
    return result, read_results(result.results_path)


def test_calibrate_core_writes_files_that_load(core_run):
    path = core_run / "occ1.json"
    assert path.is_file()
    assert (core_run / "calibrate_core.png").stat().st_size > 10_000
    res = read_results(core_run / "calibrate_core.h5")
    attrs = res["attrs"]
    assert attrs["status"] == "complete"
    assert Path(attrs["result.calibration_files"]).name == "occ1.json"     # (made in a .partial folder, renamed)
    assert res["occ1.bias_v"].shape == (16,)
    assert res["occ1.thermal_crosstalk"].shape == (16,)
    assert 0.0 < float(res["occ1.delay_s"]) < 1e-3
    assert 0.0 <= float(res["occ1.eps"]) < 0.05
    assert float(res["occ1.decoder_rms_after"]) <= float(res["occ1.decoder_rms_before"])
    assert res["occ1.ring_peak_v"].shape == (16, 16)
    bits, enob = float(res["occ1.precision.bits_range"]), float(res["occ1.precision.enob"])
    # README (precision table, bench point): 8.66 bits log2(range/sigma), 5.47 ENOB; one seed's spread about
    # +-0.15 bit (measured 8.59 / 5.50 here); Gaussian-like outputs put the two conventions ~3 bits apart
    assert 8.3 < bits < 9.2 and 5.1 < enob < bits - 2.5
    assert attrs["unit.occ1.delay_s"] == "s"
    assert float(res["occ1.drift.ratio"]) < 2.0
    with labctl.open_bench(BENCH, seed=9) as bench:
        opu = open_opu(bench, path)                        # the first core of the bench: occ1
        assert opu.name == "occ1" and opu.calibrated
        rng = np.random.default_rng(1)
        a, b = rng.uniform(-1, 1, (32, 48)), rng.uniform(-1, 1, (48, 16))
        # another seed, another product shape, the file loaded: still the bench point's precision (README 8.66)
        assert error_stats(opu.matmul(a, b), a @ b).bits_range > 8.2


def test_calibrate_core_refuses_unknown_cores(tmp_path):
    with pytest.raises(ExperimentError, match=r"0\.\.2"):
        run_experiment(CalibrateCore, bench_path=BENCH, overrides={"cores": [3]}, out=tmp_path, show_progress=False)


def test_power_sweep_with_model_weights(tmp_path, core_run):
    own_rate = float(labctl.load_bench(BENCH).opu["symbol_rate_hz"])
    result, res = _sweep(tmp_path, core_run, power_offsets_db=[-6.0, 0.0], symbol_rates_hz=[own_rate],
                         model="ddpm-digits",
                         model_layers=["mid_block.attentions.0.to_q", "down_blocks.0.resnets.0.conv1"],
                         model_rows=32, model_batch=2, ablation=True)
    s = result.summary
    assert "log2(range / sigma)" in s["convention_range"] and "1.76" in s["convention_enob"]
    assert (tmp_path / "precision_power.png").stat().st_size > 10_000
    assert (tmp_path / "precision_ablation.png").is_file()
    assert list(res["power.offset_db"]) == [-6.0, 0.0]
    rx = res["power.received_dbm"]
    # measured at the ADCs with the lasers 6 dB down (not derived from the command): the mean over 16 x 16
    # paths x 256 slots averages the noise to ~0.01 dB; the lasers' setting accuracy adds no more
    assert rx[1] - rx[0] == pytest.approx(6.0, abs=0.05)
    assert rx[1] == pytest.approx(-12.5, abs=0.3)             # README: -12.5 dBm per channel at the bench's point
    cal_r, cal_m = res["power.calibrated.random.bits_range"], res["power.calibrated.model.bits_range"]
    unc_r = res["power.uncalibrated.random.bits_range"]
    part_r = res["power.partial.random.bits_range"]
    # README precision table (64^3 random, three UNet layers): bench 8.66 random / 8.42 UNet, -6 dB 7.31;
    # here 32^3 and two layers of 32 rows, one seed: measured 8.49 / 8.08 and 7.13, within ~0.3 bit of it
    assert 8.2 < cal_r[1] < 9.2 and 7.7 < cal_m[1] < 9.2
    assert 6.9 < cal_r[0] < cal_r[1] - 1.0                    # 6 dB less light: ~1.3 bit less (README 1.35)
    # README: without floor and decoder 5.29, also without the crosstalk solve -0.43 (products off by more
    # than their range); measured 5.56 and -0.14
    assert np.all((4.9 < part_r) & (part_r < 6.0)) and np.all(unc_r < 0.5)
    assert np.all(res["power.calibrated.random.enob"] < cal_r - 2.0)
    assert res["power.calibrated.model.bits_range_per_layer"].shape == (2, 2)
    # symbol rate at the bench's own rate: the base point, no recalibration
    assert list(res["symbol_rate.recalibrated"]) == [False]
    assert res["symbol_rate.calibrated.random.bits_range"][0] == pytest.approx(cal_r[1])
    states = [x.decode() for x in res["ablation.states"]]
    assert states[:3] == ["calibrated", "partial", "uncalibrated"] and "no_decoder" in states
    abl = dict(zip(states, res["ablation.random.bits_range"]))
    assert abl["no_decoder"] <= abl["calibrated"] + 0.2 and abl["no_floor"] < abl["calibrated"]


def test_adc_sweep_more_bits_not_worse(tmp_path, core_run):
    result, res = _sweep(tmp_path, core_run, adc_bits=[8])
    assert not list(tmp_path.glob("*.yaml"))                      # a bench variant, not a modified copy
    changes = [json.loads(x) for x in res["adc.changes"]]
    assert changes == [{}, {"occ1.adc_bits": 8, "occ1.adc_enob": 7.5}]
    assert (tmp_path / "precision_adc.png").stat().st_size > 10_000
    assert list(res["adc.adc_bits"]) == [14, 8] and list(res["adc.adc_enob"]) == [9.5, 7.5]
    assert [x.decode() for x in res["adc.status"]] == ["ok", "ok"]
    bits = res["adc.calibrated.random.bits_range"]
    # README: ADC ENOB 7.5 gives 7.16 bits (measured 7.06 with 32^3 products), the bench's own ADC 8.66
    assert 6.8 < bits[1] < 7.6 and bits[0] > bits[1] + 1.0


def test_fibre_sweep_opens_a_bench_variant(tmp_path, core_run):
    result, res = _sweep(tmp_path, core_run, fibre_lengths_km=[5.0, 10.0])
    assert not list(tmp_path.glob("*.yaml"))                      # a bench variant, not a modified copy
    changes = json.loads(res["fibre.changes"][0])
    assert changes["metro_fibre1.length_km"] == 5.0
    # matched DCF: 17 ps/nm/km x (5 - 10) km less dispersion to cancel at -100 ps/nm/km
    assert changes["dcf1.length_km"] == pytest.approx(2.04 - 0.85)
    assert json.loads(res["fibre.changes"][1]) == {}               # the bench's own length: the base point
    assert list(res["fibre.length_km"]) == [5.0, 10.0] and list(res["fibre.recalibrated"]) == [True, False]
    rx = res["fibre.received_dbm"]
    # measured: 5 km less SSMF (0.2 dB/km) and 0.85 km less DCF; the DCF's loss per km from the bench file
    dcf_loss = labctl.load_bench(BENCH).components["dcf1"]["attenuation_db_per_km"]
    assert rx[0] - rx[1] == pytest.approx(5 * 0.2 + 0.85 * dcf_loss, abs=0.05)
    # README: the bench's 10 km keeps 8.66 bits; 5 km is shorter, with more light: not fewer (measured 8.59)
    assert np.all(res["fibre.calibrated.random.bits_range"] > 8.2)
    assert (tmp_path / "precision_fibre.png").stat().st_size > 10_000


@pytest.mark.parametrize("setting", [{"fibre_lengths_km": [5.0]}, {"adc_bits": [8]}])
def test_bench_changing_sweeps_refused_on_a_real_bench(tmp_path, setting):
    with labctl.open_bench(BENCH, seed=1) as bench:
        bench.mode = "real"          # stands in for a real bench: the experiment must not touch it
        with pytest.raises(ExperimentError, match="only on a simulated bench"):
            run_experiment(PrecisionSweep, bench=bench, overrides={**NO_SWEEPS, **setting}, out=tmp_path,
                           show_progress=False)
        # the defaults (None) leave these sweeps out on a real bench instead of failing
        grid = PrecisionSweep._grid(bench, PrecisionSweep.Parameters())
        assert grid["fibre"] == [] and grid["adc"] == [] and grid["symbol_rate"]
    assert read_results(tmp_path / "precision_sweep.h5")["attrs"]["status"].startswith("failed: ExperimentError")


def test_helpers(core_run):
    with labctl.open_bench(BENCH, seed=1) as bench:
        opu = open_opu(bench, core_run / "occ1.json")
        cal = opu.calibration
        # the level measured at the ADCs and the calibration's path gains say the same power (to 0.1 dB:
        # the calibration's own fit noise; measured 0.01 dB)
        assert received_power_dbm(opu) == pytest.approx(path_gain_power_dbm(opu), abs=0.1)
        half = StationaryOPU(bench, rescaled(cal, 0.5), core=0)
        half.config.laser_power_dbm -= 10 * np.log10(2)
        assert received_power_dbm(half) == pytest.approx(received_power_dbm(opu) - 3.01, abs=0.05)
    bare = without(cal, ("crosstalk", "floor", "decoder"))
    assert bare.decoder_gain is None and bare.eps == 0 and not np.any(bare.thermal_crosstalk)
    assert "decoder" not in bare.steps and cal.decoder_gain is not None    # the original is untouched
    half = rescaled(cal, 0.5)
    assert np.allclose(half.g_span_v, cal.g_span_v / 2) and np.allclose(half.dark_v, cal.dark_v)
    with pytest.raises(ValueError, match="unknown corrections"):
        without(cal, ("bias",))


def test_model_operands_are_the_layer_products():
    torch = pytest.importorskip("torch")
    from experiments.genai.models import load_model

    ops = model_operands("ddpm-digits", ["conv_in", "mid_block.attentions.0.to_q"], rows=64, batch=1, seed=2)
    a, b = ops["conv_in"]
    assert a.shape == (64, 9) and b.shape == (9, 32)             # Conv2d(1 -> 32, 3x3) on 8x8: 64 im2col rows
    # all 64 rows of the one image: A @ B + bias is the layer's output, pixel by pixel
    conv = load_model("ddpm-digits").components["unet"].conv_in
    sample = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = conv(sample).double().permute(0, 2, 3, 1).reshape(64, 32).numpy()
    assert np.allclose(a @ b + conv.bias.detach().double().numpy(), expected, atol=1e-5)
    a, b = ops["mid_block.attentions.0.to_q"]
    assert a.shape[1] == 64 and b.shape == (64, 64)
    assert all(np.all(np.isfinite(x)) for pair in ops.values() for x in pair)
    with pytest.raises(Exception, match="not a Linear or Conv2d"):
        model_operands("ddpm-digits", ["mid_block"], rows=4, batch=1)
