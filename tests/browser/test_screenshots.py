"""Every page on demo data, at desktop and phone width: no script error, nothing wider than a phone, and a
screenshot (into docs/screenshots/ with LEADLEDGER_SCREENSHOTS=docs: the README shows them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from browserkit import DESKTOP, PHONE, Site, log_in, screenshot
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def open_as(browser: Any, site: Site, user: str, *, phone: bool) -> Any:
    context = browser.new_context(viewport=PHONE if phone else DESKTOP, base_url=site.url, locale="en-US",
                                  is_mobile=phone, has_touch=phone)  # fmt: skip
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    log_in(page, site, user)
    return page


def a_lead(site: Site, status: str) -> str:
    path = site.app.db.url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT id FROM leads WHERE status = ? AND owner = 'ana' ORDER BY id DESC LIMIT 1",
                           (status,)).fetchone()  # fmt: skip
    assert row is not None, status
    return str(row[0])


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_every_page_renders_on_demo_data(browser: Any, demo_site: Site, tmp_path: Path, phone: bool) -> None:
    width = "phone" if phone else "desktop"
    working = a_lead(demo_site, "working")
    shots: list[tuple[str, str, str]] = [
        ("ana", "/leads?status=attempting_contact&status=working&sort=longest_in_status", "leads"),
        ("ana", f"/leads/{working}", "lead"),
        ("ana", "/board", "board"),
        ("ana", "/work", "work-rep"),
        ("maria", "/work", "work-manager"),
        ("oscar", "/dashboards", "dashboards"),
        ("ana", "/guide", "guide"),
    ]
    if not phone:
        shots += [("oscar", "/model", "model"), ("oscar", "/imports", "imports"), ("oscar", "/admin", "admin")]
    pages: dict[str, Any] = {}
    try:
        for user, path, name in shots:
            page = pages.get(user) or open_as(browser, demo_site, user, phone=phone)
            pages[user] = page
            page.goto(path)
            expect(page.locator("main h1")).to_be_visible()
            if name == "leads":
                first = page.locator("table.leads tbody tr").first
                first.get_by_role("button", name="Change status").click()
                expect(first.locator(".menu")).to_be_visible()
            if name == "lead":
                page.get_by_label("Move to").select_option("qualified")
                expect(page.locator(".preview")).to_be_visible()
            if phone:
                assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1, path
            assert page.js_errors == [], path
            screenshot(page, f"{name}-{width}", tmp_path, full_page=name not in ("guide", "model", "admin"))
    finally:
        for page in pages.values():
            page.context.close()
