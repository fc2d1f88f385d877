"""Protocol tests of the Yokogawa WT310E driver: the exact SCPI it sends and how it reads the replies."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentError, MalformedReply, ValueOutOfRange
from drivers.limits import member_table
from drivers.yokogawa.wt310e import InvalidReading, YokogawaWT310E
from labctl.instruments import PowerAnalyzer, protocol_members

OK = (":STAT:ERR?", '0,"No error"')


def test_init_sends_nothing():
    with expected_protocol(YokogawaWT310E, []) as inst:
        assert inst.name == "Yokogawa WT310E"


def test_implements_the_power_analyzer_role():
    missing = [m for m in protocol_members(PowerAnalyzer) if not hasattr(YokogawaWT310E, m)]
    assert missing == []


def test_every_public_member_is_classified_read_or_set():
    table = member_table(YokogawaWT310E)
    own = {n for n in vars(YokogawaWT310E) if not n.startswith("_")} - {"safety_members"}
    assert own - set(table) == set()
    assert {table[n] for n in YokogawaWT310E.safety_members} <= {"read", "set"}


def test_identity():
    with expected_protocol(YokogawaWT310E, [("*IDN?", "YOKOGAWA,WT310E,C2XA12345,F1.01")]) as inst:
        assert inst.id == "YOKOGAWA,WT310E,C2XA12345,F1.01"


# -- integration ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, command", [
    ("start_integration", ":INTEG:STAR"),
    ("stop_integration", ":INTEG:STOP"),
    ("reset_integration", ":INTEG:RES"),
])
def test_integration_commands(method, command):
    with expected_protocol(YokogawaWT310E, [(command, None), OK]) as inst:
        getattr(inst, method)()


def test_refused_start_raises_with_the_manuals_code():
    with expected_protocol(YokogawaWT310E, [(":INTEG:STAR", None), (":STAT:ERR?", '221,"Setting conflict"'),
                                            OK]) as inst:
        with pytest.raises(InstrumentError) as err:
            inst.start_integration()
    assert err.value.codes == [221] and err.value.command == ":INTEG:STAR"


@pytest.mark.parametrize("reply, state", [
    ("RES", "reset"), ("STAR", "running"), ("STOP", "stopped"), ("TIM", "timeup"), ("ERR", "error"),
    ("READ", "ready"), ("TIMEUP", "timeup"), (":INTEGRATE:STATE START", "running"),
])
def test_integration_state(reply, state):
    with expected_protocol(YokogawaWT310E, [(":INTEG:STAT?", reply)]) as inst:
        assert inst.integration_state == state


@pytest.mark.parametrize("mode, text", [("normal", "NORM"), ("continuous", "CONT")])
def test_integration_mode_setter(mode, text):
    with expected_protocol(YokogawaWT310E, [(f":INTEG:MODE {text}", None), OK]) as inst:
        inst.integration_mode = mode


@pytest.mark.parametrize("reply, mode", [("NORM", "normal"), ("CONTINUOUS", "continuous")])
def test_integration_mode_getter(reply, mode):
    with expected_protocol(YokogawaWT310E, [(":INTEG:MODE?", reply)]) as inst:
        assert inst.integration_mode == mode


def test_integration_mode_refuses_an_unknown_mode_before_sending():
    with expected_protocol(YokogawaWT310E, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.integration_mode = "realtime"


@pytest.mark.parametrize("seconds, text", [(0, "0,0,0"), (59, "0,0,59"), (3661, "1,1,1"),
                                           (36_000_000, "10000,0,0")])
def test_integration_timer_setter_sends_hours_minutes_seconds(seconds, text):
    with expected_protocol(YokogawaWT310E, [(f":INTEG:TIM {text}", None), OK]) as inst:
        inst.integration_timer = seconds


@pytest.mark.parametrize("bad", [-1, 0.5, 36_000_001, float("nan"), True, "10"])
def test_integration_timer_refuses_bad_values_before_sending(bad):
    with expected_protocol(YokogawaWT310E, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.integration_timer = bad


def test_integration_state_refuses_an_unknown_answer():
    with expected_protocol(YokogawaWT310E, [(":INTEG:STAT?", "BUSY")]) as inst:
        with pytest.raises(MalformedReply):
            _ = inst.integration_state


@pytest.mark.parametrize("function, slot", [("P", 1), ("WH", 2), ("TIME", 3)])
def test_reading_command_is_what_a_reading_sends(function, slot):
    command = YokogawaWT310E.reading_command(function)
    assert command == f":NUM:NORM:ITEM{slot} {function},1;:NUM:NORM:VAL? {slot}"
    with expected_protocol(YokogawaWT310E, [(command, "1.0E+00"), OK]) as inst:
        assert inst.read_numeric(function) == 1.0


def test_integration_timer_getter():
    with expected_protocol(YokogawaWT310E, [(":INTEG:TIM?", "2,30,5")]) as inst:
        assert inst.integration_timer == 2 * 3600 + 30 * 60 + 5


def test_integration_timer_getter_refuses_a_garbled_reply():
    with expected_protocol(YokogawaWT310E, [(":INTEG:TIM?", "2,30")]) as inst:
        with pytest.raises(MalformedReply):
            _ = inst.integration_timer


# -- readings in SI ---------------------------------------------------------------------------------


def test_measure_power_assigns_slot_1_and_reads_it_in_watts():
    with expected_protocol(YokogawaWT310E, [(":NUM:NORM:ITEM1 P,1;:NUM:NORM:VAL? 1", "12.345E+00"), OK]) as inst:
        assert inst.measure_power() == pytest.approx(12.345)


def test_integrated_energy_converts_watt_hours_to_joules():
    with expected_protocol(YokogawaWT310E, [(":NUM:NORM:ITEM2 WH,1;:NUM:NORM:VAL? 2", "1.50000E-03"), OK]) as inst:
        assert inst.integrated_energy() == pytest.approx(1.5e-3 * 3600)


def test_integration_time_in_seconds():
    with expected_protocol(YokogawaWT310E, [(":NUM:NORM:ITEM3 TIME,1;:NUM:NORM:VAL? 3", "3600"), OK]) as inst:
        assert inst.integration_time() == 3600.0


def test_reading_with_a_header_is_read():
    with expected_protocol(YokogawaWT310E, [(":NUM:NORM:ITEM1 P,1;:NUM:NORM:VAL? 1",
                                             ":NUMERIC:NORMAL:VALUE 2.0E+00"), OK]) as inst:
        assert inst.measure_power() == 2.0


@pytest.mark.parametrize("reply", ["NAN", "INF", "-INF", "9.91E+37"])
def test_no_data_or_overrange_is_an_error_not_a_zero(reply):
    with expected_protocol(YokogawaWT310E, [(":NUM:NORM:ITEM1 P,1;:NUM:NORM:VAL? 1", reply), OK]) as inst:
        with pytest.raises(InvalidReading):
            inst.measure_power()


@pytest.mark.parametrize("method, slot, function", [("measure_power", 1, "P"),
                                                    ("integrated_energy", 2, "WH")])
def test_negative_draw_is_an_error(method, slot, function):
    with expected_protocol(YokogawaWT310E, [(f":NUM:NORM:ITEM{slot} {function},1;:NUM:NORM:VAL? {slot}",
                                             "-1.0E+00"), OK]) as inst:
        with pytest.raises(InvalidReading, match="negative"):
            getattr(inst, method)()


def test_garbled_reading_is_a_malformed_reply():
    with expected_protocol(YokogawaWT310E, [(":NUM:NORM:ITEM1 P,1;:NUM:NORM:VAL? 1", "12.3E+0X"), OK]) as inst:
        with pytest.raises(MalformedReply):
            inst.measure_power()


def test_reading_rejected_by_the_meter_raises_before_parsing():
    with expected_protocol(YokogawaWT310E, [(":NUM:NORM:ITEM1 P,1;:NUM:NORM:VAL? 1", "NAN"),
                                            (":STAT:ERR?", '113,"Undefined header"'), OK]) as inst:
        with pytest.raises(InstrumentError) as err:
            inst.measure_power()
    assert err.value.codes == [113]


def test_read_numeric_refuses_a_function_it_does_not_slot():
    with expected_protocol(YokogawaWT310E, []) as inst:
        with pytest.raises(ValueOutOfRange):
            inst.read_numeric("U")


def test_headers_enabled_setter():
    with expected_protocol(YokogawaWT310E, [(":COMM:HEAD 0", None), OK]) as inst:
        inst.headers_enabled = False
