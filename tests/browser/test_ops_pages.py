"""The status guide, the model page, imports and admin in Chromium: ops only where it must be, public guide when
ops switches it on, an import with a reject file, users and tokens managed from the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browserkit import Browse, Site, axe_violations
from playwright.sync_api import expect

from leadledger.services import sitesettings

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_the_guide_explains_every_status_and_is_public_only_when_ops_says_so(browse: Browse, site: Site,
                                                                               tmp_path: Path) -> None:  # fmt: skip
    page = browse.page("ana")
    page.goto("/guide")
    expect(page.locator("section#nurture")).to_contain_text("Re-evaluate on")
    expect(page.locator("section#disqualified")).to_contain_text("What happens automatically")
    assert axe_violations(page) == []
    anonymous = browse.page(None)
    anonymous.goto("/guide")
    assert "/login" in anonymous.url
    sitesettings.set_setting(site.app, actor="oscar", name="public_guide", value="on")
    try:
        sitesettings._cache.clear()
        anonymous.goto("/guide")
        expect(anonymous.get_by_role("heading", level=1)).to_contain_text("Status guide")
    finally:
        sitesettings.set_setting(site.app, actor="oscar", name="public_guide", value="off")
        sitesettings._cache.clear()


def test_the_model_page_is_for_ops_and_shows_transitions_lint_and_versions(browse: Browse, site: Site,
                                                                             tmp_path: Path) -> None:  # fmt: skip
    assert browse.page("maria").goto("/model").status == 403
    page = browse.page("oscar")
    page.goto("/model")
    cell = page.locator("table.matrix tr", has_text="Qualified").first
    expect(page.locator("table.matrix")).to_be_visible()
    assert cell.count() == 1
    expect(page.locator("#versions-h + table tbody tr")).to_have_count(1)
    page.get_by_label("or paste it").fill("name: broken\nstatuses: [")
    page.get_by_role("button", name="Lint it").click()
    expect(page.locator("#new-model .error")).to_be_visible()
    assert axe_violations(page) == []


def test_an_import_shows_progress_a_summary_and_its_rejects(browse: Browse, site: Site, tmp_path: Path) -> None:
    csv_file = tmp_path / "leads.csv"
    csv_file.write_text("email,name,company\nimp1@example.com,Imported One,Acme\n,No Contact,Acme\n"
                        "imp2@example.com,Imported Two,Globex\n", encoding="utf-8")  # fmt: skip
    assert browse.page("ana").goto("/imports").status == 403
    page = browse.page("oscar")
    page.goto("/imports")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_label("Mapping (YAML, optional)").fill("columns: {email: email, name: name, company: company}")
    page.get_by_role("button", name="Import").click()
    page.wait_for_load_state()
    assert "/imports/jobs/" in page.url, page.locator("main").inner_text()[:500]
    expect(page.get_by_role("heading", name="Done")).to_be_visible(timeout=30_000)
    expect(page.locator(".summary")).to_contain_text("Rows read")
    read = page.locator(".summary div", has_text="Rows read").locator("dd").inner_text()
    assert read == "3"
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the rejects file").click()
    rejects = Path(info.value.path()).read_text(encoding="utf-8")
    assert "No Contact" in rejects
    assert axe_violations(page) == []
    page.goto("/imports")


def test_admin_adds_a_user_who_can_log_in_and_creates_a_token_shown_once(browse: Browse, site: Site,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    assert browse.page("maria").goto("/admin").status == 403
    page = browse.page("oscar")
    page.goto("/admin")
    form = page.locator("form[action='/admin/users']")
    form.get_by_label("Name").fill("newrep")
    form.get_by_label("Role").select_option("rep")
    form.get_by_label("Team").select_option("east")
    form.get_by_label("Password").fill("new-rep-password-1")
    form.get_by_role("button", name="Add user").click()
    expect(page.locator("#flash")).to_contain_text("User newrep (rep) added.")
    expect(page.locator("#users tbody tr", has_text="newrep")).to_be_visible()
    tokens = page.locator("form[action='/admin/tokens']")
    tokens.get_by_label("For", exact=True).select_option("newrep")
    tokens.get_by_label("What it is for").fill("dialer")
    tokens.get_by_role("button", name="Create token").click()
    secret = page.locator(".shown-once code.secret").inner_text()
    assert secret.startswith("llt_")
    answer = page.request.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert answer.json() == {"name": "newrep", "role": "rep"}
    assert axe_violations(page) == []
    fresh: Any = browse.page(None)
    fresh.goto("/login")
    fresh.get_by_label("Username").fill("newrep")
    fresh.get_by_label("Password").fill("new-rep-password-1")
    fresh.get_by_role("button", name="Log in").click()
    fresh.wait_for_url(re.compile(r"/work$"))
