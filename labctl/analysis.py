"""Fits of measured device curves, shared by experiments and calibration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares


@dataclass(frozen=True)
class MZMFit:
    """A fitted Mach-Zehnder transfer curve P(V) = a + b cos(pi (V + V0) / V_pi).

    Equivalent to P_in IL [eps + (1 - 2 eps) cos^2(pi (V + V0) / (2 V_pi))] (PHYSICS.md section 3),
    with P_max = a + b, P_min = a - b.
    """

    v_pi: float
    phase_offset_v: float
    p_max: float
    p_min: float
    rms_residual: float

    @property
    def extinction_ratio_db(self) -> float:
        return float(10 * np.log10(self.p_max / self.p_min)) if self.p_min > 0 else float("inf")

    def quadrature_bias(self, positive_slope: bool = True, near: float = 0.0) -> float:
        """The bias voltage closest to ``near`` where P is halfway and dP/dV has the requested sign."""
        # P = a + b cos(phi), phi = pi (V + V0)/V_pi; halfway at phi = -pi/2 (dP/dV > 0) or +pi/2.
        phi = -np.pi / 2 if positive_slope else np.pi / 2
        base = phi * self.v_pi / np.pi - self.phase_offset_v
        period = 2 * self.v_pi
        return float(base + period * np.round((near - base) / period))

    def peak_bias(self, near: float = 0.0) -> float:
        """The bias voltage closest to ``near`` where transmission is maximal."""
        period = 2 * self.v_pi
        return float(-self.phase_offset_v + period * np.round((near + self.phase_offset_v) / period))

    def predict(self, volts) -> np.ndarray:
        a = (self.p_max + self.p_min) / 2
        b = (self.p_max - self.p_min) / 2
        return a + b * np.cos(np.pi * (np.asarray(volts) + self.phase_offset_v) / self.v_pi)


def fit_mzm_transfer(volts, power, v_pi_bounds: tuple[float, float] = (0.5, 30.0)) -> MZMFit:
    """Fit V_pi, the bias offset and the extinction of a measured transfer curve.

    For each trial V_pi the model is linear in (a, b cos, b sin), so a grid search over V_pi with
    linear least squares finds the global optimum robustly; a non-linear refinement polishes it.
    The sweep must cover at least about one V_pi for the fit to be determined.
    """
    v = np.asarray(volts, dtype=float)
    p = np.asarray(power, dtype=float)
    if v.shape != p.shape or v.size < 5:
        raise ValueError("need matching voltage and power arrays with at least 5 points")
    if np.ptp(v) < v_pi_bounds[0]:
        raise ValueError(f"the bias sweep spans {np.ptp(v):.3g} V, too little to determine V_pi")
    scale = np.max(np.abs(p)) or 1.0
    y = p / scale

    def linear_fit(v_pi):
        k = np.pi / v_pi
        basis = np.column_stack([np.ones_like(v), np.cos(k * v), np.sin(k * v)])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        return coef, float(np.sum((basis @ coef - y) ** 2))

    grid = np.geomspace(v_pi_bounds[0], v_pi_bounds[1], 600)
    v_pi0 = grid[int(np.argmin([linear_fit(vp)[1] for vp in grid]))]
    (a, c, s), _ = linear_fit(v_pi0)
    b0 = float(np.hypot(c, s))
    v00 = float(np.arctan2(-s, c) * v_pi0 / np.pi)  # b cos(k(V+V0)) = b cos(kV)cos(kV0) - b sin(kV)sin(kV0)

    def residual(x):
        a_, b_, v0_, vp_ = x
        return a_ + b_ * np.cos(np.pi * (v + v0_) / vp_) - y

    sol = least_squares(residual, [a, b0, v00, v_pi0],
                        bounds=([-np.inf, 0, -np.inf, v_pi_bounds[0]], [np.inf, np.inf, np.inf, v_pi_bounds[1]]))
    a, b, v0, v_pi = sol.x
    period = 2 * v_pi
    v0 = (v0 + v_pi) % period - v_pi  # report the offset in (-V_pi, V_pi]
    return MZMFit(v_pi=float(v_pi), phase_offset_v=float(v0), p_max=float((a + b) * scale),
                  p_min=float((a - b) * scale), rms_residual=float(np.sqrt(np.mean(sol.fun**2)) * scale))
