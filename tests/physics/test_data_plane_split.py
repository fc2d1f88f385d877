"""The data plane's split of the symbol-level core: an edge's ``launch`` then the center's ``detect`` is the
core's own ``readings``; an edge's link sets its light by its loss; benches that are no edge's are refused."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.bench import SYSTEM_BENCH_PATH
from labctl.errors import ConfigError
from labctl.network.edge import EdgeTransmitter
from sim_backends.instruments.labctl_occ import Drive
from sim_backends.physics.stationary_core import Detector, InputChain, Readout, StationaryCore, launch

EDGE = SYSTEM_BENCH_PATH.with_name("edge_metro.yaml")


def _chain(phase: float, taps=(1.0,), offsets=(0,), shift: int = 0) -> InputChain:
    return InputChain(quantise=lambda v: np.round(v / 1e-3) * 1e-3,
                      modulator=lambda v, p=phase: 0.02 + 0.9 * np.cos(0.5 * (v + p)) ** 2,
                      offsets=np.array(offsets), taps=np.array(taps), shift=shift)


@pytest.mark.parametrize("isi", [False, True])
def test_launch_then_detect_is_the_cores_own_readings(isi):
    """Noiseless, the two halves give the readings of the whole chain (ISI taps and a slot shift included)."""
    rng = np.random.default_rng(1)
    n_in, n_out, tiles, slots, gap = 4, 3, 5, 32, 7
    phases = rng.uniform(-1, 1, n_in)
    taps = dict(taps=(0.9, 0.1), offsets=(0, 1), shift=2) if isi else {}
    chains = [_chain(p, **taps) for p in phases]
    detectors = [Detector(0.9, 5e-9, (0.0, 0.0, 0.0), 10e-3, 500.0)] * n_out
    core = StationaryCore(chains, detectors, Readout(0.0, 2.0), gap_slots=gap)
    volts = rng.uniform(-0.5, 0.5, (tiles, slots, n_in)).astype(np.float32)
    link_w = rng.uniform(1e-4, 1e-3, n_in)  # laser power x the link to the center's input port
    after_port = rng.uniform(0.01, 0.2, (tiles, n_in, n_out))  # input port -> photodiode
    background = rng.uniform(0, 1e-6, (tiles, n_out))
    whole = core.readings(volts, link_w[None, :, None] * after_port, background, None)
    edge_chains = [_chain(p) for p in phases]  # the edge launches on the slot grid: no taps, no shift
    light, idle = launch(edge_chains, volts, link_w, None, gap_slots=gap)
    assert light.shape == (tiles, slots, n_in) and light.dtype == np.float32 and idle.shape == (n_in,)
    split = core.detect(light, idle, after_port, background, None)
    np.testing.assert_allclose(split, whole, rtol=2e-6, atol=1e-9)


def test_detect_refuses_light_that_is_not_power():
    core = StationaryCore([_chain(0.0)], [Detector(0.9, 0.0, (0.0, 0.0, 0.0), 1e-2, 500.0)], Readout(0.0, 1.0))
    gains = np.ones((1, 1, 1))
    with pytest.raises(ValueError, match="shape"):
        core.detect(np.zeros((1, 4, 2), np.float32), np.zeros(1), gains, np.zeros((1, 1)), None)
    with pytest.raises(ValueError, match=">= 0"):
        core.detect(-np.ones((1, 4, 1), np.float32), np.zeros(1), gains, np.zeros((1, 1)), None)
    with pytest.raises(ValueError, match="idle"):
        core.detect(np.ones((1, 4, 1), np.float32), np.full(1, np.nan), gains, np.zeros((1, 1)), None)


def _drive(n_in: int) -> Drive:
    return Drive(symbol_rate_hz=0.25e9, dac_amplitude_v=0.9, gap_slots=0, bias_v=(0.0,) * n_in, rin_band_hz=2e8,
                 dac_noise_referral=1.0)


def test_an_edges_light_falls_with_its_links_loss():
    """The same drive through 2 km and 50 km of edge fibre: the light at the center's input port differs by
    exactly the fibre's 0.2 dB/km over the extra 48 km (the idle light is noiseless: float32 precision)."""
    codes = np.zeros((2, 8, 16), dtype=np.int16)
    idle = {}
    for km in (2.0, 50.0):
        with EdgeTransmitter(EDGE, seed=0, changes={"edge_fibre1.length_km": km}) as edge:
            light, idle[km], ase = edge.launch(codes.astype(np.float32), _drive(edge.n_in))
            assert light.shape == (2, 8, 16) and np.all(light > 0) and ase.shape == (0, 2)  # no amplifier: no ASE
    ratio_db = 10 * np.log10(idle[50.0] / idle[2.0])
    np.testing.assert_allclose(ratio_db, -0.2 * 48.0, atol=1e-4)


def test_edge_bench_checks():
    """A bench with three cores is not an edge (line-precise error); codes that are not DAC codes are refused."""
    with pytest.raises(ConfigError, match=r"line \d+.*opu\.cores.*one transmitter"):
        EdgeTransmitter(SYSTEM_BENCH_PATH)
    with EdgeTransmitter(EDGE) as edge:
        with pytest.raises(ValueError, match="int16"):
            edge.launch(np.full((1, 2, 16), 0.5, np.float32), _drive(16))
        with pytest.raises(ValueError, match="inputs"):
            edge.launch(np.zeros((1, 2, 8), np.float32), _drive(8))
