"""Chirp-free push-pull Mach-Zehnder intensity modulator: the transfer function, without a bench.

P_out = P_in IL [eps + (1 - 2 eps) cos^2(theta)],
theta = (pi / 2) [(V_bias + V0) / V_pi + V_rf / V_pi,rf],  eps = 1 / (ER + 1)

(PHYSICS.md section 3). ``V_rf`` is the drive acting on the light, i.e. after the electro-optic
response; the graph node :class:`~sim_backends.physics.components.MachZehnderModulator` applies that
response and pulls the voltages from the bench.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_backends.physics.validation import require_range


@dataclass(frozen=True)
class MachZehnderModel:
    """Parameters of one modulator and its transfer functions (vectorised over the voltages).

    ``v_pi``: half-wave voltage of the DC (bias) electrode; ``v_pi_rf``: of the RF electrode at DC;
    ``phase_offset_v`` (V0): the built-in bias point; ``extinction_ratio_db`` sets eps."""

    v_pi: float = 5.0
    v_pi_rf: float = 5.0
    insertion_loss_db: float = 4.0
    extinction_ratio_db: float = 25.0
    phase_offset_v: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "v_pi", require_range("v_pi", self.v_pi, 0.1, 100.0))
        object.__setattr__(self, "v_pi_rf", require_range("v_pi_rf", self.v_pi_rf, 0.1, 100.0))
        object.__setattr__(self, "insertion_loss_db", require_range("insertion_loss_db", self.insertion_loss_db, 0.0, 40.0))
        object.__setattr__(self, "extinction_ratio_db",
                           require_range("extinction_ratio_db", self.extinction_ratio_db, 0.0, 80.0))
        object.__setattr__(self, "phase_offset_v", require_range("phase_offset_v", self.phase_offset_v, -1e6, 1e6))

    @property
    def loss(self) -> float:
        """IL as a power fraction."""
        return 10 ** (-self.insertion_loss_db / 10)

    @property
    def leak(self) -> float:
        """eps = 1 / (ER + 1): the fraction of the peak left at the null."""
        return 1.0 / (10 ** (self.extinction_ratio_db / 10) + 1.0)

    def theta(self, v_rf, v_bias):
        """Phase argument theta (rad) of the cos^2 transfer; a float32 drive gives float32 phases (a
        drive known to ~1e-3 V needs no more than their 1e-7 relative precision)."""
        bias = float(v_bias) if np.ndim(v_bias) == 0 else np.asarray(v_bias)
        rf = float(v_rf) if np.ndim(v_rf) == 0 else np.asarray(v_rf)
        return (0.5 * np.pi / self.v_pi_rf) * rf + (0.5 * np.pi / self.v_pi) * (bias + self.phase_offset_v)

    def transmission(self, v_rf, v_bias):
        """Power transmission IL [eps + (1 - 2 eps) cos^2 theta]."""
        eps = self.leak
        return self.loss * (eps + (1 - 2 * eps) * np.cos(self.theta(v_rf, v_bias)) ** 2)

    def field_transmission(self, v_rf, v_bias):
        """Real field transmission sign(cos theta) sqrt(T(theta)): the field changes sign with cos theta."""
        c = np.cos(self.theta(v_rf, v_bias))
        eps = self.leak
        if np.ndim(c) == 0:
            return np.copysign(np.sqrt(self.loss * (eps + (1 - 2 * eps) * c * c)), c)
        t = np.square(c)  # in place from here: a record's every pass counts
        t *= t.dtype.type(self.loss * (1 - 2 * eps))
        t += t.dtype.type(self.loss * eps)
        np.sqrt(t, out=t)
        return np.copysign(t, c, out=t)
