"""awgr_routing on the simulated AWGR core bench: the measured routing table, passband centres,
insertion loss and crosstalk against the AWGR parameters configured in the bench file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labctl.runner import ExperimentError, run_experiment
from labctl.store import read_results
from sim_backends.bench import load_bench_file
from sim_backends.physics.constants import C

BENCH = Path(__file__).parents[2] / "sim_backends" / "benches" / "awgr_core.yaml"
INPUTS = [1, 4, 8]


@pytest.fixture(scope="module")
def configured():
    awgr = load_bench_file(BENCH)["components"]["awgr"]
    lam0 = float(awgr["center_wavelength_m"])
    n = int(awgr["ports"])
    dlam = lam0 ** 2 * float(awgr["channel_spacing_hz"]) / C  # uniform wavelength grid, dlambda = lam0^2 df / c
    return {"n": n, "lam0": lam0, "dlam": dlam, "fsr": n * dlam, "il": float(awgr["insertion_loss_db"]),
            "adj": float(awgr["adjacent_crosstalk_db"]), "non": float(awgr["nonadjacent_crosstalk_db"])}


@pytest.fixture(scope="module")
def run(configured, tmp_path_factory):
    c = configured
    # one FSR plus half a channel at each end (so the passbands at both ends have a sample either side),
    # two samples per channel: the peak and the -12 dB midpoint between channels
    start, stop = c["lam0"] - 4.5 * c["dlam"], c["lam0"] + 4.5 * c["dlam"]
    overrides = {"wavelength_start_nm": start * 1e9, "wavelength_stop_nm": stop * 1e9, "points": 19,
                 "input_ports": INPUTS}
    result = run_experiment("awgr_routing", bench_path=BENCH, overrides=overrides, seed=2,
                            out=tmp_path_factory.mktemp("awgr"), show_progress=False)
    return result, read_results(result.results_path)


def test_datasets_and_plots(run, configured):
    result, data = run
    assert data["attrs"]["status"] == "complete"
    assert data["wavelength_m"].shape == (19,)
    assert data["power_w"].shape == (len(INPUTS), 19, configured["n"])
    assert data["routing_table"].shape == (len(INPUTS), 19)
    assert data["crosstalk_db"].shape == (len(INPUTS), configured["n"], configured["n"])
    for png in ("awgr_routing.png", "awgr_crosstalk.png"):
        path = result.results_path.parent / png
        assert path in result.artefacts and path.stat().st_size > 10_000


def test_routing_follows_lambda_p_q_n(run, configured):
    """Every passband centre sits at lambda0 + (p - q) dlambda + n FSR for an integer n."""
    _, data = run
    c = configured
    peaks = data["peak_wavelength_m"]
    worst = 0.0
    for i, p in enumerate(INPUTS):
        for q in range(1, c["n"] + 1):
            lam = peaks[i, q - 1]
            assert np.isfinite(lam), (p, q)
            order = round((lam - c["lam0"] - (p - q) * c["dlam"]) / c["fsr"])
            error = lam - (c["lam0"] + (p - q) * c["dlam"] + order * c["fsr"])
            worst = max(worst, abs(error))
    assert worst < 1e-12  # < 1 pm: the routing law exactly as configured
    # at each channel centre of the sweep the routed output is the one the cyclic law names
    wavelengths = data["wavelength_m"]
    for j in range(1, 19, 2):
        k = round((wavelengths[j] - c["lam0"]) / c["dlam"])
        for i, p in enumerate(INPUTS):
            assert data["routing_table"][i, j] == (p - k - 1) % c["n"] + 1
    # both ends of the sweep are one FSR apart, so the pair routed there shows two orders
    assert run[0].summary["fsr_nm"] == pytest.approx(c["fsr"] * 1e9, abs=1e-3)
    assert run[0].summary["channel_spacing_nm"] == pytest.approx(c["dlam"] * 1e9, abs=1e-3)
    print(f"\nworst passband-centre error {worst * 1e15:.3f} fm; FSR {run[0].summary['fsr_nm']:.4f} nm")


def test_insertion_loss_and_crosstalk_match_the_bench_file(run, configured):
    summary = run[0].summary
    c = configured
    assert summary["passbands_found"] == len(INPUTS) * c["n"]
    assert summary["insertion_loss_min_db"] == pytest.approx(c["il"], abs=0.1)
    assert summary["insertion_loss_max_db"] == pytest.approx(c["il"], abs=0.1)
    assert summary["adjacent_crosstalk_db"] == pytest.approx(c["adj"], abs=0.5)
    assert summary["nonadjacent_crosstalk_db"] == pytest.approx(c["non"], abs=0.5)
    print(f"\nIL {summary['insertion_loss_db']:.3f} dB [{c['il']}], adjacent {summary['adjacent_crosstalk_db']:.2f} dB "
          f"[{c['adj']}], non-adjacent {summary['nonadjacent_crosstalk_db']:.2f} dB [{c['non']}]")


def test_input_port_outside_the_awgr_is_refused():
    with pytest.raises(ExperimentError, match="input_ports"):
        run_experiment("awgr_routing", bench_path=BENCH, overrides={"input_ports": [1, 9]}, show_progress=False)
