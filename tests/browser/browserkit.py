"""Helpers of the browser tests: a real `leadledger serve` application (Uvicorn in a thread, on a free port) driven by the
system's Chromium through Playwright.

One server and one browser for the whole session (pages and contexts are cheap, browsers are not); every test
makes its own leads through the service layer, so tests do not depend on each other's changes. Each role logs
in once through the login form and later tests reuse that browser state. When `LEADLEDGER_TEST_REQUIRE`
contains `browser` (CI sets it), a browser test that cannot run fails instead of skipping.

`LEADLEDGER_SCREENSHOTS=docs` makes the screenshot helper write into docs/screenshots/ (the README shows them);
otherwise screenshots go to the test's temporary folder, so a test run leaves the checkout clean.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from leadledger.services import auth, people
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, ChangeSpec
from leadledger.services.leads import change_lead, create_lead

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-password"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}

_names = itertools.count(1)


def skip_or_fail(why: str) -> None:
    """Skip, unless this run requires browser tests (CI): then a test that cannot run is a failure."""
    if "browser" in os.environ.get("LEADLEDGER_TEST_REQUIRE", ""):
        pytest.fail(f"browser tests are required in this run but cannot run: {why}")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """Uvicorn serving the site of `app` in a daemon thread until `stop()`."""

    def __init__(self, app: App):
        import uvicorn

        from leadledger.cli.server import build_site
        from leadledger.web import WebOptions

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = build_site(app, WebOptions(live_interval=0.3))
        config = uvicorn.Config(site, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on", timeout_graceful_shutdown=1)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="leadledger-test-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Site:
    """The running site, its database (through the services) and helpers to make data for one test."""

    app: App
    url: str
    logins: dict[str, Any] = field(default_factory=dict)  # user -> Playwright storage state

    def lead(self, *, owner: str | None = "ana", status: str | None = None, name: str | None = None,
             **fields: Any) -> str:  # fmt: skip
        """A new lead (own name unless given), moved to `status` the way a rep would get it there."""
        number = next(_names)
        values = {"name": name or f"Test Lead {number}", "email": f"lead{number}@example.com", "company": "Acme",
                  "source": "webinar", **fields}  # fmt: skip
        lead_id = create_lead(self.app, actor="oscar", fields=values, owner=owner).lead_id
        path = {
            "attempting_contact": [("attempting_contact", "call_logged", "no_answer")],
            "connected": [
                ("attempting_contact", "call_logged", "no_answer"),
                ("connected", "call_logged", "connected"),
            ],
        }
        for target, kind, outcome in path.get(status or "", []):
            change_lead(self.app, actor="oscar", spec=ChangeSpec(lead_id, status=target,
                        log=ActivityIn(kind, data={"outcome": outcome})))  # fmt: skip
        if status == "working":
            for target, kind, outcome in path["connected"]:
                change_lead(self.app, actor="oscar", spec=ChangeSpec(lead_id, status=target,
                            log=ActivityIn(kind, data={"outcome": outcome})))  # fmt: skip
            change_lead(self.app, actor="oscar", spec=ChangeSpec(lead_id, status="working"))
        return lead_id

    def status_of(self, lead_id: str) -> str:
        from leadledger.services.leads import get_lead

        return str(get_lead(self.app, lead_id)["status"])


def organisation(app: App, *, existing_ok: bool = False) -> None:
    """maria manages east (ana, ben, and bo, whose leads only the board's tests make, so that its columns of 25
    cards never fill up with other tests' leads) and the AEs (ines: the default model routes Qualified leads to team `ae`);
    jonas manages west (wes); oscar is ops. Everyone logs in with PASSWORD."""
    users = {u["name"] for u in people.list_users(app)} if existing_ok else set()
    teams = {t["name"] for t in people.list_teams(app)} if existing_ok else set()
    for name, role, email in (("maria", "manager", "maria@example.com"), ("jonas", "manager", None)):
        if name not in users:
            people.add_user(app, name=name, role=role, email=email)
    for team, manager in (("east", "maria"), ("west", "jonas"), ("ae", "maria")):
        if team not in teams:
            people.add_team(app, name=team, calendar="default", manager=manager)
    for name, role, team in (("ines", "rep", "ae"), ("ana", "rep", "east"), ("ben", "rep", "east"),
                             ("wes", "rep", "west"), ("bo", "rep", "east"), ("oscar", "ops", None)):  # fmt: skip
        if name not in users:
            people.add_user(app, name=name, role=role, team=team)
    for name in ("maria", "jonas", "ana", "ben", "wes", "bo", "oscar", "ines"):
        auth.set_password(app, name=name, password=PASSWORD)


def log_in(page: Any, site: Site, user: str, password: str = PASSWORD) -> None:
    """Through the login form, as a person does."""
    page.goto(f"{site.url}/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


class Browse:
    """Opens pages as a given user in fresh browser contexts (logging in once per user per session)."""

    def __init__(self, browser: Any, site: Site):
        self.browser = browser
        self.site = site
        self.contexts: list[Any] = []

    def page(self, user: str | None, *, phone: bool = False) -> Any:
        viewport = PHONE if phone else DESKTOP
        state = self.site.logins.get(user) if user else None
        context = self.browser.new_context(viewport=viewport, storage_state=state, base_url=self.site.url,
                                           is_mobile=phone, has_touch=phone, locale="en-US")  # fmt: skip
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        if user and state is None:
            log_in(page, self.site, user)
            self.site.logins[user] = context.storage_state()
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's violations of the given impacts on the page as it is now. axe is evaluated through the browser's
    debugging protocol: the app's content security policy (rightly) refuses inline scripts."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in found
        if v["impact"] in impacts
    ]


def screenshot(page: Any, name: str, tmp_path: Path, *, full_page: bool = True) -> Path:
    """Save a full-page screenshot: into docs/screenshots when LEADLEDGER_SCREENSHOTS=docs, else tmp_path."""
    folder = DOCS_SCREENSHOTS if os.environ.get("LEADLEDGER_SCREENSHOTS") == "docs" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.png"
    page.screenshot(path=str(target), full_page=full_page)
    return target
