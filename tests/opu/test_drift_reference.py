"""The stationary core's drift reference is deep enough to see the ring drift products see, and files written
before it was recorded keep the 64-deep reference their error at calibration was measured on.

A few tenths of a mK of ring warming already costs a 256-deep product x1.7 of its error: the check must see
that much, which a 64-deep reference does not (x1.2-1.35). The calibration is the session's shared one
(tests/shared_files.py: occ1 of sim_backends/benches/ring_core.yaml as written, seed 1).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml

import labctl
from labctl.opu import calibration_file as calfile
from labctl.opu import open_opu
from labctl.opu.calibration_file import CalibrationCorrupt
from labctl.opu.stationary import StationaryOPU
from labctl.opu.stationary import calibration as stcal
from labctl.opu.stationary.drift import LEGACY_REFERENCE_SHAPE, REFERENCE_SHAPE, reference_operands
from labctl.opu.stationary.state import StationaryCalibration
from tests.shared_files import RING_CORE, ring_core_calibration

THERMO_OPTIC_M_PER_K = 80e-12  # the simulated rings' shift: 0.2 nm/mW heaters over 2500 K/W
SECTION = "core:occ1"


@pytest.fixture(scope="module")
def cal_path(tmp_path_factory) -> Path:
    return ring_core_calibration(tmp_path_factory, 0)


def rewritten(cal_path: Path, out: Path, change, age_h: float = 0.0) -> Path:
    """``cal_path`` with its core section changed by ``change`` and written again (signed), ``age_h`` old."""
    cal = calfile.load(cal_path, None)
    change(cal.sections[SECTION])
    calfile.save(out, cal.sections, bench_name=cal.bench, bench_fingerprint=cal.bench_fingerprint,
                 operating_point=cal.operating_point, created=datetime.now(timezone.utc) - timedelta(hours=age_h))
    return out


def test_a_new_calibration_records_its_reference_shape(cal_path):
    section = calfile.load(cal_path, None).section(SECTION)
    assert section["drift_reference_shape"] == list(REFERENCE_SHAPE)
    assert StationaryCalibration.from_section(section).drift_reference_shape == REFERENCE_SHAPE == (64, 256, 64)


@pytest.mark.parametrize("warming_k", [3e-4, -3e-4])
def test_a_new_calibrations_drift_check_sees_a_few_tenths_of_a_millikelvin(cal_path, warming_k):
    banks = yaml.safe_load(RING_CORE.read_text())["components"]
    moved = {f"bank1_{q}.resonance_wavelengths": [w + warming_k * THERMO_OPTIC_M_PER_K
                                                  for w in banks[f"bank1_{q}"]["resonance_wavelengths"]]
             for q in range(1, 17)}
    with labctl.open_bench(RING_CORE, seed=5, changes=moved) as bench:
        core = open_opu(bench, cal_path, accept_stale=True)  # its rings differ from the file's: logged, accepted
        report = stcal.drift_check(core, threshold=1.5)    # half a bit lost: what a 256-deep product lost here
    assert report.recalibrate, report


def test_a_file_without_the_reference_shape_is_judged_on_the_64_deep_reference(cal_path, tmp_path):
    """Such a file's error at calibration is the 64-deep product's (about half the 256-deep one's): judged on
    the new reference it would read ~2x on an unchanged bench and fail its drift check at load."""
    with labctl.open_bench(RING_CORE, seed=5) as bench:
        core = StationaryOPU(bench, cal_path)
        a, b = reference_operands(LEGACY_REFERENCE_SHAPE)
        legacy_rms = float(np.sqrt(np.mean((core.matmul(a, b, scale_a=1.0, scale_b=1.0) - a @ b) ** 2)))

    def old_format(section):
        del section["drift_reference_shape"]
        section["drift_reference_rms"] = legacy_rms

    old = rewritten(cal_path, tmp_path / "occ1.json", old_format, age_h=9.0)
    with labctl.open_bench(RING_CORE, seed=5) as bench:
        core = StationaryOPU(bench, old)                     # 9 h old: drift-checked at load, and it passes
        assert core.calibration.drift_reference_shape == LEGACY_REFERENCE_SHAPE
        assert calfile.load(old, None).verified is not None
        report = stcal.drift_check(core)
    assert 0.8 < report.ratio < 1.25, report


@pytest.mark.parametrize("value", [[64, 255, 64], [64.0, 256.0, 64.0], [64, 256], "64x256x64", None,
                                   [10 ** 6, 10 ** 6, 10 ** 6], [True, 256, 64]])
def test_an_unknown_reference_shape_is_refused_with_what_to_do(cal_path, tmp_path, value):
    path = rewritten(cal_path, tmp_path / "occ1.json", lambda section: section.update(drift_reference_shape=value))
    section = calfile.load(path, None).section(SECTION)
    with pytest.raises(CalibrationCorrupt, match=r"drift_reference_shape .* recalibrate"):
        StationaryCalibration.from_section(section, path)
