"""Symbol-level model: ISI taps and noise against closed forms, and agreement with the waveform level.

Issue 4 acceptance: on the same parameter objects, a waveform-level simulation (DAC -> MZM -> fibre ->
[EDFA] -> photodiode -> ADC at 8 samples per symbol, ``waveform_link``) and the symbol-level model
(``SymbolCore.from_physics``) give the same mean and standard deviation of the detector output, per
transmitted PAM4 level, within 5 %.
"""

import math

import numpy as np
import pytest

from sim_backends.physics.awgr import AWGR
from sim_backends.physics.components import MachZehnderModulator
from sim_backends.physics.constants import K_B, Q
from sim_backends.physics.converters import ADC, DAC
from sim_backends.physics.edfa import EDFA
from sim_backends.physics.fibre import FibreSpan
from sim_backends.physics.filters import LowPass
from sim_backends.physics.receiver import Receiver
from sim_backends.physics.symbol_level import SymbolCore, isi_taps, standard_normal_f32, waveform_link

RATE = 16e9  # 16 GBd: 4 samples per symbol at the M8195A-class DAC's 64 GSa/s
TIA = dict(tia_gain_ohm=1000.0, input_noise_a_per_rthz=20e-12, rin_db_per_hz=-140.0)
LOW_ISI = dict(bandwidth_hz=30e9, response="butterworth", response_order=4)
HIGH_ISI = dict(bandwidth_hz=5e9, response="butterworth", response_order=2)
LEVELS = (-0.3, -0.1, 0.1, 0.3)  # DAC volts; x 2.5 driver gain around quadrature (V_pi 5 V)


# -- ISI taps: closed forms ---------------------------------------------------------------------------


@pytest.mark.parametrize("sample_frac", [0.5, 0.75])
def test_rc_taps_equal_the_nrz_step_response(sample_frac):
    """First-order RC (tau = 1 / (2 pi fc)) driven by one NRZ symbol [0, T): p(t) = 1 - e^{-t/tau} inside,
    (1 - e^{-T/tau}) e^{-(t - T)/tau} after; taps are p(t_s + k T), none before the symbol (causal)."""
    rate, fc = 10e9, 5e9
    t_sym, tau = 1 / rate, 1 / (2 * math.pi * fc)
    t_s = sample_frac * t_sym
    offsets, taps = isi_taps(LowPass(fc, "butterworth", 1).response, rate, t_s, max_taps=6, tolerance=0.0)
    tap = dict(zip(offsets.tolist(), taps.tolist()))
    assert tap[0] == pytest.approx(1 - math.exp(-t_s / tau), rel=1e-6)
    for k in (1, 2, 3):
        expected = (1 - math.exp(-t_sym / tau)) * math.exp(-(t_s + (k - 1) * t_sym) / tau)
        assert tap[k] == pytest.approx(expected, rel=1e-5)
    assert max(abs(tap[k]) for k in range(-6, 0)) < 1e-6
    assert sum(taps) == pytest.approx(1.0, abs=1e-12)  # NRZ taps sum to H(0)


def test_tap_truncation_keeps_dc_and_drops_small_taps():
    offsets, taps = isi_taps(LowPass(5e9, "butterworth", 1).response, 10e9, 0.5e-10, max_taps=8, tolerance=1e-2)
    assert offsets.tolist() == [0, 1, 2]  # 0.79, 0.199, 0.0086 kept; 0.0004 (< 1 % of 0.79) dropped...
    assert sum(taps) == pytest.approx(1.0)  # ...and added to the main cursor


def test_wideband_chain_has_no_isi_and_cd_fading_shapes_the_taps():
    rx = Receiver(bandwidth_hz=200e9, response="butterworth", response_order=4)
    core = SymbolCore.from_physics(1e9, receiver=rx)
    assert core.tap_offsets.tolist() == [0] and core.taps[0] == pytest.approx(1.0)
    # 25 km of SSMF at 16 GBd: the small-signal response has its first null at 12.1 GHz (PHYSICS.md)
    rx = Receiver(**LOW_ISI)
    plain = SymbolCore.from_physics(RATE, receiver=rx)
    span = SymbolCore.from_physics(RATE, receiver=rx, fibre=FibreSpan(25.0))
    assert span.transmission[0, 0] == pytest.approx(10 ** -0.5)  # 0.2 dB/km x 25 km
    assert np.sum(span.taps) == pytest.approx(1.0)
    assert span.taps[span.tap_offsets == 0][0] < plain.taps[plain.tap_offsets == 0][0] - 0.05


