"""Signed values on non-negative light: per-tensor scaling, offset encoding and its exact decode.

Light intensities are >= 0, so a signed operand is first scaled into [-1, 1] (one scale factor per tensor,
kept digitally) and then **offset-encoded** (docs/opu_design.md, PHYSICS.md section 3): ``x' = (1 + x)/2``
in [0, 1]. For one chunk of K terms the photodiode adds ``sum x'w' = (K + sum x + sum w + sum xw)/4``,
hence the exact decode

    sum xw = 4 sum x'w' - K - sum x - sum w,

where ``sum x`` and ``sum w`` are exact *digital* sums of the encoded operands (the offset terms, known
before anything is sent), never of the product.

Values outside the encodable range are clipped with an :class:`EncodingRangeWarning` and the number of
clipped values is returned; NaN or infinite inputs raise ``ValueError``. Torch tensors are accepted at
the edge (converted with ``np.asarray(t.detach().cpu())``; torch is never imported here).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Clipped",
    "EncodingRangeWarning",
    "Scaled",
    "as_float_array",
    "clip_to_range",
    "offset_decode",
    "scale_to_unit",
]


class EncodingRangeWarning(UserWarning):
    """Values fell outside the encodable range and were clipped (the warning gives the count)."""


class Clipped(NamedTuple):
    """Values brought into range, and how many of them had to be clipped."""

    values: np.ndarray
    n_clipped: int


class Scaled(NamedTuple):
    """A tensor scaled into [-1, 1]: ``original ~= values * scale``; ``n_clipped`` values were clipped."""

    values: np.ndarray
    scale: float
    n_clipped: int


def as_float_array(x: Any, name: str = "x", dtype=np.float64) -> np.ndarray:
    """``x`` (array-like or torch tensor) as a float NumPy array; NaN/inf raise ``ValueError``."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} is complex; only real values can be encoded as light intensities")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); they cannot be encoded")
    return arr


def clip_to_range(x: Any, lo: float = -1.0, hi: float = 1.0, *, name: str = "x") -> Clipped:
    """Clip ``x`` to [lo, hi]; warn (:class:`EncodingRangeWarning`) with the count if anything was clipped."""
    arr = as_float_array(x, name)
    outside = (arr < lo) | (arr > hi)
    n = int(np.count_nonzero(outside))
    if n:
        warnings.warn(
            f"{name}: {n} of {arr.size} value(s) outside the encodable range [{lo:g}, {hi:g}] "
            f"(they span [{float(arr.min()):g}, {float(arr.max()):g}]) were clipped",
            EncodingRangeWarning,
            stacklevel=3,
        )
        arr = np.clip(arr, lo, hi)
    return Clipped(arr, n)


def scale_to_unit(x: Any, scale: float | None = None, *, name: str = "x") -> Scaled:
    """Scale a tensor into [-1, 1] with one factor: ``values = x / scale``.

    With ``scale=None`` the factor is ``max|x|`` (1 for an all-zero tensor), so nothing is clipped.
    A given ``scale`` (e.g. a fixed full scale from calibration) must be > 0; values beyond it are clipped
    with a warning and counted.
    """
    arr = as_float_array(x, name)
    if scale is None:
        peak = float(np.max(np.abs(arr))) if arr.size else 0.0
        scale = peak if peak > 0 else 1.0
        values = np.asarray(np.clip(arr / scale, -1.0, 1.0))  # the clip guards the last ulp of max|x|/max|x|
        return Scaled(values, scale, 0)
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale for {name} must be a finite number > 0, got {scale!r}")
    values, n = clip_to_range(arr / scale, name=name)
    return Scaled(values, scale, n)


def offset_decode(lane_sum: Any, sum_x: Any, sum_w: Any, k: int) -> np.ndarray:
    """Exact decode of one K-term chunk: ``sum xw = 4 sum x'w' - K - sum x - sum w``.

    ``lane_sum`` is the measured ``sum x'w'`` (in units of one full-scale channel product),
    ``sum_x``/``sum_w`` the digital sums of the signed operands of the chunk (as sent, after clipping), ``k``
    the number of terms in the chunk, padding included: a padded term has x = w = 0, i.e.
    x' = w' = 1/2, contributes 1/4 to the lane sum and 4/4 - 1 - 0 - 0 = 0 to the decode.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k (terms per chunk) must be an integer >= 1, got {k!r}")
    return 4.0 * np.asarray(lane_sum, dtype=float) - float(k) - np.asarray(sum_x, float) - np.asarray(sum_w, float)
