"""Map a matrix product onto an optical core of L lanes x K wavelength channels x S symbol slots.

A **lane** is one photodetector and the K wavelength channels that reach it (docs/opu_design.md). In
symbol slot s, channel k of lane l carries ``x'_k[s] w'_k[s]`` and the photodiode adds the K channels, so
each slot computes one K-term chunk ``sum_k x'_k w'_k`` of one output element. A product
``A (... x M x K') @ B (... x K' x N)`` has ``M N`` outputs per batch element, each a dot product of length
K' cut into ``C = ceil(K'/K)`` chunks; the C chunks of an output occupy C consecutive slots of one lane and
are added digitally after the offset decode (:func:`labctl.opu.encoding.offset_decode`).

Operand placement: the left operand ``A`` (inputs / activations) is modulated at the **edge**
transmitter (stream "x"), the right operand ``B`` (weights) at the **center** (stream "w"). For a torch
``Linear`` layer ``y = x W^T`` this means ``A = x`` and ``B = W^T``.

Two lane layouts:

* ``shared_inputs=False`` (default): each lane has its own edge channels; the outputs are dealt to the
  lanes in contiguous blocks.
* ``shared_inputs=True``: one edge transmitter feeds every lane (a power split after the mux); in every
  slot all lanes see the same input chunk and differ in the weight column (lane l computes the columns
  n = l, l + L, ...). :meth:`Schedule.input_streams` is then the same for every lane.

Zero padding: the last chunk of a dot product and the unused positions at the end of a lane are padded
with x = w = 0, sent as x' = w' = 1/2; a padded term adds 1/4 to the lane sum and exactly 0 after the
decode ``4 sum x'w' - K - sum x - sum w`` (K counts the padded terms, ``sum x``/``sum w`` do not see them).
The offset sums are taken from the transmissions as sent (``2 x' - 1`` in ``stream_dtype``), so the
decode is exact for float32 streams too.

Batch dimensions follow ``np.matmul`` (1-D operands are promoted and the added axis removed; leading
dimensions broadcast). Broadcast operands are never copied: every output element keeps an index into the
row table of A and the column table of B, and streams are gathered from those tables on demand, lane by
lane and slot range by slot range (:meth:`Schedule.input_streams`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labctl.opu.encoding import scale_to_unit
from labctl.opu.precision import output_sigma

__all__ = ["Schedule", "matmul_shapes", "plan_gemm"]


def matmul_shapes(a: np.ndarray, b: np.ndarray):
    """``a @ b`` shapes with ``np.matmul`` semantics: (a as >= 2-D, b as >= 2-D, broadcast batch, M, K', N,
    result shape); a 1-D ``a`` is one row, a 1-D ``b`` one column. Mismatches raise ``ValueError``."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul operands must have at least one dimension (scalars are not matrices)")
    drop_m = a.ndim == 1
    drop_n = b.ndim == 1
    a2 = a[None, :] if drop_m else a
    b2 = b[:, None] if drop_n else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"shapes {a.shape} and {b.shape} do not match for a matrix product: "
            f"the inner dimensions are {a2.shape[-1]} and {b2.shape[-2]}"
        )
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(
            f"shapes {a.shape} and {b.shape}: the batch dimensions {a2.shape[:-2]} and {b2.shape[:-2]} "
            "do not broadcast"
        ) from None
    m, k_inner, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    out_shape = tuple(batch) + (() if drop_m else (m,)) + (() if drop_n else (n,))
    return a2, b2, tuple(batch), m, k_inner, n, out_shape


def _batch_index(own_batch: tuple[int, ...], batch: tuple[int, ...]) -> np.ndarray:
    """For every element of the broadcast batch, the flat index of the operand's own batch element."""
    size = int(np.prod(own_batch, dtype=np.int64))
    own = np.arange(size, dtype=np.int64).reshape(own_batch)
    return np.broadcast_to(own, batch).ravel()


