"""Recovery from lost connections: bounded backoff, queries retried once, settings never re-sent silently."""

from __future__ import annotations

import json
import time

import pytest
import pyvisa
from hypothesis import given, settings
from hypothesis import strategies as st
from pymeasure.adapters import VISAAdapter

import labctl
from benchmarks import soak
from drivers.errors import MalformedReply
from labctl.resilience import (
    CommandInterrupted,
    InstrumentUnavailable,
    ResilientAdapter,
    RetryPolicy,
    SimClock,
    WallClock,
    is_idempotent,
    retry_call,
)
from labctl.runner import run_experiment
from labctl.store import read_results
from sim_backends import CHARACTERISATION_BENCH_PATH, LabSimVisaLibrary, load_bench_file
from sim_backends.scpi import ScpiError
from sim_backends.world import World

PM = "TCPIP0::powermeter.labsim::inst0::INSTR"
LOST = pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_connection_lost)


@pytest.fixture
def bench():
    with labctl.open_bench("characterisation", seed=4) as b:
        yield b
        b.sim.faults.clear()


def failing(times: int, error: Exception = LOST):
    """A call that fails ``times`` times with ``error``, then returns the number of calls made."""
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return len(calls)
    return call


# -- retry_call -----------------------------------------------------------------------------------------


def test_backoff_grows_exponentially_on_the_injected_clock():
    clock = SimClock(World())
    policy = RetryPolicy(attempts=5, first_delay_s=0.1, factor=3.0, max_delay_s=10.0, budget_s=100.0)
    value, attempts = retry_call(failing(3), instrument="x", resource="r", policy=policy, clock=clock)
    assert (value, attempts) == (4, 4)
    assert clock.now() == pytest.approx(0.1 + 0.3 + 0.9)


def test_retries_stop_at_the_attempt_limit_with_a_typed_error_naming_everything():
    clock = SimClock(World())
    policy = RetryPolicy(attempts=3, first_delay_s=1.0, factor=2.0)
    with pytest.raises(InstrumentUnavailable) as err:
        retry_call(failing(99), instrument="laser", resource="TCPIP0::x::INSTR", policy=policy, clock=clock)
    exc = err.value
    assert (exc.instrument, exc.resource, exc.attempts) == ("laser", "TCPIP0::x::INSTR", 3)
    assert exc.last_error is LOST and "VI_ERROR_CONN_LOST" in str(exc) and "laser" in str(exc)
    assert clock.now() == pytest.approx(3.0)


def test_retries_stop_when_the_wait_budget_would_be_exceeded():
    clock = SimClock(World())
    policy = RetryPolicy(attempts=50, first_delay_s=1.0, factor=2.0, max_delay_s=100.0, budget_s=10.0)
    with pytest.raises(InstrumentUnavailable) as err:
        retry_call(failing(99), instrument="x", resource="r", policy=policy, clock=clock)
    assert clock.now() <= 10.0
    assert err.value.attempts == 4  # waits 1 + 2 + 4 = 7 s; the next (8 s) would pass the 10 s budget


def test_a_permanent_error_is_not_retried():
    clock = SimClock(World())
    with pytest.raises(ZeroDivisionError):
        retry_call(failing(5, ZeroDivisionError("no")), instrument="x", resource="r", policy=RetryPolicy(),
                   clock=clock)
    assert clock.now() == 0.0


@settings(max_examples=40, deadline=None)
@given(headers=st.lists(st.from_regex(r"[:*]?[A-Z]{2,6}(:[A-Z]{2,6})?\??", fullmatch=True), min_size=1, max_size=4))
def test_only_messages_made_of_queries_are_idempotent(headers):
    message = ";".join(f"{h} 1" if not h.endswith("?") else h for h in headers)
    assert is_idempotent(message) == all(h.endswith("?") for h in headers)


# -- on an open bench ---------------------------------------------------------------------------------------


def test_a_query_interrupted_by_a_lost_connection_is_retried_after_reconnecting(bench):
    meter = bench.role("powermeter", 1)
    bench.sim.inject("powermeter", "disconnect", down_s=1.0)
    started = bench.sim.world.time
    assert meter.averaging_time > 0
    [recovery] = bench.recoveries
    assert recovery.outcome == "retried query" and recovery.instrument == "powermeter"
    assert recovery.seconds >= 1.0 and recovery.attempts > 1
    assert bench.sim.world.time - started >= 1.0  # backoff ran on the simulated clock


def test_a_lost_reply_is_asked_for_again(bench):
    meter = bench.role("powermeter", 1)
    expected = meter.averaging_time
    bench.sim.inject("powermeter", "disconnect", down_s=0.5, during="read")
    # The query reached the instrument; its reply went with the connection: it is asked again.
    assert meter.averaging_time == expected
    assert bench.recoveries[-1].command.endswith("?")
    assert "during read" in bench.sim.fault_log[0].detail


def test_an_interrupted_setting_is_not_resent_and_says_so(bench):
    heater = bench.role("heaters", 1)
    bench.sim.inject("heaters", "disconnect", down_s=0.5)
    with pytest.raises(CommandInterrupted, match="not re-sent") as err:
        heater.voltage = 1.5
    assert "VOLT" in err.value.command.upper()
    assert bench.recoveries[-1].outcome == "command not re-sent"
    assert heater.voltage != pytest.approx(1.5)  # the connection works again; the setting never arrived


