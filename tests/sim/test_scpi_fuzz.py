"""Fuzzing every simulated instrument through pyvisa: whatever arrives, the simulator answers like an
instrument (a VISA timeout, a reply, error-queue entries), never with a Python exception, and never
allocates beyond its caps.

Each model runs on the first built-in bench that has it (a one-instrument bench otherwise). An example
is a short sequence of program messages -- random bytes, random printable ASCII, or messages built
from the instrument's own command tree with hostile parameters -- sent after a reset; each message is
followed by a read, and the error queue must then answer with printable-ASCII entries until empty.
A handler raising a Python exception is counted by the instrument (``internal_errors``) and fails here.
"""

from __future__ import annotations

import re
import tracemalloc
from dataclasses import dataclass
from itertools import count

import numpy as np
import pytest
import pyvisa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sim_backends import SIM_MODELS, LabSimVisaLibrary, load_bench_file
from sim_backends.bench import CHARACTERISATION_BENCH_PATH, SimBench
from sim_backends.instrument import ERROR_QUEUE_SIZE, SimInstrument
from sim_backends.instruments.keysight_m8195a import SIM_MEMORY_CAP_SAMPLES
from sim_backends.instruments.labctl_occ import MAX_PROGRAM_VALUES
from sim_backends.scpi import MAX_ALLOCATION_BYTES, MAX_ERROR_TEXT, definite_block, parse_pattern

BENCH_FILES = sorted(CHARACTERISATION_BENCH_PATH.parent.glob("*.yaml"))
#: A message may make a few allocations up to the cap (an array and its copy, a response and its block).
MESSAGE_MEMORY_BOUND = 3 * MAX_ALLOCATION_BYTES
#: Every this many examples, one runs under tracemalloc (it slows Python several-fold).
TRACE_EVERY = 10
_ENTRY = re.compile(r'^([+-]?\d+)(?:,\s?"((?:[^"]|"")*)")?$')


@dataclass
class Dut:
    """The instrument under test, its bench, and the pyvisa resource talking to it."""

    bench: SimBench
    sim: SimInstrument
    resource: pyvisa.resources.MessageBasedResource


def _config(model: str) -> dict:
    for path in BENCH_FILES:
        config = load_bench_file(path)
        if any(spec.get("driver") == model for spec in (config.get("instruments") or {}).values()):
            return config
    return {"instruments": {"dut": {"driver": model, "resource": "GPIB0::7::INSTR"}}}


_DUTS: dict[str, Dut] = {}


def _dut(model: str) -> Dut:
    if model not in _DUTS:
        config = _config(model)
        name, spec = next((n, s) for n, s in config["instruments"].items() if s["driver"] == model)
        lib = LabSimVisaLibrary.from_config(config, seed=0)
        resource = pyvisa.ResourceManager(lib).open_resource(spec["resource"], timeout=10)
        _DUTS[model] = Dut(lib.bench, lib.bench.by_name[name], resource)
    return _DUTS[model]


# -- message strategies ----------------------------------------------------------------------------

HUGE = "9" * 5000  # beyond Python's int-from-text limit (4300 digits)
NUMBERS = ["0", "-0", "1", "-1", "1e999", "-1e999", "1e-999", "NaN", "INF", "NINF", "9" * 40, "1e40000",
           str(2**34), str(2**63), str(2**64 + 1), "1.5", "+.5", "1.", "1e3MHZ", "-3DBM", "1e308DBM",
           "1550NM", "2.5MW", "MIN", "MAX", "DEF", "MINimum", "maximum", "1E+9999", "0x10", "#H1F"]
WORDS = ["ON", "OFF", "AUTO", "ONCE", "CHAN1", "CHANnel4", "CHAN9", "AUX", "LOGG", "LOGGing", "STAR", "STOP",
         "EXT", "INT", "WORD", "BYTE", "ASC", "FOUR", "MARK", "DIV2", "NUMB", "STR", "DBM", "W", "POS", "EITH",
         "(@1)", "(@1:4)", "(@1,2,3)", "(@0)", "(@99999999999)", "(@1:" + "9" * 30 + ")", "(@", "(@4:1)"]
STRINGS = ['"abc"', "'x'", '"a""b"', '"unterminated', "'", '""', '"caf\xe9"', '"\\n"', '"' + "q" * 300 + '"']
HOSTILE_BYTES = [b"\xff", b"\x80abc", b"\x00", b"\xc3\xa9", b"\r", b"\t"]


