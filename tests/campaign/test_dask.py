"""Simulated campaigns on Dask: the same results as a serial run, lost workers retried then reported."""

from __future__ import annotations

import pytest

from labctl.campaign import CampaignError, load_campaign, load_index, run_campaign
from labctl.campaign.store import CampaignStore
from sim_backends import CHARACTERISATION_BENCH_PATH

CAMPAIGN = """\
experiment: receiver_snr
seed: 9
parameters: {attenuations_db: [3.0], record_length: 4096}
sweep:
  zip:
    fibre_length_km: [0.0, 8.0, 16.0]
"""


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes; a task whose worker dies is retried once, then fails."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield local
    local.close()


def test_dask_run_matches_the_serial_run_point_for_point(tmp_path, cluster):
    spec = tmp_path / "c.yaml"
    spec.write_text(CAMPAIGN)
    campaign = load_campaign(spec)
    serial = run_campaign(campaign, tmp_path / "serial", show_progress=False)
    parallel = run_campaign(campaign, tmp_path / "dask", scheduler=cluster.scheduler_address, show_progress=False)
    assert serial.status == parallel.status == "complete"
    a, b = load_index(serial.path), load_index(parallel.path)
    columns = ["key", "seed", "fibre_length_km", "max_snr_db", "power_at_max_snr_dbm", "dark_noise_rms_v"]
    assert a[columns].equals(b[columns])
    runs = CampaignStore(tmp_path / "dask", campaign, resume=True).runs  # the start documents
    assert runs[-1]["scheduler"] == cluster.scheduler_address


def test_a_worker_dying_mid_point_is_retried_then_reported_failed(tmp_path, cluster):
    """One campaign at a time: Dask counts a death against every task on the dying worker."""
    records = {}
    for dies in ("once", "always"):
        spec = tmp_path / f"{dies}.yaml"
        spec.write_text(f"experiment: tests.campaign.dying:Dying\n"
                        f"parameters: {{marker: '{tmp_path / (dies + '.marker')}', dies: {dies}}}\n")
        result = run_campaign(load_campaign(spec), tmp_path / dies / "out", scheduler=cluster.scheduler_address,
                              show_progress=False)
        assert result.status == "complete"  # the campaign itself ends normally
        records[dies] = result.records[0]
    assert records["once"]["status"] == "complete" and records["once"]["results"]["attempts"] == 2
    assert records["always"]["status"].startswith("failed: KilledWorker")
    assert (tmp_path / "always.marker").read_text() == "2"  # tried on a second worker before giving up


def test_real_benches_and_unreachable_schedulers_are_refused_before_anything_runs(tmp_path, monkeypatch):
    from labctl.campaign import engine

    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 1.0)
    spec = tmp_path / "c.yaml"
    spec.write_text(CAMPAIGN)
    real = tmp_path / "real.yaml"
    real.write_text(CAMPAIGN + f"mode: real\nbench: {CHARACTERISATION_BENCH_PATH}\n")
    with pytest.raises(CampaignError, match="never shared between Dask workers"):
        run_campaign(load_campaign(real), tmp_path / "out", scheduler="local", show_progress=False)
    with pytest.raises(CampaignError, match="cannot reach the Dask scheduler"):
        run_campaign(load_campaign(spec), tmp_path / "out", scheduler="tcp://127.0.0.1:9", show_progress=False)
    with pytest.raises(CampaignError, match="give 'local' or tcp"):
        run_campaign(load_campaign(spec), tmp_path / "out", scheduler="udp://x", show_progress=False)
    assert not (tmp_path / "out").exists()
