"""Status migrations over HTTP: the plan of a file (ops), PUT /model moving the leads, the composed map."""

from __future__ import annotations

from apikit import Org, fingerprint
from fastapi.testclient import TestClient
from model_edits import default, dump, merge, rename, with_migrations

from leadledger.services import leads as svc
from leadledger.services.leads import ActivityIn, ChangeSpec


def _v2() -> str:
    data = merge(rename(default(), "attempting_contact", "contacting"), "rejected", "disqualified")
    return dump(with_migrations(data, {"attempting_contact": "contacting",
                                       "rejected": {"to": "disqualified", "reason": "one action, one report"}}))  # fmt: skip


def test_plan_then_apply_then_read_the_migrations(org: Org, client: TestClient) -> None:
    lead = svc.create_lead(org.app, actor="admin", fields={"name": "Jo", "email": "jo@example.com"}, owner="ana")
    svc.change_lead(org.app, actor="ana", spec=ChangeSpec(lead.lead_id, status="attempting_contact",
                                                          log=ActivityIn("email_sent")))  # fmt: skip
    body = {"yaml": _v2()}
    assert client.post("/api/v1/model/migrations/plan", json=body, headers=org.headers("maria")).status_code == 403
    plan = client.post("/api/v1/model/migrations/plan", json=body, headers=org.headers("olga"))
    assert plan.status_code == 200, plan.text
    assert plan.json()["moves"] == [{"from": "attempting_contact", "to": "contacting", "leads": 1, "problem": None,
                                     "samples": [lead.lead_id]}]  # fmt: skip
    diff = client.post("/api/v1/model/diff", json=body, headers=org.headers("olga")).json()
    assert {c["key"]: c["note"] for c in diff["changes"] if c["section"] == "migrations"} == {
        "attempting_contact": "attempting_contact → contacting (rename)",
        "rejected": "rejected → disqualified (merge): one action, one report",
    }
    applied = client.put("/api/v1/model", json=body, headers=org.headers("olga"))
    assert applied.status_code == 201, applied.text
    assert applied.json()["migrated"]["by_status"] == [{"from": "attempting_contact", "to": "contacting", "leads": 1}]
    assert client.get(f"/api/v1/leads/{lead.lead_id}", headers=org.headers("ana")).json()["status"] == "contacting"
    current = client.get("/api/v1/model/migrations", headers=org.headers("ana")).json()
    assert [(m["from"], m["to"], m["kind"]) for m in current["migrations"]] == [
        ("attempting_contact", "contacting", "rename"), ("rejected", "disqualified", "merge")]  # fmt: skip
    assert current["moves"] == []
    assert client.post("/api/v1/model/migrate", headers=org.headers("maria")).status_code == 403
    again = client.post("/api/v1/model/migrate", headers=org.headers("olga"))
    assert again.status_code == 200 and again.json()["moved"] == 0


def test_a_model_that_would_strand_leads_is_refused_and_nothing_is_written(org: Org, client: TestClient) -> None:
    lead = svc.create_lead(org.app, actor="admin", fields={"name": "Jo", "email": "jo@example.com"}, owner="ana")
    svc.change_lead(org.app, actor="ana", spec=ChangeSpec(lead.lead_id, status="attempting_contact",
                                                          log=ActivityIn("email_sent")))  # fmt: skip
    body = {"yaml": dump(with_migrations(rename(default(), "attempting_contact", "contacting"), {}))}
    plan = client.post("/api/v1/model/migrations/plan", json=body, headers=org.headers("olga")).json()
    assert (plan["leads_to_move"], plan["leads_stuck"]) == (0, 1)
    assert plan["moves"][0]["problem"] == "attempting_contact is not a status of the model and no migration names it"
    assert [w["check"] for w in plan["warnings"] if w["subject"] == "attempting_contact"] == ["migration_missing"]
    before = fingerprint(org.app)
    refused = client.put("/api/v1/model", json=body, headers=org.headers("olga"))
    assert refused.status_code == 422
    assert "would strand leads nothing can move: 1 in attempting_contact" in refused.json()["detail"]
    assert lead.lead_id in refused.json()["detail"]
    assert fingerprint(org.app) == before
    assert client.get(f"/api/v1/leads/{lead.lead_id}", headers=org.headers("ana")).json()["status"] == "attempting_contact"


def test_a_plan_names_a_broken_migration_with_its_line(org: Org, client: TestClient) -> None:
    text = dump(with_migrations(rename(default(), "attempting_contact", "contacting"), {"attempting_contact": "nope"}))
    answer = client.post("/api/v1/model/migrations/plan", json={"yaml": text}, headers=org.headers("olga"))
    assert answer.status_code == 422
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "nope" in row)
    assert any("nope" in v["message"] and f":{line}" in v["field"] + v["message"] for v in answer.json()["violations"]), answer.json()
