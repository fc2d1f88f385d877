"""Piecewise-linear lookup in one table per column, equal to ``np.interp`` value for value, without its
per-value binary search.

Why: a core's DAC codes come from each input's measured transfer table (``u -> code``), for every input
value of every product. ``np.interp`` binary-searches the table for each value (~60 ns each here: random
activations give its search no locality). Here each value finds its segment by arithmetic: on a grid of
nodes ``i x 2^-m`` (the calibration's u grid) ``x x 2^m`` is exact, so its floor is the segment; on any
other grid, a uniform grid of buckets over the table gives a first guess that a compare corrects. The value
is then formed with ``np.interp``'s own arithmetic (``slope x (x - xp[j]) + fp[j]``, one slope per
segment), so the results are identical.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ColumnTables"]

#: buckets per table segment on a general grid: a bucket then rarely holds a node, so the first guess
#: seldom needs correcting
_BUCKETS_PER_SEGMENT = 4


class ColumnTables:
    """Tables ``(xp[k], fp[k])`` (K, L), each xp[k] strictly increasing and finite; calling it on ``x``
    (..., K) gives ``np.interp(x[..., k], xp[k], fp[k])`` for every column k at once."""

    def __init__(self, xp: np.ndarray, fp: np.ndarray):
        xp = np.array(xp, dtype=np.float64, ndmin=2)
        fp = np.array(fp, dtype=np.float64, ndmin=2)
        if xp.shape != fp.shape or xp.ndim != 2 or xp.shape[1] < 2:
            raise ValueError(f"xp and fp must have the same shape (K, L) with L >= 2; got {xp.shape} and {fp.shape}")
        if not (np.all(np.isfinite(xp)) and np.all(np.isfinite(fp))):
            raise ValueError("lookup tables must be finite")
        if np.any(np.diff(xp, axis=1) <= 0):
            raise ValueError("each table's xp must be strictly increasing")
        k, n = xp.shape
        self.columns, self._n = k, n
        self._xp, self._fp = xp.reshape(-1), fp.reshape(-1)
        slope = np.zeros((k, n))  # the last node's slope is never used: a value there takes fp[-1]
        slope[:, :-1] = (fp[:, 1:] - fp[:, :-1]) / (xp[:, 1:] - xp[:, :-1])
        self._slope = slope.reshape(-1)
        self._row = np.arange(k) * n
        self._lo, self._hi = xp[:, 0].copy(), xp[:, -1].copy()
        step = xp[:, 1] - xp[:, 0]
        binary = np.all(xp[:, 0] == 0) and np.all(np.frexp(step)[0] == 0.5) \
            and np.array_equal(xp, np.arange(n) * step[:, None])
        if binary:  # nodes i x 2^-m: x x 2^m and its floor are exact
            self._scale, self._buckets, self._first = 1.0 / step, n - 1, None
            return
        self._buckets = _BUCKETS_PER_SEGMENT * (n - 1)
        self._scale = self._buckets / (self._hi - self._lo)
        # the segment of each bucket's lower edge, the edge computed as the values' buckets are
        edges = np.arange(self._buckets)[None, :] / self._scale[:, None] + self._lo[:, None]
        first = np.stack([np.searchsorted(xp[i], edges[i], side="right") - 1 for i in range(k)])
        self._first = (np.clip(first, 0, n - 2) + self._row[:, None]).reshape(-1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``np.interp`` of every column of the finite ``x`` (..., K) in its own table: float64, same shape."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.columns,):
            raise ValueError(f"x must have {self.columns} columns (last axis); got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("x must be finite to be looked up")
        cell = x - self._lo if self._first is not None else x * 1.0
        cell *= self._scale
        np.clip(cell, 0, self._buckets - 1, out=cell)
        j = cell.astype(np.int64)
        if self._first is None:
            j += self._row
        else:
            j += np.arange(self.columns) * self._buckets
            j = self._first.take(j)
            last = self._row + (self._n - 2)
            while True:  # a value rounded into the next bucket, or a node inside its bucket: one segment over
                up = (x >= self._xp.take(j + 1)) & (j < last)
                down = (x < self._xp.take(j)) & (j > self._row)
                if not (up.any() or down.any()):
                    break
                j += up
                j -= down
        out = x - self._xp.take(j)
        out *= self._slope.take(j)
        out += self._fp.take(j)
        below, above = x < self._lo, x >= self._hi
        if below.any():
            out = np.where(below, self._fp[self._row], out)
        if above.any():
            out = np.where(above, self._fp[self._row + self._n - 1], out)
        return out
