"""Bench parts of the optical network and computing core: EDFA, AWGR, microring bank, mux, splitter.

Each part is a thin ``Component`` wrapper over a validated physics module (``edfa.py``, ``awgr.py``,
``microring.py``, ``filters.py``): the wrapper only maps ports, pulls light and voltages from the
world and applies the module's transmissions to each carrier. Bench files name the parts by
``type``: ``edfa``, ``awgr``, ``mux``, ``splitter``, ``ring_bank`` (``NETWORK_COMPONENTS``).

Two evaluation levels, chosen by the times ``t`` a detector asks for:

* **waveform**: ``t`` is a uniform 1-D grid of at least two points; its sample rate fs = 1 / dt is the
  complex simulation bandwidth around every carrier (as for the laser's RIN and phase noise). Noise
  (EDFA ASE) is drawn from ``world.rng``.
* **mean power**: a single point (a power meter's reading) or any non-uniform set of times; noise is
  represented by its mean power, so power meters read signal + ASE.

Carriers are incoherent: every part maps each ``Lightwave`` on its own, and detectors add powers.
"""

from __future__ import annotations

import math
import pickle

import numpy as np

from sim_backends.physics.awgr import AWGR
from sim_backends.physics.constants import C
from sim_backends.physics.edfa import EDFA
from sim_backends.physics.grids import uniform_step
from sim_backends.physics.microring import MicroringBank
from sim_backends.physics.power import DrawError, edfa_pump_draw_w
from sim_backends.physics.validation import require_int, require_range
from sim_backends.world import ELECTRICAL_IN, OPTICAL_IN, OPTICAL_OUT, Component, Lightwave


def _constant(shape, value: float) -> np.ndarray:
    return np.full(shape, math.sqrt(max(value, 0.0)), dtype=complex)


def _state_key(state: dict) -> object:
    """A comparable fingerprint of a part's ``state()``: its pickle, which holds arrays whole (their repr
    elides the middle); the repr for a state that cannot be pickled."""
    try:
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return repr(state)


#: Quantum conversion efficiency (signal photons out per pump photon) of a 980 nm-pumped EDFA: 0.89, the
#: best measured by Pedersen et al., IEEE Photon. Technol. Lett. 3, 1085 (1991).
EDFA_QUANTUM_CONVERSION = 0.89
#: The pump wavelength of a C-band EDFA by default, m (980 nm, as in Pedersen et al. 1991).
EDFA_PUMP_WAVELENGTH_M = 980e-9
#: Power conversion efficiency (signal + ASE power added / pump power) at that quantum conversion, for a
#: 1550 nm signal: 0.89 x 980 / 1550 = 0.563. A packaged amplifier (isolators, taps, a gain-flattening
#: filter) converts less, so the draw computed with it is a lower bound.
EDFA_POWER_CONVERSION = EDFA_QUANTUM_CONVERSION * EDFA_PUMP_WAVELENGTH_M / 1550e-9
#: Mean-power points per modulation period when the amplifier's input power is averaged for its pump draw
#: (as ``World.average_power_into``).
_DRAW_POINTS = 8192


# -- EDFA ------------------------------------------------------------------------------------------


