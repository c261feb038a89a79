"""Erase a person (README "Privacy and data hygiene"): the contact, its visitors and their
properties, events, conversations and messages, links, and every copy of its data in the
change log and the webhook delivery log. Companies and deals stay.

An erasure is two phases. `start_erasure` makes the person unreachable in one short
transaction: the contact's keys and fields are blanked and it is marked `erased_at` (every
read then treats it as gone), its visitors' keys are retired, its links and merge aliases
removed, the suppression written if asked. It holds the person's advisory locks, as identify
and merge do, so no identify that passed its suppression check can re-create the person
meanwhile. `finish_erasure` then deletes its rows in bounded batches, each its own
transaction, so a contact with 100,000 events never holds the database for long; the last
batch deletes the contact and records `contact.deleted` (ids only). An erasure cut short (the
process died) is finished by the server's purge task or `hal purge`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

from sqlalchemy import String, cast, or_, select, update

from hal.db.engine import Database, Tx
from hal.db.models import Contact, Project, Suppression
from hal.db.queries import locked
from hal.db.store.base import MERGES, lock_people
from hal.db.store.privacy import (
    alias_emails,
    delete_batch,
    delete_erased_contact,
    erasures_left,
    forget_failed_import_rows,
    live_contact_for_update,
    lock_endpoints,
    make_unreachable,
    persons_rows,
)
from hal.domain.changes import ChangeType
from hal.domain.errors import InvalidInput, NotFound
from hal.domain.limits import Limits
from hal.domain.privacy import erased_values, new_suppression_key, suppression_hashes
from hal.domain.validation import parse_email
from hal.services.audit import AUDIT, Actor, record_audit
from hal.services.team import get_contact

BATCH = 1000


@dataclass(frozen=True)
class ErasureStarted:
    project_id: int
    contact_id: int
    suppressed: bool
    user_id_hash: str | None
    email_hash: str | None
    forgotten_rows: int = 0  # failed import rows that named the person, deleted at once


@dataclass(frozen=True)
class Person:
    """Who to erase: a contact id, or the contact owning a user_id or an email (one of them)."""

    contact_id: int | None = None
    user_id: str | None = None
    email: str | None = None

    def check(self) -> Person:
        given = [
            key for key in ("contact_id", "user_id", "email") if getattr(self, key) is not None
        ]
        if len(given) > 1:
            raise InvalidInput(
                "one_key_only", f"give one of {' and '.join(given)}, not both", field=given[-1]
            )
        if not given:
            raise InvalidInput(
                "missing_field", "give the user_id or the email of the person", field="user_id"
            )
        return self


@dataclass(frozen=True)
class Erased:
    started: ErasureStarted
    deleted_rows: int


async def erase(
    database: Database, *, project: Project, person: Person, suppress: bool, actor: Actor
) -> Erased:
    """Both phases: the person unreachable at once, then their rows in bounded batches."""
    person.check()

    async def start(tx: Tx) -> ErasureStarted:
        contact_id = person.contact_id
        if contact_id is None:
            contact_id = await _contact_by_key(tx, project, person)
        return await start_erasure(
            tx, project=project, contact_id=contact_id, suppress=suppress, actor=actor
        )

    started = await database.run(start)
    deleted = await finish_erasure(
        database, project_id=started.project_id, contact_id=started.contact_id
    )
    return Erased(started, started.forgotten_rows + deleted)


async def _contact_by_key(tx: Tx, project: Project, person: Person) -> int:
    live = (Contact.project_id == project.id, Contact.erased_at.is_(None))
    if person.email is not None:
        field, key = "email", parse_email(person.email, limits=Limits()).normalized
        found = await tx.execute(select(Contact.id).where(*live, Contact.email_normalized == key))
        contact_id = found.scalar_one_or_none()
        if contact_id is None:
            # The email of a contact merged into another still reaches that one.
            merged = await tx.execute(
                select(Contact.id)
                .join(MERGES, MERGES.c.into_contact_id == Contact.id)
                .where(*live, MERGES.c.project_id == project.id, MERGES.c.email_normalized == key)
                .limit(1)
            )
            contact_id = merged.scalar_one_or_none()
    else:
        field = "user_id"
        found = await tx.execute(select(Contact.id).where(*live, Contact.user_id == person.user_id))
        contact_id = found.scalar_one_or_none()
    if contact_id is None:
        raise NotFound(
            "unknown_contact", f"no contact with this {field} in the project", field=field
        )
    return int(contact_id)


async def start_erasure(
    tx: Tx, *, project: Project, contact_id: int, suppress: bool, actor: Actor
) -> ErasureStarted:
    """Make the contact unreachable and blank its fields, in one short transaction."""
    seen = await get_contact(session=tx.orm, project=project, contact_id=contact_id)
    aliases = await alias_emails(tx, seen.id)
    emails = [e for e in (seen.email_normalized, *aliases) if e is not None]
    user_ids = [seen.user_id] if seen.user_id else []
    await lock_people(tx, project.id, user_ids=user_ids, emails=emails)
    # Locked now: read it again, as it may have changed (or gone) before the locks were taken.
    row = await live_contact_for_update(tx, seen.id)
    if row is None:
        raise NotFound("unknown_contact", f"no contact {contact_id} in this project")
    aliases = await alias_emails(tx, row.id)
    user_id_hash = email_hash = None
    if suppress and (row.user_id or row.email_normalized):
        stored = (
            await tx.orm.execute(locked(select(Project).where(Project.id == project.id)))
        ).scalar_one()
        if stored.suppression_key is None:
            stored.suppression_key = new_suppression_key()
        key = stored.suppression_key
        user_id_hash, email_hash = suppression_hashes(
            key, user_id=row.user_id, email_key=row.email_normalized
        )
        person = user_id_hash or email_hash
        # Emails of contacts merged into this one still reach it: they are the person's too.
        aliased = [suppression_hashes(key, user_id=None, email_key=a)[1] for a in aliases]
        tx.orm.add_all(
            [
                Suppression(
                    project_id=project.id,
                    user_id_hash=user_id_hash,
                    email_hash=email_hash,
                    person=person,
                    created_at=tx.now,
                ),
                *(
                    Suppression(
                        project_id=project.id, email_hash=alias, person=person, created_at=tx.now
                    )
                    for alias in aliased
                ),
            ]
        )
    await make_unreachable(tx, row.id)
    await _erase_audit_values(tx, project_id=project.id, contact_id=row.id)
    forgotten = await forget_failed_import_rows(
        tx,
        project_id=project.id,
        user_ids=[row.user_id] if row.user_id else [],
        emails=[e for e in (row.email_normalized, *aliases) if e is not None],
    )
    suppressed = user_id_hash is not None or email_hash is not None
    await record_audit(
        tx,
        project_id=project.id,
        actor=actor,
        action="contact.erased",
        target=str(row.id),
        changes={"suppressed": suppressed},
        now=tx.now,
    )
    return ErasureStarted(project.id, row.id, suppressed, user_id_hash, email_hash, forgotten)


# The audit actions whose changes hold a person's values (old and new names, metadata).
_PERSONAL_AUDIT_ACTIONS = ("contact.updated",)


async def _erase_audit_values(tx: Tx, *, project_id: int, contact_id: int) -> None:
    """The audit log keeps who did what to the person, and which fields, but not the values:
    of the contact and of every contact merged into it."""
    merged = select(cast(MERGES.c.from_contact_id, String(255))).where(
        MERGES.c.into_contact_id == contact_id
    )
    entries = await tx.execute(
        select(AUDIT.c.id, AUDIT.c.changes).where(
            AUDIT.c.project_id == project_id,
            AUDIT.c.action.in_(_PERSONAL_AUDIT_ACTIONS),
            or_(AUDIT.c.target == str(contact_id), AUDIT.c.target.in_(merged)),
        )
    )
    for entry in entries.all():
        await tx.execute(
            update(AUDIT).where(AUDIT.c.id == entry.id).values(changes=erased_values(entry.changes))
        )


async def finish_erasure(
    database: Database, *, project_id: int, contact_id: int, batch: int = BATCH
) -> int:
    """Delete the erased contact's rows in bounded batches, each its own transaction, then the
    contact itself with its `contact.deleted` change. Returns how many rows were deleted."""
    deleted = 0
    for table, key, where in persons_rows(project_id, contact_id):
        while True:
            removed = await database.run(
                partial(delete_batch, table=table, key=key, where=where, batch=batch)
            )
            deleted += removed
            await asyncio.sleep(0)  # let waiting requests have the database between batches
            if removed < batch:
                break
    return deleted + await database.run(
        lambda tx: _delete_contact(tx, project_id=project_id, contact_id=contact_id)
    )


async def _delete_contact(tx: Tx, *, project_id: int, contact_id: int) -> int:
    """The last step: what the batches' race with new writes left, the visitors, the contact.
    The project's webhook endpoints are locked first, so a fan-out cannot copy a change of the
    person into a message after its messages were deleted."""
    await lock_endpoints(tx, project_id)
    deleted = 0
    for table, key, where in persons_rows(project_id, contact_id):
        while removed := await delete_batch(tx, table=table, key=key, where=where, batch=BATCH):
            deleted += removed
    removed, gone = await delete_erased_contact(tx, contact_id)
    if gone:
        tx.record(project_id, ChangeType.CONTACT_DELETED, {"id": contact_id})
    return deleted + removed


async def unfinished_erasures(database: Database, *, limit: int = 100) -> list[tuple[int, int]]:
    """(project row id, contact id) of erasures started and not finished."""
    return await database.run(lambda tx: erasures_left(tx, limit=limit))


async def finish_unfinished_erasures(database: Database) -> int:
    """Finish every erasure a stopped process left half done; the number finished."""
    pending = await unfinished_erasures(database)
    for project_id, contact_id in pending:
        await finish_erasure(database, project_id=project_id, contact_id=contact_id)
    return len(pending)
