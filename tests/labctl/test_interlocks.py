"""Interlocks that cannot be walked around: every member of every role object on every built-in bench is
classified, every source-affecting one is refused above its limit with nothing sent, the raw escape hatch
is explicit, logged and still checked, and a stale error-queue entry is never blamed on a later command.
"""

import importlib
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pymeasure.test import expected_protocol

import labctl
from drivers import DRIVERS, load_driver
from drivers.errors import InstrumentError
from drivers.keysight.m8195a import KeysightM8195A
from drivers.keysight.n6700 import KeysightN6700
from drivers.keysight.n7714a import KeysightN7714A
from drivers.labctl_fw.occ import OCC16
from drivers.limits import (CHILD, POWER_SUFFIXES, RAW, READ, SET, Enables, Limited, LimitedCommand,
                            header_pattern, limited_settings, member_table)
from drivers.santec.tsl570 import SantecTSL570
from drivers.thorlabs.mbx import ThorlabsMBX
from labctl.config import SafetyLimits
from labctl.errors import SafetyLimitError
from labctl.safety import ROLE_QUANTITIES, Guarded, RawAccess, UnguardedMemberError, checks_for
from labctl.units import to_si, w_to_dbm
from sim_backends import LabSimVisaLibrary
from sim_backends.scpi import ScpiError

BENCHES = sorted((Path(labctl.__file__).parent.parent / "sim_backends" / "benches").glob("*.yaml"))
OK = ("SYST:ERR?", '0,"No error"')

#: How to call each Limited method with one value ``v`` (in the member's unit). A Limited method without a
#: recipe fails test_every_limited_method_has_a_recipe, so a new one cannot slip through untested.
CALLS = {
    ("KeysightN6700", "set_voltages"): lambda v: (({1: 0.0, 2: v},), {}),
    ("KeysightN6700", "set_current_limits"): lambda v: (({1: v},), {}),
    ("OCC16", "set_bias"): lambda v: ((1, v), {}),
    ("OCC16", "set_biases"): lambda v: (([0.0, -v],), {}),
    ("OCC16", "load_program"): lambda v: ((np.full((1, 2, 2), v), np.zeros((1, 1, 2), np.int16)), {}),
    ("OCC16", "execute"): lambda v: ((), {"heater_volts": np.full((1, 2, 2), v),
                                          "input_codes": np.zeros((1, 1, 2), np.int16)}),
}

#: How to turn an output on through each Enables method (properties are set to True).
ENABLE_CALLS = {
    ("KeysightN6700", "set_outputs"): lambda guarded: guarded.set_outputs(True, [1]),
    ("N6700Channel", "clear_protection"): lambda guarded: guarded.clear_protection(),
}


@pytest.fixture(params=BENCHES, ids=lambda p: p.stem)
def bench(request):
    with labctl.open_bench(request.param, seed=2) as b:
        yield b


@pytest.fixture
def sent(monkeypatch):
    """Every message any simulated instrument receives (a spy on the sim library's VISA write)."""
    messages = []
    original = LabSimVisaLibrary.write

    def spy(self, session, data):
        messages.append(bytes(data))
        return original(self, session, data)

    monkeypatch.setattr(LabSimVisaLibrary, "write", spy)
    return messages


def walk(label, guarded, driver):
    """(label, guarded, driver object) for an object and every CHILD under it (depth first)."""
    yield label, guarded, driver
    for member, kind in member_table(type(driver)).items():
        if kind != CHILD or not hasattr(driver, member):
            continue
        children, guarded_children = getattr(driver, member), getattr(guarded, member)
        if isinstance(children, dict):
            for key, child in children.items():
                yield from walk(f"{label}.{member}[{key}]", guarded_children[key], child)
        else:
            yield from walk(f"{label}.{member}", guarded_children, children)


def shadow_driver(bench, name):
    """A second connection to instrument ``name`` on the same simulator: its members, for enumeration."""
    spec = bench.config.instruments[name]
    return load_driver(spec.driver)(spec.resource, visa_library=bench.sim, **spec.connection)


