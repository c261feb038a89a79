"""POST /api/widget/set-properties: merge facts into the bound contact, or keep them on the
anonymous visitor until identify carries them over."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database
from hal.db.types import utcnow
from hal.domain.limits import Limits
from hal.domain.validation import check_metadata, check_protected_keys, merge_metadata
from hal.schemas import SetPropertiesRequest
from hal.services.visitors import Caller, WidgetCall, load_project, open_widget_call


async def set_properties(
    *,
    db: Database,
    session: AsyncSession,
    request: SetPropertiesRequest,
    caller: Caller,
    limits: Limits,
) -> WidgetCall:
    """Merge `properties` (null deletes) into the visitor's contact or anonymous properties."""
    now = utcnow()
    project = await load_project(session=session, app_id=request.app_id, caller=caller)
    properties = check_metadata(request.properties, field="properties", limits=limits)
    check_protected_keys(
        properties, protected=frozenset(project.protected_keys), signed={}, field="properties"
    )
    call = await open_widget_call(
        db=db,
        session=session,
        project=project,
        visitor_id=request.visitor_id,
        caller=caller,
        limits=limits,
        now=now,
    )
    if call.contact is None:
        call.visitor.properties = merge_metadata(call.visitor.properties, properties)
    else:
        call.contact.metadata_ = merge_metadata(call.contact.metadata_, properties)
        call.contact.last_seen_at = now
    await session.flush()
    return call
