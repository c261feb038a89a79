"""What round 2's review found by attacking the service, as the attacker's steps (README
"Security"): unauthenticated bodies held to the common limit before they are read, and ids and
emails with invisible characters refused. Each test failed before its rule existed."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from hal.services.projects import revoke_api_token
from tests.factories import make_project, make_token, unique, unique_email
from tests.imports import finished
from tests.servers import Server

COMMON_LIMIT = 64 * 1024
CHUNK = 64 * 1024


async def post_body(http, path, body, *, token=None, declared=None, content_type="text/csv"):
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if declared is not None:
        headers["Content-Length"] = str(declared)
    return await http.post(path, content=body, headers=headers)


# 7. A large body is read only for a caller the route would let in.


class CountedBody:
    """A request body sent in chunks, counting how many chunks the server asked for."""

    def __init__(self, total: int, chunk: bytes = b"x" * CHUNK) -> None:
        self.chunks = -(-total // len(chunk))
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield self.chunk


def csv_rows(count: int) -> bytes:
    return ("user_id,name\n" + "".join(f"u{i},{'n' * 60}\n" for i in range(count))).encode()


@pytest.fixture
async def outsiders(database, project, new_project):
    """Tokens that must not open a project's large-body routes: none, a made-up one, another
    project's, and the project's own after it was revoked."""
    other = await new_project()
    revoked = await make_token(database, project)
    await database.transaction(
        lambda s: revoke_api_token(session=s, app_id=project.app_id, token=revoked)
    )
    return {
        "no token": None,
        "a made-up token": "hal_not_a_token",
        "another project's token": await make_token(database, other),
        "a revoked token": revoked,
    }


@pytest.mark.parametrize("route", ["imports?kind=contacts", "batch"])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_unauthorized_large_body_is_refused_before_it_is_read(
    widget, project, outsiders, route, declared
):
    total = 20 * 1024 * 1024
    for who, token in outsiders.items():
        body = CountedBody(total)
        answer = await post_body(
            widget.http,
            f"/api/projects/{project.app_id}/{route}",
            body,
            token=token,
            declared=total if declared else None,
            content_type="application/json" if route == "batch" else "text/csv",
        )
        assert answer.status_code == 413, (who, answer.text)
        error = answer.json()["error"]
        assert (error["code"], error["field"]) == ("body_too_large", "body")
        assert str(COMMON_LIMIT) in error["message"]
        # Declared: nothing read. Chunked: no more than the common limit and one chunk.
        assert body.sent <= (0 if declared else COMMON_LIMIT // CHUNK + 1), (who, body.sent)


async def test_an_unauthorized_small_body_still_gets_the_routes_own_answer(
    widget, project, outsiders
):
    for who, token in outsiders.items():
        answer = await post_body(
            widget.http, f"/api/projects/{project.app_id}/imports?kind=contacts", b"", token=token
        )
        expected = 403 if who == "another project's token" else 401
        assert answer.status_code == expected, (who, answer.text)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_the_projects_token_still_imports_a_large_file(team, inspect, declared):
    text = csv_rows(1500)
    assert len(text) > COMMON_LIMIT
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    answer = await post_body(
        team.http,
        f"/api/projects/{team.project.app_id}/imports?kind=contacts",
        body(),
        token=team.token,
        declared=len(text) if declared else None,
    )
    answer = await finished(team.http, answer, team.token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 1500
    assert len(await inspect.contacts(team.project.app_id)) == 1500


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def unauthenticated_upload(port: int, app_id: str, size: int) -> int | None:
    """POST `size` bytes to the imports route with no token, over a raw socket; the status the
    server answered with, or None when it closed the connection before an answer was read."""
    head = (
        f"POST /api/projects/{app_id}/imports?kind=contacts HTTP/1.1\r\nHost: hal\r\n"
        f"Content-Type: text/csv\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    chunk = b"u,n\n" * (CHUNK // 4)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(head)
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was sent: what this test wants
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return None
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


@pytest.mark.server
async def test_parallel_unauthenticated_uploads_do_not_grow_the_servers_memory(
    database_url, database, artifacts_dir
):
    project = await make_project(database)
    server = Server(database_url, log=artifacts_dir / "server-large-bodies.log").start()
    try:
        assert server.process is not None
        pid = server.process.pid
        async with httpx.AsyncClient(base_url=server.url) as http:  # warm the route up
            small = await post_body(http, f"/api/projects/{project.app_id}/imports", b"u\n")
            assert small.status_code == 401
        before = vm_kib(pid, "VmRSS")
        with ThreadPoolExecutor(16) as pool:  # blocks this loop: the server is another process
            statuses = list(
                pool.map(
                    lambda _: unauthenticated_upload(server.port, project.app_id, 20 * 2**20),
                    range(16),
                )
            )
        after, peak = vm_kib(pid, "VmRSS"), vm_kib(pid, "VmHWM")
    finally:
        server.stop()
    print(f"server RSS before {before} KiB, after {after} KiB, peak {peak} KiB")
    assert after - before < 40 * 1024, (before, after)
    assert set(statuses) <= {413, None}, statuses


# 9. Ids and emails with invisible characters make look-alike twins.

INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u180e", "\u034f", "\ufe0f", "\U000e0100"]


def assert_invisible_refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invisible_character", field)


async def guarded_company(widget, project) -> str:
    """A company linked to a verified contact: unverified visitors may not touch it."""
    company = unique("acme")
    customer = unique("u")
    linked = await widget.identify(
        project, visitor_id=customer, user_id=customer, signed=True,
        company={"id": company, "name": "Acme", "metadata": {"arr": 987654321}},
    )  # fmt: skip
    assert linked.status_code == 200, linked.text
    return company


@pytest.mark.parametrize("invisible", INVISIBLE)
async def test_a_guarded_company_gets_no_look_alike_twin(widget, project, inspect, invisible):
    company = await guarded_company(widget, project)
    attacker = unique("v")
    for twin in (company + invisible, invisible + company, company[:2] + invisible + company[2:]):
        answer = await widget.identify(
            project, visitor_id=attacker, user_id=unique("u_eve"),
            company={"id": twin, "name": "Acme", "stage": "Churned"},
        )  # fmt: skip
        assert_invisible_refused(answer, "company.id")
    assert [c.external_id for c in await inspect.companies(project.app_id)] == [company]


@pytest.mark.parametrize("invisible", INVISIBLE)
async def test_identify_refuses_invisible_characters_naming_the_field(
    widget, project, inspect, invisible
):
    user, email = unique("u"), unique_email("alice")
    first = await widget.identify(project, user_id=user, email=email)
    assert first.status_code == 200
    local, domain = email.split("@")
    for fields, field in (
        ({"user_id": user + invisible}, "user_id"),
        ({"email": f"{local}{invisible}@{domain}"}, "email"),
        ({"user_id": unique("u"), "visitor_id": unique("v") + invisible}, "visitor_id"),
        ({"user_id": user, "company": {"id": "acme" + invisible}}, "company.id"),
        ({"user_id": user, "company_ids": ["acme" + invisible]}, "company_ids[0]"),
    ):
        assert_invisible_refused(await widget.identify(project, **fields), field)
    contacts = await inspect.contacts(project.app_id)
    assert [(c.user_id, c.email) for c in contacts] == [(user, email)]
    assert await inspect.companies(project.app_id) == []


async def test_other_widget_ids_refuse_invisible_characters(widget, project, inspect):
    visitor, user = unique("v"), unique("u")
    await widget.identify(project, visitor_id=visitor, user_id=user, company={"id": "acme"})
    for route, body, field in (
        ("track", {"event": "paid", "event_id": "e1\u200b"}, "event_id"),
        ("track", {"event": "paid", "company_id": "acme\u2060"}, "company_id"),
        ("set-stage", {"stage": "Lead", "company_id": "acme\ufeff"}, "company_id"),
        ("set-deal", {"deal": {"id": "d1\u034f", "amount": 1}}, "deal.id"),
    ):
        answer = await widget.call(route, project, visitor, **body)
        assert_invisible_refused(answer, field)
    assert await inspect.events(project.app_id, "paid") == []
    assert await inspect.deals(project.app_id) == []


async def test_batch_items_with_invisible_characters_fail_naming_the_field(team, inspect):
    user = unique("u")
    answer = await team.post(
        "/batch",
        {
            "items": [
                {"type": "identify", "user_id": user},
                {"type": "identify", "user_id": user + "\u200b"},
                {"type": "identify", "email": "ann\u034f@example.com"},
                {"type": "identify", "user_id": user, "company": {"id": "acme\u180e"}},
                {"type": "track", "user_id": user, "event": "x", "event_id": "e\ufe0f"},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    assert [(r["status"], r.get("error", {}).get("code"), r.get("error", {}).get("field"))
            for r in answer.json()["results"]] == [
        ("ok", None, None),
        ("error", "invisible_character", "items[1].user_id"),
        ("error", "invisible_character", "items[2].email"),
        ("error", "invisible_character", "items[3].company.id"),
        ("error", "invisible_character", "items[4].event_id"),
    ]  # fmt: skip
    assert [c.user_id for c in await inspect.contacts(team.project.app_id)] == [user]
    assert await inspect.companies(team.project.app_id) == []


async def test_import_rows_with_invisible_characters_fail_naming_the_column(team, inspect):
    contacts = (
        "user_id,email,company_id\n"
        "u1\u2060,,\n"
        ",ann\U000e0100@example.com,\n"
        "u3,,acme\u200b\n"
        "u4,,acme\n"
    )
    answer = await post_body(
        team.http,
        f"/api/projects/{team.project.app_id}/imports?kind=contacts",
        contacts.encode(),
        token=team.token,
    )
    answer = await finished(team.http, answer, team.token)
    assert answer.status_code == 200, answer.text
    failures = [(f["line"], f["code"], f["field"]) for f in answer.json()["failures"]]
    assert failures == [
        (2, "invisible_character", "user_id"),
        (3, "invisible_character", "email"),
        (4, "invisible_character", "company_id"),
    ]
    companies = "id,name\nacme\u034f,Acme twin\n"
    answer = await post_body(
        team.http,
        f"/api/projects/{team.project.app_id}/imports?kind=companies",
        companies.encode(),
        token=team.token,
    )
    answer = await finished(team.http, answer, team.token)
    assert answer.status_code == 200, answer.text
    [failure] = answer.json()["failures"]
    assert (failure["code"], failure["field"]) == ("invisible_character", "id")
    assert [c.user_id for c in await inspect.contacts(team.project.app_id)] == ["u4"]
    assert [c.external_id for c in await inspect.companies(team.project.app_id)] == ["acme"]
