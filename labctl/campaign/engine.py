"""Run a campaign: serially on Bluesky's RunEngine, or (simulated benches only) in parallel on Dask.

Both paths make the same event-model document stream (start, descriptor, one event per point, stop)
and hand it to the same consumers: the campaign file (:class:`~labctl.campaign.store.CampaignStore`),
the progress bar and any given subscriber (e.g. the ZeroMQ publisher). The start document holds the
campaign, its hash, the code version, the bench snapshot and the seeds.

Serial: the campaign is a Bluesky plan (per point: checkpoint, trigger the suspenders' monitors, move the
:class:`PointSelector`, trigger and read the :class:`ExperimentPoint`), so a real bench is opened once and
used by one point at a time, and the campaign's suspenders (:mod:`labctl.campaign.suspend`) pause it
between points while the bench is unfit.
Parallel: each point is a Dask task that opens its own simulated bench with the point's seed; a task
whose worker dies is retried on another worker (``distributed.scheduler.allowed-failures``), then
recorded as failed. A point's seed depends only on the campaign seed and the point, so both paths give
the same results.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from labctl.bench import Bench, open_bench
from labctl.campaign.adaptive import refine
from labctl.campaign.devices import ExperimentPoint, PointSelector, point_data_keys
from labctl.campaign.errors import CampaignError
from labctl.campaign.point import point_job, run_point
from labctl.campaign.report import write_report
from labctl.campaign.spec import Campaign, Point, Stop
from labctl.campaign.store import CampaignStore, load_records
from labctl.campaign.suspend import Monitor, suspenders
from labctl.runner import load_experiment
from labctl.shutdown import TERMINATING_SIGNALS, Terminated
from labctl.store import code_version

Subscriber = Callable[[str, dict[str, Any]], None]
#: How long to wait for a Dask scheduler given as tcp://HOST:PORT before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10.0


@dataclass
class CampaignResult:
    path: Path                      # the campaign file
    status: str                     # complete, stopped: <why>, interrupted, failed: <why>
    records: list[dict[str, Any]]   # every point measured so far, in point order
    ran: int                        # points measured by this call
    artefacts: list[Path]           # figures and the Markdown summary


class Stopper:
    """The campaign's stop conditions, checked before and after each point."""

    def __init__(self, stop: Stop):
        self.stop = stop
        self.started = time.monotonic()
        self.failures = 0

    def before(self) -> str:
        limit = self.stop.max_duration_s
        if limit is not None and time.monotonic() - self.started >= limit:
            return f"max_duration_s ({limit:g} s) reached"
        return ""

    def after(self, record: dict[str, Any]) -> str:
        if record["status"] != "complete":
            self.failures += 1
            if self.stop.max_failures is not None and self.failures >= self.stop.max_failures:
                return f"{self.failures} points failed (max_failures {self.stop.max_failures})"
        for when in self.stop.when:
            if when.met(record["results"]):
                side = f"below {when.below:g}" if when.below is not None else f"above {when.above:g}"
                return f"{when.result} = {record['results'][when.result]:g} at point {record['index']} is {side}"
        return self.before()


def _package_version() -> str:
    try:
        return version("labctl")
    except PackageNotFoundError:
        return "unknown"


def start_metadata(campaign: Campaign, snapshot: dict[str, Any], todo: Iterable[Point],
                   scheduler: str | None) -> dict[str, Any]:
    """What the start document says about the campaign: its content (canonical JSON text: event-model
    refuses nested keys with dots, which bench changes have), hash, code, bench and seeds."""
    return {"campaign": campaign.name, "campaign_file": str(campaign.path), "campaign_hash": campaign.digest,
            "campaign_content": campaign.canonical(), "experiment": campaign.spec.experiment,
            "mode": campaign.spec.mode, "code_version": code_version(), "labctl_version": _package_version(),
            "bench_snapshot": snapshot, "seeds": {"campaign": campaign.spec.seed,
                                                  "points": {p.key: p.seed for p in todo}},
            "swept": list(campaign.swept), "points_total": len(campaign.points),
            "scheduler": scheduler or "serial (Bluesky RunEngine)"}


