"""A dispersion-compensated fibre cascade read at single instants: power = launch power x the spans' loss.

The memoryless path queries its input once per walked-off carrier at stacked instants; after a cascade
whose dispersion cancels (edge + metro SSMF + DCF, as in the system bench) the first and last of those
instants coincide within rounding, and they are not a sampled record: a laser must not read a sample rate
(and so a RIN variance) off them.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim_backends.bench import SYSTEM_BENCH_PATH, build_bench, load_bench_file
from sim_backends.physics.components import Fibre
from sim_backends.physics.laser import laser_field
from sim_backends.world import OPTICAL_OUT, Component, Lightwave, World, total_power

#: 16 carriers 1.6 nm apart across the C band (a WDM bank's grid), 1 mW each.
WAVELENGTHS = 1530e-9 + 1.6e-9 * np.arange(16)
CARRIER_POWER_W = 1e-3
#: SSMF (PHYSICS.md table 2) and a DCF sized so that D L sums to zero: 17 x 12 = 100 x 2.04 ps/nm.
SPANS = [("edge", 2.0, 0.2, 17.0), ("metro", 10.0, 0.2, 17.0), ("dcf", 2.04, 0.5, -100.0)]


class _Lasers(Component):
    """One laser per wavelength with the bench lasers' RIN and linewidth (PHYSICS.md table 2)."""

    PORTS = {"out": OPTICAL_OUT}

    def optical_output(self, port, t):
        return [Lightwave(lam, laser_field(CARRIER_POWER_W, t, -145.0, 100e3, self.world.rng)) for lam in WAVELENGTHS]


def _cascade() -> World:
    world = World(seed=0)
    world.add("lasers", _Lasers())
    previous = "lasers"
    for name, length_km, loss_db_per_km, d in SPANS:
        world.add(name, Fibre(name, length_km, attenuation_db_per_km=loss_db_per_km, dispersion_ps_nm_km=d))
        world.connect(f"{previous}.out", f"{name}.in")
        previous = name
    return world


@pytest.mark.parametrize("t", [0.0, 0.5, 17.0, [0.0], [1e-3, 2.5e-3, 7e-3]])
def test_power_after_fibre_and_dcf_is_launch_power_times_the_spans_loss(t):
    world = _cascade()
    t = np.asarray(t)
    launched = CARRIER_POWER_W * WAVELENGTHS.size
    loss_db = 0.0
    for name, length_km, loss_db_per_km, _ in SPANS:
        loss_db += length_km * loss_db_per_km
        power = total_power(world.evaluate(name, "out", t, optical=True), t)
        assert np.asarray(power) == pytest.approx(launched * 10 ** (-loss_db / 10), rel=1e-9), name


def test_a_record_through_the_cascade_keeps_the_lasers_rin():
    # on a sampled record the lasers' RIN stays: variance RIN_lin fs / 2 per sample (PHYSICS.md section 3);
    # the DCF undoes the SSMF's dispersion, so at its output each carrier is its launch field times the loss
    world = _cascade()
    fs = 100e9
    t = np.arange(20_000) / fs
    (carrier,) = [c for c in world.evaluate("dcf", "out", t, optical=True) if c.wavelength == WAVELENGTHS[0]]
    loss = 10 ** (-sum(length * loss_db for _, length, loss_db, _ in SPANS) / 10)
    relative = np.abs(carrier.field) ** 2 / (CARRIER_POWER_W * loss) - 1
    rin_variance = 10 ** (-145 / 10) * fs / 2
    assert np.mean(relative) == pytest.approx(0.0, abs=5 * np.sqrt(rin_variance / t.size))
    assert np.var(relative) == pytest.approx(rin_variance, rel=0.05)


@pytest.mark.parametrize("t", [0.0, 0.5, 17.0])
def test_the_system_bench_reads_its_mux_power_times_the_link_loss_after_the_dcf(t):
    # core 1's sixteen lasers at its ring bank's wavelengths (as the controller sets them), 20 mW each
    config = load_bench_file(SYSTEM_BENCH_PATH)
    parts = config["components"]
    bench = build_bench(config, seed=0)
    wavelengths = iter(parts["bank1_1"]["resonance_wavelengths"])
    for laser in (bench.by_name[f"laser1_{k}"] for k in range(1, 5)):
        for port in laser.ports_state:
            port.wavelength, port.power_w, port.enabled = next(wavelengths), 20e-3, True
    loss_db = sum(parts[f]["length_km"] * parts[f]["attenuation_db_per_km"] for f in ("edge_fibre1", "metro_fibre1", "dcf1"))
    t = np.asarray(t)
    launched = total_power(bench.world.evaluate("mux1", "out", t, optical=True), t)
    received = total_power(bench.world.evaluate("dcf1", "out", t, optical=True), t)
    # the drivers' noise moves the modulators' transmission at each instant by ~1e-4: the tolerance
    assert received == pytest.approx(launched * 10 ** (-loss_db / 10), rel=2e-3)
