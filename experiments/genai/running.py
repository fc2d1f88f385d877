"""Running generation: a model's images electronically and, with an OPU, with its matrix products on the
OPU (same seeds), one model or several in parallel threads, each on its own OPU; and what each image cost
in energy (bench, projected integrated optics, this machine's CPU), recorded in an energy ledger."""

from __future__ import annotations

import contextlib
import dataclasses
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

from labctl.energy import OPS_PER_MAC, EnergyError, EnergyLedger
from labctl.energy.baseline import BaselineMeasurement, measure_cpu
from labctl.energy.ledger import MW_PER_TOPS_PER_J_PER_OP, provenance_kind
from labctl.energy.metering import BenchMeter
from labctl.energy.projected import bench_projection
from labctl.offload import ledger, offload
from labctl.opu import open_opus

from .models import MODEL_NAMES, GenAIError, Generator, PromptError, UnknownModelError, is_pipeline_path, load_model
from .output import atomic_dir, check_out_dir, dumps_metrics, write_outputs
from .prompts import prompt_label
from .quality import classifier_note, classifier_or_default, compare, conditional_accuracy, psnr, quality_table, ssim
from .results import (
    ENERGY_FILE,
    ENERGY_VIEWS,
    FORMAT,
    PARALLEL_FORMAT,
    GenerationCancelled,
    GenerationError,
    GenerationResult,
    NotEnoughOPUsError,
    ParallelResult,
    count_phrase,
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
             cancel: threading.Event | None = None,
             on_step: Callable[[], None] | None = None) -> tuple[np.ndarray, float]:
    """Generate the job's images with ``gen`` (electronic or offloaded); a progress bar over steps;
    ``on_step`` is called after every step (the bench meter's readback snapshot)."""
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
        if on_step is not None:
            on_step()

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


def _warm_up(job: _Job) -> int:
    """One step on one batch of the run's size, electronic, untimed: pipeline imports and the first call's
    per-shape set-up costs stay out of the timing. Returns the MACs it did (see :class:`_MacCount`)."""
    import torch

    size = job.chunks()[0][1]
    with torch.no_grad(), _MacCount(job.gen) as count:
        job.gen.generate(size, seed=job.seed, steps=1, **job.kwargs(0, size))
    return count.macs


