"""The live streams (README "Change log and live stream"): `GET /api/projects/{app_id}/stream`, one
SSE event per change, replay after Last-Event-ID, `resync` when the id is older than what is
kept; the widget's `GET /api/widget/stream` the same way for one visitor.

A stream lives only as long as the credential that opened it: whoever authorized it hands over
a check of that credential, asked again at least every `CHECK_SECONDS` and before anything is
sent once a check is due; when it fails the stream sends nothing more and ends. Each stream also
holds a slot of its process, its client address and its visitor (services/change_feed.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from hal.api.deps import (
    AdminTokenHeader,
    DatabaseDep,
    StreamTicketQuery,
    TeamAuth,
    TeamAuthDep,
    TeamProjectDep,
    TeamTokenHeader,
    WidgetSessionHeader,
    api_token_grant,
    widget_of,
)
from hal.api.errors import ErrorBody, error_response, error_responses
from hal.config import Settings
from hal.db.engine import Database
from hal.domain.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from hal.schemas import StreamTicketOut
from hal.services.change_feed import (
    RETRY_AFTER_SECONDS,
    ChangeFeed,
    ChangeView,
    Concerning,
    StreamCaps,
    StreamsFull,
    StreamSlot,
    replay,
    replay_start,
)
from hal.services.projects import project_for_api_token_id
from hal.services.stream_tickets import (
    TICKET_LIFETIME,
    issue_stream_ticket,
    redeem_stream_ticket,
)
from hal.services.widget_messages import open_visitor_stream

log = logging.getLogger("hal.stream")

router = APIRouter(prefix="/api/projects/{app_id}", tags=["stream"])

MAX_ID = 2**63 - 1
KEEP_ALIVE_SECONDS = 15
CHECK_SECONDS = 2.0  # a credential that ends closes its streams within this (and a read)

StillAuthorized = Callable[[], Awaitable[bool]]
Carries = Callable[[ChangeView], Awaitable[bool]]

_CHANGE_ID = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes "²"


def _event(change: ChangeView) -> ServerSentEvent:
    document = {"id": change.id, "type": change.type, "timestamp": change.timestamp,
                "data": change.data}  # fmt: skip
    return ServerSentEvent(data=json.dumps(document), event=change.type, id=str(change.id))


def last_event_id_of(header: str | None, query: str | None) -> int | None:
    """The change id a client resumes after: `?last_event_id=`, else the Last-Event-ID header
    (absent or empty: none). Anything but a plain ASCII number the database can hold
    (0..2**63-1) is refused with 422 naming where it came from."""
    value, field = (query, "last_event_id") if query else (header, "Last-Event-ID")
    if not value:
        return None
    if _CHANGE_ID.fullmatch(value) is None or int(value) > MAX_ID:
        raise InvalidInput(
            "invalid_last_event_id",
            f"{field} must be a change id: a number from 0 to {MAX_ID}",
            field=field,
        )
    return int(value)


class CredentialCheck:
    """Asks whether a stream's credential still holds, at most every `every` seconds (it was
    checked when the stream opened). A check that cannot be made counts as failed: the client
    reconnects and is authorized again."""

    def __init__(self, still_authorized: StillAuthorized, every: float = CHECK_SECONDS) -> None:
        self._ask, self.every = still_authorized, every
        self._clock = asyncio.get_running_loop().time
        self._due = self._clock() + every

    def seconds_left(self) -> float:
        """Until the next check is due."""
        return max(0.0, self._due - self._clock())

    async def holds(self) -> bool:
        if self._clock() < self._due:
            return True
        try:
            held = await self._ask()
        except Exception:
            log.warning("a stream's credential could not be checked; ending it", exc_info=True)
            return False
        self._due = self._clock() + self.every
        return held


class _SlotHoldingStream(EventSourceResponse):
    """An SSE response that gives its stream slot back however it ends."""

    def __init__(self, content: AsyncIterator[ServerSentEvent], slot: StreamSlot) -> None:
        super().__init__(content, ping=KEEP_ALIVE_SECONDS)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


def _events(
    db: Database,
    feed: ChangeFeed,
    project_id: int,
    after: int | None,
    still_authorized: StillAuthorized,
    carries: Carries | None,
    concerning: Concerning | None,
) -> AsyncIterator[ServerSentEvent]:
    """Replay after `after`, then live changes; only those `carries` accepts, and only while
    the credential holds."""

    async def wanted(change: ChangeView) -> bool:
        return carries is None or await carries(change)

    async def events() -> AsyncIterator[ServerSentEvent]:
        credential = CredentialCheck(still_authorized)
        async with feed.subscribe(project_id) as subscription:
            last = subscription.cursor
            if after is not None:
                if await db.run(partial(replay_start, project_id=project_id, after=after)):
                    yield ServerSentEvent(data=json.dumps({"last_event_id": after}), event="resync")
                missed = replay(
                    db,
                    project_id=project_id,
                    after=after,
                    up_to=subscription.cursor,
                    concerning=concerning,
                )
                async with contextlib.aclosing(missed):
                    async for change in missed:
                        if not await credential.holds():
                            return
                        if await wanted(change):
                            yield _event(change)
                last = max(after, subscription.cursor)
            while True:
                try:
                    live = await asyncio.wait_for(
                        subscription.queue.get(), credential.seconds_left()
                    )
                except TimeoutError:
                    if not await credential.holds():
                        return
                    continue
                if live is None:  # this client fell too far behind: it reconnects and replays
                    return
                if live.id > last:
                    if not await credential.holds():
                        return
                    if await wanted(live):
                        yield _event(live)
                    last = live.id

    return events()


def open_stream(
    request: Request,
    *,
    db: Database,
    project_id: int,
    after: int | None,
    still_authorized: StillAuthorized,
    visitor_id: str | None = None,
    carries: Carries | None = None,
    concerning: Concerning | None = None,
) -> Response:
    """A stream of the project's changes for an authorized caller, once its process, client
    address and visitor have a slot for it (429 past the client's or visitor's cap, 503 past
    the process's)."""
    settings: Settings = request.app.state.settings
    feed: ChangeFeed = request.app.state.change_feed
    caps = StreamCaps(
        per_process=settings.streams_per_process,
        per_client=settings.streams_per_client,
        per_visitor=settings.streams_per_visitor,
    )
    client = request.client.host if request.client else "unknown"
    visitor = (project_id, visitor_id) if visitor_id is not None else None
    try:
        slot = feed.slots.take(caps=caps, client=client, visitor=visitor)
    except StreamsFull:
        return error_response(
            503,
            "streams_full",
            "this server holds as many live streams as it may; retry later",
            None,
            None,
            **{"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    events = _events(db, feed, project_id, after, still_authorized, carries, concerning)
    return _SlotHoldingStream(events, slot)


LastEventIdHeader = Annotated[str | None, Header(alias="Last-Event-ID")]
LastEventIdQuery = Annotated[
    str | None,
    Query(description="The change id to resume after, taken before the Last-Event-ID header"),
]
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}},
    503: {"model": ErrorBody, "description": "This server holds all the streams it may"},
}


