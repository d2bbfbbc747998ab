"""Fixtures of the browser tests: one server and one Chromium for the whole session (see `browserkit`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from browserkit import CHROMIUM_FLAGS, Browse, Server, Site, organisation, skip_or_fail

from leadledger.bootstrap import build_app
from leadledger.services import models


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        skip_or_fail("no chromium on the PATH (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("site")
    app = build_app(db_url=f"sqlite:///{folder / 'leadledger.db'}")
    models.initialise(app)
    organisation(app)
    server = Server(app)
    try:
        yield Site(app, server.url)
    finally:
        server.stop()
        app.db.dispose()


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A second site with `leadledger demo` data (as `make run` has), for dashboards and the README's screenshots."""
    from leadledger.services import demo, sla

    folder = tmp_path_factory.mktemp("demo-site")
    app = build_app(db_url=f"sqlite:///{folder / 'leadledger.db'}")
    models.initialise(app)
    demo.generate(app, leads=600, seed=11, workers=0)
    sla.rebuild(app)
    organisation(app, existing_ok=True)
    server = Server(app)
    try:
        yield Site(app, server.url)
    finally:
        server.stop()
        app.db.dispose()


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_or_fail(f"playwright is not installed: {exc}")
        return
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browse(browser: Any, site: Site) -> Iterator[Browse]:
    opened = Browse(browser, site)
    try:
        yield opened
    finally:
        opened.close()
