"""The unchanged Santec TSL-570 driver against the simulated TSL-570: SCPI behaviour and physics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymeasure.instruments.santec.tsl500series import SweepMode

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.santec.tsl570 import SantecTSL570
from sim_backends.bench import BenchFileError, build_bench

RES = "TCPIP0::tsl.labsim::inst0::INSTR"
C = 299_792_458.0
#: Legacy replies carry power with 0.01 dB resolution: a relative step of 2.3e-3.
READBACK_REL = 1.2e-3
#: The driver sends dBm with 6 significant digits (1e-4 dB): a relative step of 2.3e-5.
SEND_REL = 3e-5


def tsl_bench(sim_bench, params=None, length_km=5.0, alpha=0.2, seed=3):
    """Laser out -> fibre span -> a zero-length tail whose input we probe."""
    instruments = {"tsl": {"driver": "santec.TSL570", "resource": RES, "sim": {"params": params or {}}}}
    components = {
        "span": {"type": "fibre", "length_km": length_km, "attenuation_db_per_km": alpha},
        "tail": {"type": "fibre", "length_km": 0.0},
    }
    return sim_bench(instruments, components, ["tsl.out -> span.in", "span.out -> tail.in"], seed)


@pytest.fixture
def lib(sim_bench):
    return tsl_bench(sim_bench)


@pytest.fixture
def tsl(lib, open_sim):
    return open_sim(SantecTSL570, lib, RES)


def errors_of(tsl):
    try:
        tsl.check_errors()
    except InstrumentError as exc:
        return exc.codes
    return []


def emitted(lib):
    return lib.world.light_into("span", "in", np.array([lib.world.time]))


def test_identity(tsl):
    maker, model, serial, firmware = tsl.id.split(",")
    assert (maker, model) == ("SANTEC", "TSL-570")


# --- physics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("power_w", [0.1e-3, 2e-3, 19e-3])
@pytest.mark.parametrize("length_km, alpha", [(5.0, 0.2), (40.0, 0.19)])
def test_power_through_a_fibre_span(sim_bench, open_sim, power_w, length_km, alpha):
    lib = tsl_bench(sim_bench, length_km=length_km, alpha=alpha)
    tsl = open_sim(SantecTSL570, lib, RES)
    tsl.power = power_w
    tsl.output_enabled = True
    received = lib.world.average_power_into("tail", "in", duration=1e-3)
    assert received == pytest.approx(power_w * 10 ** (-alpha * length_km / 10), rel=SEND_REL)


def test_output_off_emits_no_light(lib, tsl):
    tsl.output_enabled = True
    assert len(emitted(lib)) == 1
    tsl.output_enabled = False
    assert emitted(lib) == []
    assert lib.world.average_power_into("tail", "in", duration=1e-3) == 0.0
    tsl.output_enabled = True
    tsl.shutdown()
    assert emitted(lib) == []


@pytest.mark.parametrize("command_set", ["Legacy", "SCPI"])
@pytest.mark.parametrize("metres", [1480e-9, 1550.1234e-9, 1639.9999e-9])
def test_retuning_changes_the_emitted_wavelength_in_either_command_set(lib, tsl, command_set, metres):
    tsl.command_set = command_set
    tsl.output_enabled = True
    tsl.wavelength = metres
    (carrier,) = emitted(lib)
    assert carrier.wavelength == pytest.approx(metres, abs=1e-15)
    assert tsl.wavelength == pytest.approx(metres, abs=1e-15)


def test_role_properties_survive_a_front_panel_change_of_units(lib, tsl):
    tsl.wavelength = 1560e-9
    tsl.power = 3e-3
    tsl.write(":SYSTem:COMMunicate:CODe 1")  # someone switches to the SCPI command set...
    tsl.write(":POWer:UNIT 1")  # ...and to mW
    assert tsl.wavelength == pytest.approx(1560e-9, abs=1e-15)
    assert tsl.power == pytest.approx(3e-3, rel=READBACK_REL)
    tsl.power = 7e-3  # now sent in mW
    tsl.wavelength = 1570e-9  # now sent in m
    tsl.output_enabled = True
    (carrier,) = emitted(lib)
    assert carrier.wavelength == pytest.approx(1570e-9, abs=1e-15)
    assert float(carrier.power[0]) == pytest.approx(7e-3, rel=1e-9)


def test_actual_power_follows_the_output(tsl):
    tsl.power = 5e-3
    tsl.output_enabled = True
    assert tsl.actual_power == pytest.approx(5e-3, rel=READBACK_REL)
    tsl.output_enabled = False
    assert tsl.actual_power < 1e-6


def test_rin_variance_matches_the_closed_form(lib, tsl):
    tsl.power = 10e-3
    tsl.output_enabled = True
    fs = 5e11
    t = np.arange(40_000) / fs
    (carrier,) = lib.instrument(RES).optical_output("out", t)
    relative = np.asarray(carrier.power) / np.mean(carrier.power) - 1
    assert np.var(relative) == pytest.approx(10 ** (-145 / 10) * fs / 2, rel=0.05)


# --- sweeps on the simulated clock -------------------------------------------------------------------


def sweep_setup(tsl, mode, start=1500, stop=1510, speed=10):
    tsl.command_set = "Legacy"
    tsl.sweep_mode = mode
    tsl.sweep_speed = speed
    tsl.wavelength_start = start
    tsl.wavelength_stop = stop
    tsl.output_enabled = True


def test_continuous_sweep_follows_start_plus_speed_times_time(lib, tsl):
    sweep_setup(tsl, SweepMode.CONTINUOUS_ONE_WAY)
    t0 = lib.world.time
    tsl.start_sweep()
    assert tsl.sweep_status == 1
    for elapsed in (0.0, 0.25, 0.5, 0.9):
        lib.world.time = t0 + elapsed
        (carrier,) = emitted(lib)
        assert carrier.wavelength == pytest.approx(1500e-9 + 10e-9 * elapsed, abs=1e-15)
    lib.world.time = t0 + 1.0 + 1e-9  # 10 nm at 10 nm/s
    assert tsl.sweep_status == 0
    assert tsl.sweep_count == 1
    (carrier,) = emitted(lib)
    assert carrier.wavelength == pytest.approx(tsl.wavelength)  # back to the set wavelength


def test_two_way_sweep_comes_back(lib, tsl):
    sweep_setup(tsl, SweepMode.CONTINUOUS_TWO_WAY, speed=20)
    t0 = lib.world.time
    tsl.start_sweep()
    lib.world.time = t0 + 0.75  # 0.5 s out, 0.25 s back
    (carrier,) = emitted(lib)
    assert carrier.wavelength == pytest.approx(1510e-9 - 20e-9 * 0.25, abs=1e-15)
    lib.world.time = t0 + 0.99
    assert tsl.sweep_status == 1
    lib.world.time = t0 + 1.01
    assert tsl.sweep_status == 0


def test_stepped_sweep_steps_every_dwell_plus_tuning_time(lib, tsl):
    sweep_setup(tsl, SweepMode.STEPPED_ONE_WAY)
    tsl.wavelength_step = 2
    tsl.sweep_dwell = 0.3
    t0 = lib.world.time
    tsl.start_sweep()
    per_step = 0.3 + 2 / 10  # dwell + step / speed
    for elapsed, steps in ((0.1, 0), (per_step * 1.5, 1), (per_step * 2.4, 2)):
        lib.world.time = t0 + elapsed
        (carrier,) = emitted(lib)
        assert carrier.wavelength == pytest.approx(1500e-9 + steps * 2e-9, abs=1e-15)


def test_repeated_sweeps_count_cycles(lib, tsl):
    sweep_setup(tsl, SweepMode.CONTINUOUS_ONE_WAY)
    tsl.sweep_cycles = 2
    tsl.sweep_delay = 0.5
    t0 = lib.world.time
    tsl.start_repeat()
    lib.world.time = t0 + 1.2
    assert (tsl.sweep_status, tsl.sweep_count) == (1, 0)
    lib.world.time = t0 + 1.6
    assert (tsl.sweep_status, tsl.sweep_count) == (1, 1)
    lib.world.time = t0 + 2 * 1.5  # two sweeps of 1 s with 0.5 s between them
    assert (tsl.sweep_status, tsl.sweep_count) == (0, 2)


def test_stop_sweep(lib, tsl):
    sweep_setup(tsl, SweepMode.CONTINUOUS_ONE_WAY)
    tsl.start_sweep()
    tsl.stop_sweep()
    assert tsl.sweep_status == 0
    (carrier,) = emitted(lib)
    assert carrier.wavelength == pytest.approx(tsl.wavelength)


def test_sweep_with_start_above_stop_is_a_settings_conflict(tsl):
    tsl.wavelength_start = 1600
    tsl.wavelength_stop = 1500
    tsl.start_sweep()  # pymeasure's start_sweep writes without checking...
    assert errors_of(tsl) == [-221]  # ...but the queue holds the conflict


# --- SCPI forms, units, ranges ------------------------------------------------------------------------


def test_legacy_reply_formats(tsl):
    tsl.wavelength = 1550.1234e-9
    assert tsl.ask(":WAVelength?").strip() == "1550.1234"
    assert tsl.ask(":WAV:MIN?").strip() == "1480.0000"
    assert float(tsl.ask(":FREQ?")) == pytest.approx(C / 1550.1234e-9 * 1e-12, abs=1e-5)
    assert tsl.ask(":POW:UNIT?").strip() == "0"


def test_scpi_command_set_uses_metres_and_hertz(tsl):
    tsl.command_set = "SCPI"
    assert tsl.wavelength_max == pytest.approx(1640e-9)
    assert tsl.frequency_max == pytest.approx(C / 1480e-9, rel=1e-8)
    tsl.frequency_setpoint = 1.9e14
    assert tsl.wavelength == pytest.approx(C / 1.9e14, rel=1e-9)


@pytest.mark.parametrize("command, metres", [
    (":WAV 1550.5", 1550.5e-9), (":wavelength 1550.5NM", 1550.5e-9), (":WAV 1.5505UM", 1550.5e-9),
    (":WAV:FREQ 193.1", C / 193.1e12), (":FREQuency 193.1THZ", C / 193.1e12),
])
def test_wavelength_and_frequency_forms(tsl, command, metres):
    tsl.write(command)
    assert errors_of(tsl) == []
    assert tsl.wavelength == pytest.approx(metres, abs=0.051e-12)  # Legacy replies: 0.1 pm resolution


@pytest.mark.parametrize("unit, command, watt", [
    (0, ":POW 10", 10e-3), (0, ":POW 2MW", 2e-3), (1, ":POWer 2", 2e-3), (1, ":POW 10DBM", 10e-3),
])
def test_power_units_and_suffixes(lib, tsl, unit, command, watt):
    tsl.write(f":POW:UNIT {unit}")
    tsl.write(command)
    assert errors_of(tsl) == []
    tsl.output_enabled = True
    (carrier,) = emitted(lib)
    assert float(carrier.power[0]) == pytest.approx(watt, rel=1e-9)


def test_reset_restores_the_power_on_state(tsl):
    tsl.command_set = "SCPI"
    tsl.output_enabled = True
    tsl.reset()
    assert tsl.command_set == "Legacy"
    assert tsl.output_enabled is False


# --- errors ---------------------------------------------------------------------------------------------


def test_out_of_range_is_refused_by_the_driver_before_the_sim_sees_it(lib, tsl):
    with pytest.raises(ValueOutOfRange):
        tsl.wavelength = 1700e-9
    assert not lib.instrument(RES).errors
    assert tsl.wavelength == pytest.approx(1550e-9)


def test_out_of_range_reaching_the_sim_gives_222_and_a_typed_error(tsl):
    tsl.wavelength_range = (1400e-9, 1700e-9)  # a driver configured for another model
    with pytest.raises(InstrumentError) as info:
        tsl.wavelength = 1700e-9
    assert info.value.codes == [-222]
    assert tsl.wavelength == pytest.approx(1550e-9)  # unchanged


def test_power_out_of_range_reaching_the_sim(tsl):
    tsl.power_range_dbm = (-20.0, 20.0)
    with pytest.raises(InstrumentError) as info:
        tsl.power = 50e-3
    assert info.value.codes == [-222]


@pytest.mark.parametrize("command, code", [
    (":WAV:FOO 1", -113),
    (":WAV1 1550", -113),
    (":POW:UNIT 2", -222),
    (":WAV:SWE:SPE 3", -222),
    (":WAV:SWE:MOD 4", -222),
    (":WAV", -109),
    (":POW 5V", -131),
    (":WAV? MIN", -108),
])
def test_bad_commands_put_scpi_errors_in_the_queue(tsl, command, code):
    tsl.write(command)
    assert errors_of(tsl) == [code]


def test_system_alert(tsl):
    assert tsl.ask(":SYST:ALER?").strip() == "No alerts."


@pytest.mark.parametrize("params, name", [
    ({"rin_db_per_hz": 0.0}, "rin_db_per_hz"),
    ({"wavelength_max_nm": 1400.0}, "wavelength_min_nm"),
    ({"linewidth_hz": float("nan")}, "linewidth_hz"),
    ({"monitor_floor_dbm": 0.0}, "monitor_floor_dbm"),
])
def test_non_physical_parameters_are_refused(params, name):
    config = {"instruments": {"tsl": {"driver": "santec.TSL570", "resource": RES, "sim": {"params": params}}}}
    with pytest.raises(BenchFileError, match=name):
        build_bench(config)


def test_phase_noise_linewidth_parameter(sim_bench, open_sim):
    lib = tsl_bench(sim_bench, params={"linewidth_hz": 2e6})
    tsl = open_sim(SantecTSL570, lib, RES)
    tsl.output_enabled = True
    fs = 1e11
    t = np.arange(40_000) / fs
    (carrier,) = lib.instrument(RES).optical_output("out", t)
    steps = np.diff(np.unwrap(np.angle(carrier.field)))
    assert np.var(steps) == pytest.approx(2 * math.pi * 2e6 / fs, rel=0.05)
