"""The weight-stationary OPU (labctl.opu.stationary), its calibration and open_cores on
sim_backends/benches/ring_core.yaml.

Calibrations are shared by every test of the session (tests/shared_files.py), three in all: cores occ1
and occ3 of the bench as written (independent, so two workers make them at once), and core occ2 of a
perturbed copy of the bench, made by one ``open_cores`` call on the copy that must reuse the occ1 and
occ3 files (cores 1 and 3 of the copy are as written). Core 2 of the copy has other thermal crosstalk per
bank, a 20 km metro fibre with its dispersion compensation resized, other modulator built-in phases and
two rings' cold resonances moved. What calibration must find is computed here
from the bench file's numbers (heater power = detuning / tuning, V^2 = P R; fibre delay L n_g / c; MZM
theta = pi/2 (V_bias + V0) / V_pi), never from earlier simulator output.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

import labctl
from labctl.opu import CalibrationBenchMismatch, EncodingRangeWarning
from labctl.opu import calibration_file as calfile
from labctl.opu.stationary import calibration as stcal
from labctl.opu.precision import error_stats
import labctl.opu.open as opu_open
from labctl.opu import open_cores, open_opu
from labctl.opu.stationary import StationaryCalibration, StationaryOPU, StationaryOPUError
from sim_backends.bench import load_bench_file
from tests.shared_files import ring_core_calibration, shared_file

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "sim_backends" / "benches" / "ring_core.yaml"
OTHER_BENCH = REPO / "sim_backends" / "benches" / "opu_core.yaml"
C_LIGHT = 299_792_458.0
N = 16

# the perturbed copy of the bench: core 2
PERTURBED = 2
CROSSTALK = {**{q: 0.08 for q in range(N)}, 1: 0.03, 2: 0.12}  # bank index -> thermal crosstalk fraction
METRO_KM = 20.0
PHASE_OFFSETS = {0: -3.1, 1: 0.0, 2: 1.3, 3: 3.4, 4: -0.9}  # modulator index -> built-in bias V0
RING_SHIFTS = {(3, 5): -0.1e-9, (6, 8): +0.1e-9}  # (bank, ring) -> cold resonance shift, m


def load_yaml(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def perturbed(data: dict, c: int = PERTURBED) -> dict:
    data = copy.deepcopy(data)
    parts = data["components"]
    for q, f in CROSSTALK.items():
        parts[f"bank{c}_{q + 1}"]["crosstalk_fraction"] = f
    # 20 km of metro fibre; the DCF grows with it so that the link stays dispersion-free (as it would be
    # re-sized in the lab): D_dcf L_dcf = -(D L)_edge+metro
    parts[f"metro_fibre{c}"]["length_km"] = METRO_KM
    smf = sum(parts[f"{f}{c}"]["dispersion_ps_nm_km"] * parts[f"{f}{c}"]["length_km"]
              for f in ("edge_fibre", "metro_fibre"))
    parts[f"dcf{c}"]["length_km"] = round(-smf / parts[f"dcf{c}"]["dispersion_ps_nm_km"], 6)
    for k, v0 in PHASE_OFFSETS.items():
        parts[f"mzm{c}_{k + 1}"]["phase_offset_v"] = v0
    for (q, k), shift in RING_SHIFTS.items():
        parts[f"bank{c}_{q + 1}"]["resonance_wavelengths"][k] += shift
    return data


# -- closed forms from a bench description (core c) ------------------------------------------------------


def channel_wavelengths(data: dict, c: int) -> np.ndarray:
    return np.array([ch["wavelength_m"] for ch in data["opu"]["cores"][c - 1]["channels"]])


def ring_centres_v2(data: dict, c: int) -> np.ndarray:
    """(Q, K) heater V^2 putting ring k of bank q on channel k, neighbours cold: (lambda_k - res) / tuning x R."""
    lam = channel_wavelengths(data, c)
    out = np.zeros((N, N))
    for q in range(N):
        bank = data["components"][f"bank{c}_{q + 1}"]
        detuning = lam - np.array(bank["resonance_wavelengths"])
        out[q] = detuning / (bank["tuning_nm_per_mw"] * 1e-9 / 1e-3) * bank["heater_resistance_ohm"]
    return out


def link_delay_s(data: dict, c: int) -> float:
    """Edge + metro + DCF group delay sum L n_g / c (dispersion-compensated: no walk-off left)."""
    parts = data["components"]
    return sum(parts[f"{f}{c}"]["length_km"] * 1e3 * parts[f"{f}{c}"]["group_index"] / C_LIGHT
               for f in ("edge_fibre", "metro_fibre", "dcf"))


def quadrature_error_rad(data: dict, c: int, biases: np.ndarray) -> np.ndarray:
    """theta at DAC code 0 minus the rising quadrature -pi/4, wrapped to (-pi/2, pi/2]."""
    out = []
    for k in range(N):
        m = data["components"][f"mzm{c}_{k + 1}"]
        theta = 0.5 * math.pi * (biases[k] + m["phase_offset_v"]) / m["v_pi"]
        out.append((theta + math.pi / 4 + math.pi / 2) % math.pi - math.pi / 2)
    return np.array(out)


def symbol_s(data: dict) -> float:
    return 1.0 / data["opu"]["symbol_rate_hz"]


# -- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_data() -> dict:
    return load_yaml(BENCH)


@pytest.fixture(scope="module")
def occ3_cal_path(tmp_path_factory) -> Path:
    return ring_core_calibration(tmp_path_factory, 2)


@pytest.fixture(scope="module")
def default_cal_path(tmp_path_factory) -> Path:
    return ring_core_calibration(tmp_path_factory, 0)


@pytest.fixture(scope="module")
def perturbed_bench(tmp_path_factory, bench_data) -> tuple[Path, dict]:
    data = perturbed(bench_data)
    path = tmp_path_factory.mktemp("ring_core_perturbed") / "ring_core_perturbed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, data


@pytest.fixture(scope="module")
def cores_dir(tmp_path_factory, occ3_cal_path, default_cal_path, perturbed_bench) -> Path:
    """open_cores on the perturbed bench with occ1's and occ3's files there already (those cores are as
    written on both benches): it must keep them and calibrate occ2. What the call returned goes to
    first_call.txt."""

    def make(folder: Path) -> None:
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        shutil.copy2(default_cal_path, partial / "occ1.json")
        shutil.copy2(occ3_cal_path, partial / "occ3.json")
        before = {name: (partial / name).stat().st_mtime_ns for name in ("occ1.json", "occ3.json")}
        with labctl.open_bench(perturbed_bench[0], seed=3) as bench:
            cores = open_cores(bench, partial)
            report = {"names": [c.name for c in cores], "types": [type(c).__name__ for c in cores],
                      "calibrated": [c.calibrated for c in cores], "mtimes_before": before,
                      "mtimes_after": {name: (partial / name).stat().st_mtime_ns for name in before}}
        (partial / "first_call.txt").write_text(json.dumps(report))
        partial.rename(folder)

    return shared_file(tmp_path_factory, "ring_core_perturbed_cores", make)


def load_cal(path: Path, core: int = 0):
    """What a file holds for core ``core`` (occ2's was made on the perturbed bench: no bench check here)."""
    return StationaryCalibration.from_section(calfile.load(path, None).section(f"core:occ{core + 1}"), path)


@pytest.fixture(scope="module")
def default_cal(default_cal_path):
    return load_cal(default_cal_path)


@pytest.fixture(scope="module")
def perturbed_cal(cores_dir):
    return load_cal(cores_dir / f"occ{PERTURBED}.json", core=PERTURBED - 1)


@pytest.fixture(scope="module")
def opu(default_cal_path):
    """Core occ1 of the bench as written, with the shared calibration (products only: read-only use)."""
    bench = labctl.open_bench(BENCH, seed=2)
    core = open_opu(bench, default_cal_path)
    yield core
    bench.close()


def random_operands(seed: int, m: int = 64, k: int = 64, n: int = 64):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (m, k)), rng.uniform(-1, 1, (k, n))


def rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


# -- calibration recovers the bench -------------------------------------------------------------------------


def test_calibration_records_every_step(default_cal):
    assert default_cal.steps == list(stcal.STEPS)


@pytest.mark.parametrize("c", [3, 1])
def test_calibration_of_a_core_as_written(c, default_cal_path, occ3_cal_path, bench_data):
    cal = load_cal(default_cal_path if c == 1 else occ3_cal_path, core=c - 1)
    np.testing.assert_allclose(cal.ring_center_p, ring_centres_v2(bench_data, c), atol=0.01)
    crosstalk = bench_data["components"][f"bank{c}_1"]["crosstalk_fraction"]
    np.testing.assert_allclose(cal.thermal_crosstalk, crosstalk, atol=0.005)
    assert abs(cal.input_advance_s - link_delay_s(bench_data, c)) < symbol_s(bench_data)
    assert np.all(np.abs(quadrature_error_rad(bench_data, c, cal.biases_v)) < 0.2)


def test_thermal_crosstalk_of_each_bank_is_recovered(perturbed_cal):
    expected = np.array([CROSSTALK[q] for q in range(N)])
    np.testing.assert_allclose(perturbed_cal.thermal_crosstalk, expected, atol=0.005)


def test_longer_metro_fibre_gives_the_new_delay(perturbed_cal, perturbed_bench, bench_data):
    _, data = perturbed_bench
    new, old = link_delay_s(data, PERTURBED), link_delay_s(bench_data, PERTURBED)
    assert new - old > 40e-6  # 10 km more fibre (+ DCF): ~57 us
    assert abs(perturbed_cal.input_advance_s - new) < symbol_s(data)


