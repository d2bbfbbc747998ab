"""Dashboards in Chromium, on demo data: the panels show one by one as their reports are computed, every panel
renders with numbers, options change them, a number drills down to the leads behind it, and each panel's CSV
downloads injection-safe."""

from __future__ import annotations

import csv
import io
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from browserkit import DESKTOP, PHONE, Site, axe_violations, log_in
from playwright.sync_api import expect

from leadledger.analytics.reports import REPORTS
from leadledger.services import leadquery
from leadledger.services.leadquery import LeadFilter
from leadledger.services.leads import create_lead
from leadledger.services.visibility import scope_for

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PANELS = ("distribution", "funnel", "durations", "bottlenecks", "sla", "reps", "sources", "governance", "health",
          "overrides")  # fmt: skip


@pytest.fixture
def oscar(browser: Any, demo_site: Site) -> Any:
    context = browser.new_context(viewport=DESKTOP, base_url=demo_site.url, locale="en-US", accept_downloads=True)
    page = context.new_page()
    log_in(page, demo_site, "oscar")
    yield page
    context.close()


def test_every_panel_renders_with_numbers(oscar: Any, demo_site: Site) -> None:
    oscar.goto("/dashboards")
    for name in PANELS:
        panel = oscar.locator(f"#p-{name}")
        expect(panel).to_be_visible()
        expect(panel.locator("table, ul, p").first).to_be_visible()
    total = oscar.locator("#p-distribution tfoot td.num").inner_text()
    assert int(total.replace(",", "")) == 600
    expect(oscar.locator("#p-funnel tbody tr")).to_have_count(5)
    expect(oscar.locator("#p-funnel svg.bar rect.band").first).to_be_attached()  # the seed range as a band
    expect(oscar.locator("#p-reps tbody tr").first).to_contain_text(re.compile(r"\d"))
    expect(oscar.locator("#p-sla")).to_contain_text("first contact")


def test_a_number_drills_down_to_the_leads_behind_it(oscar: Any, demo_site: Site) -> None:
    oscar.goto("/dashboards")
    cell = oscar.locator("#p-distribution tbody tr", has_text="Nurture").locator("td.num a")
    shown = int(cell.inner_text().replace(",", ""))
    cell.click()
    oscar.wait_for_url(re.compile(r"/leads\?status=nurture"))
    expect(oscar.locator("#count")).to_contain_text(f"{shown:,} leads match")
    listed = leadquery.find_leads(demo_site.app, scope_for(demo_site.app, "oscar"), LeadFilter(statuses=("nurture",)))
    assert listed.count == shown


def test_the_as_of_date_and_the_grouping_change_the_panels(oscar: Any) -> None:
    oscar.goto("/dashboards")
    now_total = oscar.locator("#p-distribution tfoot td.num").inner_text()
    oscar.get_by_label("As of").fill("2026-01-01")  # before the demo's history: nobody yet
    oscar.get_by_role("button", name="Show").click()
    oscar.wait_for_url(re.compile(r"as_of=2026-01-01"))
    assert oscar.locator("#p-distribution tfoot td.num").inner_text() == "0" != now_total
    oscar.goto("/dashboards?by=team")
    expect(oscar.locator("#p-distribution caption")).to_have_text("By team")
    expect(oscar.locator("#p-funnel caption")).to_have_text("By team")


def test_each_panel_exports_csv_and_formulas_are_neutralised(oscar: Any, demo_site: Site) -> None:
    create_lead(demo_site.app, actor="oscar", fields={"name": "Formula", "email": "f@example.com",
                "source": "=HYPERLINK(\"http://evil.example\")"})  # fmt: skip
    oscar.goto("/dashboards")
    for name in PANELS:
        with oscar.expect_download() as info:
            oscar.locator(f"#p-{name} a.csv").click()
        text = Path(info.value.path()).read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) >= 2, name
    answer = oscar.request.get("/dashboards/sources.csv")
    sources = {row[0] for row in csv.reader(io.StringIO(answer.text()))}
    assert '\'=HYPERLINK("http://evil.example")' in sources
    assert not any(cell.startswith("=") for cell in sources)


def test_the_dashboards_are_accessible_and_fit_a_phone(
    browser: Any, oscar: Any, demo_site: Site, tmp_path: Path
) -> None:
    oscar.goto("/dashboards")
    assert axe_violations(oscar) == []
    context = browser.new_context(viewport=PHONE, base_url=demo_site.url, locale="en-US", is_mobile=True)
    try:
        phone = context.new_page()
        log_in(phone, demo_site, "maria")
        phone.goto("/dashboards")
        wide = phone.evaluate("""() => [...document.querySelectorAll('main *')].filter(e => !e.closest('.scroll')
            && e.getBoundingClientRect().right > 391).slice(0, 6).map(e => e.tagName + '.' + e.className + '@' + (e.closest('section') || {}).id)""")
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1, wide
    finally:
        context.close()


