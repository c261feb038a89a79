"""The one way every widget call starts: its project (cached), the caller's origin, limits and
session, the visitor (created on first sight and locked) and its contact (README "Identify",
"Identity verification").

`open_widget_call(tx, ...)` is the first line of identify, set-properties, track, set-stage,
set-deal and messages; `find_widget_call` is the same for the read-only message routes, which
never create a visitor. `open_team_call` is the second way in: the team API (batch writes,
imports) naming a contact by user_id or email, trusted like a signed identity, reaching the
same use-case code with no visitor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TypeVar

from hal.db.engine import Database, Tx
from hal.db.store.base import CompanyRow, ContactRow, VisitorRow, lock_people
from hal.db.store.people import (
    contact_by_id,
    contacts_by_keys,
    find_visitor,
    open_visitor,
    upsert_visitor,
    upsert_visitor_and_contacts,
)
from hal.domain.access import check_company_access, company_visible, require_session
from hal.domain.errors import Conflict, Forbidden, NotFound
from hal.domain.limits import Limits
from hal.domain.projects import ProjectConfig, origin_allowed
from hal.domain.sessions import issue_session_token, read_session_token
from hal.domain.stages import StageSource
from hal.domain.validation import check_identifier, parse_email
from hal.domain.verification import Proof
from hal.services.admission import Admission, Ticket
from hal.services.suppression import read_suppression_key, refuse_suppressed

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Where a widget call comes from (the browser's Origin, its bearer token, its address),
    the abuse limits it is held to, and (inside its transaction) its admission."""

    origin: str | None = None
    bearer: str | None = None
    client: str | None = None
    admission: Admission | None = None
    ticket: Ticket | None = None


async def run_widget_call(
    db: Database,
    caller: Caller,
    *,
    app_id: str,
    visitor_id: str,
    work: Callable[[Tx, Caller], Awaitable[T]],
) -> T:
    """Run one widget call: its calls counted once, before its transaction (which may be run
    again after a lost race, so counts nothing), and a visitor it added counted after."""
    if caller.admission is None:
        return await db.run(lambda tx: work(tx, caller))
    ticket = await caller.admission.admit(app_id, visitor_id, caller.client)
    admitted = replace(caller, ticket=ticket)

    async def attempt(tx: Tx) -> T:
        ticket.added_visitor = False  # what an earlier, rolled back attempt did is undone
        return await work(tx, admitted)

    result = await db.run(attempt)
    await caller.admission.settle(ticket)
    return result


@dataclass(frozen=True)
class Identity:
    """What identify proves and matches by, checked against the project before any row is
    read: the proof, and the user_id and normalized email to lock and look up."""

    proof: Proof
    user_id: str | None
    email_key: str | None


@dataclass(frozen=True)
class WidgetCall:
    """A widget call after the common checks (or a team call, see `open_team_call`)."""

    tx: Tx
    project: ProjectConfig
    visitor: VisitorRow | None  # None for a team call: it names a contact, not a visitor
    contact: ContactRow | None  # the visitor's bound contact (the named one), locked
    session: bool  # the caller's session token vouches for this visitor's binding
    # identify only: its checked identity, and the contacts owning its user_id or email
    identity: Identity | None = None
    candidates: list[ContactRow] = field(default_factory=list)
    # The contact the identity's email was merged into (a candidate), when no contact has it.
    email_alias_of: int | None = None
    # The team API's token: trusted like a signed identity (protected keys, verified contacts
    # and guarded companies), though it marks no contact verified.
    trusted: bool = False

    @property
    def widget_visitor(self) -> VisitorRow:
        """The visitor of a widget call (every widget call has one)."""
        assert self.visitor is not None, "a team call has no visitor"
        return self.visitor

    @property
    def visitor_row_id(self) -> int | None:
        return self.visitor.id if self.visitor is not None else None

    @property
    def active_company_id(self) -> int | None:
        """The visitor's active company; a team call has none."""
        return self.visitor.active_company_id if self.visitor is not None else None

    @property
    def event_owner(self) -> str:
        """Whose idempotency keys an event_id belongs to: the contact, or the anonymous visitor."""
        if self.contact is not None:
            return f"c{self.contact.id}"
        return f"v{self.widget_visitor.id}"

    @property
    def stage_source(self) -> StageSource:
        return StageSource.API if self.trusted else StageSource.WIDGET

    @property
    def verified(self) -> bool:
        """The call acts as its contact, proven: a verified binding and its session (or the
        team's token)."""
        if self.trusted:
            return True
        return (
            self.visitor is not None
            and self.contact is not None
            and self.project.protects(self.contact.verified)
            and self.visitor.verified
            and self.session
        )

    def require_contact(self) -> ContactRow:
        if self.contact is None:
            raise Conflict(
                "not_identified",
                "this visitor is anonymous: call identify before writing CRM facts",
                field="visitor_id",
            )
        return self.contact

    def check_contact_write(self) -> None:
        """An unverified call never writes a verified contact (a session of a binding made
        without proof does not count)."""
        verified_contact = self.contact is not None and self.project.protects(self.contact.verified)
        if verified_contact and not self.verified:
            raise Forbidden(
                "verification_required",
                "this contact is verified but this visitor was bound to it without proof: "
                "identify with a valid user_hash or identity_token first",
                field="user_hash",
            )

    def signed_company_ids(self) -> frozenset[str] | None:
        if self.visitor is None:
            return None
        ids = self.visitor.signed_company_ids
        return frozenset(ids) if ids is not None else None

    def check_company(self, company: CompanyRow, *, field: str = "company_id") -> None:
        """Refuse a company this call may not write (guarded, or not signed)."""
        if self.trusted:
            return
        check_company_access(
            project=self.project,
            company_id=company.external_id,
            guarded=company.guarded,
            verified_call=self.verified,
            signed_company_ids=self.signed_company_ids(),
            field=field,
        )

    def shows(self, company: CompanyRow) -> bool:
        """Whether an answer to this call may show the company's details."""
        return company_visible(
            project=self.project, guarded=company.guarded, verified_call=self.verified
        )


