"""Protocol tests of the DiCon MXS-9100 driver (manual 91592 Rev. A2): exact SCPI strings."""

import pytest
from pymeasure.test import expected_protocol

from drivers.dicon.mxs9100 import DiConMXS9100
from drivers.errors import InstrumentError, ValueOutOfRange

NO_ERROR = ("SYST:ERR?", b'0, "No error"')


def test_init_sends_nothing_and_has_one_module():
    with expected_protocol(DiConMXS9100, []) as switch:
        assert list(switch.channels) == [1]
        assert switch.port_count == 8
        assert switch.module.port_count == 8
        assert switch.channels[1]._resource_lock() is switch.lock


@pytest.mark.parametrize("port", range(1, 9))
def test_route_setter_polls_the_error_queue(port):
    with expected_protocol(DiConMXS9100, [(f"ROUT1:SCAN {port}", None), NO_ERROR]) as switch:
        switch.route = port


@pytest.mark.parametrize("reply, port", [(b"3", 3), (b"8", 8), (b"0", 0)])
def test_route_getter(reply, port):
    with expected_protocol(DiConMXS9100, [("ROUT1:SCAN?", reply)]) as switch:
        assert switch.route == port


@pytest.mark.parametrize("bad", [0, 9, -1, 2.5, True, "3"])
def test_route_out_of_range_raises_before_sending(bad):
    with expected_protocol(DiConMXS9100, []) as switch:
        with pytest.raises(ValueOutOfRange):
            switch.route = bad


def test_port_count_sets_the_route_range():
    with expected_protocol(DiConMXS9100, [("ROUT1:SCAN 16", None), NO_ERROR], port_count=16) as switch:
        assert switch.port_count == 16
        switch.route = 16
        with pytest.raises(ValueOutOfRange):
            switch.route = 17


def test_module_selection():
    protocol = [("ROUT3:SCAN 2", None), NO_ERROR, ("ROUT3:SCAN?", b"2")]
    with expected_protocol(DiConMXS9100, protocol, module=3) as switch:
        switch.route = 2
        assert switch.route == 2


def test_add_module_addresses_another_input():
    with expected_protocol(DiConMXS9100, [("ROUT2:SCAN 4", None), NO_ERROR]) as switch:
        module = switch.add_module(2, port_count=4)
        module.route = 4
        assert set(switch.channels) == {1, 2}
        with pytest.raises(ValueOutOfRange):
            module.route = 5


@pytest.mark.parametrize("kwargs", [{"module": 0}, {"module": 1.5}, {"port_count": 0}, {"port_count": 2.5}])
def test_bad_construction_arguments(kwargs):
    with pytest.raises(ValueOutOfRange):
        with expected_protocol(DiConMXS9100, [], **kwargs):
            pass


def test_rejected_route_raises_instrument_error():
    protocol = [("ROUT1:SCAN 5", None), ("SYST:ERR?", b'-222, "Data out of range"'), NO_ERROR]
    with expected_protocol(DiConMXS9100, protocol) as switch:
        with pytest.raises(InstrumentError) as info:
            switch.route = 5
    assert info.value.codes == [-222]
    assert info.value.command == "ROUT1:SCAN 5"


def test_next_open_and_open_state():
    protocol = [("ROUT1:SCAN:NEXT", None), NO_ERROR, ("ROUT1:OPEN", None), NO_ERROR,
                ("ROUT1:OPEN:STAT?", b"1"), ("ROUT1:OPEN", None), NO_ERROR]
    with expected_protocol(DiConMXS9100, protocol) as switch:
        switch.module.next()
        switch.module.open()
        assert switch.module.is_open is True
        switch.park()


def test_status_and_wait_for_switch():
    with expected_protocol(DiConMXS9100, [(":STAT?", b"BUSY"), ("*OPC?", b"1"), (":STAT?", b"READY")]) as switch:
        assert switch.status == "BUSY"
        switch.wait_for_switch()
        assert switch.status == "READY"
