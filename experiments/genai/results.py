"""What a generation run made: the image sets, their metrics, energy and summaries, and the run's typed errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .models import GenAIError
from .quality import format_table

#: ``metrics.json`` "format" of :func:`generate` and :func:`generate_parallel` outputs.
FORMAT = "labctl-generate/1"
PARALLEL_FORMAT = "labctl-generate-parallel/1"
#: The run's energy ledger (``labctl energy report <out>/energy.json`` prints it); one per run: a parallel
#: run has it at the top of its output only.
ENERGY_FILE = "energy.json"
OUTPUT_FILES = ("grid.png", "images.npz", "metrics.json", ENERGY_FILE)
#: Top-level keys of a single model's ``metrics.json`` ("optical" and "quality" are null without an OPU;
#: "energy": :data:`ENERGY_KEYS`).
METRICS_KEYS = ("format", "model", "conditional", "n", "seed", "seeds", "steps", "guidance", "batch_size",
                "prompts", "requested_labels", "electronic", "optical", "quality", "table", "energy",
                "torch_threads", "created")
#: The three energy-per-image figures of ``metrics.json`` -> the energy ledger's view each comes from:
#: what the bench drew over the optical set (bench clock), what integrated optoelectronics would draw for
#: the same optical MACs (model, at peak rate), what this machine's CPU drew making the same images
#: electronically (measured with RAPL, else modelled and labelled so).
ENERGY_VIEWS = {"optical_bench": "bench", "optical_projected": "projected", "electronic": "baseline"}
#: Keys of the ``energy`` block: ``j_per_image`` (:data:`ENERGY_VIEWS` -> J per image or null),
#: ``missing`` (why a figure is null), ``method`` (how each figure was obtained), ``provenance`` (share
#: of each figure's energy that is measured / datasheet / model), ``mw_per_tops`` (utilisation-weighted:
#: the view's energy / the ops sent to optics, 1 MAC = 2 ops; null without optical ops) and
#: ``mw_per_tops_basis``, ``images``, ``optical_macs`` (the ledger's: what the optics did, tiling padding
#: included when the OPU reports it), ``electronic_macs`` (the electronic set's Linear/Conv2d MACs, counted
#: as it ran: the CPU baseline's ops), ``electronic_measurement`` (the CPU measurement: method,
#: energy, wall and CPU seconds, why it is modelled), ``ledger`` (file name, relative to the
#: ``metrics.json``), ``notes`` (the ledger's notes and how a parallel run was split per model).
ENERGY_KEYS = ("j_per_image", "missing", "method", "provenance", "mw_per_tops", "mw_per_tops_basis", "images",
               "optical_macs", "electronic_macs", "electronic_measurement", "ledger", "notes")
#: Arrays of ``images.npz``; the ``optical*``, ``psnr_db`` and ``ssim`` ones only when an OPU was given, the
#: ``*_labels`` and ``*_confidence`` ones only when the digit classifier reads the images (8 x 8 grey).
NPZ_KEYS = ("electronic", "optical", "seeds", "requested_labels", "prompts", "electronic_labels",
            "electronic_confidence", "optical_labels", "optical_confidence", "psnr_db", "ssim")
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


def count_phrase(k: int, noun: str) -> str:
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
    energy_ledger: Any = None  # labctl.energy.EnergyLedger of the run (None for a model of a parallel run)
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
        head = (f"{self.model}: {count_phrase(self.metrics['n'], 'image')}, {count_phrase(self.metrics['steps'], 'step')}, seeds "
                f"{int(self.seeds[0])}..{int(self.seeds[-1])}")
        throughput_cols = ["set", "images", "wall_s", "images_per_s", "optical_macs", "optical_macs_per_s"]
        if self.optical is None:
            quality_cols, throughput_cols = ["set", "confidence", "accuracy"], throughput_cols[:4]
        parts = [head, format_table(self.throughput_rows(), throughput_cols, HEADERS)]
        parts.append(format_table(self.table, quality_cols, HEADERS))
        note = self.metrics["electronic"].get("classifier_note")
        if note:
            parts.append(f"note: {note}")
        parts.append(energy_text(self.metrics["energy"], optical=self.optical is not None))
        return "\n\n".join(parts)


@dataclass
class ParallelResult:
    """What :func:`generate_parallel` made: one :class:`GenerationResult` per model and the throughput."""

    results: dict[str, GenerationResult]
    metrics: dict[str, Any]
    energy_ledger: Any = None  # labctl.energy.EnergyLedger of the whole run
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
        ledger = None if self.out_dir is None else self.out_dir / self.metrics["energy"]["ledger"]
        return "\n\n".join([format_table(self.rows(), cols, HEADERS), energy_table(self.metrics, ledger)])


# -- energy ---------------------------------------------------------------------------------------------

#: How each energy figure is labelled when printed.
ENERGY_LABELS = {"optical_bench": "optical, bench", "optical_projected": "optical, projected",
                 "electronic": "electronic (CPU)"}


def _joules(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} J"


def energy_text(block: dict[str, Any], optical: bool = True) -> str:
    """The J/image figures of one run (without an ``optical`` set: the electronic one only), with how each
    was obtained or why it is missing."""
    lines = [f"energy per image ({block['ledger']}: the itemised ledger)"]
    for key, label in ENERGY_LABELS.items():
        if not optical and key != "electronic":
            continue
        value = block["j_per_image"][key]
        how = block["method"].get(key) if value is not None else block["missing"].get(key, "")
        lines.append(f"  {label:<20} {_joules(value):>10}  ({how})")
    return "\n".join(lines)


def energy_table(metrics: dict[str, Any], where: Path | None = None) -> str:
    """One table of J/image per model of a parallel run (and the whole run), with what the views mean and
    where they come from; ``where``: the run's ledger file, if written."""
    total = metrics["energy"]
    keys = list(ENERGY_LABELS) if metrics["total"].get("optical_wall_s") is not None else ["electronic"]
    rows = [{"model": name, **m["j_per_image"]} for name, m in metrics["per_model"].items()]
    rows.append({"model": "all models", **total["j_per_image"]})
    headers = {k: f"J/image {v}" for k, v in ENERGY_LABELS.items()}
    meaning = {"optical_bench": "bench: what the instruments on the table drew over the optical run",
               "optical_projected": "projected: the same optical MACs on integrated optoelectronics at peak rate",
               "electronic": "electronic: this machine's CPU making the same images with torch"}
    lines = [format_table(rows, ["model", *keys], headers), ""]
    lines += [f"{meaning[k]} ({total['method'].get(k) or total['missing'].get(k, '')})" for k in keys]
    lines.append("per model: its share of the optical MACs (bench, projected) and of the electronic MACs (CPU)"
                 + ("" if where is None else f"; itemised: labctl energy report {where}"))
    return "\n".join(lines)