def test_other_modulator_built_in_phases_still_give_rising_quadrature(perturbed_cal, perturbed_bench, bench_data):
    _, data = perturbed_bench
    error = quadrature_error_rad(data, PERTURBED, perturbed_cal.biases_v)
    assert np.all(np.abs(error) < 0.2)
    # the same biases on the unperturbed modulators would be off quadrature: the fit followed V0 (a change
    # of 1.5 V moves theta by > 0.45 rad)
    old = quadrature_error_rad(bench_data, PERTURBED, perturbed_cal.biases_v)
    changed = [k for k, v0 in PHASE_OFFSETS.items()
               if abs(v0 - bench_data["components"][f"mzm{PERTURBED}_{k + 1}"]["phase_offset_v"]) > 1.5]
    assert len(changed) >= 3
    assert np.all(np.abs(old[changed]) > 0.2)


def test_moved_ring_resonances_are_found(perturbed_cal, perturbed_bench, bench_data):
    _, data = perturbed_bench
    expected = ring_centres_v2(data, PERTURBED)
    np.testing.assert_allclose(perturbed_cal.ring_center_p, expected, atol=0.01)
    # what calibration found, against where the unmoved ring would be
    moved = perturbed_cal.ring_center_p - ring_centres_v2(bench_data, PERTURBED)
    for (q, k), shift in RING_SHIFTS.items():
        bank = data["components"][f"bank{PERTURBED}_{q + 1}"]
        # 0.1 nm / (0.2 nm/mW) = 0.5 mW, x 500 ohm = 0.25 V^2: more heating for a bluer cold ring
        grows = -shift / (bank["tuning_nm_per_mw"] * 1e-6) * bank["heater_resistance_ohm"]
        assert moved[q, k] == pytest.approx(grows, abs=0.01)
    others = np.ones((N, N), bool)
    others[tuple(np.array(list(RING_SHIFTS)).T)] = False
    assert np.max(np.abs(moved[others])) < 0.01


def test_perturbed_core_computes_to_its_noise(perturbed_bench, cores_dir):
    """Everything the perturbations changed is calibrated out: the product error is the noise the
    calibration predicts, and the core keeps the precision of an unperturbed one."""
    path, _ = perturbed_bench
    a, b = random_operands(21)
    with labctl.open_bench(path, seed=4) as bench:
        core = StationaryOPU(bench, cores_dir / f"occ{PERTURBED}.json", core=PERTURBED - 1)
        y, sigma = core.matmul(a, b, return_error=True)
    observed = rms(y - a @ b)
    assert rms(sigma) == pytest.approx(observed, rel=0.2)     # measured: the estimate is 0.94x the error
    # measured 8.09 bits range here, ~0.5 below the unperturbed core (README: 8.66); one 64^3 product's
    # figure spreads by ~0.1 bits between operand draws, so 7.8 leaves ~3 spreads
    assert error_stats(y, a @ b).bits_range >= 7.8


