"""Erbium-doped fibre amplifier: gain with saturation and amplified spontaneous emission (ASE).

E_out = sqrt(G) E_in + n_ASE (PHYSICS.md section 3). ASE is white over the simulated band (or the
band-pass ``optical_bandwidth_hz``), with one-sided PSD per polarisation mode

    S_sp = n_sp (G - 1) h nu,    n_sp (G - 1) = (NF G - 1) / 2

from the standard signal-spontaneous noise figure NF = 1/G + 2 S_sp / (G h nu) (IEC 61290-3;
Desurvire, "Erbium-Doped Fiber Amplifiers", 1994). PHYSICS.md's n_sp ~ NF G / (2 (G - 1)) is the
high-gain limit of the same relation (they differ by 1 / (NF G): 0.3 % at 20 dB gain, NF 5 dB).
Total ASE in an optical bandwidth B_o, both polarisations: P_ASE = 2 S_sp B_o.

Polarisation representation: the signal's polarisation ("co") gets complex Gaussian ASE of variance
S_sp fs per sample (both quadratures, fs = complex sample rate = simulated optical bandwidth); it beats
with the signal at a square-law detector. The orthogonal polarisation carries ASE only: it adds ASE
power (mean current, shot noise) and ASE-ASE beat, but no signal-ASE beat. ``amplify_dual_pol``
returns it as a second field of the same shape; in the bench world, add it as a second ``Lightwave``
at the same wavelength, since carriers add in power at a detector - exactly the orthogonal-
polarisation behaviour. ``amplify`` returns the co-polarised field only (drawing the same co-
polarised noise from the same generator state).

Gain saturation (EDFA gain responds to average power: ms gain dynamics) uses the total average input
power over the record and over all leading axes (WDM channels share the gain):
* ``"compression"`` (default): homogeneous compression G = G0 / (1 + P_out / P_sat) with
  P_out = G P_in, solved in closed form G = 2 G0 / (1 + sqrt(1 + 4 G0 P_in / P_sat)); P_sat is the
  output power at which the gain is 3 dB compressed (G = G0 / 2).
* ``"clamp"``: G = min(G0, P_sat / P_in): an output-power-limited (pump-limited / APC) booster whose
  maximum output is P_sat.
NF is held constant under saturation; self-saturation by ASE is neglected (ASE is ~ -8 dBm over 4 THz
at 20 dB gain, small against a saturating signal).
"""

from __future__ import annotations

import math

import numpy as np

from sim_backends.physics.constants import C, H
from sim_backends.physics.filters import BANDPASS_SHAPES, bandpass_noise_bandwidth, optical_bandpass
from sim_backends.physics.units import dbm_to_w
from sim_backends.physics.validation import require_range, require_wavelengths

SATURATION_MODELS = ("compression", "clamp")


def _photon_energy(wavelength_m) -> np.ndarray:
    return H * C / require_wavelengths(wavelength_m)