def _campaign_plan(todo: list[Point], selector: PointSelector, detector: ExperimentPoint, stopper: Stopper,
                   md: dict[str, Any], monitors: tuple[Monitor, ...] = ()):
    import bluesky.plan_stubs as bps

    yield from bps.open_run(md)
    reason = ""
    for point in todo:
        reason = stopper.before()
        if reason:
            break
        yield from bps.checkpoint()
        for monitor in monitors:   # readings between points; a tripped suspender suspends the RunEngine
            yield from bps.trigger(monitor, wait=True)
        while any(monitor.tripped for monitor in monitors):   # never start a point on an unfit bench
            yield from bps.sleep(min(monitor.poll_s for monitor in monitors))
        yield from bps.mv(selector, point.index)
        yield from bps.trigger_and_read([selector, detector])
        reason = stopper.after(detector.record)
        if reason:
            break
    yield from bps.close_run(reason=reason)


def _run_serial(campaign: Campaign, points: list[Point], todo: list[Point], store: CampaignStore,
                bench: Bench | None, md: dict[str, Any], emit: Subscriber, stopper: Stopper,
                monitor_bench: Bench | None = None) -> None:
    from bluesky import RunEngine
    from bluesky.utils import RunEngineInterrupted

    detector = ExperimentPoint(campaign, store.points_dir, bench, points=points)
    selector = PointSelector(detector)
    engine = RunEngine({}, call_returns_result=True)
    engine.subscribe(emit)
    watching = suspenders(campaign.spec.suspend, monitor_bench, campaign.path.parent, detector.lock) \
        if monitor_bench is not None else []
    for _, suspender in watching:
        engine.install_suspender(suspender)
    monitors = tuple(monitor for monitor, _ in watching)
    received: list[int] = []

    def pause(signum: int, frame: Any) -> None:  # SIGTERM/SIGHUP: pause after the point in flight, as Ctrl-C
        received.append(signum)
        engine.request_pause(defer=True)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in TERMINATING_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup'ed campaigns survive a closed terminal
                previous[signum] = signal.signal(signum, pause)
    try:
        engine(_campaign_plan(todo, selector, detector, stopper, md, monitors))
    except RunEngineInterrupted:  # paused by Ctrl-C or a terminating signal: the campaign ends, resumable
        ended = Terminated(received[0]) if received else KeyboardInterrupt()
        detector.wait()  # a second Ctrl-C pauses at once: let the point in flight end first
        engine.abort(str(ended) or "Ctrl-C")
        raise ended from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        engine.clear_suspenders()


