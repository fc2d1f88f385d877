"""Adaptive sweeps add points between the neighbours of a feature of a result, the same on resume."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.campaign import load_campaign, load_index, run_campaign
from labctl.campaign.adaptive import feature_index
from labctl.campaign.spec import Adaptive
from labctl.errors import ConfigError


def test_feature_index_finds_minimum_maximum_and_knee():
    xs = np.arange(0.0, 10.0)
    knee = Adaptive(param="x", start=0, stop=9, num=10, result="y", feature="knee")
    assert xs[feature_index(knee, xs, np.minimum(xs, 6.0))] == 6.0  # a saturating curve bends at 6
    lowest = knee.model_copy(update={"feature": "min"})
    assert xs[feature_index(lowest, xs, (xs - 3.0) ** 2)] == 3.0
    highest = knee.model_copy(update={"feature": "max"})
    assert xs[feature_index(highest, xs, -(xs - 7.0) ** 2)] == 7.0


def test_adaptive_campaign_refines_around_the_lowest_snr_and_resumes_to_the_same_points(tmp_path):
    spec = tmp_path / "adaptive.yaml"
    spec.write_text("experiment: receiver_snr\nseed: 4\n"
                    "parameters: {attenuations_db: [3.0], record_length: 4096}\n"
                    "sweep:\n  adaptive: {param: fibre_length_km, start: 0, stop: 20, num: 3, result: max_snr_db,"
                    " feature: min, rounds: 1, points: 1}\n")
    campaign = load_campaign(spec)
    result = run_campaign(campaign, tmp_path / "out", show_progress=False)
    index = load_index(result.path)
    # the SNR falls with fibre length (0.2 dB/km of loss): the lowest is at 20 km, refined towards 10 km
    assert sorted(index["fibre_length_km"]) == [0.0, 10.0, 15.0, 20.0]
    assert result.status == "complete" and result.ran == 4
    again = run_campaign(campaign, tmp_path / "out", resume=True, show_progress=False)
    assert again.ran == 0 and again.status == "complete" and len(again.records) == 4


def test_adaptive_sweeps_are_checked(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("experiment: receiver_snr\nsweep:\n  grid: {laser_power_dbm: [6.0]}\n"
                    "  adaptive: {param: fibre_length_km, start: 0, stop: 20, num: 3, result: max_snr_db, "
                    "feature: knee}\n")
    with pytest.raises(ConfigError, match="cannot be combined"):
        load_campaign(spec)
    spec.write_text("experiment: receiver_snr\nsweep:\n  adaptive: {param: fibre_length_km, start: 0, stop: 20,\n"
                    "    num: 2, result: max_snr_db, feature: knee}\n")
    with pytest.raises(ConfigError) as info:
        load_campaign(spec)
    assert info.value.field == "sweep.adaptive.num" and info.value.line == 4