class EDFAComponent(Component):
    """Erbium-doped fibre amplifier (``type: edfa``): ports ``in`` -> ``out``.

    Wraps :class:`sim_backends.physics.edfa.EDFA` (gain 20 dB, NF 5 dB, saturation output +20 dBm by
    default: PHYSICS.md table 2, C-band line/booster EDFA; NF below the quantum limit
    max(3 dB, 2 - 1/G) is refused). Gain saturation sees the total mean input power of all carriers
    over the requested times (the gain responds to average power; WDM channels share it).

    ASE (one-sided PSD per polarisation S_sp = (NF G - 1) h nu / 2 at the saturated gain G):

    * ``optical_bandwidth_hz`` set: a band-pass of that -3 dB width and ``filter_shape`` centred on
      **each carrier** (a per-channel ASE filter, e.g. a tunable filter set to the probe or a demux
      passband). Each carrier brings the ASE of the filter's noise bandwidth B_n with it,
      2 S_sp B_n in both polarisations; with no input there is no ASE at the output.
    * ``optical_bandwidth_hz`` None: no filter; the ASE fills the amplifier's emission band
      ``ase_bandwidth_hz`` (default 4.4 THz = the C band 1530-1565 nm) around
      ``ase_center_wavelength_m`` (1547.3 nm, its centre), also with no input light.

    Waveform level (uniform ``t``, fs = 1/dt): each carrier is amplified by ``EDFA.amplify_dual_pol``:
    co-polarised ASE over the record band (fs, or the filter if narrower) added to its field (it beats
    with the signal), orthogonal-polarisation ASE as a second ``Lightwave`` at the same wavelength
    (adds power and ASE-ASE beat, no signal-ASE beat). The part of the ASE band a record of rate fs
    cannot represent is added as constant-power carriers (its mean power, not its beat noise).
    Mean-power level (single point): each carrier times G, plus the ASE mean power as constant
    carriers. Unfiltered ASE is split into ``ase_slices`` carriers evenly spaced in frequency across
    its band, so wavelength-selective parts downstream (AWGR, rings) see a coarse spectrum; raise it
    to resolve narrow passbands (each slice is one more carrier to propagate).
    ``add_ase: false`` turns the ASE off (a noiseless gain stage).

    Electrical draw (``electrical_power_w``, counted by the World like an instrument's): the power the
    amplifier adds to the light, G P_in + P_ASE - P_in, comes from the pump at
    ``power_conversion_efficiency`` (default 0.563: quantum conversion 0.89 at 980 nm, Pedersen et al.
    1991, times the photon-energy ratio 980/1550; refused above the quantum limit ``pump_wavelength_m``
    over the shortest wavelength of the emission band); the pump diode turns ``pump_wall_plug_efficiency``
    (default 0.3, PHYSICS.md table 2: pump-diode WPE 30-50 % †, its low end) of its electrical input into
    pump light; ``control_power_w`` (default 10 W, PHYSICS.md table 2: benchtop EDFA 10-50 W †, nearly all
    of it TEC, control electronics and supply since the pump's own draw is below 1 W at +20 dBm out; the
    range's low end, assumed for this unit) is drawn whenever it is on. P_ASE is the ASE of the whole
    emission band: the erbium emits it whatever ``optical_bandwidth_hz`` lets out. P_in is the mean input
    power (over one modulation period of the bench's sources), found by evaluating the graph upstream
    only when the state of a part upstream changes.
    """

    PORTS = {"in": OPTICAL_IN, "out": OPTICAL_OUT}

    def __init__(self, name: str, gain_db: float = 20.0, noise_figure_db: float = 5.0,
                 saturation_output_dbm: float = 20.0, optical_bandwidth_hz: float | None = None,
                 filter_shape: str = "rect", filter_order: int = 1, saturation_model: str = "compression",
                 ase_bandwidth_hz: float = 4.4e12, ase_center_wavelength_m: float = 1547.3e-9,
                 ase_slices: int = 16, add_ase: bool = True,
                 power_conversion_efficiency: float = EDFA_POWER_CONVERSION,
                 pump_wavelength_m: float = EDFA_PUMP_WAVELENGTH_M, pump_wall_plug_efficiency: float = 0.3,
                 control_power_w: float = 10.0):
        self.name = name
        self.amplifier = EDFA(gain_db, noise_figure_db, saturation_output_dbm, optical_bandwidth_hz,
                              filter_shape, filter_order, saturation_model)
        # the same amplifier without a filter: its ASE fills a record band narrower than the filter
        self._open = EDFA(gain_db, noise_figure_db, saturation_output_dbm, None, "rect", 1, saturation_model)
        self.ase_bandwidth_hz = require_range("ase_bandwidth_hz", ase_bandwidth_hz, 1e9, 50e12)
        # unfiltered, on a record wider than the emission band: the ASE occupies the band only
        self._band = EDFA(gain_db, noise_figure_db, saturation_output_dbm, self.ase_bandwidth_hz, "rect", 1,
                          saturation_model)
        self.ase_center_wavelength_m = require_range("ase_center_wavelength_m", ase_center_wavelength_m, 200e-9, 3e-6)
        self.ase_slices = require_int("ase_slices", ase_slices, 1, 4096)
        self.add_ase = bool(add_ase)
        nu_c = C / self.ase_center_wavelength_m
        if nu_c - self.ase_bandwidth_hz / 2 <= 0:
            raise ValueError(f"ase_bandwidth_hz={ase_bandwidth_hz!r} is wider than the optical frequency "
                             f"{nu_c:.4g} Hz of ase_center_wavelength_m allows")
        step = self.ase_bandwidth_hz / self.ase_slices
        self._slice_nu = nu_c + (np.arange(self.ase_slices) + 0.5 - self.ase_slices / 2) * step
        self._memo: dict[tuple, float] = {}
        self.pump_wavelength_m = require_range("pump_wavelength_m", pump_wavelength_m, 800e-9, 1500e-9)
        # one pump photon gives at most one signal photon: no signal in the band can take more power than this
        quantum_limit = self.pump_wavelength_m * (nu_c + self.ase_bandwidth_hz / 2) / C
        self.power_conversion_efficiency = require_range("power_conversion_efficiency",
                                                         power_conversion_efficiency, 0.0, quantum_limit)
        if self.power_conversion_efficiency == 0.0:
            raise ValueError("power_conversion_efficiency=0.0 must be positive (no pump makes no gain)")
        self.pump_wall_plug_efficiency = require_range("pump_wall_plug_efficiency", pump_wall_plug_efficiency,
                                                       0.0, 1.0)
        if self.pump_wall_plug_efficiency == 0.0:
            raise ValueError("pump_wall_plug_efficiency=0.0 must be positive (a diode that emits nothing)")
        self.control_power_w = require_range("control_power_w", control_power_w, 0.0, 1000.0, "W")
        self._input: tuple[object, float] | None = None  # (state of the parts upstream, mean input power)
        self._upstream: tuple[int, list[str]] | None = None  # (wiring version, the parts upstream)

    @property
    def filtered(self) -> bool:
        return self.amplifier.optical_bandwidth_hz is not None

    @property
    def filter_noise_bandwidth_hz(self) -> float | None:
        """Noise bandwidth of the per-carrier ASE filter (None without a filter)."""
        return self.amplifier.noise_bandwidth_hz(1.0) if self.filtered else None

    def gain(self, input_power_w: float = 0.0) -> float:
        """Linear gain at total mean input power ``input_power_w``."""
        key = ("gain", float(input_power_w))
        if key not in self._memo:
            self._remember(key, float(self.amplifier.gain(input_power_w)))
        return self._memo[key]

    def ase_power_w(self, bandwidth_hz: float, wavelength_m: float, gain: float) -> float:
        """ASE power, both polarisations, in ``bandwidth_hz`` at ``wavelength_m`` and gain ``gain``."""
        key = ("ase", float(bandwidth_hz), float(wavelength_m), float(gain))
        if key not in self._memo:
            self._remember(key, float(self.amplifier.ase_power_w(bandwidth_hz, wavelength_m, gain)))
        return self._memo[key]

    def _remember(self, key, value) -> None:
        # pure functions of the fixed parameters: memoised (bounded) because a power meter asks
        # for the same operating point many times per reading
        if len(self._memo) >= 4096:
            self._memo.clear()
        self._memo[key] = value

    def _broadband_ase(self, shape, gain: float, bandwidth_hz: float) -> list[Lightwave]:
        """Unfiltered ASE (both polarisations) of ``bandwidth_hz`` in total, as spectral slices."""
        if bandwidth_hz <= 0:
            return []
        per_slice = bandwidth_hz / self.ase_slices
        out = []
        for nu in self._slice_nu:
            lam = C / nu
            power = self.ase_power_w(per_slice, lam, gain)
            out.append(Lightwave(lam, _constant(shape, power)))
        return out

    def optical_output(self, port, t):
        t = np.asarray(t, dtype=float)
        shape = np.shape(t)
        light = self.world.light_into(self.name, "in", t)
        p_in = float(sum(np.mean(np.abs(c.field) ** 2) for c in light))
        g = self.gain(p_in)
        dt = uniform_step(t) if self.add_ase else None
        fs = None if dt is None else 1.0 / dt
        if fs is None:
            out = [c.scaled(math.sqrt(g)) for c in light]
            if not self.add_ase:
                return out
            if self.filtered:
                b_n = self.filter_noise_bandwidth_hz
                out += [Lightwave(c.wavelength, _constant(shape, self.ase_power_w(b_n, c.wavelength, g)))
                        for c in light]
            else:
                out += self._broadband_ase(shape, g, self.ase_bandwidth_hz)
            return out
        return self._waveform(light, t, fs, p_in, g)

    def _waveform(self, light, t, fs, p_in, g):
        shape = np.shape(t)
        out: list[Lightwave] = []
        if light:
            fields = np.stack([np.broadcast_to(c.field, shape) for c in light])
            wavelengths = np.array([c.wavelength for c in light])
            if self.filtered and fs >= self.amplifier.optical_bandwidth_hz:
                amp, in_record = self.amplifier, None  # the filter lies inside the record band
            elif not self.filtered and fs > self.ase_bandwidth_hz:
                amp, in_record = self._band, None
            else:
                amp = self._open
                in_record = min(fs, self.filter_noise_bandwidth_hz if self.filtered else self.ase_bandwidth_hz)
            co, ortho = amp.amplify_dual_pol(fields, fs, wavelengths, self.world.rng, input_power_w=p_in)
            for k, c in enumerate(light):
                out.append(Lightwave(c.wavelength, co[k]))
                out.append(Lightwave(c.wavelength, ortho[k]))
                if self.filtered and in_record is not None:
                    rest = self.filter_noise_bandwidth_hz - in_record
                    if rest > 0:
                        out.append(Lightwave(c.wavelength, _constant(shape, self.ase_power_w(rest, c.wavelength, g))))
        if not self.filtered:
            # the emission band minus what the records around the carriers already hold
            out += self._broadband_ase(shape, g, self.ase_bandwidth_hz - len(light) * min(fs, self.ase_bandwidth_hz))
        return out

    # -- electrical draw -----------------------------------------------------------------------------

    def mean_input_power_w(self) -> float:
        """Mean optical power into ``in`` now, in W (over one period when the bench's sources repeat),
        evaluated again only when a part upstream changes state; its noise comes from a stream of its
        own, so accounting the draw leaves the bench's random draws alone."""
        world = self.world
        if self._upstream is None or self._upstream[0] != world.wiring_version:
            self._upstream = (world.wiring_version, sorted(world.upstream_nodes(self.name) - {self.name}))
        key = tuple((name, _state_key(world.nodes[name].state())) for name in self._upstream[1]
                    if callable(getattr(world.nodes[name], "state", None)))
        if self._input is None or self._input[0] != key:
            period = world.modulation_period()
            t = (world.time + (np.arange(_DRAW_POINTS) + 0.5) * (period / _DRAW_POINTS) if period
                 else np.array([world.time]))
            with world.evaluation(rng=world.rng_for(f"{self.name} pump draw")):
                light = world.light_into(self.name, "in", t)
            self._input = (key, float(sum(np.mean(np.abs(c.field) ** 2) for c in light)))
        return self._input[1]

    def electrical_power_w(self) -> float:
        """Wall-plug draw now, in W: the pump that supplies the power added to the light, and the unit's
        TEC and control electronics (see the class docstring)."""
        p_in = self.mean_input_power_w()
        g = self.gain(p_in)
        ase = self.ase_power_w(self.ase_bandwidth_hz, self.ase_center_wavelength_m, g) if self.add_ase else 0.0
        return edfa_pump_draw_w(g * p_in + ase, p_in, self.power_conversion_efficiency,
                                self.pump_wall_plug_efficiency, self.control_power_w)

    def energy_between_j(self, start_s: float, end_s: float) -> float:
        """Energy drawn over [start_s, end_s] of the simulated clock at the draw in force now (the World
        calls this as its clock moves, before any later change)."""
        if end_s < start_s:
            raise DrawError(f"{self.name}: an energy interval cannot end ({end_s} s) before it starts ({start_s} s)")
        return self.electrical_power_w() * (end_s - start_s)

    def state(self):
        a = self.amplifier
        return {"gain_db": a.gain_db, "noise_figure_db": a.noise_figure_db,
                "saturation_output_dbm": a.saturation_output_dbm, "optical_bandwidth_hz": a.optical_bandwidth_hz,
                "ase_bandwidth_hz": self.ase_bandwidth_hz, "add_ase": self.add_ase,
                "power_conversion_efficiency": self.power_conversion_efficiency,
                "pump_wavelength_m": self.pump_wavelength_m,
                "pump_wall_plug_efficiency": self.pump_wall_plug_efficiency, "control_power_w": self.control_power_w}


