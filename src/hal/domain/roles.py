"""Agents' roles (README "Agents and roles"): an `agent` works in the inbox; an `admin` also
uses the console and the admin actions. A project always keeps one admin."""

from __future__ import annotations

from enum import StrEnum

from hal.domain.errors import Conflict


class Role(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


def first_role(admins: int) -> Role:
    """The role of a new agent when none is asked for: a project's first agent is its admin."""
    return Role.ADMIN if admins == 0 else Role.AGENT


def check_an_admin_stays(*, admins_after: int, agents_after: int) -> None:
    """409 `last_admin` when a change (a demotion, a removal) would leave the project's agents
    without an admin. Removing a project's only agent leaves no one to lead: it is allowed."""
    if agents_after > 0 and admins_after == 0:
        raise Conflict("last_admin", "a project keeps at least one admin", field="role")
