"""The ``labctl`` command: inspect benches and run experiments, on real or simulated instruments."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from labctl import shutdown as shutdown_registry
from labctl.bench import Bench, bench_config, bench_path, open_bench
from labctl.errors import LabctlError
from labctl.resilience import call_with_deadline
from labctl.runner import SEED_RANGE, available_experiments, load_experiment, parse_overrides, run_experiment
from labctl.shutdown import Terminated, close_open_benches, collect_reports, summarise, terminate_as_interrupt
from labctl.store import SUFFIXES, results_summary
from labctl.units import w_to_dbm
from sim_backends import BUILTIN_BENCHES

_bench_option = click.option("--bench", "bench_file", type=click.Path(dir_okay=False, path_type=Path),
                             help="Bench file (YAML/TOML) or a built-in bench's name ("
                                  f"{', '.join(sorted(BUILTIN_BENCHES))}). Default with --sim: the system, "
                                  "the optical computing center reached over edge + metro fibre.")
_sim_option = click.option("--sim", is_flag=True, help="Simulate every instrument of the bench file.")
_seed_option = click.option("--seed", type=click.IntRange(*SEED_RANGE), default=0, show_default=True,
                            help="Seed of the simulation's noise.")


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
    config, _ = bench_config(bench_file)
    click.echo(f"{config.name}: {config.description}".rstrip(": "))
    for name, spec in config.instruments.items():
        channels = f" channels {spec.channels}" if spec.channels else ""
        click.echo(f"  {name:<12} {spec.role:<20} {spec.driver:<20} {spec.resource}{channels}")


@bench.command("check")
@_bench_option
@_sim_option
@_seed_option
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds allowed per instrument to open (retries included) and to give its reading.")
@click.option("--attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Open attempts per instrument (with backoff) before it is reported as failed.")
def bench_check(bench_file: Path | None, sim: bool, seed: int, timeout_s: float, attempts: int) -> None:
    """Open every instrument on its own; print `ok` with its identity and one live reading, or
    `FAIL name resource: reason`, for each. Exits with status 1 if any failed."""
    mode, path = _mode_and_path(sim, bench_file)
    config, path = bench_config(path, mode)
    b = Bench(config, mode=mode, seed=seed, path=path)
    b.retry_policy = replace(b.retry_policy, attempts=attempts)
    shutdown_registry.opened(b)
    failures = 0
    try:
        click.echo(f"bench {b.config.name} ({mode})")
        unopened = b.open(keep_going=True, timeout_s=timeout_s)
        for name, spec in b.config.instruments.items():
            if name in unopened:
                failures += 1
                click.echo(f"  FAIL {name} {spec.resource}: {_reason(unopened[name])}")
                continue
            try:
                idn, reading = call_with_deadline(lambda: _identify(b, name, spec), timeout_s,
                                                  instrument=name, resource=spec.resource)
                click.echo(f"  ok   {name} {spec.resource}: {idn}\n       {reading}")
            except Exception as exc:
                failures += 1
                click.echo(f"  FAIL {name} {spec.resource}: {_reason(exc)}")
        if unopened:
            click.echo(f"  (roles not checked: {len(unopened)} instrument(s) could not be opened)")
        else:
            problems = b.check_roles()
            for problem in problems:
                click.echo(f"  FAIL {problem}")
            failures += len(problems)
    finally:
        b.close()
    if failures:
        raise SystemExit(1)


def _identify(b, name: str, spec) -> tuple[str, str]:
    return str(b.instruments[name].id).strip(), _live_reading(b, name, spec)


def _reason(exc: BaseException) -> str:
    """One line saying why an instrument failed (the error type, then its message)."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text}"


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
    if role == "power_analyzer":
        analyzer = b.role(name)
        return f"active power {analyzer.measure_power():.3f} W, integration {analyzer.integration_state}"
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
        if cls.default_bench is not None:
            click.echo(f"    (with --sim and no --bench: {cls.default_bench})")
        for field, info in cls.Parameters.model_fields.items():
            default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
            click.echo(f"    {field} = {default}  {info.description or ''}".rstrip())


@main.command("run")
@click.argument("experiment")
@_bench_option
@_sim_option
@_seed_option
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a parameter (repeatable).")
@click.option("--change", "changes", multiple=True, metavar="ITEM.PARAM=VALUE",
              help="Simulate a variant of the bench file, e.g. edge_fibre.length_km=50 (repeatable; --sim only).")
