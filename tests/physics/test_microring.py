"""Microring weight bank against closed forms: linewidth, energy, FSR periodicity, thermal tuning."""

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

from sim_backends.physics.microring import MicroringBank, add_drop_response, lorentzian


def single(q=1e4, er=20.0, fsr=9e-9, lam0=1550e-9, **kw):
    return MicroringBank(n_rings=1, resonance_wavelengths=[lam0], fsr_m=fsr, q_loaded=q, extinction_db=er, **kw)


@pytest.mark.parametrize("q,er", [(1e4, None), (1e4, 20.0), (3e3, 10.0), (5e4, 30.0)])
def test_fwhm_equals_lambda_over_q(q, er):
    ring = single(q=q, er=er)
    lam0 = 1550e-9
    peak = float(ring.drop(lam0)[0])
    assert peak == pytest.approx(float(ring.drop_peak[0]))

    def f(lam):
        return float(ring.drop(lam)[0]) - peak / 2

    span = 2 * lam0 / q
    fwhm = brentq(f, lam0, lam0 + span, xtol=1e-18) - brentq(f, lam0 - span, lam0, xtol=1e-18)
    assert fwhm == pytest.approx(lam0 / q, rel=1e-6)
    assert float(ring.finesse[0]) == pytest.approx(9e-9 / (lam0 / q))


def test_lorentzian_near_resonance():
    ring = single(q=1e4, er=20.0)
    delta = np.linspace(-2, 2, 201) * ring.fwhm_m[0]
    exact = ring.drop(1550e-9 + delta)
    approx = lorentzian(delta, ring.fwhm_m[0], ring.drop_peak[0])
    assert np.allclose(exact, approx, rtol=0.01)


def test_energy_lossless_and_lossy():
    lam = 1550e-9 + np.linspace(-9e-9, 9e-9, 20001)
    lossless = single(er=None)
    assert np.allclose(lossless.through(lam) + lossless.drop(lam), 1.0, atol=1e-12)
    assert float(lossless.drop(1550e-9)[0]) == pytest.approx(1.0)  # symmetric lossless ring drops everything
    lossy = single(er=15.0)
    total = lossy.through(lam) + lossy.drop(lam)
    assert np.all(total < 1.0) and np.min(total) < 0.95  # loss is largest on resonance
    t = lossy.through(lam)
    assert 10 * np.log10(t.max() / t.min()) == pytest.approx(15.0, abs=0.01)  # configured extinction
    bank = MicroringBank(n_rings=4, extinction_db=None)
    heat = np.array([1e-3, 0.0, 2.5e-3, 0.5e-3])
    assert np.allclose(bank.through(lam, heat) + bank.drop(lam, heat), 1.0, atol=1e-12)
    lossy_bank = MicroringBank(n_rings=4, extinction_db=20.0)
    assert np.all(lossy_bank.through(lam) + lossy_bank.drop(lam) < 1.0)


def test_add_drop_closed_form_lossless_sum():
    phase = np.linspace(-np.pi, np.pi, 101)
    t, d = add_drop_response(phase, 0.9, 0.8, 1.0)
    # asymmetric lossless ring: still T + D = 1; drop peak = (1 - r1^2)(1 - r2^2) / (1 - r1 r2)^2
    assert np.allclose(t + d, 1.0)
    assert float(add_drop_response(0.0, 0.9, 0.8, 1.0)[1]) == pytest.approx(0.19 * 0.36 / (1 - 0.72) ** 2)


def test_periodic_in_fsr():
    bank = MicroringBank(n_rings=3, fsr_m=8e-9)
    lam = 1550e-9 + np.linspace(0, 8e-9, 997)
    heat = np.array([0.3e-3, 1e-3, 0.0])
    for n in (1, -2):
        assert np.allclose(bank.drop(lam + n * 8e-9, heat), bank.drop(lam, heat), atol=1e-9)
        assert np.allclose(bank.through(lam + n * 8e-9, heat), bank.through(lam, heat), atol=1e-9)


def test_heater_tuning_and_thermal_crosstalk():
    bank = MicroringBank(n_rings=4, tuning_nm_per_mw=0.2, crosstalk_fraction=0.08, heater_resistance_ohm=400.0)
    volts = np.array([2.0, 0.0, 0.0, 0.0])
    power = bank.heater_power(volts)
    assert power[0] == pytest.approx(4.0 / 400.0) and np.all(power[1:] == 0)
    shifts = bank.shifts(power)
    own = 0.2e-9 * 10.0  # 0.2 nm/mW x 10 mW = 2 nm
    assert shifts == pytest.approx(own * np.array([1.0, 0.08, 0.08**2, 0.08**3]))
    # the neighbour's drop peak moves by the configured fraction of the heated ring's shift
    ring1 = bank.resonance_wavelengths[1]

    def neg_drop(lam, p):
        return -bank.ring_responses(lam, p)[1][1, 0]

    def peak(p):
        return minimize_scalar(neg_drop, bounds=(ring1 - 0.1e-9, ring1 + 0.3e-9), args=(p,), method="bounded",
                               options={"xatol": 1e-16}).x

    moved = peak(power) - peak(np.zeros(4))
    assert moved == pytest.approx(0.08 * own, rel=1e-4)
    # red shift of the heated ring itself
    assert bank.resonances(power)[0] - bank.resonance_wavelengths[0] == pytest.approx(own)
    # batched heater settings broadcast
    batch = np.stack([power, 2 * power])
    assert bank.drop(np.array([1550e-9, 1551e-9]), batch).shape == (2, 2)


def test_weight_bank_balanced_weight_range():
    bank = MicroringBank(n_rings=4, extinction_db=None)
    lam = bank.resonance_wavelengths
    w_on = bank.weight(lam)  # each channel on its own ring's resonance: fully dropped
    assert np.allclose(w_on, 1.0, atol=1e-3)
    detuned = bank.weight(lam, np.full(4, 5e-3))  # 1 nm detuning >> linewidth: mostly through
    assert np.all(detuned < -0.9)


def test_non_physical_parameters_raise():
    with pytest.raises(ValueError, match="q_loaded"):
        single(q=100.0)  # finesse below 2 at FSR 9 nm
    with pytest.raises(ValueError, match="fsr_m"):
        MicroringBank(fsr_m=-1e-9)
    with pytest.raises(ValueError, match="extinction_db"):
        single(er=-3.0)
    with pytest.raises(ValueError, match="crosstalk_fraction"):
        MicroringBank(crosstalk_fraction=1.5)
    with pytest.raises(ValueError, match="heater_resistance_ohm"):
        MicroringBank(heater_resistance_ohm=0.0)
    with pytest.raises(ValueError, match="heater_powers"):
        MicroringBank(n_rings=2).drop(1550e-9, [-1e-3, 0.0])
    with pytest.raises(ValueError, match="crosstalk_matrix"):
        MicroringBank(n_rings=2, crosstalk_matrix=[[1.0, 0.1], [0.1, 0.5]])
