"""Electrical (wall-plug) draw of simulated bench equipment, from its state and the physics.

Each simulated instrument reports ``electrical_power_w()``, what it draws from the mains now; the
``World`` integrates those draws over its simulated clock. The models here are the physics of each
kind of load, so a draw follows the state that causes it (a laser's optical output, a heater's
V^2/R) instead of being asserted. Datasheet figures (idle chassis power, efficiencies) are
parameters of the instruments that use them, each cited where it is defined.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


class DrawError(ValueError):
    """A power draw that cannot be physical (NaN, infinite or negative) or a model parameter out of range."""


def checked_w(name: str, value: float) -> float:
    """``value`` as a finite, non-negative power in W; a ``DrawError`` naming ``name`` otherwise.

    A NaN or negative draw is a model bug or a bad parameter, never a zero."""
    number = float(value)
    if not math.isfinite(number) or number < 0.0:
        raise DrawError(f"{name}: electrical draw {number!r} W is not a finite, non-negative power")
    return number


def _efficiency(name: str, value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise DrawError(f"{name}={value!r} must be an efficiency in (0, 1]")
    return value


def laser_draw_w(optical_w: float, wall_plug_efficiency: float, tec_w: float) -> float:
    """Draw of one lit laser: optical output / wall-plug efficiency, plus its TEC.

    The diode turns ``wall_plug_efficiency`` of its electrical input into light; the TEC that holds
    its temperature (and so its wavelength) draws ``tec_w`` whenever the laser is on."""
    _efficiency("wall_plug_efficiency", wall_plug_efficiency)
    return checked_w("laser optical output", optical_w) / wall_plug_efficiency + checked_w("tec_w", tec_w)


def dc_supply_draw_w(delivered_w: Iterable[float], efficiency: float) -> float:
    """Input power a DC supply takes to deliver ``delivered_w`` (V*I of each output) at ``efficiency``."""
    _efficiency("supply efficiency", efficiency)
    return sum(checked_w("DC output V*I", p) for p in delivered_w) / efficiency


def resistive_heater_w(volts: np.ndarray | float, ohms: np.ndarray | float) -> float:
    """Joule power V^2/R dissipated by heaters at ``volts`` across ``ohms`` (an open load, R = inf, draws 0)."""
    v = np.asarray(volts, dtype=float)
    r = np.asarray(ohms, dtype=float)
    if np.any(r <= 0) or np.any(np.isnan(r)) or np.any(np.isnan(v)):
        raise DrawError("heater resistances must be positive and volts numbers")
    with np.errstate(divide="ignore"):
        power = np.where(np.isinf(r), 0.0, v * v / np.where(np.isinf(r), 1.0, r))
    return checked_w("heater V^2/R", float(np.sum(power)))


def linear_driver_draw_w(volts: np.ndarray | float, ohms: np.ndarray | float, rail_v: float) -> float:
    """Rail power of linear (DAC + buffer) outputs driving resistive loads: rail volts x load current.

    A linear output stage passes the load's current V/R from its supply rail; the rail-minus-output
    drop is dissipated in the buffer, so the draw is ``rail_v * V / R`` per output, not V^2/R."""
    v = np.asarray(volts, dtype=float)
    r = np.asarray(ohms, dtype=float)
    if rail_v <= 0 or np.any(v > rail_v + 1e-12):
        raise DrawError(f"the driver rail {rail_v!r} V must be positive and above every output volt")
    if np.any(r <= 0) or np.any(np.isnan(r)) or np.any(np.isnan(v)):
        raise DrawError("load resistances must be positive and volts numbers")
    with np.errstate(divide="ignore"):
        current = np.where(np.isinf(r), 0.0, np.abs(v) / np.where(np.isinf(r), 1.0, r))
    return checked_w("linear driver rail power", rail_v * float(np.sum(current)))


def overlap_s(start_s: float, end_s: float, span: tuple[float, float]) -> float:
    """Length of the part of [start_s, end_s] inside ``span`` (0 if disjoint)."""
    return max(0.0, min(end_s, span[1]) - max(start_s, span[0]))


def edfa_pump_draw_w(output_w: float, input_w: float, power_conversion_efficiency: float,
                     pump_wall_plug_efficiency: float, tec_w: float) -> float:
    """Draw of an EDFA's pump: the power the amplifier adds to the light (output - input, signal and
    ASE) came from the pump at ``power_conversion_efficiency`` (at most the quantum limit
    lambda_pump / lambda_signal, ~0.63 for 980 nm -> 1550 nm), and the pump diode turns
    ``pump_wall_plug_efficiency`` of its electrical input into pump light; plus the pump's TEC."""
    _efficiency("power_conversion_efficiency", power_conversion_efficiency)
    added = checked_w("EDFA output", output_w) - checked_w("EDFA input", input_w)
    if added < 0.0:
        raise DrawError(f"an EDFA's output ({output_w!r} W) below its input ({input_w!r} W) is a loss, not gain")
    pump_w = added / power_conversion_efficiency
    return laser_draw_w(pump_w, pump_wall_plug_efficiency, tec_w)
