"""Fault injection in the simulated back end: each fault does what a real one does, reproducibly, and is logged."""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import labctl
from labctl.errors import ConfigError
from labctl.resilience import RetryPolicy, WallClock, retry_call
from sim_backends import CHARACTERISATION_BENCH_PATH, LabSimVisaLibrary, load_bench_file
from sim_backends.faults import FaultError

LASER = "TCPIP0::laser.labsim::inst0::INSTR"
PM = "TCPIP0::powermeter.labsim::inst0::INSTR"
IDN = "*IDN?"
TMO = pyvisa.constants.StatusCode.error_timeout


def library(seed: int = 1, config: dict | None = None) -> LabSimVisaLibrary:
    return LabSimVisaLibrary.from_config(config or load_bench_file(CHARACTERISATION_BENCH_PATH), seed=seed)


def session(lib, resource=LASER, timeout_ms=2000):
    return pyvisa.ResourceManager(lib).open_resource(resource, read_termination="\n", timeout=timeout_ms)


def kinds(lib) -> list[str]:
    return [event.fault for event in lib.fault_log]


# -- transport faults -----------------------------------------------------------------------------------


def test_timeout_loses_the_reply_after_the_session_timeout_then_the_next_query_works():
    lib = library()
    inst = session(lib, timeout_ms=1500)
    clean = inst.query(IDN)
    lib.inject("laser", "timeout")
    with pytest.raises(pyvisa.errors.VisaIOError) as err:
        inst.query(IDN)
    assert err.value.error_code == TMO
    assert lib.world.time == pytest.approx(1.5)
    assert inst.query(IDN) == clean
    assert kinds(lib) == ["timeout"] and lib.fault_log[0].instrument == "laser"


def test_disconnect_kills_the_session_and_refuses_opens_until_the_resource_is_back_in_simulated_time():
    lib = library()
    inst = session(lib)
    lib.inject("laser", "disconnect", down_s=2.0)
    with pytest.raises(pyvisa.errors.VisaIOError) as err:
        inst.query(IDN)
    assert err.value.error_code == pyvisa.constants.StatusCode.error_connection_lost
    with pytest.raises(pyvisa.errors.VisaIOError) as err:
        session(lib)
    assert err.value.error_code == pyvisa.constants.StatusCode.error_resource_not_found
    lib.world.time += 2.0
    fresh = session(lib)
    assert fresh.query(IDN).startswith("Keysight")
    with pytest.raises(pyvisa.errors.VisaIOError):  # a session from before the outage stays dead
        inst.query(IDN)
    assert kinds(lib) == ["disconnect", "reconnect"]


def test_disconnect_ends_after_a_number_of_open_attempts():
    lib = library()
    lib.inject("laser", "disconnect", down_s=None, down_attempts=2)
    inst = session(lib)
    with pytest.raises(pyvisa.errors.VisaIOError):
        inst.query(IDN)
    for _ in range(2):
        with pytest.raises(pyvisa.errors.VisaIOError):
            session(lib)
    assert session(lib).query(IDN).startswith("Keysight")
    assert lib.world.time == 0.0


def test_a_disconnect_can_run_on_the_wall_clock_for_benches_that_wait_in_real_time():
    lib = library()
    inst = session(lib)
    lib.inject("laser", "disconnect", down_s=0.05, down_clock="wall")
    with pytest.raises(pyvisa.errors.VisaIOError):
        inst.query(IDN)
    lib.world.time += 100.0  # simulated time does not bring it back
    with pytest.raises(pyvisa.errors.VisaIOError):
        session(lib)
    policy = RetryPolicy(attempts=10, first_delay_s=0.01, factor=2.0, budget_s=2.0)
    fresh, attempts = retry_call(lambda: session(lib), instrument="laser", resource=LASER, policy=policy,
                                 clock=WallClock())
    assert attempts > 1 and fresh.query(IDN).startswith("Keysight")
    assert "(wall)" in lib.fault_log[-1].detail


def test_power_cycle_brings_the_instrument_back_in_its_reset_state():
    lib = library()
    inst = session(lib)
    inst.write(":SOUR1:POW:STAT 1")
    assert int(inst.query(":SOUR1:POW:STAT?")) == 1
    lib.inject("laser", "disconnect", down_s=1.0, power_cycle=True)
    with pytest.raises(pyvisa.errors.VisaIOError):
        inst.query(IDN)
    lib.world.time += 1.0
    assert int(session(lib).query(":SOUR1:POW:STAT?")) == 0
    assert "power cycled" in lib.fault_log[-1].detail


