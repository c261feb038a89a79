"""Search with filters: the first page (limit 50, with its total) of the search language's
common queries against the unfiltered first page of the same run, on SQLite and PostgreSQL,
with the plan of every statement the search ran.

    uv run python bench/search.py [--contacts 100000] [--companies 10000] [--events 1000000]
                                  [--conversations 20000] [--repeat 30]
                                  [--backends sqlite,postgres] [--pg-large 1000000]
                                  [--large-repeat 10]

A quick run: --quick (2,000 contacts, 200 companies, 20,000 events, 500 conversations, 3
repeats, no large run; written to bench/out/RESULTS-quick.md unless --out is given). Each
backend gets a fresh database (`hal migrate`, `hal projects create`, `hal tokens create`),
loaded directly with the rows the store would write (its own case-folded copies, attribute
definitions and bulk insert: COPY on PostgreSQL), then one `hal serve` answers every query
`--repeat` times, one request at a time (PostgreSQL connections run with `jit = off`, as
db/engine.py sets). `--pg-large N` measures PostgreSQL again at N contacts
(companies, events and conversations in proportion; 0: not). The plans come from the same
requests made once more in this process (the app on the same database, its statements caught
on their way to the driver) and run again under EXPLAIN. Replaces its own section of
bench/RESULTS.md (between the search markers) and prints it; one progress line per query on
stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, select

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

from hal.app import create_app  # noqa: E402
from hal.config import Settings  # noqa: E402
from hal.db.engine import Database, Tx  # noqa: E402
from hal.db.store import companies, people  # noqa: E402
from hal.db.store.attributes import define_attributes  # noqa: E402
from hal.db.store.base import (  # noqa: E402
    COMPANIES,
    CONTACTS,
    CONVERSATIONS,
    EVENTS,
    LINKS,
    bulk_insert,
)
from hal.domain.attributes import AttrType, Model, format_date  # noqa: E402
from hal.services.seed import refresh_statistics  # noqa: E402

APP_ID = "bench"
STAGES = ["Lead", "Qualified", "Trial", "Customer", "Churned"]
STAGE_WEIGHTS = [40, 20, 15, 20, 5]
PLANS = ["free", "starter", "pro", "enterprise"]
PLAN_WEIGHTS = [55, 20, 20, 5]
ARR_BANDS = ["<10k", "10k-100k", "100k-1M", ">1M"]
EVENT_NAMES = ["page-viewed", "signed-in", "report-exported", "invited-teammate", "trial-started"]
EVENT_WEIGHTS = [50, 25, 10, 10, 5]
CONTACT_ATTRIBUTES = {
    "plan": AttrType.STRING,
    "seats": AttrType.NUMBER,
    "trial_started_at": AttrType.DATE,
    "active": AttrType.BOOLEAN,
}
COMPANY_ATTRIBUTES = {"arr_band": AttrType.STRING, "employees": AttrType.NUMBER}
QUICK = {"contacts": 2_000, "companies": 200, "events": 20_000, "conversations": 500,
         "repeat": 3, "pg_large": 0}  # fmt: skip
CHUNK = 20_000
DAY = 86_400
LOAD: list[float] = []  # the 1-minute load average after each measured query

# (label, route, query): every query is the first page, limit 50, default sort.
QUERIES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("unfiltered", "contacts", None),
    ("equality: metadata.plan = enterprise", "contacts",
     {"field": "metadata.plan", "operator": "=", "value": "enterprise"}),
    ("IN: company.stage IN [Qualified, Trial]", "contacts",
     {"field": "company.stage", "operator": "IN", "value": ["Qualified", "Trial"]}),
    ("number range: 20 <= metadata.seats <= 30", "contacts",
     {"operator": "AND", "value": [
         {"field": "metadata.seats", "operator": ">=", "value": 20},
         {"field": "metadata.seats", "operator": "<=", "value": 30}]}),
    ("relative date: metadata.trial_started_at > -30d", "contacts",
     {"field": "metadata.trial_started_at", "operator": ">", "value": "-30d"}),
    ("AND: plan = pro AND company.metadata.arr_band = 100k-1M", "contacts",
     {"operator": "AND", "value": [
         {"field": "metadata.plan", "operator": "=", "value": "pro"},
         {"field": "company.metadata.arr_band", "operator": "=", "value": "100k-1M"}]}),
    ("OR with nested AND: plan = enterprise OR (company.stage = Trial AND active)", "contacts",
     {"operator": "OR", "value": [
         {"field": "metadata.plan", "operator": "=", "value": "enterprise"},
         {"operator": "AND", "value": [
             {"field": "company.stage", "operator": "=", "value": "Trial"},
             {"field": "metadata.active", "operator": "=", "value": True}]}]}),
    ("event count: report-exported >= 3 since -30d", "contacts",
     {"field": "event", "event": "report-exported", "operator": ">=", "value": 3,
      "since": "-30d"}),
    ("conversations: contact.metadata.plan = enterprise", "conversations",
     {"field": "contact.metadata.plan", "operator": "=", "value": "enterprise"}),
]  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    contacts: int
    companies: int
    events: int
    conversations: int

    def scaled(self, contacts: int) -> Sizes:
        factor = contacts / self.contacts
        return Sizes(contacts, round(self.companies * factor), round(self.events * factor),
                     round(self.conversations * factor))  # fmt: skip

    def describe(self) -> str:
        return (f"{self.contacts:,} contacts, {self.companies:,} companies, "
                f"{self.events:,} events, {self.conversations:,} conversations")  # fmt: skip


@dataclass
class Measured:
    label: str
    p50_ms: float | None = None
    p95_ms: float | None = None
    total: str = ""
    skipped: str = ""
    plans: list[tuple[str, str]] = field(default_factory=list)  # (statement, plan)


@dataclass
class BackendRun:
    backend: str
    sizes: Sizes
    seed_s: float
    rows: list[Measured]
    target: bool  # the 5x target applies


# --- the data ---------------------------------------------------------------------------------


def _ago(rng: random.Random, now: datetime, days: float) -> datetime:
    return now - timedelta(seconds=rng.uniform(0, days * DAY))


def company_rows(project_id: int, sizes: Sizes, rng: random.Random, now: datetime) -> Iterator[
    dict[str, Any]
]:  # fmt: skip
    stages = rng.choices(STAGES, STAGE_WEIGHTS, k=sizes.companies)
    for c in range(sizes.companies):
        created = _ago(rng, now, 730)
        yield companies.search_keys({
            "project_id": project_id,
            "external_id": f"co-{c}",
            "name": f"Company {c}",
            "stage": stages[c],
            "stage_source": "api",
            "stage_updated_at": created,
            "metadata": {"arr_band": rng.choice(ARR_BANDS),
                         "employees": int(rng.lognormvariate(3.5, 1.2)) + 1},
            "guarded": False,
            "version": 1,
            "created_at": created,
        })  # fmt: skip


def contact_rows(project_id: int, sizes: Sizes, rng: random.Random, now: datetime) -> Iterator[
    dict[str, Any]
]:  # fmt: skip
    plans = rng.choices(PLANS, PLAN_WEIGHTS, k=sizes.contacts)
    for i in range(sizes.contacts):
        metadata: dict[str, Any] = {
            "plan": plans[i],
            "seats": min(500, int(rng.lognormvariate(2.5, 1.0)) + 1),
            "active": rng.random() < 0.6,
        }
        if rng.random() < 0.85:  # some never started a trial: the key is missing
            metadata["trial_started_at"] = format_date(_ago(rng, now, 365))
        email = f"user-{i}@example.com"
        created = _ago(rng, now, 365)
        yield people.search_keys({
            "project_id": project_id,
            "user_id": f"user-{i}",
            "email": email,
            "email_normalized": email,
            "name": f"Person {i}",
            "metadata": metadata,
            "verified": True,
            "email_verified": False,
            "version": 1,
            "created_at": created,
            "last_seen_at": max(created, _ago(rng, now, 30)),
        })  # fmt: skip


def event_rows(project_id: int, contact_ids: list[int], count: int, rng: random.Random,
               now: datetime) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Some people track far more than others (the square of a uniform draw)."""
    names = rng.choices(EVENT_NAMES, EVENT_WEIGHTS, k=count)
    size = len(contact_ids)
    for n in range(count):
        yield {
            "project_id": project_id,
            "contact_id": contact_ids[int(size * rng.random() ** 2)],
            "visitor_row_id": None,
            "company_id": None,
            "scope": "contact",
            "name": names[n],
            "properties": {},
            "event_key": None,
            "event_owner": None,
            "occurred_at": _ago(rng, now, 90),
            "received_at": now,
        }


