"""Leads over HTTP: create, read, filter and page, update fields, change status/stage/owner, bulk, timeline, model."""

from __future__ import annotations

import itertools
from datetime import timedelta

from apikit import Org, fingerprint
from fastapi.testclient import TestClient

from leadledger.model.loader import default_model_text
from leadledger.services import leads as svc

_mailboxes = itertools.count()


def create(client: TestClient, org: Org, user: str = "maria", **body: object) -> dict[str, object]:
    answer = client.post(
        "/api/v1/leads",
        json={"name": "Jo Doe", "email": f"jo{next(_mailboxes)}@example.com", **body},  # one person, one lead
        headers=org.headers(user),
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_create_answers_201_with_the_lead_and_a_location(org: Org, client: TestClient) -> None:
    answer = client.post(
        "/api/v1/leads",
        json={
            "email": "jo@example.com",
            "name": "Jo Doe",
            "company": "Acme",
            "source": "webinar",
            "fields": {"title": "CFO"},
        },
        headers=org.headers("maria"),
    )
    assert answer.status_code == 201
    lead = answer.json()
    assert answer.headers["location"] == f"/api/v1/leads/{lead['id']}"
    assert (lead["status"], lead["stage"], lead["company"], lead["fields"]) == ("new", "lead", "Acme", {"title": "CFO"})
    assert client.get(f"/api/v1/leads/{lead['id']}", headers=org.headers("ana")).json() == lead


def test_create_with_an_idempotency_key_creates_once(org: Org, client: TestClient) -> None:
    first = create(client, org, idempotency_key="form-1")
    again = client.post("/api/v1/leads", json={"name": "Jo Doe", "email": first["email"], "idempotency_key": "form-1"},
                        headers=org.headers("maria"))  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert fingerprint(org.app)["leads"] == 1


def test_create_refused_lists_every_violation(org: Org, client: TestClient) -> None:
    answer = client.post("/api/v1/leads", json={"company": "Acme", "stage": "nowhere"}, headers=org.headers("maria"))
    assert answer.status_code == 409
    assert {v["field"] for v in answer.json()["violations"]} == {"stage"}
    answer = client.post("/api/v1/leads", json={"company": "Acme"}, headers=org.headers("maria"))
    assert answer.status_code == 409 and answer.json()["violations"]
    assert fingerprint(org.app)["leads"] == 0


def test_status_change_refusal_then_success(org: Org, client: TestClient) -> None:
    lead_id = create(client, org, owner="ana")["id"]
    refused = client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "connected"}, headers=org.headers("ana"))
    assert refused.status_code == 409
    assert [v["field"] for v in refused.json()["violations"]] == ["activity"]
    assert svc.get_lead(org.app, lead_id)["version"] == 1
    asked = {"status": "connected", "log": {"type": "call_logged", "data": {"outcome": "connected"}},
             "fields": {"next_steps": "demo Tuesday"}, "idempotency_key": "call-1"}  # fmt: skip
    ok = client.post(f"/api/v1/leads/{lead_id}/status", json=asked, headers=org.headers("ana"))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert (body["lead"]["status"], body["lead"]["fields"]["next_steps"], body["duplicate"]) == (
        "connected",
        "demo Tuesday",
        False,
    )
    replay = client.post(f"/api/v1/leads/{lead_id}/status", json=asked, headers=org.headers("ana"))  # a retry
    assert replay.status_code == 200 and replay.json()["duplicate"] is True and replay.json()["seq"] == body["seq"]


def test_qualified_refusal_names_every_missing_field(org: Org, client: TestClient) -> None:
    lead_id = create(client, org, owner="ana")["id"]
    for step in (
        {"status": "connected", "log": {"type": "call_logged", "data": {"outcome": "connected"}}},
        {"status": "working"},
    ):
        assert client.post(f"/api/v1/leads/{lead_id}/status", json=step, headers=org.headers("ana")).status_code == 200
    refused = client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "qualified"}, headers=org.headers("ana"))
    assert refused.status_code == 409
    assert {"budget", "authority", "need", "timeline"} <= {v["field"] for v in refused.json()["violations"]}


