"""Webhook endpoints and their delivery log: create, change, rotate, test, retry and replay.

Messages are only queued here; hal.webhooks.delivery sends them. A replay or a retry puts the
same message (the same `webhook-id`) back in the queue, with a fresh retry schedule.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database
from hal.db.models import Change, Project, WebhookAttempt, WebhookEndpoint, WebhookMessage
from hal.db.queries import locked
from hal.db.types import utcnow
from hal.domain.errors import Conflict, NotFound
from hal.services.audit import CLI, SECRET, Actor, record_audit
from hal.services.paging import check_limit, decode_cursor, encode_cursor
from hal.webhooks.rules import OPT_IN_TYPES, TEST_TYPE, check_events, message_payload
from hal.webhooks.targets import resolve_target

SECRET_BYTES = 32
SECRET_GRACE = timedelta(hours=24)
REPLAY_CHUNK = 1000


def new_webhook_secret() -> str:
    """`whsec_` and the base64 of random bytes, as Standard Webhooks libraries read it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def create_endpoint(
    *,
    db: Database,
    project_id: int,
    url: str,
    events: list[str],
    allow_private: bool,
    actor: Actor = CLI,
) -> WebhookEndpoint:
    """Save an endpoint; it receives the changes committed after this one (a change whose
    transaction ends while the endpoint is saved may land on either side)."""
    events = check_events(events)
    await resolve_target(url, allow_private=allow_private)
    await db.number_changes()

    async def work(session: AsyncSession) -> WebhookEndpoint:
        last_change = await session.scalar(
            select(Project.last_change_id).where(Project.id == project_id)
        )
        endpoint = WebhookEndpoint(
            project_id=project_id,
            url=url,
            events=events,
            enabled=True,
            secret=new_webhook_secret(),
            change_cursor=last_change or 0,
        )
        session.add(endpoint)
        await session.flush()
        await record_audit(
            session,
            project_id=project_id,
            actor=actor,
            action="webhook.created",
            target=str(endpoint.id),
            changes={"url": url, "events": events, "secret": SECRET},
        )
        return endpoint

    return await db.transaction(work)


async def get_endpoint(
    *, session: AsyncSession, project_id: int, endpoint_id: int, lock: bool = False
) -> WebhookEndpoint:
    """One endpoint of the project, or 404 webhook_not_found."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.project_id == project_id
    )
    if lock:
        query = locked(query)
    endpoint = (await session.execute(query)).scalar_one_or_none()
    if endpoint is None:
        raise NotFound(
            "webhook_not_found", f"no webhook endpoint {endpoint_id}", field="endpoint_id"
        )
    return endpoint


async def list_endpoints(*, session: AsyncSession, project_id: int) -> list[WebhookEndpoint]:
    """The project's endpoints, oldest first."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id)
    return list((await session.execute(query.order_by(WebhookEndpoint.id))).scalars())


@dataclass(frozen=True)
class EndpointChanges:
    """The settable parts of an endpoint; None leaves one as it is."""

    url: str | None = None
    events: list[str] | None = None
    enabled: bool | None = None


async def update_endpoint(
    *,
    db: Database,
    project_id: int,
    endpoint_id: int,
    changes: EndpointChanges,
    allow_private: bool,
    actor: Actor = CLI,
) -> WebhookEndpoint:
    """Change the URL, the event types or whether the endpoint is enabled."""
    events = check_events(changes.events) if changes.events is not None else None
    if changes.url is not None:
        await resolve_target(changes.url, allow_private=allow_private)

    async def work(session: AsyncSession) -> WebhookEndpoint:
        endpoint = await get_endpoint(
            session=session, project_id=project_id, endpoint_id=endpoint_id, lock=True
        )
        if changes.url is not None:
            endpoint.url = changes.url
        if events is not None:
            endpoint.events = events
        if changes.enabled is True and not endpoint.enabled:
            endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
        elif changes.enabled is False and endpoint.enabled:
            endpoint.enabled, endpoint.disabled_reason = False, "disabled through the API"
        await session.flush()
        await record_audit(
            session,
            project_id=project_id,
            actor=actor,
            action="webhook.updated",
            target=str(endpoint.id),
            changes={k: v for k, v in changes.__dict__.items() if v is not None},
        )
        return endpoint

    return await db.transaction(work)


async def delete_endpoint(
    *, session: AsyncSession, project_id: int, endpoint_id: int, actor: Actor = CLI
) -> None:
    """Remove an endpoint with its messages and their attempts."""
    endpoint = await get_endpoint(session=session, project_id=project_id, endpoint_id=endpoint_id)
    await session.delete(endpoint)
    await session.flush()
    await record_audit(
        session,
        project_id=project_id,
        actor=actor,
        action="webhook.deleted",
        target=str(endpoint_id),
        changes={"url": endpoint.url},
    )


async def rotate_endpoint_secret(
    *, session: AsyncSession, project_id: int, endpoint_id: int, actor: Actor = CLI
) -> WebhookEndpoint:
    """A new secret; for 24 h deliveries are also signed with the one it replaces."""
    endpoint = await get_endpoint(
        session=session, project_id=project_id, endpoint_id=endpoint_id, lock=True
    )
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utcnow() + SECRET_GRACE
    endpoint.secret = new_webhook_secret()
    await session.flush()
    await record_audit(
        session,
        project_id=project_id,
        actor=actor,
        action="webhook.secret_rotated",
        target=str(endpoint_id),
        changes={"secret": SECRET},
    )
    return endpoint


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict(
            "webhook_disabled",
            f"the endpoint is disabled ({endpoint.disabled_reason}); "
            'enable it first with PATCH {"enabled": true}',
            field="endpoint_id",
        )


