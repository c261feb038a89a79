"""Run the Alembic migrations programmatically (at `hal serve` start and in tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from hal.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 7_210_431_880_113


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several processes may start at once; one migrates, the others wait and find it done.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


async def migrate(database: Database) -> None:
    """Bring the schema to the newest revision."""
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade)
