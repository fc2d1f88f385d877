"""The unchanged Keysight N7744A driver against the simulated N7744A/N7745A.

Physics checked against closed forms: power through a fibre P 10^(-aL/10), dark reading ~0 with
sigma = sigma_1s sqrt(1 s / tau), responsivity correction lambda / lambda_set, over range above
+10 dBm (and above a manual range + 3 dB), logging statistics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.errors import InstrumentError, ValueOutOfRange
from drivers.keysight.n7744a import KeysightN7744A, KeysightN7745A, PowerUnit
from labctl.instruments import OpticalPowerMeter
from sim_backends.bench import BenchFileError
from sim_backends.world import OPTICAL_OUT, Component, Lightwave

RES = "TCPIP0::pm.labsim::inst0::INSTR"
SIGMA_1S = 3e-12  # dark noise at 1 s on the lowest range, W (set explicitly in the bench)
P_SOURCE = 1e-3  # W
FIBRE_KM, ALPHA = 2.0, 0.2


class ConstantSource(Component):
    """Test-only CW source: one carrier of constant power."""

    PORTS = {"out": OPTICAL_OUT}

    def __init__(self, power_w: float, wavelength_m: float = 1550e-9):
        self.power_w = power_w
        self.wavelength_m = wavelength_m

    def optical_output(self, port, t):
        field = np.full(np.shape(t), math.sqrt(self.power_w), dtype=complex)
        return [Lightwave(self.wavelength_m, field)]


def _bench(sim_bench, params=None, seed=1):
    instruments = {"pm": {"driver": "keysight.N7744A", "resource": RES,
                          "sim": {"params": {"noise_1s_w": SIGMA_1S, **(params or {})}}}}
    components = {"fib": {"type": "fibre", "length_km": FIBRE_KM, "attenuation_db_per_km": ALPHA}}
    return sim_bench(instruments, components, ["fib.out -> pm.in1"], seed)


def _add_source(lib, name, power_w, destination, wavelength_m=1550e-9):
    source = ConstantSource(power_w, wavelength_m)
    lib.bench.world.add(name, source)
    lib.bench.world.connect(f"{name}.out", destination)
    return source


@pytest.fixture
def bench(sim_bench, open_sim):
    lib = _bench(sim_bench)
    _add_source(lib, "src", P_SOURCE, "fib.in")
    pm = open_sim(KeysightN7744A, lib, RES)
    return lib, pm


def _errors(pm):
    found = []
    while True:
        reply = pm.ask("SYST:ERR?").strip()
        code = int(reply.split(",")[0])
        if code == 0:
            return found
        found.append(code)


def _sigma(tau, range_dbm):
    return SIGMA_1S * math.sqrt(1.0 / tau) * 10 ** ((range_dbm + 30) / 10)


# -- identity, SCPI forms ------------------------------------------------------------------------------


def test_identity_and_role(bench):
    lib, pm = bench
    assert pm.id.startswith("Keysight Technologies,N7744A,")
    assert isinstance(pm.ch_1, OpticalPowerMeter)


def test_eight_port_variant(sim_bench, open_sim):
    lib = _bench(sim_bench, {"ports": 8})
    pm = open_sim(KeysightN7745A, lib, RES)
    assert pm.id.startswith("Keysight Technologies,N7745A,")
    assert pm.ch_8.read_power() == pytest.approx(0.0, abs=1e-9)
    assert "in8" in lib.instrument(RES).ports()


@pytest.mark.parametrize("params", [{"ports": 6}, {"noise_1s_w": -1e-12}, {"wavelength_range_m": (1.7e-6, 1.2e-6)},
                                    {"colour": "blue"}])
def test_bad_params_are_refused(sim_bench, params):
    with pytest.raises(BenchFileError):
        _bench(sim_bench, params)


def test_long_short_forms_suffixes_units_and_special_values(bench):
    lib, pm = bench
    pm.write(":SENSE2:CHANNEL1:POWER:WAVELENGTH 1310NM")
    assert float(pm.ask(":sens2:pow:wav?")) == pytest.approx(1310e-9)
    pm.write(":SENS2:POW:WAV 1.48UM")
    assert pm.ch_2.wavelength == pytest.approx(1480e-9)
    pm.write(":SENS2:POW:WAV DEF")
    assert pm.ch_2.wavelength == pytest.approx(1550e-9)
    assert float(pm.ask(":SENS2:POW:WAV? MIN")) == pytest.approx(1250e-9)
    assert float(pm.ask(":SENS2:POW:WAV? MAX")) == pytest.approx(1650e-9)
    pm.write(":SENS3:POW:ATIM 20MS")
    assert pm.ch_3.averaging_time == pytest.approx(20e-3)
    pm.write(":SENS3:POW:ATIM MIN")
    assert pm.ch_3.averaging_time == pytest.approx(1e-6)
    pm.write(":SENS3:POW:UNIT W")
    assert pm.ch_3.power_unit is PowerUnit.W
    pm.write(":SENS3:POW:RANG -17DBM")  # rounded to the closest multiple of 10 dB
    assert pm.ch_3.range_dbm == -20 and pm.ch_3.auto_range is False
    assert _errors(pm) == []


def test_reply_format_is_the_instruments(bench):
    lib, pm = bench
    assert pm.ask(":SENS1:POW:WAV?").strip() == "+1.55000000E-006"
    assert pm.ask(":SENS1:POW:UNIT?").strip() == "+0"
    pm.ch_1.power_unit = PowerUnit.W
    reply = pm.ask(":READ1:POW?").strip()
    assert reply[0] in "+-" and reply[-5] == "E" and len(reply.split("E")[1]) == 4


@pytest.mark.parametrize("command, code", [
    (":SENS5:POW:WAV 1550NM", -114),   # no port 5 on an N7744A
    (":SENS1:CHAN2:POW:ATIM 1", -114),  # one channel per slot
    (":SENS1:POW:WAV 1700NM", -222),
    (":SENS1:POW:ATIM 20", -222),
    (":SENS1:POW:RANG 30DBM", -222),
    (":SENS1:POW:UNIT 3", -224),
    (":SENS1:POW:ATIM 1KG", -131),
    (":SENS1:POW:FOO 1", -113),
    (":SENS1:FUNC:PAR:LOGG 0,1MS", -222),
    (":SENS1:FUNC:STAT LOGG", -109),
])
def test_errors_go_to_the_queue(bench, command, code):
    lib, pm = bench
    pm.write(command)
    assert _errors(pm) == [code]


def test_driver_raises_typed_errors(bench):
    lib, pm = bench
    with pytest.raises(ValueOutOfRange):
        pm.ch_1.averaging_time = 100.0  # refused before sending
    assert _errors(pm) == []
    pm.write(":SENS1:POW:ATIM 100")  # the simulator refuses it independently
    with pytest.raises(InstrumentError) as info:
        pm.check_errors()
    assert info.value.codes == [-222]


def test_reset_restores_defaults(bench):
    lib, pm = bench
    pm.ch_1.wavelength = 1310e-9
    pm.ch_1.averaging_time = 1e-3
    pm.ch_1.range_dbm = -10
    pm.reset()
    assert pm.ch_1.wavelength == pytest.approx(1550e-9)
    assert pm.ch_1.averaging_time == pytest.approx(0.1)
    assert pm.ch_1.auto_range is True


# -- physics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", [PowerUnit.W, PowerUnit.DBM])
def test_reading_through_the_fibre(bench, unit):
    lib, pm = bench
    expected = P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10)
    pm.ch_1.power_unit = unit
    pm.ch_1.averaging_time = 0.1
    reading = pm.ch_1.read_power()
    assert reading == pytest.approx(expected, abs=6 * _sigma(0.1, 0))
    assert pm.ch_1.range_dbm == 0  # auto range: 0.91 mW sits in the 0 dBm range


def test_reading_advances_the_simulated_clock_by_the_averaging_time(bench):
    lib, pm = bench
    pm.ch_1.averaging_time = 0.5
    before = lib.world.time
    pm.ch_1.read_power()
    assert lib.world.time - before == pytest.approx(0.5)


def test_unconnected_port_reads_the_noise_floor(bench):
    lib, pm = bench
    pm.ch_2.power_unit = PowerUnit.W
    pm.ch_2.averaging_time = 1.0
    readings = np.array([pm.ch_2.read_power() for _ in range(50)])
    assert np.all(np.abs(readings) < 10 * SIGMA_1S)  # ~0 W: far below -80 dBm
    assert readings.std(ddof=1) == pytest.approx(SIGMA_1S, rel=0.35)  # but noisy, not a constant
    assert pm.ch_2.range_dbm == -30


def test_noise_shrinks_as_one_over_root_averaging_time(bench):
    lib, pm = bench
    pm.ch_3.power_unit = PowerUnit.W  # in dBm a negative (dark) reading cannot be shown
    stds = {}
    for tau in (1e-4, 1e-2):
        pm.ch_3.averaging_time = tau
        readings = np.array([pm.ch_3.read_power() for _ in range(300)])
        stds[tau] = readings.std(ddof=1)
        assert stds[tau] == pytest.approx(_sigma(tau, -30), rel=0.15)
    assert stds[1e-4] / stds[1e-2] == pytest.approx(10.0, rel=0.2)


def test_two_ports_see_their_own_inputs(bench):
    lib, pm = bench
    _add_source(lib, "src2", 20e-6, "pm.in2")
    assert pm.ch_2.read_power() == pytest.approx(20e-6, rel=1e-3)
    assert pm.ch_1.read_power() == pytest.approx(P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10), rel=1e-3)


@pytest.mark.parametrize("setting_nm", [1310.0, 1550.0, 1625.0])
def test_wavelength_calibration_scales_by_lambda_over_setting(bench, setting_nm):
    lib, pm = bench
    _add_source(lib, "src2", 100e-6, "pm.in2", wavelength_m=1550e-9)
    pm.ch_2.wavelength = setting_nm * 1e-9
    expected = 100e-6 * 1550.0 / setting_nm
    assert pm.ch_2.read_power() == pytest.approx(expected, rel=1e-3)


def test_light_outside_the_ingaas_band_is_not_detected(bench):
    lib, pm = bench
    _add_source(lib, "src2", 100e-6, "pm.in2", wavelength_m=650e-9)
    assert pm.ch_2.read_power() == pytest.approx(0.0, abs=1e-9)


def test_above_plus_10_dbm_is_over_range(bench):
    lib, pm = bench
    _add_source(lib, "src2", 15e-3, "pm.in2")  # +11.8 dBm
    with pytest.raises(InstrumentError) as info:
        pm.ch_2.read_power()
    assert info.value.codes == [-231]
    assert _errors(pm) == []  # the driver read the queue


def test_manual_range_overloads_above_range_plus_3_db(bench):
    lib, pm = bench
    pm.ch_1.range_dbm = -10  # holds up to -7 dBm = 0.2 mW; the input is 0.91 mW
    with pytest.raises(InstrumentError):
        pm.ch_1.read_power()
    pm.ch_1.range_dbm = 0
    assert pm.ch_1.read_power() == pytest.approx(P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10), rel=1e-3)
    pm.ch_1.auto_range = True
    pm.ch_1.read_power()
    assert pm.ch_1.range_dbm == 0


def test_trigger_and_fetch(bench):
    lib, pm = bench
    pm.ch_1.continuous_measurement = False
    pm.ch_1.power_unit = PowerUnit.W
    pm.write(":FETC1:POW?")  # nothing measured yet: no reply, -230 queued
    assert _errors(pm) == [-230]
    pm.ch_1.initiate()
    first = pm.ch_1.fetched_power
    assert first == pytest.approx(P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10), rel=1e-3)
    assert pm.ch_1.fetched_power == first  # fetch does not trigger
    pm.ch_1.continuous_measurement = True
    with pytest.raises(InstrumentError) as info:
        pm.ch_1.initiate()  # INIT while measuring continuously
    assert info.value.codes == [-213]


# -- logging -------------------------------------------------------------------------------------------


def test_logging_statistics_and_clock(bench):
    lib, pm = bench
    points, tau = 2000, 1e-4
    before = lib.world.time
    data = pm.ch_1.log_power(points, tau)
    assert data.shape == (points,)
    assert lib.world.time - before == pytest.approx(points * tau)
    expected = P_SOURCE * 10 ** (-ALPHA * FIBRE_KM / 10)
    sigma = _sigma(tau, 0)
    assert data.mean() == pytest.approx(expected, abs=5 * sigma / math.sqrt(points) + 1e-4 * expected)
    assert data.std(ddof=1) == pytest.approx(sigma, rel=0.1)
    assert pm.ch_1.function_state == ("NONE", "COMPLETE")  # the driver stopped the function


def test_logging_reports_over_range_samples_as_inf(bench):
    lib, pm = bench
    pm.ch_1.range_dbm = -20  # 0.91 mW is far above -17 dBm
    data = pm.ch_1.log_power(10, 1e-3)
    assert np.all(np.isinf(data))
    assert _errors(pm) == []


def test_logging_result_is_a_float32_block(bench):
    lib, pm = bench
    pm.write(":SENS2:FUNC:PAR:LOGG 8,1MS")
    assert pm.ask(":SENS2:FUNC:PAR:LOGG?").strip() == "+8,+1.00000000E-003"
    pm.write(":SENS2:FUNC:STAT LOGG,STAR")
    assert pm.ask(":SENS2:FUNC:STAT?").strip() == "LOGGING_STABILITY,COMPLETE"
    pm.write(":SENS2:FUNC:RES?")
    raw = pm.read_bytes(2 + 2 + 32 + 1)
    assert raw[:4] == b"#232" and raw[-1:] == b"\n"
    values = np.frombuffer(raw[4:-1], dtype="<f4")
    assert np.all(np.abs(values) < 10 * _sigma(1e-3, -30))  # dark port


def test_n7745a_model_has_eight_ports_and_identifies_as_such(sim_bench):
    from drivers.keysight.n7744a import KeysightN7745A

    lib = sim_bench({"pm": {"driver": "keysight.N7745A", "resource": "TCPIP0::pm8.labsim::inst0::INSTR"}})
    meter = KeysightN7745A("TCPIP0::pm8.labsim::inst0::INSTR", visa_library=lib)
    assert "N7745A" in meter.id
    assert len(meter.channels) == 8
    assert lib.bench.world.nodes["pm"].ports().keys() >= {f"in{k}" for k in range(1, 9)}
    meter.ch_8.averaging_time = 0.01
    assert meter.ch_8.read_power() < 1e-9  # nothing connected: noise floor only
