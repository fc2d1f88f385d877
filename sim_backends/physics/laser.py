"""CW tunable-laser field with relative intensity noise and phase noise (shared by every laser model).

PHYSICS.md section 3, "Laser": the field envelope (sqrt(W)) of an enabled laser at times ``t`` is

    E(t) = sqrt(P (1 + n_RIN(t))) exp(j phi(t))

* ``n_RIN`` is white Gaussian with one-sided PSD RIN_lin = 10^(RIN_dB / 10) (1/Hz): per sample
  variance RIN_lin Fs / 2, so after a receiver of noise bandwidth B_e the photocurrent carries the
  RIN variance RIN_lin I^2 B_e of PHYSICS.md;
* ``phi`` is a Wiener phase (Lorentzian line of FWHM ``linewidth``): increment variance
  2 pi linewidth / Fs per sample.

``Fs`` is 1 / (sample spacing of ``t``) when ``t`` is a uniform record along its last axis
(``grids.uniform_step``; rows of an n-d ``t`` are then records of the same spacing, as a fibre asks
for once per walked-off carrier), each row with its own noise. Any other ``t`` -- a scalar, single
points, separate instants -- has no sample rate and gets the noiseless field: a rate read off
instants that are not a record (their end points may coincide within rounding) would give RIN of
any variance. Records are complex64. Random numbers come from the bench's one
seeded generator (``world.rng``), passed in by the instrument.

The simulated Keysight N7714A and Santec TSL-570 both emit this field; their data-sheet defaults
(RIN -145 dB/Hz, linewidth 100 kHz, PHYSICS.md table 2 †) live in their modules.
"""

from __future__ import annotations

import math

import numpy as np

from sim_backends.physics.grids import uniform_step

__all__ = ["laser_field"]


def laser_field(power_w: float, t, rin_db_per_hz: float, linewidth_hz: float, rng: np.random.Generator):
    """Complex field envelope (sqrt(W)) of a CW laser at times ``t`` with RIN and phase noise.

    ``E = sqrt(P (1 + n)) exp(j phi)``; ``n`` ~ N(0, RIN_lin Fs / 2) per sample, ``phi`` a random
    walk with increment variance 2 pi linewidth / Fs, ``Fs`` = 1 / (sample spacing of t) along its
    last axis. Times that are not uniform records have no sample rate and get the noiseless field.
    """
    if not power_w >= 0:
        raise ValueError(f"power_w={power_w!r} is outside the physical range [0, inf]")
    t_arr = np.asarray(t, dtype=float)
    amplitude = math.sqrt(power_w)
    if t_arr.ndim == 0:
        return complex(amplitude)
    spacing = _record_step(t_arr) if t_arr.size >= 2 else None
    if spacing is None:
        return np.full(t_arr.shape, amplitude, dtype=complex)
    n = t_arr.shape
    fs = 1.0 / spacing
    rin_variance = 10 ** (rin_db_per_hz / 10) * fs / 2
    # single precision: RIN is ~1e-3 relative and the ADCs resolve ~1e-3, so float32/complex64
    # (relative precision 6e-8) loses nothing and halves the cost; the phase walk accumulates in float64
    relative = rng.standard_normal(n, dtype=np.float32)
    relative *= np.float32(math.sqrt(rin_variance))
    relative += np.float32(1.0)
    np.clip(relative, 0.0, None, out=relative)
    amplitude = np.sqrt(relative * np.float32(power_w))
    if linewidth_hz > 0:
        steps = rng.standard_normal(n, dtype=np.float32) * np.float32(math.sqrt(2 * math.pi * linewidth_hz / fs))
        phase = np.cumsum(steps, axis=-1, dtype=np.float64)
        phase = phase.astype(np.float32)
        field = np.empty(n, dtype=np.complex64)
        field.real = amplitude * np.cos(phase)
        field.imag = amplitude * np.sin(phase)
    else:
        field = amplitude.astype(np.complex64)
    return field


def _record_step(t: np.ndarray) -> float | None:
    """Sample spacing if every row of ``t`` (last axis) is a uniform record and all rows are the first
    one shifted (within its uniformity tolerance), else None."""
    rows = t.reshape(-1, t.shape[-1])
    spacing = uniform_step(rows[0])
    if spacing is None or rows.shape[0] == 1:
        return spacing
    shifted = rows - rows[:, :1]
    tol = 1e-3 * spacing + 8 * np.finfo(float).eps * float(np.max(np.abs(rows)))
    return spacing if float(np.max(np.abs(shifted - shifted[0]))) <= tol else None
