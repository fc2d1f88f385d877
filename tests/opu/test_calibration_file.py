"""Versioned, bench-bound calibration files: round trip, typed refusals, atomic writes."""

import json
import os
from datetime import datetime, timezone

import numpy as np
import pytest

from labctl.config import load_bench
from labctl.errors import LabctlError
from labctl.opu import calibration_file as cf
from labctl.opu.calibration_file import (
    CalibrationBenchMismatch,
    CalibrationCorrupt,
    CalibrationError,
    CalibrationVersionError,
    bench_fingerprint,
    load,
    save,
)
from sim_backends import CHARACTERISATION_BENCH_PATH

FP = bench_fingerprint([("keysight.M8195A", "TCPIP0::awg.labsim::hislip0::INSTR"),
                        ("keysight.Infiniium", "TCPIP0::scope.labsim::hislip0::INSTR")])

SECTIONS = {
    "mzm1": {"v_pi": 5.000000000000001, "phase_offset_v": -1.3e-7, "rising": True, "note": None,
             "table": np.linspace(0, 1, 7) ** 2, "codes": np.arange(-3, 4, dtype=np.int8)},
    "crosstalk": {"matrix": np.array([[1.0, 0.01], [0.02, 1.0]]), "channels": [1, 2],
                  "nested": {"gain": [0.9, 1.1], "name": "pd1"}},
}


def write(path, **kwargs):
    return save(path, SECTIONS, bench_name="test-bench", bench_fingerprint=FP, **kwargs)


def test_round_trip_is_exact(tmp_path):
    created = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    path = write(tmp_path / "cal.json", created=created)
    cal = load(path, FP)
    assert cal.bench == "test-bench" and cal.bench_fingerprint == FP
    assert cal.created_datetime == created and cal.format_version == cf.FORMAT_VERSION
    m = cal.section("mzm1")
    assert m["v_pi"] == 5.000000000000001 and m["phase_offset_v"] == -1.3e-7
    assert m["rising"] is True and m["note"] is None
    np.testing.assert_array_equal(m["table"], SECTIONS["mzm1"]["table"])
    assert m["codes"].dtype == np.int8
    x = cal.section("crosstalk")
    assert x["matrix"].shape == (2, 2) and x["matrix"][1, 0] == 0.02
    assert x["channels"] == [1, 2] and x["nested"] == {"gain": [0.9, 1.1], "name": "pd1"}
    doc = json.loads(path.read_text())
    assert doc["format_version"] == cf.FORMAT_VERSION and doc["bench"] == "test-bench"


def test_missing_section_names_the_present_ones(tmp_path):
    cal = load(write(tmp_path / "cal.json"), FP)
    with pytest.raises(CalibrationError, match="crosstalk, mzm1"):
        cal.section("detector_gain")


def test_fingerprint_depends_on_drivers_and_resources_only():
    config = load_bench(CHARACTERISATION_BENCH_PATH)
    fp = bench_fingerprint(config)
    assert fp.startswith("sha256:") and fp == bench_fingerprint(config.to_dict())
    pairs = [(s.driver, s.resource) for s in config.instruments.values() if s.role != "power_analyzer"]
    assert bench_fingerprint(list(reversed(pairs))) == fp             # order does not matter
    moved = config.to_dict()
    moved["instruments"]["awg"]["resource"] = "TCPIP0::awg2.labsim::hislip0::INSTR"
    assert bench_fingerprint(moved) != fp
    renamed = config.to_dict()
    renamed["instruments"]["the_awg"] = renamed["instruments"].pop("awg")
    assert bench_fingerprint(renamed) == fp


def test_other_bench_is_refused(tmp_path):
    path = write(tmp_path / "cal.json")
    other = bench_fingerprint([("keysight.M8195A", "TCPIP0::other::hislip0::INSTR")])
    with pytest.raises(CalibrationBenchMismatch, match="test-bench") as info:
        load(path, other)
    assert isinstance(info.value, LabctlError)
    assert load(path, None).bench == "test-bench"                      # None: inspect without the check


