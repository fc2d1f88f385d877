"""World graph nodes for the passive bench parts: fibre span, Mach-Zehnder modulator, photodiode, heater.

Each node has ports and pulls its input from its neighbours through the World; the device physics it
applies is a pure model, usable without a World: :class:`~sim_backends.physics.fibre.FibreSpan` (loss,
chromatic dispersion on the field, walk-off, Kerr), :class:`~sim_backends.physics.modulator.MachZehnderModel`
(cos^2 transfer, finite extinction), :mod:`~sim_backends.physics.filters` (electrical low-pass responses)
and :class:`~sim_backends.physics.receiver.Receiver` (photodetection noise). How a part with memory
evaluates on a requested time grid is :mod:`sim_backends.physics.grids`. Equations follow
shared/PHYSICS.md section 3; defaults are typical datasheet values (cited per parameter); bench files
override them.
"""

from __future__ import annotations

import math
import numpy as np
import scipy.fft as sfft

from sim_backends.physics.converters import lowpass_response
from sim_backends.physics.fibre import FibreSpan
from sim_backends.physics.filters import KINDS, LowPass
from sim_backends.physics.grids import (
    MAX_FIELD_RATE_HZ,
    MAX_GRID_POINTS,
    MAX_SIGNAL_OVERSAMPLE,
    MIN_FIELD_RATE_HZ,
    Grid,
    ResponseCache,
    delay_free,
    lowpass_memory_s,
    rounded,
    signal_grid,
    uniform_step,
)
from sim_backends.physics.modulator import MachZehnderModel
from sim_backends.physics.receiver import NoiseTerms, Receiver, white_spectrum
from sim_backends.physics.validation import require_range
from sim_backends.world import (
    ELECTRICAL_IN,
    ELECTRICAL_OUT,
    OPTICAL_IN,
    OPTICAL_OUT,
    Component,
    Lightwave,
    model_parameter,
    total_power,
)

# -- fibre -----------------------------------------------------------------------------------------


