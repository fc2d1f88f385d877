"""Keysight M8195A 65 GSa/s arbitrary waveform generator (AXIe module, 1, 2 or 4 channels).

Command syntax follows *Keysight M8195A Arbitrary Waveform Generator Revision 2 - User's Guide*,
part number M8195-91040, edition 6.0 (March 2017), chapter 6 "General Programming". The SCPI
server is the module's Soft Front Panel (HiSLIP ``TCPIP0::<host>::hislip0::INSTR``, VXI-11
``inst0`` or socket port 5025, section 6.3.1). Commands used here, as the guide prints them:

* 6.8  ``:ABORt``, ``:INITiate:IMMediate[:SEQuence]`` (channel suffixes are ignored: all channels
  start and stop together), ``:INITiate:CONTinuous[:STATe]``, ``:INITiate:GATE[:STATe]``,
  ``:ARM:TRIGger:SOURce TRIGger|EVENt|INTernal``, ``:ARM:TRIGger:SLOPe``;
  6.9 ``:TRIGger[:SEQuence][:STARt]:BEGin[:IMMediate]`` (software start event in triggered mode);
* 6.11 ``:INSTrument:DACMode SINGle|DUAL|FOUR|MARKer|DCDuplicate|DCMarker``,
  ``:INSTrument:MEMory:EXTended:RDIVider DIV1|DIV2|DIV4``;
* 6.13 ``:OUTPut[1|2|3|4][:STATe] OFF|ON|0|1``;
* 6.14 ``[:SOURce]:FREQuency:RASTer <frequency>|MINimum|MAXimum`` (53.76 GSa/s ... 65 GSa/s);
* 6.16 ``[:SOURce]:VOLTage[1|2|3|4][:AMPLitude]``, ``[:SOURce]:VOLTage[1|2|3|4]:OFFSet``;
* 6.21 ``:TRACe[1|2|3|4]:MMODe``, ``:TRACe[1|2|3|4]:DEFine <segment_id>,<length>[,<init_value>]``,
  ``:TRACe[1|2|3|4][:DATA] <segment_id>,<offset>,<block>`` (signed 8-bit samples, -128..+127,
  one byte per sample without markers, table 44), ``:TRACe[1|2|3|4]:DELete <segment_id>``,
  ``:TRACe[1|2|3|4]:DELete:ALL``, ``:TRACe[1|2|3|4]:CATalog?``, ``:TRACe[1|2|3|4]:SELect``.

Segment rules (section 3.2.1, "the sample count of segments must be in multiples of the segment
granularity; a minimum length is also required (see datasheet)"): granularity **256 samples**,
minimum length **1280 samples** (the values Keysight's own PyArbTools enforces for the M8195A; the
M8196A has 128/128). ``upload_waveform`` validates and, by default, repeats a waveform the fewest
times that meet both rules, so the looped output is unchanged; ``pad="zero"`` appends DAC code 0
instead, ``pad=None`` refuses any length that does not already comply.

In extended memory (section 1.5 / 3.1) all channels sourced from extended memory share one segment
table: defining or deleting a segment on one such channel does it on all of them; their sample data
stay per channel. In internal memory every channel has its own segment and the lengths may differ.

Output levels are from the M8195A data sheet (not re-verified, PHYSICS.md table 2): amplitude
75 mVpp ... 1 Vpp single ended into 50 ohm, offset -1 V ... +1 V. All quantities are already SI
(V, Sa/s), so the ``AWGChannel`` / ``ArbitraryWaveformGenerator`` role members are the pymeasure
properties themselves plus a few methods.
"""

from __future__ import annotations

import logging
import math
from enum import Enum
from typing import Sequence

import numpy as np
from pymeasure.instruments import Instrument

from drivers.base import LabChannel, LabInstrument, in_range, in_set
from drivers.errors import ValueOutOfRange
from drivers.limits import READ, SET, VOLTAGE_SUFFIXES, Enables, Limited, LimitedCommand, channel_members

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SAMPLE_RATE_RANGE = (53.76e9, 65e9)  #: Sa/s, DAC sample rate (section 1.5, 6.14).
AMPLITUDE_RANGE = (0.075, 1.0)  #: Vpp single ended into 50 ohm (data sheet).
OFFSET_RANGE = (-1.0, 1.0)  #: V (data sheet).
SEGMENT_GRANULARITY = 256  #: samples; segment lengths are multiples of this.
SEGMENT_MIN_LENGTH = 1280  #: samples; shortest segment.
SEGMENT_ID_RANGE = (1, 16_777_216)  #: "up to ~16 Mio unique segments" with option -SEQ (3.1).
DAC_FULL_SCALE = 127  #: DAC code of a normalised sample of +1 (codes -127..+127 are used).
#: Largest segment ``pad="repeat"`` builds before asking for ``pad="zero"`` instead.
MAX_REPEATED_LENGTH = 1 << 26


