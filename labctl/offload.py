"""Run a torch model's matrix products on an optical processing unit.

    >>> import labctl
    >>> opu = labctl.opu.open_opu(bench)                 # an OpticalMatmul, or any object with ``matmul(a, b)``
    >>> omodel = labctl.offload(model, opu)              # a deep copy; ``model`` is untouched
    >>> with torch.no_grad():
    ...     y = omodel(x)
    >>> ledger = labctl.offload.ledger(omodel)           # also ``omodel.optical_ledger``
    >>> ledger.total_macs, ledger.macs_by_layer()
    >>> plain = labctl.offload.restore(omodel)           # back to electronic layers (a copy)

What runs on the OPU (``opu.matmul(a, b)``, ``a`` = activations, sent at the edge; ``b`` = weights, set at
the center) and what stays electronic:

* ``nn.Linear`` (``layers`` contains ``"linear"``): ``x.reshape(-1, in) @ W.T`` in **one** call per
  forward, whatever the batch shape. MACs = batch * in_features * out_features (batch = product of the
  leading dimensions).
* ``nn.Conv2d`` (``"conv2d"``): im2col. The input is padded electronically (any ``padding`` incl.
  ``"same"``/``"valid"``, any ``padding_mode``), unfolded (``F.unfold``: stride, dilation), and the
  product ``cols (g, N*L, C_in/g*kh*kw) @ W.T (g, C_in/g*kh*kw, C_out/g)`` runs as **one** batched call
  (one batch entry per group, ``g = groups``; plain 2-D when g = 1); the result is reshaped to
  ``(N, C_out, H_out, W_out)``. MACs = N * H_out * W_out * C_out * (C_in/groups) * kh * kw.
* Biases are added **electronically** after the optical product, as are everything outside these layers
  (activations, norms, softmax, residual adds, pooling, embeddings).
* ``attention=True``: calls of ``torch.nn.functional.scaled_dot_product_attention`` made while the model
  (or any of its submodules) runs -- however the function was imported, they are caught with a
  :class:`torch.overrides.TorchFunctionMode` -- compute ``Q @ K^T`` and ``P @ V`` on the OPU (two calls;
  both operands are activations, so both are streamed); the scale, mask (boolean or additive,
  ``is_causal``), grouped-query head repetition (``enable_gqa``) and the softmax stay electronic. MACs =
  batch * L * S * (E + E_v). This covers diffusers' default ``AttnProcessor2_0`` (which calls
  ``F.scaled_dot_product_attention``; its ``to_q/to_k/to_v/to_out`` are ``nn.Linear`` and covered by
  ``"linear"``). **Not covered** (they stay electronic, nothing is silently mislabelled): the classic
  diffusers ``AttnProcessor`` (``torch.baddbmm``/``torch.bmm``), xFormers / flash kernels called
  directly, ``nn.MultiheadAttention`` (its projection weights are used directly by a fused kernel: its
  ``out_proj`` is listed in ``ledger.skipped``), plain ``torch.matmul``/``@`` in user code, ``dropout_p
  > 0`` (refused: inference only).
* Layers are converted by changing their class to an optical subclass (``OpticalLinear`` /
  ``OpticalConv2d``, still ``isinstance`` of ``nn.Linear`` / ``nn.Conv2d``): parameter names, the
  ``state_dict`` and hooks are unchanged. Subclasses of Linear/Conv2d that override ``forward`` (their
  own semantics), uninitialised lazy modules and ``exclude``-d names are left electronic and listed in
  ``ledger.skipped`` with the reason.

**Inference only.** Autograd cannot differentiate through the bench. The returned copy has all its
parameters frozen (``requires_grad=False``); the products run under ``torch.no_grad()``; an input that
requires grad while grad mode is on raises ``RuntimeError``. Products are sent as float32 (the OPU's
precision is far below that); the result is cast back to the input's dtype and device.

``min_macs``: a single product with fewer MACs than this stays electronic (``F.linear``/``F.conv2d``/
torch's SDPA) and is counted separately (``electronic_calls``/``electronic_macs``): for tiny products the
transfer overhead dominates.

**The ledger** (:class:`OpticalLedger`, plain dataclasses; ``to_dict()`` gives JSON-able dicts) has one
:class:`LayerRecord` per optical layer / attention call site, in model order: kind, weight shape, last
input/output shapes, ``calls``, ``macs`` (exact closed-form MACs sent to optics), ``opu_calls``, the
electronic fall-backs, ``opu_stats`` (the additive entries of ``opu.last_stats`` summed over calls, e.g.
``optical_macs`` including tiling padding and ``optical_time_s``, when the OPU reports them) and the
RMS of the OPU's per-output error estimate of the last call. ``total_macs`` and ``macs_by_layer()`` are
what the energy accounting reads.

The OPU object is shared, never copied (``copy.deepcopy`` of an offloaded model shares the bench). Save
an offloaded model with its ``state_dict`` (identical to the original's), not by pickling it.
"""