def test_resend_settings_re_sends_and_records_it():
    with labctl.Bench(labctl.load_bench(labctl.bench.CHARACTERISATION_BENCH_PATH), seed=4) as bench:
        bench.retry_policy = RetryPolicy(resend_settings=True)
        bench.open()
        heater = bench.role("heaters", 1)
        bench.sim.inject("heaters", "disconnect", down_s=0.5)
        heater.voltage = 1.5
        assert heater.voltage == pytest.approx(1.5)
        assert bench.recoveries[-1].outcome == "re-sent setting"


def test_a_dead_instrument_fails_within_the_budget_without_sleeping(bench, monkeypatch):
    meter = bench.role("powermeter", 1)
    bench.sim.inject("powermeter", "disconnect", down_s=None)

    def no_real_sleep(seconds):
        raise AssertionError(f"slept {seconds} s of wall time; backoff must wait on the bench clock")

    monkeypatch.setattr(time, "sleep", no_real_sleep)
    with pytest.raises(InstrumentUnavailable) as err:
        meter.read_power()
    assert err.value.instrument == "powermeter" and err.value.attempts == bench.retry_policy.attempts
    assert bench.sim.world.time <= bench.retry_policy.budget_s + 1.0
    bench.sim.faults.clear()  # it comes back: the next command re-opens first
    assert meter.read_power() >= 0
    assert bench.recoveries[-1].outcome == "re-opened before sending"


def test_errors_queued_before_the_outage_are_drained_and_recorded(bench):
    meter = bench.role("powermeter", 1)
    bench.sim.instrument(PM).push_error(ScpiError(-310, "before the outage"))
    bench.sim.inject("powermeter", "disconnect", down_s=0.5)
    meter.averaging_time
    assert bench.recoveries[-1].drained_errors[0][0] == -310
    assert bench.sim.instrument(PM).errors == type(bench.sim.instrument(PM).errors)()


def test_an_experiment_on_a_dead_instrument_fails_cleanly_and_keeps_its_points(bench, tmp_path):
    bench.sim.inject("powermeter", "disconnect", down_s=None, start_s=0.3)
    with pytest.raises(InstrumentUnavailable):
        run_experiment("mzm_transfer", bench=bench, out=tmp_path / "run.h5", show_progress=False,
                       overrides={"points": 41, "scope": "", "settle_s": 0.05, "averaging_time_s": 0.01})
    results = read_results(tmp_path / "run.h5")
    assert results["attrs"]["status"].startswith("failed: InstrumentUnavailable")
    assert 0 < len(results["optical_power_w"]) < 41


def test_a_short_soak_recovers_or_fails_points_cleanly_and_stores_every_finished_point(tmp_path, monkeypatch):
    waits: dict[str, list[float]] = {"wall": [], "simulated": []}
    simulated_sleep = SimClock.sleep
    monkeypatch.setattr(WallClock, "sleep", lambda clock, seconds: waits["wall"].append(seconds))

    def recorded_simulated_sleep(clock, seconds):
        waits["simulated"].append(seconds)
        simulated_sleep(clock, seconds)

    monkeypatch.setattr(SimClock, "sleep", recorded_simulated_sleep)
    out = tmp_path / "soak.json"
    soak.main(["--minutes", "0.05", "--out", str(out), "--work-dir", str(tmp_path / "work"),
               "--fault-rate", "0.3", "--session-points", "60", "--seed", "3"])
    figures = json.loads(out.read_text())
    points = figures["points"]
    assert points["attempted"] == points["finished"] + points["failed"] > 0
    assert points["finished"] > points["failed"]  # faults hit some points; most still finish
    assert points["stored"] == points["finished"] and figures["every_finished_point_stored"]
    assert figures["sessions"]["default"] >= 1
    assert sum(figures["faults_injected"].values()) > 0
    assert sum(figures["failed_points_by_error"].values()) == points["failed"]
    # no point hangs: every backoff wait ran on the simulated clock, none on the wall clock
    assert waits["simulated"] and not waits["wall"]
    logged = (tmp_path / "work" / "soak_fault_log.jsonl").read_text().splitlines()
    assert len(logged) == sum(figures["fault_events_logged"].values())


def test_a_reply_lost_half_way_is_not_asked_for_again():
    lib = LabSimVisaLibrary.from_config(load_bench_file(CHARACTERISATION_BENCH_PATH), seed=1)
    adapter = ResilientAdapter(VISAAdapter(PM, visa_library=lib, read_termination="\n"), instrument="powermeter",
                               policy=RetryPolicy(), clock=SimClock(lib.world))
    adapter.write("*IDN?")
    assert adapter.read_bytes(9) == b"Keysight "
    lib.inject("powermeter", "disconnect", down_s=0.5, during="read")
    with pytest.raises(CommandInterrupted, match="part of its reply had already been read") as err:
        adapter.read_bytes(5)
    assert err.value.reason == "partial reply" and adapter.recoveries[-1].outcome == "reply interrupted"
    adapter.write("*IDN?")  # re-opened: the next exchange works from its start
    assert adapter.read().startswith("Keysight")
    adapter.close()


def test_a_fault_during_the_reconnect_itself_fails_the_call_and_the_next_one_reopens(bench):
    meter = bench.role("powermeter", 1)
    bench.sim.inject("powermeter", "disconnect", down_s=0.5)
    # Armed by the time the drain asks for the error queue after reconnecting: its reply is damaged.
    bench.sim.inject("powermeter", "garble", flips=40, start_s=0.1)
    with pytest.raises(MalformedReply):
        meter.averaging_time
    assert bench.recoveries[-1].outcome == "failed: MalformedReply"
    assert meter.averaging_time > 0
    assert bench.recoveries[-1].outcome == "re-opened before sending"