def objects(bench):
    for name, spec in bench.config.instruments.items():
        driver = shadow_driver(bench, name)
        yield from walk(name, bench.role(name), driver)


def public_members(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def limit_si(bench, name, quantity):
    """The limit of ``quantity`` for instrument ``name`` in SI, or None if the bench leaves it unlimited."""
    spec = bench.config.instruments[name]
    limits = bench.config.safety.get(name)
    key, _ = ROLE_QUANTITIES[spec.role][quantity]
    limit = None if limits is None else getattr(limits, key)
    if limit is None:
        return None
    if quantity == "optical_power":
        return to_si(limit, "dBm")
    return limit / 2 if quantity == "awg_offset" else limit


def above(limit_value_si, unit):
    """A value 30 % above the limit, expressed in ``unit``."""
    value = 1.3 * limit_value_si
    return w_to_dbm(value) if unit == "dBm" else value / to_si(1.0, unit)


# -- every member is classified ---------------------------------------------------------------------


def test_every_member_of_every_role_object_is_classified(bench):
    unclassified = []
    for label, _guarded, driver in objects(bench):
        table = member_table(type(driver))
        unclassified += [f"{label}: {type(driver).__name__}.{n}" for n in public_members(driver) if n not in table]
    assert unclassified == []


def test_every_limited_method_has_a_recipe_and_names_an_argument():
    missing = []
    modules = {importlib.import_module(load_driver(key).__module__) for key in DRIVERS}
    for module in modules:
        for klass in [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module.__name__]:
            for member, kind in vars(klass).get("safety_members", {}).items():
                if isinstance(kind, Limited) and callable(getattr(klass, member, None)) \
                        and not isinstance(getattr(klass, member), property):
                    if kind.argument is None or (klass.__name__, member) not in CALLS:
                        missing.append(f"{klass.__name__}.{member}")
    assert missing == []


# -- refused above the limit, nothing sent ------------------------------------------------------------


def test_every_source_setting_is_refused_above_its_limit_with_nothing_sent(bench, sent):
    covered = set()  # (instrument, limit key) pairs some member was refused against
    for label, guarded, driver in objects(bench):
        name = label.split(".")[0].split(" ")[0]
        for member, kind in member_table(type(driver)).items():
            if not isinstance(kind, Limited) or not hasattr(type(driver), member):
                continue
            limit = limit_si(bench, name, kind.quantity)
            if limit is None:
                continue  # the bench file says this quantity is unlimited
            unit = kind.unit(driver) if callable(kind.unit) else kind.unit
            value = above(limit, unit)
            state = bench.sim.instrument(bench.config.instruments[name].resource).state()
            sent.clear()
            with pytest.raises(SafetyLimitError, match="nothing was sent"):
                if isinstance(getattr(type(driver), member), property):
                    setattr(guarded, member, value)
                else:
                    args, kwargs = CALLS[(type(driver).__name__, member)](value)
                    getattr(guarded, member)(*args, **kwargs)
            assert sent == [], f"{label}.{member} sent {sent}"
            assert bench.sim.instrument(bench.config.instruments[name].resource).state() == state
            covered.add((name, ROLE_QUANTITIES[bench.config.instruments[name].role][kind.quantity][0]))
    limited = set()  # (instrument, limit key) pairs the bench file sets
    for name, limits in bench.config.safety.items():
        keys = {key for key, _ in ROLE_QUANTITIES.get(bench.config.instruments[name].role, {}).values()}
        limited |= {(name, key) for key in keys if getattr(limits, key) is not None}
    assert limited and covered == limited


def test_turning_an_output_on_checks_what_it_would_emit(bench, sent):
    """A setpoint left over the limit by someone else (here: a second connection, like the front panel)."""
    candidates = exercised = unreachable = 0
    for label, guarded, driver in objects(bench):
        name = label.split(".")[0].split(" ")[0]
        for member, kind in member_table(type(driver)).items():
            if not isinstance(kind, Enables) or not hasattr(type(driver), member):
                continue
            holder = driver.channels[1] if kind.channels else driver
            for read, quantity, unit in kind.reads:
                limit = limit_si(bench, name, quantity)
                if limit is None or not isinstance(getattr(type(holder), read, None), property):
                    continue
                candidates += 1
                previous = getattr(holder, read)
                try:
                    setattr(holder, read, above(limit, unit))
                except ValueError:  # the driver's own range (ValueOutOfRange, pymeasure's ValueError)
                    unreachable += 1  # the instrument itself cannot go over this limit
                    continue
                sent.clear()
                with pytest.raises(SafetyLimitError, match="stays as it was"):
                    if isinstance(getattr(type(driver), member), property):
                        setattr(guarded, member, True)
                    else:
                        ENABLE_CALLS[(type(driver).__name__, member)](guarded)
                assert [m for m in sent if b"?" not in m] == [], f"{label}.{member} sent more than reads"
                setattr(holder, read, previous)
                exercised += 1
    assert candidates > 0 and exercised + unreachable == candidates


def test_read_only_and_raw_members_are_refused_with_nothing_sent(bench, sent):
    refused = 0
    for label, guarded, driver in objects(bench):
        for member, kind in member_table(type(driver)).items():
            static = getattr(type(driver), member, None)
            if kind == RAW and hasattr(driver, member):
                with pytest.raises(UnguardedMemberError, match=r"bench\.raw"):
                    getattr(guarded, member)
                refused += 1
            elif kind in (READ, SET, CHILD) and isinstance(static, property) and (kind != SET or static.fset is None):
                with pytest.raises(UnguardedMemberError):
                    setattr(guarded, member, 1)
                refused += 1
    assert sent == [] and refused > 0


def test_an_unclassified_member_is_refused_and_hasattr_says_no(bench):
    laser = bench.role(bench.find("tunable_laser")[0], 1)
    with pytest.raises(UnguardedMemberError, match="not classified"):
        laser.power_setpoint_dbm_values  # a dynamic validator range: not part of the guarded surface
    assert not hasattr(laser, "write") and not hasattr(laser, "parent")
    with pytest.raises(UnguardedMemberError):
        laser.__self__ = None


def test_channels_come_out_guarded():
    with labctl.open_bench("characterisation", seed=1) as b:
        laser = b.role("laser")
        with pytest.raises(SafetyLimitError, match="10 dBm"):
            laser.ch_2.power_dbm = 13.0
        with pytest.raises(SafetyLimitError, match="10 dBm"):
            laser.channels[3].power = 20e-3
        with pytest.raises(SafetyLimitError, match="0.05 A"):
            b.role("heaters").set_current_limits({3: 2.0})
        with pytest.raises(SafetyLimitError, match="8 V"):
            b.instruments["heaters"].ch_4.voltage = 9.0
        with pytest.raises(UnguardedMemberError):
            b.role("bias").mzm.write("MZM:HOLD:VOLTAGE: 12000")
        with pytest.raises(SafetyLimitError, match="bias voltage 12 V"):
            b.role("bias").mzm.voltage_setpoint = 12.0
        with pytest.raises(UnguardedMemberError):
            b.role("laser", 1).measure_voltage = None  # no such member, nothing replaced
        assert b.role("laser", 1).shutdown.__name__ == "shutdown"
        assert not hasattr(b.role("laser", 1).shutdown, "__self__")


# -- the raw escape hatch ------------------------------------------------------------------------------


@pytest.fixture
def default_bench():
    with labctl.open_bench("characterisation", seed=3) as b:
        yield b


def sim(bench, name):
    return bench.sim.instrument(bench.config.instruments[name].resource)


@pytest.mark.parametrize("name, message, words", [
    ("laser", ":SOUR1:POW 13DBM", "13.00 dBm"),
    ("laser", ":SOUR2:WAV 1550NM;POW 20MW", "laser power 20 mW"),  # relative header after ';'
    ("laser", ":SOUR1:POW MAX", "not a number"),
    ("laser", ":SOUR1:POW 5XW", "suffix 'XW'"),
    ("laser", ":SOUR1:POW:UNIT W;:SOUR1:POW 0.002", "changes the unit"),
    ("heaters", "VOLT 9,(@1,2)", "DC source voltage 9 V"),
    ("heaters", "SOUR:CURR 100MA,(@3)", "current limit 0.1 A"),
    ("awg", ":VOLT1 1.2", "AWG amplitude 1.2 Vpp"),
    ("awg", ":VOLTAGE2:OFFSET -0.6", "AWG offset -0.6 V"),
    ("bias", "MZM:HOLD:VOLTAGE: 12000", "bias voltage 12 V"),
    ("laser", "*RCL 1", "cannot be checked"),
    # long runs of digits and spaces: refused in linear time (a backtracking number pattern takes seconds)
    ("laser", ":SOUR1:POW " + "1" * 20000 + " " * 20000 + "x!", "not a number"),
])
def test_raw_settings_over_a_limit_or_unreadable_are_refused_logged_and_not_sent(
        default_bench, sent, caplog, name, message, words):
    raw = default_bench.raw(name)
    before = sim(default_bench, name).state()
    sent.clear()
    with caplog.at_level(logging.WARNING, logger="labctl.safety"):
        with pytest.raises(SafetyLimitError, match=words):
            raw.write(message)
    assert [m for m in sent if not m.upper().startswith(b":SOUR1:POW:UNIT?")] == []  # at most the unit query
    assert sim(default_bench, name).state() == before
    assert any("refused" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_raw_power_without_suffix_is_read_in_the_instruments_unit(default_bench, caplog):
    raw = default_bench.raw("laser")
    with caplog.at_level(logging.WARNING, logger="labctl.safety"):
        raw.write(":SOUR1:POW:UNIT W")
        with pytest.raises(SafetyLimitError, match="laser power 20 mW"):
            raw.write(":SOUR1:POW 0.02")  # 20 mW = 13 dBm in W mode
        raw.write(":SOUR1:POW 0.005")
        raw.write(":SOUR1:POW:UNIT DBM")
        with pytest.raises(SafetyLimitError, match="laser power 15.8"):
            raw.write(":SOUR1:POW 12")
    assert default_bench.role("laser", 1).power == pytest.approx(5e-3, rel=1e-4)
    logged = [r.getMessage() for r in caplog.records]
    assert "raw SCPI to laser: :SOUR1:POW 0.005" in logged


def test_raw_commands_within_limits_or_unlimited_pass_with_a_log_line(default_bench, caplog):
    with caplog.at_level(logging.WARNING, logger="labctl.safety"):
        default_bench.raw("heaters").write("VOLT 1.5,(@1:2)")
        default_bench.raw("laser").write(":SOUR3:WAV 1551.5NM")
        assert default_bench.raw("scope").ask("*IDN?")
    assert default_bench.role("heaters", 2).voltage == pytest.approx(1.5)
    assert default_bench.role("laser", 3).wavelength == pytest.approx(1551.5e-9)
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "raw SCPI to heaters: VOLT 1.5,(@1:2)" in logged
    assert "raw SCPI to laser: :SOUR3:WAV 1551.5NM" in logged
    assert "raw SCPI to scope: *IDN?" in logged


def test_raw_heater_tables_are_decoded_and_checked():
    with labctl.open_bench(labctl.bench.CHARACTERISATION_BENCH_PATH.parent / "ring_core.yaml", seed=1) as b:
        name = b.find("optical_core")[0]
        limit = b.config.safety[name].max_heater_voltage_v
        raw = b.raw(name)
        n_in, n_out = b.role(name).n_inputs, b.role(name).n_outputs
        table = np.full((1, n_out, n_in), limit * 1.1, dtype="<f4")
        with pytest.raises(SafetyLimitError, match="OCC heater voltage"):
            raw.write_binary_values(":HEAT:TABL ", table.tobytes(), datatype="B")
        with pytest.raises(SafetyLimitError, match="binary block"):
            raw.write(":HEAT:TABL 1.0")
        assert b.role(name).table_tile_count == 0
        raw.write_binary_values(":HEAT:TABL ", (table * 0.5).tobytes(), datatype="B")
        assert b.role(name).table_tile_count == 1


def test_raw_access_no_longer_needs_the_silent_bypasses(default_bench):
    with pytest.raises(AttributeError):
        default_bench.role("laser", 1).unguarded
    with pytest.raises(UnguardedMemberError):
        default_bench.instruments["laser"].write(":SOUR1:POW 13DBM")
    assert default_bench.instruments["laser"].id == default_bench.identify()["laser"]
    assert set(default_bench.instruments) == set(default_bench.config.instruments)


# -- stale error-queue entries are not blamed ------------------------------------------------------------


def test_a_raw_command_the_instrument_rejects_is_reported_and_not_blamed_later(default_bench):
    with pytest.raises(InstrumentError, match=r"':SOUR1:BOGUS 1'"):
        default_bench.raw("laser").write(":SOUR1:BOGUS 1")
    default_bench.role("laser", 1).wavelength = 1550.2e-9  # a checked setting: raises if the queue held anything
    with pytest.raises(InstrumentError, match="BOGUS"):
        default_bench.raw("laser").ask(":SOUR1:BOGUS?")  # unanswered query: timeout, then its error reported
    default_bench.role("laser", 1).wavelength = 1550.3e-9


def test_the_bench_starts_from_a_clean_error_queue(monkeypatch, caplog):
    original = LabSimVisaLibrary.from_config.__func__

    def left_over(cls, config, seed=0):
        library = original(cls, config, seed)
        resource = config["instruments"]["laser"]["resource"]
        library.instrument(resource).push_error(ScpiError(-222, "front panel"))  # left by someone else
        return library

    monkeypatch.setattr(LabSimVisaLibrary, "from_config", classmethod(left_over))
    with caplog.at_level(logging.WARNING, logger="labctl.bench"):
        with labctl.open_bench("characterisation", seed=4) as b:
            assert [code for code, _ in b.stale_errors["laser"]] == [-222]
            assert b.stale_errors["heaters"] == []
            b.role("laser", 1).wavelength = 1550.4e-9  # not blamed for the stale -222
    assert any("laser: its error queue held 1 entry" in r.getMessage() for r in caplog.records)


def test_drain_errors_reads_the_queue_without_raising():
    with expected_protocol(KeysightN6700, [("SYST:ERR?", '-222,"Data out of range"'),
                                           ("SYST:ERR?", '-113,"Undefined header"'), OK]) as inst:
        assert inst.drain_errors() == [(-222, "Data out of range"), (-113, "Undefined header")]
    with expected_protocol(ThorlabsMBX, []) as inst:
        assert inst.drain_errors() == []


def test_raw_access_drains_its_own_errors_so_the_next_setting_is_not_blamed():
    limits = SafetyLimits(max_voltage_v=5.0, max_current_a=0.1)
    with expected_protocol(KeysightN6700, [
        ("VOLT 1,(@1)", None), ("SYST:ERR?", '-222,"Data out of range"'), OK,
        ("VOLT 2,(@1)", None), OK,
    ]) as inst:
        raw = RawAccess(inst, "dc", checks_for("dc_source", limits), KeysightN6700.limited_commands)
        with pytest.raises(InstrumentError, match=r"'VOLT 1,\(@1\)'"):
            raw.write("VOLT 1,(@1)")
        inst.ch_1.voltage = 2.0  # its own error check finds an empty queue
        with pytest.raises(SafetyLimitError, match="DC source voltage 6 V"):
            raw.write("VOLT 6,(@1)")


# -- the drivers' declared command tables match what their setters send -------------------------------


@pytest.mark.parametrize("cls, pairs, act, expected", [
    (KeysightN7714A, [(":SOUR2:POW 6.9897DBM", None), OK], lambda i: setattr(i.ch_2, "power", 5e-3),
     [("optical_power", 5e-3)]),
    (KeysightN7714A, [(":SOUR1:POW 9.5000DBM", None), OK], lambda i: setattr(i.ch_1, "power_dbm", 9.5),
     [("optical_power", to_si(9.5, "dBm"))]),
    (KeysightN6700, [("VOLT 1.5,(@2)", None), OK], lambda i: setattr(i.ch_2, "voltage", 1.5),
     [("dc_voltage", 1.5)]),
    (KeysightN6700, [("CURR 0.02,(@3)", None), OK], lambda i: setattr(i.ch_3, "current_limit", 0.02),
     [("dc_current_limit", 0.02)]),
    (KeysightN6700, [("VOLT 1.5,(@1,3);VOLT 2,(@2)", None), OK],
     lambda i: i.set_voltages({1: 1.5, 2: 2.0, 3: 1.5}), [("dc_voltage", 1.5), ("dc_voltage", 2.0)]),
    (KeysightM8195A, [(":VOLT1 0.5", None), OK], lambda i: setattr(i.ch_1, "amplitude", 0.5),
     [("awg_amplitude", 0.5)]),
    (KeysightM8195A, [(":VOLT4:OFFS -0.2", None), OK], lambda i: setattr(i.ch_4, "offset", -0.2),
     [("awg_offset", -0.2)]),
    (ThorlabsMBX, [("MZM:HOLD:VOLTAGE: 2500", "1"), ("MZM:MODE: 7", "1")],
     lambda i: setattr(i, "bias_voltage", 2.5), [("bias_voltage", 2.5)]),
    (OCC16, [(":HEAT:LIM 4", None), OK], lambda i: setattr(i, "heater_limit", 4.0), [("heater_voltage", 4.0)]),
    (OCC16, [(":DAC:AMPL 0.8", None), OK], lambda i: setattr(i, "dac_amplitude", 0.8), [("dac_amplitude", 0.8)]),
    (OCC16, [(":CORE:INP?", "16"), (":BIAS:VOLT -6,(@2)", None), OK], lambda i: i.set_bias(2, -6.0),
     [("bias_voltage", -6.0)]),
])
def test_declared_commands_recognise_what_the_driver_sends(cls, pairs, act, expected):
    with expected_protocol(cls, pairs) as inst:
        act(inst)
    writes = [command for command, reply in pairs if not command.endswith("?")]
    found = [(s.declaration.quantity, to_si(s.value, s.unit)) for w in writes
             for s in limited_settings(w, cls.limited_commands)]
    assert [(q, pytest.approx(v)) for q, v in expected] == found


def test_state_dependent_unit_is_queried_on_the_channel_the_header_names():
    limits = SafetyLimits(max_power_dbm=10.0)
    with expected_protocol(KeysightN7714A, [(":SOUR3:POW:UNIT?", "+1"), (":SOUR3:POW:UNIT?", "+0"),
                                            (":SOUR3:POW 0.02", None), OK]) as inst:
        raw = RawAccess(inst, "laser", checks_for("tunable_laser", limits), KeysightN7714A.limited_commands)
        with pytest.raises(SafetyLimitError, match="20 mW"):
            raw.write(":SOUR3:POW 0.02")  # W mode: 20 mW
        raw.write(":SOUR3:POW 0.02")  # asked again, now dBm mode: 0.02 dBm is within the limit


# -- modes that hand a limited quantity to the instrument -----------------------------------------------


def test_auto_bias_modes_need_the_whole_controller_range_within_the_limit(caplog):
    low = SafetyLimits(max_voltage_v=5.0)
    with expected_protocol(ThorlabsMBX, []) as inst:
        bias = Guarded(inst, checks_for("bias_controller", low), "bias")
        for act in (bias.lock_quadrature, lambda: bias.lock_to(1), bias.mzm.calibrate,
                    lambda: setattr(bias.mzm, "mode", 3)):
            with pytest.raises(SafetyLimitError, match="anywhere in -10 .. 10 V"):
                act()
        raw = RawAccess(inst, "bias", checks_for("bias_controller", low), ThorlabsMBX.limited_commands)
        with pytest.raises(SafetyLimitError, match="anywhere in -10 .. 10 V"):
            raw.write("MZM:MODE: 3")
    with expected_protocol(ThorlabsMBX, [("MZM:MODE: 7", "1"), ("MZM:MODE: 7", "1")]) as inst:
        bias = Guarded(inst, checks_for("bias_controller", low), "bias")
        bias.mzm.mode = 7
        RawAccess(inst, "bias", checks_for("bias_controller", low), ThorlabsMBX.limited_commands).write("MZM:MODE: 7")
    with expected_protocol(ThorlabsMBX, [("MZM:MODE: 3", "1")]) as inst:
        Guarded(inst, checks_for("bias_controller", SafetyLimits(max_voltage_v=10.0)), "bias").lock_quadrature()


# -- the header matcher: every spelling the manual allows is recognised -----------------------------------

NOTATION = "[:SOURce#][:CHANnel#]:POWer[:LEVel][:IMMediate][:AMPLitude]"
NODES = [("SOURce", True, True), ("CHANnel", True, True), ("POWer", False, False), ("LEVel", True, False),
         ("IMMediate", True, False), ("AMPLitude", True, False)]  # (mnemonic, optional, numeric suffix)


def spelled(draw, nodes):
    """A header spelled as the manual allows: optional nodes in or out, short or long form, any case."""
    parts = []
    for word, optional, numbered in nodes:
        if optional and not draw(st.booleans()):
            continue
        short = word.rstrip("abcdefghijklmnopqrstuvwxyz")
        form = draw(st.sampled_from([short, word]))
        form = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in form)
        suffix = str(draw(st.integers(1, 4))) if numbered and draw(st.booleans()) else ""
        parts.append(form + suffix)
    return ":".join(parts)


@st.composite
def spelled_headers(draw):
    return ":" + spelled(draw, NODES)


@settings(max_examples=150, deadline=None)
@given(header=spelled_headers(), value=st.floats(-30, 30, allow_nan=False), suffix=st.sampled_from(["", "DBM", "mW"]))
def test_every_spelling_of_a_limited_header_is_found_with_its_value(header, value, suffix):
    declaration = LimitedCommand(NOTATION, "optical_power", suffixes=POWER_SUFFIXES, unit_query=":POW:UNIT?")
    (found,) = limited_settings(f"{header} {value!r}{suffix}", (declaration,))
    assert found.value == value and found.unit == POWER_SUFFIXES.get(suffix.upper())
    assert header_pattern(NOTATION).fullmatch(header.upper() + ":UNIT") is None
    relative = limited_settings(f":SOUR2:WAV 1550NM;{header.lstrip(':')} {value!r}{suffix}", (declaration,))
    assert relative and all(s.value == value for s in relative)  # both the path-resolved and root readings
    assert len({s.channel for s in relative}) == len(relative)


def test_tsl570_power_is_read_in_the_unit_the_laser_is_set_to():
    limits = SafetyLimits(max_power_dbm=10.0)
    pairs = [(":POW:UNIT?", "0"), (":POW:UNIT?", "1"), (":POWer 5", None), OK]
    with expected_protocol(SantecTSL570, pairs) as inst:
        raw = RawAccess(inst, "tsl", checks_for("tunable_laser", limits), SantecTSL570.limited_commands)
        with pytest.raises(SafetyLimitError, match="12.00 dBm"):
            raw.write(":POWer 12")  # dBm mode
        raw.write(":POWer 5")  # mW mode: 5 mW = 7 dBm
    with expected_protocol(SantecTSL570, [(":POWer:UNIT?", "1")]) as inst:
        laser = Guarded(inst, checks_for("tunable_laser", limits), "tsl")
        with pytest.raises(SafetyLimitError, match="12 mW"):
            laser.power_setpoint = 12.0  # in mW, the unit the laser reports


# -- differential: whatever a raw write lets through, the simulated instrument stays within its limits ----


@st.composite
def laser_messages(draw):
    power = spelled(draw, NODES)
    value = draw(st.floats(-5, 20, allow_nan=False).map(lambda v: round(v, 3)))
    suffix = draw(st.sampled_from(["", "DBM", "dbm", "MW", "mW", "W", "UW"]))
    if suffix == "W" or (suffix == "" and draw(st.booleans())):
        value = round(value * 1e-3, 6)  # plausible W values
    command = f"{power} {value}{suffix}"
    prefix = draw(st.sampled_from(["", ":", ":SOUR2:WAV 1550NM;", ":SOUR3:POW:UNIT W;", "*CLS;"]))
    return prefix + command


@pytest.fixture(scope="module")
def shared_bench():
    with labctl.open_bench("characterisation", seed=9) as b:
        yield b


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(laser_messages(), min_size=1, max_size=3),
       unit=st.sampled_from([None, "W", "DBM"]))
