"""The unchanged Keysight N6700 driver against the simulated N6700C driving heater loads.

Physics checked against closed forms: CV (I = V/R), CC (V = I_lim R), open output (I = 0), output off
(V = I = 0), electrical power V I = V^2 / R, readback noise sigma as configured.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.keysight.n6700 import KeysightN6700
from labctl.instruments import DCSourceChannel
from sim_backends.bench import BenchFileError

RES = "TCPIP0::heaters.labsim::inst0::INSTR"
LOADS = {1: 500.0, 2: 50.0, 3: 2000.0}  # out4 stays open
V_NOISE = 2e-3  # readback noise sigma used by these tests, V
I_NOISE = 1e-4  # A
TOL = 6.0  # tolerance in noise sigmas for a single reading


def _config(params=None, loads=LOADS):
    instruments = {"heaters": {"driver": "keysight.N6700", "resource": RES,
                               "sim": {"params": params if params is not None else
                                       {"voltage_noise_v": V_NOISE, "current_noise_a": I_NOISE}}}}
    components = {f"ring_heater{ch}": {"type": "heater", "resistance_ohm": r} for ch, r in loads.items()}
    connections = [f"heaters.out{ch} -> ring_heater{ch}.in" for ch in loads]
    return instruments, components, connections


@pytest.fixture
def bench(sim_bench, open_sim):
    lib = sim_bench(*_config())
    dc = open_sim(KeysightN6700, lib, RES)
    return lib, dc, lib.instrument(RES)


def _err(dc):
    return dc.ask("SYST:ERR?").strip()


# -- identity and SCPI forms ------------------------------------------------------------------------


def test_identity_channels_and_role(bench):
    lib, dc, sim = bench
    assert dc.id.startswith("Keysight Technologies,N6700C,")
    assert dc.channel_count == 4
    assert dc.ch_2.module_model == "N6733B"
    assert isinstance(dc.ch_1, DCSourceChannel)


def test_reset_values(bench):
    lib, dc, sim = bench
    dc.set_voltages({1: 3.0, 2: 3.0})
    dc.ch_1.ovp_level = 10.0
    dc.set_outputs(True)
    dc.write("*RST")
    for ch in (1, 2, 3, 4):
        c = dc.channels[ch]
        assert c.voltage == 0.0
        assert c.current_limit == 0.0
        assert c.ovp_level == pytest.approx(22.0)  # *RST MAX of an N6733B
        assert c.output_enabled is False


@pytest.mark.parametrize("command", [
    "SOURce:VOLTage:LEVel:IMMediate:AMPLitude 1.5,(@2)",
    "sour:volt:lev 1.5,(@2)",
    ":VOLT 1500MV,(@2)",
    "VOLT 1.5 V, (@2)",
    "volt:ampl 1.5,(@2:2)",
])
def test_voltage_long_short_forms_and_units(bench, command):
    lib, dc, sim = bench
    dc.write(command)
    assert _err(dc) == '0,"No error"'
    assert dc.ch_2.voltage == pytest.approx(1.5)


def test_channel_list_forms(bench):
    lib, dc, sim = bench
    dc.write("VOLT 2.5,(@1:3)")
    assert [float(v) for v in dc.ask("VOLT? (@1,2,3,4)").split(",")] == [2.5, 2.5, 2.5, 0.0]
    dc.write("VOLT 1.25,(@1,4)")
    assert [float(v) for v in dc.ask("VOLT? (@1:4)").split(",")] == [1.25, 2.5, 2.5, 1.25]
    dc.write("CURR 0.1,(@1:2,4)")
    assert [float(v) for v in dc.ask("CURR? (@4:1)").split(",")] == [0.1, 0.0, 0.1, 0.1]
    assert _err(dc) == '0,"No error"'


def test_min_max_forms(bench):
    lib, dc, sim = bench
    dc.write("VOLT MAX,(@1)")
    dc.write("CURR MAX,(@1)")
    assert dc.ch_1.voltage == pytest.approx(20.4)
    assert dc.ch_1.current_limit == pytest.approx(2.55)
    assert [float(v) for v in dc.ask("VOLT? MIN,(@1,2)").split(",")] == [0.0, 0.0]
    assert float(dc.ask("VOLT:PROT? MAX,(@3)")) == pytest.approx(22.0)
    dc.write("VOLT MIN,(@1)")
    assert dc.ch_1.voltage == 0.0


def test_set_voltages_in_one_message_reaches_every_channel(bench):
    lib, dc, sim = bench
    dc.set_voltages({1: 1.0, 2: 2.0, 3: 1.0, 4: 0.5})
    assert dc.measure_voltages() == pytest.approx({1: 0, 2: 0, 3: 0, 4: 0}, abs=TOL * V_NOISE)  # still off
    assert [float(v) for v in dc.ask("VOLT? (@1:4)").split(",")] == [1.0, 2.0, 1.0, 0.5]
    dc.set_current_limits({1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5})
    dc.set_outputs(True)
    volts = dc.measure_voltages()
    for ch, v in {1: 1.0, 2: 2.0, 3: 1.0, 4: 0.5}.items():
        assert volts[ch] == pytest.approx(v, abs=TOL * V_NOISE)


# -- errors --------------------------------------------------------------------------------------------


def test_out_of_range_value_gives_222(bench):
    lib, dc, sim = bench
    dc.write("VOLT 21,(@1)")
    assert _err(dc).startswith("-222,")
    dc.write("CURR 3,(@1:4)")
    assert _err(dc).startswith("-222,")
    dc.write("VOLT:PROT 30,(@2)")
    assert _err(dc).startswith("-222,")
    assert dc.ch_1.voltage == 0.0 and dc.ch_4.current_limit == 0.0  # nothing was applied


def test_out_of_range_is_refused_by_driver_first(bench):
    lib, dc, sim = bench
    with pytest.raises(ValueOutOfRange):
        dc.ch_1.voltage = 21.0
    assert dc.ch_1.voltage == 0.0


def test_out_of_range_typed_error_from_instrument(sim_bench, open_sim):
    """A driver told the slot holds a 35 V module meets the simulated 20 V module's -222."""
    lib = sim_bench(*_config())
    dc = open_sim(KeysightN6700, lib, RES, modules="N6734B")
    with pytest.raises(InstrumentError) as info:
        dc.ch_1.voltage = 30.0
    assert info.value.codes == [-222]
    assert dc.ch_1.voltage == 0.0


