"""Inbox login throttling: failed logins counted per email and per client address, in the
same store as the widget limits (in-process, or shared by every process through Redis)."""

from __future__ import annotations

import inspect
import logging
import math
import time

from limits import RateLimitItem
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from hal.domain.rates import parse_rate

log = logging.getLogger("hal.login")


class LoginThrottle:
    """Refuses login attempts for an email or a client address past its failures.

    An attempt is counted before its password is checked, so parallel attempts cannot all
    slip under the limit; a successful login gives its count back.
    """

    def __init__(self, *, storage_url: str, per_email: str | None, per_client: str | None):
        scheme = storage_url.split("://", 1)[0]
        async_url = storage_url if scheme.startswith("async+") else f"async+{storage_url}"
        self.limiter = FixedWindowRateLimiter(storage_from_string(async_url))
        self.per_email = parse_rate(per_email)
        self.per_client = parse_rate(per_client)

    def _counters(self, email: str, client: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        counters = [
            (self.per_client, ("login-client", client)),
            (self.per_email, ("login-email", email.strip().lower())),
        ]
        return [(item, keys) for item, keys in counters if item is not None]

    async def attempt(self, *, email: str, client: str) -> int | None:
        """Count an attempt; the seconds to wait when refused, else None."""
        admitted: list[tuple[RateLimitItem, tuple[str, ...]]] = []
        try:
            for item, keys in self._counters(email, client):
                if not await self.limiter.hit(item, *keys):
                    for earlier, earlier_keys in admitted:  # not checked: not counted
                        await self.limiter.hit(earlier, *earlier_keys, cost=-1)
                    stats = await self.limiter.get_window_stats(item, *keys)
                    return max(1, math.ceil(stats.reset_time - time.time()))
                admitted.append((item, keys))
        except Exception:  # the store is down: let people log in rather than lock everyone out
            log.warning("rate limit store unavailable; login not counted", exc_info=True)
        return None

    async def succeeded(self, *, email: str, client: str) -> None:
        """A successful login: the email's failures are forgotten, the client's attempt too."""
        try:
            for item, keys in self._counters(email, client):
                if keys[0] == "login-email":
                    await self.limiter.clear(item, *keys)
                else:
                    await self.limiter.hit(item, *keys, cost=-1)
        except Exception:
            log.warning("rate limit store unavailable; login not counted", exc_info=True)

    async def close(self) -> None:
        """Close the connections to a shared store (Redis); nothing to do in memory."""
        bridge = getattr(self.limiter.storage, "bridge", None)
        pool = getattr(getattr(bridge, "storage", None), "connection_pool", None)
        if pool is not None:
            result = pool.disconnect()
            if inspect.isawaitable(result):
                await result