def conversation_rows(project_id: int, people_of: list[tuple[int, int]], count: int,
                      rng: random.Random, now: datetime) -> Iterator[dict[str, Any]]:  # fmt: skip
    for _ in range(count):
        contact_id, company_id = rng.choice(people_of)
        created = _ago(rng, now, 90)
        yield {
            "project_id": project_id,
            "visitor_row_id": None,
            "contact_id": contact_id,
            "company_id": company_id,
            "status": "open" if rng.random() < 0.3 else "closed",
            "verified_contact_id": contact_id,
            "created_at": created,
            "last_message_at": min(now, created + timedelta(seconds=rng.uniform(0, 2 * DAY))),
        }


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def seed(database_url: str, sizes: Sizes) -> None:
    """The project's companies, contacts (one company each), events and conversations, each
    table a chunk per transaction, through the store's own bulk insert; then ANALYZE."""
    database = Database(database_url)
    rng, now = random.Random(7), datetime.now(UTC)
    try:

        async def load(table: Any, chunk: list[dict[str, Any]]) -> None:
            await database.run(lambda tx: bulk_insert(tx, table, chunk))

        async def define(tx: Tx) -> int:
            project = await tx.projects.get(tx.connection, APP_ID)
            assert project is not None
            await define_attributes(tx, project_id=project.id, model=Model.CONTACT,
                                    types=CONTACT_ATTRIBUTES)  # fmt: skip
            await define_attributes(tx, project_id=project.id, model=Model.COMPANY,
                                    types=COMPANY_ATTRIBUTES)  # fmt: skip
            return project.id

        project_id = await database.run(define)
        for chunk in _chunks(company_rows(project_id, sizes, rng, now)):
            await load(COMPANIES, chunk)
        for chunk in _chunks(contact_rows(project_id, sizes, rng, now)):
            await load(CONTACTS, chunk)

        async def ids(tx: Tx) -> tuple[list[int], list[int]]:
            order = [CONTACTS.c.id]
            contacts = (await tx.execute(select(*order).order_by(*order))).scalars().all()
            order = [COMPANIES.c.id]
            companies = (await tx.execute(select(*order).order_by(*order))).scalars().all()
            return list(contacts), list(companies)

        contact_ids, company_ids = await database.run(ids)
        links = [(contact, company_ids[i % len(company_ids)])
                 for i, contact in enumerate(contact_ids)]  # fmt: skip
        for chunk in _chunks({"contact_id": contact, "company_id": company, "created_at": now}
                             for contact, company in links):  # fmt: skip
            await load(LINKS, chunk)
        for chunk in _chunks(event_rows(project_id, contact_ids, sizes.events, rng, now)):
            await load(EVENTS, chunk)
        rows = conversation_rows(project_id, links, sizes.conversations, rng, now)
        for chunk in _chunks(rows):
            await load(CONVERSATIONS, chunk)
    finally:
        await database.dispose()
    await refresh_statistics(database_url)


