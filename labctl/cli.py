"""The ``labctl`` command: inspect benches and run experiments, on real or simulated instruments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from labctl.bench import open_bench
from labctl.config import load_bench
from labctl.errors import LabctlError
from labctl.runner import available_experiments, load_experiment, parse_overrides, run_experiment
from labctl.units import w_to_dbm
from sim_backends import DEFAULT_BENCH_PATH

_bench_option = click.option("--bench", "bench_file", type=click.Path(dir_okay=False, path_type=Path),
                             help="Bench file (YAML/TOML). Default with --sim: the built-in simulated bench.")
_sim_option = click.option("--sim", is_flag=True, help="Simulate every instrument of the bench file.")
_seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation's noise.")


def _mode_and_path(sim: bool, bench_file: Path | None) -> tuple[str, Path | None]:
    if not sim and bench_file is None:
        raise click.UsageError("give --bench FILE to use a real bench, or --sim to use the simulated one")
    return ("sim" if sim else "real"), bench_file


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labctl")
def main() -> None:
    """Drive an optical computing center from a lab bench or from a faithful simulation of one.

    \b
    Examples:
      labctl bench check --sim                  identify every simulated instrument
      labctl run mzm_transfer --sim --set points=81 --out results/mzm
      labctl run mzm_transfer --bench lab.yaml  the same experiment on real instruments
    """


# -- bench ------------------------------------------------------------------------------------------


@main.group()
def bench() -> None:
    """Inspect a bench: list its instruments, check them, snapshot their settings."""


@bench.command("list")
@_bench_option
@_sim_option
def bench_list(bench_file: Path | None, sim: bool) -> None:
    """List the instruments of a bench file (opens nothing)."""
    config = load_bench(bench_file or DEFAULT_BENCH_PATH)
    click.echo(f"{config.name}: {config.description}".rstrip(": "))
    for name, spec in config.instruments.items():
        channels = f" channels {spec.channels}" if spec.channels else ""
        click.echo(f"  {name:<12} {spec.role:<20} {spec.driver:<20} {spec.resource}{channels}")


@bench.command("check")
@_bench_option
@_sim_option
@_seed_option
def bench_check(bench_file: Path | None, sim: bool, seed: int) -> None:
    """Open every instrument, print its identity and one live reading."""
    mode, path = _mode_and_path(sim, bench_file)
    failures = 0
    with open_bench(path, mode=mode, seed=seed) as b:
        click.echo(f"bench {b.config.name} ({mode})")
        for name, spec in b.config.instruments.items():
            try:
                idn = str(b.instruments[name].id).strip()
                reading = _live_reading(b, name, spec)
                click.echo(f"  ok   {name:<12} {idn}\n       {'':<12} {reading}")
            except Exception as exc:
                failures += 1
                click.echo(f"  FAIL {name:<12} {type(exc).__name__}: {exc}")
        problems = b.check_roles()
        for problem in problems:
            click.echo(f"  FAIL {problem}")
        failures += len(problems)
    if failures:
        raise SystemExit(1)


def _live_reading(b, name: str, spec) -> str:
    first = (spec.channels or [1])[0]
    role = spec.role
    if role == "tunable_laser":
        laser = b.role(name, first)
        return (f"port {first}: {laser.wavelength * 1e9:.3f} nm, setpoint {w_to_dbm(laser.power):.2f} dBm, "
                f"output {'on' if laser.output_enabled else 'off'}")
    if role == "optical_power_meter":
        return f"port {first}: {w_to_dbm(b.role(name, first).read_power()):.2f} dBm"
    if role == "awg":
        return f"sample rate {b.role(name).sample_rate / 1e9:.3f} GSa/s"
    if role == "oscilloscope":
        scope = b.role(name)
        return f"sample rate {scope.sample_rate / 1e9:.3f} GSa/s, {scope.record_length} points"
    if role == "bias_controller":
        return f"bias {b.role(name).measure_bias_voltage():.3f} V"
    if role == "dc_source":
        out = b.role(name, first)
        return f"output {first}: {out.measure_voltage():.3f} V, {out.measure_current() * 1e3:.3f} mA"
    if role == "optical_switch":
        switch = b.role(name)
        return f"route {switch.route} of {switch.port_count}"
    if role == "optical_core":
        core = b.role(name)
        return (f"{core.n_inputs} x {core.n_outputs} core, {core.symbol_rate / 1e9:.3f} GBd, "
                f"outputs {'on' if core.output_enabled else 'off'}")
    raise LabctlError(f"no live reading defined for role {role!r}")


@bench.command("snapshot")
@_bench_option
@_sim_option
@_seed_option
def bench_snapshot(bench_file: Path | None, sim: bool, seed: int) -> None:
    """Print every instrument's settings as JSON."""
    mode, path = _mode_and_path(sim, bench_file)
    with open_bench(path, mode=mode, seed=seed) as b:
        click.echo(json.dumps(b.snapshot(), indent=2, default=str))