@click.option("--out", type=click.Path(path_type=Path), help="Results file (.h5) or directory.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing results file, but only once the new run completes "
                   "(default: keep it and write to the next free name, name-1.h5...).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(experiment: str, bench_file: Path | None, sim: bool, seed: int, settings: tuple[str, ...],
        changes: tuple[str, ...], out: Path | None, overwrite: bool, quiet: bool) -> None:
    """Run EXPERIMENT and write its HDF5 results file (see `labctl experiments`).

    With --sim and no --bench, an experiment that names its own bench (listed by `labctl experiments`)
    runs on it, any other on the built-in system (the optical computing center). Every run records its energy ledger
    (`labctl energy report FILE`)."""
    mode, path = _mode_and_path(sim, bench_file)

    def announce(results: Path, requested: Path) -> None:
        if overwrite and requested.exists():
            note = f" (replaces {requested} if the run completes)"
        elif results != requested:
            note = f" ({requested} exists and is kept; --overwrite to replace it)"
        else:
            note = ""
        click.echo(f"writing {results}{note}", err=True)

    result = run_experiment(experiment, bench_path=path, mode=mode, seed=seed, overrides=parse_overrides(settings),
                            changes=parse_overrides(changes, "--change"), out=out, overwrite=overwrite,
                            show_progress=not quiet, on_results_file=announce)
    _print_summary(result.summary)
    click.echo(f"results: {result.results_path}")
    for artefact in result.artefacts:
        click.echo(f"         {artefact}")


def _print_summary(summary: dict[str, Any]) -> None:
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        click.echo(f"  {key}: {value}")


# -- results ----------------------------------------------------------------------------------------


@main.group()
def results() -> None:
    """Inspect results files: status (complete, failed, interrupted, running or died), experiment, times."""


@results.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def results_show(file: Path) -> None:
    """Print the status, experiment, times and points per dataset of one results FILE."""
    info = results_summary(file)
    click.echo(f"{file}\n  status:     {info['status']}\n  experiment: {info['experiment']}\n"
               f"  started:    {info['started_utc']}\n  finished:   {info['finished_utc'] or '-'}")
    for name, count in info["points"].items():
        click.echo(f"  {name}: {count} points")


@results.command("list")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def results_list(directory: Path) -> None:
    """List the results files under DIRECTORY (recursively): start time, experiment, status."""
    files = sorted(p for suffix in SUFFIXES for p in directory.rglob(f"*{suffix}") if p.is_file())
    if not files:
        click.echo(f"no results files (*.h5, *.hdf5) under {directory}")
    for file in files:
        try:
            info = results_summary(file)
            click.echo(f"{info['started_utc'][:19]:<20} {info['experiment']:<20} {info['status']:<30} {file}")
        except LabctlError as exc:
            click.echo(f"{'?':<20} {'?':<20} {'unreadable':<30} {file} ({exc})")


# -- energy -----------------------------------------------------------------------------------------


@main.group()
def energy() -> None:
    """Energy accounting of runs: what the bench drew, the projected integrated figure, the baseline."""


