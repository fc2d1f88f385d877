"""The unchanged N7714A driver against the simulated N7714A: SCPI behaviour and laser physics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.keysight.n7714a import KeysightN7714A, PowerUnit
from sim_backends.bench import BenchFileError, build_bench

RES = "TCPIP0::laser.labsim::inst0::INSTR"
#: The driver sends dBm with 4 decimals: 1e-4 dB is a relative power step of 2.3e-5.
DBM_REL = 3e-5


def laser_bench(sim_bench, params=None, length_km=2.0, alpha=0.2, seed=1):
    """Laser port 1 -> fibre span -> a zero-length tail whose input we probe."""
    instruments = {"laser": {"driver": "keysight.N7714A", "resource": RES, "sim": {"params": params or {}}}}
    components = {
        "span": {"type": "fibre", "length_km": length_km, "attenuation_db_per_km": alpha},
        "tail": {"type": "fibre", "length_km": 0.0},
    }
    return sim_bench(instruments, components, ["laser.out1 -> span.in", "span.out -> tail.in"], seed)


@pytest.fixture
def lib(sim_bench):
    return laser_bench(sim_bench)


@pytest.fixture
def laser(lib, open_sim):
    return open_sim(KeysightN7714A, lib, RES)


def sim_of(lib):
    return lib.instrument(RES)


def errors_of(laser):
    """Drain the instrument's error queue through the driver; return the codes."""
    try:
        laser.check_errors()
    except InstrumentError as exc:
        return exc.codes
    return []


# --- identification and common commands ---------------------------------------------------------


def test_identity(laser):
    maker, model, serial, firmware = laser.id.split(",")
    assert (maker, model) == ("Keysight Technologies", "N7714A")
    assert serial and firmware


def test_reset_turns_every_port_off_and_restores_defaults(laser):
    laser.ch_2.wavelength = 1530e-9
    laser.ch_2.output_enabled = True
    laser.reset()
    assert laser.ch_2.output_enabled is False
    assert laser.ch_2.wavelength == pytest.approx(1550e-9)
    assert laser.ch_2.power_unit is PowerUnit.DBM


# --- physics through the bench ---------------------------------------------------------------------


@pytest.mark.parametrize("power_w", [4e-3, 10e-3, 20e-3])
@pytest.mark.parametrize("length_km, alpha", [(2.0, 0.2), (25.0, 0.18)])
def test_power_through_a_fibre_span(sim_bench, open_sim, power_w, length_km, alpha):
    lib = laser_bench(sim_bench, length_km=length_km, alpha=alpha)
    laser = open_sim(KeysightN7714A, lib, RES)
    laser.ch_1.power = power_w
    laser.ch_1.output_enabled = True
    received = lib.world.average_power_into("tail", "in", duration=1e-3)
    assert received == pytest.approx(power_w * 10 ** (-alpha * length_km / 10), rel=DBM_REL)


def test_output_off_emits_no_light(lib, laser):
    laser.ch_1.power = 10e-3
    laser.ch_1.output_enabled = False
    assert lib.world.light_into("span", "in", np.array([0.0])) == []
    assert lib.world.average_power_into("tail", "in", duration=1e-3) == 0.0
    laser.ch_1.output_enabled = True
    assert lib.world.average_power_into("tail", "in", duration=1e-3) > 0.0
    laser.ch_1.shutdown()
    assert lib.world.light_into("span", "in", np.array([0.0])) == []


@pytest.mark.parametrize("metres", [1527.605e-9, 1540.5678e-9, 1565.496e-9])
def test_retuning_changes_the_emitted_wavelength(lib, laser, metres):
    laser.ch_1.output_enabled = True
    laser.ch_1.wavelength = metres
    (carrier,) = lib.world.light_into("span", "in", np.array([0.0]))
    assert carrier.wavelength == pytest.approx(metres, abs=1e-14)
    assert laser.ch_1.wavelength == pytest.approx(metres, abs=1e-14)


def test_ports_are_independent(lib, laser):
    sim = sim_of(lib)
    laser.ch_1.output_enabled = True
    laser.ch_1.power = 5e-3
    laser.ch_3.wavelength = 1560e-9
    laser.ch_3.power = 20e-3
    laser.ch_3.output_enabled = True
    t = np.array([0.0])
    (one,) = sim.optical_output("out1", t)
    (three,) = sim.optical_output("out3", t)
    assert one.wavelength == pytest.approx(1550e-9)
    assert float(one.power[0]) == pytest.approx(5e-3, rel=DBM_REL)
    assert three.wavelength == pytest.approx(1560e-9)
    assert float(three.power[0]) == pytest.approx(20e-3, rel=DBM_REL)
    assert sim.optical_output("out2", t) == []
    assert sim.optical_output("out4", t) == []


