"""Webhook delivery across real processes: `hal worker`s sharing the queue (FOR UPDATE SKIP
LOCKED on PostgreSQL, one writer at a time on SQLite), and `hal serve` killed with SIGKILL
(README "Webhooks": at least once, never one attempt sent twice)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from hal.db.engine import Database
from hal.db.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from hal.db.queries import project_by_app_id
from hal.webhooks.endpoints import create_endpoint
from hal.webhooks.rules import webhook_id
from tests.factories import TestProject, make_project
from tests.integration.test_webhooks import record_changes
from tests.receiver import Receiver, running_receiver
from tests.servers import Server, Worker

pytestmark = pytest.mark.server

ENV = {
    "HAL_WEBHOOKS_ALLOW_PRIVATE": "true",
    "HAL_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.2",
    "HAL_WEBHOOK_POLL_SECONDS": "0.1",
    # An attempt's lease is twice this plus 5 s: a message lost in a crash comes back soon.
    "HAL_WEBHOOK_TIMEOUT_SECONDS": "1",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


async def endpoint_for(database: Database, project: TestProject, url: str) -> WebhookEndpoint:
    found = await database.transaction(lambda s: project_by_app_id(s, project.app_id))
    assert found is not None
    return await create_endpoint(
        db=database, project_id=found.id, url=url, events=[], allow_private=True
    )


async def drop_endpoint(database: Database, endpoint_id: int) -> None:
    """So no later test's worker finds its messages."""
    await database.transaction(
        lambda s: s.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    )


async def message_states(database: Database, endpoint_id: int) -> dict[str, tuple[str, int]]:
    """webhook-id -> (status, attempts stored) for every message of the endpoint."""

    async def work(session: Any) -> dict[str, tuple[str, int]]:
        rows = await session.execute(
            select(WebhookMessage.id, WebhookMessage.status, func.count(WebhookAttempt.id))
            .outerjoin(WebhookAttempt, WebhookAttempt.message_id == WebhookMessage.id)
            .where(WebhookMessage.endpoint_id == endpoint_id)
            .group_by(WebhookMessage.id, WebhookMessage.status)
        )
        return {webhook_id(row[0]): (row[1], row[2]) for row in rows}

    return await database.transaction(work)


async def all_delivered(
    database: Database, endpoint_id: int, count: int, timeout: float
) -> dict[str, tuple[str, int]]:
    deadline = time.monotonic() + timeout
    while True:
        states = await message_states(database, endpoint_id)
        delivered = [s for s, _ in states.values() if s == "delivered"]
        if len(delivered) >= count or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.1)


async def test_two_workers_deliver_a_thousand_changes_none_lost_none_sent_twice(
    database, database_url, receiver, artifacts_dir
):
    project = await make_project(database)
    endpoint = await endpoint_for(database, project, receiver.url)
    # Every tenth change fails once, so retries are shared between the workers too.
    receiver.answer = lambda request, seen: (
        500 if seen == 0 and request.document["data"]["n"] % 10 == 0 else 200
    )
    workers = [
        Worker(database_url, env=ENV, log=artifacts_dir / f"worker-{i}.log").start()
        for i in range(2)
    ]
    try:
        for batch in range(10):
            changes = [("contact.updated", {"n": batch * 100 + i}) for i in range(100)]
            await record_changes(database, project, *changes)
        states = await all_delivered(database, endpoint.id, 1000, timeout=90)
    finally:
        exit_codes = [worker.stop() for worker in workers]
    assert exit_codes == [0, 0]
    sent = receiver.ids()
    assert len(states) == 1000
    assert Counter(status for status, _ in states.values()) == {"delivered": 1000}
    assert {r.document["data"]["n"] for r in receiver.requests} == set(range(1000))
    # No attempt sent twice: each message reached the receiver exactly as often as it has
    # attempts stored (twice for every tenth, once for the rest).
    assert {wid: attempts for wid, (_, attempts) in states.items()} == dict(sent)
    assert Counter(sent.values()) == {1: 900, 2: 100}
    await drop_endpoint(database, endpoint.id)


async def test_a_change_committed_just_before_sigkill_is_delivered_after_restart(
    database, database_url, receiver, artifacts_dir
):
    project = await make_project(database)
    endpoint = await endpoint_for(database, project, receiver.url)
    receiver.hold = True  # the first attempt is in flight when the server dies
    log = artifacts_dir / f"server-webhooks-{database.dialect}.log"
    server = Server(database_url, env=ENV, log=log).start()
    try:
        await record_changes(database, project, ("contact.updated", {"n": "in flight"}))
        await receiver.wait_for(1)
        await record_changes(database, project, ("contact.updated", {"n": "committed"}))
        server.kill()
    finally:
        server.stop()
    receiver.hold = False
    receiver.release.set()
    server = Server(database_url, env=ENV, log=log).start()
    try:
        states = await all_delivered(database, endpoint.id, 2, timeout=30)
    finally:
        server.stop()
    assert sorted(status for status, _ in states.values()) == ["delivered", "delivered"]
    by_n = Counter(r.document["data"]["n"] for r in receiver.requests)
    # At least once: the attempt cut off by the crash is sent again, under the same webhook-id.
    assert by_n["committed"] >= 1 and by_n["in flight"] >= 2
    in_flight = {r.webhook_id for r in receiver.requests if r.document["data"]["n"] == "in flight"}
    assert len(in_flight) == 1
    await drop_endpoint(database, endpoint.id)
