"""The speed targets of one ``make bench`` run side by side: each ratio with its target and whether it is met,
and each benchmark's peak memory against the run recorded before it (the per-benchmark results files the run
replaces), so a peak that grew shows up next to the times that moved."""

from __future__ import annotations

import json
from pathlib import Path

#: a peak counts as grown above this multiple of the previous run's (resident-set peaks move by a few percent
#: between runs of the same code: allocator reuse, the interpreter's own pages)
PEAK_GROWTH_TOLERANCE = 1.10


def targets(results: dict) -> list[dict]:
    """One row per target: what is measured, its value, the target and whether it is met."""
    rows = []
    core = results.get("core")
    if core:
        for key, label in (("steady", "core steady product / noise floor"), ("first", "core first call / noise floor")):
            rows.append(_row(label, core["over_floor"][key], f"<= {core['targets'][key]:g}", core["met"][key]))
        rows.append(_row("core steady product / the model's own noise draws", core["over_draws"]["steady"], "-", None))
    genai = results.get("genai")
    if genai:
        from benchmarks.bench_genai import GENERATION_TARGET, meets_generation_target, meets_parallel_target
        for name, row in genai["models"].items():
            ratio = row["optical_over_electronic_time"]
            rows.append(_row(f"{name} optical / electronic time", ratio, f"<= {GENERATION_TARGET:g}",
                             meets_generation_target(ratio)))
        speed = genai["parallel_speedup"]
        rows.append(_row("three models on three core processes / one after another", speed["processes"],
                         f">= {speed['target']:g}", meets_parallel_target(speed["processes"])))
    wave = results.get("waveform")
    if wave:
        speed = wave["speed"]
        if "like_for_like" in speed:
            like, full = speed["like_for_like"], speed["full_chain"]
            rows.append(_row("OptiCommPy / labctl, like-for-like chain", like["opticommpy_over_labctl"],
                             like["target"], like["met"]))
            rows.append(_row("labctl full chain / OptiCommPy like-for-like",
                             full["labctl_full_over_opticommpy_like_for_like"], full["target"], full["met"]))
    net = results.get("network")
    if net:
        t = net["throughput"]
        rows.append(_row("network: two edges / one edge", t["two_edges_median"], f">= {t['aim_two_edges']:g}",
                         t["two_edges_met"]))
    return rows


def _row(measure: str, value: float, target: str, met: bool | None) -> dict:
    return {"measure": measure, "value": float(value), "target": target, "met": met}


def peaks(results: dict) -> dict[str, float]:
    """The peak memory (MB) each benchmark reports, by a name that says where it comes from."""
    out: dict[str, float] = {}
    core = results.get("core")
    if core:
        out.update({f"core {k}": v for k, v in core["peak_mb"].items()})
    opu = results.get("opu")
    if opu:
        for shape in opu.get("weight_stationary", {}).get("shapes", []):
            for call in ("steady", "first"):
                if call in shape and "peak_mb" in shape[call]:
                    out[f"opu {shape.get('shape', '?')} {call}"] = shape[call]["peak_mb"]
    genai = results.get("genai")
    if genai:
        out.update({f"genai {name}": row["memory"]["peak_rss_mb"] for name, row in genai["models"].items()})
    wave = results.get("waveform")
    if wave:
        out.update({f"waveform {k}": v / 1e6 for k, v in wave["speed"]["peak_memory_bytes"].items()})
    net = results.get("network")
    if net:
        out.update({f"network {k}": v for k, v in net["throughput"]["peak_rss_mb"].items()})
    campaign = results.get("campaign")
    if campaign:
        out["campaign overhead"] = campaign["overhead"]["memory"]["peak_rss_mb"]
    return {k: float(v) for k, v in out.items() if v is not None}


def previous_results(folder: Path) -> dict:
    """The last recorded run of each benchmark (its results file in ``folder``), keyed as ``make bench``'s
    results are; a file that is missing or unreadable is left out."""
    out = {}
    for key in ("core", "opu", "genai", "waveform", "network", "campaign"):
        try:
            out[key] = json.loads((folder / f"results_{key}.json").read_text())
        except (OSError, ValueError):
            continue
    return out


def peak_changes(now: dict[str, float], before: dict[str, float]) -> list[dict]:
    """Each peak now against the previous run's, where both have it: grown means above ``PEAK_GROWTH_TOLERANCE``
    x the previous."""
    return [{"peak": k, "mb": now[k], "previous_mb": before[k], "grew": now[k] > PEAK_GROWTH_TOLERANCE * before[k]}
            for k in now if k in before]


def report(rows: list[dict], changes: list[dict]) -> str:
    lines = ["targets of this run:", f"  {'measure':<58}{'value':>8}  {'target':<10} met"]
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(f"  {r['measure']:<58}{r['value']:>8.2f}  {r['target']:<10} {met}")
    grown = [c for c in changes if c["grew"]]
    lines.append(f"peak memory against the previous run: {len(changes)} peaks compared, "
                 f"{len(grown)} grew by more than {PEAK_GROWTH_TOLERANCE - 1:.0%}")
    for c in grown:
        lines.append(f"  {c['peak']}: {c['previous_mb']:.1f} -> {c['mb']:.1f} MB")
    return "\n".join(lines)
