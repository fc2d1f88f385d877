"""OCC-16 optical core controller (labctl firmware on an RFSoC-class converter board).

The command set is labctl's own, specified in `docs/occ_protocol.md <../../docs/occ_protocol.md>`_
(the only reference: read it before changing a command here). Summary of what this driver uses:

* ``:CORE:INPuts?`` / ``:CORE:OUTPuts?``: N_in fast DACs + bias DACs, N_out ADCs (16/16 on an OCC-16);
* settings, each with a query form: ``:SYMBol:RATE`` (1e6 .. 2.5e9 Hz), ``:DAC:AMPLitude``
  (0.05 .. 1.0 Vpp), ``:ADC:RANGe`` (0.01 .. 2.0 V), ``:ADC:OFFSet`` (-1 .. 1 V), ``:HEATer:LIMit``
  (0 .. 10 V), ``:TILE:SLOTs`` (1 .. 1048576), ``:TILE:SETTle`` (1e-6 .. 1e-2 s), ``:INPut:ADVance``
  (0 .. 1e-3 s), ``:OUTPut[:STATe] ON|OFF`` (OFF holds every output at 0 V: the safe state);
* ``:BIAS:VOLTage <V>,(@<list>)`` / ``:BIAS:VOLTage? (@<list>)``: input-modulator bias DACs, +-10 V;
* a *program* of T tiles: ``:HEATer:TABLe <block>`` (float32 little-endian heater volts, T x N_out x
  N_in, each in [0, HEATer:LIMit]) and ``:INPut:DATA <block>`` (int16 little-endian DAC codes,
  T x S x N_in, S = ``:TILE:SLOTs``), each one IEEE 488.2 definite-length block ``#<n><len><bytes>``;
* ``:INITiate`` runs the program (``*OPC?`` answers 1 when done; -221 if the input length does not
  match, the outputs are off or the table is empty); ``:FETCh:DATA?`` answers the T x S x N_out int16
  little-endian ADC codes of the last run as a definite-length block (-230 if the program changed);
  ``:HEATer:TABLe:COUNt?``, ``:INPut:DATA:COUNt?``, ``:FETCh:DATA:COUNt?`` report what is held;
* the board's power monitors: ``:MEASure:RAIL:CATalog?`` (the rail names, quoted, comma-separated),
  ``:MEASure:RAIL:POWer?`` (each rail's power in W, in catalog order) and ``:MEASure:POWer?`` (the
  board's input power in W).

Errors: like every labctl driver (``drivers/base.py``), each setting is followed by ``SYST:ERR?`` polls
until ``0,"No error"``; anything the controller reported raises
:class:`~drivers.errors.InstrumentError` naming the command (binary blocks are named by their size,
not their bytes). Values outside the documented ranges raise
:class:`~drivers.errors.ValueOutOfRange` before anything is sent, and a program is validated whole
(shapes, dtypes, ranges) before any of it is written. Every quantity is SI (Hz, V, s).
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np
import pyvisa
from pymeasure.instruments import Instrument

from drivers.base import LabInstrument, in_integer_range, in_range, in_set
from drivers.errors import DriverError, MalformedReply, ValueOutOfRange
from drivers.limits import READ, SET, VOLTAGE_SUFFIXES, Enables, Limited, LimitedCommand
from drivers.scpi import SCPI_NUMBER, channel_list, format_number, grouped_message

SYMBOL_RATE_RANGE = (1e6, 2.5e9)  #: Hz, symbol (DAC and ADC sample) rate.
DAC_AMPLITUDE_RANGE = (0.05, 1.0)  #: V peak-to-peak, fast-DAC full scale.
ADC_RANGE_RANGE = (0.01, 2.0)  #: V, ADC full-scale span.
ADC_OFFSET_RANGE = (-1.0, 1.0)  #: V, ADC centre voltage.
BIAS_RANGE = (-10.0, 10.0)  #: V, bias DACs.
HEATER_LIMIT_RANGE = (0.0, 10.0)  #: V, largest heater voltage a table may hold.
SLOTS_RANGE = (1, 1 << 20)  #: symbol slots per tile.
SETTLE_RANGE = (1e-6, 1e-2)  #: s, heater settling time before each tile.
ADVANCE_RANGE = (0.0, 1e-3)  #: s, input launch advance.
DEFAULT_RUN_TIMEOUT_S = 60.0  #: s, default wait for ``*OPC?`` after ``:INITiate``.
ADC_CODE_SPAN = 65536.0  #: ADC codes per ``adc_range``: code c is ``adc_offset + c / 65536 x adc_range`` V.


class OCCTimeoutError(DriverError, TimeoutError):
    """The controller did not answer in time (a program still running, or a query it refused)."""


class InvalidPowerReading(DriverError, ValueError):
    """A power the board's monitors reported that is not a draw: NaN, overrange (SCPI 9.9E37) or negative."""


