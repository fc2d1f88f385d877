"""The generation front end (issue 6, items 3-4): images from a bundled model made electronically and, with an
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

**Outputs** (``out_dir``): ``grid.png`` (electronic rows with the optical rows of the same seeds under them),
``images.npz`` and ``metrics.json`` (keys: :data:`NPZ_KEYS`, :data:`METRICS_KEYS`). They are written into a
temporary sibling directory that is renamed to ``out_dir`` only when everything is written; on any failure it
is removed and an earlier ``out_dir`` is left untouched. An existing ``out_dir`` is replaced only if it is
empty or an earlier output of this command (never a directory holding other files). Non-finite floats in
``metrics.json`` (the PSNR of identical images) are written as the strings ``"inf"``/``"-inf"``/``"nan"``.

**Parallel** (:func:`generate_parallel`): one thread per model, each with its own OPU object; the electronic
sets of all models run together first, then the optical sets together; per-model and total throughput
(images/s, optical MACs/s) over those concurrent phases. ``out_dir`` holds one sub-directory per model
(the three files above) and a ``metrics.json`` with the throughput.

The command line (``labctl generate``, registered through the ``labctl.commands`` entry-point group) is
:data:`cli_main`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import click
import numpy as np

from .models import (
    MODEL_NAMES,
    PIPELINE_CLASSES,
    GenAIError,
    Generator,
    PromptError,
    UnknownModelError,
    is_pipeline_path,
    load_model,
)
from .prompts import prompt_label
from .quality import classifier_note, compare, conditional_accuracy, format_table, psnr, quality_table, ssim

__all__ = [
    "FORMAT",
    "METRICS_KEYS",
    "NPZ_KEYS",
    "OFFLOAD_PARTS",
    "GenerationCancelled",
    "GenerationError",
    "GenerationResult",
    "NotEnoughOPUsError",
    "OpticalBackendUnavailable",
    "OutputDirError",
    "ParallelResult",
    "cli_main",
    "generate",
    "generate_parallel",
    "open_optical_cores",
]

#: ``metrics.json`` "format" of :func:`generate` and :func:`generate_parallel` outputs.
FORMAT = "labctl-generate/1"
PARALLEL_FORMAT = "labctl-generate-parallel/1"
OUTPUT_FILES = ("grid.png", "images.npz", "metrics.json")
#: Top-level keys of a single model's ``metrics.json`` ("optical" and "quality" are null without an OPU).
METRICS_KEYS = ("format", "model", "conditional", "n", "seed", "seeds", "steps", "guidance", "batch_size",
                "prompts", "requested_labels", "electronic", "optical", "quality", "table", "torch_threads",
                "created")
#: Arrays of ``images.npz``; the ``optical*``, ``psnr_db`` and ``ssim`` ones only when an OPU was given, the
#: ``*_labels`` and ``*_confidence`` ones only when the digit classifier reads the images (8 x 8 grey).
NPZ_KEYS = ("electronic", "optical", "seeds", "requested_labels", "prompts", "electronic_labels",
            "electronic_confidence", "optical_labels", "optical_confidence", "psnr_db", "ssim")
#: Component -> its submodules kept electronic. Only these torch modules are offloaded (when the model has them).
OFFLOAD_PARTS: dict[str, tuple[str, ...]] = {
    "unet": (),
    "text_encoder": (),
    "vae": ("encoder", "quant_conv"),  # sampling only decodes: post_quant_conv + decoder run on the OPU
}
#: Images per set drawn in grid.png (the arrays hold all of them).
GRID_MAX = 64
#: Short column headers of the printed tables.
HEADERS = {"images_per_s": "images/s", "optical_macs": "optical MACs", "optical_macs_per_s": "optical MACs/s",
           "psnr_db_mean": "PSNR dB", "psnr_db_min": "PSNR min", "ssim_mean": "SSIM", "ssim_min": "SSIM min",
           "classifier_agreement": "agreement", "confidence": "confidence", "accuracy": "accuracy",
           "frechet_distance": "Frechet", "electronic_images_per_s": "electronic images/s",
           "optical_images_per_s": "optical images/s"}


class NotEnoughOPUsError(GenAIError, ValueError):
    """Fewer OPUs (optical cores) than models to run in parallel; nothing was run."""


class OutputDirError(GenAIError, OSError):
    """``out_dir`` cannot be used (a file, or a directory holding something other than an earlier output)."""


class GenerationError(GenAIError, RuntimeError):
    """A model failed while generating in :func:`generate_parallel` (the message names it)."""


class GenerationCancelled(GenAIError, RuntimeError):
    """Stopped because another model of the same parallel run failed (or on interrupt)."""


class OpticalBackendUnavailable(GenAIError, RuntimeError):
    """The bench's optical cores cannot be opened by this labctl (``labctl.opu.open_cores`` missing)."""


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("" if k == 1 else "s")


# -- results --------------------------------------------------------------------------------------------