class Schedule:
    """The slot plan of one matrix product; build it with :func:`plan_gemm`.

    Attributes: ``lanes`` (L), ``channels`` (K), ``n_chunks`` (C), ``positions_per_lane`` (P outputs or
    padding per lane), ``slots_per_lane`` (S = P C), ``out_shape``, ``inner`` (K'), ``scale_a``/``scale_b``
    (the per-tensor scale factors), ``clipped_a``/``clipped_b`` (values clipped when a fixed scale was
    given), ``shared_inputs``.
    """

    def __init__(self, *, x_table, w_table, x_sums, w_sums, rows, cols, out_index, n_outputs, out_shape,
                 lanes, channels, n_chunks, inner, scale_a, scale_b, clipped_a, clipped_b, shared_inputs):
        self._x = x_table        # (K, Ra + 1, C) transmissions x' of the A rows (last row: padding)
        self._w = w_table        # (K, Rb + 1, C) transmissions w' of the B columns (last one: padding)
        self._x_sums = x_sums    # (Ra + 1, C) digital sum x of each chunk (signed values)
        self._w_sums = w_sums    # (Rb + 1, C)
        self._rows = rows        # (L, P) row of A for each lane position
        self._cols = cols        # (L, P) column of B
        self._out = out_index    # (L, P) flat output index, -1 for padding
        self.n_outputs = n_outputs
        self.out_shape = out_shape
        self.lanes = lanes
        self.channels = channels
        self.n_chunks = n_chunks
        self.inner = inner
        self.scale_a = scale_a
        self.scale_b = scale_b
        self.clipped_a = clipped_a
        self.clipped_b = clipped_b
        self.shared_inputs = shared_inputs

    # -- sizes ---------------------------------------------------------------------------------

    @property
    def positions_per_lane(self) -> int:
        return int(self._rows.shape[1])

    @property
    def slots_per_lane(self) -> int:
        return self.positions_per_lane * self.n_chunks

    @property
    def useful_macs(self) -> int:
        """Multiply-accumulates of the product itself (outputs x K')."""
        return int(self.n_outputs) * int(self.inner)

    @property
    def optical_macs(self) -> int:
        """Multiply-accumulates performed optically, padding included (L x S x K)."""
        return self.lanes * self.slots_per_lane * self.channels

    # -- streams -------------------------------------------------------------------------------

    def _slot_range(self, start: int, stop: int | None) -> tuple[int, int]:
        s = self.slots_per_lane
        stop = s if stop is None else int(stop)
        start = int(start)
        if not 0 <= start <= stop <= s:
            raise ValueError(f"slot range [{start}, {stop}) must lie within [0, {s}]")
        return start, stop

    def _gather(self, table: np.ndarray, index: np.ndarray, lane: int | None, start: int, stop: int | None):
        start, stop = self._slot_range(start, stop)
        lanes = range(self.lanes) if lane is None else [self._check_lane(lane)]
        c = self.n_chunks
        p0, p1 = start // c, -(-stop // c)
        out = []
        for ln in lanes:
            g = table[:, index[ln, p0:p1], :].reshape(self.channels, -1)
            out.append(np.ascontiguousarray(g[:, start - p0 * c: stop - p0 * c]))
        return out[0] if lane is not None else np.stack(out)

    def _check_lane(self, lane: int) -> int:
        if not (int(lane) == lane and 0 <= lane < self.lanes):
            raise ValueError(f"lane must be an integer in [0, {self.lanes - 1}], got {lane!r}")
        return int(lane)

    def input_streams(self, lane: int | None = 0, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Edge-side transmissions x' in [0, 1] for slots [start, stop): shape (K, stop - start).

        Row k is the symbol stream of wavelength channel k of ``lane``. ``lane=None`` gives all lanes,
        shape (L, K, stop - start). With ``shared_inputs`` every lane's stream is the same.
        """
        return self._gather(self._x, self._rows, lane, start, stop)

    def weight_streams(self, lane: int | None = 0, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Center-side transmissions w' in [0, 1] for slots [start, stop) of ``lane``: shape (K, n)."""
        return self._gather(self._w, self._cols, lane, start, stop)

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, lane_sums: Any, return_chunks: bool = False):
        """Reassemble ``A @ B`` from the detected lane sums.

        ``lane_sums`` has shape (L, S) (or (S,) for one lane): the sum over the K channels of
        ``x' w'`` in each slot, in units of one full-scale channel product (i.e. after the receiver's
        offset and gain removal). Each chunk is decoded exactly (``4 y - K - sum x - sum w``), the chunks
        of an output are added, and the scale factors are restored. With ``return_chunks`` the decoded
        chunk values, shape (L, P, C) in the scaled units, are returned as well (padding included).
        """
        y = np.asarray(lane_sums, dtype=float)
        want = (self.lanes, self.slots_per_lane)
        if y.shape == want[1:] and self.lanes == 1:
            y = y[None, :]
        if y.shape != want:
            raise ValueError(f"lane_sums must have shape {want} (lanes, slots per lane), got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("lane_sums contains NaN or infinite values")
        y = y.reshape(self.lanes, self.positions_per_lane, self.n_chunks)
        # sum over chunks of (4 y - K - sum x - sum w): the offset terms are summed per row/column once
        acc = 4.0 * y.sum(axis=-1)
        acc -= self.n_chunks * self.channels
        acc -= self._x_sums.sum(axis=-1)[self._rows]
        acc -= self._w_sums.sum(axis=-1)[self._cols]
        chunks = None
        if return_chunks:
            chunks = 4.0 * y - self.channels - self._x_sums[self._rows] - self._w_sums[self._cols]
        valid = self._out >= 0
        out = np.zeros(self.n_outputs)
        out[self._out[valid]] = acc[valid]
        out *= self.scale_a * self.scale_b
        out = out.reshape(self.out_shape)
        return (out, chunks) if return_chunks else out

    def output_sigma(self, slot_sigma: Any) -> np.ndarray:
        """Per-output standard error from the lane-sum noise ``slot_sigma`` (scalar or one per lane).

        ``4 sqrt(C) slot_sigma scale_a scale_b`` (:func:`labctl.opu.precision.output_sigma`), in the
        output's units and shape.
        """
        s = np.broadcast_to(np.asarray(slot_sigma, dtype=float), (self.lanes,))
        per_lane = output_sigma(s, self.n_chunks, self.scale_a, self.scale_b)
        out = np.zeros(self.n_outputs)
        valid = self._out >= 0
        out[self._out[valid]] = np.broadcast_to(per_lane[:, None], self._out.shape)[valid]
        return out.reshape(self.out_shape)

    def output_index(self) -> np.ndarray:
        """(L, P) flat index into the output of each lane position (-1 = padding)."""
        return self._out.copy()

    def __repr__(self) -> str:
        return (f"Schedule(out_shape={self.out_shape}, inner={self.inner}, lanes={self.lanes}, "
                f"channels={self.channels}, chunks={self.n_chunks}, slots_per_lane={self.slots_per_lane}, "
                f"shared_inputs={self.shared_inputs})")


def _operand_table(rows2d: np.ndarray, n_chunks: int, channels: int, dtype):
    """(R, K') signed rows -> transmissions (K, R + 1, C) and chunk sums (R + 1, C); last row = padding."""
    r, k_inner = rows2d.shape
    padded = np.zeros((r + 1, n_chunks * channels))
    padded[:r, :k_inner] = rows2d
    padded = padded.reshape(r + 1, n_chunks, channels)
    table = np.empty((channels, r + 1, n_chunks), dtype=dtype)
    np.multiply(np.moveaxis(padded, -1, 0) + 1.0, 0.5, out=table, casting="same_kind")
    # The offset terms are summed from the transmissions as sent (2 x' - 1), so a float32 stream decodes
    # exactly too; padding sends x' = 1/2 exactly and adds 0 here.
    sums = (2.0 * table.astype(np.float64) - 1.0).sum(axis=0)
    return table, sums


def plan_gemm(a: Any, b: Any, lanes: int, channels: int, *, shared_inputs: bool = False,
              scale_a: float | None = None, scale_b: float | None = None, stream_dtype=np.float64) -> Schedule:
    """Plan ``a @ b`` (``np.matmul`` semantics) on ``lanes`` lanes of ``channels`` wavelength channels.

    Operands are scaled into [-1, 1] per tensor (``scale_a``/``scale_b`` fixed the factors; ``None`` uses
    max|.|), offset-encoded, cut into K-term chunks and laid out in slots; see the module docstring.
    NaN/inf raise ``ValueError``; values beyond a fixed scale are clipped with a warning and counted.
    """
    for label, value in (("lanes", lanes), ("channels", channels)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
    lanes, channels = int(lanes), int(channels)
    if np.dtype(stream_dtype).kind != "f":
        raise ValueError(f"stream_dtype must be a floating-point type, got {np.dtype(stream_dtype)}")
    a_scaled = scale_to_unit(a, scale_a, name="a")
    b_scaled = scale_to_unit(b, scale_b, name="b")
    a2, b2, batch, m, k_inner, n, out_shape = matmul_shapes(a_scaled.values, b_scaled.values)
    n_chunks = max(1, -(-k_inner // channels))
    a_batch, b_batch = a2.shape[:-2], b2.shape[:-2]

    a_rows = a2.reshape(int(np.prod(a2.shape[:-1])), k_inner)                   # (Ba M, K')
    b_cols = np.swapaxes(b2, -1, -2).reshape(int(np.prod(b_batch + (n,))), k_inner)  # (Bb N, K')
    x_table, x_sums = _operand_table(a_rows, n_chunks, channels, stream_dtype)
    w_table, w_sums = _operand_table(b_cols, n_chunks, channels, stream_dtype)
    pad_row, pad_col = a_rows.shape[0], b_cols.shape[0]

    n_batch = int(np.prod(batch, dtype=np.int64))
    ia = _batch_index(a_batch, batch)                                            # (n_batch,)
    ib = _batch_index(b_batch, batch)
    n_outputs = n_batch * m * n

    if n_outputs == 0:
        rows = cols = np.zeros((lanes, 0), dtype=np.int64)
        out_index = rows
    elif not shared_inputs:
        per_lane = -(-n_outputs // lanes)
        flat = np.arange(lanes * per_lane, dtype=np.int64).reshape(lanes, per_lane)
        valid = flat < n_outputs
        bi, rem = np.divmod(np.minimum(flat, n_outputs - 1), m * n)
        mi, ni = np.divmod(rem, n)
        rows = np.where(valid, ia[bi] * m + mi, pad_row)
        cols = np.where(valid, ib[bi] * n + ni, pad_col)
        out_index = np.where(valid, flat, -1)
    else:
        q = -(-n // lanes)                                               # columns per lane
        bi = np.arange(n_batch, dtype=np.int64)[:, None, None]
        mi = np.arange(m, dtype=np.int64)[None, :, None]
        ni = np.arange(q, dtype=np.int64)[None, None, :] * lanes + np.arange(lanes)[:, None, None, None]
        valid = ni < n                                                   # (L, 1, 1, q)
        shape = (lanes, n_batch, m, q)
        rows = np.broadcast_to(ia[bi] * m + mi, shape).reshape(lanes, -1)  # the same for every lane
        cols = np.broadcast_to(np.where(valid, ib[bi] * n + ni, pad_col), shape).reshape(lanes, -1)
        out_index = np.broadcast_to(np.where(valid, (bi * m + mi) * n + ni, -1), shape).reshape(lanes, -1)

    return Schedule(x_table=x_table, w_table=w_table, x_sums=x_sums, w_sums=w_sums, rows=rows, cols=cols,
                    out_index=out_index, n_outputs=n_outputs, out_shape=out_shape, lanes=lanes,
                    channels=channels, n_chunks=n_chunks, inner=k_inner, scale_a=a_scaled.scale,
                    scale_b=b_scaled.scale, clipped_a=a_scaled.n_clipped, clipped_b=b_scaled.n_clipped,
                    shared_inputs=bool(shared_inputs))
