"""The SCPI engine against the rules of IEEE 488.2 / SCPI-99."""


import pytest

from sim_backends.scpi import (
    MAX_ERROR_TEXT,
    CommandTree,
    Param,
    ScpiError,
    absolute_headers,
    definite_block,
    format_number,
    parse_pattern,
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


def test_block_shorter_than_announced_is_invalid_block_data():
    with pytest.raises(ScpiError) as err:
        split_message(b":TRAC:DATA #3100abc")
    assert err.value.code == -161


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


# -- hostile input: typed SCPI errors, never a Python exception ------------------------------------


def test_error_entries_are_printable_ascii_with_doubled_quotes_and_at_most_255_characters():
    entry = ScpiError(-113, 'FOO\ufffd\x00"bar"\n' + "x" * 400).entry()
    assert entry.isascii() and entry.isprintable()
    assert entry.startswith('-113,"Undefined header;FOO\\ufffd\\x00""bar""\\n')
    text = entry.split(",", 1)[1][1:-1]
    assert len(text) <= MAX_ERROR_TEXT
    # a truncation never leaves a lone quote that would end the string early
    cut = ScpiError(-113, "a" * (MAX_ERROR_TEXT - len("Undefined header;") - 1) + '"b').entry()
    assert cut.count('"') % 2 == 0


def test_bytes_beyond_ascii_outside_strings_are_invalid_characters():
    for message in (b"*IDN\xff?", b":SOUR:POW 1\xe9", b':DISP:TEXT "a",\x80'):
        with pytest.raises(ScpiError) as err:
            split_message(message)
        assert err.value.code == -101
        assert err.value.entry().isascii()


def test_strings_take_doubled_quotes_and_refuse_lone_ones():
    assert Param('"a""b"').string() == 'a"b'
    assert Param("'it''s'").string() == "it's"
    for text in ('"a"b"', '"abc', "'"):
        with pytest.raises(ScpiError) as err:
            Param(text).string()
        assert err.value.code == -151


def test_bytes_beyond_ascii_inside_strings_arrive_escaped():
    (cmd,) = split_message(b':DISP:TEXT "caf\xe9"')
    assert cmd.params[0].string() == "caf\\xe9"


@pytest.mark.parametrize("text, code", [
    ("1e999", -222), ("-1e999", -222), ("1e308EXHZ", -222), ("NaN", -224), ("INF", -224), ("ninf", -224),
    ("1e40000", -123), ("1e" + "9" * 5000, -123), ("1e-" + "0" * 5000 + "1", 0.1), ("1" * 300, -124), ("1.2.3", -121), ("-12#4", -121), ("abc", -104),
])
def test_numbers_that_overflow_or_are_not_finite_are_scpi_errors(text, code):
    if isinstance(code, float):  # leading zeros make a long exponent legal
        assert Param(text).number("HZ", 0, 1e12) == code
        return
    with pytest.raises(ScpiError) as err:
        Param(text).number("HZ", 0, 1e12)
    assert err.value.code == code


def test_overflow_is_out_of_range_even_without_bounds_or_through_a_unit_converter():
    with pytest.raises(ScpiError) as err:
        Param("1e999").number()
    assert err.value.code == -222
    with pytest.raises(ScpiError) as err:
        Param("1e308DBM").number("W", alt_units={"DBM": lambda dbm: 1e-3 * 10 ** (dbm / 10)})
    assert err.value.code == -222
    with pytest.raises(ScpiError) as err:
        Param("5").number(high=1)  # one-sided bounds format in the message
    assert err.value.code == -222 and "[-inf, 1]" in err.value.detail


def test_underflow_rounds_to_zero_and_minus_zero_is_zero():
    assert Param("1e-999").number() == 0.0
    assert str(Param("-0").number()) == "0.0"


@pytest.mark.parametrize("message, code", [
    (b":TRAC:DATA #0abc", -160), (b":TRAC:DATA #", -160), (b":TRAC:DATA #A12", -160),
    (b":TRAC:DATA #2+5abcde", -160), (b":TRAC:DATA #2 5abcde", -160),
    (b":TRAC:DATA #15abcdefgh", -161),  # more data than announced: the header lies
    (b":TRAC:DATA #9999999999", -223),  # larger than the simulator takes: nothing is read
])
def test_malformed_lying_or_oversized_blocks_are_block_errors(message, code):
    with pytest.raises(ScpiError) as err:
        split_message(message)
    assert err.value.code == code


def test_a_block_may_be_followed_by_a_separator_or_the_terminator():
    for tail in (b"", b"\n", b"\r\n", b" ;*IDN?", b",1"):
        commands = split_message(b":TRAC:DATA 1," + definite_block(b"abc") + tail)
        assert commands[0].params[1].binary() == b"abc"


def test_a_header_suffix_of_thousands_of_digits_is_out_of_range(tree):
    with pytest.raises(ScpiError) as err:
        tree.resolve(":SOUR" + "9" * 5000 + ":POW")
    assert err.value.code == -114


def test_patterns_list_every_declared_command(tree):
    assert (":SENSe#:POWer:UNIT", True, False) in tree.patterns()
    assert [node.mnemonic for node in parse_pattern("[:SOURce#]:POWer")] == ["SOURce", "POWer"]


def test_very_long_hostile_text_gives_scpi_errors():
    # these took seconds each with backtracking patterns (quadratic); benchmarks/bench_io.py (hostile_parsing_growth)
    # measures the growth with length as a ratio
    for text, code in (("1e" + "1" * 20000 + " " * 20000 + "!", -121), ("1" + " " * 40000 + "x!", -121)):
        with pytest.raises(ScpiError) as err:
            Param(text).number()
        assert err.value.code == code
    with pytest.raises(ScpiError):
        CommandTree().resolve("A" * 40000 + "!")


# -- reply numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value, kwargs, text", [
    (1.55e-6, dict(digits=8, sign=True, exponent_digits=3), "+1.55000000E-006"),   # Keysight lightwave
    (1.23456789e-3, dict(digits=8), "1.23456789E-03"),                              # Thorlabs PM100
    (-2.5, dict(digits=6, sign=True), "-2.500000E+00"),                             # Keysight N6700
    (1e100, dict(digits=8, sign=True, exponent_digits=3), "+1.00000000E+100"),
    (0.1, {}, "1.000000E-01"),                     # fewest digits that read back exactly
    (0.1 + 0.2, {}, "3.0000000000000004E-01"),
    (float("inf"), dict(digits=1), "9.9E+37"),     # SCPI-99's infinity and not-a-number
    (float("-inf"), dict(digits=1, sign=True), "-9.9E+37"),
    (float("nan"), dict(digits=2), "9.91E+37"),
])
def test_format_number_writes_nr3_in_the_instrument_s_style(value, kwargs, text):
    from_text = format_number(value, **kwargs)
    assert from_text == text
    if "digits" not in kwargs:
        assert float(from_text) == value
