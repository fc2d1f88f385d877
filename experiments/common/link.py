"""The intensity-modulated link of the characterisation bench: laser -> MZM (bias controller) -> fibre ->
switch -> power meter or photodiode + scope. Parameters and set-up shared by the link experiments."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from pydantic import BaseModel, Field

from labctl.errors import ConfigError
from labctl.runner import ExperimentError
from labctl.units import dbm_to_w


class TransmitterParameters(BaseModel):
    """The laser and the modulator's bias controller."""

    laser: str = Field("laser", description="tunable laser instrument")
    laser_channel: int = Field(1, ge=1)
    wavelength_nm: float = Field(1550.0, gt=0)
    laser_power_dbm: float = Field(7.0, description="laser output power")
    bias: str = Field("bias", description="MZM bias controller instrument")
    settle_s: float = Field(0.01, ge=0, description="wait after moving the switch or the bias")


class LinkParameters(TransmitterParameters):
    """The whole link: AWG drive, receiving scope, the switch port that feeds the photodiode, the fibre."""

    awg: str = "awg"
    awg_channel: int = Field(1, ge=1)
    scope: str = "scope"
    scope_channel: int = Field(1, ge=1)
    switch: str | None = "switch"
    switch_port: int = Field(2, ge=1, description="switch output that feeds the photodiode")
    fibre_length_km: float | None = Field(None, ge=0, description="simulated bench only: set the span length")
    fibre: str = Field("edge_fibre", description="simulated fibre item whose length fibre_length_km sets")


def transmitter_on(bench, p: TransmitterParameters, *, switch: str | None = None, route: int | None = None,
                   lock: bool = True) -> tuple[Any, Any]:
    """Laser tuned, powered and on; the optical switch ``switch`` (if any) routed to ``route``; the bias
    locked at quadrature (positive slope; stop any RF drive first, so the lock sees the static transfer);
    then settle. Returns the (laser, bias controller) roles."""
    laser, bias = bench.role(p.laser, p.laser_channel), bench.role(p.bias)
    laser.wavelength = p.wavelength_nm * 1e-9
    laser.power = dbm_to_w(p.laser_power_dbm)
    laser.output_enabled = True
    if switch and route is not None:
        bench.role(switch).route = route
    if lock:
        bias.lock_quadrature(positive=True)
    bench.settle(p.settle_s)
    return laser, bias


@contextmanager
def simulated_fibre_length(bench, fibre: str, length_km: float | None) -> Iterator[None]:
    """Set the length of the simulated fibre ``fibre`` for the duration of the block (restored after).

    ``None`` leaves the bench alone. A length on a real bench raises ExperimentError: software cannot
    change a real fibre. The change goes through :meth:`labctl.bench.Bench.sim_adjust` (validated, logged,
    recorded in the bench snapshot).
    """
    if length_km is None:
        yield
        return
    if getattr(bench, "mode", None) != "sim":
        raise ExperimentError("fibre_length_km can only be set on a simulated bench; on a real bench connect "
                              "the fibre to measure and leave fibre_length_km unset")
    components = bench.config.components
    if components.get(fibre, {}).get("type") != "fibre":
        fibres = sorted(name for name, spec in components.items() if spec.get("type") == "fibre")
        raise ExperimentError(f"the simulated bench has no fibre {fibre!r}; fibres: {', '.join(fibres) or '(none)'}")
    try:
        before = bench.sim_adjust(fibre, length_km=float(length_km))
    except ConfigError as exc:
        raise ExperimentError(f"fibre_length_km={length_km:g}: {exc}") from None
    try:
        yield
    finally:
        bench.sim_adjust(fibre, **before)
