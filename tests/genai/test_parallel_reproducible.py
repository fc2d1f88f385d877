"""The three-model parallel generation (what ``make demo`` runs) is reproducible: one bench seed, the same
images, although the three cores run in threads in whatever order the scheduler picks (each core draws its
noise from its own stream, derived from the bench seed and the core's name)."""

from __future__ import annotations


import numpy as np
import pytest

import labctl
from experiments.genai.generate import generate_parallel
from labctl.opu import open_opus
from tests.shared_files import RING_CORE, ring_core_calibration_folder

pytest.importorskip("torch")

MODELS = ["ddpm-digits", "latent-digits", "vae-digits"]


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory):
    """The three cores' calibrations (made once per session) as ``<controller>.json`` in one folder."""
    return ring_core_calibration_folder(tmp_path_factory)


def _parallel_run(calibration_dir, bench_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Images 0 and 1 of every model, electronic and optical, on a bench opened with ``bench_seed``."""
    with labctl.open_bench(RING_CORE, seed=bench_seed) as bench:
        opus = open_opus(bench, calibration_dir)
        result = generate_parallel(MODELS, opus, n=2, steps=2, seed=0, label=[3, 8], progress=False)
    return {name: (r.electronic, r.optical) for name, r in result.results.items()}


def test_parallel_generation_twice_with_one_seed_gives_identical_arrays(calibration_dir):
    first = _parallel_run(calibration_dir, bench_seed=4)
    second = _parallel_run(calibration_dir, bench_seed=4)
    assert set(first) == set(second) == set(MODELS)
    for name in MODELS:
        electronic, optical = first[name]
        np.testing.assert_array_equal(second[name][0], electronic)
        np.testing.assert_array_equal(second[name][1], optical)     # bit for bit, thread order regardless
        assert not np.array_equal(optical, electronic)             # the products did go through the noisy optics
    other = _parallel_run(calibration_dir, bench_seed=5)     # same images, another noise realisation
    for name in MODELS:
        np.testing.assert_array_equal(other[name][0], first[name][0])
        assert not np.array_equal(other[name][1], first[name][1])


def test_cores_in_their_own_processes_make_the_same_images_to_the_bit(calibration_dir):
    """Each model's core in a process of its own (process_opus): the same images as the cores in threads,
    since a core's noise is its own; each job's energy comes back from its core's process."""
    from labctl.network.cores import process_opus

    threads = _parallel_run(calibration_dir, bench_seed=4)
    with process_opus(RING_CORE, len(MODELS), seed=4, calibration=calibration_dir) as opus:
        result = generate_parallel(MODELS, opus, n=2, steps=2, seed=0, label=[3, 8], progress=False)
        jobs = [len(opu.energy.terms("bench")) for opu in opus]
    for name in MODELS:
        np.testing.assert_array_equal(result.results[name].optical, threads[name][1])
    assert all(count > 0 for count in jobs)
    energy = result.metrics["energy"]["j_per_image"]
    assert energy["optical_bench"] > 0 and energy["optical_projected"] > 0


def test_core_processes_on_the_command_line(tmp_path, calibration_dir):
    from click.testing import CliRunner

    from experiments.genai.generate import cli_main

    refused = CliRunner().invoke(cli_main, ["--parallel", "vae-digits", "--n", "2", "--bench", str(RING_CORE),
                                            "--core-processes", "--out", str(tmp_path / "real")])
    assert refused.exit_code == 2 and "--core-processes runs simulated cores: give --sim" in refused.output
    done = CliRunner().invoke(cli_main, ["--parallel", "vae-digits,ddpm-digits", "--n", "2", "--steps", "2", "--sim",
                                         "--core-processes", "--calibration", str(calibration_dir), "--quiet",
                                         "--out", str(tmp_path / "par")])
    assert done.exit_code == 0, done.output
    for name in ("vae-digits", "ddpm-digits"):
        assert (tmp_path / "par" / name / "images.npz").is_file()
    assert (tmp_path / "par" / "energy.json").is_file()
