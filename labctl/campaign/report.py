"""The end of a campaign: a figure per swept parameter and a Markdown summary table.

Each figure plots the campaign's numeric results (complete points; those ``report.results`` names, or
the first few in name order) against one swept parameter, every measured point as a marker and the mean
over the other parameters and repeats as a line.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from labctl.campaign.spec import Campaign

#: Most results drawn in a figure or shown in the table (the first ones in name order; all are in the file).
MAX_RESULTS = 6


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def numeric_results(records: list[dict[str, Any]]) -> list[str]:
    """Names of the results that are finite numbers in every complete point."""
    complete = [r for r in records if r["status"] == "complete"]
    if not complete:
        return []
    names = sorted(set.intersection(*(set(r["results"]) for r in complete)))
    return [n for n in names if all(_number(r["results"][n]) for r in complete)]


def shown_results(campaign: Campaign, records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The results the figures and the table show: those the campaign file's ``report.results`` names (in its
    order), else the first :data:`MAX_RESULTS` in name order; and the named ones no complete point has as
    a number (said in the summary)."""
    numeric = numeric_results(records)
    named = campaign.spec.report.results
    if named is None:
        return numeric[:MAX_RESULTS], []
    return [n for n in named if n in numeric], [n for n in named if n not in numeric]


def _fmt(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if _number(value):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def summary_table(campaign: Campaign, records: list[dict[str, Any]]) -> str:
    """A Markdown table, one row per measured point: swept values, repeat, seed, status, results."""
    results, missing = shown_results(campaign, records)
    head = ["point", *campaign.swept, "repeat", "seed", "status", *results]
    lines = [f"# Campaign {campaign.name}: {campaign.spec.experiment}", "",
             f"{sum(r['status'] == 'complete' for r in records)} of {len(records)} points complete, "
             f"{sum(r['status'] != 'complete' for r in records)} failed.", ""]
    if missing:
        lines += [f"report.results names {', '.join(missing)}: no complete point has such a numeric result "
                  f"(numeric results: {', '.join(numeric_results(records)) or 'none'}).", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [r["index"], *(r["values"].get(n) for n in campaign.swept), r["repeat"], r["seed"],
                 r["status"], *(r["results"].get(n, "") for n in results)]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plot_parameter(campaign: Campaign, records: list[dict[str, Any]], name: str, path: Path) -> bool:
    """Figure of the shown results (:func:`shown_results`) against swept parameter ``name``; False if there is nothing to draw
    (no complete point, or the parameter is not a number)."""
    complete = [r for r in records if r["status"] == "complete" and _number(r["values"].get(name))]
    results, _ = shown_results(campaign, records)
    if not complete or not results:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(results))
    rows = math.ceil(len(results) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, result in zip(axes.flat, results):
        xs = [r["values"][name] for r in complete]
        ys = [r["results"][result] for r in complete]
        ax.plot(xs, ys, "o", ms=4, alpha=0.6)
        groups: dict[float, list[float]] = defaultdict(list)
        for x, y in zip(xs, ys):
            groups[x].append(y)
        order = sorted(groups)
        ax.plot(order, [sum(groups[x]) / len(groups[x]) for x in order], "-", lw=1.5)
        ax.set(xlabel=name, ylabel=result)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(results):]:
        ax.set_visible(False)
    fig.suptitle(f"{campaign.name}: {campaign.spec.experiment} vs {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(out_dir: Path, campaign: Campaign, records: list[dict[str, Any]]) -> list[Path]:
    """Write ``summary.md`` and ``figure-<parameter>.png`` for each swept parameter; return their paths."""
    written = []
    summary = out_dir / "summary.md"
    summary.write_text(summary_table(campaign, records), encoding="utf-8")
    written.append(summary)
    for name in campaign.swept:
        path = out_dir / f"figure-{_safe(name)}.png"
        if plot_parameter(campaign, records, name, path):
            written.append(path)
    return written


__all__ = ["numeric_results", "plot_parameter", "shown_results", "summary_table", "write_report"]
