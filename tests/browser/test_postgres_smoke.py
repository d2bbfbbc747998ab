"""The web app on PostgreSQL: log in, filter, change a status in place, read it back through the services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browserkit import DESKTOP, Server, Site, log_in, organisation
from playwright.sync_api import expect

from leadledger.bootstrap import build_app

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.xdist_group("browser")]


@pytest.fixture
def pg_site(pg_url: str) -> Iterator[Site]:
    app = build_app(db_url=pg_url)
    organisation(app)
    server = Server(app)
    try:
        yield Site(app, server.url)
    finally:
        server.stop()
        app.db.dispose()


def test_a_rep_changes_a_status_in_place_on_postgresql(browser: Any, pg_site: Site) -> None:
    lead = pg_site.lead(status="connected", name="Postgres Paula")
    context = browser.new_context(viewport=DESKTOP, base_url=pg_site.url, locale="en-US")
    try:
        page = context.new_page()
        log_in(page, pg_site, "ana")
        page.goto("/leads?status=connected")
        row = page.locator(f"#lead-{lead}")
        row.get_by_role("button", name="Change status").click()
        row.get_by_role("button", name="Working", exact=True).click()
        expect(row.locator(".status-cell > .badge")).to_have_text("Working")
        assert pg_site.status_of(lead) == "working"
    finally:
        context.close()
