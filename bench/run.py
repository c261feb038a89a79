"""HAL benchmark: identify, track and set-properties against the same stack's JSON echo
ceiling, and growth of identify, contact search and contact detail latency with the number of
contacts. Real `hal serve`, real databases, loopback only, every run bounded in time.

    uv run python bench/run.py [--backends sqlite,postgres] [--duration 10] [--sizes 10000,...]
                               [--variants metrics] [--baseline REV] [--quick] [--out FILE]

--quick: the server as `hal serve` runs it (no variants beside it, but the baseline if one is
given), 2 s runs with fewer users (QUICK_USERS), growth at 10,000 contacts only (1 s runs),
100 live streams. Writes its section of bench/RESULTS.md (in quick mode
bench/out/RESULTS-quick.md) and prints it; one progress line per run on stderr. Needs `wrk`
(apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PG_BASE,
    baseline,
    bench_parser,
    drop_baseline,
    hal,
    new_database,
    parse,
    pg_admin,
    progress,
    publish,
)
from tests.servers import Server  # noqa: E402

from hal.domain.verification import compute_user_hash  # noqa: E402

THREADS = 2
SERVER_ENV = {
    "HAL_BENCH_ECHO": "true",
    "HAL_WIDGET_RATE_PER_PROJECT": "off",
    "HAL_WIDGET_RATE_PER_VISITOR": "off",
    "HAL_NEW_VISITORS_PER_PROJECT": "off",
    "HAL_NEW_VISITORS_PER_CLIENT": "off",
}
THROUGHPUT_ROUTES = ["echo", "identify", "repeat-identify", "track", "set-properties"]
SERVED = "uvloop + httptools"  # the server as `hal serve` runs it
QUICK = {"duration": 2, "growth_duration": 1, "sizes": "10000", "streams": 100}


@dataclass(frozen=True)
class Users:
    """How many users the widget runs draw from: new users for identify, bound visitors for
    track and set-properties, signed-in users (each always sending the same payload) for
    repeat-identify."""

    fresh: int = 60_000
    visitors: int = 1000
    signed_in: int = 2000


QUICK_USERS = Users(fresh=5000, visitors=200, signed_in=200)  # plenty for 2 s runs


@dataclass(frozen=True)
class Variant:
    """One way of running the service: this tree or a baseline commit, and how it is served."""

    label: str
    python: str = sys.executable
    command: tuple[str, ...] | None = None  # None: `hal serve`; "{port}" is replaced
    workers: int = 1
    routes: tuple[str, ...] = tuple(THROUGHPUT_ROUTES)
    webhook: bool = False  # one endpoint subscribed to every change, on a local receiver
    env: tuple[tuple[str, str], ...] = ()  # settings of this variant's server


@dataclass
class Run:
    backend: str
    server: str
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    connections: int
    note: str = ""

    def summary(self) -> str:
        return (f"{self.backend}, {self.server}, {self.name}: {self.rps:,.0f} req/s, p99 "
                f"{self.p99_ms:.1f} ms, {self.errors} errors")  # fmt: skip


@dataclass
class Report:
    runs: list[Run] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)
    seeding_s: dict[str, float] = field(default_factory=dict)


def lua_data(path: Path, **values: object) -> Path:
    def lua(value: object) -> str:
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list | tuple):
            return "{" + ",".join(lua(v) for v in value) + "}"
        raise TypeError(value)

    path.write_text("return {" + ",".join(f"{k}={lua(v)}" for k, v in values.items()) + "}\n")
    return path


def wrk(url: str, data: Path, *, duration: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
         "-s", str(ROOT / "bench" / "widget.lua"), url],
        capture_output=True, text=True, check=True,
        env={**os.environ, "BENCH_DATA": str(data), "BENCH_THREADS": str(THREADS)},
    )  # fmt: skip
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out.stdout[-500:]} {out.stderr[-500:]}")
    return json.loads(line.removeprefix("BENCH_RESULT "))


def to_run(
    backend: str, server: str, name: str, result: dict, connections: int, note: str = ""
) -> Run:
    seconds = result["duration_us"] / 1e6
    errors = result["errors_status"] + result["errors_connect"] + result["errors_timeout"]
    return Run(backend, server, name, result["requests"] / seconds, result["p50_us"] / 1000,
               result["p99_us"] / 1000, errors, connections, note)  # fmt: skip


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def warm_visitors(url: str, app_id: str, count: int) -> list[str]:
    """Unverified identifies (allowed under `enabled`) bind visitors for track/set-properties."""
    visitors = [f"t-{i}" for i in range(count)]
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        for start in range(0, count, 64):
            batch = visitors[start : start + 64]
            responses = await asyncio.gather(*(
                http.post("/api/widget/identify", json={
                    "app_id": app_id, "visitor_id": v, "user_id": v, "company": {"id": "co-1"}})
                for v in batch
            ))  # fmt: skip
            assert all(r.status_code == 200 for r in responses), responses[0].text
    return visitors


async def signed_in(url: str, app_id: str, users: list[tuple[str, str]]) -> list[list[str]]:
    """Signed-in users as the SDK keeps them: each one's identify body (always the same) and
    the session token its first identify answered (sent as the bearer from then on), each
    one's page already viewed once more (its first repeat) as a user's second page would.
    Their companies are their own: the mixed identify renames its companies as it goes."""
    bodies = [json.dumps({
        "app_id": app_id, "visitor_id": f"r-{user_id}", "user_id": user_id,
        "email": f"{user_id}@example.com", "name": f"User {user_id}",
        "metadata": {"plan": "enterprise", "role": "admin"},
        "company": {"id": f"signed-co-{i % 500}", "name": f"Company {i % 500}",
                    "stage": "Qualified",
                    "metadata": {"arr_band": "50k-100k", "crm_owner": "Sam"}},
        "user_hash": user_hash,
    }) for i, (user_id, user_hash) in enumerate(users)]  # fmt: skip
    found: list[list[str]] = []
    limits = httpx.Limits(max_connections=16)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        for start in range(0, len(bodies), 64):
            batch = bodies[start : start + 64]
            answers = await asyncio.gather(*(
                http.post("/api/widget/identify", content=body, headers=headers) for body in batch
            ))  # fmt: skip
            assert all(a.status_code == 200 for a in answers), answers[0].text
            signed = [[body, a.json()["session_token"]] for body, a in zip(batch, answers,
                                                                          strict=True)]  # fmt: skip
            again = await asyncio.gather(*(
                http.post("/api/widget/identify", content=body,
                          headers={**headers, "Authorization": f"Bearer {token}"})
                for body, token in signed
            ))  # fmt: skip
            assert all(a.status_code == 200 for a in again), again[0].text
            found += signed
    return found


def contact_id_range(database_url: str) -> tuple[int, int]:
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT min(id), max(id) FROM contacts").fetchone()
    out = subprocess.run(
        ["psql", database_url, "-Atc", "SELECT min(id), max(id) FROM contacts"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    low, high = out.stdout.strip().split("|")
    return int(low), int(high)


@dataclass
class Setup:
    """A fresh database with the bench project, 10k seeded contacts and signed users."""

    database_url: str
    pg_name: str | None
    token: str
    returning: list[tuple[str, str]]
    signed: list[tuple[str, str]]
    fresh: list[tuple[str, str]]
    users: object


def setup(backend: str, variant: Variant, report: Report, workdir: Path, fresh_users: int
          ) -> Setup:  # fmt: skip
    database_url, pg_name = new_database(backend, workdir)
    py = variant.python
    subprocess.run([py, "-m", "hal", "migrate", "--database-url", database_url], check=True,
                   capture_output=True)  # fmt: skip
    project = hal(database_url, "projects", "create", "--app-id", "bench", python=py)
    token = hal(database_url, "tokens", "create", "--app-id", "bench", python=py)["token"]
    secret = project["identity_secret"]
    started = time.monotonic()
    hal(database_url, "seed", "--app-id", "bench", "--contacts", "10000", python=py)
    report.seeding_s[f"{backend} 10000"] = time.monotonic() - started

    def users(ids: list[str]) -> list[tuple[str, str]]:
        return [(i, compute_user_hash(secret, i)) for i in ids]

    # The mixed identify's returning users, and apart from them the signed-in users of the
    # repeat identify (a mixed identify's change to one of them is not a repeat's).
    seeds = [f"seed-{i}" for i in random.sample(range(10_000), 7000)]
    returning, signed = users(seeds[:5000]), users(seeds[5000:])
    fresh = users([f"new-{i}" for i in range(fresh_users)])
    return Setup(database_url, pg_name, token, returning, signed, fresh, users)


class _Accept(BaseHTTPRequestHandler):
    """A webhook receiver that accepts every delivery at once."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def receiver() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(variant: Variant, database_url: str, log: Path) -> Server:
    env = {**SERVER_ENV, "HAL_DATABASE_URL": database_url, "HAL_WEBHOOKS_ALLOW_PRIVATE": "true",
           **dict(variant.env)}  # fmt: skip
    command = list(variant.command) if variant.command else None
    return Server(database_url, env=env, log=log, python=variant.python, command=command,
                  workers=variant.workers).start()  # fmt: skip


