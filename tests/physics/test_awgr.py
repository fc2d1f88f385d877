"""Cyclic AWGR: routing table, energy budget, passband width, port validation."""

import numpy as np
import pytest

from sim_backends.physics.awgr import AWGR
from sim_backends.physics.constants import C


def test_routing_table_is_cyclic_latin_square():
    n = 8
    awgr = AWGR(ports=n, channel_spacing_hz=100e9, center_wavelength_m=1550e-9)
    dlam = 1550e-9**2 * 100e9 / C
    assert awgr.dlambda_m == pytest.approx(dlam)
    assert awgr.fsr_m == pytest.approx(n * dlam)
    table = awgr.routing_table()
    for p in range(1, n + 1):
        for q in range(1, n + 1):
            lam = 1550e-9 + (p - q) * dlam
            assert table[p - 1, q - 1] == pytest.approx(lam)
            for order in (-1, 0, 2):
                assert awgr.output_port(p, lam + order * n * dlam) == q
    # one wavelength per (p, q) per FSR: channel indices mod N form a Latin square
    idx = np.mod(np.rint((table - 1550e-9) / dlam).astype(int), n)
    for i in range(n):
        assert sorted(idx[i, :]) == list(range(n)) and sorted(idx[:, i]) == list(range(n))
    # sign convention: + dlambda moves the output one port down, cyclically
    assert awgr.output_port(3, 1550e-9 + dlam) == 2
    assert awgr.output_port(1, 1550e-9 + dlam) == n
    assert awgr.wavelength_for(2, 5, order=1) == pytest.approx(1550e-9 - 3 * dlam + n * dlam)


def test_transmission_at_routed_and_crosstalk_ports():
    awgr = AWGR(ports=16, insertion_loss_db=4.0, adjacent_crosstalk_db=-28.0, nonadjacent_crosstalk_db=-36.0)
    lam = awgr.wavelength_for(5, 9)
    il = 10 ** -0.4
    assert awgr.transmission(5, 9, lam) == pytest.approx(il, rel=1e-6)
    # neighbour port: crosstalk floor plus the tail of its own Gaussian passband one spacing away,
    # S(dlambda) = 2^-(2 dlambda / w)^2 = 2^-16 for the default w = dlambda / 2
    tail = 2.0**-16
    assert awgr.transmission(5, 8, lam) == pytest.approx(il * (10 ** -2.8 + tail), rel=1e-3)
    assert awgr.transmission(5, 10, lam) == pytest.approx(il * (10 ** -2.8 + tail), rel=1e-3)
    assert awgr.transmission(5, 1, lam) == pytest.approx(il * 10 ** -3.6, rel=1e-3)
    # cyclic neighbours: port 16 is the spectral neighbour of port 1
    lam1 = awgr.wavelength_for(5, 1)
    assert awgr.transmission(5, 16, lam1) == pytest.approx(il * (10 ** -2.8 + tail), rel=1e-3)


@pytest.mark.parametrize("passband", ["gaussian", "flat-top"])
def test_energy_conservation(passband):
    n = 8
    awgr = AWGR(ports=n, passband=passband, insertion_loss_db=3.0, adjacent_crosstalk_db=-25.0,
                nonadjacent_crosstalk_db=-35.0)
    il, xa, xn = 10 ** -0.3, 10 ** -2.5, 10 ** -3.5
    budget = il * (1 + 2 * xa + (n - 3) * xn)
    centres = awgr.routing_table()[0]
    tm = awgr.transfer_matrix(centres)
    assert tm.shape == (n, n, n)
    assert np.allclose(tm.sum(axis=1), budget, rtol=2e-3)
    sweep = np.linspace(centres.min() - awgr.fsr_m, centres.max() + awgr.fsr_m, 4001)
    total = awgr.transfer_matrix(sweep).sum(axis=1)
    assert np.all(total <= 1.0) and np.all(total <= budget * 1.01)
    assert np.all(awgr.transfer_matrix(sweep) >= 0)


@pytest.mark.parametrize("passband,width_hz", [("gaussian", 40e9), ("flat-top", 70e9)])
def test_passband_3db_width(passband, width_hz):
    awgr = AWGR(ports=8, passband=passband, passband_3db_hz=width_hz, center_wavelength_m=1550e-9)
    lam_c = awgr.wavelength_for(2, 4)
    peak = awgr.transmission(2, 4, lam_c)
    half = 1550e-9**2 * width_hz / C / 2
    assert awgr.transmission(2, 4, lam_c + half) == pytest.approx(peak / 2, rel=2e-3)
    assert awgr.transmission(2, 4, lam_c - half) == pytest.approx(peak / 2, rel=2e-3)
    # measured full width at half maximum from a fine sweep
    lam = lam_c + np.linspace(-1, 1, 200001) * awgr.dlambda_m
    t = awgr.transmission(2, 4, lam)
    above = lam[t >= peak / 2]
    assert above.max() - above.min() == pytest.approx(2 * half, rel=1e-3)
    if passband == "flat-top":  # flatter top: still >= -0.5 dB over +-30 % of the 3-dB width
        assert awgr.transmission(2, 4, lam_c + 0.3 * half) > peak * 10 ** -0.05


def test_route_scales_fields_by_sqrt_transmission():
    awgr = AWGR(ports=4)
    wl = np.array([awgr.wavelength_for(1, 1), awgr.wavelength_for(1, 3)])
    fields = np.ones((2, 5), dtype=complex) * np.sqrt(1e-3)
    out = awgr.route(1, wl, fields)
    assert out.shape == (4, 2, 5)
    assert np.allclose(np.abs(out) ** 2, 1e-3 * awgr.transfer_matrix(wl)[0][:, :, None])


def test_bad_ports_and_parameters_raise():
    awgr = AWGR(ports=8)
    for bad in (0, 9, -1):
        with pytest.raises(ValueError, match=rf"input_port={bad}.*1\.\.8"):
            awgr.transmission(bad, 1, 1550e-9)
        with pytest.raises(ValueError, match=rf"output_port={bad}.*1\.\.8"):
            awgr.wavelength_for(1, bad)
    with pytest.raises(ValueError, match="insertion_loss_db"):
        AWGR(insertion_loss_db=-1.0)
    with pytest.raises(ValueError, match="adjacent_crosstalk_db"):
        AWGR(adjacent_crosstalk_db=3.0)
    with pytest.raises(ValueError, match="allowed range is <= 1"):
        AWGR(ports=64, insertion_loss_db=0.0, adjacent_crosstalk_db=-10.0, nonadjacent_crosstalk_db=-15.0)
    with pytest.raises(ValueError, match="passband_3db_hz"):
        AWGR(channel_spacing_hz=100e9, passband_3db_hz=150e9)
    with pytest.raises(ValueError, match="ports"):
        AWGR(ports=1)