from __future__ import annotations

import copy as _copy
import inspect
import math
import sys
import types
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from labctl.opu.interface import STATS_KEYS, OpticalMatmul

__all__ = [
    "LAYER_KINDS",
    "LayerRecord",
    "OffloadWarning",
    "OpticalConv2d",
    "OpticalLedger",
    "OpticalLinear",
    "is_offloaded",
    "ledger",
    "offload",
    "restore",
]

#: Layer kinds ``offload(layers=...)`` accepts.
LAYER_KINDS = ("linear", "conv2d")

#: Entries of ``opu.last_stats`` that add up over calls (summed into ``LayerRecord.opu_stats``): the counts
#: and times every engine reports (:data:`labctl.opu.interface.STATS_KEYS`), and the clipped-value counts.
ADDITIVE_OPU_STATS = tuple(key for key in STATS_KEYS if key != "calibrated") + ("clipped_a", "clipped_b")


class OffloadWarning(UserWarning):
    """Something the offload wrapper cannot route to the OPU (the message says what stays electronic)."""


# -- the ledger ------------------------------------------------------------------------------------


@dataclass
class LayerRecord:
    """What one layer (or attention call site) sent to the OPU. MACs are exact counts of the products."""

    name: str
    kind: str  # "linear" | "conv2d" | "attention"
    weight_shape: tuple[int, ...] | None = None
    input_shape: tuple[int, ...] | None = None  # of the last call
    output_shape: tuple[int, ...] | None = None  # of the last call
    calls: int = 0  # forward calls that ran on the OPU
    macs: int = 0  # multiply-accumulates sent to the OPU
    opu_calls: int = 0  # opu.matmul invocations (1 per Linear/Conv2d call, 2 per attention call)
    electronic_calls: int = 0  # forward calls kept electronic (below min_macs)
    electronic_macs: int = 0
    opu_stats: dict[str, float] = field(default_factory=dict)  # summed additive opu.last_stats entries
    last_sigma_rms: float | None = None  # RMS of the OPU's per-output error estimate, last call

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("weight_shape", "input_shape", "output_shape"):
            d[key] = list(d[key]) if d[key] is not None else None
        return d


@dataclass
class OpticalLedger:
    """Per-layer record of the matrix products an offloaded model sent to the OPU (see module docstring)."""

    records: dict[str, LayerRecord] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # layer name -> why it stays electronic

    @property
    def total_macs(self) -> int:
        """MACs sent to optics, all layers."""
        return sum(r.macs for r in self.records.values())

    @property
    def total_electronic_macs(self) -> int:
        """MACs of offloadable products that were kept electronic (``min_macs``)."""
        return sum(r.electronic_macs for r in self.records.values())

    @property
    def total_opu_calls(self) -> int:
        return sum(r.opu_calls for r in self.records.values())

    def macs_by_layer(self) -> dict[str, int]:
        """``{layer name: MACs sent to optics}`` in model order."""
        return {name: r.macs for name, r in self.records.items()}

    def reset(self) -> None:
        """Zero the counters (the list of layers stays)."""
        for r in self.records.values():
            r.calls = r.macs = r.opu_calls = r.electronic_calls = r.electronic_macs = 0
            r.opu_stats = {}
            r.input_shape = r.output_shape = r.last_sigma_rms = None

    def to_dict(self) -> dict:
        """Plain, JSON-able form: totals, one dict per layer, skipped layers."""
        return {
            "total_macs": self.total_macs,
            "total_electronic_macs": self.total_electronic_macs,
            "total_opu_calls": self.total_opu_calls,
            "layers": [r.to_dict() for r in self.records.values()],
            "skipped": dict(self.skipped),
        }

    def summary(self) -> str:
        """A small text table."""
        lines = [f"{'layer':40s} {'kind':9s} {'calls':>6s} {'optical MACs':>14s} {'electronic MACs':>16s}"]
        for r in self.records.values():
            lines.append(f"{r.name[:40]:40s} {r.kind:9s} {r.calls:6d} {r.macs:14d} {r.electronic_macs:16d}")
        lines.append(f"{'total':40s} {'':9s} {'':6s} {self.total_macs:14d} {self.total_electronic_macs:16d}")
        for name, why in self.skipped.items():
            lines.append(f"(electronic) {name}: {why}")
        return "\n".join(lines)

    def _record(self, name: str, kind: str, weight_shape=None) -> LayerRecord:
        rec = self.records.get(name)
        if rec is None:
            rec = self.records[name] = LayerRecord(name, kind, tuple(weight_shape) if weight_shape else None)
        return rec


