"""Accounts over HTTP: GET /accounts (flagged filter, key cursor), GET /accounts/{key} (its leads with status,
reason, owner), POST /accounts/{key}/dismiss (managers and ops; 403 for a rep, 401 without a token). Scoped like
the lead list. Leads move through the real change path; flags are raised by the real refresh step."""

from __future__ import annotations

from apikit import Org
from fastapi.testclient import TestClient

from leadledger.services import accounts
from leadledger.services import leads as svc
from leadledger.services.leads import ChangeSpec


def lead(org: Org, name: str, company: str, owner: str | None = "ana", nurture: bool = True) -> str:
    domain = "".join(c for c in company.lower() if c.isalnum())
    fields = {"name": name, "email": f"{name.lower()}@{domain}.example", "company": company}
    lead_id = svc.create_lead(org.app, actor="admin", fields=fields, owner=owner).lead_id
    if nurture:
        spec = ChangeSpec(lead_id, status="nurture", reason="bad_timing", fields={"re_evaluate_on": "2027-03-01"})
        svc.change_lead(org.app, actor="admin", spec=spec)
    return lead_id


def flagged_acme(org: Org) -> list[str]:
    ids = [lead(org, "Ann", "Acme, Inc."), lead(org, "Bob", "ACME")]
    lead(org, "Cid", "Globex", nurture=False)
    lead(org, "Dee", "Initech", owner="ben")
    accounts.refresh_flags(org.app)
    return ids


def test_list_filters_by_flag_and_pages_by_key(org: Org, client: TestClient) -> None:
    flagged_acme(org)
    for n in range(3):
        lead(org, f"Z{n}", f"Zeta {n}", nurture=False)
    olga = org.headers("olga")
    everything = client.get("/api/v1/accounts", headers=olga).json()
    assert [a["key"] for a in everything["items"]] == ["acme", "globex", "initech", "zeta 0", "zeta 1", "zeta 2"]
    assert everything["next_cursor"] is None
    (acme,) = client.get("/api/v1/accounts", params={"flagged": "true"}, headers=olga).json()["items"]
    assert acme["key"] == "acme" and acme["flagged"] and acme["leads"] == 2 and acme["statuses"] == {"nurture": 2}
    assert acme["raised_at"] is not None and acme["dismissed_by"] is None
    unflagged = client.get("/api/v1/accounts", params={"flagged": "false"}, headers=olga).json()["items"]
    assert "acme" not in {a["key"] for a in unflagged} and len(unflagged) == 5
    seen, cursor = [], None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/accounts", params=params, headers=olga).json()
        seen += [a["key"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["key"] for a in everything["items"]]


def test_a_rep_sees_the_accounts_of_their_own_leads(org: Org, client: TestClient) -> None:
    flagged_acme(org)
    keys = [a["key"] for a in client.get("/api/v1/accounts", headers=org.headers("ben")).json()["items"]]
    assert keys == ["initech"]
    assert client.get("/api/v1/accounts/acme", headers=org.headers("ben")).status_code == 404


def test_show_lists_the_leads_with_status_reason_and_owner(org: Org, client: TestClient) -> None:
    ids = flagged_acme(org)
    answer = client.get("/api/v1/accounts/acme", headers=org.headers("maria"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["flagged"] and body["company"] == "ACME"
    assert [(m["id"], m["status"], m["reason"], m["owner"]) for m in body["members"]] == [
        (lead_id, "nurture", "bad_timing", "ana") for lead_id in sorted(ids)
    ]
    missing = client.get("/api/v1/accounts/nobody", headers=org.headers("olga"))
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]


def test_only_managers_and_ops_dismiss_and_it_is_recorded(org: Org, client: TestClient) -> None:
    flagged_acme(org)
    assert client.post("/api/v1/accounts/acme/dismiss").status_code == 401
    refused = client.post("/api/v1/accounts/acme/dismiss", headers=org.headers("ana"))
    assert refused.status_code == 403 and "manager or ops" in refused.json()["detail"]
    assert accounts.flagged_accounts(org.app) == {"acme"}
    done = client.post("/api/v1/accounts/acme/dismiss", headers=org.headers("maria"))
    assert done.status_code == 200 and done.json()["dismissed_by"] == "maria"
    assert accounts.flagged_accounts(org.app) == set()
    shown = client.get("/api/v1/accounts/acme", headers=org.headers("olga")).json()
    assert not shown["flagged"] and shown["dismissed_by"] == "maria"
    again = client.post("/api/v1/accounts/acme/dismiss", headers=org.headers("olga"))
    assert again.status_code == 404  # nothing raised any more
    assert client.get("/api/v1/accounts", params={"flagged": "true"}, headers=org.headers("olga")).json()["items"] == []


def test_accounts_are_in_the_openapi_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/accounts", "/api/v1/accounts/{key}", "/api/v1/accounts/{key}/dismiss"} <= set(spec["paths"])
    listed = spec["paths"]["/api/v1/accounts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/AccountPage"}