def _parse_rail_names(reply: str, query: str, instrument: str) -> tuple[str, ...]:
    """The rail names of a ``:MEAS:RAIL:CAT?`` reply: one or more distinct quoted names, comma-separated."""
    items = [item.strip() for item in str(reply).strip().split(",")]
    names = tuple(item[1:-1] for item in items)
    if not all(len(item) > 2 and item[0] == item[-1] == '"' and '"' not in item[1:-1] for item in items) \
            or len(set(names)) != len(names):
        raise MalformedReply(instrument, query, str(reply))
    return names


def _watts(word: str, what: str, query: str, reply: str, instrument: str) -> float:
    """One power a monitor reported, in W; a NaN, overrange or negative value is refused, never a zero."""
    try:
        value = float(word)
    except ValueError:
        raise MalformedReply(instrument, query, reply) from None
    if not math.isfinite(value) or abs(value) >= 9.9e37 or value < 0.0:  # SCPI-99 NaN / INF as numbers
        raise InvalidPowerReading(f"{instrument} reported {what} {word.strip()} W ({query}): not a draw; a "
                                  "monitor reads a finite, non-negative power")
    return value


def _parse_state(reply) -> bool:
    """``:OUTPut?`` answers 1/0 (ON/OFF accepted too)."""
    word = str(reply).strip().upper()
    if word in ("1", "ON"):
        return True
    if word in ("0", "OFF"):
        return False
    raise DriverError(f"unexpected :OUTPut? reply {reply!r}; expected 1 or 0")


def _positive_count(reply) -> int:
    count = int(reply)
    if count < 1:
        raise DriverError(f"the controller reports {count} channels; expected at least 1")
    return count


