"""POST /api/widget/set-properties: merge facts into the bound contact, or keep them on the
anonymous visitor until identify carries them over."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hal.db.engine import Tx
from hal.db.store.base import ContactRow
from hal.db.store.people import update_contact, update_visitor
from hal.domain.attributes import Model, TypedWrite
from hal.domain.changes import ChangeType, changed_values
from hal.domain.limits import Limits
from hal.domain.matching import seen_recently
from hal.domain.validation import check_metadata, check_protected_keys, merge_metadata
from hal.schemas import SetPropertiesFields, SetPropertiesRequest
from hal.services.attributes import check_types, define_new
from hal.services.change_data import contact_data
from hal.services.widget_call import Caller, WidgetCall, open_widget_call


@dataclass(frozen=True)
class PropertiesResult:
    visitor_key: str
    contact: ContactRow | None
    properties: dict[str, Any]  # what the visitor keeps while anonymous
    warnings: list[str]  # properties left out: `attribute_type:KEY`, ...


async def set_properties(
    tx: Tx, *, request: SetPropertiesRequest, caller: Caller, limits: Limits
) -> PropertiesResult:
    """Merge `properties` (null deletes) into the visitor's contact or anonymous properties."""
    call = await open_widget_call(
        tx, app_id=request.app_id, visitor_id=request.visitor_id, caller=caller, limits=limits
    )
    visitor = call.widget_visitor
    if call.contact is None:
        typed = await _defined(call, _checked(call, request, limits), limits)
        kept = merge_metadata(visitor.properties, typed.values)
        await update_visitor(tx, visitor.id, properties=kept)
        return PropertiesResult(visitor.visitor_key, None, kept, typed.warnings)
    contact, warnings = await write_properties(call, request, limits)
    return PropertiesResult(visitor.visitor_key, contact, visitor.properties, warnings)


def _checked(call: WidgetCall, request: SetPropertiesFields, limits: Limits) -> TypedWrite:
    """The properties checked (limits, protected keys, attribute types: the team's call is
    refused on a type problem, the widget's leaves the key out and warns)."""
    properties = check_metadata(request.properties, field="properties", limits=limits)
    if not call.trusted:
        check_protected_keys(
            properties, protected=call.project.protected_keys, signed={}, field="properties"
        )
    return check_types(
        call.project, Model.CONTACT, properties, limits=limits, refuse=call.trusted,
        field="properties",
    )  # fmt: skip


async def _defined(call: WidgetCall, typed: TypedWrite, limits: Limits) -> TypedWrite:
    return await define_new(
        call.tx,
        typed,
        project=call.project,
        model=Model.CONTACT,
        limits=limits,
        refuse=call.trusted,
        field="properties",
    )


async def write_properties(
    call: WidgetCall, request: SetPropertiesFields, limits: Limits
) -> tuple[ContactRow, list[str]]:
    """Merge `properties` into the call's contact (a widget visitor's, or one the team named);
    the contact and the warnings."""
    tx, contact = call.tx, call.require_contact()
    typed = _checked(call, request, limits)
    call.check_contact_write()
    typed = await _defined(call, typed, limits)
    properties = typed.values
    merged = merge_metadata(contact.metadata_, properties)
    changed = changed_values({"metadata": contact.metadata_}, {"metadata": merged}, ["metadata"])
    # A team write is not the person being seen; the widget's moves last_seen_at at most
    # once a minute (hal.domain.matching.SEEN_EVERY), so a call that changes nothing writes
    # nothing to the contact.
    seen = call.visitor is not None and (changed or not seen_recently(contact.last_seen_at, tx.now))
    values: dict[str, Any] = {"last_seen_at": tx.now} if seen else {}
    if changed:
        values.update(metadata=merged, version=contact.version + 1)
    contact = replace(
        contact,
        metadata_=merged,
        last_seen_at=values.get("last_seen_at", contact.last_seen_at),
        version=values.get("version", contact.version),
    )
    await update_contact(tx, contact.id, values)
    if changed:
        tx.record(
            call.project.id,
            ChangeType.CONTACT_UPDATED,
            {**contact_data(contact), "changed": changed},
        )
    return contact, typed.warnings
