"""Simulated Keysight M8195A 65 GSa/s, 8-bit, four-channel arbitrary waveform generator.

SCPI per *Keysight M8195A Arbitrary Waveform Generator Revision 2 - User's Guide*, part number
M8195-91040, edition 6.0 (March 2017), chapter 6:

* 6.8/6.9 ``:ABORt``, ``:INITiate:IMMediate[:SEQuence]``, ``:INITiate:CONTinuous[:STATe]``,
  ``:INITiate:CONTinuous:ENABle SELF|ARMed``, ``:INITiate:GATE[:STATe]``,
  ``:ARM:TRIGger:SOURce TRIGger|EVENt|INTernal``, ``:ARM:TRIGger:SLOPe POSitive|NEGative|EITHer``,
  ``:TRIGger[:SEQuence][:STARt]:BEGin[:IMMediate]``, ``:TRIGger[:SEQuence][:STARt]:BEGin:GATE[:STATe]``
  (numeric channel suffixes on INIT/ABORt are accepted and ignored, as the guide says);
* 6.11 ``:INSTrument:DACMode SINGle|DUAL|FOUR|MARKer|DCDuplicate|DCMarker`` (answers the short form),
  ``:INSTrument:MEMory:EXTended:RDIVider DIV1|DIV2|DIV4``;
* 6.13 ``:OUTPut[1|2|3|4][:STATe]``; 6.14 ``[:SOURce]:FREQuency:RASTer`` 53.76e9 ... 65e9 Sa/s;
* 6.16 ``[:SOURce]:VOLTage[n][:AMPLitude]`` (0.075 ... 1.0 Vpp), ``:OFFSet`` (-1 ... +1 V),
  ``:HIGH``, ``:LOW``; 6.17 ``[:SOURce]:FUNCtion:MODE`` (only ARBitrary is simulated);
* 6.21 ``:TRACe[n]:MMODe INTernal|EXTended`` (query NONE for a channel unused in the DAC mode),
  ``:TRACe[n]:DEFine <id>,<length>[,<init>]``, ``:TRACe[n]:DEFine:NEW? <length>[,<init>]``,
  ``:TRACe[n][:DATA] <id>,<offset>,<block>|<values>`` and ``:TRACe[n][:DATA]? <id>,<offset>,<length>``,
  ``:TRACe[n]:DELete <id>``, ``:TRACe[n]:DELete:ALL``, ``:TRACe[n]:CATalog?`` (``id,len,...`` or
  ``0,0``), ``:TRACe[n]:SELect``, ``:TRACe[n]:COUNt``, ``:TRACe[n]:FREE?``.

Segment rules: lengths are multiples of 256 samples and at least 1280 (section 3.2.1 defers to the
data sheet; values as enforced by Keysight's PyArbTools for the M8195A), else -222. In extended
memory all channels sourced from it share one segment table (DEFine/DELete/SELect/COUNt act on all of
them; sample data stay per channel); ``:TRACe:DATA`` offsets into extended memory must be a multiple
of two memory vectors (512 samples). Internal memory holds one segment (id 1) per channel, of any
valid length up to its size. Data past the segment end -> -223; segment changes, DAC mode, memory
mode and trigger mode changes while running -> -221; ``:INIT:IMM`` while running -> -213; a start
with no defined selected segment on any waveform channel -> -221. *RST: 64 GSa/s, DAC mode FOUR,
extended memory DIV1 on every channel, all segments deleted, amplitude 0.5 Vpp, offset 0 V, outputs
off, continuous mode, arbitrary mode, stopped (the guide lists no *RST table; these are assumed).

Samples are signed bytes (table 44). In DAC modes MARKer/DCMarker, channel 1 data are interleaved
sample/marker byte pairs (table 45): marker bit 0 (sample marker) drives channel 3 and bit 1 (sync
marker) channel 4, each between offset - amplitude/2 and offset + amplitude/2. In DCDuplicate,
channels 3 and 4 replay channels 1 and 2 with their own levels.

Physics of output ``chN`` at times t: 0 V while stopped or with the output off. While running, the
DAC holds code c = data[floor((t - t0) f) mod L] (sample-and-hold, looped; f = raster rate, divided by
RDIV for extended memory; t0 = ``world.time`` when ``:INIT:IMM`` arrived, or the last trigger / gate
opening in triggered / gated mode, where the segment plays COUNt times / while the gate is open) and
outputs V = offset + (amplitude/2) c/127 into the matched 50-ohm load (load dependence is not
modelled). When no segment plays (armed, waiting for a trigger or a gate, or after the last
repetition) the DAC idles at code 0 (V = offset); times before ``:INIT:IMM`` read 0 V. The 8-bit codes are the
quantisation; Gaussian DAC excess noise from ``world.rng`` brings a full-scale sine to the ENOB
parameter: sigma^2 = (A^2/2) 10^-((6.02 ENOB + 1.76)/10) - (A/127)^2/12 with A = amplitude/2.

Port ``marker`` is a trigger/sync output for the scope: 1 V (``marker_high_v``) during the first 1/8
of every repetition of the channel-1 waveform while it plays, 0 V otherwise. The real M8195A has no
separate marker connector: the equivalent signals are the sample/sync markers output on channels 3
and 4 in DAC modes MARKer/DCMarker (or the shared "Event In / Trigger Out" connector switched to
Trigger Out, ``:SYSTem:EIN:MODE TOUT``, which the guide marks as future use).

``modulation_period()`` is the common repetition period lcm(L_i RDIV_i)/f of the playing channels
in continuous mode, None otherwise.

Analog output (waveform level, see ``sim_backends.physics.components``): the excess noise is one
Gaussian value per DAC sample, held with the sample (absolute sample number since ``:INIT:IMM``, so
it is not periodic with the segment). The held waveform then passes the analog output response, a
low-pass of ``analog_bandwidth_hz`` (``analog_response`` / ``analog_order``, causal prototype from
``sim_backends.physics.filters`` with its DC group delay removed, unit DC gain): on a uniform time
grid the held waveform is evaluated on a padded grid (oversampled to >= 2x the bandwidth), filtered
and sampled at the requested times, so a scope sees the finite rise time and the sinc roll-off of
the hold; on single points or non-uniform times the output is the held value (DC response). The
marker output is not filtered (a trigger signal). ``analog_bandwidth_hz: null`` models an ideal DAC.

Parameters (``sim.params``): ``enob_bits`` (5.5; PHYSICS.md table 2, M8195A ENOB ~5-6 bits †),
``analog_bandwidth_hz`` (25e9; PHYSICS.md table 2, M8195A ~25 GHz analog bandwidth †),
``analog_response`` ("butterworth") and ``analog_order`` (4; the response shape is a modelling choice,
the same as ``sim_backends.physics.converters.DAC``), ``marker_high_v`` (1.0), ``internal_memory_samples``
(131072, 128 kSa per channel) and ``extended_memory_samples`` (16 GiSa, option -16G); the two memory
sizes are data-sheet figures not re-verified. The simulator holds at most ``SIM_MEMORY_CAP_SAMPLES``
per channel of either (see the constant): a segment beyond what is left is -225 "Out of memory", as
on a full instrument, and ``:TRACe:FREE?`` reports the capped size.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import scipy.fft as sfft

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.grids import (
    MAX_GRID_POINTS,
    ResponseCache,
    band_grid,
    cubic_at,
    delay_free,
    fast_length,
    lowpass_memory_s,
    uniform_step,
)
from sim_backends.physics.filters import KINDS, LowPass
from sim_backends.physics.validation import param
from sim_backends.scpi import MAX_ALLOCATION_BYTES, Call, CommandTree, ScpiError, format_number
from sim_backends.world import ELECTRICAL_OUT

CHANNELS = (1, 2, 3, 4)
SAMPLE_RATE_RANGE = (53.76e9, 65e9)
DEFAULT_SAMPLE_RATE = 64e9
AMPLITUDE_RANGE = (0.075, 1.0)
OFFSET_RANGE = (-1.0, 1.0)
DEFAULT_AMPLITUDE = 0.5
GRANULARITY = 256
MIN_LENGTH = 1280
EXT_OFFSET_STEP = 2 * GRANULARITY  # "an even number of memory vectors"
MAX_SEGMENT_ID = 16_777_216
#: Waveform memory the simulator holds per channel, in int8 samples: a quarter of the simulator's
#: allocation cap (sim_backends.scpi.MAX_ALLOCATION_BYTES), so the four channels' samples together
#: stay within it (64 MiSa; the instrument itself has 128 kSa internal / 16 GSa extended memory).
SIM_MEMORY_CAP_SAMPLES = MAX_ALLOCATION_BYTES // 4
#: Longest ASCII readback (``:TRACe:DATA?``) in bytes per sample ("-128,").
_ASCII_BYTES_PER_SAMPLE = 5
MAX_LOOP_COUNT = 2**32 - 1
FULL_SCALE_CODE = 127
#: Points per DAC sample on which the analog output is computed for requests that are not themselves
#: an integer multiple >= 2 of the DAC rate (then interpolated, cubic: < 4e-3 at 25 GHz, 1e-4 at 10 GHz).
NATIVE_OVERSAMPLE = 4
SAMPLE_EDGE = 1e-6  # fraction of a DAC sample: boundary tolerance for floating-point rounding

#: DAC mode (short form) -> channels that carry their own waveform data.
DATA_CHANNELS = {
    "SING": (1,),
    "DUAL": (1, 4),
    "FOUR": (1, 2, 3, 4),
    "MARK": (1,),
    "DCD": (1, 2),
    "DCM": (1, 2),
}
_DAC_MODE_LONG = {"SINGLE": "SING", "DUAL": "DUAL", "FOUR": "FOUR", "MARKER": "MARK",
                  "DCDUPLICATE": "DCD", "DCMARKER": "DCM"}


_nr3 = partial(format_number, digits=10)


class SimKeysightM8195A(SimInstrument):
    """Keysight M8195A: SCPI of the Revision 2 User's Guide, sample-and-hold DAC physics."""

    MODEL = "keysight.M8195A"
    IDN = ("Keysight Technologies", "M8195A", "4.1.0.0-2")
    OPTIONS = "004,16G,SEQ"
    TERMINATION = b"\n"
    PORTS = {"ch1": ELECTRICAL_OUT, "ch2": ELECTRICAL_OUT, "ch3": ELECTRICAL_OUT,
             "ch4": ELECTRICAL_OUT, "marker": ELECTRICAL_OUT}
    #: Electrical draw (W). An M8195A module in its AXIe chassis idles at ``idle_power_w`` (chassis,
    #: fans, clock; by default this model's entry in ``sim_backends.datasheets``, assumed). Assumed too:
    #: it adds ``running_power_w`` while it generates (the 65 GSa/s DACs and memory sequencer clocked)
    #: and ``output_power_w`` per output amplifier that is on.
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, 1e4), "running_power_w": (100.0, 0.0, 1e4),
             "output_power_w": (5.0, 0.0, 1e3)}
    PARAMS = frozenset({"enob_bits", "analog_bandwidth_hz", "analog_response", "analog_order", "marker_high_v",
                        "internal_memory_samples", "extended_memory_samples"}) | frozenset(POWER)

    def __init__(self, name, world, params=None, serial=""):
        params = dict(params or {})
        unknown = set(params) - self.PARAMS
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(self.PARAMS)}")
        self.enob_bits = param(params, "enob_bits", 5.5, 1.0, 8.0)
        if params.get("analog_bandwidth_hz", 25e9) is None:
            self.analog_bandwidth_hz = None
            self.analog_filter = None
        else:
            self.analog_bandwidth_hz = param(params, "analog_bandwidth_hz", 25e9, 1e6, 1e12)
            kind = params.get("analog_response", "butterworth")
            if kind not in KINDS:
                raise ValueError(f"analog_response={kind!r} is not one of {KINDS}")
            order = param(params, "analog_order", 4, 1, 16)
            if order != int(order):
                raise ValueError(f"analog_order={order!r} must be an integer in [1, 16]")
            self.analog_filter = LowPass(self.analog_bandwidth_hz, kind, int(order))
            self._analog_response = ResponseCache(delay_free(self.analog_filter))
            # the hold (ZOH of one DAC sample, centred) times the analog response, on the bins of a
            # record of DAC samples zero-stuffed to NATIVE_OVERSAMPLE points per sample (see _native)
            self._hold_response: dict[float, ResponseCache] = {}  # by DAC rate
        self.marker_high_v = param(params, "marker_high_v", 1.0, 0.0, 5.0)
        self.internal_memory_samples = int(param(params, "internal_memory_samples", 131072, MIN_LENGTH, 2**40))
        self.extended_memory_samples = int(param(params, "extended_memory_samples", 16 * 2**30, MIN_LENGTH, 2**40))
        super().__init__(name, world, params, serial)

    # -- *RST ---------------------------------------------------------------------------------

    def state_power_w(self) -> float:
        """Generating adds the DAC core; each output that is on adds its amplifier."""
        p = self.power_params
        return p["running_power_w"] * self.running + p["output_power_w"] * sum(self.output_on.values())

    def reset(self) -> None:
        self.sample_rate = DEFAULT_SAMPLE_RATE
        self.dac_mode = "FOUR"
        self.rdiv = 1
        self.function_mode = "ARB"
        self.continuous = True
        self.gate = False
        self.arm_enable = "SELF"
        self.arm_source = "TRIG"
        self.arm_slope = "POS"
        self.amplitude = {ch: DEFAULT_AMPLITUDE for ch in CHANNELS}
        self.offset = {ch: 0.0 for ch in CHANNELS}
        self.output_on = {ch: False for ch in CHANNELS}
        self.memory_mode = {ch: "EXT" for ch in CHANNELS}
        self.running = False
        self.t_start: float | None = None
        self.t_trigger: float | None = None
        self.t_gate_open: float | None = None
        self.t_gate_close: float | None = None
        # Segment tables: one shared by extended-memory channels, one per channel for internal.
        self._ext_table: dict[int, tuple[int, int]] = {}  # id -> (length, init code)
        self._int_table: dict[int, dict[int, tuple[int, int]]] = {ch: {} for ch in CHANNELS}
        self._codes: dict[int, dict[int, np.ndarray]] = {ch: {} for ch in CHANNELS}
        self._markers: dict[int, dict[int, np.ndarray]] = {ch: {} for ch in CHANNELS}
        self.ext_selected = 1
        self.ext_loop_count = 1
        self.int_selected = {ch: 1 for ch in CHANNELS}

    # -- command table -------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        # The waveform commands first: uploads resolve them most often.
        tree.add("TRACe#:MMODe", self._set_mmode, self._get_mmode)
        tree.add("TRACe#:DEFine", self._define, None)
        tree.add("TRACe#:DEFine:NEW", None, self._define_new)
        tree.add("TRACe#:DELete:ALL", self._delete_all, None)
        tree.add("TRACe#:DELete", self._delete, None)
        tree.add("TRACe#:CATalog", None, self._catalog)
        tree.add("TRACe#:SELect", self._set_select, self._get_select)
        tree.add("TRACe#:COUNt", self._set_count, self._get_count)
        tree.add("TRACe#:FREE", None, self._free)
        tree.add("TRACe#[:DATA]", self._write_data, self._read_data)
        tree.add("[:SOURce]:FREQuency:RASTer", self._set_rate, self._get_rate)
        tree.add("INSTrument:DACMode", self._set_dac_mode, lambda c: self.dac_mode)
        tree.add("INSTrument:MEMory:EXTended:RDIVider", self._set_rdiv, lambda c: f"DIV{self.rdiv}")
        tree.add("[:SOURce]:VOLTage#[:AMPLitude]", self._set_amplitude, self._get_amplitude)
        tree.add("[:SOURce]:VOLTage#:OFFSet", self._set_offset, self._get_offset)
        tree.add("[:SOURce]:VOLTage#:HIGH", self._set_high, self._get_high)
        tree.add("[:SOURce]:VOLTage#:LOW", self._set_low, self._get_low)
        tree.add("OUTPut#[:STATe]", self._set_output, self._get_output)
        tree.add("[:SOURce]:FUNCtion:MODE", self._set_function, lambda c: self.function_mode)
        tree.add("INITiate:IMMediate#[:SEQuence#]", self._init, None)
        tree.add("INITiate:CONTinuous#:ENABle", self._set_arm_enable, lambda c: self.arm_enable)
        tree.add("INITiate:CONTinuous#[:STATe]", self._set_continuous, lambda c: str(int(self.continuous)))
        tree.add("INITiate:GATE#[:STATe]", self._set_gate, lambda c: str(int(self.gate)))
        tree.add("ABORt#", self._abort, None)
        tree.add("TRIGger[:SEQuence][:STARt]:BEGin[:IMMediate]", self._trigger, None)
        tree.add("TRIGger[:SEQuence][:STARt]:BEGin:GATE[:STATe]", self._set_gate_state, self._get_gate_state)
        tree.add("ARM:TRIGger:SOURce", self._set_arm_source, lambda c: self.arm_source)
        tree.add("ARM:TRIGger:SLOPe", self._set_arm_slope, lambda c: self.arm_slope)

    # -- helpers --------------------------------------------------------------------------------

    def _channel(self, call: Call) -> int:
        return call.suffix(0, 1, 4)

    def _require_stopped(self, what: str) -> None:
        if self.running:
            raise ScpiError(-221, f"{what} only while stopped (program mode); send :ABORt first")

    def _require_data_channel(self, ch: int) -> None:
        if ch not in DATA_CHANNELS[self.dac_mode]:
            raise ScpiError(-221, f"channel {ch} carries no waveform in DAC mode {self.dac_mode}")

    def _is_ext(self, ch: int) -> bool:
        return self.memory_mode[ch] == "EXT"

    def _table(self, ch: int) -> dict[int, tuple[int, int]]:
        return self._ext_table if self._is_ext(ch) else self._int_table[ch]

    def _sharing(self, ch: int) -> list[int]:
        """Channels whose segment data follow the table of ``ch`` (all extended ones, or ``ch``)."""
        if self._is_ext(ch):
            return [c for c in CHANNELS if self._is_ext(c)]
        return [ch]

    def _segment_codes(self, ch: int, seg: int) -> np.ndarray | None:
        """The int8 samples of segment ``seg`` on channel ``ch`` (allocated when first used)."""
        entry = self._table(ch).get(seg)
        if entry is None:
            return None
        codes = self._codes[ch].get(seg)
        if codes is None:
            length, init = entry
            codes = np.zeros(length, dtype=np.int8) if init == 0 else np.full(length, init, dtype=np.int8)
            self._codes[ch][seg] = codes
        return codes

    def _segment_markers(self, ch: int, seg: int) -> np.ndarray | None:
        entry = self._table(ch).get(seg)
        if entry is None:
            return None
        markers = self._markers[ch].get(seg)
        if markers is None:
            markers = np.zeros(entry[0], dtype=np.uint8)
            self._markers[ch][seg] = markers
        return markers

    def _selected(self, ch: int) -> int:
        return self.ext_selected if self._is_ext(ch) else 1

    def _rate(self, ch: int) -> float:
        return self.sample_rate / (self.rdiv if self._is_ext(ch) else 1)

    def _marker_mode(self) -> bool:
        return self.dac_mode in ("MARK", "DCM")

    def _segment_arg(self, call: Call, index: int, ch: int) -> int:
        seg = call.param(index).integer(1, MAX_SEGMENT_ID)
        if not self._is_ext(ch) and seg != 1:
            raise ScpiError(-222, f"internal memory holds segment 1 only, got {seg}")
        return seg

    def _check_length(self, length: int) -> None:
        if length < MIN_LENGTH or length % GRANULARITY:
            raise ScpiError(-222, f"segment length {length} must be a multiple of {GRANULARITY} "
                                  f"samples and at least {MIN_LENGTH}")

    def _memory_used(self, ch: int) -> int:
        return sum(length for length, _ in self._table(ch).values())

    def _memory_size(self, ch: int) -> int:
        size = self.extended_memory_samples if self._is_ext(ch) else self.internal_memory_samples
        return min(size, SIM_MEMORY_CAP_SAMPLES)

    # -- sample rate, modes, levels ----------------------------------------------------------------

    def _set_rate(self, call: Call) -> None:
        call.expect(1)
        self.sample_rate = call.param().number("HZ", *SAMPLE_RATE_RANGE, default=DEFAULT_SAMPLE_RATE)

    def _get_rate(self, call: Call) -> str:
        call.expect(0, 1)
        if call.params:
            return _nr3(call.param().number("HZ", *SAMPLE_RATE_RANGE, default=DEFAULT_SAMPLE_RATE))
        return _nr3(self.sample_rate)

    def _set_dac_mode(self, call: Call) -> None:
        call.expect(1)
        mode = _DAC_MODE_LONG[call.param().choice(["SINGle", "DUAL", "FOUR", "MARKer", "DCDuplicate", "DCMarker"])]
        self._require_stopped("changing the DAC mode")
        self.dac_mode = mode

    def _set_rdiv(self, call: Call) -> None:
        call.expect(1)
        word = call.param().upper
        if word not in ("DIV1", "DIV2", "DIV4"):
            raise ScpiError(-224, f"expected DIV1|DIV2|DIV4, got {word!r}")
        self._require_stopped("changing the extended memory sample rate divider")
        self.rdiv = int(word[3])

    def _set_function(self, call: Call) -> None:
        call.expect(1)
        mode = call.param().choice(["ARBitrary", "STSequence", "STSCenario"])
        self._require_stopped("changing the function mode")
        if mode != "ARBITRARY":
            raise ScpiError(-221, "sequence and scenario modes are not simulated; use ARBitrary")
        self.function_mode = "ARB"

    def _level(self, call: Call, unit_range, default) -> float:
        return call.param().number("V", *unit_range, default=default)

    def _set_amplitude(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        self.amplitude[ch] = self._level(call, AMPLITUDE_RANGE, DEFAULT_AMPLITUDE)

    def _get_amplitude(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0, 1)
        if call.params:
            return _nr3(self._level(call, AMPLITUDE_RANGE, DEFAULT_AMPLITUDE))
        return _nr3(self.amplitude[ch])

    def _set_offset(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        self.offset[ch] = self._level(call, OFFSET_RANGE, 0.0)

    def _get_offset(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0, 1)
        if call.params:
            return _nr3(self._level(call, OFFSET_RANGE, 0.0))
        return _nr3(self.offset[ch])

    def _set_levels(self, ch: int, high: float, low: float) -> None:
        amplitude, offset = high - low, (high + low) / 2
        if not AMPLITUDE_RANGE[0] - 1e-12 <= amplitude <= AMPLITUDE_RANGE[1] + 1e-12:
            raise ScpiError(-222, f"high - low = {amplitude:g} V outside [{AMPLITUDE_RANGE[0]:g}, {AMPLITUDE_RANGE[1]:g}]")
        if not OFFSET_RANGE[0] - 1e-12 <= offset <= OFFSET_RANGE[1] + 1e-12:
            raise ScpiError(-222, f"(high + low)/2 = {offset:g} V outside [{OFFSET_RANGE[0]:g}, {OFFSET_RANGE[1]:g}]")
        self.amplitude[ch], self.offset[ch] = amplitude, offset

    def _set_high(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        high = call.param().number("V", -2.0, 2.0)
        self._set_levels(ch, high, self.offset[ch] - self.amplitude[ch] / 2)

    def _get_high(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0)
        return _nr3(self.offset[ch] + self.amplitude[ch] / 2)

    def _set_low(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        low = call.param().number("V", -2.0, 2.0)
        self._set_levels(ch, self.offset[ch] + self.amplitude[ch] / 2, low)

    def _get_low(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0)
        return _nr3(self.offset[ch] - self.amplitude[ch] / 2)

    def _set_output(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        self.output_on[ch] = call.param().boolean()

    def _get_output(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0)
        return str(int(self.output_on[ch]))

    # -- segments ----------------------------------------------------------------------------------

    def _set_mmode(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        mode = "EXT" if call.param().choice(["INTernal", "EXTended"]) == "EXTENDED" else "INT"
        self._require_stopped("changing the memory mode")
        if mode != self.memory_mode[ch]:
            # The channel's samples live in the other memory now: its old data are gone.
            self._codes[ch].clear()
            self._markers[ch].clear()
            self._int_table[ch].clear()
            self.memory_mode[ch] = mode

    def _get_mmode(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0)
        if ch not in DATA_CHANNELS[self.dac_mode]:
            return "NONE"
        return self.memory_mode[ch]

    def _new_segment(self, ch: int, seg: int, length: int, init: int) -> None:
        self._check_length(length)
        table = self._table(ch)
        if seg in table:
            raise ScpiError(-221, f"segment {seg} is already defined; delete it first")
        if self._memory_used(ch) + length > self._memory_size(ch):
            raise ScpiError(-225, f"{length} samples do not fit in {self._memory_size(ch)} samples of "
                                  f"{'extended' if self._is_ext(ch) else 'internal'} memory")
        table[seg] = (length, init)
        for c in self._sharing(ch):
            self._codes[c].pop(seg, None)
            self._markers[c].pop(seg, None)

    def _init_value(self, call: Call, index: int) -> int:
        return call.params[index].integer(-128, 127) if len(call.params) > index else 0

    def _define(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(2, 1)
        self._require_data_channel(ch)
        self._require_stopped("defining a segment")
        seg = self._segment_arg(call, 0, ch)
        length = call.param(1).integer(0, 2**48)
        self._new_segment(ch, seg, length, self._init_value(call, 2))

    def _define_new(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(1, 1)
        self._require_data_channel(ch)
        self._require_stopped("defining a segment")
        table = self._table(ch)
        seg = max(table, default=0) + 1
        if not self._is_ext(ch) and seg != 1:
            raise ScpiError(-221, "internal memory already holds its one segment")
        self._new_segment(ch, seg, call.param(0).integer(0, 2**48), self._init_value(call, 1))
        return str(seg)

    def _delete(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        self._require_stopped("deleting a segment")
        seg = call.param().integer(1, MAX_SEGMENT_ID)
        table = self._table(ch)
        if seg not in table:
            raise ScpiError(-224, f"segment {seg} is not defined")
        del table[seg]
        for c in self._sharing(ch):
            self._codes[c].pop(seg, None)
            self._markers[c].pop(seg, None)

    def _delete_all(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(0)
        self._require_stopped("deleting segments")
        self._table(ch).clear()
        for c in self._sharing(ch):
            self._codes[c].clear()
            self._markers[c].clear()

    def _catalog(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0)
        table = self._table(ch)
        if not table:
            return "0,0"
        return ",".join(f"{seg},{length}" for seg, (length, _) in sorted(table.items()))

    def _set_select(self, call: Call) -> None:
        ch = self._channel(call)
        call.expect(1)
        seg = call.param().integer(1, MAX_SEGMENT_ID, default=1)
        if self._is_ext(ch):
            self.ext_selected = seg
        else:
            self.int_selected[ch] = seg  # accepted; internal memory always plays segment 1

    def _get_select(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0)
        return str(self.ext_selected if self._is_ext(ch) else self.int_selected[ch])

    def _set_count(self, call: Call) -> None:
        self._channel(call)
        call.expect(1)
        self.ext_loop_count = call.param().integer(1, MAX_LOOP_COUNT, default=1)

    def _get_count(self, call: Call) -> str:
        self._channel(call)
        call.expect(0)
        return str(self.ext_loop_count)

    def _free(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(0)
        size, used = self._memory_size(ch), self._memory_used(ch)
        return f"{size - used},{used},{size - used}"

    def _write_data(self, call: Call) -> None:
        ch = self._channel(call)
        if len(call.params) < 3:
            raise ScpiError(-109, "expected <segment_id>,<offset>,<block>|<values>")
        self._require_data_channel(ch)
        self._require_stopped("writing waveform data")
        seg = self._segment_arg(call, 0, ch)
        offset = call.param(1).integer(0, 2**48)
        codes = self._segment_codes(ch, seg)
        if codes is None:
            raise ScpiError(-224, f"segment {seg} is not defined on channel {ch}")
        if self._is_ext(ch) and offset % EXT_OFFSET_STEP:
            raise ScpiError(-222, f"offset {offset} into extended memory must be a multiple of {EXT_OFFSET_STEP} samples")
        if call.params[2].block is not None:
            call.expect(3)
            raw = np.frombuffer(call.params[2].block, dtype=np.int8)
        else:
            raw = np.array([p.integer(-128, 255 if self._marker_mode() else 127) for p in call.params[2:]],
                           dtype=np.int64).astype(np.uint8).view(np.int8)
        if self._marker_mode() and ch == 1:
            if raw.size % 2:
                raise ScpiError(-160, "sample/marker data need an even number of bytes")
            samples, marker_bytes = raw[0::2], raw[1::2].view(np.uint8)
        else:
            samples, marker_bytes = raw, None
        end = offset + samples.size
        if end > codes.size:
            raise ScpiError(-223, f"{samples.size} samples at offset {offset} pass the end of segment {seg} "
                                  f"({codes.size} samples)")
        codes[offset:end] = samples
        if marker_bytes is not None:
            self._segment_markers(ch, seg)[offset:end] = marker_bytes & 0b11

    def _read_data(self, call: Call) -> str:
        ch = self._channel(call)
        call.expect(3)
        self._require_stopped("reading waveform data")
        seg = self._segment_arg(call, 0, ch)
        offset = call.param(1).integer(0, 2**48)
        length = call.param(2).integer(1, 2**48)
        codes = self._segment_codes(ch, seg)
        if codes is None:
            raise ScpiError(-224, f"segment {seg} is not defined on channel {ch}")
        if offset + length > codes.size:
            raise ScpiError(-222, f"{length} samples at offset {offset} pass the end of segment {seg}")
        if length * _ASCII_BYTES_PER_SAMPLE > MAX_ALLOCATION_BYTES:
            raise ScpiError(-225, f"{length} samples as ASCII exceed the simulator's {MAX_ALLOCATION_BYTES}-byte "
                                  "response cap; read the segment in pieces")
        return ",".join(map(str, codes[offset:offset + length].tolist()))

    # -- run control -------------------------------------------------------------------------------

    def _playable(self) -> bool:
        return any(self._segment_codes(ch, self._selected(ch)) is not None for ch in DATA_CHANNELS[self.dac_mode])

    def _init(self, call: Call) -> None:
        call.expect(0)
        if self.running:
            raise ScpiError(-213, "signal generation is already running")
        if not self._playable():
            raise ScpiError(-221, "no waveform channel has its selected segment defined")
        self.running = True
        self.t_start = self.world.time
        self.t_trigger = self.t_gate_open = self.t_gate_close = None

    def _abort(self, call: Call) -> None:
        call.expect(0)
        self.running = False
        self.t_start = self.t_trigger = self.t_gate_open = self.t_gate_close = None

    def _set_continuous(self, call: Call) -> None:
        call.expect(1)
        value = call.param().boolean()
        self._require_stopped("changing the trigger mode")
        self.continuous = value

    def _set_gate(self, call: Call) -> None:
        call.expect(1)
        value = call.param().boolean()
        self._require_stopped("changing the trigger mode")
        self.gate = value

    def _set_arm_enable(self, call: Call) -> None:
        call.expect(1)
        self.arm_enable = "ARM" if call.param().choice(["SELF", "ARMed"]) == "ARMED" else "SELF"

    def _set_arm_source(self, call: Call) -> None:
        call.expect(1)
        self.arm_source = {"TRIGGER": "TRIG", "EVENT": "EVEN", "INTERNAL": "INT"}[
            call.param().choice(["TRIGger", "EVENt", "INTernal"])]

    def _set_arm_slope(self, call: Call) -> None:
        call.expect(1)
        self.arm_slope = {"POSITIVE": "POS", "NEGATIVE": "NEG", "EITHER": "EITH"}[
            call.param().choice(["POSitive", "NEGative", "EITHer"])]

    @property
    def trigger_mode(self) -> str:
        if self.continuous:
            return "continuous"
        return "gated" if self.gate else "triggered"

    def _trigger(self, call: Call) -> None:
        call.expect(0)
        if not self.running or self.trigger_mode != "triggered":
            raise ScpiError(-211, "a start trigger acts only while running in triggered mode")
        self.t_trigger = self.world.time

    def _set_gate_state(self, call: Call) -> None:
        call.expect(1)
        opened = call.param().boolean()
        if not self.running or self.trigger_mode != "gated":
            raise ScpiError(-211, "the gate acts only while running in gated mode")
        if opened:
            self.t_gate_open, self.t_gate_close = self.world.time, None
        elif self.t_gate_open is not None and self.t_gate_close is None:
            self.t_gate_close = self.world.time

    def _get_gate_state(self, call: Call) -> str:
        call.expect(0)
        return str(int(self.t_gate_open is not None and self.t_gate_close is None))

    # -- physics -------------------------------------------------------------------------------------

    def _play_position(self, t: np.ndarray, length: int, rate: float) -> tuple[np.ndarray, np.ndarray]:
        """(playing mask, sample index) of a segment of ``length`` samples at ``rate`` at times ``t``."""
        mode = self.trigger_mode
        t_end = np.inf
        if mode == "continuous":
            t0, repeats = self.t_start, None
        elif mode == "triggered":
            t0, repeats = self.t_trigger, self.ext_loop_count
        else:
            t0, repeats = self.t_gate_open, None
            if self.t_gate_close is not None:
                t_end = self.t_gate_close
        if not self.running or t0 is None:
            return np.zeros(t.shape, dtype=bool), np.zeros(t.shape, dtype=np.int64)
        # + SAMPLE_EDGE: an instant on a sample boundary (up to rounding) belongs to the later sample,
        # so a grid commensurate with the DAC clock sees every sample held equally long
        n = np.floor((t - t0) * rate + SAMPLE_EDGE).astype(np.int64)
        playing = (n >= 0) & (t < t_end)
        if repeats is not None:
            playing &= n < repeats * length
        return playing, np.mod(n, length)

    def _source(self, ch: int) -> int:
        """The channel whose waveform data ``ch`` plays (DCDuplicate repeats channels 1 and 2)."""
        if self.dac_mode == "DCD" and ch in (3, 4):
            return ch - 2
        return ch

    def _dac_codes(self, ch: int, t: np.ndarray) -> np.ndarray:
        """DAC codes output on channel ``ch`` at times ``t`` while running (idle code 0)."""
        codes = np.zeros(t.shape, dtype=np.float64)
        mode = self.dac_mode
        if mode in ("MARK", "DCM") and ch in (3, 4):
            data = self._segment_markers(1, self._selected(1))
            if data is None:
                return codes
            playing, index = self._play_position(t, data.size, self._rate(1))
            bit = (data[index[playing]] >> (ch - 3)) & 1
            codes[playing] = np.where(bit, FULL_SCALE_CODE, -FULL_SCALE_CODE)
            return codes
        src = self._source(ch)
        if src not in DATA_CHANNELS[mode]:
            return codes
        data = self._segment_codes(src, self._selected(src))
        if data is None:
            return codes
        playing, index = self._play_position(t, data.size, self._rate(src))
        codes[playing] = data[index[playing]]
        return codes

    def excess_noise_sigma(self, ch: int) -> float:
        """DAC excess noise (V rms) that, with 8-bit quantisation, gives a full-scale sine ENOB bits."""
        half_swing = self.amplitude[ch] / 2
        total = half_swing**2 / 2 * 10 ** (-(6.02 * self.enob_bits + 1.76) / 10)
        quantisation = (half_swing / FULL_SCALE_CODE) ** 2 / 12
        return math.sqrt(max(total - quantisation, 0.0))

    def electrical_output(self, port: str, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if port == "marker":
            return self._marker_output(t)
        ch = int(port[2:])
        if not self.running or not self.output_on[ch]:
            return np.zeros(t.shape)
        f = self.analog_filter
        if f is None:
            return self._held_output(ch, t)
        dt = uniform_step(t)
        rate = self._channel_rate(ch)
        m = None if dt is None else 1.0 / (dt * rate)
        if m is None or round(m) < NATIVE_OVERSAMPLE or abs(m - round(m)) > 1e-6 * m:
            native = self._native(ch, t, rate, dt, m)
            if native is not None:
                return native
        grid = band_grid(t, f.f3db_hz, lowpass_memory_s(f.f3db_hz, f.order))
        if grid is None:
            return self._held_output(ch, t)
        volts = self._held_output(ch, grid.times).astype(np.float32)
        if volts.size and volts.min() != volts.max():  # a constant passes the unit-DC-gain filter as is
            volts = self._analog_response.filter(volts, grid.fs)
        return grid.take(volts).astype(float)

    def _channel_rate(self, ch: int) -> float:
        return self._rate(1 if (self._marker_mode() and ch in (3, 4)) else self._source(ch))

    def _clock_origin(self) -> float:
        """Time of DAC sample 0 of the playing segment (sample boundaries are origin + n / rate)."""
        mode = self.trigger_mode
        t0 = {"continuous": self.t_start, "triggered": self.t_trigger}.get(mode, self.t_gate_open)
        return self.t_start if t0 is None else t0

    def _hold_times_analog(self, rate: float) -> ResponseCache:
        """Response from a zero-stuffed DAC-sample record to the analog output: sinc(f / rate) (the hold,
        centred on the sample) times the analog response with its DC group delay removed."""
        key = float(f"{rate:.10e}")
        cache = self._hold_response.get(key)
        if cache is None:
            analog = self._analog_response._response
            cache = self._hold_response[key] = ResponseCache(lambda f: np.sinc(f / rate) * analog(f), size=4)
        return cache

    def _native(self, ch: int, t: np.ndarray, rate: float, dt: float | None, m: float | None):
        """The analog output at ``t`` computed from the DAC samples themselves, or None if too sparse.

        The output is y(t) = sum_n c_n g(t - origin - n / rate), g = (hold of one sample) * h: its
        spectrum is the DAC-sample sequence's times sinc(f / rate) exp(-j pi f / rate) H(f). The samples
        over the span of ``t`` (padded by the filter memory) are zero-stuffed to m points per sample
        and multiplied by that response: exact samples of y (images beyond m rate / 2 are below
        H(m rate / 2), < 1e-3 for m = 4 and a 25 GHz response at 64 GSa/s). A uniform ``t`` at an integer
        m >= 2 points per DAC sample is computed directly (a sub-sample shift folded into the phase);
        anything else on m = ``NATIVE_OVERSAMPLE`` and interpolated (cubic). So the output at an
        instant does not depend on the grid it is requested on (a coarse grid does not alias the staircase).
        """
        if not t.size:
            return None
        f = self.analog_filter
        memory = lowpass_memory_s(f.f3db_hz, f.order)
        origin = self._clock_origin()
        direct = m is not None and round(m) >= 2 and abs(m - round(m)) <= 1e-6 * m
        k = int(round(m)) if direct else NATIVE_OVERSAMPLE
        lo, hi = float(np.min(t)), float(np.max(t))
        first = math.floor((lo - memory - origin) * rate) - 2
        last = math.ceil((hi + memory - origin) * rate) + 3
        count = last - first
        dense = count <= 64 * t.size + 4 * memory * rate + 16  # else: samples further apart than the memory
        if not dense or count * k > MAX_GRID_POINTS:
            return None
        length = fast_length(count)
        centres = origin + (first + np.arange(length) + 0.5) / rate
        c = self._held_output(ch, centres).astype(np.float32)
        if c.min() == c.max() and length == count:
            return np.full(t.shape, float(c[0]))
        spectrum = sfft.rfft(c)
        # spectrum of the zero-stuffed sequence: the full DFT repeated k times (bins 0 .. k L / 2)
        idx = np.arange(k * length // 2 + 1) % length
        upper = idx > length // 2
        stuffed = spectrum[np.minimum(idx, length // 2)]
        stuffed[upper] = np.conj(spectrum[length - idx[upper]])
        response = self._hold_times_analog(rate).on_grid(k * length, k * rate)
        stuffed *= response
        stuffed *= np.float32(k)
        # sample i of the inverse transform is y at origin + (first + 0.5) / rate + i / (k rate)
        # (the hold response is centred); shift so that the samples land where wanted
        base = origin + (first + 0.5) / rate
        if direct:
            shift = float(t[0]) - base  # y(base + shift + i / (k rate)): the requested grid itself
            freqs = np.arange(stuffed.size) * (rate / length)
            stuffed *= np.exp(2j * np.pi * freqs * shift).astype(np.complex64)
            y = sfft.irfft(stuffed, n=k * length)
            return y[: t.size].astype(float)
        y = sfft.irfft(stuffed, n=k * length)
        return cubic_at(y, base, 1.0 / (k * rate), t).astype(float)

    def _held_output(self, ch: int, t: np.ndarray) -> np.ndarray:
        """The DAC's held output (codes, levels, held excess noise) before the analog response."""
        codes = self._dac_codes(ch, t)
        volts = self.offset[ch] + (self.amplitude[ch] / 2) * codes / FULL_SCALE_CODE
        sigma = self.excess_noise_sigma(ch)
        if sigma > 0 and t.size:
            # one noise value per DAC sample (absolute sample number), held with the sample
            rate = self._rate(1 if (self._marker_mode() and ch in (3, 4)) else self._source(ch))
            n = np.floor((t - self.t_start) * rate + SAMPLE_EDGE)
            first, last = float(n.min()), float(n.max())
            if last - first < 2 * t.size:
                draws = self.world.rng.standard_normal(int(last - first) + 1)
                volts = volts + sigma * draws[(n - first).astype(np.int64)]
            else:
                volts = volts + sigma * self.world.rng.standard_normal(t.shape)
        # Before :INIT:IMM the generator was stopped (relevant when a delayed path looks back).
        return np.where(t >= self.t_start, volts, 0.0)

    def _marker_output(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros(t.shape)
        if not self.running:
            return out
        data = self._segment_codes(1, self._selected(1))
        if data is None:
            return out
        playing, index = self._play_position(t, data.size, self._rate(1))
        out[playing & (index * 8 < data.size)] = self.marker_high_v
        return out

    def modulation_period(self) -> float | None:
        if not self.running or self.trigger_mode != "continuous":
            return None
        spans = []
        for ch in CHANNELS:
            if ch != 1 and not self.output_on[ch]:
                continue
            src = 1 if (self._marker_mode() and ch in (3, 4)) else self._source(ch)
            if src not in DATA_CHANNELS[self.dac_mode]:
                continue
            data = self._segment_codes(src, self._selected(src))
            if data is not None:
                spans.append(data.size * (self.rdiv if self._is_ext(src) else 1))
        if not spans:
            return None
        return math.lcm(*spans) / self.sample_rate

    def segment_samples(self, ch: int, segment: int | None = None) -> np.ndarray | None:
        """A copy of the DAC codes stored for ``segment`` (default: the selected one) of channel ``ch``."""
        data = self._segment_codes(ch, self._selected(ch) if segment is None else segment)
        return None if data is None else data.copy()

    def state(self) -> dict[str, Any]:
        state = super().state()
        state["segments"] = {ch: {seg: length for seg, (length, _) in self._table(ch).items()} for ch in CHANNELS}
        return state
