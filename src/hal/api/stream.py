"""The live stream (SPEC "Live stream"): `GET /api/projects/{app_id}/stream`, one SSE event
per change, replay after Last-Event-ID, `resync` when the id is older than what is kept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from hal.api.deps import DatabaseDep, TeamProjectDep
from hal.api.errors import error_responses
from hal.domain.errors import InvalidInput
from hal.services.change_feed import ChangeFeed, ChangeView, changes_after, replay_start, view

router = APIRouter(prefix="/api/projects/{app_id}", tags=["stream"])

MAX_ID = 2**63 - 1
KEEP_ALIVE_SECONDS = 15


def _event(change: ChangeView) -> ServerSentEvent:
    document = {"id": change.id, "type": change.type, "timestamp": change.timestamp,
                "data": change.data}  # fmt: skip
    return ServerSentEvent(data=json.dumps(document), event=change.type, id=str(change.id))


def _last_event_id(header: str | None, query: int | None) -> int | None:
    if query is not None:
        return query
    if header is None or not header.strip():
        return None
    if not header.strip().isdigit() or int(header) > MAX_ID:
        raise InvalidInput(
            "invalid_last_event_id", "Last-Event-ID must be a change id", field="last-event-id"
        )
    return int(header)


@router.get(
    "/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 403, 422)},
)
async def stream(
    request: Request,
    project: TeamProjectDep,
    db: DatabaseDep,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> EventSourceResponse:
    """Every change of the project as it commits; with Last-Event-ID, first every change after
    it (a `resync` event first when some were already purged)."""
    after = _last_event_id(last_event_id_header, last_event_id)
    feed: ChangeFeed = request.app.state.change_feed
    project_id = project.id

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
                        yield _event(view(row))
                        last = row.id
            while True:
                change = await subscription.queue.get()
                if change is None:  # this client fell too far behind: it reconnects and replays
                    return
                if change.id > last:
                    yield _event(change)
                    last = change.id

    return EventSourceResponse(events(), ping=KEEP_ALIVE_SECONDS)
