"""The console's router, with every screen on it."""

from hal.console import data, people, project, tokens, webhooks  # noqa: F401 (their screens join the router)
from hal.console.base import AdminOnly, admins_only, router

__all__ = ["AdminOnly", "admins_only", "router"]