# -- shared state ----------------------------------------------------------------------------------


class _OPUHandle:
    """The OPU, shared by every copy of an offloaded model (``deepcopy`` never copies a bench)."""

    def __init__(self, opu: Any):
        matmul = getattr(opu, "matmul", None)
        if matmul is None or not callable(matmul):
            raise TypeError(f"opu must have a callable matmul(a, b) method (an OpticalMatmul, e.g. from "
                            f"labctl.opu.open_opu(bench)), "
                            f"got {type(opu).__name__}")
        self.opu = opu
        self.with_error = _accepts_kwarg(matmul, "return_error")

    def __deepcopy__(self, memo):
        return self

    def matmul(self, a: torch.Tensor, b: torch.Tensor, expected: tuple[int, ...], rec: LayerRecord):
        """``a @ b`` on the OPU, as a float32 tensor on a's device; the error estimate (or None)."""
        if self.with_error:
            out = self.opu.matmul(a, b, return_error=True)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(f"{type(self.opu).__name__}.matmul(..., return_error=True) must return "
                                f"(product, error), got {type(out).__name__}")
            y, sigma = out
        else:
            y, sigma = self.opu.matmul(a, b), None
        y = _as_tensor(y, a)
        if tuple(y.shape) != tuple(expected):
            raise RuntimeError(f"{type(self.opu).__name__}.matmul returned shape {tuple(y.shape)} for "
                               f"{tuple(a.shape)} @ {tuple(b.shape)}; expected {tuple(expected)}")
        if sigma is not None:
            sigma = _as_tensor(sigma, a)
            if tuple(sigma.shape) != tuple(expected):
                sigma = None
        rec.opu_calls += 1
        stats = getattr(self.opu, "last_stats", None)
        if isinstance(stats, dict):
            for key in ADDITIVE_OPU_STATS:
                value = stats.get(key)
                if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                    rec.opu_stats[key] = rec.opu_stats.get(key, 0) + value
        return y, sigma


def _accepts_kwarg(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _as_tensor(value: Any, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=like.device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(value), dtype=torch.float32, device=like.device)


def _sigma_rms(sigma: torch.Tensor | None) -> float | None:
    if sigma is None or sigma.numel() == 0:
        return None
    return float(torch.sqrt(torch.mean(sigma.double() ** 2)))


def _check_no_grad(what: str, *tensors: torch.Tensor) -> None:
    if torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors):
        raise RuntimeError(
            f"{what}: the optical layers are inference-only (autograd cannot differentiate through the "
            "bench) and an input requires grad; run the model under torch.no_grad() or "
            "torch.inference_mode(), or detach the input")


class _Context:
    """Per-offloaded-model state: the OPU, the ledger, the policy, the attention router."""

    def __init__(self, handle: _OPUHandle, ledger: OpticalLedger, min_macs: int, attention: bool):
        self.handle = handle
        self.ledger = ledger
        self.min_macs = min_macs
        self.attention = attention
        self.stack: list[str] = []  # names of the modules running (attention attribution)
        self.mode: _AttentionMode | None = None

    def optical(self, macs: int) -> bool:
        return macs > 0 and macs >= self.min_macs


class _LayerState:
    def __init__(self, ctx: _Context, name: str, kind: str, electronic_class: type):
        self.ctx = ctx
        self.name = name
        self.kind = kind
        self.electronic_class = electronic_class
        self.last_error: torch.Tensor | None = None