def throughput(
    backend: str, variant: Variant, args: argparse.Namespace, report: Report, workdir: Path
) -> Setup:
    """Echo, identify, track and set-properties at 32 clients on one server variant."""
    counts = QUICK_USERS if args.quick else Users()
    ready = setup(backend, variant, report, workdir, counts.fresh)
    sink = receiver() if variant.webhook else None
    if sink is not None:
        subprocess.run(
            [sys.executable, "-m", "hal", "webhooks", "create", "--app-id", "bench", "--url",
             f"http://127.0.0.1:{sink.server_address[1]}/hook", "--database-url",
             ready.database_url],
            check=True, capture_output=True,
            env={**os.environ, "HAL_WEBHOOKS_ALLOW_PRIVATE": "true"},
        )  # fmt: skip
    server = serve(variant, ready.database_url, workdir / f"server-{backend}.log")
    try:
        visitors = asyncio.run(warm_visitors(server.url, "bench", counts.visitors))
        common = {"app_id": "bench", "token": ready.token, "returning_share": 0.5,
                  "returning": ready.returning, "fresh": ready.fresh,
                  "visitors": visitors}  # fmt: skip
        repeat: list[list[str]] = []
        if "repeat-identify" in variant.routes:
            users = ready.signed[: counts.signed_in]
            repeat = asyncio.run(signed_in(server.url, "bench", users))
        for index, name in enumerate(variant.routes):
            # A Lua chunk holds at most 65,536 constants: each run gets only its own users.
            values = (
                {"app_id": "bench", "signed_in": repeat} if name == "repeat-identify" else common
            )
            data = lua_data(workdir / f"{name}.lua", route=name, **values)
            result = wrk(server.url, data, duration=args.duration, connections=32)
            note = {"identify": "50% new / 50% returning users with changed values",
                    "repeat-identify": f"{counts.signed_in:,} signed-in users, same payload "
                                       "each time"}.get(name, "")  # fmt: skip
            report.runs.append(to_run(backend, variant.label, name, result, 32, note))
            progress(report.runs[-1].summary())
            if name == "identify":  # new users were used up: start the next run afresh
                common["fresh"] = ready.users([f"new{index}-{i}" for i in range(counts.fresh)])
        report.rss_mb[f"{backend} {variant.label}"] = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
        if sink is not None:
            sink.shutdown()
    return ready


