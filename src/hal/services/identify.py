"""POST /api/widget/identify: match or create the contact, merge, bind the visitor, link the
companies, in the caller's one transaction (README "Identify", steps 1-6), as a handful of
set-based statements: the visitor upsert, one locked read of every candidate contact, one
contact write, one company upsert, one link insert and, for a contact that existed before the
call, one read of its linked companies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from operator import attrgetter
from typing import Any

from hal.db.engine import Tx
from hal.db.store.base import CompanyRow, ContactRow, VisitorRow
from hal.db.store.companies import (
    guard,
    guard_linked,
    linked_companies,
    upsert_companies,
    upsert_link_and_read,
)
from hal.db.store.people import (
    carry_over,
    insert_contact,
    merge_lead,
    returning_visitor,
    update_contact,
    update_visitor,
)
from hal.domain.access import check_company_access, company_visible
from hal.domain.attributes import Model, TypedWrite
from hal.domain.changes import ChangeType, changed_values
from hal.domain.errors import HalError, InvalidInput
from hal.domain.limits import Limits
from hal.domain.matching import (
    Binding,
    ContactRef,
    IdentifyPlan,
    plan_identify,
    repeat_holds_until,
    seen_recently,
)
from hal.domain.projects import ProjectConfig
from hal.domain.sessions import session_of
from hal.domain.stages import StageDecision, StageMode, check_stage
from hal.domain.validation import (
    Email,
    check_identifier,
    check_metadata,
    check_protected_keys,
    check_text,
    merge_metadata,
    parse_email,
)
from hal.domain.verification import UNVERIFIED, Claims, resolve_proof
from hal.schemas import CompanyInput, IdentifyFields, IdentifyRequest
from hal.services.attributes import check_types, define_new, typed_metadata
from hal.services.change_data import (
    company_data,
    contact_changes,
    contact_data,
)
from hal.services.repeat_answers import RepeatRead
from hal.services.stages import (
    StageWrite,
    decide_stage,
    stage_changed,
    write_company_and_stage,
)
from hal.services.suppression import refuse_suppressed_since
from hal.services.widget_call import (
    Caller,
    Identity,
    WidgetCall,
    admit,
    new_session_token,
    open_team_call,
    open_widget_call,
)


@dataclass(frozen=True)
class IdentifyResult:
    visitor_key: str
    contact: ContactRow
    active_company: CompanyRow | None
    active_company_visible: bool
    company_ids: list[str]
    session_token: str
    warnings: tuple[str, ...]
    stage: StageDecision | None
    stage_mode: StageMode | None
    outcome: str  # created, matched, claimed (a lead got the user_id) or merged (metrics)
    proven: bool = False  # the call carried a valid proof (the installation check)
    # A repeat's answer, and what it was made from: it may be sent again (repeat_answers.py).
    repeat: RepeatRead | None = None


@dataclass(frozen=True)
class _Checked(Identity):
    """The request after every limit and signature check, before any read or write."""

    claims: Claims
    email: Email | None
    metadata: dict[str, Any] | None
    company: CompanyInput | None
    company_ids: list[str]
    stage_mode: StageMode
    # The metadata after the attribute types (README "Attributes"), and what they left out.
    contact_types: TypedWrite | None = None
    company_types: TypedWrite | None = None
    limits: Limits = field(default_factory=Limits)
    trusted: bool = False

    @property
    def type_warnings(self) -> tuple[str, ...]:
        """`attribute_type:KEY` for the contact's keys, `...:company.KEY` for the company's."""
        contact = self.contact_types.warnings if self.contact_types else []
        company = self.company_types.warnings if self.company_types else []
        return (*contact, *(w.replace(":", ":company.", 1) for w in company))


def _check(
    request: IdentifyFields, project: ProjectConfig, limits: Limits, tx: Tx, *, trusted: bool
) -> _Checked:
    """Limits and signatures; a trusted (team) caller brings no proof and needs none for
    protected keys."""
    if isinstance(request, IdentifyRequest) and not trusted:
        claims, proof = resolve_proof(
            mode=project.identity_verification,
            secrets=project.accepted_secrets(tx.now),
            user_id=request.user_id,
            email=request.email,
            name=request.name,
            user_hash=request.user_hash,
            identity_token=request.identity_token,
        )
    else:
        claims, proof = Claims(request.user_id, request.email, request.name), UNVERIFIED
    if claims.user_id is None and claims.email is None:
        raise InvalidInput(
            "missing_identity", "identify needs a user_id or an email (or both)", field="user_id"
        )
    if claims.user_id is not None:
        check_identifier(claims.user_id, field="user_id", limits=limits)
    email = parse_email(claims.email, limits=limits) if claims.email is not None else None
    if claims.name is not None:
        check_text(claims.name, field="name", max_length=limits.max_name_length)

    metadata = None
    if request.metadata:
        metadata = check_metadata(request.metadata, field="metadata", limits=limits)
        if not trusted:
            check_protected_keys(
                metadata, protected=project.protected_keys, signed=proof.metadata, field="metadata"
            )
    if proof.metadata:
        metadata = {
            **(metadata or {}),
            **check_metadata(proof.metadata, field="identity_token", limits=limits),
        }
    contact_types = None
    if metadata:
        contact_types = check_types(project, Model.CONTACT, metadata, limits=limits, refuse=trusted)
        metadata = contact_types.values
    company, company_types = request.company, None
    stage_mode = request.stage_mode or project.stage_mode
    if company is not None:
        check_identifier(company.id, field="company.id", limits=limits)
        if company.stage is not None:  # refused before anything is written
            check_stage(
                mode=stage_mode, new=company.stage, pipeline=project.stages, field="company.stage"
            )
        if company.metadata:
            check_metadata(company.metadata, field="company.metadata", limits=limits)
        if company.metadata and not trusted:
            check_protected_keys(
                company.metadata,
                protected=project.protected_keys,
                signed={},
                field="company.metadata",
            )
        if company.metadata:
            company_types = check_types(
                project, Model.COMPANY, company.metadata, limits=limits, refuse=trusted,
                field="company.metadata",
            )  # fmt: skip
            if company_types.values != company.metadata:  # a value stored as its type has it
                company = company.model_copy(update={"metadata": company_types.values})
    company_ids = list(request.company_ids or [])
    if len(company_ids) > limits.max_company_ids:
        raise InvalidInput(
            "too_long",
            f"company_ids has more than {limits.max_company_ids} ids",
            field="company_ids",
        )
    for index, company_id in enumerate(company_ids):
        check_identifier(company_id, field=f"company_ids[{index}]", limits=limits)
    return _Checked(
        proof=proof,
        user_id=claims.user_id,
        email_key=email.normalized if email is not None else None,
        claims=claims,
        email=email,
        metadata=metadata,
        company=company,
        company_ids=company_ids,
        stage_mode=stage_mode,
        contact_types=contact_types,
        company_types=company_types,
        limits=limits,
        trusted=trusted,
    )


async def _define_attributes(call: WidgetCall, checked: _Checked) -> _Checked:
    """Make the definitions of keys written for the first time: the first write of identify,
    after every check."""
    if not any(types is not None and types.new
               for types in (checked.contact_types, checked.company_types)):  # fmt: skip
        return checked  # nothing new: the checked values stand

    async def defined(types: TypedWrite | None, model: Model) -> TypedWrite | None:
        if types is None or not types.new:
            return types
        return await define_new(
            call.tx,
            types,
            project=call.project,
            model=model,
            limits=checked.limits,
            refuse=checked.trusted,
        )

    contact_types = await defined(checked.contact_types, Model.CONTACT)
    company_types = await defined(checked.company_types, Model.COMPANY)
    company = checked.company
    if company is not None and company_types is not None:
        company = company.model_copy(update={"metadata": company_types.values})
    return replace(
        checked,
        metadata=contact_types.values if contact_types is not None else checked.metadata,
        company=company,
        contact_types=contact_types,
        company_types=company_types,
    )


def _ref(contact: ContactRow | None) -> ContactRef | None:
    if contact is None:
        return None
    return ContactRef(
        id=contact.id,
        user_id=contact.user_id,
        email=contact.email_normalized,
        verified=contact.verified,
    )


def _plan(call: WidgetCall, checked: _Checked) -> IdentifyPlan:
    by_user_id = next((c for c in call.candidates if c.user_id == checked.user_id), None)
    by_email = next((c for c in call.candidates if c.email_normalized == checked.email_key), None)
    email_owner = _ref(by_email) if checked.email_key is not None else None
    if email_owner is None and call.email_alias_of is not None:
        # The email of a contact merged into another that kept its own: it reaches that one.
        merged_into = next(c for c in call.candidates if c.id == call.email_alias_of)
        email_owner = ContactRef(
            id=merged_into.id,
            user_id=merged_into.user_id,
            email=checked.email_key,
            verified=merged_into.verified,
        )
    return plan_identify(
        mode=call.project.identity_verification,
        user_id=checked.user_id,
        email=checked.email_key,
        proof=checked.proof,
        by_user_id=_ref(by_user_id) if checked.user_id is not None else None,
        by_email=email_owner,
        binding=Binding(
            contact=_ref(call.contact), verified=call.visitor.verified, session=call.session
        )
        if call.visitor is not None
        else Binding(),
        trusted_caller=call.trusted,
    )


async def _write_contact(call: WidgetCall, checked: _Checked, plan: IdentifyPlan) -> ContactRow:
    """Create or update the target contact as the plan says; merge the lead into it; carry
    over what the visitor collected while anonymous. Returns the contact as stored."""
    tx, visitor = call.tx, call.visitor
    candidates = {c.id: c for c in call.candidates}
    target = candidates[plan.target.id] if plan.target is not None else None
    lead = candidates[plan.merge_lead.id] if plan.merge_lead is not None else None

    current = target or ContactRow(
        id=0,
        user_id=checked.user_id,
        email=None,
        email_normalized=None,
        name=None,
        metadata_={},
        verified=False,
        email_verified=False,
        created_at=tx.now,
        last_seen_at=tx.now,
        version=1,
    )
    stored = _contact_after(current, lead, visitor, checked, plan)
    changed = _changed(target, stored)
    if "user_id" in changed or "email_normalized" in changed:
        identity = call.identity
        assert identity is not None
        await refuse_suppressed_since(
            tx, project=call.project, user_id=identity.user_id, email_key=identity.email_key
        )
    shown_changes = contact_changes(current, stored) if target is not None else {}
    if target is None:
        # A lead being merged holds the email until it is gone.
        later = {"email", "email_normalized"} if lead is not None else set()
        created = {k: v for k, v in changed.items() if k not in later}
        stored = replace(
            stored, id=await insert_contact(tx, project_id=call.project.id, values=created)
        )
        changed = {k: v for k, v in changed.items() if k in later}
    else:
        # A team write is not the person being seen; the widget's moves last_seen_at when it
        # writes the contact anyway, else at most once a minute (as set-properties).
        moved: dict[str, Any] = {}
        if visitor is not None and (changed or not seen_recently(current.last_seen_at, tx.now)):
            moved["last_seen_at"] = tx.now
        if shown_changes:
            moved["version"] = current.version + 1
        if moved:
            stored = replace(stored, **moved)
            changed.update(moved)
    if lead is not None:
        await merge_lead(tx, lead_id=lead.id, into_id=stored.id)
        tx.record(call.project.id, ChangeType.CONTACT_MERGED, {"from": lead.id, "into": stored.id})
    if visitor is not None and visitor.contact_id is None and not visitor.created:
        await carry_over(
            tx, project_id=call.project.id, visitor_row_id=visitor.id, contact_id=stored.id
        )
    await update_contact(tx, stored.id, changed)
    if target is None:
        tx.record(call.project.id, ChangeType.CONTACT_CREATED, contact_data(stored))
    elif shown_changes:
        changes = {**contact_data(stored), "changed": shown_changes}
        tx.record(call.project.id, ChangeType.CONTACT_UPDATED, changes)
    return stored


def _contact_after(
    current: ContactRow,
    lead: ContactRow | None,
    visitor: VisitorRow | None,
    checked: _Checked,
    plan: IdentifyPlan,
) -> ContactRow:
    """The target contact as identify leaves it (before its id, version and last_seen_at): the
    lead merged in, an anonymous visitor's properties carried over, the request's fields."""
    metadata = current.metadata_
    name, verified = current.name, current.verified or plan.mark_verified
    if lead is not None:
        metadata = {**lead.metadata_, **metadata}
        name = name or lead.name
        verified = verified or lead.verified
    if visitor is not None and visitor.contact_id is None:
        metadata = merge_metadata(metadata, visitor.properties)
    if checked.metadata:
        metadata = merge_metadata(metadata, checked.metadata)
    if checked.claims.name is not None:
        name = checked.claims.name
    written: dict[str, Any] = {
        "user_id": checked.user_id if plan.claim_user_id else current.user_id,
        "name": name,
        "metadata_": metadata,
        "verified": verified,
    }
    if plan.set_email and checked.email is not None:
        written.update(email=checked.email.display, email_normalized=checked.email_key)
    if plan.email_verified is not None:
        written["email_verified"] = plan.email_verified
    return replace(current, **written)


_CONTACT_FIELDS = {
    "user_id": "user_id",
    "email": "email",
    "email_normalized": "email_normalized",
    "name": "name",
    "metadata": "metadata_",
    "verified": "verified",
    "email_verified": "email_verified",
}


def _changed(before: ContactRow | None, after: ContactRow) -> dict[str, Any]:
    """Column values of `after` that differ from `before` (every set one for a new contact)."""
    changed = {}
    for column, attribute in _CONTACT_FIELDS.items():
        value = getattr(after, attribute)
        if before is None or getattr(before, attribute) != value:
            changed[column] = value
    return changed


async def _write_companies(
    call: WidgetCall,
    checked: _Checked,
    plan: IdentifyPlan,
    contact: ContactRow,
    newly_verified: bool,
) -> tuple[dict[str, CompanyRow], StageDecision | None, list[CompanyRow] | None]:
    """Upsert and link the named companies, write `company`'s metadata and stage, and guard
    them once a verified contact is linked: the named companies as they now are, the stage
    decision, and the contact's other companies where the upsert read them (`_Written.links`).
    An unverified request may not touch a guarded company (the whole request rolls back)."""
    tx, project = call.tx, call.project
    named = _named_companies(checked)
    rows, linked, others = await upsert_link_and_read(tx, project_id=project.id, names=named,
                                                      contact_id=contact.id)  # fmt: skip
    _check_companies(call, checked, plan, rows)  # a refusal rolls the links back
    for external_id, row in rows.items():
        created = row.created
        if created and (checked.company is None or external_id != checked.company.id):
            tx.record(project.id, ChangeType.COMPANY_CREATED, company_data(row))
        if row.id in linked:
            link_data = {"contact_id": contact.id, "company_id": external_id}
            tx.record(project.id, ChangeType.CONTACT_COMPANY_LINKED, link_data)
    if project.protects(contact.verified):
        await guard(tx, [row.id for row in rows.values() if not row.guarded])
        if newly_verified:
            await guard_linked(tx, contact.id)
            others = [_guarded(row) for row in others] if others is not None else None
        rows = {key: _guarded(row) for key, row in rows.items()}
    if checked.company is None:
        return rows, None, others
    company = rows[checked.company.id]
    after, decision = await _write_company(
        call, checked.company, checked.stage_mode, company, contact.id
    )
    return {**rows, after.external_id: after}, decision, others


def _guarded(company: CompanyRow) -> CompanyRow:
    return company if company.guarded else replace(company, guarded=True)


def _named_companies(checked: _Checked) -> dict[str, str | None]:
    """The companies the request names (external id -> the name a new one gets)."""
    names: dict[str, str | None] = dict.fromkeys(checked.company_ids)
    if checked.company is not None:
        names[checked.company.id] = checked.company.name
    return names


def _check_companies(
    call: WidgetCall, checked: _Checked, plan: IdentifyPlan, rows: dict[str, CompanyRow]
) -> None:
    """Refuse a named company this call may not link or write (guarded, or not signed)."""
    if call.trusted:  # the team's token may link and write any company
        return
    signed = checked.proof.company_ids
    if signed is None and call.session:
        signed = call.signed_company_ids()
    for external_id, row in rows.items():
        named_as_company = checked.company is not None and external_id == checked.company.id
        check_company_access(
            project=call.project,
            company_id=external_id,
            guarded=row.guarded,
            verified_call=plan.binding_verified,
            signed_company_ids=signed,
            field="company.id" if named_as_company else "company_ids",
        )


async def _write_company(
    call: WidgetCall,
    given: CompanyInput,
    stage_mode: StageMode,
    company: CompanyRow,
    contact_id: int | None,
) -> tuple[CompanyRow, StageDecision | None]:
    """Name it, merge `company.metadata` and apply `company.stage` under the stage mode; one
    change says what happened (created, updated, stage_changed). The company as it now is,
    and the stage decision."""
    tx, project_id = call.tx, call.project.id
    created = company.created
    values = _company_values(company, given)
    stage = _company_stage(call, company, given, stage_mode)
    if (values or (stage and stage.decision.applied)) and not created:
        values["version"] = company.version + 1
    after = await write_company_and_stage(
        tx, project_id=project_id, company=company, values=values, stage=stage,
        contact_id=contact_id,
    )  # fmt: skip
    if created:
        tx.record(project_id, ChangeType.COMPANY_CREATED, company_data(after))
    else:
        shown = changed_values(_company_shown(company), _company_shown(after), ("name", "metadata"))
        if shown:
            tx.record(
                project_id, ChangeType.COMPANY_UPDATED, {**company_data(after), "changed": shown}
            )
    stage_changed(tx, project_id=project_id, company=after, stage=stage)
    return after, stage.decision if stage is not None else None


def _company_values(company: CompanyRow, given: CompanyInput) -> dict[str, Any]:
    """What `company`'s name and metadata change: the columns to write."""
    values: dict[str, Any] = {}
    if given.name is not None and given.name != company.name:
        values["name"] = given.name
    if given.metadata:
        merged = merge_metadata(company.metadata_, given.metadata)
        if merged != company.metadata_:
            values["metadata"] = merged
    return values


