"""Suppressions (README "Privacy and data hygiene"): a person erased with `suppress=true` may not
come back through identify or a batch write until the suppression is lifted.

`refuse_suppressed` is the one check; `open_widget_call` runs it wherever identify resolves a
person, so every caller of identify (the widget, the team's batch) is held to it. The admin
lists them (`suppression_page`) and lifts one (`lift_suppression`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, or_, select

from hal.db.engine import Tx
from hal.db.models import Project, Suppression
from hal.db.prepared import prepared
from hal.domain.errors import Forbidden, InvalidInput, NotFound
from hal.domain.privacy import suppression_hashes
from hal.domain.projects import ProjectConfig
from hal.services.audit import Actor, record_audit
from hal.services.paging import Page, check_limit, decode_cursor, page_of

SUPPRESSIONS = cast(Table, Suppression.__table__)

_MATCH = (
    select(SUPPRESSIONS.c.user_id_hash, SUPPRESSIONS.c.email_hash)
    .where(
        SUPPRESSIONS.c.project_id == bindparam("project_id"),
        or_(
            SUPPRESSIONS.c.user_id_hash == bindparam("user_id_hash"),
            SUPPRESSIONS.c.email_hash == bindparam("email_hash"),
        ),
    )
    .limit(1)
)


async def refuse_suppressed(
    tx: Tx, *, project: ProjectConfig, user_id: str | None, email_key: str | None
) -> None:
    """403 `suppressed` when the user_id (exact) or the email (normalized) belongs to an
    erased, suppressed person. Free for a project that never suppressed anyone."""
    if project.suppression_key is None or (user_id is None and email_key is None):
        return
    user_id_hash, email_hash = suppression_hashes(
        project.suppression_key, user_id=user_id, email_key=email_key
    )
    params = {"project_id": project.id, "user_id_hash": user_id_hash, "email_hash": email_hash}
    found = (await tx.execute(_MATCH, params)).first()
    if found is None:
        return
    field = (
        "user_id" if user_id_hash is not None and found.user_id_hash == user_id_hash else "email"
    )
    raise Forbidden(
        "suppressed",
        f"this {field} belongs to an erased person who asked not to be recorded again",
        field=field,
    )


_CURRENT_KEY = prepared(
    select(Project.suppression_key).where(Project.id == bindparam("project_id"))
)


async def refuse_suppressed_since(
    tx: Tx, *, project: ProjectConfig, user_id: str | None, email_key: str | None
) -> None:
    """The same check, just before a person's keys are written, for a project whose cached
    settings had no suppression: on PostgreSQL an erasure may have made the first one while
    this call waited for the person's locks, so the key is read again after them (identify
    reads it with its visitor's upsert, `read_suppression_key`; else one statement, once a
    transaction). SQLite's one writer began after any such erasure had
    committed, and the erasure cleared this process's cache."""
    if project.suppression_key is not None or not tx.is_postgres:
        return
    # Once per transaction: an import chunk took every advisory lock of its rows first.
    memo = _memo(project.id)
    if memo not in tx.read_once:
        read = await tx.execute(_CURRENT_KEY, {"project_id": project.id})
        tx.read_once[memo] = read.scalar_one_or_none()
    key = tx.read_once[memo]
    if key is not None:
        current = replace(project, suppression_key=key)
        await refuse_suppressed(tx, project=current, user_id=user_id, email_key=email_key)


def read_suppression_key(tx: Tx, project_id: int, key: str | None) -> None:
    """The project's suppression key as a statement run after the transaction's locks read
    it (identify's visitor upsert): `refuse_suppressed_since` need not read it again."""
    tx.read_once[_memo(project_id)] = key


def _memo(project_id: int) -> tuple[str, int]:
    return ("suppression_key", project_id)


def check_hash(value: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidInput(
            "invalid_hash", "a suppression hash is 64 lower-case hex digits", field="hash"
        )
    return value


async def lift_suppression(tx: Tx, *, project_id: int, hash: str, actor: Actor) -> int:
    """Lift the suppression holding this hash (of its user_id, its email or an email merged
    into the person): every key of that person may identify again. Returns its id."""
    check_hash(hash)
    matches = or_(SUPPRESSIONS.c.user_id_hash == hash, SUPPRESSIONS.c.email_hash == hash)
    found = (
        await tx.execute(
            select(SUPPRESSIONS.c.id, SUPPRESSIONS.c.person).where(
                SUPPRESSIONS.c.project_id == project_id, matches
            )
        )
    ).all()
    if not found:
        raise NotFound("unknown_suppression", "no suppression with this hash", field="hash")
    people = {row.person for row in found if row.person is not None}
    await tx.execute(
        delete(SUPPRESSIONS).where(
            SUPPRESSIONS.c.project_id == project_id,
            or_(
                SUPPRESSIONS.c.id.in_([row.id for row in found]), SUPPRESSIONS.c.person.in_(people)
            ),
        )
    )
    first = min(row.id for row in found)
    await record_audit(
        tx,
        project_id=project_id,
        actor=actor,
        action="suppression.lifted",
        target=str(first),
        now=tx.now,
    )
    return int(first)


@dataclass(frozen=True)
class SuppressedPerson:
    """One erased person's suppression: the hashes of their user_id and email, and of the
    emails of contacts merged into them; any of them lifts it all."""

    id: int
    user_id_hash: str | None
    email_hash: str | None
    merged_email_hashes: list[str]
    created_at: datetime


_OTHER = SUPPRESSIONS.alias("other")
# A person's first row holds its keys; later ones the emails merged into it.
_FIRST_OF_PERSON = or_(
    SUPPRESSIONS.c.person.is_(None),
    SUPPRESSIONS.c.id
    == select(func.min(_OTHER.c.id))
    .where(
        _OTHER.c.project_id == SUPPRESSIONS.c.project_id, _OTHER.c.person == SUPPRESSIONS.c.person
    )
    .scalar_subquery(),
)


async def suppression_page(
    tx: Tx, *, project_id: int, cursor: str | None = None, limit: int = 50
) -> Page:
    """The project's suppressed people, newest first, one `SuppressedPerson` each (never a
    user_id or an email: only their keyed hashes are kept)."""
    before = decode_cursor(cursor)
    check_limit(limit)
    query = select(SUPPRESSIONS).where(SUPPRESSIONS.c.project_id == project_id, _FIRST_OF_PERSON)
    if before is not None:
        query = query.where(SUPPRESSIONS.c.id < before)
    rows = await tx.execute(query.order_by(SUPPRESSIONS.c.id.desc()).limit(limit + 1))
    page = page_of(list(rows), limit)
    people = {row.person for row in page.items if row.person is not None}
    merged: dict[str, list[str]] = {}
    if people:
        others = await tx.execute(
            select(SUPPRESSIONS.c.person, SUPPRESSIONS.c.email_hash)
            .where(SUPPRESSIONS.c.project_id == project_id, SUPPRESSIONS.c.person.in_(people),
                   SUPPRESSIONS.c.id.not_in([row.id for row in page.items]),
                   SUPPRESSIONS.c.email_hash.is_not(None))
            .order_by(SUPPRESSIONS.c.id)
        )  # fmt: skip
        for other in others:
            merged.setdefault(other.person, []).append(other.email_hash)
    items = [
        SuppressedPerson(row.id, row.user_id_hash, row.email_hash,
                         merged.get(row.person, []) if row.person else [], row.created_at)
        for row in page.items
    ]  # fmt: skip
    return Page(items, page.next_cursor)
