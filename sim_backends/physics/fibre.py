"""Standard single-mode fibre (SSMF, ITU-T G.652.D) acting on complex field envelopes.

Sign convention (read this before combining with other field models)
--------------------------------------------------------------------
The envelope E(t) (sqrt(W)) carries the optical field Re{E(t) exp(+j 2 pi nu0 t)}: the "engineering"
convention in which the FFT bin at +f (numpy/scipy ``fft``, kernel exp(-j 2 pi f t)) is the optical
frequency nu0 + f. A plane wave is exp(j(w t - beta z)), so with beta(w0 + w) = beta0 + beta1 w +
beta2 w^2 / 2 the span acts on the spectrum as

    E(w, L) = E(w, 0) exp(-alpha L / 2) exp(-j beta2 w^2 L / 2) exp(-j w dtau),    w = 2 pi f,

with beta2 = -D lambda^2 / (2 pi c) (D > 0 -> beta2 < 0, anomalous) and dtau = D L (lambda -
lambda_ref) the walk-off of this carrier relative to the reference wavelength. PHYSICS.md writes the
dispersion factor as exp(+j beta2 w^2 L / 2): that is the same physics in Agrawal's convention
(carrier exp(-j w0 t), Fourier kernel exp(+j w t)); with numpy's FFT and bins read as physical
frequency offsets the sign is the one above. Likewise the Kerr term advances the phase *against* the
carrier here: dE/dz = -j gamma |E|^2 E (SPM phase -gamma P L_eff).

Chirp convention for ``small_signal_response``: instantaneous frequency offset
dnu = (alpha_chirp / 4 pi) d ln P / dt (Koyama & Iga), i.e. E = sqrt(P) exp(+j (alpha_chirp / 2) ln P)
in the convention above; alpha_chirp > 0 on D > 0 fibre moves the first fading null down.

The record is periodic (FFT): dispersive spreading D L lambda^2/c * bandwidth and walk-off must stay
well inside the record, or they wrap around; pad if needed. PMD and the dispersion slope are not
modelled (D is taken flat; the slope of ~0.06 ps/nm^2/km changes D by < 6 % across the C band).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

from sim_backends.physics.constants import C
from sim_backends.physics.validation import require_range, require_wavelengths

_MAX_STEPS = 100_000


class FibreSpan:
    """One span of SSMF: loss, chromatic dispersion, walk-off, optional Kerr SPM (split-step).

    Defaults (PHYSICS.md table 2, SSMF G.652.D; Corning SMF-28 Ultra datasheet): attenuation
    0.2 dB/km, D = 17 ps/nm/km (beta2 = -21.7 ps^2/km at 1550 nm), gamma = 1.3 /W/km, group index
    1.4682 at 1550 nm.
    """

    def __init__(self, length_km: float, attenuation_db_per_km: float = 0.2,
                 dispersion_ps_nm_km: float = 17.0, gamma_per_w_km: float = 1.3,
                 group_index: float = 1.4682, reference_wavelength_m: float = 1550e-9):
        self.length_km = require_range("length_km", length_km, 0.0, 20000.0)
        self.attenuation_db_per_km = require_range("attenuation_db_per_km", attenuation_db_per_km, 0.0, 100.0)
        # negative D allowed: dispersion-compensating fibre (~ -100 ps/nm/km)
        self.dispersion_ps_nm_km = require_range("dispersion_ps_nm_km", dispersion_ps_nm_km, -1000.0, 1000.0)
        self.gamma_per_w_km = require_range("gamma_per_w_km", gamma_per_w_km, 0.0, 1e4)
        self.group_index = require_range("group_index", group_index, 1.0, 4.0)
        self.reference_wavelength_m = float(require_wavelengths(reference_wavelength_m))
        self._grids: dict = {}  # transfer functions on FFT grids, keyed with the span's parameters

    # -- derived SI quantities ---------------------------------------------------------------

    @property
    def length_m(self) -> float:
        return self.length_km * 1e3

    @property
    def alpha_per_m(self) -> float:
        """Power attenuation coefficient: alpha = alpha_dB ln(10) / 10, per metre."""
        return self.attenuation_db_per_km * math.log(10) / 10 / 1e3

    @property
    def dispersion_s_per_m2(self) -> float:
        """D in s/m^2 (1 ps/nm/km = 1e-6 s/m^2)."""
        return self.dispersion_ps_nm_km * 1e-6

    @property
    def gamma_per_w_m(self) -> float:
        return self.gamma_per_w_km * 1e-3

    @property
    def power_transmission(self) -> float:
        """exp(-alpha L) = 10^(-alpha_dB L / 10)."""
        return 10 ** (-self.attenuation_db_per_km * self.length_km / 10)

    @property
    def effective_length_m(self) -> float:
        """Nonlinear effective length L_eff = (1 - exp(-alpha L)) / alpha (L when lossless)."""
        a, L = self.alpha_per_m, self.length_m
        return L if a == 0 else -math.expm1(-a * L) / a

    def beta2(self, wavelength_m=None) -> np.ndarray | float:
        """Group-velocity dispersion beta2 = -D lambda^2 / (2 pi c), s^2/m."""
        lam = self._lam(wavelength_m)
        return -self.dispersion_s_per_m2 * lam ** 2 / (2 * np.pi * C)

    def walk_off(self, wavelength_m) -> np.ndarray | float:
        """Delay relative to the reference wavelength: dtau = D L (lambda - lambda_ref), s."""
        return self.dispersion_s_per_m2 * self.length_m * (self._lam(wavelength_m) - self.reference_wavelength_m)

    def group_delay(self, wavelength_m=None) -> np.ndarray | float:
        """Absolute group delay L n_g / c + D L (lambda - lambda_ref), s (122 us per 25 km)."""
        return self.length_m * self.group_index / C + self.walk_off(wavelength_m)

    def nonlinear_phase(self, power_w) -> np.ndarray | float:
        """Peak SPM phase magnitude gamma P L_eff (rad) for launch power ``power_w``."""
        return self.gamma_per_w_m * np.asarray(power_w, dtype=float) * self.effective_length_m

    def _lam(self, wavelength_m) -> np.ndarray | float:
        return self.reference_wavelength_m if wavelength_m is None else require_wavelengths(wavelength_m)

    # -- transfer functions -------------------------------------------------------------------

    def transfer_function(self, f, wavelength_m=None, walk_off: bool = True,
                          length_m: float | None = None) -> np.ndarray:
        """Linear field response H(f) = exp(-alpha L/2 - j beta2 w^2 L/2 - j w dtau) (see module doc).

        ``f`` is the envelope frequency offset (Hz), broadcast against ``wavelength_m``.
        """
        L = self.length_m if length_m is None else length_m
        w = 2 * np.pi * np.asarray(f, dtype=float)
        phase = 0.5 * self.beta2(wavelength_m) * w ** 2 * L
        if walk_off:
            phase = phase + w * self.walk_off(wavelength_m) * (L / self.length_m if self.length_m else 0.0)
        return np.exp(-0.5 * self.alpha_per_m * L) * np.exp(-1j * phase)

    def transfer_on_grid(self, n: int, fs: float, wavelength_m=None, walk_off: bool = True,
                         dtype=np.complex128) -> np.ndarray:
        """``transfer_function`` on the FFT bins of n-point records at ``fs`` (read-only, cached: records
        of one grid cross a span again and again). The key holds the span's parameters, so a span
        changed in place is not served a stale response."""
        lam = None if wavelength_m is None else np.asarray(wavelength_m, dtype=float)
        key = (int(n), float(fs), None if lam is None else (lam.shape, lam.tobytes()), walk_off, np.dtype(dtype),
               self.length_km, self.attenuation_db_per_km, self.dispersion_ps_nm_km, self.reference_wavelength_m)
        h = self._grids.get(key)
        if h is None:
            h = self.transfer_function(sfft.fftfreq(int(n), 1.0 / fs), lam, walk_off).astype(dtype)
            h.flags.writeable = False
            if len(self._grids) >= 8:
                self._grids.pop(next(iter(self._grids)))
            self._grids[key] = h
        return h

    def small_signal_response(self, f, chirp_alpha: float = 0.0, wavelength_m=None) -> np.ndarray:
        """IM/DD small-signal RF response after CD (power fading), normalised to H(0) = 1:

        H(f) = sqrt(1 + alpha^2) cos(pi D L lambda^2 f^2 / c + arctan alpha)

        (Wang & Petermann, JLT 10(1) 1992; the sqrt(1 + alpha^2) factor makes H(0) = 1 for chirped
        sources). Loss and walk-off excluded. Signed: negative beyond the first null (tone inverted).
        """
        lam = self._lam(wavelength_m)
        theta = np.pi * self.dispersion_s_per_m2 * self.length_m * lam ** 2 * np.asarray(f, float) ** 2 / C
        return np.sqrt(1 + chirp_alpha ** 2) * np.cos(theta + np.arctan(chirp_alpha))

    def fading_nulls_hz(self, count: int = 1, chirp_alpha: float = 0.0, wavelength_m=None) -> np.ndarray:
        """First ``count`` zeros of ``small_signal_response``: f_k = sqrt((k - 1/2 - arctan(alpha)/pi)
        c / (D L lambda^2)); chirp-free first null sqrt(c / (2 D L lambda^2)) (19.2 GHz at 10 km)."""
        lam = self._lam(wavelength_m)
        dl = abs(self.dispersion_s_per_m2) * self.length_m * lam ** 2
        if dl == 0:
            return np.full(count, np.inf)
        shift = np.arctan(chirp_alpha) / np.pi * np.sign(self.dispersion_s_per_m2)
        k = np.arange(1, count + 2)
        x = k - 0.5 - shift
        return np.sqrt(x[x > 0][:count] * C / dl)

    # -- propagation --------------------------------------------------------------------------

    def propagate(self, field, fs: float, wavelength_m=None, nonlinear: bool = False,
                  steps: int | None = None, walk_off: bool = True) -> np.ndarray:
        """Propagate complex envelopes ``field`` (sqrt(W), shape (..., n), sampled at ``fs``).

        ``wavelength_m``: carrier wavelength(s), scalar or broadcastable to ``field.shape[:-1]``
        (WDM channels on the leading axis; default the reference wavelength). ``walk_off`` applies
        each carrier's delay relative to the reference wavelength as a circular time shift; the
        common delay L n_g / c is left to the caller (``group_delay``).

        ``nonlinear=False``: one exact multiplication by ``transfer_function`` (strictly linear).
        ``nonlinear=True``: symmetric split-step Fourier, SPM only (each channel on its own; put
        channels into one wideband record to get XPM/FWM). Per step h: half linear step, then
        E *= exp(-j gamma |E|^2 h_eff) with h_eff = (2/alpha) sinh(alpha h / 2) (the exact integral
        of the power over the step for a CW field), then half linear step. Default ``steps`` keeps
        the nonlinear phase per step <= 5 mrad.
        """
        fs = require_range("fs", fs, 1e-300)
        field = np.asarray(field)
        if field.ndim == 0 or field.shape[-1] == 0:
            raise ValueError("field must have at least one sample along its last axis")
        lam = None if wavelength_m is None else np.expand_dims(require_wavelengths(wavelength_m), -1)
        if not nonlinear or self.gamma_per_w_km == 0 or self.length_m == 0:
            spec = _spectrum(field)
            h = self.transfer_on_grid(field.shape[-1], fs, lam, walk_off, spec.dtype)
            if np.broadcast_shapes(spec.shape, h.shape) == spec.shape:
                spec *= h
            else:
                spec = spec * h
            return sfft.ifft(spec, axis=-1, overwrite_x=True)
        if field.dtype not in (np.complex64, np.complex128):
            field = field.astype(np.complex64 if field.dtype == np.float32 else np.complex128)
        f = sfft.fftfreq(field.shape[-1], 1.0 / fs)

        p_max = float(np.max(np.abs(field) ** 2))
        if steps is None:
            steps = max(1, math.ceil(self.gamma_per_w_m * p_max * self.effective_length_m / 5e-3))
            if steps > _MAX_STEPS:
                raise ValueError(f"peak power {p_max!r} W needs {steps} split steps (> {_MAX_STEPS}); "
                                 "pass steps explicitly")
        steps = int(require_range("steps", steps, 1, _MAX_STEPS))
        h = self.length_m / steps
        a = self.alpha_per_m
        h_eff = h if a == 0 else 2.0 / a * math.sinh(a * h / 2)
        half = self.transfer_function(f, lam, walk_off, length_m=h / 2).astype(field.dtype)
        full = (half * half).astype(field.dtype)
        g = self.gamma_per_w_m * h_eff

        spec = sfft.fft(field, axis=-1) * half
        for i in range(steps):  # loop over steps, not samples
            e = sfft.ifft(spec, axis=-1)
            e *= np.exp(-1j * g * (e.real ** 2 + e.imag ** 2)).astype(e.dtype)
            spec = sfft.fft(e, axis=-1)
            spec *= half if i == steps - 1 else full
        return sfft.ifft(spec, axis=-1)


def _spectrum(field: np.ndarray) -> np.ndarray:
    """FFT of records ``field`` (..., n), complex64 for single-precision input, else complex128.

    A real field (a chirp-free modulator's output, also when stored as complex) has a Hermitian
    spectrum: its rFFT and the mirrored conjugate bins give the full FFT at half the transform's cost."""
    if np.iscomplexobj(field):
        if np.any(field.imag):
            return sfft.fft(field if field.dtype in (np.complex64, np.complex128) else field.astype(np.complex128),
                            axis=-1)
        field = field.real
    real = field if field.dtype in (np.float32, np.float64) else field.astype(np.float64)
    n = real.shape[-1]
    half = sfft.rfft(real, axis=-1)
    spec = np.empty(real.shape, dtype=half.dtype)
    spec[..., :half.shape[-1]] = half
    np.conjugate(half[..., 1:n - n // 2][..., ::-1], out=spec[..., n // 2 + 1:])
    return spec
