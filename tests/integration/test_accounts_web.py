"""The Accounts pages in-process (the real site through TestClient, logged in through the login form): the list
and its "flagged only" filter, an account's page listing its leads with links to them, the manager's Dismiss
form (CSRF-checked; refused to reps), untrusted company names escaped, and everything scoped like the lead list."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

import pytest
from fastapi.testclient import TestClient

from leadledger.cli.server import build_site
from leadledger.services import accounts, people
from leadledger.services.app import App
from leadledger.services.changes import ChangeSpec
from leadledger.services.leads import change_lead, create_lead

PASSWORD = "a-long-enough-password"
HOSTILE = '<script>alert("x")</script> Acme'


@pytest.fixture
def org(team_app: App, give_password: Callable[[App, Iterable[str], str], None]) -> App:
    people.add_user(team_app, name="oscar", role="ops")
    give_password(team_app, ("maria", "ana", "ben", "oscar"), PASSWORD)
    return team_app


@pytest.fixture
def login(org: App) -> Iterator[Callable[[str], TestClient]]:
    clients: list[TestClient] = []

    def open_as(user: str) -> TestClient:
        client = TestClient(build_site(org), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        done = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": csrf},
                           follow_redirects=False)  # fmt: skip
        assert done.status_code == 303, done.text
        return client

    yield open_as
    for client in clients:
        client.__exit__(None, None, None)


def lead(app: App, name: str, company: str, owner: str | None, nurture: bool) -> str:
    email = f"{name.lower()}@{''.join(c for c in company.lower() if c.isalnum())}.example"
    lead_id = create_lead(app, actor="oscar", fields={"name": name, "email": email, "company": company},
                          owner=owner).lead_id  # fmt: skip
    if nurture:
        change_lead(app, actor="oscar", spec=ChangeSpec(lead_id, status="nurture", reason="bad_timing",
                                                        fields={"re_evaluate_on": "2027-03-01"}))  # fmt: skip
    return lead_id


@pytest.fixture
def data(org: App) -> dict[str, list[str]]:
    found = {
        "acme": [lead(org, "Ann", "Acme, Inc.", "ana", True), lead(org, "Bob", "ACME", "ana", True)],
        "globex": [lead(org, "Cid", "Globex", "ben", False)],
        "hostile": [lead(org, "Eve", HOSTILE, "ana", False)],
    }
    accounts.refresh_flags(org)
    return found


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def test_the_list_filters_flagged_accounts_and_is_in_the_nav(login, data) -> None:
    maria = login("maria")
    everything = maria.get("/accounts")
    assert everything.status_code == 200
    assert '<a href="/accounts" aria-current="page">Accounts</a>' in everything.text
    assert 'href="/accounts/acme"' in everything.text and 'href="/accounts/globex"' in everything.text
    flagged = maria.get("/accounts", params={"flagged": "1"}).text
    assert 'href="/accounts/acme"' in flagged and "/accounts/globex" not in flagged
    assert 'name="flagged" value="1" checked' in flagged


def test_company_names_are_escaped(login, data) -> None:
    oscar = login("oscar")
    key = "script alert x script acme"  # what is left of the name as an account key
    for html in (oscar.get("/accounts").text, oscar.get("/accounts/" + key.replace(" ", "%20")).text):
        assert '<script>alert("x")</script>' not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Acme" in html


def test_the_account_page_lists_its_leads_linking_to_them_and_a_manager_dismisses(login, org, data) -> None:
    maria = login("maria")
    html = maria.get("/accounts/acme").text
    for lead_id in data["acme"]:
        assert f'href="/leads/{lead_id}"' in html
    assert "Flagged" in html and 'action="/accounts/acme/dismiss"' in html
    refused = maria.post("/accounts/acme/dismiss", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403 and accounts.flagged_accounts(org) == {"acme"}
    done = maria.post("/accounts/acme/dismiss", data={"csrf": csrf_of(html)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/accounts/acme"
    assert accounts.flagged_accounts(org) == set()
    after = maria.get("/accounts/acme").text
    assert "Dismissed by maria" in after and "/dismiss" not in after


def test_a_rep_sees_no_dismiss_button_is_refused_and_sees_only_their_accounts(login, org, data) -> None:
    ana = login("ana")
    html = ana.get("/accounts/acme").text
    assert "Flagged" in html and "/dismiss" not in html
    refused = ana.post("/accounts/acme/dismiss", data={"csrf": csrf_of(html)}, follow_redirects=False)
    assert refused.status_code == 403 and accounts.flagged_accounts(org) == {"acme"}
    assert 'href="/accounts/globex"' not in ana.get("/accounts").text
    assert ana.get("/accounts/globex").status_code == 404
