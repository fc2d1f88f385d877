"""The simulated VISA library as PyVISA sees it: resource manager, I/O, errors, timeouts."""

import numpy as np
import pytest
import pyvisa

from sim_backends import bench as bench_module
from sim_backends.highlevel import LabSimVisaLibrary, UnknownResource
from sim_backends.instrument import SimInstrument
from sim_backends.scpi import definite_block
from sim_backends.world import OPTICAL_OUT, Lightwave

RESOURCE = "TCPIP0::src.labsim::inst0::INSTR"


class SimSource(SimInstrument):
    """A minimal one-port light source used to exercise the VISA layer."""

    MODEL = "test.Source"
    IDN = ("ACME", "SRC-1", "0.1")
    PORTS = {"out": OPTICAL_OUT}

    def build(self, tree):
        tree.add("[:SOURce#]:POWer", setter=self._set_power, getter=lambda c: f"{self.power:+.6E}")
        tree.add(":TRACe:DATA", setter=self._set_data, getter=lambda c: definite_block(self.data))

    def reset(self):
        self.power = 0.0
        self.data = b""

    def _set_power(self, call):
        call.expect(1)
        self.power = call.param().number("W", 0.0, 0.02, 1e-3)

    def _set_data(self, call):
        self.data = call.param().binary()

    def optical_output(self, port, t):
        return [Lightwave(1550e-9, np.sqrt(self.power))] if self.power else []


@pytest.fixture
def lib(monkeypatch):
    monkeypatch.setitem(bench_module.SIM_MODELS, "test.Source", f"{__name__}:SimSource")
    config = {"instruments": {"src": {"driver": "test.Source", "resource": "TCPIP::src.labsim::INSTR"}}}
    return LabSimVisaLibrary.from_config(config, seed=3)


@pytest.fixture
def res(lib):
    rm = pyvisa.ResourceManager(lib)
    r = rm.open_resource(RESOURCE, read_termination="\n", write_termination="\n")
    yield r
    r.close()


def test_list_and_open_by_canonical_or_short_name(lib):
    rm = pyvisa.ResourceManager(lib)
    assert rm.list_resources() == (RESOURCE,)
    r = rm.open_resource("TCPIP::src.labsim::INSTR")
    assert r.query("*IDN?").startswith("ACME,SRC-1,")


def test_unknown_resource_lists_the_resources_that_exist(lib):
    rm = pyvisa.ResourceManager(lib)
    with pytest.raises(UnknownResource) as err:
        rm.open_resource("TCPIP::nothere::INSTR")
    assert RESOURCE in str(err.value)


def test_default_bench_opens_by_backend_name_and_is_the_system():
    rm = pyvisa.ResourceManager("@labsim")
    assert "TCPIP0::laser1-1.labsim::inst0::INSTR" in rm.list_resources()


def test_a_builtin_bench_opens_by_its_name():
    rm = pyvisa.ResourceManager("characterisation@labsim")
    assert "TCPIP0::laser.labsim::inst0::INSTR" in rm.list_resources()


def test_bench_file_path_at_labsim(tmp_path, monkeypatch):
    monkeypatch.setitem(bench_module.SIM_MODELS, "test.Source", f"{__name__}:SimSource")
    path = tmp_path / "bench.yaml"
    path.write_text("instruments:\n  s: {driver: test.Source, resource: 'GPIB0::7::INSTR'}\n")
    rm = pyvisa.ResourceManager(f"{path}@labsim")
    assert rm.list_resources() == ("GPIB0::7::INSTR",)


def test_settings_round_trip_and_multiple_queries_share_one_response(res):
    res.write(":SOUR:POW 2.5MW;:POW?;*OPC?")
    assert res.read() == "+2.500000E-03;1"


def test_error_queue_records_and_empties_in_order(res):
    res.write(":POW 1W")
    res.write(":NOPE")
    assert res.query("SYST:ERR?").startswith("-222,")
    assert res.query("SYST:ERR?").startswith("-113,")
    assert res.query("SYST:ERR?") == '0,"No error"'
    assert res.query("*ESR?") != "0"  # command and execution error bits set
    assert res.query("*ESR?") == "0"  # reading clears it


def test_error_queue_overflow_keeps_size_and_flags_it(res):
    for _ in range(40):
        res.write(":NOPE")
    entries = [res.query("SYST:ERR?") for _ in range(31)]
    assert entries[29].startswith("-350,")
    assert entries[30] == '0,"No error"'


def test_query_with_nothing_to_answer_times_out_and_logs_420(res):
    res.write(":POW 1MW")
    with pytest.raises(pyvisa.errors.VisaIOError) as err:
        res.read()
    assert err.value.error_code == pyvisa.constants.StatusCode.error_timeout
    assert res.query("SYST:ERR?").startswith("-420,")


def test_unread_response_is_discarded_by_next_message(res):
    res.write("*IDN?")
    res.write(":POW 1MW")
    assert res.query("SYST:ERR?").startswith("-410,")


def test_large_binary_block_round_trip_in_chunks(res):
    data = np.random.default_rng(0).integers(-128, 127, 300_000, dtype=np.int8)
    res.write_binary_values(":TRAC:DATA ", data, datatype="b")
    back = res.query_binary_values(":TRAC:DATA?", datatype="b", container=np.array, chunk_size=4096)
    np.testing.assert_array_equal(back, data)


def test_rst_restores_defaults(res, lib):
    res.write(":POW 3MW")
    res.write("*RST")
    assert lib.instrument(RESOURCE).power == 0.0