class OCC16(LabInstrument):
    """labctl OCC-16 optical core controller (``OpticalCoreController`` role).

    Runs a weight-stationary optical core: heater tables set the microring weights tile by tile, the
    fast DACs play the input codes, the ADCs sample the photodiodes. Use :meth:`execute` for one
    program (load, run, fetch); the settings are plain properties. Nothing is sent at construction.

    .. code-block:: python

        occ = OCC16("TCPIP0::occ::hislip0::INSTR")
        occ.symbol_rate = 1e9
        occ.set_biases([2.4] * occ.n_inputs)
        occ.output_enabled = True
        codes = occ.execute(heater_volts, input_codes)   # (T, S, n_out) int16 ADC codes
        occ.shutdown()
    """

    safety_members = {
        "heater_limit": Limited("heater_voltage", "V"), "dac_amplitude": Limited("dac_amplitude", "Vpp"),
        "set_bias": Limited("bias_voltage", "V", argument="volts"),
        "set_biases": Limited("bias_voltage", "V", argument="volts"),
        "load_program": Limited("heater_voltage", "V", argument="heater_volts"),
        "execute": Limited("heater_voltage", "V", argument="heater_volts"),
        "symbol_rate": SET, "adc_range": SET, "adc_offset": SET, "slots_per_tile": SET, "settle_time": SET,
        "input_advance": SET, "run": SET,
        # heater tables are checked when loaded; the DAC swing and the biases are what turning on emits
        "output_enabled": Enables((("dac_amplitude", "dac_amplitude", "Vpp"), ("get_biases", "bias_voltage", "V"))),
        "n_inputs": READ, "n_outputs": READ, "get_bias": READ, "get_biases": READ, "fetch": READ, "to_volts": READ,
        "code_scale": READ,
        "table_tile_count": READ, "input_code_count": READ, "result_code_count": READ,
        "rail_names": READ, "rail_powers": READ, "board_power": READ,
    }
    #: docs/occ_protocol.md: the heater guard, heater tables (float32 LE volts), bias DACs, fast-DAC swing.
    limited_commands = (
        LimitedCommand(":HEATer:LIMit", "heater_voltage", "V", VOLTAGE_SUFFIXES),
        LimitedCommand(":HEATer:TABLe", "heater_voltage", "V", block="<f4"),
        LimitedCommand(":BIAS:VOLTage", "bias_voltage", "V", VOLTAGE_SUFFIXES),
        LimitedCommand(":DAC:AMPLitude", "dac_amplitude", "Vpp", VOLTAGE_SUFFIXES),
    )

    def __init__(self, adapter, name="labctl OCC-16", **kwargs):
        kwargs.setdefault("timeout", 20_000)  # ms; program blocks and results can be tens of MB
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)
        self._n_inputs: int | None = None
        self._n_outputs: int | None = None
        self._rail_names: tuple[str, ...] | None = None

    # -- core size (fixed by the hardware: queried once) ---------------------------------------------

    _core_inputs = Instrument.measurement(
        ":CORE:INP?",
        """Get N_in as the controller reports it, on every read (int, >= 1; use n_inputs).""",
        cast=int,
        get_process=_positive_count,
    )

    _core_outputs = Instrument.measurement(
        ":CORE:OUTP?",
        """Get N_out as the controller reports it, on every read (int, >= 1; use n_outputs).""",
        cast=int,
        get_process=_positive_count,
    )

    @property
    def n_inputs(self) -> int:
        """Get N_in, the number of inputs (fast DACs = bias DACs = heater columns) (int, 16 on an OCC-16).

        Queried once and cached: the hardware fixes it, and every program and bias call needs it.
        """
        with self.lock:
            if self._n_inputs is None:
                self._n_inputs = int(self._core_inputs)
            return self._n_inputs

    @property
    def n_outputs(self) -> int:
        """Get N_out, the number of outputs (ADCs = heater rows) (int, 16 on an OCC-16).

        Queried once and cached: the hardware fixes it, and every program and result needs it.
        """
        with self.lock:
            if self._n_outputs is None:
                self._n_outputs = int(self._core_outputs)
            return self._n_outputs

    # -- the board's power monitors ---------------------------------------------------------------

    @property
    def rail_names(self) -> tuple[str, ...]:
        """Get the names of the board's monitored power rails, in the order :meth:`rail_powers` reads
        them (tuple of str, ``:MEAS:RAIL:CAT?``).

        Queried once and cached: the board's power tree is fixed by the hardware.
        """
        with self.lock:
            if self._rail_names is None:
                query = ":MEAS:RAIL:CAT?"
                self._rail_names = _parse_rail_names(self.ask(query), query, self.name)
            return self._rail_names

    def rail_powers(self) -> dict[str, float]:
        """Return each rail's power now, in W, as the board's monitors measure it (``:MEAS:RAIL:POW?``).

        Why per rail: the converters, TIAs and heaters each have their own rail, so a run's draw can be
        attributed. A reply whose count differs from :attr:`rail_names` raises MalformedReply; a NaN,
        overrange or negative power raises InvalidPowerReading.
        """
        query = ":MEAS:RAIL:POW?"
        with self.lock:
            names = self.rail_names
            reply = self.ask(query)
        words = str(reply).strip().split(",")
        if len(words) != len(names):
            raise MalformedReply(self.name, query, str(reply))
        return {name: _watts(word, f"rail {name}", query, str(reply), self.name) for name, word in zip(names, words)}

    def board_power(self) -> float:
        """Return the board's input power now, in W (``:MEAS:POW?``): what the whole controller draws
        from its supply, the figure a run's energy is counted from (NaN, overrange or negative raises)."""
        query = ":MEAS:POW?"
        reply = str(self.ask(query))
        return _watts(reply.strip(), "board input power", query, reply, self.name)

    # -- settings --------------------------------------------------------------------------------

    symbol_rate = Instrument.control(
        ":SYMB:RATE?",
        ":SYMB:RATE " + SCPI_NUMBER,
        """Control the symbol rate, the DAC and ADC sample rate: one input code and one ADC sample per
        slot (float, Hz, 1e6 .. 2.5e9, *RST 1e9).""",
        validator=in_range,
        values=SYMBOL_RATE_RANGE,
        check_set_errors=True,
    )

    dac_amplitude = Instrument.control(
        ":DAC:AMPL?",
        ":DAC:AMPL " + SCPI_NUMBER,
        """Control the fast-DAC full scale, which sets how far an input code swings the modulator: code c
        gives c / 32767 x amplitude / 2 (float, V peak-to-peak, 0.05 .. 1.0, *RST 0.5).""",
        validator=in_range,
        values=DAC_AMPLITUDE_RANGE,
        check_set_errors=True,
    )

    adc_range = Instrument.control(
        ":ADC:RANG?",
        ":ADC:RANG " + SCPI_NUMBER,
        """Control the ADC full-scale span, which sets resolution vs clipping: code c means
        adc_offset + c / 65536 x range (float, V, 0.01 .. 2.0, *RST 0.2).""",
        validator=in_range,
        values=ADC_RANGE_RANGE,
        check_set_errors=True,
    )

    adc_offset = Instrument.control(
        ":ADC:OFFS?",
        ":ADC:OFFS " + SCPI_NUMBER,
        """Control the ADC centre voltage, to centre the photodiode signal in the range
        (float, V, -1 .. 1, *RST 0).""",
        validator=in_range,
        values=ADC_OFFSET_RANGE,
        check_set_errors=True,
    )

    heater_limit = Instrument.control(
        ":HEAT:LIM?",
        ":HEAT:LIM " + SCPI_NUMBER,
        """Control the largest heater voltage a table may hold, the controller's own guard for the
        microring heaters: a table above it is rejected whole (float, V, 0 .. 10, *RST 5).""",
        validator=in_range,
        values=HEATER_LIMIT_RANGE,
        check_set_errors=True,
    )

    slots_per_tile = Instrument.control(
        ":TILE:SLOT?",
        ":TILE:SLOT %d",
        """Control S, the symbol slots played per tile (int, 1 .. 1048576, *RST 1024); load_program
        sets it from the input codes' shape.""",
        validator=in_integer_range,
        values=SLOTS_RANGE,
        cast=int,
        check_set_errors=True,
    )

    settle_time = Instrument.control(
        ":TILE:SETT?",
        ":TILE:SETT " + SCPI_NUMBER,
        """Control the wait after the heaters switch to a tile's voltages, so the rings settle before its
        slots play (float, s, 1e-6 .. 1e-2, *RST 2e-5).""",
        validator=in_range,
        values=SETTLE_RANGE,
        check_set_errors=True,
    )

    input_advance = Instrument.control(
        ":INP:ADV?",
        ":INP:ADV " + SCPI_NUMBER,
        """Control how long before their slots the inputs are launched, to cancel the edge -> centre
        fibre delay found by calibration (float, s, 0 .. 1e-3, *RST 0).""",
        validator=in_range,
        values=ADVANCE_RANGE,
        check_set_errors=True,
    )

    output_enabled = Instrument.control(
        ":OUTP?",
        ":OUTP %s",
        """Control whether the DAC, bias and heater outputs are on; off holds every output at 0 V, the
        safe state, and a program only runs with them on (bool, *RST False).""",
        validator=in_set,
        values=(True, False),
        set_process=lambda on: "ON" if on else "OFF",
        get_process=_parse_state,
        cast=str,
        check_set_errors=True,
    )

    table_tile_count = Instrument.measurement(
        ":HEAT:TABL:COUN?",
        """Get T, the tiles held in the heater table, to check what a run will play (int, 0 = empty).""",
        cast=int,
    )

    input_code_count = Instrument.measurement(
        ":INP:DATA:COUN?",
        """Get the number of input codes held, which must be T x S x N_in for a run (int).""",
        cast=int,
    )

    result_code_count = Instrument.measurement(
        ":FETC:DATA:COUN?",
        """Get the number of ADC codes of the last run available to fetch (int, 0 = none or stale).""",
        cast=int,
    )

    # -- helpers ---------------------------------------------------------------------------------

    def _command(self, command: str) -> None:
        """Send one setting command and raise if the controller's error queue reports anything."""
        with self.lock:
            self.write(command)
            self.check_errors()

    def _channel(self, channel) -> int:
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
            raise ValueOutOfRange(f"channel must be an integer 1 .. n_inputs, got {channel!r}")
        n_in = self.n_inputs
        if not 1 <= int(channel) <= n_in:
            raise ValueOutOfRange(f"bias channel {channel} does not exist; channels are 1 .. {n_in}")
        return int(channel)

    @staticmethod
    def _bias_value(volts) -> float:
        try:
            value = float(volts)
        except (TypeError, ValueError):
            raise ValueOutOfRange(f"bias voltage must be a number of volts, got {volts!r}") from None
        if not math.isfinite(value):
            raise ValueOutOfRange(f"bias voltage must be finite, got {value!r}")
        return in_range(value, BIAS_RANGE)

    @contextlib.contextmanager
    def _visa_timeout(self, seconds: float) -> Iterator[None]:
        """Use ``seconds`` as the VISA I/O timeout inside the block, then restore the previous one."""
        connection = getattr(self.adapter, "connection", None)
        if connection is None or not hasattr(connection, "timeout"):
            yield
            return
        previous = connection.timeout
        connection.timeout = seconds * 1000.0  # pyvisa: ms
        try:
            yield
        finally:
            connection.timeout = previous

    def _send_block(self, header: str, payload: np.ndarray, what: str) -> None:
        """Send ``header`` + one IEEE 488.2 definite-length block of the C-contiguous ``payload``'s bytes
        (``header #<n><len><bytes>`` + NL), then check errors.

        Why the message is joined here and not by pyvisa's ``write_binary_values``: that copies the block
        three times (bytes, block, message), and a program's input codes are megabytes; here its bytes are
        copied once, straight into the message.
        """
        data = memoryview(payload).cast("B")
        length = str(data.nbytes)
        message = b"".join((f"{header} #{len(length)}{length}".encode("ascii"), data, b"\n"))
        with self.lock:
            self._last_command = f"{header} <{data.nbytes}-byte block: {what}>"
            self.write_bytes(message)
            self.check_errors()

    def _read_block(self) -> bytes:
        """Read one definite-length block response ``#<n><len><bytes>`` and its NL terminator."""
        head = self.read_bytes(2)
        if head[:1] != b"#" or head[1:2] not in b"123456789" or len(head) != 2:
            try:  # consume the rest of the reply, so that the next query does not read it
                head += self.read().encode(errors="replace")
            except Exception:  # best effort: the reply itself is the error reported below
                pass
            raise DriverError(
                f"{self.name}: expected a definite-length block '#<n><len>...', got {head[:40]!r}"
            )
        digits = self.read_bytes(int(head[1:2]))
        if not digits.isdigit():
            raise DriverError(f"{self.name}: bad block length field {digits!r}")
        length = int(digits)
        payload = self.read_bytes(length, chunk_size=min(max(length, 1), 1 << 24)) if length else b""
        if len(payload) != length:
            raise DriverError(f"{self.name}: block announced {length} bytes, received {len(payload)}")
        end = self.read_bytes(1)
        if end != b"\n":
            raise DriverError(f"{self.name}: expected the NL ending the block, got {end!r}")
        return payload

    # -- biases ----------------------------------------------------------------------------------

    def set_bias(self, channel: int, volts: float) -> None:
        """Set one input modulator's bias DAC (V, -10 .. 10), e.g. to hold it at quadrature.

        ``:BIAS:VOLT <V>,(@<channel>)``; a value or channel out of range is refused before sending.
        """
        value = self._bias_value(volts)
        with self.lock:
            channel = self._channel(channel)
            self._command(f":BIAS:VOLT {format_number(value)},(@{channel})")

    def get_bias(self, channel: int) -> float:
        """Get one input modulator's bias DAC setting (V), to check or record the operating point."""
        with self.lock:
            channel = self._channel(channel)
            values = self.values(f":BIAS:VOLT? (@{channel})")
        if len(values) != 1:
            raise DriverError(f"{self.name}: :BIAS:VOLT? (@{channel}) answered {values!r}; expected one value")
        return float(values[0])

    def set_biases(self, volts: Sequence[float]) -> None:
        """Set every bias DAC at once: ``volts[k]`` goes to channel k + 1 (V, -10 .. 10 each).

        Why one call: calibration sets all N_in biases together. All values are checked first; channels
        sharing a value share one channel list, and the commands go in one program message
        (``:BIAS:VOLT 2.4,(@1:3);:BIAS:VOLT 2.5,(@4)``), followed by one error check.
        """
        try:
            items = list(volts)
        except TypeError:
            raise ValueOutOfRange(f"volts must be a sequence of N_in numbers, got {volts!r}") from None
        values = [self._bias_value(v) for v in items]
        with self.lock:
            n_in = self.n_inputs
            if len(values) != n_in:
                raise ValueOutOfRange(
                    f"set_biases needs one voltage per input: {n_in} values for channels 1 .. {n_in}, "
                    f"got {len(values)}; use set_bias(channel, volts) for a single channel"
                )
            texts = {channel: format_number(value) for channel, value in enumerate(values, start=1)}
            self._command(grouped_message(":BIAS:VOLT", texts))

    def get_biases(self) -> np.ndarray:
        """Get every bias DAC setting in one query, ``[k]`` = channel k + 1 (V), for snapshots."""
        with self.lock:
            n_in = self.n_inputs
            command = f":BIAS:VOLT? {channel_list(range(1, n_in + 1))}"
            values = self.values(command)
        if len(values) != n_in:
            raise DriverError(f"{self.name}: {command} answered {len(values)} values for {n_in} channels")
        return np.array([float(v) for v in values])

    # -- programs --------------------------------------------------------------------------------

    def load_program(self, heater_volts: np.ndarray, input_codes: np.ndarray) -> None:
        """Set the program: heater volts ``(T, n_outputs, n_inputs)`` and input codes ``(T, S, n_inputs)``.

        Why whole-program validation first: a half-loaded program (new table, old inputs) would run
        the wrong layer. Checked before anything is written: heater volts real, finite, in
        [0, heater_limit]; codes int16 (code c drives c / 32767 x dac_amplitude / 2 V); shapes agree
        with each other and with the core; 1 <= S <= 1048576. Then ``slots_per_tile`` is set to S if it
        differs, and ``:HEAT:TABL`` (float32 LE) and ``:INP:DATA`` (int16 LE) are sent as one block
        each, each followed by an error check. Raises TypeError (dtype) or ValueError (shape/range)
        naming what is wrong; the controller's rejection raises InstrumentError.
        """
        table, codes = _check_program_arrays(heater_volts, input_codes)
        tiles, slots = codes.shape[0], codes.shape[1]
        with self.lock:
            n_in, n_out = self.n_inputs, self.n_outputs
            if table.shape[1:] != (n_out, n_in):
                raise ValueError(
                    f"heater_volts has shape {table.shape}; this controller needs (T, n_outputs, n_inputs) = "
                    f"(T, {n_out}, {n_in}): one N_out x N_in weight block per tile"
                )
            if codes.shape[2] != n_in:
                raise ValueError(
                    f"input_codes has shape {codes.shape}; this controller needs (T, S, n_inputs) = "
                    f"(T, S, {n_in}): one code per input per slot"
                )
            limit = float(self.heater_limit)
            high = float(table.max())
            if high > limit:
                raise ValueOutOfRange(
                    f"heater_volts reach {high:g} V, above the controller's heater_limit {limit:g} V "
                    "(the whole table would be rejected); lower the volts or raise heater_limit "
                    f"(at most {HEATER_LIMIT_RANGE[1]:g} V and the bench's max_heater_voltage_v)"
                )
            # float32 may round a value at the limit up by < 1 ulp: keep what is sent within the limit.
            payload_table = np.ascontiguousarray(table, dtype="<f4")
            ceiling = np.float32(limit)
            if float(ceiling) > limit:
                ceiling = np.nextafter(ceiling, np.float32(0))
            np.minimum(payload_table, ceiling, out=payload_table)
            if int(self.slots_per_tile) != slots:
                self.slots_per_tile = slots
            self._send_block(":HEAT:TABL", payload_table, f"{tiles} x {n_out} x {n_in} float32 heater volts")
            self._send_block(":INP:DATA", np.ascontiguousarray(codes, dtype="<i2"),
                             f"{tiles} x {slots} x {n_in} int16 input codes")

    def run(self, timeout_s: float = DEFAULT_RUN_TIMEOUT_S) -> None:
        """Run the loaded program and wait until it is done (``:INIT``, then ``*OPC?``).

        Why wait: results are only valid after the last tile. A program takes
        T x (settle_time + S / symbol_rate) s; ``timeout_s`` must exceed that. Needs output_enabled.
        Raises :class:`OCCTimeoutError` if ``*OPC?`` does not answer within ``timeout_s`` and
        InstrumentError if the controller refused to run (-221: outputs off, empty table, input length
        not T x S x N_in).
        """
        try:
            timeout_s = float(timeout_s)
        except (TypeError, ValueError):
            raise ValueOutOfRange(f"timeout_s must be a number of seconds, got {timeout_s!r}") from None
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueOutOfRange(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        with self.lock:
            self.write(":INIT")
            try:
                with self._visa_timeout(timeout_s):
                    reply = self.ask("*OPC?").strip()
            except pyvisa.errors.VisaIOError as exc:
                if exc.error_code != pyvisa.constants.StatusCode.error_timeout:
                    raise
                raise OCCTimeoutError(
                    f"{self.name}: the program did not finish within timeout_s={timeout_s:g} s (no reply to "
                    "*OPC? after :INIT). A program takes T x (settle_time + slots_per_tile / symbol_rate) s: "
                    "pass a larger timeout_s. The controller may still be running and answer late; clear "
                    "the interface (instrument.adapter.connection.clear()) before the next command."
                ) from None
            self._last_command = ":INIT"  # a refused run is reported against :INIT, not *OPC?
            self.check_errors()
        if reply != "1":
            raise DriverError(f"{self.name}: *OPC? after :INIT answered {reply!r}, expected 1")

    def fetch(self) -> np.ndarray:
        """Get the ADC codes of the last run as an int16 array ``(T, S, n_outputs)`` (``:FETC:DATA?``).

        Code c means adc_offset + c / 65536 x adc_range V (+-32767 = clipped). Why the count checks
        first: a refused ``:FETC:DATA?`` (no run since the program changed) sends no reply and would only
        time out, so an empty result raises a clear DriverError instead.
        """
        with self.lock:
            n_out = self.n_outputs
            tiles = int(self.table_tile_count)
            slots = int(self.slots_per_tile)
            available = int(self.result_code_count)
            expected = tiles * slots * n_out
            if available == 0:
                raise DriverError(
                    f"{self.name}: no results to fetch: the program changed since the last run, or never "
                    "ran; call run() (or execute()) after the last setting or load_program"
                )
            if available != expected:
                raise DriverError(
                    f"{self.name}: the controller holds {available} result codes, but the program is "
                    f"{tiles} tiles x {slots} slots x {n_out} outputs = {expected}; run() it again"
                )
            self.write(":FETC:DATA?")
            try:
                payload = self._read_block()
            except pyvisa.errors.VisaIOError as exc:
                if exc.error_code != pyvisa.constants.StatusCode.error_timeout:
                    raise
                self.check_errors()  # e.g. -230 "Data corrupt or stale" -> InstrumentError
                raise OCCTimeoutError(f"{self.name}: no reply to :FETC:DATA? before the I/O timeout") from None
        if len(payload) != 2 * expected:
            raise DriverError(
                f"{self.name}: :FETC:DATA? sent {len(payload)} bytes; {tiles} x {slots} x {n_out} int16 "
                f"codes are {2 * expected} bytes"
            )
        return np.frombuffer(payload, dtype="<i2").astype(np.int16).reshape(tiles, slots, n_out)

    def code_scale(self) -> tuple[float, float]:
        """Get ``(adc_offset, volts per code)`` at the present ADC span and centre: code c reads
        ``adc_offset + c x volts per code`` V. For callers that fold the conversion into their own arithmetic
        instead of holding a float64 copy of every reading (:meth:`to_volts`)."""
        with self.lock:
            offset = float(self.adc_offset)
            return offset, float(self.adc_range) / ADC_CODE_SPAN

    def to_volts(self, codes: np.ndarray) -> np.ndarray:
        """Convert ADC codes (from :meth:`fetch` or :meth:`execute`) to volts at the present ADC span and
        centre: ``adc_offset + code / 65536 x adc_range`` (float64 array, same shape)."""
        offset, per_code = self.code_scale()
        volts = np.multiply(codes, per_code, dtype=np.float64)
        volts += offset  # in place: a program's readings are millions of values
        return volts

    def execute(self, heater_volts: np.ndarray, input_codes: np.ndarray,
                timeout_s: float = DEFAULT_RUN_TIMEOUT_S) -> np.ndarray:
        """Load, run and fetch one program; return the ADC codes ``(T, S, n_outputs)`` int16.

        Why one call: the three steps hold the resource lock together, so no other thread's setting
        can slip between loading and fetching. See :meth:`load_program`, :meth:`run`, :meth:`fetch`.
        """
        with self.lock:
            self.load_program(heater_volts, input_codes)
            self.run(timeout_s=timeout_s)
            return self.fetch()

    def shutdown(self) -> None:
        """Set every output off (``:OUTP OFF``: DACs, biases and heaters at 0 V), the safe state."""
        self.output_enabled = False
        super().shutdown()


def _check_program_arrays(heater_volts, input_codes) -> tuple[np.ndarray, np.ndarray]:
    """Validate what does not depend on the controller: dtypes, ranks, finiteness, T and S."""
    table = np.asarray(heater_volts)
    if table.dtype.kind not in "fiu":
        raise TypeError(
            f"heater_volts must be a real numeric array of volts (float), got dtype {table.dtype}; "
            "pass e.g. np.asarray(volts, dtype=float)"
        )
    if table.ndim != 3:
        raise ValueError(
            f"heater_volts must have shape (T, n_outputs, n_inputs), got {table.ndim}-D shape {table.shape}; "
            "a single tile is heater_volts[None]"
        )
    table = table.astype(np.float64, copy=False)
    if not np.all(np.isfinite(table)):
        raise ValueError("heater_volts contains NaN or infinite values; every heater needs a voltage")
    codes = np.asarray(input_codes)
    if codes.dtype.kind != "i" or codes.dtype.itemsize != 2:
        raise TypeError(
            f"input_codes must be int16 DAC codes (-32768 .. 32767; code c drives c / 32767 x "
            f"dac_amplitude / 2 V), got dtype {codes.dtype}; convert scaled values with "
            "np.rint(x * 32767).astype(np.int16) after checking they lie in [-1, 1]"
        )
    if codes.ndim != 3:
        raise ValueError(
            f"input_codes must have shape (T, S, n_inputs), got {codes.ndim}-D shape {codes.shape}; "
            "a single tile is input_codes[None]"
        )
    if table.shape[0] < 1:
        raise ValueError("the program needs at least one tile (T >= 1); heater_volts has none")
    if codes.shape[0] != table.shape[0]:
        raise ValueError(
            f"heater_volts has {table.shape[0]} tiles but input_codes has {codes.shape[0]}; "
            "each tile needs one heater block and its S slots of inputs"
        )
    if not SLOTS_RANGE[0] <= codes.shape[1] <= SLOTS_RANGE[1]:
        raise ValueError(
            f"input_codes has {codes.shape[1]} slots per tile; the controller plays "
            f"{SLOTS_RANGE[0]} .. {SLOTS_RANGE[1]} (split the tile or pad it)"
        )
    low = float(table.min())
    if low < 0.0:
        raise ValueOutOfRange(
            f"heater_volts go down to {low:g} V; heaters take 0 .. heater_limit V (negative volts "
            "do not cool a ring: clip to 0)"
        )
    return table, codes
