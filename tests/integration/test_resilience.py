"""Crashes and several processes: nothing acknowledged is lost, nothing is half-written, and
two server processes never create duplicates (real servers, real databases)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.factories import make_project
from tests.servers import Server

pytestmark = pytest.mark.server


async def _stream(url: str, app_id: str, worker: int, acknowledged: list[int], stop_at: float):
    """Identify then track, one person after another, until the server dies or time is up."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        i = worker
        while time.monotonic() < stop_at:
            try:
                identified = await http.post(
                    "/api/widget/identify",
                    json={
                        "app_id": app_id,
                        "visitor_id": f"v{i}",
                        "user_id": f"u{i}",
                        "email": f"u{i}@example.com",
                        "metadata": {"i": i},
                        "company": {"id": f"c{i % 5}", "metadata": {f"k{i}": i}},
                    },
                )
                tracked = await http.post(
                    "/api/widget/track",
                    json={"app_id": app_id, "visitor_id": f"v{i}", "event": "step",
                          "event_id": f"e{i}", "company_id": f"c{i % 5}"},
                )  # fmt: skip
            except httpx.HTTPError:
                return  # the server is gone
            if identified.status_code == 200 and tracked.status_code == 200:
                acknowledged.append(i)
            i += 4


async def test_sigkill_mid_stream_loses_no_acknowledged_write(
    database_url, database, inspect, artifacts_dir
):
    project = await make_project(database)
    server = Server(database_url, log=artifacts_dir / "server-crash.log").start()
    acknowledged: list[int] = []
    stop_at = time.monotonic() + 30
    streams = [
        asyncio.create_task(_stream(server.url, project.app_id, w, acknowledged, stop_at))
        for w in range(4)
    ]
    await asyncio.sleep(1.5)
    server.kill()  # mid-stream, no graceful shutdown
    await asyncio.gather(*streams)
    assert len(acknowledged) > 10, "the stream should have been running before the crash"

    restarted = Server(database_url, log=artifacts_dir / "server-crash.log").start()
    try:
        async with httpx.AsyncClient(base_url=restarted.url) as http:
            again = await http.post(
                "/api/widget/identify",
                json={"app_id": project.app_id, "visitor_id": "after", "user_id": "after"},
            )
            assert again.status_code == 200
    finally:
        restarted.stop()

    contacts = {c.user_id: c for c in await inspect.contacts(project.app_id)}
    links = set(await inspect.links(project.app_id))
    events = {e.event_key: e for e in await inspect.events(project.app_id, "step")}
    for i in acknowledged:  # every acknowledged write is there
        assert f"u{i}" in contacts and f"e{i}" in events
    for user_id, contact in contacts.items():  # and nothing is half-written
        if user_id == "after":
            continue
        i = int(user_id[1:])
        assert contact.metadata_ == {"i": i}
        assert (contact.id, f"c{i % 5}") in links
    for key, event in events.items():
        assert event.contact_id == contacts[f"u{key[1:]}"].id


async def test_two_server_processes_never_duplicate_or_lose_a_key(
    database_url, database, inspect, artifacts_dir
):
    project = await make_project(database)
    log = artifacts_dir / "server-two-processes.log"
    first, second = Server(database_url, log=log).start(), Server(database_url, log=log).start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            requests = [
                http.post(
                    f"{(first if n % 2 else second).url}/api/widget/identify",
                    json={
                        "app_id": project.app_id,
                        "visitor_id": f"v{n}",
                        "user_id": f"shared-{n % 6}",
                        "email": f"shared-{n % 6}@example.com",
                        "metadata": {f"k{n}": n},
                        "company": {"id": "acme", "metadata": {f"c{n}": n}},
                        "company_ids": ["beta"],
                    },
                )
                for n in range(48)
            ]
            responses = await asyncio.gather(*requests)
    finally:
        first.stop()
        second.stop()
    assert [r.status_code for r in responses] == [200] * 48, responses[0].text
    contacts = await inspect.contacts(project.app_id)
    assert sorted(c.user_id for c in contacts) == [f"shared-{u}" for u in range(6)]
    for contact in contacts:
        u = int(contact.user_id.split("-")[1])
        assert contact.metadata_ == {f"k{n}": n for n in range(48) if n % 6 == u}
    companies = await inspect.companies(project.app_id)
    assert sorted(c.external_id for c in companies) == ["acme", "beta"]
    acme = next(c for c in companies if c.external_id == "acme")
    assert acme.metadata_ == {f"c{n}": n for n in range(48)}
    assert len(await inspect.links(project.app_id)) == 12
