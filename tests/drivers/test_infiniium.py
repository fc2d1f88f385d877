"""Protocol tests of the Keysight Infiniium driver: the exact SCPI it sends and how it reads replies."""

from __future__ import annotations

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.errors import DriverError, InstrumentError, ValueOutOfRange
from drivers.keysight.infiniium import (
    AcquisitionMode,
    Coupling,
    KeysightInfiniium,
    Units,
    WaveformFormat,
    WaveformType,
    parse_preamble,
    time_axis,
)

OK = (":SYSTem:ERRor? STRing", '0,"No error"')

#: A preamble as the Infiniium answers it: WORD, RAW, 4 points, 64 GSa/s, 250 mV range, 50 mV offset.
PREAMBLE = ('2,1,4,1,1.5625E-11,-3.2E-08,0,3.814697265625E-06,5.0E-02,0,2,1.0E-07,-5.0E-08,'
            '2.5E-01,5.0E-02,"01 JAN 2025","00:00:00:00","UXR1104A:MY12345678",0,100,2,1,1.1E+11,0.0E+00')
CODES = np.array([-32768, -64, 0, 32704], dtype=np.int16)


def test_init_sends_nothing():
    with expected_protocol(KeysightInfiniium, []) as inst:
        assert set(inst.channels) == {1, 2, 3, 4}
        assert inst.ch_3.id == 3


# -- channel settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("ch", [1, 2, 3, 4])
@pytest.mark.parametrize("value, text", [(0.016, "0.016"), (0.25, "0.25"), (8, "8")])
def test_channel_range_setter(ch, value, text):
    with expected_protocol(KeysightInfiniium, [(f":CHANnel{ch}:RANGe {text}", None), OK]) as inst:
        inst.channels[ch].range = value


@pytest.mark.parametrize("ch", [1, 4])
def test_channel_range_getter(ch):
    with expected_protocol(KeysightInfiniium, [(f":CHANnel{ch}:RANGe?", "2.5E-01")]) as inst:
        assert inst.channels[ch].range == 0.25


def test_channel_scale_offset_display():
    with expected_protocol(KeysightInfiniium, [
        (":CHANnel2:SCALe 0.01", None), OK,
        (":CHANnel2:SCALe?", "1.0E-02"),
        (":CHANnel2:OFFSet -0.05", None), OK,
        (":CHANnel2:OFFSet?", "-5.0E-02"),
        (":CHANnel2:DISPlay 1", None), OK,
        (":CHANnel2:DISPlay?", "0"),
    ]) as inst:
        inst.ch_2.scale = 0.01
        assert inst.ch_2.scale == 0.01
        inst.ch_2.offset = -0.05
        assert inst.ch_2.offset == -0.05
        inst.ch_2.display = True
        assert inst.ch_2.display is False


@pytest.mark.parametrize("value, reply", [("DC50", "DC50"), ("DC", "DC"), ("LFR1", "LFR1")])
def test_channel_input(value, reply):
    with expected_protocol(KeysightInfiniium, [
        (f":CHANnel1:INPut {value}", None), OK, (":CHANnel1:INPut?", reply),
    ]) as inst:
        inst.ch_1.input = value
        assert inst.ch_1.input == value


def test_channel_input_dcfifty_reply_reads_as_dc50():
    with expected_protocol(KeysightInfiniium, [(":CHANnel1:INPut?", "DCFifty")]) as inst:
        assert inst.ch_1.input == "DC50"


def test_channel_trigger_level():
    with expected_protocol(KeysightInfiniium, [
        (":TRIGger:LEVel CHANnel3,0.125", None), OK, (":TRIGger:LEVel? CHANnel3", "1.25E-01"),
    ]) as inst:
        inst.ch_3.trigger_level = 0.125
        assert inst.ch_3.trigger_level == 0.125


@pytest.mark.parametrize("attr, value", [
    ("range", 0.001), ("range", 41.0), ("scale", 6.0), ("offset", 41.0), ("input", "DC75"),
    ("trigger_level", -50.0), ("display", 2),
])
def test_channel_out_of_range_refused_before_sending(attr, value):
    with expected_protocol(KeysightInfiniium, []) as inst:
        with pytest.raises(ValueOutOfRange):
            setattr(inst.ch_1, attr, value)


