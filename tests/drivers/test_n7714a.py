"""Protocol tests of the Keysight N7714A/N7711A driver: exact SCPI, including error-queue polls."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentError, MalformedReply, ValueOutOfRange
from drivers.keysight.n7714a import (
    KeysightN7711A,
    KeysightN7714A,
    KeysightN7714ALaser,
    PowerUnit,
)

NO_ERROR = ("SYST:ERR?", '+0,"No error"')
C = 299_792_458.0


def test_construction_sends_nothing_and_makes_four_ports():
    with expected_protocol(KeysightN7714A, []) as inst:
        assert sorted(inst.channels) == [1, 2, 3, 4]
        assert inst.ch_3.id == 3
        assert inst.name == "Keysight N7714A"


def test_n7711a_has_one_port():
    with expected_protocol(KeysightN7711A, []) as inst:
        assert list(inst.channels) == [1]
        assert not hasattr(inst, "ch_2")


@pytest.mark.parametrize("member", ["wavelength", "power", "output_enabled", "shutdown"])
def test_port_class_has_the_tunable_laser_members(member):
    assert hasattr(KeysightN7714ALaser, member)


# --- wavelength -------------------------------------------------------------------------


@pytest.mark.parametrize("port, reply, expected", [
    (1, "+1.55000000E-006", 1.55e-6),
    (2, "+1.52760500E-006", 1.527605e-6),
    (4, "+1.56549600E-006", 1.565496e-6),
])
def test_wavelength_getter(port, reply, expected):
    with expected_protocol(KeysightN7714A, [(f":SOUR{port}:WAV?", reply)]) as inst:
        assert inst.channels[port].wavelength == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("metres, sent", [
    (1550e-9, "1550.0000NM"),
    (1551.1234e-9, "1551.1234NM"),
    (1527.605e-9, "1527.6050NM"),
    (1565.496e-9, "1565.4960NM"),
])
def test_wavelength_setter(metres, sent):
    with expected_protocol(KeysightN7714A, [(f":SOUR2:WAV {sent}", None), NO_ERROR]) as inst:
        inst.ch_2.wavelength = metres


@pytest.mark.parametrize("metres", [1527.6e-9, 1565.5e-9, 1310e-9, 0.0, -1550e-9])
def test_wavelength_out_of_range_raises_before_sending(metres):
    with expected_protocol(KeysightN7714A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.ch_1.wavelength = metres


def test_wavelength_range_is_dynamic_for_other_bands():
    with expected_protocol(KeysightN7714A, [(":SOUR1:WAV 1600.0000NM", None), NO_ERROR]) as inst:
        inst.ch_1.wavelength_values = (1570.0e-9, 1608.8e-9)
        inst.ch_1.wavelength = 1600e-9
        with pytest.raises(ValueOutOfRange):
            inst.ch_1.wavelength = 1550e-9  # now outside this port's band
        # other ports keep the default band
        with pytest.raises(ValueOutOfRange):
            inst.ch_2.wavelength = 1600e-9


@pytest.mark.parametrize("word, attribute", [("MIN", "wavelength_min"), ("MAX", "wavelength_max")])
def test_wavelength_limits(word, attribute):
    with expected_protocol(KeysightN7714A, [(f":SOUR3:WAV? {word}", "+1.52760500E-006")]) as inst:
        assert getattr(inst.ch_3, attribute) == pytest.approx(1.527605e-6)


def test_frequency_getter_converts_the_wavelength():
    with expected_protocol(KeysightN7714A, [(":SOUR1:WAV?", "+1.55000000E-006")]) as inst:
        assert inst.ch_1.frequency == pytest.approx(C / 1.55e-6, rel=1e-12)


def test_frequency_setter_sends_the_wavelength():
    with expected_protocol(KeysightN7714A, [(":SOUR1:WAV 1550.0000NM", None), NO_ERROR]) as inst:
        inst.ch_1.frequency = C / 1550e-9


@pytest.mark.parametrize("hertz", [0.0, -1e14, C / 1500e-9])
def test_frequency_out_of_range_raises_before_sending(hertz):
    with expected_protocol(KeysightN7714A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.ch_1.frequency = hertz


# --- power --------------------------------------------------------------------------------


@pytest.mark.parametrize("unit_reply, level_reply, watt", [
    ("+0", "+1.00000000E+001", 10e-3),
    ("+0", "+6.98970004E+000", 5e-3),
    ("+1", "+5.00000000E-003", 5e-3),
    ("+1", "+2.00000000E-002", 20e-3),
])
def test_power_getter_follows_the_unit_setting(unit_reply, level_reply, watt):
    pairs = [(":SOUR1:POW:UNIT?", unit_reply), (":SOUR1:POW?", level_reply)]
    with expected_protocol(KeysightN7714A, pairs) as inst:
        assert inst.ch_1.power == pytest.approx(watt, rel=1e-8)


@pytest.mark.parametrize("watt, sent", [
    (5e-3, "6.9897DBM"),
    (10e-3, "10.0000DBM"),
    (4e-3, "6.0206DBM"),
    (22e-3, "13.4242DBM"),
])
def test_power_setter_always_sends_dbm_with_suffix(watt, sent):
    with expected_protocol(KeysightN7714A, [(f":SOUR3:POW {sent}", None), NO_ERROR]) as inst:
        inst.ch_3.power = watt


@pytest.mark.parametrize("watt", [1e-3, 3.9e-3, 22.5e-3, 0.1, 0.0, -5e-3])
def test_power_out_of_range_raises_before_sending(watt):
    with expected_protocol(KeysightN7714A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.ch_1.power = watt


@pytest.mark.parametrize("dbm, sent", [(6.0, "6.0000DBM"), (13.5, "13.5000DBM"), (8.25, "8.2500DBM")])
def test_power_dbm_setter(dbm, sent):
    with expected_protocol(KeysightN7714A, [(f":SOUR4:POW {sent}", None), NO_ERROR]) as inst:
        inst.ch_4.power_dbm = dbm


def test_power_dbm_getter_in_watt_unit():
    pairs = [(":SOUR2:POW:UNIT?", "+1"), (":SOUR2:POW?", "+1.00000000E-002")]
    with expected_protocol(KeysightN7714A, pairs) as inst:
        assert inst.ch_2.power_dbm == pytest.approx(10.0, abs=1e-9)


@pytest.mark.parametrize("unit, sent", [(PowerUnit.DBM, "DBM"), (PowerUnit.W, "W"), (1, "W")])
def test_power_unit_setter(unit, sent):
    with expected_protocol(KeysightN7714A, [(f":SOUR1:POW:UNIT {sent}", None), NO_ERROR]) as inst:
        inst.ch_1.power_unit = unit


@pytest.mark.parametrize("reply, unit", [("+0", PowerUnit.DBM), ("+1", PowerUnit.W)])
def test_power_unit_getter(reply, unit):
    with expected_protocol(KeysightN7714A, [(":SOUR2:POW:UNIT?", reply)]) as inst:
        assert inst.ch_2.power_unit is unit


def test_power_unit_refuses_other_units():
    with expected_protocol(KeysightN7714A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.ch_1.power_unit = 2


def test_power_range_reads_limits_in_the_current_unit():
    pairs = [(":SOUR1:POW:UNIT?", "+0"), (":SOUR1:POW? MIN", "+6.00000000E+000"),
             (":SOUR1:POW? MAX", "+1.35000000E+001")]
    with expected_protocol(KeysightN7714A, pairs) as inst:
        low, high = inst.ch_1.power_range
    assert low == pytest.approx(10 ** 0.6 * 1e-3)
    assert high == pytest.approx(10 ** 1.35 * 1e-3)


# --- output state ----------------------------------------------------------------------------


@pytest.mark.parametrize("state, sent", [(True, "1"), (False, "0")])
def test_output_enabled_setter(state, sent):
    with expected_protocol(KeysightN7714A, [(f":SOUR2:POW:STAT {sent}", None), NO_ERROR]) as inst:
        inst.ch_2.output_enabled = state


@pytest.mark.parametrize("reply, state", [("+1", True), ("+0", False), ("1", True)])
def test_output_enabled_getter(reply, state):
    with expected_protocol(KeysightN7714A, [(":SOUR4:POW:STAT?", reply)]) as inst:
        assert inst.ch_4.output_enabled is state


def test_port_shutdown_turns_the_output_off():
    with expected_protocol(KeysightN7714A, [(":SOUR3:POW:STAT 0", None), NO_ERROR]) as inst:
        inst.ch_3.shutdown()


def test_instrument_shutdown_turns_every_port_off():
    pairs = []
    for port in (1, 2, 3, 4):
        pairs += [(f":SOUR{port}:POW:STAT 0", None), NO_ERROR]
    with expected_protocol(KeysightN7714A, pairs) as inst:
        inst.shutdown()
        assert inst.isShutdown


# --- errors -------------------------------------------------------------------------------------


def test_an_error_reply_raises_instrument_error_naming_the_command():
    pairs = [(":SOUR1:WAV 1550.0000NM", None), ("SYST:ERR?", '-222,"Data out of range"'), NO_ERROR]
    with expected_protocol(KeysightN7714A, pairs) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.ch_1.wavelength = 1550e-9
    assert info.value.codes == [-222]
    assert info.value.command == ":SOUR1:WAV 1550.0000NM"


def test_power_setting_error_raises():
    pairs = [(":SOUR2:POW 10.0000DBM", None), ("SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR]
    with expected_protocol(KeysightN7714A, pairs) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.ch_2.power = 10e-3
    assert info.value.codes == [-221]


def test_a_garbled_error_queue_reply_is_a_typed_error_naming_the_reply():
    with expected_protocol(KeysightN7714A, [(b"SYST:ERR?", b"+?0,\"No error\"")]) as inst:
        with pytest.raises(MalformedReply, match="SYST:ERR"):
            inst.drain_errors()
