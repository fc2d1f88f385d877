"""The generation front end: images from a bundled model made electronically and, with an
OPU, with the model's matrix products done optically -- the same seeds -- and how close the two sets are.

    >>> from experiments.genai.generate import generate, generate_parallel
    >>> r = generate("latent-digits", n=16, steps=20, label=7, opu=opu, out_dir="results/gen7")
    >>> r.electronic.shape, r.optical.shape, r.optical_macs, r.metrics["quality"]["psnr_db_mean"]
    >>> print(r.summary())
    >>> p = generate_parallel(["ddpm-digits", "latent-digits", "vae-digits"], opus, n=16, steps=20,
    ...                       out_dir="results/par")

**Electronic set**: the model's own torch modules (plain torch, CPU). **Optical set**: the same generator with
its torch modules replaced by ``labctl.offload(module, opu)`` copies (:data:`OFFLOAD_PARTS`): the denoising
``unet`` (ddpm-digits, latent-digits), the prompt encoder ``text_encoder`` (latent-digits) and the ``vae``
(latent-digits, vae-digits; its encoder is never run when sampling, so it stays electronic). Their
``nn.Linear``/``nn.Conv2d`` products (and, with ``attention=True``, the attention products) call
``opu.matmul(a, b, return_error=True)``; everything else stays electronic (see :mod:`labctl.offload`).
Image ``i`` always comes from seed ``seed + i`` (independent of ``n`` and ``batch_size``).

**Your own pipeline** (``--model PATH``): a diffusers ``StableDiffusionPipeline``, ``DDPMPipeline`` or
``DDIMPipeline`` folder runs the same way (:func:`experiments.genai.models.load_model`); its images keep
their size and colour ((n, H, W) or (n, H, W, 3)). The digit classifier reads only 8 x 8 grey images: for
any other size its labels, confidence, agreement, accuracy and Frechet distance are None (left out of
``images.npz``) and ``metrics.json`` says so in ``electronic.classifier_note`` and ``quality.note``;
PSNR and SSIM (per channel, averaged) are always computed.

Timing: each set is timed on its own (``wall_s``, wall clock of the generation only; a one-step electronic
warm-up on one batch keeps one-time imports and set-up out of the figures; offloading the modules is timed
separately as ``offload_s``). ``optical_macs`` are the exact multiply-accumulates sent to the OPU, from the
offload ledgers.

**Energy**: the electronic set is run under :func:`labctl.energy.baseline.measure_cpu` (this machine's CPU,
RAPL where it has it, else a labelled model); given the ``bench`` of the OPU, the optical set is run under
a :class:`labctl.energy.metering.BenchMeter` (what the instruments drew, on the bench clock) with the
offload ledgers' MACs as its ops, and the bench's cores are projected onto integrated optoelectronics
(:func:`labctl.energy.projected.bench_projection`). ``metrics.json`` holds the energy per image of the three
(``energy``, :data:`ENERGY_KEYS`; null with the reason where one is missing) and ``energy.json`` the ledger.

**Outputs** (``out_dir``): ``grid.png`` (electronic rows with the optical rows of the same seeds under them),
``images.npz``, ``metrics.json`` (keys: :data:`NPZ_KEYS`, :data:`METRICS_KEYS`) and ``energy.json`` (the
energy ledger: ``labctl energy report <out_dir>/energy.json`` itemises it). They are written into a
temporary sibling directory that is renamed to ``out_dir`` only when everything is written; on any failure it
is removed and an earlier ``out_dir`` is left untouched. An existing ``out_dir`` is replaced only if it is
empty or an earlier output of this command (never a directory holding other files). Non-finite floats in
``metrics.json`` (the PSNR of identical images) are written as the strings ``"inf"``/``"-inf"``/``"nan"``.

**Parallel** (:func:`generate_parallel`): one thread per model, each with its own OPU object; the electronic
sets of all models run together first, then the optical sets together; per-model and total throughput
(images/s, optical MACs/s) over those concurrent phases. ``out_dir`` holds one sub-directory per model
(the first three files above; each model's ``energy`` block is its share of the run's, as its notes say)
and a ``metrics.json`` with the throughput and energy (``energy``: the whole run's block; ``per_model``:
each model's ``j_per_image``), next to the run's one ``energy.json``. With ``--core-processes`` (simulation) each
model's core computes in a process of its own (:func:`labctl.network.cores.process_opus`): a core's noise is its
own, so the images are the same to the bit, and the models' products run at once on the host's CPUs instead of
taking turns on the interpreter; the bench energy is then each job's draw of its core's own instruments, as a
center meters it, not the whole bench's draw over the run.

**Through a shared center** (``--center tcp://HOST:PORT --key DIR/edge1.key_secret --center-key
DIR/center.key``): each model gets its own :func:`labctl.network.connect` (a remote OPU runs one product
at a time; ``edge`` ``generate-0``, ``generate-1``, ...), closed at the end. The edge has no bench of the
center, so the bench and projected energy figures are None with the reason; the CPU figure is measured.

The command line (``labctl generate``, registered through the ``labctl.commands`` entry-point group) is
:data:`cli_main`, defined here; the rest lives in :mod:`.running` (preparing and running the sets),
:mod:`.results` (what a run made, its errors) and :mod:`.output` (the files), and is importable from here.
"""

