"""The engine's promises: SQL parameters (personal data) never appear in errors or logs, and
SQLite calls run on the event loop's thread (the reason for the aiosqlite override)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hal.db.engine import Database
from hal.logs import json_formatter, logging_config

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

    def thread_id() -> int:
        seen.append(threading.get_ident())
        return 1

    try:
        async with database.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            driver._conn.create_function("thread_id", 0, thread_id)  # the sqlite3 connection
            await connection.execute(text("SELECT thread_id()"))
    finally:
        await database.dispose()
    assert seen == [threading.get_ident()]


async def test_sqlite_checkpoints_run_in_their_own_thread_not_at_commit(tmp_path):
    """A checkpoint fsyncs the file: the serving connection never runs one (it would stall
    every request of the process); the checkpointer's thread keeps the WAL checkpointed, so
    the WAL is reused from its start instead of growing."""
    path = tmp_path / "wal.db"
    wal = tmp_path / "wal.db-wal"
    database = Database(f"sqlite:///{path}")

    async def write(rows: range) -> None:
        for n in rows:
            async with database.engine.begin() as connection:
                await connection.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (n, "x" * 8000))

    try:
        async with database.engine.begin() as connection:
            assert (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
            await connection.exec_driver_sql("CREATE TABLE t (n INTEGER, pad TEXT)")
        await write(range(300))
        first = wal.stat().st_size
        await asyncio.sleep(2.5)  # the checkpointer runs every second
        await write(range(300, 600))
        second = wal.stat().st_size
        assert database.checkpointer is not None
    finally:
        await database.dispose()
    assert first > 4_096_000  # more than the 1,000 pages of the default autocheckpoint
    assert second < first * 1.2  # reused from the start; without checkpoints it doubles
    assert not database.checkpointer._thread.is_alive()


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
    # The engine's pool may still hold connections the server dropped (no pre-ping): the
    # tests that take connections from it after this one start from a pool without them.
    await database.engine.dispose()


async def test_access_lines_and_json_lines_show_no_secrets(widget, project, caplog):
    """A request's access line names its route and status; its body, token and query do not
    reach any log line, in either format."""
    caplog.set_level(logging.DEBUG)
    user_id = "alice-private-id"
    first = await widget.identify(project, user_id=user_id, email=SECRET, signed=True)
    session_token = first.json()["session_token"]
    await widget.identify(project, session_token, user_id=user_id, signed=True)
    await widget.http.get(
        "/api/widget/stream",
        params={"app_id": project.app_id, "visitor_id": "v-none", "session_token": session_token},
        headers={"X-Request-ID": "trace-secret-test"},
    )
    # The test's own HTTP client logs its URLs (httpx); the service sets httpx to WARNING.
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    access = [r for r in records if r.name == "hal.access"]
    assert {(r.route, r.status) for r in access} >= {
        ("/api/widget/identify", 200),
        ("/api/widget/stream", 404),
    }
    json_lines = [json.loads(json_formatter().format(record)) for record in records]
    for record in records:
        record.request_id = "r"  # the filter's stamp
    text_lines = [
        logging.Formatter(logging_config("text", "info")["formatters"]["hal"]["format"]).format(
            record
        )
        for record in records
    ]
    logged = json.dumps(json_lines) + "\n".join(text_lines)
    for secret in [SECRET, user_id, project.hash(user_id), session_token, project.secret]:
        assert secret not in logged


async def test_a_transactions_now_is_fixed_and_its_upserts_say_what_they_created(
    database: Database, project
):
    from hal.db.store.companies import upsert_companies
    from hal.db.store.people import upsert_visitor
    from tests.factories import unique

    async def work(tx):
        with pytest.raises(AttributeError):
            tx.now = tx.now
        first, second = tx.stamp(), tx.stamp()
        assert tx.now < first < second
        config = await tx.projects.get(tx.connection, project.app_id)
        key = unique("c")
        made = await upsert_companies(tx, project_id=config.id, names={key: "Made"})
        again = await upsert_companies(tx, project_id=config.id, names={key: "Made"})
        visitor = unique("v")
        new = await upsert_visitor(tx, project_id=config.id, visitor_key=visitor)
        seen = await upsert_visitor(tx, project_id=config.id, visitor_key=visitor)
        return made[key].created, again[key].created, new.created, seen.created

    assert await database.run(work) == (True, False, True, False)