@dataclass
class GenerationResult:
    """What :func:`generate` made: both image sets, the classifier's reading of them, and the metrics."""

    model: str
    seeds: np.ndarray  # (n,) int64: image i is drawn from seeds[i]
    electronic: np.ndarray  # (n, 8, 8) float32 in [0, 1] ((n, H, W) or (n, H, W, 3) for a pipeline folder)
    optical: np.ndarray | None  # same seeds through the OPU; None without an OPU
    prompts: list[str] | None  # per image (conditional model) or None
    requested_labels: np.ndarray  # (n,) int64, -1 where no digit was requested
    electronic_labels: np.ndarray | None  # None: images the digit classifier cannot read (not 8 x 8 grey)
    electronic_confidence: np.ndarray | None
    optical_labels: np.ndarray | None
    optical_confidence: np.ndarray | None
    psnr_db: np.ndarray | None  # per image, optical against electronic
    ssim: np.ndarray | None
    metrics: dict[str, Any]  # what metrics.json holds
    table: list[dict[str, Any]]  # quality rows (quality_table)
    ledgers: dict[str, Any] = field(default_factory=dict)  # component -> labctl.offload OpticalLedger
    out_dir: Path | None = None

    @property
    def electronic_images_per_s(self) -> float:
        return self.metrics["electronic"]["images_per_s"]

    @property
    def optical_images_per_s(self) -> float | None:
        return None if self.metrics["optical"] is None else self.metrics["optical"]["images_per_s"]

    @property
    def optical_macs(self) -> int | None:
        return None if self.metrics["optical"] is None else self.metrics["optical"]["optical_macs"]

    @property
    def optical_macs_per_s(self) -> float | None:
        return None if self.metrics["optical"] is None else self.metrics["optical"]["optical_macs_per_s"]

    def throughput_rows(self) -> list[dict[str, Any]]:
        rows = []
        for name in ("electronic", "optical"):
            m = self.metrics[name]
            if m is not None:
                rows.append({"set": name, "images": self.metrics["n"], "wall_s": m["wall_s"],
                             "images_per_s": m["images_per_s"], "optical_macs": m.get("optical_macs"),
                             "optical_macs_per_s": m.get("optical_macs_per_s")})
        return rows

    def summary(self) -> str:
        """Throughput and quality tables as plain text."""
        quality_cols = ["set", "psnr_db_mean", "psnr_db_min", "ssim_mean", "ssim_min", "classifier_agreement",
                        "confidence", "accuracy", "frechet_distance"]
        head = (f"{self.model}: {_count(self.metrics['n'], 'image')}, {_count(self.metrics['steps'], 'step')}, seeds "
                f"{int(self.seeds[0])}..{int(self.seeds[-1])}")
        throughput_cols = ["set", "images", "wall_s", "images_per_s", "optical_macs", "optical_macs_per_s"]
        if self.optical is None:
            quality_cols, throughput_cols = ["set", "confidence", "accuracy"], throughput_cols[:4]
        parts = [head, format_table(self.throughput_rows(), throughput_cols, HEADERS)]
        parts.append(format_table(self.table, quality_cols, HEADERS))
        note = self.metrics["electronic"].get("classifier_note")
        if note:
            parts.append(f"note: {note}")
        return "\n\n".join(parts)