# --- measuring --------------------------------------------------------------------------------


def _path(route: str) -> str:
    return f"/api/projects/{APP_ID}/{route}/search"


def _body(query: dict[str, Any] | None) -> dict[str, Any]:
    return {"limit": 50} if query is None else {"query": query, "limit": 50}


def _total(answer: dict[str, Any]) -> str:
    return f"{answer['total']:,}" + ("" if answer["total_exact"] else "+")


def measure(url: str, token: str, repeat: int) -> list[Measured]:
    """Each query `repeat` times after two warm-up requests, one request at a time."""
    found = []
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        for label, route, query in QUERIES:
            answer = http.post(_path(route), json=_body(query))
            if answer.status_code == 404 and answer.json().get("detail") == "Not Found":
                found.append(Measured(label, skipped=f"skipped: no route POST {_path(route)}"))
                progress(f"{label}: {found[-1].skipped}")
                continue
            answer.raise_for_status()
            http.post(_path(route), json=_body(query))
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                answer = http.post(_path(route), json=_body(query))
                times.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
            p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
            found.append(Measured(label, statistics.median(times), p95, _total(answer.json())))
            LOAD.append(os.getloadavg()[0])
            progress(f"{label}: p50 {found[-1].p50_ms:.1f} ms, p95 {p95:.1f} ms, "
                     f"total {found[-1].total}")  # fmt: skip
    return found