class _MacCount:
    """Counts, by forward hooks, the MACs of the products an optical run sends to the OPU (the
    ``nn.Linear``/``nn.Conv2d`` layers of :data:`OFFLOAD_PARTS`, with :mod:`labctl.offload`'s closed forms)
    while ``gen`` runs electronically: the ops of the electronic baseline. Layers ``offload`` leaves
    electronic (own ``forward``, excluded parts) are not counted; nor are attention products."""

    def __init__(self, gen: Generator):
        self.gen = gen
        self.macs = 0
        self._handles: list[Any] = []

    def _linear(self, module, args, _output) -> None:
        self.macs += args[0].numel() * module.out_features  # batch x in x out

    def _conv(self, module, _args, output) -> None:
        kh, kw = module.kernel_size
        self.macs += output.numel() * (module.in_channels // module.groups) * kh * kw  # N H W C_out x C_in/g kh kw

    def __enter__(self) -> _MacCount:
        from torch import nn

        for part, keep in OFFLOAD_PARTS.items():
            module = self.gen.modules.get(part)
            if module is None:
                continue
            for name, layer in module.named_modules():
                if any(name == k or name.startswith(k + ".") for k in keep):
                    continue
                if isinstance(layer, nn.Linear) and type(layer).forward is nn.Linear.forward:
                    self._handles.append(layer.register_forward_hook(self._linear))
                elif isinstance(layer, nn.Conv2d) and type(layer).forward is nn.Conv2d.forward:
                    self._handles.append(layer.register_forward_hook(self._conv))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


@dataclass
class _OpticalRun:
    images: np.ndarray
    wall_s: float
    offload_s: float
    ledgers: dict[str, Any]
    opu: Any
    attention: bool


def _run_optical(job: _Job, opu: Any, *, attention: bool, min_macs: int, progress: bool, position: int = 0,
                 cancel: threading.Event | None = None, on_step: Callable[[], None] | None = None) -> _OpticalRun:
    t0 = time.perf_counter()
    ogen, modules = _offload(job.gen, opu, attention, min_macs)
    offload_s = time.perf_counter() - t0
    images, wall = _run_set(job, ogen, desc=f"{job.name} optical", progress=progress, position=position,
                            cancel=cancel, on_step=on_step)
    return _OpticalRun(images, wall, offload_s, {k: ledger(m) for k, m in modules.items()}, opu, attention)


# -- energy ---------------------------------------------------------------------------------------------


def _measured_electronic(jobs: Sequence[_Job], run: Callable[[], Any], warm_up_macs: int,
                         energy: EnergyLedger) -> tuple[Any, BaselineMeasurement | None, dict[str, int]]:
    """``run()`` (the electronic set(s) of ``jobs``) measured by :func:`measure_cpu`, their MACs counted;
    the measurement is recorded in ``energy``'s baseline view. Returns what ``run`` returned, the
    measurement (None, with a note in the ledger, when the models did no countable product) and the MACs
    per model."""
    counts = {job.name: _MacCount(job.gen) for job in jobs}
    done: list[Any] = []
    with contextlib.ExitStack() as stack:
        for count in counts.values():
            stack.enter_context(count)
        if warm_up_macs <= 0:
            energy.add_note("baseline", "not measured: the models did no Linear/Conv2d product to count ops by")
            return run(), None, {name: 0 for name in counts}
        # measure_cpu takes the ops before running the workload; the warm-up's count (the same products,
        # one step of one batch) stands in until the run's own count replaces it below
        m = measure_cpu(lambda: done.append(run()), OPS_PER_MAC * warm_up_macs,
                        label="this machine's CPU (torch), the same images")
    macs = {name: c.macs for name, c in counts.items()}
    m = dataclasses.replace(m, ops=float(OPS_PER_MAC * sum(macs.values())))
    m.record(energy)
    return done[0], m, macs


def _opu_total(book: Any, key: str) -> float | None:
    """An additive ``last_stats`` entry summed over an offload ledger's products (``optical_time_s``: the
    time the light computed; ``optical_macs``: the MACs the optics did, tiling padding included); None
    when the OPU does not report it."""
    values = [rec.opu_stats.get(key) for rec in book.records.values() if rec.opu_calls]
    return None if not values or any(v is None for v in values) else sum(values)


def _record_ops(energy: EnergyLedger, runs: dict[str, _OpticalRun], start_s: float | None,
                end_s: float | None) -> dict[str, int]:
    """Each model's optical MACs into ``energy`` (what the optics did when the OPU reports it, the offload
    ledger's count of the products otherwise); returns the MACs recorded per model."""
    recorded = {}
    for name, run in runs.items():
        recorded[name] = 0
        for part, book in run.ledgers.items():
            done, optical_time = _opu_total(book, "optical_macs"), _opu_total(book, "optical_time_s")
            if done is None:
                rec = energy.add_offload(book, optical_time_s=optical_time, start_s=start_s, end_s=end_s,
                                         source=f"{name} {part}: labctl.offload ledger total_macs")
            else:
                rec = energy.add_ops(int(done), useful_macs=book.total_macs, optical_time_s=optical_time,
                                     start_s=start_s, end_s=end_s,
                                     source=f"{name} {part}: the OPU's optical_macs (padding included) over the "
                                            "labctl.offload ledger's products")
            recorded[name] += rec.macs
    useful = sum(r.macs if r.useful_macs is None else r.useful_macs for r in energy.ops_records)
    if useful != energy.macs:
        energy.add_note("baseline", f"the CPU computed the {useful} MACs of the products; the ledger's ops count "
                                    f"the {energy.macs} MACs the optics did (tiling padding included)")
    return recorded


def _electronic_only(energy: EnergyLedger) -> None:
    for view in ("bench", "projected"):
        energy.add_note(view, "electronic only: no optical set was run")


def _check_bench(bench: Any, opus: Sequence[Any]) -> None:
    """Refuse metering one bench while the products run on another (an engine says its bench as ``bench``)."""
    if bench is None:
        return
    for opu in opus:
        if getattr(opu, "bench", bench) is not bench:
            raise ValueError(f"bench: {getattr(opu, 'name', opu)!r} runs on another bench than the one given to "
                             "meter; give the bench the OPUs were opened on")


def _metered_optical(bench: Any, energy: EnergyLedger, run: Callable[[Callable[[], None] | None], dict[str, _OpticalRun]],
                     *, threaded: bool, opus: Sequence[Any] = ()) -> tuple[dict[str, _OpticalRun], dict[str, int]]:
    """``run(on_step)`` (the optical set(s)) with the bench metered over it (:class:`BenchMeter`: the bench
    view), its ops recorded on the bench clock and the bench's integrated projection (the projected view).
    ``bench`` None: the ops, and what the ``opus`` that keep their own ledger (``energy``: a remote center's
    figures per job) recorded during the run; else notes saying what is missing. Returns the runs and each
    one's MACs in the ledger."""
    if bench is None:
        centers = [o.energy for o in opus if isinstance(getattr(o, "energy", None), EnergyLedger)]
        marks = [{view: (len(c.terms(view)), len(c.notes(view))) for view in ("bench", "projected")} for c in centers]
        runs = run(None)
        recorded = _record_ops(energy, runs, None, None)
        for center, mark in zip(centers, marks):
            _take_center_energy(energy, center, mark)
        if not centers:
            energy.add_note("bench", "no bench given (bench=None): its draw was not metered")
            energy.add_note("projected", "no bench given (bench=None): there is no core to project")
        return runs, recorded
    meter = BenchMeter(bench, energy)
    sample = None
    if not threaded:
        sample = meter.sample
    elif meter.read_back:
        energy.add_note("bench", "readbacks were taken at the start and end of the run only (the cores run in "
                                 "threads; a snapshot in between would interleave with their instrument traffic)")
    with meter:
        start = meter.now()
        runs = run(sample)
        recorded = _record_ops(energy, runs, start, meter.now())
    if getattr(bench, "mode", None) == "sim":
        energy.add_note("bench", "the bench clock is simulated: it advances with the instruments' actions (the "
                                 "products' optical time, settling), not with the host's computation between them")
    try:
        bench_projection(bench).record(energy)
    except EnergyError as exc:
        energy.add_note("projected", f"not projected: {exc}")
    return runs, recorded


def _take_center_energy(energy: EnergyLedger, center: EnergyLedger, mark: dict[str, tuple[int, int]]) -> None:
    """Copy into ``energy`` what a remote center's ledger gained during the run (after ``mark``): its bench terms
    (each job's window on the center's bench clock, as the center metered it), its projected term and peak rate,
    and its notes. The ops are the run's own (its offload ledger), so they are not copied."""
    for view in ("bench", "projected"):
        terms, notes = mark[view]
        known = {t.device for t in energy.terms(view)}
        for term in center.terms(view)[terms:] if view == "bench" else center.terms(view):
            if view == "projected" and term.device in known:
                continue
            try:
                energy.add(term, view=view)
            except EnergyError as exc:
                energy.add_note(view, f"a term of the center's ledger was left out: {exc}")
        for note in center.notes(view)[notes:]:
            if note not in energy.notes(view):
                energy.add_note(view, note)
    peak = center.peak_rate("projected")
    if peak is not None and energy.peak_rate("projected") is None:
        energy.set_peak_rate("projected", *peak)


def energy_block(energy: EnergyLedger, images: int, *, optical_macs: int, electronic_macs: int,
                 baseline: BaselineMeasurement | None, optical_share: float = 1.0, electronic_share: float = 1.0,
                 ledger_file: str = ENERGY_FILE, split: str | None = None) -> dict[str, Any]:
    """The ``energy`` block of ``metrics.json`` for ``images`` images from ``energy`` (see
    :data:`~experiments.genai.results.ENERGY_KEYS`); a model's part of a shared ledger takes
    ``optical_share`` of the bench and projected energy and ``electronic_share`` of the baseline (``split``
    says how they were chosen)."""
    j_per_image: dict[str, float | None] = {}
    mw_per_tops: dict[str, float | None] = {}
    missing: dict[str, str] = {}
    method: dict[str, str] = {}
    provenance: dict[str, dict[str, float]] = {}
    ops = OPS_PER_MAC * optical_macs
    for key, view in ENERGY_VIEWS.items():
        try:
            s = energy.summary(view)
        except EnergyError as exc:
            j_per_image[key] = mw_per_tops[key] = None
            missing[key] = "; ".join(energy.notes(view)) or str(exc)
            continue
        share = optical_share if view != "baseline" else electronic_share
        j_per_image[key] = s.energy_j * share / images
        mw_per_tops[key] = s.energy_j * share / ops * MW_PER_TOPS_PER_J_PER_OP if ops > 0 else None
        kinds: dict[str, float] = {}
        for t in energy.terms(view):
            e = t.power_w * (s.time_s if t.start_s is None else t.end_s - t.start_s)
            kinds[provenance_kind(t.provenance)] = kinds.get(provenance_kind(t.provenance), 0.0) + e
        provenance[key] = {k: (e / s.energy_j if s.energy_j > 0 else 0.0) for k, e in kinds.items()}
        ranked = sorted(kinds, key=kinds.get, reverse=True)
        if view == "baseline":
            method[key] = "measured CPU (RAPL)" if ranked == ["measured"] else "modelled CPU (W per core x CPU-seconds)"
        elif view == "projected":
            method[key] = "model: sourced device terms at the projected cores' peak op rate"
        else:
            method[key] = " + ".join(ranked)
    notes = [f"{view}: {n}" for view in ENERGY_VIEWS.values() for n in energy.notes(view)]
    if split:
        notes.insert(0, split)
    return {
        "j_per_image": j_per_image,
        "missing": missing,
        "method": method,
        "provenance": provenance,
        "mw_per_tops": mw_per_tops,
        "mw_per_tops_basis": "utilisation-weighted: the view's energy over its whole window / the ops sent to "
                             "optics (1 MAC = 2 ops; 1 mW/TOPS = 1 fJ/op)",
        "images": images,
        "optical_macs": optical_macs,
        "electronic_macs": electronic_macs,
        "electronic_measurement": None if baseline is None else baseline.row(),
        "ledger": ledger_file,
        "notes": notes,
    }


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
           classifier, energy: dict[str, Any]) -> GenerationResult:
    """Classifier readings, quality against the electronic set, metrics.json content (``energy``: its
    energy block, :func:`energy_block`)."""
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
        "energy": energy,
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
             guidance: float | None = None, opu: Any = None, bench: Any = None, out_dir: str | Path | None = None,
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
    ``bench``: the open bench the ``opu`` belongs to: its draw is metered over the optical set and its
    cores projected (without it those two energy figures are None, saying why; an ``opu`` whose ``bench``
    is another one is refused with ``ValueError``); the electronic set's CPU energy is always measured.
    ``out_dir``: write ``grid.png``, ``images.npz``, ``metrics.json`` and ``energy.json`` there
    (atomically; see the module docstring). Everything is validated before anything runs.
    """
    job = _prepare(model_name, n, seed, steps, prompt, label, guidance, batch_size)
    _check_bench(bench, [] if opu is None else [opu])
    if out_dir is not None:
        check_out_dir(Path(out_dir))
    warm_up_macs = _warm_up(job)
    energy = EnergyLedger(label=f"labctl generate {job.name}: {count_phrase(job.n, 'image')}")
    (electronic, e_wall), baseline, e_macs = _measured_electronic(
        [job], lambda: _run_set(job, job.gen, desc=f"{job.name} electronic", progress=progress), warm_up_macs,
        energy)
    optical = None
    if opu is None:
        _electronic_only(energy)
    else:
        runs, _ = _metered_optical(bench, energy, lambda on_step: {job.name: _run_optical(
            job, opu, attention=attention, min_macs=min_macs, progress=progress, on_step=on_step)},
            threaded=False, opus=[opu])
        optical = runs[job.name]
    block = energy_block(energy, job.n, optical_macs=energy.macs, electronic_macs=e_macs[job.name],
                         baseline=baseline)
    result = _build(job, electronic, e_wall, optical, classifier, block)
    result.energy_ledger = energy
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
                      bench: Any = None, out_dir: str | Path | None = None, progress: bool = True,
                      attention: bool = False, min_macs: int = 0, batch_size: int | None = None,
                      classifier=None) -> ParallelResult:
    """Several models at once, one thread per model, model ``i`` on ``opus[i]`` (each OPU belongs to one
    model); ``opus=None``: electronic only.

    Energy (one ledger for the run, ``energy.json`` at the top of ``out_dir``): ``bench`` (the open bench
    of the ``opus``) is metered over the whole optical phase and projected, and the electronic phase's CPU
    energy is measured; each model's figures take its share of the optical MACs (bench, projected) and of
    the electronic MACs (CPU), as its ``metrics.json`` says.

    ``model_names``: a list or a comma-separated string. ``prompt``/``label``/``guidance`` go to the
    conditional models (:class:`PromptError` if none of the models is conditional). Raises, before
    running anything: :class:`NotEnoughOPUsError` (fewer OPUs than models), ``ValueError`` (an OPU object
    given twice, a model listed twice, an OPU on another bench than ``bench``), ``UnknownModelError``,
    ``PromptError``. A model failing while running stops the others and raises :class:`GenerationError`.
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
        _check_bench(bench, opus)
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
    warm_up_macs = sum(_warm_up(job) for job in jobs.values())
    order = list(jobs)
    cancel = threading.Event()
    energy = EnergyLedger(label=f"labctl generate --parallel {','.join(order)}: "
                                f"{count_phrase(sum(j.n for j in jobs.values()), 'image')}")

    def electronic_task(name: str):
        return lambda: _run_set(jobs[name], jobs[name].gen, desc=f"{name} electronic", progress=progress,
                                position=order.index(name), cancel=cancel)

    t0 = time.perf_counter()
    electronic, baseline, e_macs = _measured_electronic(
        list(jobs.values()), lambda: _in_threads({name: electronic_task(name) for name in order}, cancel),
        warm_up_macs, energy)
    e_wall = time.perf_counter() - t0
    optical: dict[str, _OpticalRun | None] = {name: None for name in order}
    o_wall = None
    o_macs = {name: 0 for name in order}
    if opus is None:
        _electronic_only(energy)
    else:
        def optical_task(name: str, opu: Any):
            return lambda: _run_optical(jobs[name], opu, attention=attention, min_macs=min_macs, progress=progress,
                                        position=order.index(name), cancel=cancel)

        t0 = time.perf_counter()
        runs, o_macs = _metered_optical(
            bench, energy, lambda _on_step: _in_threads({name: optical_task(name, opu) for name, opu in zip(order, opus)},
                                                        cancel), threaded=True, opus=opus)
        optical.update(runs)
        o_wall = time.perf_counter() - t0
    total_o, total_e = sum(o_macs.values()), sum(e_macs.values())
    blocks = {}
    for name in order:
        o_share = o_macs[name] / total_o if total_o else 0.0
        e_share = e_macs[name] / total_e if total_e else 0.0
        optical_part = "" if opus is None else \
            f"{o_share:.1%} of the bench and projected energy (its share of the optical MACs) and "
        blocks[name] = energy_block(
            energy, jobs[name].n, optical_macs=o_macs[name], electronic_macs=e_macs[name], baseline=baseline,
            optical_share=o_share, electronic_share=e_share, ledger_file=f"../{ENERGY_FILE}",
            split=f"{name}'s part of the parallel run's ledger: {optical_part}{e_share:.1%} of the CPU energy (its "
                  "share of the electronic MACs; the models ran at once, so the CPU's draw cannot be told apart "
                  "per model); electronic_measurement is the whole electronic phase")
    results = {name: _build(jobs[name], *electronic[name], optical[name], classifier, blocks[name])
               for name in order}

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
            "j_per_image": r.metrics["energy"]["j_per_image"],
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
        "energy": energy_block(energy, total_images, optical_macs=total_o, electronic_macs=total_e,
                               baseline=baseline),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out = ParallelResult(results, metrics, energy_ledger=energy)
    if out_dir is not None:
        with atomic_dir(Path(out_dir)) as tmp:
            for name, r in results.items():
                (tmp / name).mkdir()
                write_outputs(tmp / name, r)
            (tmp / "metrics.json").write_text(dumps_metrics(metrics))
            energy.save(tmp / ENERGY_FILE)
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
