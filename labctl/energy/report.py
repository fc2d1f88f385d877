"""Energy report of a run: an itemised table (with a provenance column) and a stacked-bar plot per view.

The report always shows the bench and projected views and the electronic baseline; a view the run did not
record is listed with the reason, never left out silently. Powers are printed with SI prefixes, since the
bench draws watts to kilowatts and integrated optics milliwatts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from labctl.energy.ledger import VIEWS, EnergyLedger, ViewSummary
from labctl.energy.provenance import EnergyError
from labctl.store import free_path

_PREFIXES = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
             (1e-12, "p"), (1e-15, "f"), (1e-18, "a"), (1e-21, "z")]

VIEW_TITLES = {
    "bench": "bench (instruments on the table)",
    "projected": "projected (integrated optoelectronics)",
    "baseline": "baseline (electronic)",
}


def format_si(value: float | None, unit: str, digits: int = 4) -> str:
    """``value`` with an SI prefix, e.g. ``format_si(1234, "W") == "1.234 kW"``; None prints as "n/a"."""
    if value is None:
        return "n/a"
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale * 0.9995:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    scale, prefix = _PREFIXES[-1]
    return f"{value / scale:.{digits}g} {prefix}{unit}"


def _fixed(value: float | None, unit: str) -> str:
    """A figure kept in one unit (mW/TOPS, TOPS) so runs compare at a glance: no exponent below 1e9."""
    if value is None:
        return "n/a"
    return f"{value:,.0f} {unit}" if 1e4 <= abs(value) < 1e9 else f"{value:.4g} {unit}"


@dataclass(frozen=True)
class EnergyReport:
    """The views of one ledger: a summary per recorded view, and why the others are missing."""

    label: str
    summaries: dict[str, ViewSummary]
    missing: dict[str, str]
    notes: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_ledger(cls, ledger: EnergyLedger) -> EnergyReport:
        summaries, missing = {}, {}
        for view in VIEWS:
            if not ledger.terms(view):
                missing[view] = "not recorded in this run"
                continue
            try:
                summaries[view] = ledger.summary(view)
            except EnergyError as exc:
                missing[view] = str(exc)
        if not summaries:
            raise EnergyError("the ledger has no power terms in any view; there is nothing to report")
        return cls(label=ledger.label, summaries=summaries, missing=missing,
                   notes={v: ledger.notes(v) for v in VIEWS if ledger.notes(v)})

    def _figures(self, s: ViewSummary) -> list[tuple[str, str]]:
        rows = [("time (window)", f"{format_si(s.time_s, 's')} ({s.window_basis})"), ("energy", format_si(s.energy_j, "J")),
                ("mean power", format_si(s.mean_power_w, "W")),
                ("MACs sent to optics", f"{s.macs:.6g}"), ("ops (1 MAC = 2 ops)", f"{s.ops:.6g}")]
        if s.no_ops:
            rows.append(("utilisation-weighted", s.no_ops))
        else:
            rows += [("utilisation-weighted TOPS", _fixed(s.tops, "TOPS")),
                     ("utilisation-weighted J/op", format_si(s.j_per_op, "J/op")),
                     ("utilisation-weighted mW/TOPS", _fixed(s.mw_per_tops, "mW/TOPS"))]
        if s.no_peak:
            rows.append(("at peak", s.no_peak))
        else:
            rows += [("at peak: power while computing", f"{format_si(s.peak_power_w, 'W')} ({s.peak_power_basis})"),
                     ("at peak: op rate", f"{_fixed(s.peak_tops, 'TOPS')} ({s.peak_rate_basis})"),
                     ("at peak J/op", format_si(s.peak_j_per_op, "J/op")),
                     ("at peak mW/TOPS", _fixed(s.peak_mw_per_tops, "mW/TOPS"))]
        return rows

    def _item_rows(self, s: ViewSummary) -> list[list[str]]:
        rows = []
        for d in s.devices:
            share = d.energy_j / s.energy_j if s.energy_j > 0 else 0.0
            per_op = format_si(d.energy_j / s.ops, "J/op") if s.ops else "n/a"
            rows.append([d.device, format_si(d.mean_power_w, "W"), format_si(d.energy_j, "J"), per_op,
                         f"{100 * share:.1f} %", "; ".join(d.provenance)])
        rows.append(["total", format_si(s.mean_power_w, "W"), format_si(s.energy_j, "J"),
                     format_si(s.j_per_op, "J/op"), "100.0 %" if s.energy_j > 0 else "0.0 %", ""])
        return rows

    HEADER = ["device", "mean power", "energy", "energy/op", "share", "provenance"]

    def to_markdown(self) -> str:
        """The report as Markdown: one itemised table and one figure list per view."""
        out = [f"# Energy report{': ' + self.label if self.label else ''}", "",
               "1 MAC = 2 ops. 1 mW/TOPS = 1 fJ/op. Utilisation-weighted: energy over the whole window / ops; "
               "at peak: power while computing / peak op rate.", ""]
        for view in VIEWS:
            out.append(f"## {VIEW_TITLES[view]}")
            out.append("")
            out += [f"> {n}" for n in self.notes.get(view, [])] + ([""] if view in self.notes else [])
            if view in self.missing:
                out += [f"_{self.missing[view]}_", ""]
                continue
            s = self.summaries[view]
            out.append("| " + " | ".join(self.HEADER) + " |")
            out.append("|" + "---|" * len(self.HEADER))
            out += ["| " + " | ".join(r) + " |" for r in self._item_rows(s)]
            out.append("")
            out += [f"- {k}: {v}" for k, v in self._figures(s)]
            out.append("")
        return "\n".join(out)

    def to_text(self) -> str:
        """The report as a plain-text table for a terminal."""
        out = [f"Energy report{': ' + self.label if self.label else ''}",
               "1 MAC = 2 ops; 1 mW/TOPS = 1 fJ/op; utilisation-weighted = energy over the window / ops; "
               "at peak = power while computing / peak op rate"]
        for view in VIEWS:
            out += ["", f"[{VIEW_TITLES[view]}]"] + [f"  note: {n}" for n in self.notes.get(view, [])]
            if view in self.missing:
                out.append(f"  {self.missing[view]}")
                continue
            s = self.summaries[view]
            rows = [self.HEADER] + self._item_rows(s)
            widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEADER) - 1)]
            for r in rows:
                out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])
            key_width = max(len(k) for k, _ in self._figures(s))
            out += [f"  {k.ljust(key_width)}  {v}" for k, v in self._figures(s)]
        return "\n".join(out)

    def plot(self, path: str | Path) -> Path:
        """Write a stacked bar of energy by device, one panel per recorded view, to ``path`` (PNG); never
        replaces an existing file: a taken name becomes ``name-1.png``, ``name-2.png``... Returns the path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        views = [v for v in VIEWS if v in self.summaries]
        fig, axes = plt.subplots(1, len(views), figsize=(4.2 * len(views), 4.5), squeeze=False)
        for ax, view in zip(axes[0], views):
            s = self.summaries[view]
            per_op = s.ops > 0
            bottom = 0.0
            for d in s.devices:
                value = d.energy_j / s.ops * 1e15 if per_op else d.energy_j
                ax.bar([0], [value], bottom=[bottom], label=f"{d.device} ({'/'.join(d.kinds)})")
                bottom += value
            ax.set_xticks([0], [view])
            ax.set_ylabel("energy per op (fJ/op = mW/TOPS)" if per_op else "energy (J); no ops recorded")
            ax.set_title(VIEW_TITLES[view], fontsize=9)
            ax.legend(fontsize=7)
        fig.suptitle("utilisation-weighted energy by device (1 MAC = 2 ops; fJ/op = mW/TOPS)", fontsize=9)
        fig.tight_layout()
        while True:
            candidate = free_path(Path(path))
            try:
                with open(candidate, "xb") as fh:  # exclusive: a name taken since free_path looked is retried
                    fig.savefig(fh, format="png")
                break
            except FileExistsError:
                continue
        plt.close(fig)
        return candidate


def plot_path(run: str | Path) -> Path:
    """Where the plot of a run goes by default: ``<stem>-energy.png`` next to the run's file."""
    run = Path(run)
    stem = run.name[: -len(".energy.json")] if run.name.endswith(".energy.json") else run.stem
    return run.with_name(f"{stem}-energy.png")


def report_file(run: str | Path, *, markdown: bool = False) -> tuple[str, Path]:
    """Read the energy ledger of ``run`` (results file or JSON sidecar), return the table and the plot path."""
    report = EnergyReport.from_ledger(EnergyLedger.load(run))
    written = report.plot(plot_path(run))
    return (report.to_markdown() if markdown else report.to_text()), written


__all__ = ["EnergyReport", "VIEW_TITLES", "format_si", "plot_path", "report_file"]
