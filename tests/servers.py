"""Run a real `hal serve` process for tests that need real HTTP and a real process."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

# Ports handed to servers started later, by another process or task: below the kernel's
# ephemeral range (32768-60999), which outgoing connections draw from meanwhile, and from a
# range of this test worker's own (pytest-xdist's PYTEST_XDIST_WORKER, gw0, gw1...), which
# no other worker draws from.
PORTS_PER_WORKER = 2000
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0")
_handed_out = itertools.count()


def free_port() -> int:
    """A loopback port free now, not handed out by this process lately."""
    first = 20000 + PORTS_PER_WORKER * (_WORKER % 5)
    for _ in range(PORTS_PER_WORKER):
        port = first + next(_handed_out) % PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or a connection of its last server still lingers
            return port
    raise RuntimeError("no free port in this worker's range")


class Server:
    """One `hal serve` process on a loopback port."""

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 1,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        python: str = sys.executable,
        command: list[str] | None = None,
        log_level: str = "warning",
    ) -> None:
        """`command` replaces `hal serve` (benchmarks run other servers); `{port}` in it is
        replaced by the port."""
        self.database_url, self.workers, self.log = database_url, workers, log
        self.python, self.custom_command, self.log_level = python, command, log_level
        self.env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def start(self) -> Server:
        command = [
            self.python, "-m", "hal", "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--database-url", self.database_url, "--workers", str(self.workers),
            "--log-level", self.log_level,
        ]  # fmt: skip
        if self.custom_command is not None:
            command = [part.replace("{port}", str(self.port)) for part in self.custom_command]
        self._output = open(self.log, "ab") if self.log else None  # noqa: SIM115
        output = self._output or subprocess.DEVNULL
        self.process = subprocess.Popen(
            command,
            stdout=output,
            stderr=output,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"hal serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("hal serve did not answer within 30 s")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no flushing, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._close_log()


@contextmanager
def running_server(
    database_url: str,
    *,
    workers: int = 1,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """Start `hal serve` on a free loopback port; yield its base URL; stop it."""
    server = Server(
        database_url, workers=workers, log=log, env=env, port=port, log_level=log_level
    ).start()
    try:
        yield server.url
    finally:
        server.stop()


class Worker:
    """One `hal worker` process (webhook delivery, no HTTP)."""

    def __init__(
        self, database_url: str, *, log: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.database_url, self.log, self.env = database_url, log, env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def start(self) -> Worker:
        command = [sys.executable, "-m", "hal", "worker", "--database-url", self.database_url]
        self._output = open(self.log, "ab") if self.log else None  # noqa: SIM115
        output = self._output or subprocess.DEVNULL
        self.process = subprocess.Popen(
            command,
            stdout=output,
            stderr=output,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        return self

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; the exit code."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._output is not None:
            self._output.close()
            self._output = None
        return self.process.returncode if self.process else None
