"""The unchanged DiConMXS9100 driver against the simulated MXS-9100 (manual 91592 Rev. A2).

Bench: constant test source -> switch ``in``; every output ``out1``..``outN`` ends in a test sink.
Routed output: P 10^(-IL/10); other outputs: P 10^(-XT/10); all dark while the mirror moves.
"""

import math

import numpy as np
import pytest

from drivers.dicon.mxs9100 import DiConMXS9100
from drivers.errors import InstrumentError, ValueOutOfRange
from sim_backends.bench import BenchFileError
from sim_backends.world import OPTICAL_IN, OPTICAL_OUT, Component, Lightwave, WiringError, total_power

RESOURCE = "TCPIP0::switch.labsim::inst0::INSTR"
P_SOURCE = 2e-3  # W
IL_DB, XT_DB, TAU_S = 0.6, 57.0, 8e-3  # bench parameters of these tests (not the defaults)


class ConstantSource(Component):
    """Test-only CW source: constant power at one wavelength."""

    PORTS = {"out": OPTICAL_OUT}

    def __init__(self, name, power_w):
        self.name, self.power_w = name, power_w

    def optical_output(self, port, t):
        return [Lightwave(1550e-9, np.full(np.shape(t), math.sqrt(self.power_w), dtype=complex))]


class Sink(Component):
    """Test-only optical termination."""

    PORTS = {"in": OPTICAL_IN}

    def __init__(self, name):
        self.name = name


@pytest.fixture
def bench(sim_bench, open_sim):
    def _bench(ports=8, modules=1, driver_kwargs=None, **params):
        sim_params = {"ports": ports, "modules": modules, "insertion_loss_db": IL_DB,
                      "crosstalk_db": XT_DB, "switching_time_s": TAU_S, **params}
        lib = sim_bench({"sw": {"driver": "dicon.MXS9100", "resource": RESOURCE, "sim": {"params": sim_params}}})
        lib.world.add("src", ConstantSource("src", P_SOURCE))
        lib.world.connect("src.out", "sw.in")
        for k in range(1, ports + 1):
            lib.world.add(f"sink{k}", Sink(f"sink{k}"))
            lib.world.connect(f"sw.out{k}", f"sink{k}.in")
        switch = open_sim(DiConMXS9100, lib, RESOURCE, port_count=ports, **(driver_kwargs or {}))
        return lib, switch

    return _bench


def power(lib, k, t=None):
    t = np.atleast_1d(lib.world.time if t is None else t)
    return float(np.mean(total_power(lib.world.light_into(f"sink{k}", "in", t), t)))


THROUGH = P_SOURCE * 10 ** (-IL_DB / 10)
LEAK = P_SOURCE * 10 ** (-XT_DB / 10)


# -- SCPI behaviour ---------------------------------------------------------------------------------


def test_identity_and_reset_parks(bench):
    lib, switch = bench()
    assert switch.id.startswith("DiCon Fiberoptics Inc, MG4, ")
    assert switch.route == 0
    assert switch.module.is_open is True
    assert switch.status == "READY"


@pytest.mark.parametrize("port", range(1, 9))
def test_route_round_trip(bench, port):
    lib, switch = bench()
    switch.route = port
    assert switch.route == port
    assert switch.module.is_open is False


@pytest.mark.parametrize("command", ["ROUTE1:SCAN 3", "ROUT1:SCAN 3", "rout1:scan 3", ":ROUTe1:SCAN 3", "ROUT:SCAN 3"])
def test_long_short_and_suffix_forms(bench, command):
    lib, switch = bench()
    switch.write(command)
    switch.check_errors()
    assert switch.ask("ROUTE1:SCAN?").strip() == "3"


def test_remembered_header_path_across_lines(bench):
    """Manual p. 17: ROUT6:SCAN 2 / SCAN? / SCAN:NEXT / NEXT (here with module 1)."""
    lib, switch = bench()
    switch.write("ROUT1:SCAN 2")
    assert switch.ask("SCAN?").strip() == "2"
    switch.write("SCAN:NEXT")
    switch.write("NEXT")
    assert switch.ask("ROUT1:SCAN?").strip() == "4"  # a full header still works (manual: ROUT7:SCAN 1)
    switch.check_errors()  # SYST:ERR? still resolves after the remembered ROUT1:SCAN: path


def test_leading_colon_discards_the_remembered_path(bench):
    lib, switch = bench()
    switch.write("ROUT1:OPEN")
    assert switch.ask("ROUT1:OPEN:STAT?").strip() == "1"
    assert switch.ask("STAT?").strip() == "1"  # remembered ROUT1:OPEN: makes this OPEN:STAT?
    assert switch.ask(":STAT?").strip() == "READY"


def test_combined_commands(bench):
    lib, switch = bench()
    assert switch.ask("ROUT1:SCAN 5;SCAN?").strip() == "5"


def test_next_wraps_and_open_parks(bench):
    lib, switch = bench(ports=4)
    switch.route = 4
    switch.module.next()
    assert switch.route == 1
    switch.park()
    assert switch.route == 0 and switch.module.is_open


def test_bad_port_is_refused_by_the_driver_before_sending(bench):
    lib, switch = bench()
    switch.route = 2
    with pytest.raises(ValueOutOfRange):
        switch.route = 9
    assert lib.instrument(RESOURCE).routes == [2]


