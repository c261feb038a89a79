"""Rates and schedules written in settings: a rate limit (`"120/minute"`) and the webhook retry
schedule (`"0,5,300"`), parsed once when the settings are read."""

from __future__ import annotations

import math

from limits import RateLimitItem, parse


def parse_rate(rate: str | None) -> RateLimitItem | None:
    """`"120/minute"`, `"10/second"`; empty or `"off"` disables the limit."""
    if not rate or rate.strip().lower() in {"off", "0", "none"}:
        return None
    return parse(rate)


def parse_retry_schedule(text: str) -> tuple[float, ...]:
    """`"0,5,300"`: seconds before each attempt, the first one included."""
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError("the retry schedule is comma-separated seconds, e.g. 0,5,300") from None
    if not delays or any(not math.isfinite(d) or d < 0 for d in delays):
        raise ValueError("the retry schedule needs one or more delays of 0 seconds or more")
    return delays


def check_retry_schedule(text: str) -> str:
    parse_retry_schedule(text)
    return text
