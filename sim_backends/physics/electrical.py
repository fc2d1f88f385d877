"""Electrical bench parts: the graph node of the RF driver amplifier between an AWG and a modulator
(its physics: :mod:`sim_backends.physics.amplifier`).
"""

from __future__ import annotations

import numpy as np

from sim_backends.physics.amplifier import RFAmplifierModel
from sim_backends.physics.validation import require_range
from sim_backends.world import ELECTRICAL_IN, ELECTRICAL_OUT, Component, model_parameter


class RFAmplifier(Component):
    """Broadband linear driver amplifier with noise and output saturation: the graph node of
    :class:`~sim_backends.physics.amplifier.RFAmplifierModel` (defaults and equations there).

    Noise is drawn per sample on a record (two or more instants), at the bench temperature. Bandwidth
    filtering of the drive is done by the modulator's electro-optic response.
    """

    PORTS = {"in": ELECTRICAL_IN, "out": ELECTRICAL_OUT}

    gain_db = model_parameter("gain_db")
    noise_figure_db = model_parameter("noise_figure_db")
    saturated_output_vpp = model_parameter("saturated_output_vpp")
    noise_bandwidth_hz = model_parameter("noise_bandwidth_hz")

    def __init__(self, name: str, gain_db: float = 20.0, noise_figure_db: float = 5.0,
                 saturated_output_vpp: float = 8.0, noise_bandwidth_hz: float = 40e9, input_ohm: float = 50.0):
        self.name = name
        self.model = RFAmplifierModel(gain_db, noise_figure_db, saturated_output_vpp, noise_bandwidth_hz)
        self.input_ohm = require_range("input_ohm", input_ohm, 1.0, 1e9)

    @property
    def voltage_gain(self) -> float:
        return self.model.voltage_gain

    @property
    def noise_rms_v(self) -> float:
        """Output-referred rms noise voltage over the noise bandwidth, at the bench temperature."""
        return self.model.noise_rms_v(self.world.temperature_k)

    def electrical_output(self, port, t):
        out = self.model.amplify(self.world.voltage_into(self.name, "in", t))
        if np.ndim(t) and np.size(t) > 1:
            out = out + self.world.rng.standard_normal(np.shape(t), dtype=np.float32) * self.noise_rms_v
        return out

    def input_resistance(self, port):
        return self.input_ohm

    def state(self):
        return {"gain_db": self.gain_db, "noise_figure_db": self.noise_figure_db,
                "saturated_output_vpp": self.saturated_output_vpp}


ELECTRICAL_COMPONENTS = {"rf_amplifier": RFAmplifier}
