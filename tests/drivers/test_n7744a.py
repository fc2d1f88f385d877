"""Protocol tests of the Keysight N7744A/N7745A driver: exact SCPI, error polls, validators."""

from __future__ import annotations

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.errors import DriverError, InstrumentError, ValueOutOfRange
from drivers.keysight.n7744a import KeysightN7744A, KeysightN7744AChannel, KeysightN7745A, PowerUnit

OK = ("SYST:ERR?", '0,"No error"')
PORTS = (1, 2, 3, 4)


def test_construction_sends_nothing_and_has_four_ports():
    with expected_protocol(KeysightN7744A, []) as pm:
        assert sorted(pm.channels) == [1, 2, 3, 4]
        assert pm.ch_3.id == 3


def test_n7745a_has_eight_ports():
    with expected_protocol(KeysightN7745A, []) as pm:
        assert sorted(pm.channels) == list(range(1, 9))
        assert pm.name == "Keysight N7745A"


def test_channel_class_carries_the_role_members():
    for member in ("wavelength", "averaging_time", "read_power"):
        assert hasattr(KeysightN7744AChannel, member)


# -- wavelength ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("metres, sent", [(1250e-9, "1.2500000E-06"), (1550.123e-9, "1.5501230E-06"),
                                           (1650e-9, "1.6500000E-06")])
def test_wavelength_set(port, metres, sent):
    with expected_protocol(KeysightN7744A, [(f":SENS{port}:POW:WAV {sent}", None), OK]) as pm:
        pm.channels[port].wavelength = metres


@pytest.mark.parametrize("port", PORTS)
def test_wavelength_get(port):
    with expected_protocol(KeysightN7744A, [(f":SENS{port}:POW:WAV?", "+1.31000000E-006")]) as pm:
        assert pm.channels[port].wavelength == pytest.approx(1310e-9)


