"""Pages of a list, newest or oldest first by row id: the cursor the API gives (the last row's
id, opaque to clients), its check, and the page itself."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from hal.domain.errors import InvalidInput

MAX_PAGE = 200
MAX_ID = 2**63 - 1  # ids are signed 64-bit in the database; a larger one cannot be bound


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        last_id = int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        last_id = 0
    if not 1 <= last_id <= MAX_ID:
        raise InvalidInput("invalid_cursor", "cursor is not one this API gave", field="cursor")
    return last_id


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("invalid_limit", f"limit must be 1-{MAX_PAGE}", field="limit")
    return limit


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def page_of(rows: list[Any], limit: int) -> Page:
    """A page from `limit + 1` rows read (one more says whether another page follows)."""
    has_more = len(rows) > limit
    items = rows[:limit]
    return Page(items, encode_cursor(items[-1].id) if has_more and items else None)