async def get_stream_grant(
    app_id: str,
    db: DatabaseDep,
    ticket: StreamTicketQuery,
    team_token: TeamTokenHeader,
    _admin_token: AdminTokenHeader,
) -> TeamAuth:
    """Who opens the team stream: the ticket of `?ticket=` when one is sent (spent now,
    whatever follows), else the API token of the Authorization header."""
    if ticket is None:
        return await api_token_grant(app_id, db, team_token)
    found = await db.transaction(lambda s: redeem_stream_ticket(session=s, ticket=ticket))
    if found is None:
        raise Unauthorized(
            "invalid_ticket",
            "this stream ticket is unknown, used or expired: POST /stream-tickets for a new one",
            field="ticket",
        )
    project, scope, token_id = found
    if project.app_id != app_id:
        raise Forbidden(
            "ticket_not_for_project",
            "this stream ticket belongs to another project",
            field="app_id",
        )
    return TeamAuth(project, scope, token_id)


@router.get("/stream", responses={**STREAM_RESPONSES, **error_responses(401, 403, 422, 429)})
async def stream(
    request: Request,
    auth: Annotated[TeamAuth, Depends(get_stream_grant)],
    db: DatabaseDep,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
) -> Response:
    """Every change of the project as it commits; with Last-Event-ID, first every change after
    it (a `resync` event first when some were already purged). The API token comes in the
    Authorization header, or a ticket from `POST /stream-tickets` as `?ticket=` (a browser's
    EventSource sends no headers). It ends when that token is revoked."""
    after = last_event_id_of(last_event_id_header, last_event_id)

    async def still_authorized() -> bool:
        again = await db.transaction(
            lambda s: project_for_api_token_id(session=s, token_id=auth.token_id)
        )
        return again is not None and again[0].id == auth.project.id

    return open_stream(
        request, db=db, project_id=auth.project.id, after=after, still_authorized=still_authorized
    )


