"""A fresh `hal serve --demo`, as a newcomer meets it: the demo page and the inbox's pages log
no console error, throw nothing, and no request of theirs fails or answers an HTTP error."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.factories import unique
from tests.servers import Server

pytestmark = pytest.mark.browser

DEMO_LOGIN = ("agent@example.com", "demo-password")  # what `hal serve --demo` prints
SETTLE_MS = 2_500  # long enough for the widget's first poll and stream attempts (poll=500)


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[str]:
    """`hal serve --demo` on a database of its own, as `make run` starts it."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('fresh-demo') / 'hal.db'}"
    command = [sys.executable, "-m", "hal", "serve", "--demo", "--host", "127.0.0.1",
               "--port", "{port}", "--database-url", database_url]  # fmt: skip
    server = Server(database_url, command=command, log=artifacts_dir / "server-fresh-demo.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Trouble:
    """Everything a page reported that a newcomer would see in the browser's console."""

    found: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("console", self._logged)
        page.on("pageerror", lambda error: self.found.append(f"pageerror: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._answered)

    def _logged(self, message) -> None:
        if message.type == "error":
            self.found.append(f"console: {message.text} ({message.location.get('url')})")

    def _failed(self, request) -> None:
        # Leaving a page ends its open streams; that is not a failure of the page.
        if request.resource_type == "eventsource" and "ERR_ABORTED" in (request.failure or ""):
            return
        self.found.append(f"failed: {request.method} {request.url} {request.failure}")

    def _answered(self, response) -> None:
        if response.status >= 400:
            self.found.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def none_on(self, page, what: str) -> None:
        page.wait_for_timeout(SETTLE_MS)
        assert self.found == [], f"{what}: {self.found}"


def test_the_demo_page_logs_no_error_from_a_fresh_load_to_a_chat(page, fresh_demo):
    trouble = Trouble()
    trouble.watch(page)
    page.goto(f"{fresh_demo}/demo?poll=500")
    page.wait_for_function("() => window.HalWidget && window.HalWidget.version")
    expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    trouble.none_on(page, "a fresh load")

    page.reload()  # the same anonymous visitor, known to the browser, still unknown to HAL
    page.wait_for_function("() => window.HalWidget && window.HalWidget.version")
    trouble.none_on(page, "a reload")

    page.get_by_role("button", name="Alice Martin").click()
    expect(page.locator("#log")).to_contain_text("identified alice@acme.com")
    page.get_by_role("button", name="Chat with support").click()
    page.get_by_label("Message").fill("Hello from a fresh demo")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#hal-widget .msg.visitor").last).to_have_text("Hello from a fresh demo")
    page.get_by_role("button", name="Upgrade to Enterprise").click()
    expect(page.locator("#log")).to_contain_text("upgraded acme")
    trouble.none_on(page, "signed in and chatting")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in as a sample user")).to_be_visible()
    trouble.none_on(page, "after logging out")


def alice_writes(url: str, body: str) -> None:
    """The demo's Alice, signed in by the demo app's backend, writes through the widget."""
    identify = httpx.get(f"{url}/demo/identity/alice").json()["identify"]
    visitor = {"app_id": "demo", "visitor_id": unique("v")}
    answer = httpx.post(f"{url}/api/widget/identify", json={**visitor, **identify})
    assert answer.status_code == 200, answer.text
    token = {"Authorization": f"Bearer {answer.json()['session_token']}"}
    sent = httpx.post(f"{url}/api/widget/messages", json={**visitor, "body": body}, headers=token)
    assert sent.status_code == 200, sent.text


def test_the_inbox_pages_log_no_error(page, fresh_demo):
    alice_writes(fresh_demo, "Hello from the API")
    trouble = Trouble()
    trouble.watch(page)
    page.goto(f"{fresh_demo}/inbox")
    expect(page).to_have_url(re.compile(r"/inbox/login$"))
    trouble.none_on(page, "the login page")

    email, password = DEMO_LOGIN
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))
    trouble.none_on(page, "the conversation list")

    page.get_by_role("link", name=re.compile("Alice")).first.click()
    expect(page.get_by_label("Reply")).to_be_visible()
    trouble.none_on(page, "a conversation")

    page.goto(f"{fresh_demo}/inbox/contacts")
    expect(page.get_by_role("table")).to_contain_text("Alice Martin")
    trouble.none_on(page, "the contacts page")
    page.get_by_role("link", name="Alice Martin").first.click()
    trouble.none_on(page, "a contact")

    page.goto(f"{fresh_demo}/inbox/companies")
    expect(page.get_by_role("table")).to_contain_text("Acme Inc")
    trouble.none_on(page, "the companies page")
    page.get_by_role("link", name="Acme Inc").first.click()
    trouble.none_on(page, "a company")
