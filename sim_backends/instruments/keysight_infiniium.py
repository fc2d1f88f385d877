"""Simulated Keysight Infiniium real-time oscilloscope (UXR class by default).

SCPI follows the Infiniium programmer's references (the command set is common to the 9000/90000,
Z-series, MXR/EXR and UXR and unchanged in the current *Keysight Infiniium Oscilloscopes
Programmer's Guide*): *Agilent Infiniium 90000 Series Oscilloscopes Programmer's Reference*
(``:ACQuire:SRATe`` p. 160, ``:WAVeform:DATA?`` pp. 875-876, ``:WAVeform:PREamble?`` pp. 892-893) and
*Agilent Infiniium 9000 Series Oscilloscopes Programmer's Reference* (preamble fields pp. 1117-1119).

=========================================================================  =============================
``:ACQuire:SRATe[:ANALog] <rate>|AUTO|MAX``, ``...:AUTO ON|OFF``             rate rounded up to the next
                                                                           available one (p. 160)
``:ACQuire:POINts[:ANALog] <n>|AUTO``, ``:ACQuire:POINts:AUTO ON|OFF``       memory depth
``:TIMebase:SCALe|RANGe|POSition``, ``:TIMebase:REFerence LEFT|CENTer|RIGHt``  10 divisions
``:CHANnel<n>:DISPlay|RANGe|SCALe|OFFSet|INPut``                             8 vertical divisions
``:TRIGger:MODE EDGE``, ``:TRIGger:EDGE:SOURce CHANnel<n>|AUX``,
``:TRIGger:EDGE:SLOPe POSitive|NEGative|EITHer``,
``:TRIGger:LEVel <source>,<level>`` (query ``? <source>``),
``:TRIGger:SWEep AUTO|TRIGgered|SINGle``
``:DIGitize [CHANnel<n>[,...]]``, ``:SINGle``, ``:RUN``, ``:STOP``, ``:ADER?``, ``:PDER?``
``:WAVeform:SOURce|FORMat ASCii|BYTE|WORD|BYTeorder LSBFirst|MSBFirst|STReaming``
``:WAVeform:PREamble?|DATA? [<start>[,<size>]]|POINts?|XINCrement?|XORigin?|XREFerence?|
YINCrement?|YORigin?|YREFerence?``
``:SYSTem:ERRor? [NUMBer|STRing]`` (number only unless STRing), ``:SYSTem:HEADer OFF``
=========================================================================  =============================

``:WAVeform:DATA?`` answers a definite block ``#<N><L><data><NL>`` with streaming off and
``#0<data><NL>`` with streaming on (pp. 875-876). Sample rates are the maximum divided by 1, 2, 4, 5,
10, 20, 25, 40, 50, ...; a requested rate is rounded up to the next one. A channel trigger level must
lie within offset +/- 0.75 x range (the InfiniiVision guides' documented rule, adopted here), the AUX
level within +/- ``aux_level_max_v``. Out-of-range values put -222 in the error queue, an
absent channel suffix -114, unknown headers -113, illegal mnemonics -224.

Physics of one acquisition (PHYSICS.md section 3, "Scope/ADC"):

* **Trigger.** The edge trigger source (a channel input or ``aux``) is evaluated from ``world.time``
  over a span of max(10 record lengths, 2 periods of the bench's slowest repeating source): the first
  8192 points at the sample period, the rest on a grid of at most ``trigger_search_points`` points
  (an edge narrower than that grid can be missed); a bracketed crossing is refined to 1/1000 of a
  sample period and interpolated linearly. The trigger
  time ``t_trig`` is the first crossing of the level with the chosen slope after the signal was on
  the other side of the level by the hysteresis (``trigger_hysteresis_div`` divisions for a channel,
  ``aux_hysteresis_v`` for AUX). With no crossing in the span, ``:TRIGger:SWEep AUTO`` auto-triggers
  at ``world.time``; ``TRIGgered``/``SINGle`` would wait forever on a real scope, so the simulation
  puts -200 "Execution error" in the queue and leaves the channels empty (preamble points 0,
  ``:WAVeform:DATA?`` an empty block) instead of hanging.
* **Timebase.** The trigger happens ``:TIMebase:POSition`` before the delay reference point (LEFT,
  CENTer, RIGHt of the 10-division screen); the record is centred on the screen, so
  ``Xorigin = position - ref * 10 * scale + 5 * scale - N / (2 fs)`` (= position when the reference
  is LEFT and the record fills the screen). Samples are taken at ``t_trig + Xorigin + k / fs``.
* **Front end.** The input ``world.voltage_into(name, "ch<n>", .)`` (upstream noise included) passes
  the analog bandwidth ``bandwidth_hz``: a zero-phase low-pass ``response`` of order
  ``response_order`` (``sim_backends.physics.converters.lowpass_response``, the response of the
  converters' ADC model). The record is a uniform grid, so the input is evaluated on a padded grid
  (oversampled by an integer factor to >= 2 x bandwidth when the sample rate is lower, then
  decimated: the scope aliases what its front end passes, as a real one does), filtered by FFT and
  sampled at the record's instants. Aperture jitter (rms ``jitter_s``) then adds v'(t) dt,
  dt ~ N(0, jitter_s^2), with v' the spectral derivative of the filtered input (PHYSICS.md:
  jitter-limited SNR -20 log10(2 pi f sigma_t); ``sim_backends.physics.converters`` convention),
  skipped when its rms would be below 1 % of the scope's own noise at the channel's range. The
  trigger comparator sees the unfiltered input.
* **Signal chain.** The front-end output plus the
  scope's own input-referred Gaussian noise ``sigma_n`` chosen so that noise plus ADC quantization
  give ``enob`` bits at full scale: ``sigma_total = range / (2**ENOB sqrt(12))``,
  ``sigma_n**2 = sigma_total**2 - (range / 2**bits)**2 / 12``; then clipped to
  ``offset +/- range/2`` and quantized by the ``adc_bits`` ADC (codes -2**(bits-1) .. 2**(bits-1)-1,
  LSB = range / 2**bits, code 0 = offset). Clipped samples sit on the end codes.
* **Formats.** WORD = the ADC code left-shifted to 16 bits (low bits zero), Yinc = range / 65536;
  BYTE = the code right-shifted (truncated) to 8 bits, Yinc = range / 256; ASCii = volts. Yorigin =
  offset, so ``volts = code * Yinc + Yorigin`` reproduces the ADC levels exactly.
* **Clock.** ``world.time`` advances to the end of the record (at least one record length); a failed
  TRIGgered search advances it by the searched span. The analog bandwidth is also reported in the
  preamble.

Default parameters (``sim.params``); dagger = datasheet-class value not re-verified (PHYSICS.md §2):

* ``model`` "UXR1104A"; ``bandwidth_hz`` 110e9 †; ``max_sample_rate`` 256e9 (UXR at 256 GSa/s, Al-Kayed
  2025 ✓); ``adc_bits`` 10 †; ``enob`` 6.0 (AWG + UXR system ENOB 6.0 bits at DC ✓, PHYSICS.md §2);
  ``response`` "butterworth", ``response_order`` 4 (front-end shape: modelling choice, as
  ``converters.ADC``); ``jitter_s`` 25e-15 s rms (UXR-class intrinsic jitter, datasheet class value †;
  the DC ENOB above excludes it, so it is added separately);
* ``max_points`` 200e6 per channel † (the model's memory depth; the simulator acquires at most
  ``SIM_MAX_POINTS`` per channel, see the constant: ``:ACQuire:POINts`` beyond is -222 and AUTO stops there);
  ``min_range_v`` 16 mV / ``max_range_v`` 800 mV full scale
  (2-100 mV/div) †; ``max_offset_v`` 1 V †; ``input_modes`` ["DC50"] (UXR inputs are 50 Ohm only);
* ``aux_level_max_v`` 5 V †, ``aux_input_ohm`` 50 †, ``aux_hysteresis_v`` 25 mV,
  ``trigger_hysteresis_div`` 0.1 div, ``trigger_search_points`` 2**13 (modelling choices).

*RST (Infiniium default setup; values not re-verified †): channel 1 on, others off, 10 mV/div,
0 V offset, DC50; 10 ns/div, position 0, reference CENTer; sample rate and points AUTO; EDGE trigger
on CHANnel1, POSitive, 0 V, sweep AUTO; waveform source CHANnel1, ASCii, MSBFirst, streaming OFF.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

import scipy.fft as sfft

from sim_backends.datasheets import datasheet_idle_w
from sim_backends.instrument import SimInstrument
from sim_backends.physics.grids import ResponseCache, band_grid, lowpass_memory_s
from sim_backends.physics.converters import RESPONSES, lowpass_response
from sim_backends.physics.validation import param
from sim_backends.scpi import MAX_ALLOCATION_BYTES, Call, CommandTree, ScpiError, definite_block, format_number
from sim_backends.world import ELECTRICAL_IN

CHANNELS = (1, 2, 3, 4)
AUX = "AUX"
DIVISIONS_V = 8  # vertical divisions
DIVISIONS_H = 10  # horizontal divisions
STREAM_OFF_LIMIT = 999_999_999  # bytes in a definite block with streaming off (p. 875)
#: Most points the simulator acquires per channel (4 Mpts; the UXR holds 200 Mpts and more): an
#: acquisition's temporaries (times, filtered input, noise, codes; one channel after another) peak at
#: ~50 bytes per point (measured: 192 MiB at this depth, 1 or 4 channels), within MAX_ALLOCATION_BYTES.
SIM_MAX_POINTS = MAX_ALLOCATION_BYTES // 64
_EPOCH = datetime(2025, 1, 1)  # the simulated clock's date for world.time = 0
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_TRIGGER_MODES = ("EDGE", "GLITch", "PATTern", "STATe", "DELay", "TIMeout", "TV", "COMM", "RUNT",
                  "SEQuence", "SHOLd", "TRANsition", "WINDow", "PWIDth", "ADVanced")
_INPUT_MODES = ("DC", "DC50", "DCFifty", "AC", "LFR1", "LFR2")
_COUPLING_CODE = {"AC": 0, "DC": 1, "DC50": 2, "LFR1": 3, "LFR2": 3}  # preamble <coupling>
_FORMAT_CODE = {"ASCII": 0, "BYTE": 1, "WORD": 2}  # preamble <format>
_REFERENCE_FRACTION = {"LEFT": 0.0, "CENTER": 0.5, "RIGHT": 1.0}
SEARCH_CHUNK = 8192  # trigger-search points evaluated per call into the world
TRIGGER_RESOLUTION = 1e-3  # trigger time located to this fraction of a sample period
_CHANNEL_WORD = re.compile(r"^CHAN(?:NEL)?(\d{1,9})$")
#: Short forms the instrument answers for its character settings.
_REPLY = {"LEFT": "LEFT", "CENTER": "CENT", "RIGHT": "RIGH", "AUTO": "AUTO", "TRIGGERED": "TRIG",
          "SINGLE": "SING", "ASCII": "ASC", "BYTE": "BYTE", "WORD": "WORD", "LSBFIRST": "LSBF",
          "MSBFIRST": "MSBF", "POSITIVE": "POS", "NEGATIVE": "NEG", "EITHER": "EITH"}


def _flag(value: bool) -> str:
    return "1" if value else "0"


#: NR3 with the fewest digits that read back as exactly the same double.
nr3 = format_number


def _sample_rates(max_rate: float) -> np.ndarray:
    """Available sample rates: the maximum divided by 1, 2, 4, 5, then 1-2-2.5-4-5 decades, >= 1 Sa/s."""
    divisors = {1.0, 2.0, 4.0, 5.0}
    for exponent in range(1, 13):
        for mantissa in (1.0, 2.0, 2.5, 4.0, 5.0):
            divisors.add(mantissa * 10**exponent)
    rates = np.array(sorted((max_rate / d for d in divisors if max_rate / d >= 1.0), reverse=False))
    return rates


@dataclass
class ChannelState:
    display: bool
    range: float  # V full scale
    offset: float  # V at screen centre
    input: str  # DC, DC50, AC, LFR1, LFR2


@dataclass
class Record:
    """One channel's acquired record: ADC codes and the settings they were taken with."""

    codes: np.ndarray  # int16 ADC codes, -2**(bits-1) .. 2**(bits-1)-1
    fs: float
    x_origin: float
    range: float
    offset: float
    coupling: int
    x_display_range: float
    x_display_origin: float
    acquired_at: float  # world.time of the trigger

    @property
    def points(self) -> int:
        return int(self.codes.size)