def test_no_raw_laser_message_the_guard_lets_through_exceeds_the_limit(shared_bench, messages, unit):
    raw = shared_bench.raw("laser")
    if unit:
        raw.write(f":SOUR1:POW:UNIT {unit};:SOUR2:POW:UNIT {unit};:SOUR3:POW:UNIT {unit}")
    for message in messages:
        try:
            raw.write(message)
        except (SafetyLimitError, InstrumentError):
            pass  # refused by the guard, or by the instrument (and its error read and reported)
    limit = to_si(shared_bench.config.safety["laser"].max_power_dbm, "dBm")
    for ch in (1, 2, 3, 4):
        assert shared_bench.role("laser", ch).power <= limit * (1 + 1e-9), (messages, unit)


@st.composite
def dc_messages(draw):
    header = spelled(draw, [("SOURce", True, False), ("VOLTage", False, False), ("LEVel", True, False),
                            ("IMMediate", True, False), ("AMPLitude", True, False)])
    value = draw(st.floats(0, 12, allow_nan=False).map(lambda v: round(v, 3)))
    suffix = draw(st.sampled_from(["", "V", "MV", "mv"]))
    if suffix.upper() == "MV":
        value = round(value * 1000, 1)
    channels = draw(st.sampled_from(["(@1)", "(@1,3)", "(@1:4)", "(@2)"]))
    return draw(st.sampled_from(["", "OUTP 0,(@4);", ":"])) + f"{header} {value}{suffix},{channels}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(dc_messages(), min_size=1, max_size=3))