async def admit(
    tx: Tx, *, app_id: str, visitor_id: str, caller: Caller, limits: Limits
) -> ProjectConfig:
    """The first check of every widget call: its visitor_id, its project (cached) and its
    origin."""
    check_identifier(visitor_id, field="visitor_id", limits=limits)
    project = await tx.projects.get(tx.connection, app_id)
    if project is None:
        raise NotFound("unknown_app", f"no project with app_id {app_id!r}", field="app_id")
    if not origin_allowed(caller.origin, project.allowed_origins):
        raise Forbidden(
            "origin_not_allowed",
            f"origin {caller.origin!r} is not an allowed origin of this project",
            field="origin",
        )
    return project


def _vouches(project: ProjectConfig, visitor: VisitorRow, caller: Caller) -> bool:
    """Whether the caller's session token was issued for this visitor's current binding."""
    if not caller.bearer or visitor.contact_id is None:
        return False
    contact_id = read_session_token(
        secret=project.session_secret,
        token=caller.bearer,
        app_id=project.app_id,
        visitor_id=visitor.visitor_key,
    )
    return contact_id == visitor.contact_id


async def open_widget_call(
    tx: Tx,
    *,
    app_id: str,
    visitor_id: str,
    caller: Caller,
    limits: Limits,
    identify: Callable[[ProjectConfig], Identity] | None = None,
) -> WidgetCall:
    """Check the caller, then load (creating it on first sight) and lock the visitor and its
    contact. A visitor bound to a verified contact needs its session token or a proof.

    identify passes a check of its request against the project: the identity's user_id and
    email are locked (PostgreSQL advisory locks, before any row), refused if an erased person
    suppressed them, and their contacts read with the bound one in one statement.
    """
    project = await admit(tx, app_id=app_id, visitor_id=visitor_id, caller=caller, limits=limits)
    identity = identify(project) if identify is not None else None
    if identity is not None:
        await _lock_keys(tx, project, identity.user_id, identity.email_key)
    candidates: list[ContactRow] = []
    alias_of = None
    if identity is not None:
        visitor, candidates, alias_of = await _identified(tx, project, visitor_id, identity)
        contact = next((c for c in candidates if c.id == visitor.contact_id), None)
    else:
        visitor, contact = await open_visitor(tx, project_id=project.id, visitor_key=visitor_id)
    if visitor.created and caller.ticket is not None:
        caller.ticket.add_visitor()
    call = _checked(tx, project, visitor, contact, caller, identity, candidates)
    return replace(call, email_alias_of=alias_of) if alias_of is not None else call


async def _identified(
    tx: Tx, project: ProjectConfig, visitor_id: str, identity: Identity
) -> tuple[VisitorRow, list[ContactRow], int | None]:
    """identify's visitor, upserted after the identity's locks, and the contacts its identity
    and binding name (`contacts_by_keys`). PostgreSQL reads both in one statement, and for a
    project whose cached settings had no suppression key, the key as it now is with them
    (`refuse_suppressed_since` then reads it no more)."""
    if tx.is_postgres:
        with_key = project.suppression_key is None
        found = await upsert_visitor_and_contacts(
            tx, project_id=project.id, visitor_key=visitor_id, user_id=identity.user_id,
            email_normalized=identity.email_key, with_key=with_key,
        )  # fmt: skip
        if with_key:
            read_suppression_key(tx, project.id, found.suppression_key)
        return found.visitor, found.candidates, found.alias_of
    visitor = await upsert_visitor(tx, project_id=project.id, visitor_key=visitor_id)
    candidates, alias_of = await contacts_by_keys(
        tx,
        project_id=project.id,
        user_id=identity.user_id,
        email_normalized=identity.email_key,
        contact_id=visitor.contact_id,
    )
    return visitor, candidates, alias_of


