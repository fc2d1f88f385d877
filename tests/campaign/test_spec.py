"""Campaign files are checked as a whole before anything runs: every error names its line and field."""

from __future__ import annotations

import textwrap

import pytest

from labctl.campaign import load_campaign
from labctl.campaign.spec import point_seed
from labctl.errors import ConfigError

GOOD = """\
experiment: receiver_snr
seed: 5
repeats: 2
parameters:
  attenuations_db: [3.0]
  record_length: 4096
sweep:
  grid:
    fibre_length_km: [0.0, 10.0]
    laser_power_dbm: {start: 6, stop: 8, step: 1}
"""


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_points_are_the_grid_times_the_repeats_with_content_seeds(tmp_path):
    campaign = load_campaign(write(tmp_path, GOOD))
    assert campaign.swept == ("fibre_length_km", "laser_power_dbm")
    assert len(campaign.points) == 2 * 3 * 2
    assert {p.values["laser_power_dbm"] for p in campaign.points} == {6.0, 7.0, 8.0}
    assert len({p.key for p in campaign.points}) == len(campaign.points)
    assert all(p.seed == point_seed(5, p.key) for p in campaign.points)
    # the same point has the same seed whatever else the campaign holds
    other = load_campaign(write(tmp_path, GOOD.replace("[0.0, 10.0]", "[10.0]"), "d.yaml"))
    seeds = {p.key: p.seed for p in campaign.points}
    assert all(seeds[p.key] == p.seed for p in other.points)
    assert other.digest != campaign.digest


def test_zip_random_and_bench_changes(tmp_path):
    campaign = load_campaign(write(tmp_path, """\
        experiment: receiver_snr
        sweep:
          zip:
            bench.edge_fibre.length_km: [1.0, 5.0]
            laser_power_dbm: [6.0, 7.0]
          random: {num: 3, seed: 1, params: {averaging_time_s: {low: 0.01, high: 0.02}}}
        """))
    assert len(campaign.points) == 6
    assert campaign.points[0].changes == {"edge_fibre.length_km": 1.0}
    assert campaign.points[0].overrides({})["laser_power_dbm"] == 6.0
    assert all(0.01 <= p.values["averaging_time_s"] <= 0.02 for p in campaign.points)


@pytest.mark.parametrize("text, line, field, words", [
    ("experiment: no_such_thing\n", 1, "experiment", "unknown experiment"),
    (GOOD.replace("  record_length: 4096", "  record_lenght: 4096"), 6, "parameters.record_lenght", "no parameter"),
    (GOOD.replace("    fibre_length_km:", "    fibre_km:"), 9, "sweep.grid.fibre_km", "no parameter"),
    (GOOD.replace("[0.0, 10.0]", "[]"), 9, "sweep.grid.fibre_length_km", "no points"),
    (GOOD.replace("[0.0, 10.0]", "[0.0, -10.0]"), 9, "sweep.grid.fibre_length_km.1", "greater than or equal"),
    (GOOD.replace("record_length: 4096", "record_length: 100"), 6, "parameters.record_length", "1024"),
    (GOOD.replace("{start: 6, stop: 8, step: 1}", "{start: 6, stop: 8}"), 10, "sweep.grid.laser_power_dbm",
     "num"),
    (GOOD.replace("repeats: 2", "repeats: 0"), 3, "repeats", "greater than or equal to 1"),
    (GOOD.replace("grid:", "gird:"), 8, "sweep.gird", "unknown field"),
    ("experiment: receiver_snr\nsweep:\n  zip:\n    laser_power_dbm: [6.0, 7.0]\n    fibre_length_km: [1.0]\n",
     5, "sweep.zip.fibre_length_km", "equal lengths"),
    ("experiment: receiver_snr\nsweep:\n  grid:\n    bench.edge_fibre.length_km: [1.0, -3.0]\n", 4,
     "sweep.grid.bench.edge_fibre.length_km.1", "bench change"),
    ("experiment: receiver_snr\nmode: real\n", 2, "mode", "bench file"),
])
def test_bad_campaigns_name_line_and_field(tmp_path, text, line, field, words):
    with pytest.raises(ConfigError) as info:
        load_campaign(write(tmp_path, text))
    assert info.value.line == line, str(info.value)
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)


def test_the_example_campaign_is_valid():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "campaign_fibre_power.yaml"
    campaign = load_campaign(example)
    assert campaign.swept == ("power_offset_db", "bench.edge_fibre1.length_km", "bench.dcf1.length_km")
    assert len(campaign.points) == 12
    # each edge length comes with the DCF length that keeps the link's dispersion as the bench file has it
    from labctl.bench import SYSTEM_BENCH_PATH, bench_config

    components = bench_config(SYSTEM_BENCH_PATH, "sim")[0].components
    edge, dcf = components["edge_fibre1"], components["dcf1"]

    def dispersion(edge_km, dcf_km):
        return edge_km * edge["dispersion_ps_nm_km"] + dcf_km * dcf["dispersion_ps_nm_km"]

    for point in campaign.points:
        assert dispersion(point.values["bench.edge_fibre1.length_km"], point.values["bench.dcf1.length_km"]) == \
            pytest.approx(dispersion(edge["length_km"], dcf["length_km"]), abs=1.0)  # ps/nm: DCF lengths given to 0.01 km


def test_report_results_choose_what_the_summary_and_figures_show(tmp_path):
    from labctl.campaign.report import shown_results, summary_table

    campaign = load_campaign(write(tmp_path, GOOD + "report:\n  results: [snr_db, nope, ber]\n"))
    records = [{"index": i, "key": f"k{i}", "repeat": 0, "seed": i, "status": "complete",
                "values": campaign.points[i].values, "results": {"ber": 1e-3 * i, "snr_db": 20.0 - i, "z": 1.0}}
               for i in range(2)]
    assert shown_results(campaign, records) == (["snr_db", "ber"], ["nope"])
    table = summary_table(campaign, records)
    assert "| status | snr_db | ber |" in table and "| z |" not in table
    assert "report.results names nope: no complete point has such a numeric result" in table
    # the report is not part of what the campaign measures: its hash does not change
    assert campaign.digest == load_campaign(write(tmp_path, GOOD, "plain.yaml")).digest
    with pytest.raises(ConfigError, match=r"line 12, field 'report.results': List should have at least 1 item"):
        load_campaign(write(tmp_path, GOOD + "report:\n  results: []\n", "empty.yaml"))


def test_the_real_bench_example_is_valid_given_a_bench_file_and_a_calibration(tmp_path):
    from pathlib import Path

    from labctl.bench import SYSTEM_BENCH_PATH

    example = Path(__file__).resolve().parents[2] / "examples" / "campaign_fibre_power_real.yaml"
    with pytest.raises(ConfigError, match=r"line 11, field 'bench': the bench file cannot be used"):
        load_campaign(example)  # my_center.yaml is yours to write
    text = example.read_text().replace("bench: my_center.yaml", f"bench: {SYSTEM_BENCH_PATH}")
    with pytest.raises(ConfigError, match=r"field 'suspend.drift.calibration': no calibration file"):
        load_campaign(write(tmp_path, text, "real.yaml"))
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "occ1.json").write_text("{}")  # its content is checked against the bench when it runs
    campaign = load_campaign(write(tmp_path, text, "real.yaml"))
    assert campaign.spec.mode == "real" and campaign.swept == ("power_offset_db",) and len(campaign.points) == 3
