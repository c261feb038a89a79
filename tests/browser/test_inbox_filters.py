"""The inbox finds people, in real Chromium: the filter builder on the contacts, companies and
conversation pages (by mouse and by keyboard alone), the filter in the URL, saved views in the
sidebar, refusals of a bad filter, and an accessibility check of the three pages."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import cached_npm_file
from tests.browser.test_inbox import identify_and_write, log_in

pytestmark = pytest.mark.browser

AXE = "axe-core@4.14.1"
ENTERPRISE_TRIALS = {
    "operator": "AND",
    "value": [
        {"field": "metadata.plan", "operator": "=", "value": "enterprise"},
        {"field": "company.stage", "operator": "IN", "value": ["Trial"]},
    ],
}


@pytest.fixture(scope="module")
def people(empty_site):
    """Five customers who wrote in, of a site of this module's own (its counts are exact)."""
    enterprise, starter = {"plan": "enterprise"}, {"plan": "starter"}
    customers = [
        ("Alice Martin", "alice@globex.com", "Globex", "Trial", {**enterprise, "seats": 40}),
        ("Bob Chen", "bob@initech.com", "Initech", "Customer", {**enterprise, "seats": 12}),
        ("Carol Diaz", "carol@umbrella.com", "Umbrella", "Trial", {**starter, "seats": 3}),
        ("Dana Ruiz", "dana@hooli.com", "Hooli", "Trial", {**enterprise, "seats": 25}),
        ("Erin Stone", "erin@vandelay.com", "Vandelay", "Lead", {"beta": True}),
    ]
    conversations = {}
    for name, email, company, stage, metadata in customers:
        _, _, conversation_id = identify_and_write(
            empty_site, name=name, email=email, company=company, stage=stage,
            body=f"Hello from {name.split()[0]}", metadata=metadata,
        )  # fmt: skip
        conversations[name] = conversation_id
    return conversations


@pytest.fixture
def agent_page(page, empty_site, people):
    log_in(page, empty_site)
    return page


def filter_url(site, path, query):
    return f"{site.url}{path}?filter={quote(json.dumps(query))}"


def listed_names(page):
    return page.get_by_role("table").get_by_role("row").filter(has=page.get_by_role("cell"))


def test_the_mouse_builds_enterprise_trials_and_sees_the_count_and_the_list(
    agent_page, empty_site, artifacts_dir
):
    page = agent_page
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Contacts").click()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("5 contacts")

    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Field").select_option(label="Plan")
    expect(page.get_by_label("Operator")).to_have_value("=")
    page.get_by_label("Value").fill("enterprise")
    expect(page.get_by_role("status")).to_have_text(
        "3 contacts match. Apply the filter to list them."
    )

    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Field").nth(1).select_option(label="Company stage")
    page.get_by_label("Operator").nth(1).select_option(label="is any of")
    page.get_by_role("checkbox", name="Trial").check()
    expect(page.get_by_label("Conditions combine with")).to_have_value("AND")
    expect(page.get_by_role("status")).to_contain_text("2 contacts match")
    page.screenshot(path=artifacts_dir / "inbox-filters-built.png")

    page.get_by_role("button", name="Apply filter").click()
    expect(page).to_have_url(re.compile(r"/inbox/contacts\?filter="))
    expect(page.get_by_role("status")).to_have_text("2 contacts")
    rows = listed_names(page)
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Alice Martin")).to_contain_text("Globex")
    expect(rows.filter(has_text="Dana Ruiz")).to_contain_text("dana@hooli.com")
    page.screenshot(path=artifacts_dir / "inbox-filters-contacts.png", full_page=True)

    # The URL holds the filter: a reload (or a bookmark) lists the same, and the builder shows it.
    page.reload()
    expect(listed_names(page)).to_have_count(2)
    expect(page.get_by_label("Field").first).to_have_value("metadata.plan")
    expect(page.get_by_label("Value").first).to_have_value("enterprise")
    expect(page.get_by_role("checkbox", name="Trial")).to_be_checked()

    page.get_by_role("link", name="Dana Ruiz").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dana Ruiz")


