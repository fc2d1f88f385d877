"""Safety limits enforced in front of the drivers: a refused setting never reaches an instrument.

The bench hands experiments *guarded* role objects. A guard checks each setting named in the role's
rule table against the bench file's limits and raises :class:`SafetyLimitError` before delegating to
the driver. A rule keyed ``"name()"`` guards the method ``name``: it is called with the method's own
arguments before the method runs. Reads and every other attribute pass straight through.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

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


def _each_at_most(what: str, limit: float, unit: str) -> Check:
    """A check of every number in an array-like (the largest magnitude decides)."""
    single = _at_most(what, limit, unit)

    def check(values):
        try:
            magnitudes = np.abs(np.asarray(values, dtype=float))
        except (TypeError, ValueError):
            return  # not numbers: the driver refuses them before sending anything
        magnitudes = magnitudes[~np.isnan(magnitudes)]  # NaN: the driver refuses it (inf is checked here)
        if magnitudes.size:
            single(float(magnitudes.max()))
    return check


def _optical_core_checks(limits: SafetyLimits) -> dict[str, Callable[..., None]]:
    checks: dict[str, Callable[..., None]] = {}
    if limits.max_heater_voltage_v is not None:
        heater = _at_most("OCC heater voltage", limits.max_heater_voltage_v, "V")
        table = _each_at_most("OCC heater voltage", limits.max_heater_voltage_v, "V")

        def program(heater_volts, *args, **kwargs):
            table(heater_volts)

        checks["heater_limit"] = heater
        checks["load_program()"] = program
        checks["execute()"] = program  # execute() loads through the unguarded driver
    if limits.max_bias_voltage_v is not None:
        biases = _each_at_most("OCC bias voltage", limits.max_bias_voltage_v, "V")

        def set_bias(channel, volts, *args, **kwargs):
            biases(volts)

        def set_biases(volts, *args, **kwargs):
            biases(volts)

        checks["set_bias()"] = set_bias
        checks["set_biases()"] = set_biases
    if limits.max_dac_amplitude_vpp is not None:
        checks["dac_amplitude"] = _at_most("OCC DAC amplitude", limits.max_dac_amplitude_vpp, "Vpp")
    return checks


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
            voltage = checks["voltage"] = _at_most("DC source voltage", limits.max_voltage_v, "V")

            def set_voltages(voltages, *args, **kwargs):
                for value in voltages.values():
                    voltage(value)

            checks["set_voltages()"] = set_voltages
        if limits.max_current_a is not None:
            checks["current_limit"] = _at_most("DC source current limit", limits.max_current_a, "A")
    if role == "optical_core":
        checks.update(_optical_core_checks(limits))
    return checks


class Guarded:
    """A role object whose settings are checked against safety limits before reaching the driver."""

    __slots__ = ("_target", "_checks", "_label")

    def __init__(self, target: Any, checks: dict[str, Check], label: str):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_checks", checks)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str) -> Any:
        check = self._checks.get(name + "()")
        if check is None:
            return getattr(self._target, name)
        method = getattr(self._target, name)

        def guarded(*args, **kwargs):
            check(*args, **kwargs)
            return method(*args, **kwargs)

        guarded.__name__ = name
        guarded.__doc__ = method.__doc__
        return guarded

    def __setattr__(self, name: str, value: Any) -> None:
        check = self._checks.get(name)
        if check is not None:
            check(value)
        setattr(self._target, name, value)

    @property
    def unguarded(self) -> Any:
        """The driver object itself (no safety checks): for expert use only."""
        return self._target

    def __repr__(self) -> str:
        return f"<guarded {self._label}: {self._target!r}>"