@pytest.mark.parametrize("metres", [1249e-9, 1651e-9, 0.0, -1.55e-6])
def test_wavelength_out_of_range_raises_before_sending(metres):
    with expected_protocol(KeysightN7744A, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.ch_1.wavelength = metres


# -- averaging time -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, sent", [(1e-6, "1.000000E-06"), (1e-3, "1.000000E-03"), (10.0, "1.000000E+01")])
def test_averaging_time_set(seconds, sent):
    with expected_protocol(KeysightN7744A, [(f":SENS2:POW:ATIM {sent}", None), OK]) as pm:
        pm.ch_2.averaging_time = seconds


def test_averaging_time_get():
    with expected_protocol(KeysightN7744A, [(":SENS4:POW:ATIM?", "+1.00000000E-001")]) as pm:
        assert pm.ch_4.averaging_time == pytest.approx(0.1)


@pytest.mark.parametrize("seconds", [0.0, 9e-7, 10.5])
def test_averaging_time_out_of_range_raises_before_sending(seconds):
    with expected_protocol(KeysightN7744A, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.ch_1.averaging_time = seconds


# -- unit, range, trigger -----------------------------------------------------------------------------


@pytest.mark.parametrize("unit, code", [(PowerUnit.DBM, 0), (PowerUnit.W, 1)])
def test_power_unit_set_and_get(unit, code):
    with expected_protocol(KeysightN7744A, [(f":SENS1:POW:UNIT {code}", None), OK,
                                            (":SENS1:POW:UNIT?", f"+{code}")]) as pm:
        pm.ch_1.power_unit = unit
        assert pm.ch_1.power_unit is unit


def test_power_unit_refuses_other_values():
    with expected_protocol(KeysightN7744A, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.ch_1.power_unit = 2


@pytest.mark.parametrize("dbm", [-30, -20, -10, 0, 10])
def test_range_set(dbm):
    with expected_protocol(KeysightN7744A, [(f":SENS3:POW:RANG {dbm}DBM", None), OK]) as pm:
        pm.ch_3.range_dbm = dbm


@pytest.mark.parametrize("dbm", [-40, -15, 20])
def test_range_refuses_values_the_meter_lacks(dbm):
    with expected_protocol(KeysightN7744A, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.ch_3.range_dbm = dbm


def test_range_get():
    with expected_protocol(KeysightN7744A, [(":SENS1:POW:RANG?", "-2.00000000E+001")]) as pm:
        assert pm.ch_1.range_dbm == -20


@pytest.mark.parametrize("state, code", [(True, 1), (False, 0)])
def test_auto_range_and_continuous(state, code):
    with expected_protocol(KeysightN7744A, [(f":SENS1:POW:RANG:AUTO {code}", None), OK,
                                            (":SENS1:POW:RANG:AUTO?", str(code)),
                                            (f":INIT2:CONT {code}", None), OK,
                                            (":INIT2:CONT?", str(code))]) as pm:
        pm.ch_1.auto_range = state
        assert pm.ch_1.auto_range is state
        pm.ch_2.continuous_measurement = state
        assert pm.ch_2.continuous_measurement is state


def test_initiate_and_fetch():
    with expected_protocol(KeysightN7744A, [(":INIT1:IMM", None), OK,
                                            (":FETC1:POW?", "+1.00000000E-006")]) as pm:
        pm.ch_1.initiate()
        assert pm.ch_1.fetched_power == pytest.approx(1e-6)


# -- reading power -------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", PORTS)
def test_read_power_in_watt(port):
    with expected_protocol(KeysightN7744A, [(f":SENS{port}:POW:UNIT?", "+1"),
                                            (f":READ{port}:POW?", "+1.33555600E-006")]) as pm:
        assert pm.channels[port].read_power() == pytest.approx(1.335556e-6)


@pytest.mark.parametrize("dbm, watt", [(0.0, 1e-3), (-30.0, 1e-6), (10.0, 10e-3)])
def test_read_power_converts_dbm(dbm, watt):
    reply = f"{dbm:+.8E}"
    with expected_protocol(KeysightN7744A, [(":SENS1:POW:UNIT?", "+0"), (":READ1:POW?", reply)]) as pm:
        assert pm.ch_1.read_power() == pytest.approx(watt)


def test_read_power_over_range_raises_with_the_queued_error():
    with expected_protocol(KeysightN7744A, [(":SENS1:POW:UNIT?", "+1"), (":READ1:POW?", "+3.40282347E+038"),
                                            ("SYST:ERR?", '-231,"Data questionable;port 1 over range"'),
                                            OK]) as pm:
        with pytest.raises(InstrumentError) as info:
            pm.ch_1.read_power()
        assert info.value.codes == [-231]


def test_read_power_over_range_raises_even_without_a_queued_error():
    with expected_protocol(KeysightN7744A, [(":SENS2:POW:UNIT?", "+1"), (":READ2:POW?", "+3.40282347E+038"),
                                            OK]) as pm:
        with pytest.raises(InstrumentError) as info:
            pm.ch_2.read_power()
        assert info.value.codes == [-231]


def test_setting_rejected_by_the_instrument_raises_instrument_error():
    with expected_protocol(KeysightN7744A, [(":SENS1:POW:WAV 1.5500000E-06", None),
                                            ("SYST:ERR?", '-222,"Data out of range"'), OK]) as pm:
        with pytest.raises(InstrumentError) as info:
            pm.ch_1.wavelength = 1550e-9
        assert info.value.codes == [-222]
        assert info.value.command == ":SENS1:POW:WAV 1.5500000E-06"


# -- logging -------------------------------------------------------------------------------------------


def _block(values) -> bytes:
    payload = np.asarray(values, dtype="<f4").tobytes()
    length = str(len(payload)).encode()
    return b"#" + str(len(length)).encode() + length + payload + b"\n"


def test_logging_parameters_set_and_get():
    with expected_protocol(KeysightN7744A, [(":SENS1:FUNC:PAR:LOGG 64,1.000000E-03", None), OK,
                                            (":SENS1:FUNC:PAR:LOGG?", "+64,+1.00000000E-003")]) as pm:
        pm.ch_1.logging_parameters = (64, 1e-3)
        assert pm.ch_1.logging_parameters == (64, pytest.approx(1e-3))


@pytest.mark.parametrize("points, seconds", [(0, 1e-3), (1_000_001, 1e-3), (10, 0.0), (10, 11.0), (2.5, 1e-3)])
def test_log_power_refuses_bad_parameters_before_sending(points, seconds):
    with expected_protocol(KeysightN7744A, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.ch_1.log_power(points, seconds)


def test_log_power_full_sequence():
    values = [1.0e-6, 1.1e-6, 3.4028235e38, 0.9e-6]
    with expected_protocol(KeysightN7744A, [
        (":SENS2:POW:UNIT 1", None), OK,
        (":SENS2:FUNC:PAR:LOGG 4,1.000000E-04", None), OK,
        (":SENS2:FUNC:STAT LOGG,STAR", None), OK,
        (":SENS2:FUNC:STAT?", "LOGGING_STABILITY,COMPLETE"),
        (":SENS2:FUNC:RES?", _block(values)),
        (":SENS2:FUNC:STAT LOGG,STOP", None), OK,
    ]) as pm:
        data = pm.ch_2.log_power(4, 1e-4)
    assert data.shape == (4,)
    assert data[[0, 1, 3]] == pytest.approx([1.0e-6, 1.1e-6, 0.9e-6], rel=1e-6)
    assert np.isinf(data[2])


def test_log_power_rejects_a_malformed_block():
    with expected_protocol(KeysightN7744A, [
        (":SENS1:POW:UNIT 1", None), OK,
        (":SENS1:FUNC:PAR:LOGG 2,1.000000E-03", None), OK,
        (":SENS1:FUNC:STAT LOGG,STAR", None), OK,
        (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,COMPLETE"),
        (":SENS1:FUNC:RES?", b"+1"),
    ]) as pm:
        with pytest.raises(DriverError):
            pm.ch_1.log_power(2, 1e-3)
