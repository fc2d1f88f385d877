"""The labctl command, as a user types it."""

import subprocess
import sys

from click.testing import CliRunner
from pydantic import BaseModel, Field

from labctl import cli
from labctl.cli import main
from labctl.config import load_bench
from labctl.runner import Experiment
from sim_backends import SYSTEM_BENCH_PATH


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("bench", "run", "experiments"):
        assert word in result.output


def test_bench_list_shows_every_instrument():
    result = invoke("bench", "list", "--sim")          # the system: three cores, their lasers and meters
    assert result.exit_code == 0
    for name in load_bench(SYSTEM_BENCH_PATH).instruments:
        assert f"  {name} " in result.output


def test_bench_check_sim_identifies_and_reads_every_instrument():
    result = invoke("bench", "check", "--sim")
    assert result.exit_code == 0, result.output
    assert result.output.count("  ok   ") == len(load_bench(SYSTEM_BENCH_PATH).instruments)
    assert "FAIL" not in result.output
    assert "N7714A" in result.output and "dBm" in result.output


def test_bench_snapshot_is_json():
    import json

    result = invoke("bench", "snapshot", "--sim")
    assert json.loads(result.output)["bench"] == "ring-core-sim-bench"


def test_real_mode_without_a_bench_file_is_a_usage_error():
    result = CliRunner().invoke(main, ["bench", "check"])
    assert result.exit_code == 2
    assert "--bench FILE" in result.output


def test_run_writes_results(tmp_path):
    result = invoke("run", "mzm_transfer", "--sim", "--quiet", "--set", "points=15", "--set", "scope=",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mzm_transfer.h5").exists()
    assert "v_pi_v" in result.output


def test_console_errors_are_one_clear_line(tmp_path):
    bad = tmp_path / "bench.yaml"
    bad.write_text("name: x\ninstruments:\n  l: {role: tunable_laser, driver: acme.X, resource: 'GPIB0::1::INSTR'}\n")
    proc = subprocess.run([sys.executable, "-m", "labctl", "bench", "check", "--sim", "--bench", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "instruments.l.driver" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "labctl", "run", "nope", "--sim"], capture_output=True, text=True)
    assert proc.returncode == 2 and "known experiments" in proc.stderr


def test_experiments_lists_parameters():
    result = invoke("experiments")
    assert result.exit_code == 0
    assert "mzm_transfer:" in result.output and "points = 81" in result.output


class NeedsTarget(BaseModel):
    target_dbm: float = Field(description="power to reach")
    tries: int = 3


class Targeting(Experiment):
    """An experiment with a required parameter."""

    name = "targeting"
    Parameters = NeedsTarget


def test_experiments_shows_required_parameters_as_required(monkeypatch):
    monkeypatch.setattr(cli, "available_experiments", lambda: {f"{__name__}:Targeting": f"{__name__}:Targeting"})
    result = invoke("experiments")
    assert "target_dbm = required  power to reach" in result.output
    assert "tries = 3" in result.output and "PydanticUndefined" not in result.output


def test_run_says_where_it_writes_and_keeps_an_existing_file(tmp_path):
    args = ("run", "mzm_transfer", "--sim", "--quiet", "--set", "points=11", "--set", "scope=", "--out", str(tmp_path))
    first = invoke(*args)
    assert f"writing {tmp_path / 'mzm_transfer.h5'}" in first.output
    second = invoke(*args)
    assert f"writing {tmp_path / 'mzm_transfer-1.h5'} ({tmp_path / 'mzm_transfer.h5'} exists and is kept" \
        in second.output
    assert f"results: {tmp_path / 'mzm_transfer-1.h5'}" in second.output
    third = invoke(*args, "--overwrite")
    assert f"results: {tmp_path / 'mzm_transfer.h5'}" in third.output
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["mzm_transfer-1.h5", "mzm_transfer.h5"]
