"""Calibration of the streaming OPU (docs/opu_design.md): each step measures through the bench's roles.

Steps, in the order :func:`calibrate` runs them (each stores one section of the calibration file):

1. ``bias`` -- per modulator, a DC bias sweep with its DC source while only its channel's laser is on
   (the scope's mean detector voltage as power reading), fitted with
   :func:`labctl.analysis.fit_mzm_transfer` (V_pi, built-in bias offset, P_max, P_min); the bias is set
   at quadrature (the rising-slope quadrature nearest the middle of the sweep). The partner modulator
   of the channel is held at a fixed bias; if it happens to sit near its null it is moved.
2. ``timing`` -- the AWG -> detector delay of every stream (:meth:`StreamingOPU.measure_delays`): a random binary
   sync pattern longer than ``max_delay_s`` on the inputs (weights constant), then on the weights
   (inputs constant); circular cross-correlation gives the delay modulo the pattern period to a symbol,
   the sides of the correlation peak refine it to a fraction of a scope sample. The edge -> center
   alignment shift of the weights follows (``StreamingOPU.alignment``). Then the **sampling phase** (symbol
   centre relative to the computed arrival) from a preamble captured at the highest rate.
3. ``drive`` -- per modulator, an AWG staircase (all levels in ONE waveform, in shuffled order, each held
   several symbols) measured through the whole chain (AWG, driver amplifier with its gain and
   saturation, MZM with finite extinction, detector); the mean of each level's plateau is fitted with
   P(s) = A + B cos(theta(s)), theta a cubic in the AWG sample s, and the monotonic branch through the
   bias point is tabulated (:meth:`PredistortionTable.from_measurement`): transmission t in [0, 1] ->
   AWG sample. The AWG amplitude is then chosen so the branch fills ~90 % of the DAC range and the
   staircase is repeated.
4. ``lanes`` -- per lane, random transmissions on all channels; the preamble-normalised readings are
   fitted by least squares with y = sum_k g_k x'_k w'_k + sum_k a_k x'_k + sum_k b_k w'_k + c
   (finite extinction makes the products bilinear, not purely multiplicative). The channel gains g_k
   are equalised physically -- laser powers, then a drive scale of each input channel -- and the fit
   repeated; the offset terms a_k, b_k, c (linear in the operands, removed digitally) and the detector
   levels are stored.
5. ``decoder`` -- a few random matrix products through the calibrated engine; an affine fit of the
   ideal lane sums against the corrected measured ones, and its residual (the slot noise used for
   error estimates); the products' error statistics are stored under ``validation``.

:func:`drift_check` (:meth:`StreamingOPU.drift_check`) reruns a few known products and says whether to
recalibrate.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.optimize import least_squares

from labctl.analysis import fit_mzm_transfer
from labctl.opu import calibration_file as calfile
from labctl.opu.precision import error_stats
from labctl.opu.predistortion import PredistortionTable
from labctl.opu.streaming.config import OPUError
from labctl.opu.streaming.drift import DECODER_SEED, DriftReport, random_products
from labctl.opu.streaming.engine import StreamingOPU
from labctl.opu.streaming.sync import SYNC_SEED
from labctl.opu.tiling import plan_gemm
from labctl.units import w_to_dbm

log = logging.getLogger(__name__)

__all__ = [
    "STEPS",
    "CalibrationResult",
    "calibrate",
    "calibrate_bias",
    "calibrate_decoder",
    "calibrate_drive",
    "calibrate_lanes",
    "drift_check",
    "laser_limits_dbm",
    "measure_delays",
    "measure_sampling_phase",
    "save",
]


def measure_delays(opu: StreamingOPU, **options: Any) -> dict[str, float]:
    """Step 2: the AWG -> detector delay of every stream (:meth:`StreamingOPU.measure_delays`)."""
    return opu.measure_delays(**options)


def drift_check(opu: StreamingOPU, **options: Any) -> DriftReport:
    """Whether ``opu`` needs recalibrating (:meth:`StreamingOPU.drift_check`)."""
    return opu.drift_check(**options)


# -- step 1: DC bias sweeps ------------------------------------------------------------------------


def _dc_level(opu: StreamingOPU, channel: int, n_points: int, range_v: float, offset_v: float) -> float:
    """Mean detector voltage (AWGs stopped, auto trigger) over ``n_points`` samples.

    Sampled slowly (a fifth of the symbol rate, rounded up by the scope): a DC level needs no
    bandwidth, and samples further apart than the receiver's memory carry independent noise.
    """
    hw = opu.hw
    hw.set_vertical(channel, range_v, offset_v)
    cap = hw.capture([channel], 0.0, n_points, opu.config.symbol_rate_hz / 5)
    return float(np.mean(cap.traces[channel]))


def _bias_limit(opu: StreamingOPU, key: str) -> float:
    """Highest bias a sweep may reach: the source's programming range with 2 % margin, and the safety limit."""
    m = opu.hw.by_key[key]
    hard = 0.98 * opu.bench.role(m.bias, m.bias_channel).voltage_range[1]
    limits = opu.bench.config.safety.get(m.bias)
    if limits is not None and limits.max_voltage_v is not None:
        hard = min(hard, float(limits.max_voltage_v))
    return hard