def _company_stage(
    call: WidgetCall, company: CompanyRow, given: CompanyInput, stage_mode: StageMode
) -> StageWrite | None:
    if given.stage is None:
        return None
    return decide_stage(
        company,
        stage=given.stage,
        mode=stage_mode,
        source=call.stage_source,
        pipeline=call.project.stages,
        field="company.stage",
    )


def _company_shown(company: CompanyRow) -> dict[str, Any]:
    return {"name": company.name, "metadata": company.metadata_}


@dataclass(frozen=True)
class _Written:
    """What identify wrote: the contact, the companies the request named as they now are,
    and `company`'s stage decision."""

    checked: _Checked
    plan: IdentifyPlan
    contact: ContactRow
    companies: dict[str, CompanyRow]
    decision: StageDecision | None
    # The contact's companies other than the named ones, as the upsert read them (None
    # where it did not: PostgreSQL reads them with one company's upsert).
    others: list[CompanyRow] | None

    def links(self) -> list[CompanyRow] | None:
        """The contact's companies as they now are, in the order `linked_companies` reads
        them (by external id), where they are known without reading them again."""
        plan = self.plan
        if plan.target is None and plan.merge_lead is None and len(self.companies) <= 1:
            return list(self.companies.values())  # a new contact's: the named ones only
        if self.others is None:
            return None
        return sorted([*self.others, *self.companies.values()], key=attrgetter("external_id"))


