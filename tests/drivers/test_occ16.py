"""Protocol tests of the OCC-16 optical core controller driver (docs/occ_protocol.md).

Exact SCPI for every command, the SYST:ERR? poll after each setting, and the binary blocks built here
byte by byte with ``struct`` (not with the driver's numpy path), in the order the protocol specifies.
"""

import math
import struct

import numpy as np
import pytest
import pyvisa
from pymeasure.test import expected_protocol

from drivers.errors import DriverError, InstrumentError, ValueOutOfRange
from drivers.labctl_fw.occ import OCC16, OCCTimeoutError

OK = ("SYST:ERR?", '0,"No error"')
INPUTS_16 = (":CORE:INP?", "16")


def block(payload: bytes) -> bytes:
    """An IEEE 488.2 definite-length block: #<digits of length><length><payload>."""
    length = str(len(payload)).encode()
    return b"#" + str(len(length)).encode() + length + payload


def float32_le(table) -> bytes:
    """Heater volts, T x N_out x N_in: tile, then output q, then input k (last index fastest)."""
    values = [v for tile in table for row in tile for v in row]
    return struct.pack(f"<{len(values)}f", *values)


def int16_le(codes) -> bytes:
    """Codes, T x S x N: tile, then slot, then channel."""
    values = [int(v) for tile in codes for slot in tile for v in slot]
    return struct.pack(f"<{len(values)}h", *values)


def small_program(tiles=2, slots=4, n_out=3, n_in=2):
    heater = np.arange(tiles * n_out * n_in, dtype=float).reshape(tiles, n_out, n_in) * 0.25
    codes = (np.arange(tiles * slots * n_in).reshape(tiles, slots, n_in) * 1000 - 7000).astype(np.int16)
    return heater, codes


def core(n_in=2, n_out=3):
    return [(":CORE:INP?", str(n_in)), (":CORE:OUTP?", str(n_out))]


# -- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("prop, header, value, text", [
    ("symbol_rate", ":SYMB:RATE", 1e6, "1000000"),
    ("symbol_rate", ":SYMB:RATE", 1e9, "1000000000"),
    ("symbol_rate", ":SYMB:RATE", 1.234567891e9, "1234567891"),
    ("symbol_rate", ":SYMB:RATE", 2.5e9, "2500000000"),
    ("dac_amplitude", ":DAC:AMPL", 0.05, "0.05"),
    ("dac_amplitude", ":DAC:AMPL", 1.0, "1"),
    ("adc_range", ":ADC:RANG", 0.01, "0.01"),
    ("adc_range", ":ADC:RANG", 2.0, "2"),
    ("adc_offset", ":ADC:OFFS", -1.0, "-1"),
    ("adc_offset", ":ADC:OFFS", 0.125, "0.125"),
    ("heater_limit", ":HEAT:LIM", 0.0, "0"),
    ("heater_limit", ":HEAT:LIM", 10.0, "10"),
    ("settle_time", ":TILE:SETT", 1e-6, "1e-06"),
    ("settle_time", ":TILE:SETT", 2e-5, "2e-05"),
    ("settle_time", ":TILE:SETT", 1e-2, "0.01"),
    ("input_advance", ":INP:ADV", 0.0, "0"),
    ("input_advance", ":INP:ADV", 3.5e-9, "3.5e-09"),
    ("input_advance", ":INP:ADV", 1e-3, "0.001"),
])
def test_numeric_settings(prop, header, value, text):
    with expected_protocol(
        OCC16, [(f"{header} {text}", None), OK, (f"{header}?", f"{value:+.9E}")]
    ) as inst:
        setattr(inst, prop, value)
        assert getattr(inst, prop) == pytest.approx(value)


@pytest.mark.parametrize("prop, value", [
    ("symbol_rate", 0.9e6), ("symbol_rate", 2.6e9),
    ("dac_amplitude", 0.04), ("dac_amplitude", 1.1),
    ("adc_range", 0.005), ("adc_range", 2.5),
    ("adc_offset", -1.1), ("adc_offset", 1.5),
    ("heater_limit", -0.1), ("heater_limit", 10.5),
    ("settle_time", 5e-7), ("settle_time", 0.02),
    ("input_advance", -1e-9), ("input_advance", 2e-3),
    ("slots_per_tile", 0), ("slots_per_tile", 1048577), ("slots_per_tile", 2.5), ("slots_per_tile", True),
    ("output_enabled", "maybe"), ("output_enabled", 2),
])
def test_out_of_range_settings_send_nothing(prop, value):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(ValueOutOfRange):
            setattr(inst, prop, value)


