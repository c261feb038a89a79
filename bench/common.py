"""What the benchmark scripts share: the `hal` command line, fresh databases, and replacing a
script's own section of bench/RESULTS.md (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`)
so each script rewrites only its own numbers."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PG_BASE = os.environ.get("HAL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def hal(database_url: str, *args: str, python: str = sys.executable) -> dict:
    """Run a `hal` command and parse its JSON answer."""
    out = subprocess.run(
        [python, "-m", "hal", *args, "--database-url", database_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


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
