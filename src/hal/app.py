"""create_app(settings): the API, middleware and error handling, built from one Settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from hal import __version__, metrics
from hal.api import (
    admin,
    agents,
    attributes,
    batch,
    demo,
    imports,
    installation,
    operations,
    privacy,
    stream,
    team,
    views,
    widget,
)
from hal.api.errors import install_error_handlers
from hal.api.middleware import (
    BodyLimitMiddleware,
    InboxSecurityHeadersMiddleware,
    NulRefusalMiddleware,
    WidgetCORSMiddleware,
)
from hal.config import Settings
from hal.console import routes as console
from hal.db.engine import Database
from hal.inbox import find as inbox_find
from hal.inbox import merge as inbox_merge
from hal.inbox import routes as inbox
from hal.inbox.session import LoginRequired
from hal.services.admission import Admission
from hal.services.change_feed import ChangeFeed
from hal.services.import_jobs import ImportWorker
from hal.services.installation import Installation
from hal.services.login_throttle import LoginThrottle
from hal.services.repeat_answers import RepeatAnswers
from hal.webhooks import routes as webhooks
from hal.webhooks.delivery import DeliveryOptions, DeliveryWorker

WEB = Path(__file__).parent / "web"


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the service. Migrations are not run here: `hal serve` runs them first."""
    settings = settings or Settings()
    owns_database = database is None
    database = database or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Webhook delivery in the background of this process (`hal worker` does it elsewhere).
        delivery = (
            DeliveryWorker(
                database, DeliveryOptions.of(settings), importing=app.state.import_worker.importing
            ).start()
            if settings.webhook_worker
            else None
        )
        app.state.change_feed.start()  # live streams, and the change log's retention purge
        app.state.installation.start()
        app.state.import_worker.start()  # import jobs: queued here or left by a stopped process
        yield
        await app.state.import_worker.stop()  # the chunk in hand ends, its lease is let go
        await app.state.installation.stop()  # the last counts, added before the pool closes
        await app.state.change_feed.stop()
        if delivery is not None:
            await delivery.stop()
        await app.state.admission.close()
        await app.state.login_throttle.close()
        if owns_database:
            await database.dispose()
        metrics.process_exiting()

    if settings.metrics:
        metrics.enable()
        metrics.instrument_pool(database.engine, idle_changed=database.idle_changed)

    app = operations.OperatedAPI(
        title="HAL widget identification",
        version=__version__,
        summary="Identify, CRM writes and conversations for the HAL support widget.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.admission = Admission(
        storage_url=settings.rate_limit_storage,
        per_project=settings.widget_rate_per_project,
        per_visitor=settings.widget_rate_per_visitor,
        new_visitors=settings.new_visitors_per_project,
        new_visitors_per_client=settings.new_visitors_per_client,
    )
    app.state.change_feed = ChangeFeed(
        database,
        retention=settings.stream_retention,
        webhook_log_retention=settings.webhook_log_retention,
    )
    app.state.installation = Installation(
        database, flush_seconds=settings.installation_flush_seconds
    )
    app.state.import_worker = ImportWorker.of(database, settings)
    app.state.repeat_answers = RepeatAnswers()
    app.state.login_throttle = LoginThrottle(
        storage_url=settings.rate_limit_storage,
        per_email=settings.login_failures_per_email,
        per_client=settings.login_failures_per_client,
    )
    install_error_handlers(app)
    app.include_router(widget.router)
    if settings.bench_echo:  # beside the widget routes: matched after as few routes as they are
        app.include_router(widget.echo_router)
    app.include_router(team.router)
    app.include_router(privacy.router)
    app.include_router(attributes.router)
    app.include_router(views.router)
    app.include_router(batch.router)
    app.include_router(imports.router)
    app.include_router(admin.router)
    app.include_router(agents.router)
    app.include_router(installation.router)
    app.include_router(webhooks.router)
    app.include_router(stream.router)
    app.include_router(stream.widget_router)
    app.include_router(inbox.router)
    app.include_router(inbox_find.router)
    app.include_router(inbox_merge.router)
    app.include_router(console.router)
    app.include_router(operations.router)
    if settings.metrics:
        app.include_router(operations.metrics_router)
    app.add_exception_handler(LoginRequired, inbox.login_redirect)
    app.add_exception_handler(console.AdminOnly, console.admins_only)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

    @app.get("/widget.js", include_in_schema=False)
    async def widget_js() -> FileResponse:
        return FileResponse(WEB / "static" / "widget.js", media_type="text/javascript")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        """For pages that name no icon (a browser asks every site for one)."""
        return FileResponse(WEB / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.get("/widget.d.ts", include_in_schema=False)
    async def widget_types() -> FileResponse:
        return FileResponse(WEB / "static" / "widget.d.ts", media_type="text/plain")

    if settings.demo:
        app.include_router(demo.router)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/inbox")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    # Each add_middleware wraps the ones added before it, so the last is outermost: the
    # security headers wrap CORS, and CORS wraps the body limit, so its 413 carries CORS
    # headers; the body limit wraps the NUL refusal, which reads the body it read. The request
    # id and metrics wrap all of them (operations.OperatedAPI).
    app.add_middleware(NulRefusalMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_seconds=settings.body_timeout_seconds,
        database=database,
        route_limits=[
            (r"/api/projects/(?P<app_id>[^/]+)/batch", settings.max_batch_bytes),
            (r"/api/projects/(?P<app_id>[^/]+)/imports", settings.max_import_bytes),
        ],
    )
    app.add_middleware(WidgetCORSMiddleware)
    app.add_middleware(InboxSecurityHeadersMiddleware)
    return app
