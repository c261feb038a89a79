"""Abuse limits on the widget routes: 429 with Retry-After, per process or shared via Redis."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from hal.app import create_app
from hal.config import Settings
from tests.conftest import require_or_skip
from tests.factories import identify_payload, unique

REDIS = "redis://127.0.0.1:6379"


@asynccontextmanager
async def client_for(database, **limits) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database.url, **limits)
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
            yield http
    finally:
        await app.state.admission.close()


@pytest.fixture
async def strict(database) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(
        database,
        widget_rate_per_visitor="3/minute",
        widget_rate_per_project="8/minute",
        new_visitors_per_project="5/minute",
    ) as http:
        yield http


async def identify(http, project, visitor):
    return await http.post(
        "/api/widget/identify", json=identify_payload(project, visitor_id=visitor, user_id="u1")
    )


async def test_a_visitor_over_its_limit_gets_429_with_retry_after(strict, project, inspect):
    visitor = unique("v")
    statuses = [(await identify(strict, project, visitor)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await identify(strict, project, visitor)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_a_project_over_its_limit_gets_429(strict, project):
    statuses = []
    for i in range(10):
        visitor = unique("v") if i < 4 else "same-visitor"
        statuses.append((await identify(strict, project, visitor)).status_code)
    assert statuses.count(429) >= 2
    assert statuses[:3] == [200, 200, 200]


async def test_new_visitors_per_minute_are_limited_and_the_refusal_writes_nothing(
    database, project, inspect
):
    async with client_for(
        database, new_visitors_per_project="2/minute", widget_rate_per_project="off"
    ) as http:
        statuses = [(await identify(http, project, f"new-{i}")).status_code for i in range(3)]
        assert statuses == [200, 200, 429]
        assert await inspect.visitor(project.app_id, "new-2") is None
        returning = await identify(http, project, "new-0")
        assert returning.status_code == 200  # known visitors are not new


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


async def test_limits_are_shared_between_processes_through_redis(database, project):
    if not redis_answers():
        require_or_skip("no Redis server answers at 127.0.0.1:6379")
    limits = {"rate_limit_storage": REDIS, "widget_rate_per_visitor": "4/minute"}
    visitor = unique("v")
    async with client_for(database, **limits) as first, client_for(database, **limits) as second:
        statuses = []
        for i in range(6):
            http = first if i % 2 == 0 else second  # two app instances, one shared count
            statuses.append((await identify(http, project, visitor)).status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_a_malformed_rate_is_refused_at_start():
    with pytest.raises(ValueError):
        Settings(widget_rate_per_visitor="lots")


async def test_one_client_cannot_spend_the_projects_whole_new_visitor_budget(database, project):
    settings = Settings(
        database_url=database.url,
        new_visitors_per_project="10/minute",
        new_visitors_per_client="3/minute",
        widget_rate_per_project="off",
    )
    app = create_app(settings, database=database)

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://hal.test")

    try:
        async with client("203.0.113.7") as greedy, client("198.51.100.2") as real:
            spent = [(await identify(greedy, project, unique("v"))).status_code for _ in range(6)]
            assert spent == [200, 200, 200, 429, 429, 429]
            assert (await identify(real, project, unique("v"))).status_code == 200
    finally:
        await app.state.admission.close()


async def test_a_retried_transaction_counts_its_call_and_its_new_visitor_once(database, project):
    """A lost race runs the call's transaction again (here a real unique-key conflict on the
    first attempt): the limits count the request, not its attempts."""
    from sqlalchemy import insert, select

    from hal.db.models import Project, Visitor
    from hal.domain.limits import Limits
    from hal.services.admission import Admission
    from hal.services.widget_call import Caller, open_widget_call, run_widget_call

    admission = Admission(
        storage_url="memory://",
        per_project="100/minute",
        per_visitor="100/minute",
        new_visitors="100/minute",
        new_visitors_per_client="100/minute",
    )
    visitor, attempts = unique("v"), []

    async def work(tx, caller):
        call = await open_widget_call(
            tx, app_id=project.app_id, visitor_id=visitor, caller=caller, limits=Limits()
        )
        attempts.append(call.widget_visitor.created)
        if len(attempts) == 1:  # lose a race: the visitor's key is taken meanwhile
            project_id = (
                await tx.execute(select(Project.id).where(Project.app_id == project.app_id))
            ).scalar_one()
            await tx.execute(
                insert(Visitor).values(
                    project_id=project_id, visitor_key=visitor, properties={}, verified=False
                )
            )
        return call.widget_visitor.id

    caller = Caller(client="203.0.113.9", admission=admission)
    await run_widget_call(database, caller, app_id=project.app_id, visitor_id=visitor, work=work)
    assert attempts == [True, True]  # the first attempt rolled back, the second made it again

    async def remaining(item, *keys):
        return (await admission.limiter.get_window_stats(item, *keys)).remaining

    assert await remaining(admission.per_project, "project", project.app_id) == 99
    assert await remaining(admission.per_visitor, "visitor", project.app_id, visitor) == 99
    assert await remaining(admission.new_visitors, "new-visitor", project.app_id) == 99
    per_client = admission.new_visitors_per_client
    assert await remaining(per_client, "new-visitor-client", project.app_id, "203.0.113.9") == 99