def dask_client(scheduler: str, workers: int):
    """A Dask client: ``local`` starts a LocalCluster of ``workers`` single-threaded processes (a worker
    that dies is retried once elsewhere), ``tcp://HOST:PORT`` connects to a running scheduler."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        return Client(cluster)
    if not scheduler.startswith("tcp://"):
        raise CampaignError(f"scheduler {scheduler!r}: give 'local' or tcp://HOST:PORT")
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise CampaignError(f"cannot reach the Dask scheduler {scheduler} within {CONNECT_TIMEOUT_S:g} s "
                            f"({exc}); start it (dask scheduler) or use --scheduler local") from None


def _run_dask(campaign: Campaign, todo: list[Point], store: CampaignStore, client, md: dict[str, Any],
              emit: Subscriber, stopper: Stopper) -> None:
    import event_model
    from distributed import as_completed

    run = event_model.compose_run(metadata=md)
    emit("start", run.start_doc)
    stream = run.compose_descriptor(name="primary", data_keys={
        "point": {"source": "labctl:campaign:point", "dtype": "integer", "shape": []}, **point_data_keys()})
    emit("descriptor", stream.descriptor_doc)
    futures = {client.submit(run_point, point_job(campaign, p, store.points_dir), key=f"labctl-point-{p.key}",
                             pure=False): p for p in todo}
    reason, exit_status, seq = "", "success", 0
    try:
        for future in as_completed(futures):
            point = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker lost (KilledWorker) or the task failed
                record = {"index": point.index, "key": point.key, "repeat": point.repeat, "seed": point.seed,
                          "values": point.values, "status": f"failed: {type(exc).__name__}: {exc}",
                          "results": {}, "results_file": "", "duration_s": 0.0, "cpu_s": 0.0}
            seq += 1
            now = time.time()
            data = {"point": point.index, "point_key": record["key"], "point_status": record["status"],
                    "point_record": json.dumps(record, default=str)}
            emit("event", stream.compose_event(data=data, timestamps={k: now for k in data}, seq_num=seq))
            reason = stopper.after(record)
            if reason:
                client.cancel([f for f in futures if not f.done()])
                break
    except KeyboardInterrupt:
        client.cancel(list(futures))
        reason, exit_status = "Ctrl-C", "abort"
        raise
    finally:
        emit("stop", run.compose_stop(exit_status=exit_status, reason=reason))


def run_campaign(campaign: Campaign, out: str | Path, *, resume: bool = False, scheduler: str | None = None,
                 workers: int = 1, show_progress: bool = True, subscribers: Iterable[Subscriber] = (),
                 bench: Bench | None = None) -> CampaignResult:
    """Run the points of ``campaign`` not yet finished in ``out`` (``resume``), store each as it finishes,
    and end with a figure per swept parameter and a Markdown summary (in ``out``).

    ``scheduler``: None runs serially on a Bluesky RunEngine; ``local`` or ``tcp://HOST:PORT`` runs a
    simulated campaign on Dask with ``workers`` workers (a real bench is never shared: refused).
    ``bench``: an open bench for the campaign (default: opened from the campaign's bench file). A real
    bench runs the points and the suspenders' readings; a simulated one only the readings (each point
    opens its own simulated bench with its seed) and the snapshot in the start document.
    """
    if scheduler is not None and campaign.spec.mode == "real":
        raise CampaignError("a real bench is never shared between Dask workers: run this campaign without "
                            "--scheduler (its points then run one at a time on the RunEngine)")
    if scheduler is not None and campaign.spec.suspend.any:
        raise CampaignError("suspenders watch the bench from the RunEngine between points: run this campaign "
                            "without --scheduler, or remove 'suspend'")
    if bench is not None and bench.mode != campaign.spec.mode:
        raise CampaignError(f"the campaign is mode {campaign.spec.mode!r} but the bench given is {bench.mode!r}")
    if workers < 1:
        raise CampaignError(f"--workers must be at least 1, not {workers}")
    client = dask_client(scheduler, workers) if scheduler is not None else None
    opened = None
    try:
        store = CampaignStore(out, campaign, resume=resume)
        done = store.finished()
        todo = [p for p in campaign.points if p.key not in done]
        cls = load_experiment(campaign.spec.experiment)
        bench_path = campaign.bench_path if campaign.bench_path is not None else cls.default_bench
        if bench is None:
            bench = opened = open_bench(bench_path, mode=campaign.spec.mode, seed=campaign.spec.seed)
        snapshot = bench.snapshot()
        point_bench = bench if campaign.spec.mode == "real" else None
        monitor_bench = bench if campaign.spec.suspend.any else None
        if monitor_bench is None and opened is not None and campaign.spec.mode == "sim":
            opened.close()   # only its snapshot was needed
            opened = None
        md = start_metadata(campaign, snapshot, todo, scheduler)
        bar = tqdm(total=len(campaign.points), initial=len(campaign.points) - len(todo), unit="point",
                   desc=campaign.name, disable=not show_progress)
        consumers = [store, *subscribers]
        ran = 0

        def emit(name: str, doc: dict[str, Any]) -> None:
            nonlocal ran
            for consumer in consumers:
                consumer(name, doc)
            if name == "event":
                ran += 1
                bar.update(1)
                bar.set_postfix_str(doc["data"]["point_status"][:40])

        stopper = Stopper(campaign.spec.stop)
        points = list(campaign.points)
        adaptive = campaign.spec.sweep.adaptive
        rounds = 0
        try:
            while True:
                if todo:
                    if client is not None:
                        _run_dask(campaign, todo, store, client, md, emit, stopper)
                    else:
                        _run_serial(campaign, points, todo, store, point_bench, md, emit, stopper, monitor_bench)
                    if store.attrs.get("status") != "complete":
                        break  # stopped by a condition, or failed: no refinement
                if adaptive is None or rounds >= adaptive.rounds:
                    break
                rounds += 1
                new = refine(campaign, list(store.records.values()), points)
                if not new:
                    break
                points.extend(new)
                store.total = len(points)
                done = store.finished()
                todo = [p for p in new if p.key not in done]
                md = {**md, "points_total": len(points), "adaptive_round": rounds,
                      "seeds": {"campaign": campaign.spec.seed, "points": {p.key: p.seed for p in todo}}}
                bar.total = len(points)
                bar.update(len(new) - len(todo))
            if not ran and store.finished() >= {p.key for p in points}:
                store.attrs["status"] = "complete"  # a resumed campaign with nothing left to measure
                store.write()
        finally:
            bar.close()
    finally:
        if opened is not None:
            opened.close()
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    records = load_records(store.path)
    artefacts = write_report(store.path.parent, campaign, records)
    return CampaignResult(store.path, store.attrs.get("status", "running"), records, ran, artefacts)


__all__ = ["CampaignResult", "Stopper", "dask_client", "run_campaign", "start_metadata"]
