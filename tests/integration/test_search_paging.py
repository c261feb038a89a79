"""README "Search": paging by cursor never repeats or skips a record that did not change, while
another client writes records before, among and after the pages (a real server, a real
concurrent writer)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import httpx
import pytest

from tests.factories import make_project, make_token, unique
from tests.servers import running_server

pytestmark = pytest.mark.server

QUERY = {"field": "metadata.seats", "operator": "!=", "value": 3}  # missing seats match too


@pytest.fixture(scope="module")
def server(database_url: str, artifacts_dir) -> Iterator[str]:
    with running_server(database_url, log=artifacts_dir / "server-search-paging.log") as url:
        yield url


def _seats(i: int) -> dict[str, int]:
    return {"seats": i % 7} if i % 5 else {}  # every fifth has none


async def test_pages_hold_every_unchanged_record_once_while_others_are_written(server, database):
    project = await make_project(database)
    token = await make_token(database, project)
    search_url = f"/api/projects/{project.app_id}/contacts/search"
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:

        async def identify(user_id: str, metadata: dict[str, int]) -> None:
            body = {"app_id": project.app_id, "visitor_id": unique("v"), "user_id": user_id,
                    "metadata": metadata}  # fmt: skip
            answer = await http.post("/api/widget/identify", json=body)
            assert answer.status_code == 200, answer.text

        stable = {f"stable-{i}": _seats(i) for i in range(60)}
        moving = [f"moving-{i}" for i in range(10)]
        for user_id, metadata in stable.items():
            await identify(user_id, metadata)
        for i, user_id in enumerate(moving):
            await identify(user_id, {"seats": i % 7})

        reading = asyncio.Event()
        written = 0

        async def writer() -> None:
            nonlocal written
            for n in itertools.count():
                if reading.is_set():
                    return
                # New records at every place of the order, and records that change places.
                await identify(f"new-{n}", _seats(n))
                await identify(moving[n % len(moving)], {"seats": (n * 3) % 7})
                written += 2

        writing = asyncio.create_task(writer())
        found: list[str] = []
        cursor = None
        headers = {"Authorization": f"Bearer {token}"}
        while True:
            body = {"query": QUERY, "sort": {"field": "metadata.seats"}, "limit": 4,
                    "cursor": cursor}  # fmt: skip
            page = await http.post(search_url, json=body, headers=headers)
            assert page.status_code == 200, page.text
            found += [item["user_id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
            await asyncio.sleep(0.01)  # the writer gets its turn between pages
        writes_while_paging = written
        reading.set()
        await writing

    assert writes_while_paging >= 10  # the pages were read while records were written
    expected = sorted(u for u, metadata in stable.items() if metadata.get("seats") != 3)
    assert sorted(u for u in found if u.startswith("stable-")) == expected