class DACMode(str, Enum):
    """Operation modes of ``:INSTrument:DACMode`` (section 6.11) and the channels they drive."""

    SINGLE = "SING"  #: Channel 1 only.
    DUAL = "DUAL"  #: Channels 1 and 4.
    FOUR = "FOUR"  #: Channels 1, 2, 3 and 4.
    MARKER = "MARK"  #: Channel 1, its two markers on channels 3 and 4.
    DUAL_DUPLICATE = "DCD"  #: Channels 1 and 2; channel 3 repeats 1, channel 4 repeats 2.
    DUAL_MARKER = "DCM"  #: Channels 1 and 2; channel 1's markers on channels 3 and 4.


class MemoryMode(str, Enum):
    """Sample source of a channel, ``:TRACe:MMODe`` (section 6.21)."""

    INTERNAL = "INT"
    EXTENDED = "EXT"
    NONE = "NONE"  #: Query only: the channel carries no waveform in the current DAC mode.


class ArmSource(str, Enum):
    """Source of the trigger function, ``:ARM:TRIGger:SOURce`` (section 6.8)."""

    TRIGGER = "TRIG"  #: Trigger input.
    EVENT = "EVEN"  #: Event input.
    INTERNAL = "INT"  #: Internal trigger generator.


def _member(enum_cls, settable=None):
    """A validator accepting a member of ``enum_cls``, its SCPI value or its name (any case)."""
    allowed = tuple(settable or enum_cls)

    def validate(value, values):
        member = None
        if isinstance(value, enum_cls):
            member = value
        elif isinstance(value, str):
            word = value.strip().upper()
            member = next((m for m in enum_cls if word in (m.value, m.name)), None)
        if member not in allowed:
            names = ", ".join(f"{m.name} ({m.value})" for m in allowed)
            raise ValueOutOfRange(f"{value!r} is not one of {names}")
        return member

    return validate


PAD_MODES = ("repeat", "zero", None)
_CHUNK = 1 << 16  # samples converted per step


def waveform_to_codes(samples: Sequence[float] | np.ndarray, pad: str | None = "repeat") -> np.ndarray:
    """Convert normalised samples in [-1, 1] to int8 DAC codes of a valid segment length.

    A sample ``x`` becomes ``round(127 x)`` (full scale = amplitude/2). ``pad`` decides what
    happens when the length is not a multiple of 256 or shorter than 1280 samples:
    ``"repeat"`` tiles the waveform the fewest whole times that comply (the looped output is the
    same), ``"zero"`` appends code 0 up to the next valid length, ``None`` raises ``ValueError``.
    """
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"a waveform is a non-empty 1-D array of samples; got shape {x.shape}")
    # Check, scale and round in cache-sized chunks: one pass over memory instead of five.
    codes = np.empty(x.size, dtype=np.int8)
    scratch = np.empty(min(x.size, _CHUNK), dtype=float)
    within = True
    with np.errstate(invalid="ignore"):  # NaN/inf only reach the cast when the waveform is refused
        for start in range(0, x.size, _CHUNK):
            part = x[start:start + _CHUNK]
            within = within and -1.0 <= part.min() and part.max() <= 1.0  # False for NaN
            buf = scratch[:part.size]
            np.multiply(part, DAC_FULL_SCALE, out=buf)
            np.rint(buf, out=buf)
            codes[start:start + part.size] = buf
    if not within:
        if not np.all(np.isfinite(x)):
            raise ValueError("the waveform contains NaN or infinite samples")
        raise ValueOutOfRange(
            "waveform samples must lie in [-1, 1] (full scale = amplitude/2); "
            f"they span [{float(x.min()):g}, {float(x.max()):g}]"
        )
    return pad_codes(codes, pad)


