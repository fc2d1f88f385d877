"""Keysight Infiniium real-time oscilloscopes (UXR, DSO-Z/DSA-Z, MXR/EXR, 9000/90000 series).

Command syntax follows the Infiniium programmer's references; the command set used here is common to
the whole family and unchanged in the current *Keysight Infiniium Oscilloscopes Programmer's Guide*
(UXR/MXR/EXR, Infiniium 2026 online help, helpfiles.keysight.com/csg/d9300a/Help/Infiniium-PG):

* *Agilent Infiniium 90000 Series Oscilloscopes Programmer's Reference*: ``:ACQuire:SRATe`` (p. 160,
  "rounded to the next fastest sample rate", SRATe/POINts AUTO interaction table),
  ``:WAVeform:DATA? [<start>[,<size>]]`` (pp. 875-876: with ``:WAVeform:STReaming OFF`` a definite
  block ``#<N><L><data><NL>``; with ``STReaming ON`` the header is ``#0`` followed by the data and
  ``<NL>``), ``:WAVeform:PREamble?`` (pp. 892-893).
* *Agilent Infiniium 9000 Series Oscilloscopes Programmer's Reference*, ``:WAVeform:PREamble?``
  (pp. 1117-1119): 24 fields ``<format>, <type>, <points>, <count>, <X increment>, <X origin>,
  <X reference>, <Y increment>, <Y origin>, <Y reference>, <coupling>, <X display range>,
  <X display origin>, <Y display range>, <Y display origin>, <date>, <time>, <frame model #>,
  <acquisition mode>, <completion>, <X units>, <Y units>, <max bandwidth limit>,
  <min bandwidth limit>``; time = (index - Xref) * Xinc + Xorigin, volts = code * Yinc + Yorigin.
* ``:SYSTem:ERRor? [{NUMBer|STRing}]`` answers only the number unless ``STRing`` is given (HP 54501A
  programming reference, the family's ancestor, kept by Infiniium), so this driver polls
  ``:SYSTem:ERRor? STRing`` to get the message too.

The ``Oscilloscope`` role (``labctl.instruments``) is implemented by the instrument class in SI units:
``sample_rate`` (Sa/s), ``record_length`` (points), ``set_vertical(channel, range_v, offset_v)`` and
``capture(channels)``, which digitizes all requested channels with one ``:DIGitize`` and then
transfers each in WORD format (little-endian, streaming on) scaled with its preamble.
"""

from __future__ import annotations

import csv
from enum import IntEnum
from typing import Any, Sequence

import numpy as np
from pymeasure.instruments import Instrument
from drivers.base import LabChannel, LabInstrument, in_integer_range, in_range, in_set
from drivers.errors import DriverError, ValueOutOfRange
from drivers.limits import READ, SET, channel_members

CHANNELS = (1, 2, 3, 4)


class WaveformFormat(IntEnum):
    """``<format>`` field of ``:WAVeform:PREamble?``."""

    ASCII = 0
    BYTE = 1
    WORD = 2
    LONG = 3
    LONGLONG = 4
    FLOAT = 5


class WaveformType(IntEnum):
    """``<type>`` field of ``:WAVeform:PREamble?``."""

    RAW = 1
    AVERAGE = 2
    VHISTOGRAM = 3
    HHISTOGRAM = 4
    INTERPOLATE = 6
    DIGITAL = 9
    PDETECT = 10


class Coupling(IntEnum):
    """``<coupling>`` field of ``:WAVeform:PREamble?``."""

    AC = 0
    DC = 1
    DCFIFTY = 2
    LFREJECT = 3


class AcquisitionMode(IntEnum):
    """``<acquisition mode>`` field of ``:WAVeform:PREamble?``."""

    RTIME = 0
    ETIME = 1
    PDETECT = 3


class Units(IntEnum):
    """``<X units>`` / ``<Y units>`` fields of ``:WAVeform:PREamble?``."""

    UNKNOWN = 0
    VOLT = 1
    SECOND = 2
    CONSTANT = 3
    AMP = 4
    DECIBEL = 5


