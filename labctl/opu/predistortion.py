"""Invert a modulator's measured transfer curve: the drive voltage for a wanted transmission.

A push-pull MZM fitted by :func:`labctl.analysis.fit_mzm_transfer` follows (PHYSICS.md section 3)

    P(V) = P_min + (P_max - P_min) cos^2(pi (V + V0) / (2 V_pi))
         = a + b cos(pi (V + V0) / V_pi),   a = (P_max + P_min)/2,  b = (P_max - P_min)/2,

i.e. the finite-extinction form P_in IL [eps + (1 - 2 eps) cos^2(.)]. A normalised transmission
``t`` in [0, 1] is mapped linearly into a chosen output range [T_min, T_max] within [P_min, P_max]
(default: the whole measured range), ``P = T_min + t (T_max - T_min)``, and inverted on one monotonic
branch of the cosine:

    a'' = (P - P_min) / (P_max - P_min)             (in [0, 1])
    V(t) = V_q + s (2 V_pi / pi) (arccos(sqrt(a'')) - pi/4)

where ``V_q`` is the quadrature bias of the branch (``MZMFit.quadrature_bias``) and ``s = -1`` on a
rising branch (dP/dV > 0), ``+1`` on a falling one. For ``V_q = V_pi/2 - V0`` (falling branch) this is the
textbook ``V = (2 V_pi/pi) arccos(sqrt(a'')) - V0``. The branch is chosen by slope sign and by the voltage
it should lie near (e.g. the bias point the bias controller holds, or the middle of the drive range).

With finite extinction t = 0 still transmits T_min >= P_min; in a cascade of two modulators the product
then has cross terms (T_min,x w' + x' T_min,w), which the OPU removes digitally knowing T_min/T_max
(or avoids with a reduced range). Near t = 0 and 1 (if T_min = P_min, T_max = P_max) dV/dt diverges,
so drive noise matters most there; a range with margins reduces that.

:class:`PredistortionTable` tabulates V(t) (from the fit, or from a measured monotonic curve) for fast
interpolation, and stores itself as a calibration-file section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis import MZMFit
from labctl.opu.encoding import clip_to_range

__all__ = [
    "PredistortionTable",
    "branch_quadrature",
    "mzm_transmission",
    "predistort",
]


def _check_fit(fit: MZMFit) -> None:
    if not (np.isfinite(fit.v_pi) and fit.v_pi > 0):
        raise ValueError(f"fit.v_pi must be a finite voltage > 0, got {fit.v_pi!r}")
    if not (np.isfinite(fit.p_min) and np.isfinite(fit.p_max) and fit.p_max > fit.p_min):
        raise ValueError(f"the fit needs P_max > P_min (finite), got P_min={fit.p_min!r}, P_max={fit.p_max!r}")


def _range(fit: MZMFit, t_min: float | None, t_max: float | None) -> tuple[float, float]:
    lo = fit.p_min if t_min is None else float(t_min)
    hi = fit.p_max if t_max is None else float(t_max)
    tol = 1e-12 * (fit.p_max - fit.p_min)
    if not (fit.p_min - tol <= lo < hi <= fit.p_max + tol):
        raise ValueError(f"the output range must satisfy P_min ({fit.p_min:g}) <= t_min < t_max <= P_max "
                         f"({fit.p_max:g}); got t_min={lo:g}, t_max={hi:g}")
    return lo, hi


def branch_quadrature(fit: MZMFit, rising: bool = True, near: float = 0.0) -> float:
    """The quadrature voltage of the monotonic branch (rising or falling) closest to ``near``."""
    _check_fit(fit)
    return fit.quadrature_bias(positive_slope=rising, near=near)


def mzm_transmission(fit: MZMFit, volts: Any, t_min: float | None = None, t_max: float | None = None) -> np.ndarray:
    """The forward map: normalised transmission ``(P(V) - T_min)/(T_max - T_min)`` of the fitted curve."""
    lo, hi = _range(fit, t_min, t_max)
    return (fit.predict(np.asarray(volts, dtype=float)) - lo) / (hi - lo)


def predistort(fit: MZMFit, t: Any, *, rising: bool = True, near: float = 0.0,
               t_min: float | None = None, t_max: float | None = None) -> np.ndarray:
    """Drive voltages (total: bias + RF) giving normalised transmissions ``t`` in [0, 1] (vectorised).

    Values outside [0, 1] are clipped with an ``EncodingRangeWarning``. See the module docstring.
    """
    _check_fit(fit)
    lo, hi = _range(fit, t_min, t_max)
    t, _ = clip_to_range(t, 0.0, 1.0, name="transmission")
    a2 = np.clip((lo + t * (hi - lo) - fit.p_min) / (fit.p_max - fit.p_min), 0.0, 1.0)
    v_q = fit.quadrature_bias(positive_slope=rising, near=near)
    s = -1.0 if rising else 1.0
    return v_q + s * (2.0 * fit.v_pi / np.pi) * (np.arccos(np.sqrt(a2)) - np.pi / 4)


@dataclass(frozen=True)
class PredistortionTable:
    """Tabulated inverse transfer: voltages ``volts[j]`` giving transmissions ``t[j]`` (t increasing).

    Interpolation is linear in t. Tabulating uniformly in *voltage* bounds the error of the transmission
    actually obtained by ``max|d^2 t/dV^2| h^2 / 8`` for a voltage step h; for the cosine curve
    (d^2t/dV^2 <= pi^2/(2 V_pi^2) on the full range) ``n`` points give at most ``pi^2 / (16 (n-1)^2)``,
    below 1e-7 for the default 2049 points.
    """

    t: np.ndarray
    volts: np.ndarray
    name: str = ""

    def __post_init__(self):
        t = np.asarray(self.t, dtype=float)
        v = np.asarray(self.volts, dtype=float)
        if t.ndim != 1 or t.shape != v.shape or t.size < 2:
            raise ValueError("a predistortion table needs matching 1-D t and volts arrays of >= 2 points")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ValueError("a predistortion table must contain only finite values")
        if not np.all(np.diff(t) > 0):
            raise ValueError("table transmissions t must be strictly increasing (one monotonic branch)")
        if not (abs(t[0]) < 1e-9 and abs(t[-1] - 1) < 1e-9):
            raise ValueError(f"table transmissions must span [0, 1], got [{t[0]:g}, {t[-1]:g}]")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "volts", v)

    @classmethod
    def from_fit(cls, fit: MZMFit, n: int = 2049, *, rising: bool = True, near: float = 0.0,
                 t_min: float | None = None, t_max: float | None = None, name: str = "") -> "PredistortionTable":
        """Tabulate :func:`predistort` on ``n`` points uniform in voltage across the branch."""
        if int(n) != n or n < 2:
            raise ValueError(f"n (table points) must be an integer >= 2, got {n!r}")
        v_ends = predistort(fit, np.array([0.0, 1.0]), rising=rising, near=near, t_min=t_min, t_max=t_max)
        volts = np.linspace(v_ends[0], v_ends[1], int(n))
        t = mzm_transmission(fit, volts, t_min, t_max)
        t[0], t[-1] = 0.0, 1.0
        return cls(t=np.clip(t, 0.0, 1.0), volts=volts, name=name)

    @classmethod
    def from_measurement(cls, volts: Any, power: Any, name: str = "") -> "PredistortionTable":
        """A table straight from a measured curve over one monotonic branch (no model assumed).

        The powers are normalised to [0, 1] between their minimum and maximum; the measurement must be
        strictly monotonic (average or fit noisy data first).
        """
        v = np.asarray(volts, dtype=float)
        p = np.asarray(power, dtype=float)
        if v.shape != p.shape or v.ndim != 1 or v.size < 2:
            raise ValueError("need matching 1-D voltage and power arrays with >= 2 points")
        if not p.max() > p.min():
            raise ValueError("the measured power does not vary: no modulation to tabulate")
        by_v = np.argsort(v)
        v, p = v[by_v], p[by_v]
        step = np.diff(p)
        if not (np.all(step > 0) or np.all(step < 0)):
            raise ValueError("the measured power must be strictly monotonic in voltage (one branch); "
                             "restrict the sweep to one branch and average or fit noisy data first")
        if step[0] < 0:
            v, p = v[::-1], p[::-1]
        t = (p - p[0]) / (p[-1] - p[0])
        return cls(t=t, volts=v, name=name)

    def __call__(self, t: Any) -> np.ndarray:
        """Voltages for transmissions ``t`` (clipped to [0, 1] with a warning if outside)."""
        t, _ = clip_to_range(t, 0.0, 1.0, name="transmission")
        return np.interp(t, self.t, self.volts)

    def to_section(self) -> dict:
        """A calibration-file section (see :mod:`labctl.opu.calibration_file`)."""
        return {"kind": "predistortion_table", "name": self.name, "t": self.t, "volts": self.volts}

    @classmethod
    def from_section(cls, section: dict) -> "PredistortionTable":
        if section.get("kind") != "predistortion_table":
            raise ValueError(f"not a predistortion table section (kind={section.get('kind')!r})")
        return cls(t=np.asarray(section["t"], float), volts=np.asarray(section["volts"], float),
                   name=str(section.get("name", "")))

