"""What a generation run made: the image sets, their metrics and summaries, and the run's typed errors."""

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
OUTPUT_FILES = ("grid.png", "images.npz", "metrics.json")
#: Top-level keys of a single model's ``metrics.json`` ("optical" and "quality" are null without an OPU).
METRICS_KEYS = ("format", "model", "conditional", "n", "seed", "seeds", "steps", "guidance", "batch_size",
                "prompts", "requested_labels", "electronic", "optical", "quality", "table", "torch_threads",
                "created")
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