def _sweep(opu: StreamingOPU, key: str, volts: np.ndarray, others: dict[str, float], channel: int, n_points: int,
           range_v: float, offset_v: float) -> np.ndarray:
    out = np.empty(volts.size)
    for i, v in enumerate(volts):
        opu.hw.set_biases({**others, key: float(v)})
        out[i] = _dc_level(opu, channel, n_points, range_v, offset_v)
    return out


def calibrate_bias(opu: StreamingOPU, *, points: int = 21, coarse_points: int = 7, n_points: int = 2048,
                   progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Step 1: DC transfer fit and quadrature bias of every modulator (see the module docstring).

    Per channel: a coarse sweep of the weight modulator with the input modulator at two biases a
    quarter period apart (one of them is far from a null), a fine sweep of the weight modulator, which
    is then parked at its transmission peak, and a fine sweep of the input modulator. Sweeps run from
    0 V to min(2.4 nominal V_pi, the bias source's safety limit). Updates ``opu.calibration`` (biases at
    quadrature) and returns the fits by modulator key.
    """
    cfg, hw, cal = opu.config, opu.hw, opu.calibration
    nom = cfg.nominal
    hw.stop()
    results: dict[str, dict] = {}
    biases = {k: c.bias_v for k, c in cal.modulators.items()}
    for li, lane in enumerate(cfg.lanes):
        ch = lane.scope_channel
        xs, ws = opu.lane_modulators(li, "x"), opu.lane_modulators(li, "w")
        for mx, mw in zip(xs, ws):
            if progress:
                progress(f"bias sweep, lane {li + 1} channel {mx.index + 1}")
            hw.set_lasers({mx.key}, opu.laser_powers_dbm())
            v_max = min(2.4 * nom.v_pi, _bias_limit(opu, mx.key), _bias_limit(opu, mw.key))
            coarse = np.linspace(0.0, v_max, coarse_points)
            best = None
            for vx in (biases[mx.key], (biases[mx.key] + nom.v_pi / 2) % v_max):
                others = {**biases, mx.key: vx}
                levels = _sweep(opu, mw.key, coarse, others, ch, n_points // 4, 0.8, 0.35)
                if best is None or levels.max() > best[1].max():
                    best = (vx, levels)
            vx, levels = best
            biases[mx.key] = vx
            top = float(levels.max())
            rng_v, off_v = max(1.5 * top, 0.016), 0.6 * top
            fine = np.linspace(0.0, v_max, points)
            fit_w, p_w = _fit_sweep(opu, mw.key, fine, biases, ch, n_points, rng_v, off_v)
            biases[mw.key] = float(np.clip(fit_w.peak_bias(near=fit_w.v_pi), 0.0, v_max))
            fit_x, p_x = _fit_sweep(opu, mx.key, fine, biases, ch, n_points, rng_v, off_v)
            for m, fit, power in ((mw, fit_w, p_w), (mx, fit_x, p_x)):
                v_q = _quadrature(fit, v_max)
                results[m.key] = {"v_pi": fit.v_pi, "phase_offset_v": fit.phase_offset_v, "p_max_v": fit.p_max,
                                  "p_min_v": fit.p_min, "extinction_ratio_db": _finite_er(fit),
                                  "rms_residual_v": fit.rms_residual, "bias_v": v_q,
                                  "sweep_v": fine, "sweep_detector_v": power}
            biases[mw.key] = results[mw.key]["bias_v"]
            biases[mx.key] = results[mx.key]["bias_v"]
    hw.set_biases(biases)
    for key, res in results.items():
        mc = cal.modulators[key]
        mc.bias_v = float(res["bias_v"])
        mc.fit = {k: v for k, v in res.items() if k not in ("bias_v",)}
    cal.sections.add("bias")
    opu.settings_changed()
    return results


def _finite_er(fit) -> float:
    er = fit.extinction_ratio_db
    return float(er) if np.isfinite(er) else 99.0


def _fit_sweep(opu, key, volts, biases, channel, n_points, range_v, offset_v):
    power = _sweep(opu, key, volts, biases, channel, n_points, range_v, offset_v)
    nom = opu.config.nominal
    if np.ptp(power) < 1e-4 * max(abs(power).max(), 1e-12):
        raise OPUError(f"{key}: the detector level does not change over the bias sweep; is the laser on and the "
                       "modulator's bias source connected?")
    fit = fit_mzm_transfer(volts, power, v_pi_bounds=(0.3 * nom.v_pi, 3.0 * nom.v_pi))
    return fit, power


def _quadrature(fit, v_max: float) -> float:
    """The rising-slope quadrature nearest the sweep's middle, inside [0, v_max] (else the falling one)."""
    for rising in (True, False):
        v = fit.quadrature_bias(positive_slope=rising, near=v_max / 2)
        if 0.0 <= v <= v_max:
            return float(v)
        period = 2 * fit.v_pi
        for cand in (v - period, v + period):
            if 0.0 <= cand <= v_max:
                return float(cand)
    raise OPUError(f"no quadrature bias within 0..{v_max:g} V (V_pi {fit.v_pi:.3g} V)")


# -- step 3: AWG staircase -> predistortion table --------------------------------------------------


@dataclass
class StaircaseFit:
    """P(s) = A + B cos(theta(s)), theta = c0 + c1 s + c2 s^2 + c3 s^3 (s = normalised AWG sample)."""

    a: float
    b: float
    coef: np.ndarray   # c0..c3
    rms: float

    def theta(self, s):
        c = self.coef
        s = np.asarray(s, dtype=float)
        return c[0] + s * (c[1] + s * (c[2] + s * c[3]))

    def __call__(self, s):
        return self.a + self.b * np.cos(self.theta(s))


def fit_staircase(samples: np.ndarray, power: np.ndarray) -> StaircaseFit:
    """Fit the measured staircase: grid search over the drive slope (the model is linear in A, B cos c0,
    B sin c0 for a fixed theta shape), then a non-linear refinement of all six parameters."""
    s = np.asarray(samples, dtype=float)
    p = np.asarray(power, dtype=float)
    scale = float(np.max(np.abs(p))) or 1.0
    y = p / scale
    # every (c1, c3) of the grid at once: normal equations of the 3-parameter linear model
    c1s = np.repeat(np.linspace(0.1, 8.0, 160), 3)
    c3s = c1s * np.tile([0.0, -0.15, -0.3], 160)
    phi = c1s[:, None] * s[None, :] + c3s[:, None] * s[None, :] ** 3           # (G, n)
    basis = np.stack([np.ones_like(phi), np.cos(phi), -np.sin(phi)], axis=-1)  # (G, n, 3)
    gram = np.einsum("gni,gnj->gij", basis, basis) + 1e-12 * np.eye(3)
    coefs = np.linalg.solve(gram, np.einsum("gni,n->gi", basis, y)[..., None])[..., 0]
    errs = np.sum((np.einsum("gni,gi->gn", basis, coefs) - y) ** 2, axis=1)
    g = int(np.argmin(errs))
    c1, c3, (a, bc, bs) = float(c1s[g]), float(c3s[g]), coefs[g]
    b = float(np.hypot(bc, bs))
    c0 = float(np.arctan2(bs, bc))

    def residual(q):
        a_, b_, k0, k1, k2, k3 = q
        th = k0 + s * (k1 + s * (k2 + s * k3))
        return a_ + b_ * np.cos(th) - y

    sol = least_squares(residual, [a, b, c0, c1, 0.0, c3])
    a, b, k0, k1, k2, k3 = sol.x
    if b < 0:
        b, k0 = -b, k0 + np.pi
    return StaircaseFit(a=float(a * scale), b=float(b * scale), coef=np.array([k0, k1, k2, k3]),
                        rms=float(np.sqrt(np.mean(sol.fun**2)) * scale))


def branch_table(fit: StaircaseFit, name: str = "", points: int = 2001) -> tuple[PredistortionTable, dict]:
    """The monotonic branch of the fitted curve through s = 0 (the bias point), tabulated t -> s."""
    s = np.linspace(-1.0, 1.0, points)
    p = fit(s)
    i0 = points // 2
    d = np.diff(p)
    sign = np.sign(d[i0 - 1] if d[i0 - 1] != 0 else d[i0])
    lo = i0
    while lo > 0 and np.sign(d[lo - 1]) == sign and abs(d[lo - 1]) > 1e-12 * np.ptp(p):
        lo -= 1
    hi = i0
    while hi < points - 1 and np.sign(d[hi]) == sign and abs(d[hi]) > 1e-12 * np.ptp(p):
        hi += 1
    table = PredistortionTable.from_measurement(s[lo:hi + 1], p[lo:hi + 1], name=name)
    info = {"branch_samples": np.array([s[lo], s[hi]]), "branch_detector_v": np.array([p[lo], p[hi]]),
            "branch_extinction_db": float(10 * np.log10(max(p[lo:hi + 1].max(), 1e-30)
                                                         / max(p[lo:hi + 1].min(), 1e-30))),
            "fit_rms_v": fit.rms, "fit_coefficients": fit.coef, "fit_a_v": fit.a, "fit_b_v": fit.b}
    return table, info


def _staircase_levels(n_levels: int) -> np.ndarray:
    levels = np.linspace(-1.0, 1.0, n_levels)
    return levels[np.random.default_rng(SYNC_SEED + 1).permutation(n_levels)]  # shuffled: no drift trend


def measure_staircase(opu: StreamingOPU, key: str, amplitude_vpp: float, *, n_levels: int = 48, hold: int = 8,
                      guard: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """One staircase of ``n_levels`` AWG levels (one waveform, one capture) on modulator ``key``.

    Returns (AWG samples, mean detector voltage on each level's plateau, ``guard`` symbols trimmed).
    Only the modulator's channel is lit; its partner sits at its bias point.
    """
    cfg, hw, cal = opu.config, opu.hw, opu.calibration
    R = cfg.symbol_rate_hz
    m = hw.by_key[key]
    levels = _staircase_levels(n_levels)
    n = hw.pattern_symbols(n_levels * hold)
    sym = np.zeros(n)
    sym[:n_levels * hold] = np.repeat(levels, hold)
    amplitudes = {k: c.amplitude_vpp for k, c in cal.modulators.items()}
    amplitudes[key] = amplitude_vpp
    hw.set_lasers({key}, opu.laser_powers_dbm())
    period = hw.play({key: sym}, amplitudes, n)
    delay = opu.delays()[key]
    hw.settle(delay + 2 * period)
    fs = opu.fast_capture_rate()
    lane = cfg.lanes[m.lane]
    fit = (cal.modulators[key].fit or {})
    top = float(fit.get("p_max_v", 0.0)) or None
    if top:
        hw.set_vertical(lane.scope_channel, max(1.3 * top, 0.016), 0.5 * top)
    else:
        opu.forget_scope_range(m.lane)
        opu.set_scope_range(m.lane, lane.scope_channel, period, delay % period)
    start = delay % period
    cap = hw.capture([lane.scope_channel], start, int(math.ceil(n_levels * hold * fs / R)) + 2, fs)
    trace = cap.traces[lane.scope_channel]
    u = (cap.t0 - start + np.arange(trace.size) / cap.fs) * R   # symbols since the pattern's first symbol
    level_index = np.floor(u / hold).astype(np.int64)
    within = u - level_index * hold
    ok = (within >= guard) & (within < hold - guard) & (level_index >= 0) & (level_index < n_levels)
    sums = np.bincount(level_index[ok], weights=trace[ok], minlength=n_levels)
    counts = np.bincount(level_index[ok], minlength=n_levels)
    if np.any(counts == 0):
        raise OPUError(f"{key}: the staircase capture missed some levels; check the delays (timing step)")
    return levels, sums / counts


def calibrate_drive(opu: StreamingOPU, *, n_levels: int = 48, hold: int = 8, fill: float = 0.92,
                    progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Step 3: predistortion table and AWG amplitude of every modulator (see the module docstring)."""
    hw, cal = opu.hw, opu.calibration
    results = {}
    for m in hw.modulators:
        if progress:
            progress(f"staircase {m.key}")
        limits = opu.bench.config.safety.get(m.awg)
        a_max = 1.0 if limits is None or limits.max_amplitude_vpp is None else min(1.0, limits.max_amplitude_vpp)
        amplitude = a_max
        for attempt in range(3):
            levels, power = measure_staircase(opu, m.key, amplitude, n_levels=n_levels, hold=hold)
            fit = fit_staircase(levels, power)
            table, info = branch_table(fit, name=m.key)
            lo, hi = (float(v) for v in info["branch_samples"])
            reach = max(abs(lo), abs(hi))
            complete = lo > -0.999 and hi < 0.999
            if complete and reach > 0.8 * fill:
                break
            # scale the amplitude so the branch fills `fill` of the DAC range (the amplifier's compression
            # makes this approximate; the next staircase measures what it really is)
            new = float(np.clip(amplitude * reach / fill, 0.075, a_max))
            if not complete and new <= amplitude:
                break  # the branch does not fit in the DAC range at the largest amplitude: use what there is
            if abs(new - amplitude) < 1e-3:
                break
            amplitude = new
        cal.modulators[m.key].table = table
        cal.modulators[m.key].amplitude_vpp = amplitude
        cal.modulators[m.key].drive = {**info, "complete_branch": bool(complete), "staircase_samples": levels,
                                       "staircase_detector_v": power}
        results[m.key] = {"amplitude_vpp": amplitude, **cal.modulators[m.key].drive}
    hw.stop()
    cal.sections.add("drive")
    opu.forget_scope_range()
    return results


# -- step 2b: sampling phase -----------------------------------------------------------------------


def measure_sampling_phase(opu: StreamingOPU, *, n_slots: int = 512) -> float:
    """Offset (s) of the symbol start found on the preamble (tone phase, 10 samples per symbol) from the
    arrival the delays predict; stored as ``sampling_phase_s`` so that one sample per symbol lands on the
    symbol centres."""
    cfg, cal = opu.config, opu.calibration
    rng = np.random.default_rng(SYNC_SEED + 2)
    shape = (opu.lanes, opu.channels, n_slots)
    x, w = rng.uniform(0, 1, shape), rng.uniform(0, 1, shape)
    readings = opu.measure(x, w, capture_fs=opu.fast_capture_rate())
    err = float(np.mean([r.timing_error_symbols for r in readings]))
    phase = (cal.sampling_phase_s or 0.0) + err / cfg.symbol_rate_hz
    cal.sampling_phase_s = phase
    return phase


# -- step 4: per-lane gains, offsets, equalisation ---------------------------------------------------


@dataclass
class LaneFit:
    gains: np.ndarray     # (K,) coefficients of x'_k w'_k
    alpha: np.ndarray     # (K,)
    beta: np.ndarray      # (K,)
    offset: float
    residual: float       # rms of the fit residual (normalised units)


def fit_lane(values: np.ndarray, x: np.ndarray, w: np.ndarray) -> LaneFit:
    """Least squares y = sum g_k x_k w_k + sum a_k x_k + sum b_k w_k + c; x, w of shape (K, n)."""
    k = x.shape[0]
    basis = np.column_stack([(x * w).T, x.T, w.T, np.ones(x.shape[1])])
    coef, *_ = np.linalg.lstsq(basis, values, rcond=None)
    resid = values - basis @ coef
    return LaneFit(gains=coef[:k], alpha=coef[k:2 * k], beta=coef[2 * k:3 * k], offset=float(coef[-1]),
                   residual=float(np.sqrt(np.mean(resid**2)) * np.sqrt(len(values) / max(len(values) - 3 * k - 1, 1))))


def laser_limits_dbm(opu: StreamingOPU, key: str) -> tuple[float, float]:
    """(lowest, highest) laser power setting in dBm for modulator ``key``'s channel: the laser's settable
    range, capped by the bench's safety limit."""
    m = opu.hw.by_key[key]
    lo, hi = (w_to_dbm(v) for v in opu.hw.laser(m).power_range)
    limits = opu.bench.config.safety.get(m.laser)
    if limits is not None and limits.max_power_dbm is not None:
        hi = min(hi, float(limits.max_power_dbm))
    return lo, hi


def calibrate_lanes(opu: StreamingOPU, *, n_slots: int = 4096, equalise_lasers: bool = True,
                    progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Step 4: equalise the channel gains (laser powers, then input drive scale) and fit the offset terms."""
    cal = opu.calibration
    rng = np.random.default_rng(SYNC_SEED + 3)
    shape = (opu.lanes, opu.channels, n_slots)
    results = {}
    fits: list[LaneFit] = []
    for stage in ("lasers", "drive", "final"):
        if stage == "lasers" and not equalise_lasers:
            continue
        if progress:
            progress(f"lane fit ({stage})")
        x, w = rng.uniform(0, 1, shape), rng.uniform(0, 1, shape)
        readings = opu.measure(x, w)
        fits = [fit_lane(r.values, x[li], w[li]) for li, r in enumerate(readings)]
        for li, (ln, fit, r) in enumerate(zip(cal.lanes, fits, readings)):
            g = fit.gains
            if np.any(g <= 0):
                raise OPUError(f"lane {li + 1}: channel gains {np.round(g, 3)} -- a channel does not multiply "
                               "(check its modulators' calibration)")
            if stage == "lasers":
                xs = opu.lane_modulators(li, "x")
                for m in xs:
                    lo, hi = laser_limits_dbm(opu, m.key)
                    want = ln.laser_power_dbm[m.index] + 10 * math.log10(g.min() / g[m.index])
                    ln.laser_power_dbm[m.index] = float(np.clip(want, lo, hi))
                opu.forget_scope_range(li)
            elif stage == "drive":
                ln.x_scale = np.asarray(ln.x_scale, float) * (g.min() / g)
            else:
                ln.gain = float(np.mean(g))
                ln.channel_gains = np.asarray(g, float)
                ln.alpha, ln.beta, ln.offset = fit.alpha, fit.beta, fit.offset
                ln.residual_sigma = fit.residual / ln.gain
                ln.zero_v, ln.full_v = r.zero_v, r.full_v
                results[f"L{li + 1}"] = {"gains": g, "gain_spread": float(np.ptp(g) / np.mean(g)),
                                         "alpha": fit.alpha, "beta": fit.beta, "offset": fit.offset,
                                         "residual_sigma": ln.residual_sigma, "x_scale": ln.x_scale,
                                         "laser_power_dbm": ln.laser_power_dbm}
    cal.sections.add("lanes")
    opu.forget_scope_range()
    return results


# -- step 5: end-to-end decoder ---------------------------------------------------------------------


def _lane_sums(opu: StreamingOPU, a, b):
    """Measured (corrected) and ideal lane sums of ``a @ b``, plus the product as decoded."""
    sched = plan_gemm(a, b, opu.lanes, opu.channels, stream_dtype=np.float32)
    xs = np.asarray(sched.input_streams(None), dtype=np.float64)
    ws = np.asarray(sched.weight_streams(None), dtype=np.float64)
    readings = opu.measure(xs, ws)
    ln_cal = opu.calibration.lanes
    est = np.stack([(r.values - ln_cal[li].offset - ln_cal[li].alpha @ xs[li] - ln_cal[li].beta @ ws[li])
                    / ln_cal[li].gain for li, r in enumerate(readings)])
    ideal = np.einsum("lks,lks->ls", xs, ws)
    return sched, est, ideal


def calibrate_decoder(opu: StreamingOPU, *, products: int = 4, shape: tuple[int, int, int] = (16, 32, 16),
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Step 5: affine decoder (ideal lane sum vs corrected measurement) from random products; validation."""
    cal = opu.calibration
    m, k, n = shape
    ests, ideals, scheds = [], [], []
    pairs = random_products(DECODER_SEED, products, m, k, n)
    for i, (a, b) in enumerate(pairs):
        if progress:
            progress(f"decoder fit, product {i + 1}/{products}")
        sched, est, ideal = _lane_sums(opu, a, b)
        ests.append(est)
        ideals.append(ideal)
        scheds.append(sched)
    est = np.concatenate(ests, axis=1)
    ideal = np.concatenate(ideals, axis=1)
    results: dict[str, Any] = {}
    for li, ln in enumerate(cal.lanes):
        d1, d0 = np.polyfit(est[li], ideal[li], 1)
        resid = ideal[li] - (d0 + d1 * est[li])
        ln.d0, ln.d1 = float(d0), float(d1)
        ln.decoder_sigma = float(np.sqrt(np.mean(resid**2)))
        results[f"L{li + 1}"] = {"d0": ln.d0, "d1": ln.d1, "residual_sigma": ln.decoder_sigma}
    cal.sections.add("decoder")
    # validation: the same products decoded with the decoder, against float64
    measured, reference = [], []
    for (a, b), sched, e in zip(pairs, scheds, ests):
        sums = np.stack([cal.lanes[li].d0 + cal.lanes[li].d1 * e[li] for li in range(opu.lanes)])
        measured.append(sched.decode(sums).ravel())
        reference.append((a @ b).ravel())
    stats = error_stats(np.concatenate(measured), np.concatenate(reference))
    cal.validation = {"products": products, "shape": list(shape), "sigma": stats.sigma, "bias": stats.bias,
                      "range": stats.range, "bits_range": stats.bits_range, "enob": stats.enob,
                      "slot_sigma": float(max(ln.decoder_sigma for ln in cal.lanes))}
    results["validation"] = dict(cal.validation)
    return results


# -- all steps -----------------------------------------------------------------------------------------


@dataclass
class CalibrationResult:
    """What :func:`calibrate` did: the file written, the OPU now calibrated, per-step results."""

    path: Path | None
    opu: StreamingOPU
    steps: dict[str, Any]


STEPS = ("bias", "timing", "drive", "phase", "lanes", "decoder")


def calibrate(bench_or_opu, path: str | Path | None = None, *, steps: tuple[str, ...] = STEPS,
              progress: Callable[[str], None] | None = None, **options) -> CalibrationResult:
    """Run the calibration steps in order on a bench (or an existing OPU) and write the calibration file.

    ``steps``: a subset of ``("bias", "timing", "drive", "phase", "lanes", "decoder")`` (later steps need
    the earlier ones' results: timing is measured anyway when missing). ``options`` size the steps:
    ``bias_points`` (21), ``bias_coarse_points`` (7), ``bias_samples`` (2048), ``staircase_levels`` (48),
    ``staircase_hold`` (8), ``lane_slots`` (4096), ``equalise_lasers`` (True), ``decoder_products`` (4).
    Returns a :class:`CalibrationResult`.
    """
    known = {"bias_points", "bias_coarse_points", "bias_samples", "staircase_levels", "staircase_hold",
             "lane_slots", "equalise_lasers", "decoder_products"}
    if set(options) - known:
        raise ValueError(f"unknown calibration options {sorted(set(options) - known)}; options are {sorted(known)}")
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown calibration steps {sorted(unknown)}; steps are {STEPS}")
    opu = bench_or_opu if isinstance(bench_or_opu, StreamingOPU) else StreamingOPU(bench_or_opu)
    cal = opu.calibration
    results: dict[str, Any] = {}
    if "bias" in steps:
        results["bias"] = calibrate_bias(opu, points=options.get("bias_points", 21),
                                         coarse_points=options.get("bias_coarse_points", 7),
                                         n_points=options.get("bias_samples", 2048), progress=progress)
    if "timing" in steps:
        if progress:
            progress("delays")
        cal.delays_s = opu.measure_delays()
        cal.sections.add("timing")
        results["timing"] = {"delays_s": dict(cal.delays_s)}
    if "drive" in steps:
        results["drive"] = calibrate_drive(opu, n_levels=options.get("staircase_levels", 48),
                                           hold=options.get("staircase_hold", 8), progress=progress)
    if "phase" in steps:
        if progress:
            progress("sampling phase")
        cal.sections.add("timing")
        results.setdefault("timing", {})["sampling_phase_s"] = measure_sampling_phase(opu)
        results["timing"]["delays_s"] = dict(opu.delays())
    if "lanes" in steps:
        results["lanes"] = calibrate_lanes(opu, n_slots=options.get("lane_slots", 4096),
                                           equalise_lasers=options.get("equalise_lasers", True), progress=progress)
    if "decoder" in steps:
        results["decoder"] = calibrate_decoder(opu, products=options.get("decoder_products", 4), progress=progress)
    opu.hw.stop()
    written = None
    if path is not None:
        written = save(opu, path)
    return CalibrationResult(path=written, opu=opu, steps=results)


def save(opu: StreamingOPU, path: str | Path) -> Path:
    """Write the OPU's calibration state as a versioned calibration file tied to its bench and to the
    operating point the calibrated settings give (applied first, then read back)."""
    bench = opu.bench
    sections = opu.calibration.to_sections(opu.config)
    opu.apply_settings(force=True)
    return calfile.save(path, sections, bench_name=bench.config.name,
                        bench_fingerprint=calfile.bench_fingerprint(bench), operating_point=opu.operating_point())
