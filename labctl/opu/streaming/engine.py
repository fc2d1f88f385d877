"""The streaming OPU: matrix products on lanes of AWG-driven modulators read by a scope (docs/opu_design.md).

A **lane** is one photodetector and the K wavelength channels reaching it. Channel k of a lane has an
input modulator MZM_xk at the edge (RF from an edge-AWG channel, DC bias from a DC-source channel) and a
weight modulator MZM_wk at the center (same, on the center AWG / DC source). In symbol slot t the
photodiode adds ``sum_k T_x(x_k[t]) T_w(w_k[t])``: K multiply-accumulates per slot, done optically.
The bench file's ``opu:`` section describes that wiring (see sim_backends/benches/opu_core.yaml), so a
real bench describes its own.

``StreamingOPU.matmul(a, b)``:

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
e.g. the AWGs' trigger inputs driven by one source, or the edge AWG's marker; the OPU cannot check
this). Stream m (one modulator) reaches the detector d_m after its AWG emits it (fibre, cables, filters).
With d_ref = max_m d_m, stream m is delayed circularly by round((d_ref - d_m) f_awg) samples, so every
stream's symbol n arrives at d_ref + n T: the weights meet the inputs they multiply at the weight
modulators (the edge -> center fibre delay), and the K channels also arrive together at the detector
(chromatic walk-off between wavelengths). The delays are measured in calibration
(:meth:`StreamingOPU.measure_delays`, sync patterns longer than ``max_delay_s``).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft as sfft

from labctl.opu import calibration_file as calfile
from labctl.opu.frontend import deliver, product_stats, take_operands
from labctl.opu.streaming.config import Modulator, OPUError
from labctl.opu.streaming.drift import DECODER_SEED, DriftReport, judge_drift, random_products
from labctl.opu.streaming.hardware import OPUHardware, TransferStats
from labctl.opu.streaming.state import OPUCalibration
from labctl.opu.streaming.sync import fast_pattern, refine_delay, symbol_means, sync_patterns
from labctl.opu.tiling import plan_gemm
from labctl.opu.timing import Preamble, SymbolTimingError, estimate_levels, find_symbol_timing, sample_symbols

log = logging.getLogger(__name__)

__all__ = ["LaneReading", "StreamingOPU"]


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


class StreamingOPU:
    """A streaming optical processing unit bound to a bench: ``y = opu.matmul(a, b)`` (see the module docstring).

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
        report = self.drift_check()
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

    def settings_changed(self) -> None:
        """Lasers or biases were changed outside :meth:`apply_settings`: send the engine's again next time."""
        self._applied = None

    def forget_scope_range(self, lane: int | None = None) -> None:
        """Measure the vertical range of ``lane`` (None: every lane) again at its next use."""
        if lane is None:
            self._range_cache.clear()
        else:
            self._range_cache.pop(lane, None)

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
            warnings.warn("no calibrated delays: measuring the AWG -> detector delays now (uncalibrated OPU)",
                          stacklevel=3)
            self.apply_settings()
            cal.delays_s = self.measure_delays()
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
            self.set_scope_range(li, ch, period, start)
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
            self.forget_scope_range()
            self._autorange_pending = True
            return self._capture_lanes(n, period, d_ref, capture_fs, retry=False)
        for li, r in enumerate(readings):
            if r.clipped > max(2, r.values.size // 2000):
                warnings.warn(f"lane {li + 1}: {r.clipped} detector samples clipped at the scope's range",
                              stacklevel=4)
        return readings

    def set_scope_range(self, lane: int, channel: int, period: float, start: float) -> None:
        """Set the scope's vertical range of ``lane`` (on ``channel``) to cover its zero..full levels: the
        calibrated ones, or measured once on the pattern playing with ``period``, from ``start`` s."""
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
        ops = take_operands(a, b)
        t0 = time.perf_counter()
        sched = plan_gemm(ops.a, ops.b, self.lanes, self.channels, scale_a=scale_a, scale_b=scale_b,
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
        self.last_stats = product_stats(
            macs=sched.useful_macs, optical_macs=sched.optical_macs, wall_s=wall,
            optical_time_s=symbols / cfg.symbol_rate_hz, uploads=stats.uploads, upload_bytes=stats.upload_bytes,
            captures=stats.captures, calibrated=self.calibrated,
            outputs=sched.n_outputs, lanes=self.lanes, channels=self.channels, slots_per_lane=sched.slots_per_lane,
            passes=passes, symbols_per_lane=int(symbols), capture_points=stats.capture_points,
            transfers=stats.uploads + stats.captures, plan_s=plan_s, measure_s=measure_s, upload_s=stats.upload_s,
            capture_s=stats.capture_s, decode_s=decode_s, clipped_a=sched.clipped_a, clipped_b=sched.clipped_b,
            calibration_steps=sorted(self.calibration.sections),
            samples_per_symbol_capture=self.samples_per_symbol_capture, capture_rate_hz=self._last_capture[0],
            capture_record_points=self._last_capture[1], slot_sigma=slot_sigma.tolist(),
            min_preamble_correlation=min_corr, max_timing_error_symbols=max_timing_err,
            detector_zero_v=levels[:, 0].tolist(), detector_full_v=levels[:, 1].tolist(),
            received_power_w=self.received_power_w(levels[:, 1] - levels[:, 0]),
        )
        return deliver(ops, y, sigma, return_error)

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

    # -- timing and drift measurements ---------------------------------------------------------

    def measure_delays(self, *, window_symbols: int = 4096, swing: float = 0.3,
                       min_significance: float = 12.0) -> dict[str, float]:
        """AWG -> detector delay (s) of every modulator's stream, modulo the sync pattern's period.

        Two patterns of random binary symbols +-``swing`` (AWG samples around the bias point: a small
        symmetric swing about quadrature keeps rising and falling edges alike, so the correlation centroid
        is the delay), one per stream and mutually uncorrelated, longer than ``max_delay_s``: first on every
        input modulator (weights at their bias), then on every weight modulator. Each lane's detector is
        captured once per pattern from the trigger (the pattern start) for ``window_symbols`` symbols at
        >= 10 samples per symbol. A stream whose correlation peak is below ``min_significance`` robust
        standard deviations raises :class:`OPUError` (no modulation reaches the detector).
        """
        cfg, hw = self.config, self.hw
        R = cfg.symbol_rate_hz
        n = fast_pattern(hw.pattern_symbols, int(math.ceil(cfg.max_delay_s * R * 1.02)) + window_symbols)
        period = n / R
        self.apply_settings()
        amplitudes = {k: c.amplitude_vpp for k, c in self.calibration.modulators.items()}
        delays: dict[str, float] = {}
        lost: list[str] = []
        for side in ("x", "w"):
            keys = [m.key for m in hw.modulators if m.side == side]
            patterns = sync_patterns(keys, n)
            hw.play({k: swing * (2 * p - 1) for k, p in patterns.items()}, amplitudes, n)
            hw.settle(cfg.max_delay_s + 2 * period)
            fs = self.fast_capture_rate()
            for li, lane in enumerate(cfg.lanes):
                ch = lane.scope_channel
                self.set_scope_range(li, ch, period, 0.0)
                cap = hw.capture([ch], 0.0, int(window_symbols * fs / R), fs)
                trace = cap.traces[ch]
                means = symbol_means(trace, cap.fs, R, window_symbols - 2)
                v = np.zeros(n)
                v[:means.size] = means - means.mean()
                fv = sfft.rfft(v)
                for m in self.lane_modulators(li, side):
                    p = patterns[m.key] - patterns[m.key].mean()
                    corr = sfft.irfft(fv * np.conj(sfft.rfft(p)), n)
                    # v[j] ~ p[j - D] with D = (delay - t0) / T; corr[k] = sum_j v[j + k] p[j] peaks at k = D
                    lag = int(np.argmax(np.abs(corr)))
                    spread = 1.4826 * float(np.median(np.abs(corr - np.median(corr))))
                    if not abs(corr[lag]) > min_significance * spread:
                        lost.append(f"{m.key} ({abs(corr[lag]) / max(spread, 1e-300):.1f} sigma)")
                        continue
                    sign = 1.0 if corr[lag] > 0 else -1.0
                    coarse = cap.t0 + lag / R   # arrival of symbol 0, modulo the period
                    delays[m.key] = refine_delay(trace, cap.fs, cap.t0, R, patterns[m.key], sign, coarse, period)
        hw.stop()
        if lost:
            raise OPUError(f"sync pattern not found in the detector signal for {', '.join(lost)}: no modulation "
                           "of that stream reaches the detector (a modulator biased near a null, a laser off or a "
                           "broken link); calibrate the biases first (labctl run calibrate)")
        return delays

    def fast_capture_rate(self) -> float:
        """Scope rate for waveform-detail measurements: >= 10 samples per symbol (as the scope rounds it)."""
        return self.hw.sample_rate(max(10, self.samples_per_symbol_capture) * self.config.symbol_rate_hz)

    def drift_check(self, *, products: int = 2, threshold: float = 1.5,
                    max_timing_error: float = 0.25) -> DriftReport:
        """Run a few known products (the decoder-fit ones) and compare their error with the calibration's.

        Recalibrate when the RMS error exceeds ``threshold`` times the error recorded at calibration (or,
        without a record, when the products have fewer than 4 bits), or when the preamble arrives more than
        ``max_timing_error`` symbols from where the calibrated delays put it.
        """
        val = self.calibration.validation or {}
        shape = tuple(val.get("shape", (16, 32, 16)))
        measured, reference, timing = [], [], 0.0
        for a, b in random_products(DECODER_SEED, products, *shape):
            measured.append(np.asarray(self.matmul(a, b)).ravel())
            reference.append((a @ b).ravel())
            timing = max(timing, float(self.last_stats.get("max_timing_error_symbols", 0.0)))
        phase_known = self.calibration.sampling_phase_s is not None
        return judge_drift(np.concatenate(measured), np.concatenate(reference), reference_sigma=val.get("sigma"),
                           threshold=threshold, timing_error_symbols=timing,
                           max_timing_error=max_timing_error if phase_known else None)

    def __repr__(self) -> str:
        sections = ", ".join(sorted(self.calibration.sections))
        state = f"calibrated ({sections})" if self.calibrated else "uncalibrated"
        return f"StreamingOPU({self.bench.config.name!r}, {self.lanes} lane(s) x {self.channels} channels, {state})"
