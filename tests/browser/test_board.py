"""The board in Chromium: cards per status column, moved by drag and drop with the same checks and in-place
form as the list, and moved with the keyboard alone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browserkit import Browse, Site, axe_violations
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def card(page, lead_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f"#card-{lead_id}")


def lane(page, status: str):  # type: ignore[no-untyped-def]
    return page.locator(f".lane[data-status={status}]")


def test_dragging_a_card_moves_the_lead_when_the_status_asks_for_nothing(browse: Browse, site: Site) -> None:
    lead = site.lead(status="connected", name="Drag Dana", owner="bo")
    page = browse.page("bo")
    page.goto("/board")
    expect(lane(page, "connected").locator(f"#card-{lead}")).to_be_visible()
    card(page, lead).drag_to(lane(page, "working"))
    expect(lane(page, "working").locator(f"#card-{lead}")).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("Moved to Working")
    assert site.status_of(lead) == "working"


def test_a_drop_that_needs_data_opens_the_form_on_the_card(browse: Browse, site: Site) -> None:
    lead = site.lead(status="working", name="Drag Quinn", owner="bo")
    page = browse.page("bo")
    page.goto("/board")
    card(page, lead).drag_to(lane(page, "qualified"))
    form = card(page, lead).locator("form.change-form")
    expect(form).to_be_visible()
    for label, value in (
        ("Budget", "10k"),
        ("Authority", "CEO"),
        ("Identified need", "speed"),
        ("Timeline to decision", "Q2"),
    ):
        form.get_by_label(f"{label} (required)").fill(value)
    assert site.status_of(lead) == "working"
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Moved to Qualified")
    assert site.status_of(lead) == "qualified"


def test_a_saved_move_that_routes_the_lead_away_keeps_its_message_on_a_slow_server(browse: Browse, site: Site) -> None:
    """Saving the form blurs its last field, whose change asks the form's preview (a dry run) again 150 ms later.
    Once the move has routed the lead to an AE, the rep may no longer see it, so a preview sent then came back
    "Not found" and replaced "Moved to Qualified" whenever the board's reload took longer than that (a loaded
    server): a sent form's preview is not asked again."""
    lead = site.lead(status="working", name="Slow Quinn", owner="bo")
    page = browse.page("bo")
    page.goto("/board")

    def slow_board(route):  # type: ignore[no-untyped-def]
        time.sleep(0.6)
        route.continue_()

    page.route("**/board", slow_board)
    card(page, lead).drag_to(lane(page, "qualified"))
    form = card(page, lead).locator("form.change-form")
    expect(form).to_be_visible()
    for label, value in (("Budget", "5k"), ("Authority", "CFO"), ("Identified need", "reports")):
        form.get_by_label(f"{label} (required)").fill(value)
    form.get_by_label("Timeline to decision (required)").fill("Q3")
    form.get_by_role("button", name="Save").click()
    expect(card(page, lead)).to_have_count(0, timeout=10_000)  # the reloaded board: the lead is an AE's now
    page.wait_for_timeout(400)
    expect(page.locator("#flash")).to_contain_text("Moved to Qualified")
    expect(page.locator("#flash")).not_to_contain_text("Not found")
    assert site.status_of(lead) == "qualified"


def test_a_column_the_model_does_not_allow_refuses_the_card(browse: Browse, site: Site) -> None:
    lead = site.lead(status="connected", name="Drag Nope", owner="bo")
    page = browse.page("bo")
    page.goto("/board")
    card(page, lead).drag_to(lane(page, "new"))  # no way back to New for a rep
    expect(lane(page, "connected").locator(f"#card-{lead}")).to_be_visible()
    assert site.status_of(lead) == "connected"


def test_a_card_moves_with_the_keyboard_alone(browse: Browse, site: Site) -> None:
    lead = site.lead(status="connected", name="Key Kai", owner="bo")
    page = browse.page("bo")
    page.goto("/board")
    card(page, lead).get_by_role("button", name="Move").focus()
    page.keyboard.press("Enter")
    menu = card(page, lead).locator(".menu")
    expect(menu.locator("button").first).to_be_focused()
    for _ in range(10):
        if page.evaluate("() => document.activeElement.textContent.trim()") == "Working":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(lane(page, "working").locator(f"#card-{lead}")).to_be_visible()
    assert site.status_of(lead) == "working"


def test_the_board_is_accessible_and_stacks_on_a_phone(browse: Browse, site: Site, tmp_path: Path) -> None:
    site.lead(status="connected", name="Board Axe", owner="bo")
    page = browse.page("maria")
    page.goto("/board")
    expect(page.locator(".lane").first).to_be_visible()
    assert axe_violations(page) == []
    phone = browse.page("ana", phone=True)
    phone.goto("/board")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1
