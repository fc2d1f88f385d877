"""Device methods a controller model uses, and the one home of parameter validation."""

import math

import numpy as np
import pytest

from sim_backends.physics.amplifier import RFAmplifierModel
from sim_backends.physics.components import Fibre, MachZehnderModulator, Photodiode
from sim_backends.physics.constants import K_B, Q
from sim_backends.physics.electrical import RFAmplifier
from sim_backends.physics.modulator import MachZehnderModel
from sim_backends.physics.receiver import NoiseTerms, Receiver
from sim_backends.physics.validation import (
    param,
    require_int,
    require_non_negative,
    require_positive,
    require_range,
    require_wavelengths,
)
from sim_backends.world import OPTICAL_OUT, Component, Lightwave, World


def test_mzm_transmission_is_cos_squared_of_rf_plus_bias_with_finite_extinction():
    mzm = MachZehnderModulator("m", v_pi=4.0, v_pi_rf=2.0, insertion_loss_db=3.0, extinction_ratio_db=20.0,
                               phase_offset_v=0.5)
    v_rf, v_bias = np.array([-1.0, 0.0, 0.3, 2.0]), 1.5
    il, eps = 10 ** -0.3, 1 / 101
    theta = 0.5 * np.pi * ((v_bias + 0.5) / 4.0 + v_rf / 2.0)
    assert np.allclose(mzm.transmission(v_rf, v_bias), il * (eps + (1 - 2 * eps) * np.cos(theta) ** 2), rtol=1e-12)
    # consistent with the field the modulator puts on the light and with the bias-only transmission
    assert np.allclose(mzm.field_transmission(v_rf, v_bias) ** 2, mzm.transmission(v_rf, v_bias), rtol=1e-12)
    assert mzm.power_transmission(v_bias) == pytest.approx(mzm.transmission(0.0, v_bias), rel=1e-12)


def test_the_modulator_model_works_without_a_bench_and_the_node_applies_it():
    model = MachZehnderModel(v_pi=4.0, v_pi_rf=2.0, insertion_loss_db=3.0, extinction_ratio_db=20.0, phase_offset_v=0.5)
    assert model.transmission(0.0, -0.5) == pytest.approx(model.loss * (1 - model.leak), rel=1e-12)  # peak
    assert model.transmission(0.0, 3.5) == pytest.approx(model.loss * model.leak, rel=1e-12)  # null
    node = MachZehnderModulator("m", v_pi=4.0, v_pi_rf=2.0, insertion_loss_db=3.0, extinction_ratio_db=20.0,
                                phase_offset_v=0.5)
    assert node.model == model
    with pytest.raises(ValueError, match="v_pi=0.0 is outside the physical range"):
        MachZehnderModel(v_pi=0.0)


def test_a_modulator_bias_point_moved_on_a_running_bench_moves_its_transfer_and_is_validated():
    mzm = MachZehnderModulator("m", v_pi=4.0, phase_offset_v=0.0)
    before = mzm.transmission(0.0, 1.0)
    mzm.phase_offset_v += 0.8
    assert mzm.transmission(0.0, 1.0) == pytest.approx(MachZehnderModel(4.0, 4.0, 4.0, 25.0, 0.8).transmission(0.0, 1.0),
                                                       rel=1e-12)
    assert mzm.transmission(0.0, 1.0) != before and mzm.state()["phase_offset_v"] == 0.8
    with pytest.raises(ValueError, match="extinction_ratio_db=-1.0 is outside"):
        mzm.extinction_ratio_db = -1.0
    assert mzm.extinction_ratio_db == 25.0


def test_photodiode_noise_terms_are_thermal_plus_shot_in_a2_per_hz():
    pd = Photodiode("pd", responsivity_a_per_w=0.8, dark_current_a=2e-9, load_ohm=50.0)
    terms = pd.noise_terms()
    assert isinstance(terms, NoiseTerms)
    assert terms.a0 == pytest.approx(4 * K_B * 295.0 / 50.0 + 2 * Q * 2e-9, rel=1e-6)
    assert terms.a1 == pytest.approx(2 * Q * 0.8, rel=1e-6)
    assert terms.a2 == pytest.approx(0.0, abs=1e-30)
    assert pd.noise_psd(1e-3) == pytest.approx(terms.a0 + terms.a1 * 1e-3, rel=1e-12)


def test_rin_appears_as_the_quadratic_noise_term():
    pd = Photodiode("pd", responsivity_a_per_w=0.9, rin_db_per_hz=-140.0)
    assert pd.noise_terms().a2 == pytest.approx(1e-14 * 0.9**2, rel=1e-6)


class _Light(Component):
    PORTS = {"out": OPTICAL_OUT}

    def optical_output(self, port, t):
        return [Lightwave(1550e-9, np.full(np.shape(t), math.sqrt(1e-3)))]


def _lit_photodiode(**params):
    world = World(seed=1)
    world.add("src", _Light())
    pd = world.add("pd", Photodiode("pd", **params))
    world.connect("src.out", "pd.in")
    return world, pd