# -- products -----------------------------------------------------------------------------------------------


def test_calibrated_products_reach_the_readme_precision_with_a_faithful_error_estimate(opu):
    assert isinstance(opu, StationaryOPU) and opu.calibrated
    a, b = random_operands(0)
    y, sigma = opu.matmul(a, b, return_error=True)
    stats = error_stats(y, a @ b)
    # README's precision table: 8.66 bits range / 5.47 ENOB for random 64^3 products on core 1. Over
    # operand draws a product's figures spread by ~0.08 bits (measured 8.47..8.68 / 5.35..5.48 over six
    # seeds): the thresholds sit ~3 spreads below the claim
    assert stats.bits_range >= 8.4 and stats.enob >= 5.2
    assert rms(sigma) == pytest.approx(rms(y - a @ b), rel=0.2)   # measured: 0.85..0.90x the error
    assert opu.last_stats["macs"] == 64 ** 3 and opu.last_stats["calibrated"]
    assert opu.last_stats["clipped_a"] == opu.last_stats["clipped_b"] == 0


@pytest.mark.parametrize("degrade", ["no decoder", "thermal crosstalk ignored"])
def test_a_less_calibrated_core_is_measurably_worse(opu, degrade):
    a, b = random_operands(1)
    good = rms(opu.matmul(a, b) - a @ b)
    cal = copy.deepcopy(opu.calibration)
    if degrade == "no decoder":
        cal.decoder_gain = cal.decoder_offset = None
    else:
        cal.thermal_crosstalk = np.zeros_like(cal.thermal_crosstalk)
    worse = StationaryOPU(opu.bench, cal)
    bad = rms(worse.matmul(a, b) - a @ b)
    # rms over 4096 outputs has a ~1 % sampling spread; without the decoder the error grows ~20 % (heater-DAC
    # steps and heater noise set much of the floor), so 10 % is a margin of ~10 spreads on each side
    assert bad > 1.1 * good


def test_weight_encodings_are_reused_only_for_the_same_weights_and_ring_calibration(opu):
    """The engine keeps the heater volts of weights it has encoded: a hit must be the same weights (not only
    the same fingerprint) under the same ring calibration, or a product would run on other rings' settings."""
    cal = copy.deepcopy(opu.calibration)
    core = StationaryOPU(opu.bench, cal)

    def afresh(weights, calibration):
        return StationaryOPU(opu.bench, calibration)._encoded_weights(weights, calibration)[0]

    w = np.random.default_rng(3).integers(-8, 9, (1, 32, 48)) / 8.0  # dyadic: every sum is exact
    w[0, 0, 0], w[0, 1, 0] = 0.5, -0.5
    first = core._encoded_weights(w, cal)[0]
    assert core._encoded_weights(w.copy(), cal)[0] is first
    swapped = w.copy()
    swapped[0, 0, 0], swapped[0, 1, 0] = -0.5, 0.5  # the same sum, other weights
    got = core._encoded_weights(swapped, cal)[0]
    assert not np.array_equal(got, first) and np.array_equal(got, afresh(swapped, cal))
    held = core._encoded_weights(w, cal)[0]  # w again, in the swapped weights' place
    assert core._encoded_weights(w, cal)[0] is held
    cal.g_span_v = cal.g_span_v * 1.05  # the rings recalibrated in place
    got = core._encoded_weights(w, cal)[0]
    assert not np.array_equal(got, first) and np.array_equal(got, afresh(w, cal))


def test_torch_tensors_in_torch_float32_out(opu):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(24, 40, generator=gen) * 2 - 1
    b = torch.rand(40, 20, generator=gen) * 2 - 1
    y, sigma = opu.matmul(a, b, return_error=True)
    assert isinstance(y, torch.Tensor) and isinstance(sigma, torch.Tensor)
    assert y.dtype == torch.float32 and sigma.dtype == torch.float32
    assert tuple(y.shape) == (24, 20)
    err = (y - a @ b).numpy()
    assert rms(err) < 2 * rms(sigma.numpy())