async def explain(database_url: str, token: str, rows: list[Measured]) -> None:
    """Make each measured request once more through the app in this process, catch the
    statements it sends on the searched table, and run them again under EXPLAIN."""
    database = Database(database_url)
    caught: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        caught.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", catch)
    app = create_app(Settings(database_url=database_url), database=database)
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {token}"}
    postgres = database.is_postgres
    # With costs: PostgreSQL shows its JIT compilation only then.
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers=headers) as http:  # fmt: skip
            for row, (_, route, query) in zip(rows, QUERIES, strict=True):
                if row.skipped:
                    continue
                caught.clear()
                (await http.post(_path(route), json=_body(query))).raise_for_status()
                statements = [(s, p) for s, p in caught
                              if s.lstrip().upper().startswith("SELECT") and
                              f"FROM {route}" in s]  # fmt: skip
                async with database.engine.connect() as connection:
                    for statement, parameters in statements:
                        result = await connection.exec_driver_sql(prefix + statement, parameters)
                        row.plans.append((statement, _plan_text(list(result), postgres)))
    finally:
        await database.dispose()


def _plan_text(rows: list[Any], postgres: bool) -> str:
    if postgres:
        return "\n".join(row[0] for row in rows)
    # EXPLAIN QUERY PLAN: (id, parent, notused, detail), drawn as a tree.
    depth: dict[int, int] = {0: -1}
    lines = []
    for node_id, parent, _, detail in rows:
        depth[node_id] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node_id] + detail)
    return "\n".join(lines)


def served(url: str, token: str, repeat: int, log: Path) -> list[Measured]:
    server = Server(url, log=log).start()
    try:
        return measure(server.url, token, repeat)
    finally:
        server.stop()


def run_backend(backend: str, sizes: Sizes, args: argparse.Namespace, workdir: Path,
                target: bool, repeat: int) -> BackendRun:  # fmt: skip
    """Load a fresh database, measure, capture the plans."""
    url, pg_name = new_database(backend, workdir)
    try:
        hal(url, "migrate")
        hal(url, "projects", "create", "--app-id", APP_ID, "--stages", ",".join(STAGES))
        token = hal(url, "tokens", "create", "--app-id", APP_ID)["token"]
        started = time.monotonic()
        asyncio.run(seed(url, sizes))
        seed_s = time.monotonic() - started
        progress(f"{backend}: seeded {sizes.describe()} in {seed_s:.0f} s")
        log = workdir / f"server-{backend}.log"
        run = BackendRun(backend, sizes, seed_s, served(url, token, repeat, log), target)
        asyncio.run(explain(url, token, run.rows))
        return run
    finally:
        drop_database(pg_name)


