"""Safety limits of the optical_core role (OCC-16): refused before anything is sent, clear errors.

The guarded object is built exactly as ``Bench.role`` builds it (``Guarded(driver, checks_for(role,
limits), label)``) around a driver on pymeasure's protocol adapter, so an empty protocol proves that a
refused call sent nothing.
"""

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.keysight.n6700 import KeysightN6700
from drivers.labctl_fw.occ import OCC16
from labctl.config import LIMIT_KEYS, SAFETY_KEYS_BY_ROLE, SafetyLimits, parse_bench
from labctl.errors import ConfigError, SafetyLimitError
from labctl.instruments import ROLE_NAMES, ROLE_PROTOCOLS, OpticalCoreController
from labctl.safety import Guarded, UnguardedMemberError, checks_for

OK = ("SYST:ERR?", '0,"No error"')
LIMITS = SafetyLimits(max_heater_voltage_v=4.0, max_bias_voltage_v=6.0, max_dac_amplitude_vpp=0.8)


def guarded(inst, limits=LIMITS):
    return Guarded(inst, checks_for("optical_core", limits), "occ")


def program(top=3.0, tiles=1, slots=2, n=2):
    heater = np.linspace(0.0, top, tiles * n * n).reshape(tiles, n, n)
    return heater, np.zeros((tiles, slots, n), dtype=np.int16)


# -- refused before anything is sent ----------------------------------------------------------------


@pytest.mark.parametrize("attribute, value, words", [
    ("heater_limit", 4.5, "OCC heater voltage 4.5 V exceeds the safety limit 4 V"),
    ("dac_amplitude", 0.9, "OCC DAC amplitude 0.9 Vpp exceeds the safety limit 0.8 Vpp"),
])
def test_unsafe_settings_are_refused(attribute, value, words):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(SafetyLimitError, match=words):
            setattr(guarded(inst), attribute, value)


@pytest.mark.parametrize("call", [
    lambda occ: occ.set_bias(1, 6.5),
    lambda occ: occ.set_bias(2, -7.0),
    lambda occ: occ.set_bias(channel=3, volts=9.0),
    lambda occ: occ.set_biases([1.0] * 15 + [-6.01]),
    lambda occ: occ.set_biases(np.full(16, np.inf)),
])
def test_unsafe_biases_are_refused(call):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(SafetyLimitError, match="OCC bias voltage .* safety limit 6 V.*nothing was sent"):
            call(guarded(inst))


@pytest.mark.parametrize("method", ["load_program", "execute"])
@pytest.mark.parametrize("as_keyword", [False, True])
def test_unsafe_heater_tables_are_refused(method, as_keyword):
    heater, codes = program(top=4.2)
    with expected_protocol(OCC16, []) as inst:
        call = getattr(guarded(inst), method)
        with pytest.raises(SafetyLimitError, match="OCC heater voltage 4.2 V exceeds the safety limit 4 V"):
            if as_keyword:
                call(heater_volts=heater, input_codes=codes)
            else:
                call(heater, codes)


@pytest.mark.parametrize("member", ["unguarded", "write", "ask", "adapter", "write_binary_values", "reset"])
def test_the_driver_and_its_raw_io_are_not_reachable_through_the_guard(member):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(UnguardedMemberError, match=r"bench\.raw\(name\)"):
            getattr(guarded(inst), member)


# -- within the limits the driver gets the call ---------------------------------------------------


def test_safe_settings_reach_the_driver():
    with expected_protocol(
        OCC16,
        [(":HEAT:LIM 4", None), OK, (":DAC:AMPL 0.8", None), OK,
         (":CORE:INP?", "16"), (":BIAS:VOLT -6,(@2)", None), OK,
         (":BIAS:VOLT 5.5,(@1:16)", None), OK],
    ) as inst:
        occ = guarded(inst)
        occ.heater_limit = 4.0
        occ.dac_amplitude = 0.8
        occ.set_bias(2, -6.0)
        occ.set_biases([5.5] * 16)


