"""Erasing a contact with many events: how long `DELETE /contacts/{id}` takes, and the latency
of identify requests other clients make meanwhile (erasure deletes in bounded batches, each
its own short transaction, so they should barely notice).

    uv run python bench/erase.py [--events 100000] [--clients 4] [--backends sqlite,postgres]
                                 [--write] [--quick] [--out FILE]

Builds the contact's rows directly in the database, starts one `hal serve`, erases while the
clients identify in a loop, and prints a Markdown section; `--write` (or `--out`) replaces that
section of bench/RESULTS.md (bench/out/RESULTS-quick.md in quick mode, or `--out`). --quick:
5,000 events.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    bench_parser,
    drop_database,
    hal,
    new_database,
    parse,
    progress,
    publish,
)
from tests.servers import Server  # noqa: E402

from hal.db.engine import Database, Tx  # noqa: E402
from hal.db.store import people, timeline  # noqa: E402
from hal.db.store.base import EVENTS, MESSAGES  # noqa: E402

HEADING = "## Erasing a contact with many events"


async def build_person(database_url: str, app_id: str, events: int) -> int:
    """A contact with one visitor, `events` tracked events and a conversation of 50 messages,
    written through the store."""
    database = Database(database_url)
    now = datetime.now(UTC)
    try:

        async def person(tx: Tx) -> tuple[int, int, int]:
            project_id = (await tx.project(app_id)).id
            contact_id = await people.insert_contact(tx, project_id=project_id, values={
                "user_id": "erase-me", "email": "erase@me.com",
                "email_normalized": "erase@me.com", "name": "Erase Me",
                "metadata": {"plan": "gold"}})  # fmt: skip
            visitor = await people.upsert_visitor(tx, project_id=project_id,
                                                  visitor_key="erase-visitor")  # fmt: skip
            await people.update_visitor(tx, visitor.id, contact_id=contact_id)
            conversation = await timeline.start_conversation(
                tx, {"project_id": project_id, "contact_id": contact_id})  # fmt: skip
            await tx.execute(MESSAGES.insert(), [
                {"conversation_id": conversation.id, "author": "visitor", "body": f"m{i}",
                 "sender_verified": False, "created_at": now} for i in range(50)])  # fmt: skip
            return project_id, contact_id, visitor.id

        project_id, contact_id, visitor_row_id = await database.run(person)
        for start in range(0, events, 5000):
            rows = [
                {"project_id": project_id, "contact_id": contact_id,
                 "visitor_row_id": visitor_row_id, "scope": "contact", "name": "page_viewed",
                 "properties": {"n": n}, "occurred_at": now, "received_at": now}
                for n in range(start, min(start + 5000, events))
            ]  # fmt: skip
            await database.run(lambda tx, rows=rows: tx.execute(EVENTS.insert(), rows))
        return contact_id
    finally:
        await database.dispose()


async def identify_loop(url: str, app_id: str, stop: asyncio.Event, latencies: list[float],
                        client: int) -> None:  # fmt: skip
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        n = 0
        while not stop.is_set():
            n += 1
            body = {"app_id": app_id, "visitor_id": f"c{client}-{n}", "user_id": f"c{client}-{n}"}
            started = time.perf_counter()
            answer = await http.post("/api/widget/identify", json=body)
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text


async def measure(url: str, app_id: str, token: str, contact_id: int, clients: int) -> dict:
    baseline: list[float] = []
    during: list[float] = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(identify_loop(url, app_id, stop, baseline, c))
             for c in range(clients)]  # fmt: skip
    await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*tasks)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(identify_loop(url, app_id, stop, during, c + 100))
             for c in range(clients)]  # fmt: skip
    await asyncio.sleep(0.5)
    during.clear()
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        started = time.perf_counter()
        erased = await http.delete(f"/api/projects/{app_id}/contacts/{contact_id}",
                                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        took = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks)
    assert erased.status_code == 200, erased.text

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[max(0, int(len(ordered) * q) - 1)] * 1000 if ordered else float("nan")

    return {
        "erase_s": took,
        "deleted_rows": erased.json()["deleted_rows"],
        "baseline_p50": statistics.median(baseline) * 1000,
        "baseline_p99": pct(baseline, 0.99),
        "during_n": len(during),
        "during_p50": statistics.median(during) * 1000 if during else float("nan"),
        "during_p99": pct(during, 0.99),
        "during_max": max(during) * 1000 if during else float("nan"),
    }


def row(backend: str, r: dict) -> str:
    return (
        f"| {backend} | {r['erase_s']:.2f} s | {r['deleted_rows']:,} | {r['baseline_p50']:.1f} / "
        f"{r['baseline_p99']:.1f} ms | {r['during_n']}, {r['during_p50']:.1f} / "
        f"{r['during_p99']:.1f} / {r['during_max']:.1f} ms |"
    )


def section(events: int, clients: int, rows: list[str]) -> str:
    return "\n".join([
        HEADING,
        "",
        f"`uv run python bench/erase.py --events {events} --clients {clients}` (one `hal serve`"
        f" process, {datetime.now(UTC):%Y-%m-%d}). The contact has {events:,} events, one",
        "visitor and a conversation of 50 messages; erasure blanks and unlinks it in one",
        "transaction, then deletes its rows 1,000 at a time, each batch its own transaction,",
        f"while {clients} other clients identify in a loop.",
        "",
        "| backend | erase took | rows deleted | identify p50 / p99 before | identify during the"
        " erase (n, p50 / p99 / max) |",
        "|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip


def erase_on(backend: str, events: int, clients: int, workdir: Path) -> dict:
    database_url, pg_name = new_database(backend, workdir)
    try:
        hal(database_url, "migrate")
        app_id = "erase"
        hal(database_url, "projects", "create", "--app-id", app_id,
            "--identity-verification", "disabled")  # fmt: skip
        token = hal(database_url, "tokens", "create", "--app-id", app_id)["token"]
        contact_id = asyncio.run(build_person(database_url, app_id, events))
        env = dict.fromkeys(
            (
                "HAL_WIDGET_RATE_PER_PROJECT",
                "HAL_WIDGET_RATE_PER_VISITOR",
                "HAL_NEW_VISITORS_PER_PROJECT",
                "HAL_NEW_VISITORS_PER_CLIENT",
            ),
            "off",
        )
        server = Server(database_url, env=env, log=workdir / f"server-{backend}.log").start()
        try:
            return asyncio.run(measure(server.url, app_id, token, contact_id, clients))
        finally:
            server.stop()
    finally:
        drop_database(pg_name)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="replace the section in RESULTS.md")
    args = parse(parser, quick={"events": 5_000})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            result = erase_on(backend.strip(), args.events, args.clients, Path(tmp))
            rows.append(row(backend.strip(), result))
            progress(f"{backend.strip()}: erased {result['deleted_rows']:,} rows in "
                     f"{result['erase_s']:.2f} s")  # fmt: skip
    text = section(args.events, args.clients, rows)
    publish("erase", text, args, write=args.write or bool(args.out))


if __name__ == "__main__":
    main()
