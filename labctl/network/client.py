"""An edge's view of the optical computing center: a remote OPU with the local engines' interface.

:func:`connect` authenticates with CURVE, asks for cores and returns a :class:`RemoteOPU` whose
``matmul`` has the signature and ``last_stats`` keys of :class:`~labctl.opu.interface.OpticalMatmul`,
so ``labctl.offload(model, remote)`` works unchanged. Each product is a job with its own id: while
waiting the edge heartbeats; if the center falls silent (crash, restart) the edge reconnects, is admitted
again and resubmits the same job, and a result for any job but the one awaited is discarded, so no
result is lost or delivered twice. The edge holds its inputs until their result arrives; the center
holds nothing once it has answered.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zmq
from pydantic import ValidationError
from zmq.utils.monitor import recv_monitor_message

from labctl.network.errors import (
    AdmissionRefused,
    CenterUnavailable,
    KeyRefused,
    NetworkError,
    NetworkSettingError,
    ProtocolError,
    RemoteError,
)
from labctl.network.keys import load_public, load_secret
from labctl.errors import LabctlError
from labctl.network.metering import JobLedger
from labctl.network.messages import MAX_DIMS, ArraySpec, Bye, Error, Heartbeat, Hello, Job, Light, decode, encode
from sim_backends.scpi import ScpiError

__all__ = ["RemoteOPU", "connect"]

_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_RECEIVE_LIMIT = 2**40  # the edge trusts the center it authenticated; its arrays are still fully checked


def connect(endpoint: str, key: str | Path, center_key: str | Path, *, cores: int = 1, edge: str = "",
            timeout_s: float = 30.0, edge_bench: str | Path | None = None, edge_seed: int | None = 0,
            edge_changes: dict[str, Any] | None = None) -> RemoteOPU:
    """A :class:`RemoteOPU` on the center at ``endpoint`` (``tcp://HOST:PORT``), admitted with ``cores`` cores.

    ``key``: this edge's secret key file (``NAME.key_secret``); ``center_key``: the center's public key
    file (``center.key``), which authenticates the center. ``edge``: a label for the center's log.
    ``timeout_s``: the most one call (admission, or a product with its reconnections) may take.
    ``edge_bench``: this edge's own transmitter and link (an edge bench file, simulated with ``edge_seed`` and
    ``edge_changes``: :class:`~labctl.network.edge.EdgeTransmitter`): the center then detects the light this
    edge launches over its link (the data plane in simulation) instead of its own reference input chain.
    Raises :class:`KeyRefused` if the center refuses the key, :class:`AdmissionRefused` if it refuses the
    request (too many cores; none free within ``timeout_s``), :class:`CenterUnavailable` on silence.
    """
    return RemoteOPU(endpoint, key=key, center_key=center_key, cores=cores, edge=edge, timeout_s=timeout_s,
                     edge_bench=edge_bench, edge_seed=edge_seed, edge_changes=edge_changes)


class RemoteOPU:
    """Cores of a remote optical computing center as one :class:`~labctl.opu.interface.OpticalMatmul`.

    ``reconnects`` counts new connections made after silence; ``last_stats`` holds the center engine's
    statistics of the last product, with ``wall_s`` the edge's time for the whole call (network and
    queueing included), ``center_wall_s`` the engine's own, ``resubmits`` how often the job was sent
    again, and ``core`` the core that computed it. Products through one RemoteOPU run one at a time (threads
    calling ``matmul`` take turns); for products in parallel, connect once per thread, each with its cores.

    ``last_energy``: the center's :class:`~labctl.network.messages.JobEnergy` of the last product (None from
    a center that does not meter); ``energy``: an :class:`~labctl.energy.ledger.EnergyLedger` of every
    product's energy at the center (:class:`~labctl.network.metering.JobLedger` says how it is laid out).
    """

    def __init__(self, endpoint: str, *, key: str | Path, center_key: str | Path, cores: int = 1, edge: str = "",
                 timeout_s: float = 30.0, edge_bench: str | Path | None = None, edge_seed: int | None = 0,
                 edge_changes: dict[str, Any] | None = None):
        if timeout_s <= 0:
            raise NetworkSettingError(f"timeout_s must be > 0, got {timeout_s}")
        self.endpoint, self.edge, self.timeout_s = endpoint, edge, timeout_s
        self._keys = load_secret(key)
        self._center_key = load_public(center_key)
        self._session = secrets.token_hex(8)
        self._jobs = 0
        self._lock = threading.Lock()  # one socket: one product at a time
        self.reconnects = 0
        self.discarded = 0  #: results or errors received for jobs no longer awaited (dropped)
        self.last_stats: dict[str, Any] = {}
        self.last_energy: Any = None
        self._jobs_energy = JobLedger(f"products of edge {edge or '(unnamed)'} on the center at {endpoint}")
        self.energy = self._jobs_energy.ledger
        self.cores: list = []
        self.heartbeat_s, self.liveness_s, self.max_array_bytes = 1.0, timeout_s, None
        #: this edge's simulated transmitter and link (data plane), or None: the center's own input chain
        self.transmitter = None
        if edge_bench is not None:
            from labctl.network.edge import EdgeTransmitter

            if cores != 1:
                raise NetworkSettingError(f"an edge bench is one transmitter for one core; cores={cores}")
            self.transmitter = EdgeTransmitter(edge_bench, seed=edge_seed, changes=edge_changes)
        self._hello = Hello(cores=cores, edge=edge,
                            core_names=None if self.transmitter is None else [self.transmitter.core])
        self._context = zmq.Context()
        self._socket = self._monitor = None
        self._closing = threading.Event()
        try:
            self._open()
            self._admit(time.monotonic() + timeout_s)
        except BaseException:
            self.close(say_bye=False)
            raise
        self._keeper = threading.Thread(target=self._keep_alive, name=f"heartbeat {endpoint}", daemon=True)
        self._keeper.start()

    @property
    def name(self) -> str:
        return f"{self.endpoint} ({', '.join(core.name for core in self.cores)})"

    @property
    def calibrated(self) -> bool:
        return bool(self.cores) and all(core.calibrated for core in self.cores)

    # -- the product ------------------------------------------------------------------------------------

    def matmul(self, a: Any, b: Any, *, return_error: bool = False, scale_a: float | None = None,
               scale_b: float | None = None) -> Any:
        """``a @ b`` on the center's cores, in ``a``'s type (NumPy or torch); see
        :meth:`labctl.opu.interface.OpticalMatmul.matmul`."""
        with self._lock:
            return self._matmul(a, b, return_error, scale_a, scale_b)

    def _matmul(self, a: Any, b: Any, return_error: bool, scale_a: float | None, scale_b: float | None) -> Any:
        if self._socket is None:
            raise NetworkError("this remote OPU is closed")
        a_wire, b_wire = _operand(a, "a", self.max_array_bytes), _operand(b, "b", self.max_array_bytes)
        self._jobs += 1
        job_id = f"{self._session}-{self._jobs}"
        try:
            job = Job(job=job_id, a=ArraySpec.of(a_wire), b=ArraySpec.of(b_wire), return_error=bool(return_error),
                      scale_a=scale_a, scale_b=scale_b, edge_light=self.transmitter is not None)
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise ProtocolError("schema", f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
        frames = encode(job, [a_wire, b_wire])
        started, deadline, resubmits = time.perf_counter(), time.monotonic() + self.timeout_s, 0
        self._socket.send_multipart(frames)
        self._heard = self._sent = time.monotonic()
        while True:
            reply = self._await(lambda h: getattr(h, "job", None) == job_id or h.kind == "error" and h.job is None,
                                deadline, keep_alive=True)
            if reply is None:  # the center fell silent: a new connection, admission, and the same job again
                self._reconnect(deadline)
            elif reply[0].kind == "error" and reply[0].code == "not_admitted":  # the center restarted or dropped us
                self._admit(deadline)
            elif reply[0].kind == "error":
                raise RemoteError(reply[0].code, reply[0].message)
            elif reply[0].kind == "drive":
                self._launch(*reply)
                continue
            else:
                break
            resubmits += 1
            self._socket.send_multipart(frames)
        header, arrays = reply
        self.last_stats = {**header.stats, "center_wall_s": header.stats.get("wall_s"),
                           "wall_s": time.perf_counter() - started, "resubmits": resubmits}
        self.last_energy = header.energy
        if header.energy is not None:
            self._jobs_energy.record(header.energy, header.stats, job_id)
        product = _like(arrays[0], a)
        return (product, _like(arrays[1], a)) if return_error else product

    def _launch(self, drive: Any, arrays: list[np.ndarray]) -> None:
        """Answer a program's drive with this edge's light (or tell the center it cannot launch it)."""
        if self.transmitter is None:
            self._socket.send_multipart(encode(Error(code="light", job=drive.job, message="this edge has no "
                                                     "transmitter of its own (connect without edge_bench)")))
            return
        try:
            light, idle, ase = self.transmitter.launch(arrays[0], drive)
        except (LabctlError, ValueError, ScpiError) as exc:
            self._socket.send_multipart(encode(Error(code="light", job=drive.job,
                                                     message=f"{type(exc).__name__}: {exc}"[:1000])))
            return
        extra = [ase] if ase.shape[0] else []  # an amplifier's ASE travels with the light
        self._socket.send_multipart(encode(Light(job=drive.job, program=drive.program, light=ArraySpec.of(light),
                                                 idle=ArraySpec.of(idle), ase=ArraySpec.of(ase) if extra else None),
                                           [light, idle, *extra]))
        self._heard = self._sent = time.monotonic()  # the silence clock restarts once the edge listens again

    # -- connection -------------------------------------------------------------------------------------

    def _open(self) -> None:
        socket = self._context.socket(zmq.DEALER)
        socket.linger = 0
        socket.curve_serverkey = self._center_key
        socket.curve_publickey, socket.curve_secretkey = self._keys
        self._monitor = socket.get_monitor_socket(_HANDSHAKE_FAILED)
        try:
            socket.connect(self.endpoint)
        except zmq.ZMQError as exc:
            socket.close()
            raise NetworkError(f"cannot connect to {self.endpoint!r}: {exc}") from None
        self._socket = socket
        self._heard = self._sent = time.monotonic()
        self._failed_handshakes = 0

    def _reconnect(self, deadline: float) -> None:
        self._close_socket()
        self.reconnects += 1
        self._open()
        self._admit(deadline)

    def _admit(self, deadline: float) -> None:
        """Hello until admitted; waits for cores held by other edges to free up until ``deadline``."""
        while True:
            self._socket.send_multipart(encode(self._hello))
            header, _ = self._await(lambda h: h.kind in ("admit", "error"), deadline)
            if header.kind == "admit":
                self.cores = header.cores
                self.heartbeat_s, self.liveness_s = header.heartbeat_s, header.timeout_s
                self.max_array_bytes = header.max_array_bytes
                return
            if header.code != "no_free_cores" or time.monotonic() + self.heartbeat_s > deadline:
                raise AdmissionRefused(header.code, header.message)
            time.sleep(self.heartbeat_s)

    def _await(self, wanted: Callable[[Any], bool], deadline: float, keep_alive: bool = False):
        """The next message ``wanted`` accepts, as ``(header, arrays)``; other messages are discarded.
        With ``keep_alive``, heartbeats go out meanwhile and None means the center fell silent."""
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        while True:
            now = time.monotonic()
            if now >= deadline:
                if self._failed_handshakes:
                    raise CenterUnavailable(f"the secure handshake with {self.endpoint} failed "
                                            f"{self._failed_handshakes} time(s) in {self.timeout_s} s: is center_key "
                                            "the public key of the center listening there?")
                raise CenterUnavailable(f"no answer from the center at {self.endpoint} within {self.timeout_s} s: it "
                                        "is not running or not reachable")
            if keep_alive and now - self._heard > self.liveness_s:
                return None
            if keep_alive and now - self._sent >= self.heartbeat_s:
                self._socket.send_multipart(encode(Heartbeat()))
                self._sent = now
            events = dict(poller.poll(1000 * max(0.0, min(deadline - now, self.heartbeat_s))))
            if self._monitor in events:
                if recv_monitor_message(self._monitor)["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    raise KeyRefused(f"the center at {self.endpoint} refused this edge's key (it is not in the "
                                     "center's allow folder)")
                self._failed_handshakes += 1
            if self._socket not in events:
                continue
            frames = self._socket.recv_multipart()
            self._heard = time.monotonic()
            header, arrays = decode(frames, max_array_bytes=_RECEIVE_LIMIT)
            if wanted(header):
                return header, arrays
            self._count_discarded(header)

    def _count_discarded(self, header: Any) -> None:
        if header.kind == "result" or header.kind == "error" and header.job is not None:
            self.discarded += 1

    def _keep_alive(self) -> None:
        """Between products, heartbeat so that the center keeps this edge's cores (a product in progress
        heartbeats itself); replies that arrive meanwhile are read and dropped."""
        while not self._closing.wait(self.heartbeat_s):
            if not self._lock.acquire(blocking=False):
                continue  # a product is under way
            try:
                if self._socket is None:
                    return
                while self._socket.poll(0):
                    frames = self._socket.recv_multipart()
                    self._heard = time.monotonic()
                    try:
                        self._count_discarded(decode(frames, max_array_bytes=_RECEIVE_LIMIT)[0])
                    except ProtocolError:
                        pass  # nothing is awaited: a bad reply to a heartbeat changes nothing
                self._socket.send_multipart(encode(Heartbeat()), zmq.NOBLOCK)
                self._sent = time.monotonic()
            except zmq.ZMQError:
                pass  # the next product reconnects if the center is gone
            finally:
                self._lock.release()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._socket.close(linger=0)
            self._socket = self._monitor = None

    def close(self, say_bye: bool = True) -> None:
        """Leave: tell the center (which frees the cores) and close the connection."""
        if self._closing.is_set():
            return
        self._closing.set()
        keeper = getattr(self, "_keeper", None)
        if keeper is not None:
            keeper.join()
        if self._socket is not None and say_bye:
            try:
                self._socket.send_multipart(encode(Bye()), zmq.NOBLOCK)
                self._socket.linger = 500  # let the bye leave before the socket closes
            except zmq.ZMQError:
                pass  # nothing to tell a center that is gone: it frees the cores after its timeout
        if self._socket is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._socket.close()
            self._socket = self._monitor = None
        self._context.term()
        if self.transmitter is not None:
            self.transmitter.close()

    def __enter__(self) -> RemoteOPU:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _operand(x: Any, name: str, limit: int | None) -> np.ndarray:
    """An operand as a float32/float64 NumPy array to send (torch tensors converted), checked first here so
    a bad one fails at once with the error the center would give."""
    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach().cpu().numpy()
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise ProtocolError("schema", f"{name}: real numbers needed, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32 if array.dtype == np.float32 else np.float64)
    if not 1 <= array.ndim <= MAX_DIMS:
        raise ProtocolError("schema", f"{name}: 1 to {MAX_DIMS} dimensions needed, got shape {array.shape}")
    if limit is not None and array.nbytes > limit:
        raise ProtocolError("too_large", f"{name} has {array.nbytes} bytes; the center accepts {limit}")
    if not np.isfinite(array).all():
        raise ProtocolError("not_finite", f"{name} holds NaN or infinite values")
    return array


def _like(result: np.ndarray, a: Any) -> Any:
    """``result`` (a read-only view of a received frame) as a fresh array of ``a``'s kind."""
    if type(a).__module__.split(".")[0] == "torch":
        import torch

        return torch.from_numpy(np.array(result)).to(dtype=a.dtype, device=a.device)
    return np.array(result)