async def _write(call: WidgetCall) -> _Written:
    """Matching and every write of identify, for a widget visitor or a team call."""
    checked = call.identity
    assert isinstance(checked, _Checked)
    plan = _plan(call, checked)
    checked = await _define_attributes(call, checked)
    contact = await _write_contact(call, checked, plan)
    target_was_verified = plan.target is not None and plan.target.verified
    companies, decision, others = await _write_companies(
        call,
        checked,
        plan,
        contact,
        # A new contact's links are the ones just made (and a merged lead's, if any).
        newly_verified=contact.verified
        and not target_was_verified
        and (plan.target is not None or plan.merge_lead is not None),
    )
    return _Written(checked, plan, contact, companies, decision, others)


@dataclass(frozen=True)
class ContactWrite:
    contact: ContactRow
    warnings: tuple[str, ...]
    stage: StageDecision | None


async def identify_contact(
    tx: Tx, *, app_id: str, request: IdentifyFields, limits: Limits
) -> ContactWrite:
    """The team's identify: match or create the contact by user_id or email with the same
    rules as the widget's, trusted like a signed identity, with no visitor to bind."""
    call = await open_team_call(
        tx,
        app_id=app_id,
        user_id=request.user_id,
        email=request.email,
        limits=limits,
        identify=lambda project: _check(request, project, limits, tx, trusted=True),
    )
    written = await _write(call)
    warnings = (*written.plan.warnings, *written.checked.type_warnings)
    return ContactWrite(contact=written.contact, warnings=warnings, stage=written.decision)


