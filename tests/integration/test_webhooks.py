"""Webhooks (README "Webhooks"): the admin API, and delivery to a real receiver on loopback that
verifies every request with the standardwebhooks library, as a customer's receiver would."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from hal.app import create_app
from hal.cli import app as cli_app
from hal.config import Settings
from hal.db.engine import Database, Tx
from hal.db.models import Change, WebhookAttempt, WebhookEndpoint, WebhookMessage
from hal.db.queries import project_by_app_id
from hal.domain.changes import ChangeType
from hal.webhooks.delivery import DeliveryOptions, DeliveryWorker
from hal.webhooks.rules import DELIVERED_TYPES
from tests.factories import (
    TestProject,
    identify_payload,
    make_token,
    number_all_changes,
    unique_email,
)
from tests.integration.conftest import TeamClient
from tests.receiver import Receiver, running_receiver

FAST = {
    "webhooks_allow_private": True,
    "webhook_retry_schedule": "0,0.2,0.2",
    "webhook_poll_seconds": 0.05,
    "webhook_timeout_seconds": 2,
}


def settings_for(database: Database, **overrides: Any) -> Settings:
    return Settings(database_url=database.url, **{**FAST, **overrides})


@pytest.fixture(scope="session")
async def webhook_http(database) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a developer runs it: receivers on loopback are allowed."""
    app = create_app(settings_for(database), database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hal.test"
    ) as http:
        yield http


@pytest.fixture
async def admin(webhook_http, database, project) -> TeamClient:
    return TeamClient(webhook_http, project, await make_token(database, project, admin=True))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
async def endpoint(admin, receiver) -> AsyncIterator[dict[str, Any]]:
    """An endpoint for the receiver, every type but event.tracked; deleted afterwards so no
    later test's worker finds its messages."""
    created = await admin.post("/webhooks", {"url": receiver.url})
    assert created.status_code == 201, created.text
    yield created.json()
    await admin.http.delete(
        f"/api/projects/{admin.project.app_id}/webhooks/{created.json()['id']}",
        headers={"Authorization": f"Bearer {admin.token}"},
    )


@asynccontextmanager
async def delivering(database: Database, **overrides: Any) -> AsyncIterator[DeliveryWorker]:
    """The delivery loop of `hal serve`, running in this process for the block."""
    worker = DeliveryWorker(
        database, DeliveryOptions.of(settings_for(database, **overrides))
    ).start()
    try:
        yield worker
    finally:
        await worker.stop()


async def record_changes(
    database: Database, project: TestProject, *changes: tuple[str, dict[str, Any]]
) -> None:
    """Commit changes to the project's change log, as a use case's transaction does."""

    async def work(tx: Tx) -> None:
        found = await project_by_app_id(tx.orm, project.app_id)
        assert found is not None
        for change_type, data in changes:
            tx.record(found.id, ChangeType(change_type), data)

    await database.run(work)


async def deliveries(
    admin: TeamClient, endpoint_id: int, *, count: int, status: str | None = None
) -> list[dict[str, Any]]:
    """The delivery log once `count` messages are in it (and all have `status`)."""
    for _ in range(300):
        page = (await admin.get(f"/webhooks/{endpoint_id}/deliveries", status=status)).json()
        items: list[dict[str, Any]] = page["items"]
        if len(items) >= count and all(status in {None, m["status"]} for m in items):
            return items
        await asyncio.sleep(0.02)
    raise AssertionError(f"the delivery log never held {count} {status} messages: {items}")


def admin_delete(admin: TeamClient, path: str) -> Any:
    url = f"/api/projects/{admin.project.app_id}{path}"
    return admin.http.delete(url, headers={"Authorization": f"Bearer {admin.token}"})


# The endpoints API


async def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(admin, team, receiver):
    created = await admin.post("/webhooks", {"url": receiver.url, "events": ["contact.created"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["url"], body["events"], body["enabled"]) == (
        receiver.url,
        ["contact.created"],
        True,
    )
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) >= 24
    listed = (await admin.get("/webhooks")).json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    shown = (await admin.get(f"/webhooks/{body['id']}")).json()
    assert "secret" not in shown and "secret" not in listed[0]
    refused = await team.get("/webhooks")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "admin_token_required")
    assert (await admin_delete(admin, f"/webhooks/{body['id']}")).status_code == 204


