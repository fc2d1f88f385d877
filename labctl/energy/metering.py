"""The bench view of a run: what the instruments on the table drew while it computed, read from the bench.

:class:`BenchMeter` brackets a run on the bench clock (the simulated clock in simulation, wall time on
hardware) and fills the ``bench`` view of an :class:`~labctl.energy.ledger.EnergyLedger`. Each drawing
item is accounted once, from the best source the bench has for it:

1. **a power analyzer** whose input covers it (the bench file's ``measures:`` list): the energy the
   analyzer integrated from :meth:`start` to :meth:`stop`; one measured term per feed;
2. **its own readbacks**: an optical core controller's input power (its board's monitor), a DC source
   channel's measured V x I (the power delivered to its load; the supply's own losses are not in it).
   Readbacks are snapshots, taken at start, at stop and at every :meth:`sample`; between two snapshots
   the draw is taken as their mean, so a load that changes faster than the sampling is only
   approximated: put such an instrument on an analyzer;
3. **its idle power from the instrument table** (:func:`sim_backends.idle_power_datasheet`): a
   datasheet term when the figure is published, a model term ("assumed") when it is an estimate.

An item with none of these is named in the view's notes, so a reader sees what the total leaves out.
If the run fails (an exception inside the ``with``), nothing is recorded.
In simulation every reading comes from the simulated instruments' draws, which follow their state and
the physics; nothing here knows it is simulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labctl.energy.ledger import EnergyLedger
from labctl.energy.provenance import Datasheet, EnergyError, Measured, Model, PowerTerm
from sim_backends import idle_power_datasheet

#: Roles whose instruments report their own draw, and how (see :meth:`BenchMeter._readbacks`).
READBACK_ROLES = ("optical_core", "dc_source")


#: How much shorter than the run an analyzer's integration time may be (beyond its reading's resolution)
#: before its figure is refused: the meter's clock and the bench's agree far better than this; a timer or a
#: stop during the run does not.
FEED_TIME_TOLERANCE = 0.01


class MeteringError(EnergyError):
    """The bench cannot be metered as asked (a meter already running, stopped twice, a bad reading)."""


@dataclass(frozen=True)
class Feed:
    """A power analyzer and the items on its input."""

    analyzer: str
    measures: tuple[str, ...]

    @property
    def device(self) -> str:
        return f"{self.analyzer} feed ({', '.join(self.measures)})"


@dataclass
class _Readback:
    """One item read back by snapshots: how to read it, and the (time, W) snapshots so far."""

    instrument: str
    device: str
    read: Callable[[], float]
    provenance: Measured
    note: str
    samples: list[tuple[float, float]]


class BenchMeter:
    """Meters a bench over a run and records the bench view into ``ledger``.

    Use as a context manager (``with BenchMeter(bench) as meter: ...``) or call :meth:`start` and
    :meth:`stop`. Record the run's ops on ``meter.ledger`` (``add_stats``, ``add_offload``) with times from
    :meth:`now`. On an exception nothing is recorded.

    Metering never zeroes an analyzer: it reads the integrated energy and time at start and at stop and
    takes the difference, so meters may nest or overlap on one bench (a run metered by the runner, a
    generation metered inside it). An integration it finds running is left running; one it started, it
    stops. Only a timed-up or errored integration is reset, since it can no longer accumulate.
    """

    def __init__(self, bench: Any, ledger: EnergyLedger | None = None, *, label: str = ""):
        self.bench = bench
        self.ledger = ledger if ledger is not None else EnergyLedger(label=label)
        self.feeds = tuple(Feed(name, tuple(spec.measures or ())) for name, spec in bench.config.instruments.items()
                           if spec.role == "power_analyzer")
        self.start_s: float | None = None
        self.end_s: float | None = None
        self._readbacks: list[_Readback] = []
        self._started_here: set[str] = set()  # analyzers this meter started (and so stops)
        self._at_start: dict[str, tuple[float, float]] = {}  # analyzer -> (energy J, time s) at start

    # -- the run's clock ------------------------------------------------------------------------------

    def now(self) -> float:
        """The bench clock, in s: the times ops and terms are recorded on."""
        return float(self.bench.clock.now())

    # -- bracketing -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Make every analyzer integrate, read where each stands, and take the first readback snapshot."""
        if self.start_s is not None:
            raise MeteringError("this meter has already started; use a new BenchMeter for another run")
        for feed in self.feeds:
            analyzer = self.bench.role(feed.analyzer)
            state = analyzer.integration_state
            if state in ("timeup", "error"):
                analyzer.reset_integration()
                state = "reset"
            if state != "running":
                analyzer.start_integration()
                self._started_here.add(feed.analyzer)
        self.start_s = self.now()
        for feed in self.feeds:
            analyzer = self.bench.role(feed.analyzer)
            self._at_start[feed.analyzer] = (_reading(feed.device, analyzer.integrated_energy()),
                                             _reading(feed.device, analyzer.integration_time()))
        self._readbacks = self._find_readbacks()
        self.sample()

    def sample(self) -> None:
        """Take one readback snapshot of every item read back (call it when a load changes, e.g. after a
        program), on the bench clock."""
        if self.start_s is None or self.end_s is not None:
            raise MeteringError("sample() between start() and stop() only")
        t = self.now()
        for item in self._readbacks:
            item.samples.append((t, _reading(item.device, item.read())))

    def stop(self) -> EnergyLedger:
        """Read the analyzers (stopping those this meter started), take the last snapshot and record the
        bench view; returns the ledger."""
        if self.start_s is None:
            raise MeteringError("stop() before start()")
        if self.end_s is not None:
            raise MeteringError("this meter has already stopped")
        end = self.now()
        at_stop = {}
        for feed in self.feeds:
            analyzer = self.bench.role(feed.analyzer)
            at_stop[feed.analyzer] = (_reading(feed.device, analyzer.integrated_energy()),
                                      _reading(feed.device, analyzer.integration_time()))
        self._stop_own()
        for item in self._readbacks:
            item.samples.append((end, _reading(item.device, item.read())))
        self.end_s = end
        t0, t1 = self.start_s, end
        self.ledger.set_window("bench", t0, t1)
        for feed in self.feeds:
            self._record_feed(feed, t0, t1, at_stop[feed.analyzer])
        for item in self._readbacks:
            self._record_readback(item, t0, t1)
        for name, sheet, why in self._datasheet_items():
            if sheet is None:
                self.ledger.add_note("bench", f"{name}: not in the total ({why})")
                continue
            if sheet.kind == "assumed":  # no published figure: an estimate is a model, never a datasheet
                provenance: Datasheet | Model = Model("assumed idle draw (no published figure)",
                                                      {"P_w": sheet.watts, "basis": sheet.note})
            else:
                provenance = Datasheet(sheet.watts, "W", sheet.document, f"{sheet.page} ({sheet.kind})")
            self.ledger.add(PowerTerm(name, sheet.watts, provenance, start_s=t0, end_s=t1,
                                      note=f"{sheet.kind} idle draw; no analyzer or readback covers it"),
                            view="bench")
        return self.ledger

    def abort(self) -> None:
        """Stop the analyzers this meter started, recording nothing (the run failed)."""
        if self.start_s is None or self.end_s is not None:
            return
        self.end_s = self.now()
        try:
            self._stop_own()
        except Exception:  # noqa: BLE001 -- already failing; the shutdown report covers the bench
            pass

    def _stop_own(self) -> None:
        for name in sorted(self._started_here):
            analyzer = self.bench.role(name)
            if analyzer.integration_state == "running":  # a timer may have stopped it already
                analyzer.stop_integration()

    def __enter__(self) -> BenchMeter:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.abort()

    # -- what covers what -----------------------------------------------------------------------------

    def _metered(self) -> set[str]:
        return {name for feed in self.feeds for name in feed.measures}

    @property
    def read_back(self) -> tuple[str, ...]:
        """The instruments metered by their own readbacks (on no analyzer's feed, with a readback role): only
        these change between :meth:`sample` snapshots."""
        metered = self._metered()
        return tuple(name for name, spec in self.bench.config.instruments.items()
                     if name not in metered and spec.role in READBACK_ROLES)

    def _find_readbacks(self) -> list[_Readback]:
        found = []
        for name in self.read_back:
            spec = self.bench.config.instruments[name]
            if spec.role == "optical_core":
                role = self.bench.role(name)
                found.append(_Readback(
                    name, name, role.board_power,
                    Measured(f"{name} ({spec.driver})", "board_power(): the board's input power monitor"),
                    "the board's input power (its rails: rail_powers())", []))
            else:
                for channel in spec.channels or [None]:
                    role = self.bench.role(name, channel=channel)
                    label = name if channel is None else f"{name} ch{channel}"
                    found.append(_Readback(
                        name, label, lambda role=role: _delivered_w(role),
                        Measured(f"{label} ({spec.driver})", "measure_voltage() x measure_current() while "
                                 "output_enabled (0 W while off: the output is open)"),
                        "power delivered to the load (negative current readbacks, the readback offset, count as 0 A); "
                        "the supply's own draw is not in it", []))
        return found

    def _datasheet_items(self) -> list[tuple[str, Any, str]]:
        covered = self._metered() | {r.instrument for r in self._readbacks}
        items = []
        for name, spec in self.bench.config.instruments.items():
            if name in covered:
                continue
            sheet = idle_power_datasheet(spec.driver)
            items.append((name, sheet, f"no analyzer, readback or datasheet figure for {spec.driver}"))
        return items

    # -- recording ------------------------------------------------------------------------------------

    def _record_feed(self, feed: Feed, t0: float, t1: float, at_stop: tuple[float, float]) -> None:
        analyzer = self.bench.role(feed.analyzer)
        (e0, s0), (e1, s1) = self._at_start[feed.analyzer], at_stop
        energy = _reading(f"{feed.device} (energy since start)", e1 - e0)
        meter_time = _reading(f"{feed.device} (time since start)", s1 - s0)
        span = t1 - t0
        if span <= 0:
            self.ledger.add_note("bench", f"{feed.device}: the run took no time on the bench clock; "
                                          f"{energy:g} J integrated over {meter_time:g} s not recorded")
            return
        if meter_time + analyzer.integration_time_resolution < (1 - FEED_TIME_TOLERANCE) * span:
            self.ledger.add_note("bench", f"{feed.device}: integrated only {meter_time:.6g} s of the run's "
                                          f"{span:.6g} s (its timer expired, or it was stopped during the run), "
                                          f"so its {energy:.6g} J are not the run's and are not in the total")
            return
        spec = self.bench.config.instruments[feed.analyzer]
        command = analyzer.energy_command
        self.ledger.add(PowerTerm(
            feed.device, energy / span, Measured(f"{feed.analyzer} ({spec.driver})", command), start_s=t0, end_s=t1,
            note=f"integrated {energy:.6g} J over the meter's {meter_time:.6g} s"), view="bench")

    def _record_readback(self, item: _Readback, t0: float, t1: float) -> None:
        samples = item.samples
        span = t1 - t0
        if span <= 0:
            power = samples[-1][1]
        else:  # trapezoids between snapshots: the mean of each pair over the time between them
            energy = sum(0.5 * (pa + pb) * (tb - ta) for (ta, pa), (tb, pb) in zip(samples, samples[1:]))
            power = energy / span
        self.ledger.add(PowerTerm(item.device, power, item.provenance, start_s=t0, end_s=t1,
                                  note=f"{item.note}; mean of {len(samples)} snapshots"), view="bench")


def _delivered_w(channel: Any) -> float:
    """What a DC output delivers: V x I while on; an output that is off is open and delivers nothing.

    A bench DC output sources only (one quadrant): a slightly negative current readback from a lightly
    loaded output is the readback's offset (of the order of mA on bench supplies), so the current is
    floored at 0 A; a negative voltage means the output is wired reversed and is an error."""
    if not channel.output_enabled:
        return 0.0
    volts, amps = channel.measure_voltage(), channel.measure_current()
    if volts < 0:
        raise MeteringError(f"{channel}: read back {volts:g} V: a sourcing output cannot be negative; check "
                            "its wiring and polarity")
    return volts * max(amps, 0.0)


def _reading(what: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MeteringError(f"{what}: the reading {value!r} is not a number") from None
    if number != number or number < 0 or number == float("inf"):
        raise MeteringError(f"{what}: the reading {number!r} is not a draw (NaN, infinite or negative); "
                            "check the instrument and its wiring")
    return number


__all__ = ["BenchMeter", "Feed", "MeteringError", "READBACK_ROLES"]
