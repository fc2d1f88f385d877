"""Protocol tests of the Thorlabs MBX driver: exact commands, acknowledgements and ``Err:`` replies.

The MBX answers every command with ``1`` (or ``Err: <text>``) and has no SYSTem:ERRor? queue, so
each setting below is one (command, acknowledgement) pair.
"""

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.thorlabs.mbx import LockMode, MzmMode, ThorlabsMBX, VoaMode, parse_error_reply
from labctl.instruments import VariableAttenuator


def test_init_sends_nothing():
    with expected_protocol(ThorlabsMBX, []) as mbx:
        assert set(mbx.channels) == {"mzm", "voa", "rgb"}
        assert all(ch._resource_lock() is mbx.lock for ch in mbx.channels.values())


@pytest.mark.parametrize("mode", list(MzmMode))
def test_mzm_mode_setter(mode):
    with expected_protocol(ThorlabsMBX, [(f"MZM:MODE: {int(mode)}", b"1")]) as mbx:
        mbx.mzm.mode = mode


@pytest.mark.parametrize("reply, mode", [(b"0", MzmMode.OFF), (b"3", MzmMode.AUTOQUADPOS), (b"7", MzmMode.MANUAL)])
def test_mzm_mode_getter(reply, mode):
    with expected_protocol(ThorlabsMBX, [("MZM:MODE?", reply)]) as mbx:
        assert mbx.mzm.mode is mode


@pytest.mark.parametrize("bad", [10, -1, "AUTO"])
def test_mzm_mode_refused_before_sending(bad):
    with expected_protocol(ThorlabsMBX, []) as mbx:
        with pytest.raises(ValueOutOfRange):
            mbx.mzm.mode = bad


@pytest.mark.parametrize("volts, sent", [(-10, "-10000"), (-2.5, "-2500"), (0, "0"), (5.0004, "5000"), (10, "10000")])
def test_voltage_setpoint_setter(volts, sent):
    with expected_protocol(ThorlabsMBX, [(f"MZM:HOLD:VOLTAGE: {sent}", b"1")]) as mbx:
        mbx.mzm.voltage_setpoint = volts


def test_voltage_setpoint_getter_in_volts():
    with expected_protocol(ThorlabsMBX, [("MZM:HOLD:VOLTAGE?", b"-1250")]) as mbx:
        assert mbx.mzm.voltage_setpoint == pytest.approx(-1.25)


@pytest.mark.parametrize("bad", [-10.001, 10.5, 100])
def test_voltage_setpoint_out_of_range_raises_before_sending(bad):
    with expected_protocol(ThorlabsMBX, []) as mbx:
        with pytest.raises(ValueOutOfRange):
            mbx.mzm.voltage_setpoint = bad
        with pytest.raises(ValueOutOfRange):
            mbx.bias_voltage = bad


def test_err_acknowledgement_raises_instrument_error_naming_the_command():
    with expected_protocol(ThorlabsMBX, [("MZM:HOLD:VOLTAGE: 2000", b"Err: Data out of range")]) as mbx:
        with pytest.raises(InstrumentError) as info:
            mbx.mzm.voltage_setpoint = 2.0
    assert info.value.codes == [-222]
    assert info.value.command == "MZM:HOLD:VOLTAGE: 2000"


def test_err_reply_to_a_query_raises():
    with expected_protocol(ThorlabsMBX, [("MZM:TAP:MW?", b"Err: Feature not present")]) as mbx:
        with pytest.raises(InstrumentError) as info:
            mbx.read_output_power()
    assert info.value.codes == [-241]


@pytest.mark.parametrize("reply, expected", [
    ("Err: Undefined header", (-113, "Undefined header")),
    ("Err: Illegal parameter value", (-224, "Illegal parameter value")),
    ("Err: Something new", (-200, "Something new")),
    ("1", None),
    ("0.25", None),
])
def test_parse_error_reply(reply, expected):
    assert parse_error_reply(reply) == expected


@pytest.mark.parametrize("pct, sent", [(2.5, "250"), (50, "5000"), (100, "10000")])
def test_ratio_setpoint_setter(pct, sent):
    with expected_protocol(ThorlabsMBX, [(f"MZM:HOLD:RATIO: {sent}", b"1")]) as mbx:
        mbx.mzm.ratio_setpoint = pct


def test_ratio_setpoint_getter_and_range():
    with expected_protocol(ThorlabsMBX, [("MZM:HOLD:RATIO?", b"7500")]) as mbx:
        assert mbx.mzm.ratio_setpoint == 75
        with pytest.raises(ValueOutOfRange):
            mbx.mzm.ratio_setpoint = 2.0


def test_measurements():
    protocol = [("MZM:VOLTAGE?", b"-3.812"), ("MZM:TAP:MW?", b"0.199053"),
                ("MZM:SETPOINT?", b"1"), ("MZM:CALIBRATING?", b"0")]
    with expected_protocol(ThorlabsMBX, protocol) as mbx:
        assert mbx.mzm.voltage == pytest.approx(-3.812)
        assert mbx.mzm.power == pytest.approx(0.199053)
        assert mbx.mzm.is_stable is True
        assert mbx.mzm.is_calibrating is False


def test_calibrate_reads_its_acknowledgement():
    with expected_protocol(ThorlabsMBX, [("MZM:RESET", b"1"), ("MZM:MODE?", b"3")]) as mbx:
        mbx.mzm.calibrate()
        assert mbx.mzm.mode is MzmMode.AUTOQUADPOS  # the "1" was consumed, not read as the mode


