"""The streaming OPU's configuration: the bench file's ``opu:`` section and the modulators it wires.

A **lane** is one photodetector and the K wavelength channels reaching it. Channel k of a lane has an
input modulator MZM_xk at the edge (RF from an edge-AWG channel, DC bias from a DC-source channel) and a
weight modulator MZM_wk at the center (same, on the center AWG / DC source). The section describes that
wiring (see sim_backends/benches/opu_core.yaml), so a real bench describes its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from labctl.config import opu_section
from labctl.errors import LabctlError
from labctl.strict import StrictModel

__all__ = [
    "CALIBRATION_KIND",
    "ChannelWiring",
    "LaneWiring",
    "Modulator",
    "NominalValues",
    "OPUConfig",
    "OPUError",
    "StreamingConfig",
    "TriggerWiring",
    "modulators_of",
]

#: Value of the calibration file's ``opu.kind`` entry (the sections this engine reads).
CALIBRATION_KIND = "labctl-opu-calibration/1"


class OPUError(LabctlError, RuntimeError):
    """The OPU cannot run on this bench as configured (the message says what to do)."""


class ChannelWiring(StrictModel):
    """One wavelength channel of a lane: its laser port, its two AWG channels, its two bias outputs.

    Instrument names default to the OPU-wide ones (``laser``, ``edge_awg``, ...); set them per channel
    when a lane spans several instruments.
    """

    laser_port: int = Field(ge=1)
    wavelength_m: float = Field(gt=1.0e-7, lt=3.0e-6)
    edge_awg_channel: int = Field(ge=1)
    center_awg_channel: int = Field(ge=1)
    edge_bias_channel: int = Field(ge=1)
    center_bias_channel: int = Field(ge=1)
    laser: str | None = None
    edge_awg: str | None = None
    center_awg: str | None = None
    edge_bias: str | None = None
    center_bias: str | None = None


class LaneWiring(StrictModel):
    """One lane: the detector's scope channel and the K channels that reach it.

    ``detector_responsivity_a_per_w`` and ``detector_gain_ohm`` (the photodiode's datasheet values, load or
    transimpedance) only serve to report received optical power; they do not enter any computation.
    """

    scope_channel: int = Field(ge=1)
    channels: list[ChannelWiring] = Field(min_length=1)
    detector_responsivity_a_per_w: float | None = Field(None, gt=0)
    detector_gain_ohm: float = Field(50.0, gt=0)


class TriggerWiring(StrictModel):
    """The scope trigger: an AWG whose channel-1 repetitions are marked on ``source`` of the scope."""

    awg: str | None = None
    source: int | Literal["AUX"] = "AUX"
    level_v: float = 0.5


class NominalValues(StrictModel):
    """Datasheet values used without calibration (bias at nominal quadrature, linear drive)."""

    v_pi: float = Field(5.0, gt=0)
    v_pi_rf: float = Field(5.5, gt=0)
    phase_offset_v: float = 0.0
    driver_gain_db: float = Field(20.0, ge=-20, le=60)


class StreamingConfig(StrictModel):
    """The bench file's ``opu:`` section (see sim_backends/benches/opu_core.yaml)."""

    architecture: Literal["streaming"] = "streaming"
    symbol_rate_hz: float = Field(gt=0)
    awg_sample_rate_hz: float = Field(gt=0)
    samples_per_symbol_capture: int = Field(2, ge=1, le=64)
    capture_window: float = Field(0.5, ge=0, le=1)
    max_delay_s: float = Field(20e-6, gt=0, le=1e-2)
    max_slots_per_pass: int = Field(1 << 16, ge=256)
    laser: str
    laser_power_dbm: float
    edge_awg: str
    center_awg: str
    edge_bias: str
    center_bias: str
    bias_current_limit_a: float = Field(0.01, gt=0)
    scope: str
    trigger: TriggerWiring = Field(default_factory=TriggerWiring)
    nominal: NominalValues = Field(default_factory=NominalValues)
    lanes: list[LaneWiring] = Field(min_length=1)

    @field_validator("awg_sample_rate_hz")
    @classmethod
    def _integer_oversampling(cls, value, info):
        rate = info.data.get("symbol_rate_hz")
        if rate:
            sps = value / rate
            if abs(sps - round(sps)) > 1e-9 * sps or round(sps) < 1:
                raise ValueError(f"awg_sample_rate_hz / symbol_rate_hz = {sps:g} must be a whole number of "
                                 "AWG samples per symbol")
        return value

    @model_validator(mode="after")
    def _lanes_consistent(self):
        k = {len(lane.channels) for lane in self.lanes}
        if len(k) != 1:
            raise ValueError(f"every lane needs the same number of channels, got {sorted(k)}")
        return self

    @property
    def awg_samples_per_symbol(self) -> int:
        return int(round(self.awg_sample_rate_hz / self.symbol_rate_hz))

    @property
    def channels_per_lane(self) -> int:
        return len(self.lanes[0].channels)

    @classmethod
    def from_bench(cls, bench) -> "StreamingConfig":
        return opu_section(bench, cls, "see sim_backends/benches/opu_core.yaml")


@dataclass(frozen=True)
class Modulator:
    """One modulator of the OPU and what drives it. ``key`` is e.g. ``"L1.x2"`` (lane 1, input, channel 2)."""

    key: str
    side: str          # "x" (edge input) or "w" (center weight)
    lane: int          # 0-based
    index: int         # 0-based channel within the lane
    awg: str
    awg_channel: int
    bias: str
    bias_channel: int
    laser: str
    laser_port: int
    wavelength_m: float


def modulators_of(config: StreamingConfig) -> list[Modulator]:
    """Every modulator, lane by lane: x1..xK then w1..wK."""
    out = []
    for li, lane in enumerate(config.lanes):
        for side in ("x", "w"):
            for k, ch in enumerate(lane.channels):
                if side == "x":
                    awg, awg_ch = ch.edge_awg or config.edge_awg, ch.edge_awg_channel
                    bias, bias_ch = ch.edge_bias or config.edge_bias, ch.edge_bias_channel
                else:
                    awg, awg_ch = ch.center_awg or config.center_awg, ch.center_awg_channel
                    bias, bias_ch = ch.center_bias or config.center_bias, ch.center_bias_channel
                out.append(Modulator(key=f"L{li + 1}.{side}{k + 1}", side=side, lane=li, index=k, awg=awg,
                                     awg_channel=awg_ch, bias=bias, bias_channel=bias_ch,
                                     laser=ch.laser or config.laser, laser_port=ch.laser_port,
                                     wavelength_m=ch.wavelength_m))
    return out


#: The name the streaming config had when it was the only OPU config.
OPUConfig = StreamingConfig
