"""What every `hal` command shares: the --database-url option, and running its work on a
database whose schema is current, printing a refusal as the JSON error body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from hal.config import Settings
from hal.db.engine import Database
from hal.db.migrate import migrate, require_current
from hal.domain.errors import HalError

T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Default: $HAL_DATABASE_URL, else sqlite:///hal.db"),
]


def settings_for(database_url: str | None) -> Settings:
    settings = Settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def run_on_database(
    database_url: str | None,
    work: Callable[[Database], Awaitable[T]],
    *,
    migrating: bool = False,
) -> T:
    """Run `work` on a current schema (only `serve` and `migrate` bring it up to date, with
    `migrating`); a refusal prints its error and exits 1."""

    async def main() -> T:
        database = Database(settings_for(database_url).database_url)
        try:
            await (migrate(database) if migrating else require_current(database))
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except HalError as exc:
        typer.echo(json.dumps(exc.body()), err=True)
        raise typer.Exit(1) from None


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))
