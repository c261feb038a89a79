"""CSV import speed and memory: generates a contacts CSV (company columns and metadata),
imports it with `hal import contacts` on SQLite and PostgreSQL, then imports it again (every
row unchanged), and reports rows per second and the importing process's peak RSS.

    uv run python bench/imports.py [--rows 100000] [--backends sqlite,postgres] [--baseline REV]

Replaces its own section of bench/RESULTS.md (between the import markers) and prints it.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

STAGES = ["Lead", "Trial", "Customer"]


def write_csv(path: Path, rows: int, companies: int) -> None:
    """Contacts spread over `companies` companies, three metadata columns."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["user_id", "email", "name", "company_id", "company_name", "stage",
                         "metadata.plan", "metadata.seats", "metadata.region"])  # fmt: skip
        for i in range(rows):
            company = i % companies
            writer.writerow([f"user_{i}", f"user_{i}@example.com", f"User {i}",
                             f"co_{company}", f"Company {company}", STAGES[company % 3],
                             ("free", "pro", "enterprise")[i % 3], str(i % 50),
                             ("eu", "us", "apac")[i % 3]])  # fmt: skip


def timed_import(
    database_url: str, csv_path: Path, python: str
) -> tuple[float, int, dict[str, int]]:
    """Seconds, peak RSS (KiB) of the importing process, and its counts."""
    command = [python, "-m", "hal", "import", "contacts", str(csv_path),
               "--app-id", "bench", "--database-url", database_url]  # fmt: skip
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


def run_backend(
    backend: str,
    csv_path: Path,
    rows: int,
    workdir: Path,
    labels: tuple[str, ...],
    python: str = sys.executable,
    tree: str = "this tree",
) -> list[str]:
    url, pg_name = new_database(backend, workdir)
    try:
        hal(url, "migrate", python=python)
        hal(url, "projects", "create", "--app-id", "bench", "--stages", ",".join(STAGES),
            python=python)  # fmt: skip
        lines = []
        for label in labels:
            seconds, rss_kib, counts = timed_import(url, csv_path, python)
            lines.append(
                f"| {backend} | {tree} | {label} | {rows:,} | {seconds:.1f} | "
                f"{rows / seconds:,.0f} | {rss_kib / 1024:.0f} | {counts['created']:,} / "
                f"{counts['updated']:,} / {counts['unchanged']:,} / {counts['failed']:,} |"
            )
            progress(f"{backend}, {tree}, {label}: {rows / seconds:,.0f} rows/s")
        return lines
    finally:
        drop_database(pg_name)


def render(rows: int, companies: int, lines: list[str]) -> str:
    return "\n".join([
        "## CSV import (`bench/imports.py`)",
        "",
        f"`hal import contacts` of a generated {rows:,}-row file ({companies:,} companies, "
        "name, stage and three metadata columns), then the same file again, and a tenth of it "
        "into an empty database (peak RSS must not grow with the file: it is streamed). Rows "
        "per second include process start; peak RSS is the importing process's own "
        f"(`wait4`). {platform.node()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| backend | tree | run | rows | seconds | rows/s | peak RSS (MiB) | "
        "created / updated / unchanged / failed |",
        "|---|---|---|---:|---:|---:|---:|---|",
        *lines,
    ])  # fmt: skip


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--baseline", default="", help="a commit to measure in the same run")
    args = parse(parser, quick={"rows": 1_000, "companies": 100})
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "contacts.csv"
        write_csv(csv_path, args.rows, args.companies)
        small_path, small = workdir / "tenth.csv", args.rows // 10
        write_csv(small_path, small, args.companies)
        before = baseline(args.baseline, workdir) if args.baseline else None
        full = ("first import", "re-run (unchanged)")
        lines = []
        try:
            for backend in (name.strip() for name in args.backends.split(",")):
                if before is not None:
                    tree = f"before ({args.baseline})"
                    lines += run_backend(backend, csv_path, args.rows, workdir, full, before, tree)
                lines += run_backend(backend, csv_path, args.rows, workdir, full)
                lines += run_backend(backend, small_path, small, workdir, ("first import",))
        finally:
            if before is not None:
                drop_baseline(workdir)
    section = render(args.rows, args.companies, lines)
    publish("imports", section, args)


if __name__ == "__main__":
    main()
