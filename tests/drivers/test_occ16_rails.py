"""The OCC-16 driver's power-monitor readings (docs/occ_protocol.md "Power monitors").

Exact SCPI with pymeasure's ``expected_protocol``, malformed replies refused with typed errors, then the
unchanged driver against the simulated controller of ring_core.yaml's core 1, whose rails are computed
from the draw parameters set here.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.errors import DriverError, MalformedReply
from drivers.labctl_fw.occ import OCC16, InvalidPowerReading
from labctl.instruments import OpticalCoreController
from labctl.safety import Guarded, UnguardedMemberError, checks_for
from sim_backends.bench import load_bench_file
from sim_backends.highlevel import LabSimVisaLibrary
from tests.sim.test_labctl_occ import BENCH, core_config

CATALOG = (":MEAS:RAIL:CAT?", '"SYSTEM","DAC","ADC","TIA","HEATER"')


def test_rail_names_are_read_once_and_cached():
    with expected_protocol(OCC16, [CATALOG]) as inst:
        assert inst.rail_names == ("SYSTEM", "DAC", "ADC", "TIA", "HEATER")
        assert inst.rail_names == ("SYSTEM", "DAC", "ADC", "TIA", "HEATER")


def test_rail_powers_map_each_name_to_its_watts():
    with expected_protocol(OCC16, [
        CATALOG,
        (":MEAS:RAIL:POW?", "2.500000E+01,8.000000E+00,9.600000E+00,1.600000E+00,3.125000E-01"),
        (":MEAS:RAIL:POW?", "+2.5E+01,0,0,0,0"),
    ]) as inst:
        assert inst.rail_powers() == {"SYSTEM": 25.0, "DAC": 8.0, "ADC": 9.6, "TIA": 1.6, "HEATER": 0.3125}
        assert inst.rail_powers() == {"SYSTEM": 25.0, "DAC": 0.0, "ADC": 0.0, "TIA": 0.0, "HEATER": 0.0}


def test_board_power():
    with expected_protocol(OCC16, [(":MEAS:POW?", "+4.4512500E+01")]) as inst:
        assert inst.board_power() == 44.5125


@pytest.mark.parametrize("reply", [
    "2.5E+01,0,0,0",  # one value short
    "2.5E+01,0,0,0,0,0",  # one too many
    "2.5E+01,0,zero,0,0",  # not a number
    "",
])
def test_rail_powers_refuse_a_reply_of_the_wrong_form(reply):
    with expected_protocol(OCC16, [CATALOG, (":MEAS:RAIL:POW?", reply)]) as inst:
        with pytest.raises(MalformedReply, match="MEAS:RAIL:POW"):
            inst.rail_powers()


@pytest.mark.parametrize("reply, named", [
    ("2.5E+01,9.91E+37,0,0,0", "rail DAC 9.91E+37 W"),  # SCPI-99 NaN
    ("2.5E+01,0,NAN,0,0", "rail ADC NAN W"),
    ("2.5E+01,0,0,9.9E+37,0", "rail TIA 9.9E+37 W"),  # overrange
    ("2.5E+01,0,0,0,-1.5E-02", "rail HEATER -1.5E-02 W"),
    ("inf,0,0,0,0", "rail SYSTEM inf W"),
])
def test_rail_powers_refuse_a_reading_that_is_not_a_draw(reply, named):
    with expected_protocol(OCC16, [CATALOG, (":MEAS:RAIL:POW?", reply)]) as inst:
        with pytest.raises(InvalidPowerReading, match=re.escape(named)):
            inst.rail_powers()


@pytest.mark.parametrize("reply, error", [
    ("-3.0E+00", InvalidPowerReading), ("9.91E+37", InvalidPowerReading), ("nan", InvalidPowerReading),
    ("3 W", MalformedReply),
])
def test_board_power_refuses_a_reading_that_is_not_a_draw(reply, error):
    with expected_protocol(OCC16, [(":MEAS:POW?", reply)]) as inst:
        with pytest.raises(error):
            inst.board_power()


@pytest.mark.parametrize("reply", ['SYSTEM,DAC', '"SYSTEM",DAC', '"SYSTEM",""', '"A","A"', '"A"B"', ""])
def test_rail_names_refuse_a_catalog_that_is_not_distinct_quoted_names(reply):
    with expected_protocol(OCC16, [(":MEAS:RAIL:CAT?", reply)]) as inst:
        with pytest.raises(MalformedReply, match="MEAS:RAIL:CAT"):
            _ = inst.rail_names


def test_the_errors_are_driver_errors():
    assert issubclass(InvalidPowerReading, DriverError) and issubclass(InvalidPowerReading, ValueError)


def test_the_guarded_role_passes_the_readings_and_refuses_replacing_them():
    with expected_protocol(OCC16, [CATALOG, (":MEAS:RAIL:POW?", "2.5E+01,0,0,0,1.0E+00"),
                                   (":MEAS:POW?", "2.6E+01")]) as inst:
        occ = Guarded(inst, checks_for("optical_core", None), "occ")
        assert occ.rail_powers() == {"SYSTEM": 25.0, "DAC": 0.0, "ADC": 0.0, "TIA": 0.0, "HEATER": 1.0}
        assert occ.board_power() == 26.0
        with pytest.raises(UnguardedMemberError, match="read-only"):
            occ.rail_names = ("A",)


# -- the unchanged driver against the simulated controller ----------------------------------------------------


IDLE_W, DAC_W, ADC_W, TIA_W, HEATER_RAIL_V = 20.0, 0.5, 0.75, 0.25, 12.0


@pytest.fixture
def simulated(open_sim):
    config = core_config(load_bench_file(BENCH))
    name = config["opu"]["cores"][0]["controller"]
    config["instruments"][name]["sim"]["params"].update(
        idle_power_w=IDLE_W, dac_channel_power_w=DAC_W, adc_channel_power_w=ADC_W, tia_channel_power_w=TIA_W,
        heater_rail_v=HEATER_RAIL_V)
    lib = LabSimVisaLibrary.from_config(config, seed=1)
    occ = open_sim(OCC16, lib, config["instruments"][name]["resource"])
    return occ, lib.bench.by_name[name], lib.bench.world


def test_rails_read_through_the_driver_are_the_simulated_boards(simulated):
    occ, sim, world = simulated
    assert isinstance(occ, OpticalCoreController)
    assert occ.rail_names == ("SYSTEM", "DAC", "ADC", "TIA", "HEATER")
    assert occ.rail_powers() == {"SYSTEM": IDLE_W, "DAC": 0.0, "ADC": 0.0, "TIA": 0.0, "HEATER": 0.0}
    occ.output_enabled = True
    volts = np.full((1, occ.n_outputs, occ.n_inputs), 1.5)
    occ.execute(volts, np.zeros((1, 32, occ.n_inputs), dtype=np.int16))
    ohms = np.array([[world.load_on(sim.name, f"heater{q}_{k}") for k in range(1, occ.n_inputs + 1)]
                     for q in range(1, occ.n_outputs + 1)])
    lsb = sim.heater_range_v / 2**sim.heater_dac_bits
    held_w = HEATER_RAIL_V * float(np.sum(np.round(volts[0] / lsb) * lsb / ohms))
    rails = occ.rail_powers()
    assert rails == sim.rail_powers_w()
    assert rails["HEATER"] == pytest.approx(held_w, rel=1e-12)
    assert (rails["SYSTEM"], rails["DAC"], rails["ADC"], rails["TIA"]) == (IDLE_W, 0.0, 0.0, 0.0)
    assert occ.board_power() == math.fsum(rails.values()) == world.draws_w()[sim.name]
