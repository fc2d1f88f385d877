"""The generation front end (experiments/genai/generate.py) and `labctl generate`.

The optical path is tested here only for its plumbing (offload, ledger, metrics, files, one OPU per model)
with :class:`ElectronicStandIn`, which is NOT optical. Real optical end-to-end tests come with the
weight-stationary core bench (``labctl.opu.open_opus``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import experiments.genai.generate as gen_mod
import experiments.genai.output as output_mod
import experiments.genai.running as running_mod
from experiments.genai.generate import (
    METRICS_KEYS,
    GenerationError,
    NotEnoughOPUsError,
    OutputDirError,
    generate,
    generate_parallel,
)
from experiments.genai.models import PromptError, UnknownModelError
from experiments.genai.quality import psnr, ssim

FAST = {"n": 2, "steps": 2, "progress": False}


class ElectronicStandIn:
    """An ELECTRONIC stand-in for an OPU: ``a @ b`` in torch (plus, optionally, seeded Gaussian error).

    It exists only to test the plumbing of ``generate`` (offload, ledger, metrics, files, which OPU serves
    which model) without a bench. Nothing it produces is an optical result.
    """

    def __init__(self, noise: float = 0.0, seed: int = 0, fail_after: int | None = None):
        self.noise = noise
        self.generator = torch.Generator().manual_seed(seed)
        self.fail_after = fail_after
        self.calls = 0
        self.macs = 0

    def matmul(self, a, b, return_error=False):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("stand-in failure in the middle of a run")
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        self.macs += int(np.prod(a.shape[:-1])) * a.shape[-1] * b.shape[-1]
        y = a @ b
        sigma = torch.full_like(y, self.noise * float(y.std()) if y.numel() > 1 else 0.0)
        if self.noise:
            y = y + sigma * torch.randn(y.shape, generator=self.generator)
        return (y, sigma) if return_error else y


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


# -- electronic generation and files ---------------------------------------------------------------------


def test_electronic_generation_writes_documented_files(models, tmp_path):
    out = tmp_path / "out"
    r = generate(models["latent-digits"], label=7, out_dir=out, **FAST)
    assert r.out_dir == out and sorted(p.name for p in out.iterdir()) == ["energy.json", "grid.png", "images.npz",
                                                                          "metrics.json"]
    assert _siblings(out) == []  # no temporary directory left behind
    m = json.loads((out / "metrics.json").read_text())
    assert tuple(m) == METRICS_KEYS
    assert m["format"] == "labctl-generate/1" and m["model"] == "latent-digits" and m["conditional"] is True
    assert m["n"] == 2 and m["steps"] == 2 and m["seeds"] == [0, 1] and m["requested_labels"] == [7, 7]
    assert m["prompts"] == ["a handwritten seven"] * 2 and m["guidance"] == 4.0
    assert m["optical"] is None and m["quality"] is None
    e = m["electronic"]
    assert e["wall_s"] > 0 and e["images_per_s"] == pytest.approx(2 / e["wall_s"])
    assert 0 <= e["mean_confidence"] <= 1 and e["accuracy"] in (0.0, 0.5, 1.0) and len(e["labels"]) == 2
    with np.load(out / "images.npz") as z:
        assert set(z.files) == {"electronic", "seeds", "requested_labels", "prompts", "electronic_labels",
                                "electronic_confidence"}
        np.testing.assert_array_equal(z["electronic"], r.electronic)
        assert z["electronic"].shape == (2, 8, 8) and z["electronic"].dtype == np.float32
        assert z["seeds"].tolist() == [0, 1] and z["requested_labels"].tolist() == [7, 7]
        assert z["prompts"].tolist() == ["a handwritten seven"] * 2
    png = (out / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    h, w = matplotlib.image.imread(out / "grid.png").shape[:2]
    assert w >= 200 and h >= 200  # two labelled rows, readable
    assert "electronic" in r.summary() and "optical" not in r.summary()


def test_same_seeds_give_identical_electronic_images(models):
    a = generate(models["ddpm-digits"], seed=5, **FAST)
    b = generate(models["ddpm-digits"], seed=5, **FAST)
    np.testing.assert_array_equal(a.electronic, b.electronic)
    assert not np.array_equal(a.electronic[0], a.electronic[1])
    # image i comes from seed + i, whatever n and the batch size
    c = generate(models["ddpm-digits"], seed=6, n=1, steps=2, progress=False)
    np.testing.assert_allclose(c.electronic[0], a.electronic[1], atol=1e-5)
    d = generate(models["ddpm-digits"], seed=5, batch_size=1, **FAST)
    np.testing.assert_allclose(d.electronic, a.electronic, atol=1e-5)


# -- optical plumbing (electronic stand-in) --------------------------------------------------------------


def test_offload_plumbing_with_stand_in(models, tmp_path):
    opu = ElectronicStandIn()
    out = tmp_path / "ddpm"
    r = generate(models["ddpm-digits"], opu=opu, out_dir=out, **FAST)
    o = r.metrics["optical"]
    # the ledger's MACs are exactly what reached the OPU object, all from the unet
    assert o["optical_macs"] == opu.macs > 1_000_000 and o["opu_calls"] == opu.calls
    assert o["macs_by_component"] == {"unet": opu.macs}
    assert o["opu"]["class"].endswith("ElectronicStandIn")
    assert o["optical_macs_per_s"] == pytest.approx(opu.macs / o["wall_s"])
    # an exact product gives (nearly) the electronic images
    np.testing.assert_allclose(r.optical, r.electronic, atol=1e-4)
    assert r.metrics["quality"]["ssim_min"] > 0.999 and r.metrics["quality"]["classifier_agreement"] == 1.0
    with np.load(out / "images.npz") as z:
        assert {"optical", "optical_labels", "optical_confidence", "psnr_db", "ssim"} <= set(z.files)
    assert "optical" in r.summary()


def test_latent_model_offloads_unet_text_encoder_and_decoder(models):
    opu = ElectronicStandIn(noise=0.05, seed=1)
    r = generate(models["latent-digits"], prompt="digit 3", opu=opu, **FAST)
    o = r.metrics["optical"]
    assert set(o["macs_by_component"]) == {"unet", "text_encoder", "vae"}
    assert all(v > 0 for v in o["macs_by_component"].values()) and o["optical_macs"] == opu.macs
    vae_layers = [layer["name"] for layer in o["ledger"]["vae"]["layers"]]
    assert vae_layers and not any(n.startswith(("encoder", "quant_conv")) for n in vae_layers)
    skipped = r.ledgers["vae"].skipped
    assert "quant_conv" in skipped and "encoder.conv_in" in skipped and set(skipped.values()) == {"excluded"}
    assert all(n.startswith(("encoder.", "quant_conv")) for n in skipped)
    # the quality numbers are those of the two image sets
    q = r.metrics["quality"]
    np.testing.assert_allclose(q["psnr_db"], psnr(r.electronic, r.optical))
    np.testing.assert_allclose(q["ssim"], ssim(r.electronic, r.optical))
    assert q["ssim_mean"] < 1 and np.isfinite(q["psnr_db_mean"])
    assert r.requested_labels.tolist() == [3, 3] and r.metrics["requested_labels"] == [3, 3]


# -- nothing half-written --------------------------------------------------------------------------------


def test_failure_midway_keeps_previous_output(models, tmp_path):
    out = tmp_path / "out"
    generate(models["vae-digits"], seed=1, out_dir=out, **FAST)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(RuntimeError, match="stand-in failure"):
        generate(models["vae-digits"], seed=2, opu=ElectronicStandIn(fail_after=3), out_dir=out, **FAST)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _siblings(out) == []
    # a new directory is not created at all
    with pytest.raises(RuntimeError, match="stand-in failure"):
        generate(models["vae-digits"], opu=ElectronicStandIn(fail_after=3), out_dir=tmp_path / "new", **FAST)
    assert not (tmp_path / "new").exists() and _siblings(out) == []


def test_failure_while_writing_removes_partial_directory(models, tmp_path, monkeypatch):
    out = tmp_path / "out"
    generate(models["vae-digits"], seed=1, out_dir=out, **FAST)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_grid(path, result):
        path.write_bytes(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(output_mod, "write_grid", broken_grid)
    with pytest.raises(OSError, match="disk full"):
        generate(models["vae-digits"], seed=2, out_dir=out, **FAST)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _siblings(out) == []


def test_success_replaces_previous_output_but_never_foreign_files(models, tmp_path):
    out = tmp_path / "out"
    generate(models["vae-digits"], seed=1, out_dir=out, **FAST)
    generate(models["vae-digits"], seed=9, out_dir=out, **FAST)
    assert json.loads((out / "metrics.json").read_text())["seeds"] == [9, 10]
    assert _siblings(out) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputDirError, match="not an earlier"):
        generate(models["vae-digits"], out_dir=mine, **FAST)
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1


# -- bad input -------------------------------------------------------------------------------------------


def test_bad_model_prompt_and_conditioning(models, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UnknownModelError, match="ddpm-digits, latent-digits, vae-digits"):
        generate("stable-diffusion-xl", out_dir=out, **FAST)
    with pytest.raises(PromptError, match="unknown word"):
        generate(models["latent-digits"], prompt="a photo of a cat", out_dir=out, **FAST)
    with pytest.raises(PromptError, match="unconditional"):
        generate(models["ddpm-digits"], label=3, out_dir=out, **FAST)
    with pytest.raises(PromptError, match="unconditional"):
        generate(models["vae-digits"], prompt="digit 3", out_dir=out, **FAST)
    with pytest.raises(ValueError, match="guidance"):
        generate(models["vae-digits"], guidance=3.0, out_dir=out, **FAST)
    with pytest.raises(ValueError, match="guidance"):
        generate(models["latent-digits"], label=1, guidance=0.5, out_dir=out, **FAST)
    with pytest.raises(PromptError, match="digit 0..9"):
        generate(models["latent-digits"], label=12, out_dir=out, **FAST)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_parallel_refuses_before_running_anything(models, tmp_path):
    opus = [ElectronicStandIn(), ElectronicStandIn()]
    out = tmp_path / "par"
    with pytest.raises(NotEnoughOPUsError, match="3 models .* only 2 OPU"):
        generate_parallel("ddpm-digits,latent-digits,vae-digits", opus, out_dir=out, **FAST)
    with pytest.raises(NotEnoughOPUsError):
        generate_parallel(["vae-digits"], [], out_dir=out, **FAST)
    with pytest.raises(ValueError, match="each OPU belongs to one model"):
        generate_parallel(["vae-digits", "ddpm-digits"], [opus[0], opus[0]], out_dir=out, **FAST)
    with pytest.raises(UnknownModelError, match="known models"):
        generate_parallel(["vae-digits", "gan-digits"], opus, out_dir=out, **FAST)
    with pytest.raises(PromptError, match="conditional"):
        generate_parallel([models["vae-digits"], models["ddpm-digits"]], opus, label=3, out_dir=out, **FAST)
    assert all(o.calls == 0 for o in opus) and not out.exists()


def test_parallel_one_opu_per_model(models, tmp_path):
    opus = [ElectronicStandIn(), ElectronicStandIn(), ElectronicStandIn()]  # the third stays unused
    out = tmp_path / "par"
    p = generate_parallel([models["vae-digits"], models["latent-digits"]], opus, label=4, out_dir=out, **FAST)
    vae, latent = p.results["vae-digits"], p.results["latent-digits"]
    assert vae.optical_macs == opus[0].macs > 0 and latent.optical_macs == opus[1].macs > 0 and opus[2].calls == 0
    assert latent.requested_labels.tolist() == [4, 4] and vae.metrics["prompts"] is None  # label -> conditional only
    m = json.loads((out / "metrics.json").read_text())
    assert m["format"] == "labctl-generate-parallel/1" and m["models"] == ["vae-digits", "latent-digits"]
    t = m["total"]
    assert t["images"] == 4 and t["optical_macs"] == opus[0].macs + opus[1].macs
    assert t["optical_images_per_s"] == pytest.approx(4 / t["optical_wall_s"])
    assert t["optical_macs_per_s"] == pytest.approx(t["optical_macs"] / t["optical_wall_s"])
    assert m["per_model"]["vae-digits"]["optical_macs"] == opus[0].macs
    for name in m["models"]:  # the run's one energy ledger is at the top
        assert sorted(p.name for p in (out / name).iterdir()) == ["grid.png", "images.npz", "metrics.json"]
    assert sorted(p.name for p in out.iterdir()) == ["energy.json", "latent-digits", "metrics.json", "vae-digits"]
    assert "total" in p.summary()


def test_parallel_failure_names_the_model_and_writes_nothing(models, tmp_path):
    out = tmp_path / "par"
    opus = [ElectronicStandIn(), ElectronicStandIn(fail_after=2)]
    with pytest.raises(GenerationError, match="ddpm-digits: RuntimeError: stand-in failure"):
        generate_parallel([models["vae-digits"], models["ddpm-digits"]], opus, out_dir=out, **FAST)
    assert list(tmp_path.iterdir()) == []


# -- command line ----------------------------------------------------------------------------------------


def test_cli_electronic_only(tmp_path):
    from labctl.cli import main

    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["generate", "--model", "vae-digits", "--n", "2", "--steps", "2",
                                       "--electronic-only", "--quiet", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "electronic" in result.output and str(out) in result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "vae-digits" and m["seeds"] == [3, 4] and m["optical"] is None


def test_cli_usage_and_errors(tmp_path, monkeypatch, capsys):
    from labctl.cli import entry, main

    runner = CliRunner()
    out = str(tmp_path / "x")
    r = runner.invoke(main, ["generate", "--model", "vae-digits", "--n", "2", "--out", out])
    assert r.exit_code == 2 and "--electronic-only" in r.output  # neither a bench nor --electronic-only
    r = runner.invoke(main, ["generate", "--n", "2", "--electronic-only", "--out", out])
    assert r.exit_code == 2 and "--model" in r.output
    r = runner.invoke(main, ["generate", "--model", "ddpm-digits", "--label", "3", "--electronic-only", "--out", out])
    assert isinstance(r.exception, PromptError)
    # through the console entry point: one line, exit code 2
    monkeypatch.setattr(sys, "argv", ["labctl", "generate", "--model", "nope", "--electronic-only", "--out", out])
    with pytest.raises(SystemExit) as exc:
        entry()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: unknown model 'nope'; known models: ddpm-digits, latent-digits, vae-digits; or give the path of a "
        "diffusers pipeline folder")
    assert not (tmp_path / "x").exists()


def test_cli_bench_path_uses_open_opus(tmp_path, monkeypatch):
    """The bench path with labctl.opu.open_opus replaced by electronic stand-ins (plumbing only)."""
    from labctl.cli import main

    handed_out = []

    def fake_open_opus(bench, calibration=None, *, accept_stale=False):
        assert bench.config is not None and calibration == tmp_path / "cal" and not accept_stale
        handed_out[:] = [ElectronicStandIn()]
        return list(handed_out)

    monkeypatch.setattr(running_mod, "open_opus", fake_open_opus)
    (tmp_path / "cal").mkdir()
    args = ["generate", "--n", "2", "--steps", "2", "--sim", "--calibration", str(tmp_path / "cal"), "--quiet"]
    r = CliRunner().invoke(main, args + ["--model", "vae-digits", "--out", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert m["optical"]["optical_macs"] == handed_out[0].macs > 0
    # one core for two models: refused, nothing written
    r = CliRunner().invoke(main, args + ["--parallel", "vae-digits,ddpm-digits", "--out", str(tmp_path / "two")])
    assert isinstance(r.exception, NotEnoughOPUsError) and handed_out[0].calls == 0
    assert not (tmp_path / "two").exists()


def test_command_is_an_entry_point_and_labctl_does_not_import_experiments():
    from importlib.metadata import entry_points

    import labctl.cli

    (ep,) = entry_points(group="labctl.commands", name="generate")
    assert ep.value == "experiments.genai.generate:cli_main" and ep.load() is gen_mod.cli_main
    source = Path(labctl.cli.__file__).read_text()
    assert "import experiments" not in source and "from experiments" not in source
