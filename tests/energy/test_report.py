"""The energy report: itemised table with provenance, plots that never overwrite, and `labctl energy report`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from labctl.cli import main
from labctl.energy import Datasheet, EnergyError, Measured, Model, PowerTerm
from labctl.energy.ledger import EnergyLedger
from labctl.energy.report import EnergyReport, format_si, plot_path
from labctl.store import Recorder

PSU = Measured(instrument="psu", command="MEAS:POW?")


def ledger() -> EnergyLedger:
    """Bench: laser 10 W over [0, 2] s, OCC 1.5 kW over [0, 2] s (3.02 kJ); 1e12 MACs -> 1.51 nJ/op.
    Projected: DFB laser 50 mW steady while the 2e12 ops run at 4e12 op/s (0.5 s) -> 25 mJ -> 12.5 fJ/op."""
    led = EnergyLedger("hand")
    led.add(PowerTerm("laser", 10.0, PSU, 0.0, 2.0))
    led.add(PowerTerm("occ", 1500.0, Measured("wt310e", ":NUMERIC:NORMAL:VALUE? 3"), 0.0, 2.0))
    led.add(PowerTerm("dfb laser", 0.05, Model("P_opt / eta", {"P_opt": 0.01, "eta": 0.2})), view="projected")
    led.set_peak_rate("projected", 4e12, Model("2 N M f_s", {"N": 20, "M": 10, "f_s": 10e9}))
    led.add_ops(10**12, source="hand", optical_time_s=0.5, start_s=1.0, end_s=1.5)
    return led


@pytest.mark.parametrize("value,unit,text", [
    (1510.0, "W", "1.51 kW"), (0.05, "W", "50 mW"), (10.0, "W", "10 W"), (1.25e-14, "J/op", "12.5 fJ/op"),
    (1.51e-9, "J/op", "1.51 nJ/op"), (0.0, "W", "0 W"), (None, "W", "n/a"), (2.5e6, "W", "2.5 MW"),
])
def test_si_formatting(value, unit, text):
    assert format_si(value, unit) == text


def test_table_is_itemised_with_provenance_and_both_views():
    report = EnergyReport.from_ledger(ledger())
    text = report.to_text()
    assert "1.51 kW" in text and "3.02 kJ" in text  # the bench: kilowatts, reported as such
    assert "measured: wt310e `:NUMERIC:NORMAL:VALUE? 3`" in text
    assert "model: P_opt / eta (P_opt=0.01, eta=0.2)" in text
    assert "1.51 nJ/op" in text and "1,510,000 mW/TOPS" in text  # 3020 J / 2e12 ops
    assert "12.5 fJ/op" in text and "12.5 mW/TOPS" in text  # projected
    assert "utilisation-weighted" in text and "at peak" in text and "1 MAC = 2 ops" in text
    assert "baseline (electronic)" in text and "not recorded in this run" in text
    md = report.to_markdown()
    assert "| device | mean power | energy | energy/op | share | provenance |" in md
    assert "| occ | 1.5 kW | 3 kJ | 1.5 nJ/op | 99.3 % |" in md


def test_a_run_with_no_ops_says_so_in_the_report():
    led = EnergyLedger()
    led.add(PowerTerm("laser", 10.0, Datasheet(10.0, "W", "TSL-570 datasheet", "4"), 0.0, 1.0))
    text = EnergyReport.from_ledger(led).to_text()
    assert "no MACs were sent to optics" in text and "datasheet: 10 W, TSL-570 datasheet p. 4" in text


def test_an_empty_ledger_has_nothing_to_report():
    with pytest.raises(EnergyError, match="nothing to report"):
        EnergyReport.from_ledger(EnergyLedger())


def test_plot_never_overwrites(tmp_path):
    report = EnergyReport.from_ledger(ledger())
    first = report.plot(tmp_path / "run-energy.png")
    second = report.plot(tmp_path / "run-energy.png")
    assert first.name == "run-energy.png" and second.name == "run-energy-1.png"
    with Image.open(first) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1]  # one panel per view, side by side


def test_plot_path_of_a_sidecar_and_a_results_file(tmp_path):
    assert plot_path(tmp_path / "run.h5") == tmp_path / "run-energy.png"
    assert plot_path(tmp_path / "run.energy.json") == tmp_path / "run-energy.png"


def test_cli_reports_a_results_file_written_here(tmp_path):
    recorder = Recorder(tmp_path / "run.h5", experiment="x", parameters={}, seed=1)
    ledger().save(recorder)
    path = recorder.close()
    runner = CliRunner()
    result = runner.invoke(main, ["energy", "report", str(path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "1.51 kW" in result.output and "12.5 mW/TOPS" in result.output and "provenance" in result.output
    assert (tmp_path / "run-energy.png").is_file() and str(tmp_path / "run-energy.png") in result.output
    again = runner.invoke(main, ["energy", "report", str(path), "--markdown"], catch_exceptions=False)
    assert again.exit_code == 0 and "| device |" in again.output
    assert (tmp_path / "run-energy-1.png").is_file()


def test_cli_on_a_sidecar_and_on_a_run_without_energy(tmp_path):
    sidecar = ledger().save(tmp_path / "run.energy.json")
    result = CliRunner().invoke(main, ["energy", "report", str(sidecar)], catch_exceptions=False)
    assert result.exit_code == 0 and "3.02 kJ" in result.output
    bare = Recorder(tmp_path / "bare.h5", experiment="x", parameters={}, seed=1).close()
    result = CliRunner().invoke(main, ["energy", "report", str(bare)])
    assert isinstance(result.exception, EnergyError) and "no energy record" in str(result.exception)
    assert not (tmp_path / "bare-energy.png").exists()


def test_a_projection_goes_into_the_projected_view():
    """The projected helper's terms (Model/Datasheet provenance) and peak rate, through the ledger and report:
    the ledger's peak figure is the projection's own sum of powers over its peak op rate."""
    from labctl.energy.projected import paper_configuration, project

    projection = project(paper_configuration())
    led = EnergyLedger()
    led.add(PowerTerm("laser", 10.0, PSU, 0.0, 2.0))
    led.add_ops(10**12, source="hand", optical_time_s=0.5, start_s=1.0, end_s=1.5)
    for term in projection.terms:
        led.add(term, view="projected")
    led.set_peak_rate("projected", projection.peak_ops_per_s, Model("2 N M f_s x cores", {"cores": 3}))
    s = led.summary("projected")
    by_hand = sum(t.power_w for t in projection.terms) / projection.peak_ops_per_s * 1e15
    assert s.peak_mw_per_tops == pytest.approx(by_hand, rel=1e-12)
    assert s.peak_mw_per_tops == pytest.approx(projection.mw_per_tops, rel=1e-12)
    assert s.mw_per_tops == pytest.approx(by_hand, rel=1e-12)  # full utilisation: the ops at the peak rate
    text = EnergyReport.from_ledger(led).to_text()
    for term in projection.terms:
        assert term.device in text
    assert set(d.kinds[0] for d in s.devices) <= {"model", "datasheet"}


def test_the_command_line_prints_a_missing_record_as_one_error_line(tmp_path):
    bare = Recorder(tmp_path / "bare.h5", experiment="x", parameters={}, seed=1).close()
    done = subprocess.run([sys.executable, "-m", "labctl", "energy", "report", str(bare)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "no energy record" in done.stderr
    assert "Traceback" not in done.stderr


def test_projected_steady_terms_in_a_run_without_ops_say_so():
    led = EnergyLedger()
    led.add(PowerTerm("laser", 10.0, PSU, 0.0, 2.0))
    led.add(PowerTerm("dfb laser", 0.05, Model("P_opt / eta", {"P_opt": 0.01, "eta": 0.2})), view="projected")
    led.set_peak_rate("projected", 4e12, Model("2 N M f_s", {"N": 20, "M": 10, "f_s": 10e9}))
    report = EnergyReport.from_ledger(led)
    assert "no MACs were sent to optics" in report.missing["projected"]
    assert "no MACs were sent to optics" in report.to_text()
