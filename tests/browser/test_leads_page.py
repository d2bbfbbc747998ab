"""The lead list in Chromium: logging in per role, filters, one-click and in-place changes, bulk changes,
who may see and change what, CSRF, hostile text, keyboard use, accessibility and the phone layout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browserkit import PASSWORD, Browse, Site, axe_violations, log_in
from playwright.sync_api import expect

from leadledger.services import leads as lead_service

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def row(page: Any, lead_id: str) -> Any:
    return page.locator(f"#lead-{lead_id}")


def test_each_role_logs_in_through_the_form_and_lands_on_its_home(browse: Browse, site: Site) -> None:
    for user, home in (("ana", "/work"), ("maria", "/work"), ("oscar", "/leads")):
        page = browse.page(None)
        log_in(page, site, user)
        assert page.url.endswith(home) or page.url.endswith(home + "/"), (user, page.url)
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        page.context.close()


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(browse: Browse, site: Site) -> None:
    page = browse.page(None)
    page.goto(f"{site.url}/login")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    assert "/login" in page.url


def test_a_page_without_a_session_sends_the_browser_to_login_and_back(browse: Browse, site: Site) -> None:
    page = browse.page(None)
    page.goto(f"{site.url}/leads?status=working")
    assert "/login?next=" in page.url
    page.get_by_label("Username").fill("oscar")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/leads\?status=working$"))


def test_logout_ends_the_session_on_the_server(browse: Browse, site: Site) -> None:
    page = browse.page(None)
    log_in(page, site, "ben")
    cookies = page.context.cookies()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login"))
    other = browse.browser.new_context(base_url=site.url)
    browse.contexts.append(other)
    other.add_cookies(cookies)  # the old cookie, replayed: the session is over, not just forgotten by the browser
    replay = other.new_page()
    replay.goto("/leads")
    assert "/login" in replay.url


def test_filtering_by_several_statuses_shows_only_those_leads(browse: Browse, site: Site) -> None:
    working = site.lead(status="working", name="Filter Working")
    attempting = site.lead(status="attempting_contact", name="Filter Attempting")
    new = site.lead(owner=None, name="Filter New")
    page = browse.page("oscar")
    page.goto("/leads?status=working&status=attempting_contact&sort=newest")
    expect(row(page, working)).to_be_visible()
    expect(row(page, attempting)).to_be_visible()
    expect(row(page, new)).to_have_count(0)
    statuses = page.locator("table.leads tbody .status-cell .badge").all_inner_texts()
    assert statuses and set(statuses) <= {"Working", "Attempting Contact"}
    # the form drives the same filter: untick one status and the list follows, URL included
    page.get_by_role("checkbox", name="Attempting Contact").uncheck()
    expect(row(page, attempting)).to_have_count(0)
    expect(row(page, working)).to_be_visible()
    assert "attempting_contact" not in page.url


def test_one_click_moves_a_lead_when_the_status_asks_for_nothing(browse: Browse, site: Site) -> None:
    lead = site.lead(status="connected", name="One Click Jo")
    page = browse.page("ana")
    page.goto("/leads?status=connected")
    row(page, lead).get_by_role("button", name="Change status").click()
    menu = row(page, lead).locator(".menu")
    expect(menu.get_by_role("button", name="Working", exact=True)).to_be_visible()
    # only what the model allows from Connected for a rep: Qualified needs BANT, Working nothing
    offered = menu.get_by_role("button").all_inner_texts()
    assert any("Working" in o for o in offered) and any("Qualified" in o for o in offered)
    assert not any("Recycled" in o for o in offered)  # managers and automation only
    menu.get_by_role("button", name="Working", exact=True).click()
    expect(row(page, lead).locator(".badge").first).to_have_text("Working")
    expect(page.locator("#flash")).to_contain_text("Moved to Working")
    assert site.status_of(lead) == "working"


def test_a_change_refused_for_a_missing_reason_is_completed_in_the_form_in_place(browse: Browse, site: Site) -> None:
    lead = site.lead(status="attempting_contact", name="Needs A Reason")
    page = browse.page("ana")
    page.goto("/leads?status=attempting_contact")
    row(page, lead).get_by_role("button", name="Change status").click()
    row(page, lead).get_by_role("button", name=re.compile("Disqualified")).click()
    form = row(page, lead).locator("form.change-form")
    expect(form.get_by_label("Reason (required)")).to_be_visible()
    form.get_by_role("button", name="Save").click()  # no reason chosen: the engine refuses
    error = form.locator(".field.invalid .error")
    expect(error).to_contain_text("a reason is required to enter Disqualified")
    expect(form.get_by_label("Reason (required)")).to_have_attribute("aria-invalid", "true")
    assert site.status_of(lead) == "attempting_contact"  # nothing written
    form.get_by_label("Reason (required)").select_option("competitor")
    form.get_by_role("button", name="Save").click()
    expect(row(page, lead).locator(".status-cell > .badge")).to_have_text("Disqualified / Lost")
    assert site.status_of(lead) == "disqualified"


def test_bulk_change_reports_each_lead_applied_or_refused(browse: Browse, site: Site) -> None:
    ready = [site.lead(status="connected", name=f"Bulk Ready {i}") for i in range(2)]
    not_ready = site.lead(owner="ana", name="Bulk Not Ready")  # Assigned: Working is not allowed from there
    page = browse.page("maria")
    page.goto("/leads?sort=newest")
    for lead_id in [*ready, not_ready]:
        row(page, lead_id).get_by_role("checkbox").check()
    expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
    bulk = page.locator("form#bulk")
    bulk.get_by_label("New status").select_option("working")
    bulk.get_by_role("button", name="Apply to selected").click()
    result = page.locator(".bulk-result")
    expect(result).to_contain_text("2 applied")
    expect(result).to_contain_text("1 refused")
    refused = result.locator("tr.r-refused")
    expect(refused).to_contain_text("Bulk Not Ready")
    expect(refused).to_contain_text("is not an allowed transition")
    for lead_id in ready:
        expect(row(page, lead_id).locator(".status-cell > .badge")).to_have_text("Working")
    assert [site.status_of(i) for i in ready] == ["working", "working"]
    assert site.status_of(not_ready) == "assigned"


def test_a_rep_neither_sees_nor_changes_another_reps_lead(browse: Browse, site: Site) -> None:
    mine = site.lead(owner="ana", name="Ana Owns This")
    theirs = site.lead(owner="ben", name="Ben Owns This")
    unowned = site.lead(owner=None, name="Nobody Owns This")
    page = browse.page("ana")
    page.goto("/leads?sort=newest")
    expect(row(page, mine)).to_be_visible()
    expect(row(page, unowned)).to_be_visible()
    expect(row(page, theirs)).to_have_count(0)
    assert page.goto(f"/leads/{theirs}/change").status == 404
    # a forged POST with a valid session and CSRF token: refused, nothing written
    page.goto("/leads")
    token = page.evaluate("() => JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    forged = page.request.post(f"/leads/{theirs}/status", form={"status": "disqualified", "reason": "budget"},
                               headers={"X-CSRF-Token": token, "HX-Request": "true"})  # fmt: skip
    assert forged.status == 404
    assert site.status_of(theirs) == "assigned"
    # ben's manager sees it; the other team's manager does not
    assert browse.page("maria").goto(f"/leads/{theirs}/change").status == 200
    assert browse.page("jonas").goto(f"/leads/{theirs}/change").status == 404


def test_a_post_without_the_csrf_token_is_refused(browse: Browse, site: Site) -> None:
    lead = site.lead(status="connected", name="Csrf Target")
    page = browse.page("ana")
    page.goto("/leads")
    answer = page.request.post(f"/leads/{lead}/status", form={"status": "working"})
    assert answer.status == 403
    wrong = page.request.post(f"/leads/{lead}/status", form={"status": "working"}, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status == 403
    assert site.status_of(lead) == "connected"


def test_hostile_text_is_shown_as_text_and_never_runs(browse: Browse, site: Site) -> None:
    script = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    rtl = "\u202eمرحبا بالعالم"
    long = "W" * 3000
    ids = [site.lead(name=script, company=rtl), site.lead(name=long, company="<b>bold</b> & co")]
    page = browse.page("oscar")
    page.goto("/leads?sort=newest")
    expect(row(page, ids[0]).locator(".lead-name")).to_have_text(script)
    expect(row(page, ids[0]).locator(".sub")).to_contain_text("مرحبا")
    expect(row(page, ids[1]).locator(".sub")).to_contain_text("<b>bold</b> & co")
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("table.leads img").count() == 0
    row(page, ids[0]).get_by_role("button", name="Change status").click()
    expect(row(page, ids[0]).locator(".menu")).to_be_visible()
    assert page.evaluate("() => window.__pwned") is None
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1280 + 1, "a very long name must wrap, not widen the page"
    assert page.js_errors == []


def test_a_status_change_can_be_made_with_the_keyboard_alone(browse: Browse, site: Site) -> None:
    lead = site.lead(status="attempting_contact", name="Keyboard Kim")
    page = browse.page("ana")
    page.goto("/leads?status=attempting_contact&sort=newest")
    button = row(page, lead).get_by_role("button", name="Change status")
    button.focus()
    page.keyboard.press("Enter")
    menu = row(page, lead).locator(".menu")
    expect(menu).to_be_visible()
    expect(menu.locator("button").first).to_be_focused()
    # Tab through the offered statuses to Nurture, open its form, fill it in, save: no mouse
    for _ in range(10):
        if "Nurture" in (page.evaluate("() => document.activeElement.textContent") or ""):
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    form = row(page, lead).locator("form.change-form")
    expect(form).to_be_visible()
    expect(form.get_by_label("Reason (required)")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the first reason
    page.keyboard.press("Tab")
    expect(form.get_by_label("Re-evaluate on (required)")).to_be_focused()
    page.keyboard.type("03012027")  # the date input's segments, in the browser's en-US order: month, day, year
    for _ in range(15):  # past the date's segments, the fields and the note, to Save
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent") == "Save":
            break
    expect(form.get_by_role("button", name="Save")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#pop-{lead} .error")).to_have_count(0)
    expect(row(page, lead).locator(".status-cell > .badge")).to_have_text("Nurture")
    assert site.status_of(lead) == "nurture"


def test_the_lead_list_has_no_serious_accessibility_violation(browse: Browse, site: Site, tmp_path: Path) -> None:
    site.lead(status="working", name="Axe Alice")
    lead = site.lead(status="connected", name="Axe Open Menu")
    page = browse.page("maria")
    page.goto("/leads?sort=newest")
    assert axe_violations(page) == []
    row(page, lead).get_by_role("button", name="Change status").click()
    expect(page.locator(".menu")).to_be_visible()
    assert axe_violations(page) == []


def test_the_list_and_the_change_form_work_at_phone_width(browse: Browse, site: Site, tmp_path: Path) -> None:
    lead = site.lead(status="attempting_contact", name="Phone Pat")
    page = browse.page("ana", phone=True)
    page.goto("/leads?status=attempting_contact&sort=newest")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)
        .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1, wide
    row(page, lead).get_by_role("button", name="Change status").click()
    row(page, lead).get_by_role("button", name=re.compile("Disqualified")).click()
    form = row(page, lead).locator("form.change-form")
    form.get_by_label("Reason (required)").select_option("not_interested")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1
    form.get_by_role("button", name="Save").click()
    expect(row(page, lead).locator(".status-cell > .badge")).to_have_text("Disqualified / Lost")
    assert lead_service.get_lead(site.app, lead)["reason"] == "not_interested"


def test_the_login_page_and_an_error_page_have_no_serious_accessibility_violation(browse: Browse, site: Site) -> None:
    page = browse.page(None)
    page.goto("/login")
    assert axe_violations(page) == []
    signed_in = browse.page("ana")
    assert signed_in.goto("/leads/NO-SUCH-LEAD").status == 404
    expect(signed_in.get_by_role("alert")).to_contain_text("no lead")
    assert axe_violations(signed_in) == []
