"""What an import chunk reads once, before its rows, instead of row by row (README "Batch
writes and imports").

A chunk's transaction takes the advisory locks of the user_ids and emails its rows name (one
statement, PostgreSQL only), then reads in two statements which of them no contact has, and
the companies its rows name (locked, in id order). The store then answers from that
`Lookahead` while it stays true:

- `contacts_by_keys` runs no statement for keys no contact had when the chunk began and no
  earlier row of the chunk named (a contact gets a key only from a call naming it);
- `upsert_companies` runs no statement when every company it is given is known, and the
  company writes of the chunk (`update_company`, `guard`, `guard_linked`) keep what is known
  current;
- `link` of a contact the chunk created (it has no links but the chunk's) holds the new links
  and `write_links` inserts them in one statement: at the end of the chunk, and before any
  statement that reads links.

A row rolled back to its savepoint (`Tx.rollback_to_savepoint`) takes back what it did here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, null, or_, select, union_all

from hal.db.engine import Tx
from hal.db.store.base import (
    COMPANIES,
    COMPANY_COLUMNS,
    CONTACTS,
    LINKS,
    MERGES,
    CompanyRow,
    insert,
    lock_people,
)

PersonKey = tuple[str, str]  # ("user_id", value) or ("email", normalized value)


def person_keys(user_id: str | None, email_normalized: str | None) -> list[PersonKey]:
    keys = [("user_id", user_id)] if user_id is not None else []
    if email_normalized is not None:
        keys.append(("email", email_normalized))
    return keys


@dataclass
class Lookahead:
    """One chunk's knowledge: keys no contact has, its companies as last written, the
    contacts it created and their links not written yet."""

    absent: set[PersonKey] = field(default_factory=set)
    companies: dict[str, CompanyRow] = field(default_factory=dict)  # by external id
    created_contacts: set[int] = field(default_factory=set)
    links: dict[tuple[int, int], datetime] = field(default_factory=dict)  # not written yet
    _saved: tuple[dict[str, CompanyRow], set[int], dict[tuple[int, int], datetime]] | None = None

    def unknown_person(self, user_id: str | None, email_normalized: str | None) -> bool:
        """Whether no contact has the user_id or the email; they are then no longer known
        absent (this call may give them to a contact)."""
        keys = person_keys(user_id, email_normalized)
        unknown = all(key in self.absent for key in keys)
        self.absent.difference_update(keys)
        return unknown

    def known_companies(self, external_ids: Iterable[str]) -> dict[str, CompanyRow] | None:
        found = {id_: self.companies.get(id_) for id_ in external_ids}
        if any(row is None for row in found.values()):
            return None
        return {id_: row for id_, row in found.items() if row is not None}

    def company_written(self, company_id: int, values: Mapping[str, Any]) -> None:
        fields = {("metadata_" if name == "metadata" else name): v for name, v in values.items()}
        fields = {name: v for name, v in fields.items() if name in _COMPANY_FIELDS}
        for external_id, row in self.companies.items():
            if row.id == company_id:
                self.companies[external_id] = replace(row, **fields)
                return

    def guarded(self, company_ids: set[int]) -> None:
        for external_id, row in self.companies.items():
            if row.id in company_ids:
                self.companies[external_id] = replace(row, guarded=True)

    def link_later(self, contact_id: int, company_ids: list[int], now: datetime) -> set[int]:
        """Hold the links of a contact the chunk created; the ones it did not have yet."""
        added = {id_ for id_ in company_ids if (contact_id, id_) not in self.links}
        self.links.update(((contact_id, id_), now) for id_ in added)
        return added

    def save(self) -> None:
        """Before a row's savepoint."""
        self._saved = (dict(self.companies), set(self.created_contacts), dict(self.links))

    def restore(self) -> None:
        """After a rollback to the row's savepoint."""
        if self._saved is not None:
            self.companies, self.created_contacts, self.links = self._saved


_COMPANY_FIELDS = frozenset(CompanyRow.__dataclass_fields__)

_PRESENT = union_all(
    select(CONTACTS.c.user_id, CONTACTS.c.email_normalized).where(
        or_(
            and_(
                CONTACTS.c.project_id == bindparam("project_id"),
                CONTACTS.c.user_id.in_(bindparam("user_ids", expanding=True)),
            ),
            and_(
                CONTACTS.c.project_id == bindparam("project_id"),
                CONTACTS.c.email_normalized.in_(bindparam("emails", expanding=True)),
            ),
        )
    ),
    select(null().label("user_id"), MERGES.c.email_normalized).where(
        MERGES.c.project_id == bindparam("project_id"),
        MERGES.c.email_normalized.in_(bindparam("emails", expanding=True)),
    ),
)

_COMPANIES = (
    select(*COMPANY_COLUMNS)
    .where(
        COMPANIES.c.project_id == bindparam("project_id"),
        COMPANIES.c.external_id.in_(bindparam("external_ids", expanding=True)),
    )
    .order_by(COMPANIES.c.id)
    .with_for_update(key_share=True)
)


async def look_ahead(
    tx: Tx,
    *,
    project_id: int,
    user_ids: set[str],
    emails: set[str],
    company_ids: set[str],
) -> None:
    """Lock the people the chunk's rows name (as each row would, see `Tx.lock`: no other
    writer can give them a contact meanwhile), read what the rows name and set it on the
    transaction."""
    await lock_people(tx, project_id, user_ids=user_ids, emails=emails)
    present: set[PersonKey] = set()
    if user_ids or emails:
        params = {"project_id": project_id, "user_ids": sorted(user_ids), "emails": sorted(emails)}
        for row in await tx.execute(_PRESENT, params):
            present.update(person_keys(row.user_id, row.email_normalized))
    named = {("user_id", user_id) for user_id in user_ids} | {("email", e) for e in emails}
    absent = named - present
    companies: dict[str, CompanyRow] = {}
    if company_ids:
        params = {"project_id": project_id, "external_ids": sorted(company_ids)}
        for row in await tx.execute(_COMPANIES, params):
            companies[row.external_id] = CompanyRow.of(row)
    tx.lookahead = Lookahead(absent, companies)


def ahead_of(tx: Tx) -> Lookahead | None:
    """The import chunk's look-ahead of this transaction, if it has one."""
    return tx.lookahead if isinstance(tx.lookahead, Lookahead) else None


async def write_links(tx: Tx) -> None:
    """Insert the links held for the chunk's new contacts (see `Lookahead.link_later`)."""
    ahead = ahead_of(tx)
    if ahead is None or not ahead.links:
        return
    rows = [
        {"contact_id": contact_id, "company_id": company_id, "created_at": created_at}
        for (contact_id, company_id), created_at in sorted(ahead.links.items())
    ]
    ahead.links.clear()
    await tx.execute(insert(tx, LINKS), rows)
