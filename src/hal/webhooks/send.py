"""One webhook attempt: the message signed per Standard Webhooks, sent to the checked address,
and timed; what the receiver answered, or why there was no answer."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from hal import __version__
from hal.db.types import utcnow
from hal.domain.errors import InvalidInput
from hal.webhooks.rules import parse_retry_after, webhook_id
from hal.webhooks.targets import Target, resolve_target

log = logging.getLogger("hal.webhooks")

USER_AGENT = f"HAL-Webhooks/{__version__}"


@dataclass(frozen=True)
class Claimed:
    """A message this process may send until `lease`, with what signing it needs."""

    message_id: int
    endpoint_id: int
    payload: dict[str, Any]
    attempts: int
    lease: datetime
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(message: Claimed, msg_id: str, when: datetime, body: str) -> str:
    """`v1,<base64>` by the endpoint's secret, and by the previous one during a rotation."""
    signatures = [Webhook(message.secret).sign(msg_id, when, body)]
    expires = message.previous_secret_expires_at
    if message.previous_secret and expires is not None and expires > when:
        signatures.append(Webhook(message.previous_secret).sign(msg_id, when, body))
    return " ".join(signatures)


def build_request(
    client: httpx.AsyncClient, message: Claimed, target: Target, when: datetime
) -> httpx.Request:
    """The signed POST; to the checked address when there is one (Host and TLS name kept)."""
    body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)
    msg_id = webhook_id(message.message_id)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature(message, msg_id, when, body),
    }
    url = httpx.URL(target.url)
    extensions: dict[str, Any] = {}
    if target.address is not None:
        headers["host"] = url.netloc.decode("ascii")
        extensions["sni_hostname"] = target.host
        url = url.copy_with(host=target.address)
    return client.build_request(
        "POST", url, content=body.encode(), headers=headers, extensions=extensions
    )


class Clients:
    """HTTP clients per receiver host: connections are reused, and one made (with TLS) for
    one host name is never reused for another name on the same address."""

    def __init__(self, timeout: float, size: int = 64) -> None:
        self.timeout, self.size = timeout, size
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def for_host(self, host: str) -> httpx.AsyncClient:
        client = self._clients.pop(host, None) or httpx.AsyncClient(
            timeout=self.timeout, trust_env=False, follow_redirects=False
        )
        self._clients[host] = client
        if len(self._clients) > self.size:
            _, oldest = self._clients.popitem(last=False)
            task = asyncio.create_task(self._close_later(oldest))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return client

    async def _close_later(self, client: httpx.AsyncClient) -> None:
        await asyncio.sleep(self.timeout * 2)  # let its requests in flight finish
        await client.aclose()

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        while self._clients:
            await self._clients.popitem()[1].aclose()


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:255]


async def send(
    clients: Clients, message: Claimed, *, allow_private: bool, limit_seconds: float
) -> Outcome:
    """One attempt, bounded by `limit_seconds` from the address check to the answer's
    headers."""
    started_at = utcnow()
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    try:
        async with asyncio.timeout(limit_seconds):
            target = await resolve_target(message.url, allow_private=allow_private)
            client = clients.for_host(target.host)
            request = build_request(client, message, target, utcnow())
            response = await client.send(request, stream=True)
            await response.aclose()  # the answer's body is never read
        status_code = response.status_code
        if status_code in {429, 503}:
            retry_after = parse_retry_after(response.headers.get("retry-after"), started_at)
    except InvalidInput as exc:
        error = exc.message[:255]
    except (TimeoutError, httpx.TimeoutException):
        error = f"no answer within {limit_seconds:g} s"
    except (httpx.HTTPError, OSError) as exc:
        error = _error_text(exc)
    except Exception as exc:  # any other failure is still an attempt, recorded and retried
        log.warning(
            "webhook delivery: msg_%s failed unexpectedly", message.message_id, exc_info=True
        )
        error = _error_text(exc)
    duration_ms = int((time.monotonic() - started) * 1000)
    return Outcome(started_at, status_code, error, duration_ms, retry_after)
