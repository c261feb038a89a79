"""What operators see: the request id and access line of every request, `GET /metrics` and
`GET /readyz` (README "Operations: metrics, request ids, readiness")."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from datetime import datetime

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hal import logs, metrics
from hal.api.errors import ErrorBody, error_response
from hal.db.engine import Database, Tx
from hal.db.models import WebhookEndpoint, WebhookMessage

access_log = logging.getLogger("hal.access")
log = logging.getLogger("hal")

REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_GONE = 499  # the access line's status when the client left before any answer
READY_TIMEOUT_SECONDS = 2.0
SCRAPE_TIMEOUT_SECONDS = 2.0


def _request_id(scope: Scope) -> bytes:
    """The caller's X-Request-ID when it is well formed, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if REQUEST_ID.fullmatch(value):
                return bytes(value)
            break
    return uuid.uuid4().hex.encode()


def _method(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in METHODS else "other"  # a client may send any token


def _route(scope: Scope) -> str:
    """The route template that answered (never the raw path: ids would be unbounded labels,
    and some paths hold personal data), or "unmatched"."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestMiddleware:
    """The outermost layer, outside the 500 handler so every answer is covered: an
    X-Request-ID on every response and in every log line of the request, the request
    counted and timed (to its answer's headers, so an open stream counts when it opens),
    and one access line when it ends (route template and status, never the path's query,
    headers or body; 499 when the client left before any answer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = _request_id(scope)
        # Not reset: uvicorn serves each request in its own task, and its own error line for a
        # failed request comes after this returns.
        logs.request_id.set(rid.decode())
        meter = metrics.current()
        status = CLIENT_GONE  # until an answer starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
                if meter is not None:
                    route, method = _route(scope), _method(scope)
                    meter.requests.labels(method, route, str(status)).inc()
                    elapsed = time.perf_counter() - started
                    meter.request_seconds.labels(method, route).observe(elapsed)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                route = _route(scope)
                access_log.info(
                    "%s %s %s %.1f ms",
                    scope["method"],
                    route,
                    status,
                    duration_ms,
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )


class OperatedAPI(FastAPI):
    """FastAPI with RequestMiddleware outside every other layer, the 500 handler included."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestMiddleware(super().build_middleware_stack())


router = APIRouter(tags=["ops"])


async def ping(database: Database) -> None:
    """One `SELECT 1`, on a fresh checkout, within the readiness timeout."""
    async with asyncio.timeout(READY_TIMEOUT_SECONDS):
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {READY_TIMEOUT_SECONDS:g} s"
    # The driver's own error, never the SQLAlchemy wrapper's text (it would quote the SQL).
    cause = getattr(exc, "orig", None) or exc
    detail = str(cause).splitlines()[0] if str(cause) else ""
    return f"{type(cause).__name__}: {detail}"[:200] if detail else type(cause).__name__


@router.get(
    "/readyz",
    responses={503: {"model": ErrorBody, "description": "The database does not answer"}},
)
async def readyz(request: Request) -> Response:
    """Readiness: 200 when the database answers a query within 2 s, else 503."""
    try:
        await ping(request.app.state.database)
    except Exception as exc:
        reason = _reason(exc)
        log.warning("not ready: the database did not answer (%s)", reason)
        return error_response(503, "database_unavailable", f"the database: {reason}")
    return JSONResponse({"status": "ok"})


async def _oldest_undelivered(tx: Tx) -> datetime | None:
    """The oldest message still to deliver to an enabled endpoint (pending messages only: the
    due index finds them, however long the delivered history)."""
    oldest = (
        await tx.execute(
            select(func.min(WebhookMessage.created_at))
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookMessage.endpoint_id)
            .where(WebhookMessage.status == "pending", WebhookEndpoint.enabled)
        )
    ).scalar_one_or_none()
    return oldest


async def _scraped(database: Database) -> dict[str, tuple[str, float]]:
    """The gauges read from the database at scrape time; none when it does not answer."""

    async def work(tx: Tx) -> float:
        oldest = await _oldest_undelivered(tx)
        return 0.0 if oldest is None else max(0.0, (tx.now - oldest).total_seconds())

    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
            age = await database.run(work)
    except Exception as exc:
        log.warning("metrics: the database did not answer (%s)", _reason(exc))
        return {}
    return {
        "hal_webhook_oldest_undelivered_seconds": (
            "Age of the oldest webhook message not yet delivered to an enabled endpoint "
            "(0 when none waits)",
            age,
        )
    }


metrics_router = APIRouter()


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics_route(request: Request) -> Response:
    """Prometheus text format: every process's counters, and gauges read now."""
    scraped = await _scraped(request.app.state.database)
    body = metrics.exposition(scraped)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
