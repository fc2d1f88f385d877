"""The optical computing center as a server: it owns the bench's engines and shares them among edges.

One thread talks to the network: a ROUTER socket with CURVE encryption receives the edges' messages and
a ZAP handler on the same poll loop admits only the public keys in the allow folder. Each core has one
worker thread that runs its jobs one at a time (an engine never has two callers; different cores compute
in parallel, as they do for parallel models; a simulated center runs each core in its own process,
:mod:`labctl.network.cores`, so that they do). Jobs wait in per-edge queues and start, round-robin across
edges, on the edge's next idle core; meanwhile the loop keeps answering heartbeats. Each admitted edge
holds whole cores until it says bye or falls silent for ``timeout_s``; then its cores are freed and its
queued jobs dropped. Inputs and outputs live
only until the job is answered, and logs name edges by key fingerprint, never carry payloads.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import zmq
from zmq.utils import z85

from labctl.network.cores import (
    REFUSALS,
    Computed,
    CoreRefusedJob,
    Light,
    ProcessCore,
    ThreadCore,
    process_cores,
    thread_cores,
)
from labctl.network.errors import DataPlaneError, KeyFileError, NetworkError, NetworkSettingError, ProtocolError
from labctl.network.keys import fingerprint, load_allowed, load_secret
from labctl.network.messages import (
    MAX_ARRAY_BYTES,
    MAX_HEADER_BYTES,
    Admit,
    ArraySpec,
    CoreInfo,
    Error,
    Heartbeat,
    Result,
    decode,
    encode,
)
from labctl.network.messages import Drive as DriveMessage
from labctl.network.messages import job_of
from sim_backends.instruments.labctl_occ import MAX_PORT_BACKGROUND_W, PORT_WAVELENGTHS_M

__all__ = ["Center", "parent_gone", "serve"]

log = logging.getLogger("labctl.network.center")

#: Where libzmq asks for authentication (ZeroMQ RFC 27, ZAP).
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_ZAP_DOMAIN = b"labctl"
_DRAIN = 256  # messages read per loop turn at most, so a flood cannot starve the jobs


@dataclass
class _Waiting:
    """A core's program waiting for its edge's light (data plane in simulation): set by the core's worker,
    answered by the loop."""

    ident: bytes
    job: str
    program: int
    codes: np.ndarray
    drive: Any
    done: threading.Event = field(default_factory=threading.Event)
    light: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # light, idle, ASE (carriers, 2)
    error: str = ""

    def fail(self, why: str) -> None:
        self.error = why
        self.done.set()


@dataclass
class _Edge:
    fingerprint: str
    label: str
    cores: list[int]
    last_seen: float
    queue: deque = field(default_factory=deque)
    turn: int = 0


class Center:
    """Serve ``cores`` on ``bind``: engines (:class:`~labctl.opu.interface.OpticalMatmul`, one per core) of benches
    open in this process, or cores of :mod:`labctl.network.cores` (e.g. each in its own process).

    ``keys``: the center's ``(public, secret)`` Z85 CURVE keys; ``allow_dir``: the folder of admitted edges'
    public ``*.key`` files (read at each connection). ``heartbeat_s``: the interval edges are told to keep;
    ``timeout_s``: silence after which an edge is dropped. ``max_array_bytes``: the largest array accepted.
    ``max_queue``: jobs queued per edge at most.
    """

    def __init__(self, cores: Sequence[Any], *, bind: str, keys: tuple[bytes, bytes], allow_dir: str | Path,
                 heartbeat_s: float = 1.0, timeout_s: float = 10.0, max_array_bytes: int = MAX_ARRAY_BYTES,
                 max_queue: int = 16):
        if not cores:
            raise NetworkSettingError("a center needs at least one optical core")
        if not 0 < heartbeat_s < timeout_s:
            raise NetworkSettingError(f"need 0 < heartbeat_s < timeout_s, got {heartbeat_s} and {timeout_s}")
        if max_array_bytes < 8 or max_queue < 1:
            raise NetworkSettingError("max_array_bytes must be >= 8 and max_queue >= 1")
        engines = [core for core in cores if not isinstance(core, (ThreadCore, ProcessCore))]
        as_threads = iter(thread_cores(engines))
        #: the cores, each computing one job at a time in its worker thread
        self.cores = [core if isinstance(core, (ThreadCore, ProcessCore)) else next(as_threads) for core in cores]
        self.allow_dir = Path(allow_dir)
        load_allowed(self.allow_dir)  # the folder must exist now, not at the first connection
        self.heartbeat_s, self.timeout_s = heartbeat_s, timeout_s
        self.max_array_bytes, self.max_queue = max_array_bytes, max_queue
        self._edges: dict[bytes, _Edge] = {}
        self._order: deque[bytes] = deque()  # round-robin turn of the admitted edges
        #: core -> (edge, job, seconds it waited, start time, future) of the product it computes
        self._running: dict[int, tuple[bytes, Any, float, float, Future]] = {}
        self._workers = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"center-{served.name}")
                         for served in self.cores]
        self._context = zmq.Context()
        # a core's worker rings the loop with the core's index when a product is done (each ``_wake`` socket
        # is used by its worker thread only)
        self._waiting: dict[int, _Waiting] = {}  # core -> its program waiting for light
        self._waiting_lock = threading.Lock()
        self._woken = self._context.socket(zmq.PULL)
        self._woken.bind(f"inproc://center-wake-{id(self)}")
        self._wake = []
        for _ in self.cores:
            self._wake.append(self._context.socket(zmq.PUSH))
            self._wake[-1].connect(f"inproc://center-wake-{id(self)}")
        self._zap = self._context.socket(zmq.REP)
        self._zap.linger = 0
        self._zap.bind(ZAP_ENDPOINT)  # before the server socket exists, so no handshake escapes it
        self._router = self._context.socket(zmq.ROUTER)
        self._router.linger = 0
        self._router.curve_server = True
        self._router.curve_publickey, self._router.curve_secretkey = keys
        self._router.zap_domain = _ZAP_DOMAIN
        self._router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        # libzmq drops the connection of a peer sending a frame far beyond the limits; below that, an error reply
        self._router.maxmsgsize = 2 * max_array_bytes + MAX_HEADER_BYTES
        try:
            self._router.bind(bind)
        except zmq.ZMQError as exc:
            self.close()
            raise NetworkError(f"cannot listen on {bind}: {exc}") from None
        self.endpoint = self._router.getsockopt(zmq.LAST_ENDPOINT).decode()

    # -- the loop ---------------------------------------------------------------------------------------

    def serve(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Answer edges until ``stop()`` is true or the process is interrupted (SIGINT/SIGTERM)."""
        poller = zmq.Poller()
        poller.register(self._zap, zmq.POLLIN)
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._woken, zmq.POLLIN)
        log.info("serving %d core(s) (%s) on %s; edges admitted from %s", len(self.cores),
                 ", ".join(e.name for e in self.cores), self.endpoint, self.allow_dir)
        while not stop():
            events = dict(poller.poll(0 if self._startable() else self.heartbeat_s * 500))
            if self._zap in events:
                self._authenticate()
            if self._router in events:
                self._drain()
            if self._woken in events:
                while self._woken.poll(0):
                    ring = self._woken.recv().decode()
                    if ring.startswith("drive "):
                        self._send_drive(int(ring[6:]))
                    else:
                        self._answer(int(ring))
            self._expire()
            self._start_jobs()

    def close(self) -> None:
        """Close the sockets (edges see silence and reconnect to the next center on this endpoint)."""
        for core in list(self._waiting):
            self._fail_waiting(core, "the center is stopping")
        for worker in self._workers:  # products under way end before the bench closes
            worker.shutdown(wait=True, cancel_futures=True)
        for socket in (self._router, self._zap, *self._wake, self._woken):
            socket.close(linger=0)
        self._context.term()

    # -- authentication ---------------------------------------------------------------------------------

    def _authenticate(self) -> None:
        """Answer libzmq's ZAP requests: CURVE keys in the allow folder pass, anything else is refused
        and logged with the key's fingerprint and the peer's address."""
        while True:
            try:
                request = self._zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            version, request_id, _domain, address, _identity, mechanism, *credentials = request + [b""] * 6
            user, allowed = "", False
            if mechanism == b"CURVE" and len(credentials[0]) == 32:
                key = z85.encode(credentials[0])
                user = fingerprint(key)
                try:
                    allowed = key in load_allowed(self.allow_dir)
                except KeyFileError as exc:
                    log.error("cannot read the allow folder: %s", exc)
            peer = address.decode(errors="replace")
            if allowed:
                log.info("edge key %s from %s authenticated", user, peer)
            else:
                log.warning("refused edge key %s from %s: not in the allow folder %s", user or "(none)", peer,
                            self.allow_dir)
            self._zap.send_multipart([version, request_id, b"200" if allowed else b"400",
                                      b"OK" if allowed else b"key not allowed", user.encode(), b""])

    # -- messages ---------------------------------------------------------------------------------------

    def _drain(self) -> None:
        for _ in range(_DRAIN):
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self._handle(frames[0].bytes, frames[1:])
            except Exception:  # a fault of the center's own: it answers and keeps serving the other edges
                log.error("handling a message failed", exc_info=True)
                self._send(frames[0].bytes, Error(code="internal", message="the center failed handling this message"))

    def _handle(self, ident: bytes, body: list) -> None:
        now = time.monotonic()
        who = body[0].get("User-Id") if body else "?"
        edge = self._edges.get(ident)
        if edge is not None:
            edge.last_seen = now
        try:
            header, arrays = decode([body[0].bytes] + [f.buffer for f in body[1:]] if body else [],
                                    max_array_bytes=self.max_array_bytes)
        except ProtocolError as exc:
            log.warning("edge %s: refused a message (%s)", who, exc.code)
            kind, job = job_of(body[0].bytes) if body else (None, None)
            if kind == "light":  # the light of a program waiting for it: that program, and its job, fail
                for core in self._waiting_for(ident, job):
                    self._fail_waiting(core, f"its light was refused: {exc}")
            self._send(ident, Error(code=exc.code, message=str(exc), job=job if kind == "light" else None))
            return
        kind = header.kind
        if kind == "hello":
            self._admit(ident, who, header, now)
        elif kind == "bye":
            if edge is not None:
                self._release(ident, "said bye")
        elif edge is None and kind in ("job", "heartbeat", "light"):
            self._send(ident, Error(code="not_admitted", job=getattr(header, "job", None),
                                    message="say hello first (this center does not know the edge, or its "
                                            "admission expired)"))
        elif kind == "heartbeat":
            self._send(ident, Heartbeat())
        elif kind == "job":
            running = any(entry[0] == ident and entry[1].job == header.job for entry in self._running.values())
            if running or any(queued.job == header.job for queued, _, _ in edge.queue):
                return  # a resubmission of a job queued or under way: it will be answered once
            if len(edge.queue) >= self.max_queue:
                self._send(ident, Error(code="queue_full", job=header.job,
                                        message=f"{self.max_queue} jobs are already queued for this edge"))
                return
            if header.edge_light and any(not self.cores[core].takes_light for core in edge.cores):
                self._send(ident, Error(code="no_data_plane", job=header.job,
                                        message="this center's cores take no edge light: they are real instruments "
                                                "(light crosses the fibre) or not simulated OCC cores"))
                return
            edge.queue.append((header, arrays, now))
        elif kind == "light":
            self._take_light(ident, header, arrays)
        elif kind == "error" and header.job is not None and self._waiting_for(ident, header.job):
            for core in self._waiting_for(ident, header.job):  # the edge could not launch the program's light
                self._fail_waiting(core, f"the edge could not launch it: {header.message}")
        else:
            self._send(ident, Error(code="schema", message=f"'{kind}' messages are sent by the center, not to it"))

    def _send(self, ident: bytes, header, arrays: Sequence[np.ndarray] = ()) -> None:
        self._router.send_multipart([ident, *encode(header, list(arrays))])

    # -- admission and cores ----------------------------------------------------------------------------

    def _admit(self, ident: bytes, who: str, hello, now: float) -> None:
        total = len(self.cores)
        if hello.cores > total:
            log.warning("edge %s asked for %d cores; refused (the center has %d)", who, hello.cores, total)
            self._send(ident, Error(code="too_many_cores",
                                    message=f"asked for {hello.cores} cores; this center has {total}"))
            return
        if ident in self._edges:
            self._release(ident, "said hello again")
        taken = {core for edge in self._edges.values() for core in edge.cores}
        free = [core for core in range(total) if core not in taken]
        if hello.core_names is not None:
            names = [served.name for served in self.cores]
            unknown = [name for name in hello.core_names if name not in names]
            if unknown:
                log.warning("edge %s asked for cores %s; refused (the center has %s)", who, ", ".join(unknown),
                            ", ".join(names))
                self._send(ident, Error(code="no_such_core", message=f"no core {', '.join(unknown)} here; this "
                                                                     f"center serves {', '.join(names)}"))
                return
            wanted = [names.index(name) for name in hello.core_names]
            busy = [self.cores[core].name for core in wanted if core in taken]
            if busy:
                log.info("edge %s asked for cores %s, held by other edges", who, ", ".join(busy))
                self._send(ident, Error(code="no_free_cores", message=f"cores {', '.join(busy)} are allocated to "
                                                                      "other edges"))
                return
            free = wanted
        if hello.cores > len(free):
            log.info("edge %s asked for %d cores; %d of %d are free", who, hello.cores, len(free), total)
            self._send(ident, Error(code="no_free_cores", message=f"asked for {hello.cores} cores; {len(taken)} of "
                                                                  f"{total} are allocated to other edges"))
            return
        cores = free[:hello.cores]
        self._edges[ident] = _Edge(fingerprint=who, label=hello.edge, cores=cores, last_seen=now)
        self._order.append(ident)
        log.info("admitted edge %s%s: cores %s", who, f" ({hello.edge})" if hello.edge else "",
                 ", ".join(self.cores[c].name for c in cores))
        self._send(ident, Admit(cores=[CoreInfo(name=self.cores[c].name, calibrated=bool(self.cores[c].calibrated))
                                       for c in cores],
                                heartbeat_s=self.heartbeat_s, timeout_s=self.timeout_s,
                                max_array_bytes=self.max_array_bytes))

    def _release(self, ident: bytes, why: str) -> None:
        for core, waiting in list(self._waiting.items()):
            if waiting.ident == ident:
                self._fail_waiting(core, f"the edge {why}")
        edge = self._edges.pop(ident)
        self._order.remove(ident)
        log.info("edge %s %s: freed cores %s, dropped %d queued job(s)", edge.fingerprint, why,
                 ", ".join(self.cores[c].name for c in edge.cores), len(edge.queue))

    def _expire(self) -> None:
        now = time.monotonic()
        for ident, edge in list(self._edges.items()):
            if now - edge.last_seen > self.timeout_s:
                self._release(ident, f"silent for {now - edge.last_seen:.1f} s")

    # -- jobs -------------------------------------------------------------------------------------------

    def _idle_core(self, edge: _Edge) -> int | None:
        """The edge's next core (in turn) that computes nothing now."""
        for k in range(len(edge.cores)):
            core = edge.cores[(edge.turn + k) % len(edge.cores)]
            if core not in self._running:
                return core
        return None

    def _startable(self) -> bool:
        return any(edge.queue and self._idle_core(edge) is not None for edge in self._edges.values())

    def _start_jobs(self) -> None:
        """Start every job that can start: the first edge in turn with a queued job and an idle core goes
        first, then to the end of the turn."""
        while True:
            for ident in self._order:
                edge = self._edges[ident]
                core = self._idle_core(edge) if edge.queue else None
                if core is not None:
                    break
            else:
                return
            self._order.remove(ident)
            self._order.append(ident)
            edge.turn = edge.cores.index(core) + 1
            job, (a, b), received = edge.queue.popleft()
            light = self._edge_light(core, ident, job) if job.edge_light else None
            future = self._workers[core].submit(self._compute, core, job, a, b, light)
            self._running[core] = (ident, job, time.monotonic() - received, time.perf_counter(), future)

    def _compute(self, core: int, job: Any, a: np.ndarray, b: np.ndarray, light: Light | None) -> Computed:
        """The product, its energy and the engine's statistics, in the core's worker thread; the loop is rung
        when it is done (or failed)."""
        try:
            return self.cores[core].compute(a, b, {"return_error": job.return_error, "scale_a": job.scale_a,
                                                   "scale_b": job.scale_b}, light)
        finally:
            self._wake[core].send(str(core).encode())

    # -- the data plane in simulation ------------------------------------------------------------------

    def _edge_light(self, core: int, ident: bytes, job: Any) -> Light:
        """The light source of a job that brings its own light (``edge_light``): each program's drive goes to
        the job's edge, and the program waits for the light the edge sends back."""
        programs = iter(range(2**62))

        def from_edge(codes: np.ndarray, drive: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """In the core's worker: ask the loop to send the drive, wait for the edge's light."""
            waiting = _Waiting(ident, job.job, next(programs), codes, drive)
            with self._waiting_lock:
                self._waiting[core] = waiting
            self._wake[core].send(f"drive {core}".encode())
            waiting.done.wait()
            with self._waiting_lock:
                self._waiting.pop(core, None)
            if waiting.light is None:
                raise DataPlaneError(f"the light of program {waiting.program} of job {job.job}: {waiting.error}")
            return waiting.light

        log.info("job %s on %s: light from edge %s's own transmitter", job.job, self.cores[core].name,
                 self._edges[ident].fingerprint)
        return from_edge

    def _send_drive(self, core: int) -> None:
        """Send a waiting program's drive to its edge (or fail it if the edge is gone)."""
        waiting = self._waiting.get(core)
        if waiting is None or waiting.done.is_set():
            return
        if waiting.ident not in self._edges:
            self._fail_waiting(core, "the edge left")
            return
        d = waiting.drive
        codes = np.ascontiguousarray(waiting.codes, dtype=np.float32)
        self._send(waiting.ident, DriveMessage(
            job=waiting.job, program=waiting.program, codes=ArraySpec.of(codes), symbol_rate_hz=d.symbol_rate_hz,
            dac_amplitude_v=d.dac_amplitude_v, gap_slots=d.gap_slots, bias_v=list(d.bias_v),
            rin_band_hz=d.rin_band_hz, dac_noise_referral=d.dac_noise_referral), [codes])

    def _waiting_for(self, ident: bytes, job: str | None) -> list[int]:
        return [core for core, w in list(self._waiting.items()) if w.ident == ident and w.job == job
                and not w.done.is_set()]

    def _fail_waiting(self, core: int, why: str) -> None:
        waiting = self._waiting.get(core)
        if waiting is not None and not waiting.done.is_set():
            log.info("job %s program %d on %s: no light (%s)", waiting.job, waiting.program, self.cores[core].name,
                     why)
            waiting.fail(why)

    def _take_light(self, ident: bytes, header: Any, arrays: list[np.ndarray]) -> None:
        """An edge's light for a waiting program: checked against its drive, then handed to the core."""
        cores = [core for core in self._waiting_for(ident, header.job)
                 if self._waiting[core].program == header.program]
        if not cores:
            self._send(ident, Error(code="not_waiting", job=header.job,
                                    message=f"no program {header.program} of job {header.job} waits for this edge's "
                                            "light"))
            return
        core = cores[0]
        waiting = self._waiting[core]
        light, idle = arrays[:2]
        ase = arrays[2] if len(arrays) > 2 else np.zeros((0, 2))
        problem = ""
        if light.shape != waiting.codes.shape or idle.shape != waiting.codes.shape[2:]:
            problem = (f"light of shape {light.shape} and idle {idle.shape} for a drive of shape "
                       f"{waiting.codes.shape}")
        elif light.min(initial=0.0) < 0 or idle.min(initial=0.0) < 0:
            problem = "negative optical power"
        else:
            problem = _ase_problem(ase)
        if problem:
            log.warning("edge %s job %s: refused its light (%s)", self._edges[ident].fingerprint, header.job, problem)
            self._send(ident, Error(code="light", job=header.job, message=problem))
            waiting.fail(f"its light was refused: {problem}")
            return
        waiting.light = (np.array(light), np.array(idle), np.array(ase))  # copies: the frames are freed after this turn
        waiting.done.set()

    def _answer(self, core: int) -> None:
        """Send the finished job's result (or error) to its edge, then forget its inputs and outputs."""
        ident, job, waited, started, future = self._running.pop(core)
        engine = self.cores[core]
        edge = self._edges.get(ident)
        who = edge.fingerprint if edge is not None else "(gone)"
        try:
            out, energy, engine_stats = future.result()
        except REFUSALS as exc:
            kind = exc.kind if isinstance(exc, CoreRefusedJob) else type(exc).__name__
            log.warning("edge %s job %s refused by %s (%s)", who, job.job, engine.name, kind)
            reply, arrays = Error(code="job_failed", job=job.job, message=f"{kind}: {exc}"[:1000]), []
        except Exception as exc:  # the center outlives one failed job; the edge is told
            log.error("edge %s job %s failed on %s: %s", who, job.job, engine.name, type(exc).__name__,
                      exc_info=True)
            reply, arrays = Error(code="internal", job=job.job, message=f"{type(exc).__name__} on {engine.name}"), []
        else:
            product, sigma = out if job.return_error else (out, None)
            arrays = [np.asarray(product, dtype=np.float64)]
            if sigma is not None:
                arrays.append(np.asarray(sigma, dtype=np.float64))
            stats = {key: _stat(value) for key, value in list(engine_stats.items())[:60]}
            stats.update(core=engine.name, queue_s=waited, center_s=time.perf_counter() - started)
            reply = Result(job=job.job, product=ArraySpec.of(arrays[0]),
                           error=ArraySpec.of(arrays[1]) if sigma is not None else None, stats=stats,
                           energy=energy)
        if edge is None:
            log.info("job %s finished after its edge left; dropped", job.job)
            return
        self._send(ident, reply, arrays)


def _ase_problem(ase: np.ndarray) -> str:
    """Why an edge's ASE (carriers, 2: wavelength m, power W at the input port) is not light ("" if it is)."""
    wavelength, power = ase[:, 0], ase[:, 1]
    low, high = PORT_WAVELENGTHS_M
    if power.min(initial=0.0) < 0:
        return "negative ASE power"
    if np.any((wavelength < low) | (wavelength > high)):
        return f"ASE outside the optical band {low * 1e9:g}-{high * 1e9:g} nm"
    if power.sum() > MAX_PORT_BACKGROUND_W:
        return f"ASE above {MAX_PORT_BACKGROUND_W:g} W in total, more than any amplifier of a bench emits"
    return ""


def _stat(value: Any) -> bool | int | float | str | None:
    """A statistic as a JSON scalar (NumPy scalars unwrapped; anything else by its text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)[:200]


def serve(bench_path: str | Path, *, mode: str, seed: int, bind: str, key_file: str | Path, allow_dir: str | Path,
          calibration: str | Path | None = None, cores: int | None = None, exit_with_parent: bool = False,
          core_processes: bool = True, **options: Any) -> None:
    """Open the bench and its engines (the first ``cores`` only, if given; calibrations from the folder
    ``calibration``, cores without one calibrated now and saved there) and serve them until interrupted;
    the bench's safe shutdown runs on the way out. ``options`` go to :class:`Center`. ``exit_with_parent``: also
    stop when the process that started this one is gone (:func:`parent_gone`), so a center started by a test
    or an experiment that dies does not live on holding its port and cores.

    ``core_processes``: on a simulated bench with several weight-stationary cores, each core computes in its
    own process (:class:`~labctl.network.cores.ProcessCore`, calibrated in parallel), so cores compute at
    once as the hardware does; otherwise (and always on real instruments) the cores are threads of this
    process."""
    from labctl.bench import open_bench
    from labctl.opu import open_opu, open_opus, opu_config
    from labctl.opu.interface import architecture
    from labctl.opu.stationary.config import StationaryOPUError

    stop = parent_gone() if exit_with_parent else (lambda: False)
    keys = load_secret(key_file)
    load_allowed(allow_dir)

    def serve_cores(served: Sequence[Any]) -> None:
        center = Center(served, bind=bind, keys=keys, allow_dir=allow_dir, **options)
        try:
            center.serve(stop)
        finally:
            center.close()
            log.info("center on %s stopped", center.endpoint)

    with open_bench(bench_path, mode=mode, seed=seed) as bench:
        stationary = architecture(bench) == "weight_stationary"
        available = len(opu_config(bench).cores) if stationary else 1
        if cores is not None and cores > available:
            raise StationaryOPUError(f"cores={cores}: this bench has {available} core(s)")
        served = available if cores is None else cores
        if not (core_processes and mode == "sim" and stationary and served > 1):
            engines = (open_opus(bench, calibration) if cores is None
                       else [open_opu(bench, calibration, core=index) for index in range(cores)])
            serve_cores(engines)
            return
    with process_cores(bench_path, range(served), mode=mode, seed=seed, calibration=calibration) as handles:
        serve_cores(handles)


def parent_gone() -> Callable[[], bool]:
    """A ``stop`` for :meth:`Center.serve` that turns true once the parent of this process is gone: its parent
    pid changes (the process was re-parented after its parent died), or, when stdin is a pipe, the pipe
    reaches its end (the parent closed it, or died). The parent is the one at the time of this call."""
    parent = os.getppid()
    closed = threading.Event()
    try:
        piped = stat.S_ISFIFO(os.fstat(0).st_mode)
    except OSError:  # no stdin at all
        piped = False
    if piped:
        def watch() -> None:
            while os.read(0, 4096):
                pass
            closed.set()

        threading.Thread(target=watch, name="stdin watch", daemon=True).start()

    def gone() -> bool:
        if closed.is_set() or os.getppid() != parent:
            log.warning("the parent process (pid %d) is gone%s: stopping", parent,
                        " (stdin closed)" if closed.is_set() else "")
            return True
        return False

    return gone
