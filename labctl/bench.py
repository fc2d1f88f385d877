"""Open a bench, real or simulated, and hand out its instruments by role, safely.

``open_bench()`` returns a :class:`Bench`, a context manager. In ``mode="sim"`` the bench's drivers
talk to ``sim_backends``' VISA library built from the same bench file (a fresh world per bench, seeded);
in ``mode="real"`` to the system's VISA library. Experiments cannot tell the difference.

Safety: role objects are guarded (see :mod:`labctl.safety`); leaving the context, an exception or
Ctrl-C shuts every source down (lasers off, AWG stopped and outputs open, DC outputs off, bias to its
safe state); ``close()`` returns a :class:`~labctl.shutdown.ShutdownReport` saying what went off and
what may still be on (SIGTERM/SIGHUP handling: :mod:`labctl.shutdown`).
One re-entrant lock per VISA resource serialises queries from several threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pyvisa
from pyvisa import rname

from drivers import load_driver
from labctl.config import BenchConfig, InstrumentConfig, apply_changes, load_bench
from labctl.errors import ConfigError, RoleError, UnknownResourceError
from labctl.instruments import ROLE_PROTOCOLS, protocol_members
from labctl.resilience import (
    InstrumentUnavailable,
    Recovery,
    ResilientAdapter,
    RetryPolicy,
    SimClock,
    WallClock,
    call_with_deadline,
    drain_errors,
    real_visa_library,
    retry_call,
)
from labctl.safety import Guarded, RawAccess, checks_for, exposed_members, guarded_type
from labctl import shutdown as shutdown_registry
from labctl.shutdown import ShutdownReport, deferred_signals
from sim_backends import BenchFileError, LabSimVisaLibrary, UnknownResource, builtin_bench
from sim_backends.bench import COMPONENTS
# re-exported: the built-in benches, the system (the default) and the characterisation bench, and their names
from sim_backends import BUILTIN_BENCHES, CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH  # noqa: F401

log = logging.getLogger(__name__)

Mode = Literal["sim", "real"]

#: Settings recorded per role in a bench snapshot.
SNAPSHOT_FIELDS: dict[str, tuple[str, ...]] = {
    "tunable_laser": ("wavelength", "power", "output_enabled"),
    "optical_power_meter": ("wavelength", "averaging_time"),
    "awg": ("amplitude", "offset", "output_enabled"),
    "oscilloscope": ("sample_rate", "record_length"),
    "bias_controller": ("bias_voltage",),
    "dc_source": ("voltage", "current_limit", "output_enabled"),
    "optical_switch": ("route", "port_count"),
    "optical_core": ("n_inputs", "n_outputs", "symbol_rate", "dac_amplitude", "adc_range", "adc_offset",
                     "heater_limit", "slots_per_tile", "settle_time", "input_advance", "output_enabled"),
    "power_analyzer": ("integration_mode", "integration_timer"),
}
#: Shutdown order: light first, then RF (and the optical core's DACs and heaters), then DC, bias last.
SHUTDOWN_ORDER = ("tunable_laser", "optical_core", "awg", "dc_source", "bias_controller")


def bench_path(path: str | Path | None = None) -> Path:
    """The bench file a bench argument means: None the system, a built-in bench's name its file, else the path."""
    path = builtin_bench(SYSTEM_BENCH_PATH if path is None else path)
    if not path.exists() and path.name == str(path) and not path.suffix:
        raise ConfigError(path, None, f"no bench file or built-in bench named {str(path)!r}; built-in benches: "
                          f"{', '.join(sorted(BUILTIN_BENCHES))} (or give a bench file's path)")
    return path


def bench_config(path: str | Path | None = None, mode: Mode = "sim",
                 changes: Mapping[str, Any] | None = None) -> tuple[BenchConfig, Path]:
    """The validated configuration :func:`open_bench` would open, and its file, touching no instrument:
    callers check a bench file and its ``changes`` before they create anything (e.g. a results file)."""
    if mode not in ("sim", "real"):
        raise ValueError(f"mode must be 'sim' or 'real', not {mode!r}")
    if path is None and mode == "real":
        raise ConfigError(None, None, "a real bench needs a bench file: open_bench('my_bench.yaml', mode='real')")
    path = bench_path(path)
    config = load_bench(path)
    if changes:
        if mode != "sim":
            raise ConfigError(path, None, "changes make a simulated variant of the bench; a real bench changes "
                              "only by changing the bench itself (and its file)")
        config = apply_changes(config, changes, path)
    return config, path