def _checked(
    tx: Tx,
    project: ProjectConfig,
    visitor: VisitorRow,
    contact: ContactRow | None,
    caller: Caller,
    identity: Identity | None,
    candidates: list[ContactRow],
) -> WidgetCall:
    session = _vouches(project, visitor, caller)
    require_session(
        project=project,
        bound_verified=contact is not None and contact.verified,
        session=session,
        proven=identity is not None and identity.proof.verified,
        bearer=caller.bearer is not None,
    )
    return WidgetCall(tx, project, visitor, contact, session, identity, candidates)


async def find_widget_call(
    tx: Tx, *, app_id: str, visitor_id: str, caller: Caller, limits: Limits
) -> WidgetCall | None:
    """As `open_widget_call` for a read: None when the visitor was never seen."""
    project = await admit(tx, app_id=app_id, visitor_id=visitor_id, caller=caller, limits=limits)
    visitor = await find_visitor(tx, project_id=project.id, visitor_key=visitor_id)
    if visitor is None:
        return None
    contact = (
        await contact_by_id(tx, visitor.contact_id, lock=False)
        if visitor.contact_id is not None
        else None
    )
    return _checked(tx, project, visitor, contact, caller, None, [])


def new_session_token(
    *, project: ProjectConfig, visitor_key: str, contact_id: int, tx: Tx, ttl: timedelta
) -> str:
    return issue_session_token(
        secret=project.session_secret,
        app_id=project.app_id,
        visitor_id=visitor_key,
        contact_id=contact_id,
        now=tx.now,
        ttl=ttl,
    )


async def open_team_call(
    tx: Tx,
    *,
    app_id: str,
    user_id: str | None,
    email: str | None,
    limits: Limits,
    identify: Callable[[ProjectConfig], Identity] | None = None,
) -> WidgetCall:
    """A call from the team API (its token already checked for this project) that names a
    contact by `user_id` or else `email` instead of a visitor: the named contact, locked.
    Naming neither opens a call for company writes only (no contact).

    identify passes a check of its request as in `open_widget_call` and may name a contact
    that does not exist yet; every other use case needs an existing one (404 unknown_contact).
    """
    project = await tx.projects.get(tx.connection, app_id)
    if project is None:
        raise NotFound("unknown_app", f"no project with app_id {app_id!r}", field="app_id")
    identity = identify(project) if identify is not None else None
    if identity is not None:
        user_id, email_key = identity.user_id, identity.email_key
    elif user_id is not None:
        # The user_id names the contact; an email beside it is not a key.
        check_identifier(user_id, field="user_id", limits=limits)
        email_key = None
    elif email is not None:
        email_key = parse_email(email, limits=limits).normalized
    else:
        return WidgetCall(tx, project, None, None, False, trusted=True)
    await _lock_keys(tx, project, user_id, email_key)
    candidates, alias_of = await contacts_by_keys(
        tx, project_id=project.id, user_id=user_id, email_normalized=email_key, contact_id=None
    )
    contact = None
    if identity is None:
        # The contact a key names: its owner, else the contact a merged email went to.
        aliased = next((c for c in candidates if c.id == alias_of), None)
        contact = next((c for c in candidates if c.id != alias_of), aliased)
        if contact is None:
            field_name = "user_id" if user_id is not None else "email"
            raise NotFound(
                "unknown_contact",
                f"no contact with this {field_name}: identify it first",
                field=field_name,
            )
    call = WidgetCall(tx, project, None, contact, False, identity, candidates, trusted=True)
    return replace(call, email_alias_of=alias_of) if alias_of is not None else call


async def _lock_keys(
    tx: Tx, project: ProjectConfig, user_id: str | None, email_key: str | None
) -> None:
    """Serialize the calls naming one person (PostgreSQL advisory locks on the user_id and
    the email, before any row), and refuse a person erased with suppression."""
    await lock_people(
        tx,
        project.id,
        user_ids=[user_id] if user_id is not None else [],
        emails=[email_key] if email_key is not None else [],
    )
    await refuse_suppressed(tx, project=project, user_id=user_id, email_key=email_key)
