"""The unchanged M8195A driver against the simulated M8195A: SCPI behaviour and DAC physics."""

import math
import time

import numpy as np
import pytest

from drivers.errors import InstrumentError
from drivers.keysight.m8195a import DACMode, KeysightM8195A, MemoryMode
from sim_backends.bench import BenchFileError

RES = "TCPIP0::awg.labsim::hislip0::INSTR"


def bench(sim_bench, **params):
    """An AWG whose ch1 drives a heater load (a passive probe of world.voltage_into) and ch2 nothing.

    The held DAC output is checked here, so the analog output filter is off unless a test sets it
    (its response is tested in tests/physics/test_chain_waveform.py).
    """
    params.setdefault("analog_bandwidth_hz", None)
    return sim_bench(
        {"awg": {"driver": "keysight.M8195A", "resource": RES, "sim": {"params": params}}},
        components={"probe": {"type": "heater", "resistance_ohm": 50.0}},
        connections=["awg.ch1 -> probe.in"],
    )


@pytest.fixture
def quiet(sim_bench, open_sim):
    """Driver and library on an AWG with ENOB 8 bits: no excess noise, only the 8-bit codes."""
    lib = bench(sim_bench, enob_bits=8.0)
    return open_sim(KeysightM8195A, lib, RES), lib


@pytest.fixture
def noisy(sim_bench, open_sim):
    lib = bench(sim_bench)  # default ENOB 5.5 bits
    return open_sim(KeysightM8195A, lib, RES), lib


def sample_centres(t0, fs, n, first=0):
    return t0 + (np.arange(first, first + n) + 0.5) / fs


def errors_of(awg):
    with pytest.raises(InstrumentError) as info:
        awg.check_errors()
    return info.value.codes


# -- SCPI surface ------------------------------------------------------------------------------------


def test_identity_and_reset_values(quiet):
    awg, _ = quiet
    assert awg.id.startswith("Keysight Technologies,M8195A,")
    assert awg.sample_rate == 64e9
    assert awg.dac_mode is DACMode.FOUR
    assert awg.continuous is True and awg.gated is False
    for ch in awg.channels.values():
        assert ch.amplitude == 0.5 and ch.offset == 0.0 and ch.output_enabled is False
        assert ch.memory_mode is MemoryMode.EXTENDED and ch.segments == {}


def test_long_and_short_forms_units_and_min_max(quiet):
    awg, _ = quiet
    awg.write(":SOURce:FREQuency:RASTer 60 GHZ")
    assert awg.sample_rate == 60e9
    awg.write(":FREQ:RAST MIN")
    assert awg.sample_rate == 53.76e9
    assert float(awg.ask(":FREQ:RAST? MAX")) == 65e9
    awg.write(":SOUR:VOLT3:AMPL 250MV;:VOLTage3:OFFSet -0.1")
    assert awg.channels[3].amplitude == pytest.approx(0.25)
    assert awg.channels[3].offset == pytest.approx(-0.1)
    assert float(awg.ask(":VOLT3:HIGH?")) == pytest.approx(0.025)
    assert float(awg.ask(":VOLT3:LOW?")) == pytest.approx(-0.225)
    awg.write(":VOLT3:HIGH 0.3")  # low stays, amplitude and offset follow
    assert awg.channels[3].amplitude == pytest.approx(0.525)
    assert awg.channels[3].offset == pytest.approx(0.0375)
    awg.write(":OUTPut2:STATe ON")
    assert awg.channels[2].output_enabled is True
    awg.write(":INST:DACM DCDuplicate")
    assert awg.dac_mode is DACMode.DUAL_DUPLICATE
    assert awg.channels[3].memory_mode is MemoryMode.NONE  # channel 3 replays channel 1 in DCD
    awg.write("*RST")
    assert awg.dac_mode is DACMode.FOUR and awg.channels[3].amplitude == 0.5
    awg.check_errors()  # nothing above was an error