def _mnemonic(reply: str, options: dict[str, str]) -> str:
    """Map a short or long mnemonic reply (``POS``, ``POSitive``) onto the manual's form of it."""
    word = str(reply).strip().upper()
    for long_form in options.values():
        short = "".join(c for c in long_form if not c.islower()).upper()
        if word in (short, long_form.upper()):
            return long_form
    raise ValueError(f"unexpected reply {reply!r}; expected one of {', '.join(options.values())}")


def _source_scpi(source) -> str:
    return "AUX" if source == "AUX" else f"CHANnel{int(source)}"


def _parse_source(reply: str):
    word = str(reply).strip().upper()
    if word == "AUX":
        return "AUX"
    for stem in ("CHANNEL", "CHAN"):
        if word.startswith(stem) and word[len(stem):].isdigit():
            return int(word[len(stem):])
    raise ValueError(f"unexpected source reply {reply!r}")


def _parse_input(reply: str) -> str:
    word = str(reply).strip().upper()
    if word in ("DCF", "DCFIFTY"):  # DCFifty is the manual's synonym of DC50
        return "DC50"
    if word in INPUTS:
        return word
    raise ValueError(f"unexpected :CHANnel:INPut reply {reply!r}")


_ON_OFF = {"1": "ON", "0": "OFF", "ON": "ON", "OFF": "OFF"}
SLOPES = {"POSITIVE": "POSitive", "NEGATIVE": "NEGative", "EITHER": "EITHer"}
SWEEPS = {"AUTO": "AUTO", "TRIGGERED": "TRIGgered", "SINGLE": "SINGle"}
FORMATS = {"ASCII": "ASCii", "BYTE": "BYTE", "WORD": "WORD"}
BYTE_ORDERS = {"LSBFIRST": "LSBFirst", "MSBFIRST": "MSBFirst"}
REFERENCES = {"LEFT": "LEFT", "CENTER": "CENTer", "RIGHT": "RIGHt"}
INPUTS = {"DC": "DC", "DC50": "DC50", "AC": "AC", "LFR1": "LFR1", "LFR2": "LFR2"}

#: Preamble fields in reply order (Infiniium 9000 Series Programmer's Reference, p. 1117).
PREAMBLE_FIELDS = (
    "format", "type", "points", "count", "x_increment", "x_origin", "x_reference",
    "y_increment", "y_origin", "y_reference", "coupling", "x_display_range", "x_display_origin",
    "y_display_range", "y_display_origin", "date", "time", "frame_model", "acquisition_mode",
    "completion", "x_units", "y_units", "max_bandwidth", "min_bandwidth",
)
_ENUM_FIELDS = {"format": WaveformFormat, "type": WaveformType, "coupling": Coupling,
                "acquisition_mode": AcquisitionMode, "x_units": Units, "y_units": Units}
_INT_FIELDS = {"points", "count", "x_reference", "y_reference", "completion"}
_STR_FIELDS = {"date", "time", "frame_model"}


def parse_preamble(reply: str) -> dict[str, Any]:
    """Parse a ``:WAVeform:PREamble?`` reply into a dict keyed by :data:`PREAMBLE_FIELDS`.

    Enumerated fields become the IntEnums above (unknown codes stay ints), counts become ints,
    the date/time/frame strings lose their quotes, everything else is a float.
    """
    fields = next(csv.reader([reply.strip()], skipinitialspace=True))
    if len(fields) < len(PREAMBLE_FIELDS):
        raise ValueError(f"preamble has {len(fields)} fields, expected {len(PREAMBLE_FIELDS)}: {reply!r}")
    parsed: dict[str, Any] = {}
    for name, text in zip(PREAMBLE_FIELDS, fields):
        text = text.strip()
        if name in _STR_FIELDS:
            parsed[name] = text.strip('"')
        elif name in _ENUM_FIELDS:
            code = int(float(text))
            try:
                parsed[name] = _ENUM_FIELDS[name](code)
            except ValueError:
                parsed[name] = code
        elif name in _INT_FIELDS:
            parsed[name] = int(float(text))
        else:
            parsed[name] = float(text)
    return parsed


