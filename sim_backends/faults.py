"""Fault injection for the simulated bench: what goes wrong on a real bench, on demand and reproducibly.

Two families of faults:

* **transport** faults act on one instrument's VISA traffic (the library's open/read/write call the
  :class:`FaultInjector`): a read that times out, a connection that drops and stays away until some
  simulated seconds or some open attempts have passed, a garbled reply, an entry pushed onto the
  error queue, a slow reply (it advances the simulated clock; slower than the session's timeout, the
  read times out). Sessions opened before a disconnect stay dead: the resource must be re-opened.
* **physics** faults act on the world (``World.output_faults`` / ``World.input_faults``): a laser mode
  hop (wavelength and power jump), a bias drift (a voltage ramp added to a bias output, i.e. a phase
  drift of the modulator it drives), a fibre cut (no light leaves the item) and a saturating detector
  (optical power at its input clipped).

Faults come from the bench file (``instruments.<name>.sim.faults``, validated by :data:`FAULT_ADAPTER`)
or at run time (``library.inject(name, "timeout", ...)`` / ``with library.injected(...)``). Random draws
use a generator seeded from the bench seed, apart from the physics noise, so a run with the same seed
injects the same faults at the same operations. Every fault that fires is in :attr:`FaultInjector.log`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Iterator, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pyvisa import constants, errors

from sim_backends.scpi import ScpiError
from sim_backends.world import ELECTRICAL_OUT, OPTICAL_IN, OPTICAL_OUT, Lightwave, World

#: Offset mixed into the bench seed so fault draws never share a stream with the physics noise.
_FAULT_STREAM = 0xFA17


class FaultError(ValueError):
    """A fault that cannot be injected (unknown instrument, port or parameter); the message says why."""


# -- fault descriptions (bench file ``instruments.<name>.sim.faults`` entries) -----------------------------


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_s: float = Field(0.0, ge=0, description="simulated seconds after injection before it is armed")


class _TransportFault(_Fault):
    probability: float = Field(1.0, gt=0, le=1, description="chance that it fires at each eligible I/O operation")
    count: int | None = Field(1, ge=1, description="how many times it fires (null: every time)")


class TimeoutFault(_TransportFault):
    """A read gets no reply: the pending reply is lost and the read fails after the session timeout."""

    kind: Literal["timeout"] = "timeout"


class DisconnectFault(_TransportFault):
    """The resource goes away: open sessions fail with VI_ERROR_CONN_LOST, opening fails with
    VI_ERROR_RSRC_NFOUND until ``down_s`` simulated seconds or ``down_attempts`` open attempts have
    passed (whichever comes first; neither = until the fault is cleared)."""

    kind: Literal["disconnect"] = "disconnect"
    during: Literal["any", "read", "write"] = Field("any", description="operations at which it may fire "
                                                    "('read': the command arrived, its reply is lost)")
    down_s: float | None = Field(1.0, ge=0)
    down_clock: Literal["simulated", "wall"] = Field("simulated", description="the clock down_s runs on ('wall' "
                                                     "when the bench waits in real time, e.g. a sim library "
                                                     "opened as a real one)")
    down_attempts: int | None = Field(None, ge=0)
    power_cycle: bool = Field(False, description="the instrument comes back in its *RST state")


class GarbleFault(_TransportFault):
    """A reply arrives damaged: some bytes flipped, or cut short (the rest of it is lost)."""

    kind: Literal["garble"] = "garble"
    mode: Literal["flip", "truncate"] = "flip"
    flips: int = Field(3, ge=1, description="bytes changed in 'flip' mode")


class ErrorFault(_TransportFault):
    """An entry appears in the instrument's error queue after a write."""

    kind: Literal["error"] = "error"
    code: int = Field(-310, description="SCPI error code (-310 = system error)")
    detail: str = "injected fault"


class SlowFault(_TransportFault):
    """A reply takes ``delay_s`` (simulated) to arrive; longer than the session timeout, the read times out."""

    kind: Literal["slow"] = "slow"
    delay_s: float = Field(0.5, gt=0)


