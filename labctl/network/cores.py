"""A center's optical cores, each computing one job at a time: in the center's process, or each in its own.

A simulated core is CPU work. Cores that are threads of one process take turns on the interpreter and on
their one simulated bench, so cores that compute at the same time in hardware would compute one after
another in simulation. :class:`ProcessCore` runs one core of a simulated bench in a process of its own, on
its own copy of the bench (the same file and seed; a core's physics and noise streams are its own, so no
other core's work changes its numbers), and the center's cores compute in parallel on the host's CPUs, as
the hardware does. A real bench keeps its cores in the center's process (:class:`ThreadCore`): each
instrument has one owner.

The center and its core processes talk over a :mod:`multiprocessing` pipe (pickle): both ends are the center's
own processes, and nothing an edge sent reaches the pipe before the center has decoded and checked it.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from labctl.errors import LabctlError
from labctl.network.errors import DataPlaneError
from labctl.network.messages import JobEnergy
from labctl.network.metering import CoreMetering, JobLedger, core_metering
from sim_backends.instruments.labctl_occ import SimLabctlOCC

__all__ = ["CoreOpenError", "CoreProcessFault", "CoreRefusedJob", "ProcessCore", "ProcessOPU", "ThreadCore",
           "process_cores", "process_opus", "simulated_controller", "thread_cores"]

log = logging.getLogger("labctl.network.cores")

#: A job's light from its edge (data plane in simulation): (DAC codes, drive) -> (light, idle light, ASE).
Light = Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray, np.ndarray]]
#: What a core returns for a job: the engine's output, the job's energy and the engine's statistics.
Computed = tuple[Any, JobEnergy, dict]

#: Errors of a job's own making (bad operands, a setting the core refuses): the edge is told why.
REFUSALS = (LabctlError, ValueError, TypeError)
#: Seconds a core process may take to close its bench (safe shutdown) before it is terminated.
CLOSE_TIMEOUT_S = 30.0


class CoreRefusedJob(LabctlError):
    """A core process refused a job (its engine raised one of :data:`REFUSALS`); ``kind`` names that error."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


class CoreOpenError(LabctlError):
    """A core process could not open its bench or its core (a bench or calibration file the user can fix)."""


class CoreProcessFault(RuntimeError):
    """A core process failed while serving: it died, or its engine raised an unexpected error."""


def simulated_controller(engine: Any) -> SimLabctlOCC | None:
    """The simulated OCC controller behind a weight-stationary engine on a simulated bench, else None."""
    bench = getattr(engine, "bench", None)
    sim = getattr(bench, "sim", None) if getattr(bench, "mode", None) == "sim" else None
    node = sim.world.nodes.get(getattr(engine, "name", None)) if sim is not None else None
    return node if isinstance(node, SimLabctlOCC) else None


class ThreadCore:
    """An engine of a bench open in this process; jobs are metered by ``metering``."""

    def __init__(self, engine: Any, metering: CoreMetering):
        self.engine, self.metering = engine, metering
        self.name: str = engine.name
        self._port = simulated_controller(engine)
        #: whether the core's programs can take their light from an edge (a simulated OCC controller)
        self.takes_light = self._port is not None

    @property
    def calibrated(self) -> bool:
        return bool(self.engine.calibrated)

    def compute(self, a: np.ndarray, b: np.ndarray, options: dict, light: Light | None = None) -> Computed:
        """``engine.matmul(a, b, **options)`` metered; with ``light``, the programs take their inputs' light from
        it instead of the center's own input chain, and the statistics gain ``edge_light_db`` (the received
        light against the center's own reference link, for the job's last program)."""
        port = self._port
        if light is not None and port is None:
            raise DataPlaneError(f"{self.name} takes no edge light: it is not a simulated OCC core")
        if port is not None:
            port.set_light_source(light)
            port.last_edge_power_ratio = None
        try:
            out, energy = self.metering.run(self.engine, lambda: self.engine.matmul(a, b, **options))
            stats = dict(getattr(self.engine, "last_stats", None) or {})
            ratio = port.last_edge_power_ratio if port is not None and light is not None else None
        finally:
            if port is not None:
                port.set_light_source(None)
                port.last_edge_power_ratio = None
        if ratio is not None and ratio > 0:
            stats["edge_light_db"] = 10.0 * float(np.log10(ratio))
        return out, energy, stats


