"""Fixtures for the REST API tests: an organisation with one user per role, their tokens, an in-process client.

Everything builds on the shared `app` fixture, so each test runs on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apikit import HOOK_SECRET, Org
from fastapi.testclient import TestClient

from leadledger.api import create_app
from leadledger.services import auth, hooks, people
from leadledger.services.app import App


@pytest.fixture
def org(app: App) -> Org:
    """maria manages team east (reps ana and ben); olga is ops; zap is an integration with a signed webhook."""
    people.add_user(app, name="maria", role="manager", email="maria@example.com")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="east")
    people.add_user(app, name="ben", role="rep", team="east")
    people.add_user(app, name="olga", role="ops")
    people.add_user(app, name="zap", role="integration")
    hooks.add_hook(app, name="forms", user="zap", secret=HOOK_SECRET)
    tokens = {
        name: auth.issue_token(app, user=name, name="test")["token"] for name in ("maria", "ana", "ben", "olga", "zap")
    }
    return Org(app, tokens)


@pytest.fixture
def client(org: Org) -> Iterator[TestClient]:
    """An in-process client; server errors come back as 500 answers (as a real client sees them), not exceptions."""
    with TestClient(create_app(org.app), raise_server_exceptions=False) as test_client:
        yield test_client
