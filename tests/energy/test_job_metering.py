"""The center's energy per job (labctl.network.center.CoreMetering) on the simulated optical computing center:
what a job's core drew over its window, also while another core computes, and its projected energy."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import labctl
from experiments.edge_load import meter_each_core
from labctl.bench import SYSTEM_BENCH_PATH
from labctl.energy.projected import bench_projection
from labctl.network.metering import CoreMetering
from labctl.opu import open_opu
from tests.shared_files import ring_core_calibration_folder

SEED = 1  # the seed the shared calibrations were made at
CORE1 = ("occ1", "laser1_1", "laser1_2", "laser1_3", "laser1_4")


@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    """The built-in center with one analyzer per core, its first two cores open with their calibrations."""
    folder = ring_core_calibration_folder(tmp_path_factory, cores=2)
    path = meter_each_core(SYSTEM_BENCH_PATH, tmp_path_factory.mktemp("bench") / "center_bench.yaml")
    with labctl.open_bench(path, mode="sim", seed=SEED) as bench:
        yield bench, [open_opu(bench, folder, core=k) for k in (0, 1)]


def _operands(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, 288)), rng.standard_normal((288, 32))


def _feed(energy, analyzer: str):
    (term,) = [t for t in energy.terms if t.device.startswith(f"{analyzer} feed")]
    return term


def test_a_job_on_its_own_feed_is_what_its_core_drew_and_its_projection(metered):
    bench, (occ1, _) = metered
    projection = bench_projection(bench)
    metering = CoreMetering(occ1, projection)
    a, b = _operands(0, 8)
    out, energy = metering.run(occ1, lambda: occ1.matmul(a, b))
    assert out.shape == (8, 32)
    window = energy.end_s - energy.start_s
    # the simulated clock moves only with the job's program here: the window is its optical time
    assert window == pytest.approx(occ1.last_stats["optical_time_s"], rel=1e-12)
    assert energy.bench_j == pytest.approx(sum(t.power_w * (t.end_s - t.start_s) for t in energy.terms), rel=1e-12)
    feed = _feed(energy, "wt_occ1")
    assert feed.provenance["kind"] == "measured" and feed.device == f"wt_occ1 feed ({', '.join(CORE1)})"
    # the only other term is the core's analyzer itself (its idle draw from the instrument table)
    assert {t.device for t in energy.terms} == {feed.device, "wt_occ1"}
    assert "occ2" not in energy.attribution and "wt_occ1" in energy.attribution
    # projected: the job's ops (1 MAC = 2 ops, padding included) at the projection's J/op at peak
    ops = 2 * occ1.last_stats["optical_macs"]
    assert energy.projected_j == pytest.approx(ops * projection.total_w / projection.peak_ops_per_s, rel=1e-12)
    assert energy.projection.power_w == pytest.approx(projection.total_w)


def test_a_job_counts_only_its_own_core_while_another_core_computes_inside_its_window(metered):
    """Job J on occ1 alone, then J again while a job K on occ2 runs its program inside J's window (forced by
    events). K moves the shared clock, so J's window grows by K's program; occ1 rests meanwhile. Attributing
    J's core only, the second figure is the first plus occ1's instruments' resting draw over the extra time."""
    bench, (occ1, occ2) = metered
    core1, core2 = CoreMetering(occ1, bench_projection(bench)), CoreMetering(occ2, bench_projection(bench))
    a, b = _operands(1, 8)
    a2, b2 = _operands(2, 64)
    _, alone = core1.run(occ1, lambda: occ1.matmul(a, b))
    j_metered, k_done = threading.Event(), threading.Event()

    def job_j():
        j_metered.set()  # J's meter has started
        assert k_done.wait(120)
        return occ1.matmul(a, b)

    def job_k():
        assert j_metered.wait(120)
        try:
            return core2.run(occ2, lambda: occ2.matmul(a2, b2))
        finally:
            k_done.set()

    with ThreadPoolExecutor(2) as pool:
        k = pool.submit(job_k)
        j = pool.submit(core1.run, occ1, job_j)
        (_, together), (_, other) = j.result(), k.result()
    extra = (together.end_s - together.start_s) - (alone.end_s - alone.start_s)
    assert extra == pytest.approx(occ2.last_stats["optical_time_s"], rel=1e-9)  # K ran inside J's window
    # occ1 and its lasers now rest as they did during that extra time (heaters holding J's last tile)
    resting_w = sum(bench.sim.world.draws_w()[name] for name in CORE1)
    grown = _feed(together, "wt_occ1").power_w * (together.end_s - together.start_s) \
        - _feed(alone, "wt_occ1").power_w * (alone.end_s - alone.start_s)
    assert grown == pytest.approx(resting_w * extra, rel=1e-4)
    # K's program draw (occ2's converters) is in K's figure and not in J's
    assert all("occ2" not in t.device and "laser2" not in t.device for t in together.terms)
    assert {t.device for t in other.terms} == {f"wt_occ2 feed (occ2, {', '.join(f'laser2_{i}' for i in range(1, 5))})",
                                              "wt_occ2"}
    assert other.bench_j > 0 and together.start_s <= other.start_s and other.end_s <= together.end_s


def test_on_a_shared_feed_the_job_is_read_back_and_the_feed_left_out(tmp_path_factory):
    folder = ring_core_calibration_folder(tmp_path_factory, cores=1)
    with labctl.open_bench(SYSTEM_BENCH_PATH, mode="sim", seed=SEED) as bench:
        occ1 = open_opu(bench, folder, core=0)
        a, b = _operands(3, 8)
        _, energy = CoreMetering(occ1, bench_projection(bench)).run(occ1, lambda: occ1.matmul(a, b))
    kinds = {t.device: t.provenance["kind"] for t in energy.terms}
    assert kinds == {"occ1": "measured", **{name: "model" for name in CORE1[1:]}}
    assert energy.bench_j == pytest.approx(sum(t.power_w * (t.end_s - t.start_s) for t in energy.terms), rel=1e-12)
    assert any("wt_cores meters occ1 together with occ2, occ3" in note for note in energy.notes)
    assert any("wt_lasers meters laser1_1" in note for note in energy.notes)
    assert "readbacks and the instrument table" in energy.attribution


class _Bare:
    """An engine that names no bench: its products are not metered."""

    name, calibrated = "bare", True

    def __init__(self):
        self.last_stats = {}

    def matmul(self, a, b, **_):
        self.last_stats = {"macs": a.shape[0] * a.shape[1] * b.shape[1]}
        return a @ b


def test_an_engine_without_a_bench_gets_no_figures_and_says_why():
    engine = _Bare()
    out, energy = CoreMetering(engine, None, "no projection of this bench").run(
        engine, lambda: engine.matmul(np.ones((2, 3)), np.ones((3, 4))))
    assert out.shape == (2, 4) and energy.bench_j is None and energy.projected_j is None and not energy.terms
    assert any("names no bench instruments" in note for note in energy.notes)
    assert "projected: no projection of this bench" in energy.notes


def test_a_failed_product_records_nothing_and_stops_the_meter(metered):
    bench, (occ1, _) = metered
    metering = CoreMetering(occ1, bench_projection(bench))

    def fails():
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        metering.run(occ1, fails)
    # the analyzer this job's meter started was stopped: the next job meters normally
    a, b = _operands(4, 8)
    _, energy = metering.run(occ1, lambda: occ1.matmul(a, b))
    assert bench.role("wt_occ1").integration_state != "running" and energy.bench_j > 0