def open_bench(path: str | Path | None = None, mode: Mode = "sim", seed: int | None = 0,
               changes: Mapping[str, Any] | None = None) -> "Bench":
    """Open the bench described by ``path``: a bench file or a built-in bench's name (``BUILTIN_BENCHES``:
    ``"characterisation"``, ``"awgr_core"``, ...); default the built-in system, the optical computing center's
    three cores reached over edge + metro fibre (``SYSTEM_BENCH_PATH``).

    ``mode="sim"`` simulates every instrument of the file; ``mode="real"`` opens the real ones.
    ``seed`` seeds the simulation's noise (ignored on a real bench). ``changes`` opens a simulated
    variant of the file, ``{"<component or instrument>.<sim parameter>": value}`` (e.g.
    ``{"edge_fibre.length_km": 50.0}``), validated like the file (:func:`labctl.config.apply_changes`)
    and recorded in the bench snapshot, so results say what was varied.
    """
    config, path = bench_config(path, mode, changes)
    bench = Bench(config, mode=mode, seed=seed, path=path, changes=changes)
    shutdown_registry.opened(bench)
    bench.open()
    return bench


class Bench:
    """An open bench: drivers by instrument name, guarded role objects, snapshot and safe shutdown."""

    def __init__(self, config: BenchConfig, mode: Mode = "sim", seed: int | None = 0, path: Path | None = None,
                 changes: Mapping[str, Any] | None = None):
        self.config = config
        self.mode = mode
        self.seed = seed
        self.path = path
        #: How this bench differs from its file (``open_bench(changes=...)``), already applied to ``config``.
        self.changes: dict[str, Any] = dict(changes or {})
        #: Changes made to the running simulation (:meth:`sim_adjust`): (simulated time s, component, params).
        self.adjustments: list[tuple[float, str, dict[str, Any]]] = []
        self._drivers: dict[str, Any] = {}  # raw drivers: handed out only guarded (role, instruments, raw)
        #: Error-queue entries found when each instrument was opened (left by someone else; not ours).
        self.stale_errors: dict[str, list[tuple[int, str]]] = {}
        self.sim: LabSimVisaLibrary | None = None
        self._locks: dict[str, threading.RLock] = {}
        self._roles: dict[tuple[str, int | None], tuple[Any, Guarded]] = {}  # key -> (driver, role)
        self._closed = False
        self._close_lock = threading.RLock()
        self.shutdown_report: ShutdownReport | None = None  # the last shutdown's outcome

    # -- opening ------------------------------------------------------------------------------

    #: How hard to try when opening an instrument or when its connection is lost (labctl.resilience).
    retry_policy: RetryPolicy = RetryPolicy()

    def open(self, *, keep_going: bool = False, timeout_s: float | None = None) -> dict[str, Exception]:
        """Open every instrument (transient failures retried with backoff, see ``retry_policy``).

        By default the first instrument that cannot be opened closes the bench and raises. With
        ``keep_going`` every instrument is tried; those that fail are left out of ``instruments`` and
        returned as ``{name: error}`` (``labctl bench check`` reports them all). ``timeout_s`` bounds each
        instrument's opening, retries included, in wall time.
        """
        #: Lost connections met while the bench was open and what was done about each.
        self.recoveries: list[Recovery] = []
        if self.mode == "sim":
            try:
                library: Any = LabSimVisaLibrary.from_config(self.config.to_dict(), seed=self.seed)
            except BenchFileError as exc:
                raise ConfigError(self.path, None, str(exc)) from None
            self.sim = library
            self.clock: Any = SimClock(library.world)
        else:
            library = real_visa_library(self.config.visa_library, self.path)
            self.clock = WallClock()
        failures: dict[str, Exception] = {}
        try:
            for name, spec in self.config.instruments.items():
                try:
                    self._drivers[name] = self._open_instrument(name, spec, library, timeout_s)
                except Exception as exc:
                    if not keep_going:
                        raise
                    failures[name] = exc
        except BaseException:
            self.close()
            raise
        return failures

    def _open_instrument(self, name: str, spec: InstrumentConfig, library: Any,
                         timeout_s: float | None = None) -> Any:
        driver_cls = load_driver(spec.driver)
        policy = self.retry_policy
        if timeout_s is not None:
            policy = replace(policy, budget_s=min(policy.budget_s, timeout_s),
                             io_timeout_s=min(policy.io_timeout_s, timeout_s))
        connection = {"open_timeout": int(policy.io_timeout_s * 1000), **spec.connection}

        def attempt():
            return driver_cls(spec.resource, visa_library=library, **connection)

        def opening():
            driver = retry_call(attempt, instrument=name, resource=spec.resource, policy=policy, clock=self.clock)[0]
            driver.lock = self._lock_for(spec.resource)
            driver.adapter = ResilientAdapter(driver.adapter, instrument=name, policy=policy, clock=self.clock,
                                              drain=lambda: drain_errors(driver), recoveries=self.recoveries)
            self._start_clean(name, driver)  # also the first I/O: a resource that only opened lazily fails here
            return driver

        try:
            if timeout_s is None:
                driver = opening()
            else:
                driver = call_with_deadline(opening, timeout_s, instrument=name, resource=spec.resource)
        except UnknownResource as exc:
            raise UnknownResourceError(f"instrument {name!r}: {exc}") from None
        except InstrumentUnavailable as exc:
            last = exc.last_error
            if (isinstance(last, pyvisa.errors.VisaIOError)
                    and last.error_code == pyvisa.constants.StatusCode.error_resource_not_found):
                raise UnknownResourceError(
                    f"instrument {name!r}: no resource {spec.resource!r} after {exc.attempts} attempt(s); "
                    f"resources found: {', '.join(_list_resources(library)) or '(none)'}"
                ) from None
            raise
        return driver

    def _lock_for(self, resource: str) -> threading.RLock:
        key = str(rname.parse_resource_name(resource))
        return self._locks.setdefault(key, threading.RLock())

    # -- roles -------------------------------------------------------------------------------

    def role(self, name: str, channel: int | None = None) -> Any:
        """The guarded role object of instrument ``name`` (a channel of it, if ``channel`` is given)."""
        key = (name, channel)
        spec = self._spec(name)
        driver = self._driver(name)
        cached = self._roles.get(key)
        if cached is not None and cached[0] is driver:  # a re-opened instrument gets a new role object
            return cached[1]
        target = driver if channel is None else self._channel(name, spec, driver, channel)
        guarded = Guarded(target, checks_for(spec.role, self.config.safety.get(name)),
                          f"{name}" + (f" channel {channel}" if channel else ""))
        self._roles[key] = (driver, guarded)
        return guarded

    @property
    def instruments(self) -> Mapping[str, Any]:
        """The open instruments by name, each a guarded instrument object (``bench.instruments[name].id``)."""
        return _Instruments(self)

    def raw(self, name: str) -> RawAccess:
        """Explicit SCPI access to instrument ``name``, for what its role object does not offer.

        Every message sent is logged (``labctl.safety``, WARNING); settings of limited quantities are still
        checked, and refused when they cannot be read (see :class:`labctl.safety.RawAccess`).
        """
        spec = self._spec(name)
        driver = self._driver(name)
        return RawAccess(driver, name, checks_for(spec.role, self.config.safety.get(name)),
                         getattr(type(driver), "limited_commands", ()))

    def _driver(self, name: str) -> Any:
        self._spec(name)
        if name not in self._drivers:
            raise RoleError(f"instrument {name!r} is not open on this bench")
        return self._drivers[name]

    def _start_clean(self, name: str, driver: Any) -> None:
        """Empty the instrument's error queue, so what someone else left is not blamed on our first command."""
        with driver.lock:
            found = driver.drain_errors()
        self.stale_errors[name] = found
        if found:
            log.warning("%s: its error queue held %d entr%s when opened (not caused by labctl): %s", name,
                        len(found), "y" if len(found) == 1 else "ies",
                        "; ".join(f"{code} {message}" for code, message in found))

    def find(self, role: str) -> list[str]:
        """Names of the instruments that have ``role``."""
        return [n for n, spec in self.config.instruments.items() if spec.role == role]

    def _spec(self, name: str) -> InstrumentConfig:
        if name not in self.config.instruments:
            raise RoleError(f"this bench has no instrument {name!r}; it has: {', '.join(self.config.instruments)}")
        return self.config.instruments[name]

    @staticmethod
    def _channel(name: str, spec: InstrumentConfig, driver: Any, channel: int) -> Any:
        if spec.channels is not None and channel not in spec.channels:
            raise RoleError(f"{name!r} has channels {spec.channels}, not {channel}")
        channels = getattr(driver, "channels", None) or {}
        if channel in channels:
            return channels[channel]
        found = getattr(driver, f"ch_{channel}", None)
        if found is None:
            raise RoleError(f"{name!r} ({spec.driver}) has no channel {channel}")
        return found

    def role_objects(self, name: str) -> list[Any]:
        """Every role object of an instrument: one per configured channel, or the instrument itself."""
        spec = self._spec(name)
        if spec.channels and spec.role != "awg":
            return [self.role(name, ch) for ch in spec.channels]
        return [self.role(name)]

    # -- information ----------------------------------------------------------------------------

    def identify(self) -> dict[str, str]:
        """``*IDN?`` of every instrument."""
        return {name: str(self.role(name).id).strip() for name in self._drivers}

    def snapshot(self) -> dict[str, Any]:
        """Every instrument's identity and role settings, for results files."""
        snap: dict[str, Any] = {"bench": self.config.name, "mode": self.mode, "seed": self.seed, "instruments": {}}
        if self.changes:
            snap["changes"] = dict(self.changes)
        if self.adjustments:
            snap["adjustments"] = [{"time_s": t, "component": name, "params": dict(params)}
                                   for t, name, params in self.adjustments]
        for name in self._drivers:
            spec = self.config.instruments[name]
            entry: dict[str, Any] = {"role": spec.role, "driver": spec.driver, "resource": spec.resource,
                                     "idn": str(self.role(name).id).strip()}
            fields = SNAPSHOT_FIELDS[spec.role]
            targets = ([(ch, self.role(name, ch)) for ch in spec.channels] if spec.channels
                       else [(None, self.role(name))])
            for ch, target in targets:
                members = exposed_members(target)
                values = {field: _plain(getattr(target, field)) for field in fields if field in members}
                if ch is None:
                    entry.update(values)
                else:
                    entry.setdefault("channels", {})[str(ch)] = values
            snap["instruments"][name] = entry
        return snap

    def check_roles(self) -> list[str]:
        """Problems with role objects not satisfying their role Protocol (empty when all is well)."""
        problems = []
        for name, spec in self.config.instruments.items():
            protocol = ROLE_PROTOCOLS[spec.role]
            for target in self.role_objects(name):
                if spec.role == "awg":
                    target = self.role(name, (spec.channels or [1])[0])
                missing = sorted(protocol_members(protocol) - exposed_members(target))
                if missing:
                    problems.append(f"{name}: {guarded_type(target).__name__} lacks {', '.join(missing)} "
                                    f"of {protocol.__name__} (or its driver does not classify them)")
        return problems

    # -- time -------------------------------------------------------------------------------------

    def sim_adjust(self, component: str, **params: Any) -> dict[str, Any]:
        """Change parameters of a simulated component while the bench runs (a modulator's bias point
        drifting, a fibre being swapped); return their previous values, for restoring.

        Each name must be a parameter of the component in the bench file and each value is validated like
        one written there (a :class:`ConfigError` naming the field otherwise). The change is logged and
        recorded in the snapshot. To open a bench that differs from its file from the start, use
        ``open_bench(changes=...)``; a real bench cannot be changed from software.
        """
        if self.sim is None:
            raise ConfigError(self.path, f"components.{component}", "sim_adjust changes the simulation; a real "
                              "bench changes only by changing the bench")
        spec = self.config.components.get(component)
        if spec is None:
            raise ConfigError(self.path, f"components.{component}", "no such component; components: "
                              f"{', '.join(sorted(self.config.components)) or '(none)'}")
        node = self.sim.world.nodes[component]
        changes = {f"{component}.{key}": value for key, value in {**self._adjusted(component), **params}.items()}
        varied = apply_changes(self.config, changes, self.path)
        previous: dict[str, Any] = {}
        for key, value in params.items():
            if not _settable(node, key):
                raise ConfigError(self.path, f"components.{component}.{key}", f"the simulated {spec['type']} "
                                  "cannot change it while running; open a variant with "
                                  f"open_bench(..., changes={{'{component}.{key}': ...}})")
            previous[key] = getattr(node, key)
        spec = dict(varied.components[component])
        fresh = COMPONENTS[spec.pop("type")](component, **spec)   # the model's own reading of every value
        with self.sim.world.lock:  # parallel cores' evaluations see the change whole or not at all
            for key in params:
                setattr(node, key, getattr(fresh, key))
        self.adjustments.append((float(self.sim.world.time), component, dict(params)))
        log.info("%s: simulated %s changed to %s (was %s)", self.config.name, component, params, previous)
        return previous

    def _adjusted(self, component: str) -> dict[str, Any]:
        """The component's parameters as adjusted so far (so every adjustment is validated together)."""
        merged: dict[str, Any] = {}
        for _, name, params in self.adjustments:
            if name == component:
                merged.update(params)
        return merged

    def settle(self, seconds: float) -> None:
        """Wait for the bench to settle: sleeps on a real bench, advances the simulated clock in sim."""
        if self.sim is not None:
            self.sim.world.advance(seconds)
        else:
            time.sleep(seconds)

    # -- shutdown --------------------------------------------------------------------------------

    def shutdown(self) -> ShutdownReport:
        """Put every source in its safe state, in :data:`SHUTDOWN_ORDER`; report what went off and what did not.

        Every step is attempted even when an earlier one fails (a Ctrl-C arriving in a step is held
        until all steps ran, then re-raised). Safe to call from any thread, any number of times;
        after :meth:`close` it returns the final report without touching the instruments.
        """
        with self._close_lock:
            if self._closed:
                return self.shutdown_report
            off: list[str] = []
            failed: list[tuple[str, str]] = []
            interrupt: BaseException | None = None
            for label, step in self._shutdown_steps():
                try:
                    step()
                    off.append(label)
                except Exception as exc:  # keep going: the other sources must still go off
                    failed.append((label, f"{type(exc).__name__}: {exc}"))
                    log.error("%s: shutdown failed: %s", label, exc)
                except BaseException as exc:  # an interrupt must not leave the remaining sources on
                    failed.append((label, f"interrupted ({type(exc).__name__})"))
                    interrupt = interrupt or exc
            unreached = tuple(name for role in SHUTDOWN_ORDER for name in self.find(role)
                              if name not in self._drivers)
            report = ShutdownReport(self.config.name, tuple(off), tuple(failed), unreached)
            self.shutdown_report = report
            shutdown_registry.record(self, report)
            if interrupt is not None:
                raise interrupt
            return report

    def _shutdown_steps(self):
        """(label, action) per source role object, light first."""
        for role in SHUTDOWN_ORDER:
            for name in self.find(role):
                if name not in self._drivers:
                    continue
                spec = self.config.instruments[name]
                channels = spec.channels if spec.channels and role != "awg" else [None]
                for channel in channels:
                    label = name if channel is None else f"{name} channel {channel}"
                    yield label, lambda name=name, channel=channel: self.role(name, channel).shutdown()

    def close(self) -> ShutdownReport:
        """Shut every source down, then close every connection; return the shutdown report.

        Safe to call from any thread (a signal handler's thread, a watchdog that lost its network
        peer) and any number of times: one call does the work, concurrent callers wait for it and
        get its report. Signals are held back until it is done, so a second Ctrl-C cannot stop it
        half-way. If a step fails, the connections stay open and the bench stays open, so a later
        ``close()`` retries; only a shutdown without failures closes the bench for good.
        """
        with self._close_lock:
            if self._closed:
                return self.shutdown_report
            with deferred_signals():
                report = self.shutdown()
                if report.failed:
                    return report
                for driver in self._drivers.values():
                    try:
                        driver.adapter.close()
                    except Exception as exc:
                        log.warning("closing %s failed: %s", driver, exc)
                self._closed = True
                shutdown_registry.closed(self)
            return report

    def __enter__(self) -> "Bench":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __getitem__(self, name: str) -> Any:
        return self.role(name)


class _Instruments(Mapping):
    """A read-only view of the open instruments, each handed out guarded (see :meth:`Bench.role`)."""

    def __init__(self, bench: Bench):
        self._bench = bench

    def __getitem__(self, name: str) -> Any:
        if name not in self._bench._drivers:
            raise KeyError(name)
        return self._bench.role(name)

    def __iter__(self):
        return iter(list(self._bench._drivers))

    def __len__(self) -> int:
        return len(self._bench._drivers)


def _list_resources(library: Any) -> list[str]:
    try:
        return list(pyvisa.ResourceManager(library).list_resources())
    except Exception:
        return []


def _settable(node: Any, name: str) -> bool:
    """Whether a simulated component exposes ``name`` as a plain or settable attribute."""
    attribute = getattr(type(node), name, None)
    if isinstance(attribute, property):
        return attribute.fset is not None
    return not name.startswith("_") and name in vars(node)


def _plain(value: Any) -> Any:
    """Make a setting storable (enums -> names, numpy scalars -> Python)."""
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    if hasattr(value, "item"):
        return value.item()
    return value