def test_bad_port_answers_minus_222(bench):
    lib, switch = bench()
    switch.write("ROUT1:SCAN 9")
    with pytest.raises(InstrumentError) as info:
        switch.check_errors()
    assert info.value.codes == [-222]


def test_driver_with_too_many_ports_gets_a_typed_error(bench):
    lib, switch = bench(ports=4)
    switch.module.port_count = 8  # the driver believes in 8 outputs, the module has 4
    with pytest.raises(InstrumentError) as info:
        switch.route = 6
    assert info.value.codes == [-222]
    assert info.value.command == "ROUT1:SCAN 6"


def test_missing_module_answers_minus_114(bench):
    lib, switch = bench(driver_kwargs={"module": 2})
    with pytest.raises(InstrumentError) as info:
        switch.route = 1
    assert info.value.codes == [-114]


def test_second_module(bench):
    lib, switch = bench(modules=2, driver_kwargs={"module": 2})
    switch.route = 3
    assert lib.instrument(RESOURCE).routes == [0, 3]
    assert power(lib, 3, lib.world.time + 1.0) == pytest.approx(LEAK)  # module 2 is not wired


def test_error_queue_holds_eight_and_drops_the_rest(bench):
    lib, switch = bench()
    for _ in range(10):
        switch.write("ROUT1:SCAN 99")
    replies = [switch.ask("SYST:ERR?").strip() for _ in range(9)]
    assert [int(r.split(",")[0]) for r in replies] == [-222] * 8 + [0]
    assert replies[-1] == '0, "No error"'


def test_unknown_command(bench):
    lib, switch = bench()
    switch.write("ROUT1:FOO 1")
    with pytest.raises(InstrumentError) as info:
        switch.check_errors()
    assert info.value.codes == [-113]


def test_save_and_recall(bench):
    lib, switch = bench()
    switch.route = 6
    switch.write("*SAV 3")
    switch.route = 2
    switch.write("*RCL 3")
    assert switch.route == 6
    switch.write("*RCL 0")
    assert switch.route == 0
    switch.check_errors()


@pytest.mark.parametrize("params", [{"ports": 0}, {"ports": 2.5}, {"crosstalk_db": -3}, {"switching_time_s": -1},
                                    {"colour": "red"}])
def test_non_physical_parameters_are_refused(sim_bench, params):
    with pytest.raises(BenchFileError):
        sim_bench({"sw": {"driver": "dicon.MXS9100", "resource": RESOURCE, "sim": {"params": params}}})


def test_ports_follow_the_parameter(sim_bench):
    lib = sim_bench({"sw": {"driver": "dicon.MXS9100", "resource": RESOURCE, "sim": {"params": {"ports": 4}}}})
    assert set(lib.world.nodes["sw"].ports()) == {"in", "out1", "out2", "out3", "out4"}
    lib.world.add("sink", Sink("sink"))
    with pytest.raises(WiringError):
        lib.world.connect("sw.out5", "sink.in")


# -- physics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [1, 4, 8])
def test_routed_output_has_insertion_loss_others_crosstalk(bench, port):
    lib, switch = bench()
    switch.route = port
    switch.wait_for_switch()
    for k in range(1, 9):
        expected = THROUGH if k == port else LEAK
        assert power(lib, k) == pytest.approx(expected, rel=1e-12)


def test_parked_switch_routes_nowhere(bench):
    lib, switch = bench()
    switch.route = 5
    switch.wait_for_switch()
    switch.park()
    switch.wait_for_switch()
    assert [power(lib, k) for k in range(1, 9)] == pytest.approx([LEAK] * 8, rel=1e-12)


def test_outputs_are_dark_while_switching(bench):
    lib, switch = bench()
    switch.route = 2
    switch.wait_for_switch()
    t0 = lib.world.time
    switch.route = 7  # the mirror starts moving at t0
    assert switch.status == "BUSY"
    assert power(lib, 7, t0) == pytest.approx(LEAK)
    assert power(lib, 7, t0 + 0.5 * TAU_S) == pytest.approx(LEAK)
    assert power(lib, 2, t0 + 0.5 * TAU_S) == pytest.approx(LEAK)
    assert power(lib, 2, t0 - 1e-6) == pytest.approx(THROUGH)  # before the command: old route
    assert power(lib, 7, t0 + 1.01 * TAU_S) == pytest.approx(THROUGH)
    switch.wait_for_switch()  # *OPC? returns once the mirror has settled: time moves on
    assert lib.world.time >= t0 + TAU_S
    assert switch.status == "READY"
    assert power(lib, 7) == pytest.approx(THROUGH)


def test_a_change_during_switching_keeps_the_output_dark_until_settled(bench):
    lib, switch = bench()
    switch.route = 1
    t0 = lib.world.time
    lib.world.time = t0 + 0.5 * TAU_S
    switch.route = 3
    t1 = lib.world.time
    assert power(lib, 1, t1 - 1e-6) == pytest.approx(LEAK)  # still moving towards 1
    assert power(lib, 3, t1 + 0.99 * TAU_S) == pytest.approx(LEAK)
    assert power(lib, 3, t1 + 1.01 * TAU_S) == pytest.approx(THROUGH)
