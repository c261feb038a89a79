"""The shell examples of README.md and docs/*.md run as written, in document order, in one
bash session against a real `hal serve --demo` (README "Shell examples in the docs").

A block fenced as ```sh runs; one fenced as ```sh norun is shown, never run (`make run`
itself, a production host, a command that never ends). Any other shell info string (`bash`,
`console`, `shell`, ...) is refused, so no example escapes the check unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_or_skip
from tests.servers import Server

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN, NOT_RUN = "sh", "sh norun"
OTHER_SHELLS = {"bash", "console", "shell", "shell-session", "zsh", "terminal"}
FENCE = re.compile(r"^ *```(?P<info>.*)$")
# Where the docs say `make run` serves.
DOCS_ADDRESS = "http://127.0.0.1:8000"
# Every block together, with room for a slow shared machine (under a minute here).
SESSION_SECONDS = 300


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its info string, dedented."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{path.name}:{index + 1}: a fence that never closes"
        text = textwrap.dedent("\n".join(lines[index + 1 : end]))
        blocks.append(Block(path, index + 1, opening["info"].strip(), text))
        index = end + 1
    return blocks


def doc_blocks() -> list[Block]:
    return [block for path in DOCUMENTS for block in fenced_blocks(path)]


def test_every_shell_block_is_fenced_as_sh_or_sh_norun():
    """One convention: a reader (and the test below) can tell at the fence what runs."""
    wrong = [
        f"{block.where}: ```{block.info}"
        for block in doc_blocks()
        if block.info.split(" ", 1)[0] in OTHER_SHELLS
        or (block.info.startswith("sh") and block.info not in {RUN, NOT_RUN})
    ]
    assert not wrong, "fence shell examples as ```sh (runs) or ```sh norun:\n" + "\n".join(wrong)


def banner_curl(log: Path) -> str:
    """The identify `hal serve --demo` prints for the reader to paste first."""
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("curl "):
            return line.strip()
    raise AssertionError(f"`hal serve --demo` printed no curl:\n{log.read_text()}")


def session_script(blocks: list[Block], url: str, first: str, done: Path) -> str:
    """One bash script: the banner's curl, then every block, each noting in `done` that it
    finished."""
    parts = [
        "set -euo pipefail",
        "shopt -s inherit_errexit",  # a failure inside $(...) fails the block too
        # A 4xx or 5xx answer fails the block (curl prints the error body, then exits 22):
        # the examples show successful calls, so an error answer is a broken example.
        'curl() { command curl --fail-with-body --show-error "$@"; }',
        first,
    ]
    for number, block in enumerate(blocks):
        # The docs say http://127.0.0.1:8000, where `make run` serves; this server listens on
        # a free port, as after `make run PORT=...`, so the address is the one thing rewritten.
        parts.append(f"printf '\\n>>> %s\\n' '{block.where}'")
        parts.append(block.text.replace(DOCS_ADDRESS, url))
        parts.append(f"echo {number} >> '{done}'")
    return "\n".join(parts) + "\n"


@pytest.mark.server
def test_the_docs_shell_examples_run_in_order_against_a_demo_server(tmp_path):
    if shutil.which("curl") is None:
        require_or_skip("curl is not installed (the shell examples use it)")
    blocks = [block for block in doc_blocks() if block.info == RUN]
    assert blocks, "no runnable shell block found"
    database_url = f"sqlite:///{tmp_path / 'hal.db'}"
    # The reader's second terminal: `.venv` active (this checkout's `hal` and `python3`), on
    # the database `make run` serves, with none of the caller's own HAL_* settings.
    env = {key: value for key, value in os.environ.items() if not key.startswith("HAL_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HAL_DATABASE_URL"] = database_url
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "hal", "serve", "--demo", "--host", "127.0.0.1",
               "--port", "{port}", "--database-url", database_url]  # fmt: skip
    server = Server(database_url, command=command, log=log, env=env).start()
    done = tmp_path / "done"
    script = session_script(blocks, server.url, banner_curl(log), done)
    try:
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=SESSION_SECONDS,
        )
        stdout, stderr, status = result.stdout, result.stderr, f"exit {result.returncode}"
    except subprocess.TimeoutExpired as exc:
        stdout, stderr = _text(exc.stdout), _text(exc.stderr)
        status = f"timed out after {SESSION_SECONDS} s"
    finally:
        server.stop()
    finished = done.read_text().split() if done.exists() else []
    if len(finished) < len(blocks):
        failed = blocks[len(finished)]
        pytest.fail(
            f"the example at {failed.where} failed ({status}):\n{failed.text}\n"
            f"--- output (the end) ---\n{stdout[-3000:]}\n--- stderr (the end) ---\n"
            f"{stderr[-3000:]}"
        )
    assert finished == [str(number) for number in range(len(blocks))], finished
    assert status == "exit 0", stderr[-3000:]


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
