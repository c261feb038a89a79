"""An import chunk's reads made once and its writes made at once (README "Batch writes and
imports"; docs/decisions.md).

Before its rows, a chunk takes the advisory locks of every user_id and email they name
(PostgreSQL), then reads in a few statements the contacts owning those keys (locked), the
emails merged into other contacts, those contacts' links, the companies the rows name (locked,
in id order) and the project's attribute definitions. Its rows then run the same use-case
code as any call (the team's identify, the company write): the store answers them from this
`Lookahead` and holds their writes. A new contact or company gets its id ahead (from the
sequence on PostgreSQL; on SQLite the chunk holds the one write lock, so the ids after the
largest are its own); a later write to a held row is merged into it; links, stage history,
events and attribute definitions wait in lists. `flush` writes them at the end of the chunk,
one set-based statement per table and kind of write (db/store/bulk.py).

Each row runs in a savepoint kept here, in memory (`Tx.savepoint(in_database=False)`): a row
that fails takes back what it did through the journal of every change. A row needing what the
look-ahead does not hold (a lead to merge, a key no row named, the links of a contact that
just became verified) raises `NeedsDatabase` before the store wrote anything of it: the chunk
takes the row back, flushes, runs it on the database in a real savepoint, and reads ahead
again for the rows after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, or_, select

from hal.db.engine import Tx
from hal.db.project_cache import ATTRIBUTES, project_attributes
from hal.db.store import bulk
from hal.db.store.base import (
    COMPANIES,
    COMPANY_COLUMNS,
    CONTACT_COLUMNS,
    CONTACTS,
    EVENTS,
    LINKS,
    MERGES,
    STAGE_CHANGES,
    CompanyRow,
    ContactRow,
    lock_people,
)
from hal.domain.attributes import Attribute, Model

PersonKey = tuple[str, str]  # ("user_id", value) or ("email", normalized value)


class NeedsDatabase(Exception):
    """A row of an import chunk needs the database itself (see the module's docstring)."""


def person_keys(user_id: str | None, email_normalized: str | None) -> list[PersonKey]:
    keys = [("user_id", user_id)] if user_id is not None else []
    if email_normalized is not None:
        keys.append(("email", email_normalized))
    return keys


_MISSING = object()
_ADDED, _REMOVED = object(), object()

# A written column -> the ContactRow / CompanyRow field it is.
_CONTACT_FIELDS = {name: name for name in ContactRow.__dataclass_fields__} | {
    "metadata": "metadata_"
}
_COMPANY_FIELDS = {name: name for name in CompanyRow.__dataclass_fields__} | {
    "metadata": "metadata_"
}


def _fields(values: Mapping[str, Any], known: Mapping[str, str]) -> dict[str, Any]:
    return {known[name]: value for name, value in values.items() if name in known}


@dataclass
class Lookahead:
    """What a chunk knows of the people and companies its rows name, as its rows left them,
    and the writes it holds."""

    project_id: int = 0
    # People: every contact owning a key the rows name, by id; the keys whose owner (or lack
    # of one) is known; emails merged into another contact.
    contacts: dict[int, ContactRow] = field(default_factory=dict)
    by_user_id: dict[str, int] = field(default_factory=dict)
    by_email: dict[str, int] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    people: set[PersonKey] = field(default_factory=set)
    # Companies by external id (None: known not to exist), and each one's external id by id.
    companies: dict[str, CompanyRow | None] = field(default_factory=dict)
    company_ids: dict[int, str] = field(default_factory=dict)
    # Links of the contacts in `linked` (all of theirs).
    links: set[tuple[int, int]] = field(default_factory=set)
    linked: set[int] = field(default_factory=set)
    # Attribute definitions by (model, key); None until read.
    attributes: dict[tuple[str, str], Attribute] | None = None
    # Held writes.
    new_contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    contact_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    new_companies: dict[int, dict[str, Any]] = field(default_factory=dict)
    company_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    new_links: dict[tuple[int, int], datetime] = field(default_factory=dict)
    stage_changes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    new_attributes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Ids given ahead: PostgreSQL's reserved ones, SQLite's last given.
    reserve: int = 500
    _free: dict[str, deque[int]] = field(default_factory=dict)
    _last: dict[str, int] = field(default_factory=dict)
    _journal: list[tuple[Any, Any, Any]] | None = None

    # --- the savepoint in memory -------------------------------------------------------

    def save(self) -> None:
        """Before a row: from here every change is journaled."""
        self._journal = []

    def restore(self) -> None:
        """After the row failed: take back what it changed, last first."""
        journal, self._journal = self._journal or [], None
        for container, key, before in reversed(journal):
            if isinstance(container, list):
                del container[before:]
            elif isinstance(container, set):
                if before is _ADDED:
                    container.discard(key)
                else:
                    container.add(key)
            elif before is _MISSING:
                container.pop(key, None)
            else:
                container[key] = before

    def release(self) -> None:
        self._journal = None

    def _put(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        if self._journal is not None:
            self._journal.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def _pop(self, mapping: dict[Any, Any], key: Any) -> None:
        if key in mapping:
            if self._journal is not None:
                self._journal.append((mapping, key, mapping[key]))
            del mapping[key]

    def _add(self, members: set[Any], value: Any) -> None:
        if value not in members:
            if self._journal is not None:
                self._journal.append((members, value, _ADDED))
            members.add(value)

    def _append(self, items: list[Any], value: Any) -> None:
        if self._journal is not None:
            self._journal.append((items, None, len(items)))
        items.append(value)

    # --- people --------------------------------------------------------------------------

    def people_of(
        self, user_id: str | None, email_normalized: str | None
    ) -> tuple[list[ContactRow], int | None]:
        """What `contacts_by_keys` reads: the contacts owning the keys, the contact the email
        was merged into, and that id when the email was merged."""
        if not all(key in self.people for key in person_keys(user_id, email_normalized)):
            raise NeedsDatabase("a key no row of the chunk named")
        found: dict[int, ContactRow] = {}
        owners = [self.by_user_id.get(user_id) if user_id is not None else None]
        alias = None
        if email_normalized is not None:
            alias = self.aliases.get(email_normalized)
            owners += [self.by_email.get(email_normalized), alias]
        for owner in owners:
            if owner is not None and owner in self.contacts:
                found[owner] = self.contacts[owner]
        return list(found.values()), alias if found else None

    def contact_created(self, contact_id: int, row: dict[str, Any], now: datetime) -> None:
        """A contact the chunk made (its insert held in `row`)."""
        self._put(self.new_contacts, contact_id, row)
        defaults = {"name": None, "email": None, "email_normalized": None, "user_id": None,
                    "version": 1, "created_at": now, "last_seen_at": now}  # fmt: skip
        contact = ContactRow(id=contact_id, **_fields({**defaults, **row}, _CONTACT_FIELDS))
        self._put(self.contacts, contact_id, contact)
        self._index(contact, None)
        self._add(self.linked, contact_id)  # a new contact has no links but the chunk's

    def contact_written(self, contact_id: int, values: Mapping[str, Any]) -> None:
        """Hold an update of a known contact (merged into its held insert or update)."""
        if contact_id not in self.contacts:
            raise NeedsDatabase("a contact the chunk did not read")
        before = self.contacts[contact_id]
        after = replace(before, **_fields(values, _CONTACT_FIELDS))
        self._put(self.contacts, contact_id, after)
        self._index(after, before)
        held = self.new_contacts if contact_id in self.new_contacts else self.contact_updates
        self._put(held, contact_id, {**held.get(contact_id, {}), **values})

    def _index(self, contact: ContactRow, before: ContactRow | None) -> None:
        """Keep the keys of a contact made or changed findable (and its old ones not)."""
        keys: list[tuple[dict[str, int], str | None, str | None, str]] = [
            (self.by_user_id, before.user_id if before else None, contact.user_id, "user_id"),
            (self.by_email, before.email_normalized if before else None,
             contact.email_normalized, "email"),
        ]  # fmt: skip
        for index, old, new, kind in keys:
            if old == new and before is not None:
                continue
            if old is not None and index.get(old) == contact.id:
                self._pop(index, old)
            if new is not None:
                self._put(index, new, contact.id)
                self._add(self.people, (kind, new))

    # --- companies ---------------------------------------------------------------------

    def known_companies(self, external_ids: Iterable[str]) -> dict[str, CompanyRow | None]:
        """The companies by external id (None: none has it yet)."""
        named = list(external_ids)
        if not all(id_ in self.companies for id_ in named):
            raise NeedsDatabase("a company no row of the chunk named")
        return {id_: self.companies[id_] for id_ in named}

    def company_created(self, company: CompanyRow, row: dict[str, Any]) -> None:
        self._put(self.new_companies, company.id, row)
        self._put(self.companies, company.external_id, replace(company, created=False))
        self._put(self.company_ids, company.id, company.external_id)

    def company_written(self, company_id: int, values: Mapping[str, Any]) -> None:
        """Hold an update of a known company."""
        external_id = self.company_ids.get(company_id)
        company = self.companies.get(external_id) if external_id is not None else None
        if external_id is None or company is None:
            raise NeedsDatabase("a company the chunk did not read")
        self._put(self.companies, external_id, replace(company, **_fields(values, _COMPANY_FIELDS)))
        held = self.new_companies if company_id in self.new_companies else self.company_updates
        self._put(held, company_id, {**held.get(company_id, {}), **values})

    def guarded(self, company_ids: Iterable[int]) -> None:
        for company_id in company_ids:
            external_id = self.company_ids.get(company_id)
            company = self.companies.get(external_id) if external_id is not None else None
            if company is None:
                raise NeedsDatabase("a company the chunk did not read")
            if not company.guarded:
                self.company_written(company_id, {"guarded": True})

    # --- links, history, definitions ----------------------------------------------------

    def link(self, contact_id: int, company_ids: list[int], now: datetime) -> set[int]:
        """Hold the links the contact does not have yet; those company ids."""
        if contact_id not in self.linked:
            raise NeedsDatabase("the links of a contact the chunk did not read")
        added = {id_ for id_ in company_ids if (contact_id, id_) not in self.links}
        for id_ in sorted(added):
            self._add(self.links, (contact_id, id_))
            self._put(self.new_links, (contact_id, id_), now)
        return added

    def stage_changed(self, change: dict[str, Any], event: dict[str, Any]) -> None:
        self._append(self.stage_changes, change)
        self._append(self.events, event)

    def defined(self, model: Model, key: str) -> Attribute | None:
        assert self.attributes is not None, "read with the look-ahead"
        return self.attributes.get((model.value, key))

    def define(self, attribute: Attribute, row: dict[str, Any]) -> None:
        assert self.attributes is not None, "read with the look-ahead"
        self._put(self.attributes, (attribute.model.value, attribute.key), attribute)
        self._put(self.new_attributes, (attribute.model.value, attribute.key), row)

    # --- ids -----------------------------------------------------------------------------

    async def next_id(self, tx: Tx, table: Table) -> int:
        """An id for a row held for `table`."""
        if not tx.is_postgres:
            if table.name not in self._last:
                self._last[table.name] = await bulk.last_id(tx, table)
            self._last[table.name] += 1
            return self._last[table.name]
        free = self._free.setdefault(table.name, deque())
        if not free:
            free.extend(await bulk.reserve_ids(tx, table, self.reserve))
        return free.popleft()


_CONTACTS = (
    select(*CONTACT_COLUMNS)
    .where(
        or_(
            and_(
                CONTACTS.c.project_id == bindparam("project_id"),
                CONTACTS.c.user_id.in_(bindparam("user_ids", expanding=True)),
            ),
            and_(
                CONTACTS.c.project_id == bindparam("project_id"),
                CONTACTS.c.email_normalized.in_(bindparam("emails", expanding=True)),
            ),
            and_(
                CONTACTS.c.project_id == bindparam("project_id"),
                CONTACTS.c.id.in_(
                    select(MERGES.c.into_contact_id).where(
                        MERGES.c.project_id == bindparam("project_id"),
                        MERGES.c.email_normalized.in_(bindparam("emails", expanding=True)),
                    )
                ),
            ),
        )
    )
    .order_by(CONTACTS.c.id)
    .with_for_update(key_share=True, of=CONTACTS)
)
_MERGED = (
    select(MERGES.c.email_normalized, MERGES.c.into_contact_id)
    .where(
        MERGES.c.project_id == bindparam("project_id"),
        MERGES.c.email_normalized.in_(bindparam("emails", expanding=True)),
    )
    .order_by(MERGES.c.from_contact_id)
)
_LINKS = select(LINKS.c.contact_id, LINKS.c.company_id).where(
    LINKS.c.contact_id.in_(bindparam("contact_ids", expanding=True))
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
    rows: int,
) -> None:
    """Lock the people the chunk's rows name (as each row would, see `Tx.lock`: no other
    writer can give them a contact meanwhile), read what the rows name and set it on the
    transaction."""
    await lock_people(tx, project_id, user_ids=user_ids, emails=emails)
    ahead = Lookahead(project_id=project_id, reserve=max(rows, 1))
    if user_ids or emails:
        params = {"project_id": project_id, "user_ids": sorted(user_ids), "emails": sorted(emails)}
        for row in await tx.execute(_CONTACTS, params):
            contact = ContactRow.of(row)
            ahead.contacts[contact.id] = contact
            if contact.user_id is not None:
                ahead.by_user_id[contact.user_id] = contact.id
            if contact.email_normalized is not None:
                ahead.by_email[contact.email_normalized] = contact.id
        if emails:
            for row in await tx.execute(_MERGED, params):
                ahead.aliases.setdefault(row.email_normalized, row.into_contact_id)
        ahead.people = {("user_id", u) for u in user_ids} | {("email", e) for e in emails}
        ahead.people.update(("user_id", c.user_id) for c in ahead.contacts.values() if c.user_id)
        ahead.people.update(
            ("email", c.email_normalized) for c in ahead.contacts.values() if c.email_normalized
        )
    if ahead.contacts:
        found = await tx.execute(_LINKS, {"contact_ids": sorted(ahead.contacts)})
        ahead.links = {(row.contact_id, row.company_id) for row in found}
        ahead.linked = set(ahead.contacts)
    ahead.companies = dict.fromkeys(company_ids)
    if company_ids:
        params = {"project_id": project_id, "external_ids": sorted(company_ids)}
        for row in await tx.execute(_COMPANIES, params):
            ahead.companies[row.external_id] = CompanyRow.of(row)
            ahead.company_ids[row.id] = row.external_id
    attributes = await project_attributes(tx.connection, project_id)
    ahead.attributes = {
        (model.value, key): attribute
        for model, defined in attributes.items()
        for key, attribute in defined.items()
    }
    tx.lookahead = ahead


def ahead_of(tx: Tx) -> Lookahead | None:
    """The import chunk's look-ahead of this transaction, if it has one."""
    return tx.lookahead if isinstance(tx.lookahead, Lookahead) else None


def needs_database(tx: Tx) -> None:
    """A store function the look-ahead cannot answer: the row must run on the database."""
    if ahead_of(tx) is not None:
        raise NeedsDatabase("a write the look-ahead does not hold")


async def flush(tx: Tx) -> None:
    """Write what the chunk holds, table by table in the order of their references."""
    ahead = ahead_of(tx)
    if ahead is None:
        return
    await bulk.insert_rows(tx, ATTRIBUTES, list(ahead.new_attributes.values()))
    contacts = [{"id": id_, **row} for id_, row in ahead.new_contacts.items()]
    await bulk.insert_rows(tx, CONTACTS, contacts)
    companies = [{"id": id_, **row} for id_, row in ahead.new_companies.items()]
    await bulk.insert_rows(tx, COMPANIES, companies)
    await bulk.update_rows(tx, CONTACTS, ahead.contact_updates)
    await bulk.update_rows(tx, COMPANIES, ahead.company_updates)
    links = [{"contact_id": contact_id, "company_id": company_id, "created_at": at}
             for (contact_id, company_id), at in sorted(ahead.new_links.items())]  # fmt: skip
    await bulk.insert_rows(tx, LINKS, links, skip_taken=("contact_id", "company_id"))
    await bulk.insert_rows(tx, STAGE_CHANGES, ahead.stage_changes)
    await bulk.insert_rows(tx, EVENTS, ahead.events)
    tx.lookahead = None
