"""The campaign file survives SIGKILL: a resumed campaign finds every point exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import pytest

from labctl.campaign import CampaignError, load_campaign, load_index, load_records, run_campaign
from labctl.store import DIED, ResultsPathError, results_summary

REPO = Path(__file__).resolve().parents[2]

CAMPAIGN = """\
experiment: receiver_snr
seed: 11
parameters: {attenuations_db: [3.0], record_length: 4096}
sweep:
  grid:
    fibre_length_km: [0.0, 5.0, 10.0, 15.0, 20.0]
"""


def _complete(path: Path) -> int:
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs["points_complete"])
    except (OSError, KeyError):
        return 0


def _started(spec: Path, out: Path, points: int) -> subprocess.Popen:
    """``labctl campaign run spec`` in its own process, returned once ``points`` points are stored."""
    spec.write_text(CAMPAIGN)
    process = subprocess.Popen([sys.executable, "-m", "labctl", "campaign", "run", str(spec), "--out", str(out),
                                "--quiet"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    try:
        while _complete(out / "campaign.h5") < points:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the campaign made no progress"
            time.sleep(0.05)
    except BaseException:
        process.kill()
        raise
    return process


def test_sigkill_mid_campaign_then_resume_measures_every_point_once(tmp_path):
    spec = tmp_path / "kill.yaml"
    out = tmp_path / "out"
    process = _started(spec, out, points=2)
    try:
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    before = load_records(out / "campaign.h5")
    assert 2 <= len(before) < 5, "kill the campaign while it runs"
    campaign = load_campaign(spec)
    result = run_campaign(campaign, out, resume=True, show_progress=False)
    assert result.status == "complete"
    assert result.ran == 5 - len(before)
    index = load_index(out / "campaign.h5")
    assert sorted(index["key"]) == sorted(p.key for p in campaign.points)  # each point exactly once
    assert list(index["index"]) == [0, 1, 2, 3, 4]
    assert set(index["status"]) == {"complete"}
    # points measured before the kill are untouched; received power falls 0.2 dB/km over the fibre (G.652.D)
    assert {r["key"]: r for r in load_records(out / "campaign.h5")}[before[0]["key"]] == before[0]
    power = index.set_index("fibre_length_km")["power_at_max_snr_dbm"]
    assert power[0.0] - power[20.0] == pytest.approx(4.0, abs=0.1)
    # the point in flight when killed left its own results file (died, or cut short mid-write), never reused
    files = sorted((out / "points").glob("*.h5"))
    complete = {Path(r["results_file"]) for r in load_records(out / "campaign.h5")}
    assert len(complete) == 5 and complete <= set(files) and len(files) <= 6
    assert all(results_summary(p)["status"] == "complete" for p in complete)
    for leftover in set(files) - complete:
        try:
            assert results_summary(leftover)["status"] == DIED
        except ResultsPathError:
            pass  # killed while HDF5 wrote its header: unreadable, and not part of the campaign
    assert (out / "summary.md").exists() and (out / "figure-fibre_length_km.png").exists()


def test_resume_refuses_another_campaign_and_a_plain_rerun_refuses_the_folder(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text(CAMPAIGN.replace("[0.0, 5.0, 10.0, 15.0, 20.0]", "[1.0]"))
    run_campaign(load_campaign(first), tmp_path / "out", show_progress=False)
    with pytest.raises(CampaignError, match="exists: add --resume"):
        run_campaign(load_campaign(first), tmp_path / "out", show_progress=False)
    other = tmp_path / "b.yaml"
    other.write_text(CAMPAIGN.replace("[0.0, 5.0, 10.0, 15.0, 20.0]", "[2.0]"))
    with pytest.raises(CampaignError, match="holds another campaign"):
        run_campaign(load_campaign(other), tmp_path / "out", resume=True, show_progress=False)
    again = run_campaign(load_campaign(first), tmp_path / "out", resume=True, show_progress=False)
    assert again.ran == 0 and len(again.records) == 1


def test_cli_runs_a_campaign_and_reports_bad_files_in_one_line(tmp_path):
    from click.testing import CliRunner

    from labctl.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(CAMPAIGN).replace("fibre_length_km", "fibre_len_km"))
    result = CliRunner().invoke(main, ["campaign", "run", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "line 6" in str(result.exception)
    assert not (tmp_path / "o").exists()  # nothing ran, nothing was written


def test_a_stop_condition_ends_the_campaign_and_resume_measures_the_rest(tmp_path):
    spec = tmp_path / "stop.yaml"
    spec.write_text(CAMPAIGN.replace("grid:\n    fibre_length_km: [0.0, 5.0, 10.0, 15.0, 20.0]",
                                     "zip:\n    fibre_length_km: [0.0, 40.0, 10.0]")
                    + "stop:\n  when: [{result: max_snr_db, below: 30.0}]\n")
    campaign = load_campaign(spec)
    first = run_campaign(campaign, tmp_path / "out", show_progress=False)
    # 40 km of fibre (8 dB) takes the SNR below 30 dB: the campaign stops after that point
    assert first.status.startswith("stopped: max_snr_db") and "at point 1 is below 30" in first.status
    assert [r["index"] for r in first.records] == [0, 1]
    rest = run_campaign(campaign, tmp_path / "out", resume=True, show_progress=False)
    assert rest.ran == 1 and rest.status == "complete" and len(rest.records) == 3


def test_sigterm_ends_the_campaign_after_the_point_in_flight(tmp_path):
    out = tmp_path / "out"
    process = _started(tmp_path / "term.yaml", out, points=1)
    try:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, output
    with h5py.File(out / "campaign.h5", "r") as f:
        assert f.attrs["status"] == "interrupted: terminated by SIGTERM"
    records = load_records(out / "campaign.h5")
    assert len(records) < 5
    # the point in flight was finished and stored: no results file was cut off
    assert {str(p) for p in (out / "points").glob("*.h5")} == {r["results_file"] for r in records}
    assert all(results_summary(r["results_file"])["status"] == "complete" for r in records)
