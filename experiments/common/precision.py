"""The parts of a precision sweep besides running it: its points, products on random and model operands
with their figures, and its plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labctl.opu.interface import OpticalMatmul
from labctl.opu.precision import ErrorStats, error_stats

STATES = ("calibrated", "partial", "uncalibrated")
STATE_STYLE = {"calibrated": "-", "partial": ":", "uncalibrated": "--"}
OPERANDS = ("random", "model")


@dataclass
class Point:
    """One operating point of a sweep and what was measured there."""

    value: float                                     # the swept variable (x)
    label: str
    recalibrated: bool
    status: str = "ok"
    received_dbm: float = float("nan")
    extra: dict[str, float] = field(default_factory=dict)
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)   # state -> operand -> figures
    changes: dict[str, Any] = field(default_factory=dict)   # how its bench differs from the file (a variant)

    def figure(self, state: str, operand: str, key: str) -> float:
        return float(self.results.get(state, {}).get(operand, {}).get(key, float("nan")))


def products(opu: OpticalMatmul, operands: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Run the operands on ``opu``: {"random": figures of the pooled outputs, "model": mean over layers}."""
    out: dict[str, dict[str, Any]] = {}
    measured, exact = [], []
    for a, b in operands["random"]:
        measured.append(np.asarray(opu.matmul(a, b)).ravel())
        exact.append((a @ b).ravel())
    out["random"] = figures(error_stats(np.concatenate(measured), np.concatenate(exact)))
    if operands.get("model"):
        layers = {}
        for name, (a, b) in operands["model"].items():
            layers[name] = figures(error_stats(np.asarray(opu.matmul(a, b)), a @ b))
        out["model"] = {key: float(np.mean([v[key] for v in layers.values()]))
                        for key in ("bits_range", "enob", "nrmse")}
        out["model"]["layers"] = layers
    return out


def figures(st: ErrorStats) -> dict[str, float]:
    """The figures a sweep records for one set of products."""
    return {"bits_range": st.bits_range, "enob": st.enob, "nrmse": st.nrmse, "sigma": st.sigma, "bias": st.bias}


def state_note(p: Any) -> str:
    """What each calibration state of a sweep leaves out (``p``: the sweep's parameters)."""
    notes = ["calibrated: full calibration"]
    if p.partial_removes:
        notes.append("partial: without " + "/".join(p.partial_removes))
    if p.compare_uncalibrated:
        notes.append("uncalibrated: without " + "/".join(p.uncalibrated_removes))
    return ("; ".join(notes)
            + " (crosstalk = thermal-crosstalk solve, floor = modulator floor eps, decoder = affine fit)")



def plot_sweep(path: Path, sweep: str, points: list[Point], p: Any, controller: str) -> None:
    """``precision_<sweep>.png``: bits in both conventions vs the swept variable, one line per operand and
    calibration state. ``p``: the sweep's parameters (m, k, n, model, power_recalibrate, dcf,
    adc_enob_loss and the removed corrections)."""
    import matplotlib  # plotting is optional for the measurements: imported when a plot is made

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if sweep == "power":
        xs = [pt.received_dbm for pt in points]
        xlabel = "received power per channel, full transmission and weight (dBm)"
        how = "recalibrated at each power" if p.power_recalibrate else "calibration at 0 dB, gains rescaled"
        title = f"laser power offsets {', '.join(f'{pt.value:+g}' for pt in points)} dB ({how})"
    elif sweep == "symbol_rate":
        xs = [pt.value / 1e9 for pt in points]
        xlabel, title = "symbol rate (GBd)", "symbol rate (recalibrated at each)"
    elif sweep == "fibre":
        xs = [pt.value for pt in points]
        xlabel = "metro fibre length (km)"
        title = ("fibre length, DCF matched" if p.dcf else "fibre length, DCF fixed") + \
            " (simulated, recalibrated at each)"
    else:
        xs = [pt.value for pt in points]
        xlabel, title = "ADC ENOB (bits)", f"ADC resolution, ENOB = bits - {p.adc_enob_loss:g} (simulated)"
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4))
    operands = [o for o in OPERANDS if any(o in pt.results.get("calibrated", {}) for pt in points)]
    for ax, key, conv in ((axes[0], "bits_range", "log2(range / σ)"), (axes[1], "enob", "(SNR_dB - 1.76) / 6.02")):
        for j, operand in enumerate(operands):
            for state, style in STATE_STYLE.items():
                mask = [not (sweep == "adc" and pt.extra.get("reference")) for pt in points]
                x = [xv for xv, keep in zip(xs, mask) if keep]
                y = [pt.figure(state, operand, key) for pt, keep in zip(points, mask) if keep]
                if not np.any(np.isfinite(y)):
                    continue
                order = np.argsort(x)
                ax.plot(np.asarray(x)[order], np.asarray(y)[order], ("o" if operand == "random" else "s") + style,
                        color=f"C{j}", mfc="white" if state != "calibrated" else None,
                        label=f"{operand}, {state}")
                if sweep == "adc":
                    ref = [(xv, pt) for xv, pt in zip(xs, points) if pt.extra.get("reference")]
                    for xv, pt in ref:
                        first = j == 0 and state == "calibrated"
                        ax.plot([xv], [pt.figure(state, operand, key)], "*", ms=12, color=f"C{j}",
                                mfc="white" if state != "calibrated" else None,
                                label=(f"★ the bench's own ADC ({pt.extra['adc_bits']:g} bit, ENOB "
                                       f"{pt.extra['adc_enob']:g})") if first else None)
        for xv, pt in zip(xs, points):
            if pt.status != "ok" and np.isfinite(xv):
                ax.annotate(pt.status.split(":")[0], (xv, ax.get_ylim()[0]), fontsize=7, color="C3")
            elif pt.status != "ok":
                ax.text(0.02, 0.02, f"{pt.label}: {pt.status[:60]}", transform=ax.transAxes, fontsize=6, color="C3")
        if key == "bits_range":
            ax.axhline(6, color="k", lw=0.5, ls=":")
        ax.set(xlabel=xlabel, ylabel=f"effective bits, {conv}", title=title)
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(handles)), fontsize=7, frameon=False)
    fig.suptitle(f"precision of optical products on {controller}"
                 f": random ({p.m}x{p.k})@({p.k}x{p.n}) uniform, model = "
                 f"{p.model or 'off'} UNet layers (mean over layers)\n" + state_note(p), fontsize=9)
    rows = -(-len(handles) // 4) if handles else 0
    fig.tight_layout(rect=(0, 0.035 * rows + 0.01, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)

def plot_ablation(path: Path, base: Point) -> None:
    """``precision_ablation.png``: bits at the bench's own point with each correction removed alone."""
    import matplotlib  # plotting is optional for the measurements: imported when a plot is made

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    states = list(base.results)
    if len(states) < 2:
        return
    operands = [o for o in OPERANDS if o in base.results[states[0]]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / max(1, len(operands))
    for ax, key, conv in ((axes[0], "bits_range", "log2(range / σ)"), (axes[1], "enob", "(SNR_dB - 1.76) / 6.02")):
        for j, operand in enumerate(operands):
            ax.bar(np.arange(len(states)) + (j - (len(operands) - 1) / 2) * width,
                   [base.figure(s, operand, key) for s in states], width=width, color=f"C{j}", label=operand)
        ax.set_xticks(np.arange(len(states)), [s.replace("_", " ") for s in states], fontsize=8)
        ax.set(ylabel=f"effective bits, {conv}", title="corrections removed at the bench's operating point")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