def test_rin_variance_matches_the_closed_form(lib, laser):
    """Per-sample variance of P/P0 - 1 is RIN_lin * Fs / 2 (PHYSICS.md section 3)."""
    laser.ch_1.power = 10e-3
    laser.ch_1.output_enabled = True
    fs = 1e12
    t = np.arange(40_000) / fs
    (carrier,) = sim_of(lib).optical_output("out1", t)
    relative = np.asarray(carrier.power) / 10e-3 - 1
    expected = 10 ** (-145 / 10) * fs / 2
    assert np.var(relative) == pytest.approx(expected, rel=0.05)
    assert np.mean(relative) == pytest.approx(0.0, abs=5 * math.sqrt(expected / t.size))


def test_phase_noise_is_a_random_walk_with_the_linewidth(sim_bench, open_sim):
    linewidth = 1e6
    lib = laser_bench(sim_bench, params={"linewidth_hz": linewidth})
    laser = open_sim(KeysightN7714A, lib, RES)
    laser.ch_1.output_enabled = True
    fs = 1e11
    t = np.arange(40_000) / fs
    (carrier,) = sim_of(lib).optical_output("out1", t)
    steps = np.diff(np.unwrap(np.angle(carrier.field)))
    assert np.var(steps) == pytest.approx(2 * math.pi * linewidth / fs, rel=0.05)


def test_rin_parameter_sets_the_noise(sim_bench, open_sim):
    lib = laser_bench(sim_bench, params={"rin_db_per_hz": -130.0, "linewidth_hz": 0.0})
    laser = open_sim(KeysightN7714A, lib, RES)
    laser.ch_1.output_enabled = True
    fs = 1e10
    t = np.arange(40_000) / fs
    (carrier,) = sim_of(lib).optical_output("out1", t)
    assert np.var(carrier.power / np.mean(carrier.power)) == pytest.approx(10 ** -13 * fs / 2, rel=0.05)
    assert np.all(np.angle(carrier.field) == 0.0)  # zero linewidth: no phase noise


def test_single_time_point_is_noiseless(lib, laser):
    laser.ch_1.power = 10e-3
    laser.ch_1.output_enabled = True
    (carrier,) = sim_of(lib).optical_output("out1", np.array([1.234]))
    assert float(carrier.power[0]) == pytest.approx(10e-3, rel=1e-12)


# --- SCPI forms, units, limits ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ":SOURce3:CHANnel1:WAVelength 1545.1NM",
    ":sour3:wav 1.5451UM",
    "SOUR3:CHAN1:WAV 1545100PM",
    ":SOUR3:WAV 1.5451E-6",
    ":SOUR3:WAV 1.5451E-6M",
])
def test_wavelength_long_short_forms_and_units(laser, command):
    laser.write(command)
    assert errors_of(laser) == []
    assert laser.ch_3.wavelength == pytest.approx(1545.1e-9, abs=1e-15)


def test_omitted_source_addresses_port_one(laser):
    laser.write(":WAV 1530NM")
    assert laser.ch_1.wavelength == pytest.approx(1530e-9)
    assert laser.ch_2.wavelength == pytest.approx(1550e-9)


def test_wavelength_reply_format(laser):
    assert laser.ask(":SOUR1:WAV?").strip() == "+1.55000000E-006"


@pytest.mark.parametrize("word, expected", [("MIN", 1527.605e-9), ("MAX", 1565.496e-9), ("DEF", 1550e-9)])
def test_wavelength_min_max_def(laser, word, expected):
    assert float(laser.ask(f":SOUR2:WAV? {word}")) == pytest.approx(expected)
    laser.write(f":SOUR2:WAV {word}")
    assert laser.ch_2.wavelength == pytest.approx(expected)


def test_driver_limits_match_the_sim(laser):
    assert laser.ch_4.wavelength_min == pytest.approx(1527.605e-9)
    assert laser.ch_4.wavelength_max == pytest.approx(1565.496e-9)
    low, high = laser.ch_4.power_range
    assert low == pytest.approx(1e-3 * 10 ** 0.6)
    assert high == pytest.approx(1e-3 * 10 ** 1.35)


def test_power_reading_is_right_in_either_unit(lib, laser):
    laser.ch_1.power = 8e-3
    assert laser.ch_1.power == pytest.approx(8e-3, rel=DBM_REL)
    laser.ch_1.power_unit = PowerUnit.W
    assert laser.ch_1.power_level == pytest.approx(8e-3, rel=DBM_REL)  # the raw reply is now in W
    assert laser.ch_1.power == pytest.approx(8e-3, rel=DBM_REL)
    laser.ch_1.power = 12e-3  # still sent in dBm with a suffix
    assert laser.ch_1.power == pytest.approx(12e-3, rel=DBM_REL)
    laser.ch_1.output_enabled = True
    (carrier,) = lib.world.light_into("span", "in", np.array([0.0]))
    assert float(carrier.power[0]) == pytest.approx(12e-3, rel=DBM_REL)


