"""The inbox an agent uses, in real Chromium: login, context panel, reply, live updates."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from hal.domain.verification import compute_user_hash
from tests.factories import unique
from tests.proxy import CuttableProxy

pytestmark = pytest.mark.browser


def identify_and_write(site, *, name, email, company, stage, body, metadata=None):
    """A signed-in customer app: identify (signed) and send a widget message."""
    visitor, user_id = unique("v"), unique("user")
    with httpx.Client(base_url=site.url) as http:
        identified = http.post(
            "/api/widget/identify",
            json={
                "app_id": site.app_id,
                "visitor_id": visitor,
                "user_id": user_id,
                "email": email,
                "name": name,
                "metadata": metadata or {"plan": "enterprise"},
                "company": {"id": company.lower(), "name": company, "stage": stage},
                "user_hash": compute_user_hash(site.secret, user_id),
            },
        )
        identified.raise_for_status()
        token = identified.json()["session_token"]
        sent = http.post(
            "/api/widget/messages",
            json={"app_id": site.app_id, "visitor_id": visitor, "body": body},
            headers={"Authorization": f"Bearer {token}"},
        )
        sent.raise_for_status()
    return visitor, token, sent.json()["conversation"]["id"]


def log_in(page, site):
    page.goto(f"{site.url}/inbox")
    expect(page).to_have_url(re.compile(r"/inbox/login$"))
    page.get_by_label("Email").fill(site.agent_email)
    page.get_by_label("Password").fill(site.agent_password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/inbox$"))


def test_a_wrong_password_is_refused(page, site, artifacts_dir):
    page.goto(f"{site.url}/inbox/login")
    page.get_by_label("Email").fill(site.agent_email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.screenshot(path=artifacts_dir / "inbox-login-error.png")


def test_an_agent_sees_the_customer_and_replies(page, site, artifacts_dir):
    visitor, token, conversation_id = identify_and_write(
        site,
        name="Alice Martin",
        email="alice@globex.com",
        company="Globex",
        stage="Qualified",
        body="Hi! Our invoices show the wrong VAT number.",
    )
    log_in(page, site)
    row = page.locator(f'.conversation[data-id="{conversation_id}"]')
    expect(row).to_contain_text("Alice Martin")
    expect(row).to_contain_text("alice@globex.com")
    expect(row).to_contain_text("Globex · Qualified")
    row.click()

    expect(page.locator(".thread-head h1")).to_have_text("Alice Martin")
    panel = page.locator("aside.context")
    expect(panel).to_contain_text("alice@globex.com")
    expect(panel).to_contain_text("Globex")
    expect(panel).to_contain_text("Qualified")
    expect(panel.locator(".badge.ok").first).to_have_text("Verified")
    expect(page.locator(".message.visitor .badge.ok")).to_have_text("Verified")
    page.screenshot(path=artifacts_dir / "inbox-thread.png")

    page.get_by_label("Reply").fill("Thanks Alice, fixing it now.")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".message.agent .body").last).to_have_text("Thanks Alice, fixing it now.")

    with httpx.Client(base_url=site.url) as http:
        widget_view = http.get(
            "/api/widget/messages",
            params={"app_id": site.app_id, "visitor_id": visitor},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    replies = [m for m in widget_view["conversation"]["messages"] if m["author"] == "agent"]
    assert [(m["body"], m["author_name"]) for m in replies] == [
        ("Thanks Alice, fixing it now.", "Sam")
    ]


def test_new_messages_appear_without_a_reload(page, site, artifacts_dir):
    visitor, token, conversation_id = identify_and_write(
        site,
        name="Bob Chen",
        email="bob@initech.com",
        company="Initech",
        stage="Trial",
        body="First question",
    )
    log_in(page, site)
    page.goto(f"{site.url}/inbox/conversations/{conversation_id}")
    expect(page.locator(".message.visitor .body")).to_have_text(["First question"])
    with httpx.Client(base_url=site.url) as http:
        http.post(
            "/api/widget/messages",
            json={"app_id": site.app_id, "visitor_id": visitor, "body": "Follow-up, still there?"},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
    expect(page.locator(".message.visitor .body").last).to_have_text(
        "Follow-up, still there?", timeout=15_000
    )
    page.screenshot(path=artifacts_dir / "inbox-live-update.png")


def test_long_content_and_many_attributes_stay_readable(page, site, artifacts_dir):
    long_body = ("This is a very long message about our integration. " * 100)[:5000]
    metadata = {f"attribute_{i:03}": f"value {i}" for i in range(100)}
    _, _, conversation_id = identify_and_write(
        site,
        name="Carol Long-Name",
        email="carol@umbrella.com",
        company="Umbrella",
        stage="Customer",
        body=long_body,
        metadata=metadata,
    )
    log_in(page, site)
    page.goto(f"{site.url}/inbox/conversations/{conversation_id}")
    expect(page.locator(".message.visitor .body")).to_have_text(long_body)
    expect(page.locator("aside.context .kv dt", has_text="attribute_099")).to_have_count(1)
    # Nothing overflows the window horizontally.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=artifacts_dir / "inbox-long-content.png", full_page=True)


def test_contact_and_company_pages(page, site, artifacts_dir):
    _, _, conversation_id = identify_and_write(
        site,
        name="Dana Ruiz",
        email="dana@hooli.com",
        company="Hooli",
        stage="Lead",
        body="Pricing?",
    )
    log_in(page, site)
    page.goto(f"{site.url}/inbox/conversations/{conversation_id}")
    page.locator("aside.context h2 a").click()
    expect(page.locator("h1")).to_contain_text("Dana Ruiz")
    page.screenshot(path=artifacts_dir / "inbox-contact.png")
    page.get_by_role("link", name="Hooli").first.click()
    expect(page.locator("h1")).to_contain_text("Hooli")
    page.get_by_label("Stage").fill("Customer")
    page.get_by_role("button", name="Set stage").click()
    expect(page.locator(".history li").first).to_contain_text("Customer")
    expect(page.locator(".history li").first).to_contain_text("agent")
    page.screenshot(path=artifacts_dir / "inbox-company.png")
    with httpx.Client(base_url=site.url) as http:
        company = http.get(
            f"/api/projects/{site.app_id}/companies/hooli",
            headers={"Authorization": f"Bearer {site.token}"},
        ).json()
    assert (company["company"]["stage"], company["stage_source"]) == ("Customer", "agent")


def send_widget_message(site, visitor, token, body):
    with httpx.Client(base_url=site.url) as http:
        http.post(
            "/api/widget/messages",
            json={"app_id": site.app_id, "visitor_id": visitor, "body": body},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()


def test_the_inbox_updates_from_the_stream_and_does_not_poll(page, site, artifacts_dir):
    visitor, token, conversation_id = identify_and_write(
        site, name="Erin Stone", email="erin@vandelay.com", company="Vandelay", stage="Trial",
        body="Hello?",
    )  # fmt: skip
    log_in(page, site)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(f"{site.url}/inbox/conversations/{conversation_id}")
    expect(page.locator(".message.visitor .body")).to_have_text(["Hello?"])
    page.wait_for_timeout(1_000)  # the stream is open (and caught up once)
    assert any(url.endswith("/inbox/stream") for url in fetched)
    fetched.clear()
    page.wait_for_timeout(4_000)  # longer than the fallback poll period
    assert not [url for url in fetched if ".json" in url], fetched
    send_widget_message(site, visitor, token, "Are you there?")
    expect(page.locator(".message.visitor .body").last).to_have_text("Are you there?")
    expect(page.locator(f'.conversation[data-id="{conversation_id}"]')).to_contain_text(
        "Are you there?"
    )


def test_a_message_sent_while_the_stream_was_cut_appears_after_the_reconnect(
    page, site, artifacts_dir
):
    visitor, token, conversation_id = identify_and_write(
        site, name="Finn Park", email="finn@kramerica.com", company="Kramerica",
        stage="Lead", body="First",
    )  # fmt: skip
    port = int(site.url.rsplit(":", 1)[1])
    with CuttableProxy(port) as proxy:
        page.goto(f"{proxy.url}/inbox/login")
        page.get_by_label("Email").fill(site.agent_email)
        page.get_by_label("Password").fill(site.agent_password)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{proxy.url}/inbox/conversations/{conversation_id}")
        expect(page.locator(".message.visitor .body")).to_have_text(["First"])
        page.wait_for_timeout(1_000)  # the stream is open
        proxy.cut()  # the network drops the stream; the browser reconnects by itself
        send_widget_message(site, visitor, token, "Sent while the stream was down")
        expect(page.locator(".message.visitor .body").last).to_have_text(
            "Sent while the stream was down", timeout=15_000
        )
    page.screenshot(path=artifacts_dir / "inbox-after-reconnect.png")
