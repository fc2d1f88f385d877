"""MZM predistortion against the closed-form transfer P = P_in IL [eps + (1 - 2 eps) cos^2(pi (V + V0)/(2 V_pi))]."""

import numpy as np
import pytest

from labctl.analysis import MZMFit, fit_mzm_transfer
from labctl.opu.calibration_file import bench_fingerprint, load, save
from labctl.opu.encoding import EncodingRangeWarning
from labctl.opu.predistortion import PredistortionTable, mzm_transmission, predistort


def physics_power(volts, v_pi, v0, p_in_il, er_db):
    """PHYSICS.md section 3, finite extinction: written out here independently of MZMFit.predict."""
    eps = 1.0 / (10 ** (er_db / 10) + 1)
    return p_in_il * (eps + (1 - 2 * eps) * np.cos(np.pi * (np.asarray(volts) + v0) / (2 * v_pi)) ** 2)


def make_fit(v_pi, v0, p_in_il=1e-3, er_db=25.0):
    eps = 1.0 / (10 ** (er_db / 10) + 1)
    return MZMFit(v_pi=v_pi, phase_offset_v=v0, p_max=p_in_il * (1 - eps), p_min=p_in_il * eps, rms_residual=0.0)


T = np.linspace(0.0, 1.0, 1001)


@pytest.mark.parametrize("v_pi,v0,er_db", [(5.0, 1.3, 25.0), (2.2, -0.7, 15.0), (0.9, 0.0, 60.0)])
@pytest.mark.parametrize("rising", [True, False])
@pytest.mark.parametrize("near", [0.0, 7.5])
def test_forward_transfer_of_predistorted_voltages_returns_t(v_pi, v0, er_db, rising, near):
    fit = make_fit(v_pi, v0, er_db=er_db)
    volts = predistort(fit, T, rising=rising, near=near)
    p = physics_power(volts, v_pi, v0, 1e-3, er_db)
    np.testing.assert_allclose((p - fit.p_min) / (fit.p_max - fit.p_min), T, rtol=0, atol=1e-9)
    np.testing.assert_allclose(mzm_transmission(fit, volts), T, rtol=0, atol=1e-9)
    # one monotonic branch, around the quadrature point nearest to `near`
    steps = np.diff(volts)
    assert np.all(steps > 0) if rising else np.all(steps < 0)
    v_q = fit.quadrature_bias(positive_slope=rising, near=near)
    assert abs(v_q - near) <= v_pi + 1e-12
    assert np.max(np.abs(volts - v_q)) <= v_pi / 2 + 1e-9
    assert predistort(fit, 0.5, rising=rising, near=near) == pytest.approx(v_q, abs=1e-12)


def test_textbook_form_on_the_falling_branch():
    fit = make_fit(5.0, 1.3, er_db=200.0)          # practically infinite extinction
    t = np.array([0.1, 0.5, 0.9])
    textbook = (2 * 5.0 / np.pi) * np.arccos(np.sqrt(t)) - 1.3
    near = fit.quadrature_bias(positive_slope=False, near=0.0)
    np.testing.assert_allclose(predistort(fit, t, rising=False, near=near), textbook, atol=1e-9)


def test_reduced_output_range():
    fit = make_fit(4.0, 0.5)
    t_min, t_max = fit.p_min + 0.1 * (fit.p_max - fit.p_min), fit.p_max - 0.05 * (fit.p_max - fit.p_min)
    volts = predistort(fit, T, t_min=t_min, t_max=t_max)
    p = physics_power(volts, 4.0, 0.5, 1e-3, 25.0)
    np.testing.assert_allclose((p - t_min) / (t_max - t_min), T, atol=1e-9)
    with pytest.raises(ValueError, match="t_min < t_max"):
        predistort(fit, T, t_min=t_max, t_max=t_min)


def test_out_of_range_transmissions_are_clipped_with_warning():
    fit = make_fit(5.0, 1.3)
    with pytest.warns(EncodingRangeWarning, match="2 of 3"):
        v = predistort(fit, [-0.1, 0.5, 1.2])
    np.testing.assert_allclose(mzm_transmission(fit, v), [0.0, 0.5, 1.0], atol=1e-9)


def test_bad_fit_raises():
    with pytest.raises(ValueError, match="P_max > P_min"):
        predistort(MZMFit(5.0, 0.0, 1e-4, 1e-3, 0.0), 0.5)
    with pytest.raises(ValueError, match="v_pi"):
        predistort(MZMFit(0.0, 0.0, 1e-3, 1e-5, 0.0), 0.5)


@pytest.mark.parametrize("rising", [True, False])
def test_lookup_table_from_fit_meets_1e6(rising):
    fit = make_fit(3.0, -1.1, er_db=22.0)
    table = PredistortionTable.from_fit(fit, rising=rising, near=2.0, name="mzm1")
    t = np.random.default_rng(1).uniform(0, 1, 20001)
    p = physics_power(table(t), 3.0, -1.1, 1e-3, 22.0)
    assert np.max(np.abs((p - fit.p_min) / (fit.p_max - fit.p_min) - t)) < 1e-6
    # the documented bound pi^2 / (16 (n-1)^2) holds for a coarse table too
    coarse = PredistortionTable.from_fit(fit, n=65, rising=rising, near=2.0)
    err = np.max(np.abs(mzm_transmission(fit, coarse(t)) - t))
    assert 0 < err <= np.pi**2 / (16 * 64**2)


def test_lookup_table_from_a_measured_branch():
    fit = make_fit(5.0, 1.3)
    v_q = fit.quadrature_bias(True)
    volts = np.linspace(v_q - 2.5, v_q + 2.5, 4001)
    table = PredistortionTable.from_measurement(volts, physics_power(volts, 5.0, 1.3, 1e-3, 25.0))
    t = np.linspace(0, 1, 501)
    assert np.max(np.abs(mzm_transmission(fit, table(t)) - t)) < 1e-6
    two_branches = np.linspace(-5, 5, 50)
    with pytest.raises(ValueError, match="strictly monotonic"):
        PredistortionTable.from_measurement(two_branches, physics_power(two_branches, 5.0, 1.3, 1e-3, 25.0))


def test_table_survives_a_calibration_file(tmp_path):
    table = PredistortionTable.from_fit(make_fit(5.0, 1.3), n=257, name="mzm1")
    fp = bench_fingerprint([("keysight.M8195A", "TCPIP0::awg.labsim::hislip0::INSTR")])
    save(tmp_path / "cal.json", {"mzm1": table.to_section()}, bench_name="b", bench_fingerprint=fp)
    back = PredistortionTable.from_section(load(tmp_path / "cal.json", fp).section("mzm1"))
    np.testing.assert_array_equal(back.t, table.t)
    np.testing.assert_array_equal(back.volts, table.volts)
    assert back.name == "mzm1"


def test_predistortion_from_a_fitted_sweep():
    """End to end with labctl.analysis.fit_mzm_transfer on a noise-free closed-form sweep."""
    volts = np.linspace(-8, 8, 801)
    fit = fit_mzm_transfer(volts, physics_power(volts, 5.0, 1.3, 1e-3, 25.0))
    v = predistort(fit, T, near=0.0)
    p = physics_power(v, 5.0, 1.3, 1e-3, 25.0)
    eps = 1 / (10**2.5 + 1)
    p_min, p_max = 1e-3 * eps, 1e-3 * (1 - eps)
    assert np.max(np.abs((p - p_min) / (p_max - p_min) - T)) < 1e-6

