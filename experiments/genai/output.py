"""Writing a generation run's outputs (``grid.png``, ``images.npz``, ``metrics.json``, ``energy.json``)
atomically: into a temporary sibling directory renamed to the output directory only when everything is written."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np

from labctl.energy.report import plot_path

from .results import (
    ENERGY_FILE,
    FORMAT,
    GRID_MAX,
    OUTPUT_FILES,
    PARALLEL_FORMAT,
    GenerationResult,
    OutputDirError,
    count_phrase,
)


def json_safe(value):
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


def dumps_metrics(metrics: dict) -> str:
    return json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n"


def _is_energy_plot(folder: Path, name: str) -> bool:
    """Whether ``name`` is a plot ``labctl energy report <folder>/energy.json`` wrote (``stem.png``,
    ``stem-1.png``, ...)."""
    stem = plot_path(folder / ENERGY_FILE).stem
    return re.fullmatch(re.escape(stem) + r"(-\d+)?\.png", name) is not None


def is_earlier_output(folder: Path) -> bool:
    """True if ``folder`` holds only what this module writes (single or parallel layout) and the energy
    report's plots of its ledger."""
    try:
        fmt = json.loads((folder / "metrics.json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return False
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            if fmt != PARALLEL_FORMAT or not is_earlier_output(entry):
                return False
        elif entry.name not in OUTPUT_FILES and not _is_energy_plot(folder, entry.name):
            return False
    return fmt in (FORMAT, PARALLEL_FORMAT)


def check_out_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.is_symlink():
        raise OutputDirError(f"{out_dir} is a symbolic link; give a real directory for --out")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputDirError(f"{out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not is_earlier_output(out_dir):
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
def atomic_dir(out_dir: Path):
    """Yield a temporary sibling of ``out_dir``; rename it to ``out_dir`` at the end (replacing an earlier
    output); on any failure remove it and leave ``out_dir`` as it was."""
    out_dir = check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_sibling(out_dir, "partial")
    try:
        yield tmp
        check_out_dir(out_dir)  # still safe to replace?
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


def write_outputs(folder: Path, result: GenerationResult) -> None:
    write_grid(folder / "grid.png", result)
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
    (folder / "metrics.json").write_text(dumps_metrics(result.metrics))
    if result.energy_ledger is not None:  # a model of a parallel run: the run's ledger is one level up
        result.energy_ledger.save(folder / ENERGY_FILE)


def write_grid(path: Path, result: GenerationResult) -> None:
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
    title = f"{result.model}: {count_phrase(m['n'], 'image')}, {count_phrase(m['steps'], 'step')}"
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
