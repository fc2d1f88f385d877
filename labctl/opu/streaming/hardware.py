"""The bench roles the streaming OPU drives and the bulk operations it needs on them.

Bulk data move in one binary block per AWG channel and one capture per lane per pass; settings that did
not change since they were last sent (by any OPU object of the same bench) are not sent again.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from labctl.errors import ConfigError, RoleError
from labctl.instruments import ArbitraryWaveformGenerator
from labctl.opu.streaming.config import Modulator, StreamingConfig, modulators_of
from labctl.units import dbm_to_w

__all__ = ["Capture", "OPUHardware", "TransferStats"]


def _segment_rules(awgs: Sequence[ArbitraryWaveformGenerator]) -> tuple[int, int]:
    """(sample granularity, minimum samples) a pattern must meet on every one of ``awgs``."""
    step = math.lcm(*(int(awg.segment_granularity) for awg in awgs))
    return step, max(int(awg.min_segment_samples) for awg in awgs)


@dataclass
class Capture:
    """One acquisition: sample rate, time of the first sample after the trigger, traces by scope channel."""

    fs: float
    t0: float
    traces: dict[int, np.ndarray]


@dataclass
class TransferStats:
    uploads: int = 0
    upload_bytes: int = 0
    captures: int = 0
    capture_points: int = 0
    upload_s: float = 0.0
    capture_s: float = 0.0

    def add(self, other: "TransferStats") -> None:
        for name in ("uploads", "upload_bytes", "captures", "capture_points", "upload_s", "capture_s"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


_SHARED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


class OPUHardware:
    """The bench roles the OPU drives, and the few bulk operations it needs (roles only: real or simulated).

    Raises :class:`labctl.errors.RoleError` when an instrument named in the ``opu`` section is missing or
    has the wrong role.
    """

    ROLES = {"laser": "tunable_laser", "edge_awg": "awg", "center_awg": "awg", "edge_bias": "dc_source",
             "center_bias": "dc_source", "scope": "oscilloscope"}

    def __init__(self, bench, config: StreamingConfig | None = None):
        self.bench = bench
        self.config = config or StreamingConfig.from_bench(bench)
        self.modulators = modulators_of(self.config)
        self.by_key = {m.key: m for m in self.modulators}
        self._check_roles()
        cfg = self.config
        self.trigger_awg = cfg.trigger.awg or cfg.edge_awg
        self.awgs = sorted({m.awg for m in self.modulators} | {self.trigger_awg})
        self.scope = bench.role(cfg.scope)
        self.segment_step, self.segment_min = _segment_rules([bench.role(name) for name in self.awgs])
        self.stats = TransferStats()
        # What was last sent to the instruments, shared by every OPUHardware of this bench (several OPU
        # objects may drive one bench), so settings that did not change are not sent again.
        shared = _SHARED.setdefault(bench, {"scope": {}, "awg": {}, "uploaded": {}, "biases_ready": set(),
                                            "generation": [0]})
        self._scope_state: dict[Any, Any] = shared["scope"]
        self._amplitudes: dict[Any, float] = shared["awg"]
        self._uploaded_length: dict[str, int] = shared["uploaded"]
        self._biases_ready_set: set = shared["biases_ready"]
        self._generation = shared["generation"]

    @property
    def generation(self) -> int:
        """Incremented whenever lasers or biases change, so an engine knows when to re-send its settings."""
        return self._generation[0]

    def forget(self) -> None:
        """Forget every remembered instrument setting of this bench (after something else changed them)."""
        self._scope_state.clear()
        self._amplitudes.clear()
        self._uploaded_length.clear()
        self._biases_ready_set.clear()
        self._generation[0] += 1

    # -- checks ----------------------------------------------------------------------------------

    def _check_roles(self) -> None:
        cfg, bench = self.config, self.bench
        wanted: dict[str, str] = {}
        for label, role in self.ROLES.items():
            wanted[getattr(cfg, label)] = role
        if cfg.trigger.awg:
            wanted[cfg.trigger.awg] = "awg"
        for m in self.modulators:
            wanted[m.awg] = "awg"
            wanted[m.bias] = "dc_source"
            wanted[m.laser] = "tunable_laser"
        instruments = bench.config.instruments
        for name, role in wanted.items():
            if name not in instruments:
                raise RoleError(f"the OPU needs a {role} instrument {name!r} (bench file 'opu' section), but the "
                                f"bench has only: {', '.join(instruments)}")
            if instruments[name].role != role:
                raise RoleError(f"instrument {name!r} has role {instruments[name].role!r}; the OPU uses it as "
                                f"a {role}")
        seen: dict[tuple, str] = {}
        for m in self.modulators:
            for key in (("awg", m.awg, m.awg_channel), ("bias", m.bias, m.bias_channel)):
                if key in seen:
                    raise ConfigError(bench.path, "opu.lanes", f"{key[1]} channel {key[2]} drives both "
                                      f"{seen[key]} and {m.key}")
                seen[key] = m.key

    # -- lasers and biases -------------------------------------------------------------------------

    def laser(self, m: Modulator):
        return self.bench.role(m.laser, m.laser_port)

    def set_lasers(self, on: set[str] | None, power_dbm: dict[str, float] | float | None = None) -> None:
        """Enable the lasers of the channels of modulators ``on`` (keys; None = all), disable the others.

        ``power_dbm``: one value for all, or per modulator key (either modulator of a channel).
        """
        self._generation[0] += 1
        ports: dict[tuple[str, int], tuple[bool, float | None, float]] = {}
        for m in self.modulators:
            port = (m.laser, m.laser_port)
            enable = on is None or m.key in on
            power = power_dbm.get(m.key) if isinstance(power_dbm, dict) else power_dbm
            old = ports.get(port)
            if old is not None:
                enable = enable or old[0]
                power = power if power is not None else old[1]
            ports[port] = (enable, power, m.wavelength_m)
        for (laser, port), (enable, power, wavelength) in ports.items():
            role = self.bench.role(laser, port)
            if enable:
                if not math.isclose(float(role.wavelength), wavelength, rel_tol=1e-9):
                    role.wavelength = wavelength
                if power is not None and not math.isclose(float(role.power), dbm_to_w(power), rel_tol=1e-4):
                    role.power = dbm_to_w(power)
            if bool(role.output_enabled) != enable:
                role.output_enabled = enable

    def prepare_biases(self) -> None:
        """Current limits and outputs of the bias sources (once)."""
        limit = self.config.bias_current_limit_a
        for m in self.modulators:
            key = (m.bias, m.bias_channel, limit)
            if key in self._biases_ready_set:
                continue
            role = self.bench.role(m.bias, m.bias_channel)
            role.current_limit = limit
            role.output_enabled = True
            self._biases_ready_set.add(key)

    def set_biases(self, volts: dict[str, float]) -> None:
        """DC bias voltages by modulator key: one program message per source instrument."""
        self.prepare_biases()
        self._generation[0] += 1
        by_source: dict[str, dict[int, float]] = {}
        for key, v in volts.items():
            m = self.by_key[key]
            by_source.setdefault(m.bias, {})[m.bias_channel] = float(v)
        for name, settings in by_source.items():
            self.bench.role(name).set_voltages(settings)

    # -- patterns ------------------------------------------------------------------------------

    def pattern_symbols(self, n_symbols: int) -> int:
        """The smallest symbol count >= n_symbols whose sample count is a valid segment length on every AWG
        (so no repetition padding changes the pattern's period)."""
        sps = self.config.awg_samples_per_symbol
        step = self.segment_step // math.gcd(sps, self.segment_step)
        n = max(int(n_symbols), -(-self.segment_min // sps))
        return -(-n // step) * step

    def play(self, symbols: dict[str, np.ndarray], amplitudes: dict[str, float], n_symbols: int,
             shifts: dict[str, int] | None = None, idle: dict[str, float] | None = None) -> float:
        """Loop one pattern of ``n_symbols`` symbols on every AWG channel involved, all AWGs started together.

        ``symbols``: modulator key -> AWG samples (normalised, [-1, 1]) per symbol (length n_symbols);
        modulators not given play their ``idle`` sample (default 0: the bias point). ``shifts``: circular
        delay in AWG samples per modulator. ``amplitudes``: Vpp per modulator. Returns the period in s.
        Every channel of the involved AWGs gets a waveform of the same length (the trigger AWG's channel
        1 marks the pattern start).
        """
        cfg = self.config
        sps = cfg.awg_samples_per_symbol
        if n_symbols != self.pattern_symbols(n_symbols):
            raise ValueError(f"{n_symbols} symbols x {sps} samples is not a valid segment length; "
                             "use pattern_symbols()")
        length = n_symbols * sps
        shifts = shifts or {}
        idle = idle or {}
        waves: dict[tuple[str, int], np.ndarray] = {}
        levels: dict[tuple[str, int], float] = {}
        for m in self.modulators:
            sym = symbols.get(m.key)
            if sym is None:
                sym = np.full(n_symbols, float(idle.get(m.key, 0.0)))
            sym = np.asarray(sym, dtype=np.float64)
            if sym.shape != (n_symbols,):
                raise ValueError(f"{m.key}: {sym.shape} symbols, expected ({n_symbols},)")
            wave = np.repeat(sym, sps)
            shift = int(shifts.get(m.key, 0)) % length
            if shift:
                wave = np.roll(wave, shift)
            waves[(m.awg, m.awg_channel)] = wave
            levels[(m.awg, m.awg_channel)] = float(amplitudes[m.key])
        stats = TransferStats()
        t_start = time.perf_counter()
        for name in self.awgs:
            self.bench.role(name).stop()
        for name in self.awgs:
            awg = self.bench.role(name)
            if self._amplitudes.get((name, "rate")) != cfg.awg_sample_rate_hz:
                awg.sample_rate = cfg.awg_sample_rate_hz
                self._amplitudes[(name, "rate")] = cfg.awg_sample_rate_hz
            spec = self.bench.config.instruments[name]
            chans = spec.channels or [1]
            if self._amplitudes.get((name, "length")) != length:
                # a new pattern length: clear the old segments first (in extended memory a redefinition
                # on one channel clears the others anyway); every channel is uploaded below
                first = self.bench.role(name, chans[0])
                if hasattr(first, "delete_all_segments"):
                    first.delete_all_segments()
                for ch in chans:
                    self._uploaded_length.pop(f"{name}:{ch}", None)
                self._amplitudes[(name, "length")] = length
            for ch in chans:
                wave = waves.get((name, ch))
                if wave is None:   # a channel no modulator uses: idle, but the same length as the others
                    if self._uploaded_length.get(f"{name}:{ch}") == length:
                        continue
                    wave = np.zeros(length)
                role = self.bench.role(name, ch)
                role.upload_waveform(wave, pad=None)
                stats.uploads += 1
                stats.upload_bytes += length
                self._uploaded_length[f"{name}:{ch}"] = length
                amp = levels.get((name, ch))
                if amp is not None and self._amplitudes.get((name, ch)) != amp:
                    role.amplitude = amp
                    self._amplitudes[(name, ch)] = amp
                if not role.output_enabled:
                    role.output_enabled = True
        stats.upload_s = time.perf_counter() - t_start
        for name in self.awgs:
            self.bench.role(name).run()
        self.stats.add(stats)
        self.last_transfer = stats
        return length / cfg.awg_sample_rate_hz

    def stop(self) -> None:
        for name in self.awgs:
            self.bench.role(name).stop()

    # -- acquisition ---------------------------------------------------------------------------

    def set_vertical(self, channel: int, range_v: float, offset_v: float) -> None:
        key = ("vertical", channel)
        range_v = float(min(max(range_v, 0.016), 0.8))
        value = (round(range_v, 6), round(offset_v, 6))
        if self._scope_state.get(key) != value:
            self.scope.set_vertical(channel, *value)
            self._scope_state[key] = value

    def sample_rate(self, fs: float) -> float:
        """Request scope sample rate ``fs``; return the rate the scope actually uses (it rounds up)."""
        if self._scope_state.get(("fs",)) != fs:
            self.scope.sample_rate = fs
            self._scope_state[("fs",)] = fs
            self._scope_state[("fs_actual",)] = float(self.scope.sample_rate)
        return self._scope_state[("fs_actual",)]

    def capture(self, channels: list[int], start_s: float, n_points: int, fs: float) -> Capture:
        """Acquire ``n_points`` at (about) ``fs`` starting ``start_s`` after the trigger, on ``channels``.

        The record is placed with the Infiniium timebase (reference LEFT, scale = record / 10 divisions,
        position = start); a scope without those controls captures around the trigger (the returned
        ``t0`` says where the record starts).
        """
        scope = self.scope
        trig = self.config.trigger
        t_start = time.perf_counter()
        key = ("trigger",)
        if self._scope_state.get(key) != (trig.source, trig.level_v):
            scope.set_edge_trigger(trig.source, trig.level_v, rising=True)
            self._scope_state[key] = (trig.source, trig.level_v)
        fs_actual = self.sample_rate(fs)
        if self._scope_state.get(("points",)) != n_points:
            scope.record_length = int(n_points)
            self._scope_state[("points",)] = n_points
        if hasattr(scope, "timebase_position"):
            span = n_points / fs_actual
            if self._scope_state.get(("tbref",)) != "LEFT":
                scope.timebase_reference = "LEFT"
                self._scope_state[("tbref",)] = "LEFT"
            if self._scope_state.get(("tbscale",)) != span:
                scope.timebase_scale = span / 10
                self._scope_state[("tbscale",)] = span
            if self._scope_state.get(("tbpos",)) != start_s:
                scope.timebase_position = start_s
                self._scope_state[("tbpos",)] = start_s
        t, traces = scope.capture(list(channels))
        stats = TransferStats(captures=1, capture_points=n_points * len(channels),
                              capture_s=time.perf_counter() - t_start)
        self.stats.add(stats)
        return Capture(fs=fs_actual, t0=float(t[0]), traces=traces)

    def settle(self, seconds: float) -> None:
        self.bench.settle(seconds)