def test_safe_program_reaches_the_driver():
    heater, codes = program(top=4.0, slots=1)
    table = heater.astype("<f4").tobytes()
    data = codes.astype("<i2").tobytes()
    with expected_protocol(
        OCC16,
        [(":CORE:INP?", "2"), (":CORE:OUTP?", "2"), (":HEAT:LIM?", "4"), (":TILE:SLOT?", "1"),
         (b":HEAT:TABL #216" + table + b"\n", None), OK, (b":INP:DATA #14" + data + b"\n", None), OK],
    ) as inst:
        guarded(inst).load_program(heater, codes)


def test_reads_and_other_methods_pass_through():
    with expected_protocol(OCC16, [(":HEAT:LIM?", "+5.000000000E+00"), (":INIT", None), ("*OPC?", "1"), OK]) as inst:
        occ = guarded(inst)
        assert occ.heater_limit == 5.0
        occ.run()


def test_no_limits_no_checks():
    assert checks_for("optical_core", None) == {}
    assert checks_for("optical_core", SafetyLimits()) == {}


def test_dc_source_set_voltages_is_still_guarded():
    limits = SafetyLimits(max_voltage_v=8.0)
    with expected_protocol(KeysightN6700, [("VOLT 1.5,(@1,2)", None), OK]) as inst:
        dc = Guarded(inst, checks_for("dc_source", limits), "heaters")
        with pytest.raises(SafetyLimitError, match="DC source voltage 9 V"):
            dc.set_voltages({1: 1.0, 2: 9.0})
        dc.set_voltages({1: 1.5, 2: 1.5})


# -- the role and the bench file ----------------------------------------------------------------------


def test_optical_core_role_is_registered():
    assert "optical_core" in ROLE_NAMES
    assert ROLE_PROTOCOLS["optical_core"] is OpticalCoreController
    assert set(SAFETY_KEYS_BY_ROLE) == set(ROLE_NAMES)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_safety_keys_by_role_match_the_checks(role):
    for key in LIMIT_KEYS:
        checks = checks_for(role, SafetyLimits(**{key: 1.0}))
        assert bool(checks) == (key in SAFETY_KEYS_BY_ROLE[role]), (role, key)


def bench_data(safety):
    return {
        "name": "occ bench",
        "instruments": {
            "occ": {"role": "optical_core", "driver": "labctl.OCC16",
                    "resource": "TCPIP0::occ.example::hislip0::INSTR"},
            "laser": {"role": "tunable_laser", "driver": "keysight.N7714A",
                      "resource": "TCPIP0::laser.example::inst0::INSTR"},
        },
        "safety": {"laser": {"max_power_dbm": 10.0}, **safety},
    }


def test_bench_file_takes_optical_core_limits():
    config = parse_bench(bench_data({"occ": {"max_heater_voltage_v": 4.0, "max_bias_voltage_v": 6.0,
                                             "max_dac_amplitude_vpp": 0.8}}))
    assert config.safety["occ"].max_heater_voltage_v == 4.0
    assert checks_for("optical_core", config.safety["occ"])


@pytest.mark.parametrize("safety, words", [
    ({"occ": {"max_voltage_v": 4.0}}, "field 'safety.occ.max_voltage_v': does not apply to role 'optical_core'"),
    ({"laser": {"max_heater_voltage_v": 4.0}}, "field 'safety.laser.max_heater_voltage_v': does not apply"),
    ({"occ": {"max_heater_voltage_v": -1.0}}, "not a plausible limit; it must be > 0"),
    ({"occ": {"max_heater_volts": 4.0}}, "unknown field"),
])
def test_bench_file_refuses_limits_that_would_be_ignored_or_are_wrong(safety, words):
    with pytest.raises(ConfigError, match=words):
        parse_bench(bench_data(safety))