def test_a_change_needing_approval_is_202_and_moves_nothing(org: Org, client: TestClient) -> None:
    lead_id = create(client, org, owner="ana", fields={"estimated_value": 75000})["id"]
    client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "attempting_contact", "log": {"type": "email_sent"}},
                headers=org.headers("ana"))  # fmt: skip
    answer = client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "disqualified", "reason": "budget"},
                         headers=org.headers("ana"))  # fmt: skip
    assert answer.status_code == 202, answer.text
    assert answer.json()["rule"] == "high_value_disqualify" and set(answer.json()["approvers"]) == {"manager", "ops"}
    assert svc.get_lead(org.app, lead_id)["status"] == "attempting_contact"


def test_stage_owner_and_field_updates(org: Org, client: TestClient) -> None:
    lead_id = create(client, org)["id"]
    owned = client.post(f"/api/v1/leads/{lead_id}/owner", json={"owner": "ben"}, headers=org.headers("maria")).json()
    assert (owned["lead"]["owner"], owned["lead"]["status"]) == ("ben", "assigned")
    staged = client.post(f"/api/v1/leads/{lead_id}/stage", json={"stage": "mql"}, headers=org.headers("ben")).json()
    assert staged["lead"]["stage"] == "mql"
    patched = client.patch(f"/api/v1/leads/{lead_id}", json={"phone": "+1 212 555 0100", "company": None,
                                                             "expected_version": staged["lead"]["version"]},
                           headers=org.headers("ben"))  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["lead"]["company"] is None and patched.json()["lead"]["phone"]
    stale = client.patch(
        f"/api/v1/leads/{lead_id}", json={"company": "Late", "expected_version": 1}, headers=org.headers("ben")
    )
    assert stale.status_code == 409 and stale.json()["violations"][0]["code"] == "stale"
    nothing = client.patch(f"/api/v1/leads/{lead_id}", json={"note": "no fields"}, headers=org.headers("ben"))
    assert nothing.status_code == 422
    removed = client.post(f"/api/v1/leads/{lead_id}/owner", json={"owner": None}, headers=org.headers("maria"))
    assert removed.status_code == 200 and removed.json()["lead"]["owner"] is None


