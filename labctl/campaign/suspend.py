"""Campaign suspenders: Bluesky's own suspenders (``bluesky.suspenders``) watching readings that are taken
only when they mean something.

A bench is dark between points (each point lights what it needs and turns it off again), so a power
meter polled at any time would read the dark and suspend a healthy campaign. Here a :class:`Monitor`
takes its reading under the campaign's lock, so never while a point measures: at each checkpoint (the
campaign plan triggers it before every point), and then every ``poll_s`` only while one of its
suspenders is tripped, to see the bench recover. Each reading goes to the suspenders subscribed to it.

* power floor (:func:`power_monitor`, ``bluesky.suspenders.SuspendFloor``): the received optical power on
  a power meter channel, read with the light on: a laser channel switched on and, if given, a switch
  routed to the meter for the reading, both put back as they were afterwards.
* drift check (:func:`drift_monitor`, ``bluesky.suspenders.SuspendCeil``): the reference-product error of a
  calibrated weight-stationary core over its error at calibration
  (:meth:`labctl.opu.stationary.StationaryOPU.drift_check`); the core's lasers are put back as they were.

When one trips, the RunEngine suspends; the campaign plan does not start the next point while any is
tripped; on recovery the RunEngine rewinds to the checkpoint, the readings are taken again and the point
runs. A suspension that landed while a point measures (these readings are never taken then) would rewind
that point too: the replayed trigger waits for the point in flight (the lock) and measures it again, and
only the replayed measurement is stored, from its event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labctl.bench import Bench
from labctl.campaign.devices import PolledDevice, Status
from labctl.campaign.errors import CampaignError
from labctl.campaign.spec import DriftSuspend, PowerSuspend, Suspend
from labctl.errors import LabctlError
from labctl.units import w_to_dbm

log = logging.getLogger(__name__)


class Monitor(PolledDevice):
    """A reading taken only between points (under ``lock``): Readable, Triggerable and Subscribable.

    ``trigger`` (the campaign plan, at each checkpoint) takes a reading and hands it to the subscribers;
    while a subscriber reports itself ``tripped`` (a Bluesky suspender), a reading is taken every
    ``poll_s``. ``history`` keeps every reading (time, value).
    """

    def __init__(self, name: str, measure: Callable[[], float], *, lock: threading.Lock, poll_s: float,
                 units: str, source: str):
        super().__init__(name, poll_s)
        self._measure, self.lock = measure, lock
        self._units, self._source = units, source
        self.history: list[tuple[float, float]] = []

    def check(self) -> float:
        """Take a reading now (waiting for the point in flight, if any) and tell the subscribers."""
        with self.lock:
            value = float(self._measure())
        self.history.append((time.time(), value))
        self._notify(value)
        return value

    def get(self) -> float:
        """The last reading (one is taken if there is none yet)."""
        return self.history[-1][1] if self.history else self.check()

    @property
    def tripped(self) -> bool:
        """Whether a subscribed suspender says the bench is unfit."""
        return any(getattr(s, "tripped", False) for s in self._subscribers)

    def trigger(self) -> Status:
        return Status.run(self.check)

    def read(self) -> dict[str, Any]:
        return {self.name: {"value": self.get(), "timestamp": time.time()}}

    def describe(self) -> dict[str, Any]:
        return {self.name: {"source": self._source, "dtype": "number", "shape": [], "units": self._units}}

    def _on_subscribe(self, callback: Callable[..., None]) -> None:
        self.check()

    def _poll_once(self) -> None:
        if self.tripped:
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - a failed reading keeps the suspension; try again
                log.warning("%s: reading failed while suspended (%s); trying again in %g s",
                            self.name, exc, self.poll_s)


def power_monitor(bench: Bench, spec: PowerSuspend, lock: threading.Lock) -> Monitor:
    """The received optical power (dBm) on ``spec.meter``, read with ``spec.laser`` on and ``spec.switch``
    routed to ``spec.route``, both restored after the reading."""
    meter = bench.role(spec.meter, spec.channel)
    laser = bench.role(spec.laser, spec.laser_channel) if spec.laser else None
    switch = bench.role(spec.switch) if spec.switch else None

    def measure() -> float:
        was_on = bool(laser.output_enabled) if laser is not None else None
        route = int(switch.route) if switch is not None else None
        try:
            if laser is not None and not was_on:
                laser.output_enabled = True
            if switch is not None and route != spec.route:
                switch.route = spec.route
                switch.wait_for_switch()   # the mirror settles before the meter reads
            bench.settle(spec.settle_s)
            return float(w_to_dbm(max(float(meter.read_power()), 0.0)))
        finally:
            if switch is not None and route != spec.route and route >= 1:   # 0: no route yet, none to restore
                switch.route = route
            if laser is not None and not was_on:
                laser.output_enabled = False

    where = f"{spec.meter}" + (f" channel {spec.channel}" if spec.channel else "")
    return Monitor("received_power", measure, lock=lock, poll_s=spec.poll_s, units="dBm",
                   source=f"labctl:{where}:power (lit)")


def drift_monitor(bench: Bench, spec: DriftSuspend, calibration: Path, lock: threading.Lock) -> Monitor:
    """The drift ratio of a weight-stationary core: its reference-product RMS error now over the error
    at calibration time. The calibration is loaded (and checked against the bench) at once."""
    from labctl.opu.stationary import StationaryConfig, StationaryOPU

    def lit(action: Callable[[], Any]) -> Any:
        """``action()``, then every laser of the core that was off turned off again."""
        try:
            channels = StationaryConfig.from_bench(bench).cores[spec.core].channels
        except (LabctlError, IndexError) as exc:
            raise CampaignError(f"suspend.drift: core {spec.core} of this bench: {exc}") from None
        lasers = [bench.role(ch.laser, ch.laser_port) for ch in channels]
        was_on = [bool(laser.output_enabled) for laser in lasers]
        try:
            return action()
        finally:
            for laser, on in zip(lasers, was_on):
                if not on:
                    laser.output_enabled = False

    try:
        opu = lit(lambda: StationaryOPU(bench, calibration, core=spec.core))
    except LabctlError as exc:
        raise CampaignError(f"suspend.drift: the calibration {calibration} cannot be used on this bench: {exc}") \
            from None

    def measure() -> float:
        opu.invalidate()   # a point may have changed the core's settings: apply the calibrated state
        return float(lit(lambda: opu.drift_check(spec.threshold)).ratio)

    return Monitor("drift_ratio", measure, lock=lock, poll_s=spec.poll_s, units="1 (error / error at calibration)",
                   source=f"labctl:{opu.name}:drift_check")


def suspenders(spec: Suspend, bench: Bench, campaign_dir: Path, lock: threading.Lock) -> list[tuple[Monitor, Any]]:
    """The campaign's monitors, each with its Bluesky suspender (not installed yet)."""
    from bluesky.suspenders import SuspendCeil, SuspendFloor

    out: list[tuple[Monitor, Any]] = []
    if spec.power is not None:
        p = spec.power
        monitor = power_monitor(bench, p, lock)
        resume = p.resume_dbm if p.resume_dbm is not None else p.below_dbm
        out.append((monitor, SuspendFloor(monitor, suspend_thresh=p.below_dbm, resume_thresh=resume, sleep=p.sleep_s,
                                          tripped_message=f"received power below {p.below_dbm:g} dBm")))
    if spec.drift is not None:
        d = spec.drift
        path = Path(d.calibration)
        monitor = drift_monitor(bench, d, path if path.is_absolute() else campaign_dir / path, lock)
        resume = d.resume_below if d.resume_below is not None else d.threshold
        out.append((monitor, SuspendCeil(monitor, suspend_thresh=d.threshold, resume_thresh=resume, sleep=d.sleep_s,
                                         tripped_message=f"drift check: error {d.threshold:g}x its calibration's")))
    return out


__all__ = ["Monitor", "drift_monitor", "power_monitor", "suspenders"]
