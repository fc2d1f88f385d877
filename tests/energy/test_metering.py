"""The bench view of a run, metered on a simulated bench: the analyzer's reading equals the simulated
instruments' draws over the same interval, readbacks and table figures cover the rest, each once."""

from pathlib import Path

import pytest

from labctl import open_bench
from labctl.energy import EnergyLedger, EnergyReport
from labctl.energy.metering import BenchMeter, MeteringError
from sim_backends import idle_power_datasheet

BENCH = Path(__file__).parents[1] / "sim" / "benches" / "wt310e_bench.yaml"


@pytest.fixture
def bench():
    with open_bench(BENCH, seed=1) as b:
        yield b


def world(bench):
    return bench.sim.world


def test_the_feed_term_is_the_worlds_energy_of_what_the_analyzer_measures(bench):
    w = world(bench)
    laser = bench.role("laser", channel=1)
    with BenchMeter(bench, label="hand case") as meter:
        e0 = w.energy_j(["laser", "opm"])
        bench.settle(2.0)
        laser.power = 1e-3 * 10 ** (10 / 10)
        laser.output_enabled = True
        bench.settle(3.0)
        laser.output_enabled = False
        bench.settle(1.0)
        expected = w.energy_j(["laser", "opm"]) - e0
    s = meter.ledger.summary("bench")
    feed = next(d for d in s.devices if d.device.startswith("wt feed"))
    assert feed.kinds == ("measured",)
    assert feed.energy_j == pytest.approx(expected, rel=1e-5)  # the meter's reading has 6 digits
    assert s.time_s == pytest.approx(6.0)
    # a lit laser draws more than a dark one: the laser's 3 s lit are in the figure
    idle = w.draws_w()["laser"] + w.draws_w()["opm"]
    assert feed.energy_j > idle * 6.0


def test_a_dc_channel_outside_any_feed_is_read_back_as_v_times_i(bench):
    dc = bench.role("dc", channel=1)
    dc.voltage, dc.current_limit = 2.0, 0.05
    dc.output_enabled = True
    with BenchMeter(bench) as meter:
        bench.settle(1.0)
        v = dc.measure_voltage()
    term = next(t for t in meter.ledger.terms("bench") if t.device == "dc ch1")
    assert term.provenance.command.startswith("measure_voltage() x measure_current()")
    assert term.power_w >= 0  # an unloaded output: what it delivers is ~0, never negative
    # no load on it: only the readback offset (current noise sigma = module resolution / sqrt 12)
    assert term.power_w < v * 0.01


def test_the_analyzer_itself_is_on_no_feed_so_its_table_figure_is_used_and_labelled(bench):
    with BenchMeter(bench) as meter:
        bench.settle(1.0)
    term = next(t for t in meter.ledger.terms("bench") if t.device == "wt")
    sheet = idle_power_datasheet("yokogawa.WT310E")
    assert term.power_w == sheet.watts
    kind = "model" if sheet.kind == "assumed" else "datasheet"
    assert EnergyReport.from_ledger(meter.ledger).summaries["bench"].devices[-1].kinds == (kind,)


def test_every_drawing_item_is_counted_once_and_the_total_is_the_worlds(bench):
    w = world(bench)
    with BenchMeter(bench) as meter:
        e0 = w.energy_j()
        bench.settle(4.0)
        e1 = w.energy_j()
    devices = {d.device for d in meter.ledger.summary("bench").devices}
    assert devices == {"wt feed (laser, opm)", "dc ch1", "wt"}
    # dc (an idle supply, outputs off) is read back as the 0 W it delivers; the feed is exact, and the
    # meter's own draw is its table figure, which the simulation uses too
    dc_idle = w.draws_w()["dc"]
    total = meter.ledger.summary("bench").energy_j
    assert total == pytest.approx(e1 - e0 - dc_idle * 4.0, rel=1e-5)


def test_a_failed_run_records_nothing_and_stops_the_integration_it_started(bench):
    with pytest.raises(RuntimeError):
        with BenchMeter(bench) as meter:
            bench.settle(1.0)
            raise RuntimeError("the run failed")
    assert meter.ledger.terms("bench") == []
    assert bench.role("wt").integration_state == "stopped"


def test_start_stop_misuse_is_refused(bench):
    meter = BenchMeter(bench)
    with pytest.raises(MeteringError):
        meter.stop()
    with pytest.raises(MeteringError):
        meter.sample()
    meter.start()
    with pytest.raises(MeteringError):
        meter.start()
    meter.stop()
    with pytest.raises(MeteringError):
        meter.stop()


def test_a_running_integration_is_read_by_difference_and_left_running(bench):
    wt = bench.role("wt")
    wt.start_integration()
    bench.settle(10.0)
    with BenchMeter(bench) as meter:
        bench.settle(1.0)
    feed = next(t for t in meter.ledger.terms("bench") if t.device.startswith("wt feed"))
    assert feed.end_s - feed.start_s == pytest.approx(1.0)
    assert "over the meter's 1 s" in feed.note
    assert wt.integration_state == "running"  # someone else's integration: not stopped, not zeroed
    assert wt.integration_time() == pytest.approx(11.0)


