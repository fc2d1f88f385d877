"""`labctl bench check` reports every instrument, reachable or not, each within its timeout."""

from __future__ import annotations

import socket
import threading

import pytest
import yaml
from click.testing import CliRunner

from labctl.cli import main
from labctl.errors import ConfigError
from labctl.resilience import InstrumentUnavailable, call_with_deadline, real_visa_library
from sim_backends import CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH

CLOSED_SOCKET = "TCPIP0::127.0.0.1::5025::SOCKET"
CLOSED_VXI11 = "TCPIP0::127.0.0.1::inst0::INSTR"


def check(*args: str):
    return CliRunner().invoke(main, ["bench", "check", *args])


def write_bench(tmp_path, instruments: dict, visa_library: str, safety: dict | None = None):
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump({"name": "check-me", "visa_library": visa_library, "instruments": instruments,
                                    "safety": safety or {}}, sort_keys=False))
    return path


def port_refuses(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def silent_server():
    """A loopback TCP port that accepts connections and never answers (an instrument that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    yield server.getsockname()[1]
    server.close()


def test_every_unreachable_instrument_is_reported_with_its_reason_on_pyvisa_py(tmp_path):
    if not port_refuses(5025) or not port_refuses(111):
        pytest.skip("something listens on 127.0.0.1:5025 or :111 here; the test needs them closed")
    path = write_bench(tmp_path, {
        "laser": {"role": "tunable_laser", "driver": "keysight.N7714A", "resource": CLOSED_SOCKET},
        "powermeter": {"role": "optical_power_meter", "driver": "keysight.N7744A", "resource": CLOSED_VXI11},
        "bias": {"role": "bias_controller", "driver": "thorlabs.MBX", "resource": "ASRL/dev/ttyLABCTL_NONE::INSTR"},
        "scope": {"role": "oscilloscope", "driver": "keysight.Infiniium",
                  "resource": "USB0::0x2A8D::0x9027::NOSUCHUNIT::INSTR"},
    }, "@py", {"laser": {"max_power_dbm": 10.0}, "bias": {"max_voltage_v": 10.0}})
    result = check("--bench", str(path), "--timeout", "2", "--attempts", "2")
    assert result.exit_code == 1, result.output
    fails = [line.strip() for line in result.output.splitlines() if line.strip().startswith("FAIL")]
    assert [line.split()[1:3] for line in fails] == [
        ["laser", f"{CLOSED_SOCKET}:"], ["powermeter", f"{CLOSED_VXI11}:"],
        ["bias", "ASRL/dev/ttyLABCTL_NONE::INSTR:"], ["scope", "USB0::0x2A8D::0x9027::NOSUCHUNIT::INSTR:"]]
    assert "refused" in fails[0] and "refused" in fails[1]
    assert "ttyLABCTL_NONE" in fails[2]


def test_resources_missing_from_the_visa_library_fail_one_by_one_and_the_rest_are_checked(tmp_path):
    data = yaml.safe_load(CHARACTERISATION_BENCH_PATH.read_text())
    data["instruments"]["scope"]["resource"] = "TCPIP0::nowhere.labsim::hislip0::INSTR"
    data["instruments"]["switch"]["resource"] = "TCPIP0::elsewhere.labsim::inst0::INSTR"
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(dict(data, visa_library=f"{CHARACTERISATION_BENCH_PATH}@labsim")))
    result = check("--bench", str(mine), "--timeout", "5")
    assert result.exit_code == 1, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    failed = sorted(line.split()[1] for line in lines if line.startswith("FAIL"))
    passed = sorted(line.split()[1] for line in lines if line.startswith("ok"))
    assert failed == ["scope", "switch"]
    assert passed == sorted(set(data["instruments"]) - {"scope", "switch"})
    assert "nowhere.labsim" in result.output and "this bench has" in result.output


def test_the_simulated_bench_checks_clean():
    result = check("--sim")
    assert result.exit_code == 0, result.output
    assert result.output.count("  ok   ") == len(yaml.safe_load(SYSTEM_BENCH_PATH.read_text())["instruments"])
    assert "FAIL" not in result.output


def test_an_instrument_that_never_answers_fails_within_its_timeout(tmp_path, silent_server):
    resource = f"TCPIP0::127.0.0.1::{silent_server}::SOCKET"
    path = write_bench(tmp_path, {
        "powermeter": {"role": "optical_power_meter", "driver": "keysight.N7744A", "resource": resource},
    }, "@py")
    result = check("--bench", str(path), "--timeout", "1", "--attempts", "1")
    assert result.exit_code == 1
    assert f"FAIL powermeter {resource}: InstrumentUnavailable" in result.output
    assert "no answer within 1 s" in result.output


def test_call_with_deadline_gives_up_on_a_call_that_blocks():
    release = threading.Event()
    returned = threading.Event()

    def blocked():
        release.wait(30)
        returned.set()

    with pytest.raises(InstrumentUnavailable, match="no answer within 0.2 s"):
        call_with_deadline(blocked, 0.2, instrument="x", resource="r")
    assert not returned.is_set()  # it gave up while the call was still blocked
    release.set()
    assert call_with_deadline(lambda: 7, 1.0, instrument="x", resource="r") == 7
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["missing"], 1.0, instrument="x", resource="r")


def test_the_default_visa_library_falls_back_to_pyvisa_py_without_an_ivi_library():
    # imported here: pyvisa-py is the optional 'real' extra, needed by this test only
    from pyvisa.ctwrapper import IVIVisaLibrary
    from pyvisa_py.highlevel import PyVisaLibrary

    if IVIVisaLibrary.get_library_paths():
        pytest.skip("an IVI VISA library is installed here; pyvisa prefers it")
    assert isinstance(real_visa_library(""), PyVisaLibrary)
    assert isinstance(real_visa_library("@py"), PyVisaLibrary)


def test_an_unusable_visa_library_is_a_config_error_saying_what_to_install():
    with pytest.raises(ConfigError, match=r"visa_library.*pip install 'labctl\[real\]'"):
        real_visa_library("@no_such_backend", "lab.yaml")