@pytest.mark.parametrize(
    "command, code",
    [(":VOLT1 1.5", -222), (":VOLT1 0.05", -222), (":VOLT2:OFFS 1.2", -222), (":FREQ:RAST 70e9", -222),
     (":TRAC1:DEF 1,1000", -222), (":TRAC1:DEF 1,1024", -222), (":VOLT5 0.5", -114),
     (":TRAC1:FOO", -113), (":INST:DACM OCTAL", -224), (":OUTP1 MAYBE", -224)],
)
def test_simulator_rejects_bad_settings(quiet, command, code):
    awg, _ = quiet
    awg.write(command)
    assert errors_of(awg) == [code]


def test_out_of_range_amplitude_never_reaches_the_instrument(quiet):
    awg, lib = quiet
    with pytest.raises(ValueError):
        awg.channels[1].amplitude = 1.5
    assert lib.instrument(RES).amplitude[1] == 0.5
    awg.check_errors()


def test_segment_table_and_extended_memory_sharing(quiet):
    awg, _ = quiet
    ch1, ch2 = awg.channels[1], awg.channels[2]
    ch1.define_segment(1, 2560)
    ch1.define_segment(3, 1280, init_value=7)
    assert ch2.segments == {1: 2560, 3: 1280}  # extended memory: one table for all channels
    assert awg.ask(":TRAC2:DATA? 3,0,4").strip() == "7,7,7,7"
    assert awg.ask(":TRAC1:DEF:NEW? 1536").strip() == "4"
    ch2.delete_segment(3)
    assert ch1.segments == {1: 2560, 4: 1536}
    awg.write(":TRAC1:DEF 1,1280")  # already defined
    assert errors_of(awg) == [-221]
    ch2.delete_all_segments()
    assert ch1.segments == {}
    # Internal memory: one segment per channel, lengths independent.
    ch2.memory_mode = MemoryMode.INTERNAL
    ch2.define_segment(1, 1280)
    ch1.define_segment(1, 2560)
    assert ch2.segments == {1: 1280} and ch1.segments == {1: 2560}
    awg.write(":TRAC2:DEF 2,1280")
    assert errors_of(awg) == [-222]


def test_data_bounds(quiet):
    awg, _ = quiet
    ch = awg.channels[1]
    ch.define_segment(1, 1280)
    ch.write_segment(1, np.arange(512, dtype=np.int8), offset=512)
    assert awg.ask(":TRAC1:DATA? 1,510,4").strip() == "0,0,0,1"
    with pytest.raises(InstrumentError) as info:
        ch.write_segment(1, np.zeros(1024, dtype=np.int8), offset=512)
    assert info.value.codes == [-223]
    with pytest.raises(InstrumentError) as info:
        ch.write_segment(1, np.zeros(16, dtype=np.int8), offset=100)  # not 2 memory vectors
    assert info.value.codes == [-222]
    awg.write(":TRAC1:DATA 1,0,5,-6,127")  # comma-separated values form
    assert awg.ask(":TRAC1:DATA? 1,0,3").strip() == "5,-6,127"


def test_run_control_errors(quiet):
    awg, _ = quiet
    awg.write(":INIT:IMM")
    assert errors_of(awg) == [-221]  # nothing to play
    awg.channels[1].upload_waveform(np.zeros(1280))
    awg.run()
    awg.write(":INIT:IMM")
    assert errors_of(awg) == [-213]
    with pytest.raises(InstrumentError) as info:
        awg.channels[1].upload_waveform(np.ones(2560))
    assert info.value.codes == [-221]
    with pytest.raises(InstrumentError):
        awg.dac_mode = DACMode.SINGLE
    awg.stop()
    awg.dac_mode = DACMode.SINGLE
    with pytest.raises(InstrumentError) as info:
        awg.channels[2].upload_waveform(np.zeros(1280))  # channel 2 carries nothing in SINGle
    assert info.value.codes == [-221]