@dataclass
class TriggerState:
    mode: str = "EDGE"
    source: Any = 1  # channel number or "AUX"
    slope: str = "POSITIVE"
    sweep: str = "AUTO"
    levels: dict = field(default_factory=dict)


class SimKeysightInfiniium(SimInstrument):
    """Simulated Keysight Infiniium: four 50-Ohm inputs ``ch1``..``ch4`` and the ``aux`` trigger input."""

    MODEL = "keysight.Infiniium"
    IDN = ("KEYSIGHT TECHNOLOGIES", "UXR1104A", "11.10.00102")
    TERMINATION = b"\n"
    PORTS = {**{f"ch{n}": ELECTRICAL_IN for n in CHANNELS}, "aux": ELECTRICAL_IN}
    PARAMS = frozenset({"model", "firmware", "bandwidth_hz", "max_sample_rate", "max_points", "adc_bits", "enob",
                        "min_range_v", "max_range_v", "max_offset_v", "input_modes", "aux_level_max_v",
                        "aux_input_ohm", "aux_hysteresis_v", "trigger_hysteresis_div", "trigger_search_points",
                        "response", "response_order", "jitter_s"}) | frozenset({"idle_power_w", "acquiring_power_w"})
    #: Electrical draw (W). A UXR-class scope (four 110 GHz channels) draws of the order of a kilowatt:
    #: ``idle_power_w``, the idle chassis, defaults to this model's entry in ``sim_backends.datasheets``
    #: (assumed); ``acquiring_power_w``, assumed too, is the share that follows acquisition (ADCs and
    #: memory clocked).
    POWER = {"idle_power_w": (datasheet_idle_w(MODEL), 0.0, 1e4), "acquiring_power_w": (300.0, 0.0, 1e4)}

    def __init__(self, name, world, params=None, serial=""):
        p = dict(params or {})
        known = self.PARAMS
        unknown = set(p) - known
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        self._acquiring = False
        self.model = str(p.get("model", "UXR1104A"))
        self.IDN = ("KEYSIGHT TECHNOLOGIES", self.model, str(p.get("firmware", "11.10.00102")))
        self.bandwidth_hz = param(p, "bandwidth_hz", 110e9, 1e6, 1e12)
        self.response = str(p.get("response", "butterworth"))
        if self.response not in RESPONSES:
            raise ValueError(f"response={self.response!r} is not one of {', '.join(RESPONSES)}")
        order = param(p, "response_order", 4, 1, 20)
        if order != int(order):
            raise ValueError(f"response_order={order!r} must be an integer in [1, 20]")
        self.response_order = int(order)
        self.jitter_s = param(p, "jitter_s", 25e-15, 0.0, 1e-9)
        self._front_response = ResponseCache(
            lambda f: lowpass_response(f, self.bandwidth_hz, self.response, self.response_order), size=8)
        self._derivative = ResponseCache(lambda f: 2 * np.pi * f, imaginary=True)
        self.max_sample_rate = param(p, "max_sample_rate", 256e9, 1e3, 1e12)
        self.max_points = int(param(p, "max_points", 200e6, 16, 2e9))
        self.memory_depth = min(self.max_points, SIM_MAX_POINTS)
        self.adc_bits = int(param(p, "adc_bits", 10, 6, 16))
        if self.adc_bits != param(p, "adc_bits", 10, 6, 16):
            raise ValueError(f"adc_bits={p['adc_bits']!r} must be an integer")
        self.enob = param(p, "enob", 6.0, 1.0, float(self.adc_bits))
        self.min_range_v = param(p, "min_range_v", 0.016, 1e-4, 1e3)
        self.max_range_v = param(p, "max_range_v", 0.8, self.min_range_v, 1e3)
        self.max_offset_v = param(p, "max_offset_v", 1.0, 0.0, 1e3)
        modes = p.get("input_modes", ["DC50"])
        valid = ("DC", "DC50", "AC", "LFR1", "LFR2")
        if isinstance(modes, str) or not modes or any(str(m).upper() not in valid for m in modes):
            raise ValueError(f"input_modes={modes!r} must be a non-empty list of DC, DC50, AC, LFR1, LFR2")
        self.input_modes = [str(m).upper() for m in modes]
        self.aux_level_max_v = param(p, "aux_level_max_v", 5.0, 0.0, 100.0)
        self.aux_input_ohm = param(p, "aux_input_ohm", 50.0, 1.0, 1e9)
        self.aux_hysteresis_v = param(p, "aux_hysteresis_v", 0.025, 0.0, 10.0)
        self.trigger_hysteresis_div = param(p, "trigger_hysteresis_div", 0.1, 0.0, 4.0)
        self.trigger_search_points = int(param(p, "trigger_search_points", 2**13, 1024, 2**26))
        self._rates = _sample_rates(self.max_sample_rate)
        self._records: dict[int, Record] = {}
        super().__init__(name, world, params, serial)

    # -- derived physics -----------------------------------------------------------------------

    def adc_lsb(self, range_v: float) -> float:
        """Volts per ADC code at full-scale range ``range_v``."""
        return range_v / 2**self.adc_bits

    def noise_sigma(self, range_v: float) -> float:
        """Input-referred noise (V rms) that, with quantization, gives ``enob`` bits at full scale."""
        total = range_v / (2**self.enob * math.sqrt(12))
        quantization = self.adc_lsb(range_v) / math.sqrt(12)
        return math.sqrt(max(total**2 - quantization**2, 0.0))

    def input_resistance(self, port: str) -> float:
        if port == "aux":
            return self.aux_input_ohm
        return 50.0 if self.channel[int(port[2:])].input == "DC50" else 1e6

    # -- settings ------------------------------------------------------------------------------

    def state_power_w(self) -> float:
        """Acquiring (RUN) keeps the ADCs and acquisition memory clocked; stopped, only the idle draw."""
        return self.power_params["acquiring_power_w"] if self.running or self._acquiring else 0.0

    def reset(self) -> None:
        default_input = "DC50" if "DC50" in self.input_modes else self.input_modes[0]
        default_range = min(max(DIVISIONS_V * 10e-3, self.min_range_v), self.max_range_v)
        self.channel = {n: ChannelState(display=(n == 1), range=default_range, offset=0.0,
                                        input=default_input) for n in CHANNELS}
        self.timebase_scale = 10e-9
        self.timebase_position = 0.0
        self.timebase_reference = "CENTER"
        self.srate_auto = True
        self.srate_manual = float(self._rates[-1])
        self.points_auto = True
        self.points_manual = 1000
        self.trigger = TriggerState(levels={**{n: 0.0 for n in CHANNELS}, AUX: 0.0})
        self.waveform_source = 1
        self.waveform_format = "ASCII"
        self.waveform_byteorder = "MSBFIRST"
        self.waveform_streaming = False
        self.running = True
        self.acquisition_done = False
        self._records = {}

    def acquisition_config(self) -> tuple[float, int]:
        """(sample rate, points) per the SRATe/POINts AUTO interaction table (90000 guide p. 160)."""
        span = DIVISIONS_H * self.timebase_scale
        rates = self._rates
        if not self.srate_auto:
            fs = self.srate_manual
            if self.points_auto:
                return fs, int(min(max(round(span * fs), 16), self.memory_depth))
            return fs, int(self.points_manual)
        if self.points_auto:
            fitting = rates[rates * span <= self.memory_depth]
            fs = float(fitting[-1]) if fitting.size else float(rates[0])
            return fs, int(min(max(round(span * fs), 16), self.memory_depth))
        n = int(self.points_manual)
        fitting = rates[rates <= n / span * (1 + 1e-12)]
        fs = float(fitting[-1]) if fitting.size else float(rates[0])
        return fs, n

    def x_display(self) -> tuple[float, float]:
        """(X display range, X display origin = left edge relative to the trigger), in s."""
        span = DIVISIONS_H * self.timebase_scale
        return span, self.timebase_position - _REFERENCE_FRACTION[self.timebase_reference] * span

    def x_origin(self, fs: float, points: int) -> float:
        """Time of the first sample relative to the trigger: the record is centred on the screen."""
        span, left = self.x_display()
        return left + span / 2 - points / (2 * fs)

    # -- command table -------------------------------------------------------------------------

    def build(self, tree: CommandTree) -> None:
        # Infiniium answers SYSTem:ERRor? with the number only unless STRing is asked for (replaces
        # the common form declared by the base class)
        tree.add("SYSTem:ERRor[:NEXT]", getter=self._system_error)
        answer = self._answer
        tree.add("SYSTem:HEADer", setter=self._set_header, getter=answer(lambda: "0"))
        tree.add("ACQuire:SRATe[:ANALog]", setter=self._set_srate, getter=self._get_srate)
        tree.add("ACQuire:SRATe[:ANALog]:AUTO", setter=self._set_srate_auto,
                 getter=answer(lambda: _flag(self.srate_auto)))
        tree.add("ACQuire:POINts[:ANALog]", setter=self._set_points, getter=self._get_points)
        tree.add("ACQuire:POINts:AUTO", setter=self._set_points_auto,
                 getter=answer(lambda: _flag(self.points_auto)))
        tree.add("TIMebase:SCALe", setter=self._set_tb_scale, getter=answer(lambda: nr3(self.timebase_scale)))
        tree.add("TIMebase:RANGe", setter=self._set_tb_range,
                 getter=answer(lambda: nr3(DIVISIONS_H * self.timebase_scale)))
        tree.add("TIMebase:POSition", setter=self._set_tb_position,
                 getter=answer(lambda: nr3(self.timebase_position)))
        tree.add("TIMebase:REFerence", setter=self._set_tb_reference,
                 getter=answer(lambda: _REPLY[self.timebase_reference]))
        tree.add("CHANnel#:DISPlay", setter=self._set_display, getter=self._get_display)
        tree.add("CHANnel#:RANGe", setter=self._set_range, getter=self._get_range)
        tree.add("CHANnel#:SCALe", setter=self._set_scale, getter=self._get_scale)
        tree.add("CHANnel#:OFFSet", setter=self._set_offset, getter=self._get_offset)
        tree.add("CHANnel#:INPut", setter=self._set_input, getter=self._get_input)
        tree.add("TRIGger:MODE", setter=self._set_trigger_mode, getter=answer(lambda: self.trigger.mode))
        tree.add("TRIGger:EDGE#:SOURce", setter=self._set_trigger_source, getter=self._get_trigger_source)
        tree.add("TRIGger:EDGE#:SLOPe", setter=self._set_trigger_slope, getter=self._get_trigger_slope)
        tree.add("TRIGger:LEVel", setter=self._set_trigger_level, getter=self._get_trigger_level)
        tree.add("TRIGger:SWEep", setter=self._set_sweep, getter=answer(lambda: _REPLY[self.trigger.sweep]))
        tree.add("DIGitize", setter=self._digitize)
        tree.add("SINGle", setter=self._single)
        tree.add("RUN", setter=self._run)
        tree.add("STOP", setter=self._stop)
        tree.add("ADER", getter=self._ader)
        tree.add("PDER", getter=answer(lambda: "1"))
        tree.add("WAVeform:SOURce", setter=self._set_wf_source,
                 getter=answer(lambda: f"CHAN{self.waveform_source}"))
        tree.add("WAVeform:FORMat", setter=self._set_wf_format,
                 getter=answer(lambda: _REPLY[self.waveform_format]))
        tree.add("WAVeform:BYTeorder", setter=self._set_byteorder,
                 getter=answer(lambda: _REPLY[self.waveform_byteorder]))
        tree.add("WAVeform:STReaming", setter=self._set_streaming,
                 getter=answer(lambda: _flag(self.waveform_streaming)))
        tree.add("WAVeform:PREamble", getter=self._preamble)
        tree.add("WAVeform:DATA", getter=self._data)
        tree.add("WAVeform:POINts", getter=answer(lambda: str(self._source_record_points())))
        for node, key in (("XINCrement", "x_increment"), ("XORigin", "x_origin"),
                          ("YINCrement", "y_increment"), ("YORigin", "y_origin")):
            tree.add(f"WAVeform:{node}", getter=answer(lambda key=key: nr3(self._scaling()[key])))
        tree.add("WAVeform:XREFerence", getter=answer(lambda: "0"))
        tree.add("WAVeform:YREFerence", getter=answer(lambda: "0"))

    @staticmethod
    def _answer(reply):
        """A query handler taking no parameters and answering ``reply()``."""

        def getter(call: Call) -> str:
            call.expect(0)
            return reply()

        return getter

    # -- system ----------------------------------------------------------------------------------

    def _system_error(self, call: Call) -> str:
        call.expect(0, 1)
        kind = call.param(0).choice(["NUMBer", "STRing"]) if call.params else "NUMBER"
        entry = self.next_error()
        return entry if kind == "STRING" else entry.partition(",")[0]

    def _set_header(self, call: Call) -> None:
        call.expect(1)
        if call.param(0).boolean():
            raise ScpiError(-221, "response headers are not simulated; use :SYSTem:HEADer OFF")

    # -- acquire ---------------------------------------------------------------------------------

    def _set_srate(self, call: Call) -> None:
        call.expect(1)
        word = call.param(0).upper
        if word == "AUTO":
            self.srate_auto = True
            return
        rates = self._rates
        rate = call.param(0).number("SA/S", float(rates[0]), float(rates[-1]), default=float(rates[-1]),
                                    alt_units={"HZ": lambda v: v})
        # "rounded to the next fastest sample rate" (90000 guide p. 160)
        index = int(np.searchsorted(rates, rate * (1 - 1e-12)))
        self.srate_manual = float(rates[min(index, rates.size - 1)])
        self.srate_auto = False

    def _get_srate(self, call: Call) -> str:
        call.expect(0, 1)
        if call.params:
            word = call.param(0).choice(["MINimum", "MAXimum"])
            return nr3(self._rates[0] if word == "MINIMUM" else self._rates[-1])
        return nr3(self.acquisition_config()[0])

    def _set_srate_auto(self, call: Call) -> None:
        call.expect(1)
        self.srate_auto = call.param(0).boolean()

    def _set_points(self, call: Call) -> None:
        call.expect(1)
        if call.param(0).upper == "AUTO":
            self.points_auto = True
            return
        self.points_manual = call.param(0).integer(16, self.memory_depth, default=1000)
        self.points_auto = False

    def _get_points(self, call: Call) -> str:
        call.expect(0)
        return str(self.acquisition_config()[1])

    def _set_points_auto(self, call: Call) -> None:
        call.expect(1)
        self.points_auto = call.param(0).boolean()

    # -- timebase --------------------------------------------------------------------------------

    def _set_tb_scale(self, call: Call) -> None:
        call.expect(1)
        self.timebase_scale = call.param(0).number("S", 1e-12, 20.0, default=10e-9)

    def _set_tb_range(self, call: Call) -> None:
        call.expect(1)
        self.timebase_scale = call.param(0).number("S", 1e-11, 200.0, default=100e-9) / DIVISIONS_H

    def _set_tb_position(self, call: Call) -> None:
        call.expect(1)
        self.timebase_position = call.param(0).number("S", -200.0, 200.0, default=0.0)

    def _set_tb_reference(self, call: Call) -> None:
        call.expect(1)
        self.timebase_reference = call.param(0).choice(["LEFT", "CENTer", "RIGHt"])

    # -- channels --------------------------------------------------------------------------------

    def _ch(self, call: Call) -> ChannelState:
        return self.channel[call.suffix(0, 1, len(CHANNELS))]

    def _set_display(self, call: Call) -> None:
        call.expect(1)
        self._ch(call).display = call.param(0).boolean()

    def _get_display(self, call: Call) -> str:
        call.expect(0)
        return "1" if self._ch(call).display else "0"

    def _set_range(self, call: Call) -> None:
        call.expect(1)
        ch = self._ch(call)
        ch.range = call.param(0).number("V", self.min_range_v, self.max_range_v, default=DIVISIONS_V * 10e-3)

    def _get_range(self, call: Call) -> str:
        call.expect(0)
        return nr3(self._ch(call).range)

    def _set_scale(self, call: Call) -> None:
        call.expect(1)
        ch = self._ch(call)
        ch.range = DIVISIONS_V * call.param(0).number(
            "V", self.min_range_v / DIVISIONS_V, self.max_range_v / DIVISIONS_V, default=10e-3)

    def _get_scale(self, call: Call) -> str:
        call.expect(0)
        return nr3(self._ch(call).range / DIVISIONS_V)

    def _set_offset(self, call: Call) -> None:
        call.expect(1)
        ch = self._ch(call)
        ch.offset = call.param(0).number("V", -self.max_offset_v, self.max_offset_v, default=0.0)

    def _get_offset(self, call: Call) -> str:
        call.expect(0)
        return nr3(self._ch(call).offset)

    def _set_input(self, call: Call) -> None:
        call.expect(1)
        ch = self._ch(call)
        mode = call.param(0).choice(_INPUT_MODES)
        mode = "DC50" if mode == "DCFIFTY" else mode
        if mode not in self.input_modes:
            raise ScpiError(-224, f"input {mode} not available on the {self.model}; "
                                  f"it has {', '.join(self.input_modes)}")
        ch.input = mode

    def _get_input(self, call: Call) -> str:
        call.expect(0)
        return self._ch(call).input

    # -- trigger ---------------------------------------------------------------------------------

    def _set_trigger_mode(self, call: Call) -> None:
        call.expect(1)
        mode = call.param(0).choice(_TRIGGER_MODES)
        if mode != "EDGE":
            raise ScpiError(-221, f"only the EDGE trigger is simulated, not {mode}")
        self.trigger.mode = mode

    @staticmethod
    def _parse_source(text: str, allow_aux: bool = True):
        word = text.strip().upper()
        if allow_aux and word == AUX:
            return AUX
        match = _CHANNEL_WORD.match(word)
        if match and int(match.group(1)) in CHANNELS:
            return int(match.group(1))
        choices = f"CHANnel1..{len(CHANNELS)}" + (" or AUX" if allow_aux else "")
        raise ScpiError(-224, f"{text.strip()!r} is not {choices}")

    def _set_trigger_source(self, call: Call) -> None:
        call.suffix(0, 1, 1)
        call.expect(1)
        self.trigger.source = self._parse_source(call.param(0).text)

    def _get_trigger_source(self, call: Call) -> str:
        call.suffix(0, 1, 1)
        call.expect(0)
        return AUX if self.trigger.source == AUX else f"CHAN{self.trigger.source}"

    def _set_trigger_slope(self, call: Call) -> None:
        call.suffix(0, 1, 1)
        call.expect(1)
        self.trigger.slope = call.param(0).choice(["POSitive", "NEGative", "EITHer"])

    def _get_trigger_slope(self, call: Call) -> str:
        call.suffix(0, 1, 1)
        call.expect(0)
        return {"POSITIVE": "POS", "NEGATIVE": "NEG", "EITHER": "EITH"}[self.trigger.slope]

    def _level_limits(self, source) -> tuple[float, float]:
        """Legal trigger levels: the channel's screen +/- 25 % (0.75 x full scale from centre); AUX fixed."""
        if source == AUX:
            return -self.aux_level_max_v, self.aux_level_max_v
        ch = self.channel[source]
        return ch.offset - 0.75 * ch.range, ch.offset + 0.75 * ch.range

    def _set_trigger_level(self, call: Call) -> None:
        call.expect(2)
        source = self._parse_source(call.param(0).text)
        low, high = self._level_limits(source)
        self.trigger.levels[source] = call.param(1).number("V", low, high, default=0.0)

    def _get_trigger_level(self, call: Call) -> str:
        call.expect(1)
        return nr3(self.trigger.levels[self._parse_source(call.param(0).text)])

    def _set_sweep(self, call: Call) -> None:
        call.expect(1)
        self.trigger.sweep = call.param(0).choice(["AUTO", "TRIGgered", "SINGle"])

    # -- acquisition -----------------------------------------------------------------------------

    def _digitize(self, call: Call) -> None:
        if call.params:
            chans = list(dict.fromkeys(self._parse_source(p.text, allow_aux=False) for p in call.params))
            for n in chans:
                self.channel[n].display = True
        else:
            chans = [n for n in CHANNELS if self.channel[n].display]
        if not chans:
            raise ScpiError(-221, "no channel is turned on to digitize")
        self._acquire(chans)

    def _single(self, call: Call) -> None:
        call.expect(0)
        chans = [n for n in CHANNELS if self.channel[n].display]
        if not chans:
            raise ScpiError(-221, "no channel is turned on")
        self._acquire(chans)
        self.running = False

    def _run(self, call: Call) -> None:
        call.expect(0)
        self.running = True

    def _stop(self, call: Call) -> None:
        call.expect(0)
        self.running = False

    def _ader(self, call: Call) -> str:
        call.expect(0)
        done, self.acquisition_done = self.acquisition_done, False
        return "1" if done else "0"

    def _acquire(self, chans: list[int]) -> None:
        """One acquisition of ``chans``: trigger search, sampling, noise, clipping, quantization (the
        clock advances over it with the scope drawing its acquiring power, even when stopped)."""
        self._acquiring = True
        try:
            self._acquire_record(chans)
        finally:
            self._acquiring = False

    def _acquire_record(self, chans: list[int]) -> None:
        fs, points = self.acquisition_config()
        x_origin = self.x_origin(fs, points)
        x_range, x_left = self.x_display()
        start = self.world.time
        t_trig, span = self._find_trigger(fs, points)
        for n in CHANNELS:
            self._records.pop(n, None)
        if t_trig is None:
            if self.trigger.sweep == "AUTO":
                t_trig = start  # auto trigger
            else:
                self.world.advance_to(start + span)
                source = AUX if self.trigger.source == AUX else f"CHANnel{self.trigger.source}"
                level = self.trigger.levels[self.trigger.source]
                raise ScpiError(-200, f"no trigger: {source} did not cross {level:g} V "
                                      f"({self.trigger.slope}) within {span:.3g} s; "
                                      f"sweep {self.trigger.sweep}")
        t = t_trig + x_origin + np.arange(points, dtype=np.float64) / fs
        for n in chans:
            ch = self.channel[n]
            volts = self.front_end(f"ch{n}", t, ch.range)
            self._records[n] = Record(
                codes=self._quantize(volts, ch.range, ch.offset), fs=fs, x_origin=x_origin,
                range=ch.range, offset=ch.offset, coupling=_COUPLING_CODE[ch.input],
                x_display_range=x_range, x_display_origin=x_left, acquired_at=t_trig)
        self.world.advance_to(max(start + points / fs, t_trig, float(t[-1]) + 1 / fs))
        self.acquisition_done = True

    def front_end(self, port: str, t: np.ndarray, range_v: float | None = None) -> np.ndarray:
        """Input voltage at the sample instants ``t`` after the analog bandwidth and aperture jitter.

        With ``range_v`` the jitter term is skipped when it is negligible: when its rms
        jitter_s rms(v') (Parseval on the filtered spectrum) is below 1 % of the scope's own noise at
        that range, i.e. it would add < 1e-4 to the noise variance.
        """
        band = self.bandwidth_hz
        grid = band_grid(t, band, lowpass_memory_s(band, self.response_order))
        if grid is None:
            return np.asarray(self.world.voltage_into(self.name, port, t), dtype=float)
        v = np.asarray(self.world.voltage_into(self.name, port, grid.times), dtype=np.float32)
        if not v.size or v.min() == v.max():
            return grid.take(v).astype(float)  # a constant: no filtering to do, no slope for jitter
        n, fs = v.size, grid.fs
        spectrum = sfft.rfft(v)
        spectrum *= self._front_response.on_grid(n, fs)
        out = grid.take(sfft.irfft(spectrum, n)).astype(float)
        if self.jitter_s > 0:
            spectrum *= self._derivative.on_grid(n, fs)  # d/dt of the filtered input
            if n % 2 == 0:
                spectrum[-1] = 0.0  # the Nyquist bin has no defined derivative
            if range_v is not None:
                power = 2 * np.sum(np.abs(spectrum[1:]) ** 2, dtype=np.float64) / n**2  # mean v'^2
                if self.jitter_s * math.sqrt(power) < 0.01 * self.noise_sigma(range_v):
                    return out
            slope = grid.take(sfft.irfft(spectrum, n))
            slope *= self.world.rng.standard_normal(slope.shape, dtype=np.float32)
            out += self.jitter_s * slope
        return out

    def _quantize(self, volts: np.ndarray, range_v: float, offset_v: float) -> np.ndarray:
        """Add the scope's noise, clip to offset +/- range/2 and quantize to ADC codes (int16)."""
        lsb = self.adc_lsb(range_v)
        half = 2 ** (self.adc_bits - 1)
        x = np.subtract(volts, offset_v, dtype=np.float64)
        x += self.world.rng.standard_normal(x.shape, dtype=np.float32) * self.noise_sigma(range_v)
        x /= lsb
        np.rint(x, out=x)
        np.clip(x, -half, half - 1, out=x)
        return x.astype(np.int16)

    # -- trigger search --------------------------------------------------------------------------

    def _trigger_signal(self, t: np.ndarray) -> np.ndarray:
        port = "aux" if self.trigger.source == AUX else f"ch{self.trigger.source}"
        return np.asarray(self.world.voltage_into(self.name, port, t), dtype=float)

    def _find_trigger(self, fs: float, points: int) -> tuple[float | None, float]:
        """First edge after ``world.time``: (trigger time or None, searched span in s)."""
        source = self.trigger.source
        level = self.trigger.levels[source]
        if source == AUX:
            hysteresis = self.aux_hysteresis_v
        else:
            hysteresis = self.trigger_hysteresis_div * self.channel[source].range / DIVISIONS_V
        period = self.world.modulation_period()
        span = max(DIVISIONS_H * points / fs, 2 * period if period else 0.0, 16 / fs)
        start = self.world.time
        slopes = ("POSITIVE", "NEGATIVE") if self.trigger.slope == "EITHER" else (self.trigger.slope,)
        armed = {s: False for s in slopes}
        prev_t = prev_v = None
        # the first SEARCH_CHUNK samples at the sample period, the rest of the span on a grid of at
        # most trigger_search_points points
        fine = min(SEARCH_CHUNK, int(math.ceil(span * fs)))
        coarse_step = max(1 / fs, (span - fine / fs) / self.trigger_search_points)
        coarse = max(int(math.ceil((span - fine / fs) / coarse_step)), 0)
        grids = [(start, 1 / fs, fine)] + ([(start + fine / fs, coarse_step, coarse)] if coarse else [])
        chunks = [(t0 + k * step, step, min(SEARCH_CHUNK, n - k)) for t0, step, n in grids
                  for k in range(0, n, SEARCH_CHUNK)]
        for t0, step, count in chunks:
            t = t0 + np.arange(count) * step
            v = self._trigger_signal(t)
            best = None
            for slope in slopes:
                if slope == "POSITIVE":
                    arming, firing = v <= level - hysteresis, v >= level
                else:
                    arming, firing = v >= level + hysteresis, v <= level
                armed_so_far = np.logical_or.accumulate(arming)
                armed_before = np.empty_like(armed_so_far)
                armed_before[0] = armed[slope]
                armed_before[1:] = armed_so_far[:-1] | armed[slope]
                hits = np.flatnonzero(firing & armed_before)
                if hits.size and (best is None or hits[0] < best[0]):
                    best = (int(hits[0]), slope)
                armed[slope] = armed[slope] or bool(armed_so_far[-1])
            if best is not None:
                i, slope = best
                if i == 0:
                    ta, va = (prev_t, prev_v) if prev_t is not None else (t[0], v[0])
                else:
                    ta, va = t[i - 1], v[i - 1]
                return self._refine(ta, va, t[i], v[i], level, slope, fs), span
            prev_t, prev_v = t[-1], v[-1]
        return None, span

    def _refine(self, ta, va, tb, vb, level, slope, fs) -> float:
        """Narrow a bracketed crossing to TRIGGER_RESOLUTION sample periods, then interpolate linearly.

        The first passes sample the bracket at the sample period; later passes split it 16-fold,
        so a step between two samples is located to a small fraction of a sample (a real trigger
        comparator is analog; its timing resolution is set by its jitter, not by the ADC clock).
        """
        crossed = (lambda x: x >= level) if slope == "POSITIVE" else (lambda x: x <= level)
        while tb - ta > TRIGGER_RESOLUTION / fs:
            m = int(min(math.ceil((tb - ta) * fs) + 1, 65537)) if tb - ta > 1.5 / fs else 17
            tt = np.linspace(ta, tb, m)
            vv = self._trigger_signal(tt)
            hits = np.flatnonzero(crossed(vv[1:]))
            j = int(hits[0]) + 1 if hits.size else m - 1
            ta, va, tb, vb = tt[j - 1], (va if j == 1 else vv[j - 1]), tt[j], vv[j]
        if crossed(va):
            return float(ta)
        if not crossed(vb) or vb == va:
            return float(tb)
        return float(ta + (level - va) / (vb - va) * (tb - ta))

    # -- waveform queries ------------------------------------------------------------------------

    def _set_wf_source(self, call: Call) -> None:
        call.expect(1)
        self.waveform_source = self._parse_source(call.param(0).text, allow_aux=False)

    def _set_wf_format(self, call: Call) -> None:
        call.expect(1)
        fmt = call.param(0).choice(["ASCii", "BYTE", "WORD", "LONG", "FLOat", "BINary"])
        if fmt not in _FORMAT_CODE:
            raise ScpiError(-221, f"waveform format {fmt} is not simulated; use WORD, BYTE or ASCii")
        self.waveform_format = fmt

    def _set_byteorder(self, call: Call) -> None:
        call.expect(1)
        self.waveform_byteorder = call.param(0).choice(["LSBFirst", "MSBFirst"])

    def _set_streaming(self, call: Call) -> None:
        call.expect(1)
        self.waveform_streaming = call.param(0).boolean()

    def _source_record_points(self) -> int:
        record = self._records.get(self.waveform_source)
        return record.points if record else 0

    def _scaling(self) -> dict[str, float]:
        """X/Y scaling of the current source in the current format (the preamble's numbers)."""
        record = self._records.get(self.waveform_source)
        if record is not None:
            range_v, offset, fs, x_origin = record.range, record.offset, record.fs, record.x_origin
        else:
            ch = self.channel[self.waveform_source]
            fs, points = self.acquisition_config()
            range_v, offset, x_origin = ch.range, ch.offset, self.x_origin(fs, points)
        bits = {"WORD": 16, "BYTE": 8}.get(self.waveform_format, self.adc_bits)
        return {"x_increment": 1 / fs, "x_origin": x_origin,
                "y_increment": range_v / 2**bits, "y_origin": offset}

    def _preamble(self, call: Call) -> str:
        call.expect(0)
        record = self._records.get(self.waveform_source)
        ch = self.channel[self.waveform_source]
        scaling = self._scaling()
        if record is not None:
            x_range, x_left = record.x_display_range, record.x_display_origin
            y_range, y_origin, coupling = record.range, record.offset, record.coupling
            when = _EPOCH + timedelta(seconds=record.acquired_at)
        else:
            (x_range, x_left), y_range, y_origin = self.x_display(), ch.range, ch.offset
            coupling, when = _COUPLING_CODE[ch.input], _EPOCH + timedelta(seconds=self.world.time)
        points = record.points if record else 0
        fields = [
            str(_FORMAT_CODE[self.waveform_format]), "1", str(points), "1" if record else "0",
            nr3(scaling["x_increment"]), nr3(scaling["x_origin"]), "0",
            nr3(scaling["y_increment"]), nr3(scaling["y_origin"]), "0", str(coupling),
            nr3(x_range), nr3(x_left), nr3(y_range), nr3(y_origin),
            f'"{when.day:02d} {_MONTHS[when.month - 1]} {when.year}"',
            f'"{when.hour:02d}:{when.minute:02d}:{when.second:02d}:{when.microsecond // 10000:02d}"',
            f'"{self.model}:{self.serial}"', "0", "100" if record else "0", "2", "1",
            nr3(self.bandwidth_hz), nr3(0.0),
        ]
        return ",".join(fields)

    def _data(self, call: Call) -> bytes:
        call.expect(0, 2)
        record = self._records.get(self.waveform_source)
        codes = record.codes if record is not None else np.zeros(0, dtype=np.int16)
        if call.params:
            start = call.param(0).integer(1, max(codes.size, 1))
            size = call.param(1).integer(1, 2**62) if len(call.params) > 1 else codes.size
            codes = codes[start - 1: start - 1 + size]
        if self.waveform_format == "WORD":
            shifted = np.left_shift(codes, 16 - self.adc_bits)
            dtype = "<i2" if self.waveform_byteorder == "LSBFIRST" else ">i2"
            payload = shifted.astype(dtype, copy=False).tobytes()
        elif self.waveform_format == "BYTE":
            shift = self.adc_bits - 8
            byte_codes = np.right_shift(codes, shift) if shift >= 0 else np.left_shift(codes, -shift)
            payload = byte_codes.astype(np.int8).tobytes()
        else:
            volts = codes * self.adc_lsb(record.range) + record.offset if record is not None else codes
            payload = ",".join(f"{v:.16E}" for v in np.asarray(volts, dtype=float).tolist()).encode("ascii")
        if self.waveform_streaming:
            return b"#0" + payload
        if len(payload) > STREAM_OFF_LIMIT:
            self.push_error(ScpiError(-222, "more than 999,999,999 bytes with streaming off; data truncated"))
            payload = payload[:STREAM_OFF_LIMIT]
        return definite_block(payload)
