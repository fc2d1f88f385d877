"""The waveform-level chain on the world path, against closed forms (PHYSICS.md sections 2 and 3).

Test-only sources (a tone-modulated or pulsed optical field, a sine or DC voltage) feed the bench
parts through ``World``; every expected value is a textbook formula with the part's configured
parameters: CD power fading cos(pi D L lambda^2 f^2 / c) and its nulls, walk-off D L dlambda, SPM
phase gamma P L_eff, EO and analog low-pass responses, the ZOH sinc, white-noise variance
N0 integral |H|^2 df, aperture-jitter noise (2 pi f A sigma_t)^2 / 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, signal

from drivers.keysight.infiniium import KeysightInfiniium
from drivers.keysight.m8195a import KeysightM8195A
from sim_backends.bench import BenchFileError
from sim_backends.physics.components import Fibre, MachZehnderModulator, Photodiode
from sim_backends.physics.grids import band_grid, uniform_step
from sim_backends.physics.constants import C, K_B, Q
from sim_backends.physics.laser import laser_field
from sim_backends.world import ELECTRICAL_OUT, OPTICAL_IN, OPTICAL_OUT, Component, Lightwave, World

LAMBDA = 1550e-9
D_S_M2 = 17e-6  # 17 ps/nm/km in s/m^2


class ToneSource(Component):
    """Optical field sqrt(P0 (1 + m cos(2 pi f t))) (chirp-free intensity tone), or a Gaussian pulse train."""

    PORTS = {"out": OPTICAL_OUT}

    def __init__(self, power_w=1e-3, depth=0.0, frequency=0.0, wavelengths=(LAMBDA,), pulse=None, period=None):
        self.power_w, self.depth, self.frequency = power_w, depth, frequency
        self.wavelengths, self.pulse, self.period = wavelengths, pulse, period

    def optical_output(self, port, t):
        t = np.asarray(t, dtype=float)
        if self.pulse is not None:  # (centre, rms width): Gaussian intensity pulse
            centre, width = self.pulse
            field = math.sqrt(self.power_w) * np.exp(-((t - centre) ** 2) / (4 * width**2))
        else:
            field = np.sqrt(self.power_w * (1 + self.depth * np.cos(2 * np.pi * self.frequency * t)))
        return [Lightwave(w, field.astype(complex)) for w in self.wavelengths]

    def modulation_period(self):
        return self.period


class VoltageSource(Component):
    """``dc + amplitude sin(2 pi f t)`` on ``out``; a constant ``bias`` on ``dc``."""

    PORTS = {"out": ELECTRICAL_OUT, "dc": ELECTRICAL_OUT}

    def __init__(self, amplitude=0.0, frequency=0.0, bias=0.0):
        self.amplitude, self.frequency, self.bias = amplitude, frequency, bias

    def electrical_output(self, port, t):
        t = np.asarray(t, dtype=float)
        if port == "dc":
            return np.full(t.shape, self.bias)
        return self.amplitude * np.sin(2 * np.pi * self.frequency * t)


class Sink(Component):
    PORTS = {"in": OPTICAL_IN}


def wire(*parts, links=(), seed=0):
    world = World(seed=seed)
    for name, part in parts:
        world.add(name, part)
    for a, b in links:
        world.connect(a, b)
    return world


def tone(t, x, f):
    """Complex amplitude of the tone at f (records spanning whole periods)."""
    return 2 * np.mean((x - np.mean(x)) * np.exp(-2j * np.pi * f * t))


# -- grids -----------------------------------------------------------------------------------------


def test_uniform_grids_are_recognised_and_others_are_not():
    assert uniform_step(1.25 + np.arange(1000) * 4e-12) == pytest.approx(4e-12)
    assert uniform_step(np.zeros(5)) is None  # no spacing
    assert uniform_step(np.array([0.0])) is None
    rng = np.random.default_rng(0)
    assert uniform_step(np.arange(1000) * 4e-12 + rng.normal(0, 1e-13, 1000)) is None  # jittered
    assert uniform_step(np.concatenate([np.arange(500), 600 + np.arange(500)]) * 1e-12) is None  # gap
    # a coarse grid is oversampled to >= 2 B; a much too coarse one gets the DC response only
    assert band_grid(np.arange(100) / 16e9, 20e9, 1e-10).k == 3
    assert band_grid(np.arange(100) / 1e9, 20e9, 1e-10) is None


# -- fibre: dispersion on the field ----------------------------------------------------------------


def signed_fading(length_km, f, fs=256e9, n=8192):
    """Detected tone after the span relative to the launched one (signed, delay removed)."""
    source = ToneSource(1e-3, depth=0.01, frequency=f)
    fibre = Fibre("f", length_km, attenuation_db_per_km=0.2, dispersion_ps_nm_km=17.0)
    world = wire(("src", source), ("f", fibre), links=[("src.out", "f.in")])
    t = 0.37e-6 + np.arange(n) / fs
    (out,) = fibre.optical_output("out", t)
    amplitude = tone(t - fibre.delay_s, np.abs(out.field) ** 2, f)
    return amplitude.real / (0.01 * 1e-3 * fibre.power_transmission), abs(amplitude.imag) / (0.01e-3 * fibre.power_transmission)


@pytest.mark.parametrize("length_km, table_ghz", [(10, 19.2), (25, 12.1), (50, 8.6), (80, 6.8)])
def test_dispersion_on_the_world_path_gives_the_power_fading_nulls(length_km, table_ghz):
    fs, n = 256e9, 8192
    bin_hz = fs / n
    kappa = D_S_M2 * length_km * 1e3 * LAMBDA**2 / C
    null = math.sqrt(1 / (2 * kappa))  # first zero of cos(pi kappa f^2)
    for f in (1e9, 0.5 * null, 0.9 * null, 1.3 * null):
        f = round(f / bin_hz) * bin_hz
        response, quadrature = signed_fading(length_km, f)
        assert response == pytest.approx(math.cos(np.pi * kappa * f**2), abs=2e-3)
        assert quadrature < 2e-3  # chirp-free: the detected tone stays real (no phase but the sign)
    # locate the zero crossing between FFT bins and compare with PHYSICS.md's table
    k = int(null / bin_hz)
    r0, r1 = signed_fading(length_km, k * bin_hz)[0], signed_fading(length_km, (k + 1) * bin_hz)[0]
    assert r0 > 0 > r1
    measured = (k + r0 / (r0 - r1)) * bin_hz
    assert measured == pytest.approx(null, rel=1e-3)
    assert measured / 1e9 == pytest.approx(table_ghz, abs=0.05)


def test_walk_off_between_wdm_carriers_is_d_l_dlambda():
    """Two carriers 0.8 nm apart launched with the same pulse arrive D L dlambda = 340 ps apart at 25 km."""
    lam = (1550e-9, 1550.8e-9)
    source = ToneSource(1e-3, wavelengths=lam, pulse=(1e-9, 20e-12))
    fibre = Fibre("f", 25.0)
    wire(("src", source), ("f", fibre), links=[("src.out", "f.in")])
    fs = 256e9
    t = 1e-9 + fibre.delay_s - 1e-9 + np.arange(int(2.5e-9 * fs)) / fs
    arrivals = []
    for carrier in fibre.optical_output("out", t):
        p = np.abs(carrier.field.astype(complex)) ** 2  # (the fibre's records are complex64)
        arrivals.append(np.sum((t - t[0]) * p) / np.sum(p) + t[0])  # centroid: moves at the group velocity
    assert arrivals[0] - 1e-9 == pytest.approx(fibre.span.group_delay(lam[0]), abs=0.05e-12)
    assert arrivals[1] - arrivals[0] == pytest.approx(D_S_M2 * 25e3 * 0.8e-9, abs=0.05e-12)  # 340 ps
    assert D_S_M2 * 25e3 * 0.8e-9 == pytest.approx(340e-12)
    # a single instant: no dispersion, each carrier delayed by its own group delay
    single = fibre.optical_output("out", np.array([1e-9 + fibre.span.group_delay(lam[1])]))
    assert abs(single[1].field[0]) ** 2 == pytest.approx(1e-3 * fibre.power_transmission, rel=1e-9)


def test_kerr_phase_of_a_cw_field_is_minus_gamma_p_l_eff():
    power, length = 0.1, 25.0
    results = []
    for nonlinear in (False, True):
        fibre = Fibre("f", length, nonlinear=nonlinear, gamma_per_w_km=1.3)
        wire(("src", ToneSource(power)), ("f", fibre), links=[("src.out", "f.in")])
        uniform = fibre.optical_output("out", np.arange(1024) / 256e9)[0].field
        single = fibre.optical_output("out", np.zeros(1))[0].field
        results.append((np.angle(uniform[512]), np.angle(single[0]), np.abs(uniform[512]) ** 2))
    l_eff = (1 - 10 ** (-0.2 * length / 10)) / (0.2 * math.log(10) / 10)  # km: 14.8 km at 25 km
    assert l_eff == pytest.approx(14.8, abs=0.05)
    expected = -1.3 * power * l_eff
    assert results[0][0] == pytest.approx(0.0, abs=1e-6)
    assert results[1][0] - results[0][0] == pytest.approx(expected, abs=2e-3)  # split-step, CW
    assert results[1][1] == pytest.approx(expected, abs=1e-9)
    assert results[1][2] == pytest.approx(results[0][2], rel=1e-5)  # SPM alone changes no power


def test_power_meter_average_is_unaffected_by_dispersion():
    period = 100 / 9.5e9  # a 9.5 GHz, 80 % intensity tone: strongly distorted after 80 km, same mean
    source = ToneSource(2e-3, depth=0.8, frequency=9.5e9, period=period)
    fibre = Fibre("f", 80.0)
    world = wire(("src", source), ("f", fibre), ("pm", Sink()), links=[("src.out", "f.in"), ("f.out", "pm.in")])
    average = world.average_power_into("pm", "in", 1e-3)
    assert average == pytest.approx(2e-3 * fibre.power_transmission, rel=1e-5)
    # the waveform itself did change: the 9.5 GHz tone sits next to the 80 km fading null (6.8 GHz)
    t = np.arange(8192) / 256e9
    received = np.abs(fibre.optical_output("out", t)[0].field) ** 2
    launched = 2e-3 * (1 + 0.8 * np.cos(2 * np.pi * 9.5e9 * (t - fibre.delay_s))) * fibre.power_transmission
    assert np.max(np.abs(received - launched)) > 0.2 * np.max(launched)


# -- modulator ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("f", [0.2e9, 5e9, 10e9, 20e9])
def test_mzm_small_signal_response_is_v_pi_rf_slope_times_eo_lowpass(f):
    v_pi, v_pi_rf, v0, bandwidth, il_db, er_db = 5.0, 5.5, 1.3, 10e9, 4.0, 25.0
    mzm = MachZehnderModulator("m", v_pi=v_pi, v_pi_rf=v_pi_rf, phase_offset_v=v0, eo_bandwidth_hz=bandwidth,
                               insertion_loss_db=il_db, extinction_ratio_db=er_db)
    drive = VoltageSource(amplitude=0.02, frequency=f, bias=v_pi / 2 - v0)  # bias: theta = pi/4, quadrature
    wire(("src", ToneSource(1e-3)), ("v", drive), ("m", mzm),
         links=[("src.out", "m.in"), ("v.out", "m.rf"), ("v.dc", "m.bias")])
    fs = 256e9
    n = int(round(fs / 0.2e9)) * 4  # whole periods of every tone above
    t = np.arange(n) / fs
    (out,) = mzm.optical_output("out", t)
    measured = abs(tone(t, np.abs(out.field) ** 2, f))
    eps = 1 / (10 ** (er_db / 10) + 1)
    slope = 1e-3 * 10 ** (-il_db / 10) * (1 - 2 * eps) * np.pi / (2 * v_pi_rf)  # W/V at quadrature
    eo = 1 / math.sqrt(1 + (f / bandwidth) ** 2)  # first-order EO roll-off
    assert measured == pytest.approx(slope * 0.02 * eo, rel=2e-3)
    if f == bandwidth:
        assert 20 * math.log10(eo) == pytest.approx(-3.01, abs=0.01)


# -- photodiode --------------------------------------------------------------------------------------


def n0(power, responsivity=0.9, dark=5e-9, load=50.0, temperature=295.0):
    """One-sided current-noise PSD, A^2/Hz: shot 2 q I + thermal 4 k T / R_L."""
    return 2 * Q * (responsivity * power + dark) + 4 * K_B * temperature / load


def butterworth_power(f, f3db=20e9, order=2):
    return 1 / (1 + (np.asarray(f) / f3db) ** (2 * order))


def photodiode_chain(power):
    pd = Photodiode("pd", responsivity_a_per_w=0.9, dark_current_a=5e-9, bandwidth_hz=20e9,
                    response="butterworth", response_order=2, load_ohm=50.0)
    parts = [("pd", pd)] + ([("src", ToneSource(power))] if power else [])
    return pd, wire(*parts, links=[("src.out", "pd.in")] if power else [], seed=3)


@pytest.mark.parametrize("power", [0.0, 1e-3])
def test_photodiode_noise_is_band_limited_by_the_receiver_response(power):
    pd, world = photodiode_chain(power)
    fs, n = 256e9, 1 << 17
    current = pd.electrical_output("out", 1e-6 + np.arange(n) / fs) / 50.0
    band = integrate.quad(butterworth_power, 0, fs / 2, limit=200)[0]  # integral_0^{fs/2} |H|^2 df
    # mean: 5 standard errors of a band-limited record (~ n B_e / fs independent samples)
    assert np.mean(current) == pytest.approx(0.9 * power + 5e-9, abs=5 * math.sqrt(n0(power) * band / (n * band / fs)))
    assert np.var(current) == pytest.approx(n0(power) * band, rel=0.03)
    # the spectrum follows N0 |H(f)|^2: white noise shaped by the receiver, not white
    f, psd = signal.welch(current, fs=fs, nperseg=4096)
    for f_check in (5e9, 20e9, 40e9):
        i = int(np.argmin(np.abs(f - f_check)))
        assert psd[i] == pytest.approx(n0(power) * butterworth_power(f[i]), rel=0.12)


def test_photodiode_noise_on_coarse_grids_and_single_points():
    pd, world = photodiode_chain(1e-3)
    # a 16 GSa/s grid is oversampled x8 (128 GSa/s >= 6 B, components.signal_grid), filtered and
    # decimated: each sample keeps the variance of the whole receiver band, N0 integral_0^64GHz |H|^2
    current = pd.electrical_output("out", np.arange(1 << 16) / 16e9) / 50.0
    band = integrate.quad(butterworth_power, 0, 64e9)[0]
    assert np.var(current) == pytest.approx(n0(1e-3) * band, rel=0.03)
    # single points: the variance over the receiver's whole noise bandwidth, 20 GHz (pi/4)/sin(pi/4)
    current = pd.electrical_output("out", np.zeros(100_000)) / 50.0
    assert np.var(current) == pytest.approx(n0(1e-3) * 20e9 * (np.pi / 4) / math.sin(np.pi / 4), rel=0.02)


def test_laser_rin_per_sample_variance_is_rin_times_half_the_rate():
    fs = 256e9
    field = laser_field(2e-3, np.arange(200_000) / fs, -140.0, 0.0, np.random.default_rng(1))
    relative = np.abs(field) ** 2 / 2e-3 - 1
    assert np.var(relative) == pytest.approx(10 ** (-14.0) * fs / 2, rel=0.02)


# -- converters on the instruments ---------------------------------------------------------------


AWG_RES = "TCPIP0::awg.labsim::hislip0::INSTR"
SCOPE_RES = "TCPIP0::scope.labsim::hislip0::INSTR"


def awg_probe(sim_bench, open_sim, **params):
    lib = sim_bench({"awg": {"driver": "keysight.M8195A", "resource": AWG_RES, "sim": {"params": params}}},
                    components={"probe": {"type": "heater", "resistance_ohm": 50.0}},
                    connections=["awg.ch1 -> probe.in"])
    return open_sim(KeysightM8195A, lib, AWG_RES), lib


@pytest.mark.parametrize("cycles", [20, 500, 1000])
def test_awg_output_is_the_hold_sinc_times_its_analog_bandwidth(sim_bench, open_sim, cycles):
    awg, lib = awg_probe(sim_bench, open_sim, enob_bits=8.0, analog_bandwidth_hz=25e9)
    fs, length = 64e9, 2560
    awg.sample_rate = fs
    ch = awg.channels[1]
    ch.upload_waveform(np.sin(2 * np.pi * cycles * np.arange(length) / length))
    ch.amplitude, ch.output_enabled = 1.0, True
    awg.run()
    f = cycles * fs / length  # 0.5, 12.5 and 25 GHz
    t = 1e-9 + np.arange(4 * length * 4) / (4 * fs)  # 4 x the DAC rate, 4 repetitions
    measured = abs(tone(t, lib.world.voltage_into("probe", "in", t), f))
    codes = np.rint(127 * np.sin(2 * np.pi * cycles * np.arange(length) / length)) / 127
    sent = 0.5 * abs(tone(np.arange(length) / fs, codes, f))  # the 8-bit sine's fundamental, V
    # the hold seen on a grid of 4 points per DAC sample: a 4-point boxcar, sin(pi f/fs) / (4 sin(pi f/4fs))
    # (the ZOH sinc(f/fs) in the limit of a fine grid), then the 4th-order Butterworth at 25 GHz
    hold = math.sin(np.pi * f / fs) / (4 * math.sin(np.pi * f / (4 * fs)))
    expected = sent * hold / math.sqrt(1 + (f / 25e9) ** 8)
    assert measured == pytest.approx(expected, rel=2e-3)
    assert hold == pytest.approx(np.sinc(f / fs), rel=0.02)


def test_awg_excess_noise_is_held_for_a_whole_dac_sample(sim_bench, open_sim):
    awg, lib = awg_probe(sim_bench, open_sim, enob_bits=5.0, analog_bandwidth_hz=None)
    awg.sample_rate = 64e9
    awg.channels[1].upload_waveform(np.zeros(1280))
    awg.channels[1].output_enabled = True
    awg.run()
    v = lib.world.voltage_into("probe", "in", (np.arange(4000) + 0.5) / (4 * 64e9)).reshape(-1, 4)
    assert np.all(v == v[:, :1])  # four samples inside one DAC sample see the same noise
    assert np.std(v[:, 0]) > 0


def scope_with(sim_bench, open_sim, source, **params):
    lib = sim_bench({"scope": {"driver": "keysight.Infiniium", "resource": SCOPE_RES,
                               "sim": {"params": {"enob": 6.0, **params}}}}, seed=2)
    lib.world.add("src", source)
    lib.world.connect("src.out", "scope.ch1")
    scope = open_sim(KeysightInfiniium, lib, SCOPE_RES)
    scope.sample_rate = 256e9
    scope.record_length = 1 << 15
    return scope


@pytest.mark.parametrize("f, expected_db", [(1e9, 0.0), (20e9, -3.0103)])
def test_scope_front_end_is_its_analog_bandwidth(sim_bench, open_sim, f, expected_db):
    scope = scope_with(sim_bench, open_sim, VoltageSource(0.1, f), bandwidth_hz=20e9, jitter_s=0.0)
    scope.set_vertical(1, 0.25, 0.0)
    t, v = scope.capture([1])
    measured = abs(tone(t, v[1], f))  # 2^15 points at 256 GSa/s: 128 and 2560 whole periods
    assert 20 * math.log10(measured / 0.1) == pytest.approx(expected_db, abs=0.03)


def test_scope_aperture_jitter_adds_slope_times_sigma_t(sim_bench, open_sim):
    f, amplitude, jitter, range_v = 10e9, 0.1, 1e-12, 0.25
    scope = scope_with(sim_bench, open_sim, VoltageSource(amplitude, f), jitter_s=jitter)
    scope.set_vertical(1, range_v, 0.0)
    t, v = scope.capture([1])
    basis = np.column_stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t), np.ones_like(t)])
    residual = v[1] - basis @ np.linalg.lstsq(basis, v[1], rcond=None)[0]
    scope_noise = range_v / (2**6 * math.sqrt(12))  # ENOB 6 at full scale
    jitter_noise2 = (2 * np.pi * f * amplitude * jitter) ** 2 / 2  # jitter-limited SNR -20 log10(2 pi f sigma_t)
    assert np.var(residual) == pytest.approx(scope_noise**2 + jitter_noise2, rel=0.05)
    assert jitter_noise2 > 3 * scope_noise**2  # the jitter term dominates: the check is not vacuous


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, name", [
    (lambda: Fibre("f", 1.0, nonlinear="yes"), "nonlinear"),
    (lambda: Fibre("f", 1.0, dispersion_ps_nm_km=5000), "dispersion_ps_nm_km"),
    (lambda: MachZehnderModulator("m", eo_bandwidth_hz=-1.0), "eo_bandwidth_hz"),
    (lambda: MachZehnderModulator("m", v_pi_rf=0.0), "v_pi_rf"),
    (lambda: MachZehnderModulator("m", eo_response="sinc"), "eo_response"),
    (lambda: Photodiode("p", responsivity_a_per_w=2.0), "responsivity_a_per_w"),
    (lambda: Photodiode("p", response="sinc"), "response"),
    (lambda: Photodiode("p", saturation_current_a=0.0), "saturation_current_a"),
])
def test_non_physical_part_parameters_are_refused_with_their_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("driver, resource, params, name", [
    ("keysight.M8195A", AWG_RES, {"analog_bandwidth_hz": -1.0}, "analog_bandwidth_hz"),
    ("keysight.M8195A", AWG_RES, {"analog_response": "sinc"}, "analog_response"),
    ("keysight.Infiniium", SCOPE_RES, {"jitter_s": -1e-15}, "jitter_s"),
    ("keysight.Infiniium", SCOPE_RES, {"response": "sinc"}, "response"),
])
def test_non_physical_instrument_parameters_are_refused(sim_bench, driver, resource, params, name):
    with pytest.raises(BenchFileError, match=name):
        sim_bench({"x": {"driver": driver, "resource": resource, "sim": {"params": params}}})
