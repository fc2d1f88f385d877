"""Campaign suspenders: readings only between points with the light on; a dimmed bench suspends the
RunEngine, its recovery resumes it, and no point is lost or measured twice."""

from __future__ import annotations

import textwrap
import threading
import time

import pytest

from labctl.bench import CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH, open_bench
from labctl.campaign import CampaignError, load_campaign, load_records, run_campaign
from labctl.campaign.spec import DriftSuspend
from labctl.campaign.suspend import drift_monitor
from labctl.errors import ConfigError
from tests.shared_files import ring_core_calibration

CAMPAIGN = """\
experiment: receiver_snr
bench: {bench}
seed: 3
parameters: {{attenuations_db: [3.0], record_length: 4096}}
sweep:
  grid:
    fibre_length_km: [0.0, 5.0, 10.0, 15.0]
suspend:
  power:
    meter: powermeter
    channel: 1
    laser: laser
    laser_channel: 1
    switch: switch
    route: 1
    below_dbm: -20.0
    resume_dbm: -15.0
    poll_s: 0.1
"""


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_dimmed_bench_suspends_the_campaign_until_the_light_is_back_and_no_point_is_lost(tmp_path, capsys):
    campaign = load_campaign(write(tmp_path, CAMPAIGN.format(bench=CHARACTERISATION_BENCH_PATH)))
    dark_s = 1.5
    events: list[float] = []
    restored = threading.Event()
    with open_bench(CHARACTERISATION_BENCH_PATH, seed=3) as bench:
        laser = bench.role("laser", 1)
        assert not laser.output_enabled  # the bench is dark between points: the reading lights it itself

        def dim_after_the_second_point(name, doc):
            if name != "event":
                return
            events.append(time.monotonic())
            if len(events) == 2:   # 200 km more fibre: 40 dB less light at the meter
                previous = bench.sim_adjust("edge_fibre", length_km=200.0)

                def restore():
                    bench.sim_adjust("edge_fibre", **previous)
                    restored.set()

                threading.Timer(dark_s, restore).start()

        result = run_campaign(campaign, tmp_path / "out", show_progress=False, bench=bench,
                              subscribers=[dim_after_the_second_point])
        assert not laser.output_enabled  # every reading put the laser back as it was
    assert restored.is_set()
    printed = capsys.readouterr().out
    assert "Suspending" in printed  # the RunEngine's own suspension, and its suspender's all-clear
    assert "reports a return to nominal conditions" in printed
    assert result.status == "complete"
    records = load_records(result.path)
    # every point exactly once, all measured, in order
    assert [r["index"] for r in records] == list(range(len(campaign.points)))
    assert {r["key"] for r in records} == {p.key for p in campaign.points}
    assert all(r["status"] == "complete" for r in records)
    assert len(events) == len(campaign.points)
    assert events[2] - events[1] >= dark_s  # the third point waited for the light


def test_suspenders_are_checked_line_by_line(tmp_path):
    bench = CHARACTERISATION_BENCH_PATH
    text = CAMPAIGN.format(bench=bench)
    with pytest.raises(ConfigError, match=r"line 10, field 'suspend.power.meter'.*no instrument 'lightmeter'"):
        load_campaign(write(tmp_path, text.replace("meter: powermeter", "meter: lightmeter")))
    with pytest.raises(ConfigError, match=r"line 11, field 'suspend.power.channel'.*not 9"):
        load_campaign(write(tmp_path, text.replace("    channel: 1\n", "    channel: 9\n")))
    with pytest.raises(ConfigError, match=r"suspend.power.*resume_dbm \(-25\) must be at least below_dbm"):
        load_campaign(write(tmp_path, text.replace("resume_dbm: -15.0", "resume_dbm: -25.0")))
    with pytest.raises(ConfigError, match=r"suspend.power.*give both switch and route"):
        load_campaign(write(tmp_path, text.replace("    route: 1\n", "")))
    with pytest.raises(ConfigError, match=r"line 10, field 'suspend.drift.calibration'.*no calibration file"):
        load_campaign(write(tmp_path, text.split("suspend:")[0] + "suspend:\n  drift:\n    calibration: nope.json\n"))


def test_suspenders_refuse_dask(tmp_path):
    campaign = load_campaign(write(tmp_path, CAMPAIGN.format(bench=CHARACTERISATION_BENCH_PATH)))
    with pytest.raises(CampaignError, match="suspenders watch the bench from the RunEngine"):
        run_campaign(campaign, tmp_path / "out", scheduler="local", show_progress=False)


def test_the_drift_monitor_reads_the_core_drifted_when_its_link_changes_and_fine_when_it_is_restored(
        tmp_path_factory):
    calibration = ring_core_calibration(tmp_path_factory, 0)
    lock = threading.Lock()
    with open_bench(SYSTEM_BENCH_PATH, seed=1) as bench:
        monitor = drift_monitor(bench, DriftSuspend(calibration=str(calibration)), calibration, lock)
        lasers = [bench.role(ch.laser, ch.laser_port) for ch in monitor_channels(bench)]
        before = monitor.check()
        assert before < 2.0
        assert not any(laser.output_enabled for laser in lasers)  # put back dark after the check
        # 1 km more edge fibre: the light arrives 4.9 us later than the calibrated input advance
        previous = bench.sim_adjust("edge_fibre1", length_km=3.0)
        assert monitor.check() > 2.0
        bench.sim_adjust("edge_fibre1", **previous)
        assert monitor.check() < 2.0
    assert [value for _, value in monitor.history][0] == before


def monitor_channels(bench):
    from labctl.opu.stationary import StationaryConfig

    return StationaryConfig.from_bench(bench).cores[0].channels
