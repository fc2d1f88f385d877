"""The unchanged Infiniium driver against the simulated Infiniium, checked against closed forms.

Test-only electrical sources (a sine with a trigger marker, a step) are added to the world and wired
to the scope's inputs. Expected values come from the sources' formulas, the manual's timebase and
scaling rules and the ENOB noise budget: sigma_total = range / (2**ENOB sqrt(12)).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from drivers.errors import DriverError, InstrumentError, ValueOutOfRange
from drivers.keysight.infiniium import KeysightInfiniium
from sim_backends.bench import BenchFileError
from sim_backends.instruments.keysight_infiniium import SimKeysightInfiniium
from sim_backends.world import ELECTRICAL_OUT, Component, World

RES = "TCPIP0::scope.labsim::hislip0::INSTR"
ENOB, BITS = 5.5, 10
PARAMS = {"enob": ENOB, "adc_bits": BITS}
FS, N = 64e9, 4096


def sigma_total(range_v: float) -> float:
    """Noise + quantization (V rms) of an ENOB-bit converter at full scale ``range_v``."""
    return range_v / (2**ENOB * math.sqrt(12))


class SineMarkerSource(Component):
    """Test-only source. ``out`` = dc + A sin(2 pi f (t - t0)); ``marker`` = ``high`` during the first
    half of each period, so it rises at t0 + k/f (sine going up through dc) and falls half a period later."""

    PORTS = {"out": ELECTRICAL_OUT, "marker": ELECTRICAL_OUT}

    def __init__(self, amplitude, frequency, t0=0.0, dc=0.0, high=0.5):
        self.amplitude, self.frequency, self.t0, self.dc, self.high = amplitude, frequency, t0, dc, high

    def electrical_output(self, port, t):
        phase = 2 * np.pi * self.frequency * (np.asarray(t) - self.t0)
        if port == "out":
            return self.dc + self.amplitude * np.sin(phase)
        return np.where(np.mod(phase, 2 * np.pi) < np.pi, self.high, 0.0)

    def modulation_period(self):
        return 1 / self.frequency


class StepSource(Component):
    """Test-only source: ``low`` before ``t_step``, ``high`` from then on."""

    PORTS = {"out": ELECTRICAL_OUT}

    def __init__(self, t_step, low, high):
        self.t_step, self.low, self.high = t_step, low, high

    def electrical_output(self, port, t):
        return np.where(np.asarray(t) >= self.t_step, self.high, self.low)


@pytest.fixture
def bench(sim_bench, open_sim):
    """``lib, scope = bench(source, [(from, to), ...], params)`` on a fresh world."""

    def _make(source=None, wiring=(), params=None, seed=1):
        lib = sim_bench({"scope": {"driver": "keysight.Infiniium", "resource": RES,
                                   "sim": {"params": {**PARAMS, **(params or {})}}}}, seed=seed)
        if source is not None:
            lib.world.add("src", source)
            for a, b in wiring:
                lib.world.connect(a, b)
        scope = open_sim(KeysightInfiniium, lib, RES)
        scope.sample_rate = FS
        scope.record_length = N
        return lib, scope

    return _make


def on_adc_grid(volts, range_v, offset_v):
    codes = (volts - offset_v) / (range_v / 2**BITS)
    return np.allclose(codes, np.round(codes), rtol=0, atol=1e-6)


# -- identity and settings --------------------------------------------------------------------------


def test_identity_and_reset(bench):
    lib, scope = bench()
    maker, model, serial, firmware = scope.id.split(",")
    assert (maker, model) == ("KEYSIGHT TECHNOLOGIES", "UXR1104A")
    scope.ch_2.display = True
    scope.trigger_sweep = "TRIGGERED"
    scope.write("*RST")
    assert scope.ch_1.display is True and scope.ch_2.display is False
    assert scope.trigger_sweep == "AUTO" and scope.trigger_source == 1 and scope.trigger_slope == "POSITIVE"
    assert scope.ch_1.input == "DC50" and scope.ch_1.offset == 0.0


def test_sample_rate_rounds_up_to_next_available_rate(bench):
    lib, scope = bench()
    scope.sample_rate = 100e9
    assert scope.sample_rate == 128e9  # next fastest of 256 GSa/s / (1, 2, 4, 5, 10, 20, 25, ...)
    scope.sample_rate = 256e9
    assert scope.sample_rate == 256e9
    scope.sample_rate = 10e9
    assert scope.sample_rate == 256e9 / 25
    scope.record_length = 5000
    t, v = scope.capture([1])
    assert len(v[1]) == len(t) == 5000
    assert scope.x_increment == 25 / 256e9
    np.testing.assert_allclose(np.diff(t), 25 / 256e9, rtol=1e-9)


def test_sample_rate_above_model_maximum_is_refused(bench):
    lib, scope = bench(params={"max_sample_rate": 128e9})
    with pytest.raises(InstrumentError) as info:
        scope.sample_rate = 200e9
    assert info.value.codes == [-222]
    assert scope.sample_rate == 64e9  # unchanged


def test_auto_sample_rate_and_points_follow_the_timebase(bench):
    lib, scope = bench()
    scope.acquire_sample_rate_auto = True
    scope.acquire_points_auto = True
    scope.timebase_scale = 1e-9
    assert scope.sample_rate == 256e9
    assert scope.record_length == round(10 * 1e-9 * 256e9)
    scope.sample_rate = 64e9  # manual rate, AUTO points: the record spans the screen
    assert scope.record_length == round(10 * 1e-9 * 64e9)
    scope.record_length = 1000  # manual points and rate: both as set
    assert (scope.sample_rate, scope.record_length) == (64e9, 1000)


# -- physics ------------------------------------------------------------------------------------------


def test_sine_matches_closed_form_within_enob_noise(bench):
    amplitude, f, range_v = 0.1, 1e9, 0.25
    lib, scope = bench(SineMarkerSource(amplitude, f), [("src.out", "scope.ch1")])
    scope.set_vertical(1, range_v, 0.0)
    scope.trigger_source = 1
    scope.ch_1.trigger_level = 0.0
    t, volts = scope.capture([1])
    v = volts[1]
    residual = v - amplitude * np.sin(2 * np.pi * f * t)  # trigger at the sine's rising zero crossing
    sigma = sigma_total(range_v)
    assert abs(residual.mean()) < 5 * sigma / math.sqrt(N)
    assert residual.std() == pytest.approx(sigma, rel=0.08)
    assert np.abs(residual).max() < 6 * sigma
    assert on_adc_grid(v, range_v, 0.0)


def test_nothing_connected_gives_only_scope_noise_around_zero(bench):
    lib, scope = bench()
    scope.record_length = 65536
    scope.set_vertical(2, 0.1, 0.0)
    t, volts = scope.capture([2])
    v = volts[2]
    sigma = sigma_total(0.1)
    assert abs(v.mean()) < 5 * sigma / math.sqrt(v.size)
    assert v.std() == pytest.approx(sigma, rel=0.04)
    assert on_adc_grid(v, 0.1, 0.0)


def test_noise_follows_enob_parameter(bench):
    lib, scope = bench(params={"enob": 4.0})
    scope.record_length = 65536
    scope.set_vertical(1, 0.2, 0.0)
    _, volts = scope.capture([1])
    assert volts[1].std() == pytest.approx(0.2 / (2**4 * math.sqrt(12)), rel=0.04)


@pytest.mark.parametrize("offset", [0.0, 0.1])
def test_clipping_to_the_vertical_window(bench, offset):
    amplitude, f, range_v = 0.3, 1e9, 0.2
    lib, scope = bench(SineMarkerSource(amplitude, f), [("src.out", "scope.ch1")])
    scope.set_vertical(1, range_v, offset)
    scope.ch_1.trigger_level = 0.0
    t, volts = scope.capture([1])
    v = volts[1]
    ideal = amplitude * np.sin(2 * np.pi * f * t)
    lsb, sigma = range_v / 2**BITS, sigma_total(range_v)
    top, bottom = offset + range_v / 2 - lsb, offset - range_v / 2
    assert v.max() == pytest.approx(top, abs=1e-12) and v.min() == pytest.approx(bottom, abs=1e-12)
    high, low = ideal > top + 6 * sigma, ideal < bottom - 6 * sigma
    assert high.any() and low.any()
    np.testing.assert_allclose(v[high], top, atol=1e-12)
    np.testing.assert_allclose(v[low], bottom, atol=1e-12)
    inside = (ideal < top - 6 * sigma) & (ideal > bottom + 6 * sigma)
    assert np.abs(v[inside] - ideal[inside]).max() < 6 * sigma


def test_aux_trigger_aligns_the_marker_edge_with_time_zero(bench):
    amplitude, f = 0.1, 1e9
    lib, scope = bench(SineMarkerSource(amplitude, f, t0=0.37e-9),
                       [("src.out", "scope.ch1"), ("src.marker", "scope.aux")])
    scope.set_vertical(1, 0.25, 0.0)
    scope.trigger_source = "AUX"
    scope.aux_trigger_level = 0.25
    scope.trigger_sweep = "TRIGGERED"
    sigma = sigma_total(0.25)
    for position in (0.0, 2e-9, -5.5e-9):
        scope.timebase_position = position
        t, volts = scope.capture([1])
        # reference CENTer: the record is centred on the screen, the trigger `position` before the centre
        assert t[0] == pytest.approx(position - N / (2 * FS), abs=1e-15)
        residual = volts[1] - amplitude * np.sin(2 * np.pi * f * t)
        assert residual.std() == pytest.approx(sigma, rel=0.1)
        assert np.abs(residual).max() < 6 * sigma
    scope.trigger_slope = "NEGATIVE"  # the marker falls when the sine goes down through zero
    t, volts = scope.capture([1])
    residual = volts[1] + amplitude * np.sin(2 * np.pi * f * t)
    assert np.abs(residual).max() < 6 * sigma


def test_reference_left_with_record_filling_screen_starts_at_position(bench):
    amplitude, f = 0.1, 1e9
    lib, scope = bench(SineMarkerSource(amplitude, f, t0=0.2e-9),
                       [("src.out", "scope.ch1"), ("src.marker", "scope.aux")])
    scope.set_vertical(1, 0.25, 0.0)
    scope.trigger_source = "AUX"
    scope.aux_trigger_level = 0.25
    scope.timebase_reference = "LEFT"
    scope.timebase_scale = N / FS / 10  # the record fills the 10-division screen
    scope.timebase_position = -3e-9
    t, volts = scope.capture([1])
    np.testing.assert_allclose(t, -3e-9 + np.arange(N) / FS, rtol=0, atol=1e-15)  # t = position + k/fs
    assert np.abs(volts[1] - amplitude * np.sin(2 * np.pi * f * t)).max() < 6 * sigma_total(0.25)


def test_either_slope_triggers_on_the_next_edge_of_either_sign(bench):
    amplitude, f, t0 = 0.1, 1e9, 0.1e-9
    lib, scope = bench(SineMarkerSource(amplitude, f, t0=t0),
                       [("src.out", "scope.ch1"), ("src.marker", "scope.aux")])
    scope.set_vertical(1, 0.25, 0.0)
    scope.trigger_source, scope.trigger_slope = "AUX", "EITHER"
    scope.aux_trigger_level = 0.25
    for _ in range(3):
        now = lib.world.time
        half_periods = (now - t0) * 2 * f
        rising_next = math.floor(half_periods) % 2 == 1  # in the low half now -> next edge rises
        t, volts = scope.capture([1])
        sign = 1.0 if rising_next else -1.0
        assert np.abs(volts[1] - sign * amplitude * np.sin(2 * np.pi * f * t)).max() < 6 * sigma_total(0.25)


def test_step_edge_then_triggered_sweep_without_edge_fails_then_auto(bench):
    t_step, high = 5e-9, 0.1
    lib, scope = bench(StepSource(t_step, 0.0, high), [("src.out", "scope.ch1")])
    scope.set_vertical(1, 0.25, 0.05)
    scope.trigger_source = 1
    scope.ch_1.trigger_level = 0.05
    scope.trigger_sweep = "TRIGGERED"
    t, volts = scope.capture([1])
    v, sigma = volts[1], sigma_total(0.25)
    before, after = t < -1.5 / FS, t > 1.5 / FS
    assert np.abs(v[before]).max() < 6 * sigma
    assert np.abs(v[after] - high).max() < 6 * sigma
    # the clock moved past the step: a TRIGGERED sweep finds no edge and the acquisition is empty
    assert lib.world.time >= t_step
    before_fail = lib.world.time
    with pytest.raises(InstrumentError) as info:
        scope.capture([1])
    assert info.value.codes == [-200]
    assert lib.world.time - before_fail >= 10 * N / FS  # the searched span elapsed
    with pytest.raises(DriverError):
        scope.read_waveform(1)
    scope.trigger_sweep = "AUTO"  # auto trigger: a record of the settled level
    t, volts = scope.capture([1])
    assert abs(volts[1].mean() - high) < 5 * sigma / math.sqrt(N)
    assert volts[1].std() == pytest.approx(sigma, rel=0.1)


def test_capture_advances_the_clock_by_the_record(bench):
    lib, scope = bench()
    start = lib.world.time
    scope.capture([1, 2])
    # auto trigger at `start`, record centred on it: the clock ends one record length later
    assert lib.world.time - start == pytest.approx(N / FS, rel=1e-9)


def test_channels_are_50_ohm_loads(bench):
    lib, scope = bench(SineMarkerSource(0.1, 1e9), [("src.out", "scope.ch3"), ("src.marker", "scope.aux")])
    assert lib.world.load_on("src", "out") == 50.0
    assert lib.world.load_on("src", "marker") == 50.0


def test_multichannel_capture_shares_one_acquisition(bench):
    amplitude, f = 0.1, 0.5e9
    lib, scope = bench(SineMarkerSource(amplitude, f, t0=0.3e-9),
                       [("src.out", "scope.ch2"), ("src.marker", "scope.ch4")])
    scope.set_vertical(2, 0.25, 0.0)
    scope.set_vertical(4, 0.8, 0.25)
    scope.trigger_source = 4
    scope.ch_4.trigger_level = 0.25
    t, volts = scope.capture([2, 4])
    assert set(volts) == {2, 4}
    assert np.abs(volts[2] - amplitude * np.sin(2 * np.pi * f * t)).max() < 6 * sigma_total(0.25)
    marker = np.where(np.mod(2 * np.pi * f * t, 2 * np.pi) < np.pi, 0.5, 0.0)
    away = np.abs(np.mod(t * f + 0.5, 0.5) - 0.25) < 0.24  # not within a sample of an edge
    assert np.abs(volts[4][away] - marker[away]).max() < 6 * sigma_total(0.8)


# -- data formats -------------------------------------------------------------------------------------


def test_formats_round_trip_the_same_acquisition(bench):
    range_v = 0.25
    lib, scope = bench(SineMarkerSource(0.1, 1e9), [("src.out", "scope.ch1")])
    scope.set_vertical(1, range_v, 0.02)
    t, volts = scope.capture([1])
    word = volts[1]
    lsb = range_v / 2**BITS
    scope.waveform_byteorder = "MSBFIRST"
    _, word_msb = scope.read_waveform(1, "MSBFIRST")
    np.testing.assert_array_equal(word_msb, word)
    scope.waveform_streaming = False  # definite-length block instead of '#0'
    _, word_definite = scope.read_waveform(1, "MSBFIRST")
    np.testing.assert_array_equal(word_definite, word)
    scope.waveform_format = "BYTE"
    assert scope.y_increment == range_v / 256
    _, byte = scope.read_waveform(1)
    # 8-bit data are the ADC codes truncated by 2 bits: 0 <= word - byte <= 3 LSB
    assert np.all(word - byte >= -1e-12) and np.all(word - byte <= 3 * lsb + 1e-12)
    assert np.allclose((byte - 0.02) / (range_v / 256), np.round((byte - 0.02) / (range_v / 256)), atol=1e-6)
    scope.waveform_format = "ASCII"
    _, ascii_volts = scope.read_waveform(1)
    np.testing.assert_allclose(ascii_volts, word, rtol=0, atol=1e-15)


def test_waveform_data_start_and_size(bench):
    lib, scope = bench()
    scope.capture([1])
    scope.waveform_format = "WORD"
    scope.waveform_byteorder = "LSBFIRST"
    scope.waveform_streaming = False
    full = scope.read_waveform_codes(scope.waveform_preamble)
    scope.write(":WAVeform:DATA? 101,8")
    head = scope.read_bytes(4)
    assert head == b"#216"
    part = np.frombuffer(scope.read_bytes(16), "<i2")
    assert scope.read_bytes(1) == b"\n"
    np.testing.assert_array_equal(part, full[100:108])
    assert np.all(full % 64 == 0)  # 10-bit codes left-justified in 16 bits


# -- SCPI behaviour and errors --------------------------------------------------------------------------


def test_long_short_forms_units_and_min_max(bench):
    lib, scope = bench()
    scope.write(":CHAN1:RANG 250MV")
    assert float(scope.ask(":CHANnel1:RANGe?")) == 0.25
    assert float(scope.ask(":chan1:scal?")) == 0.25 / 8
    scope.write(":CHANnel1:RANGe MAX")
    assert scope.ch_1.range == 0.8
    scope.write(":CHAN1:RANG MIN")
    assert scope.ch_1.range == 0.016
    scope.write(":TIM:SCAL 2NS")
    assert float(scope.ask(":TIMebase:RANGe?")) == pytest.approx(2e-8)
    scope.write(":ACQ:SRAT 10GSA/S")
    assert float(scope.ask(":ACQ:SRAT:ANAL?")) == 256e9 / 25
    scope.write(":ACQuire:SRATe:ANALog MAX")
    assert scope.sample_rate == 256e9
    scope.write(":TRIG:EDGE1:SLOP NEG;:TRIG:EDGE:SOUR AUX")
    assert scope.ask(":TRIGger:EDGE:SLOPe?").strip() == "NEG" and scope.trigger_source == "AUX"
    scope.write(":CHAN2:INP DCF")
    assert scope.ch_2.input == "DC50"
    assert scope.ask(":SYSTem:ERRor?").strip() == "0"


@pytest.mark.parametrize("command, code", [
    (":FOO:BAR 1", -113), (":CHAN5:RANG 0.1", -114), (":CHAN1:RANG 5", -222), (":CHAN1:OFFS 2", -222),
    (":CHAN1:INP DC", -224), (":TRIG:MODE GLIT", -221), (":WAV:FORM FLO", -221),
    (":TRIG:LEV CHAN1,1", -222), (":TRIG:LEV AUX,6", -222), (":DIG CHAN9", -224),
    (":ACQ:POIN 8", -222), (":TRIG:SWE NORM", -224), (":SYST:HEAD ON", -221),
])
def test_bad_commands_fill_the_error_queue(bench, command, code):
    lib, scope = bench()
    scope.write(command)
    assert int(scope.ask(":SYSTem:ERRor?")) == code
    assert scope.ask(":SYSTem:ERRor? STRing").strip() == '0,"No error"'


@pytest.mark.parametrize("attr, value, code", [
    ("range", 2.0, -222), ("offset", -1.5, -222), ("input", "DC", -224), ("trigger_level", 1.0, -222),
])
def test_driver_raises_typed_error_when_the_instrument_refuses(bench, attr, value, code):
    lib, scope = bench()
    with pytest.raises(InstrumentError) as info:
        setattr(scope.ch_1, attr, value)
    assert info.value.codes == [code]


def test_driver_refuses_out_of_family_range_before_sending(bench):
    lib, scope = bench()
    with pytest.raises(ValueOutOfRange):
        scope.ch_1.range = 100.0
    assert len(lib.instrument(RES).errors) == 0  # nothing reached the instrument
    assert scope.ch_1.range == 0.08


@pytest.mark.parametrize("params", [
    {"enob": 11.0}, {"enob": 0.5}, {"adc_bits": 10.5}, {"min_range_v": 1.0, "max_range_v": 0.5},
    {"max_sample_rate": -1}, {"input_modes": ["DC75"]}, {"bandwidth_hz": "fast"}, {"vertical_bits": 8},
])
def test_non_physical_parameters_are_refused(sim_bench, params):
    with pytest.raises(ValueError):
        SimKeysightInfiniium("scope", World(), params=params)
    with pytest.raises(BenchFileError):
        sim_bench({"scope": {"driver": "keysight.Infiniium", "resource": RES, "sim": {"params": params}}})


# -- throughput ---------------------------------------------------------------------------------------


def test_million_point_capture(bench):
    """A 1,000,000-point WORD capture through the driver; prints the MB/s (no timing assertion)."""
    lib, scope = bench()
    scope.record_length = 1_000_000
    scope.sample_rate = 256e9
    scope.set_vertical(1, 0.1, 0.0)
    started = time.perf_counter()
    t, volts = scope.capture([1])
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    _, again = scope.read_waveform(1)
    transfer = time.perf_counter() - started
    assert len(t) == len(volts[1]) == 1_000_000
    np.testing.assert_array_equal(again, volts[1])
    assert volts[1].std() == pytest.approx(sigma_total(0.1), rel=0.02)
    print(f"\n1,000,000-point capture: {2e6 / elapsed / 1e6:.0f} MB/s including acquisition "
          f"({elapsed * 1e3:.0f} ms); transfer alone {2e6 / transfer / 1e6:.0f} MB/s "
          f"({transfer * 1e3:.0f} ms)")
