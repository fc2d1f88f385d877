"""Idle electrical draw of each catalogue instrument, with where the figure comes from.

One table serves both benches: the simulated instruments take their ``idle_power_w`` default from it
(so the number is written once), and labctl reads it for a real instrument that no power analyzer
measures. Each entry says which kind of figure it is:

* ``typical``: a typical consumption printed in the vendor's datasheet or user's guide;
* ``rated maximum``: the mains rating (maximum power consumption, or rated VA read as W at a power
  factor ~1, which holds for a power-factor-corrected supply), used for lack of a typical figure;
* ``assumed``: no published figure was found; the note gives the reasoning behind the estimate.

A ``typical`` or ``rated maximum`` entry names its document and page; an ``assumed`` one names
neither, so an estimate can never pass for a citation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim_backends.physics.power import DrawError

KINDS = ("typical", "rated maximum", "assumed")


class DatasheetError(DrawError):
    """A datasheet entry that cannot stand (bad figure, kind or source) or a driver the table does not know."""


@dataclass(frozen=True)
class DatasheetPower:
    """One instrument's idle draw: ``watts`` (active power), the ``document`` and ``page`` it is taken
    from (``None`` for an assumed figure), its ``kind`` (one of ``KINDS``) and a ``note`` saying which
    model and state the figure is for and, for an assumed one, why that value."""

    watts: float
    document: str | None
    page: str | None
    kind: str
    note: str

    def __post_init__(self) -> None:
        if isinstance(self.watts, bool) or not isinstance(self.watts, (int, float)) \
                or not math.isfinite(self.watts) or self.watts < 0:
            raise DatasheetError(f"watts={self.watts!r} is not a finite, non-negative power")
        if self.kind not in KINDS:
            raise DatasheetError(f"kind={self.kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(self.note, str) or not self.note.strip():
            raise DatasheetError("every entry needs a note (the model and state it is for, and the reasoning "
                                 "behind an assumed figure)")
        cited = [bool(isinstance(s, str) and s.strip()) for s in (self.document, self.page)]
        if self.kind == "assumed" and (self.document is not None or self.page is not None):
            raise DatasheetError("an assumed figure cites no document or page; use kind 'typical' or "
                                 "'rated maximum' for a published one")
        if self.kind != "assumed" and not all(cited):
            raise DatasheetError(f"a {self.kind!r} figure needs the document and page it is printed on")


#: Most a USB 2.0 port supplies a bus-powered device: 5 V x 500 mA (USB 2.0 specification, 7.2.1).
USB2_BUS_POWER_W = 5.0 * 0.5

#: Idle draw by driver name (the names of ``drivers.DRIVERS`` and the bench files). No power-consumption
#: figure for these models is cited here, so every entry is assumed; replace one with its published
#: figure (and kind) when the document is at hand.
IDLE_POWER: dict[str, DatasheetPower] = {
    "keysight.N7714A": DatasheetPower(
        30.0, None, None, "assumed",
        "N7714A four-port tunable laser, every laser off: the 1U frame's controller, supplies and fans, "
        "taken of the order of a 1U instrument's mains draw. A lit port adds its laser diode over its "
        "wall-plug efficiency and its TEC (the simulation's own terms)."),
    "keysight.N7744A": DatasheetPower(
        30.0, None, None, "assumed",
        "N7744A four-port power meter: a 1U frame with no source inside, so a roughly constant draw of "
        "the order of a 1U instrument's controller, supplies and fans."),
    "santec.TSL570": DatasheetPower(
        40.0, None, None, "assumed",
        "TSL-570 tunable laser, output off: benchtop controller, display, fans and the cavity motor at "
        "rest, a little above a 1U frame. The lit laser adds its output over its wall-plug efficiency "
        "and its TEC (the simulation's own terms)."),
    "thorlabs.PM100": DatasheetPower(
        1.0, None, None, "assumed",
        f"PM100USB console (the simulated *IDN? model), powered from its USB port: at most the USB 2.0 "
        f"bus budget of {USB2_BUS_POWER_W:g} W, taken as about 1 W in use."),
    "keysight.M8195A": DatasheetPower(
        150.0, None, None, "assumed",
        "M8195A module in its AXIe chassis (the chassis is not simulated apart), stopped with outputs "
        "off: chassis supply, fans and the module's clock. The simulation adds running_power_w while it "
        "generates and output_power_w per output amplifier that is on."),
    "keysight.Infiniium": DatasheetPower(
        700.0, None, None, "assumed",
        "UXR1104A (the simulated *IDN? model; four 110 GHz channels), stopped: a UXR-class chassis draws "
        "of the order of a kilowatt, taken here as its idle share. The simulation adds acquiring_power_w "
        "while acquiring (ADCs and memory clocked)."),
    "thorlabs.MBX": DatasheetPower(
        5.0, None, None, "assumed",
        "MBX bias controller, VOA off: bias DAC, tap photodiode and processor, a few watts from its "
        "adapter. The simulation adds voa_power_w while the VOA is on."),
    "keysight.N6700": DatasheetPower(
        40.0, None, None, "assumed",
        "N6700C mainframe (the simulated *IDN? model) with its outputs off: fans, controller and module "
        "housekeeping. Outputs add the power they deliver over the supply's efficiency (the simulation's "
        "own term)."),
    "dicon.MXS9100": DatasheetPower(
        10.0, None, None, "assumed",
        "DiCon MXS chassis as simulated (*IDN? model MG4), every module parked: controller and supply. "
        "The simulation adds module_hold_power_w per MEMS module held off its park position."),
    "yokogawa.WT310E": DatasheetPower(
        50.0, None, None, "assumed",
        "WT310E power meter: taken at the order of a compact single-phase power meter's mains rating, an "
        "upper estimate (a rating is apparent power; read as W at a power factor ~1). Its rating in the "
        "general specifications of IM WT310E-01EN was not available to check, so none is cited."),
}
IDLE_POWER["keysight.N7745A"] = DatasheetPower(
    IDLE_POWER["keysight.N7744A"].watts, None, None, "assumed",
    "N7745A eight-port power meter: the N7744A's 1U frame with more detector ports and no source "
    "inside, so taken at the N7744A's figure.")

#: Drivers with no catalogue figure, and why.
NO_DATASHEET: dict[str, str] = {
    "labctl.OCC16": "labctl's own optical-core controller board, not a catalogue instrument: its draw is "
                    "modelled from its parts (rails, converters, heater DACs) and is measured or projected, "
                    "never taken from a datasheet.",
}


def idle_power_datasheet(driver: str) -> DatasheetPower | None:
    """The idle-draw entry for ``driver`` (a bench-file driver name), or ``None`` for a driver that has
    no catalogue figure (``NO_DATASHEET`` says why); an unknown name is a ``DatasheetError``."""
    if driver in IDLE_POWER:
        return IDLE_POWER[driver]
    if driver in NO_DATASHEET:
        return None
    known = ", ".join(sorted({*IDLE_POWER, *NO_DATASHEET}))
    raise DatasheetError(f"no idle-power entry for driver {driver!r}; known drivers: {known}")


def datasheet_idle_w(driver: str) -> float:
    """The idle draw in W of ``driver``, for a simulated instrument's ``idle_power_w`` default; a
    ``DatasheetError`` if the table has no figure for it."""
    entry = idle_power_datasheet(driver)
    if entry is None:
        raise DatasheetError(f"{driver}: {NO_DATASHEET[driver]}")
    return float(entry.watts)
