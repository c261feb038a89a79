"""Migrations on data the previous version wrote: SQLite's tables are rebuilt with keys that
never go back (nothing lost, no cascade), and a suppression's rows are grouped by person."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from alembic import command
from sqlalchemy import text

from hal.db.engine import Database
from hal.db.migrate import alembic_config, migrate, schema_drift

NOW = "2026-01-01 00:00:00.000000"
PROJECT = text(
    "INSERT INTO projects (id, app_id, name, identity_secret, session_secret,"
    " identity_verification, stage_mode, stages, allowed_origins, protected_keys,"
    " company_claims, last_change_id, created_at) VALUES (1, 'p', 'P', 's', 's',"
    " 'enabled', 'overwrite', '[]', '[]', '[]', 'open', 0, :now)"
)
NEW_CONTACT = text(
    "INSERT INTO contacts (project_id, metadata, verified, created_at, last_seen_at)"
    " VALUES (1, '{}', 0, :now, :now) RETURNING id"
)


async def _migrate_to(database: Database, revision: str) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def test_sqlite_keeps_every_row_and_never_reuses_a_deleted_or_merged_id(tmp_path: Path):
    path = tmp_path / "old.db"
    database = Database(f"sqlite:///{path}")
    try:
        await _migrate_to(database, "0007")
        async with database.engine.begin() as c:
            await c.execute(PROJECT, {"now": NOW})
            for contact_id in (1, 2):
                await c.execute(
                    text(
                        "INSERT INTO contacts (id, project_id, metadata, verified, created_at,"
                        " last_seen_at) VALUES (:id, 1, '{}', 0, :now, :now)"
                    ),
                    {"id": contact_id, "now": NOW},
                )
            await c.execute(
                text(
                    "INSERT INTO visitors (id, project_id, visitor_key, contact_id, properties,"
                    " created_at, last_seen_at) VALUES (1, 1, 'v1', 1, '{}', :now, :now)"
                ),
                {"now": NOW},
            )
            await c.execute(
                text(
                    "INSERT INTO events (id, project_id, contact_id, visitor_row_id, scope, name,"
                    " properties, occurred_at, received_at) VALUES (1, 1, 1, 1, 'contact', 'e',"
                    " '{}', :now, :now)"
                ),
                {"now": NOW},
            )
            # Contact 7 was merged into 1 and no longer has a row; the largest row is 2.
            await c.execute(
                text(
                    "INSERT INTO contact_merges (from_contact_id, project_id, into_contact_id,"
                    " created_at) VALUES (7, 1, 1, :now)"
                ),
                {"now": NOW},
            )
            await c.execute(text(
                "INSERT INTO suppressions (project_id, user_id_hash, email_hash, created_at)"
                " VALUES (1, 'u', 'e', :now)"), {"now": NOW})  # fmt: skip

        await migrate(database)

        async with database.engine.begin() as c:
            counts = {
                table: (await c.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
                for table in ("contacts", "visitors", "events", "contact_merges")
            }
            assert counts == {"contacts": 2, "visitors": 1, "events": 1, "contact_merges": 1}
            new_id = (await c.execute(NEW_CONTACT, {"now": NOW})).scalar()
            assert new_id == 8  # past the merged contact's id, not 3
            await c.execute(text("DELETE FROM contacts WHERE id = :id"), {"id": new_id})
            again = (await c.execute(NEW_CONTACT, {"now": NOW})).scalar()
            assert again == 9
            person = (await c.execute(text("SELECT person FROM suppressions"))).scalar()
            assert person == "u"
    finally:
        await database.dispose()

    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        schema = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'contacts'").fetchone()[0]
        assert "AUTOINCREMENT" in schema
    finally:
        raw.close()


async def test_the_serving_connections_keep_foreign_keys_on_after_a_migration(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        await migrate(database)
        async with database.engine.connect() as c:
            assert (await c.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await database.dispose()


async def test_the_models_and_the_migrations_agree(database: Database):
    """A model changed without its migration (or the reverse) fails here, on both engines."""
    async with database.engine.connect() as connection:
        assert await connection.run_sync(schema_drift) == []


async def test_keys_stored_before_types_get_the_type_most_of_their_values_have(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'typed.db'}")
    try:
        await _migrate_to(database, "0009")
        async with database.engine.begin() as c:
            await c.execute(PROJECT, {"now": NOW})
            for i, metadata in enumerate(
                ['{"seats": 1, "plan": "pro"}', '{"seats": "x"}', '{"seats": 2, "renewed_at": 0}']
            ):
                await c.execute(text(
                    "INSERT INTO contacts (id, project_id, metadata, verified, created_at,"
                    " last_seen_at) VALUES (:id, 1, :m, 0, :now, :now)"),
                    {"id": i + 1, "m": metadata, "now": NOW})  # fmt: skip
            await c.execute(text(
                "INSERT INTO companies (id, project_id, external_id, metadata, guarded, version,"
                " created_at) VALUES (1, 1, 'acme', :m, 0, 1, :now)"),
                {"m": '{"arr": 5.5}', "now": NOW})  # fmt: skip
        await migrate(database)
        async with database.engine.connect() as c:
            rows = await c.execute(text("SELECT model, key, type, source FROM attributes"))
            defined = {(r.model, r.key): (r.type, r.source) for r in rows}
            folded = await c.execute(text("SELECT search_metadata FROM contacts WHERE id = 1"))
            assert json.loads(folded.scalar_one()) == {"plan": "pro"}  # strings, case-folded
        assert defined == {
            ("contact", "plan"): ("string", "auto"),
            ("contact", "seats"): ("number", "auto"),
            ("contact", "renewed_at"): ("date", "auto"),
            ("company", "arr"): ("number", "auto"),
        }
    finally:
        await database.dispose()