def tab_to(page, name, *, backwards=False, limit=60):
    """Press Tab (or Shift+Tab) until the focused control is called `name`."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        page.keyboard.press(key)
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.getAttribute('aria-label') || (e.labels && e.labels[0]"
            " ? e.labels[0].textContent : e.textContent).trim(); }"
        )
        if focused.startswith(name):
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_the_keyboard_alone_builds_a_filter_and_applies_it(agent_page, empty_site, artifacts_dir):
    page = agent_page
    page.goto(f"{empty_site.url}/inbox/contacts")
    tab_to(page, "Add condition")
    page.keyboard.press("Enter")
    # The new condition's field has the focus; typing picks an option as in any select.
    expect(page.get_by_label("Field")).to_be_focused()
    page.keyboard.type("Plan")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Operator")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.type("starter")
    tab_to(page, "Add condition")
    page.keyboard.press("Space")
    expect(page.get_by_label("Field").nth(1)).to_be_focused()
    page.keyboard.type("Seats")
    page.keyboard.press("Tab")
    for _ in range(4):  # equals → does not equal, greater than, less than, at least
        page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Operator").nth(1)).to_have_value(">=")
    page.keyboard.press("Tab")
    page.keyboard.type("40")
    tab_to(page, "Conditions combine with", backwards=True)
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Conditions combine with")).to_have_value("OR")
    expect(page.get_by_role("status")).to_contain_text("2 contacts match")
    page.screenshot(path=artifacts_dir / "inbox-filters-keyboard.png")
    tab_to(page, "Apply filter")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"filter="))
    rows = listed_names(page)
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Carol Diaz")).to_have_count(1)
    expect(rows.filter(has_text="Alice Martin")).to_have_count(1)
    applied = json.loads(httpx.URL(page.url).params["filter"])
    assert applied == {
        "operator": "OR",
        "value": [
            {"field": "metadata.plan", "operator": "=", "value": "starter"},
            {"field": "metadata.seats", "operator": ">=", "value": 40},
        ],
    }

    # Removing a condition by keyboard moves the focus on, and the count follows.
    tab_to(page, "Remove condition 2")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Field")).to_have_count(1)
    expect(page.get_by_role("status")).to_contain_text("1 contact match")


def test_a_filter_saved_as_a_view_is_listed_with_its_count_and_opens_by_its_url(
    agent_page, empty_site, artifacts_dir
):
    page = agent_page
    page.goto(filter_url(empty_site, "/inbox/contacts", ENTERPRISE_TRIALS))
    expect(listed_names(page)).to_have_count(2)
    page.get_by_label("View name").fill("Enterprise trials")
    page.get_by_role("button", name="Save as view").click()
    expect(page).to_have_url(re.compile(r"/inbox/contacts\?view=\d+$"))
    view_id = int(page.url.rsplit("=", 1)[1])

    views = page.get_by_role("navigation", name="Views")
    saved = views.get_by_role("link", name=re.compile("Enterprise trials"))
    expect(saved).to_contain_text("2 contacts")
    expect(saved).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Enterprise trials")
    page.screenshot(path=artifacts_dir / "inbox-filters-view.png", full_page=True)

    # The view opens at its URL, its query loaded into the builder to be refined.
    page.goto(f"{empty_site.url}/inbox/contacts?view={view_id}")
    expect(listed_names(page)).to_have_count(2)
    expect(page.get_by_label("Field")).to_have_count(2)
    expect(page.get_by_label("Field").nth(1)).to_have_value("company.stage")
    page.get_by_role("checkbox", name="Trial").uncheck()
    page.get_by_role("checkbox", name="Customer").check()
    expect(page.get_by_role("status")).to_contain_text("1 contact match")
    page.get_by_role("button", name="Apply filter").click()
    expect(listed_names(page)).to_have_count(1)
    expect(listed_names(page)).to_contain_text("Bob Chen")

    # The same name again is refused with the reason; the list stays.
    page.get_by_label("View name").fill("Enterprise trials")
    page.get_by_role("button", name="Save as view").click()
    expect(page.get_by_role("alert")).to_contain_text("The view was not saved")
    expect(listed_names(page)).to_have_count(1)

    # The team API sees the inbox's view.
    with httpx.Client(base_url=empty_site.url) as http:
        listed = http.get(
            f"/api/projects/{empty_site.app_id}/views",
            headers={"Authorization": f"Bearer {empty_site.token}"},
        ).json()["items"]
    assert [(v["name"], v["model"], v["count"]) for v in listed if v["id"] == view_id] == [
        ("Enterprise trials", "contacts", 2)
    ]

    # Deleting it from the inbox (after a confirmation) takes it out of the sidebar.
    page.goto(f"{empty_site.url}/inbox/contacts?view={view_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete view").click()
    expect(page).to_have_url(re.compile(r"/inbox/contacts$"))
    expect(page.get_by_role("navigation", name="Views")).not_to_contain_text("Enterprise trials")


def test_the_conversation_list_is_filtered_and_its_view_opens_at_inbox_view(
    agent_page, empty_site, people, artifacts_dir
):
    page = agent_page
    page.get_by_text("Filter", exact=True).click()
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Field").select_option(label="Company stage")
    page.get_by_label("Value").select_option("Trial")
    expect(page.get_by_role("status")).to_contain_text("3 conversations match")
    page.get_by_role("button", name="Apply filter").click()
    expect(page).to_have_url(re.compile(r"/inbox\?filter=.*status=open"))
    listed = page.locator("#conversation-list").get_by_role("link")
    expect(listed).to_have_count(3)
    expect(page.get_by_role("navigation", name="Status")).to_contain_text("3 conversations")

    page.get_by_label("View name").fill("Trials writing in")
    page.get_by_role("button", name="Save as view").click()
    expect(page).to_have_url(re.compile(r"/inbox\?view=\d+$"))
    views = page.get_by_role("navigation", name="Views")
    saved = views.get_by_role("link", name=re.compile("Trials"))
    expect(saved).to_contain_text("3 conversations")
    page.screenshot(path=artifacts_dir / "inbox-filters-conversation-list.png")

    # Opening a conversation keeps the list as filtered.
    listed.filter(has_text="Carol Diaz").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Carol Diaz")
    expect(page).to_have_url(re.compile(r"view=\d+"))
    expect(page.locator("#conversation-list").get_by_role("link")).to_have_count(3)
    page.screenshot(path=artifacts_dir / "inbox-filters-conversations.png")


def test_the_companies_page_lists_and_filters_companies(agent_page, empty_site, artifacts_dir):
    page = agent_page
    page.goto(f"{empty_site.url}/inbox/companies")
    expect(listed_names(page)).to_have_count(5)
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Field").select_option(label="Stage")
    page.get_by_label("Operator").select_option(label="is not")
    page.get_by_label("Value").select_option("Trial")
    page.get_by_role("button", name="Apply filter").click()
    rows = listed_names(page)
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Initech")).to_contain_text("Customer")
    expect(rows.filter(has_text="Initech").get_by_role("cell").nth(2)).to_have_text("1")
    page.screenshot(path=artifacts_dir / "inbox-filters-companies.png", full_page=True)


def test_a_bad_filter_in_the_url_shows_why_not_a_server_error(
    agent_page, empty_site, artifacts_dir
):
    page = agent_page
    answer = page.goto(f"{empty_site.url}/inbox/contacts?filter=plan%3Denterprise")
    assert answer is not None and answer.status == 422
    expect(page.get_by_role("alert")).to_contain_text("This filter could not be read")
    expect(page.get_by_role("alert")).to_contain_text("filter is not JSON")

    unknown = {"field": "metadata.nope", "operator": "=", "value": "x"}
    answer = page.goto(filter_url(empty_site, "/inbox", unknown))
    assert answer is not None and answer.status == 422
    expect(page.get_by_role("alert")).to_contain_text("no field 'metadata.nope'")
    page.screenshot(path=artifacts_dir / "inbox-filters-bad-filter.png")
    page.get_by_role("link", name="Show all conversations").click()
    expect(page.locator("#conversation-list").get_by_role("link")).to_have_count(5)

    answer = page.goto(f"{empty_site.url}/inbox/companies?view=999999")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("alert")).to_contain_text("This view does not exist")


def test_the_count_needs_a_login_and_refuses_a_bad_filter(agent_page, empty_site):
    url = f"{empty_site.url}/inbox/count.json"
    unsigned = httpx.get(url, params={"kind": "contacts"}, follow_redirects=False)
    assert unsigned.status_code == 401
    signed = agent_page.request.get(url, params={"kind": "contacts"})
    assert (signed.status, signed.json()) == (200, {"total": 5, "total_exact": True})
    bad = agent_page.request.get(url, params={"kind": "contacts", "filter": '{"field": 1}'})
    assert bad.status == 422
    assert bad.json()["error"]["code"] == "invalid_query"


def test_saving_or_deleting_a_view_needs_the_forms_csrf_token(agent_page, empty_site):
    forged = agent_page.request.post(
        f"{empty_site.url}/inbox/views",
        form={"kind": "contacts", "name": "Forged", "filter": json.dumps(ENTERPRISE_TRIALS)},
        max_redirects=0,
    )
    assert forged.status == 403
    with httpx.Client(base_url=empty_site.url) as http:
        listed = http.get(
            f"/api/projects/{empty_site.app_id}/views",
            headers={"Authorization": f"Bearer {empty_site.token}"},
        ).json()["items"]
    assert "Forged" not in [view["name"] for view in listed]
    assert agent_page.request.post(f"{empty_site.url}/inbox/views/1/delete").status == 403


def test_the_three_pages_have_no_serious_accessibility_violations(browser, empty_site, people):
    axe = cached_npm_file(AXE, "axe.min.js")
    # axe is injected as a script of the page, which the inbox's CSP would refuse.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    log_in(page, empty_site)
    recent = {"field": "created_at", "operator": ">", "value": "-7d"}
    found = {}
    for path in ("/inbox", "/inbox/contacts", "/inbox/companies"):
        page.goto(filter_url(empty_site, path, recent))
        expect(page.get_by_label("Field")).to_have_value("created_at")
        expect(page.get_by_label("Operator")).to_have_value(">")
        expect(page.get_by_label("Value")).to_have_value("-7d")  # "7 days ago"
        page.add_script_tag(path=axe)
        results = page.evaluate("async () => (await axe.run(document)).violations")
        found[path] = [
            (v["id"], v["impact"], [node["target"] for node in v["nodes"]][:3])
            for v in results
            if v["impact"] in {"serious", "critical"}
        ]
    context.close()
    assert found == {path: [] for path in found}


def test_a_long_list_pages_with_next_and_keeps_its_filter(agent_page, empty_site, artifacts_dir):
    """Last in the module: it adds 52 contacts the other tests' counts do not expect."""
    items = [
        {"type": "identify", "user_id": f"bulk-{n:02}", "name": f"Bulk person {n:02}",
         "metadata": {"cohort": "bulk"}}
        for n in range(52)
    ]  # fmt: skip
    with httpx.Client(base_url=empty_site.url) as http:
        written = http.post(
            f"/api/projects/{empty_site.app_id}/batch",
            json={"items": items},
            headers={"Authorization": f"Bearer {empty_site.token}"},
        ).json()
    assert written["failed"] == 0, written
    page = agent_page
    bulk = {"field": "metadata.cohort", "operator": "=", "value": "bulk"}
    page.goto(filter_url(empty_site, "/inbox/contacts", bulk))
    expect(page.get_by_role("status")).to_have_text("52 contacts")
    expect(listed_names(page)).to_have_count(50)
    first_page = set(listed_names(page).get_by_role("link").all_inner_texts())

    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"filter=.*cursor="))
    expect(listed_names(page)).to_have_count(2)
    second_page = set(listed_names(page).get_by_role("link").all_inner_texts())
    assert len(first_page | second_page) == 52
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    expect(page.get_by_label("Value")).to_have_value("bulk")
    page.get_by_role("link", name="First page").click()
    expect(listed_names(page)).to_have_count(50)