# -- optical layers --------------------------------------------------------------------------------


class _OpticalLinearMixin:
    """``nn.Linear`` whose product ``x @ W.T`` runs on the OPU; the bias is added electronically."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st: _LayerState = self._optical
        rec = st.ctx.ledger._record(st.name, "linear", self.weight.shape)
        _check_no_grad(f"layer {st.name!r}", x)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"layer {st.name!r} (Linear {self.in_features} -> {self.out_features}) got an "
                             f"input of shape {tuple(x.shape)}: its last dimension must be {self.in_features}")
        batch = math.prod(x.shape[:-1])
        macs = batch * self.in_features * self.out_features
        rec.input_shape = tuple(x.shape)
        rec.output_shape = (*x.shape[:-1], self.out_features)
        if not st.ctx.optical(macs):
            rec.electronic_calls += 1
            rec.electronic_macs += macs
            with torch.no_grad():
                return F.linear(x, self.weight, self.bias)
        with torch.no_grad():
            a = x.detach().reshape(batch, self.in_features).to(torch.float32)
            b = self.weight.detach().to(device=x.device, dtype=torch.float32).t()
            y, sigma = st.ctx.handle.matmul(a, b, (batch, self.out_features), rec)
            y = y.reshape(rec.output_shape)
            st.last_error = None if sigma is None else sigma.reshape(rec.output_shape).to(x.dtype)
            y = y.to(dtype=x.dtype)
            if self.bias is not None:
                y = y + self.bias.detach().to(device=x.device, dtype=x.dtype)  # electronic
        rec.calls += 1
        rec.macs += macs
        rec.last_sigma_rms = _sigma_rms(sigma)
        return y

    @property
    def optical_error(self) -> torch.Tensor | None:
        """The OPU's per-output standard-error estimate of the last product (output shape; None if not given)."""
        return self._optical.last_error

    def extra_repr(self) -> str:
        return super().extra_repr() + ", optical=True"


class _OpticalConv2dMixin:
    """``nn.Conv2d`` computed as im2col + one (batched over groups) product on the OPU; bias electronic."""

    def _explicit_padding(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom), as torch pads (``"same"``: the odd extra on the right/bottom)."""
        kh, kw = self.kernel_size
        dh, dw = self.dilation
        if isinstance(self.padding, str):
            if self.padding == "valid":
                return (0, 0, 0, 0)
            th, tw = dh * (kh - 1), dw * (kw - 1)  # "same" (torch requires stride 1)
            return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        ph, pw = self.padding
        return (pw, pw, ph, ph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st: _LayerState = self._optical
        rec = st.ctx.ledger._record(st.name, "conv2d", self.weight.shape)
        _check_no_grad(f"layer {st.name!r}", x)
        if x.dim() not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"layer {st.name!r} (Conv2d, {self.in_channels} input channels) got an input of "
                             f"shape {tuple(x.shape)}: expected (N, {self.in_channels}, H, W) or "
                             f"({self.in_channels}, H, W)")
        unbatched = x.dim() == 3
        xb = x.unsqueeze(0) if unbatched else x
        n, c, h, w = xb.shape
        kh, kw = self.kernel_size
        sh, sw = self.stride
        dh, dw = self.dilation
        pl, pr, pt, pb = self._explicit_padding()
        h_out = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
        w_out = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
        if h_out < 1 or w_out < 1:
            raise ValueError(f"layer {st.name!r}: input {tuple(x.shape)} is smaller than the dilated kernel "
                             f"({dh * (kh - 1) + 1} x {dw * (kw - 1) + 1}) after padding")
        g = self.groups
        cg, og = c // g, self.out_channels // g
        k = cg * kh * kw
        l_out = h_out * w_out
        macs = n * l_out * self.out_channels * k
        out_shape = (n, self.out_channels, h_out, w_out)
        rec.input_shape = tuple(x.shape)
        rec.output_shape = out_shape[1:] if unbatched else out_shape
        if not st.ctx.optical(macs):
            rec.electronic_calls += 1
            rec.electronic_macs += macs
            with torch.no_grad():
                return self._conv_forward(x, self.weight, self.bias)
        with torch.no_grad():
            xf = xb.detach().to(torch.float32)
            if any((pl, pr, pt, pb)):
                mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
                xf = F.pad(xf, (pl, pr, pt, pb), mode=mode)
            cols = F.unfold(xf, (kh, kw), dilation=(dh, dw), padding=0, stride=(sh, sw))  # (n, c*kh*kw, L)
            # rows of cols are (channel, ky, kx) channel-major: group i owns rows [i*k, (i+1)*k)
            a = cols.reshape(n, g, k, l_out).permute(1, 0, 3, 2).reshape(g, n * l_out, k)
            wt = self.weight.detach().to(device=x.device, dtype=torch.float32).reshape(g, og, k).transpose(1, 2)
            if g == 1:
                a, wt, expected = a[0], wt[0], (n * l_out, og)
            else:
                expected = (g, n * l_out, og)
            y, sigma = st.ctx.handle.matmul(a.contiguous(), wt.contiguous(), expected, rec)

            def to_nchw(t: torch.Tensor) -> torch.Tensor:
                t = t.reshape(g, n, l_out, og).permute(1, 0, 3, 2).reshape(out_shape)
                return t[0] if unbatched else t

            y = to_nchw(y).to(dtype=x.dtype)
            st.last_error = None if sigma is None else to_nchw(sigma).to(x.dtype)
            if self.bias is not None:
                y = y + self.bias.detach().to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1)  # electronic
        rec.calls += 1
        rec.macs += macs
        rec.last_sigma_rms = _sigma_rms(sigma)
        return y

    optical_error = _OpticalLinearMixin.optical_error

    def extra_repr(self) -> str:
        return super().extra_repr() + ", optical=True"


class OpticalLinear(_OpticalLinearMixin, nn.Linear):
    """An ``nn.Linear`` whose matrix product runs on the OPU (made by :func:`offload`)."""


class OpticalConv2d(_OpticalConv2dMixin, nn.Conv2d):
    """An ``nn.Conv2d`` whose matrix products run on the OPU (made by :func:`offload`)."""


_OPTICAL_CLASSES: dict[type, type] = {nn.Linear: OpticalLinear, nn.Conv2d: OpticalConv2d}


def _optical_class(cls: type, kind: str) -> type:
    """The optical subclass of ``cls`` (made once per class, registered here so it pickles by name)."""
    if cls not in _OPTICAL_CLASSES:
        mixin = _OpticalLinearMixin if kind == "linear" else _OpticalConv2dMixin
        name = f"Optical_{cls.__module__.replace('.', '_')}_{cls.__qualname__.replace('.', '_')}"
        new = type(name, (mixin, cls), {"__module__": __name__, "__doc__": f"{cls.__name__} on the OPU."})
        globals()[name] = new
        _OPTICAL_CLASSES[cls] = new
    return _OPTICAL_CLASSES[cls]


# -- attention ------------------------------------------------------------------------------------


class _AttentionMode(TorchFunctionMode):
    """Routes ``F.scaled_dot_product_attention`` calls to the OPU while the model runs."""

    def __init__(self, ctx: _Context):
        super().__init__()
        self.ctx = ctx

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return _optical_sdpa(self.ctx, func, *args, **kwargs)
        return func(*args, **kwargs)


def _optical_sdpa(ctx: _Context, electronic, query, key, value, attn_mask=None, dropout_p=0.0,
                  is_causal=False, scale=None, enable_gqa=False):
    site = ctx.stack[-1] if ctx.stack else ""
    name = f"{site}.sdpa" if site else "sdpa"
    rec = ctx.ledger._record(name, "attention")
    _check_no_grad(f"attention at {name!r}", query, key, value)
    if dropout_p:
        raise ValueError(f"attention at {name!r}: dropout_p={dropout_p!r}; optical attention is inference-only "
                         "and needs dropout_p == 0 (put the model in eval() mode)")
    if is_causal and attn_mask is not None:
        raise ValueError(f"attention at {name!r}: give either attn_mask or is_causal=True, not both")
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2 or query.shape[-1] != key.shape[-1] \
            or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"attention at {name!r}: incompatible shapes query {tuple(query.shape)}, key "
                         f"{tuple(key.shape)}, value {tuple(value.shape)}")
    if enable_gqa and query.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(rep, dim=-3)
        value = value.repeat_interleave(rep, dim=-3)
    ql, e = query.shape[-2:]
    s, ev = value.shape[-2:]
    batch = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    nb = math.prod(batch)
    macs = nb * ql * s * (e + ev)
    rec.input_shape = tuple(query.shape)
    rec.output_shape = (*batch, ql, ev)
    if not ctx.optical(macs):
        rec.electronic_calls += 1
        rec.electronic_macs += macs
        with torch.no_grad():
            return electronic(query, key, value, attn_mask=attn_mask, dropout_p=0.0, is_causal=is_causal,
                              scale=scale, enable_gqa=enable_gqa)
    with torch.no_grad():
        q = query.detach().to(torch.float32).expand(*batch, ql, e)
        kt = key.detach().to(torch.float32).expand(*batch, s, e).transpose(-2, -1)
        v = value.detach().to(torch.float32).expand(*batch, s, ev)
        scores, sig1 = ctx.handle.matmul(q.contiguous(), kt.contiguous(), (*batch, ql, s), rec)
        scores = scores * (1.0 / math.sqrt(e) if scale is None else scale)  # electronic
        if is_causal:
            keep = torch.ones(ql, s, dtype=torch.bool, device=scores.device).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        elif attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask.to(scores.dtype)
        p = torch.softmax(scores, dim=-1)  # electronic
        out, sig2 = ctx.handle.matmul(p.contiguous(), v.contiguous(), (*batch, ql, ev), rec)
        out = out.to(query.dtype)
    rec.calls += 1
    rec.macs += macs
    rec.last_sigma_rms = _sigma_rms(sig2)
    return out


class _ScopeHook:
    """Forward pre-/post-hook on every module of an attention-offloaded model: tracks the running module
    (to name attention call sites) and switches the attention mode on for the outermost call."""

    def __init__(self, ctx: _Context, name: str):
        self.ctx = ctx
        self.name = name

    def pre(self, module, args):
        ctx = self.ctx
        if not ctx.stack:
            ctx.mode = _AttentionMode(ctx)
            ctx.mode.__enter__()
        ctx.stack.append(self.name)

    def post(self, module, args, output):
        ctx = self.ctx
        if ctx.stack:
            ctx.stack.pop()
            if not ctx.stack and ctx.mode is not None:
                mode, ctx.mode = ctx.mode, None
                mode.__exit__(None, None, None)


# -- public API ------------------------------------------------------------------------------------


def offload(module: nn.Module, opu: OpticalMatmul | Any, *, layers: Iterable[str] | str = LAYER_KINDS, attention: bool = False,
            min_macs: int = 0, exclude: Iterable[str] = ()) -> nn.Module:
    """A deep copy of ``module`` whose Linear / Conv2d layers (and optionally attention) run on ``opu``.

    ``opu``: an :class:`~labctl.opu.interface.OpticalMatmul` (``labctl.opu.open_opu(bench)``), or anything
    with ``matmul(a, b)``; ``return_error=True`` is used when accepted.
    ``layers``: a subset of ``("linear", "conv2d")``. ``attention``: route
    ``F.scaled_dot_product_attention`` (see the module docstring for what is and is not covered).
    ``min_macs``: products smaller than this stay electronic. ``exclude``: module names (as in
    ``named_modules()``) kept electronic, with everything below them.

    Raises ``TypeError`` for an ``opu`` without ``matmul`` or a non-module, ``ValueError`` for bad
    options, an already-offloaded model, or a model with nothing to offload (with ``attention=True`` and no
    layers, an :class:`OffloadWarning` instead: attention calls are found only when the model runs).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    handle = _OPUHandle(opu)
    kinds = (layers,) if isinstance(layers, str) else tuple(layers)
    bad = [k for k in kinds if k not in LAYER_KINDS]
    if bad:
        raise ValueError(f"layers: unknown kind(s) {bad}; allowed: {list(LAYER_KINDS)}")
    if isinstance(min_macs, bool) or not isinstance(min_macs, (int, np.integer)) or min_macs < 0:
        raise ValueError(f"min_macs must be an integer >= 0, got {min_macs!r}")
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    if is_offloaded(module):
        raise ValueError("module is already offloaded (it contains optical layers); call "
                         "labctl.offload.restore() on it first")
    names = {n for n, _ in module.named_modules()}
    unknown = [e for e in exclude if e not in names]
    if unknown:
        raise ValueError(f"exclude: no module named {unknown} in the model")

    model = _copy.deepcopy(module)
    model.requires_grad_(False)
    book = OpticalLedger()
    ctx = _Context(handle, book, int(min_macs), bool(attention))

    mha_owned = {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    converted = 0
    for name, m in model.named_modules():
        kind = "linear" if isinstance(m, nn.Linear) else "conv2d" if isinstance(m, nn.Conv2d) else None
        if kind is None or kind not in kinds:
            continue
        label = name or "<root>"
        base = nn.Linear if kind == "linear" else nn.Conv2d
        if any(name == e or name.startswith(e + ".") if e else True for e in exclude):
            book.skipped[label] = "excluded"
        elif id(m) in mha_owned:
            book.skipped[label] = ("weights used directly by nn.MultiheadAttention's fused kernel "
                                   "(not covered)")
        elif isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params():
            book.skipped[label] = "uninitialised lazy module (run one electronic forward before offloading)"
        elif type(m).forward is not base.forward or (kind == "conv2d"
                                                      and type(m)._conv_forward is not nn.Conv2d._conv_forward):
            book.skipped[label] = f"{type(m).__name__} overrides forward (its own semantics; not covered)"
        else:
            electronic_class = type(m)
            m.__class__ = _optical_class(electronic_class, kind)
            m._optical = _LayerState(ctx, label, kind, electronic_class)
            book._record(label, kind, m.weight.shape)
            converted += 1
    for label, why in book.skipped.items():
        if why != "excluded":
            warnings.warn(f"offload: layer {label!r} stays electronic: {why}", OffloadWarning, stacklevel=2)

    if attention:
        for name, m in model.named_modules():
            hook = _ScopeHook(ctx, name)
            m.register_forward_pre_hook(hook.pre)
            m.register_forward_hook(hook.post, always_call=True)
    if converted == 0:
        what = " or ".join(kinds) or "no layer kinds"
        if not attention:
            raise ValueError(f"nothing to offload: the model has no {what} layer that can run on the OPU"
                             + (f" (skipped: {book.skipped})" if book.skipped else ""))
        warnings.warn(f"offload: no {what} layer to offload; only scaled_dot_product_attention calls will "
                      "run on the OPU (if the model makes any)", OffloadWarning, stacklevel=2)
    model.optical_ledger = book
    model._optical_context = ctx
    return model


def is_offloaded(model: nn.Module) -> bool:
    """True if ``model`` (or a submodule) was converted by :func:`offload`."""
    return any("_optical" in m.__dict__ or "_optical_context" in m.__dict__ for m in model.modules())


def ledger(model: nn.Module) -> OpticalLedger:
    """The :class:`OpticalLedger` of a model returned by :func:`offload`."""
    book = model.__dict__.get("optical_ledger") if isinstance(model, nn.Module) else None
    if not isinstance(book, OpticalLedger):
        raise ValueError("this model was not made by labctl.offload(): it has no optical ledger")
    return book


def restore(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The electronic model back: optical layers return to their original classes, hooks and ledger go.

    Returns a copy (the offloaded model keeps working) unless ``inplace=True``. Parameters stay frozen.
    """
    if not isinstance(model, nn.Module) or not is_offloaded(model):
        raise ValueError("restore: this model was not made by labctl.offload()")
    out = model if inplace else _copy.deepcopy(model)
    for m in out.modules():
        st = m.__dict__.pop("_optical", None)
        if st is not None:
            m.__class__ = st.electronic_class
        for hooks in (m._forward_pre_hooks, m._forward_hooks):
            for hid in [hid for hid, fn in hooks.items() if isinstance(getattr(fn, "__self__", None), _ScopeHook)]:
                del hooks[hid]
                m._forward_hooks_always_called.pop(hid, None)
    out.__dict__.pop("optical_ledger", None)
    out.__dict__.pop("_optical_context", None)
    return out


# ``labctl.offload`` is this module; calling it calls :func:`offload`, so ``labctl.offload(model, opu)``,
# ``labctl.offload.ledger(model)`` and ``labctl.offload.restore(model)`` all work.
class _CallableModule(types.ModuleType):
    def __call__(self, module: nn.Module, opu: Any, **kwargs) -> nn.Module:
        return offload(module, opu, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
