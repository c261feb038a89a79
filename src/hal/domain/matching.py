"""Which contact an identify reaches, and what it may change (README "Identify", steps 1-3).

`plan_identify` is a pure decision over the candidates the service loaded; the service then
carries the plan out inside one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hal.domain.errors import Forbidden
from hal.domain.verification import Proof, VerificationMode

EMAIL_IN_USE = "email_in_use"
# `last_seen_at` moves at most this often: an identify that changes nothing else writes
# nothing when the contact and the visitor were both seen this recently.
SEEN_EVERY = timedelta(minutes=1)


def seen_recently(last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at < SEEN_EVERY


def repeat_holds_until(
    *,
    contact_seen: datetime,
    visitor_seen: datetime,
    token_fresh_until: datetime,
    previous_secret_ends: datetime | None,
    now: datetime,
) -> datetime:
    """Until when a repeat identify's time-bound rules answer as they do `now`, the rows it
    read unchanged: the contact and the visitor seen within a minute (`seen_recently`), the
    session token fresh enough to answer again, the same identity secrets accepted."""
    until = min(contact_seen + SEEN_EVERY, visitor_seen + SEEN_EVERY, token_fresh_until)
    if previous_secret_ends is not None and previous_secret_ends > now:
        until = min(until, previous_secret_ends)
    return until


@dataclass(frozen=True)
class ContactRef:
    """The facts about an existing contact that matching needs."""

    id: int
    user_id: str | None
    email: str | None  # normalized
    verified: bool


@dataclass(frozen=True)
class Binding:
    """The visitor's binding as the request found it."""

    contact: ContactRef | None = None  # the contact the visitor is bound to
    verified: bool = False  # that binding was made by a proof of the contact's identity
    session: bool = False  # the caller's session token vouches for that binding


@dataclass(frozen=True)
class IdentifyPlan:
    target: ContactRef | None  # None: create a new contact
    claim_user_id: bool  # the target is a lead that receives the request's user_id
    set_email: bool  # store the request's email on the target
    email_verified: bool | None  # the target's new email_verified; None leaves it
    merge_lead: ContactRef | None  # a lead whose records move into the target, then goes
    mark_verified: bool  # the proof signs the target's key: the contact becomes verified
    binding_verified: bool  # the visitor is bound by a proof (or a verified session) of it
    warnings: tuple[str, ...]


def _refuse_verified() -> Forbidden:
    return Forbidden(
        "verification_required",
        "this contact is verified: send a valid user_hash or identity_token for it",
        field="user_hash",
    )


def _refuse_rebind() -> Forbidden:
    return Forbidden(
        "visitor_in_use",
        "this visitor is bound to another verified contact: an account switch needs the "
        "visitor's session token and a proof of the new identity",
        field="visitor_id",
    )


def plan_identify(
    *,
    mode: VerificationMode,
    user_id: str | None,
    email: str | None,
    proof: Proof,
    by_user_id: ContactRef | None,
    by_email: ContactRef | None,
    binding: Binding = Binding(),
    trusted_caller: bool = False,
) -> IdentifyPlan:
    """Decide the target contact, lead claim or merge, email change and binding for one
    identify.

    `email` is normalized. `by_user_id` / `by_email` are the contacts owning those keys now;
    `binding` is the visitor's current binding and whether the caller's session vouches for it.
    `trusted_caller` (the team API's token) reaches verified contacts and claims or merges
    leads as a proof of both keys would, but it is no proof: it marks nothing verified.
    """
    if user_id is None and email is None:
        raise ValueError("identify needs a user_id or an email")
    enforce = mode is not VerificationMode.DISABLED
    # A request is "verified" only for the values its proof signs; a session token vouches
    # for the one contact it was issued for, and as strongly as that binding was made.
    signs_email = proof.signs_email(email)
    signs_key = proof.signs_user_id(user_id) if user_id is not None else signs_email
    vouched = binding.contact.id if binding.session and binding.contact is not None else None

    def trusted(contact: ContactRef) -> bool:
        return (
            not enforce
            or trusted_caller
            or signs_key
            or (contact.id == vouched and binding.verified)
        )

    def may_take_lead(lead: ContactRef) -> bool:
        """True: claim/merge; False: leave it (email_in_use); raises for a verified lead."""
        if trusted_caller or signs_email or lead.id == vouched:
            return True
        if proof.verified:
            # Signed over the user_id only: the email is an unsigned field
            # (README "Identity verification").
            return False
        if enforce and lead.verified:
            raise _refuse_verified()
        return True

    target: ContactRef | None
    claim = False
    if user_id is not None:
        if by_user_id is not None:
            target = by_user_id
        elif by_email is not None and by_email.user_id is None and may_take_lead(by_email):
            target, claim = by_email, True
        else:
            target = None
    else:
        target = by_email

    if target is not None and target.verified and not trusted(target):
        raise _refuse_verified()

    bound = binding.contact
    switching = bound is not None and (target is None or target.id != bound.id)
    verified_binding = switching and bound is not None and bound.verified
    if enforce and verified_binding and not (binding.session and signs_key):
        raise _refuse_rebind()

    warnings: list[str] = []
    set_email = False
    merge_lead: ContactRef | None = None
    if email is not None and (target is None or target.email != email):
        owner = by_email if by_email is not None and by_email != target else None
        if owner is None:
            set_email = True
        elif owner.user_id is not None:
            warnings.append(EMAIL_IN_USE)
        elif may_take_lead(owner):
            merge_lead, set_email = owner, True
        else:
            warnings.append(EMAIL_IN_USE)

    email_verified: bool | None = None
    if set_email:
        email_verified = enforce and signs_email
    elif enforce and signs_email and target is not None and target.email == email:
        email_verified = True

    same_verified_session = binding.verified and target is not None and target.id == vouched
    return IdentifyPlan(
        target=target,
        claim_user_id=claim,
        set_email=set_email,
        email_verified=email_verified,
        merge_lead=merge_lead,
        mark_verified=enforce and signs_key,
        binding_verified=enforce and (signs_key or same_verified_session),
        warnings=tuple(warnings),
    )
