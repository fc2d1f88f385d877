"""Broadband RF driver amplifier (AWG -> modulator): gain, output saturation and noise, without a bench.

An AWG gives about 1 Vpp; a LiNbO3 MZM needs swings of the order of V_pi (5 V) to use its whole
transfer curve, so labs put a broadband driver amplifier in between (PHYSICS.md section 3: "0.5 Vpp ->
needs an RF amplifier with gain and noise figure to reach V_pi-scale swings").

v_out = V_sat tanh(G v_in / V_sat) + n, with G the voltage gain (gain_db is power gain into 50 ohm,
G = 10^(gain_db/20)), V_sat half the saturated output swing, and n the output-referred noise for
noise figure F over the noise bandwidth B: sigma^2 = F k T B R G^2 with R = 50 ohm (the source's own
thermal noise plus the amplifier's excess noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim_backends.physics.constants import K_B
from sim_backends.physics.validation import require_range

#: Source and load impedance of the RF chain, ohm.
SYSTEM_OHM = 50.0


@dataclass(frozen=True)
class RFAmplifierModel:
    """Defaults: a 40 GHz-class LiNbO3 modulator driver, 20 dB gain, 5 dB NF, 8 Vpp saturated output
    (typical of SHF 807C / iXblue DR-PL-class datasheets †)."""

    gain_db: float = 20.0
    noise_figure_db: float = 5.0
    saturated_output_vpp: float = 8.0
    noise_bandwidth_hz: float = 40e9

    def __post_init__(self):
        object.__setattr__(self, "gain_db", require_range("gain_db", self.gain_db, -20.0, 60.0))
        object.__setattr__(self, "noise_figure_db", require_range("noise_figure_db", self.noise_figure_db, 0.0, 30.0))
        object.__setattr__(self, "saturated_output_vpp",
                           require_range("saturated_output_vpp", self.saturated_output_vpp, 0.01, 100.0))
        object.__setattr__(self, "noise_bandwidth_hz",
                           require_range("noise_bandwidth_hz", self.noise_bandwidth_hz, 1.0, 1e12))

    @property
    def voltage_gain(self) -> float:
        return 10 ** (self.gain_db / 20)

    def amplify(self, v_in):
        """Noise-free output voltage for input ``v_in`` (V): V_sat tanh(G v_in / V_sat)."""
        v_sat = self.saturated_output_vpp / 2
        return v_sat * np.tanh(self.voltage_gain * np.asarray(v_in) / v_sat)

    def noise_rms_v(self, temperature_k: float) -> float:
        """Output-referred rms noise voltage over the noise bandwidth at ``temperature_k``."""
        f = 10 ** (self.noise_figure_db / 10)
        return float(math.sqrt(f * K_B * temperature_k * self.noise_bandwidth_hz * SYSTEM_OHM) * self.voltage_gain)
