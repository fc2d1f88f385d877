"""labctl roles as Bluesky devices (``bluesky.protocols``), so Bluesky plans drive a labctl bench.

* :class:`LaserPower` (Movable, Readable): a laser channel's output power in dBm.
* :class:`ReceivedPower` (Readable, Subscribable): a power meter channel in dBm; while subscribed (a
  suspender watching it) it is read every ``poll_s`` seconds, never while a measurement holds the lock.
* :class:`FibreLength` (Movable, Readable): a simulated fibre's length (``Bench.sim_adjust``).
* :class:`PointSelector` (Movable) and :class:`ExperimentPoint` (Triggerable, Readable): a campaign point
  as a detector; triggering it runs the selected point's experiment, reading it gives the point's record.

Readings follow event-model: ``{name: {"value": v, "timestamp": t}}``; ``describe`` gives data keys.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labctl.bench import Bench
from labctl.campaign.point import point_job, run_point
from labctl.campaign.spec import Campaign, Point
from labctl.errors import ConfigError
from labctl.units import dbm_to_w, w_to_dbm


class Status:
    """A ``bluesky.protocols.Status``: done when ``finish`` is called (from any thread)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[["Status"], None]] = []
        self._exception: BaseException | None = None

    @classmethod
    def run(cls, action: Callable[[], None]) -> "Status":
        """A status finished when ``action`` has run in its own thread (failed if it raised)."""
        status = cls()

        def work() -> None:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - handed to the RunEngine through the status
                status.finish(exc)
            else:
                status.finish()

        threading.Thread(target=work, name="labctl-bluesky-action", daemon=True).start()
        return status

    def finish(self, exception: BaseException | None = None) -> None:
        with self._lock:
            self._exception = exception
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def add_callback(self, callback: Callable[["Status"], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def exception(self, timeout: float | None = 0.0) -> BaseException | None:
        self._event.wait(timeout)
        return self._exception

    @property
    def done(self) -> bool:
        return self._event.is_set()

    @property
    def success(self) -> bool:
        return self.done and self._exception is None


def _reading(value: Any) -> dict[str, Any]:
    return {"value": value, "timestamp": time.time()}


def _number_key(source: str, units: str) -> dict[str, Any]:
    return {"source": source, "dtype": "number", "shape": [], "units": units}


class Device:
    """What every labctl Bluesky device has: a name, no parent, no configuration readings."""

    parent = None

    def __init__(self, name: str):
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def read_configuration(self) -> dict[str, Any]:
        return {}

    def describe_configuration(self) -> dict[str, Any]:
        return {}


class LaserPower(Device):
    """A laser channel's output power (dBm): ``set`` moves it, ``read`` reads it back."""

    def __init__(self, bench: Bench, laser: str = "laser", channel: int = 1, name: str = "laser_power"):
        super().__init__(name)
        self._role = bench.role(laser, channel)
        self._source = f"labctl:{laser}:{channel}:power"

    def set(self, value: float) -> Status:
        return Status.run(lambda: setattr(self._role, "power", dbm_to_w(float(value))))

    def read(self) -> dict[str, Any]:
        return {self.name: _reading(float(w_to_dbm(self._role.power)))}

    def describe(self) -> dict[str, Any]:
        return {self.name: _number_key(self._source, "dBm")}


class PolledDevice(Device):
    """A reading that subscribers (Bluesky suspenders) watch: while anyone is subscribed, a thread calls
    :meth:`_poll_once` every ``poll_s``; :meth:`_on_subscribe` gives a new subscriber its first reading."""

    def __init__(self, name: str, poll_s: float):
        super().__init__(name)
        self.poll_s = poll_s
        self._subscribers: list[Callable[..., None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _notify(self, value: float) -> None:
        now = time.time()
        for callback in list(self._subscribers):
            callback(value=value, timestamp=now, obj=self)

    def _on_subscribe(self, callback: Callable[..., None]) -> None:
        raise NotImplementedError

    def _poll_once(self) -> None:
        raise NotImplementedError

    def subscribe(self, callback: Callable[..., None], event_type: str | None = None, run: bool = True) -> int:
        self._subscribers.append(callback)
        if run:
            self._on_subscribe(callback)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name=f"labctl-poll-{self.name}", daemon=True)
            self._thread.start()
        return len(self._subscribers) - 1

    def clear_sub(self, callback: Callable[..., None], event_type: str | None = None) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)
        if not self._subscribers and self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._poll_once()


class ReceivedPower(PolledDevice):
    """A power meter channel (dBm). Subscribers (Bluesky suspenders) get a reading every ``poll_s``."""

    def __init__(self, bench: Bench, meter: str = "powermeter", channel: int = 1, name: str = "received_power",
                 poll_s: float = 1.0, lock: threading.Lock | None = None):
        super().__init__(name, poll_s)
        self._role = bench.role(meter, channel)
        self._source = f"labctl:{meter}:{channel}:power"
        #: Held by whoever measures on the bench, so a poll never lands inside a measurement.
        self.lock = lock or threading.Lock()

    def get(self) -> float:
        with self.lock:
            return float(w_to_dbm(self._role.read_power()))

    def read(self) -> dict[str, Any]:
        return {self.name: _reading(self.get())}

    def describe(self) -> dict[str, Any]:
        return {self.name: _number_key(self._source, "dBm")}

    def _on_subscribe(self, callback: Callable[..., None]) -> None:
        callback(value=self.get(), timestamp=time.time(), obj=self)

    def _poll_once(self) -> None:
        self._notify(self.get())


class FibreLength(Device):
    """The length (km) of a simulated fibre component; ``set`` changes it on the running simulation."""

    def __init__(self, bench: Bench, fibre: str = "edge_fibre", name: str = "fibre_length"):
        super().__init__(name)
        if bench.sim is None:
            raise ConfigError(bench.path, f"components.{fibre}", "a fibre's length changes only on a simulated "
                              "bench; on a real bench connect another spool")
        if bench.config.components.get(fibre, {}).get("type") != "fibre":
            fibres = sorted(n for n, spec in bench.config.components.items() if spec.get("type") == "fibre")
            raise ConfigError(bench.path, f"components.{fibre}", f"no fibre of that name; fibres: "
                              f"{', '.join(fibres) or '(none)'}")
        self._bench, self._fibre = bench, fibre

    def set(self, value: float) -> Status:
        return Status.run(lambda: self._bench.sim_adjust(self._fibre, length_km=float(value)))

    def read(self) -> dict[str, Any]:
        return {self.name: _reading(float(self._bench.sim.world.nodes[self._fibre].length_km))}

    def describe(self) -> dict[str, Any]:
        return {self.name: _number_key(f"labctl:{self._fibre}:length_km", "km")}


class PointSelector(Device):
    """Which campaign point the :class:`ExperimentPoint` detector measures next (its index)."""

    def __init__(self, detector: "ExperimentPoint", name: str = "point"):
        super().__init__(name)
        self._detector = detector

    def set(self, value: int) -> Status:
        self._detector.select(int(value))
        status = Status()
        status.finish()
        return status

    def read(self) -> dict[str, Any]:
        return {self.name: _reading(self._detector.selected)}

    def describe(self) -> dict[str, Any]:
        return {self.name: {"source": "labctl:campaign:point", "dtype": "integer", "shape": []}}


class ExperimentPoint(Device):
    """A campaign point as a detector: ``trigger`` runs the selected point (in a thread, so the RunEngine
    stays responsive), ``read`` gives its key, status and whole record (JSON)."""

    def __init__(self, campaign: Campaign, points_dir: Path, bench: Bench | None = None,
                 lock: threading.Lock | None = None, name: str = "point", points: list[Point] | None = None):
        super().__init__(name)
        self._campaign, self._points_dir, self._bench = campaign, points_dir, bench
        #: The points it can measure, by index: the campaign's, and those an adaptive sweep adds.
        self.points = points if points is not None else list(campaign.points)
        self.lock = lock or threading.Lock()
        self.selected = -1
        self.record: dict[str, Any] | None = None
        self._pending: Status | None = None

    def select(self, index: int) -> None:
        if not 0 <= index < len(self.points):
            raise IndexError(f"the campaign has points 0..{len(self.points) - 1}, not {index}")
        self.selected, self.record = index, None

    def trigger(self) -> Status:
        job = point_job(self._campaign, self.points[self.selected], self._points_dir)

        def measure() -> None:
            with self.lock:
                self.record = run_point(job, self._bench)

        self._pending = Status.run(measure)
        return self._pending

    def wait(self) -> None:
        """Wait until the point in flight (if any) has ended: an experiment is never cut off mid-point by a
        pause, and its bench and results file are closed before the campaign ends."""
        if self._pending is not None:
            self._pending.exception(timeout=None)

    def read(self) -> dict[str, Any]:
        record = self.record or {}
        return {f"{self.name}_key": _reading(record.get("key", "")),
                f"{self.name}_status": _reading(record.get("status", "")),
                f"{self.name}_record": _reading(json.dumps(record, default=str))}

    def describe(self) -> dict[str, Any]:
        return point_data_keys(self.name)


def point_data_keys(name: str = "point") -> dict[str, Any]:
    """The event-model data keys of a campaign point's reading (key, status and the record as JSON)."""
    return {f"{name}_{field}": {"source": f"labctl:campaign:{field}", "dtype": "string", "shape": []}
            for field in ("key", "status", "record")}


__all__ = ["Device", "ExperimentPoint", "FibreLength", "LaserPower", "PointSelector", "ReceivedPower", "Status",
           "point_data_keys"]