def test_no_raw_dc_message_the_guard_lets_through_exceeds_the_limit(shared_bench, messages):
    raw = shared_bench.raw("heaters")
    for message in messages:
        try:
            raw.write(message)
        except (SafetyLimitError, InstrumentError):
            pass
    limit = shared_bench.config.safety["heaters"].max_voltage_v
    for ch in (1, 2, 3, 4):
        assert shared_bench.role("heaters", ch).voltage <= limit * (1 + 1e-9), messages


@st.composite
def awg_messages(draw):
    header = spelled(draw, [("SOURce", True, False), ("VOLTage", False, True), ("OFFSet", False, False)])
    value = draw(st.floats(-1, 1, allow_nan=False).map(lambda v: round(v, 3)))
    suffix = draw(st.sampled_from(["", "V", "MV"]))
    if suffix == "MV":
        value = round(value * 1000, 1)
    return draw(st.sampled_from(["", ":VOLT2 0.4;", ":"])) + f"{header} {value}{suffix}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(awg_messages(), min_size=1, max_size=3))
def test_no_raw_awg_offset_the_guard_lets_through_exceeds_the_limit(shared_bench, messages):
    raw = shared_bench.raw("awg")
    for message in messages:
        try:
            raw.write(message)
        except (SafetyLimitError, InstrumentError):
            pass
    limit = shared_bench.config.safety["awg"].max_amplitude_vpp / 2
    for ch in (1, 2, 3, 4):
        assert abs(shared_bench.role("awg", ch).offset) <= limit * (1 + 1e-9), messages
