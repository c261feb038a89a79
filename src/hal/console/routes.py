"""The console's router, with every screen on it."""

# Each screen's module adds its routes to the router when imported.
from hal.console import audit, data, people, privacy, project, tokens, webhooks  # noqa: F401
from hal.console.base import AdminOnly, admins_only, router

__all__ = ["AdminOnly", "admins_only", "router"]
