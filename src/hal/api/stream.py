"""The live stream (README "Change log and live stream"): `GET /api/projects/{app_id}/stream`, one
SSE event per change, replay after Last-Event-ID, `resync` when the id is older than what is
kept."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from hal.api.deps import DatabaseDep, TeamProjectDep, WidgetDep
from hal.api.errors import error_responses
from hal.db.engine import Database
from hal.domain.errors import InvalidInput, NotFound
from hal.services.change_feed import ChangeFeed, ChangeView, changes_after, replay_start, view
from hal.services.widget_messages import open_visitor_stream

router = APIRouter(prefix="/api/projects/{app_id}", tags=["stream"])

MAX_ID = 2**63 - 1
KEEP_ALIVE_SECONDS = 15

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


def change_stream(
    db: Database,
    feed: ChangeFeed,
    project_id: int,
    after: int | None,
    carries: Callable[[ChangeView], Awaitable[bool]] | None = None,
) -> EventSourceResponse:
    """Replay after `after`, then live changes; only those `carries` accepts."""

    async def wanted(change: ChangeView) -> bool:
        return carries is None or await carries(change)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with feed.subscribe(project_id) as subscription:
            last = subscription.cursor
            if after is not None:
                if await db.run(partial(replay_start, project_id=project_id, after=after)):
                    yield ServerSentEvent(data=json.dumps({"last_event_id": after}), event="resync")
                last = after
                while last < subscription.cursor:
                    rows = await db.run(
                        partial(
                            changes_after,
                            project_id=project_id,
                            after=last,
                            up_to=subscription.cursor,
                        )  # fmt: skip
                    )
                    if not rows:
                        break
                    for row in rows:
                        change = view(row)
                        if await wanted(change):
                            yield _event(change)
                        last = row.id
            while True:
                live = await subscription.queue.get()
                if live is None:  # this client fell too far behind: it reconnects and replays
                    return
                if live.id > last:
                    if await wanted(live):
                        yield _event(live)
                    last = live.id

    return EventSourceResponse(events(), ping=KEEP_ALIVE_SECONDS)


LastEventIdHeader = Annotated[str | None, Header(alias="Last-Event-ID")]
LastEventIdQuery = Annotated[
    str | None,
    Query(description="The change id to resume after, taken before the Last-Event-ID header"),
]


@router.get(
    "/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 403, 422)},
)
async def stream(
    request: Request,
    project: TeamProjectDep,
    db: DatabaseDep,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
) -> EventSourceResponse:
    """Every change of the project as it commits; with Last-Event-ID, first every change after
    it (a `resync` event first when some were already purged)."""
    after = last_event_id_of(last_event_id_header, last_event_id)
    return change_stream(db, request.app.state.change_feed, project.id, after)


widget_router = APIRouter(prefix="/api/widget", tags=["widget"])


@widget_router.get(
    "/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 403, 404, 422)},
)
async def widget_stream(
    request: Request,
    widget: WidgetDep,
    app_id: Annotated[str, Query(min_length=1, max_length=255)],
    visitor_id: Annotated[str, Query(min_length=1, max_length=255)],
    session_token: Annotated[str | None, Query(max_length=4096)] = None,
    last_event_id_header: LastEventIdHeader = None,
    last_event_id: LastEventIdQuery = None,
) -> EventSourceResponse:
    """The visitor's own conversations' messages as they are written (the rules of
    `GET /api/widget/messages`; EventSource sends no headers, so the session token may come
    as `?session_token=`)."""
    after = last_event_id_of(last_event_id_header, last_event_id)
    caller = replace(widget.caller, bearer=session_token or widget.caller.bearer)
    limits = widget.settings.limits
    visitor_stream = await widget.db.run(
        partial(
            open_visitor_stream, app_id=app_id, visitor_id=visitor_id, caller=caller, limits=limits
        )
    )
    if visitor_stream is None:
        raise NotFound(
            "unknown_visitor", "this visitor has no conversation yet", field="visitor_id"
        )

    async def carries(change: ChangeView) -> bool:
        return await visitor_stream.carries(widget.db, change.type, change.data)

    project_id = visitor_stream.call.project.id
    return change_stream(widget.db, request.app.state.change_feed, project_id, after, carries)
