"""Energy per image of `labctl generate` (metrics.json ``energy`` block and the ``energy.json`` ledger).

The optical runs use cores of the simulated optical computing center (``ring_core.yaml``, calibrated once
per session); every figure checked here is recomputed from the saved ledger, never from a constant.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
from click.testing import CliRunner

import labctl
from experiments.genai.generate import ENERGY_KEYS, ENERGY_VIEWS, generate, generate_parallel
from labctl.energy import OPS_PER_MAC, EnergyLedger
from labctl.opu import open_opus
from tests.shared_files import RING_CORE, ring_core_calibration_folder

from .test_generate import FAST, ElectronicStandIn


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory):
    """The three cores of the ring-core bench, calibrated once per session, as ``<controller>.json``."""
    return ring_core_calibration_folder(tmp_path_factory)


def _check_against_ledger(block: dict, ledger: EnergyLedger, images: int, share: dict[str, float]) -> None:
    """Every figure of an energy block is the saved ledger's, for ``images`` images and the given shares."""
    for key, view in ENERGY_VIEWS.items():
        s = ledger.summary(view)
        assert block["j_per_image"][key] == pytest.approx(s.energy_j * share[view] / images, rel=1e-12)
        assert math.isfinite(block["j_per_image"][key]) and block["j_per_image"][key] > 0
        assert sum(block["provenance"][key].values()) == pytest.approx(1.0)
    assert block["missing"] == {}


def test_single_run_on_a_core_writes_three_figures_from_its_ledger(models, calibration_dir, tmp_path):
    out = tmp_path / "one"
    with labctl.open_bench(RING_CORE, seed=3) as bench:
        opu = open_opus(bench, calibration_dir)[0]
        r = generate(models["vae-digits"], opu=opu, bench=bench, out_dir=out, **FAST)
    m = json.loads((out / "metrics.json").read_text())
    e = m["energy"]
    assert tuple(e) == ENERGY_KEYS and e["ledger"] == "energy.json" and e["images"] == 2
    ledger = EnergyLedger.load(out / "energy.json")
    assert set(ledger.views()) == {"bench", "projected", "baseline"}
    _check_against_ledger(e, ledger, 2, {"bench": 1.0, "projected": 1.0, "baseline": 1.0})
    # the ops are the MACs the core did for the offloaded products (tiling padding included), on the bench
    # clock inside the metered window; the products' own MACs are the offload ledgers'
    assert ledger.macs == e["optical_macs"] == r.metrics["optical"]["opu_stats"]["optical_macs"]
    assert sum(rec.useful_macs for rec in ledger.ops_records) == m["optical"]["optical_macs"] > 0
    t0, t1 = ledger.window("bench")
    assert all(t0 <= rec.start_s <= rec.end_s <= t1 and rec.optical_time_s > 0 for rec in ledger.ops_records)
    # the CPU did the same products: its count of them equals what went to the core
    assert e["electronic_macs"] == m["optical"]["optical_macs"]
    for key, view in ENERGY_VIEWS.items():
        assert e["mw_per_tops"][key] == pytest.approx(ledger.summary(view).mw_per_tops, rel=1e-12)
    assert e["provenance"]["optical_projected"] == {"model": 1.0}
    assert "measured" in e["provenance"]["optical_bench"]  # the bench's power analyzers
    assert e["electronic_measurement"]["method"] in ("measured", "modelled")
    assert "energy per image" in r.summary() and "optical, projected" in r.summary()

    # `labctl energy report` reads it; its plot does not stop the next run from replacing the folder
    from labctl.cli import main

    report = CliRunner().invoke(main, ["energy", "report", str(out / "energy.json")])
    assert report.exit_code == 0, report.output
    assert "bench" in report.output and "projected" in report.output and "baseline" in report.output
    generate(models["vae-digits"], seed=5, out_dir=out, **FAST)
    assert json.loads((out / "metrics.json").read_text())["seeds"] == [5, 6]


def test_parallel_split_per_model_sums_to_the_whole(models, calibration_dir, tmp_path):
    out = tmp_path / "par"
    names = ["vae-digits", "ddpm-digits"]
    with labctl.open_bench(RING_CORE, seed=3) as bench:
        opus = open_opus(bench, calibration_dir)[:2]
        p = generate_parallel([models[n] for n in names], opus, bench=bench, out_dir=out, **FAST)
    top = json.loads((out / "metrics.json").read_text())
    ledger = EnergyLedger.load(out / "energy.json")
    _check_against_ledger(top["energy"], ledger, 4, {"bench": 1.0, "projected": 1.0, "baseline": 1.0})
    per_model = {n: json.loads((out / n / "metrics.json").read_text())["energy"] for n in names}
    assert sum(b["optical_macs"] for b in per_model.values()) == ledger.macs
    for key in ENERGY_VIEWS:
        parts = sum(b["j_per_image"][key] * b["images"] for b in per_model.values())
        assert parts == pytest.approx(top["energy"]["j_per_image"][key] * 4, rel=1e-12)
        assert [top["per_model"][n]["j_per_image"][key] for n in names] == [per_model[n]["j_per_image"][key]
                                                                           for n in names]
    for n, b in per_model.items():
        o_share = b["optical_macs"] / ledger.macs
        e_share = b["electronic_macs"] / sum(x["electronic_macs"] for x in per_model.values())
        _check_against_ledger(b, ledger, 2, {"bench": o_share, "projected": o_share, "baseline": e_share})
        assert b["ledger"] == "../energy.json" and "share of the optical MACs" in b["notes"][0]
        assert b["electronic_macs"] == p.results[n].optical_macs  # the same products, counted on the CPU
    assert "J/image optical, bench" in p.summary()


