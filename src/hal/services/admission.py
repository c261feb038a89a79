"""Abuse limits on the public widget routes: per project, per visitor, and new visitors per
project, in-process by default or shared by every process through Redis."""

from __future__ import annotations

import inspect
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from hal.domain.errors import RateLimited
from hal.domain.rates import parse_rate

log = logging.getLogger("hal.admission")


@dataclass
class Ticket:
    """One widget request's admission, made before its transaction (which may run twice):
    its calls are counted, and whether it may add a visitor is known; the transaction says
    whether it did, and the visitor is counted after it commits."""

    app_id: str
    client: str | None
    refusal: RateLimited | None = None  # what adding a visitor would meet
    added_visitor: bool = False

    def add_visitor(self) -> None:
        """The transaction is adding a visitor: refused past the new-visitor limits."""
        if self.refusal is not None:
            raise self.refusal
        self.added_visitor = True


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

    async def _hit(
        self, item: RateLimitItem | None, *keys: str, what: str, count: bool = True
    ) -> None:
        """Count one (or with `count=False`, only see whether one more would pass) and refuse
        past the limit."""
        if item is None:
            return
        try:
            check = self.limiter.hit if count else self.limiter.test
            if await check(item, *keys):
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

    async def admit(self, app_id: str, visitor_id: str, client: str | None) -> Ticket:
        """Count a widget call for its project and its visitor (429 past either limit), and
        see whether it may add a visitor, before its transaction starts."""
        await self.project_call(app_id)
        await self.visitor_call(app_id, visitor_id)
        try:
            await self.new_visitor(app_id, client, count=False)
        except RateLimited as refusal:
            return Ticket(app_id, client, refusal)
        return Ticket(app_id, client)

    async def settle(self, ticket: Ticket) -> None:
        """After the call committed: count the visitor it added."""
        if ticket.added_visitor:
            await self.new_visitor(ticket.app_id, ticket.client)

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

    async def new_visitor(self, app_id: str, client: str | None, *, count: bool = True) -> None:
        """Count a visitor seen for the first time: per client address first, so one client
        cannot spend the project's whole budget, then per project."""
        if client is not None:
            await self._hit(
                self.new_visitors_per_client,
                "new-visitor-client",
                app_id,
                client,
                what="new visitors from this address",
                count=count,
            )
        await self._hit(self.new_visitors, "new-visitor", app_id, what="new visitors", count=count)