@dataclass
class ParallelResult:
    """What :func:`generate_parallel` made: one :class:`GenerationResult` per model and the throughput."""

    results: dict[str, GenerationResult]
    metrics: dict[str, Any]
    out_dir: Path | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One row per model and a 'total' row (throughput over the concurrent phases)."""
        out = []
        for name, m in self.metrics["per_model"].items():
            out.append({"model": name, **m})
        out.append({"model": "total", **self.metrics["total"]})
        return out

    def summary(self) -> str:
        cols = ["model", "images", "electronic_images_per_s", "optical_images_per_s", "optical_macs",
                "optical_macs_per_s", "psnr_db_mean", "ssim_mean", "classifier_agreement", "accuracy"]
        if self.metrics["total"].get("optical_images_per_s") is None:
            cols = ["model", "images", "electronic_images_per_s", "confidence", "accuracy"]
        return format_table(self.rows(), cols, HEADERS)


# -- preparation ----------------------------------------------------------------------------------------


@dataclass
class _Job:
    gen: Generator
    n: int
    seed: int
    steps: int
    prompts: list[str] | None
    requested: np.ndarray
    guidance: float | None
    batch_size: int

    @property
    def name(self) -> str:
        return self.gen.name

    def chunks(self) -> list[tuple[int, int]]:
        return [(lo, min(lo + self.batch_size, self.n)) for lo in range(0, self.n, self.batch_size)]

    def kwargs(self, lo: int, hi: int) -> dict[str, Any]:
        if self.prompts is None:
            return {}
        return {"prompt": self.prompts[lo:hi], "guidance": self.guidance}


def _positive(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what}: expected an integer >= 1, got {value!r}")
    return int(value)


def _prepare(model: str | Generator, n, seed, steps, prompt, label, guidance, batch_size) -> _Job:
    """Load and validate everything (UnknownModelError, PromptError, ValueError) before anything runs."""
    if isinstance(model, Generator):
        gen = model
    elif isinstance(model, (str, os.PathLike)):
        gen = load_model(model)
    else:
        raise TypeError(f"model: expected a model name ({', '.join(MODEL_NAMES)}), the path of a diffusers "
                        f"pipeline folder or a Generator, got {type(model).__name__}")
    n = gen.check_request(n, seed, steps, prompt, label, guidance)
    bs = n if batch_size is None else _positive(batch_size, "batch_size")
    prompts = gen.prompts(n, prompt, label) if gen.conditional else None
    if prompts is not None and gen.digit_prompts:
        requested = np.array([-1 if (d := prompt_label(p)) is None else d for p in prompts], dtype=np.int64)
    else:
        requested = np.full(n, -1, dtype=np.int64)
    return _Job(gen=gen, n=n, seed=int(seed), steps=gen._steps(steps), prompts=prompts, requested=requested,
                guidance=gen.guidance_scale(guidance) if gen.conditional else None, batch_size=min(bs, n))


def _offload(gen: Generator, opu: Any, attention: bool, min_macs: int) -> tuple[Generator, dict[str, Any]]:
    """A generator whose :data:`OFFLOAD_PARTS` modules are ``labctl.offload`` copies on ``opu``."""
    from labctl.offload import offload

    replacements = {}
    for part, keep in OFFLOAD_PARTS.items():
        module = gen.modules.get(part)
        if module is None:
            continue
        names = {name for name, _ in module.named_modules()}
        replacements[part] = offload(module, opu, attention=attention, min_macs=min_macs,
                                     exclude=[k for k in keep if k in names])
    if not replacements:
        raise GenAIError(f"{gen.name}: none of its components ({sorted(gen.components)}) can be offloaded")
    return gen.with_components(**replacements), replacements


# -- running --------------------------------------------------------------------------------------------


def _tick_module(gen: Generator):
    """The module called once per denoising step (unet) or once per batch (one-shot decoder)."""
    if "unet" in gen.modules:
        return gen.modules["unet"]
    vae = gen.modules.get("vae")
    return getattr(vae, "decoder", vae)


def _run_set(job: _Job, gen: Generator, *, desc: str, progress: bool, position: int = 0,
             cancel: threading.Event | None = None) -> tuple[np.ndarray, float]:
    """Generate the job's images with ``gen`` (electronic or offloaded); a progress bar over steps."""
    import torch
    from tqdm.auto import tqdm

    chunks = job.chunks()
    per_chunk = job.steps if "unet" in gen.modules else 1
    bar = tqdm(total=len(chunks) * per_chunk, desc=desc, unit="step", disable=not progress, leave=False,
               position=position, dynamic_ncols=True)
    module = _tick_module(gen)

    def check(_module, _args):
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled(f"{job.name}: stopped (another model of the parallel run failed)")

    def tick(_module, _args, _output):
        bar.update(1)

    handles = [] if module is None else [module.register_forward_pre_hook(check), module.register_forward_hook(tick)]
    images = []
    try:
        with torch.no_grad():
            t0 = time.perf_counter()
            for lo, hi in chunks:
                check(None, None)
                images.append(gen.generate(hi - lo, seed=job.seed + lo, steps=job.steps, **job.kwargs(lo, hi)))
            wall = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
        bar.close()
    return np.concatenate(images).astype(np.float32), wall


def _warm_up(job: _Job) -> None:
    """One step on one batch of the run's size, electronic, untimed: pipeline imports and the first call's
    per-shape set-up costs stay out of the timing."""
    import torch

    size = job.chunks()[0][1]
    with torch.no_grad():
        job.gen.generate(size, seed=job.seed, steps=1, **job.kwargs(0, size))


@dataclass
class _OpticalRun:
    images: np.ndarray
    wall_s: float
    offload_s: float
    ledgers: dict[str, Any]
    opu: Any
    attention: bool


def _run_optical(job: _Job, opu: Any, *, attention: bool, min_macs: int, progress: bool, position: int = 0,
                 cancel: threading.Event | None = None) -> _OpticalRun:
    from labctl.offload import ledger

    t0 = time.perf_counter()
    ogen, modules = _offload(job.gen, opu, attention, min_macs)
    offload_s = time.perf_counter() - t0
    images, wall = _run_set(job, ogen, desc=f"{job.name} optical", progress=progress, position=position,
                            cancel=cancel)
    return _OpticalRun(images, wall, offload_s, {k: ledger(m) for k, m in modules.items()}, opu, attention)


# -- metrics --------------------------------------------------------------------------------------------


def _opu_description(opu: Any) -> dict[str, Any]:
    cls = type(opu)
    d = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    for attr in ("name", "wavelengths", "channels"):
        value = getattr(opu, attr, None)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            d[attr] = value
    return d


