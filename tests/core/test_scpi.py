"""The SCPI engine against the rules of IEEE 488.2 / SCPI-99."""

import pytest

from sim_backends.scpi import (
    CommandTree,
    Param,
    ScpiError,
    absolute_headers,
    definite_block,
    parse_unit_suffix,
    split_message,
)


@pytest.fixture
def tree():
    t = CommandTree()
    t.add("[:SOURce#][:CHANnel#]:POWer[:LEVel][:IMMediate][:AMPLitude]", setter=lambda c: None, getter=lambda c: "1")
    t.add(":SENSe#:POWer:UNIT", setter=lambda c: None)
    t.add("*IDN", getter=lambda c: "x")
    return t


@pytest.mark.parametrize("header, suffixes", [
    (":SOURce1:CHANnel1:POWer:LEVel:IMMediate:AMPLitude", [1, 1]),
    (":SOUR2:POW", [2, 1]),
    ("sour3:chan2:pow:lev", [3, 2]),
    (":POW", [1, 1]),
    ("POWER:AMPL", [1, 1]),
    (":source4:power", [4, 1]),
])
def test_long_short_optional_and_suffix_forms_resolve(tree, header, suffixes):
    command, found = tree.resolve(header)
    assert found == suffixes
    assert command.getter is not None


@pytest.mark.parametrize("header", [":SOURC1:POW", ":SOU:POW", ":POWe", ":SOUR1:POW:FOO", ":SENS1:POW"])
def test_partial_or_unknown_mnemonics_are_undefined_headers(tree, header):
    with pytest.raises(ScpiError) as err:
        tree.resolve(header)
    assert err.value.code == -113


def test_compound_commands_are_relative_to_previous_path():
    commands = split_message(b":SOUR1:POW 1;LEV 2;:SENS1:POW:UNIT 0;*IDN?;UNIT?")
    assert absolute_headers(commands) == ["SOUR1:POW", "SOUR1:LEV", "SENS1:POW:UNIT", "*IDN?", "SENS1:POW:UNIT?"]


def test_parameters_split_on_commas_but_not_inside_strings():
    (cmd,) = split_message(b':DISP:TEXT "a,b;c",2')
    assert [p.text for p in cmd.params] == ['"a,b;c"', "2"]
    assert cmd.params[0].string() == "a,b;c"


def test_binary_block_passes_through_untouched_even_with_separators_inside():
    payload = bytes(range(256)) + b";\n,#"
    cmd, second = split_message(b":TRAC1:DATA 1,0," + definite_block(payload) + b";:OUTP 1\n")
    assert cmd.params[2].binary() == payload
    assert second.header == ":OUTP" and second.params[0].text == "1"


def test_block_shorter_than_announced_is_a_block_data_error():
    with pytest.raises(ScpiError) as err:
        split_message(b":TRAC:DATA #3100abc")
    assert err.value.code == -160


@pytest.mark.parametrize("text, unit, value", [
    ("1550NM", "M", 1550e-9), ("1.55um", "M", 1.55e-6), ("1.5e-6", "M", 1.5e-6),
    ("2.5MW", "W", 2.5e-3), ("10uw", "W", 1e-5), ("3DBM", "DBM", 3.0),
    ("10MHZ", "HZ", 1e7), ("64GHZ", "HZ", 64e9), ("5MS", "S", 5e-3), ("250mV", "V", 0.25),
])
def test_unit_suffixes_with_si_multipliers(text, unit, value):
    assert Param(text).number(unit) == pytest.approx(value)


def test_power_parameter_accepting_dbm_or_watts():
    convert = {"DBM": lambda dbm: 1e-3 * 10 ** (dbm / 10)}
    assert Param("0DBM").number("W", alt_units=convert) == pytest.approx(1e-3)
    assert Param("2MW").number("W", alt_units=convert) == pytest.approx(2e-3)


def test_wrong_unit_is_invalid_suffix():
    with pytest.raises(ScpiError) as err:
        Param("5V").number("W")
    assert err.value.code == -131
    with pytest.raises(ScpiError):
        parse_unit_suffix("NM", "DBM")


def test_min_max_def_and_range():
    assert Param("MIN").number("W", 0, 0.02, 0.001) == 0
    assert Param("maximum").number("W", 0, 0.02, 0.001) == 0.02
    assert Param("DEF").number("W", 0, 0.02, 0.001) == 0.001
    with pytest.raises(ScpiError) as err:
        Param("0.5").number("W", 0, 0.02)
    assert err.value.code == -222


def test_booleans_choices_and_type_errors():
    assert Param("ON").boolean() and not Param("0").boolean()
    assert Param("dbm").choice(["DBM", "Watt"]) == "DBM"
    assert Param("w").choice(["DBM", "Watt"]) == "WATT"
    with pytest.raises(ScpiError):
        Param("wat").choice(["DBM", "Watt"])  # neither the short nor the long form
    with pytest.raises(ScpiError) as err:
        Param("maybe").boolean()
    assert err.value.code == -224
    with pytest.raises(ScpiError) as err:
        Param("abc").number("W")
    assert err.value.code == -104


def test_error_entry_format():
    assert ScpiError(-222, "5 outside [0, 1]").entry() == '-222,"Data out of range;5 outside [0, 1]"'
