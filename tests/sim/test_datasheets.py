"""The idle-draw table: one entry (or a stated reason for none) per driver, the simulated instruments'
defaults taken from it, and entries that cannot pass an estimate off as a citation."""

from __future__ import annotations

import math

import pytest

import sim_backends
from drivers import DRIVERS
from sim_backends.bench import SIM_MODELS, BenchFileError, build_bench, sim_model
from sim_backends.datasheets import (IDLE_POWER, KINDS, NO_DATASHEET, USB2_BUS_POWER_W, DatasheetError,
                                     DatasheetPower, datasheet_idle_w, idle_power_datasheet)
from sim_backends.physics.power import DrawError

NOTE = "a model, its state and why"


def one_instrument(driver: str, params: dict | None = None):
    config = {"instruments": {"x": {"driver": driver, "resource": "TCPIP0::x.labsim::inst0::INSTR",
                                    "sim": {"params": params or {}}}},
              "components": {}, "connections": []}
    return build_bench(config, seed=2).by_name["x"]


def test_every_driver_has_an_entry_or_a_stated_reason_for_none():
    assert set(IDLE_POWER).isdisjoint(NO_DATASHEET)
    assert set(IDLE_POWER) | set(NO_DATASHEET) == set(DRIVERS)
    for driver in DRIVERS:
        entry = idle_power_datasheet(driver)
        if entry is None:
            assert NO_DATASHEET[driver].strip(), driver
        else:
            assert isinstance(entry, DatasheetPower) and entry.watts == datasheet_idle_w(driver)


def test_entries_are_of_an_allowed_kind_and_only_published_ones_cite_a_document():
    for driver, entry in IDLE_POWER.items():
        assert entry.kind in KINDS, driver
        assert math.isfinite(entry.watts) and entry.watts >= 0.0, driver
        assert entry.note.strip(), driver
        if entry.kind == "assumed":
            assert entry.document is None and entry.page is None, driver
        else:
            assert entry.document and entry.page, driver


def test_each_simulated_instrument_defaults_to_its_table_entry():
    for driver in SIM_MODELS:
        entry = idle_power_datasheet(driver)
        if entry is None:
            continue
        default, low, high = sim_model(driver).POWER["idle_power_w"]
        assert default == entry.watts and low <= entry.watts <= high, driver
        assert one_instrument(driver).power_params["idle_power_w"] == entry.watts, driver


def test_the_usb_powered_meter_is_bounded_by_the_usb_2_bus_budget():
    assert sim_model("thorlabs.PM100").POWER["idle_power_w"][2] == USB2_BUS_POWER_W
    assert idle_power_datasheet("thorlabs.PM100").watts <= USB2_BUS_POWER_W
    with pytest.raises(BenchFileError, match="idle_power_w"):
        one_instrument("thorlabs.PM100", {"idle_power_w": 2 * USB2_BUS_POWER_W})


def test_an_unknown_driver_or_one_without_a_figure_is_a_typed_error():
    with pytest.raises(DatasheetError, match="keysight.NOPE"):
        idle_power_datasheet("keysight.NOPE")
    no_figure = next(iter(NO_DATASHEET))
    assert idle_power_datasheet(no_figure) is None
    with pytest.raises(DatasheetError, match=no_figure):
        datasheet_idle_w(no_figure)
    assert issubclass(DatasheetError, DrawError) and issubclass(DatasheetError, ValueError)


@pytest.mark.parametrize("args, message", [
    ((-1.0, None, None, "assumed", NOTE), "non-negative"),
    ((float("nan"), None, None, "assumed", NOTE), "finite"),
    ((True, None, None, "assumed", NOTE), "finite"),
    ((10.0, None, None, "measured", NOTE), "kind"),
    ((10.0, None, None, "assumed", " "), "note"),
    ((10.0, "Some data sheet", "p. 3", "assumed", NOTE), "cites no document"),
    ((10.0, "Some data sheet", None, "typical", NOTE), "document and page"),
    ((10.0, "", "p. 3", "rated maximum", NOTE), "document and page"),
])
def test_an_entry_that_cannot_stand_is_refused(args, message):
    with pytest.raises(DatasheetError, match=message):
        DatasheetPower(*args)


def test_a_published_figure_names_its_document_and_page():
    entry = DatasheetPower(12.5, "Some User's Guide", "p. 40, General specifications", "rated maximum", NOTE)
    assert (entry.watts, entry.kind, entry.page) == (12.5, "rated maximum", "p. 40, General specifications")


def test_the_lookup_is_exported_for_labctl():
    assert sim_backends.idle_power_datasheet is idle_power_datasheet
    assert sim_backends.DatasheetPower is DatasheetPower