class _PhysicsFault(_Fault):
    node: str | None = Field(None, description="bench item it acts on (default: the instrument it is listed under)")
    port: str | None = Field(None, description="port it acts on (default: every port of the right kind)")
    duration_s: float | None = Field(None, gt=0, description="simulated seconds it lasts (null: until cleared)")


class ModeHopFault(_PhysicsFault):
    """A laser hops to another cavity mode: its wavelength and power jump."""

    kind: Literal["mode_hop"] = "mode_hop"
    wavelength_jump_m: float = 0.08e-9
    power_jump_db: float = -0.5


class BiasDriftFault(_PhysicsFault):
    """A bias output drifts linearly with time (the modulator it drives drifts off its bias point)."""

    kind: Literal["bias_drift"] = "bias_drift"
    rate_v_per_s: float = 0.05


class FibreCutFault(_PhysicsFault):
    """A fibre (or any optical item) is cut: its loss is infinite, no light leaves it."""

    kind: Literal["fibre_cut"] = "fibre_cut"


class SaturationFault(_PhysicsFault):
    """A detector saturates: optical power at its input is clipped at ``level_w``."""

    kind: Literal["saturation"] = "saturation"
    level_w: float = Field(1e-4, gt=0)


FaultConfig = Annotated[
    Union[TimeoutFault, DisconnectFault, GarbleFault, ErrorFault, SlowFault,
          ModeHopFault, BiasDriftFault, FibreCutFault, SaturationFault],
    Field(discriminator="kind"),
]
#: Validates one fault description (a dict with ``kind``) into its model.
FAULT_ADAPTER: TypeAdapter = TypeAdapter(FaultConfig)

TRANSPORT_KINDS = ("timeout", "disconnect", "garble", "error", "slow")
PHYSICS_KINDS = ("mode_hop", "bias_drift", "fibre_cut", "saturation")
FAULT_KINDS = TRANSPORT_KINDS + PHYSICS_KINDS


def parse_fault(fault: Any, **params: Any) -> Any:
    """A fault model from a model, a kind name plus parameters, or a dict; errors name the bad field."""
    if isinstance(fault, BaseModel):
        return fault.model_copy(update=params) if params else fault
    data = {"kind": fault, **params} if isinstance(fault, str) else {**dict(fault), **params}
    try:
        return FAULT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FaultError(f"fault {data.get('kind')!r}, field {where!r}: {first['msg']} "
                         f"(kinds: {', '.join(FAULT_KINDS)})") from None


# -- the log ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultEvent:
    """One fault that fired (or a resource that came back): when, where, what."""

    time_s: float  # simulated clock
    wall_time: float  # time.time()
    instrument: str
    fault: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"time_s": self.time_s, "wall_time": self.wall_time, "instrument": self.instrument,
                "fault": self.fault, "detail": self.detail}


@dataclass(eq=False)  # handles compare by identity: two faults with equal settings are still two faults
class InjectedFault:
    """Handle of one injected fault (pass it to :meth:`FaultInjector.remove`)."""

    name: str
    fault: Any
    armed_at: float  # simulated time from which it acts
    remaining: int | None
    rng: np.random.Generator
    hooks: tuple[tuple[dict, tuple[str, str], Any], ...] = ()

    @property
    def kind(self) -> str:
        return self.fault.kind


@dataclass
class _Outage:
    fault: InjectedFault
    since: float  # simulated clock
    since_wall: float = field(default_factory=time.monotonic)
    attempts: int = 0


StatusCode = constants.StatusCode


def _visa_error(code: StatusCode, instrument: str, what: str) -> errors.VisaIOError:
    err = errors.VisaIOError(code)
    err.add_note(f"simulated fault on {instrument!r}: {what}")
    return err


