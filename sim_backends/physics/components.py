"""Passive bench parts: fibre span, Mach-Zehnder modulator, photodiode receiver, heater load.

Equations follow shared/PHYSICS.md section 3. Defaults are typical datasheet values (cited per
parameter); bench files override them.
"""

from __future__ import annotations

import numpy as np

from sim_backends.physics.constants import K_B, Q
from sim_backends.world import (
    ELECTRICAL_IN,
    ELECTRICAL_OUT,
    OPTICAL_IN,
    OPTICAL_OUT,
    Component,
    total_power,
)


def _require(name: str, value: float, low: float, high: float = float("inf")) -> float:
    """Refuse a non-physical parameter with an error that names it and the allowed range."""
    value = float(value)
    if not (low <= value <= high) or np.isnan(value):
        raise ValueError(f"{name}={value!r} is outside the physical range [{low}, {high}]")
    return value


class Fibre(Component):
    """A span of standard single-mode fibre: attenuation and group delay.

    Defaults: SSMF G.652.D, 0.2 dB/km at 1550 nm, group index 1.4682 (Corning SMF-28 datasheet).
    Chromatic dispersion acts on the field and comes with the waveform-level model (issue 4).
    """

    PORTS = {"in": OPTICAL_IN, "out": OPTICAL_OUT}

    def __init__(self, name: str, length_km: float = 1.0, attenuation_db_per_km: float = 0.2,
                 group_index: float = 1.4682):
        self.name = name
        self.length_km = _require("length_km", length_km, 0.0, 20000.0)
        self.attenuation_db_per_km = _require("attenuation_db_per_km", attenuation_db_per_km, 0.0, 10.0)
        self.group_index = _require("group_index", group_index, 1.0, 2.0)

    @property
    def power_transmission(self) -> float:
        return 10 ** (-self.attenuation_db_per_km * self.length_km / 10)

    @property
    def delay_s(self) -> float:
        return self.length_km * 1e3 * self.group_index / 299_792_458.0

    def optical_output(self, port, t):
        light = self.world.light_into(self.name, "in", t - self.delay_s)
        amplitude = np.sqrt(self.power_transmission)
        return [carrier.scaled(amplitude) for carrier in light]

    def state(self):
        return {"length_km": self.length_km, "attenuation_db_per_km": self.attenuation_db_per_km}


class MachZehnderModulator(Component):
    """Chirp-free push-pull MZM: P_out = P_in IL [eps + (1 - 2 eps) cos^2(pi (V + V0) / (2 V_pi))].

    ``V = V_rf + V_bias``; ``phase_offset_v`` (V0) is the device's built-in bias point, different
    for every real modulator and drifting with temperature; eps = 1 / (ER + 1) sets the finite
    extinction ratio. Defaults: LiNbO3 intensity modulator of the Thorlabs LN81S-FC class,
    V_pi(DC) ~ 5 V, IL 4 dB, ER 25 dB (Thorlabs LN81S-FC datasheet; PHYSICS.md table 2).
    """

    PORTS = {"in": OPTICAL_IN, "out": OPTICAL_OUT, "rf": ELECTRICAL_IN, "bias": ELECTRICAL_IN}

    def __init__(self, name: str, v_pi: float = 5.0, insertion_loss_db: float = 4.0,
                 extinction_ratio_db: float = 25.0, phase_offset_v: float = 0.0,
                 rf_input_ohm: float = 50.0, bias_input_ohm: float = 1e6):
        self.name = name
        self.v_pi = _require("v_pi", v_pi, 0.1, 100.0)
        self.insertion_loss_db = _require("insertion_loss_db", insertion_loss_db, 0.0, 40.0)
        self.extinction_ratio_db = _require("extinction_ratio_db", extinction_ratio_db, 0.0, 80.0)
        self.phase_offset_v = float(phase_offset_v)
        self.rf_input_ohm = rf_input_ohm
        self.bias_input_ohm = bias_input_ohm

    def power_transmission(self, volts):
        """Power transmission for the total applied voltage (vectorised)."""
        il = 10 ** (-self.insertion_loss_db / 10)
        eps = 1.0 / (10 ** (self.extinction_ratio_db / 10) + 1.0)
        phase = np.pi * (np.asarray(volts) + self.phase_offset_v) / (2 * self.v_pi)
        return il * (eps + (1 - 2 * eps) * np.cos(phase) ** 2)

    def optical_output(self, port, t):
        light = self.world.light_into(self.name, "in", t)
        if not light:
            return []
        volts = self.world.voltage_into(self.name, "rf", t) + self.world.voltage_into(self.name, "bias", t)
        amplitude = np.sqrt(self.power_transmission(volts))
        return [carrier.scaled(amplitude) for carrier in light]

    def input_resistance(self, port):
        return self.rf_input_ohm if port == "rf" else self.bias_input_ohm

    def state(self):
        return {"v_pi": self.v_pi, "insertion_loss_db": self.insertion_loss_db,
                "extinction_ratio_db": self.extinction_ratio_db, "phase_offset_v": self.phase_offset_v}


