"""The identify matching rules as a pure decision (README "Identify", "Identity verification")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.errors import Forbidden
from hal.domain.matching import (
    Binding,
    ContactRef,
    plan_identify,
    repeat_holds_until,
    seen_recently,
)
from hal.domain.verification import UNVERIFIED, Proof, VerificationMode

ENABLED = VerificationMode.ENABLED
LEAD = ContactRef(id=1, user_id=None, email="a@x.com", verified=False)
USER = ContactRef(id=2, user_id="u2", email="b@x.com", verified=False)


def plan(**kwargs):
    kwargs.setdefault("mode", ENABLED)
    kwargs.setdefault("proof", UNVERIFIED)
    kwargs.setdefault("user_id", None)
    kwargs.setdefault("email", None)
    kwargs.setdefault("by_user_id", None)
    kwargs.setdefault("by_email", None)
    return plan_identify(**kwargs)


def test_user_id_match_wins_over_email():
    result = plan(user_id="u2", email="a@x.com", by_user_id=USER, by_email=LEAD)
    assert result.target == USER
    assert result.merge_lead == LEAD  # the lead owning the new email is merged in


def test_a_lead_with_the_email_is_claimed_when_the_user_id_is_new():
    result = plan(user_id="u9", email="a@x.com", by_email=LEAD)
    assert result.target == LEAD and result.claim_user_id


def test_an_email_owned_by_another_user_gives_a_new_contact_and_a_warning():
    result = plan(user_id="u9", email="b@x.com", by_email=USER)
    assert result.target is None
    assert not result.set_email
    assert result.warnings == ("email_in_use",)


def test_email_only_reaches_the_contact_with_that_email():
    assert plan(email="b@x.com", by_email=USER).target == USER
    assert plan(email="new@x.com").target is None


def test_a_hash_over_user_id_never_claims_or_merges_through_the_email():
    proof = Proof(user_id="u9")
    claim = plan(user_id="u9", email="a@x.com", by_email=LEAD, proof=proof)
    assert claim.target is None and claim.warnings == ("email_in_use",)
    merge = plan(
        user_id="u2", email="a@x.com", by_user_id=USER, by_email=LEAD, proof=Proof(user_id="u2")
    )
    assert merge.merge_lead is None and merge.warnings == ("email_in_use",)


def test_a_token_signing_the_email_may_claim_the_lead():
    result = plan(
        user_id="u9", email="a@x.com", by_email=LEAD, proof=Proof(user_id="u9", email="a@x.com")
    )
    assert result.target == LEAD and result.claim_user_id and result.mark_verified


def test_an_unverified_request_cannot_reach_a_verified_contact():
    verified = ContactRef(id=3, user_id="u3", email="c@x.com", verified=True)
    with pytest.raises(Forbidden) as refused:
        plan(user_id="u3", by_user_id=verified)
    assert refused.value.code == "verification_required"
    with pytest.raises(Forbidden):
        plan(email="c@x.com", by_email=verified)


def test_a_proof_for_another_value_does_not_open_a_verified_contact():
    verified = ContactRef(id=3, user_id="u3", email="c@x.com", verified=True)
    with pytest.raises(Forbidden):
        plan(user_id="u3", by_user_id=verified, proof=Proof(email="c@x.com"))


VERIFIED = ContactRef(id=3, user_id="u3", email="c@x.com", verified=True)
OTHER_VERIFIED = ContactRef(id=4, user_id="u4", email="d@x.com", verified=True)


def session_of(contact, verified=True):
    return Binding(contact=contact, verified=verified, session=True)


def test_a_session_token_vouches_for_its_own_contact_only():
    assert plan(user_id="u3", by_user_id=VERIFIED, binding=session_of(VERIFIED)).target == VERIFIED
    with pytest.raises(Forbidden):
        plan(user_id="u3", by_user_id=VERIFIED, binding=session_of(OTHER_VERIFIED))


def test_a_session_of_an_unverified_binding_does_not_open_a_verified_contact():
    with pytest.raises(Forbidden) as refused:
        plan(user_id="u3", by_user_id=VERIFIED, binding=session_of(VERIFIED, verified=False))
    assert refused.value.code == "verification_required"


def test_a_proof_of_another_identity_cannot_take_over_a_verified_visitor():
    bound = Binding(contact=VERIFIED, verified=True, session=False)
    with pytest.raises(Forbidden) as refused:
        plan(user_id="u4", by_user_id=OTHER_VERIFIED, proof=Proof(user_id="u4"), binding=bound)
    assert refused.value.code == "visitor_in_use"


def test_an_account_switch_needs_the_session_and_a_proof_of_the_new_identity():
    switched = plan(
        user_id="u4", by_user_id=OTHER_VERIFIED, proof=Proof(user_id="u4"),
        binding=session_of(VERIFIED),
    )  # fmt: skip
    assert switched.target == OTHER_VERIFIED and switched.binding_verified
    with pytest.raises(Forbidden) as refused:
        plan(user_id="u9", binding=session_of(VERIFIED))
    assert refused.value.code == "visitor_in_use"


def test_an_unverified_binding_may_be_switched_freely():
    bound = Binding(contact=USER, verified=False, session=False)
    assert plan(user_id="u9", binding=bound).target is None


def test_a_proof_over_the_user_id_does_not_verify_an_unsigned_email():
    claimed = plan(user_id="u9", email="a@x.com", by_email=LEAD)
    assert claimed.target == LEAD and claimed.email_verified is None
    lead_now = ContactRef(id=1, user_id="u9", email="a@x.com", verified=False)
    verified = plan(user_id="u9", by_user_id=lead_now, proof=Proof(user_id="u9"))
    assert verified.mark_verified and verified.email_verified is None
    signed = plan(user_id="u9", email="a@x.com", by_user_id=lead_now, by_email=lead_now,
                  proof=Proof(user_id="u9", email="a@x.com"))  # fmt: skip
    assert signed.email_verified is True


def test_a_new_email_is_verified_only_when_signed():
    assert plan(user_id="u9", email="n@x.com", proof=Proof(user_id="u9")).email_verified is False
    by_email = plan(email="n@x.com", proof=Proof(email="n@x.com"))
    assert by_email.email_verified is True and by_email.mark_verified


def test_the_binding_is_verified_by_a_proof_or_a_verified_session_of_the_same_contact():
    assert plan(user_id="u3", by_user_id=VERIFIED, proof=Proof(user_id="u3")).binding_verified
    assert plan(user_id="u3", by_user_id=VERIFIED, binding=session_of(VERIFIED)).binding_verified
    assert not plan(user_id="u2", by_user_id=USER).binding_verified


def test_disabled_verification_never_refuses_and_never_verifies():
    verified = ContactRef(id=3, user_id="u3", email="c@x.com", verified=True)
    result = plan(mode=VerificationMode.DISABLED, user_id="u3", by_user_id=verified)
    assert result.target == verified and not result.mark_verified


refs = st.builds(
    ContactRef,
    id=st.integers(1, 5),
    user_id=st.one_of(st.none(), st.sampled_from(["u1", "u2"])),
    email=st.sampled_from(["a@x.com", "b@x.com"]),
    verified=st.booleans(),
)
proofs = st.one_of(
    st.just(UNVERIFIED),
    st.builds(Proof, user_id=st.sampled_from(["u1", "u2"])),
    st.builds(Proof, email=st.sampled_from(["a@x.com", "b@x.com"])),
)


@given(
    user_id=st.one_of(st.none(), st.sampled_from(["u1", "u2"])),
    email=st.one_of(st.none(), st.sampled_from(["a@x.com", "b@x.com"])),
    by_user_id=st.one_of(st.none(), refs),
    by_email=st.one_of(st.none(), refs),
    proof=proofs,
)
def test_an_unverified_request_never_touches_a_verified_contact(
    user_id, email, by_user_id, by_email, proof
):
    if user_id is None and email is None:
        return
    try:
        result = plan(
            user_id=user_id, email=email, proof=proof, by_user_id=by_user_id, by_email=by_email
        )
    except Forbidden:
        return
    signs_key = proof.signs_user_id(user_id) if user_id else proof.signs_email(email)
    if result.target is not None and result.target.verified:
        assert signs_key
    if result.merge_lead is not None:
        assert proof.signs_email(email) or not proof.verified
        assert not result.merge_lead.verified or proof.signs_email(email)
    if result.claim_user_id:
        assert result.target is not None and result.target.user_id is None
        assert proof.signs_email(email) or not proof.verified


# The repeat identify answered again (services/repeat_answers.py): until when its time-bound
# rules answer as they do now.
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@given(
    contact_ago=st.integers(0, 59),
    visitor_ago=st.integers(0, 59),
    fresh_for=st.integers(1, 10_000),
    secret_ends_in=st.none() | st.integers(-100, 100),
    later=st.integers(0, 200),
)
def test_a_repeat_holds_until_a_rule_would_answer_otherwise(
    contact_ago: int, visitor_ago: int, fresh_for: int, secret_ends_in: int | None, later: int
) -> None:
    contact_seen = NOW - timedelta(seconds=contact_ago)
    visitor_seen = NOW - timedelta(seconds=visitor_ago)
    fresh_until = NOW + timedelta(seconds=fresh_for)
    secret_ends = None if secret_ends_in is None else NOW + timedelta(seconds=secret_ends_in)
    until = repeat_holds_until(
        contact_seen=contact_seen, visitor_seen=visitor_seen, token_fresh_until=fresh_until,
        previous_secret_ends=secret_ends, now=NOW,
    )  # fmt: skip
    then = NOW + timedelta(seconds=later)

    def rules(at: datetime) -> tuple[bool, ...]:
        accepted = secret_ends is not None and secret_ends > at
        return (seen_recently(contact_seen, at), seen_recently(visitor_seen, at),
                at < fresh_until, accepted)  # fmt: skip

    assert until > NOW
    if then < until:
        assert rules(then) == rules(NOW)
    assert rules(until) != rules(NOW)  # the bound is tight: a rule turns at that instant


def test_a_repeat_seen_a_minute_ago_holds_no_longer() -> None:
    until = repeat_holds_until(
        contact_seen=NOW - timedelta(seconds=30), visitor_seen=NOW - timedelta(seconds=10),
        token_fresh_until=NOW + timedelta(days=3), previous_secret_ends=None, now=NOW,
    )  # fmt: skip
    assert until == NOW + timedelta(seconds=30)