class Fibre(Component):
    """A span of standard single-mode fibre: attenuation, chromatic dispersion, walk-off, optional Kerr.

    The physics is :class:`~sim_backends.physics.fibre.FibreSpan` (its sign conventions apply). Every
    carrier arrives its group delay later, L n_g / c + D L (lambda - lambda_ref) (walk-off). On a
    uniform grid the span acts on each carrier's *field*: exp(-alpha L/2 - j beta2 w^2 L/2 - j w dtau),
    or a symmetric split-step with SPM when ``nonlinear`` is set (for high launch powers); the grid is
    padded by the dispersive spread pi |beta2| L fs of the grid's band plus the walk-off (grids finer than
    ``MAX_FIELD_RATE_HZ`` are propagated at that rate and interpolated). On a single
    point or non-uniform times only the loss (and, with ``nonlinear``, the CW SPM phase
    -gamma P L_eff) applies.

    Defaults: SSMF G.652.D at 1550 nm (PHYSICS.md table 2; Corning SMF-28 Ultra datasheet): 0.2 dB/km,
    D = 17 ps/nm/km, gamma = 1.3 /W/km, group index 1.4682. The fields are propagated in complex64
    (relative precision 1e-7, far below RIN and ADC resolution) for speed.
    """

    PORTS = {"in": OPTICAL_IN, "out": OPTICAL_OUT}

    def __init__(self, name: str, length_km: float = 1.0, attenuation_db_per_km: float = 0.2,
                 group_index: float = 1.4682, dispersion_ps_nm_km: float = 17.0,
                 gamma_per_w_km: float = 1.3, reference_wavelength_nm: float = 1550.0,
                 nonlinear: bool = False):
        self.name = name
        if not isinstance(nonlinear, bool):
            raise ValueError(f"nonlinear={nonlinear!r} must be true or false")
        self.nonlinear = nonlinear
        self.span = FibreSpan(length_km, attenuation_db_per_km, dispersion_ps_nm_km, gamma_per_w_km,
                              group_index, reference_wavelength_nm * 1e-9)
        self._walk_pad_s = 0.0  # largest walk-off seen so far: padding for the next evaluation

    # -- parameters (settable: an experiment on a simulated bench may change the span) -------------

    @property
    def length_km(self) -> float:
        return self.span.length_km

    @length_km.setter
    def length_km(self, value: float) -> None:
        s = self.span
        self.span = FibreSpan(value, s.attenuation_db_per_km, s.dispersion_ps_nm_km, s.gamma_per_w_km,
                              s.group_index, s.reference_wavelength_m)
        self._walk_pad_s = 0.0

    @property
    def attenuation_db_per_km(self) -> float:
        return self.span.attenuation_db_per_km

    @property
    def group_index(self) -> float:
        return self.span.group_index

    @property
    def power_transmission(self) -> float:
        return self.span.power_transmission

    @property
    def delay_s(self) -> float:
        """Group delay at the reference wavelength, L n_g / c."""
        return self.span.group_delay()

    # -- physics ---------------------------------------------------------------------------------

    def optical_output(self, port, t):
        t = np.asarray(t, dtype=float)
        dt = uniform_step(t)
        if dt is None or math.ceil(MIN_FIELD_RATE_HZ * dt * (1 - 1e-12)) > MAX_SIGNAL_OVERSAMPLE \
                or t.size * math.ceil(MIN_FIELD_RATE_HZ * dt) > MAX_GRID_POINTS:
            return self._memoryless(t)
        for _ in range(2):  # a second pass only if a carrier walks off further than padded for
            light, fine = self._dispersed(t, dt)
            if fine:
                return light
        return light

    def _memoryless(self, t):
        span = self.span
        light = self.world.light_into(self.name, "in", t - span.group_delay())
        amplitude = math.sqrt(span.power_transmission)
        walking = [] if self.world.static_evaluation else \
            [i for i, c in enumerate(light) if span.walk_off(c.wavelength) != 0]
        if walking:
            # every walked-off carrier's own delay, all in ONE upstream evaluation (evaluating per
            # carrier would multiply the cost by the carrier count at every fibre of a cascade): the
            # requested times once per carrier on a new leading axis, not concatenated into one axis,
            # which upstream parts would read as a sampled record (evenly spaced carriers give evenly
            # spaced delays; a compensated cascade makes its ends coincide) and give it a sample
            # rate, so RIN or ASE of a made-up bandwidth
            base = t.reshape(t.shape or (1,))
            delays = np.array([span.group_delay(light[i].wavelength) for i in walking])
            stacked = base[None] - delays.reshape((-1,) + (1,) * base.ndim)
            later = self.world.light_into(self.name, "in", stacked)
            for j, i in enumerate(walking):
                found = _same_carrier(later, light[i], i)
                field = np.broadcast_to(np.asarray(found.field), stacked.shape)[j].reshape(t.shape)
                light[i] = Lightwave(light[i].wavelength, field)
        out = []
        for i, carrier in enumerate(light):
            field = carrier.field * amplitude
            if self.nonlinear and span.gamma_per_w_km > 0:
                field = field * np.exp(-1j * span.nonlinear_phase(np.abs(carrier.field) ** 2))
            out.append(Lightwave(carrier.wavelength, field))
        return out

    def _dispersed(self, t, dt):
        """(light at t, padding was enough) on a uniform grid of spacing dt."""
        span = self.span
        k = max(1, math.ceil(MIN_FIELD_RATE_HZ * dt * (1 - 1e-12)))  # resolve the modulation band
        fs = min(k / dt, MAX_FIELD_RATE_HZ)
        spread = np.pi * abs(float(span.beta2())) * span.length_m * fs  # s, each side
        grid = Grid.around(t, dt, 1.1 * spread + self._walk_pad_s + 4 / fs, k, max_rate_hz=MAX_FIELD_RATE_HZ)
        fs = grid.fs
        light = self.world.light_into(self.name, "in", grid.times - span.group_delay())
        walk = max((abs(float(span.walk_off(c.wavelength))) for c in light), default=0.0)
        if walk > self._walk_pad_s:
            self._walk_pad_s = walk
            return [], False
        out = []
        for carrier in light:
            field = np.broadcast_to(np.asarray(carrier.field), grid.times.shape).astype(np.complex64)
            if self.nonlinear and span.gamma_per_w_km > 0:
                field = span.propagate(field, fs, wavelength_m=carrier.wavelength, nonlinear=True)
            else:  # the span's linear transfer function, cached per grid (one multiplication by FFT)
                h = span.transfer_on_grid(field.size, rounded(fs), carrier.wavelength, dtype=np.complex64)
                field = sfft.ifft(sfft.fft(field) * h)
            out.append(Lightwave(carrier.wavelength, grid.take(field)))
        return out, True


    def state(self):
        return {"length_km": self.length_km, "attenuation_db_per_km": self.attenuation_db_per_km,
                "dispersion_ps_nm_km": self.span.dispersion_ps_nm_km,
                "gamma_per_w_km": self.span.gamma_per_w_km, "nonlinear": self.nonlinear}


