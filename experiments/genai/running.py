"""Running generation: a model's images electronically and, with an OPU, with its matrix products on the
OPU (same seeds), one model or several in parallel threads, each on its own OPU."""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from labctl.offload import ledger, offload
from labctl.opu import open_opus

from .models import MODEL_NAMES, GenAIError, Generator, PromptError, UnknownModelError, is_pipeline_path, load_model
from .output import atomic_dir, check_out_dir, dumps_metrics, write_outputs
from .prompts import prompt_label
from .quality import classifier_note, classifier_or_default, compare, conditional_accuracy, psnr, quality_table, ssim
from .results import (
    FORMAT,
    PARALLEL_FORMAT,
    GenerationCancelled,
    GenerationError,
    GenerationResult,
    NotEnoughOPUsError,
    ParallelResult,
)

#: Component -> its submodules kept electronic. Only these torch modules are offloaded (when the model has them).
OFFLOAD_PARTS: dict[str, tuple[str, ...]] = {
    "unet": (),
    "text_encoder": (),
    "vae": ("encoder", "quant_conv"),  # sampling only decodes: post_quant_conv + decoder run on the OPU
}


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

    n = job.n
    seeds = job.seed + np.arange(n, dtype=np.int64)
    note = classifier_note(electronic)  # None: 8 x 8 grey digits the classifier reads
    clf = classifier_or_default(classifier) if note is None else None
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
    (an engine from ``labctl.opu.open_opus``); None: electronic only. ``attention``:
    also run the attention products on the OPU; ``min_macs``: smaller products stay electronic
    (see :func:`labctl.offload.offload`). ``batch_size``: images per pipeline call (default all ``n``).
    ``out_dir``: write ``grid.png``, ``images.npz``, ``metrics.json`` there (atomically; see the module
    docstring). Everything is validated before anything runs.
    """
    job = _prepare(model_name, n, seed, steps, prompt, label, guidance, batch_size)
    if out_dir is not None:
        check_out_dir(Path(out_dir))
    _warm_up(job)
    electronic, e_wall = _run_set(job, job.gen, desc=f"{job.name} electronic", progress=progress)
    optical = None
    if opu is not None:
        optical = _run_optical(job, opu, attention=attention, min_macs=min_macs, progress=progress)
    result = _build(job, electronic, e_wall, optical, classifier)
    if out_dir is not None:
        with atomic_dir(Path(out_dir)) as tmp:
            write_outputs(tmp, result)
        result.out_dir = check_out_dir(Path(out_dir))
    return result


def model_list(model_names) -> list[str | Generator]:
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
    models = model_list(model_names)
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
        check_out_dir(Path(out_dir))
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
        with atomic_dir(Path(out_dir)) as tmp:
            for name, r in results.items():
                (tmp / name).mkdir()
                write_outputs(tmp / name, r)
            (tmp / "metrics.json").write_text(dumps_metrics(metrics))
        out.out_dir = check_out_dir(Path(out_dir))
        for name, r in results.items():
            r.out_dir = out.out_dir / name
    return out


# -- optical cores of a bench ---------------------------------------------------------------------------


def open_optical_cores(bench, calibration_dir: str | Path | None = None, *, accept_stale: bool = False) -> list:
    """The bench's optical matrix engines, one per model at most (:func:`labctl.opu.open_opus`: one per
    weight-stationary core, or the streaming OPU).

    ``calibration_dir``: the folder of their calibration files (made if missing: cores without a file
    there are calibrated and saved into it). ``accept_stale``: use calibration files made at another
    operating point, or failing their drift check, with a WARNING log record instead of an error
    (``--accept-stale-calibration``).
    """
    if calibration_dir is not None:
        Path(calibration_dir).mkdir(parents=True, exist_ok=True)
    engines = list(open_opus(bench, None if calibration_dir is None else Path(calibration_dir),
                             accept_stale=accept_stale))
    if not engines:
        name = getattr(getattr(bench, "config", None), "name", None)
        raise NotEnoughOPUsError(f"bench {name or ''}: no optical core found".replace("bench :", "the bench:"))
    return engines
