"""What every optical matrix engine offers: the one interface ``offload`` and generative code depend on.

Both engines (:class:`~labctl.opu.streaming.StreamingOPU`, lanes of AWG-driven modulators read by a
scope, and :class:`~labctl.opu.stationary.StationaryOPU`, weights held on microring banks) satisfy
:class:`OpticalMatmul`, so callers never need to know which architecture a bench has.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["ARCHITECTURES", "STATS_KEYS", "OpticalMatmul", "architecture", "section_architecture"]

#: The engine families a bench file's ``opu:`` section can name (``architecture:``; the first is the default).
ARCHITECTURES = ("streaming", "weight_stationary")

#: Keys every engine's ``last_stats`` holds after a product, with the same meaning on both:
#: ``macs`` (multiply-accumulates of the product asked for), ``optical_macs`` (those done optically,
#: padding included), ``wall_s`` (host time of the call), ``optical_time_s`` (time the light computed),
#: ``uploads`` / ``upload_bytes`` (bulk transfers to the instruments), ``captures`` (bulk reads back:
#: scope acquisitions or controller results fetched), ``calibrated``.
STATS_KEYS = ("macs", "optical_macs", "wall_s", "optical_time_s", "uploads", "upload_bytes", "captures",
              "calibrated")


@runtime_checkable
class OpticalMatmul(Protocol):
    """A matrix engine on an optical bench: ``engine.matmul(a, b)`` computes ``a @ b`` with light."""

    name: str  #: Which engine of the bench this is (e.g. the core controller's instrument name).
    calibrated: bool  #: Whether products use a measured calibration (otherwise nominal values).
    last_stats: dict[str, Any]  #: Figures of the last product; holds at least :data:`STATS_KEYS`.

    def matmul(self, a: Any, b: Any, *, return_error: bool = False, scale_a: float | None = None,
               scale_b: float | None = None) -> Any:
        """``a @ b`` (``np.matmul`` semantics) in ``a``'s type (NumPy or torch); with ``return_error`` also
        the per-output standard error estimate: ``(product, error_sigma)``. ``scale_a``/``scale_b`` fix
        the operands' full scale (values beyond are clipped with an ``EncodingRangeWarning`` and counted);
        by default the engine takes them from the operands (the streaming engine per tensor, the
        weight-stationary one per row of ``a`` and per column of ``b``: finer, so more precise)."""


def section_architecture(section: Any) -> str:
    """The engine family an ``opu:`` section (a dict, or a validated config) names; ``"streaming"`` when
    it does not say."""
    if isinstance(section, dict):
        return section.get("architecture", ARCHITECTURES[0])
    return getattr(section, "architecture", ARCHITECTURES[0])


def architecture(bench) -> str:
    """The engine family the bench's ``opu:`` section names (the raw value; :func:`labctl.opu.opu_config`
    validates it): ``"streaming"`` (AWG + scope lanes, the default) or ``"weight_stationary"``."""
    return section_architecture(getattr(getattr(bench, "config", bench), "opu", None) or {})
