"""The weight-stationary OPU's configuration: the bench file's ``opu:`` section with
``architecture: weight_stationary`` (see sim_backends/benches/ring_core.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from labctl.config import opu_section
from labctl.errors import LabctlError
from labctl.strict import StrictModel

__all__ = ["CoreConfig", "InputChannel", "Nominal", "StationaryConfig", "StationaryOPUError"]


class StationaryOPUError(LabctlError, RuntimeError):
    """The weight-stationary OPU cannot run (missing calibration, bad wiring, bad operands)."""


class InputChannel(StrictModel):
    """One input of a core: the laser port that lights its modulator and the wavelength it emits."""

    laser: str
    laser_port: int = Field(ge=1)
    wavelength_m: float = Field(gt=1.0e-7, lt=3.0e-6)


class CoreConfig(StrictModel):
    """One core: its controller (role ``optical_core``) and its input channels in DAC order."""

    controller: str
    channels: list[InputChannel] = Field(min_length=1)


class Nominal(StrictModel):
    """Datasheet values used to place the modulator bias before it is measured."""

    v_pi: float = Field(5.0, gt=0)
    v_pi_rf: float = Field(5.5, gt=0)
    driver_gain_db: float = Field(20.0, ge=-20, le=60)
    driver_saturated_vpp: float = Field(8.0, gt=0)


class StationaryConfig(StrictModel):
    """The bench file's ``opu:`` section for ``architecture: weight_stationary``."""

    architecture: Literal["weight_stationary"]
    laser_power_dbm: float
    symbol_rate_hz: float = Field(1e9, gt=0)
    dac_amplitude_vpp: float = Field(0.9, gt=0, le=1.0)
    heater_max_v: float = Field(1.6, gt=0, le=10.0)
    settle_time_s: float = Field(20e-6, ge=1e-6, le=1e-2)
    nominal: Nominal = Field(default_factory=Nominal)
    cores: list[CoreConfig] = Field(min_length=1)

    @classmethod
    def from_bench(cls, bench) -> "StationaryConfig":
        return opu_section(bench, cls, "see sim_backends/benches/ring_core.yaml")