@pytest.mark.parametrize("unit, command, watt", [
    ("DBM", ":SOUR1:POW 7", 1e-3 * 10 ** 0.7),
    ("DBM", ":SOUR1:POW 5MW", 5e-3),
    ("DBM", ":SOUR1:POW:LEV:IMM:AMPL 9DBM", 1e-3 * 10 ** 0.9),
    ("W", ":SOUR1:POW 0.005", 5e-3),
    ("W", ":SOUR1:POW 5000UW", 5e-3),
    ("W", ":SOUR1:POW 10DBM", 10e-3),
])
def test_unsuffixed_power_uses_the_unit_setting(laser, unit, command, watt):
    laser.write(f":SOUR1:POW:UNIT {unit}")
    laser.write(command)
    assert errors_of(laser) == []
    assert laser.ch_1.power == pytest.approx(watt, rel=DBM_REL)


def test_power_unit_accepts_numeric_form(laser):
    laser.write(":SOUR2:POW:UNIT 1")
    assert laser.ch_2.power_unit is PowerUnit.W
    laser.write(":SOUR2:POW:UNIT 0")
    assert laser.ch_2.power_unit is PowerUnit.DBM


@pytest.mark.parametrize("command", ["ON", "1"])
def test_state_accepts_on_and_1(laser, command):
    laser.write(f":SOUR4:POW:STAT {command}")
    assert laser.ch_4.output_enabled is True
    assert laser.ask(":SOUR4:POW:STAT?").strip() == "+1"


# --- errors -----------------------------------------------------------------------------------------


def test_out_of_range_wavelength_is_refused_by_driver_before_the_sim_sees_it(lib, laser):
    with pytest.raises(ValueOutOfRange):
        laser.ch_1.wavelength = 1600e-9
    assert not sim_of(lib).errors
    assert laser.ch_1.wavelength == pytest.approx(1550e-9)


def test_out_of_range_wavelength_reaching_the_sim_gives_222_and_a_typed_error(lib, laser):
    laser.ch_1.wavelength_values = (1500e-9, 1700e-9)  # e.g. a driver configured for another band
    with pytest.raises(InstrumentError) as info:
        laser.ch_1.wavelength = 1600e-9
    assert info.value.codes == [-222]
    assert laser.ch_1.wavelength == pytest.approx(1550e-9)  # unchanged


def test_out_of_range_power_reaching_the_sim_gives_222(laser):
    laser.ch_2.power_setpoint_dbm_values = (0.0, 20.0)
    with pytest.raises(InstrumentError) as info:
        laser.ch_2.power_dbm = 15.0
    assert info.value.codes == [-222]


@pytest.mark.parametrize("command, code", [
    (":SOUR5:WAV 1550NM", -114),  # no port 5
    (":SOUR1:CHAN2:WAV 1550NM", -114),
    (":SOUR1:WAVE:FOO 1", -113),
    (":SOUR1:POW 5V", -131),
    (":SOUR1:POW:UNIT MW", -224),
    (":SOUR1:POW:STAT 2", -224),
    (":SOUR1:WAV", -109),
    (":SOUR1:WAV? 1550", -224),
])
def test_bad_commands_put_scpi_errors_in_the_queue(laser, command, code):
    laser.write(command)
    assert errors_of(laser) == [code]


def test_zero_watt_power_is_refused(laser):
    laser.write(":SOUR1:POW:UNIT DBM")
    laser.write(":SOUR1:POW 0W")
    assert errors_of(laser) == [-222]


# --- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("params, name", [
    ({"rin_db_per_hz": 10.0}, "rin_db_per_hz"),
    ({"linewidth_hz": -1.0}, "linewidth_hz"),
    ({"wavelength_min_nm": 1600.0}, "wavelength_min_nm"),
    ({"power_max_dbm": 99.0}, "power_max_dbm"),
    ({"power_min_dbm": "lots"}, "power_min_dbm"),
])
def test_non_physical_parameters_are_refused(params, name):
    config = {"instruments": {"laser": {"driver": "keysight.N7714A", "resource": RES, "sim": {"params": params}}}}
    with pytest.raises(BenchFileError, match=name):
        build_bench(config)


def test_parameters_set_the_ranges(sim_bench, open_sim):
    lib = laser_bench(sim_bench, params={"wavelength_min_nm": 1570.0, "wavelength_max_nm": 1608.8,
                                         "power_min_dbm": 0.0, "power_max_dbm": 15.0})
    laser = open_sim(KeysightN7714A, lib, RES)
    assert laser.ch_1.wavelength_min == pytest.approx(1570e-9)
    assert laser.ch_1.wavelength_max == pytest.approx(1608.8e-9)
    assert laser.ch_1.wavelength == pytest.approx(1570e-9)  # 1550 nm default clipped into the band
    low, high = laser.ch_1.power_range
    assert (low, high) == (pytest.approx(1e-3), pytest.approx(1e-3 * 10 ** 1.5))