@pytest.mark.parametrize("shape_a, shape_b", [
    ((2, 3, 5, 20), (20, 7)),
    ((4, 5, 20), (4, 20, 6)),
    ((3, 20), (2, 1, 20, 5)),
    ((20,), (20, 6)),
    ((5, 20), (20,)),
    ((20,), (20,)),
])
def test_batch_and_vector_shapes_follow_np_matmul(opu, shape_a, shape_b):
    rng = np.random.default_rng(7)
    a, b = rng.uniform(-1, 1, shape_a), rng.uniform(-1, 1, shape_b)
    y, sigma = opu.matmul(a, b, return_error=True)
    ref = np.matmul(a, b)
    assert np.shape(y) == ref.shape and np.shape(sigma) == ref.shape
    assert np.all(np.asarray(sigma) > 0)
    assert np.all(np.abs(y - ref) < 6 * np.asarray(sigma))  # within noise, element by element
    if ref.size > 1:  # not a constant or a copy: it tracks the reference
        assert np.corrcoef(np.ravel(y), np.ravel(ref))[0, 1] > 0.95


@pytest.mark.parametrize("a, b, words", [
    (np.ones((4, 20)), np.ones((19, 3)), "do not match"),
    (np.ones((2, 4, 16)), np.ones((3, 16, 5)), "broadcast"),
    (np.full((4, 16), np.nan), np.ones((16, 3)), "NaN"),
    (np.ones((4, 16)), np.array([[np.inf] * 3] * 16), "NaN or infinite"),
    (np.float64(2.0), np.ones((1, 3)), "dimension"),
])
def test_bad_operands_raise_value_error(opu, a, b, words):
    with pytest.raises(ValueError, match=words):
        opu.matmul(a, b)


def test_scale_smaller_than_the_operand_clips_with_a_warning(opu):
    a, b = random_operands(5, 32, 32, 16)
    rows = [0, 3, 9]
    a[0, 0], a[3, 7], a[9, 1] = 2.5, -2.2, 1.8  # three values beyond scale_a = 1
    with pytest.warns(EncodingRangeWarning, match="clipped 3 value"):
        y, sigma = opu.matmul(a, b, scale_a=1.0, return_error=True)
    assert opu.last_stats["clipped_a"] == 3
    assert opu.last_stats["clipped_b"] == 0
    clipped = np.clip(a, -1, 1) @ b  # what the core computed: the clipped a
    assert np.all(np.abs(y - clipped) < 6 * sigma)
    assert rms((y - a @ b)[rows]) > 3 * rms(sigma[rows])  # and not the unclipped product
    with warnings.catch_warnings():
        warnings.simplefilter("error", EncodingRangeWarning)
        opu.matmul(np.clip(a, -1, 1), b, scale_a=1.0)  # nothing beyond the scale: no warning
    assert opu.last_stats["clipped_a"] == 0


# -- calibration files ---------------------------------------------------------------------------------------


def test_calibration_file_round_trip(default_cal_path, tmp_path):
    with labctl.open_bench(BENCH, seed=1) as bench:
        with pytest.warns(DeprecationWarning, match=r"labctl\.opu\.open_opu\(bench\)"):
            core = labctl.OPU(bench, default_cal_path)     # the old entry point still opens the first core
        assert isinstance(core, StationaryOPU) and core.calibrated and core.name == "occ1"
        again = tmp_path / "again.json"
        calfile.save(again, {"core:occ1": core.calibration.to_section()}, bench_name=bench.config.name,
                     bench_fingerprint=calfile.bench_fingerprint(bench), operating_point=core.operating_point())
        reloaded = open_opu(bench, again).calibration
    for key, value in core.calibration.to_section().items():
        got = getattr(reloaded, key)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got, value, err_msg=key)
            assert got.dtype == np.float64
        else:
            assert got == value, key


def test_a_calibration_file_of_another_bench_is_refused(default_cal_path, tmp_path):
    section = calfile.load(default_cal_path, None).section("core:occ1")
    other = load_bench_file(OTHER_BENCH)
    foreign = tmp_path / "foreign.json"
    calfile.save(foreign, {"core:occ1": section}, bench_name=other["name"],
                 bench_fingerprint=calfile.bench_fingerprint(other))
    with labctl.open_bench(BENCH, seed=1) as bench:
        with pytest.raises(CalibrationBenchMismatch):
            open_opu(bench, foreign)
        with pytest.raises(StationaryOPUError, match="occ2"):  # the file has occ1 only
            StationaryOPU(bench, default_cal_path, core=1)


