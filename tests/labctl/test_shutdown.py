"""Shutdown on every path: exception, Ctrl-C, a second Ctrl-C, SIGTERM, SIGHUP, failing instruments,
concurrent callers; checked against the simulated instruments' own state on every built-in bench."""

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from drivers.keysight.n7714a import KeysightN7714ALaser
from labctl.bench import SHUTDOWN_ORDER, open_bench
from labctl.cli import entry
from labctl.runner import Experiment
from labctl.shutdown import ShutdownReport, Terminated, deferred_signals, summarise, terminate_as_interrupt
from labctl.store import read_results
from sim_backends.world import ELECTRICAL_OUT, OPTICAL_OUT

REPO = Path(__file__).resolve().parents[2]
BENCHES = sorted((REPO / "sim_backends" / "benches").glob("*.yaml"))
MANUAL = 7  # the MBX bias controller's MANUAL mode: the driver's safe state holds 0 V in it


@pytest.fixture(autouse=True)
def ctrl_c_as_at_a_terminal():
    """Python's own SIGINT handler for each test, even when the runner was started with SIGINT ignored."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def turn_sources_on(bench) -> None:
    """Every laser, AWG, DC and optical-core output on, and the bias away from 0 V, through role objects."""
    for name, spec in bench.config.instruments.items():
        channels = spec.channels or [None]
        if spec.role == "tunable_laser":
            for ch in channels:
                bench.role(name, ch).output_enabled = True
        elif spec.role == "awg":
            for ch in spec.channels or [1, 2, 3, 4]:
                bench.role(name, ch).output_enabled = True
        elif spec.role == "dc_source":
            for ch in channels:
                out = bench.role(name, ch)
                out.voltage, out.current_limit, out.output_enabled = 0.5, 0.01, True
        elif spec.role == "bias_controller":
            bench.role(name).bias_voltage = 1.0
        elif spec.role == "optical_core":
            core = bench.role(name)
            core.output_enabled = True
            core.set_bias(1, 0.5)


def sources_left_on(sim, config) -> list[str]:
    """What the simulated instruments still emit or hold: lit laser ports, live electrical outputs,
    a bias controller not at 0 V in MANUAL, an enabled optical core."""
    t = np.zeros(4)
    left = []
    for name, spec in config.instruments.items():
        if spec.role not in SHUTDOWN_ORDER:
            continue
        inst = sim.bench.by_name[name]
        for port, kind in inst.ports().items():
            if spec.role == "tunable_laser" and kind == OPTICAL_OUT and inst.optical_output(port, t):
                left.append(f"{name}.{port} lit")
            elif spec.role != "tunable_laser" and kind == ELECTRICAL_OUT and np.any(inst.electrical_output(port, t)):
                left.append(f"{name}.{port} live")
        state = inst.state()
        if spec.role == "awg" and (state["running"] or any(state["output_on"].values())):
            left.append(f"{name} running or output on")
        if spec.role == "bias_controller" and (state["mode"] != MANUAL or state["bias_v"] != 0.0):
            left.append(f"{name} bias {state['bias_v']} V in mode {state['mode']}")
        if spec.role == "optical_core" and state["enabled"]:
            left.append(f"{name} outputs enabled")
    return left


@pytest.mark.parametrize("bench_file", BENCHES, ids=[p.stem for p in BENCHES])
def test_every_source_of_every_built_in_bench_goes_off(bench_file):
    bench = open_bench(bench_file, seed=3)
    turn_sources_on(bench)
    lit = sources_left_on(bench.sim, bench.config)
    assert lit, "the test must start with sources on"
    report = bench.close()
    assert sources_left_on(bench.sim, bench.config) == []
    assert report.all_off and not report.failed and not report.unreached
    sources = [n for n, s in bench.config.instruments.items() if s.role in SHUTDOWN_ORDER]
    assert {step.split(" channel")[0] for step in report.off} == set(sources)
    assert bench.close() is report  # idempotent: the second close does nothing and says the same


def test_exception_and_ctrl_c_in_a_with_block_shut_the_bench_down():
    for error in (RuntimeError("experiment failed"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with open_bench("characterisation", seed=1) as b:
                turn_sources_on(b)
                raise error
        assert sources_left_on(b.sim, b.config) == []
        assert b.shutdown_report.all_off


def test_a_failing_instrument_does_not_stop_the_others_and_the_report_names_it():
    bench = open_bench("characterisation", seed=1)
    turn_sources_on(bench)
    bench.sim.inject("awg", "disconnect", down_s=None)  # the AWG is lost (cable pulled) for good
    report = bench.close()
    assert not report.all_off
    assert [step for step, _ in report.failed] == ["awg"]
    assert "awg (shutdown failed" in str(report) and "MAY STILL BE ON" in str(report)
    left = sources_left_on(bench.sim, bench.config)
    assert left and all(item.startswith("awg") for item in left)  # everything else went off
    assert "laser channel 4" in report.off and "bias" in report.off and "heaters channel 1" in report.off
    assert summarise([report]) != "sources were shut down"


def test_close_retries_steps_that_failed_until_the_shutdown_succeeds():
    bench = open_bench("characterisation", seed=1)
    turn_sources_on(bench)
    with bench.sim.injected("laser", "disconnect", down_s=None):
        first = bench.close()
    assert [step for step, _ in first.failed] == [f"laser channel {ch}" for ch in (1, 2, 3, 4)]
    assert sources_left_on(bench.sim, bench.config) == [f"laser.out{ch} lit" for ch in (1, 2, 3, 4)]
    second = bench.close()  # not marked closed after the failure: this retries, the laser is back
    assert second.all_off and sources_left_on(bench.sim, bench.config) == []
    assert bench.close() is second


def test_close_from_many_threads_shuts_down_exactly_once(monkeypatch):
    bench = open_bench("characterisation", seed=1)
    turn_sources_on(bench)
    real_shutdown = KeysightN7714ALaser.shutdown
    calls = []

    def slow(port):
        calls.append(threading.current_thread().name)
        time.sleep(0.02)
        real_shutdown(port)

    monkeypatch.setattr(KeysightN7714ALaser, "shutdown", slow)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(bench.close())) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 4  # one per laser port: one close did the work
    assert len(reports) == 6 and all(r is reports[0] for r in reports) and reports[0].all_off
    assert sources_left_on(bench.sim, bench.config) == []


def test_a_second_ctrl_c_during_shutdown_is_held_until_the_shutdown_is_done(monkeypatch):
    bench = open_bench("characterisation", seed=1)
    turn_sources_on(bench)
    real_shutdown = KeysightN7714ALaser.shutdown

    def interrupted(port):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C pressed while a laser port goes off
        real_shutdown(port)

    monkeypatch.setattr(KeysightN7714ALaser, "shutdown", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench.close()
    assert sources_left_on(bench.sim, bench.config) == []
    assert bench.shutdown_report.all_off and bench.close() is bench.shutdown_report


def test_deferred_signals_are_delivered_after_the_block():
    delivered = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
            delivered.append("block finished")
    assert delivered == ["block finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_and_sighup_become_orderly_interrupts():
    for signum in (signal.SIGTERM, signal.SIGHUP):
        before = signal.getsignal(signum)
        with pytest.raises(Terminated) as caught:
            with terminate_as_interrupt():
                signal.raise_signal(signum)
        assert caught.value.signum == signum and caught.value.exit_code == 128 + signum
        assert isinstance(caught.value, KeyboardInterrupt)
        assert signal.getsignal(signum) == before


def test_an_ignored_sighup_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            signal.raise_signal(signal.SIGHUP)  # nothing happens
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_report_summary_is_truthful():
    off = ShutdownReport("b", off=("laser channel 1",))
    assert summarise([off]) == "sources were shut down"
    failed = ShutdownReport("b", off=("bias",), failed=(("laser channel 1", "lost"), ("laser channel 2", "lost")))
    assert summarise([off, failed]) == ("bench b: MAY STILL BE ON: laser channel 1, laser channel 2 "
                                        "(shutdown failed: lost). Check these instruments by hand and switch "
                                        "their outputs off")
    unreached = ShutdownReport("b", off=("laser channel 1",), unreached=("awg",))
    assert unreached.all_off and str(unreached).endswith("never opened, state unknown: awg")
    assert summarise([off, unreached]) == "sources were shut down (never opened, state unknown: awg)"
    assert summarise([]) == "no bench was opened"


# -- a real `labctl run` killed by signals --------------------------------------------------------


class ProbeParams(BaseModel):
    points: int = 2000
    slow_shutdown_s: float = 0.0


class SourcesOnUntilStopped(Experiment):
    """Turns every source on, then records points until stopped; prints what the simulator still
    emits when the process exits (for tests that kill a real `labctl run`)."""

    name = "sources_on_until_stopped"
    Parameters = ProbeParams

    def run(self, ctx):
        bench = ctx.bench
        turn_sources_on(bench)
        atexit.register(lambda: print("LEFT ON " + json.dumps(sources_left_on(bench.sim, bench.config)),
                                      flush=True))
        if ctx.params.slow_shutdown_s:
            real_shutdown = KeysightN7714ALaser.shutdown

            def slow(port):
                print("SHUTTING DOWN", flush=True)
                time.sleep(ctx.params.slow_shutdown_s)
                real_shutdown(port)

            KeysightN7714ALaser.shutdown = slow  # this process ends with the run
        for i in range(ctx.params.points):
            ctx.recorder.append("x", float(i))
            if i == 2:
                print("READY", flush=True)
            time.sleep(0.01)
        return {"points": ctx.params.points}


def _signals_as_at_a_terminal() -> None:
    """In the child: default signal dispositions, as in a terminal (a test runner started in the background
    inherits SIGINT ignored, and a process keeps a signal its parent ignored)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def start_probe(out: Path, *extra: str) -> subprocess.Popen:
    """`labctl run` of the probe experiment in a child process, once it has recorded 3 points."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl", "run", f"{__name__}:SourcesOnUntilStopped", "--sim", "--quiet",
         "--out", str(out), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=_signals_as_at_a_terminal)
    wait_for(proc, "READY")
    return proc


def wait_for(proc: subprocess.Popen, marker: str) -> None:
    for line in proc.stdout:
        if line.strip() == marker:
            return
    raise AssertionError(f"child ended before {marker!r}: {proc.wait()} {proc.stderr.read()}")


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    out, err = proc.communicate(timeout=60)
    return out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_labctl_run_killed_by_a_signal_shuts_down_and_says_interrupted(tmp_path, signum):
    out = tmp_path / "run.h5"
    proc = start_probe(out)
    proc.send_signal(signum)
    stdout, stderr = finish(proc)
    assert proc.returncode == 128 + signum, stderr
    name = signal.Signals(signum).name
    assert f"terminated by {name}; sources were shut down" in stderr
    assert "LEFT ON []" in stdout
    attrs = read_results(out)["attrs"]
    assert attrs["status"] == "interrupted" and attrs["interrupted_by"] == f"terminated by {name}"
    assert "every source is off" in attrs["shutdown"]
    assert len(read_results(out)["x"]) >= 3


def test_labctl_run_survives_a_second_ctrl_c_during_shutdown(tmp_path):
    out = tmp_path / "run.h5"
    proc = start_probe(out, "--set", "slow_shutdown_s=0.5")
    proc.send_signal(signal.SIGINT)
    wait_for(proc, "SHUTTING DOWN")
    proc.send_signal(signal.SIGINT)  # impatient user: must not stop the shutdown half-way
    stdout, stderr = finish(proc)
    assert proc.returncode == 130, stderr
    assert "interrupted; sources were shut down" in stderr
    assert "LEFT ON []" in stdout
    assert read_results(out)["attrs"]["status"] == "interrupted"


class LoseAwgParams(BaseModel):
    then: str = "finish"


class LoseTheAwg(Experiment):
    """Turns every source on, loses the AWG for good, then finishes or is interrupted."""

    name = "lose_the_awg"
    Parameters = LoseAwgParams
    default_bench = "characterisation"

    def run(self, ctx):
        turn_sources_on(ctx.bench)
        ctx.bench.sim.inject("awg", "disconnect", down_s=None)
        if ctx.params.then == "interrupt":
            raise KeyboardInterrupt
        return {}


@pytest.mark.parametrize("then, code, says", [("finish", 3, "WARNING: bench characterisation-sim-bench: MAY STILL BE ON: awg"),
                                              ("interrupt", 130, "interrupted; bench characterisation-sim-bench: MAY STILL "
                                                                 "BE ON: awg")])
def test_the_cli_names_what_may_still_be_on_instead_of_claiming_shutdown(tmp_path, monkeypatch, capsys, then, code,
                                                                         says):
    monkeypatch.setattr(sys, "argv", ["labctl", "run", f"{__name__}:LoseTheAwg", "--sim", "--quiet",
                                      "--set", f"then={then}", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        entry()
    err = capsys.readouterr().err
    assert exit_.value.code == code, err
    assert says in err and "sources were shut down" not in err
    assert "MAY STILL BE ON: awg" in read_results(tmp_path / "lose_the_awg.h5")["attrs"]["shutdown"]