from __future__ import annotations

from pathlib import Path

import click

from labctl.bench import SYSTEM_BENCH_PATH, open_bench
from labctl.network import AdmissionRefused, connect
from labctl.network.cores import process_opus

from .models import MODEL_NAMES, PIPELINE_CLASSES, PromptError, load_model
from .output import check_out_dir
from .results import (
    ENERGY_FILE,
    ENERGY_KEYS,
    ENERGY_VIEWS,
    FORMAT,
    METRICS_KEYS,
    NPZ_KEYS,
    OUTPUT_FILES,
    GenerationCancelled,
    GenerationError,
    GenerationResult,
    NotEnoughOPUsError,
    OutputDirError,
    ParallelResult,
)
from .running import OFFLOAD_PARTS, generate, generate_parallel, model_list, open_optical_cores

__all__ = [
    "ENERGY_KEYS",
    "ENERGY_VIEWS",
    "FORMAT",
    "METRICS_KEYS",
    "NPZ_KEYS",
    "OFFLOAD_PARTS",
    "GenerationCancelled",
    "GenerationError",
    "GenerationResult",
    "NotEnoughOPUsError",
    "OutputDirError",
    "ParallelResult",
    "cli_main",
    "generate",
    "generate_parallel",
    "open_optical_cores",
]


# -- command line ---------------------------------------------------------------------------------------


@click.command("generate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", metavar="NAME|PATH", help=f"Bundled model ({', '.join(MODEL_NAMES)}) or the path of a "
              f"diffusers pipeline folder ({', '.join(PIPELINE_CLASSES)}), e.g. your Stable Diffusion weights.")
@click.option("--parallel", metavar="NAME,NAME,...", help="Run several models at once, each on its own optical core.")
@click.option("--prompt", help="Prompt of the conditional model (latent-digits, or a Stable Diffusion folder), e.g. "
              "'a handwritten seven'; with --parallel it goes to the conditional models only.")
@click.option("--label", type=int, help="Digit 0-9 for the conditional model (instead of --prompt).")
@click.option("--guidance", type=float, help="Classifier-free guidance scale of the conditional model (1-50).")
@click.option("--n", "n", type=int, default=16, show_default=True, help="Images per model.")
@click.option("--steps", type=int, help="Denoising steps (default: the model's own).")
@click.option("--sim", is_flag=True, help="Simulate every instrument of the bench file.")
@click.option("--bench", "bench_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Bench file whose optical cores run the products (default with --sim: the built-in optical computing center, sim_backends/benches/ring_core.yaml).")
@click.option("--center", metavar="tcp://HOST:PORT", help="Run the optical set on a shared optical computing center "
              "(labctl center serve) instead of a local bench; one core per model.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --center: this edge's secret key file (NAME.key_secret, from labctl keys create).")