# -- AWGR ------------------------------------------------------------------------------------------


class AWGRComponent(Component):
    """Cyclic N x N arrayed-waveguide grating router (``type: awgr``): ports ``in1..inN``, ``out1..outN``.

    Wraps :class:`sim_backends.physics.awgr.AWGR`: routing lambda(p, q, n) = lambda0 + (p - q) dlambda
    + n FSR (FSR = N dlambda), insertion loss, adjacent / non-adjacent crosstalk, Gaussian or flat-top
    passbands. Defaults are the module's: 16 x 16, 100 GHz grid at 1550.12 nm, IL 5 dB, adjacent
    -25 dB, non-adjacent -35 dB (silica AWG datasheet classes; Okamoto, Fundamentals of Optical
    Waveguides, ch. 9). Output q collects every input's carriers, each scaled by
    sqrt(transmission(p, q, wavelength)): one ``Lightwave`` per (input, carrier), added in power at a
    detector (incoherent; the passband phase is not modelled).
    """

    def __init__(self, name: str, ports: int = 16, channel_spacing_hz: float | None = 100e9,
                 dlambda_m: float | None = None, center_wavelength_m: float = 1550.12e-9,
                 insertion_loss_db: float = 5.0, adjacent_crosstalk_db: float = -25.0,
                 nonadjacent_crosstalk_db: float = -35.0, passband: str = "gaussian",
                 passband_3db_hz: float | None = None):
        self.name = name
        self._cache: dict[tuple, np.ndarray] = {}
        self.router = AWGR(ports, channel_spacing_hz, dlambda_m, center_wavelength_m, insertion_loss_db,
                           adjacent_crosstalk_db, nonadjacent_crosstalk_db, passband, passband_3db_hz)
        self.n_ports = self.router.ports

    @property
    def router(self) -> AWGR:
        """The device model (its parameters are fixed at construction; replace it to change them)."""
        return self._router

    @router.setter
    def router(self, model: AWGR) -> None:
        if not isinstance(model, AWGR):
            raise TypeError(f"router must be an AWGR model, not {type(model).__name__}")
        if getattr(self, "n_ports", model.ports) != model.ports:
            raise ValueError(f"router has {model.ports} ports; this bench item is wired with {self.n_ports}")
        self._router = model
        self._cache.clear()  # the rows belong to the model they were computed from

    def ports(self):
        out = {f"in{p}": OPTICAL_IN for p in range(1, self.n_ports + 1)}
        out.update({f"out{q}": OPTICAL_OUT for q in range(1, self.n_ports + 1)})
        return out

    def amplitudes(self, input_port: int, wavelengths: tuple[float, ...]) -> np.ndarray:
        """sqrt(transmission) from ``input_port`` to every output, shape (N, n_wavelengths).

        Rows are memoised per (input, wavelengths) for the current ``router`` (bounded cache).
        """
        key = (input_port, wavelengths)
        rows = self._cache.get(key)
        if rows is None:
            if len(self._cache) >= 4096:
                self._cache.clear()
            q = np.arange(1, self.n_ports + 1)[:, None]
            rows = np.sqrt(self.router.transmission(input_port, q, np.array(wavelengths)[None, :]))
            self._cache[key] = rows
        return rows

    def optical_output(self, port, t):
        q = int(port[3:])
        out: list[Lightwave] = []
        for p in range(1, self.n_ports + 1):
            light = self.world.light_into(self.name, f"in{p}", t)
            if not light:
                continue
            amplitude = self.amplitudes(p, tuple(float(c.wavelength) for c in light))[q - 1]
            out += [c.scaled(float(a)) for c, a in zip(light, amplitude)]
        return out

    def state(self):
        r = self.router
        return {"ports": r.ports, "center_wavelength_m": r.center_wavelength_m, "dlambda_m": r.dlambda_m,
                "fsr_m": r.fsr_m, "insertion_loss_db": r.insertion_loss_db,
                "adjacent_crosstalk_db": r.adjacent_crosstalk_db,
                "nonadjacent_crosstalk_db": r.nonadjacent_crosstalk_db, "passband": r.passband}


