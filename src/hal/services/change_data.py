"""Objects as the team API shows them, and the `data` of a change (that view plus its
`version`): one shape for the answers and the change log."""

from __future__ import annotations

from typing import Any

from hal.db.models import Company, Contact, Conversation, Deal, Message
from hal.db.store.base import CompanyRow, ContactRow
from hal.domain.changes import changed_values
from hal.domain.crm import DealStatus, instant_text
from hal.domain.stages import StageDecision, StageMode, StageSource
from hal.schemas import CompanyOut, ContactOut, ContactSummary, DealOut, MessageOut

CONTACT_FIELDS = ("user_id", "email", "name", "metadata", "verified", "email_verified")


def _contact_fields(contact: Contact | ContactRow) -> dict[str, Any]:
    """The contact as the API shows it, by field name (`metadata`, not the column's name)."""
    return {
        "id": contact.id,
        "user_id": contact.user_id,
        "email": contact.email,
        "name": contact.name,
        "metadata": contact.metadata_,
        "verified": contact.verified,
        "email_verified": contact.email_verified,
    }


def contact_changes(before: ContactRow, after: ContactRow) -> dict[str, Any]:
    """What a `contact.updated` names: each field and metadata key that changed, old and new
    (`last_seen_at` moves on every call: not a change)."""
    return changed_values(_contact_fields(before), _contact_fields(after), CONTACT_FIELDS)


def contact_out(contact: Contact | ContactRow) -> ContactOut:
    return ContactOut(**_contact_fields(contact))


def contact_summary(contact: Contact | ContactRow) -> ContactSummary:
    return ContactSummary(
        **_contact_fields(contact),
        created_at=contact.created_at,
        last_seen_at=contact.last_seen_at,
    )


def company_view(company: Company | CompanyRow) -> CompanyOut:
    return CompanyOut(
        id=company.external_id, name=company.name, stage=company.stage, metadata=company.metadata_
    )


def contact_data(contact: Contact | ContactRow) -> dict[str, Any]:
    return {**contact_summary(contact).model_dump(mode="json"), "version": contact.version}


def company_data(company: Company | CompanyRow) -> dict[str, Any]:
    return {**company_view(company).model_dump(mode="json"), "version": company.version}


def stage_change_data(
    company: Company | CompanyRow, decision: StageDecision, *, mode: StageMode, source: StageSource
) -> dict[str, Any]:
    """`company.stage_changed`: the company after the write, and what the write was."""
    return {
        **company_data(company),
        "stage": company.stage,
        "previous": decision.previous,
        "source": source.value,
        "mode": mode.value,
    }


def deal_view(deal: Deal | Any) -> DealOut:
    """A deal as the team API shows it (an ORM row or a Core row)."""
    return DealOut(
        id=deal.external_id,
        name=deal.name,
        amount=float(deal.amount) if deal.amount is not None else None,
        currency=deal.currency,
        stage=deal.stage,
        status=DealStatus(deal.status),
        close_date=deal.close_date,
        metadata=deal.metadata_ if isinstance(deal, Deal) else deal.metadata,
        updated_at=deal.updated_at,
    )


def conversation_data(conversation: Conversation | Any) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "contact_id": conversation.contact_id,
        "status": conversation.status,
        "created_at": instant_text(conversation.created_at),
        "last_message_at": instant_text(conversation.last_message_at),
    }


def message_data(conversation: Conversation | Any, message: Message | Any) -> dict[str, Any]:
    shown = MessageOut(
        id=message.id,
        author=message.author,
        author_name=message.author_name,
        body=message.body,
        sender_verified=message.sender_verified,
        created_at=message.created_at,
    )
    return {
        **shown.model_dump(mode="json"),
        "conversation_id": conversation.id,
        "contact_id": conversation.contact_id,
    }
