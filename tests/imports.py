"""Following an import job (README "Batch writes and imports") to its end over HTTP: the
upload answers 202 with the job, GET answers where it is."""

from __future__ import annotations

import asyncio
import time

import httpx


async def finished(
    http: httpx.AsyncClient, answer: httpx.Response, token: str, *, timeout: float = 120
) -> httpx.Response:
    """The job an upload queued (`answer`, a 202), once it has ended: GET's answer. Any
    other answer (a refused file) is returned as it is."""
    if answer.status_code != 202:
        return answer
    return await ended(http, answer.headers["location"], token, timeout=timeout)


async def ended(
    http: httpx.AsyncClient, location: str, token: str, *, timeout: float = 120
) -> httpx.Response:
    """GET the job at `location` until it has ended; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = await http.get(location, headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200, got.text
        if got.json()["status"] in {"done", "failed"}:
            return got
        assert time.monotonic() < deadline, f"the import did not end: {got.text}"
        await asyncio.sleep(0.01)