async def write_company(
    tx: Tx, *, app_id: str, company: CompanyInput, limits: Limits
) -> StageDecision | None:
    """The team's company write (an import row): create it or merge its name and metadata
    and apply its stage under the project's stage mode, as identify's `company` does."""
    call = await open_team_call(tx, app_id=app_id, user_id=None, email=None, limits=limits)
    check_identifier(company.id, field="id", limits=limits)
    if company.metadata:
        check_metadata(company.metadata, field="metadata", limits=limits)
        typed = await typed_metadata(
            tx, project=call.project, model=Model.COMPANY, metadata=company.metadata,
            limits=limits, refuse=True,
        )  # fmt: skip
        company = company.model_copy(update={"metadata": typed.values})
    rows = await upsert_companies(tx, project_id=call.project.id, names={company.id: company.name})
    mode = call.project.stage_mode
    _, decision = await _write_company(call, company, mode, rows[company.id], None)
    return decision


async def identify(
    tx: Tx,
    *,
    request: IdentifyRequest,
    caller: Caller,
    limits: Limits,
    session_ttl: timedelta,
) -> IdentifyResult:
    """Identify the visitor as a contact, in one race-safe transaction; a repeat of what is
    stored answers from one read (`_repeat`)."""
    repeated = await _repeat(tx, request, caller, limits, session_ttl)
    if repeated is not None:
        return repeated
    call = await open_widget_call(
        tx,
        app_id=request.app_id,
        visitor_id=request.visitor_id,
        caller=caller,
        limits=limits,
        identify=lambda project: _check(request, project, limits, tx, trusted=False),
    )
    written = await _write(call)
    checked, plan, contact = written.checked, written.plan, written.contact
    visitor = call.widget_visitor
    linked = written.links()
    if linked is None:
        linked = await linked_companies(tx, contact.id)
    visitor_changes, active_id = _visitor_changes(visitor, contact.id, request, checked, plan,
                                                  linked)  # fmt: skip
    await update_visitor(tx, visitor.id, **visitor_changes)
    return _result(call, request, checked, plan, contact, linked, active_id, written.decision,
                   session_ttl)  # fmt: skip


