"""The energy of an experiment's optical products: each product's MACs in the run's ledger on the bench
clock, the projection of the bench's cores, and the CPU baseline of the very same products.

Every ``labctl run`` is metered (``ctx.energy``, a :class:`~labctl.energy.metering.BenchMeter`); an
experiment that computes on optics sends its products through :class:`ProductEnergy` and, at the end,
calls :meth:`ProductEnergy.finish`, so ``labctl energy report`` shows the bench, projected and baseline
views of the same computation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from labctl.energy.baseline import RAPL_ROOT, BaselineMeasurement, measure_cpu
from labctl.energy.metering import BenchMeter
from labctl.energy.projected import bench_projection
from labctl.energy.provenance import EnergyError


class ProductEnergy:
    """Records optical products into a meter's ledger and keeps their operands for the CPU baseline.

    Only products on the metered bench are recorded: a product on another bench (a simulated variant a
    sweep opens) drew power this meter does not see, so counting its MACs would understate J/op; such
    products are counted in :attr:`elsewhere` and named in a ledger note.
    """

    def __init__(self, meter: BenchMeter):
        self.meter = meter
        self.pairs: list[tuple[Any, Any]] = []
        self.useful_macs = 0
        self.optical_macs = 0
        self.elsewhere = 0

    @property
    def products(self) -> int:
        """Products recorded so far."""
        return len(self.pairs)

    def matmul(self, opu: Any, a: Any, b: Any, **kwargs: Any) -> Any:
        """``opu.matmul(a, b, **kwargs)``, recorded with its bench-clock interval (nothing when it raises)."""
        if getattr(opu, "bench", None) is not self.meter.bench:
            self.elsewhere += 1
            return opu.matmul(a, b, **kwargs)
        start = self.meter.now()
        out = opu.matmul(a, b, **kwargs)
        self.record(opu, a, b, start, self.meter.now())
        return out

    def record(self, opu: Any, a: Any, b: Any, start_s: float, end_s: float) -> None:
        """Record the product ``opu`` just made of ``a`` and ``b`` between ``start_s`` and ``end_s`` (bench
        clock), then take a readback snapshot (the load changed)."""
        stats = opu.last_stats
        self.meter.ledger.add_stats(stats, start_s=start_s, end_s=end_s, source=f"{opu.name} last_stats")
        self.meter.sample()
        self.pairs.append((a, b))
        self.useful_macs += int(stats["macs"])
        self.optical_macs += int(stats.get("optical_macs", stats["macs"]))

    def metered(self, opu: Any) -> _Metered:
        """``opu`` with its products recorded here (for code that calls ``opu.matmul`` itself)."""
        return _Metered(opu, self)

    def finish(self, bench: Any, *, repeats: int, threads: int = 1, rapl_root: str | Path | None = RAPL_ROOT,
               label: str = "CPU torch FP32 matmul of the run's products") -> BaselineMeasurement | None:
        """Put the projection of ``bench``'s cores and the CPU baseline of the recorded products in the ledger
        (a view that cannot be made gets a note saying why); returns the baseline, None without products."""
        ledger = self.meter.ledger
        if self.elsewhere:
            ledger.add_note("bench", f"{self.elsewhere} product(s) ran on other benches (simulated variants) this "
                                     "meter does not cover: their MACs are not in the ledger")
        try:
            bench_projection(bench).record(ledger)
        except EnergyError as exc:
            ledger.add_note("projected", f"no projection of this bench: {exc}")
        if not self.pairs:
            ledger.add_note("baseline", "no optical products in this run, so no CPU baseline of them")
            return None
        baseline = cpu_baseline(self.pairs, repeats=repeats, threads=threads, rapl_root=rapl_root, label=label)
        baseline.record(ledger)
        if self.optical_macs != self.useful_macs:
            ledger.add_note("baseline", f"the CPU computed the {self.useful_macs} MACs asked for; the ledger's ops "
                                        f"count the {self.optical_macs} MACs the optics did (padding included)")
        return baseline


class _Metered:
    """An optical engine whose ``matmul`` is recorded by a :class:`ProductEnergy`; the rest is the engine's."""

    def __init__(self, opu: Any, energy: ProductEnergy):
        self._opu, self._energy = opu, energy

    def matmul(self, a: Any, b: Any, **kwargs: Any) -> Any:
        return self._energy.matmul(self._opu, a, b, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._opu, name)


def cpu_baseline(pairs: list[tuple[Any, Any]], *, repeats: int, threads: int = 1,
                 rapl_root: str | Path | None = RAPL_ROOT, label: str) -> BaselineMeasurement:
    """The CPU's energy for one pass over ``pairs`` (torch float32 ``a @ b`` of the same operands, on
    ``threads`` threads): measured over ``repeats`` passes, since one pass of small products is too short
    to measure, and divided by ``repeats``. Ops = 2 x the MACs of the products."""
    import torch

    if not (isinstance(repeats, int) and repeats >= 1):
        raise EnergyError(f"repeats must be a whole number >= 1, got {repeats!r}")
    if not pairs:
        raise EnergyError("no products to run on the CPU")
    tensors = [(torch.as_tensor(np.asarray(a), dtype=torch.float32), torch.as_tensor(np.asarray(b), dtype=torch.float32))
               for a, b in pairs]
    macs = sum(_macs(a.shape, b.shape) for a, b in tensors)

    def one_pass() -> None:
        for a, b in tensors:
            torch.matmul(a, b)

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        one_pass()  # warm-up (allocation, thread pool) outside the measurement
        total = measure_cpu(lambda: [one_pass() for _ in range(repeats)], 2.0 * macs * repeats, rapl_root=rapl_root,
                            label=f"{label} ({len(pairs)} product(s), {threads} thread(s))")
    finally:
        torch.set_num_threads(previous)
    return per_pass(total, repeats)


def _macs(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> int:
    """MACs of ``a @ b`` for operands of at least 2 dimensions: batch x M x K x N."""
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise EnergyError(f"products of matrices (2 dimensions or more) only, got {a_shape} @ {b_shape}")
    batch = int(np.prod(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]), dtype=np.int64))
    return batch * a_shape[-2] * a_shape[-1] * b_shape[-1]


def per_pass(total: BaselineMeasurement, repeats: int) -> BaselineMeasurement:
    """``total`` (``repeats`` identical passes) as the measurement of one pass: energy, times and ops over
    ``repeats``, the same mean power over 1/``repeats`` of the time."""
    term = total.term
    one = dataclasses.replace(term, end_s=term.start_s + (term.end_s - term.start_s) / repeats,
                              note=f"{term.note}; one pass = the mean of {repeats} passes".lstrip("; "))
    return dataclasses.replace(total, energy_j=total.energy_j / repeats, wall_s=total.wall_s / repeats,
                               cpu_s=total.cpu_s / repeats, ops=total.ops / repeats, term=one)


__all__ = ["ProductEnergy", "cpu_baseline", "per_pass"]
