"""Symbol-level model of a weight-stationary optical core: one reading per symbol slot per photodiode.

This is the model the simulated OCC-16 controller runs (``sim_backends/instruments/labctl_occ.py``) and
the one ``tests/physics/test_symbol_level.py`` validates against the waveform level (``waveform_link``).
It imports no instrument, SCPI or World code: the caller measures the static network and hands over
numbers and device transfer functions.

Why symbol level: a program moves a whole layer (millions of symbol slots); a waveform simulation of
every slot through every part would take hours. Between a modulator and a photodiode the network is
static during a tile (fibre, mux, splitter, rings held by their heaters), so the photocurrent is linear
in the modulators' output powers:

    I_q[i, s] = R_q sum_k (h_k * M_k(v_k))[i, s - d_k] G_kq[i] + R_q B_q[i] + I_dark,q + noise

* ``M_k``: power transmission of modulator k at its drive voltage, per slot: DAC level (the DAC's own
  quantiser) + DAC excess noise -> driver gain / tanh saturation / driver noise -> the modulator's
  transfer (``InputChain.modulator``, e.g. ``MachZehnderModulator.transmission`` at its bias).
* ``h_k``: ISI taps of the chain's linear responses acting on the power (``chain_taps``: NRZ symbols
  through DAC, electro-optic, fibre small-signal, photodiode and ADC front-end responses and the
  receiver's averaging window), exact to first order in modulation depth for the responses before
  the modulator's cos^2; ``d_k`` whole-slot delay mismatch (``InputChain.shift``), earlier tiles of the
  program and idle settle gaps on the timeline.
* ``G[i, k, q]``: laser power into modulator k x the static network's power transmission to photodiode
  q during tile i; ``B[i, q]``: light on no input's wavelength (ASE, leaks). Heater noise and slow
  thermal drift of the rings enter to first order: ``G + dG/dP x dP`` with ``dP[i, q, k]`` the heater
  power error of ring k of bank q and ``dG/dP`` the gains' response to the heater power of that
  bank (``readings(gain_slope=..., heater_error_w=...)``; the ring on input k's channel dominates it).
  A slope measured with every heater of a bank raised together (as the OCC simulator measures it)
  includes the neighbours' thermal crosstalk, so it overstates one ring's own slope by the crosstalk's
  share (~10 % with 5 % nearest-neighbour crosstalk): well inside the uncertainty of the noise figures.
* Noise: each input laser's RIN (independent between inputs, per slot), receiver noise as a
  quadratic in the detected power ``a0 + a1 P + a2 P^2`` (A^2 per reading: shot, thermal, dark,
  signal-ASE, ASE-ASE over the bandwidth the sampler sees, ``detector``), the ADC's excess and
  quantisation noise over the samples averaged per reading; clipping at the photodiode's saturation
  current and the ADC range.

Assumptions: carriers reaching one photodiode are distinct wavelengths far apart compared with the
receiver bandwidth (power addition); noise is independent from slot to slot; heater errors are small
against a ring's linewidth (first order).

Gaussian deviates come from the caller's seeded ``numpy.random.Generator`` in a fixed order, so one
generator per core gives the same readings whatever other cores do. Independent Gaussian terms that meet
with no nonlinearity between them are drawn as one deviate of their summed variance: DAC and driver noise
(through a tanh driver to first order while they are small against its saturation), and receiver and ADC
noise (wherever the photocurrent is far below saturation). What cannot be merged keeps its own draw: the
lasers' RIN is shared by every photodiode an input reaches, so it is one deviate per input and slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy import integrate

from sim_backends.physics.receiver import NOISE_TERMS
from sim_backends.physics.symbol_level import isi_taps, pulse_response, standard_normal_f32

#: readings are computed in blocks of tiles of about this many values per array, so that a block's
#: intermediate arrays stay in the CPU's caches between the steps
_BLOCK_VALUES = 1 << 19
#: DAC noise is carried through the driver's tanh to first order while the driver's gain x its rms is
#: below this fraction of the saturation voltage (the second-order term is then < 1e-3 of the noise)
_LINEAR_DRIVE = 1e-3
#: Gaussian deviates are drawn in pieces of this many values (see ``_normal``)
_DRAW_VALUES = 1 << 15
#: receiver and ADC noise are drawn as one Gaussian where the photocurrent stays this many receiver-noise
#: standard deviations below saturation (min(I + n, I_sat) then acts with probability < 1e-15)
_SATURATION_MARGIN = 8.0

__all__ = ["Detector", "InputChain", "Readout", "StationaryCore", "chain_taps", "detector", "launch", "noise_bandwidth",
           "referred_dac_noise", "ou_walk"]


@dataclass(frozen=True)
class InputChain:
    """One input's drive chain and its light's path to the photodiodes.

    ``quantise``: the DAC's levels for target volts; ``noise_v``: DAC excess noise per slot (V rms);
    ``driver_gain``/``driver_saturation_v``/``driver_noise_v``: RF driver small-signal voltage gain, half
    its saturated swing (tanh; inf = linear) and output noise per slot (V rms); ``modulator``: power
    transmission at the driver's output voltage; ``offsets``/``taps``: ISI taps (``chain_taps``);
    ``shift``: whole slots the light arrives after its slot; ``rin``: laser RIN variance per reading
    (RIN_lin x the noise bandwidth the sampler sees).
    """

    quantise: Callable[[np.ndarray], np.ndarray]
    modulator: Callable[[np.ndarray], np.ndarray]
    offsets: np.ndarray
    taps: np.ndarray
    noise_v: float = 0.0
    driver_gain: float = 1.0
    driver_saturation_v: float = math.inf
    driver_noise_v: float = 0.0
    shift: int = 0
    rin: float = 0.0


@dataclass(frozen=True)
class Detector:
    """Photodiode q: responsivity (A/W), dark current (A), noise variance a0 + a1 P + a2 P^2 (A^2 per
    reading, P the detected optical power in W), saturation current (A), transimpedance or load (V/A)."""

    responsivity: float
    dark_current: float
    noise: tuple[float, float, float]
    saturation_current: float
    gain_ohm: float


@dataclass(frozen=True)
class Readout:
    """The ADC: centre and span of its range (V) and its own noise per reading (V rms)."""

    offset_v: float
    range_v: float
    noise_v: float = 0.0


@dataclass
class StationaryCore:
    """N_in inputs x N_out photodiodes: readings of a program of tiles x slots (see the module docstring).

    ``gap_slots``: idle slots between tiles (the heaters' settle time) on the program's timeline, where
    the modulators sit at their idle drive (DAC level 0).
    """

    inputs: Sequence[InputChain]
    detectors: Sequence[Detector]
    readout: Readout
    gap_slots: int = 0
    _rx: dict = field(init=False, repr=False)

    def __post_init__(self):
        if not self.inputs or not self.detectors:
            raise ValueError("a core needs at least one input and one photodiode")
        if self.readout.range_v <= 0:
            raise ValueError(f"readout range_v={self.readout.range_v!r} must be > 0 V")
        if int(self.gap_slots) != self.gap_slots or self.gap_slots < 0:
            raise ValueError(f"gap_slots={self.gap_slots!r} must be a whole number >= 0")
        rows = np.array([(d.responsivity, d.dark_current, *d.noise, d.saturation_current, d.gain_ohm)
                         for d in self.detectors], dtype=np.float64).T
        resp, dark, a0, a1, a2, sat, gain = rows
        adc_var = self.readout.noise_v ** 2
        # per photodiode, in ADC volts: mean = slope P + offset; the variance of receiver and ADC noise
        # together is max(c0 + c1 P + c2 P^2, adc_var) (the receiver's quadratic clamped at 0 as a variance)
        per_pd = dict(resp=resp, dark=dark, a0=a0, a1=a1, a2=a2, saturation=sat, gain=gain, slope=gain * resp,
                      offset=gain * dark, saturation_v=sat * gain, c0=gain**2 * a0 + adc_var, c1=gain**2 * a1,
                      c2=gain**2 * a2)
        # float32 columns (N_out, 1) against blocks laid out (tiles, N_out, slots)
        self._rx = {k: v.astype(np.float32)[:, None] for k, v in per_pd.items()}
        self._rx.update(adc_var=np.float32(adc_var), bound=(resp, dark, np.abs(a0), np.abs(a1), np.abs(a2), sat),
                        silent=not (adc_var > 0 or np.any(rows[2:5] != 0)))

    def receiver_columns(self) -> dict[str, np.ndarray]:
        """Per photodiode (N_out,): ``slope`` (ADC V per W detected) and ``offset`` (V at no light)."""
        return {"slope": self._rx["slope"][:, 0].astype(np.float64), "offset": self._rx["offset"][:, 0].astype(np.float64)}

    @property
    def n_in(self) -> int:
        return len(self.inputs)

    @property
    def n_out(self) -> int:
        return len(self.detectors)

    def modulator_powers(self, volts: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """M_k for DAC target volts (..., N_in) -> float32 (N_in, ...) (input-major: each input's slots
        contiguous); ``rng`` None: noiseless."""
        volts = np.asarray(volts, dtype=np.float32)
        if volts.shape[-1] != self.n_in:
            raise ValueError(f"volts must end in the {self.n_in} inputs; got shape {volts.shape}")
        by_input = np.ascontiguousarray(np.moveaxis(volts, -1, 0))
        out = np.empty(by_input.shape, dtype=np.float32)
        for k, chain in enumerate(self.inputs):
            out[k] = _transmission(chain, by_input[k], rng)
        return out

    def readings(self, volts: np.ndarray, gains: np.ndarray, background: np.ndarray,
                 rng: np.random.Generator | None, *, gain_slope: np.ndarray | None = None,
                 heater_error_w: np.ndarray | None = None) -> np.ndarray:
        """ADC readings (V, float32, tiles x slots x N_out, clipped to the range) of a program.

        ``volts`` (tiles, slots, N_in) DAC target volts; ``gains`` (tiles, N_in, N_out) W; ``background``
        (tiles, N_out) W; ``gain_slope`` (tiles, N_in, N_out) dG/dP in W per W of heater power and
        ``heater_error_w`` (tiles, N_out, N_in) each ring heater's power error; ``rng`` None: noiseless.

        The work runs in blocks of tiles small enough for the CPU's cache (noise drawn block by block in a
        fixed order, so a seed gives the same readings); every array step releases the GIL.
        """
        volts = np.asarray(volts)
        if volts.ndim != 3 or volts.shape[2] != self.n_in:
            raise ValueError(f"volts must have shape (tiles, slots, {self.n_in}); got {volts.shape}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy.random.Generator (seeded by the caller)")
        tiles, slots = volts.shape[:2]
        # per tile: (N_out, N_in) @ (N_in, slots); every array below holds a block of tiles as (tiles, channel, slot)
        gains_t, background = self._tile_gains(tiles, gains, background, gain_slope, heater_error_w)
        out = np.empty((tiles, slots, self.n_out), dtype=np.float32)
        step = max(1, _BLOCK_VALUES // (slots * max(self.n_in, self.n_out)))
        memoryless = all(len(c.taps) == 1 and c.shift + int(c.offsets[0]) == 0 for c in self.inputs)
        effective = None if memoryless else self._effective_powers(volts, rng)
        for i in range(0, tiles, step):
            block = slice(i, min(i + step, tiles))
            if memoryless:  # no ISI, no delay: each block of tiles is independent of the others
                eff = np.array(np.swapaxes(volts[block], 1, 2), dtype=np.float32, order="C")  # a copy: worked in place
                for k, chain in enumerate(self.inputs):
                    power = _transmission(chain, eff[:, k], rng)
                    if chain.taps[0] != 1.0:
                        power *= np.float32(chain.taps[0])
                    eff[:, k] = _with_rin(chain, power, rng)
            else:
                eff = np.swapaxes(effective[:, block], 0, 1)
            self._detect(eff, gains_t[block], background[block], rng, np.swapaxes(out[block], 1, 2))
        return out

    def detect(self, light: np.ndarray, idle: np.ndarray, gains: np.ndarray, background: np.ndarray,
               rng: np.random.Generator | None, *, gain_slope: np.ndarray | None = None,
               heater_error_w: np.ndarray | None = None) -> np.ndarray:
        """ADC readings (V, float32, tiles x slots x N_out) of a program whose light arrives from elsewhere.

        The center's half of the data plane: ``light`` (tiles, slots, N_in) W per input and slot at the
        input port (from :func:`launch`: modulators, RIN and link already applied), ``idle`` (N_in,) W
        arriving in the idle gaps; ``gains`` (tiles, N_in, N_out) the power transmission (W/W) from the
        port to each photodiode, ``background``, ``gain_slope`` (W/W per W), ``heater_error_w`` as in
        :meth:`readings`. The inputs' ISI taps and slot shifts act here (the receiver's share of them); the
        chains' modulators, DAC, driver and RIN are not used.
        """
        light = np.asarray(light)
        if light.ndim != 3 or light.shape[2] != self.n_in:
            raise ValueError(f"light must have shape (tiles, slots, {self.n_in}); got {light.shape}")
        if not np.all(np.isfinite(light)) or light.min(initial=0.0) < 0:
            raise ValueError("light must be finite powers >= 0 W")
        idle = np.asarray(idle, dtype=np.float32).reshape(-1)
        if idle.shape != (self.n_in,) or not np.all(np.isfinite(idle)) or idle.min(initial=0.0) < 0:
            raise ValueError(f"idle must be {self.n_in} finite powers >= 0 W")
        tiles, slots = light.shape[:2]
        gains_t, background = self._tile_gains(tiles, gains, background, gain_slope, heater_error_w)
        powers = np.ascontiguousarray(np.moveaxis(np.asarray(light, dtype=np.float32), -1, 0))  # (n_in, tiles, slots)
        for k, chain in enumerate(self.inputs):
            powers[k] = _filtered(chain, powers[k], self.gap_slots, float(idle[k]))
        out = np.empty((tiles, slots, self.n_out), dtype=np.float32)
        step = max(1, _BLOCK_VALUES // (slots * max(self.n_in, self.n_out)))
        for i in range(0, tiles, step):
            block = slice(i, min(i + step, tiles))
            self._detect(np.swapaxes(powers[:, block], 0, 1), gains_t[block], background[block], rng,
                         np.swapaxes(out[block], 1, 2))
        return out

    def _effective_powers(self, volts: np.ndarray, rng) -> np.ndarray:
        """sum_j h_j M_k[s - d_k - j] with RIN, (N_in, tiles, slots): inputs with ISI or a slot delay, on the
        program's timeline (idle drive in the gaps, before the first and after the last tile)."""
        idle = self.modulator_powers(np.zeros((1, self.n_in), dtype=np.float32), None)[:, 0]
        powers = self.modulator_powers(volts, rng)  # (n_in, tiles, slots)
        for k, chain in enumerate(self.inputs):
            powers[k] = _with_rin(chain, _filtered(chain, powers[k], self.gap_slots, idle[k]), rng)
        return powers

    def _tile_gains(self, tiles: int, gains: np.ndarray, background: np.ndarray, gain_slope: np.ndarray | None,
                    heater_error_w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(gains (tiles, N_out, N_in) float32 with the heater errors' first-order change, background
        (tiles, N_out) float32), checked against the program's ``tiles``."""
        gains = np.asarray(gains, dtype=np.float64)
        if gains.shape != (tiles, self.n_in, self.n_out):
            raise ValueError(f"gains must have shape ({tiles}, {self.n_in}, {self.n_out}); got {gains.shape}")
        if (gain_slope is None) != (heater_error_w is None):
            raise ValueError("gain_slope and heater_error_w go together")
        if gain_slope is not None:
            gains = np.maximum(gains + gain_slope * np.swapaxes(heater_error_w, 1, 2), 0.0)
        gains_t = np.ascontiguousarray(np.swapaxes(gains, 1, 2), dtype=np.float32)
        return gains_t, np.broadcast_to(np.asarray(background, dtype=np.float32), (tiles, self.n_out))

    def _detect(self, effective: np.ndarray, gains_t: np.ndarray, background: np.ndarray, rng,
                out: np.ndarray) -> None:
        """The photodiodes' readings of one block of tiles into ``out`` (tiles, N_out, slots): optical
        summation of ``effective`` (tiles, N_in, slots) over ``gains_t`` (tiles, N_out, N_in), receiver and
        ADC noise, saturation and the ADC's range."""
        power = np.matmul(gains_t, effective)  # the optical summation on each photodiode
        if np.any(background):
            power += background[:, :, None]
        rx = self._rx
        if rng is None or rx["silent"]:  # noiseless, or no receiver or ADC noise to draw
            volts = power
            volts *= rx["slope"]
            volts += rx["offset"]
            np.minimum(volts, rx["saturation_v"], out=volts)
        elif self._below_saturation(float(power.max(initial=0.0))):
            # min(I + n_rx, I_sat) never acts here, so the receiver's and the ADC's noise add as one Gaussian
            sigma = power * rx["c2"]
            sigma += rx["c1"]
            sigma *= power
            sigma += rx["c0"]
            np.maximum(sigma, rx["adc_var"], out=sigma)
            np.sqrt(sigma, out=sigma)
            volts = power
            volts *= rx["slope"]
            volts += rx["offset"]
            sigma *= _normal(rng, sigma.shape)
            volts += sigma
        else:
            sigma = power * rx["a2"]
            sigma += rx["a1"]
            sigma *= power
            sigma += rx["a0"]
            np.sqrt(np.maximum(sigma, 0.0, out=sigma), out=sigma)
            current = power * rx["resp"]
            current += rx["dark"]
            sigma *= _normal(rng, sigma.shape)
            current += sigma
            volts = power
            np.multiply(np.minimum(current, rx["saturation"], out=current), rx["gain"], out=volts)
            if rx["adc_var"] > 0:
                volts += _normal(rng, volts.shape) * np.sqrt(rx["adc_var"])
        r = self.readout
        np.clip(volts, r.offset_v - r.range_v / 2, r.offset_v + r.range_v / 2, out=out)

    def _below_saturation(self, power_max: float) -> bool:
        """Whether every photocurrent of a block whose largest detected power is ``power_max`` stays
        ``_SATURATION_MARGIN`` receiver-noise standard deviations below saturation."""
        resp, dark, a0, a1, a2, sat = self._rx["bound"]
        sigma = np.sqrt(a0 + a1 * power_max + a2 * power_max**2)
        return bool(np.all(resp * power_max + dark + _SATURATION_MARGIN * sigma < sat))


def launch(inputs: Sequence[InputChain], volts: np.ndarray, link_w: Sequence[float], rng: np.random.Generator | None,
           *, gap_slots: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The edge's half of the data plane: the light a program launches, as it arrives at the center's input
    port, ``(light, idle)``: float32 W, (tiles, slots, N_in) per input and slot, and (N_in,) in the gaps.

    Per input k: ``link_w[k]`` (W: laser power into modulator k x the link's power transmission from its
    output to the port) x (h_k * M_k)[s - d_k] x (1 + RIN): ``volts`` (tiles, slots, N_in) DAC target volts
    through the chain's DAC, driver and modulator with their noise, taps and shift (``InputChain``; the
    edge launches on the center's slot grid, so its chains usually carry a single tap and no shift), and
    the laser's RIN. ``rng`` None: noiseless. :meth:`StationaryCore.detect` is the other half: the two
    together equal :meth:`StationaryCore.readings` with gains = link_w x the port's transmission.
    """
    volts = np.asarray(volts, dtype=np.float32)
    n_in = len(inputs)
    if volts.ndim != 3 or volts.shape[2] != n_in:
        raise ValueError(f"volts must have shape (tiles, slots, {n_in}); got {volts.shape}")
    link = np.asarray(link_w, dtype=np.float64).reshape(-1)
    if link.shape != (n_in,) or not np.all(np.isfinite(link)) or link.min(initial=0.0) < 0:
        raise ValueError(f"link_w must be {n_in} finite powers >= 0 W")
    if int(gap_slots) != gap_slots or gap_slots < 0:
        raise ValueError(f"gap_slots={gap_slots!r} must be a whole number >= 0")
    by_input = np.ascontiguousarray(np.moveaxis(volts, -1, 0))
    light = np.empty(by_input.shape, dtype=np.float32)
    idle = np.empty(n_in, dtype=np.float32)
    for k, chain in enumerate(inputs):
        idle[k] = _transmission(chain, np.zeros(1, dtype=np.float32), None)[0]
        power = _filtered(chain, _transmission(chain, by_input[k], rng), int(gap_slots), float(idle[k]))
        light[k] = _with_rin(chain, power, rng) * np.float32(link[k])
        idle[k] *= np.float32(link[k])
    return np.ascontiguousarray(np.moveaxis(light, 0, -1)), idle


def _filtered(chain: InputChain, power: np.ndarray, gap: int, idle: float) -> np.ndarray:
    """sum_j h_j power[s - d - j] (tiles, slots) on the program's timeline (``idle`` in the gaps)."""
    if len(chain.taps) == 1 and chain.shift + int(chain.offsets[0]) == 0:
        return power if chain.taps[0] == 1.0 else power * np.float32(chain.taps[0])
    acc = np.zeros(power.shape, dtype=np.float32)
    for off, tap in zip(chain.offsets, chain.taps):
        acc += np.float32(tap) * _shifted(power, int(chain.shift + off), gap, idle)
    return acc


def _transmission(chain: InputChain, volts: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """M_k: the modulator's power transmission (float32) for DAC target ``volts`` of one input, with the DAC's
    and the driver's noise when ``rng`` is given.

    DAC noise n1 and driver noise n2 reach the modulator as g n1 + n2 through a linear driver (one
    Gaussian of their combined variance), and as g (1 - tanh^2) n1 + n2 through a saturating one while
    g sigma1 is below ``_LINEAR_DRIVE`` of the saturation voltage (first order: the neglected term is
    below 1e-3 of the noise); else n1 is drawn before the tanh."""
    v = np.asarray(chain.quantise(volts), dtype=np.float32)
    g, s = chain.driver_gain, chain.driver_saturation_v
    dac = chain.noise_v if rng is not None else 0.0
    drv = chain.driver_noise_v if rng is not None else 0.0
    saturating = math.isfinite(s)
    if dac > 0 and saturating and g * dac > _LINEAR_DRIVE * s:
        v = v + _normal(rng, v.shape) * np.float32(dac)
        dac = 0.0
    if saturating:
        x = np.tanh(v * np.float32(g / s))
        v = x * np.float32(s)
        if dac > 0:
            sigma = np.square(x, out=x)
            np.subtract(np.float32(1.0), sigma, out=sigma)
            sigma *= np.float32(g * dac)
            if drv > 0:
                np.square(sigma, out=sigma)
                sigma += np.float32(drv * drv)
                np.sqrt(sigma, out=sigma)
            sigma *= _normal(rng, v.shape)
            v += sigma
        elif drv > 0:
            v += _normal(rng, v.shape) * np.float32(drv)
    else:
        if g != 1.0:
            v = v * np.float32(g)
        sigma = math.hypot(g * dac, drv)
        if sigma > 0:
            v = v + _normal(rng, v.shape) * np.float32(sigma)
    return np.asarray(chain.modulator(v), dtype=np.float32)


def _with_rin(chain: InputChain, power: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """``power`` (float32, modified in place) times 1 + the input laser's relative intensity noise per slot."""
    if rng is not None and chain.rin > 0:
        z = _normal(rng, power.shape)
        z *= np.float32(math.sqrt(chain.rin))
        z += np.float32(1.0)
        power *= z
    return power


def _normal(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard normal float32 deviates (``standard_normal_f32``), drawn in pieces of ``_DRAW_VALUES``: the
    generator's table lookup then works in the CPU's cache (1.3-4x faster here than one draw of millions)."""
    out = np.empty(shape, dtype=np.float32)
    flat = out.reshape(-1)
    for i in range(0, flat.size, _DRAW_VALUES):
        standard_normal_f32(rng, None, out=flat[i:i + _DRAW_VALUES])
    return out


def _shifted(x: np.ndarray, shift: int, gap: int, idle: float) -> np.ndarray:
    """x[i, s - shift] on the program's timeline (tiles separated by ``gap`` idle slots at ``idle``; before
    the first and after the last tile: ``idle``)."""
    if shift == 0:
        return x
    tiles, slots = x.shape
    period = gap + slots
    if gap:
        timeline = np.full((tiles, period), idle, dtype=x.dtype)
        timeline[:, gap:] = x
    else:
        timeline = x
    flat = timeline.reshape(-1)
    n = flat.size
    out = np.full(n, idle, dtype=x.dtype)
    if 0 < shift < n:
        out[shift:] = flat[:n - shift]
    elif -n < shift < 0:
        out[:n + shift] = flat[-shift:]
    return out.reshape(tiles, period)[:, gap:]


# -- building the numbers from device models ---------------------------------------------------------------


def chain_taps(stages: Sequence[Callable[[np.ndarray], np.ndarray]], symbol_rate: float, *,
               sample_time_s: float | None = None, window_s: float = 0.0, max_taps: int = 4,
               tolerance: float = 1e-3, oversample: int = 128, period_symbols: int = 64):
    """ISI taps (offsets, taps) of NRZ symbols through the product of the ``stages`` responses H(f) and a
    receiver averaging ``window_s`` seconds around the sampling instant (rect: sinc(f W))."""

    def h(f):
        out = np.ones(np.shape(f), dtype=complex)
        for stage in stages:
            out = out * stage(f)
        return out * np.sinc(f * window_s)

    return isi_taps(h, symbol_rate, sample_time_s, max_taps=max_taps, tolerance=tolerance, oversample=oversample,
                    period_symbols=period_symbols)


def noise_bandwidth(stages: Sequence[Callable[[np.ndarray], np.ndarray]], breakpoints: Sequence[float], *,
                    window_s: float = 0.0) -> float:
    """int_0^inf |prod H(f)|^2 sinc(f W)^2 df (Hz): the band of white current noise the sampler sees."""

    def density(f):
        out = np.ones(1, dtype=complex)
        for stage in stages:
            out = out * stage(np.array([f]))
        return float(np.abs(out[0] * np.sinc(f * window_s)) ** 2)

    top = 50 * max(breakpoints)
    edges = sorted({0.0, *breakpoints, *(4 * b for b in breakpoints), top})
    total = sum(integrate.quad(density, lo, hi, limit=400, epsabs=0.0, epsrel=1e-9)[0]
                for lo, hi in zip(edges[:-1], edges[1:]))
    return total + top * integrate.quad(lambda u: density(top * u), 1.0, np.inf, limit=400, epsabs=1e-12 * total / top,
                                        epsrel=1e-8)[0]


def detector(receiver, band_hz: float, *, ase_psd_w_per_hz: float = 0.0, optical_bw_hz: float = 0.0,
             polarizations: int = 2, ase_ase_band_hz: float | None = None) -> Detector:
    """A ``Detector`` from a ``receiver.Receiver``: its noise over ``band_hz`` (the sampler's band,
    ``noise_bandwidth``) as a quadratic in the TOTAL detected power (signal + ASE background
    P_ASE = m S_sp B_o), from ``Receiver.noise_variances`` (each term at most quadratic).
    ``ase_ase_band_hz``: band replacing (2 B_o - b) b for the ASE-ASE beat (its PSD is triangular)."""
    p1 = 1e-3
    vals = [receiver.noise_variances(p, ase_psd_w_per_hz, optical_bw_hz, polarizations) for p in (0.0, p1, 2 * p1)]
    b_rx = receiver.noise_bandwidth_hz
    c = np.zeros(3)
    for name in NOISE_TERMS:
        v0, v1, v2 = (float(v[name]) for v in vals)
        c2 = (v2 - 2 * v1 + v0) / (2 * p1 * p1)
        c1 = (v1 - v0) / p1 - c2 * p1
        scale = band_hz / b_rx
        if name == "ase_ase" and v0 > 0 and ase_ase_band_hz is not None:
            b = min(b_rx, optical_bw_hz)
            scale = ase_ase_band_hz / ((2 * optical_bw_hz - b) * b)
        c += np.array([v0, c1, c2]) * scale
    # variance in the signal power p = P - P_ASE -> in the total power P
    p_ase = polarizations * ase_psd_w_per_hz * optical_bw_hz
    noise = (c[0] - c[1] * p_ase + c[2] * p_ase**2, c[1] - 2 * c[2] * p_ase, c[2])
    return Detector(receiver.responsivity, receiver.dark_current, tuple(float(x) for x in noise),
                    receiver.saturation_current, receiver.gain_ohm)


def ou_walk(times: np.ndarray, start_time: float, start_value: float, sigma: float, tau_s: float,
            rng: np.random.Generator) -> np.ndarray:
    """An Ornstein-Uhlenbeck process (stationary std ``sigma``, correlation time ``tau_s``) at increasing
    ``times``, continuing from ``start_value`` at ``start_time``: slow drift on the simulated clock."""
    times = np.asarray(times, dtype=float)
    if sigma <= 0 or times.size == 0:
        return np.zeros(times.shape)
    dt = np.diff(np.concatenate([[start_time], times]))
    if np.any(dt < 0):
        raise ValueError("drift times must not go back")
    decay = np.exp(-dt / tau_s)
    kicks = rng.standard_normal(times.size) * sigma * np.sqrt(1.0 - decay**2)
    out = np.empty(times.size)
    value = float(start_value)
    for i in range(times.size):
        value = value * decay[i] + kicks[i]
        out[i] = value
    return out


def referred_dac_noise(noise_v: float, stages: Sequence[Callable[[np.ndarray], np.ndarray]], symbol_rate: float, *,
                       samples_per_symbol: int = 1, sample_time_s: float | None = None, window_s: float = 0.0,
                       max_taps: int = 4, oversample: int = 128, period_symbols: int = 64) -> float:
    """DAC excess noise (``noise_v`` rms per DAC sample, ``samples_per_symbol`` independent samples per
    symbol) as one value per symbol at the DAC output: the variance the chain passes to a reading,
    sigma^2 sum g^2, divided by what one symbol's value reaches it with, sum h^2 (g, h: pulse responses
    of one DAC sample and of one symbol at the symbol-spaced sampling instants)."""
    if noise_v <= 0:
        return 0.0
    t_sym = 1.0 / symbol_rate
    t_s = 0.5 * t_sym if sample_time_s is None else sample_time_s

    def h(f):
        out = np.ones(np.shape(f), dtype=complex)
        for stage in stages:
            out = out * stage(f)
        return out * np.sinc(f * window_s)

    kw = dict(symbol_rate=symbol_rate, oversample=oversample, period_symbols=period_symbols)
    span = (max_taps + 1) * samples_per_symbol
    width = t_sym / samples_per_symbol
    g = pulse_response(h, width, t_s, width, span, span, **kw)
    full = pulse_response(h, t_sym, t_s, t_sym, max_taps, max_taps, **kw)
    return float(noise_v * math.sqrt(np.sum(g**2) / np.sum(full**2)))