# -- noise variances: sum of the formulas ----------------------------------------------------------------


def test_noise_variance_is_the_sum_of_the_formulas():
    """Brickwall receiver (B_e = B) and no ADC filter: every term is PHYSICS.md's formula at the ADC."""
    r, b, i_d, g, rin = 0.8, 10e9, 5e-9, 2000.0, 10 ** (-140 / 10)
    i_n = 15e-12
    rx = Receiver(responsivity=r, dark_current=i_d, bandwidth_hz=b, tia_gain_ohm=g, input_noise_a_per_rthz=i_n,
                  rin_db_per_hz=-140.0)
    adc = ADC(bits=8, full_scale_v=1.0, enob=5.0, sample_rate=64e9, bandwidth_hz=None)
    ssp, b_o = 2e-17, 50e9
    core = SymbolCore.from_physics(10e9, receiver=rx, adc=adc, ase_psd_w_per_hz=ssp, optical_bw_hz=b_o)
    assert core.noise_bandwidth_hz == pytest.approx(b, rel=1e-9)
    p = 0.3e-3
    p_ase = 2 * ssp * b_o
    v = g * (r * p + i_d + r * p_ase)
    assert core.mean(np.full((64, 1), p))[32, 0] == pytest.approx(v)  # a constant input: taps sum to 1
    closed = {
        "shot": 2 * Q * (r * p + i_d + r * p_ase) * b,
        "thermal": i_n**2 * b,
        "rin": rin * (r * p) ** 2 * b,
        "signal_ase": 4 * r**2 * p * ssp * b,
        "ase_ase": 2 * r**2 * ssp**2 * (2 * b_o - b) * b,
    }
    var = core.noise_variances(v)
    for name, value in closed.items():
        assert var[name] == pytest.approx(g**2 * value, rel=1e-9), name
    assert var["adc_quantisation"] == pytest.approx((1.0 / 256) ** 2 / 12)
    assert var["adc_quantisation"] + var["adc_excess"] == pytest.approx(4.0**-5 / 12)  # FS^2 4^-ENOB / 12
    assert var["total"] == pytest.approx(g**2 * sum(closed.values()) + 4.0**-5 / 12, rel=1e-9)


def test_noise_bandwidth_includes_the_adc_front_end():
    """Noise reaching the sampler passes receiver and ADC: B_eff = int |H_rx H_adc|^2 df (two RC stages of
    equal fc: pi fc / 4, against pi fc / 2 for one)."""
    fc = 10e9
    rx = Receiver(bandwidth_hz=fc, response="butterworth", response_order=1)
    adc = ADC(bits=10, enob=None, sample_rate=256e9, bandwidth_hz=fc, response="butterworth", response_order=1)
    core = SymbolCore.from_physics(10e9, receiver=rx, adc=adc)
    assert core.noise_bandwidth_hz == pytest.approx(math.pi * fc / 4, rel=1e-6)
    thermal = core.noise_variances(0.0)["thermal"]
    assert thermal == pytest.approx(4 * K_B * 295 / 50 * math.pi * fc / 4 * 50**2, rel=1e-6)


def test_detect_noise_statistics_match_the_variance():
    """Per-symbol noise from the fast Gaussian path has the formula's variance at every signal level."""
    rx = Receiver(bandwidth_hz=10e9, response="butterworth", response_order=4, **TIA)
    core = SymbolCore.from_physics(10e9, receiver=rx, transmission=np.eye(2))
    x = np.repeat(np.array([[0.0, 2e-3], [1e-3, 4e-3]]), 100_000, axis=0)
    y = core.detect(x, np.random.default_rng(3))
    assert y.dtype == np.float32 and y.shape == x.shape
    for sl in (slice(1000, 99_000), slice(101_000, 199_000)):
        ref = core.mean(x[sl.start - 100:sl.start + 100])[100]  # steady state of a constant input
        for j in range(2):
            assert y[sl, j].mean() == pytest.approx(ref[j], abs=4 * math.sqrt(core.noise_variances(ref[j])["total"] / 98_000))
            assert y[sl, j].std() == pytest.approx(math.sqrt(core.noise_variances(ref[j])["total"]), rel=0.015)
    # RIN makes the variance grow with the signal: 4 mW has clearly more noise than 0
    assert y[101_000:199_000, 1].std() > 1.5 * y[1000:99_000, 0].std()