@pytest.mark.parametrize("value", [1, 1024, 1048576])
def test_slots_per_tile(value):
    with expected_protocol(OCC16, [(f":TILE:SLOT {value}", None), OK, (":TILE:SLOT?", str(value))]) as inst:
        inst.slots_per_tile = value
        assert inst.slots_per_tile == value


@pytest.mark.parametrize("state, text, reply", [(True, "ON", "1"), (False, "OFF", "0")])
def test_output_enabled(state, text, reply):
    with expected_protocol(OCC16, [(f":OUTP {text}", None), OK, (":OUTP?", reply)]) as inst:
        inst.output_enabled = state
        assert inst.output_enabled is state


def test_setting_rejected_by_the_controller_raises_instrument_error():
    with expected_protocol(
        OCC16, [(":DAC:AMPL 0.5", None), ("SYST:ERR?", '-222,"Data out of range"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.dac_amplitude = 0.5
        assert info.value.codes == [-222]
        assert info.value.command == ":DAC:AMPL 0.5"


def test_every_queued_error_is_read_and_reported():
    with expected_protocol(
        OCC16, [(":SYMB:RATE 1000000000", None), ("SYST:ERR?", '-221,"Settings conflict"'),
                ("SYST:ERR?", '-350,"Queue overflow"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.symbol_rate = 1e9
        assert info.value.codes == [-221, -350]


def test_core_size_is_queried_once_and_cached():
    with expected_protocol(OCC16, [INPUTS_16, (":CORE:OUTP?", "8")]) as inst:
        assert inst.n_inputs == 16 and inst.n_outputs == 8
        assert inst.n_inputs == 16 and inst.n_outputs == 8  # no further queries


def test_counts():
    with expected_protocol(
        OCC16, [(":HEAT:TABL:COUN?", "3"), (":INP:DATA:COUN?", "98304"), (":FETC:DATA:COUN?", "0")]
    ) as inst:
        assert inst.table_tile_count == 3
        assert inst.input_code_count == 98304
        assert inst.result_code_count == 0


def test_shutdown_turns_every_output_off():
    with expected_protocol(OCC16, [(":OUTP OFF", None), OK]) as inst:
        inst.shutdown()


# -- biases -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel, volts, text", [(1, 0.0, "0"), (3, 2.5, "2.5"), (16, -10.0, "-10"), (7, 10.0, "10")])
def test_set_bias(channel, volts, text):
    with expected_protocol(OCC16, [INPUTS_16, (f":BIAS:VOLT {text},(@{channel})", None), OK]) as inst:
        inst.set_bias(channel, volts)


def test_get_bias():
    with expected_protocol(OCC16, [INPUTS_16, (":BIAS:VOLT? (@2)", "+2.500000000E+00")]) as inst:
        assert inst.get_bias(2) == pytest.approx(2.5)


@pytest.mark.parametrize("volts", [10.01, -12.0, math.nan, math.inf, "high"])
def test_bias_out_of_range_sends_nothing(volts):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.set_bias(1, volts)


@pytest.mark.parametrize("channel", [0, 17, 1.0, True])
def test_bias_channel_must_exist(channel):
    with expected_protocol(OCC16, [INPUTS_16] if not isinstance(channel, (bool, float)) else []) as inst:
        with pytest.raises(ValueOutOfRange, match="channel"):
            inst.set_bias(channel, 1.0)


def test_set_bias_rejected_raises():
    with expected_protocol(
        OCC16, [INPUTS_16, (":BIAS:VOLT 1,(@5)", None), ("SYST:ERR?", '-222,"Data out of range"'), OK]
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.set_bias(5, 1.0)
        assert info.value.command == ":BIAS:VOLT 1,(@5)"


def test_set_biases_groups_equal_values_in_one_message():
    volts = [2.4] * 16
    volts[3] = 2.5
    volts[15] = -1.0
    with expected_protocol(
        OCC16,
        [INPUTS_16, (":BIAS:VOLT 2.4,(@1:3,5:15);:BIAS:VOLT 2.5,(@4);:BIAS:VOLT -1,(@16)", None), OK],
    ) as inst:
        inst.set_biases(volts)


def test_set_biases_all_equal():
    with expected_protocol(OCC16, [INPUTS_16, (":BIAS:VOLT 0,(@1:16)", None), OK]) as inst:
        inst.set_biases(np.zeros(16))


def test_set_biases_needs_one_value_per_input():
    with expected_protocol(OCC16, [INPUTS_16]) as inst:
        with pytest.raises(ValueOutOfRange, match="16 values"):
            inst.set_biases([1.0] * 15)


@pytest.mark.parametrize("volts", [[1.0] * 15 + [10.5], 3.0, [[1.0, 2.0]]])
def test_set_biases_bad_values_send_nothing(volts):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.set_biases(volts)


def test_get_biases():
    reply = ",".join(f"{v:+.9E}" for v in np.linspace(-1, 1, 16))
    with expected_protocol(OCC16, [INPUTS_16, (":BIAS:VOLT? (@1:16)", reply)]) as inst:
        np.testing.assert_allclose(inst.get_biases(), np.linspace(-1, 1, 16))


# -- loading a program --------------------------------------------------------------------------------


def test_load_program_sends_one_float32_and_one_int16_block():
    heater, codes = small_program()
    with expected_protocol(
        OCC16,
        core() + [(":HEAT:LIM?", "+5.000000000E+00"), (":TILE:SLOT?", "1024"), (":TILE:SLOT 4", None), OK,
                  (b":HEAT:TABL " + block(float32_le(heater)) + b"\n", None), OK,
                  (b":INP:DATA " + block(int16_le(codes)) + b"\n", None), OK],
    ) as inst:
        inst.load_program(heater, codes)


def test_block_layout_is_tile_then_output_then_input():
    heater = np.zeros((1, 2, 3))
    heater[0, 1, 2] = 1.5  # output q=2, input k=3: the last of six float32 values
    codes = np.zeros((1, 1, 3), dtype=np.int16)
    codes[0, 0, 0] = -2
    expected_table = struct.pack("<6f", 0, 0, 0, 0, 0, 1.5)
    expected_codes = struct.pack("<3h", -2, 0, 0)
    assert block(expected_table) == b"#224" + expected_table
    with expected_protocol(
        OCC16,
        core(3, 2) + [(":HEAT:LIM?", "5"), (":TILE:SLOT?", "1"),
                      (b":HEAT:TABL #224" + expected_table + b"\n", None), OK,
                      (b":INP:DATA #16" + expected_codes + b"\n", None), OK],
    ) as inst:
        inst.load_program(heater, codes)


def test_load_program_accepts_big_endian_codes_and_sends_little_endian():
    heater, codes = small_program(tiles=1, slots=2)
    with expected_protocol(
        OCC16,
        core() + [(":HEAT:LIM?", "5"), (":TILE:SLOT?", "2"),
                  (b":HEAT:TABL " + block(float32_le(heater)) + b"\n", None), OK,
                  (b":INP:DATA " + block(int16_le(codes)) + b"\n", None), OK],
    ) as inst:
        inst.load_program(heater, codes.astype(">i2"))


def test_heater_volts_at_the_limit_stay_within_it_in_float32():
    heater = np.full((1, 1, 1), 0.1)  # float32(0.1) is 0.10000000149 > 0.1
    below = float(np.nextafter(np.float32(0.1), np.float32(0)))
    codes = np.zeros((1, 1, 1), dtype=np.int16)
    with expected_protocol(
        OCC16,
        core(1, 1) + [(":HEAT:LIM?", "+1.000000000E-01"), (":TILE:SLOT?", "1"),
                      (b":HEAT:TABL " + block(struct.pack("<f", below)) + b"\n", None), OK,
                      (b":INP:DATA " + block(struct.pack("<h", 0)) + b"\n", None), OK],
    ) as inst:
        inst.load_program(heater, codes)


def test_rejected_heater_table_raises_and_stops_before_the_inputs():
    heater, codes = small_program()
    with expected_protocol(
        OCC16,
        core() + [(":HEAT:LIM?", "5"), (":TILE:SLOT?", "4"),
                  (b":HEAT:TABL " + block(float32_le(heater)) + b"\n", None),
                  ("SYST:ERR?", '-222,"Data out of range"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.load_program(heater, codes)
        assert info.value.codes == [-222]
        assert info.value.command.startswith(":HEAT:TABL <48-byte block")


def test_rejected_slot_count_raises_before_any_block():
    heater, codes = small_program()
    with expected_protocol(
        OCC16,
        core() + [(":HEAT:LIM?", "5"), (":TILE:SLOT?", "1024"), (":TILE:SLOT 4", None),
                  ("SYST:ERR?", '-221,"Settings conflict"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError):
            inst.load_program(heater, codes)


def test_heater_volts_above_the_controller_limit_are_refused_before_any_setting():
    heater, codes = small_program()  # up to 2.75 V
    with expected_protocol(OCC16, core() + [(":HEAT:LIM?", "+2.000000000E+00")]) as inst:
        with pytest.raises(ValueError, match="heater_limit 2 V"):
            inst.load_program(heater, codes)


@pytest.mark.parametrize("heater_shape, codes_shape, words", [
    ((2, 2, 3), (2, 4, 2), "heater_volts has shape"),   # N_in and N_out swapped
    ((2, 3, 2), (2, 4, 3), "input_codes has shape"),    # codes for 3 inputs
])
def test_shapes_must_match_the_core(heater_shape, codes_shape, words):
    with expected_protocol(OCC16, core()) as inst:
        with pytest.raises(ValueError, match=words):
            inst.load_program(np.zeros(heater_shape), np.zeros(codes_shape, dtype=np.int16))


@pytest.mark.parametrize("heater, codes, error, words", [
    (np.zeros((2, 3, 2)), np.zeros((2, 4, 2)), TypeError, "int16"),                       # float codes
    (np.zeros((2, 3, 2)), np.zeros((2, 4, 2), dtype=np.int32), TypeError, "int16"),
    (np.zeros((2, 3, 2)), np.zeros((2, 4, 2), dtype=np.uint16), TypeError, "int16"),
    (np.zeros((2, 3, 2), dtype=complex), np.zeros((2, 4, 2), dtype=np.int16), TypeError, "heater_volts"),
    (np.zeros((2, 3, 2), dtype=bool), np.zeros((2, 4, 2), dtype=np.int16), TypeError, "heater_volts"),
    (np.zeros((3, 2)), np.zeros((2, 4, 2), dtype=np.int16), ValueError, r"heater_volts\[None\]"),
    (np.zeros((2, 3, 2)), np.zeros((8, 2), dtype=np.int16), ValueError, r"input_codes\[None\]"),
    (np.zeros((2, 3, 2)), np.zeros((3, 4, 2), dtype=np.int16), ValueError, "2 tiles"),
    (np.zeros((0, 3, 2)), np.zeros((0, 4, 2), dtype=np.int16), ValueError, "at least one tile"),
    (np.zeros((1, 3, 2)), np.zeros((1, 0, 2), dtype=np.int16), ValueError, "slots"),
    (np.full((1, 3, 2), -0.5), np.zeros((1, 4, 2), dtype=np.int16), ValueError, "-0.5 V"),
    (np.full((1, 3, 2), np.nan), np.zeros((1, 4, 2), dtype=np.int16), ValueError, "NaN"),
    (np.full((1, 3, 2), np.inf), np.zeros((1, 4, 2), dtype=np.int16), ValueError, "infinite"),
])
def test_bad_programs_are_refused_before_anything_is_sent(heater, codes, error, words):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(error, match=words):
            inst.load_program(heater, codes)


# -- running and fetching -----------------------------------------------------------------------------


def test_run_initiates_and_waits_for_opc():
    with expected_protocol(OCC16, [(":INIT", None), ("*OPC?", "1"), OK]) as inst:
        inst.run()


def test_run_refused_by_the_controller_names_init():
    with expected_protocol(
        OCC16,
        [(":INIT", None), ("*OPC?", "1"), ("SYST:ERR?", '-221,"Settings conflict;outputs are off"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.run()
        assert info.value.command == ":INIT"
        assert info.value.codes == [-221]


def _timeout(*args, **kwargs):
    raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)


def test_run_timeout_is_clear_and_restores_the_io_timeout():
    with expected_protocol(OCC16, [(":INIT", None), ("*OPC?", None)]) as inst:
        connection = inst.adapter.connection
        connection.timeout = 20_000
        seen = []

        def slow_read(**kwargs):
            seen.append(connection.timeout)
            _timeout()

        inst.adapter._read = slow_read
        with pytest.raises(OCCTimeoutError, match=r"timeout_s=2\.5 s") as info:
            inst.run(timeout_s=2.5)
        assert isinstance(info.value, TimeoutError)
        assert seen == [2500.0]
        assert connection.timeout == 20_000


@pytest.mark.parametrize("timeout_s", [0, -1, math.nan, math.inf, "long"])
def test_run_refuses_bad_timeouts_before_sending(timeout_s):
    with expected_protocol(OCC16, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.run(timeout_s=timeout_s)


def _fetch_pairs(result_bytes: bytes, tiles=2, slots=4, n_out=3, available=None, terminator=b"\n"):
    available = tiles * slots * n_out if available is None else available
    return [(":CORE:OUTP?", str(n_out)), (":HEAT:TABL:COUN?", str(tiles)), (":TILE:SLOT?", str(slots)),
            (":FETC:DATA:COUN?", str(available)), (":FETC:DATA?", block(result_bytes) + terminator)]


def test_fetch_reads_one_int16_block_as_tiles_slots_outputs():
    expected = (np.arange(24).reshape(2, 4, 3) * 1111 - 13000).astype(np.int16)
    expected[1, 3, 2] = 32767
    with expected_protocol(OCC16, _fetch_pairs(int16_le(expected))) as inst:
        result = inst.fetch()
    assert result.dtype == np.int16 and result.shape == (2, 4, 3)
    np.testing.assert_array_equal(result, expected)


def test_fetch_without_fresh_results_is_clear_and_sends_no_fetch():
    pairs = _fetch_pairs(b"", available=0)[:-1]
    with expected_protocol(OCC16, pairs) as inst:
        with pytest.raises(DriverError, match="run()"):
            inst.fetch()


def test_fetch_count_mismatch():
    pairs = _fetch_pairs(b"", available=12)[:-1]
    with expected_protocol(OCC16, pairs) as inst:
        with pytest.raises(DriverError, match="24"):
            inst.fetch()


@pytest.mark.parametrize("reply", [b"1,2,3\n", b"#0" + bytes(48) + b"\n"])
def test_fetch_refuses_a_reply_that_is_not_a_definite_block(reply):
    pairs = _fetch_pairs(b"")[:-1] + [(":FETC:DATA?", reply)]
    with expected_protocol(OCC16, pairs) as inst:
        with pytest.raises(DriverError, match="definite-length block"):
            inst.fetch()


def test_fetch_checks_the_block_terminator():
    with expected_protocol(OCC16, _fetch_pairs(bytes(48), terminator=b"X")) as inst:
        with pytest.raises(DriverError, match="NL"):
            inst.fetch()


def test_fetch_of_stale_data_reports_the_controller_error():
    pairs = _fetch_pairs(b"")[:-1] + [(":FETC:DATA?", None),
                                      ("SYST:ERR?", '-230,"Data corrupt or stale"'), OK]
    with expected_protocol(OCC16, pairs) as inst:
        original = inst.adapter._read_bytes
        calls = []

        def block_read_times_out(count, *args, **kwargs):
            if count == 2 and not calls:  # the '#<n>' of the block: no reply comes
                calls.append(count)
                _timeout()
            return original(count, *args, **kwargs)

        inst.adapter._read_bytes = block_read_times_out
        with pytest.raises(InstrumentError) as info:
            inst.fetch()
        assert info.value.codes == [-230]
        assert info.value.command == ":FETC:DATA?"


def test_execute_loads_runs_and_fetches():
    heater, codes = small_program(tiles=1, slots=2, n_out=2, n_in=2)
    result = np.array([[[100, -200], [32767, -32767]]], dtype=np.int16)
    with expected_protocol(
        OCC16,
        core(2, 2) + [(":HEAT:LIM?", "5"), (":TILE:SLOT?", "2"),
                      (b":HEAT:TABL " + block(float32_le(heater)) + b"\n", None), OK,
                      (b":INP:DATA " + block(int16_le(codes)) + b"\n", None), OK,
                      (":INIT", None), ("*OPC?", "1"), OK,
                      (":HEAT:TABL:COUN?", "1"), (":TILE:SLOT?", "2"), (":FETC:DATA:COUN?", "4"),
                      (":FETC:DATA?", block(int16_le(result)) + b"\n")],
    ) as inst:
        np.testing.assert_array_equal(inst.execute(heater, codes), result)


def test_codes_convert_to_volts_at_the_present_adc_span_and_centre():
    span = [(":ADC:OFFS?", "0.05"), (":ADC:RANG?", "0.2")]
    with expected_protocol(OCC16, span * 2) as inst:
        assert inst.code_scale() == (0.05, 0.2 / 65536)
        volts = inst.to_volts(np.array([[-32767, 0, 16384]], dtype=np.int16))
    assert volts.dtype == np.float64
    np.testing.assert_array_equal(volts, 0.05 + np.array([[-32767, 0, 16384]]) * (0.2 / 65536))
