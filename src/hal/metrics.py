"""Prometheus metrics (README "Operations: metrics, request ids, readiness"), on only with
`HAL_METRICS=true`.

Every process counts in prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is
set (`hal serve` sets it to a fresh folder when it is not): each process writes its values to
its own memory-mapped files there, and `GET /metrics`, whichever worker answers it, adds up
every process's files. `hal worker` processes given the same folder are added up too; on other
hosts they serve their own numbers (`hal worker --metrics-port`).

Beside HAL's own metrics, each scrape carries the process and runtime metrics Prometheus's
clients usually export: `process_*` (CPU seconds, resident memory, open and maximum file
descriptors, start time) of every live process counting in the folder, by `pid` (memory and
start times do not add up across processes), read from /proc at scrape time;
`python_gc_*_total` by generation, added up over every process (each samples its own garbage
collector every few seconds); and `python_info`.

While metrics are off nothing here is built, and the hooks below cost one `None` check.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GC_SAMPLE_SECONDS = 5.0


class Metrics:
    """This process's metrics."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        self.requests = Counter(
            "hal_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "hal_http_request_duration_seconds",
            "Time from a request's arrival to its answer's headers, by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.identify = Counter(
            "hal_identify",
            "Identify calls by outcome: created, matched, claimed, merged or refused",
            ["outcome"],
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "hal_webhook_deliveries",
            "Webhook attempts by result: delivered, retrying (failed, tried again later), "
            "failed (the last attempt failed) or unrecorded",
            ["result"],
            registry=registry,
        )
        self.webhook_attempt_seconds = Histogram(
            "hal_webhook_attempt_duration_seconds",
            "One webhook attempt, from the address check to the receiver's answer",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.open_streams = Gauge(
            "hal_open_streams",
            "Live streams (team and widget) open now",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_checked_out = Gauge(
            "hal_db_pool_checked_out",
            "Database connections in use now",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_size = Gauge(
            "hal_db_pool_size",
            "Database connections the processes may hold at most (pool size plus overflow)",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.gc = GarbageCollections(registry)


class GarbageCollections:
    """The garbage collector's counts by generation, as prometheus-client's GCCollector names
    them, in counters that add up over processes. `gc.get_stats()` is read every few seconds
    (and by a process as it answers a scrape) and what grew is added: nothing is hooked into
    the collector itself, which runs in the middle of requests."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        names = {
            "collected": ("python_gc_objects_collected", "Objects collected during gc"),
            "uncollectable": (
                "python_gc_objects_uncollectable",
                "Uncollectable objects found during GC",
            ),
            "collections": (
                "python_gc_collections",
                "Number of times this generation was collected",
            ),
        }
        self.counters = {
            stat: Counter(name, documentation, ["generation"], registry=registry)
            for stat, (name, documentation) in names.items()
        }
        generations = range(len(gc.get_stats()))
        for counter in self.counters.values():
            for generation in generations:
                counter.labels(str(generation))  # every generation shows, from 0
        self._seen = [dict.fromkeys(self.counters, 0) for _ in generations]
        self._lock = threading.Lock()

    def sample(self) -> None:
        """Add what the collector counted since the last sample."""
        with self._lock:
            for generation, stats in enumerate(gc.get_stats()):
                seen = self._seen[generation]
                for stat, counter in self.counters.items():
                    grown = stats[stat] - seen[stat]
                    if grown > 0:
                        counter.labels(str(generation)).inc(grown)
                        seen[stat] = stats[stat]

    def sample_forever(self) -> None:
        while True:
            time.sleep(GC_SAMPLE_SECONDS)
            self.sample()

    def start(self) -> None:
        self.sample()
        threading.Thread(target=self.sample_forever, name="hal-metrics-gc", daemon=True).start()


class EveryProcess:
    """prometheus-client's process metrics of each live process counting in the multiprocess
    folder (or of this process alone), labelled by `pid`, read from /proc at scrape time."""

    def __init__(self, folder: str | None) -> None:
        self.folder = folder

    def pids(self) -> list[int]:
        if self.folder is None:
            return [os.getpid()]
        found = {os.getpid()}
        for path in Path(self.folder).glob("*.db"):
            pid = path.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and _alive(int(pid)):
                found.add(int(pid))
        return sorted(found)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.pids():
            for family in _process_of(pid).collect():
                into = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()


def _process_of(pid: int) -> ProcessCollector:
    return ProcessCollector(pid=lambda: pid, registry=None)


_metrics: Metrics | None = None


def current() -> Metrics | None:
    """This process's metrics, or None while they are off."""
    return _metrics


def enable() -> Metrics:
    """Build this process's metrics (once); in multiprocess mode when the folder is set."""
    global _metrics
    if _metrics is None:
        shared = multiprocess_dir()
        if shared:
            # prometheus-client picks its value store on import; `hal serve` may set the
            # folder after something imported it, so pick again now.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
            forget_dead_processes(shared)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
        _metrics = Metrics(None if shared else CollectorRegistry())
        _metrics.gc.start()
    return _metrics


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir() -> str:
    """For `hal serve`: the folder every worker process counts in. A fresh one, removed at
    exit, unless PROMETHEUS_MULTIPROC_DIR names one (then `hal worker` processes on this host
    may share it; clear it before the service starts)."""
    given = multiprocess_dir()
    if given:
        os.makedirs(given, exist_ok=True)
        return given
    # uvicorn ends on SIGTERM by raising the signal again, so exit handlers may not run: a
    # folder whose `hal serve` is gone is removed by the next one instead.
    for stale in Path(tempfile.gettempdir()).glob("hal-metrics-*-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f"hal-metrics-{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _registry() -> CollectorRegistry:
    """This process's registry, or one adding up every process's files (multiprocess); with
    the process and platform metrics."""
    metrics = enable()
    metrics.gc.sample()
    registry = CollectorRegistry()
    if metrics.registry is None:
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Registered(metrics.registry))
    registry.register(EveryProcess(multiprocess_dir()))
    PlatformCollector(registry=registry)
    return registry


def serve_http(port: int, host: str = "127.0.0.1") -> None:
    """The metrics on http://host:port/ from a thread (`hal worker --metrics-port`)."""
    start_http_server(port, host, registry=_registry())


def forget_dead_processes(folder: str) -> None:
    """Drop the live gauges of processes that ended without a clean exit (a worker uvicorn
    killed and replaced, a SIGKILL): a new process cleans up after them as it starts."""
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), folder)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def process_exiting() -> None:
    """Drop this process's live gauges (open streams, pool use) from the sums."""
    folder = multiprocess_dir()
    if _metrics is not None and folder:
        multiprocess.mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]


def instrument_pool(
    engine: AsyncEngine, *, idle_changed: list[Callable[[int], None]] | None = None
) -> None:
    """Count the engine's connections in use, and add its size to the pool total.

    `idle_changed`: the process's held connections (db/held.py) report each one going idle
    (+1) or taken again (-1): checked out of the pool, a held idle one is not in use."""
    metrics = current()
    pool = engine.sync_engine.pool
    if metrics is None or getattr(pool, "_hal_metrics", False):
        return
    pool._hal_metrics = True  # type: ignore[attr-defined]
    checked_out = metrics.pool_checked_out
    if isinstance(pool, QueuePool):  # those out already come back after this: count them
        checked_out.inc(pool.checkedout())
    event.listen(pool, "checkout", lambda *_: checked_out.inc())
    event.listen(pool, "checkin", lambda *_: checked_out.dec())
    if idle_changed is not None:
        idle_changed.append(lambda change: checked_out.inc(-change))
    size = pool.size() if isinstance(pool, QueuePool) else 1
    metrics.pool_size.inc(size + max(0, getattr(pool, "_max_overflow", 0)))


# Hooks for the use cases: no-ops while metrics are off.


def identify_outcome(outcome: str) -> None:
    if _metrics is not None:
        _metrics.identify.labels(outcome).inc()


def webhook_attempt(result: str, seconds: float) -> None:
    if _metrics is not None:
        _metrics.webhook_deliveries.labels(result).inc()
        _metrics.webhook_attempt_seconds.observe(seconds)


def stream_opened() -> None:
    if _metrics is not None:
        _metrics.open_streams.inc()


def stream_closed() -> None:
    if _metrics is not None:
        _metrics.open_streams.dec()


class _Registered:
    """Another registry's metrics, collected as one collector of a scrape's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class _Gauges:
    """Values read at scrape time (from the database), as a collector for one exposition."""

    def __init__(self, gauges: dict[str, tuple[str, float]]) -> None:
        self.gauges = gauges

    def collect(self) -> Any:
        for name, (documentation, value) in self.gauges.items():
            yield GaugeMetricFamily(name, documentation, value=value)


def exposition(scraped: dict[str, tuple[str, float]] | None = None) -> bytes:
    """Every process's metrics (and `scraped` gauges) in the Prometheus text format."""
    text = generate_latest(_registry())
    if scraped:
        extra = CollectorRegistry()
        extra.register(_Gauges(scraped))
        text += generate_latest(extra)
    return text
