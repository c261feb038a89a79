"""CSV import speed on a realistic CRM export (tests/crm_export.py: the CRM's own headers, a
byte order mark, CRLF, quoted commas, multi-line notes, unicode, unknown columns kept as
metadata, invalid emails), on SQLite and PostgreSQL:

- `hal import contacts` into an empty database, then the same file again (every row
  unchanged): rows per second with process start, and the importing process's peak RSS;
- the file uploaded to `hal serve` (a job), into an empty database, without and then with one
  webhook endpoint subscribed to every change on a receiver on 127.0.0.1 that accepts at once:
  the job's own rows per second (its started_at to finished_at), the webhooks delivered while
  it ran, and how long the rest took.

    uv run python bench/imports.py [--rows 51051] [--companies 5105] [--drain 600]
        [--backends sqlite,postgres] [--baseline REV] [--quick] [--out FILE]

`--quick` runs 2,000 rows (a check that the script works, not a measurement). `--baseline REV`
also runs `hal import` of an older tree in the same run, on the file with HAL's own column
names (an older tree refuses the CRM's). Replaces its own section of bench/RESULTS.md (between
the import markers; a quick run's goes to bench/out/RESULTS-quick.md) and prints it.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    baseline,
    bench_parser,
    drop_baseline,
    drop_database,
    hal,
    new_database,
    parse,
    progress,
    publish,
)
from tests.crm_export import STAGES, write_export  # noqa: E402
from tests.servers import Server  # noqa: E402

SERVER_ENV = {"HAL_WEBHOOKS_ALLOW_PRIVATE": "true", "HAL_LOG_FORMAT": "text"}


def timed_import(
    database_url: str, csv_path: Path, python: str, *extra: str
) -> tuple[float, int, dict[str, int]]:
    """Seconds, peak RSS (KiB) of the importing process, and its counts."""
    command = [python, "-m", "hal", "import", "contacts", str(csv_path),
               "--app-id", "bench", "--database-url", database_url, *extra]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"import failed: {process.stderr.read().decode() if process.stderr else ''}"
        )
    process.returncode = 0
    return elapsed, usage.ru_maxrss, json.loads(output.decode().strip().splitlines()[-1])


def counted(counts: dict[str, int]) -> str:
    return (f"{counts['created']:,} / {counts['updated']:,} / {counts['unchanged']:,} / "
            f"{counts['failed']:,}")  # fmt: skip


def fresh_project(backend: str, workdir: Path, python: str) -> tuple[str, str | None]:
    url, pg_name = new_database(backend, workdir)
    hal(url, "migrate", python=python)
    hal(url, "projects", "create", "--app-id", "bench", "--stages", ",".join(STAGES),
        python=python)  # fmt: skip
    return url, pg_name


def command_runs(
    backend: str, csv_path: Path, rows: int, workdir: Path, python: str, tree: str,
    *extra: str,
) -> list[str]:  # fmt: skip
    url, pg_name = fresh_project(backend, workdir, python)
    lines = []
    try:
        for label in ("`hal import`, first", "`hal import`, again (unchanged)"):
            seconds, rss_kib, counts = timed_import(url, csv_path, python, *extra)
            lines.append(
                f"| {backend} | {tree} | {label} | {rows:,} | {seconds:.1f} | "
                f"{rows / seconds:,.0f} | {rss_kib / 1024:.0f} MiB peak RSS | {counted(counts)} |"
            )
            progress(f"{backend}, {tree}, {label}: {rows / seconds:,.0f} rows/s")
        return lines
    finally:
        drop_database(pg_name)


class _Accept(BaseHTTPRequestHandler):
    """A webhook receiver that accepts every delivery at once, counting them."""

    delivered = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()
        with _Accept.lock:
            _Accept.delivered += 1

    def log_message(self, *args: object) -> None:
        pass


def _moment(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _changes(url: str) -> int:
    from sqlalchemy import func, select

    from hal.db.engine import Database
    from hal.db.models import Change

    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return int((await session.execute(select(func.count(Change.seq)))).scalar_one())
    finally:
        await database.dispose()


def upload_run(
    backend: str, csv_path: Path, rows: int, workdir: Path, *, webhook: bool, drain: float
) -> str:
    """Upload the file to `hal serve` and follow the job; with `webhook`, one endpoint
    subscribed to everything on a local receiver."""
    url, pg_name = fresh_project(backend, workdir, sys.executable)
    token = hal(url, "tokens", "create", "--app-id", "bench")["token"]
    sink = None
    if webhook:
        sink = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        _Accept.delivered = 0
        subprocess.run(
            [sys.executable, "-m", "hal", "webhooks", "create", "--app-id", "bench", "--url",
             f"http://127.0.0.1:{sink.server_address[1]}/hooks", "--database-url", url],
            check=True, capture_output=True, env={**os.environ, **SERVER_ENV},
        )  # fmt: skip
    server = Server(url, env=SERVER_ENV, log=workdir / f"server-{backend}.log").start()
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
        with httpx.Client(base_url=server.url, timeout=120) as http:
            answer = http.post("/api/projects/bench/imports", headers=headers,
                               params={"kind": "contacts", "keep_unknown_columns": "true"},
                               content=csv_path.read_bytes())  # fmt: skip
            answer.raise_for_status()
            while (job := http.get(answer.headers["location"], headers=headers).json())[
                "status"
            ] not in {"done", "failed"}:
                time.sleep(0.2)
        ended = time.monotonic()
        seconds = _moment(job["finished_at"]) - _moment(job["started_at"])
        label = "upload (job), one webhook endpoint" if webhook else "upload (job)"
        note = f"{counted(job)}"
        if webhook:
            during = _Accept.delivered
            total = asyncio.run(_changes(url))
            while _Accept.delivered < total and time.monotonic() - ended < drain:
                time.sleep(0.5)
            after = time.monotonic() - ended
            if _Accept.delivered >= total:
                rest = f"the other {total - during:,} in {after:.0f} s after it"
            else:
                rest = f"{total - _Accept.delivered:,} still queued {drain:.0f} s after it"
            note += f"; webhooks: {during:,} of {total:,} delivered during the import, {rest}"
        line = (f"| {backend} | this tree | {label} | {rows:,} | {seconds:.1f} | "
                f"{rows / seconds:,.0f} | | {note} |")  # fmt: skip
        progress(f"{backend}, {label}: {rows / seconds:,.0f} rows/s")
        return line
    finally:
        server.stop()
        if sink is not None:
            sink.shutdown()
        drop_database(pg_name)


def render(rows: int, companies: int, multi_line: int, lines: list[str]) -> str:
    return "\n".join([
        "## CSV import (`bench/imports.py`)",
        "",
        f"A generated {rows:,}-row CRM export (tests/crm_export.py: the CRM's own headers, "
        f"{companies:,} companies, {multi_line:,} multi-line notes, quoted commas, unicode, "
        "about 1% invalid emails, seven columns kept as metadata with "
        "`--keep-unknown-columns`). `hal import` rates include process start; an upload's "
        "rate is its job's own (started_at to finished_at, in the server). "
        f"{platform.node()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| backend | tree | run | rows | seconds | rows/s | memory | created / updated / "
        "unchanged / failed |",
        "|---|---|---|---:|---:|---:|---|---|",
        *lines,
    ])  # fmt: skip


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=51_051)
    parser.add_argument("--companies", type=int, default=None, help="default: a tenth of rows")
    parser.add_argument("--drain", type=float, default=600,
                        help="seconds to wait for the webhooks after an import")  # fmt: skip
    args = parse(parser, quick={"rows": 2_000, "drain": 60})
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        export, named = workdir / "export.csv", workdir / "export-hal-names.csv"
        shape = write_export(export, args.rows, companies=args.companies)
        write_export(named, args.rows, companies=args.companies, canonical=True)
        before = baseline(args.baseline, workdir) if args.baseline else None
        lines = []
        try:
            for backend in (name.strip() for name in args.backends.split(",")):
                if before is not None:
                    lines += command_runs(backend, named, args.rows, workdir, before,
                                          f"before ({args.baseline})")  # fmt: skip
                lines += command_runs(backend, export, args.rows, workdir, sys.executable,
                                      "this tree", "--keep-unknown-columns")  # fmt: skip
                for webhook in (False, True):
                    lines.append(upload_run(backend, export, args.rows, workdir,
                                            webhook=webhook, drain=args.drain))  # fmt: skip
        finally:
            if before is not None:
                drop_baseline(workdir)
    multi_line = sum(1 for i in range(args.rows) if shape.multi_line(i))
    publish("imports", render(args.rows, shape.companies, multi_line, lines), args)


if __name__ == "__main__":
    main()
