"""POST /api/widget/set-properties: merge facts into the bound contact, or keep them on the
anonymous visitor until identify carries them over."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hal.db.engine import Tx
from hal.db.store.base import ContactRow
from hal.db.store.people import update_contact, update_visitor
from hal.domain.limits import Limits
from hal.domain.validation import check_metadata, check_protected_keys, merge_metadata
from hal.schemas import SetPropertiesRequest
from hal.services.widget_call import Caller, open_widget_call


@dataclass(frozen=True)
class PropertiesResult:
    visitor_key: str
    contact: ContactRow | None
    properties: dict[str, Any]  # what the visitor keeps while anonymous


async def set_properties(
    tx: Tx, *, request: SetPropertiesRequest, caller: Caller, limits: Limits
) -> PropertiesResult:
    """Merge `properties` (null deletes) into the visitor's contact or anonymous properties."""
    call = await open_widget_call(
        tx, app_id=request.app_id, visitor_id=request.visitor_id, caller=caller, limits=limits
    )
    properties = check_metadata(request.properties, field="properties", limits=limits)
    check_protected_keys(
        properties, protected=call.project.protected_keys, signed={}, field="properties"
    )
    visitor, contact = call.visitor, call.contact
    if contact is None:
        kept = merge_metadata(visitor.properties, properties)
        await update_visitor(tx, visitor.id, properties=kept)
        return PropertiesResult(visitor.visitor_key, None, kept)
    call.check_contact_write()
    contact = replace(contact, metadata_=merge_metadata(contact.metadata_, properties))
    await update_contact(tx, contact.id, {"metadata": contact.metadata_, "last_seen_at": tx.now})
    return PropertiesResult(visitor.visitor_key, contact, visitor.properties)