# -- acquisition, timebase, trigger -----------------------------------------------------------------


@pytest.mark.parametrize("value, text", [(256e9, "2.56e+11"), (64e9, "6.4e+10"), (1e6, "1e+06")])
def test_sample_rate_setter(value, text):
    with expected_protocol(KeysightInfiniium, [(f":ACQuire:SRATe:ANALog {text}", None), OK]) as inst:
        inst.sample_rate = value


def test_sample_rate_and_record_length_getters():
    with expected_protocol(KeysightInfiniium, [
        (":ACQuire:SRATe:ANALog?", "1.024E+11"),
        (":ACQuire:POINts:ANALog?", "1000000"),
    ]) as inst:
        assert inst.sample_rate == 102.4e9
        assert inst.record_length == 1_000_000


@pytest.mark.parametrize("value", [16, 4096, 1_000_000])
def test_record_length_setter(value):
    with expected_protocol(KeysightInfiniium, [(f":ACQuire:POINts:ANALog {value}", None), OK]) as inst:
        inst.record_length = value


@pytest.mark.parametrize("attr, value", [
    ("sample_rate", 300e9), ("sample_rate", 0.5), ("record_length", 15), ("record_length", 1000.5),
    ("timebase_scale", 30.0), ("timebase_position", 300.0), ("timebase_reference", "MIDDLE"),
    ("trigger_source", 5), ("trigger_slope", "UP"), ("trigger_sweep", "NORMAL"), ("trigger_mode", "GLITCH"),
    ("aux_trigger_level", 6.0), ("waveform_source", 0), ("waveform_format", "FLOAT"),
    ("waveform_byteorder", "LITTLE"),
])
def test_out_of_range_refused_before_sending(attr, value):
    with expected_protocol(KeysightInfiniium, []) as inst:
        with pytest.raises(ValueOutOfRange):
            setattr(inst, attr, value)


def test_auto_switches():
    with expected_protocol(KeysightInfiniium, [
        (":ACQuire:SRATe:ANALog:AUTO 1", None), OK, (":ACQuire:SRATe:ANALog:AUTO?", "1"),
        (":ACQuire:POINts:AUTO 0", None), OK, (":ACQuire:POINts:AUTO?", "0"),
    ]) as inst:
        inst.acquire_sample_rate_auto = True
        assert inst.acquire_sample_rate_auto is True
        inst.acquire_points_auto = False
        assert inst.acquire_points_auto is False


def test_timebase():
    with expected_protocol(KeysightInfiniium, [
        (":TIMebase:SCALe 1e-09", None), OK, (":TIMebase:SCALe?", "1.0E-09"),
        (":TIMebase:POSition -2e-09", None), OK, (":TIMebase:POSition?", "-2.0E-09"),
        (":TIMebase:REFerence LEFT", None), OK, (":TIMebase:REFerence?", "CENT"),
    ]) as inst:
        inst.timebase_scale = 1e-9
        assert inst.timebase_scale == 1e-9
        inst.timebase_position = -2e-9
        assert inst.timebase_position == -2e-9
        inst.timebase_reference = "LEFT"
        assert inst.timebase_reference == "CENTER"


@pytest.mark.parametrize("source, text, reply", [(1, "CHANnel1", "CHAN1"), (4, "CHANnel4", "CHANNEL4"),
                                                 ("AUX", "AUX", "AUX")])
def test_trigger_source(source, text, reply):
    with expected_protocol(KeysightInfiniium, [
        (f":TRIGger:EDGE:SOURce {text}", None), OK, (":TRIGger:EDGE:SOURce?", reply),
    ]) as inst:
        inst.trigger_source = source
        assert inst.trigger_source == source


@pytest.mark.parametrize("slope, text, reply", [
    ("POSITIVE", "POSitive", "POS"), ("NEGATIVE", "NEGative", "NEG"), ("EITHER", "EITHer", "EITH"),
])
def test_trigger_slope(slope, text, reply):
    with expected_protocol(KeysightInfiniium, [
        (f":TRIGger:EDGE:SLOPe {text}", None), OK, (":TRIGger:EDGE:SLOPe?", reply),
    ]) as inst:
        inst.trigger_slope = slope
        assert inst.trigger_slope == slope


