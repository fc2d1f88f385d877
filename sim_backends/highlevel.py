"""``LabSimVisaLibrary``: a PyVISA back end whose resources are simulated instruments on one bench.

Usable as ``pyvisa.ResourceManager("@labsim")`` (the built-in system bench),
``pyvisa.ResourceManager("path/bench.yaml@labsim")``, ``pyvisa.ResourceManager("characterisation@labsim")`` (a
built-in bench by name, ``BUILTIN_BENCHES``), or by passing an instance made with
``LabSimVisaLibrary.from_config(config, seed)`` (what labctl does, so every bench it opens gets a
fresh world with its own seed). Drivers cannot tell it from a real VISA library: they exchange SCPI
text and binary blocks through the usual ``viWrite``/``viRead`` calls.

Unlike pyvisa-sim, reads hand over whole chunks of the output queue rather than one byte per call,
and every instrument shares one physics model of the bench.
"""

from __future__ import annotations

import itertools
from typing import Any

from pyvisa import constants, errors, highlevel, rname
from pyvisa.attributes import AttributesByID
from pyvisa.util import LibraryPath

from sim_backends.bench import (
    SYSTEM_BENCH_PATH,
    BenchFileError,
    SimBench,
    build_bench,
    builtin_bench,
    load_bench_file,
    normalise_resource,
)
from sim_backends.faults import FaultError, FaultInjector
from sim_backends.instrument import SimInstrument

StatusCode = constants.StatusCode
_INLINE: dict[str, tuple[dict[str, Any], int | None]] = {}
_counter = itertools.count()


class UnknownResource(errors.VisaIOError):
    """The bench has no instrument at this resource name; the message lists those it has."""

    def __init__(self, resource: str, known: list[str]):
        super().__init__(StatusCode.error_resource_not_found)
        self.resource = resource
        self.known = known

    def __str__(self) -> str:
        return (f"no simulated instrument at {self.resource!r}; this bench has: "
                f"{', '.join(self.known) or '(none)'}")


class _Session:
    """One open resource: the instrument behind it and the VISA attributes set on it."""

    def __init__(self, resource: str, instrument: SimInstrument, parsed: rname.ResourceName):
        self.instrument = instrument
        self.attrs: dict[Any, Any] = {
            constants.ResourceAttribute.resource_name: resource,
            constants.ResourceAttribute.resource_class: parsed.resource_class,
            constants.ResourceAttribute.interface_type: parsed.interface_type_const,
        }

    def timeout_s(self) -> float:
        """The session's I/O timeout in s (inf when infinite)."""
        value, _ = self.get(constants.ResourceAttribute.timeout_value)
        return float("inf") if value in (None, constants.VI_TMO_INFINITE) else value / 1000

    def get(self, attribute):
        if attribute in self.attrs:
            return self.attrs[attribute], StatusCode.success
        attr = AttributesByID.get(attribute)
        if attr is None:
            return 0, StatusCode.error_nonsupported_attribute
        return attr.default, StatusCode.success


