"""PAM4 through the MZM at quadrature: the received eye against the closed-form MZM transfer."""

import numpy as np
import pytest

from labctl.runner import run_experiment
from sim_backends import CHARACTERISATION_BENCH_PATH
from sim_backends.bench import load_bench_file


def received_peak_voltage(bench):
    """Detector voltage for P_in IL (MZM transmission 1), from the bench file's parts (closed form)."""
    parts = bench["components"]
    laser_w = 10 ** (7.0 / 10) * 1e-3
    losses_db = (parts["mzm1"]["insertion_loss_db"] + 0.8 + 0.8  # MBX insertion loss, switch insertion loss
                 + parts["edge_fibre"]["length_km"] * parts["edge_fibre"]["attenuation_db_per_km"])
    return laser_w * 10 ** (-losses_db / 10) * parts["pd1"]["responsivity_a_per_w"] * parts["pd1"]["load_ohm"]


def test_pam4_eye_matches_the_mzm_transfer_at_quadrature(tmp_path):
    result = run_experiment("modulation_trace", out=tmp_path, seed=4, show_progress=False)
    bench = load_bench_file(CHARACTERISATION_BENCH_PATH)
    # the AWG drives the RF electrode: its (low-frequency) V_pi, not the bias electrode's
    v_pi = bench["components"]["mzm1"].get("v_pi_rf", bench["components"]["mzm1"]["v_pi"])
    eps = 1 / (10 ** (bench["components"]["mzm1"]["extinction_ratio_db"] / 10) + 1)
    # levels -1..1 of a 1 Vpp drive are -0.5..0.5 V at the MZM; around quadrature
    # P = P_in IL [1/2 + (1 - 2 eps)/2 sin(pi v / V_pi)], so the eye spans P_in IL (1 - 2 eps) sin(pi 0.5 / V_pi)
    expected_eye = received_peak_voltage(bench) * (1 - 2 * eps) * np.sin(np.pi * 0.5 / v_pi)
    summary = result.summary
    # README (demo): 15.88 mV against the closed form's 15.86 mV; seeds 0-7 give 15.81-15.91 mV
    assert summary["eye_amplitude_v"] == pytest.approx(expected_eye, rel=0.01)
    # four well separated levels: seeds 0-7 give Q 6.4-6.8 (the receiver's noise over the pattern)
    assert summary["worst_q"] > 6.0
    # README (demo): level spacing max/min 1.017; seeds 0-7 give 1.007-1.034 (the levels' noise)
    assert summary["level_spacing_ratio"] == pytest.approx(1.0, abs=0.04)