class FaultInjector:
    """The faults of one simulated bench, consulted by its VISA library on every open, read and write."""

    def __init__(self, world: World, instruments: dict[str, Any], seed: int | None = 0):
        self.world = world
        self.instruments = instruments
        self.log: list[FaultEvent] = []
        self._seeds = np.random.SeedSequence([_FAULT_STREAM, 0 if seed is None else int(seed)])
        self._faults: list[InjectedFault] = []
        self._sessions: dict[int, tuple[str, int]] = {}  # handle -> (instrument, generation)
        self._generation: dict[str, int] = {}
        self._outages: dict[str, _Outage] = {}

    # -- injecting ------------------------------------------------------------------------------------

    def inject(self, name: str, fault: Any, **params: Any) -> InjectedFault:
        """Arm ``fault`` (a kind name with parameters, a dict or a model) on bench item ``name``."""
        model = parse_fault(fault, **params)
        if model.kind in TRANSPORT_KINDS and name not in self.instruments:
            raise FaultError(f"{model.kind!r} is a transport fault and {name!r} is not an instrument of this "
                             f"bench; instruments: {', '.join(sorted(self.instruments))}")
        if model.kind == "error" and not self.instruments[name].HAS_ERROR_QUEUE:
            raise FaultError(f"{name!r} has no error queue; an 'error' fault cannot be read back from it")
        remaining = getattr(model, "count", None)
        handle = InjectedFault(name, model, self.world.time + model.start_s, remaining,
                               np.random.default_rng(self._seeds.spawn(1)[0]))
        if model.kind in PHYSICS_KINDS:
            handle.hooks = self._install_physics(handle)
            self._record(name, model.kind, _describe(model) + f", from t={handle.armed_at:.6g} s")
        self._faults.append(handle)
        return handle

    def remove(self, handle: InjectedFault) -> None:
        """Disarm one fault (a disconnect it caused ends: the resource can be opened again)."""
        if handle in self._faults:
            self._faults.remove(handle)
        for table, key, hook in handle.hooks:
            hooks = table.get(key, [])
            if hook in hooks:
                hooks.remove(hook)
            if not hooks:
                table.pop(key, None)
        outage = self._outages.get(handle.name)
        if outage is not None and outage.fault is handle:
            self._end_outage(handle.name, "fault cleared")

    def clear(self, name: str | None = None) -> None:
        """Disarm every fault (of bench item ``name`` only, if given)."""
        for handle in [f for f in self._faults if name is None or f.name == name]:
            self.remove(handle)

    @contextmanager
    def injected(self, name: str, fault: Any, **params: Any) -> Iterator[InjectedFault]:
        """Arm a fault for the duration of a ``with`` block."""
        handle = self.inject(name, fault, **params)
        try:
            yield handle
        finally:
            self.remove(handle)

    def install_from(self, config: dict[str, Any]) -> None:
        """Arm the faults a bench description lists under ``instruments.<name>.sim.faults``."""
        for name, spec in (config.get("instruments") or {}).items():
            listed = ((spec or {}).get("sim") or {}).get("faults") or []
            for index, fault in enumerate(listed):
                try:
                    self.inject(name, fault)
                except FaultError as exc:
                    raise FaultError(f"instruments.{name}.sim.faults[{index}]: {exc}") from None

    @property
    def active(self) -> list[InjectedFault]:
        return list(self._faults)

    # -- hooks of the VISA library ------------------------------------------------------------------

    def open(self, handle: int, name: str) -> None:
        """A session is being opened on ``name``: refuse it while the resource is away."""
        outage = self._outages.get(name)
        if outage is not None:
            outage.attempts += 1
            if not self._back(name, outage):
                raise _visa_error(StatusCode.error_resource_not_found, name,
                                  f"disconnected since t={outage.since:.6g} s (open attempt {outage.attempts})")
        self._sessions[handle] = (name, self._generation.get(name, 0))

    def close(self, handle: int) -> None:
        self._sessions.pop(handle, None)

    def check(self, handle: int) -> None:
        """Raise VI_ERROR_CONN_LOST if the session was opened before its resource went away."""
        entry = self._sessions.get(handle)
        if entry is None:
            return
        name, generation = entry
        if generation != self._generation.get(name, 0):
            raise _visa_error(StatusCode.error_connection_lost, name,
                              "the connection was lost; close and re-open the resource")

    def before_write(self, handle: int, name: str) -> None:
        self.check(handle)
        self._maybe_disconnect(handle, name, "write")

    def after_write(self, name: str) -> None:
        for fault in self._firing(name, "error"):
            self.instruments[name].push_error(ScpiError(fault.fault.code, fault.fault.detail))
            self._record(name, "error", f"pushed {fault.fault.code} {fault.fault.detail!r} onto the error queue")

    def before_read(self, handle: int, name: str, timeout_s: float) -> None:
        """Act before a read: connection state, a slow reply (clock advances), a timeout (reply lost)."""
        self.check(handle)
        self._maybe_disconnect(handle, name, "read")
        instrument = self.instruments[name]
        if not instrument.output:
            return
        for fault in self._firing(name, "slow"):
            delay = fault.fault.delay_s
            if delay > timeout_s:
                self._advance(timeout_s)
                instrument.output.clear()
                self._record(name, "slow", f"reply takes {delay:.6g} s > timeout {timeout_s:.6g} s: timed out")
                raise _visa_error(StatusCode.error_timeout, name, f"slow reply ({delay:.6g} s)")
            self._advance(delay)
            self._record(name, "slow", f"reply delayed {delay:.6g} s")
        for _ in self._firing(name, "timeout", limit=1):
            self._advance(timeout_s)
            instrument.output.clear()
            self._record(name, "timeout", f"reply lost; read timed out after {timeout_s:.6g} s")
            raise _visa_error(StatusCode.error_timeout, name, "reply lost")

    def reply(self, name: str, chunk: bytes) -> bytes:
        """The bytes a read hands over, damaged if a garble fault fires."""
        for fault in self._firing(name, "garble"):
            if not chunk:
                break
            rng, spec = fault.rng, fault.fault
            if spec.mode == "truncate":
                keep = int(rng.integers(0, len(chunk)))
                self.instruments[name].output.clear()
                self._record(name, "garble", f"reply cut to {keep} of {len(chunk)} bytes")
                chunk = chunk[:keep]
            else:
                data = bytearray(chunk)
                # Leave the final byte (the terminator) alone: damaged content, not a lost message end.
                span = max(len(data) - 1, 1)
                where = rng.choice(span, size=min(spec.flips, span), replace=False)
                for index in where:  # 7-bit flips: text stays ASCII, so the damage reaches the parser
                    data[index] ^= int(rng.integers(1, 128))
                self._record(name, "garble", f"{len(where)} byte(s) flipped at {sorted(int(i) for i in where)}")
                chunk = bytes(data)
        return chunk

    # -- transport internals ------------------------------------------------------------------------

    def _firing(self, name: str, kind: str, limit: int | None = None, during: str = "any") -> list[InjectedFault]:
        """The faults of ``kind`` on ``name`` that fire at this operation (a ``during`` one), at most
        ``limit`` of them (each one that fires uses up one of its count)."""
        fired: list[InjectedFault] = []
        now = self.world.time
        for fault in [f for f in self._faults if f.name == name and f.kind == kind
                      and getattr(f.fault, "during", "any") in ("any", during)]:
            if limit is not None and len(fired) >= limit:
                break
            if now < fault.armed_at or fault.remaining == 0:
                continue
            if fault.fault.probability < 1 and fault.rng.random() >= fault.fault.probability:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            fired.append(fault)
        return fired

    def _maybe_disconnect(self, handle: int, name: str, during: str) -> None:
        if name in self._outages:
            self.check(handle)
            return
        for fault in self._firing(name, "disconnect", limit=1, during=during):
            self._outages[name] = _Outage(fault, self.world.time)
            self._generation[name] = self._generation.get(name, 0) + 1
            self.instruments[name].output.clear()  # a pending reply goes with the connection
            spec = fault.fault
            back = [f"{spec.down_s:.6g} s" if spec.down_s is not None else "",
                    f"{spec.down_attempts} open attempts" if spec.down_attempts is not None else ""]
            when = " or ".join(b for b in back if b) or "the fault is cleared"
            self._record(name, "disconnect", f"connection lost during {during}; away until {when}")
            raise _visa_error(StatusCode.error_connection_lost, name, f"connection lost during {during}")

    def _back(self, name: str, outage: _Outage) -> bool:
        spec = outage.fault.fault
        elapsed = self.world.time - outage.since if spec.down_clock == "simulated" else \
            time.monotonic() - outage.since_wall
        after_time = spec.down_s is not None and elapsed >= spec.down_s
        after_attempts = spec.down_attempts is not None and outage.attempts > spec.down_attempts
        if after_time or after_attempts:
            self._end_outage(name, f"after {elapsed:.6g} s ({spec.down_clock}) and {outage.attempts} "
                                   "open attempt(s)")
            return True
        return False

    def _end_outage(self, name: str, why: str) -> None:
        outage = self._outages.pop(name)
        instrument = self.instruments[name]
        if outage.fault.fault.power_cycle:
            instrument.reset()
            instrument.errors.clear()
            instrument.output.clear()
            why += "; power cycled to its *RST state"
        self._record(name, "reconnect", f"resource back ({why})")

    def _advance(self, seconds: float) -> None:
        if not np.isfinite(seconds):  # an infinite session timeout: the clock cannot run to it
            return
        with self.world.lock:
            self.world.advance(seconds)

    def _record(self, name: str, kind: str, detail: str) -> None:
        self.log.append(FaultEvent(self.world.time, time.time(), name, kind, detail))

    # -- physics ------------------------------------------------------------------------------------

    def _install_physics(self, handle: InjectedFault) -> tuple:
        spec, world = handle.fault, self.world
        node = spec.node or handle.name
        if node not in world.nodes:
            raise FaultError(f"{spec.kind!r}: no bench item {node!r}; items: {', '.join(sorted(world.nodes))}")
        wanted = {"mode_hop": OPTICAL_OUT, "bias_drift": ELECTRICAL_OUT, "fibre_cut": OPTICAL_OUT,
                  "saturation": OPTICAL_IN}[spec.kind]
        ports = world.nodes[node].ports()
        if spec.port is not None:
            if ports.get(spec.port) != wanted:
                raise FaultError(f"{spec.kind!r} acts on a port of kind {wanted}; {node}.{spec.port} is "
                                 f"{ports.get(spec.port, 'not a port')} (ports: {', '.join(ports)})")
            chosen = [spec.port]
        else:
            chosen = [p for p, kind in ports.items() if kind == wanted]
            if not chosen:
                raise FaultError(f"{spec.kind!r} needs a port of kind {wanted}; {node!r} has: {', '.join(ports)}")
        table = world.input_faults if wanted == OPTICAL_IN else world.output_faults
        transform = _PHYSICS[spec.kind](spec)
        start, end = handle.armed_at, (handle.armed_at + spec.duration_s if spec.duration_s else np.inf)

        def hook(t, value):
            if not start <= world.time < end:
                return value
            return transform(t, value, start)

        hooks = []
        for port in chosen:
            table.setdefault((node, port), []).append(hook)
            hooks.append((table, (node, port), hook))
        return tuple(hooks)