def test_bad_parameters_refused(sim_bench):
    with pytest.raises(BenchFileError, match="enob_bits"):
        bench(sim_bench, enob_bits=12)
    with pytest.raises(BenchFileError, match="analog_bandwidth"):
        bench(sim_bench, analog_bandwidth_hz=-1)
    with pytest.raises(BenchFileError, match="unknown"):
        bench(sim_bench, bandwith_hz=1e9)


# -- physics -----------------------------------------------------------------------------------------


def test_running_output_is_the_sample_and_hold_closed_form(quiet):
    awg, lib = quiet
    fs, amplitude, offset = 60e9, 0.8, 0.1
    rng = np.random.default_rng(5)
    samples = rng.uniform(-1, 1, 2560)
    codes = np.rint(127 * samples)
    awg.sample_rate = fs
    ch = awg.channels[1]
    ch.upload_waveform(samples)
    ch.amplitude, ch.offset, ch.output_enabled = amplitude, offset, True
    lib.world.time = 3.25  # start at a non-zero clock
    awg.run()
    t = sample_centres(3.25, fs, 3 * samples.size, first=-10)  # 10 samples before the start, 3 loops
    expected = offset + amplitude / 2 * codes[np.arange(-10, 3 * samples.size - 10) % samples.size] / 127
    expected[:10] = 0.0  # nothing before :INIT:IMM
    np.testing.assert_allclose(lib.world.voltage_into("probe", "in", t), expected, atol=1e-12)
    sim = lib.instrument(RES)
    np.testing.assert_allclose(sim.electrical_output("ch1", t[10:20]), expected[10:20], atol=1e-12)
    assert sim.modulation_period() == pytest.approx(samples.size / fs)


def test_stopped_or_output_off_is_zero_volts(quiet):
    awg, lib = quiet
    ch = awg.channels[1]
    ch.upload_waveform(np.full(1280, 0.5))
    ch.offset = 0.2
    t = sample_centres(0.0, 64e9, 1000)
    sim = lib.instrument(RES)
    ch.output_enabled = True
    assert not lib.world.voltage_into("probe", "in", t).any()  # stopped
    assert sim.modulation_period() is None
    awg.run()
    np.testing.assert_allclose(lib.world.voltage_into("probe", "in", t), 0.2 + 0.25 * 64 / 127)
    ch.output_enabled = False
    assert not lib.world.voltage_into("probe", "in", t).any()  # output off while running
    ch.output_enabled = True
    awg.stop()
    assert not lib.world.voltage_into("probe", "in", t).any()
    awg.run()
    awg.shutdown()
    assert not sim.electrical_output("ch1", t).any()


