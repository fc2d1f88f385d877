"""Bluesky plans written as a user would drive a simulated labctl bench through labctl's devices."""

from __future__ import annotations

import threading
import time

import pytest
from bluesky import RunEngine
from bluesky.plans import count, scan
from bluesky.protocols import Movable, Readable, Triggerable, check_supports
from bluesky.suspenders import SuspendFloor

from labctl.bench import open_bench
from labctl.campaign.devices import ExperimentPoint, FibreLength, LaserPower, ReceivedPower
from labctl.errors import ConfigError

#: Loss of the default bench's edge fibre, dB/km (G.652.D at 1550 nm, its bench file's value).
FIBRE_DB_PER_KM = 0.2


@pytest.fixture
def lit_bench():
    with open_bench("characterisation", seed=4) as bench:
        bench.role("laser", 1).output_enabled = True
        bench.role("switch").route = 1  # the power meter's port
        yield bench


def collect():
    docs = []
    return docs, lambda name, doc: docs.append((name, doc))


def test_a_users_scan_moves_laser_and_fibre_and_reads_the_power_meter(lit_bench):
    laser, meter, fibre = LaserPower(lit_bench), ReceivedPower(lit_bench), FibreLength(lit_bench)
    check_supports(laser, Movable)
    check_supports(meter, Readable)
    engine = RunEngine({})
    docs, keep = collect()
    engine(scan([meter], laser, 6, 10, 3), keep)
    engine(scan([meter], fibre, 0, 40, 3), keep)
    events = [doc["data"] for name, doc in docs if name == "event"]
    assert [e["laser_power"] for e in events[:3]] == pytest.approx([6, 8, 10], abs=1e-6)
    received = [e["received_power"] for e in events]
    # the received power follows the laser dB for dB, and falls by the fibre's loss per km
    assert received[1] - received[0] == pytest.approx(2.0, abs=0.05)
    assert received[2] - received[1] == pytest.approx(2.0, abs=0.05)
    assert received[3] - received[4] == pytest.approx(20 * FIBRE_DB_PER_KM, abs=0.05)
    assert received[4] - received[5] == pytest.approx(20 * FIBRE_DB_PER_KM, abs=0.05)
    starts = [doc for name, doc in docs if name == "start"]
    assert len(starts) == 2 and [name for name, _ in docs].count("stop") == 2


def test_suspend_floor_pauses_while_the_received_power_is_low(lit_bench):
    meter = ReceivedPower(lit_bench, poll_s=0.05)
    engine = RunEngine({})
    engine.install_suspender(SuspendFloor(meter, suspend_thresh=-20.0, resume_thresh=-15.0))
    laser = lit_bench.role("laser", 1)
    dark_s = 0.8
    docs, keep = collect()
    once = threading.Event()

    def blackout(name, doc):
        if name == "event" and not once.is_set():
            once.set()
            def cycle():
                with meter.lock:
                    laser.output_enabled = False
                time.sleep(dark_s)
                with meter.lock:
                    laser.output_enabled = True
            threading.Thread(target=cycle, daemon=True).start()

    try:
        engine(count([meter], num=4, delay=0.3), [keep, blackout])
    finally:
        engine.clear_suspenders()  # unsubscribes: the meter's poll thread stops with the test
    assert not any(t.name == f"labctl-poll-{meter.name}" for t in threading.enumerate())
    events = [doc for name, doc in docs if name == "event"]
    assert len(events) >= 4  # a suspension rewinds to the last checkpoint and reads that step again
    assert all(e["data"]["received_power"] > -15.0 for e in events)  # nothing read in the dark
    gaps = [b["time"] - a["time"] for a, b in zip(events, events[1:])]
    assert max(gaps) >= dark_s  # the run waited for the light to come back


def test_experiment_point_is_a_triggerable_detector_and_fibre_refuses_a_real_change(lit_bench, tmp_path):
    from labctl.campaign import load_campaign

    spec = tmp_path / "c.yaml"
    spec.write_text("experiment: receiver_snr\nparameters: {attenuations_db: [3.0], record_length: 4096}\n")
    detector = ExperimentPoint(load_campaign(spec), tmp_path / "points")
    check_supports(detector, Triggerable)
    check_supports(detector, Readable)
    with pytest.raises(ConfigError, match="no fibre"):
        FibreLength(lit_bench, "switch")