def _visitor_changes(
    visitor: VisitorRow,
    contact_id: int,
    request: IdentifyRequest,
    checked: _Checked,
    plan: IdentifyPlan,
    linked: list[CompanyRow],
) -> tuple[dict[str, Any], int | None]:
    """What identify changes of the visitor (its binding, its active company, its signed
    company ids), and the active company's row id."""
    switched = visitor.contact_id is not None and visitor.contact_id != contact_id
    active_id = visitor.active_company_id
    if switched or ("company" in request.model_fields_set and checked.company is None):
        active_id = None  # the previous user's company is not this user's; null clears it
    if checked.company is not None:
        active_id = next(c.id for c in linked if c.external_id == checked.company.id)
    changes: dict[str, Any] = {}
    if visitor.contact_id != contact_id:
        changes["contact_id"] = contact_id
    if visitor.contact_id is None and visitor.properties:
        changes["properties"] = {}
    if visitor.verified != plan.binding_verified:
        changes["verified"] = plan.binding_verified
    if active_id != visitor.active_company_id:
        changes["active_company_id"] = active_id
    signed = sorted(checked.proof.company_ids) if checked.proof.company_ids is not None else None
    if (signed is not None or switched) and signed != visitor.signed_company_ids:
        changes["signed_company_ids"] = signed
    return changes, active_id