def test_bad_channel(sim_bench, open_sim):
    lib = sim_bench(*_config(params={"channels": 2}, loads={1: 500.0}))
    dc = open_sim(KeysightN6700, lib, RES)
    assert dc.channel_count == 2
    dc.write("VOLT 1,(@5)")
    assert _err(dc).startswith("-222,")
    with pytest.raises(InstrumentError) as info:
        dc.ch_3.voltage = 1.0
    assert info.value.codes == [-222]
    with pytest.raises(InstrumentError):
        dc.set_voltages({1: 1.0, 2: 1.0, 3: 1.0})  # (@1:3) names a slot that is empty
    assert dc.ch_1.voltage == 0.0  # the rejected command changed nothing
    with pytest.raises(ValueOutOfRange):
        dc.set_voltages({5: 1.0})  # not a channel of any N6700: refused before sending


@pytest.mark.parametrize("command, code", [
    ("VOLT 1", -109),  # no channel list
    ("VOLT? ", -109),
    ("VOLT 1,(@1", -104),  # unterminated list
    ("VOLT 1,(@a)", -104),
    ("VOLT 1,2,(@1)", -108),
    ("OUTP MAYBE,(@1)", -224),
    ("VOLT:BOGUS 1,(@1)", -113),
    ("VOLT DEF,(@1)", -224),
])
def test_syntax_errors(bench, command, code):
    lib, dc, sim = bench
    dc.write(command)
    assert int(_err(dc).split(",")[0]) == code


# -- physics -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ch", [1, 2, 3])
@pytest.mark.parametrize("volts", [0.5, 1.0, 2.0])
def test_constant_voltage_current_is_v_over_r(bench, ch, volts):
    lib, dc, sim = bench
    c = dc.channels[ch]
    c.current_limit = 0.1
    c.voltage = volts
    c.output_enabled = True
    r = LOADS[ch]
    assert c.mode == "CV"
    assert c.measure_voltage() == pytest.approx(volts, abs=TOL * V_NOISE)
    assert c.measure_current() == pytest.approx(volts / r, abs=TOL * I_NOISE)
    assert sim.electrical_output(f"out{ch}", np.zeros(3)) == pytest.approx([volts] * 3, rel=1e-12)


@pytest.mark.parametrize("limit", [0.005, 0.02])
def test_constant_current_when_v_over_r_exceeds_limit(bench, limit):
    lib, dc, sim = bench
    r = LOADS[2]  # 50 ohm
    dc.ch_2.voltage = 5.0  # would draw 100 mA
    dc.ch_2.current_limit = limit
    dc.ch_2.output_enabled = True
    assert dc.ch_2.mode == "CC"
    assert dc.ch_2.measure_current() == pytest.approx(limit, abs=TOL * I_NOISE)
    assert dc.ch_2.measure_voltage() == pytest.approx(limit * r, abs=TOL * V_NOISE)
    assert sim.electrical_output("out2", np.zeros(1))[0] == pytest.approx(limit * r, rel=1e-12)


