"""Real diffusers pipelines through the optics.

* A ``StableDiffusionPipeline`` assembled here from tiny configs (random weights, 16 x 16 RGB images, a
  CLIP tokenizer on a 54-token vocabulary written into the test's folder), saved with ``save_pretrained``
  and run with ``labctl generate --model <folder> --sim``: the same command a user points at real Stable
  Diffusion weights. Its unet, text encoder and VAE decoder run on a real simulated optical core.
* diffusers' own ``DDPMPipeline`` class on the bundled ``ddpm-digits`` folder with
  ``pipe.unet = labctl.offload(pipe.unet, opu)`` (``DDIMPipeline`` runs it in ``load_model("ddpm-digits")``).
* Folder loading and its errors; PSNR/SSIM of colour images.

The optical core is core occ1 of ``sim_backends/benches/ring_core.yaml``, calibrated once per test session
(shared with tests/opu/test_stationary.py through tests/shared_files.py). The command would open (and
calibrate) all three cores of the bench; here ``labctl.opu.open_opus`` hands it core occ1 only, opened
from the calibration directory the command was given, to keep the test short.

Bounds: random-weight models are chaotic, so the images are compared with margins measured once (SD image
about 31 dB, ddpm-digits 30 dB, one unet forward about 13 % relative error with the seeds used here), and
each check also asks that the optical result is NOT identical to the electronic one (the products really
went through the simulated optics, with its noise).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import labctl
from experiments.genai.models import (
    MODELS_DIR,
    ModelWeightsError,
    PromptError,
    UnknownModelError,
    load_model,
)
from experiments.genai.quality import compare, psnr, ssim
from tests.shared_files import ring_core_calibration_folder

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "sim_backends" / "benches" / "ring_core.yaml"
PROMPT = "a b"
MAX_TOKENS = 8
#: Optical against electronic, same seed (measured: SD 31.6 dB, ddpm-digits 30.3 dB; unrelated images of the
#: same models are about 10-13 dB apart).
MIN_PSNR_DB = 22.0
#: Relative error (Frobenius) of one optical forward pass of the tiny SD unet (measured 0.13).
MAX_UNET_RELATIVE_ERROR = 0.3


# -- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory) -> Path:
    """A calibration directory as ``labctl generate --calibration`` takes it, holding core occ1's file."""
    return ring_core_calibration_folder(tmp_path_factory, cores=1)


@pytest.fixture(scope="module")
def opu(calibration_dir):
    from labctl.opu.stationary import StationaryOPU

    bench = labctl.open_bench(BENCH, seed=2)
    yield StationaryOPU(bench, calibration_dir / "occ1.json", core=0)
    bench.close()


def _tokenizer(folder: Path):
    """A CLIP BPE tokenizer on a vocabulary written here: the two special tokens and the 26 letters (each
    alone and word-final), no merges: 'a b' -> <start> a</w> b</w> <end>."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"),
                         model_max_length=MAX_TOKENS)


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory) -> Path:
    """A StableDiffusionPipeline folder with random weights: latents 4 x 8 x 8, images 16 x 16 x 3."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("tiny_sd")
    torch.manual_seed(0)
    tokenizer = _tokenizer(root / "vocab")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=MAX_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4,
        sample_size=16)
    # Stable Diffusion v1's scheduler settings
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    folder = root / "tiny-sd"
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sd(sd_folder):
    return load_model(sd_folder)


# -- a Stable Diffusion folder through `labctl generate` --------------------------------------------------


