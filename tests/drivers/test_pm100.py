"""Protocol tests of the Thorlabs PM100 driver (adapted from pymeasure's ThorlabsPM100USB)."""

from __future__ import annotations

import warnings

import pytest
from pymeasure.instruments.thorlabs import ThorlabsPM100USB
from pymeasure.test import expected_protocol

from drivers.base import LabInstrument
from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.thorlabs.pm100 import SAMPLE_TIME_S, ThorlabsPM100

OK = ("SYST:ERR?", '0,"No error"')


def test_construction_sends_nothing_and_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with expected_protocol(ThorlabsPM100, []) as pm:
            assert isinstance(pm, ThorlabsPM100USB)
            assert isinstance(pm, LabInstrument)
            assert pm.name == "Thorlabs PM100"


def test_role_members_exist():
    for member in ("wavelength", "averaging_time", "read_power"):
        assert hasattr(ThorlabsPM100, member)


# -- wavelength ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("metres, sent", [(800e-9, "800.000"), (1550e-9, "1550.000"), (1310.5e-9, "1310.500"),
                                           (1700e-9, "1700.000")])
def test_wavelength_set_in_metres_sends_nm(metres, sent):
    with expected_protocol(ThorlabsPM100, [(f"SENS:CORR:WAV {sent}", None), OK]) as pm:
        pm.wavelength = metres


def test_wavelength_get_in_metres():
    with expected_protocol(ThorlabsPM100, [("SENS:CORR:WAV?", "1.55000000E+03"),
                                           ("SENS:CORR:WAV?", "1.31000000E+03")]) as pm:
        assert pm.wavelength == pytest.approx(1550e-9)
        assert pm.wavelength_nm == pytest.approx(1310.0)


@pytest.mark.parametrize("metres", [799e-9, 1701e-9, 0.0])
def test_wavelength_out_of_range_raises_before_sending(metres):
    with expected_protocol(ThorlabsPM100, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.wavelength = metres


def test_identify_sensor_narrows_the_wavelength_range_to_the_head():
    with expected_protocol(ThorlabsPM100, [
        ("SYST:SENSOR:IDN?", "S120C,1234567,01-Jan-2024,1,18,49"),
        ("SENS:CORR:WAV? MIN", "4.00000000E+02"),
        ("SENS:CORR:WAV? MAX", "1.10000000E+03"),
    ]) as pm:
        assert pm.identify_sensor() == "S120C"
        assert pm.is_power_sensor and pm.wavelength_settable
        with pytest.raises(ValueOutOfRange):
            pm.wavelength = 1550e-9  # outside this head's 400 .. 1100 nm


# -- averaging ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 100, 10000])
def test_averaging_count_set(count):
    with expected_protocol(ThorlabsPM100, [(f"SENS:AVER:COUN {count}", None), OK]) as pm:
        pm.averaging_count = count


@pytest.mark.parametrize("count", [0, 10001, 2.5])
def test_averaging_count_out_of_range(count):
    with expected_protocol(ThorlabsPM100, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.averaging_count = count


@pytest.mark.parametrize("seconds, count", [(SAMPLE_TIME_S, 1), (0.3, 100), (0.0301, 10), (30.0, 10000)])
def test_averaging_time_maps_to_a_sample_count(seconds, count):
    with expected_protocol(ThorlabsPM100, [(f"SENS:AVER:COUN {count}", None), OK]) as pm:
        pm.averaging_time = seconds


def test_averaging_time_reads_count_times_sample_time():
    with expected_protocol(ThorlabsPM100, [("SENS:AVER:COUN?", "250")]) as pm:
        assert pm.averaging_time == pytest.approx(250 * SAMPLE_TIME_S)


@pytest.mark.parametrize("seconds", [0.0, 1e-3, 31.0, float("nan")])
def test_averaging_time_out_of_range_raises_before_sending(seconds):
    with expected_protocol(ThorlabsPM100, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.averaging_time = seconds


# -- range, unit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("state, code", [(True, 1), (False, 0)])
def test_auto_range(state, code):
    with expected_protocol(ThorlabsPM100, [(f"SENS:POW:RANG:AUTO {code}", None), OK,
                                           ("SENS:POW:RANG:AUTO?", str(code))]) as pm:
        pm.auto_range = state
        assert pm.auto_range is state


def test_range_set_and_get():
    with expected_protocol(ThorlabsPM100, [("SENS:POW:RANG 2.000000E-03", None), OK,
                                           ("SENS:POW:RANG?", "2.00000000E-03")]) as pm:
        pm.range_w = 2e-3
        assert pm.range_w == pytest.approx(2e-3)


@pytest.mark.parametrize("unit", ["W", "DBM"])
def test_power_unit(unit):
    with expected_protocol(ThorlabsPM100, [(f"SENS:POW:UNIT {unit}", None), OK,
                                           ("SENS:POW:UNIT?", unit)]) as pm:
        pm.power_unit = unit
        assert pm.power_unit == unit


def test_power_unit_refuses_others():
    with expected_protocol(ThorlabsPM100, []) as pm:
        with pytest.raises(ValueOutOfRange):
            pm.power_unit = "mW"


# -- reading -------------------------------------------------------------------------------------------


def test_read_power_in_watt():
    with expected_protocol(ThorlabsPM100, [("SENS:POW:UNIT?", "W"), ("MEAS:POW?", "9.12010000E-04")]) as pm:
        assert pm.read_power() == pytest.approx(9.1201e-4)


@pytest.mark.parametrize("dbm, watt", [(0.0, 1e-3), (-20.0, 1e-5), (3.0, 1.9952623e-3)])
def test_read_power_converts_dbm(dbm, watt):
    with expected_protocol(ThorlabsPM100, [("SENS:POW:UNIT?", "DBM"), ("MEAS:POW?", f"{dbm:.8E}")]) as pm:
        assert pm.read_power() == pytest.approx(watt)


def test_power_needs_no_head_flags():
    with expected_protocol(ThorlabsPM100, [("MEAS:POW?", "1.00000000E-06")]) as pm:
        assert pm.power == pytest.approx(1e-6)


def test_rejected_setting_raises_instrument_error():
    with expected_protocol(ThorlabsPM100, [("SENS:AVER:COUN 5", None),
                                           ("SYST:ERR?", '-222,"Data out of range"'), OK]) as pm:
        with pytest.raises(InstrumentError) as info:
            pm.averaging_count = 5
        assert info.value.codes == [-222]