class LabSimVisaLibrary(highlevel.VisaLibraryBase):
    """PyVISA library backed by a simulated bench (see module docstring)."""

    bench: SimBench

    @staticmethod
    def get_library_paths():
        return (LibraryPath("default"),)

    @staticmethod
    def get_debug_info():
        return {"bench": "labctl simulated bench", "default bench file": str(SYSTEM_BENCH_PATH)}

    @classmethod
    def from_config(cls, config: dict[str, Any], seed: int | None = 0) -> "LabSimVisaLibrary":
        """A library on a new world built from a bench description (never shared or cached)."""
        token = f"labsim-inline:{next(_counter)}"
        _INLINE[token] = (config, seed)
        return cls(token)

    def _init(self) -> None:
        path = str(self.library_path)
        if path.startswith("labsim-inline:"):
            config, seed = _INLINE.pop(path)
        elif path in ("default", "unset", ""):
            config, seed = load_bench_file(SYSTEM_BENCH_PATH), 0
        else:
            config, seed = load_bench_file(builtin_bench(path)), 0
        self.bench = build_bench(config, seed)
        self.sessions: dict[int, Any] = {}
        self._handles = itertools.count(1001)
        #: Injected faults (timeouts, disconnects, ... see sim_backends.faults) and their log.
        self.faults = FaultInjector(self.bench.world, self.bench.by_name, seed)
        try:
            self.faults.install_from(config)
        except FaultError as exc:
            raise BenchFileError(str(exc)) from None

    @property
    def world(self):
        return self.bench.world

    def instrument(self, resource: str) -> SimInstrument:
        """The simulated instrument at ``resource`` (state introspection for tests)."""
        return self.bench.by_resource[normalise_resource(resource)]

    # -- resource manager --------------------------------------------------------------------------

    def open_default_resource_manager(self):
        handle = next(self._handles)
        self.sessions[handle] = self
        return handle, StatusCode.success

    def list_resources(self, session, query="?*::INSTR"):
        found = rname.filter(list(self.bench.by_resource), query)
        if not found:
            raise errors.VisaIOError(StatusCode.error_resource_not_found)
        return tuple(found)

    def open(self, session, resource_name, access_mode=constants.AccessModes.no_lock,
             open_timeout=constants.VI_TMO_IMMEDIATE):
        try:
            parsed = rname.parse_resource_name(resource_name)
        except rname.InvalidResourceName:
            return 0, StatusCode.error_invalid_resource_name
        instrument = self.bench.by_resource.get(str(parsed))
        if instrument is None:
            raise UnknownResource(resource_name, sorted(self.bench.by_resource))
        handle = next(self._handles)
        self.faults.open(handle, instrument.name)  # refused while a disconnect keeps the resource away
        self.sessions[handle] = _Session(str(parsed), instrument, parsed)
        return handle, StatusCode.success

    def close(self, session):
        self.faults.close(session)
        if self.sessions.pop(session, None) is None:
            return StatusCode.error_invalid_object
        return StatusCode.success

    # -- fault injection (sim_backends.faults) ------------------------------------------------------

    def inject(self, name: str, fault: Any, **params: Any):
        """Arm a fault on bench item ``name`` (e.g. ``inject("laser", "disconnect", down_s=2)``)."""
        return self.faults.inject(name, fault, **params)

    def injected(self, name: str, fault: Any, **params: Any):
        """Context manager: a fault armed for the duration of a ``with`` block."""
        return self.faults.injected(name, fault, **params)

    @property
    def fault_log(self):
        """Every fault that fired so far (time, instrument, fault, detail)."""
        return list(self.faults.log)

    # -- message-based I/O ---------------------------------------------------------------------

    def write(self, session, data: bytes):
        sess = self.sessions.get(session)
        if not isinstance(sess, _Session):
            return 0, StatusCode.error_invalid_object
        self.faults.before_write(session, sess.instrument.name)
        sess.instrument.handle_write(bytes(data))
        self.faults.after_write(sess.instrument.name)
        return len(data), StatusCode.success

    def read(self, session, count: int):
        sess = self.sessions.get(session)
        if not isinstance(sess, _Session):
            return b"", StatusCode.error_invalid_object
        instrument = sess.instrument
        self.faults.before_read(session, instrument.name, sess.timeout_s())
        if not instrument.output:
            # Nothing to answer: a real instrument stays silent and the read times out.
            instrument.query_unterminated()
            raise errors.VisaIOError(constants.VI_ERROR_TMO)
        chunk, end = instrument.read_output(count)
        chunk = self.faults.reply(instrument.name, chunk)
        end = end or not instrument.output
        return chunk, (StatusCode.success if end else StatusCode.success_max_count_read)

    def clear(self, session):
        sess = self.sessions.get(session)
        if isinstance(sess, _Session):
            self.faults.check(session)
            sess.instrument.output.clear()
        return StatusCode.success

    def flush(self, session, mask):
        return self.clear(session)

    def read_stb(self, session):
        sess = self.sessions.get(session)
        if not isinstance(sess, _Session):
            return 0, StatusCode.error_invalid_object
        return int(sess.instrument.execute("*STB", [], True)), StatusCode.success

    def assert_trigger(self, session, protocol):
        return StatusCode.success

    # -- attributes ---------------------------------------------------------------------------------

    def get_attribute(self, session, attribute):
        sess = self.sessions.get(session)
        if not isinstance(sess, _Session):
            return 0, StatusCode.error_invalid_object
        return sess.get(attribute)

    def set_attribute(self, session, attribute, attribute_state):
        sess = self.sessions.get(session)
        if not isinstance(sess, _Session):
            return StatusCode.error_invalid_object
        sess.attrs[attribute] = attribute_state
        return StatusCode.success

    def disable_event(self, session, event_type, mechanism):
        return StatusCode.success

    def discard_events(self, session, event_type, mechanism):
        return StatusCode.success
