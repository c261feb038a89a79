"""The inbox's merge action in real Chromium: an agent finds a duplicate from the contact page,
sees the preview, confirms, and the duplicate's conversation and email are on the contact."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.test_inbox import log_in
from tests.factories import unique

pytestmark = pytest.mark.browser


def test_an_agent_previews_and_confirms_a_merge(page, site, artifacts_dir):
    lead_email = f"{unique('dup')}@initech.com"
    user_id, lead_visitor = unique("user"), unique("v")
    with httpx.Client(base_url=site.url) as http:
        lead = http.post(
            "/api/widget/identify",
            json={
                "app_id": site.app_id,
                "visitor_id": lead_visitor,
                "email": lead_email,
                "name": "Peter Lead",
                "metadata": {"source": "trade show"},
            },
        )
        lead.raise_for_status()
        said = http.post(
            "/api/widget/messages",
            json={"app_id": site.app_id, "visitor_id": lead_visitor, "body": "Lead question"},
        )
        said.raise_for_status()
        # The same person, signed in under a user_id the project verifies.
        from hal.domain.verification import compute_user_hash

        user = http.post(
            "/api/widget/identify",
            json={
                "app_id": site.app_id,
                "visitor_id": unique("v"),
                "user_id": user_id,
                "name": "Peter Gibbons",
                "user_hash": compute_user_hash(site.secret, user_id),
            },
        )
        user.raise_for_status()
    lead_id, into_id = lead.json()["contact"]["id"], user.json()["contact"]["id"]

    log_in(page, site)
    page.goto(f"{site.url}/inbox/contacts/{into_id}")
    page.get_by_role("link", name=re.compile("Merge a duplicate")).click()
    page.get_by_label("Name, email or user id").fill(lead_email)
    page.get_by_role("button", name="Search").click()
    page.locator(f'.merge-candidates a[data-id="{lead_id}"]').click()

    preview = page.get_by_role("region", name="Merge preview")
    expect(preview).to_contain_text("1 conversation(s)")
    expect(preview).to_contain_text("1 visitor(s)")
    expect(preview.locator(".after-email")).to_have_text(lead_email)
    expect(preview.locator(".after-name")).to_have_text("Peter Gibbons")  # its own name wins
    page.screenshot(path=artifacts_dir / "inbox-merge-preview.png")
    with httpx.Client(base_url=site.url) as http:  # nothing written by the preview
        headers = {"Authorization": f"Bearer {site.token}"}
        still = http.get(f"/api/projects/{site.app_id}/contacts/{lead_id}", headers=headers)
        assert still.status_code == 200

    page.get_by_role("button", name="Confirm merge").click()
    expect(page).to_have_url(re.compile(rf"/inbox/contacts/{into_id}$"))
    expect(page.locator("main")).to_contain_text(lead_email)
    expect(page.locator("main")).to_contain_text("Lead question")
    expect(page.locator("main")).to_contain_text("trade show")
    page.screenshot(path=artifacts_dir / "inbox-merge-done.png")
    with httpx.Client(base_url=site.url) as http:
        headers = {"Authorization": f"Bearer {site.token}"}
        gone = http.get(f"/api/projects/{site.app_id}/contacts/{lead_id}", headers=headers)
        assert gone.status_code == 410
        assert gone.json()["error"]["merged_into"] == into_id


def test_merging_two_signed_in_users_is_refused_with_the_reason(page, site):
    ids = []
    with httpx.Client(base_url=site.url) as http:
        from hal.domain.verification import compute_user_hash

        for _ in range(2):
            user_id = unique("user")
            made = http.post(
                "/api/widget/identify",
                json={
                    "app_id": site.app_id,
                    "visitor_id": unique("v"),
                    "user_id": user_id,
                    "user_hash": compute_user_hash(site.secret, user_id),
                },
            )
            made.raise_for_status()
            ids.append(made.json()["contact"]["id"])
    log_in(page, site)
    page.goto(f"{site.url}/inbox/contacts/{ids[1]}/merge?from={ids[0]}")
    expect(page.get_by_role("alert")).to_contain_text("both contacts have a user_id")
    expect(page.get_by_role("button", name="Confirm merge")).to_have_count(0)
