"""Receiver noise against PHYSICS.md section 3 closed forms and the worked example."""

import numpy as np
import pytest

from sim_backends.physics.constants import C, H, K_B, Q
from sim_backends.physics.receiver import Receiver, snr_to_enob

NU = C / 1550e-9


def worked_example(**kwargs):
    return Receiver(responsivity=0.9, dark_current=0.0, bandwidth_hz=20e9, load_ohm=50.0,
                    rin_db_per_hz=-145.0, temperature_k=300.0, **kwargs)


def edfa_ssp(gain_db=20.0, nf_db=5.0):
    """S_sp = n_sp (G - 1) h nu with n_sp = NF G / (2 (G - 1)) (PHYSICS.md section 3, EDFA)."""
    g, nf = 10 ** (gain_db / 10), 10 ** (nf_db / 10)
    return nf * g / (2 * (g - 1)) * (g - 1) * H * NU


def test_worked_example_numbers():
    var = worked_example().noise_variances(1e-3)
    assert var["shot"] == pytest.approx(2 * Q * 0.9e-3 * 20e9) and var["shot"] == pytest.approx(5.8e-12, rel=0.01)
    assert var["thermal"] == pytest.approx(6.6e-12, rel=0.01)  # 4kT B / 50 ohm at T = 300 K
    assert var["rin"] == pytest.approx(5.1e-11, rel=0.01)
    assert var["rin"] > var["shot"] + var["thermal"]  # "RIN dominates"
    snr_db = float(worked_example().snr_db(1e-3))
    assert snr_db == pytest.approx(41.0, abs=0.1)
    assert float(snr_to_enob(snr_db)) == pytest.approx(6.5, abs=0.05)
    # at the World's default 295 K the thermal term is 6.5e-12, not 6.6e-12
    assert Receiver(bandwidth_hz=20e9, temperature_k=295.0).noise_variances(0.0)["thermal"] == pytest.approx(
        4 * K_B * 295 * 20e9 / 50)


def test_worked_example_with_edfa_signal_ase_dominates():
    ssp = edfa_ssp()
    rx = worked_example()
    var = rx.noise_variances(1e-3, ase_psd=ssp, optical_bw=50e9)  # -20 dBm + 20 dB gain = 1 mW
    assert var["signal_ase"] == pytest.approx(4 * 0.81 * 1e-3 * ssp * 20e9)
    assert var["signal_ase"] > 0.9 * var["total"]
    snr_db = float(rx.snr_db(1e-3, ase_psd=ssp, optical_bw=50e9))
    assert snr_db == pytest.approx(28.0, abs=0.5)
    assert float(snr_to_enob(snr_db)) == pytest.approx(4.3, abs=0.1)


def test_each_sampled_noise_term_matches_its_formula():
    ssp = 3e-17
    rx = Receiver(responsivity=0.8, dark_current=5e-9, bandwidth_hz=5e9, load_ohm=50.0,
                  rin_db_per_hz=-130.0, temperature_k=295.0)
    power = np.full(2**17, 2e-3)
    fs = 20e9
    samples = rx.noise_samples(power, fs, np.random.default_rng(7), ase_psd=ssp, optical_bw=12.5e9)
    var = rx.noise_variances(2e-3, ase_psd=ssp, optical_bw=12.5e9)
    # independent closed forms, written out again here
    b, r, p = 5e9, 0.8, 2e-3
    p_ase = 2 * ssp * 12.5e9
    closed = {
        "shot": 2 * Q * (r * p + 5e-9 + r * p_ase) * b,
        "thermal": 4 * K_B * 295 * b / 50,
        "rin": 1e-13 * (r * p) ** 2 * b,
        "signal_ase": 4 * r**2 * p * ssp * b,
        "ase_ase": 2 * r**2 * ssp**2 * (2 * 12.5e9 - b) * b,
    }
    for name, expected in closed.items():
        assert float(var[name]) == pytest.approx(expected, rel=1e-12), name
        assert np.var(samples[name]) == pytest.approx(expected, rel=0.03), name
        assert abs(np.mean(samples[name])) < 0.02 * np.sqrt(expected), name