def _build(job: _Job, electronic: np.ndarray, e_wall: float, optical: _OpticalRun | None,
           classifier) -> GenerationResult:
    """Classifier readings, quality against the electronic set, metrics.json content."""
    import torch

    from .quality import _clf

    n = job.n
    seeds = job.seed + np.arange(n, dtype=np.int64)
    note = classifier_note(electronic)  # None: 8 x 8 grey digits the classifier reads
    clf = _clf(classifier) if note is None else None
    e_labels, e_conf = clf.classify(electronic) if note is None else (None, None)
    asked = job.requested if (job.requested >= 0).any() else None
    e_acc = conditional_accuracy(electronic, job.requested, clf) if asked is not None and note is None else None
    metrics: dict[str, Any] = {
        "format": FORMAT,
        "model": job.name,
        "conditional": bool(job.gen.conditional),
        "n": n,
        "seed": job.seed,
        "seeds": seeds.tolist(),
        "steps": job.steps,
        "guidance": job.guidance,
        "batch_size": job.batch_size,
        "prompts": job.prompts,
        "requested_labels": job.requested.tolist() if asked is not None else None,
        "electronic": {"wall_s": e_wall, "images_per_s": n / e_wall if e_wall > 0 else math.inf,
                       "mean_confidence": None if e_conf is None else float(e_conf.mean()), "accuracy": e_acc,
                       "labels": None if e_labels is None else e_labels.tolist()},
        "optical": None,
        "quality": None,
        "table": None,
        "torch_threads": torch.get_num_threads(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    o_imgs = o_labels = o_conf = p = s = None
    ledgers: dict[str, Any] = {}
    if note is not None:
        metrics["electronic"]["classifier_note"] = note
    if optical is None:
        table = [{"set": "electronic", "n": n, "confidence": metrics["electronic"]["mean_confidence"],
                  "accuracy": e_acc}]
    else:
        o_imgs = optical.images
        ledgers = optical.ledgers
        o_labels, o_conf = clf.classify(o_imgs) if note is None else (None, None)
        macs = sum(b.total_macs for b in ledgers.values())
        stats: dict[str, float] = {}
        for b in ledgers.values():
            for rec in b.records.values():
                for key, value in rec.opu_stats.items():
                    stats[key] = stats.get(key, 0) + value
        wall = optical.wall_s
        metrics["optical"] = {
            "wall_s": wall,
            "images_per_s": n / wall if wall > 0 else math.inf,
            "mean_confidence": None if o_conf is None else float(o_conf.mean()),
            "accuracy": conditional_accuracy(o_imgs, job.requested, clf) if asked is not None and clf is not None else None,
            "labels": None if o_labels is None else o_labels.tolist(),
            "optical_macs": int(macs),
            "optical_macs_per_image": macs / n,
            "optical_macs_per_s": macs / wall if wall > 0 else math.inf,
            "opu_calls": int(sum(b.total_opu_calls for b in ledgers.values())),
            "electronic_fallback_macs": int(sum(b.total_electronic_macs for b in ledgers.values())),
            "macs_by_component": {k: int(b.total_macs) for k, b in ledgers.items()},
            "offload_s": optical.offload_s,
            "attention": optical.attention,
            "opu": _opu_description(optical.opu),
            "opu_stats": stats,
            "ledger": {k: b.to_dict() for k, b in ledgers.items()},
        }
        p, s = psnr(electronic, o_imgs), ssim(electronic, o_imgs)
        q = compare(electronic, o_imgs, requested=asked, classifier=clf)
        metrics["quality"] = {"psnr_db": p.tolist(), "ssim": s.tolist(),
                              **{k: v for k, v in q.items() if k not in ("n", "confidence", "accuracy")}}
        table = quality_table(electronic, {"optical": o_imgs}, requested=asked, classifier=clf)
    metrics["table"] = table
    return GenerationResult(
        model=job.name, seeds=seeds, electronic=electronic, optical=o_imgs, prompts=job.prompts,
        requested_labels=job.requested, electronic_labels=e_labels, electronic_confidence=e_conf,
        optical_labels=o_labels, optical_confidence=o_conf, psnr_db=p, ssim=s, metrics=metrics, table=table,
        ledgers=ledgers)


# -- writing --------------------------------------------------------------------------------------------


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


def _dumps(metrics: dict) -> str:
    return json.dumps(_json_safe(metrics), indent=2, allow_nan=False) + "\n"


def _is_earlier_output(folder: Path) -> bool:
    """True if ``folder`` holds only what this module writes (single or parallel layout)."""
    try:
        fmt = json.loads((folder / "metrics.json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return False
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            if fmt != PARALLEL_FORMAT or not _is_earlier_output(entry):
                return False
        elif entry.name not in OUTPUT_FILES:
            return False
    return fmt in (FORMAT, PARALLEL_FORMAT)


def _check_out_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.is_symlink():
        raise OutputDirError(f"{out_dir} is a symbolic link; give a real directory for --out")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputDirError(f"{out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not _is_earlier_output(out_dir):
            raise OutputDirError(f"{out_dir} exists and holds files that are not an earlier `labctl generate` "
                                 "output; give a new or empty directory (nothing was written)")
    return out_dir


def _fresh_sibling(out_dir: Path, tag: str) -> Path:
    """A new, empty, hidden directory next to ``out_dir`` (made with the user's umask, unlike mkdtemp's 0700)."""
    for _ in range(100):
        path = out_dir.parent / f".{out_dir.name}.{tag}-{uuid.uuid4().hex[:10]}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise OutputDirError(f"cannot make a temporary directory next to {out_dir}")


@contextlib.contextmanager
def _atomic_dir(out_dir: Path):
    """Yield a temporary sibling of ``out_dir``; rename it to ``out_dir`` at the end (replacing an earlier
    output); on any failure remove it and leave ``out_dir`` as it was."""
    out_dir = _check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_sibling(out_dir, "partial")
    try:
        yield tmp
        _check_out_dir(out_dir)  # still safe to replace?
        old = None
        if out_dir.exists():
            old = _fresh_sibling(out_dir, "old")
            os.replace(out_dir, old)  # onto the empty placeholder
        try:
            os.replace(tmp, out_dir)
        except BaseException:
            if old is not None:
                os.replace(old, out_dir)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_outputs(folder: Path, result: GenerationResult) -> None:
    _write_grid(folder / "grid.png", result)
    arrays: dict[str, np.ndarray] = {
        "electronic": result.electronic.astype(np.float32),
        "seeds": result.seeds.astype(np.int64),
        "requested_labels": result.requested_labels.astype(np.int64),
        "prompts": np.array(result.prompts if result.prompts is not None else [""] * len(result.seeds),
                            dtype=str),
    }
    if result.electronic_labels is not None:
        arrays.update(electronic_labels=result.electronic_labels.astype(np.int64),
                      electronic_confidence=result.electronic_confidence.astype(np.float32))
    if result.optical is not None:
        arrays.update(optical=result.optical.astype(np.float32), psnr_db=result.psnr_db.astype(np.float64),
                      ssim=result.ssim.astype(np.float64))
        if result.optical_labels is not None:
            arrays.update(optical_labels=result.optical_labels.astype(np.int64),
                          optical_confidence=result.optical_confidence.astype(np.float32))
    np.savez_compressed(folder / "images.npz", **arrays)
    (folder / "metrics.json").write_text(_dumps(result.metrics))


def _write_grid(path: Path, result: GenerationResult) -> None:
    """Electronic row, then the optical row of the same seeds under it; captions: seed, classifier label
    (and requested digit), PSNR of the optical image."""
    from matplotlib.figure import Figure

    m = result.metrics
    k = min(len(result.electronic), GRID_MAX)
    cols = min(k, 10)
    blocks = math.ceil(k / cols)
    sets = [("electronic", result.electronic, result.electronic_labels)]
    if result.optical is not None:
        sets.append(("optical", result.optical, result.optical_labels))
    rows = blocks * len(sets)
    fig = Figure(figsize=(1.2 + 1.0 * cols, 0.8 + 1.3 * rows), dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for b in range(blocks):
        for si, (name, images, labels) in enumerate(sets):
            r = b * len(sets) + si
            for c in range(cols):
                ax = axes[r, c]
                i = b * cols + c
                ax.set_xticks([])
                ax.set_yticks([])
                if i >= k:
                    ax.set_axis_off()
                    continue
                ax.imshow(images[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                want = int(result.requested_labels[i])
                if labels is None:  # images the digit classifier cannot read
                    read = ""
                else:
                    mark = "" if want < 0 else (" ok" if labels[i] == want else f", want {want}")
                    read = f"label {int(labels[i])}{mark}"
                if name == "electronic":
                    caption = f"seed {int(result.seeds[i])}\n{read}"
                else:
                    p = float(result.psnr_db[i])
                    caption = f"{read}\n" + ("identical" if math.isinf(p) else f"{p:.1f} dB")
                ax.set_title(caption, fontsize=7, pad=2)
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:blue" if name == "electronic" else "tab:orange")
                    spine.set_linewidth(1.5)
                if c == 0:
                    ax.set_ylabel(name, fontsize=9, color="tab:blue" if name == "electronic" else "tab:orange")
    title = f"{result.model}: {_count(m['n'], 'image')}, {_count(m['steps'], 'step')}"
    if result.prompts is not None:
        title += f", guidance {m['guidance']:g}"
    if k < len(result.electronic):
        title += f" (first {k} shown)"
    if m["optical"] is not None:
        q = m["quality"]
        title += (f"\noptical: {m['optical']['optical_macs']:.3g} MACs on the OPU, PSNR {q['psnr_db_mean']:.1f} dB "
                  f"(mean), SSIM {q['ssim_mean']:.3f}")
        if q["classifier_agreement"] is not None:
            title += f", classifier agreement {q['classifier_agreement']:.0%}"
    else:
        title += "\nelectronic only"
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)


# -- public API -----------------------------------------------------------------------------------------


def generate(model_name: str | Generator, *, n: int, steps: int | None = None, seed: int = 0,
             prompt: str | Sequence[str] | None = None, label: int | Sequence[int] | None = None,
             guidance: float | None = None, opu: Any = None, out_dir: str | Path | None = None,
             progress: bool = True, attention: bool = False, min_macs: int = 0, batch_size: int | None = None,
             classifier=None) -> GenerationResult:
    """Generate seeds ``seed .. seed+n-1`` electronically and, given an ``opu``, optically; compare; write.

    ``model_name``: one of ``MODEL_NAMES``, the path of a diffusers pipeline folder (``StableDiffusionPipeline``,
    ``DDPMPipeline``, ``DDIMPipeline``), or a loaded :class:`~experiments.genai.models.Generator`.
    ``prompt``/``label``/``guidance``: for the conditional model only (:class:`PromptError` /
    ``ValueError`` otherwise). ``opu``: anything with ``matmul(a, b, return_error=True)``
    (a ``labctl.OPU`` or a core from ``labctl.opu.open_cores``); None: electronic only. ``attention``:
    also run the attention products on the OPU; ``min_macs``: smaller products stay electronic
    (see :func:`labctl.offload.offload`). ``batch_size``: images per pipeline call (default all ``n``).
    ``out_dir``: write ``grid.png``, ``images.npz``, ``metrics.json`` there (atomically; see the module
    docstring). Everything is validated before anything runs.
    """
    job = _prepare(model_name, n, seed, steps, prompt, label, guidance, batch_size)
    if out_dir is not None:
        _check_out_dir(Path(out_dir))
    _warm_up(job)
    electronic, e_wall = _run_set(job, job.gen, desc=f"{job.name} electronic", progress=progress)
    optical = None
    if opu is not None:
        optical = _run_optical(job, opu, attention=attention, min_macs=min_macs, progress=progress)
    result = _build(job, electronic, e_wall, optical, classifier)
    if out_dir is not None:
        with _atomic_dir(Path(out_dir)) as tmp:
            _write_outputs(tmp, result)
        result.out_dir = _check_out_dir(Path(out_dir))
    return result


def _model_list(model_names) -> list[str | Generator]:
    if isinstance(model_names, str):
        model_names = [m.strip() for m in model_names.split(",") if m.strip()]
    names = list(model_names)
    if not names:
        raise ValueError("model_names: give at least one model")
    unknown = [m for m in names if isinstance(m, str) and m not in MODEL_NAMES and not is_pipeline_path(m)]
    if unknown:
        raise UnknownModelError(f"unknown model(s) {', '.join(map(repr, unknown))}; known models: "
                                f"{', '.join(MODEL_NAMES)}; or give the path of a diffusers pipeline folder")
    keys = [m.name if isinstance(m, Generator) else m for m in names]
    if len(set(keys)) != len(keys):
        raise ValueError(f"model_names: each model at most once, got {keys}")
    return names


def _in_threads(tasks: dict[str, Callable[[], Any]], cancel: threading.Event) -> dict[str, Any]:
    """Run each task in its own thread; on the first failure stop the others (at their next step) and raise
    :class:`GenerationError` naming the model."""
    results: dict[str, Any] = {}
    errors: list[tuple[str, BaseException]] = []
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="generate") as pool:
        futures = {pool.submit(fn): name for name, fn in tasks.items()}
        try:
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    results[name] = fut.result()
                except BaseException as exc:  # noqa: BLE001 - reported below with the model's name
                    errors.append((name, exc))
                    cancel.set()
        except BaseException:
            cancel.set()  # Ctrl-C: the threads stop at their next step; the pool waits for them
            raise
    if errors:
        real = [(n, e) for n, e in errors if not isinstance(e, GenerationCancelled)] or errors
        name, exc = real[0]
        raise GenerationError(f"{name}: {type(exc).__name__}: {exc}") from exc
    return results


def generate_parallel(model_names: str | Sequence[str | Generator], opus: Sequence[Any] | None = None, *, n: int,
                      steps: int | None = None, seed: int = 0, prompt: str | Sequence[str] | None = None,
                      label: int | Sequence[int] | None = None, guidance: float | None = None,
                      out_dir: str | Path | None = None, progress: bool = True, attention: bool = False,
                      min_macs: int = 0, batch_size: int | None = None, classifier=None) -> ParallelResult:
    """Several models at once, one thread per model, model ``i`` on ``opus[i]`` (each OPU belongs to one
    model); ``opus=None``: electronic only.

    ``model_names``: a list or a comma-separated string. ``prompt``/``label``/``guidance`` go to the
    conditional models (:class:`PromptError` if none of the models is conditional). Raises, before
    running anything: :class:`NotEnoughOPUsError` (fewer OPUs than models), ``ValueError`` (an OPU object
    given twice, a model listed twice), ``UnknownModelError``, ``PromptError``. A model failing while
    running stops the others and raises :class:`GenerationError`.
    """
    models = _model_list(model_names)
    if opus is not None:
        opus = list(opus)
        if len(opus) < len(models):
            raise NotEnoughOPUsError(f"{len(models)} models to run in parallel but only {len(opus)} OPU(s); "
                                     "each model needs its own optical core (give fewer models or more cores)")
        opus = opus[:len(models)]
        if len({id(o) for o in opus}) != len(opus):
            raise ValueError("opus: the same OPU object is given for several models; each OPU belongs to one "
                             "model")
    conditioning = prompt is not None or label is not None or guidance is not None
    gens = [m if isinstance(m, Generator) else load_model(m) for m in models]
    if conditioning and not any(g.conditional for g in gens):
        raise PromptError(f"none of {', '.join(g.name for g in gens)} is conditional: they take no prompt, label "
                          "or guidance (the conditional model is latent-digits)")
    jobs = {}
    for g in gens:
        kw = {"prompt": prompt, "label": label, "guidance": guidance} if g.conditional else {}
        jobs[g.name] = _prepare(g, n, seed, steps, kw.get("prompt"), kw.get("label"), kw.get("guidance"),
                                batch_size)
    if out_dir is not None:
        _check_out_dir(Path(out_dir))
    for job in jobs.values():
        _warm_up(job)
    order = list(jobs)
    cancel = threading.Event()

    def electronic_task(name: str):
        return lambda: _run_set(jobs[name], jobs[name].gen, desc=f"{name} electronic", progress=progress,
                                position=order.index(name), cancel=cancel)

    t0 = time.perf_counter()
    electronic = _in_threads({name: electronic_task(name) for name in order}, cancel)
    e_wall = time.perf_counter() - t0
    optical: dict[str, _OpticalRun | None] = {name: None for name in order}
    o_wall = None
    if opus is not None:
        def optical_task(name: str, opu: Any):
            return lambda: _run_optical(jobs[name], opu, attention=attention, min_macs=min_macs, progress=progress,
                                        position=order.index(name), cancel=cancel)

        t0 = time.perf_counter()
        optical.update(_in_threads({name: optical_task(name, opu) for name, opu in zip(order, opus)}, cancel))
        o_wall = time.perf_counter() - t0
    results = {name: _build(jobs[name], *electronic[name], optical[name], classifier) for name in order}

    per_model = {}
    for name, r in results.items():
        q = r.metrics["quality"] or {}
        o = r.metrics["optical"] or {}
        per_model[name] = {
            "images": r.metrics["n"], "steps": r.metrics["steps"],
            "electronic_wall_s": r.metrics["electronic"]["wall_s"],
            "electronic_images_per_s": r.electronic_images_per_s,
            "optical_wall_s": o.get("wall_s"), "optical_images_per_s": o.get("images_per_s"),
            "optical_macs": o.get("optical_macs"), "optical_macs_per_s": o.get("optical_macs_per_s"),
            "psnr_db_mean": q.get("psnr_db_mean"), "ssim_mean": q.get("ssim_mean"),
            "classifier_agreement": q.get("classifier_agreement"),
            "confidence": (o or r.metrics["electronic"])["mean_confidence"],
            "accuracy": (o or r.metrics["electronic"])["accuracy"],
            "opu": o.get("opu"),
        }
    total_images = sum(r.metrics["n"] for r in results.values())
    total_macs = sum(r.optical_macs or 0 for r in results.values()) if opus is not None else None
    total = {
        "images": total_images,
        "electronic_wall_s": e_wall,
        "electronic_images_per_s": total_images / e_wall if e_wall > 0 else math.inf,
        "optical_wall_s": o_wall,
        "optical_images_per_s": None if o_wall is None else (total_images / o_wall if o_wall > 0 else math.inf),
        "optical_macs": total_macs,
        "optical_macs_per_s": None if o_wall is None else (total_macs / o_wall if o_wall > 0 else math.inf),
    }
    import torch

    metrics = {
        "format": PARALLEL_FORMAT,
        "models": order,
        "n": results[order[0]].metrics["n"],
        "seed": int(seed),
        "threads": len(order),
        "torch_threads": torch.get_num_threads(),
        "per_model": per_model,
        "total": total,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out = ParallelResult(results, metrics)
    if out_dir is not None:
        with _atomic_dir(Path(out_dir)) as tmp:
            for name, r in results.items():
                (tmp / name).mkdir()
                _write_outputs(tmp / name, r)
            (tmp / "metrics.json").write_text(_dumps(metrics))
        out.out_dir = _check_out_dir(Path(out_dir))
        for name, r in results.items():
            r.out_dir = out.out_dir / name
    return out


# -- optical cores of a bench ---------------------------------------------------------------------------


def open_optical_cores(bench, calibration_dir: str | Path | None = None, *, accept_stale: bool = False) -> list:
    """The bench's optical cores (one OPU object each), from ``labctl.opu.open_cores`` (imported lazily).

    ``accept_stale``: use calibration files made at another operating point, or failing their drift
    check, with a WARNING log record instead of an error (``--accept-stale-calibration``).
    """
    import labctl.opu as opu_package

    open_cores = getattr(opu_package, "open_cores", None)
    if open_cores is None:
        raise OpticalBackendUnavailable(
            "this labctl cannot open the bench's optical cores yet (labctl.opu.open_cores is missing); "
            "use --electronic-only for now")
    override = {"accept_stale": True} if accept_stale else {}  # passed only when set: the default refuses
    cores = list(open_cores(bench, calibration_dir=None if calibration_dir is None else Path(calibration_dir),
                            **override))
    if not cores:
        name = getattr(getattr(bench, "config", None), "name", None)
        raise NotEnoughOPUsError(f"bench {name or ''}: no optical core found".replace("bench :", "the bench:"))
    return cores


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
@click.option("--electronic-only", is_flag=True, help="No bench: generate electronically only.")
@click.option("--calibration", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the optical cores' calibration files.")
@click.option("--accept-stale-calibration", "accept_stale", is_flag=True,
              help="Use calibration files although the operating point changed since they were made or their "
              "drift check fails (logged as a warning; the products will be off). Default: refuse them.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output directory (grid.png, images.npz, metrics.json); replaced atomically.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="First image seed (image i uses seed + i); also seeds the simulated bench's noise.")
@click.option("--batch-size", type=int, help="Images per pipeline call (default: all).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def cli_main(model, parallel, prompt, label, guidance, n, steps, sim, bench_file, electronic_only, calibration,
             accept_stale, out, seed, batch_size, quiet) -> None:
    """Generate images with bundled models electronically and on the optical computing center, same seeds.

    \b
    Examples:
      labctl generate --model ddpm-digits --n 16 --steps 20 --sim --out results/ddpm
      labctl generate --model latent-digits --label 7 --n 8 --steps 20 --electronic-only --out results/l7
      labctl generate --parallel ddpm-digits,latent-digits,vae-digits --n 8 --bench b.yaml --out results/par
      labctl generate --model /data/stable-diffusion-v1-5 --prompt "a red boat" --n 2 --steps 4 --sim --out results/sd
    """
    if (model is None) == (parallel is None):
        raise click.UsageError("give --model NAME or --parallel NAME,NAME,... (one of them)")
    if electronic_only and (sim or bench_file is not None or calibration is not None or accept_stale):
        raise click.UsageError("--electronic-only uses no bench: drop --sim/--bench/--calibration/"
                               "--accept-stale-calibration")
    if accept_stale and calibration is None:
        raise click.UsageError("--accept-stale-calibration applies to calibration files: give --calibration DIR")
    if not electronic_only and not sim and bench_file is None:
        raise click.UsageError("give --sim or --bench FILE for the optical run, or --electronic-only")
    common = dict(n=n, steps=steps, seed=seed, prompt=prompt, label=label, guidance=guidance, batch_size=batch_size,
                  progress=not quiet)
    # everything that can be checked is checked before a bench is opened
    if parallel is not None:
        models: list = [load_model(m) for m in _model_list(parallel)]
        conditional = [g for g in models if g.conditional]
        if (prompt is not None or label is not None or guidance is not None) and not conditional:
            raise PromptError(f"none of {parallel} is conditional: they take no --prompt/--label/--guidance")
        for g in models:
            kw = {"prompt": prompt, "label": label, "guidance": guidance} if g.conditional else {}
            g.check_request(n, seed, steps, **kw)
    else:
        models = [load_model(model)]
        models[0].check_request(n, seed, steps, prompt, label, guidance)
    _check_out_dir(out)

    def run(opus):
        if parallel is not None:
            return generate_parallel(models, opus, out_dir=out, **common)
        return generate(models[0], opu=None if opus is None else opus[0], out_dir=out, **common)

    if electronic_only:
        result = run(None)
    else:
        from labctl.bench import open_bench

        if bench_file is None:
            from labctl.bench import OPU_BENCH_PATH

            bench_file = OPU_BENCH_PATH  # the built-in optical computing center (three cores)
        with open_bench(bench_file, mode="sim" if sim else "real", seed=seed) as bench:
            opus = open_optical_cores(bench, calibration, accept_stale=accept_stale)
            if parallel is not None and len(opus) < len(models):
                raise NotEnoughOPUsError(f"the bench has {len(opus)} optical core(s) for {len(models)} models; "
                                         "give fewer models or a bench with more cores")
            result = run(opus)
    click.echo(result.summary())
    click.echo(f"\nwrote {result.out_dir}")
    if isinstance(result, ParallelResult):
        for name in result.results:
            click.echo(f"      {result.out_dir / name}/{{grid.png, images.npz, metrics.json}}")
        click.echo(f"      {result.out_dir / 'metrics.json'}")
    else:
        click.echo(f"      {', '.join(str(result.out_dir / f) for f in OUTPUT_FILES)}")


if __name__ == "__main__":  # python -m experiments.genai.generate ...
    cli_main()
