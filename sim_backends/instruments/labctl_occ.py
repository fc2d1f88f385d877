"""Simulated OCC-16 optical core controller: its SCPI, its state and its wiring (docs/occ_protocol.md).

The controller (an RFSoC-class converter board with labctl firmware) drives a weight-stationary
optical core: fast DACs ``dac1..dacN_in`` -> RF drivers -> input MZMs (inputs "modulated into light"),
bias DACs ``bias1..`` -> the MZMs' DC electrodes, heater DACs ``heater<q>_<k>`` -> microring weight
banks, and ADCs ``adc1..adcN_out`` <- photodiodes. This module is the firmware's SCPI and what the
controller finds on the bench (through the World's public graph API); the numbers of a program come
from the symbol-level core model ``sim_backends.physics.stationary_core`` (its docstring: the physics,
and why symbol level).

What the controller measures from the bench physics for the model: the static network gains G[i, k, q]
(laser power into MZM k x transmission MZM k -> photodiode q during tile i, rings at that tile's heater
volts, with thermal crosstalk and every loss) and their slope against heater power, from ONE static
evaluation of the World per new heater row (cached by the state of every part upstream of the
photodiodes and the row); each input's delay to the photodiodes (paths from one input to different
photodiodes must share their delay to within half a slot, else NotImplementedError); the ISI taps and
noise bandwidth of its chain (DAC hold and analog bandwidth, the MZM's EO response, the photodiode,
the ADC front end and the firmware's averaging window); each photodiode's noise terms.

What a real controller adds (``sim.params``, validated; defaults cited):

* converters: ``inputs``/``outputs`` (16/16), ``dac_bits`` (14), ``dac_enob`` (10.0), ``dac_bandwidth_hz``
  (4e9), ``adc_bits`` (14), ``adc_enob`` (9.5), ``adc_bandwidth_hz`` (2e9), ``adc_sample_rate_hz`` (2.5e9),
  ``integration_window`` (0.6): RFSoC Gen3 class, 14-bit DAC/ADC, ~9-10 effective bits at low
  frequency, 2.5 GSa/s ADCs (AMD DS926 †); the ADC bandwidth is the board's anti-alias front end. The
  firmware averages the ADC samples within the central ``integration_window`` of each symbol
  (integrate-and-dump): the window's rect filters the noise and adds to the ISI taps, and the ADC's
  own noise is divided by the number of samples averaged; readings are reported as 16-bit codes.
* heater DACs: ``heater_dac_bits`` (16) over ``heater_range_v`` (10.0 V, unipolar): multi-channel
  precision DACs of the AD5370 (40 ch) / LTC2688 (16 ch) class are 16-bit with 10 V spans †; a table
  volt is applied as the nearest DAC level. ``heater_noise_v`` (50e-6 V rms): those DACs specify output
  noise densities of a few hundred nV/rtHz †; over a silicon ring's thermal bandwidth (time constant
  ~10 us, ~16 kHz) that is ~30-60 uV rms, drawn once per heater per tile (the ring's thermal low-pass
  averages faster noise within a tile).
* slow thermal drift: ``thermal_drift_k`` (0.002 K rms) and ``thermal_drift_time_s`` (30 s): the chip's
  temperature wanders as an Ornstein-Uhlenbeck process under a TEC controller (24-hour stability
  < 0.002 K of a Thorlabs TED200C-class controller †; silicon rings shift ~70-80 pm/K, Padmaraju &
  Bergman, Nanophotonics 3, 269 (2014)), acting on every ring like heater power dT / R_th with
  ``ring_thermal_resistance_k_per_w`` (2500 K/W: 0.2 nm/mW heater tuning / 80 pm/K). The drift runs on
  the core's own program clock (the time its programs take), so a core's readings do not depend on what
  other cores ran meanwhile; idle time between programs does not drift the rings.

Electrical draw (``electrical_power_w``; parameters in ``POWER``, settable in ``sim.params``): the
board's idle rails, ``idle_power_w`` (25 W, assumed: RFSoC evaluation boards of the ZCU216 class run
from a supply of the order of 100 W and idle at a few tens of watts); while a program runs, each fast
DAC ``dac_channel_power_w`` (0.5 W) and each ADC with its photodiode's TIA ``adc_channel_power_w`` +
``tia_channel_power_w`` (0.6 W + 0.1 W) (assumed, of the order of the per-channel figures of the AMD
RFSoC power estimator); the heater DACs' linear buffers take each heater's current V/R from a
``heater_rail_v`` (12 V) rail, so they draw rail x V/R (the ring's V^2/R plus the buffer's drop). The
bias electrodes of the MZMs are capacitive: no DC draw. The World integrates the draw on its clock;
during a program the heaters follow the table (its mean draw per tile), before and after they hold.
The draw is kept per rail, as the board's power monitors read it (``RAILS``, ``MEASure:RAIL:POWer?``):
SYSTEM the idle rails, DAC / ADC / TIA the converters and TIAs while a program runs, HEATER the heater
buffers; ``electrical_power_w`` (and ``MEASure:POWer?``) is exactly their sum: every figure above is a
draw from the board's supply, its regulators' losses included (a real board's monitors sit after the
regulators: docs/occ_protocol.md "Power monitors").

Noise is drawn from the core's own stream ``World.rng_for(<controller name>)``: derived from the bench
seed and the name, so cores run from several threads give the same readings in any order.
"""

from __future__ import annotations

import math
import pickle
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from sim_backends.instrument import SimInstrument
from sim_backends.physics.components import Fibre, MachZehnderModulator, Photodiode
from sim_backends.physics.converters import ADC, DAC, lowpass_response
from sim_backends.physics.electrical import RFAmplifier
from sim_backends.physics.power import DrawError, checked_w, linear_driver_draw_w, overlap_s
from sim_backends.physics.stationary_core import (Detector, InputChain, Readout, StationaryCore, chain_taps, detector,
                                                  launch, noise_bandwidth, ou_walk, referred_dac_noise)
from sim_backends.physics.validation import require_int, require_range
from sim_backends.scpi import MAX_ALLOCATION_BYTES, Call, CommandTree, Param, ScpiError, definite_block, format_number
from sim_backends.world import ELECTRICAL_IN, ELECTRICAL_OUT, OPTICAL_OUT, Lightwave

#: sim.params: name -> (kind, default, low, high)
PARAMETERS: dict[str, tuple[type, float, float, float]] = {
    "inputs": (int, 16, 1, 64),
    "outputs": (int, 16, 1, 64),
    "dac_bits": (int, 14, 4, 16),
    "adc_bits": (int, 14, 4, 16),
    "dac_enob": (float, 10.0, 0.0, 16.0),  # <= dac_bits (checked)
    "adc_enob": (float, 9.5, 0.0, 16.0),  # <= adc_bits (checked)
    "dac_bandwidth_hz": (float, 4e9, 1e6, 1e11),
    "adc_bandwidth_hz": (float, 2e9, 1e6, 1e11),
    "adc_sample_rate_hz": (float, 2.5e9, 1e6, 1e11),
    "integration_window": (float, 0.6, 0.0, 1.0),
    "heater_dac_bits": (int, 16, 8, 24),
    "heater_range_v": (float, 10.0, 1.0, 100.0),
    "heater_noise_v": (float, 50e-6, 0.0, 0.1),
    "thermal_drift_k": (float, 0.002, 0.0, 10.0),
    "thermal_drift_time_s": (float, 30.0, 1e-9, 1e6),
    "ring_thermal_resistance_k_per_w": (float, 2500.0, 1.0, 1e6),
}

