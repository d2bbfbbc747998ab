"""Accounts in Chromium: a manager finds a flagged account through the nav and the "flagged only" filter, opens
it, follows a lead's link, and dismisses the review flag with the page's form."""

from __future__ import annotations

import re

import pytest
from browserkit import Browse, Site, axe_violations
from playwright.sync_api import expect

from leadledger.services import accounts
from leadledger.services.changes import ChangeSpec
from leadledger.services.leads import change_lead

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_manager_reviews_and_dismisses_a_flagged_account(browse: Browse, site: Site) -> None:
    ids = [site.lead(name=f"Umbra {n}", company="Umbrella Review Corp", owner="ana") for n in (1, 2)]
    for lead_id in ids:
        change_lead(site.app, actor="oscar", spec=ChangeSpec(lead_id, status="nurture", reason="bad_timing",
                                                            fields={"re_evaluate_on": "2027-03-01"}))  # fmt: skip
    site.lead(name="Calm Carl", company="Quiet Unflagged Ltd", owner="ana")
    accounts.refresh_flags(site.app)
    page = browse.page("maria")
    page.goto("/work")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
    page.get_by_label("Flagged only").check()
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/accounts\?flagged=1"))
    expect(page.get_by_role("link", name="Quiet Unflagged Ltd")).to_have_count(0)
    page.get_by_role("link", name="Umbrella Review Corp").click()
    expect(page.get_by_role("heading", name="Umbrella Review Corp")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("link", name="Umbra 1").click()
    expect(page).to_have_url(re.compile(f"/leads/{ids[0]}$"))
    page.go_back()
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#flash")).to_contain_text("dismissed by maria")
    expect(page.locator("#flag-h + p")).to_contain_text("Dismissed by maria")
    assert "umbrella review" not in accounts.flagged_accounts(site.app)
    assert page.js_errors == []