def test_marker_is_high_for_the_first_eighth_of_each_repetition(quiet):
    awg, lib = quiet
    fs, n = 64e9, 2048
    awg.channels[1].upload_waveform(np.zeros(n))
    sim = lib.instrument(RES)
    t = sample_centres(0.0, fs, 3 * n)
    assert not sim.electrical_output("marker", t).any()
    awg.run()
    marker = sim.electrical_output("marker", t)
    expected = np.where(np.arange(3 * n) % n < n // 8, 1.0, 0.0)
    np.testing.assert_array_equal(marker, expected)


def test_channels_play_their_own_segments_in_internal_memory(quiet):
    awg, lib = quiet
    fs = 64e9
    ch1, ch2 = awg.channels[1], awg.channels[2]
    ch2.memory_mode = MemoryMode.INTERNAL
    ch1.upload_waveform(np.tile([1.0, -1.0], 640))  # 1280 samples
    ch2.upload_waveform(np.repeat([0.5, -0.5], 768))  # 1536 samples
    ch1.output_enabled = ch2.output_enabled = True
    awg.run()
    sim = lib.instrument(RES)
    t = sample_centres(0.0, fs, 1536 * 5)
    k = np.arange(t.size)
    np.testing.assert_allclose(sim.electrical_output("ch1", t), 0.25 * np.where(k % 2 == 0, 1, -1))
    expected2 = 0.25 * np.where(k % 1536 < 768, 64, -64) / 127
    np.testing.assert_allclose(sim.electrical_output("ch2", t), expected2)
    assert sim.modulation_period() == pytest.approx(math.lcm(1280, 1536) / fs)


def test_extended_memory_divider_halves_the_playback_rate(quiet):
    awg, lib = quiet
    awg.extended_memory_divider = 2
    ramp = np.arange(1280) / 1279 * 2 - 1
    awg.channels[1].upload_waveform(ramp)
    awg.channels[1].output_enabled = True
    awg.run()
    fs = 64e9
    t = (np.arange(100) + 0.5) / fs
    codes = np.rint(127 * ramp)[np.arange(100) // 2]
    np.testing.assert_allclose(lib.instrument(RES).electrical_output("ch1", t), 0.25 * codes / 127)


def test_triggered_mode_plays_once_per_trigger(quiet):
    awg, lib = quiet
    fs, n = 64e9, 1280
    samples = np.linspace(-1, 1, n)
    ch = awg.channels[1]
    ch.upload_waveform(samples)
    ch.offset, ch.output_enabled = 0.1, True
    awg.continuous = False
    awg.run()
    sim = lib.instrument(RES)
    t = sample_centres(0.0, fs, 2 * n)
    np.testing.assert_allclose(sim.electrical_output("ch1", t), 0.1)  # armed, idle at code 0
    lib.world.time = 1e-6
    awg.send_trigger()
    t = sample_centres(1e-6, fs, 2 * n)
    played = 0.1 + 0.25 * np.rint(127 * samples) / 127
    np.testing.assert_allclose(sim.electrical_output("ch1", t), np.concatenate([played, np.full(n, 0.1)]))
    assert sim.modulation_period() is None
    awg.stop()
    awg.continuous = True
    awg.write(":TRIG:BEG")  # not running in triggered mode
    assert errors_of(awg) == [-211]


def test_marker_dac_mode_outputs_marker_bits_on_channels_3_and_4(quiet):
    awg, lib = quiet
    awg.dac_mode = DACMode.MARKER
    n = 1280
    ch1 = awg.channels[1]
    ch1.define_segment(1, n)
    samples = np.zeros(n, dtype=np.int8)
    markers = (np.arange(n) % 4).astype(np.int8)  # bit 0 -> ch3, bit 1 -> ch4
    interleaved = np.empty(2 * n, dtype=np.int8)
    interleaved[0::2], interleaved[1::2] = samples, markers
    ch1.write_segment(1, interleaved)
    for ch in (3, 4):
        awg.channels[ch].amplitude = 0.4
        awg.channels[ch].output_enabled = True
    awg.run()
    sim = lib.instrument(RES)
    t = sample_centres(0.0, 64e9, n)
    k = np.arange(n)
    np.testing.assert_allclose(sim.electrical_output("ch3", t), np.where(k % 2 == 1, 0.2, -0.2))
    np.testing.assert_allclose(sim.electrical_output("ch4", t), np.where(k % 4 >= 2, 0.2, -0.2))


def test_excess_noise_reaches_the_enob(noisy):
    """Full-scale coherent sine: SINAD of the simulated output gives ENOB = (SINAD_dB - 1.76)/6.02."""
    awg, lib = noisy
    fs, n = 64e9, 4096
    k = np.arange(n)
    ideal = np.sin(2 * np.pi * 37 * k / n)  # 37 periods in the segment: coherent, all codes used
    ch = awg.channels[1]
    ch.amplitude, ch.output_enabled = 1.0, True
    ch.upload_waveform(ideal)
    awg.run()
    loops = 50
    t = sample_centres(0.0, fs, n * loops)
    volts = lib.instrument(RES).electrical_output("ch1", t)
    half_swing = 0.5
    error = volts - half_swing * np.tile(ideal, loops)
    sinad_db = 10 * np.log10((half_swing**2 / 2) / np.mean(error**2))
    assert (sinad_db - 1.76) / 6.02 == pytest.approx(5.5, abs=0.05)
    # The excess part alone (output minus the 8-bit code levels) is white with the closed-form sigma.
    excess = volts - half_swing * np.tile(np.rint(127 * ideal), loops) / 127
    sigma = math.sqrt(half_swing**2 / 2 * 10 ** (-(6.02 * 5.5 + 1.76) / 10) - (half_swing / 127) ** 2 / 12)
    assert np.std(excess) == pytest.approx(sigma, rel=0.02)
    assert abs(np.mean(excess)) < 5 * sigma / math.sqrt(excess.size)


def test_million_sample_upload_round_trips(quiet, capsys):
    awg, lib = quiet
    ch = awg.channels[1]
    samples = np.random.default_rng(11).uniform(-1, 1, 1_000_000)
    codes = np.rint(127 * samples).astype(np.int8)
    ch.upload_waveform(samples)  # 1e6 is not a multiple of 256: repeated 4 times
    assert ch.segments == {1: 4_000_000}
    head = np.array(awg.ask(":TRAC1:DATA? 1,0,1000").split(","), dtype=int)
    seam = np.array(awg.ask(":TRAC1:DATA? 1,999488,1024").split(","), dtype=int)
    np.testing.assert_array_equal(head, codes[:1000])
    np.testing.assert_array_equal(seam, np.concatenate([codes[999_488:], codes[:512]]))
    stored = lib.instrument(RES).segment_samples(1)
    np.testing.assert_array_equal(stored, np.tile(codes, 4))
    # One transfer of 2**20 samples (a valid length): report the throughput, assert nothing on time.
    big = np.random.default_rng(12).uniform(-1, 1, 1 << 20)
    start = time.perf_counter()
    ch.upload_waveform(big)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(lib.instrument(RES).segment_samples(1), np.rint(127 * big).astype(np.int8))
    with capsys.disabled():
        print(f"\nM8195A upload of {big.size} samples: {big.size / elapsed / 1e6:.0f} MB/s")


def test_dual_duplicate_mode_replays_channels_1_and_2_with_own_levels(quiet):
    awg, lib = quiet
    awg.dac_mode = DACMode.DUAL_DUPLICATE
    n = 1280
    awg.channels[1].upload_waveform(np.tile([1.0, 0.0], n // 2))
    awg.channels[2].upload_waveform(np.tile([0.0, -1.0], n // 2))
    awg.channels[3].amplitude, awg.channels[3].offset = 0.2, 0.3
    awg.channels[4].amplitude = 1.0
    for ch in (1, 2, 3, 4):
        awg.channels[ch].output_enabled = True
    awg.run()
    sim = lib.instrument(RES)
    t = sample_centres(0.0, 64e9, n)
    even = np.arange(n) % 2 == 0
    np.testing.assert_allclose(sim.electrical_output("ch3", t), np.where(even, 0.4, 0.3))
    np.testing.assert_allclose(sim.electrical_output("ch4", t), np.where(even, 0.0, -0.5))


def test_gated_mode_plays_while_the_gate_is_open(quiet):
    awg, lib = quiet
    fs, n = 64e9, 1280
    ch = awg.channels[1]
    ch.upload_waveform(np.ones(n))
    ch.output_enabled = True
    awg.continuous, awg.gated = False, True
    awg.run()
    sim = lib.instrument(RES)
    lib.world.time = 1e-6
    awg.write(":TRIG:BEG:GATE ON")
    lib.world.time = 1e-6 + 3 * n / fs
    awg.write(":TRIG:BEG:GATE OFF")
    awg.check_errors()
    t = np.array([0.5e-6, 1e-6 + 0.5 / fs, 1e-6 + 2.5 * n / fs, 1e-6 + 3.5 * n / fs])
    np.testing.assert_allclose(sim.electrical_output("ch1", t), [0.0, 0.25, 0.25, 0.0])
