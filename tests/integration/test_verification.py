"""README "Identity verification": hashes, tokens, sessions, and what unsigned fields may reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from hal.services.projects import rotate_secret
from tests.factories import unique, unique_email


def token_for(project, ttl=timedelta(minutes=5), secret=None, **claims):
    claims["exp"] = datetime.now(UTC) + ttl
    return jwt.encode(claims, secret or project.secret, algorithm="HS256")


async def test_new_projects_default_to_enabled_verification(widget, project):
    body = (await widget.identify(project, user_id="u1")).json()
    assert body["contact"]["verified"] is False  # accepted, unverified


async def test_a_valid_hash_over_user_id_marks_the_contact_verified(widget, project):
    body = (await widget.identify(project, user_id="u1", email=unique_email(), signed=True)).json()
    assert body["contact"]["verified"] is True


async def test_the_hash_is_over_the_email_exactly_as_sent_when_no_user_id(widget, project):
    email = "  Carol@Example.com"
    ok = await widget.identify(project, email=email, user_hash=project.hash(email))
    assert ok.status_code == 200, ok.text
    assert ok.json()["contact"]["verified"] is True
    normalized = await widget.identify(
        project, email=email, user_hash=project.hash("carol@example.com")
    )
    assert normalized.status_code == 401


async def test_a_wrong_hash_is_401_invalid_user_hash(widget, project, inspect):
    response = await widget.identify(project, user_id="u1", user_hash="0" * 64)
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_user_hash",
        "message": response.json()["error"]["message"],
        "field": "user_hash",
    }
    assert await inspect.contacts(project.app_id) == []


async def test_a_hash_from_another_project_is_refused(widget, project, new_project):
    other = await new_project()
    response = await widget.identify(project, user_id="u1", user_hash=other.hash("u1"))
    assert response.status_code == 401


async def test_disabled_verification_ignores_the_hash(widget, new_project):
    project = await new_project(verification="disabled")
    body = (await widget.identify(project, user_id="u1", user_hash="wrong")).json()
    assert body["contact"]["verified"] is False


async def test_enforced_verification_refuses_identify_without_a_valid_hash(
    widget, new_project, inspect
):
    project = await new_project(verification="enforced")
    missing = await widget.identify(project, user_id="u1")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "user_hash_required"
    wrong = await widget.identify(project, user_id="u1", user_hash=project.hash("u2"))
    assert wrong.status_code == 401
    assert await inspect.contacts(project.app_id) == []
    ok = await widget.identify(project, user_id="u1", signed=True)
    assert ok.status_code == 200


async def test_an_unverified_request_cannot_bind_to_a_verified_contact(widget, project):
    await widget.identify(project, user_id="u1", signed=True)
    response = await widget.identify(project, user_id="u1", name="Mallory")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "verification_required"


async def test_an_unverified_request_cannot_reach_a_verified_contact_by_email(widget, project):
    email = unique_email()
    await widget.identify(project, user_id="u1", email=email, signed=True)
    response = await widget.identify(project, email=email, metadata={"plan": "free"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "verification_required"


async def test_an_unverified_request_cannot_claim_a_verified_lead(widget, project):
    email = unique_email()
    await widget.identify(project, email=email, signed=True)  # verified by an email hash
    response = await widget.identify(project, user_id="attacker", email=email)
    assert response.status_code == 403


async def test_an_unverified_request_cannot_merge_a_verified_lead(widget, project, inspect):
    email = unique_email()
    await widget.identify(project, email=email, signed=True)
    await widget.identify(project, user_id="attacker")
    response = await widget.identify(project, user_id="attacker", email=email)
    assert response.status_code == 403
    assert len(await inspect.contacts(project.app_id)) == 2


async def test_a_hash_over_user_id_does_not_claim_a_lead_by_its_email(widget, project, inspect):
    email = unique_email("victim")
    lead = (await widget.identify(project, email=email)).json()["contact"]
    body = (await widget.identify(project, user_id="u1", email=email, signed=True)).json()
    assert body["contact"]["id"] != lead["id"]
    assert body["contact"]["email"] is None
    assert body["warnings"] == ["email_in_use"]
    contacts = {c.id: c for c in await inspect.contacts(project.app_id)}
    assert contacts[lead["id"]].email == email and contacts[lead["id"]].user_id is None


async def test_a_hash_over_user_id_does_not_merge_a_lead_by_its_email(widget, project, inspect):
    email = unique_email("victim")
    await widget.identify(project, email=email, metadata={"secret": "lead's"})
    await widget.identify(project, user_id="u1", signed=True)
    body = (await widget.identify(project, user_id="u1", email=email, signed=True)).json()
    assert body["warnings"] == ["email_in_use"]
    assert body["contact"]["metadata"] == {}
    assert len(await inspect.contacts(project.app_id)) == 2


async def test_a_verified_visitor_needs_its_session_token_or_a_hash(widget, project):
    visitor = unique("v")
    identified = await widget.identify(project, visitor_id=visitor, user_id="u1", signed=True)
    token = identified.json()["session_token"]

    without = await widget.set_properties(project, visitor, {"a": 1})
    assert without.status_code == 401
    assert without.json()["error"]["code"] == "session_token_required"
    with_token = await widget.set_properties(project, visitor, {"a": 1}, token=token)
    assert with_token.status_code == 200

    again_unsigned = await widget.identify(project, visitor_id=visitor, user_id="u1")
    assert again_unsigned.status_code == 401
    again_with_token = await widget.identify(project, visitor_id=visitor, user_id="u1", token=token)
    assert again_with_token.status_code == 200
    again_signed = await widget.identify(project, visitor_id=visitor, user_id="u1", signed=True)
    assert again_signed.status_code == 200


async def test_a_visitor_id_equal_to_the_user_id_is_not_a_credential(widget, project, inspect):
    await widget.identify(project, visitor_id="u1", user_id="u1", signed=True)
    attack = await widget.set_properties(project, "u1", {"plan": "enterprise"})
    assert attack.status_code == 401
    assert (await inspect.contacts(project.app_id))[0].metadata_ == {}


async def test_another_visitors_session_token_is_refused(widget, project):
    mine = unique("v")
    token = (await widget.identify(project, visitor_id=mine, user_id="u1", signed=True)).json()[
        "session_token"
    ]
    theirs = unique("v")
    await widget.identify(project, visitor_id=theirs, user_id="u2", signed=True)
    response = await widget.set_properties(project, theirs, {"a": 1}, token=token)
    assert response.status_code == 401


async def test_a_session_token_from_another_project_is_refused(widget, project, new_project):
    other = await new_project()
    visitor = unique("v")
    foreign = (await widget.identify(other, visitor_id=visitor, user_id="u1", signed=True)).json()
    await widget.identify(project, visitor_id=visitor, user_id="u1", signed=True)
    response = await widget.set_properties(
        project, visitor, {"a": 1}, token=foreign["session_token"]
    )
    assert response.status_code == 401


async def test_account_switch_on_a_verified_visitor_needs_the_session_and_a_proof(widget, project):
    visitor = unique("v")
    token = (await widget.identify(project, visitor_id=visitor, user_id="u1", signed=True)).json()[
        "session_token"
    ]
    blind = await widget.identify(project, visitor_id=visitor, user_id="u2")
    assert blind.status_code == 401
    unproven = await widget.identify(project, visitor_id=visitor, user_id="u2", token=token)
    assert unproven.status_code == 403
    assert unproven.json()["error"]["code"] == "visitor_in_use"
    switched = await widget.identify(
        project, visitor_id=visitor, user_id="u2", signed=True, token=token
    )
    assert switched.status_code == 200
    assert switched.json()["contact"]["user_id"] == "u2"


async def test_an_identity_token_verifies_its_claims_and_wins_over_the_body(widget, project):
    email = unique_email()
    token = token_for(project, user_id="u1", email=email, name="Signed Name")
    body = (
        await widget.identify(
            project, user_id="forged", email=unique_email(), name="Typed", identity_token=token
        )
    ).json()
    assert body["contact"]["user_id"] == "u1"
    assert body["contact"]["email"] == email
    assert body["contact"]["name"] == "Signed Name"
    assert body["contact"]["verified"] is True


async def test_an_identity_token_signing_the_email_may_claim_a_lead(widget, project):
    email = unique_email()
    lead = (await widget.identify(project, email=email)).json()["contact"]
    token = token_for(project, user_id="u1", email=email)
    body = (await widget.identify(project, identity_token=token)).json()
    assert body["contact"]["id"] == lead["id"]
    assert body["contact"]["user_id"] == "u1"


async def test_an_expired_or_foreign_identity_token_is_401(widget, project, new_project):
    expired = token_for(project, ttl=timedelta(seconds=-10), user_id="u1")
    assert (await widget.identify(project, identity_token=expired)).status_code == 401
    other = await new_project()
    foreign = token_for(project, secret=other.secret, user_id="u1")
    response = await widget.identify(project, identity_token=foreign)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_identity_token"


async def test_old_secret_verifies_during_the_rotation_grace_period(widget, project, database):
    old_hash = project.hash("u1")

    async def rotate(grace):
        return await database.transaction(
            lambda s: rotate_secret(session=s, app_id=project.app_id, grace=grace)
        )

    rotated = await rotate(timedelta(hours=24))
    assert (await widget.identify(project, user_id="u1", user_hash=old_hash)).status_code == 200
    from hal.domain.verification import compute_user_hash

    new_hash = compute_user_hash(rotated.identity_secret, "u1")
    assert (await widget.identify(project, user_id="u1", user_hash=new_hash)).status_code == 200

    rotated_again = await rotate(timedelta(0))
    newest = compute_user_hash(rotated_again.identity_secret, "u1")
    assert (await widget.identify(project, user_id="u1", user_hash=new_hash)).status_code == 401
    assert (await widget.identify(project, user_id="u1", user_hash=newest)).status_code == 200


async def test_an_unsigned_write_to_a_protected_key_is_refused_whole(widget, new_project, inspect):
    project = await new_project(protected_keys=["plan"])
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id="u1", metadata={"a": 1})
    response = await widget.identify(
        project, visitor_id=visitor, user_id="u1", name="New", metadata={"plan": "enterprise"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "protected_attribute",
        "message": response.json()["error"]["message"],
        "field": "metadata.plan",
    }
    props = await widget.set_properties(project, visitor, {"plan": "enterprise", "b": 2})
    assert props.status_code == 403
    [contact] = await inspect.contacts(project.app_id)
    assert contact.name is None and contact.metadata_ == {"a": 1}


async def test_a_signed_claim_may_write_a_protected_key(widget, new_project):
    project = await new_project(protected_keys=["plan"])
    token = token_for(project, user_id="u1", metadata={"plan": "enterprise"})
    body = (await widget.identify(project, identity_token=token)).json()
    assert body["contact"]["metadata"] == {"plan": "enterprise"}