#: SCPI settings: name -> (unit, low, high, default)
SETTINGS = {
    "symbol_rate": ("HZ", 1e6, 2.5e9, 1e9),
    "dac_amplitude": ("V", 0.05, 1.0, 0.5),
    "adc_range": ("V", 0.01, 2.0, 0.2),
    "adc_offset": ("V", -1.0, 1.0, 0.0),
    "heater_limit": ("V", 0.0, 10.0, 5.0),
    "settle_time": ("S", 1e-6, 1e-2, 2e-5),
    "input_advance": ("S", 0.0, 1e-3, 0.0),
}
BIAS_RANGE_V = 10.0
#: The board's power rails, in ``MEASure:RAIL:CATalog?`` order (docs/occ_protocol.md "Power monitors"):
#: everything idle, the fast DACs, the ADCs, the photodiodes' TIAs, the heater DACs' buffer rail
RAILS = ("SYSTEM", "DAC", "ADC", "TIA", "HEATER")
#: static-gain cache size in tiles (~4 kB each)
GAIN_CACHE_TILES = 50_000
#: symbol-level core models kept per path (one per combination of settings that programs alternate between)
_CORE_MODELS_KEPT = 16
MAX_SLOTS = 1 << 20
#: Largest program the simulated controller runs (docs/occ_protocol.md), in values per converter set:
#: T x S x max(N_in, N_out). A run holds float32 arrays of that size, so 2^25 values keeps each at half
#: of MAX_ALLOCATION_BYTES (and is labctl.opu's own largest program). Beyond: -223 on upload, -225 on INIT.
MAX_PROGRAM_VALUES = MAX_ALLOCATION_BYTES // 8
#: Largest heater table, in volts (held as float64): T x N_out x N_in <= 2^25. Beyond: -223.
MAX_TABLE_VALUES = MAX_ALLOCATION_BYTES // 8
#: ADC result codes per full-scale range (docs/occ_protocol.md: volts = offset + code / 65536 x range)
_CODES_PER_RANGE = 65536.0
#: heater-power step of the gains' slope evaluation: 1 uW moves a 0.2 nm/mW ring by 0.2 pm, ~1/400 of
#: its linewidth (first order), yet changes the gains ~1e-3, far above the light's float32 rounding
_SLOPE_STEP_W = 1e-6
#: spacing of the instants at which the static network is evaluated, one per heater row: the static physics
#: does not depend on them, and a laser's RIN over a 1 mHz sampling bandwidth (-145 dB/Hz: 2e-9 relative)
#: is below float32 resolution, so the gains carry no laser noise (the model adds it per slot)
_EVALUATION_SPACING_S = 1e3


@dataclass(frozen=True)
class Drive:
    """What a center's controller tells an edge's transmitter to launch for one program (data plane in
    simulation): its converter settings and the two numbers of its sampler that the edge's noise needs.

    ``bias_v``: the center's calibrated bias per modulator; ``gap_slots``: idle slots between tiles;
    ``rin_band_hz``: the noise bandwidth the center's ADC samples see (a laser's RIN per reading is
    RIN x this); ``dac_noise_referral``: DAC excess noise per sample -> per slot at the center's readings
    (``referred_dac_noise`` of the whole chain / the noise).
    """

    symbol_rate_hz: float
    dac_amplitude_v: float
    gap_slots: int
    bias_v: tuple[float, ...]
    rin_band_hz: float
    dac_noise_referral: float


#: A data-plane light source: (DAC codes (tiles, slots, N_in) int16, the drive) -> (light (tiles, slots, N_in)
#: W at the center's input port, idle light (N_in,) W, as :func:`sim_backends.physics.stationary_core.launch`;
#: light on no input's wavelength at the port (n, 2): wavelength m and power W of each carrier, e.g. the
#: spectral slices of an amplifier's ASE in both polarisations, (0, 2) without).
LightSource = Callable[[np.ndarray, Drive], tuple[np.ndarray, np.ndarray, np.ndarray]]
#: Most carriers of light on no input's wavelength a light source may deliver (an EDFA part has at most
#: 4096 ASE slices; several amplifiers in a link add theirs).
MAX_PORT_BACKGROUND_CARRIERS = 65536
#: Most light on no input's wavelength at an input port, W: 10 W (+40 dBm) is the highest saturated output
#: the EDFA model takes; an amplifier's ASE is part of its output.
MAX_PORT_BACKGROUND_W = 10.0
#: Wavelengths a carrier at the port may have, m (the optical range of the bench's parts).
PORT_WAVELENGTHS_M = (200e-9, 3e-6)


@dataclass
class _Path:
    """What the controller drives and reads, found by walking the bench graph once."""

    amps: list[RFAmplifier | None]
    mzms: list[MachZehnderModulator]
    photodiodes: list[Photodiode]
    delays: np.ndarray  # (n_in,) s, modulator output -> photodiodes
    rin: np.ndarray  # (n_in,) linear RIN (1/Hz) of the source lighting each modulator (0 if none)
    upstream: list[str]  # every other part whose state can change what reaches the photodiodes
    heater_ohm: np.ndarray  # (n_out, n_in) load on each heater DAC
    fibres: list[tuple[Fibre, ...]]  # per input: the fibres from its modulator to the photodiodes, in order