def test_garbled_reply_flips_the_stated_number_of_bytes_and_truncation_shortens_it():
    lib = library()
    inst = session(lib)
    clean = inst.query(IDN)
    lib.inject("laser", "garble", flips=4)
    flipped = inst.query(IDN)
    assert len(flipped) == len(clean)
    assert sum(a != b for a, b in zip(flipped, clean)) == 4
    lib.inject("laser", "garble", mode="truncate")
    with pytest.warns(UserWarning):  # pyvisa: the reply does not end with its terminator
        cut = inst.query(IDN)
    assert len(cut) < len(clean) and clean.startswith(cut)
    assert inst.query(IDN) == clean  # the rest of the damaged reply was lost, not left in the queue


def test_error_fault_puts_its_code_in_the_error_queue():
    lib = library()
    inst = session(lib)
    lib.inject("laser", "error", code=-330, detail="self-test failed")
    inst.write("*CLS")
    assert inst.query("SYST:ERR?").startswith("-330")
    assert inst.query("SYST:ERR?").startswith("0")


def test_slow_reply_advances_the_clock_and_times_out_when_slower_than_the_timeout():
    lib = library()
    inst = session(lib, timeout_ms=1000)
    lib.inject("laser", "slow", delay_s=0.4)
    assert inst.query(IDN).startswith("Keysight")
    assert lib.world.time == pytest.approx(0.4)
    lib.inject("laser", "slow", delay_s=5.0)
    with pytest.raises(pyvisa.errors.VisaIOError) as err:
        inst.query(IDN)
    assert err.value.error_code == TMO
    assert lib.world.time == pytest.approx(1.4)


def test_a_fault_armed_later_waits_for_the_simulated_clock():
    lib = library()
    inst = session(lib)
    lib.inject("laser", "timeout", start_s=3.0)
    inst.query(IDN)
    lib.world.time += 3.0
    with pytest.raises(pyvisa.errors.VisaIOError):
        inst.query(IDN)


def test_context_manager_disarms_the_fault():
    lib = library()
    inst = session(lib)
    with lib.injected("laser", "timeout", count=None):
        for _ in range(2):
            with pytest.raises(pyvisa.errors.VisaIOError):
                inst.query(IDN)
    assert inst.query(IDN).startswith("Keysight")


def firing_pattern(seed: int, n: int = 120) -> list[bool]:
    lib = library(seed)
    inst = session(lib)
    lib.inject("laser", "timeout", probability=0.3, count=None)
    fired = []
    for _ in range(n):
        try:
            inst.query(IDN)
            fired.append(False)
        except pyvisa.errors.VisaIOError:
            fired.append(True)
    return fired


def test_probabilistic_faults_are_reproducible_from_the_bench_seed():
    first, again, other = firing_pattern(5), firing_pattern(5), firing_pattern(6)
    assert first == again
    assert first != other
    assert 0.15 < np.mean(first) < 0.45  # p = 0.3 over 120 draws


def test_fault_draws_do_not_disturb_the_physics_noise():
    quiet, faulty = library(3), library(3)
    faulty.inject("laser", "timeout", probability=0.5, count=None)
    inst = session(faulty)
    for _ in range(10):
        try:
            inst.query(IDN)
        except pyvisa.errors.VisaIOError:
            pass
    assert quiet.world.rng.random() == faulty.world.rng.random()


# -- physics faults --------------------------------------------------------------------------------------


@pytest.fixture
def lit_bench():
    """The default simulated bench with laser port 1 on at 8 mW and the switch routed to the power meter."""
    with labctl.open_bench("characterisation", seed=2) as bench:
        laser = bench.role("laser", 1)
        laser.power = 8e-3
        laser.output_enabled = True
        bench.role("switch").route = 1
        bench.role("bias").bias_voltage = 0.0
        yield bench


def test_fibre_cut_takes_the_light_away_downstream(lit_bench):
    meter = lit_bench.role("powermeter", 1)
    before = meter.read_power()
    assert before > 1e-5
    lit_bench.sim.inject("edge_fibre", "fibre_cut")
    assert meter.read_power() < 1e-9
    lit_bench.sim.faults.clear()
    assert meter.read_power() == pytest.approx(before, rel=0.05)