async def test_unknown_event_types_and_huge_ids_are_refused(admin, receiver):
    unknown = await admin.post(
        "/webhooks", {"url": receiver.url, "events": ["contact.created", "contact.exploded"]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"] == {
        "code": "unknown_event_type",
        "message": unknown.json()["error"]["message"],
        "field": "events[1]",
    }
    for path in ("/webhooks/9223372036854775808", "/webhooks/0"):
        too_big = await admin.get(path)
        assert too_big.status_code == 422, path
        assert too_big.json()["error"]["field"] == "endpoint_id"
    missing = await admin.get("/webhooks/9223372036854775807")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "webhook_not_found")
    assert (await admin.post("/webhooks", {"url": "ftp://example.com/x"})).status_code == 422


async def test_an_admin_changes_disables_and_deletes_an_endpoint(admin, endpoint, receiver):
    path = f"/webhooks/{endpoint['id']}"
    patched = await admin.patch(path, {"events": ["event.tracked"], "enabled": False})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["events"], patched.json()["enabled"]) == (["event.tracked"], False)
    assert patched.json()["disabled_reason"]
    refused = await admin.post(f"{path}/test")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "webhook_disabled")
    enabled = (await admin.patch(path, {"enabled": True})).json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
    assert (await admin.patch(path, {"url": "gopher://x"})).status_code == 422
    assert (await admin_delete(admin, path)).status_code == 204
    assert (await admin.get(path)).status_code == 404


# Delivery