def test_detect_mean_and_total_variance():
    rx = Receiver(responsivity=0.9, dark_current=2e-9, bandwidth_hz=10e9, rin_db_per_hz=-140.0)
    fs = 40e9
    current = rx.detect(np.full(2**17, 1e-3), fs, np.random.default_rng(3))
    assert np.mean(current) == pytest.approx(0.9e-3 + 2e-9, rel=1e-3)
    assert np.var(current) == pytest.approx(float(rx.noise_variances(1e-3)["total"]), rel=0.03)
    # complex fields in sqrt(W) are squared; a TIA scales volts by its transimpedance
    field = np.full(64, np.sqrt(1e-3) * np.exp(0.4j))
    assert np.allclose(rx.detect(field, fs, None, noise=False), 0.9e-3 + 2e-9)
    tia = Receiver(bandwidth_hz=10e9, tia_gain_ohm=1e3, input_noise_a_per_rthz=20e-12, noise_factor=1.5)
    assert np.allclose(tia.voltage(np.full(64, 1e-4), fs, None, noise=False), (0.9e-4 + 1.5e-9) * 1e3)
    assert float(tia.noise_variances(0.0)["thermal"]) == pytest.approx(1.5 * (20e-12) ** 2 * 10e9)


def test_butterworth_noise_bandwidth_in_samples():
    rx = Receiver(bandwidth_hz=5e9, response="butterworth", response_order=4, dark_current=0.0)
    b_e = 5e9 * (np.pi / 8) / np.sin(np.pi / 8)
    assert rx.noise_bandwidth_hz == pytest.approx(b_e)
    thermal = rx.noise_samples(np.zeros(2**17), 40e9, np.random.default_rng(11))["thermal"]
    assert np.var(thermal) == pytest.approx(4 * K_B * 295 / 50 * b_e, rel=0.03)


def test_signal_dependent_shot_noise_follows_instantaneous_power():
    rx = Receiver(dark_current=0.0, bandwidth_hz=2e9)
    n = 2**16
    power = np.where(np.arange(2 * n) < n, 1e-3, 4e-3)  # two levels, long compared with 1 / B
    shot = rx.noise_samples(power, 16e9, np.random.default_rng(5))["shot"]
    low, high = shot[1000:n - 1000], shot[n + 1000:-1000]
    assert np.var(high) / np.var(low) == pytest.approx(4.0, rel=0.05)


def test_saturation_and_bandwidth_limit():
    rx = Receiver(saturation_current=1e-3, bandwidth_hz=5e9)
    current = rx.detect(np.full(256, 5e-3), 20e9, np.random.default_rng(0))
    assert np.max(current) <= 1e-3 and np.allclose(current, 1e-3)
    with pytest.raises(ValueError, match="fs.*bandwidth_hz"):
        rx.detect(np.ones(16) * 1e-3, 8e9, np.random.default_rng(0))


def test_non_physical_parameters_raise():
    with pytest.raises(ValueError, match="responsivity"):
        Receiver(responsivity=-0.1)
    with pytest.raises(ValueError, match="dark_current"):
        Receiver(dark_current=-1e-9)
    with pytest.raises(ValueError, match="rin_db_per_hz"):
        Receiver(rin_db_per_hz=10.0)
    with pytest.raises(ValueError, match="noise_factor"):
        Receiver(noise_factor=0.5)
    with pytest.raises(ValueError, match="optical_bw"):
        Receiver().noise_variances(1e-3, ase_psd=1e-17)
    with pytest.raises(ValueError, match="power"):
        Receiver().detect(np.array([-1e-3, 1e-3]), 20e9, np.random.default_rng(0))
