"""A small Server-Sent Events client for tests: reads a real `text/event-stream` response."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    event: str
    id: str | None
    data: str

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.data)
        return document


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """Events as they arrive (comments, such as keep-alives, are skipped)."""
    name, event_id, data = "message", None, list[str]()
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(name, event_id, "\n".join(data))
            name, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