def test_fast_normal_moments_and_tails():
    z = standard_normal_f32(np.random.default_rng(11), 8_000_000).astype(np.float64)
    assert abs(z.mean()) < 5 / math.sqrt(z.size)
    assert z.var() == pytest.approx(1.0, abs=5 * math.sqrt(2 / z.size))
    assert np.mean(z**4) == pytest.approx(3.0, abs=5 * math.sqrt(96 / z.size))
    # exact tails beyond the table's outermost cell (|z| > 4.17): P(|z| > 4.5) = 6.80e-6
    expected = z.size * math.erfc(4.5 / math.sqrt(2))
    assert abs(np.sum(np.abs(z) > 4.5) - expected) < 5 * math.sqrt(expected)


# -- the N x N core ----------------------------------------------------------------------------------------


def test_awgr_core_is_one_matrix_product_of_the_routing_weights():
    awgr = AWGR(8)
    w = np.random.default_rng(0).random((8, 8))
    w /= w.sum(axis=1, keepdims=True)
    rx = Receiver(bandwidth_hz=40e9, response="butterworth", response_order=4, tia_gain_ohm=500.0)
    core = SymbolCore.from_physics(10e9, receiver=rx, awgr=awgr, carrier_weights=w)
    il = 10 ** (-awgr.insertion_loss_db / 10)
    # routed weight plus crosstalk, each from AWGR.transmission at the routing-table wavelength
    assert np.allclose(np.diag(core.transmission), il * np.diag(w), rtol=0.02)
    assert core.transmission[0, 1] == pytest.approx(
        sum(w[0, c] * float(awgr.transmission(1, 2, awgr.wavelength_for(1, c + 1))) for c in range(8)))
    x = np.random.default_rng(1).random((4096, 8)) * 1e-3
    y = core.detect(x, np.random.default_rng(2), noise=False)
    ref = core.mean(x)
    assert np.allclose(y, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    h = dict(zip(core.tap_offsets.tolist(), core.taps.tolist()))
    direct = 500.0 * 0.9 * sum(hk * (x[100 - k] @ core.transmission) for k, hk in h.items()) + core.offset_v
    assert np.allclose(ref[100], direct, rtol=1e-9)


def test_results_do_not_depend_on_threads():
    rx = Receiver(bandwidth_hz=20e9, response="butterworth", response_order=4, **TIA)
    core = SymbolCore.from_physics(RATE, receiver=rx, awgr=AWGR(16))
    x = np.random.default_rng(5).random((40_000, 16)).astype(np.float32) * 1e-3
    core.threads = 1
    one = core.detect(x, np.random.default_rng(9))
    core.threads = 2
    two = core.detect(x, np.random.default_rng(9))
    assert np.array_equal(one, two)


def test_bad_input_is_refused():
    rx = Receiver()
    with pytest.raises(ValueError, match="symbol_rate"):
        SymbolCore.from_physics(-1.0, receiver=rx)
    with pytest.raises(ValueError, match="DAC sample_rate"):
        SymbolCore.from_physics(10e9, receiver=rx, dac=DAC(sample_rate=64e9))
    with pytest.raises(ValueError, match="walk off"):  # a 16-carrier comb spans 12.8 nm: 5.4 ns over 25 km
        SymbolCore.from_physics(10e9, receiver=rx, awgr=AWGR(16), fibre=FibreSpan(25.0))
    core = SymbolCore.from_physics(10e9, receiver=rx, transmission=np.eye(3))
    with pytest.raises(ValueError, match="shape"):
        core.detect(np.zeros((10, 2)), np.random.default_rng(0))
    with pytest.raises(ValueError, match=">= 0"):
        core.detect(-np.ones((10, 3)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="Generator"):
        core.detect(np.ones((10, 3)), 42)
    with pytest.raises(ValueError, match="transmission"):
        SymbolCore(-np.eye(2), responsivity=0.9, gain_ohm=50.0)


# -- agreement with the waveform level (issue 4 acceptance) -------------------------------------------------


def _bench(receiver, *, laser_w, gain=2.5, fibre=None, preamp=None, adc_range=(0.5, 0.2)):
    dac = DAC()  # M8195A class: 8 bit, 64 GSa/s, 25 GHz, ENOB 5.5
    adc = ADC(bits=10, full_scale_v=adc_range[0], offset_v=adc_range[1], enob=6.0, sample_rate=128e9,
              bandwidth_hz=50e9)
    mzm = MachZehnderModulator("mzm", v_pi=5.0, insertion_loss_db=4.0, extinction_ratio_db=25.0,
                               eo_bandwidth_hz=30e9)
    return dict(dac=dac, adc=adc, mzm=mzm, receiver=receiver, bias_v=2.5, laser_power_w=laser_w,
                drive_gain=gain, fibre=fibre, preamp=preamp)


TIA_NO_RIN = dict(tia_gain_ohm=1000.0, input_noise_a_per_rthz=20e-12)
# (bench, does ISI spread a level by more than half its noise?) Dispersion ISI is exact only to first order in the
# modulation depth, so the fibre case drives the MZM with +-0.3 V instead of +-0.75 V.
CASES = {
    "0 dBm, low ISI": (dict(receiver=Receiver(**LOW_ISI, **TIA), laser_w=1e-3), False),
    "-10 dBm, low ISI": (dict(receiver=Receiver(**LOW_ISI, **TIA), laser_w=1e-4, adc_range=(0.05, 0.02)), False),
    "0 dBm, receiver ISI": (dict(receiver=Receiver(**HIGH_ISI, **TIA), laser_w=1e-3), True),
    "-10 dBm, receiver ISI": (dict(receiver=Receiver(**HIGH_ISI, **TIA), laser_w=1e-4, adc_range=(0.05, 0.02)), True),
    "25 km, dispersion ISI": (dict(receiver=Receiver(**LOW_ISI, **TIA_NO_RIN), laser_w=10e-3, gain=1.0,
                                   fibre=FibreSpan(25.0), adc_range=(1.0, 0.5)), True),
    "EDFA pre-amplifier, ASE": (dict(receiver=Receiver(**LOW_ISI, dark_current=1e-9), laser_w=1e-5,
                                     preamp=EDFA(20.0, 5.0, optical_bandwidth_hz=100e9), adc_range=(0.08, 0.03)), False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_symbol_level_agrees_with_waveform_level(case):
    kwargs, significant_isi = CASES[case]
    bench = _bench(**kwargs)
    symbols = np.random.default_rng(3).integers(0, 4, 2**15)
    drive = np.asarray(LEVELS)[symbols]
    wave, t_s = waveform_link(drive, np.random.default_rng(5), symbol_rate=RATE, **bench)

    preamp_in = 0.0
    if bench["preamp"] is not None:  # the EDFA's gain saturation sees the average power into it
        t_mzm = bench["mzm"].field_transmission(bench["drive_gain"] * drive, bench["bias_v"]) ** 2
        preamp_in = bench["laser_power_w"] * float(np.mean(t_mzm))
    core = SymbolCore.from_physics(RATE, sample_time_s=t_s, preamp_input_power_w=preamp_in, **bench)
    sym = core.detect_drive(drive[:, None], np.random.default_rng(7), quantise=True)[:, 0]
    noiseless = core.mean(core.powers_from_drive(drive[:, None], noise=False))[:, 0]

    inner = np.zeros(symbols.size, bool)
    inner[32:-32] = True  # the waveform record is periodic, the symbol batch starts and ends dark
    for level in range(4):
        sel = inner & (symbols == level)
        a, b = wave[sel], sym[sel].astype(float)
        assert b.mean() == pytest.approx(a.mean(), rel=0.05), (level, a.mean(), b.mean())
        assert b.std() == pytest.approx(a.std(), rel=0.05), (level, a.std(), b.std())
        isi = noiseless[sel].std()
        noise = math.sqrt(core.noise_variances(noiseless[sel].mean())["total"])
        assert (isi > 0.5 * noise) == significant_isi, (isi, noise)
    assert sym[inner].std() == pytest.approx(wave[inner].std(), rel=0.05)
