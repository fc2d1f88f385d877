"""Measurement campaigns: declarative sweeps of an experiment, run on Bluesky's RunEngine (or on Dask
for simulated benches), stored point by point in one resumable HDF5 file (see docs/campaigns.md).

``load_campaign(file)`` checks a campaign file; ``run_campaign(campaign, out)`` runs it;
``load_index(out / "campaign.h5")`` gives one row per point as a pandas DataFrame.
"""

from labctl.campaign.engine import CampaignResult, run_campaign
from labctl.campaign.errors import CampaignError
from labctl.campaign.spec import Campaign, Point, load_campaign
from labctl.campaign.store import CAMPAIGN_FILE, load_index, load_records

__all__ = ["CAMPAIGN_FILE", "Campaign", "CampaignError", "CampaignResult", "Point", "load_campaign",
           "load_index", "load_records", "run_campaign"]