def test_mode_hop_moves_the_laser_wavelength_and_power():
    lib = library()
    inst = session(lib)
    inst.write(":SOUR1:POW 5MW;:SOUR1:POW:STAT 1")
    t = np.array([0.0])
    before = lib.world.light_into("mzm1", "in", t)
    lib.inject("laser", "mode_hop", port="out1", wavelength_jump_m=0.1e-9, power_jump_db=-3.0)
    after = lib.world.light_into("mzm1", "in", t)
    assert after[0].wavelength - before[0].wavelength == pytest.approx(0.1e-9)
    assert float(np.mean(after[0].power)) / float(np.mean(before[0].power)) == pytest.approx(10 ** -0.3)


def test_bias_drift_ramps_the_bias_voltage_from_its_start():
    lib = library()
    lib.world.time = 10.0
    t = np.array([10.0, 12.0, 20.0])
    before = np.asarray(lib.world.voltage_into("mzm1", "bias", t), dtype=float)
    lib.inject("bias", "bias_drift", rate_v_per_s=0.02)
    after = np.asarray(lib.world.voltage_into("mzm1", "bias", t), dtype=float)
    np.testing.assert_allclose(after - before, [0.0, 0.04, 0.2], atol=1e-12)


def test_saturation_clips_the_detector_reading(lit_bench):
    meter = lit_bench.role("powermeter", 1)
    assert meter.read_power() > 2e-4
    lit_bench.sim.inject("powermeter", "saturation", port="in1", level_w=1e-4)
    assert meter.read_power() == pytest.approx(1e-4, rel=0.01)


def test_a_physics_fault_with_a_duration_ends(lit_bench):
    meter = lit_bench.role("powermeter", 1)
    lit_bench.sim.inject("edge_fibre", "fibre_cut", duration_s=0.5)
    assert meter.read_power() < 1e-9
    lit_bench.settle(1.0)
    assert meter.read_power() > 1e-5


# -- configuration ---------------------------------------------------------------------------------------


def test_faults_listed_in_the_bench_file_are_armed(tmp_path):
    data = yaml.safe_load(CHARACTERISATION_BENCH_PATH.read_text())
    data["instruments"]["laser"]["sim"]["faults"] = [{"kind": "timeout", "start_s": 100},
                                                     {"kind": "fibre_cut", "node": "edge_fibre", "start_s": 5}]
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(data))
    with labctl.open_bench(path, seed=1) as bench:
        assert [f.kind for f in bench.sim.faults.active] == ["timeout", "fibre_cut"]
        assert ("edge_fibre", "out") in bench.sim.world.output_faults


def test_a_bad_fault_in_the_bench_file_names_the_field(tmp_path):
    data = yaml.safe_load(CHARACTERISATION_BENCH_PATH.read_text())
    data["instruments"]["laser"]["sim"]["faults"] = [{"kind": "fibre_cut", "node": "no_such_fibre"}]
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"instruments\.laser\.sim\.faults\[0\].*no_such_fibre"):
        labctl.open_bench(path)
    data["instruments"]["laser"]["sim"]["faults"] = [{"kind": "timeout", "probability": 2}]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="probability"):
        labctl.open_bench(path)


def test_faults_that_cannot_apply_are_refused_with_the_reason():
    lib = library()
    with pytest.raises(FaultError, match="not an instrument"):
        lib.inject("edge_fibre", "timeout")
    with pytest.raises(FaultError, match="no error queue"):
        lib.inject("bias", "error")
    with pytest.raises(FaultError, match="kind optical_in"):
        lib.inject("powermeter", "saturation", port="out1")
    with pytest.raises(FaultError, match="kinds:"):
        lib.inject("laser", "meltdown")


@settings(max_examples=25, deadline=None)
@given(flips=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_flipped_replies_keep_their_length_and_terminator(flips, seed):
    lib = library(seed)
    inst = session(lib)
    inst.read_termination = None
    clean = inst.query(IDN)
    lib.inject("laser", "garble", flips=flips)
    damaged = inst.query(IDN)
    assert len(damaged) == len(clean) and damaged.endswith("\n")
    assert sum(a != b for a, b in zip(damaged, clean)) == min(flips, len(clean) - 1)
