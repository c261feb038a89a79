"""How `hal serve` runs uvicorn: uvloop, httptools, a header deadline, trusted proxies only."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hal.app import create_app
from hal.config import Settings
from hal.domain.errors import error_body
from hal.logs import configure_logging
from hal.metrics import prepare_multiprocess_dir

_TIMEOUT_BODY = json.dumps(
    error_body("request_timeout", "the request line and headers did not arrive in time", "headers")
).encode()


@cache
def header_timeout_seconds() -> float:
    """Read once per process: `hal serve --workers N` starts N fresh interpreters."""
    return Settings().header_timeout_seconds


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline on each request's line and headers.

    uvicorn bounds idle keep-alive connections but not a request that trickles in. Here the
    first byte of a request (`on_message_begin`) starts a timer that `on_headers_complete`
    stops; if it fires, the client gets 408 and the connection is closed. A new connection
    that sends nothing at all is closed, silently, after the same time.

    Written for uvicorn 0.54 (pinned in pyproject.toml): it relies on those parser callbacks,
    on `connection_made`/`connection_lost`, and on `transport`, `cycle` and `server_state`.
    tests/integration/test_slow_clients.py fails if the hook stops applying.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout_seconds()
        self._header_timer: asyncio.TimerHandle | None = None

    def _start_header_timer(self, *, request_started: bool) -> None:
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(
            self.header_timeout, self._headers_timed_out, request_started
        )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self, request_started: bool) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request trickles in behind one still being answered: finish that
            # answer, then close instead of waiting for the rest.
            self.cycle.keep_alive = False
            return
        if request_started:
            head = [b"HTTP/1.1 408 Request Timeout\r\n"]
            head += [b"%s: %s\r\n" % header for header in self.server_state.default_headers]
            head += [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(_TIMEOUT_BODY),
                b"connection: close\r\n\r\n",
            ]
            self.transport.write(b"".join(head) + _TIMEOUT_BODY)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer(request_started=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer(request_started=True)

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()


def settle_gc() -> None:
    """Once the process has started: what it holds for good (modules, routes, schemas, the
    pool) leaves the collector's view, and young collections run less often.

    The oldest generation's collection walks every object the process holds; with the app's
    ~250,000 it took 130 ms, every half second under load, and made the widget routes' p99
    (bench/RESULTS.md, "The hot path, second pass")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


GC_THRESHOLDS = (7_000, 10, 10)  # CPython's default: (700, 10, 10)


def served_app() -> FastAPI:
    """The app as `hal serve` runs it (uvicorn's factory, in each worker process): the
    collector settled once the app has started."""
    app = create_app()
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with started(app) as state:
            settle_gc()
            yield state

    app.router.lifespan_context = lifespan
    return app


def run(settings: Settings, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Serve `served_app` until stopped (each worker builds its app from the env)."""
    trusted_proxies = settings.forwarded_allow_ips.strip()
    if settings.metrics:
        prepare_multiprocess_dir()  # before the workers start: they inherit the variable
    uvicorn.run(
        "hal.server:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        # One configuration for uvicorn's loggers and ours, applied in each worker process;
        # uvicorn's access line is replaced by hal.access (with the request id).
        log_config=configure_logging(settings.log_format, log_level),
        access_log=False,
        loop="uvloop",
        http=HeaderTimeoutProtocol,
        # X-Forwarded-For/-Proto are believed only from the listed proxies; none by default
        # (uvicorn's own default trusts 127.0.0.1 and reads $FORWARDED_ALLOW_IPS).
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=trusted_proxies,
    )