def test_electronic_only_has_only_the_electronic_figure(tmp_path):
    from labctl.cli import main

    out = tmp_path / "cli"
    r = CliRunner().invoke(main, ["generate", "--model", "ddpm-digits", "--n", "2", "--steps", "2",
                                  "--electronic-only", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    e = json.loads((out / "metrics.json").read_text())["energy"]
    assert e["j_per_image"]["optical_bench"] is None and e["j_per_image"]["optical_projected"] is None
    assert set(e["missing"]) == {"optical_bench", "optical_projected"}
    assert all("electronic only" in why for why in e["missing"].values())
    ledger = EnergyLedger.load(out / "energy.json")
    assert ledger.views() == ("baseline",) and ledger.macs == 0
    assert e["j_per_image"]["electronic"] == pytest.approx(ledger.summary("baseline").energy_j / 2, rel=1e-12)
    assert e["j_per_image"]["electronic"] > 0 and e["optical_macs"] == 0 and e["mw_per_tops"]["electronic"] is None
    # the CPU figure per op uses the products the electronic set did
    row = e["electronic_measurement"]
    assert e["electronic_macs"] > 0 and row["ops"] == OPS_PER_MAC * e["electronic_macs"]
    assert row["mw_per_tops"] == pytest.approx(row["energy_j"] / row["ops"] * 1e15)
    lines = r.output.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("energy per image")))
    assert lines[at + 1].split()[:2] == ["electronic", "(CPU)"] and " J " in lines[at + 1]
    assert not any("optical" in line for line in lines[at:])


def test_without_a_bench_the_optical_figures_say_why(models):
    opu = ElectronicStandIn()
    r = generate(models["latent-digits"], label=2, opu=opu, **FAST)
    e = r.metrics["energy"]
    assert e["j_per_image"]["optical_bench"] is None and e["j_per_image"]["optical_projected"] is None
    assert "no bench given" in e["missing"]["optical_bench"]
    assert e["j_per_image"]["electronic"] > 0
    # ops recorded all the same: the MACs that reached the OPU object, also counted on the electronic set
    assert r.energy_ledger.macs == e["optical_macs"] == e["electronic_macs"] == opu.macs


def test_an_opu_of_another_bench_is_refused_before_running(models, tmp_path):
    with labctl.open_bench(RING_CORE, seed=3) as bench:
        opu = ElectronicStandIn()
        opu.bench = object()  # says it runs on some other bench
        with pytest.raises(ValueError, match="another bench"):
            generate(models["vae-digits"], opu=opu, bench=bench, out_dir=tmp_path / "x", **FAST)
        with pytest.raises(ValueError, match="another bench"):
            generate_parallel([models["vae-digits"]], [opu], bench=bench, out_dir=tmp_path / "x", **FAST)
    assert opu.calls == 0 and not (tmp_path / "x").exists()


def test_demo_prints_one_energy_table_and_writes_it(calibration_dir, tmp_path, capsys):
    import argparse

    from experiments.demo import generative_showcase

    shutil.copytree(calibration_dir, tmp_path / "calibration")
    generative_showcase(argparse.Namespace(out=tmp_path, seed=0, images=1, steps=1))
    printed = capsys.readouterr().out
    assert printed.count("J/image optical, bench") == 1
    table = (tmp_path / "genai_energy.txt").read_text()
    assert all("   " + line in printed for line in table.splitlines() if line)
    metrics = json.loads((tmp_path / "genai" / "metrics.json").read_text())
    ledger = EnergyLedger.load(tmp_path / "genai" / "energy.json")
    assert set(metrics["per_model"]) == {"ddpm-digits", "latent-digits", "vae-digits"}
    _check_against_ledger(metrics["energy"], ledger, 3, {"bench": 1.0, "projected": 1.0, "baseline": 1.0})
    rows = table.splitlines()[2:6]
    assert [r.split()[0] for r in rows] == ["ddpm-digits", "latent-digits", "vae-digits", "all"]
    assert all(len(r.split()) == 4 + (r.startswith("all")) for r in rows)  # a figure in every view


def test_parallel_electronic_only_splits_the_cpu_energy(models, tmp_path):
    p = generate_parallel([models["vae-digits"], models["ddpm-digits"]], None, out_dir=tmp_path / "par", **FAST)
    top = p.metrics["energy"]
    ledger = EnergyLedger.load(tmp_path / "par" / "energy.json")
    assert ledger.views() == ("baseline",)
    assert top["j_per_image"]["electronic"] == pytest.approx(ledger.summary("baseline").energy_j / 4, rel=1e-12)
    blocks = [r.metrics["energy"] for r in p.results.values()]
    assert sum(b["j_per_image"]["electronic"] * 2 for b in blocks) == pytest.approx(top["j_per_image"]["electronic"] * 4)
    assert all(b["j_per_image"]["optical_bench"] is None and "optical MACs" not in b["notes"][0] for b in blocks)
    assert "J/image optical" not in p.summary() and "J/image electronic (CPU)" in p.summary()
