"""Safety limits enforced in front of the drivers: a refused setting never reaches an instrument.

The bench hands experiments *guarded* role objects. A guard checks each setting named in the role's
rule table against the bench file's limits and raises :class:`SafetyLimitError` before delegating to
the driver. Reads and every other attribute pass straight through.
"""

from __future__ import annotations

from typing import Any, Callable

from labctl.config import SafetyLimits
from labctl.errors import SafetyLimitError
from labctl.units import dbm_to_w, w_to_dbm

Check = Callable[[Any], None]


def _at_most(what: str, limit: float, unit: str) -> Check:
    def check(value):
        if abs(float(value)) > limit * (1 + 1e-12):
            raise SafetyLimitError(
                f"{what} {float(value):g} {unit} exceeds the safety limit {limit:g} {unit} of the bench "
                f"file; nothing was sent. Raise the limit in the bench file's 'safety' section only if the "
                f"hardware allows it."
            )
    return check


def _laser_power_check(max_dbm: float) -> Check:
    def check(value):
        if float(value) > dbm_to_w(max_dbm) * (1 + 1e-12):
            raise SafetyLimitError(
                f"laser power {float(value) * 1e3:g} mW ({w_to_dbm(value):.2f} dBm) exceeds the safety limit "
                f"{max_dbm:g} dBm of the bench file; nothing was sent."
            )
    return check


def checks_for(role: str, limits: SafetyLimits | None) -> dict[str, Check]:
    """Setting checks for a role object, from the limits of its instrument."""
    if limits is None:
        return {}
    checks: dict[str, Check] = {}
    if role == "tunable_laser" and limits.max_power_dbm is not None:
        checks["power"] = _laser_power_check(limits.max_power_dbm)
    if role == "awg" and limits.max_amplitude_vpp is not None:
        checks["amplitude"] = _at_most("AWG amplitude", limits.max_amplitude_vpp, "Vpp")
        checks["offset"] = _at_most("AWG offset", limits.max_amplitude_vpp / 2, "V")
    if role == "bias_controller" and limits.max_voltage_v is not None:
        checks["bias_voltage"] = _at_most("bias voltage", limits.max_voltage_v, "V")
    if role == "dc_source":
        if limits.max_voltage_v is not None:
            checks["voltage"] = _at_most("DC source voltage", limits.max_voltage_v, "V")
        if limits.max_current_a is not None:
            checks["current_limit"] = _at_most("DC source current limit", limits.max_current_a, "A")
    return checks


class Guarded:
    """A role object whose settings are checked against safety limits before reaching the driver."""

    __slots__ = ("_target", "_checks", "_label")

    def __init__(self, target: Any, checks: dict[str, Check], label: str):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_checks", checks)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str) -> Any:
        if name == "set_voltages" and "voltage" in self._checks:
            return self._guarded_set_voltages
        return getattr(self._target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        check = self._checks.get(name)
        if check is not None:
            check(value)
        setattr(self._target, name, value)

    def _guarded_set_voltages(self, voltages: dict[int, float], *args, **kwargs):
        for value in voltages.values():
            self._checks["voltage"](value)
        return self._target.set_voltages(voltages, *args, **kwargs)

    @property
    def unguarded(self) -> Any:
        """The driver object itself (no safety checks): for expert use only."""
        return self._target

    def __repr__(self) -> str:
        return f"<guarded {self._label}: {self._target!r}>"
