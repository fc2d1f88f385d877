"""Campaign documents over ZeroMQ as JSON; the start document says what was run, on what, with which seeds."""

from __future__ import annotations

import threading

import pytest

from labctl.campaign import CampaignError, load_campaign, run_campaign
from labctl.campaign.live import TOPIC, Publisher, decode, documents, point_of


def test_a_watcher_receives_and_parses_the_documents_of_a_running_campaign(tmp_path):
    spec = tmp_path / "live.yaml"
    spec.write_text("experiment: receiver_snr\nseed: 2\nparameters: {attenuations_db: [3.0], record_length: 4096}\n"
                    "sweep:\n  grid:\n    fibre_length_km: [1.0, 3.0]\n")
    campaign = load_campaign(spec)
    publisher = Publisher("tcp://127.0.0.1:*")
    received: list = []
    ready = threading.Event()

    def listen():
        stream = documents(publisher.endpoint, timeout_s=60)
        ready.set()
        for name, doc in stream:
            received.append((name, doc))
            if name == "stop":
                break

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    # a subscriber connects asynchronously: publish until it hears, so the campaign's documents all arrive
    while not received:
        publisher("descriptor", {"probe": True})
        listener.join(0.05)
    try:
        run_campaign(campaign, tmp_path / "out", show_progress=False, subscribers=[publisher])
    finally:
        listener.join(30)
        publisher.close()
    names = [name for name, doc in received if "probe" not in doc]
    assert names == ["start", "descriptor", "event", "event", "stop"]
    start = next(doc for name, doc in received if name == "start")
    assert start["campaign_hash"] == campaign.digest and start["code_version"]
    assert start["bench_snapshot"]["instruments"]["laser"]["role"] == "tunable_laser"
    assert start["seeds"]["points"] == {p.key: p.seed for p in campaign.points}
    records = [point_of(doc) for name, doc in received if name == "event"]
    assert sorted(r["values"]["fibre_length_km"] for r in records) == [1.0, 3.0]
    assert all(r["status"] == "complete" for r in records)


@pytest.mark.parametrize("frames, words", [
    ([TOPIC, b"event", b"\x80\x04pickled"], "not JSON"),
    ([TOPIC, b"resource", b"{}"], "unknown document name"),
    ([b"other", b"event", b"{}"], "not a labctl campaign document"),
    ([TOPIC, b"event", b"[1, 2]"], "not a JSON object"),
])
def test_anything_but_a_json_document_is_refused(frames, words):
    with pytest.raises(CampaignError, match=words):
        decode(frames)


def test_a_taken_endpoint_is_a_clear_error():
    first = Publisher("tcp://127.0.0.1:*")
    try:
        with pytest.raises(CampaignError, match="cannot publish"):
            Publisher(first.endpoint)
    finally:
        first.close()


def test_watch_prints_points_and_plots_headless_until_the_stop_document():
    import json
    import time

    import matplotlib

    from labctl.campaign.live import watch

    matplotlib.use("Agg")
    publisher = Publisher("tcp://127.0.0.1:*")
    lines: list[str] = []
    seen: list = []
    watcher = threading.Thread(target=lambda: seen.extend(watch(publisher.endpoint, plot=True, echo=lines.append)),
                               daemon=True)
    watcher.start()
    try:
        while not lines:  # the subscription is asynchronous: announce the campaign until it is heard
            publisher("start", {"campaign": "demo", "experiment": "receiver_snr", "points_total": 1})
            time.sleep(0.05)
        record = {"index": 0, "values": {"fibre_length_km": 2.0}, "status": "complete",
                  "results": {"max_snr_db": 37.5}}
        publisher("event", {"data": {"point_record": json.dumps(record)}})
        publisher("stop", {"exit_status": "success", "reason": ""})
        watcher.join(20)
    finally:
        publisher.close()
    assert not watcher.is_alive()
    assert "point 0 {'fibre_length_km': 2.0}: complete" in lines
    assert lines[-1] == "campaign ended: success"
    assert [name for name, _ in seen][-2:] == ["event", "stop"]
