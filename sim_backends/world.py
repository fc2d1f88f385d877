"""The one physics model of a simulated bench: a graph of components that pull signals upstream.

Every simulated instrument and every passive part (fibre, modulator, photodiode, heater) is a
``Component`` with named ports. A connection joins one output port to one input port. Signals are
evaluated on demand: a detector asks the world for the light arriving at its input at the times
``t`` it samples; the world asks the upstream component for its output at those times, and so on
back to the lasers and the AWG. So turning a laser off, retuning it, moving a switch or a bias
changes what every downstream instrument reads, with no bookkeeping.

Light is a list of ``Lightwave`` (one per optical carrier): a wavelength and a complex field
envelope in sqrt(W). Carriers of different wavelengths add in power at a detector (incoherent
summation). Electrical signals are arrays of volts.

``World.rng`` is the bench's shared seeded random generator; ``World.rng_for(name)`` gives a user
(e.g. one optical core run from its own thread) a stream of its own, derived from the seed and the
name, so its noise does not depend on the order in which threads draw. ``World.time`` is the
simulated clock, advanced by instruments that take time (averaging, acquisition), never by sleeping,
and never backwards. Every simulated instrument, and every powered part (the EDFA's pump), draws
electrical power from its state (``electrical_power_w``); the world integrates those draws on its
clock, piecewise constant between clock steps (``draws_w``, ``energy_j``), so a bench's energy is
computed from what it did.

The graph is read through a public API: ``nodes`` (read-only), ``source_of`` / ``destinations_of``
(one hop), ``upstream_nodes`` (transitively), ``light_into`` / ``voltage_into`` (what an input
receives) and ``evaluate`` (what an output produces, inside the current evaluation's memo).
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Callable, ClassVar

import numpy as np

from sim_backends.physics.power import DrawError

OPTICAL_IN = "optical_in"
OPTICAL_OUT = "optical_out"
ELECTRICAL_IN = "electrical_in"
ELECTRICAL_OUT = "electrical_out"


class WiringError(ValueError):
    """A connection names a port that does not exist or joins incompatible ports."""


class ClockError(ValueError):
    """The simulated clock was asked to go back (or to a non-number): energy and events would be undone."""


@dataclass
class Lightwave:
    """One optical carrier: wavelength in m and complex field envelope in sqrt(W)."""

    wavelength: float
    field: np.ndarray | complex

    @property
    def power(self) -> np.ndarray | float:
        return np.abs(self.field) ** 2

    def scaled(self, amplitude) -> "Lightwave":
        """Return the carrier with its field multiplied by ``amplitude`` (scalar or array)."""
        return Lightwave(self.wavelength, self.field * amplitude)


def total_power(light: list[Lightwave], t: np.ndarray) -> np.ndarray:
    """Optical power in W at times ``t``: carriers add in power (incoherent detection)."""
    power = np.zeros(np.shape(t))
    for carrier in light:
        power = power + carrier.power
    return power


def _time_key(t) -> tuple:
    """A cheap identity for a time grid (exact for short grids, endpoints + sum for long ones)."""
    arr = np.asarray(t, dtype=float)
    if arr.size <= 16:
        return (arr.shape, arr.tobytes())
    flat = arr.reshape(-1)
    return (arr.shape, float(flat[0]), float(flat[1]), float(flat[-1]), float(flat.sum()))


def _read_only(values, shape: tuple) -> np.ndarray:
    """``values`` as a read-only array of ``shape`` (what ``np.broadcast_to`` gives), without broadcasting an
    array that already has it: a static evaluation pulls hundreds of heater voltages."""
    if isinstance(values, np.ndarray) and values.shape == shape:
        view = values.view()
        view.flags.writeable = False
        return view
    return np.broadcast_to(values, shape)


class Component:
    """Something with ports in the bench graph. ``PORTS`` maps port name -> port kind."""

    PORTS: ClassVar[dict[str, str]] = {}
    world: "World"

    def ports(self) -> dict[str, str]:
        return dict(self.PORTS)

    def optical_output(self, port: str, t: np.ndarray) -> list[Lightwave]:
        """Light leaving ``port`` at times ``t``."""
        raise NotImplementedError(f"{type(self).__name__} has no optical output {port!r}")

    def electrical_output(self, port: str, t: np.ndarray) -> np.ndarray:
        """Voltage at output ``port`` at times ``t``, in V."""
        raise NotImplementedError(f"{type(self).__name__} has no electrical output {port!r}")

    def input_resistance(self, port: str) -> float:
        """Load an electrical input presents, in ohm (inf = open circuit)."""
        return float("inf")

    def modulation_period(self) -> float | None:
        """Period in s of any repeating signal this component generates, or None if static."""
        return None


def model_parameter(name: str) -> property:
    """A node parameter held by the node's frozen device ``model`` (a dataclass): read from it, and
    written as a validated copy (``dataclasses.replace``), so a part changed on a running bench is
    checked like one built from a bench file and everything derived from the model follows."""
    return property(lambda node: getattr(node.model, name),
                    lambda node, value: setattr(node, "model", replace(node.model, **{name: value})),
                    doc=f"``{name}`` of this part's device model (settable on a running bench).")


class World:
    """The shared physical state of one simulated bench."""

    def __init__(self, seed: int | None = 0, temperature_k: float = 295.0):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        # entropy of the named streams: the seed, or (unseeded world) fresh entropy fixed for this world
        self._stream_entropy = np.random.SeedSequence(seed).entropy
        self._streams: dict[str, np.random.Generator] = {}
        self._time = 0.0
        #: joules each drawing bench item drew since the world was built (see ``energy_j``)
        self._energy: dict[str, float] = {}
        self._drawers: list[tuple[str, Component]] | None = None
        #: bumped by every ``connect``: parts that cache what their outputs load (heaters) re-read it
        self.wiring_version = 0
        self.temperature_k = temperature_k
        self._nodes: dict[str, Component] = {}
        self._nodes_view: Mapping[str, Component] = MappingProxyType(self._nodes)
        self._upstream: dict[tuple[str, str], tuple[str, str]] = {}
        self._downstream: dict[tuple[str, str], tuple[str, str]] = {}
        # Within one measurement, an output evaluated at the same times is evaluated once: the same
        # light reaches every branch (one noise realisation), and fan-out does not multiply the cost.
        self._depth = 0
        self._memo: dict[tuple, Any] = {}
        #: Wall time spent evaluating the physics (outermost evaluations), for benchmarks' cost split.
        self.physics_seconds = 0.0
        #: Inside ``evaluation(static=True)``: sources are constant over the walk-off spread.
        self.static_evaluation = False
        #: Held by every outermost evaluation: instruments driven from several threads (parallel optical
        #: cores) share this one world; its memo, clock and random generator are not thread-safe.
        self.lock = threading.RLock()
        #: Faults acting on the physics (installed by ``sim_backends.faults``): per ``(node, port)``, functions
        #: ``(t, value) -> value`` applied to what an output produces / to what an input receives.
        self.output_faults: dict[tuple[str, str], list[Callable]] = {}
        self.input_faults: dict[tuple[str, str], list[Callable]] = {}

    # -- building -------------------------------------------------------------------------------

    def add(self, name: str, component: Component) -> Component:
        if name in self._nodes:
            raise WiringError(f"two bench items are named {name!r}")
        component.world = self
        self._nodes[name] = component
        self._drawers = None
        return component

    @property
    def nodes(self) -> Mapping[str, Component]:
        """The bench items by name (read-only: add them with ``add``, join them with ``connect``)."""
        return self._nodes_view

    # -- the simulated clock and the electrical draws integrated on it ---------------------------

    @property
    def time(self) -> float:
        """The simulated clock in s. Setting it forward integrates every item's electrical draw over
        the step (the state in force during the step is the state when the clock moves); it never
        goes back (``ClockError``)."""
        return self._time

    @time.setter
    def time(self, value: float) -> None:
        new = float(value)
        with self.lock:
            if not new >= self._time:  # NaN included
                raise ClockError(f"the simulated clock cannot go from {self._time!r} s back to {new!r} s")
            if new > self._time:
                self._integrate(self._time, new)
            self._time = new

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) atomically; the new time."""
        with self.lock:
            self.time = self._time + float(seconds)
            return self._time

    def advance_to(self, t: float) -> float:
        """Move the clock to ``t`` unless it is already later (another thread's instrument moved it
        meanwhile: the clock never goes back); the new time."""
        with self.lock:
            if float(t) > self._time:
                self.time = t
            return self._time

    def _drawing(self) -> list[tuple[str, Component]]:
        """The bench items that draw electrical power of their own (instruments and powered parts such as
        the EDFA, not passive parts)."""
        if self._drawers is None:
            self._drawers = [(name, node) for name, node in self._nodes.items()
                             if callable(getattr(node, "electrical_power_w", None))]
        return self._drawers

    def _integrate(self, start_s: float, end_s: float) -> None:
        for name, node in self._drawing():
            energy = float(node.energy_between_j(start_s, end_s))
            if not math.isfinite(energy) or energy < 0.0:
                raise DrawError(f"{name} drew {energy!r} J over [{start_s}, {end_s}] s: not a finite, "
                                 "non-negative energy (a simulator bug)")
            self._energy[name] = self._energy.get(name, 0.0) + energy

    def draws_w(self) -> dict[str, float]:
        """What each drawing bench item draws from the mains now, in W, from its state (the items
        with an ``electrical_power_w`` model: every simulated instrument and powered part)."""
        with self.lock:
            return {name: float(node.electrical_power_w()) for name, node in self._drawing()}

    def energy_j(self, names: Iterable[str] | None = None) -> float:
        """Joules drawn by ``names`` (every drawing item if None) since the world was built, on the
        simulated clock. A name that is not on the bench, or is a passive part (its source's draw
        holds its power), is a ``WiringError``."""
        with self.lock:
            drawing = dict(self._drawing())
            chosen = list(drawing) if names is None else [names] if isinstance(names, str) else list(names)
            for name in chosen:
                if name not in drawing:
                    why = ("has no electrical draw model: a passive part (the instrument feeding it draws its "
                           "power)" if name in self._nodes
                           else f"is not on the bench; items: {', '.join(sorted(self._nodes))}")
                    raise WiringError(f"{name!r} {why}")
            return float(sum(self._energy.get(name, 0.0) for name in chosen))

    def rng_for(self, name: str) -> np.random.Generator:
        """The random stream of one named user (e.g. an optical core), independent of every other's.

        Derived from the world's seed and ``name`` alone, so a user's draws do not depend on what
        other users (other threads) drew before; the same name gets the same generator back, whose
        stream continues where it stopped."""
        with self.lock:
            stream = self._streams.get(name)
            if stream is None:
                key = np.random.SeedSequence(self._stream_entropy, spawn_key=(zlib.crc32(name.encode()),))
                stream = self._streams[name] = np.random.default_rng(key)
            return stream

    def connect(self, source: str, destination: str) -> None:
        """Join output ``"node.port"`` to input ``"node.port"``."""
        src = self._port(source)
        dst = self._port(destination)
        src_kind = self._nodes[src[0]].ports()[src[1]]
        dst_kind = self._nodes[dst[0]].ports()[dst[1]]
        expected = {OPTICAL_OUT: OPTICAL_IN, ELECTRICAL_OUT: ELECTRICAL_IN}.get(src_kind)
        if expected is None:
            raise WiringError(f"{source} is an input ({src_kind}); a connection starts at an output")
        if dst_kind != expected:
            raise WiringError(f"cannot connect {source} ({src_kind}) to {destination} ({dst_kind})")
        if dst in self._upstream:
            raise WiringError(f"{destination} is already fed by {'.'.join(self._upstream[dst])}")
        if src in self._downstream:
            raise WiringError(f"{source} already feeds {'.'.join(self._downstream[src])}; add a splitter")
        self._upstream[dst] = src
        self._downstream[src] = dst
        self.wiring_version += 1

    def _port(self, ref: str) -> tuple[str, str]:
        node, _, port = ref.strip().partition(".")
        if node not in self._nodes:
            raise WiringError(f"unknown bench item {node!r} in {ref!r}; items: {', '.join(sorted(self._nodes))}")
        ports = self._nodes[node].ports()
        if port not in ports:
            raise WiringError(f"{node!r} has no port {port!r}; its ports: {', '.join(ports)}")
        return node, port

    # -- graph ----------------------------------------------------------------------------------

    def source_of(self, node: str, port: str) -> tuple[str, str] | None:
        """The output ``(node, port)`` feeding input ``node.port``, or None if nothing is connected
        (a WiringError for a node or port the bench does not have)."""
        return self._upstream.get(self._port(f"{node}.{port}"))

    def destinations_of(self, node: str, port: str) -> list[tuple[str, str]]:
        """The inputs ``(node, port)`` that output ``node.port`` feeds (empty if unconnected; a
        WiringError for a node or port the bench does not have)."""
        dest = self._downstream.get(self._port(f"{node}.{port}"))
        return [] if dest is None else [dest]

    def upstream_nodes(self, node: str) -> set[str]:
        """Every bench item whose output reaches an input of ``node``, directly or through others
        (``node`` itself only if a loop feeds it back)."""
        if node not in self._nodes:
            raise WiringError(f"unknown bench item {node!r}; items: {', '.join(sorted(self._nodes))}")
        feeding: dict[str, set[str]] = {}
        for (dst, _), (src, _) in self._upstream.items():
            feeding.setdefault(dst, set()).add(src)
        found: set[str] = set()
        stack = list(feeding.get(node, ()))
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(feeding.get(current, ()))
        return found

    # -- evaluation ---------------------------------------------------------------------------

    def light_into(self, node: str, port: str, t: np.ndarray) -> list[Lightwave]:
        """Light arriving at input ``node.port`` at times ``t`` (empty list if unconnected)."""
        source = self._upstream.get((node, port))
        if source is None:
            return []
        light = self.evaluate(*source, t, optical=True)
        for fault in self.input_faults.get((node, port), ()):
            light = fault(t, light)
        return light

    def voltage_into(self, node: str, port: str, t: np.ndarray) -> np.ndarray:
        """Voltage arriving at electrical input ``node.port`` (0 V if unconnected)."""
        source = self._upstream.get((node, port))
        if source is None:
            return np.zeros(np.shape(t))
        return _read_only(self.evaluate(*source, t, optical=False), np.shape(t))

    def evaluate(self, node: str, port: str, t, *, optical: bool):
        """What output ``node.port`` produces at times ``t`` (light if ``optical``, else volts), with
        its output faults applied; memoised for the duration of the outermost evaluation (inside
        ``evaluation()`` a pull of the same output at the same times sees the same noise)."""
        with self.lock:  # re-entrant: the pulls inside one evaluation take it again cheaply
            return self._evaluate_locked((node, port), t, optical)

    def _evaluate_locked(self, source: tuple[str, str], t, optical: bool):
        key = (source, optical, _time_key(t)) if self._depth else None
        if key is not None and key in self._memo:
            return self._memo[key]
        component = self._nodes[source[0]]
        started = time.perf_counter() if self._depth == 0 else None
        self._depth += 1
        try:
            value = component.optical_output(source[1], t) if optical else component.electrical_output(source[1], t)
        finally:
            self._depth -= 1
            if started is not None:
                self._memo.clear()
                self.physics_seconds += time.perf_counter() - started
        for fault in self.output_faults.get(source, ()):
            value = fault(t, value)
        if key is not None:
            self._memo[key] = value
        return value

    @contextmanager
    def evaluation(self, static: bool = False, rng: np.random.Generator | None = None):
        """One outermost evaluation spanning several pulls: every output evaluated at the same times
        inside it is evaluated once, so all the pulls see one noise realisation (e.g. the light out of
        a modulator and the same light after the network, whose ratio is the network's transmission).

        ``static``: the caller asserts that every source is constant over the fibres' walk-off spread
        (ns) around the requested instants, so fibres may delay all carriers by one group delay
        instead of re-evaluating their input once per carrier (``static_evaluation``).
        ``rng``: the generator the parts draw their noise from inside this evaluation (e.g. a
        ``rng_for`` stream, so what one core's evaluation draws does not depend on other cores);
        ``self.rng`` again afterwards."""
        with self.lock:
            started = time.perf_counter() if self._depth == 0 else None
            previous, shared = self.static_evaluation, self.rng
            self.static_evaluation = previous or static
            if rng is not None:
                self.rng = rng
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
                self.static_evaluation, self.rng = previous, shared
                if started is not None:
                    self._memo.clear()
                    self.physics_seconds += time.perf_counter() - started

    def load_on(self, node: str, port: str) -> float:
        """Resistance loading electrical output ``node.port``, in ohm (inf when open)."""
        dest = self._downstream.get((node, port))
        if dest is None:
            return float("inf")
        return self._nodes[dest[0]].input_resistance(dest[1])

    def modulation_period(self) -> float | None:
        """The longest repetition period of any signal source on the bench (None if all static)."""
        periods = [p for c in self._nodes.values() if (p := c.modulation_period())]
        return max(periods) if periods else None

    def average_power_into(self, node: str, port: str, duration: float, points: int = 8192) -> float:
        """Mean optical power into ``node.port`` over ``duration`` s from now, in W.

        When sources repeat, the average runs over one whole period on an even grid (so a modulated
        signal averages exactly); otherwise over ``duration``. Advances the clock by ``duration``.
        """
        period = self.modulation_period()
        span = period if period else duration
        n = points if period else 1
        t = self.time + (np.arange(n) + self.rng.random()) * (span / n)
        power = total_power(self.light_into(node, port, t), t)
        self.advance(duration)
        return float(np.mean(power))

    def snapshot(self) -> dict[str, Any]:
        """Settings of every component (for tests and debugging)."""
        return {name: getattr(c, "state", lambda: {})() for name, c in self._nodes.items()}