def valid_segment_length(length: int) -> bool:
    """Whether ``length`` samples satisfy the M8195A's granularity and minimum length."""
    return length >= SEGMENT_MIN_LENGTH and length % SEGMENT_GRANULARITY == 0


def pad_codes(codes: np.ndarray, pad: str | None = "repeat") -> np.ndarray:
    """Bring int8 ``codes`` to a valid segment length (see :func:`waveform_to_codes`)."""
    n = int(codes.size)
    if valid_segment_length(n):
        return codes
    if pad is None:
        raise ValueError(
            f"a segment of {n} samples is invalid: the M8195A needs a multiple of {SEGMENT_GRANULARITY} "
            f"samples and at least {SEGMENT_MIN_LENGTH}; pass pad='repeat' or pad='zero'"
        )
    if pad == "zero":
        target = max(SEGMENT_MIN_LENGTH, -(-n // SEGMENT_GRANULARITY) * SEGMENT_GRANULARITY)
        return np.concatenate([codes, np.zeros(target - n, dtype=np.int8)])
    step = SEGMENT_GRANULARITY // math.gcd(n, SEGMENT_GRANULARITY)  # repeats making a multiple of 256
    repeats = step * max(1, -(-SEGMENT_MIN_LENGTH // (n * step)))
    if n * repeats > MAX_REPEATED_LENGTH:
        raise ValueError(
            f"repeating {n} samples to a multiple of {SEGMENT_GRANULARITY} takes {repeats} copies "
            f"({n * repeats} samples); upload a multiple of {SEGMENT_GRANULARITY} samples or pass pad='zero'"
        )
    return np.tile(codes, repeats)


def _segment_catalog(values: list) -> dict[int, int]:
    """``:TRACe:CATalog?`` answers ``id,length,id,length,...`` or ``0,0`` when empty."""
    pairs = zip(values[0::2], values[1::2])
    return {int(seg): int(length) for seg, length in pairs if int(seg) != 0}


class KeysightM8195AChannel(LabChannel):
    """One output of the M8195A (``AWGChannel`` role): levels, relay and waveform segments."""

    # Waveform samples are normalised to the amplitude, so uploads cannot raise the output swing.
    safety_members = {
        "amplitude": Limited("awg_amplitude", "Vpp"), "offset": Limited("awg_offset", "V"),
        "output_enabled": Enables((("amplitude", "awg_amplitude", "Vpp"), ("offset", "awg_offset", "V"))),
        "memory_mode": SET, "selected_segment": SET, "segments": READ,
        "define_segment": SET, "delete_segment": SET, "delete_all_segments": SET, "write_segment": SET,
        "upload_waveform": SET,
    }

    amplitude = Instrument.control(
        ":VOLT{ch}?",
        ":VOLT{ch} %g",
        """Control the output amplitude in V peak-to-peak, single ended into 50 ohm
        (float, 0.075 ... 1.0 V; a sample of +1 reaches offset + amplitude/2).""",
        validator=in_range,
        values=AMPLITUDE_RANGE,
        check_set_errors=True,
    )

    offset = Instrument.control(
        ":VOLT{ch}:OFFS?",
        ":VOLT{ch}:OFFS %g",
        """Control the output offset voltage in V (float, -1.0 ... +1.0 V).""",
        validator=in_range,
        values=OFFSET_RANGE,
        check_set_errors=True,
    )

    output_enabled = Instrument.control(
        ":OUTP{ch}?",
        ":OUTP{ch} %d",
        """Control whether the output is switched on (bool).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    memory_mode = Instrument.control(
        ":TRAC{ch}:MMOD?",
        ":TRAC{ch}:MMOD %s",
        """Control where the channel's samples come from (MemoryMode INTERNAL or EXTENDED; extended
        memory shares one segment table across its channels; reads NONE on a channel unused in the
        DAC mode).""",
        validator=_member(MemoryMode, (MemoryMode.INTERNAL, MemoryMode.EXTENDED)),
        values={mode: mode.value for mode in MemoryMode},
        map_values=True,
        get_process=lambda v: v.strip(),
        cast=str,
        check_set_errors=True,
    )

    selected_segment = Instrument.control(
        ":TRAC{ch}:SEL?",
        ":TRAC{ch}:SEL %d",
        """Control the segment played in arbitrary mode (int, 1 ... 16777216).""",
        validator=in_range,
        values=SEGMENT_ID_RANGE,
        cast=int,
        check_set_errors=True,
    )

    segments = Instrument.measurement(
        ":TRAC{ch}:CAT?",
        """Get the defined segments as {segment id: length in samples} (dict, empty if none).""",
        cast=int,
        get_process_list=_segment_catalog,
    )

    # -- segment handling ----------------------------------------------------------------------

    def _command(self, command: str) -> None:
        """Send one setting command and raise if the instrument's error queue reports it."""
        with self._resource_lock():
            self.write(command)
            self.check_set_errors()

    def define_segment(self, segment: int, length: int, init_value: int | None = None) -> None:
        """Set a new segment of ``length`` samples (``:TRACe:DEFine``), optionally filled with a DAC code."""
        in_range(segment, SEGMENT_ID_RANGE)
        if not valid_segment_length(int(length)):
            raise ValueOutOfRange(
                f"segment length {length} is invalid: a multiple of {SEGMENT_GRANULARITY} samples, "
                f"at least {SEGMENT_MIN_LENGTH}"
            )
        if init_value is None:
            self._command(":TRAC{ch}:DEF %d,%d" % (segment, length))
        else:
            in_range(init_value, (-128, 127))
            self._command(":TRAC{ch}:DEF %d,%d,%d" % (segment, length, init_value))

    def delete_segment(self, segment: int) -> None:
        """Set: delete one segment (``:TRACe:DELete``; only while stopped)."""
        in_range(segment, SEGMENT_ID_RANGE)
        self._command(":TRAC{ch}:DEL %d" % segment)

    def delete_all_segments(self) -> None:
        """Set: delete every segment of this channel (``:TRACe:DELete:ALL``; only while stopped)."""
        self._command(":TRAC{ch}:DEL:ALL")

    def write_segment(self, segment: int, codes: np.ndarray, offset: int = 0) -> None:
        """Set: write int8 DAC ``codes`` into ``segment`` at sample ``offset`` in one binary block."""
        in_range(segment, SEGMENT_ID_RANGE)
        codes = np.ascontiguousarray(codes, dtype=np.int8)
        command = ":TRAC{ch}:DATA %d,%d," % (segment, offset)
        with self._resource_lock():
            # One IEEE 488.2 definite-length block of signed bytes, never one command per sample.
            # Handing pyvisa the raw bytes (datatype "b") spares it a conversion copy per transfer.
            self.write_binary_values(command, codes.tobytes(), datatype="b", termination="\n")
            self.check_set_errors()

    def upload_waveform(self, samples: Sequence[float] | np.ndarray, pad: str | None = "repeat") -> None:
        """Set the channel's waveform: normalised samples in [-1, 1] (full scale = amplitude/2).

        Samples become DAC codes ``round(127 x)``; a length that is not a multiple of 256 or is
        shorter than 1280 is repeated (``pad="repeat"``), zero-filled (``"zero"``) or refused
        (``None``). The codes go into segment 1 in one binary transfer and segment 1 is selected.
        Segment 1 is (re)defined only when its length changes; in extended memory that redefinition
        clears segment 1 on every other extended-memory channel, which must then be uploaded again
        with the same length. The AWG must be stopped (``stop()``) while segments change.
        """
        codes = waveform_to_codes(samples, pad)
        length = int(codes.size)
        with self._resource_lock():
            existing = self.segments.get(1)
            if existing != length:
                if existing is not None:
                    log.warning(
                        "%s channel %s: redefining segment 1 (%d -> %d samples); in extended memory this "
                        "also clears segment 1 of the other extended-memory channels",
                        self._root().name, self.id, existing, length,
                    )
                    self.delete_segment(1)
                self.define_segment(1, length)
            self.write_segment(1, codes)
            self.selected_segment = 1

    def shutdown(self) -> None:
        """Set the output off (the safe state)."""
        self.output_enabled = False


class KeysightM8195A(LabInstrument):
    """Keysight M8195A AWG (``ArbitraryWaveformGenerator`` role); its outputs are ``channels[1..4]``."""

    channels = Instrument.MultiChannelCreator(KeysightM8195AChannel, (1, 2, 3, 4))

    safety_members = {
        **channel_members(1, 2, 3, 4), "sample_rate": SET, "dac_mode": SET, "extended_memory_divider": SET,
        "continuous": SET, "gated": SET, "arm_source": SET, "run": SET, "stop": SET, "send_trigger": SET,
        "segment_granularity": READ, "min_segment_samples": READ,
    }
    #: Output levels (section 6.16): amplitude in Vpp, offset and the high/low levels in V.
    limited_commands = (
        LimitedCommand("[:SOURce]:VOLTage#[:AMPLitude]", "awg_amplitude", "Vpp", VOLTAGE_SUFFIXES),
        LimitedCommand("[:SOURce]:VOLTage#:OFFSet", "awg_offset", "V", VOLTAGE_SUFFIXES),
        LimitedCommand("[:SOURce]:VOLTage#:HIGH", "awg_level", "V", VOLTAGE_SUFFIXES),
        LimitedCommand("[:SOURce]:VOLTage#:LOW", "awg_level", "V", VOLTAGE_SUFFIXES),
    )

    def __init__(self, adapter, name="Keysight M8195A", **kwargs):
        kwargs.setdefault("timeout", 20_000)  # ms; large waveform transfers take time
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    @property
    def segment_granularity(self) -> int:
        """Get the step of valid waveform lengths, in samples (a segment is a multiple of it)."""
        return SEGMENT_GRANULARITY

    @property
    def min_segment_samples(self) -> int:
        """Get the shortest valid waveform length, in samples."""
        return SEGMENT_MIN_LENGTH

    sample_rate = Instrument.control(
        ":FREQ:RAST?",
        ":FREQ:RAST %.12g",
        """Control the DAC sample rate in Sa/s (float, 53.76e9 ... 65e9).""",
        validator=in_range,
        values=SAMPLE_RATE_RANGE,
        check_set_errors=True,
    )

    dac_mode = Instrument.control(
        ":INST:DACM?",
        ":INST:DACM %s",
        """Control which channels carry waveforms (DACMode; change it only while stopped).""",
        validator=_member(DACMode),
        values={mode: mode.value for mode in DACMode},
        map_values=True,
        get_process=lambda v: v.strip(),
        cast=str,
        check_set_errors=True,
    )

    extended_memory_divider = Instrument.control(
        ":INST:MEM:EXT:RDIV?",
        ":INST:MEM:EXT:RDIV DIV%d",
        """Control the sample rate divider of extended memory (int 1, 2 or 4; the DAC rate is unchanged,
        extended-memory samples are interpolated by the channel's FIR filter).""",
        validator=in_set,
        values=(1, 2, 4),
        get_process=lambda v: int(str(v).strip().upper().removeprefix("DIV")),
        cast=str,
        check_set_errors=True,
    )

    continuous = Instrument.control(
        ":INIT:CONT?",
        ":INIT:CONT %d",
        """Control continuous mode (bool; True = play as soon as started, False = triggered or gated).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    gated = Instrument.control(
        ":INIT:GATE?",
        ":INIT:GATE %d",
        """Control gate mode (bool; with continuous off, True = gated, False = triggered).""",
        validator=in_set,
        values={True: 1, False: 0},
        map_values=True,
        check_set_errors=True,
    )

    arm_source = Instrument.control(
        ":ARM:TRIG:SOUR?",
        ":ARM:TRIG:SOUR %s",
        """Control the source of the start trigger (ArmSource TRIGGER, EVENT or INTERNAL).""",
        validator=_member(ArmSource),
        values={src: src.value for src in ArmSource},
        map_values=True,
        get_process=lambda v: v.strip(),
        cast=str,
        check_set_errors=True,
    )

    def _command(self, command: str) -> None:
        with self.lock:
            self.write(command)
            self.check_errors()

    def run(self) -> None:
        """Set signal generation running on all channels (``:INITiate:IMMediate``)."""
        self._command(":INIT:IMM")

    def stop(self) -> None:
        """Set signal generation stopped on all channels (``:ABORt``)."""
        self._command(":ABOR")

    def send_trigger(self) -> None:
        """Set off a start event in triggered mode (``:TRIGger:BEGin``)."""
        self._command(":TRIG:BEG")

    def shutdown(self) -> None:
        """Stop generating and switch every output off (the safe state)."""
        self.stop()
        for channel in self.channels.values():
            channel.shutdown()
        super().shutdown()
