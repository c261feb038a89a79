"""Prometheus metrics (README "Operations: metrics, request ids, readiness"), on only with
`HAL_METRICS=true`.

Every process counts in prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is
set (`hal serve` sets it to a fresh folder when it is not): each process writes its values to
its own memory-mapped files there, and `GET /metrics`, whichever worker answers it, adds up
every process's files. `hal worker` processes given the same folder are added up too; on other
hosts they serve their own numbers (`hal worker --metrics-port`).

While metrics are off nothing here is built, and the hooks below cost one `None` check.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
    """This process's registry, or one adding up every process's files (multiprocess)."""
    registry = enable().registry
    if registry is None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
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


def instrument_pool(engine: AsyncEngine) -> None:
    """Count the engine's checked-out connections, and add its size to the pool total."""
    metrics = current()
    pool = engine.sync_engine.pool
    if metrics is None or getattr(pool, "_hal_metrics", False):
        return
    pool._hal_metrics = True  # type: ignore[attr-defined]
    checked_out = metrics.pool_checked_out
    event.listen(pool, "checkout", lambda *_: checked_out.inc())
    event.listen(pool, "checkin", lambda *_: checked_out.dec())
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
