"""The system is the default bench, and built-in benches open by name, from Python and from the CLI."""

from pathlib import Path

import pytest
from click.testing import CliRunner

import labctl
from labctl.bench import BUILTIN_BENCHES, CHARACTERISATION_BENCH_PATH, SYSTEM_BENCH_PATH, bench_config, bench_path
from labctl.cli import main
from labctl.config import ConfigError
from labctl.opu import StationaryConfig
from labctl.runner import available_experiments, load_experiment


def test_open_bench_without_a_path_opens_the_system_its_cores_reached_over_edge_and_metro_fibre():
    with labctl.open_bench() as bench:
        assert bench.path == SYSTEM_BENCH_PATH
        cores = StationaryConfig.from_bench(bench).cores
        assert len(cores) == 3
        kinds = {name.rstrip("0123456789") for name, spec in bench.config.components.items()
                 if isinstance(spec, dict) and spec.get("type") == "fibre"}
        assert {"edge_fibre", "metro_fibre"} <= kinds


def test_every_builtin_bench_opens_by_name_and_names_win_only_when_bare():
    for name, path in BUILTIN_BENCHES.items():
        config, opened = bench_config(name)
        assert opened == path and config.instruments, name
    assert bench_path("characterisation") == CHARACTERISATION_BENCH_PATH
    assert bench_path("system") == SYSTEM_BENCH_PATH
    assert bench_path(None) == SYSTEM_BENCH_PATH
    # a folder or a suffix makes it a path, even when the stem is a built-in name
    assert bench_path("my/system") == Path("my/system")
    assert bench_path("system.yaml") == Path("system.yaml")


def test_a_misspelt_name_is_refused_with_the_names_there_are():
    with pytest.raises(ConfigError) as caught:
        labctl.open_bench("sytem")
    for name in ("system", "characterisation", "awgr_core"):
        assert name in str(caught.value)


def test_a_misspelt_name_at_the_visa_library_is_refused_with_the_names_there_are():
    import pyvisa

    from sim_backends.bench import BenchFileError

    with pytest.raises(BenchFileError, match="built-in benches by name: system, awgr_core, characterisation"):
        pyvisa.ResourceManager("sytem@labsim")
    with pytest.raises(BenchFileError) as caught:  # a path is a path: no names offered
        pyvisa.ResourceManager("benches/sytem.yaml@labsim")
    assert "built-in" not in str(caught.value)


def test_a_real_bench_still_needs_its_file():
    with pytest.raises(ConfigError, match="needs a bench file"):
        bench_config(None, mode="real")


def test_every_experiments_default_bench_is_a_bench_that_exists():
    for name in available_experiments():
        default = load_experiment(name).default_bench
        config, path = bench_config(default)
        assert path.is_file() and config.instruments, (name, default)


def test_the_cli_lists_the_system_by_default_and_a_builtin_bench_by_name():
    runner = CliRunner()
    system = runner.invoke(main, ["bench", "list", "--sim"])
    assert system.exit_code == 0, system.output
    assert system.output.startswith("ring-core-sim-bench:")
    named = runner.invoke(main, ["bench", "list", "--sim", "--bench", "characterisation"])
    assert named.exit_code == 0, named.output
    assert named.output.startswith("characterisation-sim-bench:")
    typo = runner.invoke(main, ["bench", "list", "--sim", "--bench", "sytem"])
    assert isinstance(typo.exception, ConfigError)
    assert "built-in benches:" in str(typo.exception) and "characterisation" in str(typo.exception)