class Photodiode(Component):
    """PIN photodiode with a transimpedance (or 50-ohm load) output, shot and thermal noise.

    I = R P + I_d;  V = I Z.  Noise over the receiver bandwidth B (PHYSICS.md section 3):
    shot sigma^2 = 2 q I B, thermal sigma^2 = 4 k T B / R_L (bare load) or i_n^2 B (TIA input noise).
    Defaults: InGaAs PIN of the Thorlabs DET08CFC class: R = 0.9 A/W at 1550 nm, 1.5 nA dark
    current, 5 GHz bandwidth (Thorlabs DET08CFC datasheet); a 50-ohm load into the scope.
    """

    PORTS = {"in": OPTICAL_IN, "out": ELECTRICAL_OUT}

    def __init__(self, name: str, responsivity_a_per_w: float = 0.9, dark_current_a: float = 1.5e-9,
                 bandwidth_hz: float = 5e9, load_ohm: float = 50.0, transimpedance_ohm: float | None = None,
                 input_noise_a_per_rthz: float | None = None, saturation_current_a: float = 10e-3):
        self.name = name
        self.responsivity = _require("responsivity_a_per_w", responsivity_a_per_w, 0.0, 1.3)
        self.dark_current = _require("dark_current_a", dark_current_a, 0.0, 1e-3)
        self.bandwidth = _require("bandwidth_hz", bandwidth_hz, 1.0, 1e12)
        self.load_ohm = _require("load_ohm", load_ohm, 1.0, 1e9)
        self.transimpedance = transimpedance_ohm
        self.input_noise = input_noise_a_per_rthz
        self.saturation_current = _require("saturation_current_a", saturation_current_a, 1e-6, 1.0)

    @property
    def gain_ohm(self) -> float:
        return self.transimpedance if self.transimpedance else self.load_ohm

    def noise_variance_a2(self, current_a):
        """Total current-noise variance (A^2) at mean current ``current_a`` over the bandwidth."""
        shot = 2 * Q * np.abs(current_a) * self.bandwidth
        if self.input_noise is not None:
            thermal = self.input_noise ** 2 * self.bandwidth
        else:
            thermal = 4 * K_B * self.world.temperature_k * self.bandwidth / self.load_ohm
        return shot + thermal

    def electrical_output(self, port, t):
        t = np.asarray(t, dtype=float)
        power = total_power(self.world.light_into(self.name, "in", t), t)
        current = self.responsivity * power + self.dark_current
        noise = self.world.rng.standard_normal(np.shape(t), dtype=np.float32) * np.sqrt(self.noise_variance_a2(current))
        current = np.minimum(current + noise, self.saturation_current)
        return current * self.gain_ohm

    def state(self):
        return {"responsivity_a_per_w": self.responsivity, "bandwidth_hz": self.bandwidth,
                "gain_ohm": self.gain_ohm}


class Heater(Component):
    """A resistive heater (e.g. a microring's): a load for a DC source channel.

    Default 500 ohm, typical of doped-silicon/TiN microring heaters. Its optical effect on a ring's
    resonance comes with the microring weight bank model (issue 4).
    """

    PORTS = {"in": ELECTRICAL_IN}

    def __init__(self, name: str, resistance_ohm: float = 500.0):
        self.name = name
        self.resistance_ohm = _require("resistance_ohm", resistance_ohm, 1e-3, 1e9)

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