def test_stable_diffusion_folder_through_the_optics_with_labctl_generate(sd_folder, calibration_dir, tmp_path,
                                                                         monkeypatch):
    import experiments.genai.running as running_mod
    from labctl.cli import main
    from labctl.opu import open_opu

    opened = []

    def first_core(bench, calibration=None, *, accept_stale=False):  # the real occ1, from the command's folder
        opened.append(open_opu(bench, calibration, core=0, accept_stale=accept_stale))
        return list(opened)

    monkeypatch.setattr(running_mod, "open_opus", first_core)
    out = tmp_path / "sd"
    r = CliRunner().invoke(main, ["generate", "--model", str(sd_folder), "--prompt", PROMPT, "--n", "1", "--steps",
                                  "2", "--sim", "--calibration", str(calibration_dir), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert opened and opened[0].name == "occ1"
    assert sorted(p.name for p in out.iterdir()) == ["energy.json", "grid.png", "images.npz", "metrics.json"]
    assert "classifier-based metrics skipped" in r.output and "16 x 16 x 3" in r.output

    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "tiny-sd" and m["conditional"] is True and m["prompts"] == [PROMPT]
    assert m["steps"] == 2 and m["guidance"] == 7.5 and m["requested_labels"] is None
    o = m["optical"]
    assert o["opu"]["name"] == "occ1" and o["opu"]["class"].endswith("StationaryOPU")
    # every offloaded part sent products to the core: unet, prompt encoder, VAE decoder (never its encoder)
    by_part = o["macs_by_component"]
    assert set(by_part) == {"unet", "text_encoder", "vae"} and all(v > 0 for v in by_part.values())
    assert o["optical_macs"] == sum(by_part.values()) and o["opu_calls"] > 0
    vae = o["ledger"]["vae"]
    optical_layers = [rec["name"] for rec in vae["layers"] if rec["macs"] > 0]
    assert optical_layers and all(n.startswith(("decoder.", "post_quant_conv")) for n in optical_layers)
    assert "encoder.conv_in" in vae["skipped"] and "quant_conv" in vae["skipped"]

    # classifier-based metrics are skipped, with the reason; PSNR/SSIM are there
    q = m["quality"]
    assert q["classifier_agreement"] is None and q["frechet_distance"] is None and "8 x 8 grey" in q["note"]
    assert m["electronic"]["labels"] is None and "8 x 8 grey" in m["electronic"]["classifier_note"]
    with np.load(out / "images.npz") as z:
        assert set(z.files) == {"electronic", "optical", "seeds", "requested_labels", "prompts", "psnr_db", "ssim"}
        e, opt = z["electronic"], z["optical"]
    assert e.shape == opt.shape == (1, 16, 16, 3) and e.dtype == np.float32
    assert 0 <= e.min() and e.max() <= 1 and e.std() > 0.02  # not a blank image
    # the optics really computed it: close to the electronic image, but not identical
    p = float(psnr(e, opt)[0])
    assert MIN_PSNR_DB < p < np.inf and q["psnr_db_mean"] == pytest.approx(p)
    assert q["ssim_mean"] == pytest.approx(float(ssim(e, opt)[0])) and q["ssim_mean"] > 0.8


def test_one_unet_forward_of_the_tiny_sd_on_the_core(sd, opu):
    from labctl.offload import ledger, offload

    unet = sd.components["unet"]
    optical = offload(unet, opu)
    g = torch.Generator().manual_seed(0)
    x, context = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, MAX_TOKENS, 16, generator=g)
    with torch.no_grad():
        want = unet(x, 500, encoder_hidden_states=context).sample
        got = optical(x, 500, encoder_hidden_states=context).sample
    err = float((got - want).norm() / want.norm())
    assert 0 < err < MAX_UNET_RELATIVE_ERROR
    assert ledger(optical).total_macs > 1_000_000


# -- diffusers' own pipeline classes with an offloaded unet -----------------------------------------------


def test_diffusers_ddpm_pipeline_class_with_an_offloaded_unet(opu):
    from diffusers import DDPMPipeline

    from labctl.offload import ledger

    pipe = DDPMPipeline.from_pretrained(str(MODELS_DIR / "ddpm-digits"), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)

    def run():
        return pipe(batch_size=1, generator=torch.Generator().manual_seed(5), num_inference_steps=2,
                    output_type="np").images[..., 0]

    electronic = run()  # DDPM sampling draws noise at every step: the same seeded generator gives the same noise
    pipe.unet = labctl.offload(pipe.unet, opu)
    optical = run()
    assert ledger(pipe.unet).total_macs > 10_000_000  # 2 steps x ~16 M MACs
    assert electronic.shape == optical.shape == (1, 8, 8)
    assert MIN_PSNR_DB < float(psnr(electronic, optical)[0]) < np.inf


# -- loading folders, errors ------------------------------------------------------------------------------


def test_pipeline_folders_load_with_their_own_class(sd):
    from experiments.genai.models import DDIMFolder, DDPMFolder, StableDiffusionFolder

    assert isinstance(sd, StableDiffusionFolder) and sd.name == "tiny-sd" and sd.conditional
    assert {"unet", "vae", "text_encoder", "tokenizer", "scheduler"} == set(sd.components)
    a = sd.generate(2, seed=3, steps=2, prompt=PROMPT)
    b = sd.generate(1, seed=4, steps=2, prompt=PROMPT)
    assert a.shape == (2, 16, 16, 3) and np.allclose(a[1], b[0], atol=1e-5)  # image i from seed + i
    with pytest.raises(PromptError, match="at most 8"):
        sd.generate(1, prompt="a b c d e f g")
    with pytest.raises(PromptError, match="not a digit label"):
        sd.generate(1, label=3)
    ddpm = load_model(str(MODELS_DIR / "ddpm-digits"))  # the bundled folder by path: diffusers' DDPMPipeline
    assert type(ddpm) is DDPMFolder and ddpm.default_steps == 1000 and not ddpm.conditional
    assert ddpm.generate(1, steps=2).shape == (1, 8, 8)
    with pytest.raises(PromptError):
        ddpm.generate(1, prompt="x")
    assert DDIMFolder.pipeline == "DDIMPipeline"


def test_folder_errors(sd_folder, tmp_path):
    with pytest.raises(UnknownModelError, match="path of a diffusers pipeline folder"):
        load_model("no-such-model")
    with pytest.raises(UnknownModelError, match="no such file or directory"):
        load_model(str(tmp_path / "missing"))
    with pytest.raises(ModelWeightsError, match="no model_index.json"):
        load_model(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelWeightsError, match="not a directory"):
        load_model(tmp_path / "file")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(ModelWeightsError, match="'FluxPipeline'.*StableDiffusionPipeline"):
        load_model(other)
    (other / "model_index.json").write_text("{not json")
    with pytest.raises(ModelWeightsError, match="unreadable model_index.json"):
        load_model(other)
    broken = tmp_path / "broken"
    shutil.copytree(sd_folder, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelWeightsError, match="cannot load it as a StableDiffusionPipeline"):
        load_model(broken)


def test_cli_refuses_a_folder_that_is_not_a_pipeline_and_writes_nothing(tmp_path):
    from labctl.cli import main

    (tmp_path / "not-a-model").mkdir()
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["generate", "--model", str(tmp_path / "not-a-model"), "--n", "1",
                                  "--electronic-only", "--out", str(out)])
    assert isinstance(r.exception, ModelWeightsError) and not out.exists()


# -- colour images ----------------------------------------------------------------------------------------


def test_psnr_and_ssim_of_colour_images():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (2, 16, 16, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(psnr(a, b), 10 * np.log10(1 / mse))
    per_channel = np.mean([ssim(a[..., c], b[..., c]) for c in range(3)], axis=0)
    np.testing.assert_allclose(ssim(a, b), per_channel)
    assert np.all(ssim(a, a) == 1)
    row = compare(a, b)
    assert row["classifier_agreement"] is None and row["confidence"] is None and "16 x 16 x 3" in row["note"]
    assert row["psnr_db_mean"] == pytest.approx(float(np.mean(psnr(a, b))))
