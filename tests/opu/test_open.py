"""open_opus / open_opu: one way to open a bench's OPU(s), dispatching on the ``opu`` section's architecture."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import labctl
from labctl.errors import ConfigError
from labctl.opu import (
    STATS_KEYS,
    OpticalMatmul,
    StationaryOPU,
    StreamingOPU,
    open_cores,
    open_opu,
    open_opus,
    opu_config,
)
from labctl.opu.precision import error_stats
from tests.shared_files import RING_CORE, ring_core_calibration

REPO = Path(__file__).resolve().parents[2]
STREAMING = REPO / "sim_backends" / "benches" / "opu_core.yaml"


@pytest.fixture(scope="module")
def occ1_path(tmp_path_factory):
    return ring_core_calibration(tmp_path_factory, 0)


def test_streaming_bench_opens_one_engine_that_satisfies_the_protocol():
    with labctl.open_bench(STREAMING, seed=1) as bench:
        opus = open_opus(bench)
        assert len(opus) == 1
        opu = opus[0]
        assert isinstance(opu, OpticalMatmul) and not isinstance(opu, StationaryOPU)
        assert opu.name == bench.config.name and not opu.calibrated
        assert opu_config(bench).architecture == "streaming"     # the default when the file does not say
        with pytest.raises(ConfigError, match="core=1"):
            open_opu(bench, core=1)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)   # the old entry point, not deprecated here
            old = labctl.OPU(bench)
        assert isinstance(old, StreamingOPU) and old.config == opu.config


def test_stationary_bench_core_from_a_calibration_folder(occ1_path, tmp_path):
    shutil.copy(occ1_path, tmp_path / "occ1.json")
    with labctl.open_bench(RING_CORE, seed=1) as bench:
        core = open_opu(bench, tmp_path)                  # the folder's occ1.json: no calibration run
        assert isinstance(core, StationaryOPU) and isinstance(core, OpticalMatmul)
        assert core.name == "occ1" and core.calibrated
        rng = np.random.default_rng(3)
        a, b = rng.uniform(-1, 1, (8, 32)), rng.uniform(-1, 1, (32, 16))
        y = core.matmul(a, b)
        assert error_stats(y, a @ b).bits_range > 6.0
        assert set(STATS_KEYS) <= set(core.last_stats)
        with pytest.raises(labctl.opu.stationary.StationaryOPUError, match="core=7"):
            open_opu(bench, tmp_path, core=7)


def test_open_cores_opens_every_core_from_its_file(tmp_path_factory, tmp_path):
    for index in range(3):
        shutil.copy(ring_core_calibration(tmp_path_factory, index), tmp_path / f"occ{index + 1}.json")
    with labctl.open_bench(RING_CORE, seed=1) as bench:
        cores = open_cores(bench, tmp_path)
        assert [c.name for c in cores] == [c.controller for c in opu_config(bench).cores] == ["occ1", "occ2", "occ3"]
        assert all(isinstance(c, StationaryOPU) and c.calibrated for c in cores)
        assert [c.name for c in open_opus(bench, tmp_path)] == ["occ1", "occ2", "occ3"]


def test_unknown_architecture_is_a_config_error():
    with labctl.open_bench(STREAMING, seed=1) as bench:
        bench.config.opu = {**bench.config.opu, "architecture": "holographic"}
        with pytest.raises(ConfigError, match="opu.architecture"):
            open_opus(bench)


def test_stationary_field_error_names_the_dotted_field():
    with labctl.open_bench(RING_CORE, seed=1) as bench:
        bench.config.opu = {**bench.config.opu, "heater_max_v": -1}
        with pytest.raises(ConfigError, match=r"opu\.heater_max_v"):
            open_opus(bench)


def test_stationary_stats_have_the_shared_keys_with_true_values(occ1_path):
    rng = np.random.default_rng(5)
    a, b = rng.uniform(-1, 1, (3, 20)), rng.uniform(-1, 1, (20, 5))
    with labctl.open_bench(RING_CORE, seed=1) as bench:
        core = open_opu(bench, occ1_path)
        core.matmul(a, b)
        stationary = core.last_stats
    # one program: 2 K-tiles (20 inputs on 16-wide tiles) x 1 N-tile, 3 slots each, fetched once
    assert stationary["macs"] == 3 * 20 * 5 and stationary["optical_macs"] == 2 * 3 * 16 * 16
    assert stationary["uploads"] == stationary["captures"] == stationary["programs"] == 1
    assert stationary["calibrated"] is True and stationary["optical_time_s"] > 0
    assert tuple(stationary)[:len(STATS_KEYS)] == STATS_KEYS   # the streaming engine: tests/opu/test_engine.py


def test_a_missing_calibration_folder_is_created_and_a_missing_file_is_an_error(tmp_path):
    folder = tmp_path / "cal" / "today"
    with labctl.open_bench(STREAMING, seed=1) as bench:
        (opu,) = open_opus(bench, folder)                  # nothing to load yet: nominal values
        assert folder.is_dir() and not opu.calibrated
        with pytest.raises(labctl.opu.CalibrationError, match="not found"):
            open_opus(bench, tmp_path / "missing.json")    # a file name is never taken for a folder
        assert not (tmp_path / "missing.json").exists()


@pytest.mark.parametrize("old, new, name", [
    ("labctl.opu.engine", "labctl.opu.streaming", "StreamingOPU"),
    ("labctl.opu.calibrate", "labctl.opu.streaming.calibration", "calibrate"),
    ("labctl.opu.stationary_calibration", "labctl.opu.stationary.calibration", "calibrate"),
])
def test_old_import_paths_warn_and_give_the_same_objects(old, new, name):
    import importlib
    import sys

    sys.modules.pop(old, None)                            # imported afresh, so the warning is raised here
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