async def send_test_message(
    *, session: AsyncSession, project_id: int, endpoint_id: int
) -> WebhookMessage:
    """Queue a `webhook.test` message for the endpoint."""
    endpoint = await get_endpoint(session=session, project_id=project_id, endpoint_id=endpoint_id)
    _require_enabled(endpoint)
    now = utcnow()
    message = WebhookMessage(
        endpoint_id=endpoint.id,
        change_id=None,
        type=TEST_TYPE,
        payload=message_payload(TEST_TYPE, now, {"endpoint_id": endpoint.id}),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    return message


@dataclass(frozen=True)
class Delivery:
    message: WebhookMessage
    attempts: list[WebhookAttempt]


@dataclass(frozen=True)
class DeliveryPage:
    items: list[Delivery]
    next_cursor: str | None


async def list_deliveries(
    *,
    session: AsyncSession,
    project_id: int,
    endpoint_id: int,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> DeliveryPage:
    """The endpoint's messages, newest first, each with its attempts."""
    await get_endpoint(session=session, project_id=project_id, endpoint_id=endpoint_id)
    limit = check_limit(limit)
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookMessage.status == status)
    before = decode_cursor(cursor)
    if before is not None:
        query = query.where(WebhookMessage.id < before)
    query = query.order_by(WebhookMessage.id.desc()).limit(limit + 1)
    messages = list((await session.execute(query)).scalars())
    more = len(messages) > limit
    messages = messages[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {message.id: [] for message in messages}
    if messages:
        rows = await session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id.in_(list(attempts)))
            .order_by(WebhookAttempt.id)
        )
        for attempt in rows.scalars():
            attempts[attempt.message_id].append(attempt)
    items = [Delivery(message, attempts[message.id]) for message in messages]
    return DeliveryPage(items, encode_cursor(messages[-1].id) if more and messages else None)


async def retry_message(
    *, session: AsyncSession, project_id: int, endpoint_id: int, message_id: int
) -> Delivery:
    """Queue a message again now, with a fresh retry schedule and the same `webhook-id`."""
    endpoint = await get_endpoint(session=session, project_id=project_id, endpoint_id=endpoint_id)
    _require_enabled(endpoint)
    message = (
        await session.execute(
            locked(
                select(WebhookMessage).where(
                    WebhookMessage.id == message_id, WebhookMessage.endpoint_id == endpoint.id
                )
            )
        )
    ).scalar_one_or_none()
    if message is None:
        raise NotFound("message_not_found", f"no message {message_id}", field="message_id")
    message.status, message.attempts, message.next_attempt_at = "pending", 0, utcnow()
    await session.flush()
    attempts = await session.execute(
        select(WebhookAttempt).where(WebhookAttempt.message_id == message.id)
    )
    return Delivery(message, list(attempts.scalars()))


def _subscribed(events: list[str]) -> ColumnElement[bool]:
    if events:
        return Change.type.in_(events)
    return Change.type.not_in(sorted(OPT_IN_TYPES)) if OPT_IN_TYPES else true()


async def replay(
    *, session: AsyncSession, project_id: int, endpoint_id: int, since: datetime
) -> int:
    """Queue every change the endpoint subscribes to since `since` again: its message if it has
    one (the same `webhook-id`), else a new one. Changes not yet fanned out come anyway."""
    endpoint = await get_endpoint(
        session=session, project_id=project_id, endpoint_id=endpoint_id, lock=True
    )
    _require_enabled(endpoint)
    now = utcnow()
    matching = (
        Change.project_id == project_id,
        Change.created_at >= since,
        Change.id <= endpoint.change_cursor,
        _subscribed(endpoint.events),
    )
    requeued = await session.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.endpoint_id == endpoint.id,
            WebhookMessage.change_id.in_(select(Change.id).where(*matching)),
        )
        .values(status="pending", attempts=0, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    count: int = requeued.rowcount  # type: ignore[attr-defined]
    has_message = (
        select(WebhookMessage.id)
        .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.change_id == Change.id)
        .exists()
    )
    after = 0
    while True:
        changes = (
            await session.execute(
                select(Change.id, Change.type, Change.data, Change.created_at)
                .where(*matching, Change.id > after, ~has_message)
                .order_by(Change.id)
                .limit(REPLAY_CHUNK)
            )
        ).all()
        if not changes:
            return count
        session.add_all(
            WebhookMessage(
                endpoint_id=endpoint.id,
                change_id=change.id,
                type=change.type,
                payload=message_payload(change.type, change.created_at, change.data),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for change in changes
        )
        await session.flush()
        count += len(changes)
        after = changes[-1].id


def describe_endpoint(endpoint: WebhookEndpoint, *, include_secret: bool) -> dict[str, Any]:
    """The endpoint as the CLI prints it."""
    shown: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at.isoformat(),
    }
    if include_secret:
        shown["secret"] = endpoint.secret
    return shown