def test_uncalibrated_core_refuses_products():
    with labctl.open_bench(BENCH, seed=1) as bench:
        core = StationaryOPU(bench)
        assert not core.calibrated
        with pytest.raises(StationaryOPUError, match="not calibrated"):
            core.matmul(np.ones((2, 16)), np.ones((16, 2)))


# -- drift ----------------------------------------------------------------------------------------------------


def _dim_the_light(bench, core):  # 6 dB less light reaches the center (e.g. a dirty connector after the mux)
    bench.sim_adjust("mux1", insertion_loss_db=bench.config.components["mux1"]["insertion_loss_db"] + 6.0)


def _drift_the_modulators(bench, core):  # LiNbO3 bias drift: every modulator's built-in phase moves
    for k in range(N):
        name = f"mzm1_{k + 1}"
        bench.sim_adjust(name, phase_offset_v=bench.config.components[name]["phase_offset_v"] + 0.8)


def _lower_the_laser_setting(bench, core):  # someone turns the lasers 6 dB down through their roles
    core.prepare()
    for laser in core.lasers:
        laser.power = laser.power / 4.0


@pytest.mark.parametrize("perturb", [_dim_the_light, _drift_the_modulators, _lower_the_laser_setting])
def test_drift_check_good_after_calibration_then_recalibrate_after_a_change(default_cal_path, perturb):
    with labctl.open_bench(BENCH, seed=5) as bench:
        core = open_opu(bench, default_cal_path)
        fresh = stcal.drift_check(core)
        assert not fresh.recalibrate and 0.6 < fresh.ratio < 1.5
        assert "still good" in str(fresh)
        perturb(bench, core)
        drifted = stcal.drift_check(core)
        assert drifted.recalibrate and drifted.ratio > 2.0
        assert "recalibrate" in str(drifted)


# -- several cores ---------------------------------------------------------------------------------------------


def test_open_cores_calibrates_missing_cores_then_reuses_their_files(cores_dir, default_cal_path, occ3_cal_path,
                                                                   perturbed_bench, monkeypatch):
    first = json.loads((cores_dir / "first_call.txt").read_text())
    assert first["names"] == ["occ1", "occ2", "occ3"]
    assert first["types"] == ["StationaryOPU"] * 3 and all(first["calibrated"])
    assert first["mtimes_after"] == first["mtimes_before"]  # occ1's and occ3's files used, not rewritten
    assert (cores_dir / "occ1.json").read_bytes() == default_cal_path.read_bytes()
    assert (cores_dir / "occ3.json").read_bytes() == occ3_cal_path.read_bytes()
    files = sorted(p.name for p in cores_dir.glob("occ*.json"))
    assert files == ["occ1.json", "occ2.json", "occ3.json"]
    for name in files:
        assert list(calfile.load(cores_dir / name, None).sections) == [f"core:{name[:-5]}"]
    mtimes = {name: (cores_dir / name).stat().st_mtime_ns for name in files}

    def no_calibration(*args, **kwargs):
        raise AssertionError("open_cores recalibrated a core that has a calibration file")

    monkeypatch.setattr(opu_open, "calibrate_core", no_calibration)
    a, b = random_operands(8, 32, 32, 32)
    with labctl.open_bench(perturbed_bench[0], seed=7) as bench:
        cores = open_cores(bench, cores_dir)
        assert [c.name for c in cores] == ["occ1", "occ2", "occ3"]
        assert all(isinstance(c, StationaryOPU) and c.calibrated for c in cores)
        assert [c.core for c in cores] == [0, 1, 2]
        for c in cores:
            # 32^3 products on the perturbed bench: measured 7.93 (occ2) .. 8.39 bits, spread ~0.1 per draw
            assert error_stats(c.matmul(a, b), a @ b).bits_range >= 7.6, c.name
    assert {name: (cores_dir / name).stat().st_mtime_ns for name in files} == mtimes