@energy.command("report")
@click.argument("run", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--markdown", is_flag=True, help="Print the table as Markdown.")
def energy_report(run: Path, markdown: bool) -> None:
    """Print the itemised energy table of RUN (a results file or its .energy.json sidecar) and write a
    stacked-bar plot next to it (RUN-energy.png; an existing plot is kept and the new one numbered)."""
    from labctl.energy.report import report_file

    table, plot = report_file(run, markdown=markdown)
    click.echo(table)
    click.echo(f"\nplot: {plot}")


# -- keys -------------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """CURVE key pairs of edges and the optical computing center (docs/network.md)."""


@keys.command("create")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of the pair (created if missing).")
def keys_create(name: str, directory: Path) -> None:
    """Write the key pair DIR/NAME.key (public) and DIR/NAME.key_secret (secret, mode 0600); an existing
    pair is never overwritten."""
    from labctl.network.keys import create_keys, fingerprint, load_public

    public, secret = create_keys(name, directory)
    click.echo(f"public key {public} (fingerprint {fingerprint(load_public(public))})\nsecret key {secret}")


# -- center -----------------------------------------------------------------------------------------


@main.group()
def center() -> None:
    """The optical computing center that edge nodes connect to (docs/network.md)."""


@center.command("serve")
@click.option("--bench", "bench_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Bench file of the center. Default with --sim: the built-in optical computing center.")
@_sim_option
@_seed_option
@click.option("--bind", required=True, metavar="tcp://HOST:PORT", help="Endpoint to listen on (PORT * picks one).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The center's secret key file (NAME.key_secret).")
@click.option("--allow", "allow_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the public keys (*.key) of the edges admitted.")
@click.option("--calibration", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the cores' calibration files (cores without one are calibrated and saved there).")
@click.option("--cores", type=click.IntRange(min=1), help="Serve only the first N cores of the bench.")
@click.option("--heartbeat", "heartbeat_s", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds between the heartbeats edges are asked to send.")
@click.option("--edge-timeout", "timeout_s", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds of silence after which an edge is dropped and its cores freed.")
@click.option("--max-array-bytes", type=click.IntRange(min=8), default=None,
              help="Largest array accepted in a job (bytes). Default: 64 MiB.")
@click.option("--one-process", is_flag=True,
              help="Keep a simulated bench's cores in this process (less memory; they then take turns on the CPU) "
                   "instead of one process per core.")
@click.option("--exit-with-parent", is_flag=True,
              help="Also stop when the process that started this one dies (or closes this one's stdin pipe).")
def center_serve(bench_file: Path | None, sim: bool, seed: int, bind: str, key_file: Path, allow_dir: Path,
                 calibration: Path | None, cores: int | None, heartbeat_s: float, timeout_s: float,
                 max_array_bytes: int | None, one_process: bool, exit_with_parent: bool) -> None:
    """Serve the bench's optical cores to the edges whose keys are in --allow, until SIGINT/SIGTERM (or, with
    --exit-with-parent, until its parent process is gone)."""
    import logging

    from labctl.network.center import serve

    mode, path = _mode_and_path(sim, bench_file)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("labctl").setLevel(logging.INFO)
    options = {} if max_array_bytes is None else {"max_array_bytes": max_array_bytes}
    serve(bench_path(path), mode=mode, seed=seed, bind=bind, key_file=key_file, allow_dir=allow_dir,
          calibration=calibration, cores=cores, heartbeat_s=heartbeat_s, timeout_s=timeout_s,
          exit_with_parent=exit_with_parent, core_processes=not one_process, **options)


# -- campaign ---------------------------------------------------------------------------------------


@main.group()
def campaign() -> None:
    """Measurement campaigns: sweeps of an experiment from a campaign file (docs/campaigns.md)."""


@campaign.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of the campaign (campaign.h5, points/, figures, summary.md).")
@click.option("--resume", is_flag=True, help="Finish the campaign already in --out (same campaign file only).")
@click.option("--scheduler", metavar="local|tcp://HOST:PORT",
              help="Run a simulated campaign's points in parallel on Dask (default: one at a time).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Dask workers started by --scheduler local.")
@click.option("--publish", metavar="tcp://HOST:PORT", help="Publish the documents over ZeroMQ (JSON).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def campaign_run(file: Path, out: Path, resume: bool, scheduler: str | None, workers: int, publish: str | None,
                 quiet: bool) -> None:
    """Run the campaign FILE, storing each point as it finishes; end with figures and a summary table."""
    from labctl.campaign import load_campaign, run_campaign
    from labctl.campaign.live import Publisher

    spec = load_campaign(file)
    publisher = Publisher(publish) if publish else None
    try:
        result = run_campaign(spec, out, resume=resume, scheduler=scheduler, workers=workers,
                              show_progress=not quiet, subscribers=[publisher] if publisher else [])
    finally:
        if publisher is not None:
            publisher.close()
    failed = sum(r["status"] != "complete" for r in result.records)
    click.echo(f"{result.status}: {len(result.records) - failed} of {len(spec.points)} points complete, "
               f"{failed} failed ({result.ran} run now) -> {result.path}")
    for artefact in result.artefacts:
        click.echo(f"  {artefact}")


@campaign.command("watch")
@click.argument("endpoint")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many documents.")
@click.option("--no-plot", is_flag=True, help="Print the documents only (no window).")
def campaign_watch(endpoint: str, count: int | None, no_plot: bool) -> None:
    """Follow a campaign published at ENDPOINT (labctl campaign run --publish): a live plot of its results."""
    from labctl.campaign.live import watch

    watch(endpoint, count=count, plot=not no_plot, echo=click.echo)


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
    """Console entry point: typed labctl errors print as one clear line, not a traceback.

    SIGTERM and SIGHUP end a command like Ctrl-C does (benches shut down, results files closed with
    a status), with exit code 128 + signum. What the shutdown did is printed truthfully: "sources
    were shut down" only if every source of every bench opened went off.
    """
    with terminate_as_interrupt(), collect_reports() as reports:
        try:
            try:
                main(standalone_mode=False)
            finally:
                close_open_benches()  # last resort: a bench nobody closed is shut down before exiting
        except (click.exceptions.Abort, KeyboardInterrupt) as exc:
            interrupt = (exc.__cause__ or exc.__context__) if isinstance(exc, click.exceptions.Abort) else exc
            if isinstance(interrupt, Terminated):
                click.echo(f"{interrupt}; {summarise(list(reports.values()))}", err=True)
                sys.exit(interrupt.exit_code)
            click.echo(f"interrupted; {summarise(list(reports.values()))}", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            _warn_if_sources_on(reports)
            sys.exit(exc.exit_code)
        except (LabctlError, ValueError, LookupError) as exc:
            click.echo(f"error: {exc}", err=True)
            _warn_if_sources_on(reports)
            sys.exit(2)
        except BaseException:
            _warn_if_sources_on(reports)
            raise
        if _warn_if_sources_on(reports):
            sys.exit(3)


def _warn_if_sources_on(reports) -> bool:
    """Say which sources may still be on, if any; True if so."""
    on = [r for r in reports.values() if not r.all_off]
    for report in on:
        click.echo(f"WARNING: {report}", err=True)
    return bool(on)
