"""Session tokens (domain/sessions.py): verified claims kept per process never outlive the
token, never serve another app, visitor or secret."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
from hypothesis import given
from hypothesis import strategies as st

from hal.domain import sessions
from hal.domain.sessions import issue_session_token, read_session_token, session_of

SECRET = "s" * 40
TTL = timedelta(hours=1)


def _token(now: datetime | None = None, **claims: object) -> str:
    values = {"app_id": "app", "visitor_id": "v", "contact_id": 7, **claims}
    return issue_session_token(secret=SECRET, now=now or datetime.now(UTC), ttl=TTL, **values)  # type: ignore[arg-type]


def test_a_verified_token_is_read_again_with_the_same_answer():
    token = _token()
    first = session_of(secret=SECRET, token=token, app_id="app", visitor_id="v")
    again = session_of(secret=SECRET, token=token, app_id="app", visitor_id="v")
    assert first is not None and first == again and first.contact_id == 7


def test_a_kept_token_still_names_its_own_app_visitor_and_secret():
    token = _token()
    assert read_session_token(secret=SECRET, token=token, app_id="app", visitor_id="v") == 7
    assert read_session_token(secret=SECRET, token=token, app_id="other", visitor_id="v") is None
    assert read_session_token(secret=SECRET, token=token, app_id="app", visitor_id="w") is None
    assert read_session_token(secret="t" * 40, token=token, app_id="app", visitor_id="v") is None


def test_a_kept_token_expires(monkeypatch):
    token = _token()
    assert session_of(secret=SECRET, token=token, app_id="app", visitor_id="v") is not None
    later = time.time() + TTL.total_seconds() + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert session_of(secret=SECRET, token=token, app_id="app", visitor_id="v") is None


def test_fresh_means_at_least_half_the_lifetime_left():
    now = datetime.now(UTC)
    young = session_of(secret=SECRET, token=_token(now), app_id="app", visitor_id="v")
    old = session_of(secret=SECRET, token=_token(now - TTL * 0.6), app_id="app", visitor_id="v")
    assert young is not None and young.fresh(now, TTL)
    assert old is not None and not old.fresh(now, TTL)


def test_garbage_stays_refused():
    for _ in range(2):
        assert session_of(secret=SECRET, token="not.a.token", app_id="app", visitor_id="v") is None


def test_at_most_so_many_are_kept(monkeypatch):
    monkeypatch.setattr(sessions, "VERIFIED_KEPT", 3)
    for n in range(10):
        session_of(secret=SECRET, token=f"garbage-{n}", app_id="app", visitor_id="v")
    assert len(sessions._verified) <= 3


def test_a_token_is_fresh_until_its_fresh_until() -> None:
    now = datetime.now(UTC)
    session = session_of(secret=SECRET, token=_token(now), app_id="app", visitor_id="v")
    assert session is not None
    until = session.fresh_until(TTL)
    assert session.fresh(until - timedelta(seconds=1), TTL)
    assert not session.fresh(until + timedelta(seconds=1), TTL)


@given(
    secret=st.text(min_size=32, max_size=80).filter(
        lambda s: not s.lstrip().startswith(("{", "-", "ssh"))
    ),
    app_id=st.text(max_size=40),
    visitor_id=st.text(max_size=60),
    contact_id=st.integers(min_value=1, max_value=2**53),
    seconds=st.integers(min_value=0, max_value=4_000_000_000),
)
def test_a_token_is_what_pyjwt_makes_of_its_claims(secret, app_id, visitor_id, contact_id, seconds):
    now = datetime.fromtimestamp(seconds, UTC)
    token = issue_session_token(secret=secret, app_id=app_id, visitor_id=visitor_id,
                                contact_id=contact_id, now=now, ttl=TTL)  # fmt: skip
    claims = {"aud": sessions.AUDIENCE, "app": app_id, "vid": visitor_id, "sub": str(contact_id),
              "iat": seconds, "exp": seconds + int(TTL.total_seconds())}  # fmt: skip
    assert token == jwt.encode(claims, secret, algorithm="HS256")
    decoded = jwt.decode(token, secret, algorithms=["HS256"], audience=sessions.AUDIENCE,
                         options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert decoded == claims
