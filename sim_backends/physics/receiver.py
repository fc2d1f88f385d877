"""Photodiode + load/TIA receiver: noise as closed-form variances and as sample generators.

Equations (PHYSICS.md section 3, "Photodetection and noise"); I = R P is the signal photocurrent,
B_e the electrical noise bandwidth, S_sp the ASE PSD per polarisation at the detector (W/Hz),
B_o the (rectangular) optical filter width, m_t the number of ASE polarisations (2 without polariser):

    shot            2 q (I + I_d + R P_ASE) B_e,          P_ASE = m_t S_sp B_o
    thermal         4 k T B_e / R_L   (bare load)   or   F_n i_n^2 B_e   (TIA input noise density i_n)
    RIN             RIN_lin I^2 B_e,                       RIN_lin = 10^(RIN_dB / 10)
    signal-ASE      4 R^2 P S_sp B_e                       (only co-polarised ASE beats)
    ASE-ASE         m_t R^2 S_sp^2 (2 B_o - b) b,          b = min(B_e, B_o)

The ASE-ASE form integrates its triangular one-sided PSD 2 m_t R^2 S_sp^2 (B_o - f) over [0, B_e];
for B_e <= B_o it is PHYSICS.md's m_t R^2 S_sp^2 (2 B_o - B_e) B_e.

Sample generation: every white term with one-sided PSD N0 (A^2/Hz) is drawn as N(0, N0 fs / 2) per
sample (signal-dependent terms use the instantaneous I(t), P(t)); ASE-ASE is drawn as its spectrum,
shaped to its triangle; signal plus noise then pass the receiver response |H(f)| (by FFT, circular),
so each term's variance is N0 B_e with B_e = integral_0^{fs/2} |H|^2 df. Terms of zero power are not
drawn. The current saturates at ``saturation_current``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft as sfft

from sim_backends.physics.constants import K_B, Q
from sim_backends.physics.converters import RESPONSES, apply_lowpass, lowpass_on_grid, noise_bandwidth
from sim_backends.physics.validation import require_range

NOISE_TERMS = ("shot", "thermal", "rin", "signal_ase", "ase_ase")


def snr_to_enob(snr_db):
    """Effective bits from SNR with the full-scale-sine convention: (SNR_dB - 1.76) / 6.02."""
    return (np.asarray(snr_db) - 1.76) / 6.02


class NoiseTerms(NamedTuple):
    """One-sided photocurrent-noise PSD N0(P) = a0 + a1 P + a2 P^2 at optical power P (W).

    a0 in A^2/Hz (thermal, dark-current shot), a1 in A^2/Hz/W (signal shot), a2 in A^2/Hz/W^2 (RIN)."""

    a0: float
    a1: float
    a2: float


class Receiver:
    """InGaAs PIN photodiode into a 50-ohm load or a TIA.

    Defaults: Thorlabs DET08CFC class, R = 0.9 A/W at 1550 nm, 1.5 nA dark current, 5 GHz, 50 ohm
    (Thorlabs DET08CFC datasheet; PHYSICS.md table 2 gives R 0.6-1.0 A/W, dark 0.1-20 nA, 50-ohm
    floor 18.2 pA/rtHz). TIA instead: pass ``tia_gain_ohm`` and ``input_noise_a_per_rthz``
    (10-30 pA/rtHz typical, PHYSICS.md table 2). ``rin_db_per_hz`` None = no RIN term here (leave it
    None when the laser model already puts RIN on the field); N7776C class lasers are ~-145 dB/Hz.
    Saturation 10 mA: typical small-area PIN linear-current limit (datasheet class value).
    ``response``: 'brickwall' makes ``bandwidth_hz`` the noise bandwidth B_e exactly; 'butterworth'
    or 'gaussian' use it as the 3-dB bandwidth and B_e = ``noise_bandwidth_hz``.
    """

    def __init__(self, responsivity: float = 0.9, dark_current: float = 1.5e-9, bandwidth_hz: float = 5e9,
                 load_ohm: float = 50.0, tia_gain_ohm: float | None = None,
                 input_noise_a_per_rthz: float | None = None, noise_factor: float = 1.0,
                 rin_db_per_hz: float | None = None, saturation_current: float = 10e-3,
                 temperature_k: float = 295.0, response: str = "brickwall", response_order: int = 4):
        self.responsivity = require_range("responsivity", responsivity, 0.0, 1.3)  # <= q lambda / (h c) ~1.25 at 1550
        self.dark_current = require_range("dark_current", dark_current, 0.0, 1e-3)
        self.bandwidth_hz = require_range("bandwidth_hz", bandwidth_hz, 1.0, 1e12)
        self.load_ohm = require_range("load_ohm", load_ohm, 1e-3, 1e12)
        self.tia_gain_ohm = None if tia_gain_ohm is None else require_range("tia_gain_ohm", tia_gain_ohm, 1e-3, 1e12)
        self.input_noise = (None if input_noise_a_per_rthz is None
                            else require_range("input_noise_a_per_rthz", input_noise_a_per_rthz, 0.0, 1e-6))
        self.noise_factor = require_range("noise_factor", noise_factor, 1.0, 1e3)
        self.rin_db_per_hz = None if rin_db_per_hz is None else require_range("rin_db_per_hz", rin_db_per_hz, -200.0, -60.0)
        self.saturation_current = require_range("saturation_current", saturation_current, 1e-9, 10.0)
        self.temperature_k = require_range("temperature_k", temperature_k, 0.0, 1000.0)
        if response not in RESPONSES:
            raise ValueError(f"response={response!r} is not one of {RESPONSES}")
        self.response = response
        self.response_order = int(require_range("response_order", response_order, 1, 20))

    # -- closed forms -------------------------------------------------------------------------------

    @property
    def gain_ohm(self) -> float:
        """Volts per ampere at the output: TIA transimpedance, else the load."""
        return self.tia_gain_ohm if self.tia_gain_ohm else self.load_ohm

    @property
    def noise_bandwidth_hz(self) -> float:
        """B_e = integral_0^inf |H(f)|^2 df of the receiver response."""
        return noise_bandwidth(self.bandwidth_hz, self.response, self.response_order)

    @property
    def rin_lin(self) -> float:
        return 0.0 if self.rin_db_per_hz is None else 10 ** (self.rin_db_per_hz / 10)

    @property
    def thermal_psd(self) -> float:
        """One-sided thermal current-noise PSD, A^2/Hz: 4kT/R_L, or F_n i_n^2 for a TIA."""
        if self.input_noise is not None:
            return self.noise_factor * self.input_noise**2
        return 4 * K_B * self.temperature_k / self.load_ohm

    def _psds(self, power, ase_psd, optical_bw, polarizations):
        """One-sided white-noise PSDs (A^2/Hz) of the shot, thermal, RIN and signal-ASE terms."""
        r = self.responsivity
        p_ase = polarizations * ase_psd * optical_bw
        return {
            "shot": 2 * Q * (r * power + self.dark_current + r * p_ase),
            "thermal": self.thermal_psd * np.ones_like(power),
            "rin": self.rin_lin * (r * power) ** 2,
            "signal_ase": 4 * r**2 * power * ase_psd,
        }

    def _check_ase(self, ase_psd, optical_bw, polarizations):
        ase_psd = require_range("ase_psd", ase_psd, 0.0, 1e-6)
        optical_bw = require_range("optical_bw", optical_bw, 0.0, 1e15)
        if polarizations not in (1, 2):
            raise ValueError(f"polarizations={polarizations!r} must be 1 (polariser) or 2")
        if ase_psd > 0 and optical_bw <= 0:
            raise ValueError("optical_bw must be > 0 Hz when ase_psd > 0 (ASE power is S_sp B_o per polarisation)")
        return ase_psd, optical_bw

    def noise_variances(self, power_w, ase_psd: float = 0.0, optical_bw: float = 0.0,
                        polarizations: int = 2) -> dict[str, np.ndarray]:
        """Current-noise variances in A^2 (keys NOISE_TERMS and 'total') at optical power P (W)."""
        ase_psd, optical_bw = self._check_ase(ase_psd, optical_bw, polarizations)
        power = np.asarray(power_w, dtype=float)
        b_e = self.noise_bandwidth_hz
        out = {name: psd * b_e for name, psd in self._psds(power, ase_psd, optical_bw, polarizations).items()}
        b = min(b_e, optical_bw)
        out["ase_ase"] = polarizations * self.responsivity**2 * ase_psd**2 * (2 * optical_bw - b) * b * np.ones_like(power)
        out["total"] = sum(out[name] for name in NOISE_TERMS)
        return out

    def noise_terms(self) -> NoiseTerms:
        """N0(P) without ASE as a quadratic in P, from the noise variances at three powers (exact:
        the shot, thermal and RIN terms are polynomials of degree <= 2 in P)."""
        h = 1e-3
        v = self.noise_variances(np.array([0.0, h, 2 * h]))["total"] / self.noise_bandwidth_hz
        a2 = (v[2] - 2 * v[1] + v[0]) / (2 * h * h)
        return NoiseTerms(float(v[0]), float((v[1] - v[0]) / h - a2 * h), float(a2))

    def snr(self, power_w, ase_psd: float = 0.0, optical_bw: float = 0.0, polarizations: int = 2):
        """Electrical SNR = (R P)^2 / sum of variances (linear)."""
        var = self.noise_variances(power_w, ase_psd, optical_bw, polarizations)["total"]
        return (self.responsivity * np.asarray(power_w, dtype=float)) ** 2 / var

    def snr_db(self, power_w, ase_psd: float = 0.0, optical_bw: float = 0.0, polarizations: int = 2):
        return 10 * np.log10(self.snr(power_w, ase_psd, optical_bw, polarizations))

    # -- sample generators ------------------------------------------------------------------------

    def _power(self, power_or_field) -> np.ndarray:
        """Optical power (W) of powers or complex fields; single precision stays single."""
        x = np.asarray(power_or_field)
        if np.iscomplexobj(x):
            return np.square(x.real) + np.square(x.imag)
        x = x if x.dtype == np.float32 else x.astype(float)
        if x.size and np.min(x) < 0:
            raise ValueError("optical power must be >= 0 W (pass complex fields in sqrt(W) instead)")
        return x

    def _check_rate(self, fs):
        fs = require_range("fs", fs, 1.0)
        if fs < 2 * self.bandwidth_hz:
            raise ValueError(f"fs={fs:g} Sa/s is below twice bandwidth_hz={self.bandwidth_hz:g} Hz; "
                             f"allowed fs >= {2 * self.bandwidth_hz:g}")
        return fs

    def _filter(self, x, fs):
        return apply_lowpass(x, fs, self.bandwidth_hz, self.response, self.response_order)

    def _ase_ase_amplitude(self, n: int, fs: float, ase_psd: float, optical_bw: float, polarizations: int):
        """sqrt(PSD fs / 2) of ASE-ASE beat noise on the rFFT bins: one-sided PSD 2 m_t R^2 S_sp^2 (B_o - f)
        for f < B_o, the triangle of the beat between two flat ASE bands."""
        f = np.fft.rfftfreq(n, 1.0 / fs)
        psd = 2 * polarizations * self.responsivity**2 * ase_psd**2 * np.clip(optical_bw - f, 0.0, None)
        return np.sqrt(psd * fs / 2)

    def noise_samples(self, power_or_field, fs: float, rng: np.random.Generator, ase_psd: float = 0.0,
                      optical_bw: float = 0.0, polarizations: int = 2, filtered: bool = True) -> dict[str, np.ndarray]:
        """Each noise term's current samples (A), same shape as the input, band-limited by the receiver;
        a term of zero power is zeros (nothing drawn for it)."""
        ase_psd, optical_bw = self._check_ase(ase_psd, optical_bw, polarizations)
        fs = self._check_rate(fs)
        power = self._power(power_or_field).astype(float, copy=False)
        out = {}
        for name, psd in self._psds(power, ase_psd, optical_bw, polarizations).items():
            out[name] = (np.sqrt(psd * fs / 2) * rng.standard_normal(power.shape) if np.any(psd)
                         else np.zeros(power.shape))
        n = power.shape[-1]
        if ase_psd > 0:
            spectrum = white_spectrum(power.shape, rng, single=False)
            spectrum *= self._ase_ase_amplitude(n, fs, ase_psd, optical_bw, polarizations)
            out["ase_ase"] = sfft.irfft(spectrum, n=n, axis=-1)
        else:
            out["ase_ase"] = np.zeros(power.shape)
        if filtered:
            out = {name: self._filter(x, fs) if x.any() else x for name, x in out.items()}
        return out

    def _white_coefficients(self, ase_psd: float, optical_bw: float, polarizations: int) -> tuple[float, float, float]:
        """(c0, c1, c2): the white terms' summed one-sided PSD is c0 + c1 P + c2 P^2 (A^2/Hz) --
        thermal, dark and ASE shot in c0; signal shot and signal-ASE in c1; RIN in c2 (``_psds``)."""
        r = self.responsivity
        p_ase = polarizations * ase_psd * optical_bw
        return (self.thermal_psd + 2 * Q * (self.dark_current + r * p_ase), 2 * Q * r + 4 * r**2 * ase_psd,
                self.rin_lin * r**2)

    def detect(self, power_or_field, fs: float, rng: np.random.Generator, ase_psd: float = 0.0,
               optical_bw: float = 0.0, polarizations: int = 2, noise: bool = True) -> np.ndarray:
        """Photocurrent samples (A) for optical power (W, real) or field envelopes (sqrt(W), complex).

        Records have shape (..., n) at rate ``fs`` >= 2 ``bandwidth_hz``. Sum WDM channels before
        calling: powers for incoherent addition, fields on a common grid to keep their beat terms.
        If ASE is already in the field, leave ``ase_psd`` 0 (the beats arise from |E|^2).
        float32 powers (complex64 fields) are detected in single precision.

        The white terms are independent Gaussians, so their sum is drawn once with the summed
        variance (c0 + c1 P + c2 P^2) fs / 2 per sample (``noise_samples`` gives them one by one);
        ASE-ASE noise, stationary, is drawn as its spectrum and added to the record's before the
        receiver response (one FFT pair for the whole detection).
        """
        ase_psd, optical_bw = self._check_ase(ase_psd, optical_bw, polarizations)
        fs = self._check_rate(fs)
        power = self._power(power_or_field)
        real = power.dtype.type
        current = power * real(self.responsivity)
        current += real(self.dark_current)
        if noise:
            c0, c1, c2 = self._white_coefficients(ase_psd, optical_bw, polarizations)
            if c2:
                variance = power * real(c2 * fs / 2)
                variance += real(c1 * fs / 2)
                variance *= power
            else:
                variance = power * real(c1 * fs / 2)
            variance += real(c0 * fs / 2)
            np.sqrt(variance, out=variance)
            draw = rng.standard_normal(power.shape, dtype=power.dtype)
            draw *= variance
            current += draw
        n = power.shape[-1]
        spectrum = sfft.rfft(current, axis=-1)
        if noise and ase_psd > 0:
            beat = white_spectrum(power.shape, rng, single=power.dtype == np.float32)
            beat *= self._ase_ase_amplitude(n, fs, ase_psd, optical_bw, polarizations).astype(power.dtype)
            spectrum += beat
        spectrum *= lowpass_on_grid(n, fs, self.bandwidth_hz, self.response, self.response_order,
                                    power.dtype == np.float32)
        current = sfft.irfft(spectrum, n=n, axis=-1, overwrite_x=True)
        return np.minimum(current, real(self.saturation_current), out=current)

    def voltage(self, power_or_field, fs: float, rng: np.random.Generator, **kwargs) -> np.ndarray:
        """Output voltage = detect(...) * gain_ohm."""
        return self.detect(power_or_field, fs, rng, **kwargs) * self.gain_ohm


def white_spectrum(shape: tuple, rng: np.random.Generator, single: bool = True) -> np.ndarray:
    """The rFFT (last axis) of records of ``shape`` of iid N(0, 1) samples, drawn directly as its bins.

    The rFFT of n iid N(0, 1) samples has independent bins with E|X_k|^2 = n (complex Gaussian, real
    at DC and at Nyquist for even n): drawing them and multiplying by a response is the same process
    as filtering time-domain noise, one FFT cheaper.
    """
    n = shape[-1]
    bins = (*shape[:-1], n // 2 + 1)
    real = np.float32 if single else np.float64
    spectrum = np.empty(bins, dtype=np.complex64 if single else np.complex128)
    spectrum.real = rng.standard_normal(bins, dtype=real)
    spectrum.imag = rng.standard_normal(bins, dtype=real)
    spectrum *= real(np.sqrt(n / 2))
    spectrum[..., 0] = spectrum[..., 0].real * real(np.sqrt(2))
    if n % 2 == 0:
        spectrum[..., -1] = spectrum[..., -1].real * real(np.sqrt(2))
    return spectrum