class EDFA:
    """C-band EDFA: small-signal gain, noise figure, saturation, optional ASE band-pass filter.

    Defaults (PHYSICS.md table 2, C-band line/booster EDFA): gain 20 dB (15-30 dB), NF 5 dB
    (4.5-6 dB; OptiCommPy default 4.5 dB; quantum limit 3 dB), saturation output +20 dBm
    (+17...+23 dBm; GNPy p_max 21-23 dBm).

    ``optical_bandwidth_hz`` None: no filter; the ASE fills the simulated band, i.e. the record's
    complex sample rate fs acts as an ideal B_o = fs filter. Otherwise a band-pass of that full
    -3 dB width and ``filter_shape`` ("rect" ideal, "gaussian", "butterworth", "bessel"), centred on
    the carrier, is applied to the amplified field (signal and ASE, as a real filter would);
    a common choice is 100 GHz = 0.8 nm, one ITU-T G.694.1 DWDM channel.
    """

    def __init__(self, gain_db: float = 20.0, noise_figure_db: float = 5.0,
                 saturation_output_dbm: float = 20.0, optical_bandwidth_hz: float | None = None,
                 filter_shape: str = "rect", filter_order: int = 1,
                 saturation_model: str = "compression"):
        self.gain_db = require_range("gain_db", gain_db, 0.0, 60.0)
        g0 = 10 ** (self.gain_db / 10)
        # quantum limit: n_sp >= 1  <=>  NF >= 2 - 1/G (3.01 dB at high gain); never below 3 dB
        nf_min_db = max(3.0, 10 * math.log10(2 - 1 / g0))
        self.noise_figure_db = require_range("noise_figure_db", noise_figure_db, nf_min_db, 30.0)
        self.saturation_output_dbm = require_range("saturation_output_dbm", saturation_output_dbm, -30.0, 40.0)
        if optical_bandwidth_hz is not None:
            optical_bandwidth_hz = require_range("optical_bandwidth_hz", optical_bandwidth_hz, 1.0, 1e15)
        self.optical_bandwidth_hz = optical_bandwidth_hz
        filter_shape = str(filter_shape).lower()
        if filter_shape not in BANDPASS_SHAPES:
            raise ValueError(f"filter_shape={filter_shape!r} is not one of {BANDPASS_SHAPES}")
        self.filter_shape = filter_shape
        self.filter_order = int(require_range("filter_order", filter_order, 1, 16))
        if saturation_model not in SATURATION_MODELS:
            raise ValueError(f"saturation_model={saturation_model!r} is not one of {SATURATION_MODELS}")
        self.saturation_model = saturation_model

    @property
    def small_signal_gain(self) -> float:
        return 10 ** (self.gain_db / 10)

    @property
    def noise_figure(self) -> float:
        return 10 ** (self.noise_figure_db / 10)

    @property
    def saturation_output_w(self) -> float:
        return dbm_to_w(self.saturation_output_dbm)

    def gain(self, input_power_w=0.0) -> np.ndarray | float:
        """Linear gain at total average input power ``input_power_w`` (W), per ``saturation_model``."""
        p_in = np.asarray(input_power_w, dtype=float)
        if np.any(p_in < 0) or np.any(np.isnan(p_in)):
            raise ValueError(f"input_power_w={input_power_w!r} must be >= 0")
        g0, p_sat = self.small_signal_gain, self.saturation_output_w
        if self.saturation_model == "clamp":
            with np.errstate(divide="ignore"):
                g = np.minimum(g0, np.where(p_in > 0, p_sat / np.where(p_in > 0, p_in, 1.0), np.inf))
        else:
            g = 2 * g0 / (1 + np.sqrt(1 + 4 * g0 * p_in / p_sat))
        return float(g) if np.ndim(g) == 0 else g

    def ase_psd_w_per_hz(self, wavelength_m=1550e-9, gain=None) -> np.ndarray | float:
        """One-sided ASE PSD per polarisation S_sp = n_sp (G - 1) h nu = (NF G - 1) h nu / 2, W/Hz."""
        g = self.small_signal_gain if gain is None else np.asarray(gain, dtype=float)
        return np.maximum(self.noise_figure * g - 1, 0.0) * _photon_energy(wavelength_m) / 2

    def ase_power_w(self, bandwidth_hz: float, wavelength_m=1550e-9, gain=None,
                    polarisations: int = 2) -> np.ndarray | float:
        """ASE power in an ideal optical bandwidth: polarisations * S_sp * B (both pols: 2 S_sp B_o)."""
        if polarisations not in (1, 2):
            raise ValueError(f"polarisations={polarisations!r} must be 1 or 2")
        bandwidth_hz = require_range("bandwidth_hz", bandwidth_hz, 0.0)
        return polarisations * self.ase_psd_w_per_hz(wavelength_m, gain) * bandwidth_hz

    def noise_bandwidth_hz(self, fs: float) -> float:
        """Optical noise bandwidth the ASE occupies in a record sampled at ``fs``."""
        if self.optical_bandwidth_hz is None:
            return float(fs)
        return bandpass_noise_bandwidth(self.optical_bandwidth_hz, self.filter_shape, self.filter_order)

    # -- waveform level -----------------------------------------------------------------------

    def amplify(self, field, fs: float, wavelength_m, rng: np.random.Generator, *,
                input_power_w: float | None = None, add_noise: bool = True) -> np.ndarray:
        """Co-polarised output field sqrt(G) E_in + n_ASE,co (filtered to B_o if set).

        ``field``: complex envelope (sqrt(W)), shape (..., n), sampled at complex rate ``fs``;
        ``wavelength_m`` scalar or broadcastable to ``field.shape[:-1]`` (sets h nu per channel).
        ``input_power_w``: total average input power for saturation; default sum over leading axes
        of the record-mean |E|^2 (pass it when leading axes are independent realisations).
        ``add_noise=False``: deterministic gain only (no ASE draw).
        """
        return self._amplify(field, fs, wavelength_m, rng, input_power_w, add_noise, False)[0]

    def amplify_dual_pol(self, field, fs: float, wavelength_m, rng: np.random.Generator, *,
                         input_power_w: float | None = None,
                         add_noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(co-polarised field, orthogonal-polarisation ASE field), both shaped like ``field``."""
        return self._amplify(field, fs, wavelength_m, rng, input_power_w, add_noise, True)

    def _amplify(self, field, fs, wavelength_m, rng, input_power_w, add_noise, orthogonal):
        fs = require_range("fs", fs, 1e-300)
        if self.optical_bandwidth_hz is not None and fs < self.optical_bandwidth_hz:
            raise ValueError(f"fs={fs!r} is below optical_bandwidth_hz={self.optical_bandwidth_hz!r}: "
                             "the complex record cannot represent the ASE band; raise fs to at least B_o")
        if add_noise and not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy.random.Generator (seeded by the caller)")
        field = np.asarray(field)
        if field.ndim == 0 or field.shape[-1] == 0:
            raise ValueError("field must have at least one sample along its last axis")
        if field.dtype not in (np.complex64, np.complex128):
            field = field.astype(np.complex64 if field.dtype == np.float32 else np.complex128)
        real_dtype = np.float32 if field.dtype == np.complex64 else np.float64

        if input_power_w is None:
            input_power_w = float(np.sum(np.mean(np.abs(field) ** 2, axis=-1)))
        g = self.gain(require_range("input_power_w", input_power_w, 0.0))
        out = field * real_dtype(math.sqrt(g))
        ortho = np.zeros_like(out)
        if add_noise:
            # complex Gaussian, E|n|^2 = S_sp fs per sample (S_sp/2 fs per quadrature)
            sigma = np.sqrt(self.ase_psd_w_per_hz(wavelength_m, g) * fs / 2)
            sigma = np.expand_dims(np.asarray(sigma, dtype=real_dtype), -1)
            draws = 2 if orthogonal else 1
            noise = rng.standard_normal((draws, 2) + field.shape, dtype=real_dtype)
            out = out + sigma * (noise[0, 0] + 1j * noise[0, 1])
            if orthogonal:
                ortho = (sigma * (noise[1, 0] + 1j * noise[1, 1])).astype(field.dtype)
        if self.optical_bandwidth_hz is not None:
            bp = dict(fs=fs, center_offset_hz=0.0, bandwidth_hz=self.optical_bandwidth_hz,
                      shape=self.filter_shape, order=self.filter_order)
            out = optical_bandpass(out, **bp)
            if orthogonal and add_noise:
                ortho = optical_bandpass(ortho, **bp)
        return out.astype(field.dtype, copy=False), ortho
