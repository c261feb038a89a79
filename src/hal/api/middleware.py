"""Pure ASGI middleware: the body size and time limits, NUL characters outside JSON bodies,
and CORS for the public widget routes and the team stream."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from urllib.parse import parse_qsl

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hal.api.deps import api_token_grant
from hal.api.errors import WIDGET_PREFIX, status_for
from hal.db.engine import Database
from hal.domain.errors import Forbidden, InvalidInput, Unauthorized, error_body


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413, and bodies that take longer than
    `timeout_seconds` to arrive with 408, before any route reads them.

    `route_limits` gives routes that take more (batch writes, CSV imports) their own limit, by
    a path pattern whose `app_id` group names the project. Only a request whose bearer token is
    a valid team API token of that project gets it, checked (one short read, by the team API's
    own check) before any byte of the body is read: anyone else is held to `max_bytes`, so a
    caller without a token cannot make the server hold megabytes of body.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        timeout_seconds: float,
        database: Database,
        route_limits: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        self.database = database
        self.route_limits = [(re.compile(pattern), limit) for pattern, limit in route_limits]

    async def _limit(self, scope: Scope, declared: int | None) -> tuple[int, bool]:
        """The route's own limit when it is smaller, or larger and the token is its project's;
        else the common one. True when a larger limit was withheld for want of the token."""
        for pattern, limit in self.route_limits:
            matched = pattern.fullmatch(scope["path"])
            if matched is None:
                continue
            if limit <= self.max_bytes:
                return limit, False
            if declared is not None and declared <= self.max_bytes:
                return self.max_bytes, False  # it fits either way: the route checks the token
            if await self._authorized(matched["app_id"], scope):
                return limit, False
            return self.max_bytes, True
        return self.max_bytes, False

    async def _authorized(self, app_id: str, scope: Scope) -> bool:
        """Whether the request's bearer token is a valid team API token of `app_id`."""
        authorization = _header(scope, b"authorization")
        try:
            await api_token_grant(app_id, self.database, authorization)
        except (Unauthorized, Forbidden):
            return False  # the route answers 401/403 itself if the body fits the common limit
        return True

    async def _too_large(self, send: Send, limit: int, *, withheld: bool = False) -> None:
        message = f"the body is over {limit} bytes"
        if withheld:
            message += "; a larger one needs a valid API token of this project"
        await self._refuse(send, 413, "body_too_large", message)

    async def _refuse(self, send: Send, status: int, code: str, message: str) -> None:
        await _send_error(send, status, code, message, "body", close=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit, withheld = await self._limit(scope, declared)
        if declared is not None and declared > limit:
            await self._too_large(send, limit, withheld=withheld)
            return
        # Read the body up front (it is bounded by the limit) so a body that lies about
        # its length, or has none, is still held to the limit, and one that trickles in is
        # cut off (a slow client holds a connection and a task for as long as it likes).
        timeout = self.timeout_seconds
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while size <= limit:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._refuse(
                send, 408, "request_timeout", f"the body did not arrive within {timeout:g} s"
            )
            return
        if size > limit:
            await self._too_large(send, limit, withheld=withheld)
            return
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replaying(whole, receive), send)


class NulRefusalMiddleware:
    """Refuse a NUL character in a request's path, query string or form (URL-encoded) with 422
    `invalid_string` naming the parameter, as api/body.py refuses one in a JSON body: no
    PostgreSQL text can hold it, and it is nothing a person types. A request with no `%00`
    in its query or form costs a byte search; the body is the one BodyLimitMiddleware read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field = "path" if "\x00" in scope["path"] else _nul_field(scope["query_string"], "query")
        if field is None and scope["method"] not in _NO_BODY and _is_form(scope):
            message = await receive()  # the whole body (BodyLimitMiddleware)
            field = _nul_field(message.get("body", b""), "form")
            receive = _replaying(message, receive)
        if field is None:
            await self.app(scope, receive, send)
            return
        error = InvalidInput("invalid_string", f"{field} contains a NUL character", field=field)
        await _send_error(send, status_for(error), error.code, error.message, field)


_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def _nul_field(encoded: bytes, where: str) -> str | None:
    """The first parameter of a URL-encoded query or form holding a NUL in its value (its
    name), or in its name (`where`)."""
    if b"%00" not in encoded:
        return None
    for name, value in parse_qsl(encoded.decode("utf-8", "replace"), keep_blank_values=True):
        if "\x00" in name:
            return where
        if "\x00" in value:
            return name
    return None


def _is_form(scope: Scope) -> bool:
    content_type = _header(scope, b"content-type") or ""
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _replaying(first: Message, receive: Receive) -> Receive:
    """`receive` again from its first message, already read."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return replay


async def _send_error(
    send: Send, status: int, code: str, message: str, field: str, *, close: bool = False
) -> None:
    """A refusal answered by the middleware itself, in the one error shape."""
    body = json.dumps(error_body(code, message, field)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    """The declared length of the body; None when it is not declared (or not a number)."""
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


TEAM_STREAM = re.compile(r"/api/projects/[^/]+/stream")


class WidgetCORSMiddleware:
    """CORS for `/api/widget/*`, and for the team stream opened by a ticket.

    A preflight cannot say which project it is for (app_id is in the body), so preflights are
    answered for any origin and each actual request is checked against its project's allowed
    origins by the route (403 `origin_not_allowed`, nothing written). Widget calls carry a
    bearer token, never cookies, so no credentials mode is involved.

    The team stream is read by any origin: a browser opens it with a ticket in the URL (an
    EventSource sends neither headers nor, here, cookies), and without a valid ticket or token
    it answers nothing but a 401. Asking for a ticket needs the team token, which stays on the
    customer's server: that route gets no CORS.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
        self.stream_cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "OPTIONS"],
            allow_headers=["Last-Event-ID"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(WIDGET_PREFIX):
            await self.cors(scope, receive, send)
        elif scope["type"] == "http" and TEAM_STREAM.fullmatch(scope["path"]):
            await self.stream_cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


INBOX_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class InboxSecurityHeadersMiddleware:
    """Security headers on every inbox page: no framing, no inline scripts, no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/inbox"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *INBOX_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