@router.post(
    "/stream-tickets",
    status_code=201,
    response_model=StreamTicketOut,
    responses=error_responses(401, 403, 413),
)
async def create_stream_ticket(
    project: TeamProjectDep, auth: TeamAuthDep, db: DatabaseDep
) -> StreamTicketOut:
    """A ticket that opens this project's stream once, within 60 seconds, as
    `GET /stream?ticket=`: for a browser's EventSource, which cannot send the Authorization
    header. The stream it opens lives as long as this request's token."""
    issued = await db.transaction(lambda s: issue_stream_ticket(session=s, token_id=auth.token_id))
    return StreamTicketOut(
        ticket=issued.ticket,
        expires_at=issued.expires_at,
        expires_in=int(TICKET_LIFETIME.total_seconds()),
    )


widget_router = APIRouter(prefix="/api/widget", tags=["widget"])


@widget_router.get(
    "/stream",
    responses={**STREAM_RESPONSES, **error_responses(401, 403, 404, 422, 429)},
    openapi_extra={"security": [{}]},  # the session token, or none (as the other widget routes)
)
async def widget_stream(
    request: Request,
    _session: WidgetSessionHeader,  # declares the scheme (read through `widget_of`)
    app_id: Annotated[str, Query(min_length=1, max_length=255)],
    visitor_id: Annotated[str, Query(min_length=1, max_length=255)],
    session_token: Annotated[str | None, Query(max_length=4096)] = None,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
) -> Response:
    """The visitor's own conversations' messages as they are written (the rules of
    `GET /api/widget/messages`; EventSource sends no headers, so the session token may come
    as `?session_token=`). It ends when that session token stops vouching for the visitor."""
    after = last_event_id_of(last_event_id_header, last_event_id)
    widget = widget_of(request)
    bearer = session_token or widget.caller.bearer
    limits = widget.settings.limits
    visitor_stream = await replace(widget, caller=replace(widget.caller, bearer=bearer)).run(
        app_id,
        visitor_id,
        lambda tx, caller: open_visitor_stream(
            tx, app_id=app_id, visitor_id=visitor_id, caller=caller, limits=limits
        ),
    )
    if visitor_stream is None:
        raise NotFound(
            "unknown_visitor",
            "no visitor with this visitor_id has called the widget yet",
            field="visitor_id",
        )

    async def carries(change: ChangeView) -> bool:
        return await visitor_stream.carries(widget.db, change.type, change.data)

    return open_stream(
        request,
        db=widget.db,
        project_id=visitor_stream.call.project.id,
        after=after,
        still_authorized=partial(visitor_stream.still_authorized, widget.db),
        visitor_id=visitor_id,
        carries=carries,
        concerning=visitor_stream.concerning,
    )
