"""Protocol tests of the Keysight M8195A driver: exact SCPI, error polls, binary upload."""

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.keysight.m8195a import (
    ArmSource,
    DACMode,
    KeysightM8195A,
    MemoryMode,
    pad_codes,
    waveform_to_codes,
)

OK = ("SYST:ERR?", '0,"No error"')
CHANNELS = (1, 2, 3, 4)


# -- instrument-wide settings --------------------------------------------------------------------


@pytest.mark.parametrize("rate, text", [(53.76e9, "53760000000"), (64e9, "64000000000"), (65e9, "65000000000")])
def test_sample_rate_set(rate, text):
    with expected_protocol(KeysightM8195A, [(f":FREQ:RAST {text}", None), OK]) as inst:
        inst.sample_rate = rate


def test_sample_rate_get():
    with expected_protocol(KeysightM8195A, [(":FREQ:RAST?", "6.4000000000E+10")]) as inst:
        assert inst.sample_rate == 64e9


@pytest.mark.parametrize("rate", [53.7e9, 65.1e9, 0])
def test_sample_rate_out_of_range_sends_nothing(rate):
    with expected_protocol(KeysightM8195A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.sample_rate = rate


@pytest.mark.parametrize("mode", list(DACMode))
def test_dac_mode(mode):
    with expected_protocol(
        KeysightM8195A, [(f":INST:DACM {mode.value}", None), OK, (":INST:DACM?", mode.value)]
    ) as inst:
        inst.dac_mode = mode
        assert inst.dac_mode is mode


@pytest.mark.parametrize("given, sent", [("sing", "SING"), ("DCD", "DCD"), ("dual_marker", "DCM"), ("FOUR", "FOUR")])
def test_dac_mode_accepts_scpi_values_and_names(given, sent):
    with expected_protocol(KeysightM8195A, [(f":INST:DACM {sent}", None), OK]) as inst:
        inst.dac_mode = given


@pytest.mark.parametrize("bad", ["QUAD", 4, None])
def test_dac_mode_rejects_unknown_before_sending(bad):
    with expected_protocol(KeysightM8195A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.dac_mode = bad


@pytest.mark.parametrize("divider", [1, 2, 4])
def test_extended_memory_divider(divider):
    with expected_protocol(
        KeysightM8195A,
        [(f":INST:MEM:EXT:RDIV DIV{divider}", None), OK, (":INST:MEM:EXT:RDIV?", f"DIV{divider}")],
    ) as inst:
        inst.extended_memory_divider = divider
        assert inst.extended_memory_divider == divider


@pytest.mark.parametrize("prop, header", [("continuous", ":INIT:CONT"), ("gated", ":INIT:GATE")])
@pytest.mark.parametrize("state, text", [(True, "1"), (False, "0")])
def test_trigger_mode_flags(prop, header, state, text):
    with expected_protocol(KeysightM8195A, [(f"{header} {text}", None), OK, (f"{header}?", text)]) as inst:
        setattr(inst, prop, state)
        assert getattr(inst, prop) is state


@pytest.mark.parametrize("source", list(ArmSource))
def test_arm_source(source):
    with expected_protocol(
        KeysightM8195A, [(f":ARM:TRIG:SOUR {source.value}", None), OK, (":ARM:TRIG:SOUR?", source.value)]
    ) as inst:
        inst.arm_source = source
        assert inst.arm_source is source


@pytest.mark.parametrize("method, command", [("run", ":INIT:IMM"), ("stop", ":ABOR"), ("send_trigger", ":TRIG:BEG")])
def test_run_control(method, command):
    with expected_protocol(KeysightM8195A, [(command, None), OK]) as inst:
        getattr(inst, method)()


def test_run_raises_on_instrument_error():
    with expected_protocol(
        KeysightM8195A,
        [(":INIT:IMM", None), ("SYST:ERR?", '-221,"Settings conflict;no segment"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.run()
        assert info.value.codes == [-221]
        assert info.value.command == ":INIT:IMM"


def test_shutdown_stops_and_opens_every_output():
    pairs = [(":ABOR", None), OK]
    for ch in CHANNELS:
        pairs += [(f":OUTP{ch} 0", None), OK]
    with expected_protocol(KeysightM8195A, pairs) as inst:
        inst.shutdown()


# -- channel levels and relay ------------------------------------------------------------------------


@pytest.mark.parametrize("ch", CHANNELS)
@pytest.mark.parametrize("value, text", [(0.075, "0.075"), (0.5, "0.5"), (1.0, "1")])
def test_amplitude(ch, value, text):
    with expected_protocol(
        KeysightM8195A, [(f":VOLT{ch} {text}", None), OK, (f":VOLT{ch}?", f"{value:.10E}")]
    ) as inst:
        inst.channels[ch].amplitude = value
        assert inst.channels[ch].amplitude == pytest.approx(value)


@pytest.mark.parametrize("value", [0.07, 1.01, -0.5])
def test_amplitude_out_of_range_sends_nothing(value):
    with expected_protocol(KeysightM8195A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.channels[1].amplitude = value


def test_amplitude_rejected_by_instrument_raises():
    with expected_protocol(
        KeysightM8195A,
        [(":VOLT2 0.5", None), ("SYST:ERR?", '-222,"Data out of range"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.channels[2].amplitude = 0.5
        assert info.value.codes == [-222]


@pytest.mark.parametrize("ch", CHANNELS)
@pytest.mark.parametrize("value, text", [(-1.0, "-1"), (0.0, "0"), (0.25, "0.25"), (1.0, "1")])
def test_offset(ch, value, text):
    with expected_protocol(
        KeysightM8195A, [(f":VOLT{ch}:OFFS {text}", None), OK, (f":VOLT{ch}:OFFS?", f"{value:.10E}")]
    ) as inst:
        inst.channels[ch].offset = value
        assert inst.channels[ch].offset == pytest.approx(value)


@pytest.mark.parametrize("value", [-1.01, 1.5])
def test_offset_out_of_range_sends_nothing(value):
    with expected_protocol(KeysightM8195A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.channels[3].offset = value


@pytest.mark.parametrize("ch", CHANNELS)
@pytest.mark.parametrize("state, text", [(True, "1"), (False, "0")])
def test_output_enabled(ch, state, text):
    with expected_protocol(
        KeysightM8195A, [(f":OUTP{ch} {text}", None), OK, (f":OUTP{ch}?", text)]
    ) as inst:
        inst.channels[ch].output_enabled = state
        assert inst.channels[ch].output_enabled is state


@pytest.mark.parametrize("mode", [MemoryMode.INTERNAL, MemoryMode.EXTENDED])
def test_memory_mode(mode):
    with expected_protocol(
        KeysightM8195A, [(f":TRAC4:MMOD {mode.value}", None), OK, (":TRAC4:MMOD?", mode.value)]
    ) as inst:
        inst.channels[4].memory_mode = mode
        assert inst.channels[4].memory_mode is mode


def test_memory_mode_none_is_query_only():
    with expected_protocol(KeysightM8195A, [(":TRAC2:MMOD?", "NONE")]) as inst:
        assert inst.channels[2].memory_mode is MemoryMode.NONE
        with pytest.raises(ValueOutOfRange):
            inst.channels[2].memory_mode = MemoryMode.NONE


def test_selected_segment():
    with expected_protocol(KeysightM8195A, [(":TRAC1:SEL 7", None), OK, (":TRAC1:SEL?", "7")]) as inst:
        inst.channels[1].selected_segment = 7
        assert inst.channels[1].selected_segment == 7


@pytest.mark.parametrize("reply, expected", [("0,0", {}), ("1,1280", {1: 1280}), ("1,2560,3,1280", {1: 2560, 3: 1280})])
def test_segment_catalog(reply, expected):
    with expected_protocol(KeysightM8195A, [(":TRAC2:CAT?", reply)]) as inst:
        assert inst.channels[2].segments == expected


# -- segments and binary upload --------------------------------------------------------------------


def test_define_and_delete_segments():
    with expected_protocol(
        KeysightM8195A,
        [(":TRAC3:DEF 2,2560", None), OK, (":TRAC3:DEF 4,1280,-5", None), OK,
         (":TRAC3:DEL 2", None), OK, (":TRAC3:DEL:ALL", None), OK],
    ) as inst:
        ch = inst.channels[3]
        ch.define_segment(2, 2560)
        ch.define_segment(4, 1280, init_value=-5)
        ch.delete_segment(2)
        ch.delete_all_segments()


@pytest.mark.parametrize("length", [1024, 1300, 0])
def test_define_segment_refuses_bad_lengths_before_sending(length):
    with expected_protocol(KeysightM8195A, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.channels[1].define_segment(1, length)


def _block(codes: np.ndarray) -> bytes:
    payload = codes.astype(np.int8).tobytes()
    digits = str(len(payload)).encode()
    return b"#" + str(len(digits)).encode() + digits + payload


def test_upload_waveform_sends_one_binary_block():
    t = np.arange(1280)
    samples = np.sin(2 * np.pi * t / 128)
    codes = np.rint(127 * samples).astype(np.int8)
    with expected_protocol(
        KeysightM8195A,
        [(":TRAC1:CAT?", "0,0"), (":TRAC1:DEF 1,1280", None), OK,
         (b":TRAC1:DATA 1,0," + _block(codes) + b"\n", None), OK,
         (":TRAC1:SEL 1", None), OK],
    ) as inst:
        inst.channels[1].upload_waveform(samples)


def test_upload_reuses_a_segment_of_the_same_length():
    samples = np.linspace(-1, 1, 2560)
    codes = np.rint(127 * samples).astype(np.int8)
    assert codes[0] == -127 and codes[-1] == 127
    with expected_protocol(
        KeysightM8195A,
        [(":TRAC2:CAT?", "1,2560"), (b":TRAC2:DATA 1,0," + _block(codes) + b"\n", None), OK,
         (":TRAC2:SEL 1", None), OK],
    ) as inst:
        inst.channels[2].upload_waveform(samples)


def test_upload_redefines_a_segment_of_another_length():
    samples = np.zeros(1280)
    with expected_protocol(
        KeysightM8195A,
        [(":TRAC1:CAT?", "1,2560"), (":TRAC1:DEL 1", None), OK, (":TRAC1:DEF 1,1280", None), OK,
         (b":TRAC1:DATA 1,0," + _block(np.zeros(1280)) + b"\n", None), OK, (":TRAC1:SEL 1", None), OK],
    ) as inst:
        inst.channels[1].upload_waveform(samples)


def test_upload_error_reply_raises_with_the_command():
    samples = np.zeros(1280)
    with expected_protocol(
        KeysightM8195A,
        [(":TRAC1:CAT?", "0,0"), (":TRAC1:DEF 1,1280", None),
         ("SYST:ERR?", '-221,"Settings conflict;only while stopped"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.channels[1].upload_waveform(samples)
        assert info.value.codes == [-221]
        assert info.value.command == ":TRAC1:DEF 1,1280"


def test_a_refused_segment_write_is_reported_with_its_block_size_not_its_content():
    codes = np.array([1, 2, 3], dtype=np.int8)
    with expected_protocol(
        KeysightM8195A,
        [(b":TRAC1:DATA 1,0,#13\x01\x02\x03\n", None), ("SYST:ERR?", '-222,"Data out of range"'), OK],
    ) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.channels[1].write_segment(1, codes)
        assert info.value.command == ":TRAC1:DATA 1,0,<3-byte block>"


@pytest.mark.parametrize("bad", [np.full(1280, 1.01), np.full(1280, np.nan), np.array([]), np.zeros((2, 1280))])
def test_upload_refuses_bad_samples_before_sending(bad):
    with expected_protocol(KeysightM8195A, []) as inst:
        with pytest.raises(ValueError):
            inst.channels[1].upload_waveform(bad)


# -- sample conversion and segment padding -------------------------------------------------------------


def test_codes_are_rounded_full_scale_127():
    samples = np.array([-1.0, -0.5, 0.0, 0.004, 0.5, 1.0] * 256)
    codes = waveform_to_codes(samples, pad=None)
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(codes[:6], [-127, -64, 0, 1, 64, 127])


@pytest.mark.parametrize("n, repeats", [(1000, 32), (300, 64), (256, 5), (1280, 1), (2560, 1), (640, 2)])
def test_repeat_padding_keeps_the_looped_waveform(n, repeats):
    codes = (np.arange(n) % 251 - 125).astype(np.int8)
    padded = pad_codes(codes, "repeat")
    assert padded.size == n * repeats
    assert padded.size % 256 == 0 and padded.size >= 1280
    np.testing.assert_array_equal(padded, np.tile(codes, repeats))


@pytest.mark.parametrize("n, length", [(1000, 1280), (1281, 1536), (100, 1280)])
def test_zero_padding(n, length):
    codes = np.ones(n, dtype=np.int8)
    padded = pad_codes(codes, "zero")
    assert padded.size == length
    np.testing.assert_array_equal(padded[:n], codes)
    assert not padded[n:].any()


def test_no_padding_refuses_invalid_lengths():
    with pytest.raises(ValueError, match="multiple of 256"):
        pad_codes(np.zeros(1000, dtype=np.int8), None)
    assert pad_codes(np.zeros(1536, dtype=np.int8), None).size == 1536


def test_repeat_padding_refuses_huge_results():
    with pytest.raises(ValueError, match="pad='zero'"):
        pad_codes(np.zeros(999_999, dtype=np.int8), "repeat")
