"""Adaptive refinement: after each pass, new values of the swept parameter between the neighbours of a
feature (minimum, maximum or knee) of a result, so the points gather where the curve is interesting.

The new values are a function of the finished points' results only, and those of their seeds, so a
resumed campaign computes the same refinement and finds its points already done.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from labctl.campaign.spec import Adaptive, Campaign, Point, make_point


def curve(adaptive: Adaptive, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(x, mean result over repeats) of the complete points, sorted by x."""
    groups: dict[float, list[float]] = defaultdict(list)
    for record in records:
        value = record.get("results", {}).get(adaptive.result)
        if record["status"] == "complete" and isinstance(value, (int, float)) and math.isfinite(value):
            groups[float(record["values"][adaptive.param])].append(float(value))
    xs = np.array(sorted(groups))
    return xs, np.array([np.mean(groups[x]) for x in xs])


def feature_index(adaptive: Adaptive, xs: np.ndarray, ys: np.ndarray) -> int:
    """Index of the feature on the curve: its minimum, maximum, or knee (the largest divided second
    difference in magnitude, i.e. the sharpest change of slope)."""
    if adaptive.feature == "min":
        return int(np.argmin(ys))
    if adaptive.feature == "max":
        return int(np.argmax(ys))
    slopes = np.diff(ys) / np.diff(xs)
    second = np.abs(np.diff(slopes) / ((xs[2:] - xs[:-2]) / 2))
    return int(np.argmax(second)) + 1


def refine(campaign: Campaign, records: list[dict[str, Any]], known: list[Point]) -> list[Point]:
    """The next round's points: ``points`` new values inside each interval next to the feature (none when there is no adaptive sweep, too few results to place a feature,
    or no new value left between the feature's neighbours)."""
    adaptive = campaign.spec.sweep.adaptive
    if adaptive is None:
        return []
    keys = {p.key for p in known}  # the rounds so far only: a resumed campaign refines as the first run did
    xs, ys = curve(adaptive, [r for r in records if r["key"] in keys])
    if len(xs) < 3:
        return []
    i = feature_index(adaptive, xs, ys)
    candidates = [x for low, high in ((xs[max(i - 1, 0)], xs[i]), (xs[i], xs[min(i + 1, len(xs) - 1)]))
                  if low < high for x in np.linspace(low, high, adaptive.points + 2)[1:-1]]
    present = set(xs.tolist()) | {float(p.values[adaptive.param]) for p in known}
    new = [float(x) for x in candidates if float(x) not in present]
    points = []
    for value in new:
        for repeat in range(campaign.spec.repeats):
            points.append(make_point(campaign.spec, len(known) + len(points), {adaptive.param: value}, repeat))
    return points


__all__ = ["curve", "feature_index", "refine"]
