"""Add-drop microring resonators and a thermally tuned microring weight bank.

Single ring (Bogaerts et al., "Silicon microring resonators", Laser Photonics Rev. 6, 47 (2012)):
self-coupling r1, r2, round-trip amplitude a, round-trip phase detuning phi = 2 pi (lambda - lambda_res) / FSR,

    through = (a^2 r2^2 - 2 a r1 r2 cos phi + r1^2) / (1 - 2 a r1 r2 cos phi + (a r1 r2)^2)
    drop    = (1 - r1^2) (1 - r2^2) a / (1 - 2 a r1 r2 cos phi + (a r1 r2)^2)

periodic in lambda with period FSR (FSR dispersion neglected). With x = a r1 r2 the half-maximum
points sit at cos phi = 1 - (1 - x)^2 / (2 x); near resonance the drop is the Lorentzian
D_max / (1 + (2 delta / FWHM)^2), FWHM = lambda_res / Q_L, finesse F = FSR / FWHM.

Parameterisation: equal couplers r1 = r2 = r (the usual weight-bank design). Q_L fixes x; the
through-port extinction ER = T_max / T_min = [(1 + a)(1 - x) / ((1 - a)(1 + x))]^2 then fixes a, and
r = sqrt(x / a). ``extinction_db=None`` means lossless (a = 1, through + drop = 1, infinite ER).

Thermal tuning: shift_i = (d lambda / dP) sum_j K_ij P_j with K_ii = 1 and, by default,
K_ij = f^|i - j| (geometric decay of the neighbour fraction f with ring index distance; heat spreads
diffusively through the oxide and substrate so the coupling falls off quickly with distance).
Heater power P = V^2 / R. Heating red-shifts silicon rings (dn/dT > 0).

Bank (rings in series on one input bus, drops collected on a common drop bus, powers added):
    through_bank = prod_i T_i,    drop_bank = sum_i D_i prod_{j<i} T_j
which conserves power for lossless rings (re-filtering of dropped light by other rings on the drop bus
is neglected: exact when the channels are separated by many linewidths).
"""

from __future__ import annotations

import numpy as np

from sim_backends.physics.validation import require_int, require_range


def add_drop_response(phase, r1, r2, a):
    """(through, drop) power transmissions of an add-drop ring at round-trip phase detuning ``phase``."""
    c = np.cos(phase)
    x = a * r1 * r2
    den = 1 - 2 * x * c + x**2
    through = (a**2 * r2**2 - 2 * a * r1 * r2 * c + r1**2) / den
    drop = (1 - r1**2) * (1 - r2**2) * a / den
    return through, drop


def lorentzian(delta, fwhm, peak=1.0):
    """peak / (1 + (2 delta / fwhm)^2): the near-resonance drop response."""
    return peak / (1 + (2 * np.asarray(delta) / fwhm) ** 2)


def coupling_from_q(q_loaded, resonance_m, fsr_m, extinction_db=None):
    """(r, a) of a symmetric add-drop ring with loaded Q and through-port extinction (dB; None = lossless)."""
    fwhm_phase = 2 * np.pi * (resonance_m / q_loaded) / fsr_m
    c = 1 - np.cos(fwhm_phase / 2)
    x = (1 + c) - np.sqrt((1 + c) ** 2 - 1)
    if extinction_db is None or np.isinf(extinction_db):
        a = np.ones_like(x)
    else:
        g = np.sqrt(10 ** (extinction_db / 10)) * (1 + x) / (1 - x)
        a = (g - 1) / (g + 1)
    return np.sqrt(x / a), a


