"""link_response, eye_diagram and receiver_snr end to end on the simulated bench, against closed forms.

Expected values come from PHYSICS.md's formulas with the parameters of the bench file: CD fading
nulls sqrt(c / (2 D L lambda^2)), the MZM transfer at quadrature with the RF V_pi, the received power
from the laser and the losses, and the receiver noise (``receiver.Receiver``'s closed-form shot,
thermal and RIN variances, brought to the bandwidth of the photodiode x scope cascade) plus the
scope's ENOB noise range / (2^ENOB sqrt 12).
"""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from scipy import integrate

from experiments.common.link import simulated_fibre_length
from experiments.link_response import first_null_hz
from labctl import open_bench
from labctl.runner import ExperimentError, run_experiment
from sim_backends import CHARACTERISATION_BENCH_PATH
from sim_backends.bench import load_bench_file
from sim_backends.physics.constants import C
from sim_backends.physics.converters import lowpass_response
from sim_backends.physics.receiver import Receiver

BENCH = load_bench_file(CHARACTERISATION_BENCH_PATH)
PARTS = BENCH["components"]
SCOPE = BENCH["instruments"]["scope"]["sim"]["params"]
LASER = BENCH["instruments"]["laser"]["sim"]["params"]
MBX_IL_DB, SWITCH_IL_DB = 0.8, 0.8  # simulated MBX and DiCon defaults (their modules' docstrings)
FS = 256e9  # the experiments' scope sample rate


def datasets(result, *names):
    with h5py.File(result.results_path) as f:
        return [f[name][()] for name in names]


# -- link_response -------------------------------------------------------------------------------


SWEEP = {"f_stop_hz": 25e9, "points": 36, "refine_points": 13, "laser_power_dbm": 10.0, "periods": 4}


@pytest.fixture(scope="module")
def back_to_back(tmp_path_factory):
    """The same sweep with a 0 km span: the cascade's own roll-off (AWG, EO, PD, scope)."""
    result = run_experiment("link_response", out=tmp_path_factory.mktemp("b2b"), seed=1, show_progress=False,
                            overrides={**SWEEP, "fibre_length_km": 0.0, "refine_null": False})
    return datasets(result, "sweep_frequency_hz", "sweep_response_db")


@pytest.mark.parametrize("length_km, table_ghz", [(10, 19.2), (25, 12.1), (50, 8.6), (80, 6.8)])
def test_link_response_finds_the_cd_fading_null(tmp_path, back_to_back, length_km, table_ghz):
    result = run_experiment("link_response", out=tmp_path, seed=2, show_progress=False,
                            overrides={**SWEEP, "fibre_length_km": length_km})
    s = result.summary
    fibre = PARTS["edge_fibre"]
    exact = math.sqrt(C / (2 * fibre["dispersion_ps_nm_km"] * 1e-6 * length_km * 1e3 * 1550e-9**2))
    assert s["expected_first_null_hz"] == pytest.approx(exact, rel=1e-12)
    assert s["first_null_hz"] / 1e9 == pytest.approx(table_ghz, rel=0.01)  # PHYSICS.md table (0.1 GHz steps)
    # README: measured nulls 19.12, 12.12, 8.58, 6.78 GHz against 19.16, 12.12, 8.57, 6.77 (within 0.21 %)
    assert s["first_null_hz"] == pytest.approx(exact, rel=0.004)
    assert s["accumulated_dispersion_ps_per_nm"] == pytest.approx(17.0 * length_km, rel=0.02)
    f, response = datasets(result, "frequency_hz", "response_db")
    assert f[0] == pytest.approx(0.5e9) and response[0] == 0.0 and np.all(np.diff(f) >= 0)
    # divided by the back-to-back sweep (same roll-off), the response is the closed-form fading
    f_sweep, sweep = datasets(result, "sweep_frequency_hz", "sweep_response_db")
    f_b2b, b2b = back_to_back
    np.testing.assert_array_equal(f_sweep, f_b2b)
    fading = np.abs(np.cos(np.pi * f_sweep**2 / (2 * exact**2)))
    # away from the nulls and the deep roll-off, where the tone is >= 25 dB above the lock-in noise
    # (80 km: 16 dB of span loss leave a 0.1 mV tone)
    clear = (fading > 0.3) & (sweep > -6.0)
    np.testing.assert_allclose((sweep - b2b)[clear], 20 * np.log10(fading[clear]), atol=0.5)
    assert response.min() < -25  # and deep at the null
    assert (tmp_path / "link_response.png").stat().st_size > 10_000