class ProcessCore:
    """Core ``core`` of the simulated bench ``bench_path`` in a process of its own (see the module's docstring).

    The process opens the bench (``mode``, ``seed``) and the core (its calibration from ``calibration`` as
    :func:`labctl.opu.open_opu` takes it, calibrated now when missing), then computes the jobs sent to it;
    call :meth:`wait_ready` before the first. It ignores Ctrl-C (the center stops it with :meth:`close`) and
    stops by itself when the center's end of the pipe closes. A process that died fails the job it had; the
    next job starts a new one (a fresh copy of the bench, with the calibration loaded again, or made again
    when ``calibration`` names no file or folder).
    """

    def __init__(self, bench_path: str | Path, *, mode: str, seed: int, core: int, calibration: Any = None,
                 accept_stale: bool = False):
        self.name = f"core {core} (counting from 0)"
        self.calibrated = False
        self.takes_light = False
        self._lock = threading.Lock()
        self._broken = ""
        self._args = (str(bench_path), mode, seed, core, None if calibration is None else str(calibration),
                      accept_stale)
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork: the center has threads and sockets
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_core, name=f"labctl-core-{self._args[3]}", daemon=True,
                                        args=(child, *self._args, logging.getLogger("labctl").getEffectiveLevel()))
        self._process.start()
        child.close()

    def _restart(self) -> None:
        """A new process in place of one that died (see the class docstring)."""
        log.warning("%s: starting a new process (%s)", self.name, self._broken)
        self._process.join(1.0)
        if self._process.is_alive():  # broken but running: it answered nonsense; it is replaced all the same
            self._process.kill()
            self._process.join(5.0)
        self._conn.close()
        self._start()
        self.wait_ready()
        self._broken = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def wait_ready(self) -> None:
        """Wait until the process has its core (opening the bench, loading or making the calibration)."""
        try:
            reply = self._receive("open its core")
        except CoreProcessFault as exc:
            raise CoreOpenError(str(exc)) from None
        if reply[0] != "ready":
            self._broken = f"{self.name} could not open: {reply[1]}: {reply[2]}"
            raise CoreOpenError(self._broken)
        self.name, self.calibrated, self.takes_light = reply[1:]
        log.info("%s computes in process %d%s", self.name, self.pid, "" if self.calibrated else " (uncalibrated)")

    def compute(self, a: np.ndarray, b: np.ndarray, options: dict, light: Light | None = None) -> Computed:
        """As :meth:`ThreadCore.compute`, in the core's process; ``light`` is called here, in the caller's
        thread, whenever a program of the job asks for its edge's light."""
        with self._lock:
            if self._broken:
                self._restart()
            self._send(("job", a, b, options, light is not None))
            while True:
                reply = self._receive("compute a job")
                if reply[0] == "light?":
                    try:
                        answer: tuple = ("light", light(reply[1], reply[2]))
                    except Exception as exc:  # the light did not come: the program fails in the core process
                        answer = ("no light", f"{type(exc).__name__}: {exc}")
                    self._send(answer)
                elif reply[0] == "done":
                    return reply[1], reply[2], reply[3]
                elif reply[0] == "refused":
                    raise CoreRefusedJob(reply[1], reply[2])
                else:
                    raise CoreProcessFault(f"{self.name} failed the job: {reply[1]}: {reply[2]}")

    def close(self) -> None:
        """Stop the process: it closes its bench (safe shutdown) and exits; terminated if it does not."""
        try:
            self._conn.send(("close",))
        except OSError:  # already gone
            pass
        self._process.join(CLOSE_TIMEOUT_S)
        if self._process.is_alive():
            log.error("%s (process %d) did not stop in %.0f s: terminated", self.name, self.pid, CLOSE_TIMEOUT_S)
            self._process.terminate()
            self._process.join(5.0)
        self._conn.close()

    def _send(self, message: tuple) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:
            self._broken = f"{self.name}'s process is gone ({exc})"
            raise CoreProcessFault(self._broken) from None

    def _receive(self, doing: str) -> tuple:
        while not self._conn.poll(1.0):
            if not self._process.is_alive():
                break
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            self._process.join(1.0)
            self._broken = (f"{self.name}'s process (pid {self.pid}) exited with code {self._process.exitcode} "
                            f"while it had to {doing}")
            raise CoreProcessFault(self._broken) from None


@contextmanager
def process_cores(bench_path: str | Path, cores: Sequence[int], *, mode: str, seed: int, calibration: Any = None,
                  accept_stale: bool = False) -> Iterator[list[ProcessCore]]:
    """Cores ``cores`` of the bench, each in its own process, started together (their calibrations run in
    parallel) and stopped on the way out; one that cannot open stops them all and raises. The processes are
    spawned, so a script that calls this needs the usual ``if __name__ == "__main__":`` guard."""
    with ExitStack() as stack:
        handles = []
        for core in cores:
            handles.append(ProcessCore(bench_path, mode=mode, seed=seed, core=core, calibration=calibration,
                                       accept_stale=accept_stale))
            stack.callback(handles[-1].close)
        for handle in handles:
            handle.wait_ready()
        yield handles