class MicroringBank:
    """Bank of thermally tuned add-drop silicon microrings (broadcast-and-weight weight bank).

    Defaults (dagger: typical published figures, not re-verified): 4 rings; resonances 1550 nm +
    k FSR / n_rings (evenly spread over one FSR); FSR 9 nm (radius 10 um, n_g ~4.2:
    FSR = lambda^2 / (n_g 2 pi R)); loaded Q 10^4 and through extinction 20 dB (Tait et al.,
    "Microring weight banks", IEEE JSTQE 22(6) (2016), Q ~10^4 class); tuning 0.2 nm/mW (0.1-0.25
    nm/mW for Si rings with TiN/doped-Si heaters; Padmaraju & Bergman, Nanophotonics 3, 269 (2014)
    review); thermal crosstalk 5 % to the nearest neighbour (a few to ~10 % at tens-of-um pitch;
    Tait et al., "Feedback control for microring weight banks", Opt. Express 26, 26422 (2018),
    measured thermal crosstalk matrices); heater 500 ohm (matches components.Heater).
    ``crosstalk_matrix`` (n x n, unit diagonal) overrides the geometric model.
    """

    def __init__(self, n_rings: int = 4, resonance_wavelengths=None, fsr_m: float = 9e-9, q_loaded: float = 1e4,
                 extinction_db: float | None = 20.0, tuning_nm_per_mw: float = 0.2, crosstalk_fraction: float = 0.05,
                 heater_resistance_ohm: float = 500.0, crosstalk_matrix=None):
        self.n_rings = n = require_int("n_rings", n_rings, 1, 1024)
        self.fsr_m = require_range("fsr_m", fsr_m, 1e-12, 1e-6)
        if resonance_wavelengths is None:
            resonance_wavelengths = 1550e-9 + np.arange(n) * self.fsr_m / n
        res = np.broadcast_to(np.asarray(resonance_wavelengths, dtype=float), (n,)).copy()
        for lam in res:
            require_range("resonance_wavelengths", lam, 100e-9, 20e-6)
        self.resonance_wavelengths = res
        self.q_loaded = require_range("q_loaded", q_loaded, 2 * res.max() / self.fsr_m, 1e9)  # finesse >= 2
        self.extinction_db = (None if extinction_db is None or np.isinf(extinction_db)
                              else require_range("extinction_db", extinction_db, 1e-3, 100.0))
        self.tuning_nm_per_mw = require_range("tuning_nm_per_mw", tuning_nm_per_mw, 0.0, 10.0)
        self.crosstalk_fraction = require_range("crosstalk_fraction", crosstalk_fraction, 0.0, 1.0)
        self.heater_resistance_ohm = require_range("heater_resistance_ohm", heater_resistance_ohm, 1e-3, 1e9)
        if crosstalk_matrix is None:
            idx = np.arange(n)
            k = self.crosstalk_fraction ** np.abs(idx[:, None] - idx[None, :]).astype(float)
        else:
            k = np.asarray(crosstalk_matrix, dtype=float)
            if k.shape != (n, n) or not np.allclose(np.diag(k), 1.0) or k.min() < 0 or k.max() > 1:
                raise ValueError(f"crosstalk_matrix must be {n} x {n} with unit diagonal and entries in [0, 1]")
        self.crosstalk_matrix = k
        self.r, self.a = coupling_from_q(self.q_loaded, res, self.fsr_m, self.extinction_db)

    # -- derived figures --------------------------------------------------------------------------

    @property
    def fwhm_m(self) -> np.ndarray:
        """Linewidth lambda_res / Q_L per ring."""
        return self.resonance_wavelengths / self.q_loaded

    @property
    def finesse(self) -> np.ndarray:
        return self.fsr_m / self.fwhm_m

    @property
    def drop_peak(self) -> np.ndarray:
        """Drop transmission on resonance, (1 - r^2)^2 a / (1 - a r^2)^2."""
        return (1 - self.r**2) ** 2 * self.a / (1 - self.a * self.r**2) ** 2

    @property
    def tuning_m_per_w(self) -> float:
        return self.tuning_nm_per_mw * 1e-9 / 1e-3

    # -- heaters --------------------------------------------------------------------------------

    def heater_power(self, voltages) -> np.ndarray:
        """P = V^2 / R, in W."""
        return np.asarray(voltages, dtype=float) ** 2 / self.heater_resistance_ohm

    def _powers(self, heater_powers) -> np.ndarray:
        if heater_powers is None:
            return np.zeros(self.n_rings)
        p = np.asarray(heater_powers, dtype=float)
        if p.shape[-1:] != (self.n_rings,):
            raise ValueError(f"heater_powers must have last axis of length n_rings={self.n_rings}")
        if p.size and p.min() < 0:
            raise ValueError("heater_powers must be >= 0 W")
        return p

    def shifts(self, heater_powers) -> np.ndarray:
        """Resonance shifts in m, (..., n_rings): (d lambda / dP) K P, including thermal crosstalk."""
        return self.tuning_m_per_w * (self._powers(heater_powers) @ self.crosstalk_matrix.T)

    def resonances(self, heater_powers=None) -> np.ndarray:
        return self.resonance_wavelengths + self.shifts(self._powers(heater_powers))

    # -- optical responses ----------------------------------------------------------------------

    def ring_responses(self, wavelength, heater_powers=None):
        """(through, drop) of each ring alone, shape (..., n_rings, n_wavelengths)."""
        lam = np.atleast_1d(np.asarray(wavelength, dtype=float))
        res = self.resonances(heater_powers)[..., :, None]
        phase = 2 * np.pi * (lam - res) / self.fsr_m
        return add_drop_response(phase, self.r[:, None], self.r[:, None], self.a[:, None])

    def through(self, wavelength, heater_powers=None) -> np.ndarray:
        """Bank through-port power transmission prod_i T_i, shape (..., n_wavelengths)."""
        t, _ = self.ring_responses(wavelength, heater_powers)
        return np.prod(t, axis=-2)

    def drop(self, wavelength, heater_powers=None) -> np.ndarray:
        """Bank drop-bus power transmission sum_i D_i prod_{j<i} T_j, shape (..., n_wavelengths)."""
        t, d = self.ring_responses(wavelength, heater_powers)
        upstream = np.concatenate([np.ones_like(t[..., :1, :]), np.cumprod(t, axis=-2)[..., :-1, :]], axis=-2)
        return np.sum(d * upstream, axis=-2)

    def weight(self, wavelength, heater_powers=None) -> np.ndarray:
        """Balanced-detection weight drop - through, in [-1, 1]."""
        return self.drop(wavelength, heater_powers) - self.through(wavelength, heater_powers)