def _same_carrier(light: list[Lightwave], like: Lightwave, index: int) -> Lightwave:
    """The carrier of ``light`` at ``like``'s wavelength (same position first), or a dark one."""
    if index < len(light) and light[index].wavelength == like.wavelength:
        return light[index]
    for carrier in light:
        if carrier.wavelength == like.wavelength:
            return carrier
    return Lightwave(like.wavelength, 0 * like.field)


# -- modulator -------------------------------------------------------------------------------------


class MachZehnderModulator(Component):
    """Chirp-free push-pull MZM: P_out = P_in IL [eps + (1 - 2 eps) cos^2(theta)].

    theta = (pi / 2) [(V_bias + V0) / V_pi + V_rf' / V_pi,rf], where V_rf' is the RF drive after the
    electro-optic response (a low-pass of ``eo_bandwidth_hz`` on the drive voltage, unit DC gain,
    DC group delay removed): the effective V_pi at frequency f is V_pi,rf / |H_eo(f)|, which grows
    with frequency (PHYSICS.md: 2.4 V at DC -> 3.8 V at 10 GHz in one measured MZM). The bias port is
    the DC electrode with its own V_pi (``v_pi``). ``phase_offset_v`` (V0) is the device's built-in
    bias point; eps = 1 / (ER + 1) sets the finite extinction ratio. The field is real (chirp-free)
    and changes sign with cos(theta): |t|^2 is the power transmission above.

    Defaults: LiNbO3 intensity modulator of the Thorlabs LN81S-FC class, V_pi(DC) ~ 5 V, IL 4 dB,
    ER 25 dB (Thorlabs LN81S-FC datasheet; PHYSICS.md table 2). ``v_pi_rf`` None = ``v_pi``;
    ``eo_bandwidth_hz`` None = no EO roll-off (bench files set both, see characterisation.yaml).
    """

    PORTS = {"in": OPTICAL_IN, "out": OPTICAL_OUT, "rf": ELECTRICAL_IN, "bias": ELECTRICAL_IN}

    v_pi = model_parameter("v_pi")
    v_pi_rf = model_parameter("v_pi_rf")
    insertion_loss_db = model_parameter("insertion_loss_db")
    extinction_ratio_db = model_parameter("extinction_ratio_db")
    phase_offset_v = model_parameter("phase_offset_v")

    def __init__(self, name: str, v_pi: float = 5.0, insertion_loss_db: float = 4.0,
                 extinction_ratio_db: float = 25.0, phase_offset_v: float = 0.0,
                 v_pi_rf: float | None = None, eo_bandwidth_hz: float | None = None,
                 eo_response: str = "butterworth", eo_order: int = 1,
                 rf_input_ohm: float = 50.0, bias_input_ohm: float = 1e6):
        self.name = name
        v_pi = require_range("v_pi", v_pi, 0.1, 100.0)
        #: The device physics (settable parameters above replace it with a validated copy).
        self.model = MachZehnderModel(v_pi, v_pi if v_pi_rf is None else v_pi_rf, insertion_loss_db,
                                      extinction_ratio_db, phase_offset_v)
        self.rf_input_ohm = require_range("rf_input_ohm", rf_input_ohm, 1e-3, 1e12)
        self.bias_input_ohm = require_range("bias_input_ohm", bias_input_ohm, 1e-3, 1e12)
        if eo_response not in KINDS:
            raise ValueError(f"eo_response={eo_response!r} is not one of {KINDS}")
        self.eo_filter = None
        if eo_bandwidth_hz is not None:
            require_range("eo_bandwidth_hz", eo_bandwidth_hz, 1e6, 1e13)
            self.eo_filter = LowPass(float(eo_bandwidth_hz), eo_response, eo_order)
            self._eo_response = ResponseCache(delay_free(self.eo_filter))

    @property
    def eo_bandwidth_hz(self) -> float | None:
        return None if self.eo_filter is None else self.eo_filter.f3db_hz

    def transmission(self, v_rf, v_bias):
        """Power transmission IL [eps + (1 - 2 eps) cos^2 theta] for an RF drive ``v_rf`` (V, already
        through the EO response) and a bias ``v_bias`` (V); vectorised over both."""
        return self.model.transmission(v_rf, v_bias)

    def power_transmission(self, volts):
        """Power transmission for a voltage on the DC (bias) electrode, RF drive 0 (vectorised)."""
        return self.model.transmission(0.0, volts)

    def field_transmission(self, v_rf, v_bias):
        """Real field transmission sign(cos theta) sqrt(T(theta)) for the filtered RF drive and the bias."""
        return self.model.field_transmission(v_rf, v_bias)

    def rf_drive(self, t) -> np.ndarray:
        """RF voltage acting on the light at times ``t``: the drive after the EO response."""
        t = np.asarray(t, dtype=float)
        grid = None
        if self.eo_filter is not None:
            grid = signal_grid(t, self.eo_filter.f3db_hz, lowpass_memory_s(self.eo_filter.f3db_hz, self.eo_filter.order))
        if grid is None:
            return self.world.voltage_into(self.name, "rf", t)
        v = np.asarray(self.world.voltage_into(self.name, "rf", grid.times), dtype=np.float32)
        if v.size and v.min() != v.max():  # a constant drive passes a unit-DC-gain filter unchanged
            v = self._eo_response.filter(v, grid.fs)
        return grid.take(v).astype(float)

    def optical_output(self, port, t):
        light = self.world.light_into(self.name, "in", t)
        if not light:
            return []
        amplitude = self.field_transmission(self.rf_drive(t), self.world.voltage_into(self.name, "bias", t))
        if np.ndim(amplitude) and all(np.asarray(c.field).dtype == np.complex64 for c in light):
            amplitude = amplitude.astype(np.float32)  # keep single-precision records (the lasers') single
        return [carrier.scaled(amplitude) for carrier in light]

    def input_resistance(self, port):
        return self.rf_input_ohm if port == "rf" else self.bias_input_ohm

    def state(self):
        return {"v_pi": self.v_pi, "v_pi_rf": self.v_pi_rf, "insertion_loss_db": self.insertion_loss_db,
                "extinction_ratio_db": self.extinction_ratio_db, "phase_offset_v": self.phase_offset_v,
                "eo_bandwidth_hz": self.eo_bandwidth_hz}