def test_link_response_restores_the_span_and_refuses_a_length_on_a_real_bench():
    class RealBench:
        mode = "real"

    with pytest.raises(ExperimentError, match="simulated bench"):
        with simulated_fibre_length(RealBench(), "edge_fibre", 10.0):
            pass
    with simulated_fibre_length(RealBench(), "edge_fibre", None):  # None: nothing to change, fine
        pass
    own_km = PARTS["edge_fibre"]["length_km"]
    with open_bench("characterisation", seed=0) as bench:
        with simulated_fibre_length(bench, "edge_fibre", 10.0):
            assert [a["params"] for a in bench.snapshot()["adjustments"]] == [{"length_km": 10.0}]
        # restored on leaving: the results' snapshot says both changes
        assert [a["params"] for a in bench.snapshot()["adjustments"]] == [{"length_km": 10.0},
                                                                          {"length_km": own_km}]
        with pytest.raises(ExperimentError, match="no fibre 'mzm1'"):
            with simulated_fibre_length(bench, "mzm1", 10.0):
                pass
    assert first_null_hz(10.0) / 1e9 == pytest.approx(19.16, abs=0.01)


# -- closed forms of the receiver ------------------------------------------------------------------


def noise_bandwidths(length_km: float) -> tuple[float, float]:
    """(B_e, B_e for RIN) of the photodiode x scope cascade up to the record's Nyquist frequency.

    The PD draws its white noise on the scope's 256 GSa/s grid; the laser's RIN also crosses the
    fibre, whose dispersion turns part of it into phase noise: weight cos^2(pi D L lambda^2 f^2 / c).
    """
    pd = PARTS["pd1"]
    kappa = PARTS["edge_fibre"]["dispersion_ps_nm_km"] * 1e-6 * length_km * 1e3 * 1550e-9**2 / C

    def h2(f):
        return (lowpass_response(f, pd["bandwidth_hz"], pd["response"], pd["response_order"])
                * lowpass_response(f, SCOPE["bandwidth_hz"], SCOPE["response"], SCOPE["response_order"])) ** 2

    b_e = integrate.quad(h2, 0, FS / 2, limit=400)[0]
    b_rin = integrate.quad(lambda f: h2(f) * math.cos(np.pi * kappa * f**2) ** 2, 0, FS / 2, limit=400)[0]
    return b_e, b_rin


def receiver_variance_v2(power_w, length_km: float = 2.0) -> np.ndarray:
    """Detector-voltage noise variance (V^2) at optical power P from Receiver's closed forms."""
    pd = PARTS["pd1"]
    rx = Receiver(pd["responsivity_a_per_w"], pd["dark_current_a"], pd["bandwidth_hz"], pd["load_ohm"],
                  rin_db_per_hz=LASER["rin_db_per_hz"], response=pd["response"],
                  response_order=pd["response_order"])
    var = rx.noise_variances(np.asarray(power_w, dtype=float))
    b_e, b_rin = noise_bandwidths(length_km)
    per_hz = 1 / rx.noise_bandwidth_hz  # Receiver's variances are PSD x its own B_e
    current2 = (var["shot"] + var["thermal"]) * per_hz * b_e + var["rin"] * per_hz * b_rin
    return pd["load_ohm"] ** 2 * current2


def scope_variance_v2(range_v: float) -> float:
    return (range_v / (2 ** SCOPE["enob"] * math.sqrt(12))) ** 2


def received_power(mzm_transmission, laser_dbm=7.0, extra_db=0.0):
    """Power at the photodiode: laser x MZM x MBX x fibre x switch (bench file values)."""
    fibre = PARTS["edge_fibre"]
    loss_db = MBX_IL_DB + SWITCH_IL_DB + fibre["length_km"] * fibre["attenuation_db_per_km"] + extra_db
    return 1e-3 * 10 ** (laser_dbm / 10) * np.asarray(mzm_transmission) * 10 ** (-loss_db / 10)


def mzm_at_quadrature(v_rf):
    """MZM power transmission at quadrature (positive slope) with RF voltage v_rf (PHYSICS.md section 3)."""
    m = PARTS["mzm1"]
    il = 10 ** (-m["insertion_loss_db"] / 10)
    eps = 1 / (10 ** (m["extinction_ratio_db"] / 10) + 1)
    return il * (eps + (1 - 2 * eps) * (1 + np.sin(np.pi * np.asarray(v_rf) / m["v_pi_rf"])) / 2)


#: The default bench with an ideal-noise AWG (ENOB = its 8 bits: no excess noise on held codes).
QUIET_AWG = {"awg.enob_bits": 8.0}


# -- eye_diagram -----------------------------------------------------------------------------------


