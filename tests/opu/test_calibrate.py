"""OPU calibration on a bench with deliberately perturbed parts: each step must recover what was changed.

The perturbed bench is sim_backends/benches/opu_core.yaml with other V_pi (DC and RF) and built-in bias
points per modulator, a weaker and earlier-saturating driver amplifier, and a 3.3 km edge fibre. The
expected values are closed forms of the bench file's parameters (MZM cos^2 transfer, tanh amplifier,
fibre group delay L n_g / c + D L (lambda - lambda_ref)), never earlier simulator output.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.shared_files import shared_file
import labctl
from labctl.opu.streaming import calibration as cal_mod
from labctl.opu import calibration_file as calfile
from labctl.opu.calibration_file import CalibrationBenchMismatch, CalibrationStale, CalibrationVersionError
from labctl.opu import OPU
from labctl.opu.precision import error_stats

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "sim_backends" / "benches" / "opu_core.yaml"
C_LIGHT = 299792458.0

PERTURB = {
    "mzm_x1": {"v_pi": 4.3, "v_pi_rf": 4.9, "phase_offset_v": 2.9},
    "mzm_x3": {"v_pi": 5.8, "v_pi_rf": 6.3, "phase_offset_v": -1.7},
    "mzm_w2": {"v_pi": 4.5, "v_pi_rf": 5.0, "phase_offset_v": 0.9},
    "mzm_w4": {"v_pi": 5.6, "v_pi_rf": 6.2, "phase_offset_v": -3.3},
    "drv_x2": {"gain_db": 18.0, "saturated_output_vpp": 7.0},
    "edge_fibre": {"length_km": 3.3},
}
LIGHT = dict(bias_points=15, bias_coarse_points=5, bias_samples=1024, staircase_levels=32, staircase_hold=6,
             lane_slots=2048, decoder_products=2)


def perturbed_config() -> dict:
    data = yaml.safe_load(BENCH.read_text())
    for name, changes in PERTURB.items():
        data["components"][name].update(changes)
    return data


def write_bench(tmp: Path, data: dict, name: str) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data))
    return path




@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("opu_cal")
    data = perturbed_config()
    bench = labctl.open_bench(write_bench(tmp, data, "perturbed.yaml"), seed=3)

    def make(path):
        cal_mod.calibrate(OPU(bench, samples_per_symbol_capture=10), path, **LIGHT)

    path = shared_file(tmp_path_factory, "opu_perturbed_calibration.json", make)
    opu = OPU(bench, calibration=path, samples_per_symbol_capture=10)
    yield {"bench": bench, "opu": opu, "cal": opu.calibration, "parts": data["components"], "tmp": tmp,
           "data": data, "path": path}
    bench.close()


def mzm_key(key: str) -> str:
    return "mzm_" + key.split(".")[1]


def test_bias_sweep_recovers_each_modulators_vpi_and_bias_point(calibrated):
    parts = calibrated["parts"]
    modulators = calibrated["cal"].modulators
    assert len(modulators) == 8
    for key, mc in modulators.items():
        fit = {**mc.fit, "bias_v": mc.bias_v}
        part = parts[mzm_key(key)]
        assert fit["v_pi"] == pytest.approx(part["v_pi"], rel=0.02), key
        period = 2 * part["v_pi"]
        d0 = (fit["phase_offset_v"] - part["phase_offset_v"] + period / 2) % period - period / 2
        assert abs(d0) < 0.03 * part["v_pi"], key
        # the chosen bias is a quadrature point of the true curve: cos^2(pi/2 (V + V0) / V_pi) = 1/2
        theta = 0.5 * math.pi * (fit["bias_v"] + part["phase_offset_v"]) / part["v_pi"]
        assert math.cos(theta) ** 2 == pytest.approx(0.5, abs=0.02), key


def test_delays_recover_the_fibre_length_and_walk_off(calibrated):
    parts, opu = calibrated["parts"], calibrated["opu"]
    fibre = parts["edge_fibre"]
    delays = calibrated["cal"].delays_s
    symbol = 1 / opu.config.symbol_rate_hz
    for m in opu.hw.modulators:
        if m.side != "x":
            continue
        length = fibre["length_km"] * 1e3
        walk = fibre["dispersion_ps_nm_km"] * 1e-6 * length * (m.wavelength_m - 1550e-9)   # D L dlambda
        expected = length * fibre["group_index"] / C_LIGHT + walk
        measured = delays[m.key] - delays[m.key.replace(".x", ".w")]   # edge -> center, fibre only
        assert abs(measured - expected) < 0.5 * symbol, m.key            # exact to the symbol
        # and to a fraction of it: the simulated waveform grid (51.2 GSa/s here) moves edges by up to
        # about one AWG sample (16 ps), so the bound is 0.15 symbol (29 ps)
        assert abs(measured - expected) < 0.15 * symbol, m.key
    # the chromatic walk-off between the outermost channels (135 ps over 3.3 km) is resolved
    spread = delays["L1.x1"] - delays["L1.x4"]
    assert spread == pytest.approx(fibre["dispersion_ps_nm_km"] * 1e-6 * fibre["length_km"] * 1e3
                                   * (opu.hw.by_key["L1.x1"].wavelength_m - opu.hw.by_key["L1.x4"].wavelength_m),
                                   rel=0.15)


def _true_transmission(parts, key: str, bias_v: float, samples: np.ndarray, amplitude_vpp: float) -> np.ndarray:
    """Closed form of the DC chain: AWG sample -> volts -> tanh driver -> MZM cos^2 with finite extinction."""
    side = key.split(".")[1]
    amp = parts["drv_" + side]
    mzm = parts["mzm_" + side]
    codes = np.rint(np.asarray(samples) * 127)                       # 8-bit DAC
    v_awg = codes / 127 * amplitude_vpp / 2
    v_sat = amp["saturated_output_vpp"] / 2
    v_rf = v_sat * np.tanh(10 ** (amp["gain_db"] / 20) * v_awg / v_sat)
    theta = 0.5 * np.pi * ((bias_v + mzm["phase_offset_v"]) / mzm["v_pi"] + v_rf / mzm["v_pi_rf"])
    eps = 1 / (10 ** (mzm["extinction_ratio_db"] / 10) + 1)
    return eps + (1 - 2 * eps) * np.cos(theta) ** 2


def test_staircase_tables_linearise_driver_and_modulator(calibrated):
    """Through the true (closed-form) chain, the table's AWG samples give transmissions linear in t."""
    parts, opu = calibrated["parts"], calibrated["opu"]
    t = np.linspace(0, 1, 21)
    worst_cal, worst_linear = 0.0, 0.0
    for m in opu.hw.modulators:
        mc = opu.calibration.modulators[m.key]
        T = _true_transmission(parts, m.key, mc.bias_v, mc.table(t), mc.amplitude_vpp)
        lin = (T - T[0]) / (T[-1] - T[0])
        worst_cal = max(worst_cal, float(np.max(np.abs(lin - t))))
        assert T[-1] / T[0] > 10 ** (15 / 10), m.key       # the table spans most of the extinction
        # a linear drive (what an uncalibrated OPU sends) over the same sample range is far from linear
        s_lin = mc.table.volts[0] + t * (mc.table.volts[-1] - mc.table.volts[0])
        T2 = _true_transmission(parts, m.key, mc.bias_v, s_lin, mc.amplitude_vpp)
        worst_linear = max(worst_linear, float(np.max(np.abs((T2 - T2[0]) / (T2[-1] - T2[0]) - t))))
    assert worst_cal < 0.02
    assert worst_linear > 0.05