def hold_back_governance(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The real governance report, held back in the server until the test sets `release`; `started` is set
    once the page has reached it."""
    started, release = threading.Event(), threading.Event()
    governance = REPORTS["governance"]

    def slow_governance(query: Any) -> dict[str, Any]:
        started.set()
        release.wait(30)
        return governance(query)

    monkeypatch.setitem(REPORTS, "governance", slow_governance)
    return started, release


def test_the_panels_computed_so_far_show_while_a_slow_one_is_still_computed(
    oscar: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = hold_back_governance(monkeypatch)
    try:
        oscar.goto("/dashboards", wait_until="commit")
        assert started.wait(30)
        expect(oscar.locator("#p-distribution tfoot td.num")).to_have_text(re.compile(r"^[1-9][\d,]*$"))
        expect(oscar.locator("#p-funnel tbody tr")).to_have_count(5)
        expect(oscar.locator("#p-reps tbody tr").first).to_contain_text(re.compile(r"\d"))
        expect(oscar.locator("#p-governance")).to_have_count(0)  # not computed yet, and the page still loading
        assert oscar.evaluate("() => document.readyState") == "loading"
    finally:
        release.set()
    expect(oscar.locator("#p-governance tbody tr").first).to_contain_text(re.compile(r"\d"))
    expect(oscar.locator("#p-overrides")).to_be_visible()
    oscar.wait_for_load_state("load")


def test_a_failing_report_leaves_its_panel_saying_so_and_the_others_computed(
    oscar: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(query: Any) -> dict[str, Any]:
        raise RuntimeError("the store is unreadable")

    monkeypatch.setitem(REPORTS, "durations", broken)
    oscar.goto("/dashboards")
    expect(oscar.locator("#p-durations .empty")).to_contain_text("could not be computed (the error is logged as")
    expect(oscar.locator("#p-bottlenecks tbody tr").first).to_be_visible()  # the panels after it still come
    expect(oscar.locator("#p-overrides")).to_be_visible()


def test_a_panel_opens_on_its_own_page_with_the_options(oscar: Any) -> None:
    oscar.goto("/dashboards/panels/funnel?by=team")
    expect(oscar.locator("main h1")).to_have_text("Funnel conversion")
    expect(oscar.locator("#p-funnel caption")).to_have_text("By team")
    expect(oscar.locator("#p-funnel > table tbody tr")).to_have_count(5)
    oscar.get_by_role("link", name="All dashboards").click()
    oscar.wait_for_url(re.compile(r"/dashboards\?by=team$"))
    expect(oscar.locator("#p-funnel caption")).to_have_text("By team")


def test_leaving_a_page_still_rendering_gives_the_store_back(oscar: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    governance = REPORTS["governance"]
    started, release = hold_back_governance(monkeypatch)
    try:
        oscar.goto("/dashboards", wait_until="commit")
        assert started.wait(30)
        oscar.goto("/leads")  # the reader leaves while governance is computed
    finally:
        release.set()
    monkeypatch.setitem(REPORTS, "governance", governance)
    oscar.goto("/dashboards")  # would wait for the analytics store forever if the first page still held it
    expect(oscar.locator("#p-overrides tbody tr").first).to_be_visible()


def test_as_of_today_shows_the_figures_until_now(oscar: Any, demo_site: Site) -> None:
    today = demo_site.app.clock.now().astimezone(demo_site.app.model.calendar(None).tz).date().isoformat()
    oscar.goto("/dashboards")
    now_total = oscar.locator("#p-distribution tfoot td.num").inner_text()
    oscar.goto(f"/dashboards?as_of={today}")  # the end of today is still to come: the figures are as of now
    expect(oscar.locator("#p-distribution tfoot td.num")).to_have_text(now_total)
    expect(oscar.locator("#p-overrides")).to_be_visible()
    answer = oscar.request.get(f"/dashboards/distribution.csv?as_of={today}")
    assert answer.status == 200, answer.text()


def test_options_the_reports_refuse_give_an_error_page_not_half_a_page(oscar: Any) -> None:
    answer = oscar.request.get("/dashboards?as_of=2099-01-01")  # a later day than today is still the future
    assert answer.status == 400
    assert "in the future" in answer.text() and 'id="p-distribution"' not in answer.text()
