"""``labctl generate --center``: images through a center process on loopback, its refusals and usage errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import labctl

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from experiments.genai.results import NotEnoughOPUsError  # noqa: E402  (needs torch)
from labctl.cli import entry, main  # noqa: E402


def _center_args(center, keys, edge: str = "edge1") -> list[str]:
    return ["--center", center.endpoint, "--key", str(keys[edge][1]), "--center-key", str(keys["center"][0])]


def _generate(*args: str):
    return CliRunner().invoke(main, ["generate", "--n", "2", "--steps", "2", "--quiet", *args])


def test_generate_through_the_center_runs_the_products_there(start_center, keys, tmp_path):
    center = start_center()
    out = tmp_path / "edge"
    r = _generate("--model", "vae-digits", *_center_args(center, keys), "--out", str(out))
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["optical"]["optical_macs"] > 0 and m["optical"]["opu_calls"] > 0
    assert m["optical"]["electronic_fallback_macs"] == 0
    # the center's noisy products, not the electronic ones, yet close to them
    images = np.load(out / "images.npz")
    assert not np.array_equal(images["electronic"], images["optical"])
    assert m["quality"]["psnr_db_min"] > 20
    # no bench at the edge: the optical figures are the center's, metered per job on its core's own
    # instruments and projected by it; the CPU figure is the edge's own
    energy = m["energy"]
    assert energy["j_per_image"]["optical_bench"] > 0 and energy["j_per_image"]["optical_projected"] > 0
    assert energy["j_per_image"]["electronic"] > 0
    ledger = labctl.energy.EnergyLedger.load(out / "energy.json")
    assert ledger.terms("bench") and all(t.device.startswith("center ") for t in ledger.terms("bench"))
    assert ledger.summary("bench").energy_j == pytest.approx(energy["j_per_image"]["optical_bench"] * 2)
    center.wait_for_log(r"said bye: freed cores occ1")  # the edge closed its connection
    assert "(generate-0): cores occ1" in center.log()


def test_generate_with_an_edge_bench_launches_the_edges_own_light(start_center, keys, tmp_path):
    center = start_center()
    out = tmp_path / "edge"
    edge_bench = labctl.bench.SYSTEM_BENCH_PATH.with_name("edge_metro.yaml")
    r = _generate("--model", "vae-digits", *_center_args(center, keys), "--edge-bench", str(edge_bench),
                  "--out", str(out))
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["optical"]["optical_macs"] > 0 and m["quality"]["psnr_db_min"] > 20
    center.wait_for_log(r"job \S+ on occ1: light from edge \w+'s own transmitter")
    r = _generate("--model", "vae-digits", "--sim", "--edge-bench", str(edge_bench), "--out", str(tmp_path / "x"))
    assert r.exit_code == 2 and "go with --center" in r.output


def test_a_center_without_a_free_core_is_reported_like_too_few_opus(start_center, keys, tmp_path):
    center = start_center()
    out = tmp_path / "refused"
    with labctl.connect(center.endpoint, key=keys["edge2"][1], center_key=keys["center"][0], edge="holder",
                        timeout_s=30):
        r = _generate("--model", "vae-digits", *_center_args(center, keys), "--center-timeout", "1",
                      "--out", str(out))
    assert isinstance(r.exception, NotEnoughOPUsError), r.output
    assert "no free core for model 1 of 1" in str(r.exception)
    assert not out.exists()
    # the refused edge left nothing held: the core is free again for the next edge
    with labctl.connect(center.endpoint, key=keys["edge1"][1], center_key=keys["center"][0], timeout_s=30) as edge:
        assert [core.name for core in edge.cores] == ["occ1"]


@pytest.mark.parametrize("edge, center_key, expected", [
    ("rogue", "center", "refused this edge's key"),
    ("edge1", "edge2", "secure handshake"),  # a public key that is not the center's
])
def test_bad_keys_give_one_clear_line(shared_center, keys, tmp_path, monkeypatch, capsys, edge, center_key,
                                      expected):
    out = tmp_path / "bad"
    monkeypatch.setattr(sys, "argv", [
        "labctl", "generate", "--model", "vae-digits", "--n", "2", "--steps", "2", "--quiet",
        "--center", shared_center.endpoint, "--key", str(keys[edge][1]), "--center-key", str(keys[center_key][0]),
        "--center-timeout", "3", "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        entry()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0]
    assert not out.exists()


@pytest.mark.parametrize("extra", [["--sim"], ["--bench", "b.yaml"], ["--calibration", "cal"], ["--electronic-only"]])
def test_center_is_refused_with_a_local_bench(tmp_path, extra):
    r = _generate("--model", "vae-digits", "--center", "tcp://127.0.0.1:1", "--key", "e.key_secret",
                  "--center-key", "c.key", *extra, "--out", str(tmp_path / "x"))
    assert r.exit_code == 2 and "--center" in r.output and extra[0] in r.output


def test_center_needs_both_keys_and_keys_need_a_center(tmp_path):
    r = _generate("--model", "vae-digits", "--center", "tcp://127.0.0.1:1", "--key", "e.key_secret",
                  "--out", str(tmp_path / "x"))
    assert r.exit_code == 2 and "--center-key" in r.output
    r = _generate("--model", "vae-digits", "--sim", "--key", "e.key_secret", "--out", str(tmp_path / "x"))
    assert r.exit_code == 2 and "go with --center" in r.output