# -- experiments ------------------------------------------------------------------------------------


@main.command("experiments")
def experiments() -> None:
    """List the experiments `labctl run` knows, with their parameters."""
    for name in sorted(available_experiments()):
        try:
            cls = load_experiment(name)
        except LabctlError as exc:
            click.echo(f"{name}: cannot be loaded ({exc})")
            continue
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        click.echo(f"{name}: {doc}")
        for field, info in cls.Parameters.model_fields.items():
            click.echo(f"    {field} = {info.default!r}  {info.description or ''}".rstrip())


@main.command("run")
@click.argument("experiment")
@_bench_option
@_sim_option
@_seed_option
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a parameter (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), help="Results file (.h5) or directory.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(experiment: str, bench_file: Path | None, sim: bool, seed: int, settings: tuple[str, ...],
        out: Path | None, quiet: bool) -> None:
    """Run EXPERIMENT and write its HDF5 results file (see `labctl experiments`)."""
    mode, path = _mode_and_path(sim, bench_file)
    result = run_experiment(experiment, bench_path=path, mode=mode, seed=seed,
                            overrides=parse_overrides(settings), out=out, show_progress=not quiet)
    _print_summary(result.summary)
    click.echo(f"results: {result.results_path}")
    for artefact in result.artefacts:
        click.echo(f"         {artefact}")


def _print_summary(summary: dict[str, Any]) -> None:
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        click.echo(f"  {key}: {value}")


# -- commands provided by other packages (entry points) ---------------------------------------------


def _registered_command(name: str):
    """The command registered as ``name`` in the ``labctl.commands`` entry-point group (labctl never
    imports the packages that provide such commands: dependencies point experiments -> labctl)."""
    from importlib.metadata import entry_points

    found = list(entry_points(group="labctl.commands", name=name))
    if not found:
        raise click.ClickException(f"the `{name}` command is not installed (it is registered by the experiments "
                                   "package: pip install -e '.[ml,gen]')")
    try:
        return found[0].load()
    except ImportError as exc:
        raise click.ClickException(f"cannot load the `{name}` command ({found[0].value}): {exc}") from None


@main.command("generate", add_help_option=False,
              context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def generate(args: tuple[str, ...]) -> None:
    """Generate images with bundled models, electronically and optically (`labctl generate --help`)."""
    command = _registered_command("generate")
    if isinstance(command, click.Command):
        code = command.main(list(args), prog_name="labctl generate", standalone_mode=False)
        if code:  # click returns the code of ctx.exit(code) when not in standalone mode
            raise SystemExit(code)
    else:
        command(list(args))


def entry() -> None:
    """Console entry point: typed labctl errors print as one clear line, not a traceback."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted; sources were shut down", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (LabctlError, ValueError, LookupError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; sources were shut down", err=True)
        sys.exit(130)
