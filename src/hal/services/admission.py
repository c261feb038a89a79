"""Abuse limits on the public widget routes: per project, per visitor, and new visitors per
project, in-process by default or shared by every process through Redis."""

from __future__ import annotations

import inspect
import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from hal.domain.errors import RateLimited

log = logging.getLogger("hal.admission")


def parse_rate(rate: str | None) -> RateLimitItem | None:
    """`"120/minute"`, `"10/second"`; empty or `"off"` disables the limit."""
    if not rate or rate.strip().lower() in {"off", "0", "none"}:
        return None
    return parse(rate)


class Admission:
    """Counts widget calls and refuses them with 429 past a limit."""

    def __init__(
        self,
        *,
        storage_url: str,
        per_project: str | None,
        per_visitor: str | None,
        new_visitors: str | None,
        new_visitors_per_client: str | None = None,
    ) -> None:
        scheme = storage_url.split("://", 1)[0]
        async_url = storage_url if scheme.startswith("async+") else f"async+{storage_url}"
        self.limiter = FixedWindowRateLimiter(storage_from_string(async_url))
        self.per_project = parse_rate(per_project)
        self.per_visitor = parse_rate(per_visitor)
        self.new_visitors = parse_rate(new_visitors)
        self.new_visitors_per_client = parse_rate(new_visitors_per_client)

    async def _hit(self, item: RateLimitItem | None, *keys: str, what: str) -> None:
        if item is None:
            return
        try:
            allowed = await self.limiter.hit(item, *keys)
            if allowed:
                return
            stats = await self.limiter.get_window_stats(item, *keys)
        except Exception:  # the limiter's store is down: serve rather than fail every call
            log.warning("rate limit store unavailable; %s not counted", what, exc_info=True)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            "rate_limited",
            f"too many {what}; retry in {retry_after} s",
            retry_after=retry_after,
            field="app_id" if what != "calls for this visitor" else "visitor_id",
        )

    async def close(self) -> None:
        """Close the connections to a shared store (Redis); nothing to do in memory."""
        bridge = getattr(self.limiter.storage, "bridge", None)
        pool = getattr(getattr(bridge, "storage", None), "connection_pool", None)
        if pool is not None:
            result = pool.disconnect()
            if inspect.isawaitable(result):
                await result

    async def project_call(self, app_id: str) -> None:
        await self._hit(self.per_project, "project", app_id, what="calls for this project")

    async def visitor_call(self, app_id: str, visitor_id: str) -> None:
        await self._hit(
            self.per_visitor, "visitor", app_id, visitor_id, what="calls for this visitor"
        )

    async def new_visitor(self, app_id: str, client: str | None) -> None:
        """Count a visitor seen for the first time: per client address first, so one client
        cannot spend the project's whole budget, then per project."""
        if client is not None:
            await self._hit(
                self.new_visitors_per_client,
                "new-visitor-client",
                app_id,
                client,
                what="new visitors from this address",
            )
        await self._hit(self.new_visitors, "new-visitor", app_id, what="new visitors")
