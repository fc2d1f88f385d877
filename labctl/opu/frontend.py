"""The front end both engines' ``matmul`` share: operands in, product out, the same statistics.

An engine takes the operands with :func:`take_operands` (NumPy arrays or torch tensors; NaN/inf and
mismatched shapes raise ``ValueError``), computes the product in float64 NumPy, and returns it with
:func:`deliver` in the caller's type (torch on the caller's device, float32 when every operand was
float32). :func:`product_stats` makes the ``last_stats`` keys of :data:`~labctl.opu.interface.STATS_KEYS`
the same on every engine. Only NumPy is imported here; torch is used only when a tensor comes in.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.opu.encoding import EncodingRangeWarning, as_float_array

__all__ = ["Operands", "deliver", "product_stats", "take_operands", "warn_clipped"]


@dataclass(frozen=True)
class Operands:
    """The operands of one product as float64 arrays, and how to hand the result back."""

    a: np.ndarray
    b: np.ndarray
    dtype: Any            # NumPy dtype of the result
    torch: tuple | None   # (torch module, device, dtype) when an operand is a torch tensor


def _result_dtype(a: Any, b: Any):
    """float32 when every operand is float32 (NumPy or torch), else float64."""
    kinds = []
    for x in (a, b):
        dtype = getattr(x, "dtype", None)
        kinds.append(str(dtype).replace("torch.", "") if dtype is not None else "float64")
    return np.float32 if all(k == "float32" for k in kinds) else np.float64


def _torch_info(x: Any):
    """(torch module, device, dtype) when ``x`` is a torch tensor, else None (torch is not imported)."""
    if type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        import torch  # heavy optional dependency: only when a tensor was passed in

        return torch, x.device, x.dtype
    return None


def take_operands(a: Any, b: Any) -> Operands:
    """``a`` and ``b`` as float64 arrays (NaN/inf raise ``ValueError``), with the result's type."""
    return Operands(a=as_float_array(a, "a"), b=as_float_array(b, "b"), dtype=_result_dtype(a, b),
                    torch=_torch_info(a) or _torch_info(b))


def warn_clipped(clipped_a: int, clipped_b: int, stacklevel: int = 3) -> None:
    """Warn (:class:`EncodingRangeWarning`) when values beyond a fixed full scale were clipped."""
    if clipped_a or clipped_b:
        warnings.warn(EncodingRangeWarning(f"clipped {clipped_a} value(s) of a and {clipped_b} of b to the "
                                           "encodable range"), stacklevel=stacklevel)


def _to_torch(arr: np.ndarray, info) -> Any:
    torch, device, dtype = info
    if not dtype.is_floating_point:
        dtype = torch.float32
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device=device, dtype=dtype)


def deliver(ops: Operands, y: np.ndarray, sigma: np.ndarray, return_error: bool):
    """The product (and its error estimate) in the operands' type: ``y`` or ``(y, sigma)``."""
    y = np.asarray(y).astype(ops.dtype, copy=False)
    sigma = np.asarray(sigma).astype(ops.dtype, copy=False)
    if ops.torch is not None:
        y, sigma = _to_torch(y, ops.torch), _to_torch(sigma, ops.torch)
    return (y, sigma) if return_error else y


def product_stats(*, macs: int, optical_macs: int, wall_s: float, optical_time_s: float, uploads: int,
                  upload_bytes: int, captures: int, calibrated: bool, **extra: Any) -> dict[str, Any]:
    """``last_stats`` of one product: the shared keys (:data:`~labctl.opu.interface.STATS_KEYS`) first, then
    the engine's own (``extra``)."""
    shared = {"macs": int(macs), "optical_macs": int(optical_macs), "wall_s": float(wall_s),
              "optical_time_s": float(optical_time_s), "uploads": int(uploads), "upload_bytes": int(upload_bytes),
              "captures": int(captures), "calibrated": bool(calibrated)}
    return {**shared, **extra}
