"""Merge two contacts (README "Privacy and data hygiene"): `from`'s visitors, events,
conversations and links move to `into`; `into`'s fields win and its blanks are filled from
`from` (domain/privacy.py `plan_merge`); `from` is then gone (410 with `merged_into`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database, Tx
from hal.db.models import Contact, ContactMerge, Project
from hal.db.store.base import (
    CONTACT_COLUMNS,
    CONTACTS,
    CONVERSATIONS,
    EVENTS,
    LINKS,
    VISITORS,
    ContactRow,
    lock_people,
)
from hal.db.store.companies import guard_linked
from hal.db.store.people import merge_lead, update_contact
from hal.domain.changes import ChangeType
from hal.domain.errors import Gone, HalError, NotFound
from hal.domain.privacy import MergePlan, MergeSide, plan_merge, verified_pair
from hal.domain.verification import VerificationMode
from hal.services import team
from hal.services.audit import Actor, record_audit
from hal.services.change_data import contact_changes, contact_data


@dataclass(frozen=True)
class MergeResult:
    from_id: int
    into: ContactRow  # as it is after the merge (or would be, for a preview)
    changed: tuple[str, ...]
    visitors: int
    events: int
    conversations: int
    companies: int
    preview: bool
    verified_pair: bool  # both verified by their own proofs (a merge must be confirmed)


async def _contact(
    tx: Tx, project_id: int, contact_id: int, *, field: str, lock: bool = True
) -> ContactRow:
    query = select(*CONTACT_COLUMNS, CONTACTS.c.project_id, CONTACTS.c.erased_at).where(
        CONTACTS.c.id == contact_id
    )
    row = (await tx.execute(query.with_for_update(key_share=True) if lock else query)).first()
    if row is None or row.project_id != project_id or row.erased_at is not None:
        merged = (
            await tx.execute(
                select(ContactMerge.into_contact_id).where(
                    ContactMerge.from_contact_id == contact_id,
                    ContactMerge.project_id == project_id,
                )
            )
        ).scalar_one_or_none()
        if merged is not None:
            raise Gone(
                "contact_merged",
                f"contact {contact_id} was merged into contact {merged}",
                details={"merged_into": merged},
                field=field,
            )
        raise NotFound("unknown_contact", f"no contact {contact_id} in this project", field=field)
    return ContactRow.of(row)


def _side(contact: ContactRow) -> MergeSide:
    return MergeSide(
        id=contact.id,
        user_id=contact.user_id,
        email=contact.email,
        email_normalized=contact.email_normalized,
        name=contact.name,
        metadata=contact.metadata_,
        verified=contact.verified,
        email_verified=contact.email_verified,
    )


async def _count(tx: Tx, query: Any) -> int:
    return int((await tx.execute(query)).scalar_one())


async def _moves(tx: Tx, from_id: int, into_id: int) -> tuple[int, int, int, int]:
    count = func.count()
    taken = select(LINKS.c.company_id).where(LINKS.c.contact_id == into_id)
    return (
        await _count(tx, select(count).where(VISITORS.c.contact_id == from_id)),
        await _count(tx, select(count).where(EVENTS.c.contact_id == from_id)),
        await _count(tx, select(count).where(CONVERSATIONS.c.contact_id == from_id)),
        await _count(
            tx,
            select(count).where(
                and_(LINKS.c.contact_id == from_id, LINKS.c.company_id.not_in(taken))
            ),
        ),
    )


def _after(into: ContactRow, plan: MergePlan) -> ContactRow:
    return replace(
        into,
        user_id=plan.user_id,
        email=plan.email,
        email_normalized=plan.email_normalized,
        name=plan.name,
        metadata_=plan.metadata,
        verified=plan.verified,
        email_verified=plan.email_verified,
        version=into.version + (1 if plan.changed else 0),
    )


async def merge_contacts(
    tx: Tx,
    *,
    project: Project,
    from_id: int,
    into_id: int,
    preview: bool,
    actor: Actor,
    confirm_verified_pair: bool = False,
) -> MergeResult:
    """Merge `from` into `into` (or, with `preview`, say what would move). A merged contact
    gets a verified contact's protection: its companies are guarded as identify guards them."""
    seen = [
        await _contact(tx, project.id, i, field=f, lock=False)
        for i, f in ((from_id, "from"), (into_id, "into"))
    ]
    # The same advisory locks as identify takes on these keys, so no identify races the move.
    await lock_people(
        tx,
        project.id,
        user_ids=[c.user_id for c in seen if c.user_id],
        emails=[c.email_normalized for c in seen if c.email_normalized],
    )
    source = await _contact(tx, project.id, from_id, field="from")
    into = await _contact(tx, project.id, into_id, field="into")
    sides = _side(source), _side(into)
    plan = plan_merge(*sides, confirm_verified_pair=confirm_verified_pair or preview)
    visitors, events, conversations, companies = await _moves(tx, source.id, into.id)
    after = _after(into, plan)
    result = MergeResult(
        source.id,
        after,
        plan.changed,
        visitors,
        events,
        conversations,
        companies,
        preview,
        verified_pair(*sides),
    )
    if preview:
        return result
    # `from` is deleted before `into` takes its user_id or email (both are unique).
    await merge_lead(tx, lead_id=source.id, into_id=into.id, alias=plan.email_alias)
    values: dict[str, Any] = {
        "user_id": after.user_id,
        "email": after.email,
        "email_normalized": after.email_normalized,
        "name": after.name,
        "metadata": after.metadata_,
        "verified": after.verified,
        "email_verified": after.email_verified,
        "version": after.version,
    }
    await update_contact(tx, into.id, values)
    if after.verified and project.identity_verification != VerificationMode.DISABLED:
        await guard_linked(tx, into.id)
    tx.record(project.id, ChangeType.CONTACT_MERGED, {"from": source.id, "into": into.id})
    shown = contact_changes(into, after)
    tx.record(project.id, ChangeType.CONTACT_UPDATED, {**contact_data(after), "changed": shown})
    await record_audit(
        tx,
        project_id=project.id,
        actor=actor,
        action="contact.merged",
        target=str(into.id),
        changes={"from": source.id, "into": into.id, "fields": list(plan.changed)},
        now=tx.now,
    )
    return result


@dataclass(frozen=True)
class MergeScreen:
    """The inbox's merge page: the contact to merge into, the duplicates a search found, and
    the preview of merging `from` (or why it would be refused)."""

    into: Contact
    found: list[Contact]
    preview: MergeResult | None
    refusal: str | None


async def merge_screen(
    database: Database,
    *,
    project: Project,
    into_id: int,
    q: str | None,
    from_id: int | None,
    actor: Actor,
) -> MergeScreen:
    async def people(session: AsyncSession) -> tuple[Contact, list[Contact]]:
        into = await team.get_contact(session=session, project=project, contact_id=into_id)
        if not q or not q.strip():
            return into, []
        page = await team.search_contacts(
            session=session, project=project, q=q, cursor=None, limit=20
        )
        return into, [c for c in page.items if c.id != into_id]

    into, found = await database.transaction(people)
    preview, refusal = None, None
    if from_id is not None:
        try:
            preview = await database.run(
                lambda tx: merge_contacts(
                    tx, project=project, from_id=from_id, into_id=into_id, preview=True, actor=actor
                )
            )
        except HalError as exc:
            refusal = exc.message
    return MergeScreen(into, found, preview, refusal)
