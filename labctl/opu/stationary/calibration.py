"""Calibration of a weight-stationary core (:mod:`labctl.opu.stationary`): every step measures through
the core controller's ADCs; nothing is read from the simulator.

Steps (each a few controller programs; the results form one section ``core:<controller>`` of a
versioned calibration file):

1. ``dark`` -- lasers off: each photodiode's ADC reading (dark current + ADC offset).
2. ``delay`` -- a pseudo-random pattern on every input at the start of a long tile; the cross-correlation
   with the summed photodiode readings gives the edge -> center delay in whole symbols; the inputs are
   then launched that much early (``input_advance``), refined to the centre of the symbol (the sampling
   phase, :func:`refine_delay`) so that every later step reads clean symbols; refined again once the lookup
   and rings are known.
3. ``bias`` -- per input, a DAC ramp over the full code range (all inputs in one program, one window
   each, the others idle) read on all photodiodes; fitted with P = b + s cos^2(theta0 + pi v(c) / (2 V_pi))
   (v(c) the nominal driver gain and tanh saturation); the bias DAC then moves the quadrature with rising
   slope to code 0, and the ramp is repeated: its monotonic branch from the null to the peak gives the
   input lookup u(code), u = transmission above the minimum / range.
4. ``rings`` -- one-hot inputs (input k at its peak, the others at their null) while ring k of every bank
   sweeps its heater power: Lorentzian fits per ring (peak path gain, resonance heater power, width); then
   the same sweep with every other ring of the bank held warm: the resonance shifts give the bank's thermal
   crosstalk fraction f (model K_ij = f^|i-j|, Tait et al. 2016). The common path-gain range of each
   bank is where every ring of it can reach. The ADC range is then set to the strongest bank's full scale.
5. ``floor`` -- all inputs at u = 0 and at u = 1 with every ring at the top of its range: the modulators'
   residual floor eps (finite extinction) relative to their range.
6. ``decoder`` -- random tiles (random weights on the rings, random inputs): per-output affine fit of the
   exact tile sums against the decoded ones, and the slot noise (its residual) for error estimates.

:func:`drift_check` reruns the reference product measured at the end of calibration (256 deep, so that it
sees the ring drift as deep products do: :mod:`~labctl.opu.stationary.drift`) and says whether to recalibrate.
The file also records the core's operating point (:meth:`StationaryOPU.operating_point`), which loading checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.optimize import curve_fit

from labctl.opu import calibration_file as calfile
from labctl.opu.stationary.config import StationaryOPUError
from labctl.opu.stationary.drift import CoreDriftReport
from labctl.opu.stationary.engine import StationaryOPU
from labctl.opu.stationary.state import StationaryCalibration

log = logging.getLogger(__name__)

__all__ = ["CoreCalibrationResult", "CoreDriftReport", "calibrate", "drift_check", "STEPS"]

STEPS = ("dark", "delay", "bias", "rings", "transfer", "phase", "floor", "decoder")
MAX_CODE = 32767
#: heater sweep points (in heater V^2, uniformly) and slots averaged per point
SWEEP_POINTS = 96
SWEEP_SLOTS = 16
#: a modulator's fitted phase at code 0 this close to rising quadrature is biased; farther, it is biased again
#: from that fit (at most BIAS_RETRIES times): a first fit through cold rings at low power can miss the fringe
QUADRATURE_TOLERANCE_RAD = 0.15
BIAS_RETRIES = 2
#: ISI (neighbours' weight over the symbol's) below which a sampling instant reads clean symbols: far below
#: the 2^-9 of a 9-bit reading
ISI_FLOOR = 1e-3


@dataclass
class CoreCalibrationResult:
    """What :func:`calibrate` did: the file written, the calibrated OPU, per-step figures."""

    path: Path | None
    opu: StationaryOPU
    steps: dict[str, Any]


def _setup(opu: StationaryOPU) -> None:
    ctl, cfg = opu.controller, opu.config
    opu.lasers_on(True)
    ctl.output_enabled = False
    ctl.symbol_rate = cfg.symbol_rate_hz
    ctl.dac_amplitude = cfg.dac_amplitude_vpp
    ctl.heater_limit = cfg.heater_max_v
    ctl.settle_time = cfg.settle_time_s
    ctl.input_advance = 0.0
    ctl.adc_range = 2.0  # the widest span until the signal levels are known (set by the rings step)
    ctl.adc_offset = 0.9
    ctl.set_biases([0.0] * opu.n_in)
    ctl.output_enabled = True


def _run(opu: StationaryOPU, heaters: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return opu.run_program(heaters, codes)


def measure_dark(opu: StationaryOPU, slots: int = 256) -> np.ndarray:
    """ADC volts per photodiode with the core's lasers off."""
    opu.lasers_on(False)
    try:
        v = _run(opu, np.zeros((1, opu.n_out, opu.n_in)), np.zeros((1, slots, opu.n_in), np.int16))
    finally:
        opu.lasers_on(True)
    return v.mean(axis=(0, 1))