def growth(backend: str, ready: Setup, args: argparse.Namespace, report: Report,
           workdir: Path) -> None:  # fmt: skip
    """Identify, contact search and contact detail as the project grows to 1M contacts."""
    variant = Variant(SERVED)
    server = serve(variant, ready.database_url, workdir / f"growth-{backend}.log")
    try:
        for size in args.sizes:
            started = time.monotonic()
            hal(ready.database_url, "seed", "--app-id", "bench", "--contacts", str(size))
            report.seeding_s[f"{backend} {size}"] = time.monotonic() - started
            low, high = contact_id_range(ready.database_url)
            sample = ready.users([f"seed-{i}" for i in random.sample(range(size), 5000)])
            data_args = {"app_id": "bench", "token": ready.token, "returning": sample,
                         "returning_share": 1.0, "fresh": ready.fresh, "visitors": ["x"],
                         "seeded": size, "min_id": low, "max_id": high}  # fmt: skip
            for name, connections in [("identify", 32), ("search", 4), ("detail", 4)]:
                data = lua_data(workdir / f"g-{name}.lua", route=name, **data_args)
                result = wrk(server.url, data, duration=args.growth_duration,
                             connections=connections)  # fmt: skip
                label = f"{name} @ {size:,} contacts"
                run = to_run(backend, variant.label, label, result, connections,
                             f"{size * 10:,} events")  # fmt: skip
                report.runs.append(run)
                progress(report.runs[-1].summary())
        report.rss_mb[f"{backend} growth end"] = peak_rss_mb(server.process.pid)
    finally:
        server.stop()


def variants(backend: str, baseline_python: str | None, ref: str) -> list[Variant]:
    """The servers measured side by side, in one run: the baseline commit, this tree on
    asyncio + h11, this tree as `hal serve` runs it, and (PostgreSQL) two workers."""
    found = []
    if baseline_python:
        found.append(Variant(f"before ({ref})", python=baseline_python))
    found.append(Variant("asyncio + h11", command=(
        sys.executable, "-m", "uvicorn", "hal.app:create_app", "--factory", "--host",
        "127.0.0.1", "--port", "{port}", "--loop", "asyncio", "--http", "h11",
        "--log-level", "warning")))  # fmt: skip
    found.append(Variant(SERVED))
    found.append(Variant("uvloop + httptools, one webhook endpoint", webhook=True,
                         routes=("echo", "identify")))  # fmt: skip
    # Beside "uvloop + httptools" (counting on, the default): the installation check's cost.
    found.append(Variant("uvloop + httptools, installation counting off",
                         env=(("HAL_INSTALLATION_FLUSH_SECONDS", "0"),),
                         routes=("echo", "identify")))  # fmt: skip
    # Beside "uvloop + httptools" (metrics off, the default): the cost of HAL_METRICS=true.
    found.append(Variant("uvloop + httptools, metrics on", env=(("HAL_METRICS", "true"),),
                         routes=("echo", "identify")))  # fmt: skip
    if backend == "postgres":
        found.append(Variant("uvloop + httptools, --workers 2", workers=2,
                             routes=("echo", "identify")))  # fmt: skip
    return found


