"""``labctl.OPU``: matrix products on the optical processing unit of a bench (docs/opu_design.md).

A **lane** is one photodetector and the K wavelength channels reaching it. Channel k of a lane has an
input modulator MZM_xk at the edge (RF from an edge-AWG channel, DC bias from a DC-source channel) and a
weight modulator MZM_wk at the center (same, on the center AWG / DC source). In symbol slot t the
photodiode adds ``sum_k T_x(x_k[t]) T_w(w_k[t])``: K multiply-accumulates per slot, done optically.
The bench file's ``opu:`` section describes that wiring (see sim_backends/benches/opu_core.yaml), so a
real bench describes its own.

``OPU.matmul(a, b)``:

1. scales the operands into [-1, 1], offset-encodes them and lays the product out on lanes x channels x
   symbol slots (:func:`labctl.opu.tiling.plan_gemm`), cut into passes of at most ``max_slots_per_pass``;
2. prefixes every stream with the preamble (:class:`labctl.opu.timing.Preamble`), maps each channel's
   transmissions to AWG samples with its calibrated table (:class:`PredistortionTable`, the measured
   inverse of AWG -> driver -> MZM -> detector), repeats every symbol ``awg_samples_per_symbol`` times,
   and delays each stream circularly by its calibrated alignment shift (below);
3. uploads one waveform per AWG channel (one binary block each), starts all AWGs back to back, lets the
   light cross the link, and captures each lane's detector once, with the record placed on the pattern
   by the scope's timebase position;
4. finds symbol timing on the preamble, samples the symbols, normalises them with the preamble's zero and
   full-scale levels, removes the calibrated per-channel offset terms (finite extinction: linear in the
   operands, never products), applies the calibrated decoder, decodes (:meth:`Schedule.decode`) and
   undoes the scaling. The product itself is never computed electronically.

**Alignment.** Every AWG loops a pattern of the same length P and all are started back to back (in the
simulator at the same simulated time; on a real bench the AWGs must share a start trigger / sample clock,
e.g. the M8195A's trigger input driven by one source, or the edge AWG's marker; the OPU cannot check
this). Stream m (one modulator) reaches the detector d_m after its AWG emits it (fibre, cables, filters).
With d_ref = max_m d_m, stream m is delayed circularly by round((d_ref - d_m) f_awg) samples, so every
stream's symbol n arrives at d_ref + n T: the weights meet the inputs they multiply at the weight
modulators (the edge -> center fibre delay), and the K channels also arrive together at the detector
(chromatic walk-off between wavelengths). The delays are measured in calibration
(:func:`labctl.opu.calibrate.measure_delays`, sync patterns longer than ``max_delay_s``).

**Efficiency.** Bulk data move in one binary block per AWG channel and one capture per lane per pass.
With a calibrated sampling phase the scope may sample once per symbol at the symbol centres
(``samples_per_symbol_capture = 1``: the timebase position puts the samples there); otherwise at
least 2 samples per symbol are captured and interpolated.

Without a calibration file the OPU runs "uncalibrated": biases at the nominal quadrature voltage of the
bench file's ``nominal`` values, a linear drive, no offset or decoder correction; only the delays are
measured (once, at first use), because nothing works without them.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labctl.config import opu_section
from labctl.errors import ConfigError, LabctlError, RoleError
from labctl.opu import calibration_file as calfile
from labctl.opu.encoding import as_float_array
from labctl.opu.predistortion import PredistortionTable
from labctl.opu.tiling import plan_gemm
from labctl.opu.timing import Preamble, SymbolTimingError, estimate_levels, find_symbol_timing, sample_symbols
from labctl.units import dbm_to_w

log = logging.getLogger(__name__)

__all__ = [
    "CALIBRATION_KIND",
    "ChannelWiring",
    "LaneWiring",
    "Modulator",
    "OPU",
    "OPUCalibration",
    "OPUConfig",
    "OPUError",
    "OPUHardware",
]

#: Value of the calibration file's ``opu.kind`` entry (the sections this module reads).
CALIBRATION_KIND = "labctl-opu-calibration/1"

# M8195A segment rules (drivers/keysight/m8195a.py): the pattern length in samples must be a multiple of
# 256 and at least 1280; patterns are built to comply so that no repetition padding changes the period.
_SEGMENT_GRANULARITY = 256
_SEGMENT_MIN = 1280


class OPUError(LabctlError, RuntimeError):
    """The OPU cannot run on this bench as configured (the message says what to do)."""


# -- the bench file's ``opu:`` section -------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelWiring(_Strict):
    """One wavelength channel of a lane: its laser port, its two AWG channels, its two bias outputs.

    Instrument names default to the OPU-wide ones (``laser``, ``edge_awg``, ...); set them per channel
    when a lane spans several instruments.
    """

    laser_port: int = Field(ge=1)
    wavelength_m: float = Field(gt=1.0e-7, lt=3.0e-6)
    edge_awg_channel: int = Field(ge=1)
    center_awg_channel: int = Field(ge=1)
    edge_bias_channel: int = Field(ge=1)
    center_bias_channel: int = Field(ge=1)
    laser: str | None = None
    edge_awg: str | None = None
    center_awg: str | None = None
    edge_bias: str | None = None
    center_bias: str | None = None


class LaneWiring(_Strict):
    """One lane: the detector's scope channel and the K channels that reach it.

    ``detector_responsivity_a_per_w`` and ``detector_gain_ohm`` (the photodiode's datasheet values, load or
    transimpedance) only serve to report received optical power; they do not enter any computation.
    """

    scope_channel: int = Field(ge=1)
    channels: list[ChannelWiring] = Field(min_length=1)
    detector_responsivity_a_per_w: float | None = Field(None, gt=0)
    detector_gain_ohm: float = Field(50.0, gt=0)


class TriggerWiring(_Strict):
    """The scope trigger: an AWG whose channel-1 repetitions are marked on ``source`` of the scope."""

    awg: str | None = None
    source: int | Literal["AUX"] = "AUX"
    level_v: float = 0.5


class NominalValues(_Strict):
    """Datasheet values used without calibration (bias at nominal quadrature, linear drive)."""

    v_pi: float = Field(5.0, gt=0)
    v_pi_rf: float = Field(5.5, gt=0)
    phase_offset_v: float = 0.0
    driver_gain_db: float = Field(20.0, ge=-20, le=60)


class OPUConfig(_Strict):
    """The bench file's ``opu:`` section (see sim_backends/benches/opu_core.yaml)."""

    architecture: Literal["streaming"] = "streaming"
    symbol_rate_hz: float = Field(gt=0)
    awg_sample_rate_hz: float = Field(gt=0)
    samples_per_symbol_capture: int = Field(2, ge=1, le=64)
    capture_window: float = Field(0.5, ge=0, le=1)
    max_delay_s: float = Field(20e-6, gt=0, le=1e-2)
    max_slots_per_pass: int = Field(1 << 16, ge=256)
    laser: str
    laser_power_dbm: float
    edge_awg: str
    center_awg: str
    edge_bias: str
    center_bias: str
    bias_current_limit_a: float = Field(0.01, gt=0)
    scope: str
    trigger: TriggerWiring = Field(default_factory=TriggerWiring)
    nominal: NominalValues = Field(default_factory=NominalValues)
    lanes: list[LaneWiring] = Field(min_length=1)

    @field_validator("awg_sample_rate_hz")
    @classmethod
    def _integer_oversampling(cls, value, info):
        rate = info.data.get("symbol_rate_hz")
        if rate:
            sps = value / rate
            if abs(sps - round(sps)) > 1e-9 * sps or round(sps) < 1:
                raise ValueError(f"awg_sample_rate_hz / symbol_rate_hz = {sps:g} must be a whole number of "
                                 "AWG samples per symbol")
        return value

    @model_validator(mode="after")
    def _lanes_consistent(self):
        k = {len(lane.channels) for lane in self.lanes}
        if len(k) != 1:
            raise ValueError(f"every lane needs the same number of channels, got {sorted(k)}")
        return self

    @property
    def awg_samples_per_symbol(self) -> int:
        return int(round(self.awg_sample_rate_hz / self.symbol_rate_hz))

    @property
    def channels_per_lane(self) -> int:
        return len(self.lanes[0].channels)

    @classmethod
    def from_bench(cls, bench) -> "OPUConfig":
        return opu_section(bench, cls, "see sim_backends/benches/opu_core.yaml")