def measure_delay(opu: StationaryOPU, max_delay_s: float = 400e-6, pattern: int = 2048, seed: int = 5) -> float:
    """Edge -> center delay in s (whole symbols), from a pattern at the start of one long tile."""
    rate = opu.config.symbol_rate_hz
    slots = int(2 ** np.ceil(np.log2(max_delay_s * rate + 2 * pattern)))
    bits = np.random.default_rng(seed).integers(0, 2, pattern) * 2 - 1
    codes = np.zeros((1, slots, opu.n_in), np.int16)
    codes[0, :pattern, :] = (bits * (MAX_CODE // 2))[:, None]
    v = _run(opu, np.zeros((1, opu.n_out, opu.n_in)), codes)[0].sum(axis=1)
    v = v - v.mean()
    corr = np.fft.irfft(np.fft.rfft(v) * np.conj(np.fft.rfft(np.r_[bits, np.zeros(slots - pattern)])), n=slots)
    search = np.abs(corr[: slots - pattern])
    lag = int(np.argmax(search))
    spread = 1.4826 * float(np.median(np.abs(search - np.median(search)))) + 1e-30
    if search[lag] < 10 * spread:  # a real peak stands > 10 robust deviations above the noise floor
        raise StationaryOPUError(f"{opu.name}: no clear delay peak ({search[lag] / spread:.1f} deviations): are the "
                                 "lasers on and the fibre connected? is the delay longer than max_delay_s?")
    return lag / rate


def refine_delay(opu: StationaryOPU, coarse_s: float, *, calibrated: bool = True, steps: int = 32,
                 pattern: int = 1024, seed: int = 6) -> float:
    """The launch advance within +-1 symbol of ``coarse_s`` that puts each reading's window at the centre of
    its symbol: the sampling phase.

    A random pattern is run at ``steps`` advances; at each, the summed readings are regressed on the pattern's
    symbol and its two neighbours. Readings are equally good anywhere the window stays inside the symbol
    (the ISI there is below the noise), so the best-scoring advance lands anywhere on that plateau, often at
    its edge where the tails of the neighbours' transitions still leak in. Its centre is found instead: half
    way between the advances where a neighbour's weight equals the symbol's own (window centred on a symbol
    boundary), which the transitions mark sharply; where that midpoint has clearly more ISI than the best
    advance (a slow, causal response), or a boundary lies outside the scan, the least-ISI advance is taken.
    ``calibrated=False`` runs before the input lookup and the
    rings are known (raw codes, heaters off, as the delay step) so that every later step already reads
    clean symbols; ``True`` runs the pattern through the calibrated lookup with every ring at full weight."""
    rate = opu.config.symbol_rate_hz
    bits = np.random.default_rng(seed).integers(0, 2, pattern) * 2 - 1
    if calibrated:
        codes = opu.input_codes(np.broadcast_to(((1 + bits) / 2)[None, :, None], (1, pattern, opu.n_in)))
        heaters = opu.heater_volts(np.ones((1, opu.n_out, opu.n_in)))  # every ring at full weight: strong signal
    else:
        codes = np.broadcast_to((bits * (MAX_CODE // 2)).astype(np.int16)[None, :, None], (1, pattern, opu.n_in))
        heaters = np.zeros((1, opu.n_out, opu.n_in))
    inner = slice(16, pattern - 16)  # away from the tile's edges
    design = np.c_[np.ones(pattern - 32), np.roll(bits, 1)[inner], bits[inner], np.roll(bits, -1)[inner]]
    fracs = 2.0 * np.arange(steps) / steps - 1.0
    weights = np.empty((steps, 3))  # (earlier symbol, own symbol, later symbol) per advance
    for i, frac in enumerate(fracs):
        opu.controller.input_advance = max(0.0, coarse_s + frac / rate)
        v = _run(opu, heaters, codes)[0].sum(axis=1)[inner]
        weights[i] = np.linalg.lstsq(design, v, rcond=None)[0][1:]
    # raw codes on modulators at unknown bias points can sum to less light for a higher code: read the
    # polarity from the strongest weight before looking for the symbol's own peak
    weights *= np.sign(weights[np.argmax(np.abs(weights[:, 1])), 1]) or 1.0
    own = weights[:, 1]
    best = int(np.argmax(own))
    margin = own - np.maximum(weights[:, 0], weights[:, 2])  # > 0 while the window is nearer its own symbol
    edges = []
    for direction in (-1, 1):
        i = best
        while 0 <= i + direction < steps and margin[i + direction] > 0:
            i += direction
        j = i + direction
        if not 0 <= j < steps:
            break
        edges.append(fracs[i] + (fracs[j] - fracs[i]) * margin[i] / (margin[i] - margin[j]))
    # ISI relative to the symbol: where it is least is where a strongly filtered symbol is best read
    isi = np.where(own > 0, (np.abs(weights[:, 0]) + np.abs(weights[:, 2])) / np.maximum(own, 1e-30), np.inf)
    least = fracs[int(np.argmin(isi))]
    if len(edges) == 2:
        centre = 0.5 * (edges[0] + edges[1])
        if np.interp(centre, fracs, isi) > 2 * float(np.min(isi)) + ISI_FLOOR:
            centre = least  # the boundaries' midpoint is not where the ISI is least (a causal, slow response)
    else:  # a neighbour never outweighs the symbol within the scan
        centre = least
        log.info("%s: the sampling phase scan found no symbol boundary on one side; using the advance with the "
                 "least ISI", opu.name)
    advance = max(0.0, coarse_s + centre / rate)
    opu.controller.input_advance = advance
    return advance


def _nominal_drive(opu: StationaryOPU, codes: np.ndarray) -> np.ndarray:
    nom = opu.config.nominal
    gain = 10 ** (nom.driver_gain_db / 20)
    v_sat = nom.driver_saturated_vpp / 2
    v_dac = codes / MAX_CODE * opu.config.dac_amplitude_vpp / 2
    return v_sat * np.tanh(gain * v_dac / v_sat)


def _ramp(opu: StationaryOPU, window: int = 2048, repeats: int = 8,
          heaters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each input ramps over the full code range in its own window (others idle at code 0), ``repeats``
    times; returns (codes (window,), summed photodiode volts (K, window))."""
    k = opu.n_in
    ramp = np.round(np.linspace(-MAX_CODE, MAX_CODE, window)).astype(np.int16)
    codes = np.zeros((1, k * window * repeats, k), np.int16)
    for i in range(k):
        for r in range(repeats):
            start = (i * repeats + r) * window
            codes[0, start:start + window, i] = ramp
    heaters = np.zeros((1, opu.n_out, k)) if heaters is None else heaters
    v = _run(opu, heaters, codes)[0].sum(axis=1)
    return ramp.astype(float), v.reshape(k, repeats, window).mean(axis=1)


def _cos2_model(opu: StationaryOPU, codes: np.ndarray, theta0: float, v_pi: float) -> np.ndarray:
    return np.cos(theta0 + np.pi * _nominal_drive(opu, codes) / (2 * v_pi)) ** 2


def _fit_cos2(opu: StationaryOPU, codes: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(theta at code 0, fitted V_pi(RF)) of y = b + s cos^2(theta0 + pi v(c) / (2 V_pi))."""
    best = None

    def model(c, b, s, theta0, v_pi):
        return b + s * _cos2_model(opu, c, theta0, v_pi)

    span = float(np.ptp(y)) or 1e-12
    for theta0 in np.linspace(-np.pi / 2, np.pi / 2, 8, endpoint=False):
        try:
            p, _ = curve_fit(model, codes, y, p0=[float(y.min()), span, theta0, opu.config.nominal.v_pi_rf],
                             bounds=([-np.inf, 0, -4 * np.pi, 0.3 * opu.config.nominal.v_pi_rf],
                                     [np.inf, np.inf, 4 * np.pi, 3 * opu.config.nominal.v_pi_rf]), maxfev=4000)
        except (RuntimeError, ValueError):
            continue
        err = float(np.mean((model(codes, *p) - y) ** 2))
        if best is None or err < best[0]:
            best = (err, p)
    if best is None:
        raise StationaryOPUError(f"{opu.name}: the modulator transfer fit failed (no light through the core?)")
    return float(best[1][2]), float(best[1][3])


def _branch_table(opu: StationaryOPU, k: int, codes: np.ndarray, y: np.ndarray,
                  points: int = 257) -> tuple[np.ndarray, np.ndarray]:
    """(codes, u) of the monotonic branch of y(code) from its null to its peak, u = 0 .. 1."""
    lo, hi = int(np.argmin(y)), int(np.argmax(y))
    if hi - lo < len(codes) // 4:
        raise StationaryOPUError(f"{opu.name}: input {k + 1}'s modulator has no monotonic branch from null to "
                                 f"peak inside the DAC range after biasing (null at code {codes[lo]:.0f}, peak at "
                                 f"{codes[hi]:.0f}); raise dac_amplitude_vpp")
    seg = np.maximum.accumulate(y[lo:hi + 1])
    u = (seg - seg[0]) / (seg[-1] - seg[0])
    keep = np.r_[True, np.diff(u) > 0]  # strictly increasing for interpolation
    grid = np.linspace(0, 1, points)
    return np.interp(grid, u[keep], codes[lo:hi + 1][keep]), grid


def _quadrature_bias(opu: StationaryOPU, theta0: float, v_pi_rf: float, bias_v: float) -> float:
    """The bias (within the DAC's +-10 V) nearest ``bias_v`` that moves the fitted phase at code 0,
    ``theta0``, to a rising quadrature (-pi/4 mod pi); V_pi(DC) from the fit and the nominal ratio."""
    nom = opu.config.nominal
    v_pi_dc = v_pi_rf * nom.v_pi / nom.v_pi_rf
    targets = -np.pi / 4 + np.pi * np.round((theta0 + np.pi / 4) / np.pi + np.arange(-2, 3))
    options = bias_v + (targets - theta0) * 2 * v_pi_dc / np.pi
    options = options[np.abs(options) <= 10.0]
    return float(options[np.argmin(np.abs(options - bias_v))])


def _from_quadrature(theta0: float) -> float:
    """How far the phase at code 0 is from the rising quadrature -pi/4, wrapped to (-pi/2, pi/2]."""
    return float((theta0 + np.pi / 4 + np.pi / 2) % np.pi - np.pi / 2)


def calibrate_bias(opu: StationaryOPU) -> dict[str, Any]:
    """Bias each input modulator at rising quadrature at code 0; a provisional lookup u(code) from the
    fitted transfer curve (refined by :func:`calibrate_transfer` once the rings pass strong light)."""
    codes, y = _ramp(opu)
    biases = np.array([_quadrature_bias(opu, *_fit_cos2(opu, codes, y[k]), 0.0) for k in range(opu.n_in)])
    opu.controller.set_biases(list(biases))
    codes, y = _ramp(opu)
    fine = np.linspace(-MAX_CODE, MAX_CODE, 4097)
    tables = []
    for k in range(opu.n_in):
        fit = _fit_cos2(opu, codes, y[k])
        for _ in range(BIAS_RETRIES + 1):
            try:
                table = _branch_table(opu, k, fine, _cos2_model(opu, fine, *fit))
                if abs(_from_quadrature(fit[0])) <= QUADRATURE_TOLERANCE_RAD:
                    break
            except StationaryOPUError:
                table = None
            # the first fit saw only part of a fringe (weak light through cold rings) and missed: once more
            # from where the bias is now, until the fit at the bias says rising quadrature
            biases[k] = _quadrature_bias(opu, *fit, biases[k])
            opu.controller.set_bias(k + 1, biases[k])
            codes_k, y_k = _ramp(opu)
            fit = _fit_cos2(opu, codes_k, y_k[k])
        if table is None:
            table = _branch_table(opu, k, fine, _cos2_model(opu, fine, *fit))
        tables.append(table)
    return {"biases_v": biases, "code_table": np.array([t[0] for t in tables]),
            "u_table": np.array([t[1] for t in tables])}


def calibrate_transfer(opu: StationaryOPU) -> dict[str, Any]:
    """The measured lookup u(code) per input: a DAC ramp read with every ring at full weight (strong
    light on every photodiode), lightly smoothed, on its monotonic branch from null to peak."""
    heaters = opu.heater_volts(np.ones((1, opu.n_out, opu.n_in)))
    codes, y = _ramp(opu, heaters=heaters)
    tables = []
    for k in range(opu.n_in):
        smooth = np.convolve(y[k], np.ones(9) / 9, mode="same")
        smooth[:4], smooth[-4:] = smooth[4], smooth[-5]
        tables.append(_branch_table(opu, k, codes, smooth))
    return {"code_table": np.array([t[0] for t in tables]), "u_table": np.array([t[1] for t in tables])}


def _lorentz(p, c0, a, p0, h):
    return c0 + a / (1 + ((p - p0) / h) ** 2)


def _ring_sweep(opu: StationaryOPU, warm_p: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """One-hot sweeps: mean volts (Q, K, points) vs heater V^2 (points,)."""
    k_in, q_out = opu.n_in, opu.n_out
    cal = opu.calibration
    p = np.linspace(0, opu.config.heater_max_v ** 2, SWEEP_POINTS)
    heaters = np.zeros((k_in, SWEEP_POINTS, q_out, k_in))
    if warm_p is not None:
        heaters[:] = np.sqrt(warm_p)[None, None, :, :]
    codes = np.zeros((k_in, SWEEP_POINTS, SWEEP_SLOTS, k_in), np.int16)
    lo = cal.code_table[:, 0].astype(np.int16)
    hi = cal.code_table[:, -1].astype(np.int16)
    for k in range(k_in):
        heaters[k, :, :, k] = np.sqrt(p)[:, None]
        codes[k, :, :, :] = lo[None, None, :]
        codes[k, :, :, k] = hi[k]
    v = _run(opu, heaters.reshape(-1, q_out, k_in), codes.reshape(-1, SWEEP_SLOTS, k_in))
    means = v.mean(axis=1).reshape(k_in, SWEEP_POINTS, q_out)
    return p, means.transpose(2, 0, 1)


def _fit_rings(opu: StationaryOPU, p: np.ndarray, y: np.ndarray, strict: bool = True) -> np.ndarray:
    """Lorentzian (c0, peak, centre, half width) per ring, shape (Q, K, 4); without ``strict`` a ring
    whose resonance is not inside the sweep gets NaN instead of an error."""
    out = np.zeros(y.shape[:2] + (4,))
    for q in range(y.shape[0]):
        for k in range(y.shape[1]):
            curve = y[q, k]
            i = int(np.argmax(curve))
            c0 = float(np.min(curve))
            a = float(curve[i] - c0)
            try:
                par, _ = curve_fit(_lorentz, p, curve, p0=[c0, a, p[i], 0.1 * p[-1]],
                                   bounds=([-np.inf, 0, -p[-1], 1e-4 * p[-1]], [np.inf, np.inf, 2 * p[-1], p[-1]]),
                                   maxfev=4000)
            except (RuntimeError, ValueError):
                if not strict:
                    out[q, k] = np.nan
                    continue
                raise StationaryOPUError(f"{opu.name}: ring {k + 1} of bank {q + 1} shows no resonance in the "
                                         f"heater range 0..{opu.config.heater_max_v} V") from None
            if not 0.0 < par[2] < p[-1]:
                if not strict:
                    out[q, k] = np.nan
                    continue
                raise StationaryOPUError(f"{opu.name}: ring {k + 1} of bank {q + 1} resonates outside the heater "
                                         f"range (fitted at {par[2]:.3g} V^2); raise heater_max_v")
            out[q, k] = par
    return out


def calibrate_rings(opu: StationaryOPU) -> dict[str, Any]:
    """Heater -> path gain per ring, thermal crosstalk per bank, common gain ranges, ADC range."""
    p, y = _ring_sweep(opu, None)
    fit = _fit_rings(opu, p, y)
    centre = fit[..., 2]
    # neighbours held at half the mean resonance power: their heat pulls each resonance to lower
    # heater power by sum_j f^|i-j| P_warm,j while keeping it inside the sweep for f up to ~0.3
    warm = np.broadcast_to(0.5 * centre.mean(axis=1, keepdims=True), centre.shape).copy()
    p2, y2 = _ring_sweep(opu, warm)
    fit2 = _fit_rings(opu, p2, y2, strict=False)
    shift = centre - fit2[..., 2]  # = sum_{j != i} f^|i-j| P_warm,j (NaN: ring lost from the sweep)
    idx = np.arange(opu.n_in)
    dist = np.abs(idx[:, None] - idx[None, :])
    f_grid = np.linspace(0.0, 0.4, 401)
    crosstalk = np.zeros(opu.n_out)
    for q in range(opu.n_out):
        ok = np.isfinite(shift[q])
        if ok.sum() < 3:
            raise StationaryOPUError(f"{opu.name}: bank {q + 1}: too few rings stay in the heater range with "
                                     "their neighbours warm to measure the thermal crosstalk")
        errs = [np.sum(((np.where(dist > 0, f ** dist, 0.0) @ warm[q]) - shift[q])[ok] ** 2) for f in f_grid]
        crosstalk[q] = f_grid[int(np.argmin(errs))]
    peak, half = fit[..., 1], fit[..., 3]
    g_cold = peak / (1 + (centre / half) ** 2)
    g_lo = g_cold.max(axis=1) * 1.05 + 0.02 * peak.min(axis=1)
    g_hi = peak.min(axis=1) * 0.97
    if np.any(g_hi <= g_lo):
        bad = int(np.argmin(g_hi - g_lo))
        raise StationaryOPUError(f"{opu.name}: bank {bad + 1}'s rings share no usable gain range (cold rings "
                                 "drop too much, or one ring is far weaker)")
    return {"ring_peak_v": peak, "ring_center_p": centre, "ring_half_width_p": half,
            "thermal_crosstalk": crosstalk, "g_lo_v": g_lo, "g_span_v": g_hi - g_lo}


def _set_adc_range(opu: StationaryOPU, cal: StationaryCalibration) -> None:
    full = (1 + cal.eps) * opu.n_in * (cal.g_lo_v + cal.g_span_v) + cal.dark_v
    top = float(full.max()) * 1.25
    bottom = float(cal.dark_v.min()) - 0.05 * top
    cal.adc_range_v = max(0.01, top - bottom)
    cal.adc_offset_v = bottom + cal.adc_range_v / 2
    opu.controller.adc_range = cal.adc_range_v
    opu.controller.adc_offset = cal.adc_offset_v


def measure_floor(opu: StationaryOPU, slots: int = 1024) -> tuple[float, np.ndarray]:
    """(eps, slot noise per output) with every ring at the top of its range."""
    cal = opu.calibration
    heaters = opu.heater_volts(np.ones((1, opu.n_out, opu.n_in)))
    zero = opu.input_codes(np.zeros((1, slots, opu.n_in)))
    one = opu.input_codes(np.ones((1, slots, opu.n_in)))
    v = _run(opu, np.concatenate([heaters, heaters]), np.concatenate([zero, one]))
    y0 = v[0].mean(axis=0) - cal.dark_v
    y1 = v[1].mean(axis=0) - cal.dark_v
    eps = float(np.median(y0 / np.maximum(y1 - y0, 1e-30)))
    return max(eps, 0.0), v[1].std(axis=0)


def _decode_tiles(opu: StationaryOPU, x: np.ndarray, w: np.ndarray, volts: np.ndarray) -> np.ndarray:
    cal = opu.calibration
    k = opu.n_in
    y = volts - cal.dark_v
    sw = w.sum(axis=2)[:, None, :]
    sx = x.sum(axis=2)[:, :, None]
    xwp = (y - cal.eps * (k * cal.g_lo_v + cal.g_span_v * (k + sw) / 2) - cal.g_lo_v * (k + sx) / 2) / cal.g_span_v
    return 4 * xwp - k - sx - sw


def calibrate_decoder(opu: StationaryOPU, tiles: int = 32, slots: int = 256, seed: int = 17) -> dict[str, Any]:
    """Per-output affine fit exact = gain * decoded + offset over random tiles; slot noise from the residual."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, (tiles, opu.n_out, opu.n_in))
    x = rng.uniform(-1, 1, (tiles, slots, opu.n_in))
    volts = _run(opu, opu.heater_volts((1 + w) / 2), opu.input_codes((1 + x) / 2))
    decoded = _decode_tiles(opu, x, w, volts)
    exact = np.einsum("tsk,tqk->tsq", x, w)
    gain, offset, resid = np.ones(opu.n_out), np.zeros(opu.n_out), np.zeros(opu.n_out)
    for q in range(opu.n_out):
        a = np.c_[decoded[..., q].ravel(), np.ones(decoded[..., q].size)]
        (g, o), *_ = np.linalg.lstsq(a, exact[..., q].ravel(), rcond=None)
        gain[q], offset[q] = g, o
        resid[q] = float(np.std(exact[..., q].ravel() - a @ np.array([g, o])))
    before = float(np.sqrt(np.mean((decoded - exact) ** 2)))
    return {"decoder_gain": gain, "decoder_offset": offset, "residual": resid, "rms_before": before,
            "rms_after": float(np.sqrt(np.mean(resid ** 2)))}


def calibrate(bench_or_opu, path: str | Path | None = None, *, core: int = 0, max_delay_s: float = 400e-6,
              progress: Callable[[str], None] | None = None) -> CoreCalibrationResult:
    """Calibrate one weight-stationary core (all steps) and write its calibration file (if ``path``).

    ``max_delay_s``: the longest edge -> center delay searched for (400 us: 80 km of fibre)."""
    opu = bench_or_opu if isinstance(bench_or_opu, StationaryOPU) else StationaryOPU(bench_or_opu, core=core)
    say = progress or (lambda message: log.info(message))
    steps: dict[str, Any] = {}
    _setup(opu)
    say(f"{opu.name}: dark levels")
    dark = measure_dark(opu)
    say(f"{opu.name}: edge -> center delay")
    delay = measure_delay(opu, max_delay_s=max_delay_s)
    say(f"{opu.name}: sampling phase (raw codes)")
    delay = refine_delay(opu, delay, calibrated=False)
    steps["delay_s"] = delay
    opu.calibration = StationaryCalibration(
        biases_v=np.zeros(opu.n_in), input_advance_s=delay, adc_range_v=2.0, adc_offset_v=0.9, dark_v=dark,
        code_table=np.zeros((opu.n_in, 2)), u_table=np.tile([0.0, 1.0], (opu.n_in, 1)),
        ring_peak_v=np.zeros((opu.n_out, opu.n_in)), ring_center_p=np.zeros((opu.n_out, opu.n_in)),
        ring_half_width_p=np.ones((opu.n_out, opu.n_in)), thermal_crosstalk=np.zeros(opu.n_out),
        g_lo_v=np.zeros(opu.n_out), g_span_v=np.ones(opu.n_out), steps=["dark", "delay"])
    cal = opu.calibration
    say(f"{opu.name}: modulator bias and transfer")
    bias = calibrate_bias(opu)
    cal.biases_v, cal.code_table, cal.u_table = bias["biases_v"], bias["code_table"], bias["u_table"]
    cal.steps.append("bias")
    steps["bias_v"] = bias["biases_v"].tolist()
    say(f"{opu.name}: microring weight banks")
    rings = calibrate_rings(opu)
    for key, value in rings.items():
        setattr(cal, key, value)
    cal.steps.append("rings")
    steps["thermal_crosstalk"] = rings["thermal_crosstalk"].tolist()
    _set_adc_range(opu, cal)  # the rings now pass full light: the ADC span for the whole core
    say(f"{opu.name}: modulator transfer tables")
    cal.code_table, cal.u_table = (lambda t: (t["code_table"], t["u_table"]))(calibrate_transfer(opu))
    cal.steps.append("transfer")
    say(f"{opu.name}: sampling phase")
    cal.input_advance_s = steps["delay_s"] = refine_delay(opu, delay)
    cal.steps.append("phase")
    _set_adc_range(opu, cal)
    cal.dark_v = measure_dark(opu)
    say(f"{opu.name}: modulator floor")
    cal.eps, noise = measure_floor(opu)
    cal.steps.append("floor")
    steps["eps"] = cal.eps
    say(f"{opu.name}: decoder fit")
    dec = calibrate_decoder(opu)
    cal.decoder_gain, cal.decoder_offset = dec["decoder_gain"], dec["decoder_offset"]
    cal.slot_sigma_v = dec["residual"] * cal.g_span_v / 4
    cal.steps.append("decoder")
    steps["decoder_rms_before"], steps["decoder_rms_after"] = dec["rms_before"], dec["rms_after"]
    opu.invalidate()  # the operating state the products use: the calibrated one, applied afresh
    cal.drift_reference_rms = steps["drift_reference_rms"] = opu.reference_product_error()
    section = cal.to_section()
    point = opu.operating_point()  # read in the calibrated state the reference product just ran in
    opu.invalidate()
    written = None
    if path is not None:
        written = Path(path)
        written.parent.mkdir(parents=True, exist_ok=True)
        calfile.save(written, {f"core:{opu.name}": section}, bench_name=opu.bench.config.name,
                     bench_fingerprint=calfile.bench_fingerprint(opu.bench), operating_point=point)
    return CoreCalibrationResult(written, opu, steps)


def drift_check(opu: StationaryOPU, threshold: float = 2.0) -> CoreDriftReport:
    """Whether core ``opu`` needs recalibrating (:meth:`StationaryOPU.drift_check`): the reference product's
    error grew more than ``threshold``-fold since calibration."""
    return opu.drift_check(threshold)