# -- passive combiners and splitters ----------------------------------------------------------------


class Mux(Component):
    """N -> 1 combiner / WDM multiplexer (``type: mux``): ports ``in1..inN`` -> ``out``.

    Every carrier on input k passes to ``out`` with that port's insertion loss (dB; one value for all
    ports or a list of N): an ideal channel match, i.e. each input carries the wavelength its port is
    made for (the mux passband is not modelled). Default 4 ports, 3.0 dB: 100 GHz thin-film-filter
    DWDM mux modules of 4-8 channels are specified at IL <= 2.5-3.5 dagger (vendor datasheet class,
    not re-verified).
    """

    def __init__(self, name: str, ports: int = 4, insertion_loss_db=3.0):
        self.name = name
        self.n_ports = require_int("ports", ports, 2, 1024)
        losses = np.broadcast_to(np.asarray(insertion_loss_db, dtype=float), (self.n_ports,)) \
            if np.ndim(insertion_loss_db) == 0 or np.size(insertion_loss_db) == self.n_ports else None
        if losses is None:
            raise ValueError(f"insertion_loss_db={insertion_loss_db!r} must be one value or a list of ports={self.n_ports}")
        self.insertion_loss_db = [require_range("insertion_loss_db", v, 0.0, 60.0) for v in losses]

    def ports(self):
        out = {f"in{k}": OPTICAL_IN for k in range(1, self.n_ports + 1)}
        out["out"] = OPTICAL_OUT
        return out

    def optical_output(self, port, t):
        out: list[Lightwave] = []
        for k, loss in enumerate(self.insertion_loss_db, start=1):
            amplitude = 10 ** (-loss / 20)
            out += [c.scaled(amplitude) for c in self.world.light_into(self.name, f"in{k}", t)]
        return out

    def state(self):
        return {"ports": self.n_ports, "insertion_loss_db": list(self.insertion_loss_db)}