@dataclass(frozen=True)
class Modulator:
    """One modulator of the OPU and what drives it. ``key`` is e.g. ``"L1.x2"`` (lane 1, input, channel 2)."""

    key: str
    side: str          # "x" (edge input) or "w" (center weight)
    lane: int          # 0-based
    index: int         # 0-based channel within the lane
    awg: str
    awg_channel: int
    bias: str
    bias_channel: int
    laser: str
    laser_port: int
    wavelength_m: float


def modulators_of(config: OPUConfig) -> list[Modulator]:
    """Every modulator, lane by lane: x1..xK then w1..wK."""
    out = []
    for li, lane in enumerate(config.lanes):
        for side in ("x", "w"):
            for k, ch in enumerate(lane.channels):
                if side == "x":
                    awg, awg_ch = ch.edge_awg or config.edge_awg, ch.edge_awg_channel
                    bias, bias_ch = ch.edge_bias or config.edge_bias, ch.edge_bias_channel
                else:
                    awg, awg_ch = ch.center_awg or config.center_awg, ch.center_awg_channel
                    bias, bias_ch = ch.center_bias or config.center_bias, ch.center_bias_channel
                out.append(Modulator(key=f"L{li + 1}.{side}{k + 1}", side=side, lane=li, index=k, awg=awg,
                                     awg_channel=awg_ch, bias=bias, bias_channel=bias_ch,
                                     laser=ch.laser or config.laser, laser_port=ch.laser_port,
                                     wavelength_m=ch.wavelength_m))
    return out


