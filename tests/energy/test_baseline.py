"""RAPL reader against a sysfs-like directory (with a wrap), the labelled model fallback, published rows."""

from pathlib import Path

import pytest

from labctl.energy.baseline import (PUBLISHED_ACCELERATORS, BaselineError, RaplReader, accelerator_markdown,
                                    measure_cpu)
from labctl.energy.provenance import Datasheet, EnergyError, Measured, Model


def _domain(root: Path, n: int, energy_uj: int, max_uj: int) -> Path:
    d = root / f"intel-rapl:{n}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(f"package-{n}\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    # a subdomain (core) must not be double counted
    sub = d / f"intel-rapl:{n}:0"
    sub.mkdir(exist_ok=True)
    (sub / "energy_uj").write_text("5\n")
    (sub / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def test_rapl_delta_and_wraparound(tmp_path):
    d0 = _domain(tmp_path, 0, 1_000_000, 262_143_328_850)
    d1 = _domain(tmp_path, 1, 262_143_000_000, 262_143_328_850)
    reader = RaplReader(tmp_path)
    assert [d.name for d in reader.domains] == ["package-0", "package-1"]
    before = reader.sample()
    (d0 / "energy_uj").write_text("3500000\n")  # +2.5 J
    (d1 / "energy_uj").write_text("671150\n")  # wrapped: (262143328850 - 262143000000) + 671150 uJ = 1.0 J
    after = reader.sample()
    assert reader.energy_j(before, after) == pytest.approx(2.5 + 1.0, abs=1e-12)


def test_rapl_absent_or_broken_is_an_error(tmp_path):
    with pytest.raises(BaselineError, match="does not exist"):
        RaplReader(tmp_path / "missing")
    with pytest.raises(BaselineError, match="no RAPL package domain"):
        RaplReader(tmp_path)
    d = _domain(tmp_path, 0, 10, 100)
    (d / "energy_uj").write_text("not a number\n")
    with pytest.raises(BaselineError, match="unreadable"):
        RaplReader(tmp_path).sample()


def test_measured_path_uses_rapl(tmp_path):
    d = _domain(tmp_path, 0, 100, 10_000_000)

    def workload():  # the "CPU" spends 0.75 J while it runs
        (d / "energy_uj").write_text("750100\n")

    m = measure_cpu(workload, ops=1.5e9, rapl_root=tmp_path)
    assert m.method == "measured"
    assert m.energy_j == pytest.approx(0.75)
    assert isinstance(m.term.provenance, Measured)
    assert m.mw_per_tops == pytest.approx(0.75 / 1.5e9 * 1e15)  # 500 fJ/op


def test_fallback_is_modelled_and_labelled(tmp_path):
    sheet = Datasheet(10.0, "W/core", "test CPU datasheet", "p. 1")
    m = measure_cpu(lambda: sum(i * i for i in range(200_000)), ops=1e6, rapl_root=tmp_path / "none",
                    w_per_core=sheet)
    assert m.method == "modelled" and "[modelled]" in m.label
    assert "does not exist" in m.why and "modelled as 10 W per busy core" in m.why
    assert isinstance(m.term.provenance, Model)
    assert m.term.provenance.parameters["P_core_w"] == 10.0
    assert "MODELLED" in m.term.note
    assert m.cpu_s > 0
    assert m.energy_j == pytest.approx(10.0 * m.cpu_s)


def test_bad_ops_refused():
    with pytest.raises(EnergyError):
        measure_cpu(lambda: None, ops=0)
    with pytest.raises(EnergyError):
        measure_cpu(lambda: None, ops=float("nan"))


def test_published_accelerator_rows():
    rows = {(r.device, r.precision): r for r in PUBLISHED_ACCELERATORS}
    a100 = rows[("NVIDIA A100 SXM", "INT8 (dense)")]
    assert a100.mw_per_tops == pytest.approx(400e3 / 624)  # 641 mW/TOPS at peak
    h100 = rows[("NVIDIA H100 SXM", "FP32")]
    assert h100.mw_per_tops == pytest.approx(700e3 / 67)
    assert isinstance(h100.term().provenance, Datasheet)
    assert "datasheet" in accelerator_markdown().lower()


def test_a_recorded_modelled_baseline_keeps_its_label_and_why(tmp_path):
    from labctl.energy import EnergyLedger

    m = measure_cpu(lambda: sum(i * i for i in range(100_000)), ops=1e6, rapl_root=tmp_path / "none")
    ledger = EnergyLedger()
    ledger.add_ops(5 * 10**5, source="hand")
    m.record(ledger)
    s = ledger.summary("baseline")
    assert s.energy_j == pytest.approx(m.energy_j, rel=1e-12)
    assert s.time_s == pytest.approx(m.wall_s)
    assert s.devices[0].kinds == ("model",)
    assert any("modelled as" in n for n in ledger.notes("baseline"))