# -- BiasController role ---------------------------------------------------------------------------


def test_bias_voltage_sets_hold_voltage_then_manual_mode():
    protocol = [("MZM:HOLD:VOLTAGE: 2500", b"1"), ("MZM:MODE: 7", b"1")]
    with expected_protocol(ThorlabsMBX, protocol) as mbx:
        mbx.bias_voltage = 2.5


def test_bias_voltage_getter_is_the_hold_voltage():
    with expected_protocol(ThorlabsMBX, [("MZM:HOLD:VOLTAGE?", b"3300")]) as mbx:
        assert mbx.bias_voltage == pytest.approx(3.3)


def test_measure_bias_voltage_and_output_power_in_si():
    with expected_protocol(ThorlabsMBX, [("MZM:VOLTAGE?", b"1.250"), ("MZM:TAP:MW?", b"0.4")]) as mbx:
        assert mbx.measure_bias_voltage() == pytest.approx(1.25)
        assert mbx.read_output_power() == pytest.approx(0.4e-3)


@pytest.mark.parametrize("positive, mode", [(True, 3), (False, 4)])
def test_lock_quadrature(positive, mode):
    with expected_protocol(ThorlabsMBX, [(f"MZM:MODE: {mode}", b"1")]) as mbx:
        mbx.lock_quadrature(positive=positive)


@pytest.mark.parametrize("point, mode", [(LockMode.PEAK, 1), (LockMode.NULL, 2),
                                         (LockMode.QUADRATURE_POSITIVE, 3), (LockMode.QUADRATURE_NEGATIVE, 4)])
def test_lock_to(point, mode):
    with expected_protocol(ThorlabsMBX, [(f"MZM:MODE: {mode}", b"1"), ("MZM:SETPOINT?", b"0")]) as mbx:
        mbx.lock_to(point)
        assert mbx.is_locked is False


def test_shutdown_holds_zero_volts_in_manual():
    protocol = [("MZM:HOLD:VOLTAGE: 0", b"1"), ("MZM:MODE: 7", b"1")]
    with expected_protocol(ThorlabsMBX, protocol) as mbx:
        mbx.shutdown()


# -- VOA --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("on, sent", [(True, "1"), (False, "0")])
def test_voa_enabled_setter(on, sent):
    with expected_protocol(ThorlabsMBX, [(f"VOA:POWER: {sent}", b"1"), ("VOA:POWER?", sent.encode())]) as mbx:
        mbx.voa.enabled = on
        assert mbx.voa.enabled is on


@pytest.mark.parametrize("db, sent", [(1.0, "1"), (6.5, "6.5"), (20, "20")])
def test_voa_attenuation_setpoint(db, sent):
    with expected_protocol(ThorlabsMBX, [(f"VOA:ATTEN: {sent}", b"1")]) as mbx:
        mbx.voa.attenuation_setpoint = db


@pytest.mark.parametrize("bad", [0.5, 0.99, 20.01])
def test_voa_attenuation_follows_the_manual_range(bad):
    with expected_protocol(ThorlabsMBX, []) as mbx:
        with pytest.raises(ValueOutOfRange):
            mbx.voa.attenuation_setpoint = bad


def test_voa_power_setpoint_and_mode():
    protocol = [("VOA:OUTPUT:MW: 0.5", b"1"), ("VOA:MODE: 1", b"1"), ("VOA:MODE?", b"1")]
    with expected_protocol(ThorlabsMBX, protocol) as mbx:
        mbx.voa.power_setpoint = 0.5
        mbx.voa.mode = VoaMode.POWER
        assert mbx.voa.mode is VoaMode.POWER
        with pytest.raises(ValueOutOfRange):
            mbx.voa.power_setpoint = 150


def test_voa_measurements():
    protocol = [("VOA:MEASURED?", b"6.02"), ("VOA:ERROR?", b"0.02"), ("VOA:TAP:MW?", b"0.1"),
                ("VOA:SETPOINT?", b"1")]
    with expected_protocol(ThorlabsMBX, protocol) as mbx:
        assert mbx.voa.attenuation == pytest.approx(6.02)
        assert mbx.voa.attenuation_error == pytest.approx(0.02)
        assert mbx.voa.power == pytest.approx(0.1)
        assert mbx.voa.is_stable is True


def test_inherited_rgb_setting_consumes_its_acknowledgement():
    with expected_protocol(ThorlabsMBX, [("RGB:WHITE: 40", b"1"), ("RGB:WHITE?", b"40")]) as mbx:
        mbx.rgb.white = 40
        assert mbx.rgb.white == 40


def test_voa_as_a_variable_attenuator_role():
    protocol = [("VOA:MODE: 0", b"1"), ("VOA:ATTEN: 6.5", b"1"), ("VOA:POWER: 1", b"1"), ("VOA:POWER: 0", b"1")]
    with expected_protocol(ThorlabsMBX, protocol) as mbx:
        voa = mbx.attenuator
        assert isinstance(voa, VariableAttenuator) and voa is mbx.voa
        assert voa.attenuation_range_db == (1.0, 20.0)
        voa.hold_attenuation(6.5)
        voa.release()
        with pytest.raises(ValueOutOfRange):
            voa.hold_attenuation(25.0)        # refused before anything is sent
