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
from sim_backends import DEFAULT_BENCH_PATH

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
    config = load_bench(DEFAULT_BENCH_PATH)
    fp = bench_fingerprint(config)
    assert fp.startswith("sha256:") and fp == bench_fingerprint(config.to_dict())
    pairs = [(s.driver, s.resource) for s in config.instruments.values()]
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
