"""What a change says changed (README "Change log and live stream": `data.changed` names the fields
and metadata keys that changed, with old and new values)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHANGE_TYPES = (
    "contact.created",
    "contact.updated",
    "contact.merged",
    "contact.deleted",
    "company.created",
    "company.updated",
    "company.stage_changed",
    "contact.company_linked",
    "deal.updated",
    "conversation.created",
    "conversation.closed",
    "conversation.reopened",
    "message.created",
    "event.tracked",
)


def changed_values(
    before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """`{field: {"old", "new"}}` for every field that differs; `metadata` is compared key by
    key and reported as `metadata.<key>` (a deleted key has `new: null`)."""
    changed: dict[str, dict[str, Any]] = {}
    for field in fields:
        old, new = before.get(field), after.get(field)
        if field == "metadata":
            old_keys, new_keys = old or {}, new or {}
            for key in sorted(set(old_keys) | set(new_keys)):
                if old_keys.get(key) != new_keys.get(key):
                    changed[f"metadata.{key}"] = {
                        "old": old_keys.get(key),
                        "new": new_keys.get(key),
                    }
        elif old != new:
            changed[field] = {"old": old, "new": new}
    return changed
