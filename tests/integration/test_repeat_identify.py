"""README "Identify", the repeat identify, attacked: it answers exactly what the full path
answers (the same refusals included), and a session token helps no one but its own visitor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from hal.db.models import Contact, Visitor
from hal.domain.sessions import issue_session_token
from hal.services.projects import get_project
from tests.factories import unique


def _body(user_id: str, **more: Any) -> dict[str, Any]:
    return {"visitor_id": f"v-{user_id}", "user_id": user_id, "email": f"{user_id}@example.com",
            "metadata": {"plan": "pro"}, "company": {"id": f"co-{user_id}"}, **more}  # fmt: skip


async def _age(database, visitor_id: str) -> None:
    """Make the visitor and its contact last seen two minutes ago: the next identify takes
    the full path."""

    async def work(tx):
        ago = tx.now - timedelta(minutes=2)
        await tx.execute(update(Visitor).where(Visitor.visitor_key == visitor_id)
                         .values(last_seen_at=ago))  # fmt: skip
        await tx.execute(update(Contact).where(Contact.id.in_(
            Visitor.__table__.select().with_only_columns(Visitor.contact_id)
            .where(Visitor.visitor_key == visitor_id).scalar_subquery()
        )).values(last_seen_at=ago))  # fmt: skip

    await database.run(work)


def _answer(response) -> tuple[int, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("session_token", None)
    return response.status_code, body


async def test_a_repeat_answers_what_the_full_path_answers(widget, project, database):
    owner = unique("owner")  # a verified user whose company is guarded from then on
    await widget.identify(project, **_body(owner), signed=True)
    user = unique("u")
    first = await widget.identify(project, **_body(user), signed=True)
    token = first.json()["session_token"]
    variants: dict[str, dict[str, Any]] = {
        "the same, signed": {"signed": True},
        "the same, unsigned (the session token vouches)": {},
        "a guarded company of someone else, unsigned": {"company_ids": [f"co-{owner}"]},
        "a bad hash": {"user_hash": "0" * 64},
    }
    for what, more in variants.items():
        await widget.identify(project, token=token, **_body(user), signed=True)  # seen now
        repeat = await widget.identify(project, token=token, **_body(user, **more))
        await _age(database, f"v-{user}")
        full = await widget.identify(project, token=token, **_body(user, **more))
        assert _answer(repeat) == _answer(full), what


async def test_a_session_token_does_not_open_another_visitor(widget, project):
    user = unique("u")
    first = await widget.identify(project, **_body(user), signed=True)
    token = first.json()["session_token"]
    thief = {**_body(user), "visitor_id": unique("thief")}
    without = await widget.identify(project, **thief)
    stolen = await widget.identify(project, token=token, **thief)
    assert _answer(stolen) == _answer(without)
    assert stolen.status_code == 403, stolen.text  # a verified contact needs a proof


async def test_a_token_of_a_rotated_session_secret_takes_the_full_path(widget, project, database):
    from hal.services.projects import rotate_secret

    user = unique("u")
    first = await widget.identify(project, **_body(user), signed=True)
    token = first.json()["session_token"]
    await database.transaction(
        lambda s: rotate_secret(
            session=s, app_id=project.app_id, grace=timedelta(hours=1), revoke_sessions=True
        )
    )
    unsigned = await widget.identify(project, token=token, **_body(user))
    assert unsigned.status_code == 401, unsigned.text  # the old session no longer vouches


async def test_a_repeat_answers_a_still_fresh_token_again_and_renews_an_old_one(
    widget, project, database
):
    """README "Identify": the token the call sent, while at least half its lifetime is left."""
    user = unique("u")
    first = await widget.identify(project, **_body(user), signed=True)
    fresh = first.json()["session_token"]
    again = await widget.identify(project, token=fresh, **_body(user))
    assert again.status_code == 200, again.text
    assert again.json()["session_token"] == fresh

    stored = await database.transaction(lambda s: get_project(session=s, app_id=project.app_id))
    contact_id = first.json()["contact"]["id"]
    old = issue_session_token(
        secret=stored.session_secret, app_id=project.app_id, visitor_id=f"v-{user}",
        contact_id=contact_id, now=datetime.now(UTC) - timedelta(days=4), ttl=timedelta(days=7),
    )  # fmt: skip
    renewed = await widget.identify(project, token=old, **_body(user))
    assert renewed.status_code == 200, renewed.text
    token = renewed.json()["session_token"]
    assert token != old
    assert (await widget.identify(project, token=token, **_body(user))).status_code == 200


async def test_the_full_path_moves_last_seen_at_with_a_write_or_once_a_minute(
    widget, project, database, inspect
):
    user = unique("u")
    await widget.identify(project, **_body(user))

    async def seen() -> datetime:
        [contact] = [c for c in await inspect.contacts(project.app_id) if c.user_id == user]
        stamp: datetime = contact.last_seen_at
        return stamp

    first = await seen()
    # Another company: the full path, and nothing of the contact itself changes.
    switched = await widget.identify(project, **_body(user, company={"id": unique("co")}))
    assert switched.status_code == 200, switched.text
    assert await seen() == first
    await widget.identify(project, **_body(user, name="Renamed"))  # the contact is written
    renamed = await seen()
    assert renamed > first
    await _age(database, f"v-{user}")
    aged = await seen()
    await widget.identify(project, **_body(user, company={"id": unique("co")}))
    assert await seen() > aged


async def test_a_new_contacts_answer_is_what_reading_its_companies_gives(widget, project, database):
    """A contact created by the call answers with the companies it just linked, without
    reading them back: the same identify again (the full path, which reads them) answers the
    same contact and companies, guarded or not, signed or not."""
    owner = unique("owner")
    await widget.identify(project, **_body(owner), signed=True)  # co-{owner}: guarded now
    variants: dict[str, dict[str, Any]] = {
        "signed, a new company with stage and metadata": {
            "signed": True,
            "company": {
                "id": unique("co"),
                "name": "Acme",
                "stage": "Qualified",
                "metadata": {"arr": 5},
            },
        },
        "signed, someone else's guarded company": {
            "signed": True,
            "company": {"id": f"co-{owner}"},
        },
        "unsigned, a new company": {"company": {"id": unique("co"), "name": "Beta"}},
        "unsigned, only company_ids": {"company": None, "company_ids": [unique("co")]},
    }
    for what, more in variants.items():
        user = unique("u")
        first = await widget.identify(project, **_body(user, **more))
        assert first.status_code == 200, (what, first.text)
        await _age(database, f"v-{user}")
        again = await widget.identify(project, **_body(user, **more))
        assert again.status_code == 200, (what, again.text)
        shown = ("contact", "active_company", "company_ids", "visitor_id", "warnings")
        assert {k: first.json()[k] for k in shown} == {k: again.json()[k] for k in shown}, what
