"""`hal serve` as it runs in production: uvloop and httptools, slow clients cut off with 408
(headers by hal.server's protocol, bodies by BodyLimitMiddleware), proxy headers believed only
from trusted proxies. Raw sockets against a real server process on SQLite."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, running_server

pytestmark = pytest.mark.server

SOCKET_TIMEOUT = 20  # generous: a server that never cuts the client off fails, not hangs
TRICKLE_INTERVAL = 0.3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[Server]:
    database = tmp_path_factory.mktemp("slow-clients") / "hal.db"
    env = {"HAL_HEADER_TIMEOUT_SECONDS": "1", "HAL_BODY_TIMEOUT_SECONDS": "1"}
    started = Server(
        f"sqlite:///{database}", env=env, log=artifacts_dir / "server-slow-clients.log"
    ).start()
    try:
        yield started
    finally:
        started.stop()


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; socket.timeout if it never does."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _trickle(sock: socket.socket, slow: bytes, rest: bytes) -> bytes:
    """Send `slow` one byte every 0.3 s (6 s for 20 bytes: well past the 1 s timeouts the
    server is given, well within the 10 s defaults), stopping as soon as the server answers;
    then the `rest` of the request at once. Return all the server sends before closing.

    A server that ignores its timeout settings gets the whole request and answers it
    normally, so the test fails on the status instead of on a duration."""
    for byte in slow:
        answered, _, _ = select.select([sock], [], [], TRICKLE_INTERVAL)
        if answered:
            break
        sock.sendall(bytes([byte]))
    else:
        sock.sendall(rest)
    return _read_until_closed(sock)


def _parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


def _get(sock: socket.socket, path: str) -> tuple[int, bytes]:
    """One keep-alive GET on an open connection; the answer has a content-length."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(65536)
    status, headers, body = _parse(response)
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status, body


def test_headers_sent_too_slowly_get_408_and_the_connection_closed(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /api/widget/identify HTTP/1.1\r\nHost: x\r\n")
        response = _trickle(
            sock,
            slow=b"X-Slow: " + b"a" * 12,
            rest=b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        )

    status, headers, body = _parse(response)
    assert status == 408
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert error["field"] == "headers"


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with _connect(server) as sock:
        assert _read_until_closed(sock) == b""


def test_a_body_sent_too_slowly_gets_408_json_and_the_connection_closed(server: Server) -> None:
    body = b"{" + b" " * 98 + b"}"
    with _connect(server) as sock:
        sock.sendall(
            b"POST /api/widget/identify HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        response = _trickle(sock, slow=body[:20], rest=body[20:])

    status, headers, answer = _parse(response)
    assert status == 408
    assert headers["connection"] == "close"
    error = json.loads(answer)["error"]
    assert error["code"] == "request_timeout"
    assert error["field"] == "body"
    assert error["message"]


def test_prompt_requests_still_answer_and_idle_keep_alive_outlives_the_header_timeout(
    server: Server,
) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    # A prompt body passes the body deadline and reaches the route (which refuses it).
    refused = httpx.post(f"{server.url}/api/widget/identify", json={"app_id": "nope"})
    assert refused.status_code == 422

    with _connect(server) as sock:
        assert _get(sock, "/healthz") == (200, b'{"status":"ok"}')
        # Idle between requests for longer than the header timeout (1 s) and less than
        # uvicorn's keep-alive timeout (5 s): the same connection still serves.
        time.sleep(1.5)
        assert _get(sock, "/healthz") == (200, b'{"status":"ok"}')


def test_the_server_process_runs_uvloop_and_httptools(server: Server) -> None:
    assert server.process is not None
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert "/uvloop/loop." in maps
    assert "/httptools/parser/" in maps


def _scheme_seen_by_the_app(url: str) -> str:
    """A trailing-slash redirect is built from the scheme the app sees."""
    answer = httpx.get(
        f"{url}/healthz/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    )
    assert answer.status_code == 307
    return answer.headers["location"].split("://")[0]


def test_proxy_headers_are_ignored_unless_the_peer_is_a_trusted_proxy(
    server: Server, tmp_path: Path
) -> None:
    assert _scheme_seen_by_the_app(server.url) == "http"
    with running_server(
        f"sqlite:///{tmp_path / 'proxy.db'}", env={"HAL_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    ) as trusting:
        assert _scheme_seen_by_the_app(trusting) == "https"
