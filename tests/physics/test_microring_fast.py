"""The bank's fast responses (Airy form, detuning split into a static and a heater part, ring-by-ring
accumulation over blocks of heater settings) against a term-by-term float64 reference: the textbook
add-drop formula per ring at the full phase, the bank's products and sums written out ring by ring."""

import numpy as np
import pytest

from sim_backends.physics.microring import MicroringBank, add_drop_response

#: the system bench's weight banks (sim_backends/benches/ring_core.yaml): 16 rings, Q 2e4 over a 30 nm FSR
CORE_BANK = dict(n_rings=16, fsr_m=30e-9, q_loaded=2e4, extinction_db=20.0, tuning_nm_per_mw=0.2,
                 crosstalk_fraction=0.05, heater_resistance_ohm=500.0)


def core_bank(seed=0, **kw) -> MicroringBank:
    spread = np.random.default_rng(seed).random(16) * 0.2e-9  # fabrication offsets, as on the bench
    return MicroringBank(resonance_wavelengths=1530e-9 + np.arange(16) * 1.6e-9 + spread, **{**CORE_BANK, **kw})


def reference(bank: MicroringBank, wavelengths, powers):
    """(ring through, ring drop, bank through, bank drop) term by term in float64."""
    lam = np.atleast_1d(np.asarray(wavelengths, dtype=np.float64))
    powers = np.asarray(powers, dtype=np.float64)
    shifts = bank.tuning_nm_per_mw * 1e-6 * np.matmul(powers, bank.crosstalk_matrix.T)
    resonances = bank.resonance_wavelengths + shifts  # (..., n_rings)
    phase = 2 * np.pi * (lam - resonances[..., :, None]) / bank.fsr_m
    r, a = bank.r[:, None], bank.a[:, None]
    ring_t, ring_d = add_drop_response(phase, r, r, a)
    through = np.ones(powers.shape[:-1] + lam.shape)
    drop = np.zeros_like(through)
    for i in range(bank.n_rings):
        drop = drop + ring_d[..., i, :] * through
        through = through * ring_t[..., i, :]
    return ring_t, ring_d, through, drop


def test_core_bank_matches_reference_over_many_heater_settings():
    bank = core_bank()
    lam = 1530e-9 + np.arange(16) * 1.6e-9  # the core's carriers
    # more settings than one work block holds, and not a multiple of it; heaters up to ~10 mW (2 nm shifts:
    # every carrier crosses some ring's resonance somewhere in the batch)
    powers = np.random.default_rng(1).random((1300, 16)) * 10e-3
    ring_t, ring_d, through, drop = reference(bank, lam, powers)
    assert np.allclose(bank.through(lam, powers), through, rtol=1e-9, atol=0)
    assert np.allclose(bank.drop(lam, powers), drop, rtol=1e-9, atol=0)
    assert np.allclose(bank.weight(lam, powers), drop - through, rtol=0, atol=1e-10)
    fast_t, fast_d = bank.ring_responses(lam, powers)
    assert np.allclose(fast_t, ring_t, rtol=1e-9, atol=0)
    assert np.allclose(fast_d, ring_d, rtol=1e-9, atol=0)
    assert drop.max() > 0.5 * bank.drop_peak.min()  # the batch does reach resonances (not only the tails)


@pytest.mark.parametrize("extinction_db", [None, 20.0, 6.0])
def test_on_and_near_resonance_every_loss(extinction_db):
    bank = core_bank(extinction_db=extinction_db)
    ring = 5
    # the carrier swept across ring 5's resonance in steps of a tenth of its linewidth
    lam = bank.resonance_wavelengths[ring] + np.linspace(-3, 3, 61) * bank.fwhm_m[ring]
    powers = np.zeros(16)
    ring_t, ring_d, through, drop = reference(bank, lam, powers)
    assert np.allclose(bank.drop(lam, powers), drop, rtol=1e-9, atol=0)
    assert np.allclose(bank.through(lam, powers), through, rtol=1e-9, atol=1e-15)
    assert float(bank.ring_responses(bank.resonance_wavelengths[ring])[1][ring, 0]) == pytest.approx(
        float(bank.drop_peak[ring]), rel=1e-12)


def test_leading_heater_axes_and_scalar_wavelength():
    bank = core_bank(seed=3)
    powers = np.random.default_rng(2).random((3, 4, 16)) * 5e-3
    lam = 1541.1e-9
    _, _, through, drop = reference(bank, lam, powers)
    assert bank.drop(lam, powers).shape == (3, 4, 1)
    assert np.allclose(bank.drop(lam, powers), drop, rtol=1e-9, atol=0)
    assert np.allclose(bank.through(lam, powers), through, rtol=1e-9, atol=0)
    assert bank.drop(lam).shape == (1,)  # heaters off
    assert bank.drop([lam, lam], np.zeros((0, 16))).shape == (0, 2)  # an empty batch of settings


def test_wavelengths_must_be_one_dimensional():
    with pytest.raises(ValueError, match="wavelength"):
        core_bank().drop(np.full((2, 3), 1550e-9))