class Splitter(Component):
    """1 -> N power splitter (``type: splitter``): ``in`` -> ``out1..outN``.

    Output k gets the fraction r_k 10^(-excess_loss_db / 10) of the input power, r_k = 1/N by default
    or the given ``ratios`` (positive, summing to 1; e.g. [0.01, 0.99] for a 1 % tap). Wavelength
    independent. Default 1 x 2 with 0.2 dB excess loss: fused single-mode 1x2 couplers are specified
    at excess loss ~0.1-0.3 dB dagger (vendor datasheet class, e.g. Thorlabs TN1550R5A2; PLC 1x8
    splitters ~1 dB over the ideal 9.03 dB).
    """

    def __init__(self, name: str, ports: int = 2, excess_loss_db: float = 0.2, ratios=None):
        self.name = name
        self.n_ports = require_int("ports", ports, 2, 1024)
        self.excess_loss_db = require_range("excess_loss_db", excess_loss_db, 0.0, 60.0)
        if ratios is None:
            r = np.full(self.n_ports, 1.0 / self.n_ports)
        else:
            r = np.asarray(ratios, dtype=float)
            if r.shape != (self.n_ports,) or np.any(~(r > 0)) or not abs(r.sum() - 1.0) <= 1e-6:
                raise ValueError(f"ratios={ratios!r} must be {self.n_ports} positive fractions summing to 1")
        self.ratios = r

    def ports(self):
        out = {"in": OPTICAL_IN}
        out.update({f"out{k}": OPTICAL_OUT for k in range(1, self.n_ports + 1)})
        return out

    def power_fraction(self, k: int) -> float:
        return float(self.ratios[k - 1] * 10 ** (-self.excess_loss_db / 10))

    def optical_output(self, port, t):
        amplitude = math.sqrt(self.power_fraction(int(port[3:])))
        return [c.scaled(amplitude) for c in self.world.light_into(self.name, "in", t)]

    def state(self):
        return {"ports": self.n_ports, "excess_loss_db": self.excess_loss_db, "ratios": self.ratios.tolist()}