def _result(
    call: WidgetCall,
    request: IdentifyRequest,
    checked: _Checked,
    plan: IdentifyPlan,
    contact: ContactRow,
    linked: list[CompanyRow],
    active_id: int | None,
    decision: StageDecision | None,
    session_ttl: timedelta,
    token: str | None = None,
) -> IdentifyResult:
    """The answer; `token`: a still-fresh session token to answer again instead of a new one."""
    visitor = call.widget_visitor
    active = next((c for c in linked if c.id == active_id), None)
    return IdentifyResult(
        visitor_key=visitor.visitor_key,
        contact=contact,
        active_company=active,
        active_company_visible=active is not None
        and company_visible(
            project=call.project, guarded=active.guarded, verified_call=plan.binding_verified
        ),
        company_ids=[c.external_id for c in linked],
        session_token=token
        or new_session_token(
            project=call.project,
            visitor_key=visitor.visitor_key,
            contact_id=contact.id,
            tx=call.tx,
            ttl=session_ttl,
        ),
        warnings=(*plan.warnings, *checked.type_warnings),
        stage=decision,
        stage_mode=checked.stage_mode if decision is not None else None,
        outcome=_outcome(plan),
        proven=checked.proof.verified,
    )


async def _repeat(
    tx: Tx, request: IdentifyRequest, caller: Caller, limits: Limits, session_ttl: timedelta
) -> IdentifyResult | None:
    """The repeat identify (README "Identify": a signed-in user's page views): the caller's
    session token vouches for the visitor's binding, and nothing in the request would change
    what is stored (the contact, its companies, their stage, the visitor), both seen within
    the last minute. It answers as the full identify would, from one read, with no lock and
    no write; None sends anything else down the full path. Each rule is the full path's own
    function (`_plan`, `_contact_after`, `_company_values`, `_company_stage`,
    `_check_companies`, `_visitor_changes`), applied to what was read."""
    if caller.bearer is None:
        return None
    project = await admit(
        tx, app_id=request.app_id, visitor_id=request.visitor_id, caller=caller, limits=limits
    )
    session = session_of(
        secret=project.session_secret, token=caller.bearer, app_id=project.app_id,
        visitor_id=request.visitor_id,
    )  # fmt: skip
    if session is None:
        return None
    contact_id = session.contact_id
    checked = _check(request, project, limits, tx, trusted=False)
    if any(types is not None and types.new for types in (checked.contact_types,
                                                         checked.company_types)):  # fmt: skip
        return None  # a key's first write defines it
    seen = await returning_visitor(tx, project_id=project.id, visitor_key=request.visitor_id)
    if seen is None or seen.visitor.contact_id != contact_id:
        return None
    contact = seen.contact
    if not (seen_recently(contact.last_seen_at, tx.now) and seen_recently(seen.visitor_seen_at,
                                                                          tx.now)):  # fmt: skip
        return None
    if checked.user_id not in (None, contact.user_id):
        return None
    if checked.email_key not in (None, contact.email_normalized):
        return None
    call = WidgetCall(tx, project, seen.visitor, contact, True, checked, [contact])
    plan = _plan(call, checked)
    if plan.target is None or plan.target.id != contact.id or plan.merge_lead is not None:
        return None
    if _changed(contact, _contact_after(contact, None, seen.visitor, checked, plan)):
        return None
    linked = {c.external_id: c for c in seen.companies}
    names = _named_companies(checked)
    if not names.keys() <= linked.keys():
        return None
    named = {external_id: linked[external_id] for external_id in names}
    try:
        _check_companies(call, checked, plan, named)
    except HalError:
        return None  # the full path refuses it the same way
    if project.protects(contact.verified) and not all(c.guarded for c in named.values()):
        return None
    decision = None
    if checked.company is not None:
        company = named[checked.company.id]
        if _company_values(company, checked.company):
            return None
        stage = _company_stage(call, company, checked.company, checked.stage_mode)
        if stage is not None and stage.decision.applied:
            return None
        decision = stage.decision if stage is not None else None
    changes, active_id = _visitor_changes(seen.visitor, contact.id, request, checked, plan,
                                          seen.companies)  # fmt: skip
    if changes:
        return None
    token = caller.bearer if session.fresh(tx.now, session_ttl) else None
    result = _result(call, request, checked, plan, contact, seen.companies, active_id, decision,
                     session_ttl, token)  # fmt: skip
    if token is None or request.identity_token is not None:
        return result  # a new token each time; an identity token's own expiry is not read here
    until = repeat_holds_until(
        contact_seen=contact.last_seen_at,
        visitor_seen=seen.visitor_seen_at,
        token_fresh_until=session.fresh_until(session_ttl),
        previous_secret_ends=project.previous_secret_expires_at
        if project.previous_identity_secret
        else None,
        now=tx.now,
    )
    return replace(result, repeat=RepeatRead(project, seen.rows, until))


def _outcome(plan: IdentifyPlan) -> str:
    if plan.merge_lead is not None:
        return "merged"
    if plan.target is None:
        return "created"
    return "claimed" if plan.claim_user_id else "matched"