class ProcessOPU:
    """A :class:`ProcessCore` used directly, as a local engine is (``matmul``, ``last_stats``, ``name``,
    ``calibrated``; NumPy arrays or torch tensors, the result in ``a``'s type), so several models can compute on
    several simulated cores at once (e.g. ``generate_parallel`` with ``bench=None``). Like a remote OPU it keeps
    ``last_energy`` and ``energy``, a ledger of its jobs as its process metered them (:class:`JobLedger`)."""

    def __init__(self, core: ProcessCore):
        self.core = core
        self.last_stats: dict[str, Any] = {}
        self.last_energy: JobEnergy | None = None
        self._jobs = 0
        self._ledger = JobLedger(f"products on {core.name}, computed in its own process")
        self.energy = self._ledger.ledger

    @property
    def name(self) -> str:
        return self.core.name

    @property
    def calibrated(self) -> bool:
        return self.core.calibrated

    def matmul(self, a: Any, b: Any, *, return_error: bool = False, scale_a: float | None = None,
               scale_b: float | None = None) -> Any:
        """``a @ b`` on the core (see :meth:`labctl.opu.interface.OpticalMatmul.matmul`)."""
        options = {"return_error": return_error, "scale_a": scale_a, "scale_b": scale_b}
        out, energy, stats = self.core.compute(_as_numpy(a), _as_numpy(b), options)
        self._jobs += 1
        self.last_stats, self.last_energy = {**stats, "core": self.core.name}, energy
        self._ledger.record(energy, self.last_stats, str(self._jobs))
        if return_error:
            return _kind_of(out[0], a), _kind_of(out[1], a)
        return _kind_of(out, a)


@contextmanager
def process_opus(bench_path: str | Path, cores: int, *, mode: str = "sim", seed: int = 0, calibration: Any = None,
                 accept_stale: bool = False) -> Iterator[list[ProcessOPU]]:
    """The first ``cores`` cores of a simulated bench, each in its own process (:func:`process_cores`), as
    :class:`ProcessOPU` engines."""
    with process_cores(bench_path, range(cores), mode=mode, seed=seed, calibration=calibration,
                       accept_stale=accept_stale) as handles:
        yield [ProcessOPU(handle) for handle in handles]


def _as_numpy(x: Any) -> Any:
    """A torch tensor as a NumPy array (what crosses the pipe); anything else as it is."""
    return x.detach().cpu().numpy() if type(x).__module__.split(".")[0] == "torch" else x


def _kind_of(result: np.ndarray, a: Any) -> Any:
    """``result`` as a tensor like ``a`` when ``a`` is one."""
    if type(a).__module__.split(".")[0] != "torch":
        return result
    import torch

    return torch.from_numpy(np.asarray(result)).to(dtype=a.dtype, device=a.device)


def _serve_core(conn: Any, bench_path: str, mode: str, seed: int, core: int, calibration: str | None,
                accept_stale: bool, log_level: int) -> None:
    """The core process: open the bench and the core, then compute jobs until told to close or the pipe ends."""
    from labctl.bench import open_bench
    from labctl.opu import open_opu

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches every process of the terminal; the center decides
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s %(levelname)s [core {core}] %(name)s: %(message)s")
    logging.getLogger("labctl").setLevel(log_level)
    with ExitStack() as stack:
        try:
            bench = stack.enter_context(open_bench(bench_path, mode=mode, seed=seed))
            engine = open_opu(bench, calibration, core=core, accept_stale=accept_stale)
            local = ThreadCore(engine, core_metering([engine])[0])
        except Exception as exc:
            conn.send(("failed", type(exc).__name__, str(exc)[:2000]))
            return
        conn.send(("ready", local.name, local.calibrated, local.takes_light))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the center is gone
                return
            if message[0] == "close":
                return
            _, a, b, options, edge_light = message
            try:
                out, energy, stats = local.compute(a, b, options, _light_from_center(conn) if edge_light else None)
            except REFUSALS as exc:
                conn.send(("refused", type(exc).__name__, str(exc)[:2000]))
            except Exception as exc:
                log.error("a job failed", exc_info=True)
                conn.send(("failed", type(exc).__name__, str(exc)[:2000]))
            else:
                conn.send(("done", out, energy, stats))


def _light_from_center(conn: Any) -> Light:
    """A light source that asks the center (the other end of ``conn``) for each program's light."""

    def light(codes: np.ndarray, drive: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        conn.send(("light?", codes, drive))
        reply = conn.recv()
        if reply[0] != "light":
            raise DataPlaneError(reply[1])
        return reply[1]

    return light


def thread_cores(engines: Sequence[Any]) -> list[ThreadCore]:
    """Engines of benches open in this process as cores, each metered on its own instruments."""
    return [ThreadCore(engine, metering) for engine, metering in zip(engines, core_metering(engines))]