# -- microring weight bank ----------------------------------------------------------------------------


class RingBank(Component):
    """Thermally tuned microring weight bank (``type: ring_bank``).

    Ports: optical ``in`` (the input bus), ``through`` and ``drop`` (the common drop bus); electrical
    ``heater1..heaterN``, each a ``heater_resistance_ohm`` load (so a DC source output connected to it
    regulates I = V / R in constant-voltage mode). Wraps
    :class:`sim_backends.physics.microring.MicroringBank`: heater power P_k = V_k^2 / R from
    ``world.voltage_into``; resonance shifts (d lambda / dP) K P with the thermal crosstalk matrix K;
    each carrier gets the bank's drop or through power transmission at its wavelength. Defaults are the
    module's: 4 rings spread over a 9 nm FSR from 1550 nm, Q_L 10^4, 20 dB through extinction,
    0.2 nm/mW, 5 % nearest-neighbour thermal crosstalk, 500 ohm heaters (Tait et al., IEEE JSTQE 22(6)
    (2016); Opt. Express 26, 26422 (2018); Padmaraju & Bergman, Nanophotonics 3, 269 (2014)).
    """

    def __init__(self, name: str, n_rings: int = 4, resonance_wavelengths=None, fsr_m: float = 9e-9,
                 q_loaded: float = 1e4, extinction_db: float | None = 20.0, tuning_nm_per_mw: float = 0.2,
                 crosstalk_fraction: float = 0.05, heater_resistance_ohm: float = 500.0, crosstalk_matrix=None):
        self.name = name
        self.bank = MicroringBank(n_rings, resonance_wavelengths, fsr_m, q_loaded, extinction_db, tuning_nm_per_mw,
                                  crosstalk_fraction, heater_resistance_ohm, crosstalk_matrix)
        self.n_rings = self.bank.n_rings

    def ports(self):
        out = {"in": OPTICAL_IN, "through": OPTICAL_OUT, "drop": OPTICAL_OUT}
        out.update({f"heater{k}": ELECTRICAL_IN for k in range(1, self.n_rings + 1)})
        return out

    def input_resistance(self, port):
        return self.bank.heater_resistance_ohm

    def heater_powers(self, t) -> np.ndarray:
        """Heater powers V^2 / R in W: shape (n_rings,) when every drive is constant over ``t``,
        else (*shape(t), n_rings)."""
        volts = np.stack([self.world.voltage_into(self.name, f"heater{k}", t)  # each of t's shape
                          for k in range(1, self.n_rings + 1)], axis=-1)
        flat = volts.reshape(-1, self.n_rings)
        if flat.shape[0] == 0 or np.all(flat == flat[0]):
            return self.bank.heater_power(flat[0] if flat.shape[0] else np.zeros(self.n_rings))
        return self.bank.heater_power(volts)

    def optical_output(self, port, t):
        light = self.world.light_into(self.name, "in", t)
        if not light:
            return []
        powers = self.heater_powers(t)
        wavelengths = np.array([c.wavelength for c in light])
        response = self.bank.drop if port == "drop" else self.bank.through
        transmission = np.clip(response(wavelengths, powers), 0.0, None)  # (..., n_carriers)
        amplitude = np.sqrt(transmission)
        if powers.ndim == 1:
            return [c.scaled(float(a)) for c, a in zip(light, amplitude)]
        return [c.scaled(amplitude[..., k]) for k, c in enumerate(light)]

    def state(self):
        b = self.bank
        return {"n_rings": b.n_rings, "resonance_wavelengths": b.resonance_wavelengths.tolist(),
                "fsr_m": b.fsr_m, "q_loaded": b.q_loaded, "tuning_nm_per_mw": b.tuning_nm_per_mw,
                "heater_resistance_ohm": b.heater_resistance_ohm}


NETWORK_COMPONENTS: dict[str, type[Component]] = {
    "edfa": EDFAComponent,
    "awgr": AWGRComponent,
    "mux": Mux,
    "splitter": Splitter,
    "ring_bank": RingBank,
}