def _mode_hop(spec: ModeHopFault):
    amplitude = 10 ** (spec.power_jump_db / 20)
    return lambda t, light, start: [Lightwave(c.wavelength + spec.wavelength_jump_m, c.field * amplitude)
                                    for c in light]


def _bias_drift(spec: BiasDriftFault):
    return lambda t, volts, start: volts + spec.rate_v_per_s * np.maximum(np.asarray(t, dtype=float) - start, 0.0)


def _fibre_cut(spec: FibreCutFault):
    return lambda t, light, start: []


def _saturation(spec: SaturationFault):
    def clip(t, light, start):
        if not light:
            return light
        power = sum(np.abs(c.field) ** 2 for c in light)
        scale = np.sqrt(np.minimum(1.0, spec.level_w / np.maximum(power, 1e-300)))
        return [c.scaled(scale) for c in light]
    return clip


_PHYSICS = {"mode_hop": _mode_hop, "bias_drift": _bias_drift, "fibre_cut": _fibre_cut, "saturation": _saturation}


def _describe(model: BaseModel) -> str:
    fields = model.model_dump(exclude={"kind"}, exclude_defaults=True)
    return ", ".join(f"{k}={v}" for k, v in fields.items()) or "defaults"


__all__ = [
    "FAULT_ADAPTER",
    "FAULT_KINDS",
    "FaultConfig",
    "FaultError",
    "FaultEvent",
    "FaultInjector",
    "InjectedFault",
    "PHYSICS_KINDS",
    "TRANSPORT_KINDS",
    "parse_fault",
]
