"""The unchanged Thorlabs PM100 driver against the simulated PM100 console with an S155C head.

Physics checked against closed forms: power through a fibre P 10^(-aL/10), dark reading ~0 with
sigma = noise / sqrt(count), averaging time = count x 3 ms of simulated time, responsivity
correction lambda / lambda_set, saturation at the selected range.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.thorlabs.pm100 import ThorlabsPM100
from labctl.instruments import OpticalPowerMeter
from sim_backends.bench import BenchFileError
from sim_backends.world import OPTICAL_OUT, Component, Lightwave

RES = "USB0::0x1313::0x8072::P2000001::INSTR"
NOISE = 1e-9  # one sample's noise sigma, W (set explicitly in the bench)
P_SOURCE = 1e-3
FIBRE_KM, ALPHA = 5.0, 0.2


class ConstantSource(Component):
    """Test-only CW source: one carrier of constant power."""

    PORTS = {"out": OPTICAL_OUT}

    def __init__(self, power_w: float, wavelength_m: float = 1550e-9):
        self.power_w = power_w
        self.wavelength_m = wavelength_m

    def optical_output(self, port, t):
        return [Lightwave(self.wavelength_m, np.full(np.shape(t), math.sqrt(self.power_w), dtype=complex))]


def _bench(sim_bench, params=None, connect_fibre=True):
    instruments = {"opm": {"driver": "thorlabs.PM100", "resource": RES,
                           "sim": {"params": {"noise_w": NOISE, **(params or {})}}}}
    components = {"fib": {"type": "fibre", "length_km": FIBRE_KM, "attenuation_db_per_km": ALPHA}}
    return sim_bench(instruments, components, ["fib.out -> opm.in"] if connect_fibre else [], 3)


@pytest.fixture
def bench(sim_bench, open_sim):
    lib = _bench(sim_bench)
    lib.bench.world.add("src", ConstantSource(P_SOURCE))
    lib.bench.world.connect("src.out", "fib.in")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning from pymeasure's SCPIUnknownMixin
        pm = open_sim(ThorlabsPM100, lib, RES)
    return lib, pm


@pytest.fixture
def dark(sim_bench, open_sim):
    lib = _bench(sim_bench, connect_fibre=False)
    return lib, open_sim(ThorlabsPM100, lib, RES)


def _errors(pm):
    found = []
    while True:
        code = int(pm.ask("SYST:ERR?").split(",")[0])
        if code == 0:
            return found
        found.append(code)


# -- identity, SCPI forms ------------------------------------------------------------------------------


def test_identity_sensor_and_role(bench):
    lib, pm = bench
    assert pm.id.startswith("Thorlabs,PM100USB,")
    assert pm.identify_sensor() == "S155C"
    assert pm.is_power_sensor and pm.wavelength_settable and not pm.is_energy_sensor
    assert isinstance(pm, OpticalPowerMeter)


@pytest.mark.parametrize("params", [{"noise_w": -1.0}, {"sample_time_s": 0.0}, {"max_power_w": 1e4},
                                    {"wavelength_range_nm": (1700, 800)}, {"head": "S144C"}])
def test_bad_params_are_refused(sim_bench, params):
    with pytest.raises(BenchFileError):
        _bench(sim_bench, params)


def test_long_short_forms_units_and_min_max(bench):
    lib, pm = bench
    pm.write("SENSE:CORRECTION:WAVELENGTH 1310")
    assert pm.wavelength == pytest.approx(1310e-9)
    pm.write("CORR:WAV 1.48UM")
    assert pm.wavelength_nm == pytest.approx(1480.0)
    pm.write("sens:corr:wav 1625nm")
    assert pm.wavelength_nm == pytest.approx(1625.0)
    assert float(pm.ask("SENS:CORR:WAV? MIN")) == pytest.approx(800.0)
    assert float(pm.ask("SENS:CORR:WAV? MAX")) == pytest.approx(1700.0)
    pm.write("AVER 20")
    assert pm.averaging_count == 20
    pm.write("SENS:AVER:COUN 2.6")  # the console rounds numeric parameters it needs as integers
    assert pm.averaging_count == 3
    pm.write("SENS:AVER:COUN MAX")
    assert int(pm.ask("SENS:AVER:COUN?")) == int(pm.ask("SENS:AVER:COUN? MAX"))
    pm.write("SENS:AVER:COUN MIN")
    assert pm.averaging_count == 1
    pm.write("POW:DC:UNIT DBM")
    assert pm.power_unit == "DBM"
    assert _errors(pm) == []


@pytest.mark.parametrize("command, code", [
    ("SENS:CORR:WAV 1800", -222),
    ("SENS:CORR:WAV 500NM", -222),
    ("SENS:AVER:COUN 0", -222),
    ("SENS:AVER:COUN 1E5", -222),
    ("SENS:POW:UNIT MW", -224),
    ("SENS:POW:RANG 1", -222),
    ("SENS:CORR:WAV", -109),
    ("SENS:FOO 1", -113),
])
def test_errors_go_to_the_queue(bench, command, code):
    lib, pm = bench
    pm.write(command)
    assert _errors(pm) == [code]


def test_driver_raises_typed_errors(bench):
    lib, pm = bench
    with pytest.raises(ValueOutOfRange):
        pm.wavelength = 2000e-9
    assert _errors(pm) == []
    pm.write("SENS:CORR:WAV 2000")
    with pytest.raises(InstrumentError) as info:
        pm.check_errors()
    assert info.value.codes == [-222]


def test_reset_restores_defaults(bench):
    lib, pm = bench
    pm.wavelength = 1310e-9
    pm.averaging_count = 50
    pm.auto_range = False
    pm.reset()
    assert pm.wavelength == pytest.approx(1550e-9)
    assert pm.averaging_count == 1
    assert pm.auto_range is True


# -- physics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["W", "DBM"])
def test_reading_through_the_fibre(bench, unit):
    lib, pm = bench
    pm.power_unit = unit
    pm.averaging_count = 100
    expected = P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10)
    assert pm.read_power() == pytest.approx(expected, abs=6 * NOISE / 10 + 1e-9 * expected)


def test_averaging_time_is_count_times_sample_time_of_simulated_clock(bench):
    lib, pm = bench
    pm.averaging_time = 0.3
    assert pm.averaging_count == 100
    before = lib.world.time
    pm.read_power()
    assert lib.world.time - before == pytest.approx(pm.averaging_time)


def test_dark_head_reads_zero_and_noise_shrinks_with_averaging(dark):
    lib, pm = dark
    stds = {}
    for count in (1, 100):
        pm.averaging_count = count
        readings = np.array([pm.read_power() for _ in range(300)])
        assert abs(readings.mean()) < 5 * NOISE / math.sqrt(count) / math.sqrt(300)
        stds[count] = readings.std(ddof=1)
        assert stds[count] == pytest.approx(NOISE / math.sqrt(count), rel=0.15)
    assert stds[1] / stds[100] == pytest.approx(10.0, rel=0.2)


@pytest.mark.parametrize("setting_nm", [1310.0, 1550.0, 1650.0])
def test_wavelength_calibration_scales_by_lambda_over_setting(bench, setting_nm):
    lib, pm = bench
    pm.wavelength = setting_nm * 1e-9
    pm.averaging_count = 100
    expected = P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10) * 1550.0 / setting_nm
    assert pm.read_power() == pytest.approx(expected, rel=1e-4)


def test_reading_saturates_at_the_selected_range(bench):
    lib, pm = bench
    pm.range_w = 1e-4  # the input is ~0.32 mW
    assert pm.auto_range is False
    assert pm.range_w == pytest.approx(2e-4)  # rounded up to the next range: 20 mW / 100
    assert pm.read_power() == pytest.approx(2e-4, rel=1e-6)
    pm.auto_range = True
    assert pm.read_power() == pytest.approx(P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10), rel=1e-4)


def test_responsivity_follows_the_wavelength(bench):
    lib, pm = bench
    r1550 = float(pm.ask("SENS:CORR:POW?"))
    pm.wavelength = 1310e-9
    r1310 = float(pm.ask("SENS:CORR:POW:PDIO:RESP?"))
    assert r1310 / r1550 == pytest.approx(1310 / 1550)
    assert 0.5 < r1550 < 1.25  # A/W, below the ideal 1.25 A/W at 1550 nm


def test_initiate_fetch_read(bench):
    lib, pm = bench
    pm.write("FETC?")  # nothing measured yet: no reply, -230 queued
    assert _errors(pm) == [-230]
    pm.write("INIT")
    first = float(pm.ask("FETC?"))
    assert float(pm.ask("FETC?")) == first
    assert float(pm.ask("READ?")) == pytest.approx(first, rel=1e-4)