def test_cv_cc_boundary(bench):
    lib, dc, sim = bench
    r = LOADS[1]
    dc.ch_1.current_limit = 0.01
    dc.ch_1.output_enabled = True
    dc.ch_1.voltage = 0.01 * r * 0.99  # just below the limit: CV
    assert dc.ch_1.mode == "CV"
    dc.ch_1.voltage = 0.01 * r * 1.01  # just above: CC at I_lim R
    assert dc.ch_1.mode == "CC"
    assert sim.electrical_output("out1", np.zeros(1))[0] == pytest.approx(0.01 * r)


def test_open_output_draws_no_current(bench):
    lib, dc, sim = bench
    dc.ch_4.current_limit = 0.001
    dc.ch_4.voltage = 7.0
    dc.ch_4.output_enabled = True
    assert dc.ch_4.mode == "CV"
    assert dc.ch_4.measure_current() == pytest.approx(0.0, abs=TOL * I_NOISE)
    assert dc.ch_4.measure_voltage() == pytest.approx(7.0, abs=TOL * V_NOISE)


def test_output_off_gives_zero(bench):
    lib, dc, sim = bench
    dc.set_current_limits({1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1})
    dc.set_voltages({1: 2.0, 2: 2.0, 3: 2.0, 4: 2.0})
    dc.set_outputs(True)
    dc.ch_1.shutdown()
    assert dc.ch_1.output_enabled is False
    assert dc.ch_1.mode == "OFF"
    assert dc.ch_1.measure_voltage() == pytest.approx(0.0, abs=TOL * V_NOISE)
    assert dc.ch_1.measure_current() == pytest.approx(0.0, abs=TOL * I_NOISE)
    assert sim.electrical_output("out1", np.zeros(2)) == pytest.approx([0.0, 0.0], abs=0)
    assert dc.ch_2.measure_current() == pytest.approx(2.0 / LOADS[2], abs=TOL * I_NOISE)  # others stay on
    dc.shutdown()
    assert all(v == pytest.approx(0.0, abs=TOL * I_NOISE) for v in dc.measure_currents().values())
    assert dc.ask("OUTP? (@1:4)").strip() == "0,0,0,0"


@pytest.mark.parametrize("ch, volts", [(1, 3.0), (2, 1.5), (3, 8.0)])
def test_heater_power_matches_v_squared_over_r(bench, ch, volts):
    lib, dc, sim = bench
    c = dc.channels[ch]
    c.current_limit = 0.5
    c.voltage = volts
    c.output_enabled = True
    n = 16
    v = np.mean([c.measure_voltage() for _ in range(n)])
    i = np.mean([c.measure_current() for _ in range(n)])
    r = LOADS[ch]
    expected = volts ** 2 / r
    sigma = math.hypot(volts * I_NOISE, (volts / r) * V_NOISE) / math.sqrt(n)
    assert v * i == pytest.approx(expected, abs=TOL * sigma)


def test_readback_noise_has_configured_sigma(sim_bench, open_sim):
    lib = sim_bench(*_config(params={"voltage_noise_v": 5e-3, "current_noise_a": 2e-3}))
    dc = open_sim(KeysightN6700, lib, RES)
    dc.ch_1.current_limit = 0.1
    dc.ch_1.voltage = 1.0
    dc.ch_1.output_enabled = True
    n = 400
    volts = np.array([dc.measure_voltages([1, 4])[1] for _ in range(n)])
    amps = np.array([dc.ch_1.measure_current() for _ in range(n)])
    # sample std of n Gaussian draws is within ~4 / sqrt(2n) relative of sigma
    assert np.std(volts, ddof=1) == pytest.approx(5e-3, rel=4 / math.sqrt(2 * n))
    assert np.std(amps, ddof=1) == pytest.approx(2e-3, rel=4 / math.sqrt(2 * n))
    assert np.mean(amps) == pytest.approx(1.0 / LOADS[1], abs=4 * 2e-3 / math.sqrt(n))


def test_measurement_advances_simulated_clock(sim_bench, open_sim):
    lib = sim_bench(*_config(params={"measurement_time_s": 0.1}))
    dc = open_sim(KeysightN6700, lib, RES)
    start = lib.world.time
    dc.ch_1.measure_voltage()
    dc.measure_currents()  # four channels, one acquisition
    assert lib.world.time - start == pytest.approx(0.2)