def test_lane_fit_equalises_channel_gains(calibrated):
    lane = calibrated["cal"].lanes[0]
    assert np.ptp(lane.channel_gains) / np.mean(lane.channel_gains) < 0.05
    assert 0 < lane.residual_sigma < 0.05
    # finite extinction appears as small positive offset terms
    assert np.all(lane.alpha > -0.02) and np.all(lane.alpha < 0.1)


def test_calibrated_products_beat_uncalibrated(calibrated):
    opu = calibrated["opu"]
    rng = np.random.default_rng(21)
    a, b = rng.uniform(-1, 1, (12, 32)), rng.uniform(-1, 1, (32, 12))
    ref = a @ b
    y, sigma = opu.matmul(a, b, return_error=True)
    cal_stats = error_stats(y, ref)
    rough = OPU(opu.bench, calibration=opu.calibration.only(opu.config, ("bias", "timing")),
                samples_per_symbol_capture=10)
    rough_stats = error_stats(rough.matmul(a, b), ref)
    print(f"calibrated: {cal_stats}\nuncalibrated (bias + timing only): {rough_stats}")
    assert cal_stats.bits_range > 5.6   # measured 5.98 on these 144 outputs; ~0.1 bits spread per draw
    assert rough_stats.sigma > 4 * cal_stats.sigma
    # the error estimate is honest
    z = (y - ref) / sigma
    assert 0.5 < float(np.sqrt(np.mean(z**2))) < 2.0


