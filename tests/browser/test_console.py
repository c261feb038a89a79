"""README "Admin console", in real Chromium against a real server: an admin changes a setting,
rotates the identity secret and checks hashes, creates a token and revokes it, adds a webhook
endpoint and retries a delivery to a real receiver, adds an agent, exports and erases a person;
an agent gets 403 on every console page; each page is screenshotted and checked with axe-core."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from hal.domain.verification import compute_user_hash
from tests.browser.conftest import cached_npm_file
from tests.browser.test_inbox import identify_and_write, log_in
from tests.receiver import running_receiver

pytestmark = pytest.mark.browser

AXE = "axe-core@4.14.1"
PAGES = {
    "settings": "/admin/settings",
    "verification": "/admin/verification",
    "installation": "/admin/installation",
    "refusals": "/admin/refusals",
    "agents": "/admin/agents",
    "tokens": "/admin/tokens",
    "webhooks": "/admin/webhooks",
    "attributes": "/admin/attributes",
    "views": "/admin/views",
    "privacy": "/admin/privacy",
    "audit": "/admin/audit",
}
AGENT = {"email": "riley@acme.com", "password": "riley's long password"}


@pytest.fixture
def admin(page, empty_site):
    """The site's first agent, an admin, in the console by the inbox's top bar link."""
    log_in(page, empty_site)
    page.get_by_role("link", name="Admin console").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
    return page


def section(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Admin console").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def shot(page: Page, artifacts_dir, name: str) -> None:
    """The whole page: the console scrolls inside its columns, so the window grows to fit."""
    size = page.viewport_size
    assert size is not None
    tallest = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('main, nav')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], tallest + 80)})
    page.screenshot(path=artifacts_dir / f"console-{name}.png")
    page.set_viewport_size(size)


def test_an_admin_changes_a_setting_and_sees_a_refusal_next_to_the_field(admin, artifacts_dir):
    page = admin
    expect(page.get_by_role("link", name="Settings")).to_have_attribute("aria-current", "page")
    page.get_by_label("Project name").fill("Acme support desk")
    page.get_by_label("Allowed origins").fill("https://app.acme.com")
    page.get_by_label("Stage mode").select_option("forward_only")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Project name")).to_have_value("Acme support desk")
    expect(page.get_by_label("Stage mode")).to_have_value("forward_only")
    page.get_by_label("Allowed origins").fill("https://app.acme.com\nnot a url")
    page.get_by_role("button", name="Save settings").click()
    origins = page.get_by_label("Allowed origins")
    expect(origins).to_have_attribute("aria-invalid", "true")
    expect(origins).to_have_accessible_description(re.compile("must look like https:"))
    shot(page, artifacts_dir, "settings-error")
    page.get_by_label("Allowed origins").fill("")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    shot(page, artifacts_dir, "settings")


def check_hash(page: Page, user_id: str, user_hash: str) -> None:
    page.get_by_label("User ID").fill(user_id)
    page.get_by_label("user_hash", exact=True).fill(user_hash)
    page.get_by_role("button", name="Check the hash").click()


def test_an_admin_rotates_the_secret_once_and_checks_a_right_and_a_wrong_hash(
    admin, empty_site, artifacts_dir
):
    page = admin
    section(page, "Identity verification")
    page.get_by_label("Grace period (hours)").fill("2")
    page.get_by_role("button", name="Rotate the secret").click()
    shown = page.get_by_role("status").filter(has_text="New identity secret")
    expect(shown).to_be_visible()
    new_secret = shown.get_by_role("code").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", new_secret) and new_secret != empty_site.secret
    shot(page, artifacts_dir, "verification-rotated")
    check_hash(page, "u-42", compute_user_hash(new_secret, "u-42"))
    expect(page.get_by_role("status")).to_contain_text("Valid.")
    expect(page.get_by_role("status")).to_contain_text("the current secret")
    check_hash(page, "u-42", compute_user_hash(empty_site.secret, "u-42"))
    expect(page.get_by_role("status")).to_contain_text("the previous secret")
    check_hash(page, "u-42", compute_user_hash(new_secret, "someone else"))
    expect(page.get_by_role("status")).to_contain_text("Invalid.")
    assert new_secret not in page.content() and empty_site.secret not in page.content()
    shot(page, artifacts_dir, "verification")
    page.reload()
    assert new_secret not in page.content()


def test_an_admin_creates_a_token_uses_it_and_revokes_it(admin, empty_site, artifacts_dir):
    page = admin
    section(page, "API tokens")
    page.get_by_label("Label").fill("CRM sync")
    page.get_by_label("Kind").select_option("team")
    page.get_by_role("button", name="Create token").click()
    shown = page.get_by_role("status").filter(has_text="shown this once")
    token = shown.get_by_role("code").first.inner_text().strip()
    assert token.startswith("hal_")
    shot(page, artifacts_dir, "tokens")
    contacts = f"{empty_site.url}/api/projects/{empty_site.app_id}/contacts"
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(contacts, headers=bearer).status_code == 200
    page.goto(page.url)  # a GET: the token's last use shows
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="CRM sync"))
    expect(row.get_by_role("cell").nth(3)).not_to_contain_text("never")  # last used
    page.get_by_role("button", name="Revoke CRM sync").click()
    expect(page.get_by_role("status")).to_contain_text("The token is revoked")
    expect(row).to_contain_text("Revoked")
    assert httpx.get(contacts, headers=bearer).status_code == 401


def wait_for_text(page: Page, where, text: str, timeout: float = 15) -> None:
    """Reload the server-rendered page until `text` shows (deliveries run in the server)."""
    deadline = time.monotonic() + timeout
    while text not in where.inner_text():
        assert time.monotonic() < deadline, f"{text!r} did not show"
        time.sleep(0.3)
        page.reload()


def test_an_admin_adds_a_webhook_endpoint_and_retries_a_delivery(admin, artifacts_dir):
    page = admin
    with running_receiver() as receiver:
        receiver.answer = lambda received, seen: 503 if seen == 0 else 200
        section(page, "Webhooks")
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_label("contact.created").check()
        page.get_by_label("conversation.created").check()
        page.get_by_role("button", name="Add endpoint").click()
        shown = page.get_by_role("status").filter(has_text="shown this once")
        secret = shown.get_by_role("code").inner_text().strip()
        assert secret.startswith("whsec_")
        expect(page.get_by_role("table", name="Endpoints")).to_contain_text("contact.created")
        shot(page, artifacts_dir, "webhooks")
        page.get_by_role("link", name="Open its delivery log").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Webhook endpoint"))
        assert secret not in page.content()

        page.get_by_role("button", name="Send a test").click()
        expect(page.get_by_role("status")).to_contain_text("webhook.test message is queued")
        log = page.get_by_role("region", name="Delivery log")
        wait_for_text(page, log, "HTTP 503")
        page.get_by_role("button", name=re.compile(r"^Retry webhook\.test")).click()
        expect(page.get_by_role("status")).to_contain_text("queued again")
        wait_for_text(page, log, "HTTP 200")
        row = log.get_by_role("row").filter(has_text="webhook.test")
        expect(row).to_contain_text("delivered")
        expect(row.get_by_role("listitem")).to_have_count(2)  # the 503, then the 200
        assert receiver.requests[-1].verify(secret)["type"] == "webhook.test"
        shot(page, artifacts_dir, "webhook")

        page.get_by_label("Replay changes since (UTC)").fill("2026-01-01T00:00")
        page.get_by_role("button", name="Replay").click()
        expect(page.get_by_role("status")).to_contain_text("queued again for this endpoint")
        page.get_by_role("button", name="Disable").click()
        expect(page.get_by_role("status")).to_contain_text("The endpoint is disabled")
        page.get_by_role("button", name="Send a test").click()
        expect(page.get_by_role("alert")).to_contain_text("enable it first")
        page.get_by_role("button", name="Enable").click()
        expect(page.get_by_role("status")).to_contain_text("The endpoint is enabled")


def test_an_admin_defines_an_attribute_and_sees_the_views(admin, empty_site, artifacts_dir):
    page = admin
    httpx.post(
        f"{empty_site.url}/api/projects/{empty_site.app_id}/views",
        json={"name": "Globex people", "model": "contacts",
              "query": {"field": "email", "operator": "$", "value": "@globex.com"}},
        headers={"Authorization": f"Bearer {empty_site.token}"},
    ).raise_for_status()  # fmt: skip
    section(page, "Attributes")
    page.get_by_label("Of", exact=True).select_option("contact")
    page.get_by_label("Key", exact=True).fill("tier")
    page.get_by_label("Type", exact=True).select_option("list")
    page.get_by_label("Label", exact=True).fill("Tier")
    page.get_by_label("Options (list only)").fill("Gold\nSilver")
    page.get_by_role("button", name="Define attribute").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    shot(page, artifacts_dir, "attributes")
    page.get_by_role("link", name="Edit contact attribute tier").click()
    page.get_by_label("Options").fill("Gold\nSilver\nBronze")
    page.get_by_role("button", name="Save attribute").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_text("Archived", exact=True)).to_be_visible()
    shot(page, artifacts_dir, "attribute")

    section(page, "Views")
    table = page.get_by_role("table", name=re.compile("Saved views"))
    expect(table.get_by_role("row").filter(has_text="Globex people")).to_contain_text("contacts")
    shot(page, artifacts_dir, "views")
    table.get_by_role("link", name="Globex people").click()
    expect(page).to_have_url(re.compile(r"/inbox/contacts\?view=\d+$"))


def test_an_admin_adds_an_agent_who_gets_403_on_every_console_page(
    admin, browser, empty_site, artifacts_dir
):
    page = admin
    section(page, "Agents")
    add = page.get_by_role("region", name="Add an agent")
    add.get_by_label("Email").fill(AGENT["email"])
    add.get_by_label("Name").fill("Riley")
    add.get_by_label("Password").fill(AGENT["password"])
    add.get_by_label("Role").select_option("agent")
    add.get_by_role("button", name="Add agent").click()
    row = page.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=re.compile("Riley"))
    )
    expect(row.get_by_label(f"Role of {AGENT['email']}")).to_have_value("agent")
    shot(page, artifacts_dir, "agents")

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    agent = context.new_page()
    agent.goto(f"{empty_site.url}/inbox/login")
    agent.get_by_label("Email").fill(AGENT["email"])
    agent.get_by_label("Password").fill(AGENT["password"])
    agent.get_by_role("button", name="Log in").click()
    expect(agent).to_have_url(re.compile(r"/inbox$"))
    expect(agent.get_by_role("link", name="Admin console")).to_have_count(0)
    for path in PAGES.values():
        answer = agent.goto(f"{empty_site.url}{path}")
        assert answer is not None and answer.status == 403, path
        expect(agent.get_by_text("This page is for the project's admins.")).to_be_visible()
    context.close()


def test_an_admin_exports_and_erases_a_person_after_confirming(admin, empty_site, artifacts_dir):
    page = admin
    identify_and_write(empty_site, name="Pat Doe", email="pat@globex.com", company="Globex",
                       stage="Trial", body="Please forget me")  # fmt: skip
    section(page, "Privacy")
    page.get_by_label("Keep tracked events for (days)").fill("90")
    page.get_by_role("button", name="Save retention").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")

    export = page.get_by_role("region", name="Export a person")
    export.get_by_label("Find the person by").select_option("email")
    export.get_by_label("Email or user_id").fill("pat@globex.com")
    with page.expect_download() as download:
        export.get_by_role("button", name="Download the export").click()
    document = json.loads(download.value.path().read_text())
    assert document["contact"]["email"] == "pat@globex.com"
    assert document["conversations"][0]["messages"][0]["body"] == "Please forget me"

    erase = page.get_by_role("region", name="Erase a person")
    erase.get_by_label("Find the person by").select_option("email")
    erase.get_by_label("Email or user_id").fill("pat@globex.com")
    erase.get_by_label("Type it again to confirm").fill("pat@globex.co")
    erase.get_by_label("Also refuse").check()
    erase.get_by_role("button", name="Erase this person").click()
    confirm = page.get_by_role("region", name="Erase a person").get_by_label(
        "Type it again to confirm"
    )
    expect(confirm).to_have_attribute("aria-invalid", "true")
    expect(confirm).to_have_accessible_description(re.compile("type the same email again"))
    shot(page, artifacts_dir, "privacy-confirm-error")
    confirm.fill("pat@globex.com")
    page.get_by_role("button", name="Erase this person").click()
    expect(page.get_by_role("status")).to_contain_text("is erased")
    suppressions = page.get_by_role("table", name=re.compile("Suppressions"))
    expect(suppressions.get_by_role("row")).to_have_count(2)
    assert "pat@globex.com" not in page.content()
    shot(page, artifacts_dir, "privacy")
    contacts = httpx.get(
        f"{empty_site.url}/api/projects/{empty_site.app_id}/contacts",
        params={"q": "pat@globex.com"},
        headers={"Authorization": f"Bearer {empty_site.token}"},
    ).json()["items"]
    assert contacts == []

    section(page, "Audit log")
    page.get_by_label("Action").fill("contact.erased")
    page.get_by_role("button", name="Filter").click()
    entries = page.get_by_role("table", name=re.compile("Audit entries"))
    expect(entries.get_by_role("row")).to_have_count(2)
    expect(entries).to_contain_text("Sam")
    shot(page, artifacts_dir, "audit")


def test_every_console_page_has_no_serious_accessibility_violation(
    browser, empty_site, artifacts_dir
):
    """Last in the module: the pages hold what the walk above made."""
    axe = cached_npm_file(AXE, "axe.min.js")
    # axe is injected as a script of the page, which the console's CSP would refuse.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    log_in(page, empty_site)
    found = {}
    paths = {**PAGES, "webhook": "/admin/webhooks/1", "attribute": "/admin/attributes/contact/tier"}
    for name, path in paths.items():
        answer = page.goto(f"{empty_site.url}{path}")
        assert answer is not None and answer.status == 200, path
        if name in ("installation", "refusals"):
            shot(page, artifacts_dir, name)
        page.add_script_tag(path=axe)
        results = page.evaluate("async () => (await axe.run(document)).violations")
        found[path] = [
            (v["id"], v["impact"], [node["target"] for node in v["nodes"]][:3])
            for v in results
            if v["impact"] in {"serious", "critical"}
        ]
    context.close()
    assert found == {path: [] for path in found}