def _blocks() -> st.SearchStrategy[bytes]:
    payload = st.binary(max_size=64)
    honest = payload.map(definite_block)
    lying = st.tuples(st.integers(1, 9), st.integers(0, 10**9), payload).map(
        lambda t: b"#" + str(t[0]).encode() + str(t[1]).encode()[: t[0]].rjust(t[0], b"0") + t[2])
    malformed = st.sampled_from([b"#", b"#0abc", b"#9", b"#A12", b"#2 5abc", b"#3+12abcdefghijkl", b"#15ab"])
    return st.one_of(honest, lying, malformed)


def _parameter(mnemonics: list[str]) -> st.SearchStrategy[bytes]:
    """Mostly plausible values (so commands get executed), sometimes hostile ones."""
    plausible = st.one_of(
        st.integers(0, 4).map(str),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(-1e12, 1e12).map(repr),
        st.sampled_from(NUMBERS),
        st.sampled_from(WORDS + mnemonics),
    )
    hostile = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(STRINGS),
        st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";,"), max_size=12),
    )
    text = st.one_of(plausible, plausible, plausible, hostile).map(lambda s: s.encode("latin-1", errors="replace"))
    return st.one_of(text, text, text, text, text, text, _blocks(), st.sampled_from(HOSTILE_BYTES))


def _header(pattern: str, query: bool) -> st.SearchStrategy[bytes]:
    words = []
    for node in parse_pattern(pattern):
        forms = st.sampled_from([node.short, node.long, node.long.lower(), node.mnemonic])
        if node.suffix:
            forms = st.tuples(forms, st.sampled_from(["", "1", "2", "4", "0", "9", "12345678901234"])).map("".join)
        words.append(st.tuples(st.booleans() if node.optional else st.just(True), forms))
    prefix = st.sampled_from(["", ":", ":", ":"]) if not pattern.lstrip("[:").startswith("*") else st.just("")

    def join(parts):
        lead, nodes = parts
        header = ":".join(form for keep, form in nodes if keep)
        return (lead + header + ("?" if query else "")).encode()

    return st.tuples(prefix, st.tuples(*words)).map(join)


def _command(tree_patterns, mnemonics) -> st.SearchStrategy[bytes]:
    forms = [(p, q) for p, has_set, has_get in tree_patterns for q, ok in ((False, has_set), (True, has_get)) if ok]
    headers = st.one_of([_header(pattern, query) for pattern, query in forms])
    params = st.lists(_parameter(mnemonics), max_size=3)
    separator = st.sampled_from([b",", b",", b", ", b",,"])
    return st.tuples(headers, params, separator).map(
        lambda t: t[0] + (b" " + t[2].join(t[1]) if t[1] else b""))


def _grammar(sim: SimInstrument) -> st.SearchStrategy[bytes]:
    patterns = sim.tree.patterns()
    mnemonics = sorted({node.mnemonic for p, _, _ in patterns for node in parse_pattern(p)})
    command = _command(patterns, mnemonics)
    return st.lists(command, min_size=1, max_size=3).map(b";".join)


def _messages(sim: SimInstrument) -> st.SearchStrategy[list[bytes]]:
    grammar = _grammar(sim)
    message = st.one_of(
        st.binary(max_size=80),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(str.encode),
        grammar, grammar, grammar, grammar,
    )
    return st.lists(message, min_size=1, max_size=3)


# -- the exchange ----------------------------------------------------------------------------------

_examples = count()


def _error_query(sim: SimInstrument) -> bytes:
    if sim.MODEL == "yokogawa.WT310E":
        return b":STATus:ERRor?"  # the WT310E's only error query; its codes are positive
    return b":SYSTem:ERRor? STRing" if sim.MODEL == "keysight.Infiniium" else b"SYST:ERR?"


def _drain_errors(dut: Dut) -> list[str]:
    """Read the error queue to its end; every entry must be a well-formed, printable-ASCII answer."""
    entries = []
    for _ in range(ERROR_QUEUE_SIZE + 2):
        dut.resource.write_raw(_error_query(dut.sim))
        reply = dut.resource.read_raw().rstrip(b"\r\n").decode("ascii")
        assert reply.isprintable(), reply
        match = _ENTRY.match(reply.replace(", ", ",", 1))
        assert match, f"malformed error entry {reply!r}"
        assert match.group(2) is None or len(match.group(2).replace('""', '"')) <= MAX_ERROR_TEXT + 1, reply
        if int(match.group(1)) == 0:
            return entries
        entries.append(reply)
    raise AssertionError(f"the error queue did not empty: {entries}")


