"""Electrical bench parts: the RF driver amplifier between an AWG and a modulator.

An AWG gives about 1 Vpp; a LiNbO3 MZM needs swings of the order of V_pi (5 V) to use its whole
transfer curve, so labs put a broadband driver amplifier in between (PHYSICS.md section 3: "0.5 Vpp ->
needs an RF amplifier with gain and noise figure to reach V_pi-scale swings").
"""

from __future__ import annotations

import numpy as np

from sim_backends.physics.constants import K_B
from sim_backends.physics.validation import require_range
from sim_backends.world import ELECTRICAL_IN, ELECTRICAL_OUT, Component


class RFAmplifier(Component):
    """Broadband linear driver amplifier with noise and output saturation.

    v_out = V_sat tanh(G v_in / V_sat) + n, with G the voltage gain (gain_db is power gain into 50 ohm,
    G = 10^(gain_db/20)), V_sat half the saturated output swing, and n the output-referred noise for
    noise figure F over ``noise_bandwidth_hz``: sigma^2 = F k T B R G^2 with R = 50 ohm (the source's
    own thermal noise plus the amplifier's excess noise).
    Defaults: a 40 GHz-class LiNbO3 modulator driver, 20 dB gain, 5 dB NF, 8 Vpp saturated output
    (typical of SHF 807C / iXblue DR-PL-class datasheets †). Bandwidth filtering of the drive is done by
    the modulator's electro-optic response.
    """

    PORTS = {"in": ELECTRICAL_IN, "out": ELECTRICAL_OUT}

    def __init__(self, name: str, gain_db: float = 20.0, noise_figure_db: float = 5.0,
                 saturated_output_vpp: float = 8.0, noise_bandwidth_hz: float = 40e9, input_ohm: float = 50.0):
        self.name = name
        self.gain_db = require_range("gain_db", gain_db, -20.0, 60.0)
        self.noise_figure_db = require_range("noise_figure_db", noise_figure_db, 0.0, 30.0)
        self.saturated_output_vpp = require_range("saturated_output_vpp", saturated_output_vpp, 0.01, 100.0)
        self.noise_bandwidth_hz = require_range("noise_bandwidth_hz", noise_bandwidth_hz, 1.0, 1e12)
        self.input_ohm = require_range("input_ohm", input_ohm, 1.0, 1e9)

    @property
    def voltage_gain(self) -> float:
        return 10 ** (self.gain_db / 20)

    @property
    def noise_rms_v(self) -> float:
        """Output-referred rms noise voltage over the noise bandwidth."""
        f = 10 ** (self.noise_figure_db / 10)
        return float(np.sqrt(f * K_B * self.world.temperature_k * self.noise_bandwidth_hz * 50.0) * self.voltage_gain)

    def electrical_output(self, port, t):
        v_in = self.world.voltage_into(self.name, "in", t)
        v_sat = self.saturated_output_vpp / 2
        out = v_sat * np.tanh(self.voltage_gain * np.asarray(v_in) / v_sat)
        if np.ndim(t) and np.size(t) > 1:
            out = out + self.world.rng.standard_normal(np.shape(t), dtype=np.float32) * self.noise_rms_v
        return out

    def input_resistance(self, port):
        return self.input_ohm

    def state(self):
        return {"gain_db": self.gain_db, "noise_figure_db": self.noise_figure_db,
                "saturated_output_vpp": self.saturated_output_vpp}


ELECTRICAL_COMPONENTS = {"rf_amplifier": RFAmplifier}
