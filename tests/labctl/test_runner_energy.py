"""Every run is metered: its ledger is in the results file and its energy line in the summary; a failed or
interrupted run records none; an experiment may name the bench a simulated run opens by default."""

from __future__ import annotations

import re

import h5py
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from labctl.bench import SYSTEM_BENCH_PATH
from labctl.cli import main
from labctl.energy import EnergyError, EnergyLedger
from labctl.energy.ledger import HDF5_DATASET
from labctl.energy.report import format_si
from labctl.errors import ConfigError
from labctl.runner import Experiment, ExperimentError, energy_figures, run_experiment
from labctl.store import read_results
from sim_backends import CHARACTERISATION_BENCH_PATH


class NoParams(BaseModel):
    settle_s: float = 0.5


class Idle(Experiment):
    """Lets the bench sit for a while on its clock and sends nothing to optics."""

    name = "idle"
    Parameters = NoParams

    def run(self, ctx):
        ctx.bench.settle(ctx.params.settle_s)
        return {"settled_s": ctx.params.settle_s}


class Computes(Experiment):
    """Records MACs counted by hand over a stretch of the bench clock, and says it made 4 products."""

    name = "computes"
    Parameters = NoParams

    def run(self, ctx):
        start = ctx.energy.now()
        ctx.bench.settle(ctx.params.settle_s)
        ctx.energy.ledger.add_ops(1000, source="counted by hand", start_s=start, end_s=ctx.energy.now())
        ctx.energy.sample()
        ctx.energy_per(4, "product")
        return {}


class FailsMidway(Experiment):
    """Records MACs, then fails."""

    name = "fails"
    Parameters = NoParams

    def run(self, ctx):
        ctx.energy.ledger.add_ops(10, source="counted by hand")
        raise RuntimeError("instrument fault")


class Interrupted(Experiment):
    """Is interrupted (Ctrl-C) while the meter runs."""

    name = "interrupted"
    Parameters = NoParams

    def run(self, ctx):
        ctx.bench.settle(0.1)
        raise KeyboardInterrupt


class OnTheCores(Idle):
    """Needs the optical computing center."""

    name = "on_the_cores"
    default_bench = SYSTEM_BENCH_PATH


def _has_ledger(path) -> bool:
    with h5py.File(path, "r") as f:
        return HDF5_DATASET in f


def test_a_run_without_products_records_the_bench_view_with_no_ops(tmp_path):
    result = run_experiment(Idle, out=tmp_path / "idle.h5", show_progress=False)
    stored = EnergyLedger.load(result.results_path)
    assert stored.to_dict() == result.energy.to_dict()
    bench = stored.summary("bench")
    assert bench.time_s >= 0.5                     # the run's span on the simulated clock, settle included
    assert bench.energy_j > 0 and bench.ops == 0 and bench.j_per_op is None and bench.no_ops
    assert result.summary["settled_s"] == 0.5      # the experiment's own summary is kept
    assert result.summary["energy"].startswith(f"bench {format_si(bench.energy_j, 'J')} over ")
    assert result.summary["energy"].endswith("no ops")
    attrs = read_results(result.results_path)["attrs"]
    assert attrs["status"] == "complete"
    assert attrs["result.energy_bench_j"] == pytest.approx(bench.energy_j)
    assert "result.energy_bench_j_per_op" not in attrs


def test_ops_recorded_by_the_experiment_give_j_per_op_and_per_item(tmp_path):
    result = run_experiment(Computes, out=tmp_path / "c.h5", show_progress=False)
    s = result.energy.summary("bench")
    assert s.macs == 1000 and s.ops == 2000
    assert s.j_per_op == pytest.approx(s.energy_j / 2000)
    attrs = read_results(result.results_path)["attrs"]
    assert attrs["result.energy_bench_j_per_op"] == pytest.approx(s.energy_j / 2000)
    assert attrs["result.energy_bench_j_per_product"] == pytest.approx(s.energy_j / 4)
    line = result.summary["energy"]
    assert format_si(s.j_per_op, "J/op") in line
    assert line.endswith(f"per product (4): bench {format_si(s.energy_j / 4, 'J')}")


def test_energy_figures_of_a_ledger_without_terms_say_why():
    ledger = EnergyLedger()
    ledger.add_note("bench", "laser: not in the total (no figure)")
    line, figures = energy_figures(ledger)
    assert figures == {} and "no drawing item recorded" in line and "laser: not in the total" in line


def test_a_failed_run_records_no_energy(tmp_path):
    with pytest.raises(RuntimeError, match="instrument fault"):
        run_experiment(FailsMidway, out=tmp_path / "f.h5", show_progress=False)
    assert read_results(tmp_path / "f.h5")["attrs"]["status"].startswith("failed: RuntimeError")
    assert not _has_ledger(tmp_path / "f.h5")
    with pytest.raises(EnergyError, match="recorded no energy"):
        EnergyLedger.load(tmp_path / "f.h5")


def test_an_interrupted_run_records_what_it_did_and_no_energy(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_experiment(Interrupted, out=tmp_path / "i.h5", show_progress=False)
    attrs = read_results(tmp_path / "i.h5")["attrs"]
    assert attrs["status"] == "interrupted" and attrs["interrupted_by"] == "Ctrl-C"
    assert "shutdown" in attrs
    assert not _has_ledger(tmp_path / "i.h5")


def test_the_report_command_reads_a_run(tmp_path):
    result = run_experiment(Computes, out=tmp_path / "c.h5", show_progress=False)
    out = CliRunner().invoke(main, ["energy", "report", str(result.results_path)])
    assert out.exit_code == 0, out.output
    assert "[bench (instruments on the table)]" in out.output
    assert re.search(r"ops \(1 MAC = 2 ops\) +2000\n", out.output)
    assert (tmp_path / "c-energy.png").stat().st_size > 0


def test_the_run_command_prints_one_energy_line(tmp_path):
    out = CliRunner().invoke(main, ["run", f"{__name__}:Idle", "--sim", "--quiet", "--set", "settle_s=0.2",
                                    "--out", str(tmp_path / "idle.h5")])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.strip().startswith("energy:")]
    assert len(lines) == 1 and lines[0].strip().endswith("no ops")


def test_a_simulated_run_opens_the_experiments_own_bench_unless_told_otherwise(tmp_path):
    own = run_experiment(OnTheCores, out=tmp_path / "own.h5", show_progress=False, overrides={"settle_s": 0.0})
    assert "occ1" in read_results(own.results_path)["attrs"]["bench_snapshot"]["instruments"]
    given = run_experiment(OnTheCores, bench_path=CHARACTERISATION_BENCH_PATH, out=tmp_path / "given.h5",
                           show_progress=False, overrides={"settle_s": 0.0})
    assert "occ1" not in read_results(given.results_path)["attrs"]["bench_snapshot"]["instruments"]
    with pytest.raises(ConfigError, match="needs a bench file"):
        run_experiment(OnTheCores, mode="real", out=tmp_path / "real.h5", show_progress=False)
    assert not (tmp_path / "real.h5").exists()


@pytest.mark.parametrize("count, item", [(-1, "product"), (1.5, "product"), (True, "product"), (2, "two words")])
def test_energy_per_refuses_what_is_not_a_count_of_named_items(tmp_path, count, item):
    class Says(Idle):
        name = "says"

        def run(self, ctx):
            ctx.energy_per(count, item)
            return {}

    with pytest.raises(ExperimentError, match="energy_per"):
        run_experiment(Says, out=tmp_path / "s.h5", show_progress=False)