class InfiniiumChannel(LabChannel):
    """One analog input ``CHANnel<n>`` of an Infiniium oscilloscope."""

    safety_members = {"display": SET, "range": SET, "scale": SET, "offset": SET, "input": SET,
                      "trigger_level": SET}

    display = Instrument.control(
        ":CHANnel{ch}:DISPlay?", ":CHANnel{ch}:DISPlay %d",
        """Control whether the channel is turned on (displayed and acquired) (bool).""",
        validator=in_set, values={True: 1, False: 0}, map_values=True,
        cast=int, check_set_errors=True,
    )

    range = Instrument.control(
        ":CHANnel{ch}:RANGe?", ":CHANnel{ch}:RANGe %g",
        """Control the full-scale vertical range (8 divisions), in V (float, 8 mV to 40 V for the
        family; the model's own limits are enforced by the instrument).""",
        validator=in_range, values=(8e-3, 40.0), check_set_errors=True,
    )

    scale = Instrument.control(
        ":CHANnel{ch}:SCALe?", ":CHANnel{ch}:SCALe %g",
        """Control the vertical scale, in V/div (float, 1 mV/div to 5 V/div; range = 8 x scale).""",
        validator=in_range, values=(1e-3, 5.0), check_set_errors=True,
    )

    offset = Instrument.control(
        ":CHANnel{ch}:OFFSet?", ":CHANnel{ch}:OFFSet %g",
        """Control the vertical offset, the voltage at the centre of the screen, in V
        (float, -40 V to 40 V; the model's own limits are enforced by the instrument).""",
        validator=in_range, values=(-40.0, 40.0), check_set_errors=True,
    )

    input = Instrument.control(
        ":CHANnel{ch}:INPut?", ":CHANnel{ch}:INPut %s",
        """Control the input coupling and impedance (str: 'DC' 1 MOhm, 'DC50' 50 Ohm, 'AC',
        'LFR1', 'LFR2'; 50-Ohm-only models such as the UXR accept 'DC50' only).""",
        validator=in_set, values=INPUTS, map_values=True,
        cast=str, get_process=lambda reply: _parse_input(reply), check_set_errors=True,
    )

    trigger_level = Instrument.control(
        ":TRIGger:LEVel? CHANnel{ch}", ":TRIGger:LEVel CHANnel{ch},%g",
        """Control the trigger level used when this channel is the trigger source, in V
        (float, -40 V to 40 V; the instrument limits it to the channel's screen).""",
        validator=in_range, values=(-40.0, 40.0), check_set_errors=True,
    )