def test_list_filters_and_cursor_pagination(org: Org, client: TestClient) -> None:
    ids = [create(client, org, owner="ana" if n % 2 else "ben", source="webinar" if n < 4 else "referral")["id"]
           for n in range(7)]  # fmt: skip
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "owner": "ana", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/leads", params=params, headers=org.headers("ana")).json()
        seen += [lead["id"] for lead in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(i for n, i in enumerate(ids) if n % 2)  # ids sort by creation time, then randomly
    webinar = client.get(
        "/api/v1/leads", params={"source": "webinar", "status": "new"}, headers=org.headers("ana")
    ).json()
    assert len(webinar["items"]) == 4 and webinar["next_cursor"] is None  # `new` includes Assigned
    org.app.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    aged = client.get("/api/v1/leads", params={"in_status_longer_than": "2d"}, headers=org.headers("ana")).json()
    assert len(aged["items"]) == 7
    assert (
        client.get("/api/v1/leads", params={"in_status_longer_than": "4d"}, headers=org.headers("ana")).json()["items"]
        == []
    )
    bad = client.get("/api/v1/leads", params={"status": "atempting"}, headers=org.headers("ana"))
    assert bad.status_code == 422 and "atempting" in bad.json()["detail"]
    assert "did you mean attempting_contact?" in bad.json()["detail"]  # and every key, as the CLI says it
    assert "status keys are new, assigned, attempting_contact" in bad.json()["detail"]


def test_bulk_change_gives_each_lead_its_result(org: Org, client: TestClient) -> None:
    mine = create(client, org, owner="ana")["id"]
    theirs = create(client, org, owner="ben")["id"]
    answer = client.post("/api/v1/bulk-changes", json={"leads": [mine, theirs, "Lnope"], "stage": "mql"},
                         headers=org.headers("ana"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["applied"], body["refused"]) == (1, 2)
    outcomes = {r["lead_id"]: (r["outcome"], [v["code"] for v in r["violations"]]) for r in body["results"]}
    assert outcomes == {mine: ("applied", []), theirs: ("refused", ["not_owner"]), "Lnope": ("refused", ["not_found"])}
    assert svc.get_lead(org.app, theirs)["stage"] == "lead"


def test_timeline_and_unknown_lead(org: Org, client: TestClient) -> None:
    lead_id = create(client, org, owner="ana")["id"]
    client.post(f"/api/v1/leads/{lead_id}/activities", json={"type": "call_logged", "data": {"outcome": "voicemail"}, "key": "c1"},
                headers=org.headers("ana"))  # fmt: skip
    again = client.post(
        f"/api/v1/leads/{lead_id}/activities", json={"type": "call_logged", "key": "c1"}, headers=org.headers("ana")
    )
    assert again.status_code == 200 and again.json()["logged"] is False
    timeline = client.get(f"/api/v1/leads/{lead_id}/timeline", headers=org.headers("ana")).json()
    assert timeline["lead"]["id"] == lead_id and timeline["entries"][0]["to_status"] == "assigned"
    assert [(a["type"], a["actor"], a["key"]) for a in timeline["activities"]] == [("call_logged", "ana", "c1")]
    missing = client.get("/api/v1/leads/Lnope/timeline", headers=org.headers("ana"))
    assert missing.status_code == 404 and missing.json()["detail"]
    change = client.post("/api/v1/leads/Lnope/status", json={"status": "working"}, headers=org.headers("ana"))
    assert change.status_code == 404


def test_the_model_is_readable_by_all_and_replaced_only_when_it_lints(org: Org, client: TestClient) -> None:
    model = client.get("/api/v1/model", headers=org.headers("ana")).json()
    assert "attempting_contact" in {s["key"] for s in model["statuses"]} and model["id"] == 1
    guide = client.get("/api/v1/model/guide", params={"format": "html"}, headers=org.headers("zap"))
    assert guide.headers["content-type"].startswith("text/html") and "<h2" in guide.text
    broken = default_model_text().replace("roles: [rep, manager, ops, integration]", "roles: [rep]", 1)
    refused = client.put(
        "/api/v1/model", content=broken, headers={**org.headers("olga"), "Content-Type": "application/yaml"}
    )
    assert refused.status_code == 422 and refused.json()["violations"]
    text = default_model_text().replace("version: ", "version: 2.", 1)
    accepted = client.put(
        "/api/v1/model", content=text, headers={**org.headers("olga"), "Content-Type": "application/yaml"}
    )
    assert accepted.status_code == 201, accepted.text
    history = client.get("/api/v1/model/history", headers=org.headers("ana")).json()
    assert [v["id"] for v in history] == [1, accepted.json()["id"]] and history[-1]["created_by"] == "olga"


def test_list_takes_several_statuses_not_status_reason_campaign_company_team_and_segment(
    org: Org, client: TestClient, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "analytics.duckdb"))
    fresh = create(client, org, company="Acme Inc", campaign="webinar-q1")["id"]
    owned = create(client, org, owner="ana", company="ACME INC", campaign="webinar-q2")["id"]
    lost = create(client, org, owner="ben", company="Globex", campaign="webinar-q2")["id"]
    moved = client.post(f"/api/v1/leads/{lost}/status", json={"status": "rejected", "reason": "poor_fit"},
                        headers=org.headers("maria"))  # fmt: skip
    assert moved.status_code == 200, moved.text

    def listed(params: list[tuple[str, str]]) -> set[str]:
        answer = client.get("/api/v1/leads", params=params, headers=org.headers("ana"))
        assert answer.status_code == 200, answer.text
        return {lead["id"] for lead in answer.json()["items"]}

    # a repeated parameter means any of its values (it used to keep only the last one)
    assert listed([("status", "assigned"), ("status", "rejected")]) == {owned, lost}
    assert listed([("not_status", "new")]) == {lost}
    assert listed([("reason", "poor_fit")]) == {lost}
    assert listed([("campaign", "webinar-q2"), ("company", "acme inc")]) == {owned}
    assert listed([("team", "east"), ("status", "new")]) == {owned}
    assert listed([("segment", "review_before_inclusion")]) == {lost}
    assert listed([("segment", "needs_first_response")]) == {fresh}
    for bad in ([("segment", "nope")], [("not_status", "hot")], [("reason", "because")]):
        answer = client.get("/api/v1/leads", params=bad, headers=org.headers("ana"))
        assert answer.status_code == 422 and bad[0][1] in answer.json()["detail"], answer.text


def test_a_second_lead_for_the_same_mailbox_is_refused_with_409(org: Org, client: TestClient) -> None:
    first = create(client, org, email="Jo.Doe@gmail.com")
    again = client.post("/api/v1/leads", json={"name": "Jo", "email": "jodoe+crm@gmail.com"}, headers=org.headers("maria"))
    assert again.status_code == 409
    (violation,) = again.json()["violations"]
    assert violation["field"] == "email" and violation["code"] == "duplicate" and first["id"] in violation["message"]