def rewrite(path, **changes):
    doc = json.loads(path.read_text())
    doc.update(changes)
    doc["checksum"] = cf._checksum(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("version,word", [(0, "older"), (cf.FORMAT_VERSION + 1, "newer")])
def test_other_format_versions_are_refused(tmp_path, version, word):
    path = write(tmp_path / "cal.json")
    rewrite(path, format_version=version)
    with pytest.raises(CalibrationVersionError, match=word):
        load(path, FP)


def test_corrupt_files_are_refused(tmp_path):
    path = write(tmp_path / "cal.json")
    text = path.read_text()
    (tmp_path / "trunc.json").write_text(text[: len(text) // 2])
    with pytest.raises(CalibrationCorrupt, match="not valid JSON"):
        load(tmp_path / "trunc.json", FP)
    (tmp_path / "edited.json").write_text(text.replace("5.000000000000001", "6.0"))
    with pytest.raises(CalibrationCorrupt, match="checksum"):
        load(tmp_path / "edited.json", FP)
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CalibrationCorrupt, match="not a labctl calibration"):
        load(tmp_path / "other.json", FP)
    rewrite(path, sections=[1, 2])
    with pytest.raises(CalibrationCorrupt, match="sections"):
        load(path, FP)
    with pytest.raises(CalibrationError, match="not found"):
        load(tmp_path / "nothing.json", FP)


def test_bad_values_are_refused_before_writing(tmp_path):
    path = write(tmp_path / "cal.json")
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"mzm1\.table"):
        save(path, {"mzm1": {"table": np.array([1.0, np.nan])}}, bench_name="b", bench_fingerprint=FP)
    with pytest.raises(ValueError, match=r"mzm1\.v_pi"):
        save(path, {"mzm1": {"v_pi": float("inf")}}, bench_name="b", bench_fingerprint=FP)
    with pytest.raises(ValueError, match="cannot store"):
        save(path, {"mzm1": {"fn": print}}, bench_name="b", bench_fingerprint=FP)
    with pytest.raises(ValueError, match="bench_fingerprint"):
        save(path, {}, bench_name="b", bench_fingerprint="abc")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["cal.json"]


def test_write_is_atomic_when_replacing_fails(tmp_path, monkeypatch):
    path = write(tmp_path / "cal.json")
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(cf.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save(path, {"new": {"x": 1.0}}, bench_name="b", bench_fingerprint=FP)
    assert path.read_bytes() == before                                  # the old file is intact
    assert os.listdir(tmp_path) == ["cal.json"]                          # and no temporary file is left


# -- operating point ---------------------------------------------------------------------------------------

POINT = {"lasers.laser1_1.1.power_dbm": 10.0, "components.metro_fibre.length_km": 10.0,
         "controller.occ1.bias_v": [0.5, -1.0], "bench.mode": "sim", "lasers.laser1_1.1.output": True}


def test_operating_point_is_stored_readable_with_its_hash(tmp_path):
    cal = load(write(tmp_path / "cal.json", operating_point=POINT), FP)
    assert cal.operating_point == POINT and cal.verified is None
    assert cal.operating_point_hash == cf.operating_point_hash(POINT) != cf.operating_point_hash({**POINT, "x": 1})
    assert json.loads((tmp_path / "cal.json").read_text())["operating_point"] == POINT
    with pytest.raises(ValueError, match="flat lists"):
        write(tmp_path / "bad.json", operating_point={"a": {"b": 1.0}})
    with pytest.raises(ValueError, match="finite"):
        write(tmp_path / "bad.json", operating_point={"a": float("nan")})


def test_differences_say_what_changed_with_units():
    live = {**POINT, "lasers.laser1_1.1.power_dbm": 7.0, "components.metro_fibre.length_km": 20.0,
            "controller.occ1.bias_v": [0.5, -1.2], "lasers.laser1_1.1.output": False, "bench.temperature_k": 300.0}
    del live["bench.mode"]
    assert cf.operating_point_differences(POINT, live) == [
        "bench.mode sim -> (absent)",
        "bench.temperature (absent) -> 300 K",
        "components.metro_fibre.length 10 km -> 20 km",
        "controller.occ1.bias[1] -1 V -> -1.2 V",
        "lasers.laser1_1.1.output True -> False",
        "lasers.laser1_1.1.power 10 dBm -> 7 dBm",
    ]
    nearly = {**POINT, "lasers.laser1_1.1.power_dbm": 10.0 * (1 + 1e-9), "controller.occ1.bias_v": [0.5, -1]}
    assert cf.operating_point_differences(POINT, nearly) == []     # readback rounding is not a change
    assert cf.operating_point_differences({"a": True}, {"a": 1}) == ["a True -> 1"]


def test_a_changed_operating_point_is_an_error_or_a_logged_override(tmp_path, caplog):
    cal = load(write(tmp_path / "cal.json", operating_point=POINT), FP)
    assert cf.check_operating_point(cal, dict(POINT), recalibrate="labctl run calibrate_core ...") == []
    live = {**POINT, "lasers.laser1_1.1.power_dbm": 7.0}
    with pytest.raises(cf.CalibrationStale, match=r"laser1_1.1.power 10 dBm -> 7 dBm.*Recalibrate: labctl run x") as info:
        cf.check_operating_point(cal, live, recalibrate="labctl run x")
    assert info.value.differences == ["lasers.laser1_1.1.power 10 dBm -> 7 dBm"]
    assert isinstance(info.value, CalibrationError)
    with caplog.at_level("WARNING", logger="labctl.opu.calibration_file"):
        diffs = cf.check_operating_point(cal, live, recalibrate="labctl run x", accept_stale=True)
    assert diffs == info.value.differences
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "10 dBm -> 7 dBm" in caplog.records[0].getMessage()


def test_drift_check_is_due_after_eight_hours_since_creation_or_the_last_check(tmp_path):
    made = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
    path = write(tmp_path / "cal.json", created=made)
    assert cf.DRIFT_CHECK_AFTER_S == 8 * 3600
    assert not cf.drift_check_due(load(path, FP), now=made.replace(hour=15, minute=59))
    assert cf.drift_check_due(load(path, FP), now=made.replace(hour=16, minute=1))
    assert cf.record_verified(path, made.replace(hour=15))
    cal = load(path, FP)                                              # still a valid, signed file
    assert cal.verified == "2025-03-01T15:00:00+00:00" and cal.created_datetime == made
    assert not cf.drift_check_due(cal, now=made.replace(hour=22))
    assert cf.drift_check_due(cal, now=made.replace(hour=23, minute=1))


def test_a_drift_check_that_cannot_be_recorded_is_logged(tmp_path, caplog, monkeypatch):
    path = write(tmp_path / "cal.json")
    before = path.read_bytes()

    def read_only(src, dst):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(cf.os, "replace", read_only)
    with caplog.at_level("WARNING", logger="labctl.opu.calibration_file"):
        assert not cf.record_verified(path)
    assert path.read_bytes() == before and "run again at the next load" in caplog.text


def test_a_file_without_operating_point_is_stale_for_an_engine(tmp_path):
    cal = load(write(tmp_path / "cal.json"), FP)
    with pytest.raises(cf.CalibrationStale, match="records no operating point"):
        cf.check_operating_point(cal, POINT, recalibrate="labctl run x")


def test_a_power_analyzer_on_the_mains_leaves_a_calibration_valid():
    config = load_bench(CHARACTERISATION_BENCH_PATH).to_dict()
    analyzers = [n for n, spec in config["instruments"].items() if spec["role"] == "power_analyzer"]
    assert analyzers  # the built-in bench has its mains on an analyzer
    without = {**config, "instruments": {n: s for n, s in config["instruments"].items() if n not in analyzers}}
    assert bench_fingerprint(without) == bench_fingerprint(config)
    moved = {**config, "instruments": dict(config["instruments"])}
    moved["instruments"][analyzers[0]] = {**moved["instruments"][analyzers[0]],
                                          "resource": "USB0::0x0B21::0x0025::C2XA00099::INSTR"}
    assert bench_fingerprint(moved) == bench_fingerprint(config)
