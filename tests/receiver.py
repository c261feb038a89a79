"""A real webhook receiver on a loopback port (http.server in a thread), for delivery tests.

It keeps every request it gets and answers what the test tells it to: a fixed status, a
script of statuses for the first requests of each message, or a hold until released.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    def verify(self, secret: str) -> dict[str, Any]:
        """What a receiver does with the standardwebhooks library, as it comes."""
        return Webhook(secret).verify(self.body, self.headers)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # status for a request: given the request and how many times its webhook-id came before
    answer: Callable[[Received, int], int | tuple[int, dict[str, str]]] = lambda *_: 200
    release: threading.Event = field(default_factory=threading.Event)
    hold: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> Counter[str]:
        with self.lock:
            return Counter(request.webhook_id for request in self.requests)

    def of_type(self, change_type: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.document["type"] == change_type]

    async def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        """Wait until `count` requests have arrived; fail with what did otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.requests)} requests arrived, expected {count}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            received = Received(
                {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
            )
            with receiver.lock:
                seen = sum(r.webhook_id == received.webhook_id for r in receiver.requests)
                receiver.requests.append(received)
            if receiver.hold:
                receiver.release.wait(30)
            answer = receiver.answer(received, seen)
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: workers open many connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client closing its keep-alive connection is not news


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 and a free port, stopped afterwards."""
    receiver = Receiver(url="")
    server = _Server(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join()