# -- photodiode ------------------------------------------------------------------------------------

#: Photodiode parameter -> the Receiver argument it sets.
_RECEIVER_ARGS = {"responsivity_a_per_w": "responsivity", "dark_current_a": "dark_current",
                  "bandwidth_hz": "bandwidth_hz", "load_ohm": "load_ohm", "transimpedance_ohm": "tia_gain_ohm",
                  "input_noise_a_per_rthz": "input_noise_a_per_rthz", "saturation_current_a": "saturation_current",
                  "response": "response", "response_order": "response_order", "rin_db_per_hz": "rin_db_per_hz",
                  "noise_factor": "noise_factor"}


def _receiver_for(parameters: dict, temperature_k: float | None) -> Receiver:
    """The Receiver for photodiode ``parameters``; an invalid one is a ValueError in the photodiode's names."""
    args = {_RECEIVER_ARGS[k]: v for k, v in parameters.items()}
    if temperature_k is not None:
        args["temperature_k"] = temperature_k
    try:
        return Receiver(**args)
    except ValueError as exc:
        message = str(exc)
        for outer, inner in _RECEIVER_ARGS.items():
            if message.startswith(inner + "="):
                message = outer + message[len(inner):]
        raise ValueError(message) from None


def _magnitude_of(rx: Receiver):
    """|H(f)| of ``rx``'s response, as a function of f for ResponseCache."""
    return lambda f: lowpass_response(f, rx.bandwidth_hz, rx.response, rx.response_order)


def _receiver_parameter(name: str) -> property:
    """A photodiode parameter as a property: read from its settings, written through ``configure``."""
    return property(lambda pd: pd.parameters()[name], lambda pd, value: pd.configure(**{name: value}),
                    doc=f"Receiver parameter ``{name}`` (settable on a running bench).")