def test_nested_meters_each_get_their_own_interval(bench):
    w = world(bench)
    laser = bench.role("laser", channel=1)
    with BenchMeter(bench, label="outer") as outer:
        e_outer0 = w.energy_j(["laser", "opm"])
        bench.settle(2.0)
        with BenchMeter(bench, label="inner") as inner:
            e_inner0 = w.energy_j(["laser", "opm"])
            laser.power = 1e-2
            laser.output_enabled = True
            bench.settle(3.0)
            laser.output_enabled = False
            e_inner1 = w.energy_j(["laser", "opm"])
        bench.settle(1.0)
        e_outer1 = w.energy_j(["laser", "opm"])

    def feed_energy(meter):
        return next(d for d in meter.ledger.summary("bench").devices if d.device.startswith("wt feed")).energy_j

    assert feed_energy(inner) == pytest.approx(e_inner1 - e_inner0, rel=1e-5)
    assert feed_energy(outer) == pytest.approx(e_outer1 - e_outer0, rel=1e-5)
    assert bench.role("wt").integration_state == "stopped"  # the outer meter started it, and stopped it


def test_an_integration_that_times_up_during_the_run_is_left_out_and_said_so(bench):
    wt = bench.role("wt")
    wt.integration_timer = 1
    wt.start_integration()
    bench.settle(2.0)
    assert wt.integration_state == "timeup"  # a timed-up integration: the meter resets it to start again
    with BenchMeter(bench) as meter:
        bench.settle(3.0)  # ... and it times up again after its 1 s timer
    assert not any(t.device.startswith("wt feed") for t in meter.ledger.terms("bench"))
    assert any("integrated only 1 s of the run's 3 s" in n for n in meter.ledger.notes("bench"))


def test_the_ledger_with_its_notes_survives_a_round_trip(bench, tmp_path):
    with BenchMeter(bench) as meter:
        bench.settle(1.0)
    meter.ledger.add_note("bench", "a reader must know this")
    path = meter.ledger.save(tmp_path / "run.energy.json")
    again = EnergyLedger.load(path)
    assert again.notes("bench") == ["a reader must know this"]
    assert again.summary("bench").energy_j == pytest.approx(meter.ledger.summary("bench").energy_j)
    assert "note: a reader must know this" in EnergyReport.from_ledger(again).to_text()


@pytest.fixture
def core_bench_without_analyzers(tmp_path):
    """The built-in optical computing center with every power analyzer taken off it: the cores are then
    metered by their boards' own input-power monitors."""
    import yaml

    from labctl.bench import SYSTEM_BENCH_PATH

    doc = yaml.safe_load(Path(SYSTEM_BENCH_PATH).read_text())
    doc["instruments"] = {k: v for k, v in doc["instruments"].items() if v["role"] != "power_analyzer"}
    path = tmp_path / "no_analyzers.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with open_bench(path, seed=2) as b:
        yield b


def test_a_core_on_no_feed_is_metered_by_its_board_monitor_between_snapshots(core_bench_without_analyzers):
    import numpy as np

    bench = core_bench_without_analyzers
    occ = bench.role("occ1")
    occ.output_enabled = True
    tiles, slots = 4, 64
    heaters = np.full((tiles, occ.n_outputs, occ.n_inputs), 0.5)
    codes = np.zeros((tiles, slots, occ.n_inputs), dtype=np.int16)
    w = bench.sim.world
    with BenchMeter(bench) as meter:
        before, e0 = meter.now(), w.energy_j(["occ1"])
        idle = occ.board_power()
        occ.execute(heaters, codes)
        meter.sample()
        bench.settle(1e-3)
        after, e1 = meter.now(), w.energy_j(["occ1"])
    term = next(t for t in meter.ledger.terms("bench") if t.device == "occ1")
    assert term.provenance.command.startswith("board_power()")
    assert "3 snapshots" in term.note
    # snapshots see the board before the program (idle) and after it (heaters holding the last table):
    # the term lies between the two, and misses the converters' draw while the program ran, which the
    # World (and an analyzer) counts
    holding = occ.board_power()
    assert idle < holding
    assert idle < term.power_w < holding
    assert e1 - e0 > term.power_w * (after - before)
    assert not any(t.device.startswith("occ") and t.provenance.__class__.__name__ != "Measured"
                   for t in meter.ledger.terms("bench"))


def test_read_back_names_the_instruments_on_no_feed_with_a_readback_role(bench, core_bench_without_analyzers):
    assert BenchMeter(bench).read_back == ("dc",)  # laser and opm are on the analyzer's feed
    assert BenchMeter(core_bench_without_analyzers).read_back == ("occ1", "occ2", "occ3")
