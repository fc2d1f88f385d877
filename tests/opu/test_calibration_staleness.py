"""A calibration file knows the operating point it was made at (sim_backends/benches/ring_core.yaml, core occ1).

The calibration is the session's shared one (tests/shared_files.py: occ1 of the bench as written, seed 1).
Changing what the products depend on -- the lasers' power in the bench file, the metro fibre's length or
loss -- makes the products wrong by a large factor; loading the file must refuse that (CalibrationStale,
naming what changed and the command to recalibrate) unless the caller accepts it, logged. An old file gets
a drift check at load.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml

import labctl
from labctl.errors import LabctlError
from labctl.opu import calibration_file as calfile
from labctl.opu.calibration_file import CalibrationDrift, CalibrationStale, CalibrationVersionError
from labctl.opu import open_cores
from labctl.opu.stationary import StationaryOPU
from tests.shared_files import RING_CORE, ring_core_calibration

RNG = np.random.default_rng(11)
A, B = RNG.uniform(-1, 1, (32, 64)), RNG.uniform(-1, 1, (64, 32))


@pytest.fixture(scope="module")
def cal_path(tmp_path_factory) -> Path:
    return ring_core_calibration(tmp_path_factory, 0)


@pytest.fixture(scope="module")
def as_calibrated(cal_path) -> float:
    """Relative error of the products on the bench as written, with its own calibration."""
    with labctl.open_bench(RING_CORE, seed=5) as bench:
        return relative_error(StationaryOPU(bench, cal_path))


@pytest.fixture(scope="module")
def bench_data() -> dict:
    return yaml.safe_load(RING_CORE.read_text())


def bench_copy(tmp_path: Path, data: dict, change) -> Path:
    data = copy.deepcopy(data)
    change(data)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def relative_error(core: StationaryOPU) -> float:
    exact = A @ B
    return float(np.sqrt(np.mean((core.matmul(A, B) - exact) ** 2)) / np.sqrt(np.mean(exact**2)))


def _lasers_7_dbm(data):  # 6 dB less than calibrated (13 dBm), e.g. to save power
    data["opu"]["laser_power_dbm"] = 7.0


def _metro_20_km(data):  # the metro link rerouted over 20 km instead of 10 km
    data["components"]["metro_fibre1"]["length_km"] = 20.0


def _lossier_metro(data):  # a worse fibre: 0.5 dB/km instead of 0.2 dB/km
    data["components"]["metro_fibre1"]["attenuation_db_per_km"] = 0.5


@pytest.mark.parametrize("change,what", [
    (_lasers_7_dbm, "lasers.laser1_1.1.power 13 dBm -> 7 dBm"),
    (_metro_20_km, "components.metro_fibre1.length 10 km -> 20 km"),
    (_lossier_metro, "components.metro_fibre1.attenuation 0.2 dB/km -> 0.5 dB/km"),
])
def test_a_changed_operating_point_is_refused_and_would_give_wrong_products(cal_path, as_calibrated, bench_data,
                                                                            tmp_path, caplog, change, what):
    assert as_calibrated < 0.05
    changed = bench_copy(tmp_path, bench_data, change)
    with labctl.open_bench(changed, seed=5) as bench:
        with pytest.raises(CalibrationStale) as info:
            StationaryOPU(bench, cal_path)
        assert isinstance(info.value, LabctlError)
        message = str(info.value)
        assert what in message and what in info.value.differences
        assert f"labctl run calibrate_core --sim --bench {changed} --set cores=[0] --out {cal_path.parent}" in message
        assert "accept_stale=True" in message and "--accept-stale-calibration" in message
        with caplog.at_level(logging.WARNING, logger="labctl.opu.calibration_file"):
            core = StationaryOPU(bench, cal_path, accept_stale=True)
        assert any(what in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
        assert core.calibrated
        # what the check prevents: the calibration used at the new operating point is far off
        assert relative_error(core) > 20 * as_calibrated


def test_a_change_on_another_cores_path_does_not_touch_this_calibration(cal_path, as_calibrated, bench_data,
                                                                       tmp_path):
    def other_core(data):
        data["components"]["metro_fibre2"]["length_km"] = 20.0
        data["opu"]["cores"][1]["channels"][0]["wavelength_m"] += 0.1e-9

    with labctl.open_bench(bench_copy(tmp_path, bench_data, other_core), seed=5) as bench:
        assert relative_error(StationaryOPU(bench, cal_path)) == pytest.approx(as_calibrated, rel=1e-9)


def test_the_file_records_a_readable_operating_point_and_its_hash(cal_path):
    cal = calfile.load(cal_path, None)
    point = cal.operating_point
    assert point["lasers.laser1_1.1.power_dbm"] == 13.0
    assert point["lasers.laser1_4.4.wavelength_nm"] == pytest.approx(1554.134)
    assert point["components.metro_fibre1.length_km"] == 10.0
    assert point["components.dcf1.dispersion_ps_nm_km"] == -100.0
    assert point["controller.occ1.symbol_rate_hz"] == 0.25e9
    assert len(point["controller.occ1.bias_v"]) == 16
    assert point["bench.temperature_k"] == 295.0 and point["bench.mode"] == "sim"
    assert not any(key.startswith(("components.metro_fibre2", "lasers.laser2_")) for key in point)
    assert cal.operating_point_hash == calfile.operating_point_hash(point)


def test_a_version_1_file_is_refused_with_what_to_do(cal_path, tmp_path):
    doc = json.loads(cal_path.read_text())
    for key in ("operating_point", "operating_point_hash", "verified"):
        doc.pop(key)
    doc["format_version"] = 1
    doc["checksum"] = calfile._checksum(doc)
    old = tmp_path / "occ1.json"
    old.write_text(json.dumps(doc))
    with labctl.open_bench(RING_CORE, seed=5) as bench:
        with pytest.raises(CalibrationVersionError, match=r"version 1 is older.*recalibrate"):
            StationaryOPU(bench, old)


def aged(cal_path: Path, tmp_path: Path, hours: float) -> Path:
    """The shared calibration re-saved as if made ``hours`` ago."""
    cal = calfile.load(cal_path, None)
    out = tmp_path / "occ1.json"
    calfile.save(out, cal.sections, bench_name=cal.bench, bench_fingerprint=cal.bench_fingerprint,
                 operating_point=cal.operating_point, created=datetime.now(timezone.utc) - timedelta(hours=hours))
    return out


def counting_drift_checks(monkeypatch) -> list:
    reports = []

    def counted(opu, *args, **kwargs):
        reports.append(real(opu, *args, **kwargs))
        return reports[-1]

    real = StationaryOPU.drift_check
    monkeypatch.setattr(StationaryOPU, "drift_check", counted)
    return reports


def test_an_old_calibration_is_drift_checked_at_load_and_the_pass_recorded(cal_path, tmp_path, monkeypatch):
    reports = counting_drift_checks(monkeypatch)
    recent = aged(cal_path, tmp_path, hours=7.5)
    with labctl.open_bench(RING_CORE, seed=5) as bench:
        StationaryOPU(bench, recent)
        assert reports == []                                   # made 7.5 h ago: no check yet
        old = aged(cal_path, tmp_path, hours=9.0)
        before = datetime.now(timezone.utc)
        StationaryOPU(bench, old)
        assert len(reports) == 1 and not reports[0].recalibrate
        verified = datetime.fromisoformat(calfile.load(old, None).verified)
        assert verified >= before                              # the pass is recorded in the file ...
        StationaryOPU(bench, old)
        assert len(reports) == 1                               # ... so the next load skips the check


def test_a_failed_drift_check_at_load_is_an_error_or_a_logged_override(cal_path, tmp_path, caplog):
    old = aged(cal_path, tmp_path, hours=9.0)
    with labctl.open_bench(RING_CORE, seed=5) as bench:
        for k in range(16):  # LiNbO3 bias drift since calibration: every built-in phase moved
            name = f"mzm1_{k + 1}"
            bench.sim_adjust(name, phase_offset_v=bench.config.components[name]["phase_offset_v"] + 0.8)
        with pytest.raises(CalibrationDrift, match=r"drift check at load .*recalibrate: labctl run calibrate_core"):
            StationaryOPU(bench, old)
        assert calfile.load(old, None).verified is None        # a failed check is not recorded
        with pytest.raises(CalibrationDrift):
            open_cores(bench, tmp_path)                        # through open_cores as well (occ1.json there)
        with caplog.at_level(logging.WARNING, logger="labctl.opu.stationary"):
            core = StationaryOPU(bench, old, accept_stale=True)
        assert core.calibrated
        assert any("drifted calibration" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_labctl_generate_refuses_stale_calibrations_unless_told(cal_path, bench_data, tmp_path, caplog):
    from click.testing import CliRunner

    from experiments.genai.generate import cli_main, open_optical_cores

    usage = CliRunner().invoke(cli_main, ["--model", "ddpm-digits", "--sim", "--accept-stale-calibration",
                                          "--out", str(tmp_path / "out")])
    assert usage.exit_code == 2 and "give --calibration DIR" in usage.output

    def one_core_at_7_dbm(data):  # only occ1 in the opu section: its file is the only one needed
        _lasers_7_dbm(data)
        data["opu"]["cores"] = data["opu"]["cores"][:1]

    folder = tmp_path / "cal"
    folder.mkdir()
    (folder / "occ1.json").write_bytes(cal_path.read_bytes())
    with labctl.open_bench(bench_copy(tmp_path, bench_data, one_core_at_7_dbm), seed=5) as bench:
        with pytest.raises(CalibrationStale, match="13 dBm -> 7 dBm"):
            open_optical_cores(bench, folder)
        with caplog.at_level(logging.WARNING, logger="labctl.opu.calibration_file"):
            cores = open_optical_cores(bench, folder, accept_stale=True)
        assert [core.name for core in cores] == ["occ1"] and cores[0].calibrated
        assert any("stale calibration" in r.getMessage() for r in caplog.records)