@click.option("--center-key", "center_key_file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --center: the center's public key file (center.key).")
@click.option("--center-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="With --center: seconds to wait for a free core, and the most one product may take.")
@click.option("--edge-bench", "edge_bench", type=click.Path(dir_okay=False, path_type=Path),
              help="With --center: this edge's own transmitter and link (an edge bench file, e.g. "
              "sim_backends/benches/edge_metro.yaml), simulated with --seed; the center detects the light it "
              "launches (docs/network.md, 'Data plane in simulation'). Default: the center's own input chain.")
@click.option("--electronic-only", is_flag=True, help="No bench: generate electronically only.")
@click.option("--core-processes", is_flag=True,
              help="With --sim: each model's core computes in a process of its own (the same images to the bit, "
                   "and the models' products at once on the host's CPUs instead of taking turns); each job's energy is "
                   "its core's own instruments' draw, as a center meters it (docs/network.md).")
@click.option("--calibration", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the optical cores' calibration files.")
@click.option("--accept-stale-calibration", "accept_stale", is_flag=True,
              help="Use calibration files although the operating point changed since they were made or their "
              "drift check fails (logged as a warning; the products will be off). Default: refuse them.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output directory (grid.png, images.npz, metrics.json, energy.json); replaced atomically.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="First image seed (image i uses seed + i); also seeds the simulated bench's noise.")
@click.option("--batch-size", type=int, help="Images per pipeline call (default: all).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def cli_main(model, parallel, prompt, label, guidance, n, steps, sim, bench_file, center, key_file, center_key_file,
             center_timeout, edge_bench, electronic_only, core_processes, calibration, accept_stale, out, seed,
             batch_size, quiet) -> None:
    """Generate images with bundled models electronically and on the optical computing center, same seeds.

    \b
    Examples:
      labctl generate --model ddpm-digits --n 16 --steps 20 --sim --out results/ddpm
      labctl generate --model latent-digits --label 7 --n 8 --steps 20 --electronic-only --out results/l7
      labctl generate --parallel ddpm-digits,latent-digits,vae-digits --n 8 --bench b.yaml --out results/par
      labctl generate --model vae-digits --n 8 --center tcp://127.0.0.1:5555 --key keys/edge1.key_secret \\
          --center-key keys/center.key --out results/edge1
      labctl generate --model /data/stable-diffusion-v1-5 --prompt "a red boat" --n 2 --steps 4 --sim --out results/sd
    """
    if (model is None) == (parallel is None):
        raise click.UsageError("give --model NAME or --parallel NAME,NAME,... (one of them)")
    if electronic_only and (sim or bench_file is not None or calibration is not None or accept_stale):
        raise click.UsageError("--electronic-only uses no bench: drop --sim/--bench/--calibration/"
                               "--accept-stale-calibration")
    if center is not None:
        if sim or bench_file is not None or calibration is not None or accept_stale or electronic_only:
            raise click.UsageError("--center runs the optical set on the center's cores: drop --sim/--bench/"
                                   "--calibration/--accept-stale-calibration/--electronic-only")
        if key_file is None or center_key_file is None:
            raise click.UsageError("--center needs --key (this edge's NAME.key_secret) and --center-key (center.key)")
    elif key_file is not None or center_key_file is not None or edge_bench is not None:
        raise click.UsageError("--key, --center-key and --edge-bench go with --center tcp://HOST:PORT")
    if core_processes and not sim:
        raise click.UsageError("--core-processes runs simulated cores: give --sim (a real bench's instruments have one "
                               "owner, the center's process)")
    if accept_stale and calibration is None:
        raise click.UsageError("--accept-stale-calibration applies to calibration files: give --calibration DIR")
    if not electronic_only and not sim and bench_file is None and center is None:
        raise click.UsageError("give --sim or --bench FILE (or --center tcp://HOST:PORT) for the optical run, or "
                               "--electronic-only")
    common = dict(n=n, steps=steps, seed=seed, prompt=prompt, label=label, guidance=guidance, batch_size=batch_size,
                  progress=not quiet)
    # everything that can be checked is checked before a bench is opened
    if parallel is not None:
        models: list = [load_model(m) for m in model_list(parallel)]
        conditional = [g for g in models if g.conditional]
        if (prompt is not None or label is not None or guidance is not None) and not conditional:
            raise PromptError(f"none of {parallel} is conditional: they take no --prompt/--label/--guidance")
        for g in models:
            kw = {"prompt": prompt, "label": label, "guidance": guidance} if g.conditional else {}
            g.check_request(n, seed, steps, **kw)
    else:
        models = [load_model(model)]
        models[0].check_request(n, seed, steps, prompt, label, guidance)
    check_out_dir(out)

    def run(opus, bench=None):
        if parallel is not None:
            return generate_parallel(models, opus, bench=bench, out_dir=out, **common)
        return generate(models[0], opu=None if opus is None else opus[0], bench=bench, out_dir=out, **common)

    if electronic_only:
        result = run(None)
    elif center is not None:
        opus: list = []
        try:
            for i in range(len(models)):
                try:
                    opus.append(connect(center, key=key_file, center_key=center_key_file, cores=1,
                                        edge=f"generate-{i}", timeout_s=center_timeout, edge_bench=edge_bench,
                                        edge_seed=seed + i))
                except AdmissionRefused as exc:
                    if exc.code != "no_free_cores":
                        raise
                    raise NotEnoughOPUsError(
                        f"the center at {center} had no free core for model {i + 1} of {len(models)} within "
                        f"{center_timeout:g} s (other edges hold them); give fewer models, wait, or raise "
                        "--center-timeout") from None
            result = run(opus)
        finally:
            for opu in opus:
                opu.close()
    elif core_processes:
        with process_opus(bench_file or SYSTEM_BENCH_PATH, len(models), seed=seed, calibration=calibration,
                          accept_stale=accept_stale) as opus:
            result = run(opus)
    else:
        if bench_file is None:
            bench_file = SYSTEM_BENCH_PATH  # the built-in optical computing center (three cores)
        with open_bench(bench_file, mode="sim" if sim else "real", seed=seed) as bench:
            opus = open_optical_cores(bench, calibration, accept_stale=accept_stale)
            if parallel is not None and len(opus) < len(models):
                raise NotEnoughOPUsError(f"the bench has {len(opus)} optical core(s) for {len(models)} models; "
                                         "give fewer models or a bench with more cores")
            result = run(opus, bench)
    click.echo(result.summary())
    click.echo(f"\nwrote {result.out_dir}")
    if isinstance(result, ParallelResult):
        for name in result.results:
            click.echo(f"      {result.out_dir / name}/{{grid.png, images.npz, metrics.json}}")
        click.echo(f"      {result.out_dir / 'metrics.json'}, {result.out_dir / ENERGY_FILE}")
    else:
        click.echo(f"      {', '.join(str(result.out_dir / f) for f in OUTPUT_FILES)}")


if __name__ == "__main__":  # python -m experiments.genai.generate ...
    cli_main()