def test_trigger_mode_sweep_and_aux_level():
    with expected_protocol(KeysightInfiniium, [
        (":TRIGger:MODE EDGE", None), OK, (":TRIGger:MODE?", "EDGE"),
        (":TRIGger:SWEep TRIGgered", None), OK, (":TRIGger:SWEep?", "TRIG"),
        (":TRIGger:LEVel AUX,0.25", None), OK, (":TRIGger:LEVel? AUX", "2.5E-01"),
    ]) as inst:
        inst.trigger_mode = "EDGE"
        assert inst.trigger_mode == "EDGE"
        inst.trigger_sweep = "TRIGGERED"
        assert inst.trigger_sweep == "TRIGGERED"
        inst.aux_trigger_level = 0.25
        assert inst.aux_trigger_level == 0.25


def test_setting_rejected_by_instrument_raises_instrument_error():
    with expected_protocol(KeysightInfiniium, [
        (":CHANnel1:RANGe 2", None),
        (":SYSTem:ERRor? STRing", '-222,"Data out of range"'),
        (":SYSTem:ERRor? STRing", '0,"No error"'),
    ]) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.ch_1.range = 2
        assert info.value.codes == [-222]
        assert info.value.command == ":CHANnel1:RANGe 2"


def test_set_vertical_sends_range_offset_display():
    with expected_protocol(KeysightInfiniium, [
        (":CHANnel2:RANGe 0.2", None), OK, (":CHANnel2:OFFSet 0.05", None), OK,
        (":CHANnel2:DISPlay 1", None), OK,
    ]) as inst:
        inst.set_vertical(2, 0.2, 0.05)


# -- waveform settings and data -------------------------------------------------------------------------


def test_waveform_settings():
    with expected_protocol(KeysightInfiniium, [
        (":WAVeform:SOURce CHANnel2", None), OK, (":WAVeform:SOURce?", "CHAN2"),
        (":WAVeform:FORMat WORD", None), OK, (":WAVeform:FORMat?", "WORD"),
        (":WAVeform:FORMat ASCii", None), OK, (":WAVeform:FORMat?", "ASC"),
        (":WAVeform:BYTeorder LSBFirst", None), OK, (":WAVeform:BYTeorder?", "LSBF"),
        (":WAVeform:STReaming ON", None), OK, (":WAVeform:STReaming?", "1"),
    ]) as inst:
        inst.waveform_source = 2
        assert inst.waveform_source == 2
        inst.waveform_format = "WORD"
        assert inst.waveform_format == "WORD"
        inst.waveform_format = "ASCII"
        assert inst.waveform_format == "ASCII"
        inst.waveform_byteorder = "LSBFIRST"
        assert inst.waveform_byteorder == "LSBFIRST"
        inst.waveform_streaming = True
        assert inst.waveform_streaming is True


def test_scaling_queries():
    with expected_protocol(KeysightInfiniium, [
        (":WAVeform:XINCrement?", "1.5625E-11"), (":WAVeform:XORigin?", "-3.2E-08"),
        (":WAVeform:YINCrement?", "3.814697265625E-06"), (":WAVeform:YORigin?", "5.0E-02"),
        (":WAVeform:POINts?", "4"),
    ]) as inst:
        assert inst.x_increment == 1.5625e-11
        assert inst.x_origin == -3.2e-8
        assert inst.y_increment == 3.814697265625e-06
        assert inst.y_origin == 0.05
        assert inst.waveform_points == 4


