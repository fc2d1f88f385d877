"""Protocol tests of the Keysight N6700 driver: the exact SCPI it sends and how it reads replies."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.keysight.n6700 import (
    MODULES,
    KeysightN6700,
    N6700Channel,
    OperationStatus,
)
from drivers.scpi import channel_list

OK = ("SYST:ERR?", '0,"No error"')


def test_init_sends_nothing():
    with expected_protocol(KeysightN6700, []) as inst:
        assert set(inst.channels) == {1, 2, 3, 4}
        assert inst.ch_1.id == 1 and inst.ch_4.id == 4


def test_channel_implements_dc_source_role_members():
    for name in ("voltage", "current_limit", "output_enabled", "measure_voltage",
                 "measure_current", "shutdown"):
        assert hasattr(N6700Channel, name), name


# -- channel lists --------------------------------------------------------------------------------


@pytest.mark.parametrize("channels, text", [
    ([1], "(@1)"),
    ([3, 1], "(@1,3)"),
    ([1, 2], "(@1,2)"),
    ([1, 2, 3, 4], "(@1:4)"),
    ([4, 2, 3], "(@2:4)"),
    ([1, 2, 4], "(@1,2,4)"),
    ([1, 1, 2, 2, 3], "(@1:3)"),
])
def test_channel_list_format(channels, text):
    assert channel_list(channels) == text


def test_channel_list_empty_refused():
    with pytest.raises(ValueError):
        channel_list([])


# -- per-channel settings -------------------------------------------------------------------------


@pytest.mark.parametrize("ch", [1, 2, 3, 4])
@pytest.mark.parametrize("value, text", [(0, "0"), (1.2, "1.2"), (12.345, "12.345"), (20.4, "20.4")])
def test_voltage_setter(ch, value, text):
    with expected_protocol(KeysightN6700, [(f"VOLT {text},(@{ch})", None), OK]) as inst:
        inst.channels[ch].voltage = value


@pytest.mark.parametrize("ch", [1, 4])
def test_voltage_getter(ch):
    with expected_protocol(KeysightN6700, [(f"VOLT? (@{ch})", "+1.500000E+00")]) as inst:
        assert inst.channels[ch].voltage == pytest.approx(1.5)


@pytest.mark.parametrize("value, text", [(0, "0"), (0.02, "0.02"), (2.55, "2.55")])
def test_current_limit_setter(value, text):
    with expected_protocol(KeysightN6700, [(f"CURR {text},(@2)", None), OK]) as inst:
        inst.ch_2.current_limit = value


def test_current_limit_getter():
    with expected_protocol(KeysightN6700, [("CURR? (@3)", "+5.000000E-02")]) as inst:
        assert inst.ch_3.current_limit == pytest.approx(0.05)


@pytest.mark.parametrize("state, text", [(True, "1"), (False, "0")])
def test_output_setter(state, text):
    with expected_protocol(KeysightN6700, [(f"OUTP {text},(@1)", None), OK]) as inst:
        inst.ch_1.output_enabled = state


@pytest.mark.parametrize("reply, state", [("1", True), ("0", False)])
def test_output_getter(reply, state):
    with expected_protocol(KeysightN6700, [("OUTP? (@4)", reply)]) as inst:
        assert inst.ch_4.output_enabled is state


def test_ovp_setter_and_getter():
    with expected_protocol(KeysightN6700, [("VOLT:PROT 8.5,(@2)", None), OK,
                                           ("VOLT:PROT? (@2)", "+8.500000E+00")]) as inst:
        inst.ch_2.ovp_level = 8.5
        assert inst.ch_2.ovp_level == pytest.approx(8.5)


def test_measurements():
    with expected_protocol(KeysightN6700, [("MEAS:VOLT? (@1)", "+4.998000E+00"),
                                           ("MEAS:CURR? (@1)", "+9.996000E-03")]) as inst:
        assert inst.ch_1.measure_voltage() == pytest.approx(4.998)
        assert inst.ch_1.measure_current() == pytest.approx(9.996e-3)


@pytest.mark.parametrize("reply, mode", [("1", "CV"), ("2", "CC"), ("4", "OFF"), ("0", "")])
def test_mode_from_operation_condition(reply, mode):
    with expected_protocol(KeysightN6700, [("STAT:OPER:COND? (@3)", reply)]) as inst:
        assert inst.ch_3.mode == mode


def test_operation_condition_is_flag():
    with expected_protocol(KeysightN6700, [("STAT:OPER:COND? (@1)", "5")]) as inst:
        cond = inst.ch_1.operation_condition
        assert cond & OperationStatus.CV and cond & OperationStatus.OFF


@pytest.mark.parametrize("reply, tripped", [("1", True), ("0", False), ("2", False)])
def test_protection_tripped(reply, tripped):
    with expected_protocol(KeysightN6700, [("STAT:QUES:COND? (@2)", reply)]) as inst:
        assert inst.ch_2.protection_tripped is tripped


def test_clear_protection():
    with expected_protocol(KeysightN6700, [("OUTP:PROT:CLE (@2)", None), OK]) as inst:
        inst.ch_2.clear_protection()


def test_channel_shutdown():
    with expected_protocol(KeysightN6700, [("OUTP 0,(@3)", None), OK]) as inst:
        inst.ch_3.shutdown()


def test_channel_count_and_model():
    with expected_protocol(KeysightN6700, [("SYST:CHAN?", "4"), ("SYST:CHAN:MOD? (@1)", "N6733B")]) as inst:
        assert inst.channel_count == 4
        assert inst.ch_1.module_model == "N6733B"


# -- several channels in one command --------------------------------------------------------------


@pytest.mark.parametrize("voltages, message", [
    ({1: 1.2}, "VOLT 1.2,(@1)"),
    ({1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0}, "VOLT 1,(@1:4)"),
    ({3: 1.5, 1: 1.5}, "VOLT 1.5,(@1,3)"),
    ({1: 1.0, 2: 2.0, 3: 1.0}, "VOLT 1,(@1,3);VOLT 2,(@2)"),
    ({1: 0.5, 2: 0.75, 3: 1.0, 4: 1.25}, "VOLT 0.5,(@1);VOLT 0.75,(@2);VOLT 1,(@3);VOLT 1.25,(@4)"),
])
def test_set_voltages_one_message(voltages, message):
    with expected_protocol(KeysightN6700, [(message, None), OK]) as inst:
        inst.set_voltages(voltages)


def test_set_current_limits_one_message():
    with expected_protocol(KeysightN6700, [("CURR 0.05,(@1:3);CURR 0.01,(@4)", None), OK]) as inst:
        inst.set_current_limits({1: 0.05, 2: 0.05, 3: 0.05, 4: 0.01})


@pytest.mark.parametrize("bad", [{1: 1.0, 2: 20.5}, {1: -0.1}, {5: 1.0}, {}])
def test_set_voltages_checks_everything_before_sending(bad):
    with expected_protocol(KeysightN6700, []) as inst:
        with pytest.raises(ValueError):
            inst.set_voltages(bad)


def test_set_voltages_out_of_range_is_typed():
    with expected_protocol(KeysightN6700, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.set_voltages({2: 21.0})


@pytest.mark.parametrize("enabled, channels, message", [
    (True, None, "OUTP 1,(@1:4)"),
    (False, [2, 3], "OUTP 0,(@2,3)"),
    (True, [4], "OUTP 1,(@4)"),
])
def test_set_outputs(enabled, channels, message):
    with expected_protocol(KeysightN6700, [(message, None), OK]) as inst:
        inst.set_outputs(enabled, channels)


def test_set_outputs_rejects_non_bool():
    with expected_protocol(KeysightN6700, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.set_outputs(1)


def test_measure_several_channels_in_one_query():
    with expected_protocol(KeysightN6700, [("MEAS:VOLT? (@1,3)", "+1.000000E+00,+3.000000E+00"),
                                           ("MEAS:CURR? (@1:4)", "+1E-03,+2E-03,+3E-03,+4E-03")]) as inst:
        assert inst.measure_voltages([3, 1]) == {1: pytest.approx(1.0), 3: pytest.approx(3.0)}
        assert inst.measure_currents() == {1: 1e-3, 2: 2e-3, 3: 3e-3, 4: 4e-3}


def test_measure_reply_count_mismatch_raises():
    with expected_protocol(KeysightN6700, [("MEAS:VOLT? (@1,2)", "+1.000000E+00")]) as inst:
        with pytest.raises(ValueError):
            inst.measure_voltages([1, 2])


def test_instrument_shutdown_turns_all_outputs_off():
    with expected_protocol(KeysightN6700, [("OUTP 0,(@1:4)", None), OK]) as inst:
        inst.shutdown()
        assert inst.isShutdown


# -- ranges per module and errors -----------------------------------------------------------------


@pytest.mark.parametrize("prop, value", [
    ("voltage", 20.41), ("voltage", -0.01), ("current_limit", 2.56), ("current_limit", -1e-3),
    ("ovp_level", 22.5), ("ovp_level", -1.0),
])
def test_out_of_range_raises_before_sending(prop, value):
    with expected_protocol(KeysightN6700, []) as inst:
        with pytest.raises(ValueOutOfRange):
            setattr(inst.ch_1, prop, value)


@pytest.mark.parametrize("model", sorted(MODULES))
def test_ranges_follow_module_model(model):
    rating = MODULES[model]
    with expected_protocol(KeysightN6700, [(f"VOLT {rating.max_voltage:g},(@1)", None), OK,
                                           (f"CURR {rating.max_current:g},(@1)", None), OK],
                           modules=model) as inst:
        assert inst.ch_1.voltage_range == (0.0, rating.max_voltage)   # the role's view of the same limits
        inst.ch_1.voltage = rating.max_voltage
        inst.ch_1.current_limit = rating.max_current
        with pytest.raises(ValueOutOfRange):
            inst.ch_1.voltage = rating.max_voltage * 1.01
        with pytest.raises(ValueOutOfRange):
            inst.ch_1.current_limit = rating.max_current * 1.01


def test_modules_per_slot():
    with expected_protocol(KeysightN6700, [("VOLT 30,(@1)", None), OK],
                           modules=["N6734B", "N6731B"]) as inst:
        inst.ch_1.voltage = 30.0
        for ch in (2, 3, 4):  # the last listed module fills the remaining slots
            with pytest.raises(ValueOutOfRange):
                inst.channels[ch].voltage = 6.0
    with expected_protocol(KeysightN6700, [], modules={3: "N6735B"}) as inst:
        assert inst.modules == {1: "N6733B", 2: "N6733B", 3: "N6735B", 4: "N6733B"}


@pytest.mark.parametrize("modules", ["N9999Z", ["N6733B"] * 5, {7: "N6733B"}])
def test_bad_module_configuration(modules):
    with pytest.raises(ValueError):
        KeysightN6700(None, modules=modules)


def test_error_reply_raises_instrument_error():
    with expected_protocol(KeysightN6700, [("VOLT 1,(@1)", None),
                                           ("SYST:ERR?", '-222,"Data out of range"'),
                                           OK]) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.ch_1.voltage = 1.0
        assert info.value.codes == [-222]
        assert info.value.command == "VOLT 1,(@1)"


def test_set_voltages_error_reply_names_the_message():
    message = "VOLT 1,(@1);VOLT 2,(@2)"
    with expected_protocol(KeysightN6700, [(message, None),
                                           ("SYST:ERR?", '-222,"Data out of range"'), OK]) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.set_voltages({1: 1.0, 2: 2.0})
        assert info.value.command == message
