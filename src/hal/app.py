"""create_app(settings): the API, middleware and error handling, built from one Settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hal import __version__
from hal.api import team, widget
from hal.api.errors import install_error_handlers
from hal.api.middleware import BodyLimitMiddleware, WidgetCORSMiddleware
from hal.config import Settings
from hal.db.engine import Database


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the service. Migrations are not run here: `hal serve` runs them first."""
    settings = settings or Settings()
    owns_database = database is None
    database = database or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_database:
            await database.dispose()

    app = FastAPI(
        title="HAL widget identification",
        version=__version__,
        summary="Identify, CRM writes and conversations for the HAL support widget.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    install_error_handlers(app)
    app.include_router(widget.router)
    app.include_router(team.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    # Outermost first: CORS must also decorate the 413 of the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(WidgetCORSMiddleware)
    return app
