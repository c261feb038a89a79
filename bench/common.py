"""What the benchmark scripts share: their command line (one set of flags `make bench` hands to
every script), the `hal` command line, fresh databases, and replacing a script's own section of
bench/RESULTS.md (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`) so each script
rewrites only its own numbers."""

from __future__ import annotations

import argparse
import ast
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
# Quick figures never replace the full ones: bench/out/ is not committed.
QUICK_RESULTS = BENCH / "out" / "RESULTS-quick.md"
QUICK_NOTE = (
    "> Quick mode (`--quick`): small sizes and short runs, to check that the benchmark works "
    "end to end; not figures to compare with a full run.\n\n"
)
PG_BASE = os.environ.get("HAL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def bench_parser(description: str) -> argparse.ArgumentParser:
    """The flags every benchmark script takes; the script adds its own. A script may restate a
    common flag (its own help or default): the later definition wins."""
    parser = argparse.ArgumentParser(
        description=description, allow_abbrev=False, conflict_handler="resolve"
    )
    common = parser.add_argument_group("flags every bench script takes (some ignore a few)")
    common.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    common.add_argument("--duration", type=int, default=None,
                        help="seconds of each timed load run (bench/run.py)")  # fmt: skip
    common.add_argument("--quick", action="store_true",
                        help="small sizes and short runs; written to "
                        "bench/out/RESULTS-quick.md unless --out is given")  # fmt: skip
    common.add_argument("--out", default=None,
                        help="the results file whose section is rewritten "
                        "(default bench/RESULTS.md)")  # fmt: skip
    common.add_argument("--baseline", default="", metavar="REV", help="a commit to measure "
                        "beside this tree (bench/run.py, bench/imports.py)")  # fmt: skip
    return parser


def parse(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    *,
    quick: Mapping[str, Any] | None = None,
) -> argparse.Namespace:
    """The script's arguments. With --quick, `quick` replaces the defaults it names (a flag
    given still wins). `make bench` hands the same flags to every script, so a flag of another
    bench script is accepted and ignored with its value; a flag no bench script has is an
    error."""
    first, _ = parser.parse_known_args(argv)
    if first.quick and quick:
        parser.set_defaults(**quick)
    args, rest = parser.parse_known_args(argv)
    everyone, takes_value = bench_flags(), False
    for token in rest:
        if token.startswith("--") and token.split("=", 1)[0] in everyone:
            takes_value = "=" not in token
        elif takes_value:
            takes_value = False
        else:
            parser.error(f"unrecognized argument: {token} (no bench script has it)")
    return args


def bench_flags() -> set[str]:
    """Every flag a script in bench/ defines, read from their source: importing the scripts
    would import the app and their other dependencies."""
    found: set[str] = set()
    for script in BENCH.glob("*.py"):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                names = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
                found.update(name for name in names if isinstance(name, str) and name[:2] == "--")
    return found


def results_path(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    return QUICK_RESULTS if args.quick else RESULTS


def publish(name: str, text: str, args: argparse.Namespace, *, write: bool = True) -> None:
    """Print the script's section (the only thing it prints to stdout) and, with `write`,
    put it in the results file; a quick run's section says so."""
    text = (QUICK_NOTE if args.quick else "") + text.strip()
    if write:
        path = results_path(args)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_section(name, text, path)
    print(text, end="\n\n", flush=True)


def progress(message: str) -> None:
    """One line on stderr for a finished step, named after the script."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr, flush=True)


def hal(database_url: str, *args: str, python: str = sys.executable) -> dict[str, Any]:
    """Run a `hal` command and parse its JSON answer."""
    out = subprocess.run(
        [python, "-m", "hal", *args, "--database-url", database_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


def pg_admin(sql: str) -> None:
    subprocess.run(
        ["psql", PG_BASE.replace("postgresql+asyncpg", "postgresql"), "-qc", sql],
        check=True, capture_output=True,
    )  # fmt: skip


def new_database(backend: str, workdir: Path) -> tuple[str, str | None]:
    """A fresh, empty database: its URL, and its PostgreSQL name (to drop) or None."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'bench-{secrets.token_hex(4)}.db'}", None
    name = f"hal_bench_{secrets.token_hex(4)}"
    pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_BASE.rsplit("/", 1)[0]
    return f"{base}/{name}", name


def drop_database(pg_name: str | None) -> None:
    if pg_name is not None:
        pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def replace_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Put `text` between the section's markers, or append it with them."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{text.strip()}\n{end}"
    current = path.read_text() if path.exists() else ""
    if begin in current and end in current:
        before, rest = current.split(begin, 1)
        current = before + section + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + ("\n\n" if current else "") + section + "\n"
    path.write_text(current)


def _uv() -> list[str]:
    """uv as `uv run` names it, else on the PATH, else the module of the Python that runs us."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def baseline(ref: str, workdir: Path) -> str:
    """Check out `ref` beside this tree with its own virtualenv (bytecode compiled, as `make
    install` does); returns its Python."""
    tree, venv = workdir / "baseline", workdir / "baseline-venv"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([*_uv(), "sync", "--frozen", "--no-dev", "--quiet", "--compile-bytecode"],
                   cwd=tree, check=True,
                   env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)})  # fmt: skip
    return str(venv / "bin" / "python")


def drop_baseline(workdir: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                    str(workdir / "baseline")], capture_output=True)  # fmt: skip