def exchange(dut: Dut, messages: list[bytes]) -> list[str]:
    """Reset, send each message and read its answer (a timeout is fine); return the error entries."""
    dut.bench.reset()
    before = dut.sim.internal_errors
    traced = next(_examples) % TRACE_EVERY == 0
    if traced:
        tracemalloc.start()
    try:
        for message in messages:
            dut.resource.write_raw(message)
            try:
                dut.resource.read_raw()
            except pyvisa.errors.VisaIOError as err:
                assert err.error_code == pyvisa.constants.StatusCode.error_timeout
    finally:
        if traced:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert dut.sim.internal_errors == before, dut.sim.last_internal_error
    if traced:
        assert peak < MESSAGE_MEMORY_BOUND, f"{peak} bytes traced for {messages!r}"
    entries = _drain_errors(dut) if dut.sim.HAS_ERROR_QUEUE else []
    assert dut.sim.internal_errors == before, dut.sim.last_internal_error
    return entries


# -- the fuzz tests --------------------------------------------------------------------------------

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("model", sorted(SIM_MODELS))
def test_no_message_makes_the_simulator_raise(model):
    dut = _dut(model)

    @FUZZ
    @given(_messages(dut.sim))
    # counter-examples found while fuzzing: 8-bit and control bytes in error text (UnicodeEncodeError,
    # unprintable entries), 5000-digit channel numbers (ValueError from int()), a quadratic regex on
    # long digit runs (PM100 wavelength), trace definitions and acquisitions sized in GB
    @example([b"\x80"])
    @example([b"\x00", b"*IDN?\x00;:SYST:ERR?"])
    @example([b":TRIG:EDGE:SOUR CHAN" + HUGE.encode(), b":VOLT? (@" + HUGE.encode() + b")"])
    @example([b":CORR:WAV " + HUGE.encode() + b"X"])
    @example([b":TRAC1:DEF 1,17179869184;:TRAC1:DATA 1,0,1", b":ACQ:POIN 100000000;:DIG"])
    def fuzz(messages):
        exchange(dut, messages)

    fuzz()


# -- regressions: what fuzzing found, as plain tests -----------------------------------------------


def _ask(dut: Dut, message: bytes) -> str:
    dut.resource.write_raw(message)
    return dut.resource.read_raw().rstrip(b"\r\n").decode("ascii")


@pytest.mark.parametrize("model", sorted(m for m in SIM_MODELS if m != "thorlabs.MBX"))
def test_a_non_ascii_byte_is_an_invalid_character_not_a_poisoned_queue(model):
    dut = _dut(model)
    entries = exchange(dut, [b"*IDN\xff?", b"\xc3\xa9"])
    assert [e.replace(", ", ",", 1).split(",")[0].lstrip("-") for e in entries[:2]] == ["101", "420"]
    assert "0xFF" in entries[0]


@pytest.mark.parametrize("message", [b":VOLT1 1e999", b":TRAC1:DEF 1,1e999", b":VOLT1 NaN", b":FREQ:RAST -1e999"])
def test_overflowing_numbers_are_scpi_errors(message):
    entries = exchange(_dut("keysight.M8195A"), [message])
    assert entries and entries[0].split(",")[0] in ("-222", "-224")


def test_m8195a_segment_beyond_memory_allocates_nothing():
    dut = _dut("keysight.M8195A")
    dut.bench.reset()
    tracemalloc.start()
    dut.resource.write_raw(b":TRAC1:DEF 1,17179869184;:TRAC1:DATA 1,0,1")  # 2^34 samples, then a write
    dut.resource.write_raw(b":TRAC1:DEF:NEW? 17179869184")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20
    assert [e.split(",")[0] for e in _drain_errors(dut)] == ["-225", "-225"]
    assert int(_ask(dut, b":TRAC1:FREE?").split(",")[0]) == SIM_MEMORY_CAP_SAMPLES


def test_m8195a_ascii_readback_beyond_the_response_cap_is_refused():
    dut = _dut("keysight.M8195A")
    dut.bench.reset()
    cap = SIM_MEMORY_CAP_SAMPLES
    tracemalloc.start()
    dut.resource.write_raw(f":TRAC1:DEF 1,{cap},1;:TRAC1:DATA? 1,0,{cap}".encode())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with pytest.raises(pyvisa.errors.VisaIOError):
        dut.resource.read_raw()
    assert _drain_errors(dut)[0].startswith("-225,")
    assert cap <= peak < MAX_ALLOCATION_BYTES  # the segment itself, not its 320 MB of text
    dut.bench.reset()