class Photodiode(Component):
    """PIN photodiode into a 50-ohm load or a TIA: :class:`~sim_backends.physics.receiver.Receiver`.

    I = R P + I_d (+ noise), saturating at ``saturation_current_a``; V = I Z (Z = transimpedance, else
    the load). Noise terms of the Receiver (PHYSICS.md section 3): shot 2 q I, thermal 4 k T / R_L or
    F_n i_n^2 for a TIA, RIN RIN_lin I^2 if ``rin_db_per_hz`` is set (leave it None when the laser
    already puts RIN on the field, as the bench lasers do); their one-sided PSD N0(P) is a polynomial
    of degree <= 2 in the optical power, taken from ``Receiver.noise_variances``.

    On a uniform grid (oversampled to >= 2 B if needed) white noise of per-sample variance
    N0(P(t)) fs / 2 is added to the photocurrent and signal and noise pass the receiver response
    (``response``, ``response_order`` as in the Receiver: zero-phase magnitude), so the noise is
    band-limited: variance N0 integral_0^{fs/2} |H|^2 df (= N0 B_e once fs/2 is well above the
    band). On single points each sample gets the variance N0 B_e over the receiver's noise bandwidth.

    Defaults: InGaAs PIN of the Thorlabs DET08CFC class, R = 0.9 A/W at 1550 nm, 1.5 nA dark current,
    5 GHz, 50-ohm load (Thorlabs DET08CFC datasheet), 'brickwall' response (then ``bandwidth_hz`` is
    B_e exactly). Every parameter is settable on a running bench (``configure`` or the property).
    """

    PORTS = {"in": OPTICAL_IN, "out": ELECTRICAL_OUT}

    responsivity_a_per_w = _receiver_parameter("responsivity_a_per_w")
    dark_current_a = _receiver_parameter("dark_current_a")
    bandwidth_hz = _receiver_parameter("bandwidth_hz")
    load_ohm = _receiver_parameter("load_ohm")
    transimpedance_ohm = _receiver_parameter("transimpedance_ohm")
    input_noise_a_per_rthz = _receiver_parameter("input_noise_a_per_rthz")
    saturation_current_a = _receiver_parameter("saturation_current_a")
    response = _receiver_parameter("response")
    response_order = _receiver_parameter("response_order")
    rin_db_per_hz = _receiver_parameter("rin_db_per_hz")
    noise_factor = _receiver_parameter("noise_factor")

    def __init__(self, name: str, responsivity_a_per_w: float = 0.9, dark_current_a: float = 1.5e-9,
                 bandwidth_hz: float = 5e9, load_ohm: float = 50.0, transimpedance_ohm: float | None = None,
                 input_noise_a_per_rthz: float | None = None, saturation_current_a: float = 10e-3,
                 response: str = "brickwall", response_order: int = 4, rin_db_per_hz: float | None = None,
                 noise_factor: float = 1.0):
        self.name = name
        self._parameters: dict[str, object] = {}
        self._derived: tuple | None = None  # (key, (receiver, noise terms, response cache)), replaced whole
        self.configure(responsivity_a_per_w=responsivity_a_per_w, dark_current_a=dark_current_a,
                       bandwidth_hz=bandwidth_hz, load_ohm=load_ohm, transimpedance_ohm=transimpedance_ohm,
                       input_noise_a_per_rthz=input_noise_a_per_rthz, saturation_current_a=saturation_current_a,
                       response=response, response_order=response_order, rin_db_per_hz=rin_db_per_hz,
                       noise_factor=noise_factor)

    def parameters(self) -> dict[str, object]:
        """The current parameters, by the constructor's names."""
        return dict(self._parameters)

    def configure(self, **changes) -> None:
        """Change receiver parameters (the constructor's names), checked together before any applies:
        an experiment may change a photodiode on a running bench, and what it detects follows."""
        unknown = set(changes) - set(_RECEIVER_ARGS)
        if unknown:
            raise ValueError(f"unknown photodiode parameter(s) {sorted(unknown)}; known: {sorted(_RECEIVER_ARGS)}")
        parameters = {**self._parameters, **changes}
        _receiver_for(parameters, None)  # validates every parameter now
        self._parameters = parameters

    def _temperature_k(self) -> float | None:
        world = getattr(self, "world", None)
        return None if world is None else world.temperature_k

    def _current(self) -> tuple[Receiver, NoiseTerms, ResponseCache]:
        """The Receiver, its noise terms and response cache for the current parameters and bench
        temperature: rebuilt when any of them changes."""
        key = (tuple(sorted(self._parameters.items())), self._temperature_k())
        derived = self._derived
        if derived is None or derived[0] != key:
            receiver = _receiver_for(self._parameters, key[1])
            derived = self._derived = (key, (receiver, receiver.noise_terms(), ResponseCache(_magnitude_of(receiver))))
        return derived[1]

    @property
    def receiver(self) -> Receiver:
        """The Receiver model for the current parameters at the bench temperature."""
        return self._current()[0]

    @property
    def responsivity(self) -> float:
        return self.receiver.responsivity

    @property
    def dark_current(self) -> float:
        return self.receiver.dark_current

    @property
    def bandwidth(self) -> float:
        return self.receiver.bandwidth_hz

    @property
    def gain_ohm(self) -> float:
        return self.receiver.gain_ohm

    @property
    def saturation_current(self) -> float:
        return self.receiver.saturation_current

    def noise_terms(self) -> NoiseTerms:
        """Coefficients of the one-sided current-noise PSD N0(P) = a0 + a1 P + a2 P^2 (A^2/Hz, P in W)
        for the current parameters (a symbol-level model scales them by its own noise bandwidth)."""
        return self._current()[1]

    def noise_psd(self, power_w):
        """One-sided current-noise PSD N0(P) in A^2/Hz at optical power ``power_w`` (W)."""
        a0, a1, a2 = self.noise_terms()
        p = np.asarray(power_w)
        return a0 + p * (a1 + a2 * p) if a2 else a0 + a1 * p

    def noise_variance_a2(self, power_w):
        """Current-noise variance (A^2) over the receiver noise bandwidth at optical power ``power_w``."""
        return self.noise_psd(power_w) * self.receiver.noise_bandwidth_hz

    def electrical_output(self, port, t):
        t = np.asarray(t, dtype=float)
        rx = self.receiver
        rng = self.world.rng
        grid = signal_grid(t, rx.bandwidth_hz, lowpass_memory_s(rx.bandwidth_hz, rx.response_order))
        if grid is None:
            power = total_power(self.world.light_into(self.name, "in", t), t)
            sigma = np.sqrt(self.noise_variance_a2(power))
            current = rx.responsivity * power + rx.dark_current
            current = current + rng.standard_normal(np.shape(t), dtype=np.float32) * sigma
            return np.minimum(current, rx.saturation_current) * rx.gain_ohm
        light = self.world.light_into(self.name, "in", grid.times)
        n, fs = grid.times.size, grid.fs
        if not light:  # dark: stationary white noise, drawn directly as its (filtered) spectrum
            current = self._stationary_noise(n, fs, float(self.noise_psd(0.0)) * fs / 2, rng)
            current += np.float32(rx.dark_current)
        else:
            power = total_power(light, grid.times)
            current = rng.standard_normal(n, dtype=np.float32)
            current *= np.sqrt(self.noise_psd(power) * fs / 2).astype(np.float32)
            current += (rx.responsivity * power + rx.dark_current).astype(np.float32)
            current = self._current()[2].filter(current, fs)
        current = grid.take(current).astype(float)
        return np.minimum(current, rx.saturation_current) * rx.gain_ohm

    def _stationary_noise(self, n: int, fs: float, variance: float, rng) -> np.ndarray:
        """Band-limited white noise of per-sample variance ``variance`` before the receiver response,
        drawn as its spectrum (``receiver.white_spectrum``: one FFT cheaper than filtering samples)."""
        spectrum = white_spectrum((n,), rng)
        spectrum *= np.float32(math.sqrt(variance))
        spectrum *= self._current()[2].on_grid(n, fs)
        return sfft.irfft(spectrum, n=n)

    def state(self):
        rx = self.receiver
        return {"responsivity_a_per_w": rx.responsivity, "bandwidth_hz": rx.bandwidth_hz,
                "response": rx.response, "gain_ohm": rx.gain_ohm,
                "noise_bandwidth_hz": rx.noise_bandwidth_hz}


# -- heater ----------------------------------------------------------------------------------------


class Heater(Component):
    """A resistive heater (e.g. a microring's): a load for a DC source channel.

    Default 500 ohm, typical of doped-silicon/TiN microring heaters. Its optical effect on a ring's
    resonance is the microring weight bank model (``sim_backends.physics.microring``).
    """

    PORTS = {"in": ELECTRICAL_IN}

    def __init__(self, name: str, resistance_ohm: float = 500.0):
        self.name = name
        self.resistance_ohm = require_range("resistance_ohm", resistance_ohm, 1e-3, 1e9)

    def input_resistance(self, port):
        return self.resistance_ohm

    def state(self):
        return {"resistance_ohm": self.resistance_ohm}


COMPONENTS: dict[str, type[Component]] = {
    "fibre": Fibre,
    "mzm": MachZehnderModulator,
    "photodiode": Photodiode,
    "heater": Heater,
}
