"""The change log's types, whose person each names, and what a change says changed (README
"Change log and live stream": `data.changed` names the fields and metadata keys that changed,
with old and new values)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class ChangeType(StrEnum):
    """Every type of change the log records (README "Change log and live stream")."""

    CONTACT_CREATED = "contact.created"
    CONTACT_UPDATED = "contact.updated"
    CONTACT_MERGED = "contact.merged"
    CONTACT_DELETED = "contact.deleted"
    COMPANY_CREATED = "company.created"
    COMPANY_UPDATED = "company.updated"
    COMPANY_STAGE_CHANGED = "company.stage_changed"
    CONTACT_COMPANY_LINKED = "contact.company_linked"
    DEAL_UPDATED = "deal.updated"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_CLOSED = "conversation.closed"
    CONVERSATION_REOPENED = "conversation.reopened"
    MESSAGE_CREATED = "message.created"
    EVENT_TRACKED = "event.tracked"
    IMPORT_COMPLETED = "import.completed"
    IMPORT_FAILED = "import.failed"

    def person(self, data: dict[str, Any]) -> int | None:
        """The contact whose data a change of this type carries, kept beside it (a column)
        so an erasure finds every copy; None for a change of ids only."""
        key = _PERSON_KEY[self]
        value = data.get(key) if key is not None else None
        return value if isinstance(value, int) else None


# Which key of a change's data names its person: the contact itself, the contact it is
# about, or nobody (a merge and a deletion carry ids only; company changes name no one).
_PERSON_KEY: dict[ChangeType, str | None] = {
    ChangeType.CONTACT_CREATED: "id",
    ChangeType.CONTACT_UPDATED: "id",
    ChangeType.CONTACT_MERGED: None,
    ChangeType.CONTACT_DELETED: None,
    ChangeType.COMPANY_CREATED: None,
    ChangeType.COMPANY_UPDATED: None,
    ChangeType.COMPANY_STAGE_CHANGED: None,
    ChangeType.CONTACT_COMPANY_LINKED: "contact_id",
    ChangeType.DEAL_UPDATED: None,
    ChangeType.CONVERSATION_CREATED: "contact_id",
    ChangeType.CONVERSATION_CLOSED: "contact_id",
    ChangeType.CONVERSATION_REOPENED: "contact_id",
    ChangeType.MESSAGE_CREATED: "contact_id",
    ChangeType.EVENT_TRACKED: "contact_id",
    ChangeType.IMPORT_COMPLETED: None,
    ChangeType.IMPORT_FAILED: None,
}

CHANGE_TYPES = tuple(ChangeType)


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
