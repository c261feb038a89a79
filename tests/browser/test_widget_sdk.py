"""The widget SDK (window.HalWidget) and the demo app, in real Chromium, checked through the
team API."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import demo_site

pytestmark = pytest.mark.browser


def open_demo(page, demo, **query):
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    page.goto(f"{demo.url}/demo?{suffix}")
    page.wait_for_function("() => window.HalWidget && window.HalWidget.version")


def sign_in(page, name):
    page.get_by_role("button", name=name).click()
    expect(page.locator("#log")).to_contain_text("identified")


def contact_named(demo, q):
    [contact] = demo.team("/contacts", q=q)["items"]
    return demo.team(f"/contacts/{contact['id']}")


def test_each_sdk_method_lands_in_the_crm(page, demo, artifacts_dir):
    open_demo(page, demo, poll=500)
    sign_in(page, "Alice Martin")
    detail = contact_named(demo, "alice")
    assert detail["contact"]["verified"] is True
    assert detail["active_company"]["id"] == "acme"

    page.get_by_role("button", name="Upgrade to Enterprise").click()
    expect(page.locator("#log")).to_contain_text("upgraded acme")
    company = demo.team("/companies/acme")
    assert company["company"]["stage"] == "Customer"
    assert [(d["id"], d["status"], d["amount"]) for d in company["deals"]] == [
        ("upgrade-acme", "won", 12000.0)
    ]
    assert "plan-upgraded" in [e["name"] for e in company["events"]]
    assert contact_named(demo, "alice")["contact"]["metadata"]["plan"] == "enterprise"

    # Chat: the visitor writes, an agent answers through the team API, the bubble shows it.
    page.get_by_role("button", name="Chat with support").click()
    page.get_by_label("Message").fill("Does Enterprise include SSO?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#hal-widget .msg.visitor")).to_have_text(["Does Enterprise include SSO?"])
    [conversation] = demo.team("/conversations")["items"]
    assert conversation["contact"]["email"] == "alice@acme.com"
    assert conversation["company"]["id"] == "acme"
    import httpx

    httpx.post(
        f"{demo.url}/api/projects/demo/conversations/{conversation['id']}/messages",
        json={"body": "Yes, SAML and OIDC."},
        headers={"Authorization": f"Bearer {demo.token}"},
    ).raise_for_status()
    expect(page.locator("#hal-widget .msg.agent")).to_have_text(["Yes, SAML and OIDC."])
    page.screenshot(path=artifacts_dir / "widget-chat.png")

    # Closed bubble: the next reply shows as an unread badge.
    page.get_by_role("button", name="Close chat").click()
    httpx.post(
        f"{demo.url}/api/projects/demo/conversations/{conversation['id']}/messages",
        json={"body": "Anything else?"},
        headers={"Authorization": f"Bearer {demo.token}"},
    ).raise_for_status()
    expect(page.locator("#hal-widget .badge")).to_have_text("1")
    page.screenshot(path=artifacts_dir / "widget-unread.png")


def test_switching_company_changes_the_active_company(page, demo):
    open_demo(page, demo)
    sign_in(page, "Carol Diaz")
    page.locator("#company").select_option("umbrella")
    expect(page.locator("#log")).to_contain_text("active company: Umbrella Corp")
    assert contact_named(demo, "carol")["active_company"]["id"] == "umbrella"


def test_calls_before_the_script_loads_are_replayed_in_order(page, demo):
    held = []  # the widget script's request, answered only once the early calls are made
    page.route("**/widget.js", lambda route: held.append(route))
    page.goto(f"{demo.url}/demo", wait_until="domcontentloaded")
    page.evaluate(
        """() => {
            window.early = Promise.all([
                HalWidget.identify({user_id: "early-bird", email: "early@bird.com", name: "Early"}),
                HalWidget.track("first"), HalWidget.track("second"), HalWidget.track("third"),
            ]);
        }"""
    )
    assert page.evaluate("() => window.HalWidget.version") is None  # still the loader's stub
    while not held:
        page.wait_for_timeout(20)
    held[0].continue_()
    results = page.evaluate(
        """async () => {
            const answers = await window.early;
            return {version: HalWidget.version, contact: answers[0].contact.user_id,
                    events: answers.slice(1).map(a => a.event.id)};
        }"""
    )
    assert results["version"] and results["contact"] == "early-bird"
    events = results["events"]
    assert events == sorted(events)  # stored in the order they were called
    names = [e["name"] for e in demo.team("/events", limit=50)["items"] if e["id"] in events]
    assert names == ["third", "second", "first"]  # newest first


def test_a_4xx_is_not_retried_and_rejects_with_its_code(page, demo):
    open_demo(page, demo)
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "set-stage" in r.url else None)
    code = page.evaluate(
        "() => HalWidget.setStage('Customer').then(() => 'resolved', (e) => e.code)"
    )
    assert code == "not_identified"
    assert len(requests) == 1


def test_reset_starts_a_new_anonymous_visitor(page, demo):
    open_demo(page, demo)
    sign_in(page, "Bob Chen")
    before = page.evaluate("() => HalWidget.getVisitorId()")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#signed-out")).to_be_visible()
    after = page.evaluate("() => HalWidget.getVisitorId()")
    assert after != before
    stored = page.evaluate("() => localStorage.getItem('hal:demo:session_token')")
    assert stored is None
    answer = page.evaluate("() => HalWidget.setProperties({theme: 'dark'})")
    assert answer["contact"] is None and answer["properties"] == {"theme": "dark"}


def test_a_track_queued_while_the_server_is_down_lands_once(page, tmp_path, artifacts_dir):
    site = demo_site(tmp_path, artifacts_dir, "restart")
    with site.server():
        open_demo(page, site)
        sign_in(page, "Alice Martin")
    # The server is down now: the call fails, waits and retries.
    page.evaluate("() => { window.pending = HalWidget.track('offline-upgrade', {n: 1}); }")
    time.sleep(1.5)
    with site.server():
        answer = page.evaluate("() => window.pending")
        assert answer["duplicate"] is False
        events = site.team("/events", name="offline-upgrade")["items"]
        assert len(events) == 1


def test_the_host_pages_css_cannot_reach_the_bubble(page, demo):
    open_demo(page, demo)
    page.add_style_tag(
        content="button { background: rgb(255, 0, 0) !important; font-size: 40px !important; }"
        " ol, li { display: none !important; }"
    )
    launcher = page.locator("#hal-widget .launcher")
    expect(launcher).to_be_visible()
    background = launcher.evaluate("b => getComputedStyle(b).backgroundColor")
    assert background == "rgb(59, 91, 219)"
    # And ours does not leak out: the host page's own buttons keep the host's styles.
    host_button = page.get_by_role("button", name="Alice Martin")
    assert host_button.evaluate("b => getComputedStyle(b).fontSize") == "40px"


def test_an_agent_reply_reaches_the_widget_through_its_stream(page, demo, artifacts_dir):
    import httpx

    open_demo(page, demo, poll=3_600_000)  # no polling: only the stream can bring the reply
    sign_in(page, "Alice Martin")
    page.get_by_role("button", name="Chat with support").click()
    page.get_by_label("Message").fill("Is the stream live?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#hal-widget .msg.visitor").last).to_have_text("Is the stream live?")
    conversation = next(
        c for c in demo.team("/conversations")["items"]
        if c["last_message"]["body"] == "Is the stream live?"
    )  # fmt: skip
    page.wait_for_timeout(1_000)  # the stream opens after the first message
    httpx.post(
        f"{demo.url}/api/projects/demo/conversations/{conversation['id']}/messages",
        json={"body": "Yes, live."},
        headers={"Authorization": f"Bearer {demo.token}"},
    ).raise_for_status()
    expect(page.locator("#hal-widget .msg.agent").last).to_have_text("Yes, live.")
    page.screenshot(path=artifacts_dir / "widget-stream.png")


def test_the_stream_is_followed_once_the_visitor_has_a_conversation_and_after_a_reload(page, demo):
    import httpx

    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/api/widget/" in r.url else None)
    open_demo(page, demo, poll=3_600_000)  # no polling: only the stream can bring the reply
    page.wait_for_timeout(1_000)
    assert asked == []  # no conversation yet: nothing to follow, nothing to poll

    page.get_by_role("button", name="Open chat").click()
    page.get_by_label("Message").fill("Anyone there?")
    with page.expect_request(lambda request: "/api/widget/stream" in request.url):
        page.get_by_role("button", name="Send").click()  # now it has a conversation
    expect(page.locator("#hal-widget .msg.visitor").last).to_have_text("Anyone there?")

    with page.expect_request(lambda request: "/api/widget/stream" in request.url):
        page.reload()  # the stream opens as the page loads
    page.wait_for_timeout(500)
    conversation = next(
        c for c in demo.team("/conversations")["items"]
        if c["last_message"]["body"] == "Anyone there?"
    )  # fmt: skip
    httpx.post(
        f"{demo.url}/api/projects/demo/conversations/{conversation['id']}/messages",
        json={"body": "Here."},
        headers={"Authorization": f"Bearer {demo.token}"},
    ).raise_for_status()
    expect(page.locator("#hal-widget .badge")).to_have_text("1")
    page.get_by_role("button", name="Open chat").click()
    expect(page.locator("#hal-widget .msg.agent").last).to_have_text("Here.")
