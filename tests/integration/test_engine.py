"""The engine's promises: SQL parameters (personal data) never appear in errors or logs, and
SQLite calls run on the event loop's thread (the reason for the aiosqlite override)."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hal.db.engine import Database

SECRET = "alice.private@example.com"


async def test_a_failing_statement_shows_no_parameters(database: Database, caplog):
    caplog.set_level(logging.DEBUG)

    async def work(tx):
        await tx.execute(text("SELECT CAST(:email AS INTEGER) + no_such_column"), {"email": SECRET})

    with pytest.raises(DBAPIError) as failed:
        await database.run(work)
    assert SECRET not in str(failed.value)
    assert SECRET not in caplog.text


async def test_sqlite_statements_run_on_the_event_loops_thread(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'inline.db'}")
    seen: list[int] = []
    try:
        async with database.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            raw.driver_connection._conn.create_function(  # the sqlite3 connection
                "thread_id", 0, lambda: seen.append(threading.get_ident()) or 1
            )
            await connection.execute(text("SELECT thread_id()"))
    finally:
        await database.dispose()
    assert seen == [threading.get_ident()]


async def test_a_request_after_the_server_dropped_pooled_connections_succeeds(
    database: Database, widget, project
):
    if not database.is_postgres:
        pytest.skip("SQLite has no server connections to drop")
    assert (await widget.identify(project, user_id="before")).status_code == 200
    url = database.engine.url
    import asyncpg

    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    after = await widget.identify(project, user_id="after")
    assert after.status_code == 200, after.text