# --- the report -------------------------------------------------------------------------------


def _short(statement: str) -> str:
    """A statement on one line, its selected columns elided."""
    text = " ".join(statement.split())
    head, sep, rest = text.partition(" FROM ")
    if sep and len(head) > 80:
        head = head[:60] + " ..."
    return head + sep + rest


def _table(rows: list[Measured], target: bool) -> list[str]:
    lines = ["| query | p50 ms | p95 ms | x unfiltered | total |", "|---|---:|---:|---:|---:|"]
    baseline = next((r.p50_ms for r in rows if r.label == "unfiltered"), None)
    for row in rows:
        if row.p50_ms is None or row.p95_ms is None:
            lines.append(f"| {row.label} | | | | {row.skipped} |")
            continue
        ratio = f"{row.p50_ms / baseline:.1f}x" if baseline else ""
        if target and baseline and row.p50_ms > 5 * baseline:
            ratio += " (over 5x)"
        lines.append(f"| {row.label} | {row.p50_ms:.1f} | {row.p95_ms:.1f} | {ratio} | "
                     f"{row.total} |")  # fmt: skip
    return lines


def render(runs: list[BackendRun], args: argparse.Namespace, load_before: float) -> str:
    lines = [
        "## Search with filters (`bench/search.py`)",
        "",
        "First page (limit 50, default sort: newest first, with the total, exact up to "
        f"10,000) of each query, one request at a time, {args.repeat} times after two warm-up "
        "requests, against one `hal serve` on a database loaded with the rows the store "
        "writes; \"x unfiltered\" is the query's p50 over the unfiltered first page's p50 of "
        "the same run (target: at most 5x at 100,000 contacts; the large PostgreSQL run is "
        "reported without a target). Each contact is linked to one company; events are spread "
        "over 90 days, a few people tracking most of them. "
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Load average (1 min) "
        f"{load_before:.1f} before the run started (other processes on the machine), "
        f"{min(LOAD, default=0):.1f} to {max(LOAD, default=0):.1f} while it measured (this "
        "run's server, database and client take up to about 2). PostgreSQL connections run "
        "with `jit = off` (db/engine.py).",
        "",
        f"Command: `{' '.join(['uv run python bench/search.py', *sys.argv[1:]])}`",
        "",
    ]  # fmt: skip
    for run in runs:
        lines += [f"### {run.backend}: {run.sizes.describe()} (loaded in {run.seed_s:.0f} s)",
                  "", *_table(run.rows, run.target)]  # fmt: skip
        lines += ["", f"<details><summary>Plans, {run.backend}, {run.sizes.contacts:,} "
                  "contacts</summary>", ""]  # fmt: skip
        for row in run.rows:
            for statement, plan in row.plans:
                lines += [f"**{row.label}**: `{_short(statement)}`", "", "```", plan, "```", ""]
        lines += ["</details>", ""]
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--large-repeat", type=int, default=10, help="--repeat of --pg-large")
    parser.add_argument("--pg-large", type=int, default=1_000_000,
                        help="contacts of a second PostgreSQL run (0: none)")  # fmt: skip
    args = parse(parser, quick=QUICK)
    sizes = Sizes(args.contacts, args.companies, args.events, args.conversations)
    load_before, runs = os.getloadavg()[0], []
    target = not args.quick  # the 5x target is set at 100,000 contacts, not a quick run's sizes
    with tempfile.TemporaryDirectory() as tmp:
        for backend in (name.strip() for name in args.backends.split(",")):
            runs.append(run_backend(backend, sizes, args, Path(tmp), target, args.repeat))
        if args.pg_large:
            large = sizes.scaled(args.pg_large)
            runs.append(run_backend("postgres", large, args, Path(tmp), False, args.large_repeat))
    section = render(runs, args, load_before)
    publish("search", section, args)


if __name__ == "__main__":
    main()
