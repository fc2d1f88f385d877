"""Protocol tests of the Santec TSL-570 driver (pymeasure's TSL570 + labctl behaviour + SI role)."""

from __future__ import annotations

import pytest
from pymeasure.instruments.santec.tsl500series import SweepMode
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.santec.tsl570 import SantecTSL570

NO_ERROR = ("SYST:ERR?", '0,"No error"')
CODE_Q = ":SYSTem:COMMunicate:CODe?"
C = 299_792_458.0


def test_construction_sends_nothing():
    with expected_protocol(SantecTSL570, []) as inst:
        assert inst.name == "Santec TSL-570"


@pytest.mark.parametrize("member", ["wavelength", "power", "output_enabled", "shutdown"])
def test_class_has_the_tunable_laser_members(member):
    assert hasattr(SantecTSL570, member)


# --- wavelength (SI role) ------------------------------------------------------------------


@pytest.mark.parametrize("code, reply, metres", [
    ("0", "1550.0000", 1550e-9),
    ("0", "1480.1234", 1480.1234e-9),
    ("1", "1.550000000E-06", 1550e-9),
    ("1", "1.639999900E-06", 1639.9999e-9),
])
def test_wavelength_getter_follows_the_command_set(code, reply, metres):
    with expected_protocol(SantecTSL570, [(CODE_Q, code), (":WAVelength?", reply)]) as inst:
        assert inst.wavelength == pytest.approx(metres, rel=1e-12)


@pytest.mark.parametrize("code, metres, sent", [
    ("0", 1550e-9, "1550"),
    ("0", 1550.1234e-9, "1550.1234"),
    ("0", 1480e-9, "1480"),
    ("1", 1550.1234e-9, "1.5501234e-06"),
    ("1", 1640e-9, "1.64e-06"),
])
def test_wavelength_setter_follows_the_command_set(code, metres, sent):
    pairs = [(CODE_Q, code), (f":WAVelength {sent}", None), NO_ERROR]
    with expected_protocol(SantecTSL570, pairs) as inst:
        inst.wavelength = metres


