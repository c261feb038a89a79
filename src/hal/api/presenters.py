"""Shape database rows into the response models of `hal.schemas`."""

from __future__ import annotations

from hal.db.models import Company, Contact
from hal.domain.stages import StageDecision, StageMode
from hal.schemas import CompanyOut, ContactOut, StageWriteOut


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=contact.id,
        user_id=contact.user_id,
        email=contact.email,
        name=contact.name,
        metadata=contact.metadata_,
        verified=contact.verified,
    )


def company_out(company: Company | None) -> CompanyOut | None:
    if company is None:
        return None
    return CompanyOut(
        id=company.external_id, name=company.name, stage=company.stage, metadata=company.metadata_
    )


def stage_out(
    decision: StageDecision | None, mode: StageMode | None, company: Company | None
) -> StageWriteOut | None:
    if decision is None or mode is None:
        return None
    return StageWriteOut(
        applied=decision.applied,
        previous=decision.previous,
        stage=company.stage if company is not None else None,
        mode=mode,
        reason=decision.reason,
    )