# -- over-voltage protection ---------------------------------------------------------------------------


def test_ovp_trips_when_output_exceeds_level(bench):
    lib, dc, sim = bench
    dc.ch_4.ovp_level = 8.0
    dc.ch_4.voltage = 6.0
    dc.ch_4.output_enabled = True
    assert not dc.ch_4.protection_tripped
    dc.ch_4.voltage = 9.0  # the output would exceed 8 V
    assert dc.ch_4.protection_tripped
    assert dc.ch_4.measure_voltage() == pytest.approx(0.0, abs=TOL * V_NOISE)
    assert sim.electrical_output("out4", np.zeros(1))[0] == 0.0
    assert dc.ch_4.mode == ""  # neither CV nor CC, not programmed off
    assert dc.ch_4.output_enabled is True  # the programmed state is kept
    assert _err(dc) == '0,"No error"'  # reported through status, not the error queue
    dc.ch_4.clear_protection()  # condition still present: trips again
    assert dc.ch_4.protection_tripped
    dc.ch_4.voltage = 5.0
    dc.ch_4.clear_protection()
    assert not dc.ch_4.protection_tripped
    assert dc.ch_4.measure_voltage() == pytest.approx(5.0, abs=TOL * V_NOISE)


def test_lowering_ovp_below_output_trips(bench):
    lib, dc, sim = bench
    dc.ch_1.current_limit = 0.1
    dc.ch_1.voltage = 4.0
    dc.ch_1.output_enabled = True
    dc.ch_1.ovp_level = 3.0
    assert dc.ch_1.protection_tripped
    assert dc.ch_1.measure_current() == pytest.approx(0.0, abs=TOL * I_NOISE)


def test_ovp_follows_actual_voltage_in_cc(bench):
    lib, dc, sim = bench
    dc.ch_2.ovp_level = 5.0
    dc.ch_2.current_limit = 0.02  # CC: V = 0.02 A * 50 ohm = 1 V
    dc.ch_2.voltage = 10.0  # setpoint above OVP, output is not
    dc.ch_2.output_enabled = True
    assert not dc.ch_2.protection_tripped
    assert dc.ch_2.mode == "CC"
    dc.ch_2.current_limit = 0.2  # now V would be 10 V > 5 V
    assert dc.ch_2.protection_tripped


def test_reset_clears_protection(bench):
    lib, dc, sim = bench
    dc.ch_4.ovp_level = 1.0
    dc.ch_4.voltage = 2.0
    dc.ch_4.output_enabled = True
    assert dc.ch_4.protection_tripped
    dc.write("*RST")
    assert not dc.ch_4.protection_tripped


# -- parameters -----------------------------------------------------------------------------------------


def test_module_parameter_sets_ranges(sim_bench, open_sim):
    lib = sim_bench(*_config(params={"modules": ["N6731B", "N6734B"]}, loads={1: 10.0, 2: 1000.0}))
    dc = open_sim(KeysightN6700, lib, RES, modules=["N6731B", "N6734B"])
    assert dc.channel_count == 2
    assert dc.ask("SYST:CHAN:MOD? (@1,2)").strip() == "N6731B,N6734B"
    dc.ch_2.voltage = 30.0
    assert dc.ch_2.voltage == pytest.approx(30.0)
    dc.write("VOLT 6,(@1)")  # above the 5 V module's 5.1 V
    assert _err(dc).startswith("-222,")
    assert [float(v) for v in dc.ask("CURR? MAX,(@1,2)").split(",")] == [10.2, 1.53]


@pytest.mark.parametrize("params", [
    {"modules": "N9999Z"},
    {"channels": 5},
    {"channels": 0},
    {"modules": ["N6733B", "N6733B"], "channels": 3},
    {"voltage_noise_v": -1e-3},
    {"current_noise_a": "lots"},
    {"measurement_time_s": float("nan")},
    {"colour": "blue"},
])
def test_non_physical_parameters_refused(params):
    from sim_backends.bench import build_bench

    with pytest.raises(BenchFileError) as info:
        build_bench({"instruments": _config(params=params, loads={})[0]})
    assert "heaters" in str(info.value)


def test_uninstalled_output_has_no_port():
    from sim_backends.bench import build_bench

    instruments, components, connections = _config(params={"channels": 2}, loads={1: 500.0, 3: 500.0})
    with pytest.raises(BenchFileError):
        build_bench({"instruments": instruments, "components": components, "connections": connections})