# -- hardware primitives ---------------------------------------------------------------------------


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

    def __init__(self, bench, config: OPUConfig | None = None):
        self.bench = bench
        self.config = config or OPUConfig.from_bench(bench)
        self.modulators = modulators_of(self.config)
        self.by_key = {m.key: m for m in self.modulators}
        self._check_roles()
        cfg = self.config
        self.trigger_awg = cfg.trigger.awg or cfg.edge_awg
        self.awgs = sorted({m.awg for m in self.modulators} | {self.trigger_awg})
        self.scope = bench.role(cfg.scope)
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
        """The smallest symbol count >= n_symbols whose sample count is a valid M8195A segment length."""
        sps = self.config.awg_samples_per_symbol
        step = _SEGMENT_GRANULARITY // math.gcd(sps, _SEGMENT_GRANULARITY)
        n = max(int(n_symbols), -(-_SEGMENT_MIN // sps))
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


# -- calibration state -----------------------------------------------------------------------------


def _linear_table(name: str = "") -> PredistortionTable:
    """The uncalibrated drive: transmission t in [0, 1] -> AWG sample 2 t - 1 (linear)."""
    return PredistortionTable(t=np.array([0.0, 1.0]), volts=np.array([-1.0, 1.0]), name=name)


@dataclass
class ModulatorCal:
    """How one modulator is driven: DC bias, AWG amplitude, transmission -> AWG sample table."""

    bias_v: float
    amplitude_vpp: float
    table: PredistortionTable
    fit: dict[str, float] | None = None        # DC transfer fit (v_pi, phase_offset_v, p_max, p_min, ...)
    drive: dict[str, Any] | None = None        # staircase results (extinction, branch, residual)


@dataclass
class LaneCal:
    """Per-lane detector and decoder calibration (units: preamble-normalised lane sums)."""

    gain: float = 1.0                           # coefficient of sum_k x'_k w'_k
    channel_gains: np.ndarray | None = None     # (K,) per-channel coefficients after equalisation
    alpha: np.ndarray | None = None             # (K,) coefficients of x'_k (finite extinction)
    beta: np.ndarray | None = None              # (K,) coefficients of w'_k
    offset: float = 0.0
    x_scale: np.ndarray | None = None           # (K,) drive scale of each input channel (gain equalisation)
    laser_power_dbm: np.ndarray | None = None   # (K,)
    zero_v: float | None = None                 # detector levels at calibration (vertical range)
    full_v: float | None = None
    residual_sigma: float | None = None         # lane-sum noise of the affine fit
    d0: float = 0.0                             # end-to-end decoder: lane sum = d0 + d1 * estimate
    d1: float = 1.0
    decoder_sigma: float | None = None


@dataclass
class OPUCalibration:
    """Everything the engine uses that calibration measures; ``nominal()`` is the uncalibrated state."""

    modulators: dict[str, ModulatorCal]
    lanes: list[LaneCal]
    delays_s: dict[str, float] | None = None
    sampling_phase_s: float | None = None
    sections: set[str] = field(default_factory=set)   # which calibration steps are present
    validation: dict[str, Any] = field(default_factory=dict)
    source: str | None = None                          # file it was loaded from
    created: str | None = None

    @classmethod
    def nominal(cls, config: OPUConfig) -> "OPUCalibration":
        nom = config.nominal
        gain = 10 ** (nom.driver_gain_db / 20)
        v_q = nom.v_pi / 2 - nom.phase_offset_v          # nominal quadrature of cos^2(pi/2 (V + V0)/V_pi)
        while v_q < 0:
            v_q += 2 * nom.v_pi
        amplitude = float(min(max(nom.v_pi_rf / gain, 0.075), 1.0))
        mods = {m.key: ModulatorCal(bias_v=float(v_q), amplitude_vpp=amplitude, table=_linear_table(m.key))
                for m in modulators_of(config)}
        k = config.channels_per_lane
        lanes = [LaneCal(alpha=np.zeros(k), beta=np.zeros(k), x_scale=np.ones(k),
                         laser_power_dbm=np.full(k, float(config.laser_power_dbm))) for _ in config.lanes]
        return cls(modulators=mods, lanes=lanes)

    @property
    def calibrated(self) -> bool:
        return bool(self.sections & {"bias", "drive", "lanes"})

    def only(self, config: OPUConfig, steps) -> "OPUCalibration":
        """A copy keeping only the calibration sections ``steps`` (others back to nominal), e.g.
        ``("bias", "timing")`` for a run without predistortion, offset terms or decoder."""
        keep = set(steps) | {"opu"}
        sections = {k: v for k, v in self.to_sections(config).items() if k in keep}
        copy = calfile.CalibrationFile(bench="", bench_fingerprint="", created=self.created or "",
                                       sections=sections, path=self.source)
        return OPUCalibration.from_file(copy, config)

    # -- file sections -----------------------------------------------------------------------------

    def to_sections(self, config: OPUConfig) -> dict[str, dict]:
        sections: dict[str, dict] = {"opu": _identity_section(config)}
        if "bias" in self.sections:
            sections["bias"] = {k: {"bias_v": c.bias_v, **(c.fit or {})} for k, c in self.modulators.items()}
        if "drive" in self.sections:
            sections["drive"] = {k: {"amplitude_vpp": c.amplitude_vpp, "t": c.table.t, "samples": c.table.volts,
                                     **(c.drive or {})} for k, c in self.modulators.items()}
        if "timing" in self.sections:
            sections["timing"] = {"delays_s": dict(self.delays_s or {}),
                                  "sampling_phase_s": self.sampling_phase_s}
        if "lanes" in self.sections:
            sections["lanes"] = {f"L{i + 1}": {
                "gain": ln.gain, "channel_gains": np.asarray(ln.channel_gains if ln.channel_gains is not None
                                                             else np.full(len(ln.alpha), ln.gain), float),
                "alpha": np.asarray(ln.alpha, float), "beta": np.asarray(ln.beta, float),
                "offset": ln.offset, "x_scale": np.asarray(ln.x_scale, float),
                "laser_power_dbm": np.asarray(ln.laser_power_dbm, float), "zero_v": ln.zero_v, "full_v": ln.full_v,
                "residual_sigma": ln.residual_sigma} for i, ln in enumerate(self.lanes)}
        if "decoder" in self.sections:
            sections["decoder"] = {f"L{i + 1}": {"d0": ln.d0, "d1": ln.d1, "residual_sigma": ln.decoder_sigma}
                                   for i, ln in enumerate(self.lanes)}
        if self.validation:
            sections["validation"] = dict(self.validation)
        return sections

    @classmethod
    def from_file(cls, cal: calfile.CalibrationFile, config: OPUConfig) -> "OPUCalibration":
        ident = cal.sections.get("opu")
        want = _identity_section(config)
        if ident is None:
            raise calfile.CalibrationCorrupt(cal.path, "no 'opu' section: not an OPU calibration file")
        if ident.get("kind") != CALIBRATION_KIND:
            raise calfile.CalibrationVersionError(cal.path, f"OPU calibration kind {ident.get('kind')!r}; this "
                                                  f"labctl reads {CALIBRATION_KIND!r} -- recalibrate")
        for key in ("symbol_rate_hz", "awg_sample_rate_hz", "modulators", "channels_per_lane"):
            if ident.get(key) != want[key]:
                raise calfile.CalibrationBenchMismatch(
                    cal.path, f"the bench's opu section changed since calibration ({key}: file "
                    f"{ident.get(key)!r}, bench {want[key]!r}) -- recalibrate")
        out = cls.nominal(config)
        out.source, out.created = cal.path, cal.created
        try:
            if "bias" in cal.sections:
                for key, sec in cal.sections["bias"].items():
                    mc = out.modulators[key]
                    mc.bias_v = float(sec["bias_v"])
                    mc.fit = {k: v for k, v in sec.items() if k != "bias_v"}
                out.sections.add("bias")
            if "drive" in cal.sections:
                for key, sec in cal.sections["drive"].items():
                    mc = out.modulators[key]
                    mc.amplitude_vpp = float(sec["amplitude_vpp"])
                    mc.table = PredistortionTable(t=np.asarray(sec["t"], float),
                                                  volts=np.asarray(sec["samples"], float), name=key)
                    mc.drive = {k: v for k, v in sec.items() if k not in ("amplitude_vpp", "t", "samples")}
                out.sections.add("drive")
            if "timing" in cal.sections:
                sec = cal.sections["timing"]
                out.delays_s = {k: float(v) for k, v in sec["delays_s"].items()}
                missing = set(out.modulators) - set(out.delays_s)
                if missing:
                    raise KeyError(f"timing.delays_s lacks {sorted(missing)}")
                phase = sec.get("sampling_phase_s")
                out.sampling_phase_s = None if phase is None else float(phase)
                out.sections.add("timing")
            if "lanes" in cal.sections:
                for i, ln in enumerate(out.lanes):
                    sec = cal.sections["lanes"][f"L{i + 1}"]
                    ln.gain, ln.offset = float(sec["gain"]), float(sec["offset"])
                    ln.channel_gains = np.asarray(sec.get("channel_gains", np.full(len(sec["alpha"]), ln.gain)), float)
                    ln.alpha, ln.beta = np.asarray(sec["alpha"], float), np.asarray(sec["beta"], float)
                    ln.x_scale = np.asarray(sec["x_scale"], float)
                    ln.laser_power_dbm = np.asarray(sec["laser_power_dbm"], float)
                    ln.zero_v, ln.full_v = sec.get("zero_v"), sec.get("full_v")
                    ln.residual_sigma = sec.get("residual_sigma")
                out.sections.add("lanes")
            if "decoder" in cal.sections:
                for i, ln in enumerate(out.lanes):
                    sec = cal.sections["decoder"][f"L{i + 1}"]
                    ln.d0, ln.d1 = float(sec["d0"]), float(sec["d1"])
                    ln.decoder_sigma = sec.get("residual_sigma")
                out.sections.add("decoder")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise calfile.CalibrationCorrupt(cal.path, f"an OPU calibration section is incomplete or of the wrong "
                                             f"type ({type(exc).__name__}: {exc})") from None
        out.validation = dict(cal.sections.get("validation", {}))
        return out


def _identity_section(config: OPUConfig) -> dict:
    return {"kind": CALIBRATION_KIND, "symbol_rate_hz": float(config.symbol_rate_hz),
            "awg_sample_rate_hz": float(config.awg_sample_rate_hz),
            "modulators": [m.key for m in modulators_of(config)], "channels_per_lane": config.channels_per_lane,
            "lanes": len(config.lanes)}


# -- the engine ------------------------------------------------------------------------------------


@dataclass
class LaneReading:
    """What one pass measured on one lane: preamble-normalised symbol values and the capture's quality."""

    values: np.ndarray          # (n,) K (v - zero) / (full - zero): the lane sum in channel units
    noise: float                # preamble noise in the same units
    correlation: float          # preamble correlation
    timing_error_symbols: float # found preamble position minus the expected one (calibrated timing)
    zero_v: float
    full_v: float
    clipped: int


class OPU:
    """An optical processing unit bound to a bench: ``y = opu.matmul(a, b)`` (see the module docstring).

    ``calibration``: a calibration file path (made by ``labctl run calibrate``), a loaded
    :class:`~labctl.opu.calibration_file.CalibrationFile`, an :class:`OPUCalibration`, or None
    (uncalibrated: nominal settings, delays measured at first use). Files of another bench, of another
    format version, or made for a different ``opu`` wiring raise a
    :class:`~labctl.opu.calibration_file.CalibrationError` subclass. A file's operating point is checked
    once its settings are applied (:meth:`operating_point`): a difference raises
    :class:`~labctl.opu.calibration_file.CalibrationStale`; a file neither made nor drift-checked in the
    last 8 h (``calibration_file.DRIFT_CHECK_AFTER_S``) gets a drift check, and a failed one raises
    :class:`~labctl.opu.calibration_file.CalibrationDrift`. ``accept_stale=True`` logs both at WARNING
    instead and uses the calibration as it is.

    ``samples_per_symbol_capture`` (default: the bench file's): scope samples per symbol; 1 samples each
    symbol once at its centre and needs a calibrated sampling phase (otherwise 2 are used).
    ``capture_window``: fraction of a symbol averaged around its centre.
    """

    def __new__(cls, bench, *args, **kwargs):
        """``OPU(bench)`` on a weight-stationary bench gives its (first) core: one entry point for both."""
        if cls is OPU:
            from labctl.opu.stationary import StationaryOPU, architecture

            if architecture(bench) == "weight_stationary":
                return StationaryOPU(bench, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, bench, calibration: Any = None, *, samples_per_symbol_capture: int | None = None,
                 capture_window: float | None = None, preamble: Preamble | None = None,
                 max_slots_per_pass: int | None = None, accept_stale: bool = False):
        self.bench = bench
        self.hw = OPUHardware(bench)
        self.config = self.hw.config
        self.preamble = preamble or Preamble()
        self.calibration, source = self._load_calibration(calibration)
        sps = samples_per_symbol_capture or self.config.samples_per_symbol_capture
        if int(sps) != sps or not 1 <= sps <= 64:
            raise ValueError(f"samples_per_symbol_capture must be an integer in [1, 64], got {sps!r}")
        self.samples_per_symbol_capture = int(sps)
        window = self.config.capture_window if capture_window is None else float(capture_window)
        if not 0 <= window <= 1:
            raise ValueError(f"capture_window must be in [0, 1] symbol periods, got {window!r}")
        self.capture_window = window
        self.max_slots_per_pass = int(max_slots_per_pass or self.config.max_slots_per_pass)
        if self.max_slots_per_pass < 256:
            raise ValueError(f"max_slots_per_pass must be >= 256, got {self.max_slots_per_pass}")
        #: dB added to every calibrated laser power (e.g. to sweep the received power)
        self.laser_power_offset_db = 0.0
        self.last_stats: dict[str, Any] = {}
        self._applied: tuple | None = None
        self._range_cache: dict[int, tuple[float, float]] = {}   # lane -> (scope offset, range)
        self._autorange_pending = False
        self._last_capture: tuple[float | None, int] = (None, 0)
        if source is not None:
            self._verify_calibration(source, accept_stale)

    # -- set-up ----------------------------------------------------------------------------------

    def _load_calibration(self, calibration: Any) -> tuple[OPUCalibration, calfile.CalibrationFile | None]:
        """The calibration to use, and the file it came from (None: given as an object, not checked)."""
        if calibration is None:
            return OPUCalibration.nominal(self.config), None
        if isinstance(calibration, OPUCalibration):
            return calibration, None
        if isinstance(calibration, (str, Path)):
            calibration = calfile.load(calibration, calfile.bench_fingerprint(self.bench))
        if isinstance(calibration, calfile.CalibrationFile):
            mine = calfile.bench_fingerprint(self.bench)
            if calibration.bench_fingerprint != mine:
                raise calfile.CalibrationBenchMismatch(
                    calibration.path, f"made on bench {calibration.bench!r} with different instruments -- "
                    "recalibrate on this bench")
            return OPUCalibration.from_file(calibration, self.config), calibration
        raise TypeError(f"calibration must be a path, a CalibrationFile, an OPUCalibration or None, "
                        f"not {type(calibration).__name__}")

    def _verify_calibration(self, cal: calfile.CalibrationFile, accept_stale: bool) -> None:
        """Apply the calibrated settings, compare the operating point, drift-check an old file."""
        self.apply_settings(force=True)
        command = self.recalibrate_command(cal.path)
        calfile.check_operating_point(cal, self.operating_point(), recalibrate=command, accept_stale=accept_stale)
        if not calfile.drift_check_due(cal):
            return
        from labctl.opu.calibrate import drift_check

        report = drift_check(self)
        calfile.conclude_drift_check(cal, drifted=report.recalibrate, reason=report.reason, recalibrate=command,
                                     accept_stale=accept_stale)

    def recalibrate_command(self, calibration_path: Any = None) -> str:
        """The command that recalibrates this OPU (to ``calibration_path``)."""
        bench_file = getattr(self.bench, "path", None) or "<bench file>"
        sim = " --sim" if getattr(self.bench, "mode", None) == "sim" else ""
        if calibration_path is None:
            return f"labctl run calibrate{sim} --bench {bench_file} --out <folder>"
        target = Path(calibration_path)
        return f"labctl run calibrate{sim} --bench {bench_file} --set output={target.name} --out {target.parent}"

    def operating_point(self) -> dict[str, Any]:
        """What the products depend on besides the calibration: laser powers, wavelengths and outputs and
        bias voltages as the instruments report them (call it after :meth:`apply_settings`), the rates
        of the ``opu`` section, and the bench file's optical path (fibres, filters, detectors, temperature)."""
        mods = self.hw.modulators
        sources = list(dict.fromkeys(name for m in mods for name in (m.laser, m.awg, m.bias)))
        point = calfile.path_operating_point(self.bench, sources)
        point["opu.symbol_rate_hz"] = float(self.config.symbol_rate_hz)
        point["opu.awg_sample_rate_hz"] = float(self.config.awg_sample_rate_hz)
        for m in mods:
            key = f"lasers.{m.laser}.{m.laser_port}"
            if f"{key}.output" not in point:
                laser = self.hw.laser(m)
                point[f"{key}.power_dbm"] = round(10.0 * math.log10(max(float(laser.power), 1e-30) / 1e-3), 3)
                point[f"{key}.wavelength_nm"] = round(float(laser.wavelength) * 1e9, 4)
                point[f"{key}.output"] = bool(laser.output_enabled)
            point[f"biases.{m.key}_v"] = round(float(self.bench.role(m.bias, m.bias_channel).voltage), 6)
        return point

    @property
    def name(self) -> str:
        """The bench's name: a streaming bench has one OPU."""
        return self.bench.config.name

    @property
    def lanes(self) -> int:
        return len(self.config.lanes)

    @property
    def channels(self) -> int:
        return self.config.channels_per_lane

    @property
    def calibrated(self) -> bool:
        return self.calibration.calibrated

    def lane_modulators(self, lane: int, side: str) -> list[Modulator]:
        return [m for m in self.hw.modulators if m.lane == lane and m.side == side]

    def laser_powers_dbm(self) -> dict[str, float]:
        """Laser power per channel (keyed by its input modulator) including ``laser_power_offset_db``."""
        out = {}
        for li, lane in enumerate(self.calibration.lanes):
            for m in self.lane_modulators(li, "x"):
                out[m.key] = float(lane.laser_power_dbm[m.index]) + self.laser_power_offset_db
        return out

    def apply_settings(self, force: bool = False) -> None:
        """Lasers (wavelengths, powers, on), bias voltages: sent when they differ from what was last sent."""
        cal = self.calibration
        state = (tuple(sorted(self.laser_powers_dbm().items())),
                 tuple(sorted((k, c.bias_v) for k, c in cal.modulators.items())))
        if self._applied is not None and state == self._applied[0] and self.hw.generation == self._applied[1] \
                and not force:
            return
        self.hw.set_biases({k: c.bias_v for k, c in cal.modulators.items()})
        self.hw.set_lasers(None, self.laser_powers_dbm())
        if self._applied is not None and state[0] != self._applied[0]:
            self._range_cache.clear()
        self._applied = (state, self.hw.generation)

    def invalidate(self) -> None:
        """Forget what was sent to the bench: call it after changing instrument settings outside the OPU."""
        self._applied = None
        self._range_cache.clear()
        self.hw.forget()

    # -- timing ----------------------------------------------------------------------------------

    def delays(self) -> dict[str, float]:
        """AWG -> detector delay of every modulator's stream (measured at first use when not calibrated)."""
        cal = self.calibration
        if cal.delays_s is None:
            from labctl.opu.calibrate import measure_delays

            warnings.warn("no calibrated delays: measuring the AWG -> detector delays now (uncalibrated OPU)",
                          stacklevel=3)
            self.apply_settings()
            cal.delays_s = measure_delays(self)
        return cal.delays_s

    def alignment(self) -> tuple[float, dict[str, int]]:
        """(d_ref, circular delay in AWG samples of each stream) so that all streams arrive together."""
        delays = self.delays()
        d_ref = max(delays.values())
        fs = self.config.awg_sample_rate_hz
        return d_ref, {k: int(round((d_ref - d) * fs)) for k, d in delays.items()}

    # -- one pass: streams in, normalised lane sums out ------------------------------------------

    def drive_samples(self, key: str, t: np.ndarray) -> np.ndarray:
        """AWG samples for transmissions ``t`` of modulator ``key`` (its table; inputs scaled by x_scale)."""
        m = self.hw.by_key[key]
        mc = self.calibration.modulators[key]
        t = np.asarray(t, dtype=np.float64)
        if m.side == "x":
            t = t * float(self.calibration.lanes[m.lane].x_scale[m.index])
        return np.interp(t, mc.table.t, mc.table.volts)

    def measure(self, x: np.ndarray, w: np.ndarray, *, capture_fs: float | None = None) -> list[LaneReading]:
        """Send transmissions ``x``, ``w`` (shape (L, K, n), values in [0, 1]) and read every lane once.

        The preamble is prepended, everything is predistorted, aligned, played and captured (one capture
        of all lanes); each lane's symbols are normalised by its preamble levels (units: full-scale
        channel products, so an ideal lane reads sum_k x'_k w'_k). No offset or decoder correction.
        """
        hw, cal, pre = self.hw, self.calibration, self.preamble
        x = np.asarray(x, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        want = (self.lanes, self.channels)
        if x.shape[:2] != want or w.shape != x.shape or x.ndim != 3:
            raise ValueError(f"x and w must have shape (lanes, channels, slots) = {want + ('n',)}, "
                             f"got {x.shape} and {w.shape}")
        n = x.shape[2]
        if n < 1:
            raise ValueError("nothing to send (0 slots)")
        for name, arr in (("x", x), ("w", w)):
            if not np.all(np.isfinite(arr)) or arr.min() < -1e-9 or arr.max() > 1 + 1e-9:
                raise ValueError(f"{name} transmissions must be finite and within [0, 1]")
        self.apply_settings()
        d_ref, shifts = self.alignment()
        n_pre = len(pre)
        n_sym = hw.pattern_symbols(n_pre + n)
        pad = n_sym - n_pre - n
        symbols, amplitudes = {}, {}
        for li in range(self.lanes):
            for side, arr in (("x", x), ("w", w)):
                for m in self.lane_modulators(li, side):
                    stream = pre.prepend(arr[li, m.index])
                    if pad:
                        stream = np.concatenate([stream, np.zeros(pad)])
                    symbols[m.key] = self.drive_samples(m.key, stream)
                    amplitudes[m.key] = cal.modulators[m.key].amplitude_vpp
        period = hw.play(symbols, amplitudes, n_sym, shifts=shifts)
        hw.settle(d_ref + 2 * period)
        return self._capture_lanes(n, period, d_ref, capture_fs)

    def _capture_plan(self, n: int, period: float, d_ref: float, capture_fs: float | None):
        cfg, cal = self.config, self.calibration
        T = 1.0 / cfg.symbol_rate_hz
        sps = self.samples_per_symbol_capture
        phase = cal.sampling_phase_s
        if sps == 1 and phase is None:
            sps = 2  # no calibrated sampling phase: interpolate between samples instead
        fs = self.hw.sample_rate(capture_fs or cfg.symbol_rate_hz * sps)
        margin = 8
        arrival = d_ref + (phase or 0.0)
        start = arrival % period - margin * T
        if fs <= 1.01 * cfg.symbol_rate_hz:
            start += 0.5 * T  # one sample per symbol: at the symbol centres
        if start < 0:
            start += period
        n_points = int(math.ceil((len(self.preamble) + n + 2 * margin) * T * fs))
        return fs, start, n_points, margin

    def _capture_lanes(self, n: int, period: float, d_ref: float, capture_fs: float | None,
                       retry: bool = True) -> list[LaneReading]:
        cfg, pre = self.config, self.preamble
        fs, start, n_points, margin = self._capture_plan(n, period, d_ref, capture_fs)
        channels = [lane.scope_channel for lane in cfg.lanes]
        for li, ch in enumerate(channels):
            self._set_range(li, ch, period, start)
        cap = self.hw.capture(channels, start, n_points, fs)
        self._last_capture = (cap.fs, n_points)
        readings = []
        clipped_any = False
        for li, ch in enumerate(channels):
            trace = cap.traces[ch]
            offset, range_v = self._range_cache[li]   # samples at the ADC's end codes are clipped
            clipped = int(np.count_nonzero((trace <= offset - range_v / 2 + 1e-12)
                                           | (trace >= offset + range_v / 2 - range_v / 512)))
            if clipped > max(2, trace.size // 2000):
                clipped_any = True
            try:
                timing = find_symbol_timing(trace, cap.fs, cfg.symbol_rate_hz, pre, payload_symbols=n)
            except SymbolTimingError as exc:
                raise SymbolTimingError(f"lane {li + 1} (scope channel {ch}): {exc}") from None
            window = self.capture_window if cap.fs > 1.5 * cfg.symbol_rate_hz else 0.0
            levels = estimate_levels(trace, timing, pre, window=window)
            values = sample_symbols(trace, timing, n, window=window)
            k = self.channels
            span = levels.full - levels.zero
            expected_first = (margin + len(pre)) * cap.fs / cfg.symbol_rate_hz
            if cap.fs <= 1.01 * cfg.symbol_rate_hz:
                expected_first -= 0.5
            timing_error = (timing.first_symbol - expected_first) * cfg.symbol_rate_hz / cap.fs
            readings.append(LaneReading(values=k * (values - levels.zero) / span, noise=k * levels.noise_rms / span,
                                        correlation=timing.correlation, timing_error_symbols=float(timing_error),
                                        zero_v=levels.zero, full_v=levels.full, clipped=clipped))
        if clipped_any and retry:
            log.info("detector trace clipped; re-ranging the scope and capturing again")
            for li in range(self.lanes):
                self._range_cache.pop(li, None)
            self._autorange_pending = True
            return self._capture_lanes(n, period, d_ref, capture_fs, retry=False)
        for li, r in enumerate(readings):
            if r.clipped > max(2, r.values.size // 2000):
                warnings.warn(f"lane {li + 1}: {r.clipped} detector samples clipped at the scope's range",
                              stacklevel=4)
        return readings

    def _set_range(self, lane: int, channel: int, period: float, start: float) -> None:
        """Vertical range covering the lane's zero..full levels (calibrated, or measured once)."""
        if lane not in self._range_cache:
            ln = self.calibration.lanes[lane]
            if ln.zero_v is not None and ln.full_v is not None and not self._autorange_pending:
                gain = 10 ** (self.laser_power_offset_db / 10)
                zero, full = ln.zero_v * gain, ln.full_v * gain
            else:
                zero, full = self._autorange(channel, period, start)
            span = max(full - zero, 1e-4)
            self._range_cache[lane] = ((zero + full) / 2, min(max(1.3 * span, 0.016), 0.8))
            self._autorange_pending = False
        offset, range_v = self._range_cache[lane]
        self.hw.set_vertical(channel, range_v, offset)

    def _autorange(self, channel: int, period: float, start: float) -> tuple[float, float]:
        cfg = self.config
        self.hw.set_vertical(channel, 0.8, 0.35)
        fs = self.hw.sample_rate(cfg.symbol_rate_hz * 2)
        n = int(min(period, 4096 / cfg.symbol_rate_hz) * fs)
        cap = self.hw.capture([channel], start, max(n, 64), fs)
        trace = cap.traces[channel]
        lo, hi = np.percentile(trace, [0.1, 99.9])
        return float(lo), float(hi)

    # -- matrix products -------------------------------------------------------------------------

    def matmul(self, a: Any, b: Any, *, return_error: bool = False, scale_a: float | None = None,
               scale_b: float | None = None):
        """``a @ b`` computed on the optical bench (``np.matmul`` semantics; NumPy arrays or torch tensors).

        Returns the product in the type of ``a`` (torch tensor on a's device, float32 for torch, float64
        NumPy otherwise; a float32 NumPy input gives float32), and with ``return_error=True`` also the
        per-output standard error estimate (same shape and type). ``scale_a``/``scale_b`` fix the full
        scale of the operands (values beyond are clipped with an ``EncodingRangeWarning`` and counted in
        ``last_stats``); by default each tensor is scaled by its max |value|. NaN/inf raise ValueError.
        """
        t_all = time.perf_counter()
        torch_like = _torch_info(a) or _torch_info(b)
        out_dtype = _result_dtype(a, b)
        a_arr = as_float_array(a, "a")
        b_arr = as_float_array(b, "b")
        t0 = time.perf_counter()
        sched = plan_gemm(a_arr, b_arr, self.lanes, self.channels, scale_a=scale_a, scale_b=scale_b,
                          stream_dtype=np.float32)
        plan_s = time.perf_counter() - t0
        before = self.hw.stats
        self.hw.stats = TransferStats()
        lane_sums = np.zeros((self.lanes, sched.slots_per_lane))
        slot_sigma = np.zeros(self.lanes)
        passes, measure_s, correction_s = 0, 0.0, 0.0
        min_corr, max_timing_err = 1.0, 0.0
        levels = np.zeros((self.lanes, 2))
        try:
            total = sched.slots_per_lane
            for s0 in range(0, total, self.max_slots_per_pass):
                s1 = min(total, s0 + self.max_slots_per_pass)
                xs = np.asarray(sched.input_streams(None, s0, s1), dtype=np.float64)
                ws = np.asarray(sched.weight_streams(None, s0, s1), dtype=np.float64)
                t1 = time.perf_counter()
                readings = self.measure(xs, ws)
                measure_s += time.perf_counter() - t1
                t1 = time.perf_counter()
                for li, r in enumerate(readings):
                    lane_sums[li, s0:s1] = self.correct(li, r.values, xs[li], ws[li])
                    slot_sigma[li] = max(slot_sigma[li], self.slot_sigma(li, r))
                    min_corr = min(min_corr, r.correlation)
                    max_timing_err = max(max_timing_err, abs(r.timing_error_symbols))
                    levels[li] = (r.zero_v, r.full_v)
                correction_s += time.perf_counter() - t1
                passes += 1
        finally:
            stats, self.hw.stats = self.hw.stats, before
            before.add(stats)
        t1 = time.perf_counter()
        y = sched.decode(lane_sums)
        sigma = sched.output_sigma(slot_sigma)
        decode_s = time.perf_counter() - t1 + correction_s
        wall = time.perf_counter() - t_all
        cfg = self.config
        symbols = passes and sched.slots_per_lane + passes * len(self.preamble)
        self.last_stats = {
            "macs": sched.useful_macs, "optical_macs": sched.optical_macs, "outputs": sched.n_outputs,
            "lanes": self.lanes, "channels": self.channels, "slots_per_lane": sched.slots_per_lane,
            "passes": passes, "symbols_per_lane": int(symbols),
            "optical_time_s": symbols / cfg.symbol_rate_hz,
            "uploads": stats.uploads, "upload_bytes": stats.upload_bytes, "captures": stats.captures,
            "capture_points": stats.capture_points, "transfers": stats.uploads + stats.captures,
            "wall_s": wall, "plan_s": plan_s, "measure_s": measure_s, "upload_s": stats.upload_s,
            "capture_s": stats.capture_s, "decode_s": decode_s,
            "clipped_a": sched.clipped_a, "clipped_b": sched.clipped_b,
            "calibrated": self.calibrated, "calibration_steps": sorted(self.calibration.sections),
            "samples_per_symbol_capture": self.samples_per_symbol_capture,
            "capture_rate_hz": self._last_capture[0], "capture_record_points": self._last_capture[1],
            "slot_sigma": slot_sigma.tolist(), "min_preamble_correlation": min_corr,
            "max_timing_error_symbols": max_timing_err,
            "detector_zero_v": levels[:, 0].tolist(), "detector_full_v": levels[:, 1].tolist(),
            "received_power_w": self.received_power_w(levels[:, 1] - levels[:, 0]),
        }
        y = y.astype(out_dtype, copy=False)
        sigma = sigma.astype(out_dtype, copy=False)
        if torch_like:
            y, sigma = _to_torch(y, torch_like), _to_torch(sigma, torch_like)
        return (y, sigma) if return_error else y

    __call__ = matmul

    def received_power_w(self, full_scale_v) -> list[float | None]:
        """Optical power per channel at full transmission, from a lane's full-scale detector swing (V),
        using the detector's responsivity and gain from the ``opu`` section (None if not given)."""
        out = []
        for lane, swing in zip(self.config.lanes, np.atleast_1d(full_scale_v)):
            r = lane.detector_responsivity_a_per_w
            out.append(None if r is None else float(swing) / (self.channels * lane.detector_gain_ohm * r))
        return out

    def correct(self, lane: int, values: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Lane sums sum_k x'_k w'_k from preamble-normalised readings: remove the calibrated offset terms.

        ``values``: (n,) normalised readings; ``x``, ``w``: (K, n) transmissions sent (operands only: the
        offset terms are linear in them). Then the end-to-end decoder ``d0 + d1 * estimate``.
        """
        ln = self.calibration.lanes[lane]
        est = np.asarray(values, dtype=np.float64) - ln.offset
        est -= np.asarray(ln.alpha, float) @ x
        est -= np.asarray(ln.beta, float) @ w
        est /= ln.gain
        return ln.d0 + ln.d1 * est

    def slot_sigma(self, lane: int, reading: LaneReading | None = None) -> float:
        """Noise of one corrected lane sum (channel units): calibrated residual, else the preamble's."""
        ln = self.calibration.lanes[lane]
        calibrated = ln.decoder_sigma if ln.decoder_sigma is not None else ln.residual_sigma
        if calibrated is not None:
            return float(calibrated)
        if reading is not None:
            return float(reading.noise / max(ln.gain, 1e-9))
        return float("nan")

    def __repr__(self) -> str:
        sections = ", ".join(sorted(self.calibration.sections))
        state = f"calibrated ({sections})" if self.calibrated else "uncalibrated"
        return f"OPU({self.bench.config.name!r}, {self.lanes} lane(s) x {self.channels} channels, {state})"


def _result_dtype(a: Any, b: Any):
    """float32 when every operand is float32 (NumPy or torch), else float64."""
    kinds = []
    for x in (a, b):
        dtype = getattr(x, "dtype", None)
        kinds.append(str(dtype).replace("torch.", "") if dtype is not None else "float64")
    return np.float32 if all(k == "float32" for k in kinds) else np.float64


def _torch_info(x: Any):
    """(torch module, device, dtype) when ``x`` is a torch tensor, else None (torch not imported)."""
    if type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        import torch

        return torch, x.device, x.dtype
    return None


def _to_torch(arr: np.ndarray, info) -> Any:
    torch, device, dtype = info
    if not dtype.is_floating_point:
        dtype = torch.float32
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device=device, dtype=dtype)