async def test_every_change_type_is_delivered_with_a_verifiable_signature(
    admin, database, receiver
):
    created = await admin.post("/webhooks", {"url": receiver.url, "events": list(DELIVERED_TYPES)})
    secret = created.json()["secret"]
    changes = [(change_type, {"n": i}) for i, change_type in enumerate(DELIVERED_TYPES)]
    await record_changes(database, admin.project, *changes)
    async with delivering(database):
        received = await receiver.wait_for(len(changes))
    documents = [request.verify(secret) for request in received]
    assert sorted((d["type"], d["data"]["n"]) for d in documents) == sorted(
        (t, data["n"]) for t, data in changes
    )
    first = received[0]
    assert first.headers["content-type"] == "application/json"
    assert abs(int(first.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert first.document["timestamp"].endswith("Z")
    with pytest.raises(WebhookVerificationError):
        first.verify("whsec_" + base64.b64encode(b"x" * 32).decode())  # another secret
    assert len(receiver.ids()) == len(changes)  # one webhook-id per change
    await admin_delete(admin, f"/webhooks/{created.json()['id']}")


async def test_changes_made_through_the_widget_reach_the_receiver(
    admin, webhook_http, database, receiver
):
    created = (
        await admin.post("/webhooks", {"url": receiver.url, "events": list(DELIVERED_TYPES)})
    ).json()
    project = admin.project
    identified = await webhook_http.post(
        "/api/widget/identify",
        json=identify_payload(
            project, visitor_id="v1", user_id="u1", email=unique_email(), signed=True,
            company={"id": "acme", "name": "Acme", "stage": "Lead"},
        ),
    )  # fmt: skip
    assert identified.status_code == 200, identified.text
    token = identified.json()["session_token"]
    tracked = await webhook_http.post(
        "/api/widget/track",
        json={"app_id": project.app_id, "visitor_id": "v1", "event": "signed_up"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert tracked.status_code == 200, tracked.text

    async def logged(session: Any) -> list[str]:
        found = await project_by_app_id(session, project.app_id)
        assert found is not None
        rows = await session.execute(
            select(Change.type).where(Change.project_id == found.id).order_by(Change.id)
        )
        return list(rows.scalars())

    types = await database.transaction(logged)
    assert {"contact.created", "company.created", "event.tracked"} <= set(types)
    async with delivering(database):
        received = await receiver.wait_for(len(types))
    assert sorted(r.verify(created["secret"])["type"] for r in received) == sorted(types)
    contact = next(r.document["data"] for r in received if r.document["type"] == "contact.created")
    assert contact["user_id"] == "u1" and contact["version"] >= 1
    await admin_delete(admin, f"/webhooks/{created['id']}")


async def test_an_admin_token_never_reaches_another_projects_endpoints(
    admin, webhook_http, database, new_project, receiver
):
    other = await new_project()
    other_admin = TeamClient(webhook_http, other, await make_token(database, other, admin=True))
    theirs = (await other_admin.post("/webhooks", {"url": receiver.url})).json()
    path = f"/webhooks/{theirs['id']}"
    assert (await admin.get(path)).status_code == 404
    assert (await admin.patch(path, {"enabled": False})).status_code == 404
    assert (await admin.post(f"{path}/rotate-secret")).status_code == 404
    assert (
        await admin.post(f"{path}/replay", {"since": "2020-01-01T00:00:00Z"})
    ).status_code == 404
    assert (await admin.get(f"{path}/deliveries")).status_code == 404
    assert (await admin_delete(admin, path)).status_code == 404
    assert (await admin.get("/webhooks")).json()["items"] == []
    assert (await admin_delete(other_admin, path)).status_code == 204


async def test_event_tracked_only_reaches_endpoints_that_name_it(
    admin, database, endpoint, receiver
):
    await record_changes(
        database, admin.project, ("event.tracked", {"name": "x"}), ("contact.updated", {})
    )
    async with delivering(database):
        await receiver.wait_for(1)
        await asyncio.sleep(0.3)
    assert [r.document["type"] for r in receiver.requests] == ["contact.updated"]


async def test_a_new_endpoint_receives_changes_from_its_creation_on(admin, database, receiver):
    await record_changes(database, admin.project, ("contact.created", {"before": True}))
    await number_all_changes(database)
    created = (await admin.post("/webhooks", {"url": receiver.url})).json()
    await record_changes(database, admin.project, ("contact.created", {"before": False}))
    async with delivering(database):
        await receiver.wait_for(1)
        await asyncio.sleep(0.3)
    assert [r.verify(created["secret"])["data"] for r in receiver.requests] == [{"before": False}]
    await admin_delete(admin, f"/webhooks/{created['id']}")


async def test_a_500_is_retried_with_the_same_webhook_id_and_the_log_shows_it(
    admin, database, endpoint, receiver
):
    receiver.answer = lambda request, seen: 500 if seen < 2 else 204
    await record_changes(database, admin.project, ("contact.updated", {"id": 1}))
    async with delivering(database):
        received = await receiver.wait_for(3)
        [message] = await deliveries(admin, endpoint["id"], count=1, status="delivered")
    assert len({request.webhook_id for request in received}) == 1
    for request in received:
        request.verify(endpoint["secret"])
    assert message["webhook_id"] == received[0].webhook_id
    assert [a["status_code"] for a in message["attempts"]] == [500, 500, 204]
    assert all(a["error"] is None and a["duration_ms"] >= 0 for a in message["attempts"])
    times = [datetime.fromisoformat(a["attempted_at"]) for a in message["attempts"]]
    assert times == sorted(times) and times[2] - times[0] >= timedelta(seconds=0.3)


async def test_after_the_last_attempt_a_message_fails_and_a_manual_retry_sends_it(
    admin, database, endpoint, receiver
):
    receiver.answer = lambda *_: 500
    await record_changes(database, admin.project, ("contact.updated", {"id": 2}))
    async with delivering(database):
        await receiver.wait_for(3)
        [failed] = await deliveries(admin, endpoint["id"], count=1, status="failed")
        assert len(failed["attempts"]) == 3
        assert (await admin.get(f"/webhooks/{endpoint['id']}/deliveries", status="pending")).json()[
            "items"
        ] == []
        receiver.answer = lambda *_: 200
        retried = await admin.post(f"/webhooks/{endpoint['id']}/deliveries/{failed['id']}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "pending"
        [delivered] = await deliveries(admin, endpoint["id"], count=1, status="delivered")
    assert receiver.requests[-1].webhook_id == failed["webhook_id"]
    assert [a["status_code"] for a in delivered["attempts"]] == [500, 500, 500, 200]
    unknown = await admin.post(f"/webhooks/{endpoint['id']}/deliveries/999999999/retry")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "message_not_found")


async def test_a_connection_error_is_an_attempt_with_its_error(admin, database, receiver):
    created = (await admin.post("/webhooks", {"url": "http://127.0.0.1:9/nothing"})).json()
    await record_changes(database, admin.project, ("contact.updated", {}))
    async with delivering(database):
        [message] = await deliveries(admin, created["id"], count=1, status="failed")
    assert [a["status_code"] for a in message["attempts"]] == [None, None, None]
    assert all(a["error"] for a in message["attempts"])
    await admin_delete(admin, f"/webhooks/{created['id']}")


async def test_replay_delivers_matching_changes_since_a_time_again_with_the_same_ids(
    admin, database, receiver
):
    created = (
        await admin.post("/webhooks", {"url": receiver.url, "events": ["contact.updated"]})
    ).json()
    await record_changes(database, admin.project, ("contact.updated", {"n": 1}))
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    await record_changes(
        database, admin.project, ("contact.updated", {"n": 2}), ("company.updated", {"n": 3})
    )
    async with delivering(database):
        first = await receiver.wait_for(2)
        await deliveries(admin, created["id"], count=2, status="delivered")
        # Subscribing to company.updated: the replay creates the message it never had.
        await admin.patch(
            f"/webhooks/{created['id']}", {"events": ["contact.updated", "company.updated"]}
        )
        replayed = await admin.post(
            f"/webhooks/{created['id']}/replay", {"since": since.isoformat()}
        )
        assert replayed.status_code == 202, replayed.text
        assert replayed.json() == {"messages": 2}
        again = (await receiver.wait_for(4))[2:]
    by_n = {r.verify(created["secret"])["data"]["n"]: r.webhook_id for r in first}
    assert sorted(r.document["data"]["n"] for r in again) == [2, 3]
    assert {r.webhook_id for r in again if r.document["data"]["n"] == 2} == {by_n[2]}
    log = await deliveries(admin, created["id"], count=3, status="delivered")
    assert sorted(len(m["attempts"]) for m in log) == [1, 1, 2]
    bad = await admin.post(f"/webhooks/{created['id']}/replay", {"since": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "since"
    await admin_delete(admin, f"/webhooks/{created['id']}")


async def test_after_a_rotation_deliveries_verify_with_the_old_and_the_new_secret(
    admin, database, endpoint, receiver
):
    rotated = await admin.post(f"/webhooks/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    await record_changes(database, admin.project, ("contact.updated", {"rotated": True}))
    async with delivering(database):
        [during] = await receiver.wait_for(1)
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert during.verify(endpoint["secret"]) == during.verify(new_secret)
        # The grace period over: only the new secret signs.
        await database.transaction(
            lambda s: s.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint["id"])
                .values(previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        )
        await record_changes(database, admin.project, ("contact.updated", {"rotated": False}))
        after = (await receiver.wait_for(2))[1]
    assert after.verify(new_secret)["data"] == {"rotated": False}
    with pytest.raises(WebhookVerificationError):
        after.verify(endpoint["secret"])


async def test_a_test_message_is_delivered(admin, database, endpoint, receiver):
    queued = await admin.post(f"/webhooks/{endpoint['id']}/test")
    assert queued.status_code == 202, queued.text
    assert queued.json()["type"] == "webhook.test"
    async with delivering(database):
        [request] = await receiver.wait_for(1)
    document = request.verify(endpoint["secret"])
    assert document["type"] == "webhook.test"
    assert request.webhook_id == queued.json()["webhook_id"]


async def test_410_disables_the_endpoint(admin, database, endpoint, receiver):
    receiver.answer = lambda *_: 410
    await record_changes(database, admin.project, ("contact.updated", {}))
    async with delivering(database):
        [message] = await deliveries(admin, endpoint["id"], count=1, status="failed")
        await record_changes(database, admin.project, ("contact.updated", {}))
        await asyncio.sleep(0.3)
    shown = (await admin.get(f"/webhooks/{endpoint['id']}")).json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    assert len(receiver.requests) == 1 and len(message["attempts"]) == 1


async def test_retry_after_on_429_is_honoured(admin, database, endpoint, receiver):
    receiver.answer = lambda request, seen: (429, {"Retry-After": "1"}) if seen == 0 else 200
    await record_changes(database, admin.project, ("contact.updated", {}))
    async with delivering(database):
        [message] = await deliveries(admin, endpoint["id"], count=1, status="pending")
        while not message["attempts"]:
            [message] = await deliveries(admin, endpoint["id"], count=1)
        attempted = datetime.fromisoformat(message["attempts"][0]["attempted_at"])
        assert datetime.fromisoformat(message["next_attempt_at"]) - attempted >= timedelta(
            seconds=0.9
        )
        await receiver.wait_for(2, timeout=5)


async def test_an_endpoint_failing_for_five_days_is_disabled(admin, database, endpoint, receiver):
    receiver.answer = lambda *_: 503
    await database.transaction(
        lambda s: s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint["id"])
            .values(failing_since=datetime.now(UTC) - timedelta(days=5, minutes=1))
        )
    )
    await record_changes(database, admin.project, ("contact.updated", {}))
    async with delivering(database):
        await receiver.wait_for(1)
        for _ in range(100):
            shown = (await admin.get(f"/webhooks/{endpoint['id']}")).json()
            if not shown["enabled"]:
                break
            await asyncio.sleep(0.02)
    assert shown["enabled"] is False and "without a success" in shown["disabled_reason"]


async def test_a_success_ends_the_failing_streak(admin, database, endpoint, receiver):
    receiver.answer = lambda request, seen: 500 if seen == 0 else 200
    await record_changes(database, admin.project, ("contact.updated", {}))
    async with delivering(database):
        await deliveries(admin, endpoint["id"], count=1, status="delivered")
    stored = await database.transaction(
        lambda s: s.scalar(
            select(WebhookEndpoint.failing_since).where(WebhookEndpoint.id == endpoint["id"])
        )
    )
    assert stored is None


# SSRF guard


@pytest.fixture(scope="session")
async def strict_http(database) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its production default: internal addresses are refused."""
    app = create_app(settings_for(database, webhooks_allow_private=False), database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hal.test"
    ) as http:
        yield http


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/hook",
        "http://localhost:8000/hook",
        "https://192.168.1.10/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "file:///etc/passwd",
    ],
)
async def test_internal_addresses_are_refused_when_saved(strict_http, database, project, url):
    strict = TeamClient(strict_http, project, await make_token(database, project, admin=True))
    refused = await strict.post("/webhooks", {"url": url})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "url_not_allowed"
    assert refused.json()["error"]["field"] == "url"


async def test_internal_addresses_are_refused_again_at_delivery(
    admin, database, endpoint, receiver
):
    """Saved while allowed (or before DNS changed): each attempt checks the address again."""
    await record_changes(database, admin.project, ("contact.updated", {}))
    async with delivering(database, webhooks_allow_private=False):
        [message] = await deliveries(admin, endpoint["id"], count=1, status="failed")
    assert receiver.requests == []
    assert all("internal address" in a["error"] for a in message["attempts"])
    assert {a["status_code"] for a in message["attempts"]} == {None}


# Command line


def test_hal_webhooks_create_prints_the_endpoint_with_its_secret(tmp_path, monkeypatch):
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert runner.invoke(cli_app, ["migrate", "--database-url", db]).exit_code == 0
    created = runner.invoke(cli_app, ["projects", "create", "--app-id", "p1", "--database-url", db])
    assert created.exit_code == 0, created.output
    monkeypatch.setenv("HAL_WEBHOOKS_ALLOW_PRIVATE", "true")
    args = ["webhooks", "create", "--app-id", "p1", "--url", "http://127.0.0.1:9999/h",
            "--event", "contact.created", "--event", "company.stage_changed",
            "--database-url", db]  # fmt: skip
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    endpoint = json.loads(result.stdout)
    assert endpoint["events"] == ["contact.created", "company.stage_changed"]
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
    Webhook(endpoint["secret"])  # readable by the library as it comes
    monkeypatch.setenv("HAL_WEBHOOKS_ALLOW_PRIVATE", "false")
    refused = runner.invoke(cli_app, args)
    assert refused.exit_code == 1
    assert json.loads(refused.stderr)["error"]["code"] == "url_not_allowed"


async def test_attempts_are_stored_per_message(admin, database, endpoint, receiver):
    await record_changes(database, admin.project, ("contact.updated", {}), ("contact.updated", {}))
    async with delivering(database):
        await deliveries(admin, endpoint["id"], count=2, status="delivered")

    async def count(session: Any) -> tuple[int, int]:
        messages = select(WebhookMessage.id).where(WebhookMessage.endpoint_id == endpoint["id"])
        attempts = select(WebhookAttempt.id).where(WebhookAttempt.message_id.in_(messages))
        return (
            len((await session.execute(messages)).all()),
            len((await session.execute(attempts)).all()),
        )

    assert await database.transaction(count) == (2, 2)
    assert len(receiver.requests) == 2