def chosen(variant: Variant, args: argparse.Namespace) -> bool:
    """--variants picks by words of the label; otherwise a quick run measures only the server
    as `hal serve` runs it (and the baseline commit, if one is given), a full run every one."""
    if args.variants:
        return any(part in variant.label for part in args.variants)
    return not args.quick or variant.label == SERVED or variant.python != sys.executable


def bench_backend(
    backend: str, args: argparse.Namespace, report: Report, workdir: Path,
    baseline_python: str | None,
) -> None:  # fmt: skip
    ready = None
    try:
        for variant in variants(backend, baseline_python, args.baseline):
            if not chosen(variant, args):
                continue
            previous, ready = ready, throughput(backend, variant, args, report, workdir)
            if previous is not None and previous.pg_name:
                pg_admin(f'DROP DATABASE IF EXISTS "{previous.pg_name}" WITH (FORCE)')
        assert ready is not None
        if args.sizes:
            growth(backend, ready, args, report, workdir)
    finally:
        if ready is not None and ready.pg_name:
            pg_admin(f'DROP DATABASE IF EXISTS "{ready.pg_name}" WITH (FORCE)')


def versions() -> list[str]:
    import fastapi
    import sqlalchemy
    import uvicorn

    pg = subprocess.run(["psql", PG_BASE, "-Atc", "show server_version"],
                        capture_output=True, text=True).stdout.strip()  # fmt: skip
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())  # fmt: skip
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[:2]
    return [
        f"Machine: {os.cpu_count()} cores ({cpu}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, uvicorn {uvicorn.__version__}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL {pg}, {' '.join(wrk_version)}",
        "Server: one process (one worker) unless the server column says otherwise; load: wrk "
        "with 2 threads on the same 2 cores, loopback.",
    ]


def render(report: Report, args: argparse.Namespace) -> str:
    lines = ["| backend | server | run | clients | req/s | p50 ms | p99 ms | errors | vs echo "
             "| note |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    echo = {(r.backend, r.server): r.rps for r in report.runs if r.name == "echo"}
    for r in report.runs:
        key = (r.backend, r.server)
        ratio = f"{r.rps / echo[key]:.0%}" if key in echo and "@" not in r.name else ""
        lines.append(
            f"| {r.backend} | {r.server} | {r.name} | {r.connections} | {r.rps:,.0f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {ratio} | {r.note} |"
        )
    lines.append("")
    lines.append(
        "Peak server RSS: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in report.rss_mb.items())
    )
    lines.append("Seeding time (hal seed, cumulative sizes): " + ", ".join(
        f"{k}: {v:.0f} s" for k, v in report.seeding_s.items()))  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.set_defaults(duration=10)
    parser.add_argument("--growth-duration", type=int, default=5)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--streams", type=int, default=1000, help="idle live streams to hold")
    parser.add_argument("--variants", default="", help="only servers whose label has one of "
                        "these comma-separated words (a quick look at one variant)")  # fmt: skip
    args = parse(parser, quick=QUICK)
    args.variants = [v for v in args.variants.split(",") if v]
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    report = Report()
    with tempfile.TemporaryDirectory() as tmp:
        baseline_python = baseline(args.baseline, Path(tmp)) if args.baseline else None
        try:
            for backend in args.backends.split(","):
                bench_backend(backend, args, report, Path(tmp), baseline_python)
        finally:
            if args.baseline:
                drop_baseline(Path(tmp))
    table = render(report, args)
    if args.streams:
        streams = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "streams.py"), "--streams", str(args.streams),
             *(["--quick"] if args.quick else [])],
            stdout=subprocess.PIPE, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        table += (
            "\n\n## Live streams\n\n"
            "| load | changes delivered | commit to client p50 | p99 | server RSS, idle |\n"
            "|---|---|---|---|---|\n" + streams + "\n"
        )
    command = "uv run python bench/run.py " + " ".join(sys.argv[1:])
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = "\n".join([*versions(), "", f"Command: `{command.strip()}`", f"Date: {date}", ""])
    publish("load", header + "\n" + table, args)


if __name__ == "__main__":
    main()