@pytest.mark.parametrize("metres", [1479.9e-9, 1640.1e-9, 1310e-9, 0.0, 1550.0])
def test_wavelength_out_of_range_raises_before_sending(metres):
    with expected_protocol(SantecTSL570, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.wavelength = metres


def test_wavelength_range_adapts_every_validator():
    pairs = [(CODE_Q, "0"), (":WAVelength 1310", None), NO_ERROR,
             (":WAVelength:SWEep:STARt 1270", None), NO_ERROR]
    with expected_protocol(SantecTSL570, pairs) as inst:
        inst.wavelength_range = (1260e-9, 1360e-9)
        inst.wavelength = 1310e-9
        inst.wavelength_start = 1270
        with pytest.raises(ValueOutOfRange):
            inst.wavelength_setpoint = 1550
        with pytest.raises(ValueOutOfRange):
            inst.frequency_setpoint = C / 1550e-9 * 1e-12


def test_frequency_role_property_converts_the_wavelength():
    with expected_protocol(SantecTSL570, [(CODE_Q, "0"), (":WAVelength?", "1550.0000")]) as inst:
        assert inst.frequency == pytest.approx(C / 1550e-9, rel=1e-12)


# --- device-unit wavelength/frequency properties ---------------------------------------------


@pytest.mark.parametrize("value, sent", [(1550, "1550"), (1550.0001, "1550.0001"),
                                         (1.55e-6, "1.55e-06")])
def test_wavelength_setpoint_accepts_nm_or_m(value, sent):
    with expected_protocol(SantecTSL570, [(f":WAVelength {sent}", None), NO_ERROR]) as inst:
        inst.wavelength_setpoint = value


@pytest.mark.parametrize("value", [1000, 1700, 1.7e-6, 1.0e-6, 0])
def test_wavelength_setpoint_refuses_values_outside_both_unit_ranges(value):
    with expected_protocol(SantecTSL570, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.wavelength_setpoint = value


@pytest.mark.parametrize("value, sent", [(193.41449, "193.41449"), (1.9341449e14, "1.9341449e+14")])
def test_frequency_setpoint_accepts_thz_or_hz(value, sent):
    with expected_protocol(SantecTSL570, [(f":FREQuency {sent}", None), NO_ERROR]) as inst:
        inst.frequency_setpoint = value


@pytest.mark.parametrize("prop, command", [
    ("wavelength_start", ":WAVelength:SWEep:STARt"),
    ("wavelength_stop", ":WAVelength:SWEep:STOP"),
])
def test_sweep_wavelength_settings(prop, command):
    with expected_protocol(SantecTSL570, [(f"{command} 1500.5", None), NO_ERROR]) as inst:
        setattr(inst, prop, 1500.5)


def test_sweep_step_refuses_zero():
    with expected_protocol(SantecTSL570, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.wavelength_step = 0


# --- power --------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit, reply, watt", [
    ("0", "10.00", 10e-3), ("0", "-15.00", 10 ** -1.5 * 1e-3), ("1", "5.0000", 5e-3),
])
def test_power_getter_follows_the_unit_setting(unit, reply, watt):
    with expected_protocol(SantecTSL570, [(":POWer:UNIT?", unit), (":POWer?", reply)]) as inst:
        assert inst.power == pytest.approx(watt, rel=1e-9)


@pytest.mark.parametrize("unit, watt, sent", [
    ("0", 5e-3, "6.9897"), ("0", 1e-3, "0"), ("0", 19.95e-3, "12.9994"),
    ("1", 5e-3, "5"), ("1", 0.1e-3, "0.1"),
])
def test_power_setter_sends_in_the_unit_setting(unit, watt, sent):
    pairs = [(":POWer:UNIT?", unit), (f":POWer {sent}", None), NO_ERROR]
    with expected_protocol(SantecTSL570, pairs) as inst:
        inst.power = watt


@pytest.mark.parametrize("watt", [21e-3, 0.02e-3, 0.0, -1e-3])
def test_power_out_of_range_raises_before_sending(watt):
    with expected_protocol(SantecTSL570, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.power = watt


@pytest.mark.parametrize("value", [-16, 20, 19.96])
def test_power_setpoint_refuses_values_outside_both_unit_ranges(value):
    with expected_protocol(SantecTSL570, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.power_setpoint = value


def test_actual_power_reads_the_monitor_in_the_unit_setting():
    with expected_protocol(SantecTSL570, [(":POWer:UNIT?", "0"), (":POWer:ACTual?", "3.00")]) as inst:
        assert inst.actual_power == pytest.approx(10 ** 0.3 * 1e-3)


@pytest.mark.parametrize("unit, sent", [("dBm", "0"), ("mW", "1")])
def test_power_unit_setter(unit, sent):
    with expected_protocol(SantecTSL570, [(f":POWer:UNIT {sent}", None), NO_ERROR]) as inst:
        inst.power_unit = unit


# --- output, command set, sweep -----------------------------------------------------------------


@pytest.mark.parametrize("state, sent", [(True, "1"), (False, "0")])
def test_output_enabled_setter(state, sent):
    with expected_protocol(SantecTSL570, [(f":POWer:STATe {sent}", None), NO_ERROR]) as inst:
        inst.output_enabled = state


@pytest.mark.parametrize("reply, state", [("1", True), ("0", False)])
def test_output_enabled_getter(reply, state):
    with expected_protocol(SantecTSL570, [(":POWer:STATe?", reply)]) as inst:
        assert inst.output_enabled is state


def test_shutdown_turns_the_output_off():
    with expected_protocol(SantecTSL570, [(":POWer:STATe 0", None), NO_ERROR]) as inst:
        inst.shutdown()
        assert inst.isShutdown


@pytest.mark.parametrize("name, sent", [("Legacy", "0"), ("SCPI", "1")])
def test_command_set_setter(name, sent):
    with expected_protocol(SantecTSL570, [(f":SYSTem:COMMunicate:CODe {sent}", None), NO_ERROR]) as inst:
        inst.command_set = name


def test_command_set_refuses_unknown_names():
    with expected_protocol(SantecTSL570, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.command_set = "Santec"


@pytest.mark.parametrize("mode, sent", [(SweepMode.STEPPED_ONE_WAY, "0"), (SweepMode.CONTINUOUS_TWO_WAY, "3")])
def test_sweep_mode_setter(mode, sent):
    with expected_protocol(SantecTSL570, [(f":WAVelength:SWEep:MODe {sent}", None), NO_ERROR]) as inst:
        inst.sweep_mode = mode


@pytest.mark.parametrize("speed", [3, 0, 500])
def test_sweep_speed_refuses_undocumented_speeds(speed):
    with expected_protocol(SantecTSL570, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.sweep_speed = speed


def test_sweep_dwell_and_cycles():
    pairs = [(":WAVelength:SWEep:DWELl 0.5", None), NO_ERROR, (":WAVelength:SWEep:CYCLes 3", None), NO_ERROR]
    with expected_protocol(SantecTSL570, pairs) as inst:
        inst.sweep_dwell = 0.5
        inst.sweep_cycles = 3
        with pytest.raises(ValueOutOfRange):
            inst.sweep_cycles = 1000


def test_start_sweep_and_status():
    with expected_protocol(SantecTSL570, [(":WAVelength:SWEep 1", None), (":WAVelength:SWEep?", "1")]) as inst:
        inst.start_sweep()
        assert inst.sweep_status == 1


# --- errors ---------------------------------------------------------------------------------------


def test_an_error_reply_raises_instrument_error():
    pairs = [(CODE_Q, "0"), (":WAVelength 1550", None), ("SYST:ERR?", '-222,"Data out of range"'), NO_ERROR]
    with expected_protocol(SantecTSL570, pairs) as inst:
        with pytest.raises(InstrumentError) as info:
            inst.wavelength = 1550e-9
    assert info.value.codes == [-222]
    assert info.value.command == ":WAVelength 1550"