class SimLabctlOCC(SimInstrument):
    """OCC-16 optical core controller (labctl firmware on an RFSoC-class board), symbol level."""

    MODEL = "labctl.OCC16"
    IDN = ("LABCTL", "OCC-16", "1.0.0")
    TERMINATION = b"\n"
    POWER = {"idle_power_w": (25.0, 0.0, 1e4), "dac_channel_power_w": (0.5, 0.0, 100.0),
             "adc_channel_power_w": (0.6, 0.0, 100.0), "tia_channel_power_w": (0.1, 0.0, 100.0),
             "heater_rail_v": (12.0, 1.0, 200.0)}
    PARAMS = frozenset(PARAMETERS) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        values = _parameters({k: v for k, v in dict(params or {}).items() if k not in self.POWER})
        self.n_in, self.n_out = values["inputs"], values["outputs"]
        self.dac_bits, self.adc_bits = values["dac_bits"], values["adc_bits"]
        self.dac_enob, self.adc_enob = values["dac_enob"], values["adc_enob"]
        self.dac_bandwidth_hz, self.adc_bandwidth_hz = values["dac_bandwidth_hz"], values["adc_bandwidth_hz"]
        self.adc_sample_rate_hz = values["adc_sample_rate_hz"]
        self.integration_window = values["integration_window"]
        self.heater_dac_bits, self.heater_range_v = values["heater_dac_bits"], values["heater_range_v"]
        self.heater_noise_v = values["heater_noise_v"]
        self.thermal_drift_k, self.thermal_drift_time_s = values["thermal_drift_k"], values["thermal_drift_time_s"]
        self.ring_thermal_resistance_k_per_w = values["ring_thermal_resistance_k_per_w"]
        self._wired: tuple | None = None
        self._path: tuple[int, _Path] | None = None  # (state of the parts upstream, path)
        self._core_models: tuple[_Path, dict] | None = None  # (the path they were built on, models by settings)
        #: ISI taps, noise bandwidths and detectors, keyed by every parameter they depend on
        self._cache: dict[tuple, Any] = {}
        self._heater_ports = {f"heater{q}_{k}": (q - 1, k - 1) for q in range(1, self.n_out + 1)
                              for k in range(1, self.n_in + 1)}
        self._tile_of: tuple | None = None
        #: static network gains, background and slope per (state of the core's other parts, heater row):
        #: a layer's weights come back at every step of a diffusion model; the same state has the same physics
        self._gain_cache: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        #: the last program's stacked gains, background and slope with its key: a layer's next step sends the
        #: same table again, so it skips one cache lookup per tile
        self._last_gains: tuple[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        #: the chip's temperature offset (K) and the core's program clock (s) when it was last drawn
        self._drift = (0.0, 0.0)
        #: programs on the simulated clock not yet integrated by the World: (start s, end s, each rail's
        #: power in W while running, ``RAILS`` order)
        self._runs: list[tuple[float, float, tuple[float, ...]]] = []
        self._heater_load: tuple[int, np.ndarray] | None = None  # (world wiring version, ohms [q, k])
        #: (state of the parts upstream, W per input at the center's input port per unit modulator transmission)
        self._port_link: tuple[int, np.ndarray] | None = None
        self._light_source: LightSource | None = None
        #: the last data-plane program's received power against this core's own reference link (1: the same)
        self.last_edge_power_ratio: float | None = None
        #: the last data-plane program's light on no input's wavelength at each photodiode (W, mean over tiles)
        self.last_edge_background_w: np.ndarray | None = None
        #: light at each photodiode per W of each carrier at the input port, per (state upstream, heater row,
        #: the carriers' wavelengths): an edge sends the same ASE with every program
        self._port_background_cache: dict[tuple, np.ndarray] = {}
        super().__init__(name, world, params, serial)
        if self.power_params["heater_rail_v"] < self.heater_range_v:
            raise ValueError(f"heater_rail_v={self.power_params['heater_rail_v']!r} is below heater_range_v="
                             f"{self.heater_range_v!r}: the heater DACs cannot drive above their rail")

    # -- ports ----------------------------------------------------------------------------------------

    def ports(self):
        out = {f"dac{k}": ELECTRICAL_OUT for k in range(1, self.n_in + 1)}
        out.update({f"bias{k}": ELECTRICAL_OUT for k in range(1, self.n_in + 1)})
        out.update({f"heater{q}_{k}": ELECTRICAL_OUT for q in range(1, self.n_out + 1) for k in range(1, self.n_in + 1)})
        out.update({f"adc{q}": ELECTRICAL_IN for q in range(1, self.n_out + 1)})
        return out

    # -- commands -------------------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        tree.add("CORE:INPuts", getter=lambda c: str(self.n_in))
        tree.add("CORE:OUTPuts", getter=lambda c: str(self.n_out))
        for name, header in (("symbol_rate", "SYMBol:RATE"), ("dac_amplitude", "DAC:AMPLitude"),
                             ("adc_range", "ADC:RANGe"), ("adc_offset", "ADC:OFFSet"),
                             ("heater_limit", "HEATer:LIMit"), ("settle_time", "TILE:SETTle"),
                             ("input_advance", "INPut:ADVance")):
            tree.add(header, setter=lambda c, n=name: self._set_number(c, n),
                     getter=lambda c, n=name: self._get_number(c, n))
        tree.add("TILE:SLOTs", setter=self._set_slots, getter=lambda c: str(self.slots))
        tree.add("BIAS:VOLTage", setter=self._set_bias, getter=self._get_bias)
        tree.add("HEATer:TABLe", setter=self._set_table)
        tree.add("HEATer:TABLe:COUNt", getter=lambda c: str(0 if self.table is None else self.table.shape[0]))
        tree.add("INPut:DATA", setter=self._set_inputs)
        tree.add("INPut:DATA:COUNt", getter=lambda c: str(0 if self.inputs is None else self.inputs.size))
        tree.add("OUTPut[:STATe]", setter=self._set_output, getter=lambda c: "1" if self.enabled else "0")
        tree.add("INITiate[:IMMediate]", setter=self._initiate)
        tree.add("FETCh:DATA", getter=self._fetch)
        tree.add("FETCh:DATA:COUNt", getter=lambda c: str(0 if self.result is None else self.result.size))
        tree.add("MEASure:RAIL:CATalog", getter=self._rail_catalog)
        tree.add("MEASure:RAIL:POWer", getter=self._rail_powers)
        tree.add("MEASure:POWer", getter=self._board_power)

    def reset(self) -> None:
        for name, (_, _, _, default) in SETTINGS.items():
            setattr(self, name, default)
        self.slots = 1024
        self.bias = np.zeros(self.n_in)
        self.enabled = False
        self.table: np.ndarray | None = None
        self.inputs: np.ndarray | None = None
        self.result: np.ndarray | None = None
        self._held = np.zeros((self.n_out, self.n_in))  # heater volts held after the last tile
        self._schedule: tuple[float, float, np.ndarray] | None = None  # (t0, tile period, table) while running

    def _set_number(self, call: Call, name: str) -> None:
        call.expect(1)
        unit, low, high, default = SETTINGS[name]
        setattr(self, name, call.param().number(unit, low, high, default))
        self.result = None

    def _get_number(self, call: Call, name: str) -> str:
        call.expect(0)
        return format_number(getattr(self, name), 9, sign=True)

    def _set_slots(self, call: Call) -> None:
        call.expect(1)
        self.slots = call.param().integer(1, MAX_SLOTS, 1024)
        self.result = None

    def _channels(self, param: Param) -> list[int]:
        text = param.text.strip().replace(" ", "")
        if not (text.startswith("(@") and text.endswith(")")):
            raise ScpiError(-104, f"expected a channel list (@...), got {param.text!r}")
        channels = []
        for item in text[2:-1].split(","):
            first, _, last = item.partition(":")
            try:
                a, b = int(first), int(last or first)
            except ValueError:
                raise ScpiError(-104, f"bad channel list item {item!r}") from None
            for ch in (a, b):
                if not 1 <= ch <= self.n_in:
                    raise ScpiError(-222, f"channel {ch} not installed (1..{self.n_in})")
            channels.extend(range(a, b + (1 if b >= a else -1), 1 if b >= a else -1))
        return channels

    def _split_channels(self, call: Call) -> tuple[list[Param], list[int]]:
        params = list(call.params)
        start = next((i for i, p in enumerate(params) if p.text.strip().startswith("(")), None)
        if start is None:
            raise ScpiError(-109, "missing channel list (@<chanlist>)")
        joined = Param(",".join(p.text for p in params[start:]))
        return params[:start], self._channels(joined)

    def _set_bias(self, call: Call) -> None:
        head, channels = self._split_channels(call)
        if len(head) != 1:
            raise ScpiError(-109 if not head else -108)
        volts = head[0].number("V", -BIAS_RANGE_V, BIAS_RANGE_V, 0.0)
        for ch in channels:
            self.bias[ch - 1] = volts
        self.result = None

    def _get_bias(self, call: Call) -> str:
        head, channels = self._split_channels(call)
        if head:
            raise ScpiError(-108)
        return ",".join(format_number(self.bias[ch - 1], 9, sign=True) for ch in channels)

    def _set_table(self, call: Call) -> None:
        call.expect(1)
        raw = call.param().binary()
        per_tile = self.n_out * self.n_in * 4
        if len(raw) == 0 or len(raw) % per_tile:
            raise ScpiError(-223, f"heater table of {len(raw)} bytes is not a whole number of tiles "
                                  f"({per_tile} bytes each: {self.n_out} x {self.n_in} float32)")
        if len(raw) // 4 > MAX_TABLE_VALUES:
            raise ScpiError(-223, f"heater table of {len(raw) // per_tile} tiles; the controller holds at most "
                                  f"{MAX_TABLE_VALUES // (self.n_out * self.n_in)}: split the program")
        table = np.frombuffer(raw, dtype="<f4").astype(float).reshape(-1, self.n_out, self.n_in)
        if not np.all(np.isfinite(table)) or table.min() < 0.0 or table.max() > self.heater_limit:
            raise ScpiError(-222, f"heater volts must lie in [0, {self.heater_limit:g}] V (HEATer:LIMit)")
        self.table = table
        self.result = None

    def _set_inputs(self, call: Call) -> None:
        call.expect(1)
        raw = call.param().binary()
        if len(raw) % (2 * self.n_in):
            raise ScpiError(-223, f"input data of {len(raw)} bytes is not a whole number of slots "
                                  f"({2 * self.n_in} bytes each: {self.n_in} int16 codes)")
        if len(raw) // 2 > MAX_PROGRAM_VALUES:
            raise ScpiError(-223, f"{len(raw) // 2} input codes; the controller holds at most {MAX_PROGRAM_VALUES}: "
                                  "split the program")
        self.inputs = np.frombuffer(raw, dtype="<i2")  # read-only on the block's own bytes: no copy of MBs
        self.result = None

    def _set_output(self, call: Call) -> None:
        call.expect(1)
        self.enabled = call.param().boolean()
        self.result = None

    def _fetch(self, call: Call) -> bytes:
        call.expect(0)
        if self.result is None:
            raise ScpiError(-230, "no results: run the program (INITiate) after the last change")
        return definite_block(memoryview(self.result.astype("<i2", copy=False)).cast("B"))  # no copy before the block

    # -- physics: outputs the bench graph pulls ---------------------------------------------------------

    def electrical_output(self, port: str, t: np.ndarray) -> np.ndarray:
        shape = np.shape(t)
        if not self.enabled or port.startswith("dac"):
            return np.zeros(shape)  # the fast DACs idle at 0 V; during a run the slots are applied below
        if port.startswith("bias"):
            return np.full(shape, self.bias[int(port[4:]) - 1])
        q, k = self._heater_ports[port]
        if self._schedule is None:
            return np.full(shape, self._held[q, k])
        t0, period, table = self._schedule
        cached = self._tile_of
        if cached is None or cached[0] is not t:  # every heater of a bank is asked at the same instants
            tile = np.floor((np.asarray(t, dtype=float) - t0) / period).astype(np.int64)
            np.clip(tile, 0, table.shape[0] - 1, out=tile)
            self._tile_of = cached = (t, tile)
        return table[cached[1], q, k]

    def _heater_levels(self, volts: np.ndarray) -> np.ndarray:
        """The heater DACs' output for table volts: the nearest of 2^bits levels over the heater range."""
        lsb = self.heater_range_v / 2**self.heater_dac_bits
        return np.clip(np.round(np.asarray(volts, dtype=float) / lsb), 0, 2**self.heater_dac_bits - 1) * lsb

    # -- electrical draw -----------------------------------------------------------------------------------

    def _heater_ohms(self) -> np.ndarray:
        """What each heater output drives, in ohm (inf when open), re-read when the bench is rewired."""
        version = self.world.wiring_version
        if self._heater_load is None or self._heater_load[0] != version:
            ohms = np.array([[self.world.load_on(self.name, f"heater{q}_{k}") for k in range(1, self.n_in + 1)]
                             for q in range(1, self.n_out + 1)])
            self._heater_load = (version, ohms)
        return self._heater_load[1]

    def _heater_draw_w(self, volts: np.ndarray) -> float:
        """Rail power of the heater DACs at ``volts`` ([..., q, k]; summed over every leading index)."""
        return linear_driver_draw_w(volts, self._heater_ohms(), self.power_params["heater_rail_v"])

    def _resting_rails_w(self) -> tuple[float, ...]:
        """Each rail's power (W, ``RAILS`` order) between programs: the idle rails, converters and TIAs
        idle, heaters holding the last row (with the outputs off every DAC is at 0 V)."""
        held = self._heater_draw_w(self._held) if self.enabled else 0.0
        return (self.power_params["idle_power_w"], 0.0, 0.0, 0.0, held)

    def _running_draw_w(self, rows: np.ndarray) -> tuple[float, ...]:
        """Each rail's power (W, ``RAILS`` order) while a program of heater ``rows`` runs: the idle
        rails, every fast DAC, ADC and TIA, and the heaters at the table's mean draw (tiles last equally
        long)."""
        p = self.power_params
        return (p["idle_power_w"], self.n_in * p["dac_channel_power_w"], self.n_out * p["adc_channel_power_w"],
                self.n_out * p["tia_channel_power_w"], self._heater_draw_w(rows) / rows.shape[0])

    def rail_powers_w(self) -> dict[str, float]:
        """What each rail's monitor reads now, in W (``RAILS`` order): a program's rails while the clock
        is inside it (another core may have moved the clock into it), else the resting rails."""
        with self.world.lock:  # the clock and the programs, as one instant
            now = self.world.time
            rails = next((r for start, end, r in self._runs if start <= now < end), None)
            return dict(zip(RAILS, rails if rails is not None else self._resting_rails_w()))

    def _rail_catalog(self, call: Call) -> str:
        call.expect(0)
        return ",".join(f'"{rail}"' for rail in RAILS)

    def _rail_powers(self, call: Call) -> str:
        call.expect(0)
        return ",".join(format_number(w) for w in self.rail_powers_w().values())

    def _board_power(self, call: Call) -> str:
        call.expect(0)
        return format_number(self.electrical_power_w())

    def electrical_power_w(self) -> float:
        """The board's draw now: exactly the sum of its rails (each rail's figure is its draw from the
        supply, its regulator's loss included), piecewise constant between state changes."""
        return checked_w(self.name, math.fsum(self.rail_powers_w().values()))

    def energy_between_j(self, start_s: float, end_s: float) -> float:
        """The programs' rails over the part of the step they cover; the resting rails over the rest.
        Called by the World in clock order, so programs it has passed are forgotten."""
        if end_s < start_s:
            raise DrawError(f"{self.name}: an energy interval cannot end ({end_s} s) before it starts ({start_s} s)")
        covered = energy = 0.0
        for start, end, rails in self._runs:
            part = overlap_s(start_s, end_s, (start, end))
            covered += part
            energy += part * math.fsum(rails)
        energy += math.fsum(self._resting_rails_w()) * max(0.0, end_s - start_s - covered)
        self._runs = [run for run in self._runs if run[1] > end_s]
        return energy

    # -- the run ------------------------------------------------------------------------------------------

    def _initiate(self, call: Call) -> None:
        call.expect(0)
        if not self.enabled:
            raise ScpiError(-221, "outputs are off: OUTPut ON first")
        if self.table is None:
            raise ScpiError(-221, "no heater table: send HEATer:TABLe first")
        if self.table.max() > self.heater_limit:
            raise ScpiError(-221, f"the heater table reaches {self.table.max():g} V, above HEATer:LIMit "
                                  f"{self.heater_limit:g} V (lowered after the table was loaded)")
        tiles = self.table.shape[0]
        expected = tiles * self.slots * self.n_in
        if tiles * self.slots * max(self.n_in, self.n_out) > MAX_PROGRAM_VALUES:
            raise ScpiError(-225, f"{tiles} tiles x {self.slots} slots x {max(self.n_in, self.n_out)} converters "
                                  f"exceed the {MAX_PROGRAM_VALUES} values a program may hold: split the program")
        if self.inputs is None or self.inputs.size != expected:
            got = 0 if self.inputs is None else self.inputs.size
            raise ScpiError(-221, f"input data holds {got} codes; the program needs {expected} "
                                  f"({tiles} tiles x {self.slots} slots x {self.n_in} inputs)")
        self.result = self._run(self.table, self.inputs.reshape(tiles, self.slots, self.n_in))
        self._held = self._heater_levels(self.table[-1])

    def _run(self, table: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """ADC codes (tiles, slots, N_out) of one program: heater rows and input codes per tile."""
        tiles, slots = codes.shape[0], codes.shape[1]
        rate = self.symbol_rate
        period = self.settle_time + slots / rate
        rows = self._heater_levels(table)
        with self.world.lock:  # the shared world (clock, memo); the slot work below runs unlocked
            state, path = self._find_path()
            t0 = self.world.time
            gains, background, slope = self._cached_gains(path, state, t0, rows)
            bias = [float(self.world.voltage_into(m.name, "bias", np.array([t0]))[0]) for m in path.mzms]
            # the program occupies [t0, t0 + tiles x period] of the clock from now: its draw counts there
            # even if another core (another thread) moves the clock meanwhile
            run = (t0, t0 + tiles * period, self._running_draw_w(rows))
            self._runs.append(run)
            source = self._light_source
            link = self._reference_link(path, state, t0) if source is not None else None
        try:
            rng = self.world.rng_for(self.name)  # this core's own stream: independent of other cores and threads
            heater_error = self._heater_errors(path, rows, period, rng)
            if source is None:
                core = self._core(path, bias)
                volts = np.multiply(codes, np.float32(self.dac_amplitude / 2 / 32767), dtype=np.float32)
                readings = core.readings(volts, gains, background, rng, gain_slope=slope, heater_error_w=heater_error)
            else:
                readings = self._detect_light(source, path, bias, link, codes, gains, (state, t0, rows), slope,
                                              heater_error, rng)
        except BaseException:
            with self.world.lock:  # a program that failed did not run
                self._runs.remove(run)
            raise
        code = readings  # in place: the readings are this run's own array
        code -= np.float32(self.adc_offset)
        code *= np.float32(_CODES_PER_RANGE / self.adc_range)
        np.clip(np.rint(code, out=code), -32767, 32767, out=code)
        with self.world.lock:  # cores running in parallel share the clock: it never goes back
            self.world.advance_to(t0 + tiles * period)
        return code.astype(np.int16)

    # -- the data plane in simulation -----------------------------------------------------------------

    def set_light_source(self, source: LightSource | None) -> None:
        """Take the inputs' light from ``source`` (an edge's transmitter and link) instead of this bench's own
        input chain, until set back to None. Each program's DAC codes and :class:`Drive` go to the source;
        its light enters at the core's broadcast splitter (the first part downstream of the modulators that
        fans out), and the center's own network, receivers and ADCs from there on read it."""
        self._light_source = source

    def _drive(self, path: _Path, bias: list[float]) -> Drive:
        """The settings an edge needs to launch this controller's programs (see :class:`Drive`)."""
        pd0 = path.photodiodes[0]
        dac_noise = self._dac().excess_noise_rms()
        referral = 1.0
        if dac_noise > 0:
            referral = self._taps(path.mzms[0], pd0, 0.0, dac_noise)[2] / dac_noise
        return Drive(symbol_rate_hz=float(self.symbol_rate), dac_amplitude_v=float(self.dac_amplitude),
                     gap_slots=int(round(self.settle_time * self.symbol_rate)), bias_v=tuple(float(b) for b in bias),
                     rin_band_hz=float(self._band(pd0)), dac_noise_referral=float(referral))

    def _detect_light(self, source: LightSource, path: _Path, bias: list[float], link: np.ndarray, codes: np.ndarray,
                      gains, program: tuple, slope, heater_error, rng) -> np.ndarray:
        """Readings of a program whose light comes from ``source``: the gains from the input port on, and the
        light on no input's wavelength that the port's carriers bring to each photodiode as its background.
        ``program``: (state of the parts upstream, the program's start, its heater rows), which key the
        network's response."""
        tiles, slots = codes.shape[:2]
        try:
            light, idle, carriers = source(codes, self._drive(path, bias))
        except Exception as exc:  # the light did not arrive: the program fails as on a dark input port
            raise ScpiError(-240, f"no light from the edge: {type(exc).__name__}: {exc}") from None
        light, idle = np.asarray(light), np.asarray(idle)
        if light.shape != (tiles, slots, self.n_in) or idle.shape != (self.n_in,):
            raise ScpiError(-221, f"the edge's light has shape {light.shape} and {idle.shape}; the program needs "
                                  f"({tiles}, {slots}, {self.n_in}) and ({self.n_in},)")
        background = self._port_background(path, *program, _port_carriers(carriers))
        self.last_edge_background_w = background.mean(axis=0)
        per_port = np.divide(1.0, link, out=np.zeros_like(link), where=link > 0)[None, :, None]
        core = self._core(path, bias, aligned=True)
        readings = core.detect(light, idle, gains * per_port, background, rng, gain_slope=slope * per_port,
                               heater_error_w=heater_error)
        # the input monitor: the edge's light against what this core's own reference link delivers for the
        # same codes (noiseless), power-weighted over the inputs; the readings above the dark level are
        # scaled back by it after the ADC (a digital gain: the receiver's and the ADC's noise scale with it)
        volts = codes.astype(np.float32) * np.float32(self.dac_amplitude / 2 / 32767)
        expected = float(np.sum(core.modulator_powers(volts, None).mean(axis=(1, 2)) * link))
        ratio = float(light.mean(axis=(0, 1)).sum()) / expected if expected > 0 else 0.0
        self.last_edge_power_ratio = ratio
        if ratio > 0:
            rx = core.receiver_columns()
            zero = (background * rx["slope"][None, :] + rx["offset"][None, :])[:, None, :]
            readings -= zero
            readings *= np.float32(1.0 / ratio)
            readings += zero
        return readings

    def _port_background(self, path: _Path, state: int, t0: float, rows: np.ndarray,
                         carriers: np.ndarray) -> np.ndarray:
        """Background (tiles, N_out) W of a program whose input port carries ``carriers`` (n, 2: wavelength m,
        power W) besides the inputs' light: what reaches each photodiode with the port carrying those alone,
        heaters at each tile's row. The same static evaluation as the gains' (``_static_gains``), with the
        port's light replaced; the network is linear in power, so each carrier's transmission is kept per
        wavelength and reused for any power."""
        n = rows.shape[0]
        if not carriers.shape[0]:
            return np.zeros((n, self.n_out))
        keys = [(state, row.tobytes(), carriers[:, 0].tobytes()) for row in rows]
        response = np.stack(_rows_cached(self._port_background_cache, keys, rows,
                                         lambda new: self._port_response(path, t0, new, carriers[:, 0])))
        return np.einsum("isq,s->iq", response, carriers[:, 1])

    def _port_response(self, path: _Path, t0: float, rows: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
        """(rows, carriers, N_out): W at each photodiode per W of each carrier (distinct ``wavelengths``) at the
        input port, 1 W each; light reaching the photodiodes on other wavelengths is not the port's."""
        world = self.world
        node, port, _ = _broadcast_port(world, path.mzms)
        n, m = rows.shape[0], wavelengths.size
        response = np.zeros((n, m, self.n_out))
        column = {float(w): s for s, w in enumerate(wavelengths)}

        def port_light(t, light):
            """The port carries the listed carriers only, 1 W each (the inputs' light comes from the edge)."""
            return [Lightwave(float(w), np.ones(np.shape(t), dtype=complex)) for w in wavelengths]

        with world.lock:
            faults = world.input_faults.setdefault((node, port), [])
            faults.append(port_light)
            try:
                with self._heaters_per_row(t0, rows) as times, \
                        world.evaluation(static=True, rng=world.rng_for(f"{self.name}:port")):
                    for q, pd in enumerate(path.photodiodes):
                        for c in world.light_into(pd.name, "in", times):
                            s = column.get(float(c.wavelength))
                            if s is None:  # light that does not come through the port: not this response's
                                continue
                            response[:, s, q] += np.broadcast_to(c.power, times.shape)
            finally:
                faults.remove(port_light)
                if not faults:
                    del world.input_faults[(node, port)]
        return response

    def _reference_link(self, path: _Path, state: int, t0: float) -> np.ndarray:
        """W per input at the core's broadcast splitter per unit modulator transmission (laser power x the
        bench's own link from modulator to splitter): divides the static gains into the part before the
        center's input port and the part after it. Cached by the state of the parts upstream."""
        if self._port_link is not None and self._port_link[0] == state:
            return self._port_link[1]
        world = self.world
        node, port, before = _broadcast_port(world, path.mzms)
        times = t0 + (np.arange(1) + 0.5) * _EVALUATION_SPACING_S
        link = np.zeros(self.n_in)
        with world.evaluation(static=True, rng=world.rng_for(f"{self.name}:link")):
            for k, mzm in enumerate(path.mzms):
                light_in = world.light_into(mzm.name, "in", times)
                laser = sum(float(np.mean(c.power)) for c in light_in)
                leaving = times - sum(f.span.group_delay() for f in before[k])
                out = {c.wavelength: float(np.mean(c.power)) for c in world.evaluate(mzm.name, "out", leaving,
                                                                                      optical=True)}
                at_port = {c.wavelength: float(np.mean(c.power)) for c in world.light_into(node, port, times)}
                for c in light_in:
                    if out.get(c.wavelength, 0.0) > 0:
                        link[k] += laser * at_port.get(c.wavelength, 0.0) / out[c.wavelength]
        self._port_link = (state, link)
        return link

    def launch(self, codes: np.ndarray, drive: Drive) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The edge's half of the data plane: the light this controller's transmitter launches for a
        program of DAC ``codes`` (tiles, slots, N_in) at the center's ``drive`` settings, as it arrives at
        the end of this bench's link (the one optical output no part takes): ``(light, idle, background)``
        in W, ``background`` the link's light on no input's wavelength (an amplifier's ASE, as the spectral
        slices the bench's EDFA parts emit: (n, 2) wavelength m, power W; (0, 2) without an amplifier).
        The board's bias DACs take the drive's biases and its outputs are on, as while it launches: an
        amplifier in the link saturates on the mean power the modulators pass at those biases.

        Each input is launched on the center's slot grid (its own delay advanced: an edge drives each of
        its DACs, so unlike the center's common input advance it can skew them); the DAC, driver, modulator
        and laser RIN act with this board's converters and this bench's parts, noise from this controller's
        own stream."""
        codes = np.asarray(codes)
        if codes.ndim != 3 or codes.shape[2] != self.n_in:
            raise ScpiError(-221, f"codes must have shape (tiles, slots, {self.n_in}); got {codes.shape}")
        if len(drive.bias_v) != self.n_in:
            raise ScpiError(-221, f"the drive has {len(drive.bias_v)} biases; this transmitter has {self.n_in} inputs")
        with self.world.lock:
            self.bias = np.array(drive.bias_v, dtype=float)
            self.enabled = True
            amps, mzms = self._transmitter_wiring()
            link, background = self._edge_link(mzms)
            rin = [self._rin_of(m) for m in mzms]
        dac = DAC(bits=self.dac_bits, full_scale_v=drive.dac_amplitude_v, enob=self.dac_enob,
                  sample_rate=drive.symbol_rate_hz, bandwidth_hz=None)
        lsb = np.float32(2 ** (16 - self.dac_bits) * drive.dac_amplitude_v / 2 / 32767)
        chains = []
        for k, (mzm, amp) in enumerate(zip(mzms, amps)):
            chains.append(InputChain(
                quantise=lambda v, lsb=lsb: np.round(v / lsb) * lsb,
                modulator=lambda v, m=mzm, b=np.float32(drive.bias_v[k]): m.transmission(v, b),
                offsets=np.zeros(1, dtype=np.int64), taps=np.ones(1), noise_v=dac.excess_noise_rms() * drive.dac_noise_referral,
                rin=rin[k] * drive.rin_band_hz, **self._driver(mzm, amp)))
        volts = codes.astype(np.float32)
        volts *= np.float32(drive.dac_amplitude_v / 2 / 32767)
        light, idle = launch(chains, volts, link, self.world.rng_for(self.name), gap_slots=drive.gap_slots)
        return light, idle, background

    def _transmitter_wiring(self) -> tuple[list, list]:
        """DAC k -> [RF amplifier] -> modulator k, for a board that only transmits (an edge's)."""
        world = self.world
        amps, mzms = [], []
        for k in range(1, self.n_in + 1):
            node, port = _one(world.destinations_of(self.name, f"dac{k}"))
            amp = None
            if node is not None and isinstance(world.nodes[node], RFAmplifier):
                amp = world.nodes[node]
                node, port = _one(world.destinations_of(node, "out"))
            if node is None or not isinstance(world.nodes[node], MachZehnderModulator) or port != "rf":
                raise ScpiError(-241, f"dac{k} does not drive a modulator's rf port (through at most one RF "
                                      "amplifier): the transmitter is wired differently from what the controller runs")
            amps.append(amp)
            mzms.append(world.nodes[node])
        return amps, mzms

    def _edge_link(self, mzms: list[MachZehnderModulator]) -> tuple[np.ndarray, np.ndarray]:
        """W per input at the end of the link per unit modulator transmission (laser x link transmission), and
        the light on no input's wavelength there (n, 2: wavelength m, power W), from one static evaluation."""
        world = self.world
        times = world.time + (np.arange(1) + 0.5) * _EVALUATION_SPACING_S
        link = np.zeros(len(mzms))
        background: dict[float, float] = {}
        with world.evaluation(static=True, rng=world.rng_for(f"{self.name}:link")):
            inputs = {c.wavelength for m in mzms for c in world.light_into(m.name, "in", times)}
            for k, mzm in enumerate(mzms):
                node, port, fibres = _open_end(world, mzm)
                light_in = world.light_into(mzm.name, "in", times)
                if not light_in:
                    raise ScpiError(-221, f"no light into {mzm.name}: its laser is off")
                laser = sum(float(np.mean(c.power)) for c in light_in)
                leaving = times - sum(f.span.group_delay() for f in fibres)
                out = {c.wavelength: float(np.mean(c.power)) for c in world.evaluate(mzm.name, "out", leaving,
                                                                                      optical=True)}
                end = world.evaluate(node, port, times, optical=True)
                if k == 0:  # the inputs share the link after the mux: its other light is counted once
                    for c in end:
                        if c.wavelength not in inputs:
                            background[float(c.wavelength)] = background.get(float(c.wavelength), 0.0) + float(
                                np.mean(c.power))
                end_power = {c.wavelength: float(np.mean(c.power)) for c in end}
                for c in light_in:
                    if out.get(c.wavelength, 0.0) > 0:
                        link[k] += laser * end_power.get(c.wavelength, 0.0) / out[c.wavelength]
        return link, np.array(sorted(background.items()), dtype=np.float64).reshape(-1, 2)

    def _rin_of(self, mzm: MachZehnderModulator) -> float:
        """Linear RIN (1/Hz) of the source lighting ``mzm`` (0 if none)."""
        source = (self.world.source_of(mzm.name, "in") or (None, None))[0]
        rin_db = getattr(self.world.nodes[source], "rin_db_per_hz", None) if source else None
        return 0.0 if rin_db is None else 10 ** (rin_db / 10)

    def _dac(self) -> DAC:
        return DAC(bits=self.dac_bits, full_scale_v=self.dac_amplitude, enob=self.dac_enob, sample_rate=self.symbol_rate,
                   bandwidth_hz=None)

    @staticmethod
    def _driver(mzm: MachZehnderModulator, amp: RFAmplifier | None) -> dict[str, float]:
        """The InputChain's driver fields of an RF amplifier driving ``mzm`` (none: a direct drive)."""
        if amp is None:
            return {}
        share = 1.0
        if mzm.eo_filter is not None:
            share = min(1.0, mzm.eo_filter.noise_bandwidth() / amp.noise_bandwidth_hz)
        return dict(driver_gain=amp.voltage_gain, driver_saturation_v=amp.saturated_output_vpp / 2,
                    driver_noise_v=amp.noise_rms_v * math.sqrt(share))

    def _heater_errors(self, path: _Path, rows: np.ndarray, period: float, rng) -> np.ndarray:
        """Heater power error (W) of every ring per tile: DAC output noise and the chip's thermal drift."""
        tiles = rows.shape[0]
        error = np.zeros(rows.shape)
        if self.heater_noise_v > 0:
            dv = rng.standard_normal(rows.shape) * self.heater_noise_v
            error += (2 * rows * dv + dv * dv) / path.heater_ohm
        if self.thermal_drift_k > 0:
            temperature, clock = self._drift
            times = clock + self.settle_time + np.arange(tiles) * period
            drift = ou_walk(times, clock, temperature, self.thermal_drift_k, self.thermal_drift_time_s, rng)
            self._drift = (float(drift[-1]), clock + tiles * period)
            error += (drift / self.ring_thermal_resistance_k_per_w)[:, None, None]
        return error

    def _core(self, path: _Path, bias: list[float], aligned: bool = False) -> StationaryCore:
        """The symbol-level model of this core at the current settings (``aligned``: the inputs' light
        arrives on the slot grid, as an edge launches it). Kept for the path it was built on (the parts
        upstream, with their settings), by the biases, the photodiodes' receivers (dark current and noise too)
        and all of this controller's scalar settings (all of them, so that a setting added later cannot leave
        a stale model; the few that programs change, such as the slots per tile, get a model each)."""
        if self._core_models is None or self._core_models[0] is not path:  # the parts upstream changed
            self._core_models = (path, {})
        models = self._core_models[1]
        settings = tuple((k, v) for k, v in vars(self).items()
                         if not k.startswith("_") and isinstance(v, (bool, int, float, str)))
        receivers = tuple(_receiver_key(pd.receiver) for pd in path.photodiodes)  # beyond what state() holds
        key = (tuple(float(b) for b in bias), aligned, settings, receivers)
        model = models.get(key)
        if model is None:
            if len(models) >= _CORE_MODELS_KEPT:
                models.clear()
            model = models[key] = self._build_core(path, bias, aligned)
        return model

    def _build_core(self, path: _Path, bias: list[float], aligned: bool) -> StationaryCore:
        rate = self.symbol_rate
        gap = int(round(self.settle_time * rate))  # idle slots between tiles (for the slot timeline)
        # slot shift of each input: the light of input slot s reaches the detectors delay later; the
        # program launched it input_advance early
        mismatch = np.zeros(self.n_in) if aligned else (path.delays - self.input_advance) * rate
        shift = np.round(mismatch).astype(np.int64)
        fraction = mismatch - shift
        step = 2 ** (16 - self.dac_bits)
        amplitude = self.dac_amplitude
        lsb = np.float32(step * amplitude / 2 / 32767)
        dac_noise = self._dac().excess_noise_rms()
        pd0 = path.photodiodes[0]
        band0 = self._band(pd0)  # laser RIN over the noise bandwidth the ADC sees
        inputs = []
        for k, (mzm, amp) in enumerate(zip(path.mzms, path.amps)):
            offsets, taps, referred = self._taps(mzm, pd0, float(fraction[k]), dac_noise)
            driver = self._driver(mzm, amp)
            inputs.append(InputChain(
                quantise=lambda v, lsb=lsb: np.round(v / lsb) * lsb,
                # float32 bias: the transfer is evaluated in the drive's single precision (1e-7 of a phase)
                modulator=lambda v, m=mzm, b=np.float32(bias[k]): m.transmission(v, b),
                offsets=offsets, taps=taps, noise_v=referred, shift=int(shift[k]), rin=float(path.rin[k] * band0),
                **driver))
        adc = ADC(bits=self.adc_bits, full_scale_v=self.adc_range, enob=self.adc_enob,
                  sample_rate=self.adc_sample_rate_hz, bandwidth_hz=None)
        # the average of N samples: excess (ENOB) and quantisation noise, independent per sample, / sqrt(N)
        adc_noise = math.sqrt(adc.excess_noise_rms() ** 2 + adc.lsb_v ** 2 / 12) / math.sqrt(self._samples_averaged())
        return StationaryCore(inputs, [self._detector(pd) for pd in path.photodiodes],
                              Readout(self.adc_offset, self.adc_range, adc_noise), gap_slots=gap)

    def _find_path(self) -> tuple[int, _Path]:
        """What the controller drives and reads, and each input's delay to the photodiodes: found again
        whenever a part upstream of the photodiodes changes (a fibre's length moves the delays, a laser
        turned on sets its carrier's walk-off), else reused. Returns (fingerprint of that state, path)."""
        amps, mzms, pds, upstream, heater_ohm = self._wiring()
        state = self._state_key(upstream)
        if self._path is not None and self._path[0] == state:
            return self._path
        found = [self._delay_to_photodiodes(m, pds) for m in mzms]
        rin = [self._rin_of(m) for m in mzms]
        path = _Path(amps, mzms, pds, np.array([delay for delay, _ in found]), np.array(rin), upstream, heater_ohm,
                     [fibres for _, fibres in found])
        self._path = (state, path)
        return self._path

    def _wiring(self) -> tuple:
        """Walk the bench graph once (its wiring is fixed when the bench is built): DAC k -> [RF amplifier]
        -> MZM k rf; ADC q <- photodiode q; the parts upstream of the photodiodes; the heaters' loads."""
        if self._wired is not None:
            return self._wired
        world = self.world
        amps, mzms = self._transmitter_wiring()
        pds = []
        for q in range(1, self.n_out + 1):
            node, _ = world.source_of(self.name, f"adc{q}") or (None, None)
            if node is None or not isinstance(world.nodes[node], Photodiode):
                raise ScpiError(-241, f"adc{q} is not fed by a photodiode")
            pds.append(world.nodes[node])
        upstream = set().union(*(world.upstream_nodes(pd.name) | {pd.name} for pd in pds)) - {self.name}
        heater_ohm = np.array([[world.load_on(self.name, f"heater{q}_{k}") for k in range(1, self.n_in + 1)]
                               for q in range(1, self.n_out + 1)])
        self._wired = (amps, mzms, pds, sorted(upstream), heater_ohm)
        return self._wired

    def _delay_to_photodiodes(self, mzm: MachZehnderModulator,
                              pds: list[Photodiode]) -> tuple[float, tuple[Fibre, ...]]:
        """(group delay from ``mzm``'s output to the photodiodes, one value per input, at its carrier's
        wavelength (the fibres' reference wavelength while it is dark); the fibres on the way, in order)."""
        world = self.world
        carriers = [c.wavelength for c in world.light_into(mzm.name, "in", np.zeros(1))]
        wavelengths = carriers or [None]
        targets = {pd.name for pd in pds}
        found: dict[str, tuple[Fibre, ...]] = {}
        stack: list[tuple[tuple[str, str], tuple[Fibre, ...]]] = [((mzm.name, "out"), ())]
        seen = set()
        while stack:
            (node, port), fibres = stack.pop()
            for dest in world.destinations_of(node, port):
                if dest in seen:
                    continue
                seen.add(dest)
                comp = world.nodes[dest[0]]
                on_way = fibres + ((comp,) if isinstance(comp, Fibre) else ())
                if dest[0] in targets:
                    found[dest[0]] = on_way
                    continue
                for out_port, kind in comp.ports().items():
                    if kind == OPTICAL_OUT:
                        stack.append(((dest[0], out_port), on_way))
        if not found:
            return 0.0, ()
        values = np.array([sum(float(f.span.group_delay(wavelengths[0])) for f in way) for way in found.values()])
        if np.ptp(values) * self.symbol_rate > 0.5:
            raise NotImplementedError(
                f"light from {mzm.name} reaches the photodiodes over paths whose delays differ by "
                f"{np.ptp(values) * 1e9:.2f} ns (> half a symbol): the symbol-level core needs one delay per input")
        return float(values.mean()), next(iter(found.values()))

    def _state_key(self, upstream: list[str]) -> int:
        """Fingerprint of the settings of the parts ``upstream`` of this core's photodiodes (lasers,
        modulators, fibres, rings...; not this controller, whose heater rows key the gains). Pickled, not
        printed: the same exact values at a third of the cost of ``repr`` on every program."""
        return hash(pickle.dumps([(name, self.world.nodes[name].state()) for name in upstream], protocol=5))

    def _cached_gains(self, path: _Path, state: int, t0: float,
                      rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Static gains, background and gain slope per tile, evaluating the physics only for heater rows
        not seen in ``state`` (the fingerprint of the parts upstream of the photodiodes)."""
        sloped = self.heater_noise_v > 0 or self.thermal_drift_k > 0  # the slope is only needed for heater errors
        whole = (state, sloped, rows.shape, rows.tobytes())
        if self._last_gains is not None and self._last_gains[0] == whole:
            return self._last_gains[1]
        def evaluate(new: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            n = new.shape[0]
            if sloped:  # the same rows with every heater's power raised by one step: the gains' slope
                new = np.concatenate([new, np.sqrt(new**2 + _SLOPE_STEP_W * path.heater_ohm)])
            gains, background = self._static_gains(path, t0, new)
            slope = (gains[n:] - gains[:n]) / _SLOPE_STEP_W if sloped else np.zeros_like(gains)
            return list(zip(gains[:n], background[:n], slope))

        entries = _rows_cached(self._gain_cache, [(state, sloped, row.tobytes()) for row in rows], rows, evaluate)
        stacked = tuple(np.stack([entry[i] for entry in entries]) for i in range(3))
        for array in stacked:
            array.flags.writeable = False  # handed to every later run of the same table
        self._last_gains = (whole, stacked)
        return stacked

    @contextmanager
    def _heaters_per_row(self, t0: float, rows: np.ndarray) -> Iterator[np.ndarray]:
        """The instants of a static evaluation, one per heater row from ``t0``, with the heaters at each row's
        settings at its instant; the heaters hold their settings again afterwards."""
        self._schedule = (t0, _EVALUATION_SPACING_S, rows)
        try:
            yield t0 + (np.arange(rows.shape[0]) + 0.5) * _EVALUATION_SPACING_S
        finally:
            self._schedule = None
            self._tile_of = None

    def _static_gains(self, path: _Path, t0: float, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """G[row, k, q] (W into MZM k x network transmission MZM k -> PD q) and background power
        [row, q] (W of light on no input's wavelength) with the heaters at ``rows``, from one static
        evaluation of the bench physics (one instant per row from ``t0``)."""
        world = self.world
        n = rows.shape[0]
        gains = np.zeros((n, self.n_in, self.n_out))
        background = np.zeros((n, self.n_out))
        # the noise the parts draw during this evaluation (the lasers' phase, the drivers' noise: it cancels in
        # the ratios below, but not their float32 rounding) comes from this core's own stream, so the gains do
        # not depend on what other cores drew before; the evaluation holds the world lock meanwhile
        # static: the heaters change per tile (us), nothing per ns
        with self._heaters_per_row(t0, rows) as times, \
                world.evaluation(static=True, rng=world.rng_for(f"{self.name}:network")):
            out, carrier, laser = [], [], []
            for mzm, fibres in zip(path.mzms, path.fibres):
                light_in = world.light_into(mzm.name, "in", times)
                laser.append(sum(float(np.mean(c.power)) for c in light_in))
                # the modulator's light at the instants the fibres ask it for (each delays by its group
                # delay in a static evaluation): the same drive-noise realisation as the light that
                # reaches the photodiodes, so the ratio below is the network's transmission exactly
                leaving = times
                for fibre in reversed(fibres):
                    leaving = leaving - fibre.span.group_delay()
                light_out = world.evaluate(mzm.name, "out", leaving, optical=True)
                out.append({c.wavelength: np.broadcast_to(c.power, times.shape) for c in light_out})
                carrier.append([c.wavelength for c in light_in])
            owner = {}
            for k, wavelengths in enumerate(carrier):
                for w in wavelengths:
                    if w in owner:
                        raise NotImplementedError(
                            f"inputs {owner[w] + 1} and {k + 1} share the wavelength {w * 1e9:.4f} nm: the "
                            "symbol-level core adds powers per carrier and needs distinct wavelengths")
                    owner[w] = k
            for q, pd in enumerate(path.photodiodes):
                for c in world.light_into(pd.name, "in", times):
                    power = np.broadcast_to(c.power, times.shape)
                    k = owner.get(c.wavelength)
                    if k is None:
                        background[:, q] += power
                        continue
                    p_out = out[k].get(c.wavelength)
                    ratio = np.divide(power, p_out, out=np.zeros(n), where=p_out > 0)
                    gains[:, k, q] += laser[k] * ratio
        return gains, background

    # -- the chain's filters and noise, cached by what they depend on ------------------------------------

    def _window_s(self) -> float:
        """Length of the averaging window in s (0: one sample at the symbol centre)."""
        return self.integration_window / self.symbol_rate

    def _samples_averaged(self) -> int:
        return max(1, int(self._window_s() * self.adc_sample_rate_hz))

    def _receiver_stages(self, pd: Photodiode) -> list:
        rx = pd.receiver
        return [lambda f: np.abs(lowpass_response(f, rx.bandwidth_hz, rx.response, rx.response_order)),
                lambda f: np.abs(lowpass_response(f, self.adc_bandwidth_hz, "butterworth", 4))]

    def _taps(self, mzm: MachZehnderModulator, pd: Photodiode, fraction: float,
              dac_noise: float) -> tuple[np.ndarray, np.ndarray, float]:
        """ISI taps of the chain DAC -> EO -> photodiode -> ADC front end -> window for light arriving
        ``fraction`` of a symbol after its slot, and the DAC noise referred to one value per slot."""
        fraction = round(fraction, 3)
        key = ("taps", mzm.eo_filter, _receiver_key(pd.receiver), self.symbol_rate, self.dac_bandwidth_hz,
               self.adc_bandwidth_hz, self._window_s(), fraction, dac_noise)
        if key not in self._cache:
            stages = [lambda f: np.abs(lowpass_response(f, self.dac_bandwidth_hz, "butterworth", 2))]
            if mzm.eo_filter is not None:
                stages.append(lambda f, e=mzm.eo_filter: np.abs(e.response(f)))
            stages += self._receiver_stages(pd)
            # zero-phase responses: the chain's delays are the fibres' (and the slot shift); the light of
            # the slot launched for slot s arrives ``fraction`` of a symbol late, so the ADC samples it at
            # 1/2 - fraction
            kw = dict(sample_time_s=(0.5 - fraction) / self.symbol_rate, window_s=self._window_s())
            offsets, taps = chain_taps(stages, self.symbol_rate, **kw)
            referred = referred_dac_noise(dac_noise, stages, self.symbol_rate, **kw)
            self._cache[key] = (offsets, taps, referred)
        return self._cache[key]

    def _band(self, pd: Photodiode) -> float:
        """Noise bandwidth (Hz) the ADC's samples see behind photodiode ``pd``: receiver, ADC front end
        and the averaging window."""
        rx = pd.receiver
        key = ("band", _receiver_key(rx), self.adc_bandwidth_hz, self._window_s())
        if key not in self._cache:
            self._cache[key] = noise_bandwidth(self._receiver_stages(pd), [rx.bandwidth_hz, self.adc_bandwidth_hz],
                                               window_s=self._window_s())
        return self._cache[key]

    def _detector(self, pd: Photodiode) -> Detector:
        rx = pd.receiver
        key = ("detector", _receiver_key(rx), self.adc_bandwidth_hz, self._window_s())
        if key not in self._cache:
            self._cache[key] = detector(rx, self._band(pd))
        return self._cache[key]


def _rows_cached(cache: dict, keys: list, rows: np.ndarray, compute: Callable[[np.ndarray], Any]) -> list:
    """The value of each of ``rows`` (heater rows; ``keys`` theirs) from ``cache``, the missing ones computed in one
    call, each distinct row once (``compute(new_rows)``: one value per row); the cache keeps the newest
    ``GAIN_CACHE_TILES`` entries."""
    missing: dict = {}
    for i, key in enumerate(keys):
        if key not in cache:
            missing.setdefault(key, i)
    if missing:
        new = rows[np.fromiter(missing.values(), dtype=np.int64)]
        for key, value in zip(missing, compute(new)):
            cache[key] = value
    values = [cache[key] for key in keys]
    while len(cache) > GAIN_CACHE_TILES:
        cache.pop(next(iter(cache)))
    return values


def _receiver_key(rx) -> tuple:
    """Every parameter of a photodiode's receiver model that its taps and noise depend on."""
    return (rx.responsivity, rx.dark_current, rx.bandwidth_hz, rx.response, rx.response_order, rx.gain_ohm,
            rx.thermal_psd, rx.rin_lin, rx.saturation_current, rx.noise_bandwidth_hz)


def _optical_outputs(world, node: str) -> list[str]:
    return [port for port, kind in world.nodes[node].ports().items() if kind == OPTICAL_OUT]


def _broadcast_port(world, mzms: list[MachZehnderModulator]) -> tuple[str, str, list[tuple[Fibre, ...]]]:
    """The center's input port of a core: the input of the first part downstream of every modulator that
    fans its light out to several outputs (the broadcast splitter), and each modulator's fibres before it."""
    found, before = None, []
    for mzm in mzms:
        node, port, fibres = mzm.name, "out", ()
        while True:
            dest = _one(world.destinations_of(node, port))
            if dest[0] is None:
                raise ScpiError(-241, f"the light of {mzm.name} does not reach a broadcast splitter over one path")
            comp = world.nodes[dest[0]]
            fibres += (comp,) if isinstance(comp, Fibre) else ()
            outs = [p for p in _optical_outputs(world, dest[0]) if world.destinations_of(dest[0], p)]
            if len(outs) > 1:
                break
            if not outs:
                raise ScpiError(-241, f"the light of {mzm.name} ends at {dest[0]} before any broadcast splitter")
            node, port = dest[0], outs[0]
        if found is not None and found != dest:
            raise ScpiError(-241, f"the modulators' light reaches different broadcast points ({found} and {dest})")
        found = dest
        before.append(fibres)
    return found[0], found[1], before


def _open_end(world, mzm: MachZehnderModulator) -> tuple[str, str, tuple[Fibre, ...]]:
    """The end of an edge's link: the optical output no part takes, reached from ``mzm`` over one path,
    with the fibres on the way."""
    node, port, fibres = mzm.name, "out", ()
    for _ in range(len(world.nodes) + 1):
        dest = _one(world.destinations_of(node, port))
        if dest[0] is None:
            if world.destinations_of(node, port):
                raise ScpiError(-241, f"the light of {mzm.name} splits at {node}.{port}: an edge's link is one path")
            return node, port, fibres
        comp = world.nodes[dest[0]]
        fibres += (comp,) if isinstance(comp, Fibre) else ()
        outs = _optical_outputs(world, dest[0])
        if len(outs) != 1:
            raise ScpiError(-241, f"the light of {mzm.name} reaches {dest[0]}, which has {len(outs)} optical outputs: "
                                  "an edge's link is one path to the center")
        node, port = dest[0], outs[0]
    raise ScpiError(-241, f"the light of {mzm.name} runs in a loop")


def _port_carriers(carriers) -> np.ndarray:
    """A light source's carriers on no input's wavelength as (n, 2) float64 [wavelength m, power W], one row
    per wavelength (powers on one wavelength added); ScpiError -221 for anything that is not such light."""
    array = np.asarray(carriers, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] > MAX_PORT_BACKGROUND_CARRIERS:
        raise ScpiError(-221, f"the edge's light on no input's wavelength has shape {array.shape}; it must be (n, 2) "
                              f"(wavelength m, power W) with n <= {MAX_PORT_BACKGROUND_CARRIERS}")
    wavelength, power = array[:, 0], array[:, 1]
    if not (np.all(np.isfinite(array)) and np.all(power >= 0)):
        raise ScpiError(-221, "the edge's light on no input's wavelength must be finite powers >= 0 W")
    low, high = PORT_WAVELENGTHS_M
    if np.any((wavelength < low) | (wavelength > high)):
        raise ScpiError(-221, f"the edge's light on no input's wavelength lies outside {low * 1e9:g}-{high * 1e9:g} nm")
    if power.sum() > MAX_PORT_BACKGROUND_W:
        raise ScpiError(-221, f"the edge's light on no input's wavelength totals {power.sum():.3g} W, above the "
                              f"{MAX_PORT_BACKGROUND_W:g} W any amplifier of the bench can emit")
    unique, index = np.unique(wavelength, return_inverse=True)
    return np.stack([unique, np.bincount(index, weights=power, minlength=unique.size)], axis=1)


def _one(destinations: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The one input an electrical output feeds, or (None, None)."""
    return destinations[0] if len(destinations) == 1 else (None, None)


def _parameters(params: dict[str, Any]) -> dict[str, Any]:
    """The controller's sim parameters, defaults filled in, each checked against its physical range."""
    unknown = set(params) - set(PARAMETERS)
    if unknown:  # (the electrical-draw POWER names are read by SimInstrument)
        raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(PARAMETERS))}")
    out = {}
    for name, (kind, default, low, high) in PARAMETERS.items():
        value = params.get(name, default)
        out[name] = require_int(name, value, low, high) if kind is int else require_range(name, value, low, high)
    for converter in ("dac", "adc"):
        if out[f"{converter}_enob"] > out[f"{converter}_bits"]:
            raise ValueError(f"{converter}_enob={out[f'{converter}_enob']!r} is outside the physical range "
                             f"[0, {out[f'{converter}_bits']}] ({converter}_bits)")
    return out