def test_calibration_file_loads_and_is_bound_to_bench_and_wiring(calibrated):
    path, tmp, data = calibrated["path"], calibrated["tmp"], calibrated["data"]
    opu2 = OPU(calibrated["bench"], calibration=path, samples_per_symbol_capture=10)
    assert opu2.calibration.sections == {"bias", "timing", "drive", "lanes", "decoder"}
    assert opu2.calibration.sampling_phase_s is not None and abs(opu2.calibration.sampling_phase_s) < 50e-12
    for key, mc in opu2.calibration.modulators.items():
        assert mc.table.t[0] == 0 and mc.table.t[-1] == 1 and np.all(np.diff(mc.table.volts) != 0)
        assert 0.075 <= mc.amplitude_vpp <= 1.0
    # another bench (a different scope address): refused
    other = copy.deepcopy(data)
    other["instruments"]["scope"]["resource"] = "TCPIP0::scope2.labsim::hislip0::INSTR"
    with labctl.open_bench(write_bench(tmp, other, "other.yaml")) as bench:
        with pytest.raises(CalibrationBenchMismatch):
            OPU(bench, calibration=path)
    # same instruments, different OPU wiring (symbol rate): refused
    rewired = copy.deepcopy(data)
    rewired["opu"]["symbol_rate_hz"] = 2.56e9
    with labctl.open_bench(write_bench(tmp, rewired, "rewired.yaml")) as bench:
        with pytest.raises(CalibrationBenchMismatch, match="symbol_rate_hz"):
            OPU(bench, calibration=path)
    # an older format version: refused
    doc = json.loads(Path(path).read_text())
    doc["format_version"] = 0
    old = tmp / "old.json"
    old.write_text(json.dumps(doc))
    with pytest.raises(CalibrationVersionError):
        OPU(calibrated["bench"], calibration=old)


def test_the_file_records_the_operating_point_and_refuses_another(calibrated, caplog):
    path, tmp, data = calibrated["path"], calibrated["tmp"], calibrated["data"]
    point = calfile.load(path, None).operating_point
    powers = calibrated["cal"].lanes[0].laser_power_dbm                 # equalised by the lanes step
    assert point["lasers.laser.1.power_dbm"] == pytest.approx(powers[0], abs=1e-3)
    assert point["biases.L1.w2_v"] == pytest.approx(calibrated["cal"].modulators["L1.w2"].bias_v, abs=1e-5)
    assert point["components.edge_fibre.length_km"] == 3.3 and point["opu.symbol_rate_hz"] == 5.12e9
    longer = copy.deepcopy(data)
    longer["components"]["edge_fibre"]["length_km"] = 5.0
    with labctl.open_bench(write_bench(tmp, longer, "longer.yaml"), seed=3) as bench:
        with pytest.raises(CalibrationStale, match=r"edge_fibre.length 3.3 km -> 5 km.*labctl run calibrate --sim"):
            OPU(bench, calibration=path, samples_per_symbol_capture=10)
        with caplog.at_level("WARNING", logger="labctl.opu.calibration_file"):
            opu = OPU(bench, calibration=path, samples_per_symbol_capture=10, accept_stale=True)
        assert opu.calibrated and "3.3 km -> 5 km" in caplog.text


def test_drift_check_flags_a_moved_bias_point(calibrated):
    opu = calibrated["opu"]
    ok = cal_mod.drift_check(opu, products=1)
    assert not ok.recalibrate, ok.reason
    bench = calibrated["bench"]
    before = bench.config.components["mzm_w2"]["phase_offset_v"]   # simulated drift of one modulator's bias point
    bench.sim_adjust("mzm_w2", phase_offset_v=before + 0.25 * PERTURB["mzm_w2"]["v_pi"])
    try:
        drifted = cal_mod.drift_check(opu, products=1)
    finally:
        bench.sim_adjust("mzm_w2", phase_offset_v=before)
    print(ok, drifted, sep="\n")
    assert drifted.recalibrate
    assert drifted.ratio > ok.ratio


def test_an_old_calibration_is_drift_checked_when_loaded(calibrated, tmp_path):
    from datetime import datetime, timedelta, timezone

    cal = calfile.load(calibrated["path"], None)
    old = calfile.save(tmp_path / "old.json", cal.sections, bench_name=cal.bench,
                       bench_fingerprint=cal.bench_fingerprint, operating_point=cal.operating_point,
                       created=datetime.now(timezone.utc) - timedelta(hours=9))
    assert calfile.drift_check_due(calfile.load(old, None))
    OPU(calibrated["bench"], calibration=old, samples_per_symbol_capture=10)
    assert not calfile.drift_check_due(calfile.load(old, None))      # the passing check was recorded