def test_preamble_parses_all_fields():
    pre = parse_preamble(PREAMBLE)
    assert pre["format"] is WaveformFormat.WORD
    assert pre["type"] is WaveformType.RAW
    assert pre["points"] == 4 and pre["count"] == 1
    assert pre["x_increment"] == 1.5625e-11 and pre["x_origin"] == -3.2e-8 and pre["x_reference"] == 0
    assert pre["y_increment"] == 3.814697265625e-06 and pre["y_origin"] == 0.05 and pre["y_reference"] == 0
    assert pre["coupling"] is Coupling.DCFIFTY
    assert pre["x_display_range"] == 1e-7 and pre["x_display_origin"] == -5e-8
    assert pre["y_display_range"] == 0.25 and pre["y_display_origin"] == 0.05
    assert pre["date"] == "01 JAN 2025" and pre["time"] == "00:00:00:00"
    assert pre["frame_model"] == "UXR1104A:MY12345678"
    assert pre["acquisition_mode"] is AcquisitionMode.RTIME and pre["completion"] == 100
    assert pre["x_units"] is Units.SECOND and pre["y_units"] is Units.VOLT
    assert pre["max_bandwidth"] == 110e9 and pre["min_bandwidth"] == 0.0


def test_preamble_with_too_few_fields_refused():
    with pytest.raises(ValueError):
        parse_preamble("2,1,4,1")


def test_preamble_query():
    with expected_protocol(KeysightInfiniium, [(":WAVeform:PREamble?", PREAMBLE)]) as inst:
        pre = inst.waveform_preamble
        assert pre["points"] == 4 and pre["frame_model"] == "UXR1104A:MY12345678"


def test_time_axis_from_preamble():
    t = time_axis(parse_preamble(PREAMBLE))
    np.testing.assert_allclose(t, -3.2e-8 + np.arange(4) * 1.5625e-11, rtol=0, atol=1e-22)


@pytest.mark.parametrize("order, dtype", [("LSBFIRST", "<i2"), ("MSBFIRST", ">i2")])
def test_word_definite_block(order, dtype):
    payload = CODES.astype(dtype).tobytes()
    with expected_protocol(KeysightInfiniium, [
        (":WAVeform:DATA?", b"#18" + payload + b"\n"),
    ]) as inst:
        codes = inst.read_waveform_codes(parse_preamble(PREAMBLE), order)
        np.testing.assert_array_equal(codes, CODES)


def test_word_streaming_block_uses_preamble_length():
    payload = CODES.astype("<i2").tobytes()
    with expected_protocol(KeysightInfiniium, [(":WAVeform:DATA?", b"#0" + payload + b"\n")]) as inst:
        np.testing.assert_array_equal(inst.read_waveform_codes(parse_preamble(PREAMBLE)), CODES)


def test_byte_block():
    pre = parse_preamble(PREAMBLE.replace("2,1,4", "1,1,3", 1))
    with expected_protocol(KeysightInfiniium, [(":WAVeform:DATA?", b"#13\x80\xff\x7f\n")]) as inst:
        np.testing.assert_array_equal(inst.read_waveform_codes(pre), [-128, -1, 127])


def test_block_without_terminator_raises():
    payload = CODES.astype("<i2").tobytes()
    with expected_protocol(KeysightInfiniium, [(":WAVeform:DATA?", b"#18" + payload + b"X")]) as inst:
        with pytest.raises(DriverError):
            inst.read_waveform_codes(parse_preamble(PREAMBLE))


def test_read_waveform_scales_word_codes():
    payload = CODES.astype("<i2").tobytes()
    with expected_protocol(KeysightInfiniium, [
        (":WAVeform:SOURce CHANnel1", None), OK,
        (":WAVeform:PREamble?", PREAMBLE),
        (":WAVeform:DATA?", b"#18" + payload + b"\n"),
    ]) as inst:
        t, v = inst.read_waveform(1)
    yinc = 0.25 / 65536
    np.testing.assert_allclose(v, CODES * yinc + 0.05, rtol=0, atol=1e-15)
    assert v[0] == pytest.approx(0.05 - 0.125) and v[3] == pytest.approx(0.05 + 0.125 - 0.25 / 1024)
    np.testing.assert_allclose(t, -3.2e-8 + np.arange(4) * 1.5625e-11, rtol=0, atol=1e-22)


