"""Real instrument drivers, one module per model, built on pymeasure.

Vendor packages (``keysight``, ``santec``, ...) never import each other; what they share is here:
:mod:`drivers.base` (locking, raising error checks, typed validators), :mod:`drivers.errors` (the
project's root error), :mod:`drivers.units` (unit conversions, also labctl's), :mod:`drivers.scpi`
(number and channel-list formats), :mod:`drivers.laser` (the tunable-laser role in SI) and
:mod:`drivers.limits` (what each member does to a source, for labctl's safety layer).

`DRIVERS` maps the driver names used in bench files to ``module:Class`` so a bench file can name a
driver without importing every vendor module up front.
"""

from importlib import import_module

DRIVERS: dict[str, str] = {
    "keysight.N7714A": "drivers.keysight.n7714a:KeysightN7714A",
    "santec.TSL570": "drivers.santec.tsl570:SantecTSL570",
    "keysight.N7744A": "drivers.keysight.n7744a:KeysightN7744A",
    "keysight.N7745A": "drivers.keysight.n7744a:KeysightN7745A",
    "thorlabs.PM100": "drivers.thorlabs.pm100:ThorlabsPM100",
    "keysight.M8195A": "drivers.keysight.m8195a:KeysightM8195A",
    "keysight.Infiniium": "drivers.keysight.infiniium:KeysightInfiniium",
    "thorlabs.MBX": "drivers.thorlabs.mbx:ThorlabsMBX",
    "keysight.N6700": "drivers.keysight.n6700:KeysightN6700",
    "dicon.MXS9100": "drivers.dicon.mxs9100:DiConMXS9100",
    "labctl.OCC16": "drivers.labctl_fw.occ:OCC16",
    "yokogawa.WT310E": "drivers.yokogawa.wt310e:YokogawaWT310E",
}


def load_driver(name: str) -> type:
    """Return the driver class registered under ``name`` (e.g. ``"keysight.N7714A"``)."""
    try:
        target = DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise KeyError(f"unknown driver {name!r}; known drivers: {known}") from None
    module, cls = target.split(":")
    return getattr(import_module(module), cls)
