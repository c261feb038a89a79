"""POST /api/widget/set-properties: merge facts into the bound contact, or keep them on the
anonymous visitor until identify carries them over."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database, lock_key
from hal.db.models import Contact, Visitor
from hal.db.queries import contact_for_update
from hal.db.types import utcnow
from hal.domain.limits import Limits
from hal.domain.validation import check_metadata, check_protected_keys, merge_metadata
from hal.schemas import SetPropertiesRequest
from hal.services.visitors import Caller, load_project, load_visitor, require_session


@dataclass(frozen=True)
class SetPropertiesResult:
    visitor: Visitor
    contact: Contact | None


async def set_properties(
    *,
    db: Database,
    session: AsyncSession,
    request: SetPropertiesRequest,
    caller: Caller,
    limits: Limits,
) -> SetPropertiesResult:
    """Merge `properties` (null deletes) into the visitor's contact or anonymous properties."""
    now = utcnow()
    project = await load_project(session=session, app_id=request.app_id, caller=caller)
    properties = check_metadata(request.properties, field="properties", limits=limits)
    check_protected_keys(
        properties, protected=frozenset(project.protected_keys), signed={}, field="properties"
    )
    await db.lock(session, [lock_key(project.id, "visitor", request.visitor_id)])
    visitor = await load_visitor(
        session=session, project=project, visitor_id=request.visitor_id, limits=limits, now=now
    )
    contact = await contact_for_update(session, visitor.contact_id) if visitor.contact_id else None
    require_session(project=project, visitor=visitor, bound=contact, caller=caller)
    if contact is None:
        visitor.properties = merge_metadata(visitor.properties, properties)
    else:
        contact.metadata_ = merge_metadata(contact.metadata_, properties)
        contact.last_seen_at = now
    await session.flush()
    return SetPropertiesResult(visitor=visitor, contact=contact)