def test_read_waveform_ascii():
    pre = PREAMBLE.replace("2,1,4", "0,1,3", 1)
    text = b"-1.0000000000000000E-01,5.0E-02,1.25E-01"
    with expected_protocol(KeysightInfiniium, [
        (":WAVeform:SOURce CHANnel1", None), OK,
        (":WAVeform:PREamble?", pre),
        (":WAVeform:DATA?", b"#2%d%s\n" % (len(text), text)),
    ]) as inst:
        _, v = inst.read_waveform(1)
    np.testing.assert_array_equal(v, [-0.1, 0.05, 0.125])


def test_read_waveform_without_data_raises():
    empty = PREAMBLE.replace("2,1,4,1", "2,1,0,0", 1)
    with expected_protocol(KeysightInfiniium, [
        (":WAVeform:SOURce CHANnel3", None), OK, (":WAVeform:PREamble?", empty),
    ]) as inst:
        with pytest.raises(DriverError):
            inst.read_waveform(3)


def test_digitize_waits_and_checks_errors():
    with expected_protocol(KeysightInfiniium, [
        (":DIGitize CHANnel1,CHANnel3", None), ("*OPC?", "1"), OK,
        (":DIGitize", None), ("*OPC?", "1"),
        (":SYSTem:ERRor? STRing", '-200,"Execution error;no trigger"'), OK,
    ]) as inst:
        inst.digitize([1, 3])
        with pytest.raises(InstrumentError) as info:
            inst.digitize()
        assert info.value.codes == [-200]


def test_capture_protocol():
    """One :DIGitize of both channels, then one WORD transfer per channel, scaled by its preamble."""
    second = PREAMBLE.replace("5.0E-02,0,2,1.0E-07", "-1.0E-01,0,2,1.0E-07", 1)
    payload1 = CODES.astype("<i2").tobytes()
    payload2 = CODES[::-1].astype("<i2").tobytes()
    with expected_protocol(KeysightInfiniium, [
        (":WAVeform:FORMat WORD", None), OK,
        (":WAVeform:BYTeorder LSBFirst", None), OK,
        (":WAVeform:STReaming ON", None), OK,
        (":DIGitize CHANnel1,CHANnel2", None), ("*OPC?", "1"), OK,
        (":WAVeform:SOURce CHANnel1", None), OK,
        (":WAVeform:PREamble?", PREAMBLE),
        (":WAVeform:DATA?", b"#0" + payload1 + b"\n"),
        (":WAVeform:SOURce CHANnel2", None), OK,
        (":WAVeform:PREamble?", second),
        (":WAVeform:DATA?", b"#0" + payload2 + b"\n"),
    ]) as inst:
        t, volts = inst.capture([1, 2])
    yinc = 0.25 / 65536
    assert set(volts) == {1, 2}
    np.testing.assert_allclose(volts[1], CODES * yinc + 0.05, rtol=0, atol=1e-15)
    np.testing.assert_allclose(volts[2], CODES[::-1] * yinc - 0.1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(t, -3.2e-8 + np.arange(4) * 1.5625e-11, rtol=0, atol=1e-22)


@pytest.mark.parametrize("channels", [[], [0], [5], ["AUX"]])
def test_capture_bad_channels_refused_before_sending(channels):
    with expected_protocol(KeysightInfiniium, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.capture(channels)


def test_set_edge_trigger_on_aux_rising():
    with expected_protocol(KeysightInfiniium, [
        (":TRIGger:MODE EDGE", None), OK,
        (":TRIGger:EDGE:SOURce AUX", None), OK,
        (":TRIGger:EDGE:SLOPe POSitive", None), OK,
        (":TRIGger:LEVel AUX,0.5", None), OK,
    ]) as scope:
        scope.set_edge_trigger("AUX", 0.5)


def test_set_edge_trigger_on_a_channel_falling():
    with expected_protocol(KeysightInfiniium, [
        (":TRIGger:MODE EDGE", None), OK,
        (":TRIGger:EDGE:SOURce CHANnel2", None), OK,
        (":TRIGger:EDGE:SLOPe NEGative", None), OK,
        (":TRIGger:LEVel CHANnel2,0.01", None), OK,
    ]) as scope:
        scope.set_edge_trigger(2, 0.01, rising=False)