def test_infiniium_acquisitions_stop_at_the_simulators_memory_depth():
    dut = _dut("keysight.Infiniium")
    dut.bench.reset()
    depth = dut.sim.memory_depth
    assert depth < dut.sim.max_points
    dut.resource.write_raw(b":ACQ:POIN 100000000")  # within the UXR's depth, beyond the simulator's
    assert _ask(dut, b":SYST:ERR? STR").startswith("-222,")
    assert int(_ask(dut, b":TIM:SCAL 20;:ACQ:SRAT MAX;:ACQ:POIN?")) == depth
    assert int(_ask(dut, b":ACQ:POIN MAX;:ACQ:POIN?")) == depth


def test_occ_program_beyond_the_cap_is_refused_before_it_runs():
    dut = _dut("labctl.OCC16")
    dut.bench.reset()
    per_tile = dut.sim.n_out * dut.sim.n_in
    tiles = MAX_PROGRAM_VALUES // (1 << 20) // max(dut.sim.n_in, dut.sim.n_out) + 1
    table = np.zeros(tiles * per_tile, dtype="<f4").tobytes()
    dut.resource.write_raw(b":TILE:SLOT 1048576;:OUTP ON;:HEAT:TABL " + definite_block(table) + b";:INIT")
    entries = _drain_errors(dut)
    assert entries and entries[0].startswith("-225,"), entries


def test_an_exception_inside_a_handler_becomes_a_device_specific_error(caplog):
    config = {"instruments": {"pm": {"driver": "thorlabs.PM100", "resource": "USB0::1::2::3::INSTR"}}}
    lib = LabSimVisaLibrary.from_config(config, seed=0)
    sim = lib.bench.by_name["pm"]
    sim.tree.add("TEST:BUG", setter=lambda call: 1 / 0)
    resource = pyvisa.ResourceManager(lib).open_resource("USB0::1::2::3::INSTR")
    resource.write_raw(b"TEST:BUG;*IDN?")
    with pytest.raises(pyvisa.errors.VisaIOError):
        resource.read_raw()  # the error aborted the rest of the message
    resource.write_raw(b"SYST:ERR?")
    assert resource.read_raw().startswith(b'-300,"Device-specific error;internal ZeroDivisionError: division by zero"')
    assert sim.internal_errors == 1 and "ZeroDivisionError" in sim.last_internal_error
    assert any(r.levelname == "ERROR" and "internal error" in r.getMessage() for r in caplog.records)


SWEEP_PARAMETERS = [p.encode() for p in ("-0", "1e999", "-1e999", "1e-999", "NaN", "INF", str(2**64 + 1), "1e40000",
                                          "MAX", "1e308DBM", "#H1F", '"a""b"', "'")] + [
    HUGE.encode(), f"1e{HUGE}".encode(), f"CHAN{HUGE}".encode(), f"(@{HUGE})".encode(), f"(@1:{HUGE})".encode(),
    f'"{"x" * 5000}"'.encode(), b"1,1e999", b"1e999,1", b"1,2,3,4,5", b"(@1),NaN", b"NaN,(@1)",
    b"1,0," + definite_block(b"\x00\x01" * 8), b"1,1," + definite_block(b"\xff" * 3),
]


def _full_header(pattern: str, query: bool) -> bytes:
    nodes = [node.mnemonic + ("1" if node.suffix else "") for node in parse_pattern(pattern) if not node.optional]
    return (("" if pattern.startswith("*") else ":") + ":".join(nodes) + ("?" if query else "")).encode()


@pytest.mark.parametrize("model", sorted(SIM_MODELS))
def test_every_command_survives_every_hostile_parameter(model):
    """Not random: each command of the tree, set and query form, with each hostile parameter."""
    dut = _dut(model)
    sim = dut.sim
    dut.bench.reset()
    for pattern, has_set, has_get in sim.tree.patterns():
        for query in [q for q, ok in ((False, has_set), (True, has_get)) if ok]:
            for parameters in SWEEP_PARAMETERS:
                sim.handle_write(_full_header(pattern, query) + b" " + parameters)
                for error in sim.errors:
                    assert error.entry().isascii() and error.entry().isprintable(), error.entry()
                sim.errors.clear()
                sim.output.clear()
                assert sim.internal_errors == 0, sim.last_internal_error
