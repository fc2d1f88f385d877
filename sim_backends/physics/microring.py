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

How the bank evaluates it: with 1 - cos phi = 2 sin^2(phi / 2) the equal-coupler responses are the Airy form
(the same formulas, rearranged; Bogaerts et al. eq. 5-6)

    L = 1 / (1 + F sin^2(phi / 2)),   F = 4 x / (1 - x)^2,   drop = D_max L,   through = 1 - (1 - T_min) L

with D_max = (1 - r^2)^2 a / (1 - x)^2 and T_min = r^2 (1 - a)^2 / (1 - x)^2. Unlike 1 - 2 x cos phi + x^2, no
term cancels near resonance (at Q 2e4 over a 30 nm FSR, (1 - x)^2 ~ 7e-5 of the terms it is the difference of),
and sin(phi / 2) = sin(A - B) = sin A cos B - cos A sin B splits the detuning into a static part A = pi
(lambda - lambda_res) / FSR per ring and carrier and a heater part B = pi shift / FSR per ring and heater
setting, so a batch of heater settings costs one sine and cosine per ring and setting, then products and
sums in float64 over the carriers, ring by ring (no (settings x rings x carriers) temporaries):
through = (T_min + F sin^2) / (1 + F sin^2).
"""

from __future__ import annotations

import numpy as np

from sim_backends.physics.validation import require_int, require_range

#: values per work array when a bank is evaluated for many heater settings (64 kB of float64): the two work
#: arrays are reused ring after ring and block after block, so a long record of varying heater drives needs
#: no (settings x carriers) temporaries beyond the two results (measured as fast as whole-batch arrays)
_BLOCK_VALUES = 8192

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
        """Resonance shifts in m, (..., n_rings): (d lambda / dP) K P, including thermal crosstalk.

        ``einsum``, not ``@``: for thousands of heater settings ``@`` hands the small product to a multithreaded
        BLAS, whose threads cost milliseconds on a busy machine (and compete with the cores' own threads)."""
        return self.tuning_m_per_w * np.einsum("...j,ij->...i", self._powers(heater_powers), self.crosstalk_matrix)

    def resonances(self, heater_powers=None) -> np.ndarray:
        return self.resonance_wavelengths + self.shifts(self._powers(heater_powers))

    # -- optical responses ----------------------------------------------------------------------

    def _airy_terms(self, wavelength, heater_powers):
        """sqrt(F) sin A and sqrt(F) cos A (n_rings, n_wavelengths), sin B and cos B (..., n_rings), D_max and
        T_min (n_rings): with these sqrt(F) sin(phi / 2) = sqrt(F) sin A cos B - sqrt(F) cos A sin B."""
        lam = np.atleast_1d(np.asarray(wavelength, dtype=float))
        if lam.ndim != 1:
            raise ValueError(f"wavelength must be a number or a 1-D array of wavelengths, not shape {lam.shape}")
        x = self.a * self.r**2
        contrast = (np.sqrt(4 * x) / (1 - x))[:, None]
        static = np.pi * (lam - self.resonance_wavelengths[:, None]) / self.fsr_m
        heater = np.pi * self.shifts(self._powers(heater_powers)) / self.fsr_m
        through_min = (self.r * (1 - self.a)) ** 2 / (1 - x) ** 2
        return (contrast * np.sin(static), contrast * np.cos(static), np.sin(heater), np.cos(heater),
                self.drop_peak, through_min)

    def ring_responses(self, wavelength, heater_powers=None):
        """(through, drop) of each ring alone, shape (..., n_rings, n_wavelengths)."""
        sin_a, cos_a, sin_b, cos_b, peak, through_min = self._airy_terms(wavelength, heater_powers)
        u2 = (cos_b[..., None] * sin_a - sin_b[..., None] * cos_a) ** 2
        return (u2 + through_min[:, None]) / (1 + u2), peak[:, None] / (1 + u2)

    def _bank(self, wavelength, heater_powers):
        """(through, drop) of the whole bank, shape (..., n_wavelengths), accumulated ring by ring over blocks
        of heater settings in reused buffers (float64 throughout)."""
        sin_a, cos_a, sin_b, cos_b, peak, through_min = self._airy_terms(wavelength, heater_powers)
        lead, n_wl = sin_b.shape[:-1], sin_a.shape[1]
        sin_b, cos_b = sin_b.reshape(-1, self.n_rings), cos_b.reshape(-1, self.n_rings)
        n = sin_b.shape[0]
        through, drop = np.empty((n, n_wl)), np.empty((n, n_wl))
        block = max(1, min(n, _BLOCK_VALUES // n_wl))
        work_u, work_v = np.empty((block, n_wl)), np.empty((block, n_wl))
        for start in range(0, n, block):
            rows = slice(start, start + block)
            t, d = through[rows], drop[rows]
            u, v = work_u[:t.shape[0]], work_v[:t.shape[0]]
            for i in range(self.n_rings):
                np.multiply(cos_b[rows, i, None], sin_a[i], out=u)
                np.multiply(sin_b[rows, i, None], cos_a[i], out=v)
                u -= v
                u *= u  # F sin^2(phi / 2)
                np.add(u, 1.0, out=v)
                u += through_min[i]
                if i == 0:
                    np.divide(u, v, out=t)
                    np.divide(peak[i], v, out=d)
                    continue
                u /= v  # T_i
                np.divide(peak[i], v, out=v)  # D_i
                v *= t  # D_i prod_{j<i} T_j
                d += v
                t *= u
        return through.reshape(*lead, n_wl), drop.reshape(*lead, n_wl)

    def through(self, wavelength, heater_powers=None) -> np.ndarray:
        """Bank through-port power transmission prod_i T_i, shape (..., n_wavelengths)."""
        return self._bank(wavelength, heater_powers)[0]

    def drop(self, wavelength, heater_powers=None) -> np.ndarray:
        """Bank drop-bus power transmission sum_i D_i prod_{j<i} T_j, shape (..., n_wavelengths)."""
        return self._bank(wavelength, heater_powers)[1]

    def weight(self, wavelength, heater_powers=None) -> np.ndarray:
        """Balanced-detection weight drop - through, in [-1, 1]."""
        through, drop = self._bank(wavelength, heater_powers)
        return drop - through
