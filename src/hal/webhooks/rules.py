"""Webhook rules without I/O: which changes an endpoint receives, when a failed delivery is
tried again, and which addresses a delivery may reach (README "Webhooks")."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from hal.domain.changes import CHANGE_TYPES
from hal.domain.crm import instant_text
from hal.domain.errors import InvalidInput

# Every change type of the log (README "Change log and live stream") may be delivered.
DELIVERED_TYPES = CHANGE_TYPES
# Delivered only to endpoints that name them: there can be many per page view.
OPT_IN_TYPES = frozenset({"event.tracked"})
TEST_TYPE = "webhook.test"

MAX_URL_LENGTH = 2048
JITTER = 0.2
MAX_RETRY_AFTER = timedelta(hours=24)
# An endpoint that has failed this long without one success is disabled.
DISABLE_AFTER = timedelta(days=5)


class UrlNotAllowed(InvalidInput):
    """A webhook URL that HAL will not call (scheme, or an internal address)."""

    def __init__(self, message: str) -> None:
        super().__init__("url_not_allowed", message, field="url")


def check_events(events: Iterable[str]) -> list[str]:
    """The subscribed types, each once, in the order given; unknown types are refused."""
    checked: list[str] = []
    for index, event in enumerate(events):
        if event not in DELIVERED_TYPES:
            raise InvalidInput(
                "unknown_event_type",
                f"events[{index}]: {event!r} is not a change type; "
                f"use one of {', '.join(DELIVERED_TYPES)}",
                field=f"events[{index}]",
            )
        if event not in checked:
            checked.append(event)
    return checked


def subscribes(events: list[str], change_type: str) -> bool:
    """No events named: every type but the opt-in ones."""
    if events:
        return change_type in events
    return change_type not in OPT_IN_TYPES


def message_payload(change_type: str, created_at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The body a receiver gets: `{"type", "timestamp", "data"}`."""
    return {"type": change_type, "timestamp": instant_text(created_at), "data": data}


def webhook_id(message_id: int) -> str:
    """The `webhook-id` header of a message: the same on every attempt."""
    return f"msg_{message_id}"


def retry_delay(
    schedule: tuple[float, ...],
    attempts_made: int,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts, with jitter; None when the
    schedule is spent. A receiver's Retry-After is honoured (up to a day)."""
    if attempts_made >= len(schedule):
        return None
    delay = schedule[attempts_made] * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER.total_seconds()))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def should_disable(failing_since: datetime, now: datetime) -> bool:
    return now - failing_since >= DISABLE_AFTER


def check_url(url: str) -> tuple[str, str, int]:
    """The URL's scheme, host and port, or UrlNotAllowed (not http(s), no host, credentials)."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowed(f"url: longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"url: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise UrlNotAllowed("url: only http and https URLs are allowed")
    if not parts.hostname:
        raise UrlNotAllowed("url: the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("url: credentials in the URL are not allowed")
    if any(ch.isspace() for ch in url):
        raise UrlNotAllowed("url: the URL contains whitespace")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def is_public_address(address: str) -> bool:
    """True for an address on the public internet: not loopback, private, link-local,
    multicast, reserved, unspecified, shared (CGNAT) or otherwise non-global."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )
