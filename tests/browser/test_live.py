"""Live updates: a lead changed by someone else, or by automation, updates on an open page within seconds."""

from __future__ import annotations

import time

import pytest
from browserkit import Browse, Site
from playwright.sync_api import expect

from leadledger.services.changes import ActivityIn, ChangeSpec
from leadledger.services.leads import change_lead, log_activity

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_row_changed_by_someone_else_updates_on_an_open_list(browse: Browse, site: Site) -> None:
    lead = site.lead(status="connected", name="Live Lou")
    page = browse.page("ana")
    page.goto("/leads?status=connected")
    badge = page.locator(f"#lead-{lead} .status-cell > .badge")
    expect(badge).to_have_text("Connected / Engaged")
    page.wait_for_timeout(500)  # the page's event stream is open
    started = time.monotonic()
    change_lead(site.app, actor="maria", spec=ChangeSpec(lead, status="working"))  # her manager, elsewhere
    expect(badge).to_have_text("Working", timeout=5_000)
    assert time.monotonic() - started < 5


def test_a_change_made_by_automation_updates_the_open_lead_list(browse: Browse, site: Site) -> None:
    lead = site.lead(name="Live Auto")  # Assigned
    page = browse.page("ana")
    page.goto("/leads?status=new")
    badge = page.locator(f"#lead-{lead} .status-cell > .badge")
    expect(badge).to_have_text("Assigned")
    page.wait_for_timeout(500)
    # an integration logs the first e-mail: the rule first_email_sent moves the lead, no person touched it
    log_activity(site.app, lead_id=lead, actor="oscar", activity=ActivityIn("email_sent"))
    expect(badge).to_have_text("Attempting Contact", timeout=5_000)