def test_nrz_eye_levels_noise_and_q_match_the_closed_form(tmp_path):
    # 2 GBd: 32 DAC samples per symbol, the symbol centre is settled (no ISI): the eye is noise-limited
    result = run_experiment("eye_diagram", changes=QUIET_AWG, out=tmp_path, seed=3, show_progress=False,
                            overrides={"symbol_rate_hz": 2e9, "pattern_symbols": 8192, "periods": 1})
    means, sigmas = datasets(result, "level_means_v", "level_sigmas_v")
    pd = PARTS["pd1"]
    power = received_power(mzm_at_quadrature([-0.5, 0.5]))  # +-1 of a 1 Vpp drive = -+0.5 V
    expected_means = pd["load_ohm"] * (pd["responsivity_a_per_w"] * power + pd["dark_current_a"])
    expected_sigmas = np.sqrt(receiver_variance_v2(power) + scope_variance_v2(result.summary["scope_range_v"]))
    q = (expected_means[1] - expected_means[0]) / expected_sigmas.sum()
    np.testing.assert_allclose(means, expected_means, rtol=0.01)
    np.testing.assert_allclose(sigmas, expected_sigmas, rtol=0.05)
    assert result.summary["q_factor"] == pytest.approx(q, rel=0.05)
    assert result.summary["ser_estimate"] == pytest.approx(0.5 * math.erfc(result.summary["q_factor"] / math.sqrt(2)))
    assert (tmp_path / "eye_diagram.png").stat().st_size > 10_000


def test_pam4_eye_has_the_four_levels_of_the_mzm_transfer(tmp_path):
    result = run_experiment("eye_diagram", out=tmp_path, seed=5, show_progress=False,
                            overrides={"format": "pam4", "symbol_rate_hz": 4e9, "pattern_symbols": 2048})
    (means,) = datasets(result, "level_means_v")
    pd = PARTS["pd1"]
    power = received_power(mzm_at_quadrature(0.5 * np.array([-1, -1 / 3, 1 / 3, 1])))
    np.testing.assert_allclose(means, pd["load_ohm"] * (pd["responsivity_a_per_w"] * power + pd["dark_current_a"]),
                               rtol=0.015)
    assert result.summary["q_factor"] > 3  # the noise-limited eyes are open (closed form: ~ 6.8)
    assert (tmp_path / "eye_diagram.png").exists()


# -- receiver_snr ------------------------------------------------------------------------------------


def test_receiver_snr_follows_the_receiver_noise_closed_form(tmp_path):
    attenuations = [1.0, 6.0, 12.0, 20.0]
    result = run_experiment("receiver_snr", out=tmp_path, seed=6, show_progress=False,
                            overrides={"attenuations_db": attenuations, "record_length": 131072})
    power, signal, noise, snr_db, enob, bits, ranges = datasets(
        result, "received_power_w", "signal_v", "noise_rms_v", "snr_db", "enob_sine_bits", "bits_range",
        "scope_range_v")
    pd = PARTS["pd1"]
    # the power meter and the photodiode sit behind equal switch ports: signal = R P x load
    np.testing.assert_allclose(signal, pd["responsivity_a_per_w"] * pd["load_ohm"] * power, rtol=0.01)
    # the VOA steps the received power by the set attenuations (above the MBX's 0.8 dB insertion loss)
    np.testing.assert_allclose(10 * np.log10(power[0] / power), np.array(attenuations) - attenuations[0], atol=0.05)
    expected_noise2 = receiver_variance_v2(power) + np.array([scope_variance_v2(r) for r in ranges])
    np.testing.assert_allclose(noise**2, expected_noise2, rtol=0.05)
    expected_snr_db = 10 * np.log10(signal**2 / expected_noise2)
    np.testing.assert_allclose(snr_db, expected_snr_db, atol=0.25)
    # both conventions, as stated
    np.testing.assert_allclose(enob, (snr_db - 1.76) / 6.02)
    np.testing.assert_allclose(bits, np.log2(signal / noise))
    # at the strongest power the RIN of the -145 dB/Hz laser is a large share of the noise
    b_e, b_rin = noise_bandwidths(2.0)
    rin_share = (10 ** (LASER["rin_db_per_hz"] / 10) * (pd["responsivity_a_per_w"] * power[0]) ** 2 * b_rin
                 * pd["load_ohm"] ** 2 / noise[0] ** 2)
    assert 0.3 < rin_share < 0.9
    assert result.summary["volts_per_watt"] == pytest.approx(pd["responsivity_a_per_w"] * pd["load_ohm"], rel=0.01)
    assert (tmp_path / "receiver_snr.png").exists()


@pytest.mark.parametrize("samples", [2600, 1024])
def test_link_response_asks_the_awg_which_segment_lengths_it_plays(tmp_path, samples):
    # the M8195A's rule (multiples of 256, at least 1280), read from its role, refused before measuring
    with pytest.raises(ExperimentError, match="multiples of 256 samples, at least 1280"):
        run_experiment("link_response", out=tmp_path, show_progress=False, overrides={"segment_samples": samples})
