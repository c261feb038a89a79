"""Run the Alembic migrations programmatically: at `hal serve` start, by `hal migrate`, and in
tests. Every other command only checks that the schema is current (`require_current`).

Adding a migration: `hal db revision -m "what changes"` writes a new file under
`src/hal/db/migrations/versions/` after the newest one; fill in `upgrade()` (and `downgrade()`
where going back is possible), keep `models.py` in step, and run the tests on both engines.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from hal.db.engine import Database
from hal.domain.errors import Conflict

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
    if database.engine.dialect.name != "sqlite":
        async with database.engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return
    # SQLite rebuilds a table to change it, and dropping the old one with foreign keys on
    # would cascade into its children: they are off for the migration (outside its
    # transaction, the only place SQLite takes the pragma), then checked and on again.
    async with database.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute("PRAGMA foreign_keys=OFF")
        try:
            async with connection.begin():
                await connection.run_sync(_upgrade)
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).first()
                if broken is not None:
                    raise RuntimeError(f"a migration broke a foreign key: {tuple(broken)}")
        finally:
            await raw.execute("PRAGMA foreign_keys=ON")


def head_revision() -> str:
    """The newest migration this version ships."""
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def _is_current(connection: Connection) -> bool:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return set(MigrationContext.configure(connection).get_current_heads()) == set(heads)


async def require_current(database: Database) -> None:
    """Refuse to work on a schema this version did not migrate (commands never migrate)."""
    async with database.engine.connect() as connection:
        current = await connection.run_sync(_is_current)
    if not current:
        raise Conflict(
            "schema_not_current",
            "the database schema is not this version's: run `hal migrate` (or `hal serve`) first",
            field="database_url",
        )


def new_revision(message: str) -> str:
    """Write an empty migration after the newest one; the path of the new file."""
    rev_id = f"{int(head_revision()) + 1:04d}"  # revisions are numbered 0001, 0002, ...
    script = command.revision(alembic_config(), message=message, rev_id=rev_id)
    revisions = script if isinstance(script, list) else [script]
    return str(revisions[0].path) if revisions and revisions[0] is not None else ""