class KeysightInfiniium(LabInstrument):
    """Keysight Infiniium oscilloscope (UXR / DSO-Z / MXR family), the bench's ``Oscilloscope`` role.

    .. code-block:: python

        scope = KeysightInfiniium("TCPIP0::scope::hislip0::INSTR")
        scope.sample_rate = 64e9
        scope.record_length = 100_000
        scope.set_vertical(1, range_v=0.2, offset_v=0.05)
        scope.trigger_source, scope.trigger_slope = "AUX", "POSITIVE"
        scope.aux_trigger_level = 0.25
        time_s, volts = scope.capture([1, 2])
    """

    error_query = ":SYSTem:ERRor? STRing"

    channels = Instrument.MultiChannelCreator(InfiniiumChannel, CHANNELS, prefix="ch_")

    # A receiver: no setting of it drives a source.
    safety_members = {
        **channel_members(*CHANNELS),
        **dict.fromkeys(("acquire_sample_rate", "acquire_sample_rate_auto", "acquire_points", "acquire_points_auto",
                         "timebase_scale", "timebase_position", "timebase_reference", "trigger_mode",
                         "trigger_source", "trigger_slope", "trigger_sweep", "aux_trigger_level", "waveform_source",
                         "waveform_format", "waveform_byteorder", "waveform_streaming", "sample_rate",
                         "record_length", "set_vertical", "set_edge_trigger", "digitize", "run", "stop"), SET),
        **dict.fromkeys(("waveform_points", "x_increment", "x_origin", "y_increment", "y_origin",
                         "waveform_preamble", "read_waveform_codes", "read_waveform", "capture"), READ),
    }

    def __init__(self, adapter, name="Keysight Infiniium", **kwargs):
        kwargs.setdefault("timeout", 20000)
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    # -- acquisition ---------------------------------------------------------------------------

    acquire_sample_rate = Instrument.control(
        ":ACQuire:SRATe:ANALog?", ":ACQuire:SRATe:ANALog %g",
        """Control the analog sample rate, in Sa/s (float, 1 Sa/s to 256 GSa/s; the instrument rounds
        up to its next available rate and rejects rates above its maximum).""",
        validator=in_range, values=(1.0, 256e9), check_set_errors=True,
    )

    acquire_sample_rate_auto = Instrument.control(
        ":ACQuire:SRATe:ANALog:AUTO?", ":ACQuire:SRATe:ANALog:AUTO %d",
        """Control whether the instrument chooses the sample rate itself (bool).""",
        validator=in_set, values={True: 1, False: 0}, map_values=True,
        cast=int, check_set_errors=True,
    )

    acquire_points = Instrument.control(
        ":ACQuire:POINts:ANALog?", ":ACQuire:POINts:ANALog %d",
        """Control the memory depth, the number of points per channel per acquisition
        (int, 16 to 2e9; the model's own memory limit is enforced by the instrument).""",
        validator=in_integer_range, values=(16, 2_000_000_000), cast=lambda v: int(float(v)),
        check_set_errors=True,
    )

    acquire_points_auto = Instrument.control(
        ":ACQuire:POINts:AUTO?", ":ACQuire:POINts:AUTO %d",
        """Control whether the instrument chooses the memory depth itself (bool).""",
        validator=in_set, values={True: 1, False: 0}, map_values=True,
        cast=int, check_set_errors=True,
    )

    # -- timebase ------------------------------------------------------------------------------

    timebase_scale = Instrument.control(
        ":TIMebase:SCALe?", ":TIMebase:SCALe %g",
        """Control the horizontal scale, in s/div (float, 1 ps/div to 20 s/div; 10 divisions).""",
        validator=in_range, values=(1e-12, 20.0), check_set_errors=True,
    )

    timebase_position = Instrument.control(
        ":TIMebase:POSition?", ":TIMebase:POSition %g",
        """Control the time from the trigger to the delay reference point, in s (float, -200 s to 200 s).""",
        validator=in_range, values=(-200.0, 200.0), check_set_errors=True,
    )

    timebase_reference = Instrument.control(
        ":TIMebase:REFerence?", ":TIMebase:REFerence %s",
        """Control where on screen the delay reference point is (str: 'LEFT', 'CENTER', 'RIGHT').""",
        validator=in_set, values=REFERENCES, map_values=True,
        cast=str, get_process=lambda reply: _mnemonic(reply, REFERENCES), check_set_errors=True,
    )

    # -- trigger -------------------------------------------------------------------------------

    trigger_mode = Instrument.control(
        ":TRIGger:MODE?", ":TRIGger:MODE %s",
        """Control the trigger mode (str: 'EDGE').""",
        validator=in_set, values={"EDGE": "EDGE"}, map_values=True,
        cast=str, get_process=lambda reply: str(reply).strip().upper(), check_set_errors=True,
    )

    trigger_source = Instrument.control(
        ":TRIGger:EDGE:SOURce?", ":TRIGger:EDGE:SOURce %s",
        """Control the edge trigger source (int channel 1-4, or 'AUX' for the auxiliary trigger input).""",
        validator=in_set, values=(*CHANNELS, "AUX"), set_process=_source_scpi,
        cast=str, get_process=_parse_source, check_set_errors=True,
    )

    trigger_slope = Instrument.control(
        ":TRIGger:EDGE:SLOPe?", ":TRIGger:EDGE:SLOPe %s",
        """Control the edge trigger slope (str: 'POSITIVE', 'NEGATIVE', 'EITHER').""",
        validator=in_set, values=SLOPES, map_values=True,
        cast=str, get_process=lambda reply: _mnemonic(reply, SLOPES), check_set_errors=True,
    )

    trigger_sweep = Instrument.control(
        ":TRIGger:SWEep?", ":TRIGger:SWEep %s",
        """Control the trigger sweep (str: 'AUTO' triggers by itself when no edge comes, 'TRIGGERED'
        waits for an edge, 'SINGLE' acquires once on the next edge).""",
        validator=in_set, values=SWEEPS, map_values=True,
        cast=str, get_process=lambda reply: _mnemonic(reply, SWEEPS), check_set_errors=True,
    )

    aux_trigger_level = Instrument.control(
        ":TRIGger:LEVel? AUX", ":TRIGger:LEVel AUX,%g",
        """Control the trigger level of the auxiliary trigger input, in V (float, -5 V to 5 V).""",
        validator=in_range, values=(-5.0, 5.0), check_set_errors=True,
    )

    # -- waveform transfer ---------------------------------------------------------------------

    waveform_source = Instrument.control(
        ":WAVeform:SOURce?", ":WAVeform:SOURce CHANnel%d",
        """Control the channel the waveform queries read (int, 1-4).""",
        validator=in_set, values=CHANNELS,
        cast=str, get_process=_parse_source, check_set_errors=True,
    )

    waveform_format = Instrument.control(
        ":WAVeform:FORMat?", ":WAVeform:FORMat %s",
        """Control the waveform data format (str: 'WORD' signed 16-bit, 'BYTE' signed 8-bit,
        'ASCII' comma-separated volts).""",
        validator=in_set, values=FORMATS, map_values=True,
        cast=str, get_process=lambda reply: _mnemonic(reply, FORMATS), check_set_errors=True,
    )

    waveform_byteorder = Instrument.control(
        ":WAVeform:BYTeorder?", ":WAVeform:BYTeorder %s",
        """Control the byte order of WORD data (str: 'LSBFIRST' little-endian, 'MSBFIRST' big-endian).""",
        validator=in_set, values=BYTE_ORDERS, map_values=True,
        cast=str, get_process=lambda reply: _mnemonic(reply, BYTE_ORDERS), check_set_errors=True,
    )

    waveform_streaming = Instrument.control(
        ":WAVeform:STReaming?", ":WAVeform:STReaming %s",
        """Control waveform streaming (bool): on, :WAVeform:DATA? answers a '#0' block of any size;
        off, a definite-length block limited to 999,999,999 bytes.""",
        validator=in_set, values={True: "ON", False: "OFF"}, map_values=True,
        cast=str, get_process=lambda reply: _ON_OFF.get(str(reply).strip().upper(), reply),
        check_set_errors=True,
    )

    waveform_points = Instrument.measurement(
        ":WAVeform:POINts?",
        """Get the number of points of the current waveform source's record (int).""",
        cast=lambda v: int(float(v)),
    )

    x_increment = Instrument.measurement(
        ":WAVeform:XINCrement?", """Get the time between points of the current source, in s (float).""",
    )
    x_origin = Instrument.measurement(
        ":WAVeform:XORigin?", """Get the time of the first point relative to the trigger, in s (float).""",
    )
    y_increment = Instrument.measurement(
        ":WAVeform:YINCrement?", """Get the volts per code of the current source and format, in V (float).""",
    )
    y_origin = Instrument.measurement(
        ":WAVeform:YORigin?", """Get the voltage of code 0 of the current source, in V (float).""",
    )

    waveform_preamble = Instrument.measurement(
        ":WAVeform:PREamble?",
        """Get the preamble of the current waveform source as a dict (see :func:`parse_preamble`).""",
        cast=str, separator="\x00", get_process=parse_preamble,
    )

    # -- acquisition control --------------------------------------------------------------------

    def digitize(self, channels: Sequence[int] | None = None) -> None:
        """Acquire once on the given channels (all displayed channels if None) and wait until done.

        Sends ``:DIGitize [CHANnel<n>[,CHANnel<m>...]]`` then ``*OPC?`` (which returns when the
        acquisition is complete) and reads the error queue, so a refused or failed acquisition
        raises :class:`~drivers.errors.InstrumentError`.
        """
        with self.lock:
            if channels is None:
                self.write(":DIGitize")
            else:
                chans = [in_set(c, CHANNELS) for c in channels]
                if not chans:
                    raise ValueOutOfRange("digitize needs at least one channel")
                self.write(":DIGitize " + ",".join(f"CHANnel{c}" for c in chans))
            self.ask("*OPC?")
            self.check_errors()

    def run(self) -> None:
        """Start repetitive acquisitions (``:RUN``)."""
        self.write(":RUN")
        self.check_errors()

    def stop(self) -> None:
        """Stop acquiring (``:STOP``)."""
        self.write(":STOP")
        self.check_errors()

    # -- waveform data --------------------------------------------------------------------------

    def read_waveform_codes(self, preamble: dict[str, Any], byteorder: str = "LSBFIRST") -> np.ndarray:
        """Send ``:WAVeform:DATA?`` and return the raw record of the current source.

        BYTE data comes back as int8 codes, WORD data as int16 codes (``byteorder`` must match
        ``waveform_byteorder``), ASCii data as float volts. The block header may be definite
        (``#<N><L>``, streaming off) or ``#0`` (streaming on), in which case the length follows from
        the preamble's point count. The response terminator is consumed.
        """
        fmt = preamble["format"]
        points = int(preamble["points"])
        if fmt == WaveformFormat.WORD:
            dtype = np.dtype("<i2" if byteorder == "LSBFIRST" else ">i2")
        elif fmt == WaveformFormat.BYTE:
            dtype = np.dtype("i1")
        elif fmt == WaveformFormat.ASCII:
            dtype = None
        else:
            raise DriverError(f"{self.name}: waveform format {fmt!r} is not supported by this driver")
        with self.lock:
            self.write(":WAVeform:DATA?")
            head = self.read_bytes(2)
            if head[:1] != b"#" or not head[1:2].isdigit():
                raise DriverError(f"{self.name}: :WAVeform:DATA? reply lacks a block header: {head!r}")
            ndigits = int(head[1:2])
            if ndigits:
                length = int(self.read_bytes(ndigits))
            elif dtype is not None:
                length = points * dtype.itemsize
            else:
                text = self.read()  # '#0' ASCii: the data runs to the terminator
                return _parse_ascii(text)
            payload = self._read_exactly(length)
            self._read_terminator()
        if dtype is None:
            return _parse_ascii(payload.decode("ascii"))
        return np.frombuffer(payload, dtype=dtype)

    def _read_exactly(self, count: int) -> bytes:
        if count == 0:
            return b""
        data = self.read_bytes(count, chunk_size=min(count, 1 << 24))
        if len(data) != count:
            raise DriverError(f"{self.name}: waveform block announced {count} bytes, received {len(data)}")
        return data

    def _read_terminator(self) -> None:
        end = self.read_bytes(1)
        if end != b"\n":
            raise DriverError(f"{self.name}: expected the <NL> ending the waveform block, got {end!r}")

    def read_waveform(self, channel: int, byteorder: str = "LSBFIRST") -> tuple[np.ndarray, np.ndarray]:
        """Read the last acquired record of ``channel`` in the current format as ``(time_s, volts)``.

        ``byteorder`` must be the current ``waveform_byteorder`` (it matters for WORD data only).
        """
        self.waveform_source = channel
        preamble = self.waveform_preamble
        if preamble["points"] <= 0:
            raise DriverError(f"{self.name}: CHANnel{channel} holds no acquired data (preamble points = 0)")
        raw = self.read_waveform_codes(preamble, byteorder)
        if preamble["format"] == WaveformFormat.ASCII:
            volts = np.asarray(raw, dtype=float)
        else:
            volts = np.multiply(raw, preamble["y_increment"], dtype=np.float64)
            volts += preamble["y_origin"]
        if len(volts) != preamble["points"]:
            raise DriverError(f"{self.name}: CHANnel{channel} sent {len(volts)} points, "
                              f"its preamble says {preamble['points']}")
        return time_axis(preamble), volts

    # -- Oscilloscope role (SI units) -----------------------------------------------------------

    @property
    def sample_rate(self) -> float:
        """Control the acquisition sample rate, in Sa/s (the instrument rounds up to an available rate)."""
        return float(self.acquire_sample_rate)

    @sample_rate.setter
    def sample_rate(self, value: float) -> None:
        self.acquire_sample_rate = value

    @property
    def record_length(self) -> int:
        """Control the number of points per channel per acquisition."""
        return int(self.acquire_points)

    @record_length.setter
    def record_length(self, value: int) -> None:
        self.acquire_points = value

    def set_vertical(self, channel: int, range_v: float, offset_v: float = 0.0) -> None:
        """Set a channel's full-scale vertical range and centre offset, in V, and turn it on."""
        ch = self.channels[in_set(channel, CHANNELS)]
        ch.range = range_v
        ch.offset = offset_v
        ch.display = True

    def set_edge_trigger(self, source: int | str, level_v: float, rising: bool = True) -> None:
        """Set an edge trigger on channel ``source`` (1-4) or ``"AUX"`` at ``level_v`` V, rising or falling."""
        self.trigger_mode = "EDGE"
        self.trigger_source = source
        self.trigger_slope = "POSITIVE" if rising else "NEGATIVE"
        if source == "AUX":
            self.aux_trigger_level = level_v
        else:
            self.channels[in_set(source, CHANNELS)].trigger_level = level_v

    def capture(self, channels: Sequence[int]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Acquire once on ``channels`` and return ``(time_s, {channel: volts})``.

        One ``:DIGitize`` of all channels, then one WORD-format binary transfer per channel
        (little-endian, streaming on), each scaled with its own preamble. ``time_s`` is relative to
        the trigger (the first channel's time axis; all channels share the timebase).
        """
        chans = list(dict.fromkeys(in_set(c, CHANNELS) for c in channels))
        if not chans:
            raise ValueOutOfRange("capture needs at least one channel")
        with self.lock:
            self.waveform_format = "WORD"
            self.waveform_byteorder = "LSBFIRST"
            self.waveform_streaming = True
            self.digitize(chans)
            time_s = None
            volts: dict[int, np.ndarray] = {}
            for ch in chans:
                t, v = self.read_waveform(ch, "LSBFIRST")
                if time_s is None:
                    time_s = t
                volts[ch] = v
        return time_s, volts


def time_axis(preamble: dict[str, Any]) -> np.ndarray:
    """Time of each point relative to the trigger: (index - Xref) * Xinc + Xorigin, in s."""
    t = np.arange(int(preamble["points"]), dtype=np.float64)
    t *= preamble["x_increment"]
    t += preamble["x_origin"] - preamble["x_reference"] * preamble["x_increment"]
    return t


def _parse_ascii(text: str) -> np.ndarray:
    text = text.strip().strip(",")
    if not text:
        return np.zeros(0)
    return np.array([float(v) for v in text.split(",")], dtype=float)