def test_a_photodiode_changed_on_a_running_bench_detects_with_its_new_noise_and_gain():
    world, pd = _lit_photodiode(load_ohm=50.0, bandwidth_hz=5e9)
    t = np.zeros(20000)  # single instants: each sample gets the full-band variance
    before = world.evaluate("pd", "out", t, optical=False)
    thermal_before = pd.noise_terms().a0
    pd.load_ohm = 500.0  # 10x the load: 10x the volts per ampere, a tenth of the thermal noise PSD
    pd.bandwidth_hz = 1e9
    assert pd.noise_terms().a0 < thermal_before / 5
    after = world.evaluate("pd", "out", t, optical=False)
    assert np.mean(after) == pytest.approx(10 * np.mean(before), rel=1e-3)
    sigma = math.sqrt(pd.noise_variance_a2(1e-3)) * 500.0
    assert np.std(after) == pytest.approx(sigma, rel=0.05)
    assert pd.state()["bandwidth_hz"] == 1e9 and pd.parameters()["load_ohm"] == 500.0


def test_photodiode_follows_the_bench_temperature():
    world, pd = _lit_photodiode()
    cold = pd.noise_terms().a0
    world.temperature_k = 2 * world.temperature_k
    assert pd.noise_terms().a0 > 1.5 * cold


def test_an_invalid_photodiode_change_is_refused_and_changes_nothing():
    _, pd = _lit_photodiode(dark_current_a=1e-9)
    terms = pd.noise_terms()
    with pytest.raises(ValueError, match=r"dark_current_a=-1e-09 is outside the physical range"):
        pd.dark_current_a = -1e-9
    with pytest.raises(ValueError, match="unknown photodiode parameter"):
        pd.configure(gain=3.0)
    assert pd.dark_current_a == 1e-9 and pd.noise_terms() == terms


@pytest.mark.parametrize("check, args, message", [
    (require_range, ("x", float("nan"), 0.0, 1.0), r"x=nan is outside the physical range \[0.0, 1.0\]"),
    (require_range, ("x", "far", 0.0, 1.0), r"x='far' is not a number in \[0.0, 1.0\]"),
    (require_range, ("x", 2.0, 0.0, 1.0, "W"), r"x=2.0 is outside the physical range \[0.0, 1.0\] W"),
    (require_positive, ("x", 0.0), "x=0.0 must be positive"),
    (require_non_negative, ("x", -1e-12), "x=-1e-12 is outside the physical range"),
    (require_int, ("n", 2.5, 1, 4), r"n=2.5 must be an integer in \[1, 4\]"),
    (require_int, ("n", True, 0, 4), "n=True must be an integer"),
    (require_int, ("n", float("inf"), 0, 4), "n=inf must be an integer"),
    (require_wavelengths, ([1550e-9, 5e-6],), "wavelength_m=.* is outside the physical range"),
])
def test_validation_refuses_with_the_parameter_name_and_range(check, args, message):
    with pytest.raises(ValueError, match=message):
        check(*args)


def test_validation_returns_the_checked_value():
    assert require_range("x", "0.5", 0.0, 1.0) == 0.5
    assert require_positive("x", 3) == 3.0
    assert require_int("n", 4.0, 1, 4) == 4 and isinstance(require_int("n", np.int64(2), 1, 4), int)
    assert param({"a": 2.0}, "a", 1.0, 0.0, 5.0) == 2.0 and param({}, "a", 1.0, 0.0, 5.0) == 1.0
    assert np.array_equal(require_wavelengths(1550e-9), np.asarray(1550e-9))


def test_receiver_noise_terms_need_no_bench_and_are_what_the_photodiode_node_uses():
    rx = Receiver(responsivity=0.8, dark_current=2e-9, load_ohm=50.0, rin_db_per_hz=-150.0)
    pd = Photodiode("pd", responsivity_a_per_w=0.8, dark_current_a=2e-9, load_ohm=50.0, rin_db_per_hz=-150.0)
    assert rx.noise_terms() == pd.noise_terms()
    p = np.array([0.0, 1e-4, 2e-3])
    a0, a1, a2 = rx.noise_terms()
    assert np.allclose(a0 + a1 * p + a2 * p**2, rx.noise_variances(p)["total"] / rx.noise_bandwidth_hz, rtol=1e-9)


def test_a_fibre_span_changed_in_place_is_propagated_with_its_new_dispersion():
    world = World(seed=0)
    world.add("src", _Light())
    fibre = world.add("f", Fibre("f", 20.0))
    world.connect("src.out", "f.in")
    t = np.arange(4096) / 200e9
    world.evaluate("f", "out", t, optical=True)  # fills the transfer-function cache
    fibre.span.attenuation_db_per_km = 0.5      # the span's parameters, not the object, key the cache
    (out,) = world.evaluate("f", "out", t, optical=True)
    assert np.mean(np.abs(out.field) ** 2) == pytest.approx(1e-3 * 10 ** (-0.5 * 20 / 10), rel=1e-4)


def test_the_rf_amplifier_model_works_without_a_bench_and_a_gain_change_on_the_node_is_validated():
    model = RFAmplifierModel(gain_db=20.0, noise_figure_db=3.0, saturated_output_vpp=8.0, noise_bandwidth_hz=10e9)
    assert model.amplify(1e-3) == pytest.approx(10e-3, rel=1e-4)          # small signal: G = 10
    assert model.amplify(10.0) == pytest.approx(4.0, rel=1e-6)            # saturates at Vpp / 2
    f = 10 ** 0.3
    assert model.noise_rms_v(300.0) == pytest.approx(math.sqrt(f * K_B * 300.0 * 10e9 * 50.0) * 10.0, rel=1e-12)
    amp = RFAmplifier("a", gain_db=20.0)
    amp.gain_db = 26.0
    assert amp.voltage_gain == pytest.approx(10 ** 1.3)
    with pytest.raises(ValueError, match="gain_db=100.0 is outside the physical range"):
        amp.gain_db = 100.0
    assert amp.gain_db == 26.0
