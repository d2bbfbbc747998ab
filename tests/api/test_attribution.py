"""Every write is attributed to its caller: events and the changes rules make because of them name who sent
them, an event cannot claim to come from someone else, the model says who may submit each event type, and a
request that changes nothing writes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from typing import Any

from apikit import Org, fingerprint
from fastapi.testclient import TestClient

from leadledger.services import events as event_service
from leadledger.services import leads as svc
from leadledger.services import people
from leadledger.services.leads import ActivityIn, ChangeSpec

AT = "2026-11-23T14:55:00Z"

_SERIAL = itertools.count(1)  # one person, one lead: each lead its own mailbox


def lead_of(org: Org, owner: str | None = "ana") -> str:
    return svc.create_lead(
        org.app, actor="admin", fields={"name": "Jo", "email": f"jo{next(_SERIAL)}@example.com"}, owner=owner
    ).lead_id


def nurtured(org: Org) -> str:
    lead_id = lead_of(org)
    svc.change_lead(
        org.app, actor="admin", spec=ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent"))
    )
    svc.change_lead(
        org.app,
        actor="admin",
        spec=ChangeSpec(lead_id, status="nurture", reason="not_ready", fields={"re_evaluate_on": "2027-03-01"}),
    )
    return lead_id


def post(client: TestClient, org: Org, user: str, path: str, body: Any) -> Any:
    return client.post(
        f"/api/v1{path}", content=json.dumps(body).encode(),
        headers={**org.headers(user), "Content-Type": "application/json"},
    )  # fmt: skip


def test_a_rep_cannot_recycle_their_lead_by_posting_a_form(org: Org, client: TestClient) -> None:
    """form_submitted comes from integrations: the rule it sets off makes a move reps may not make."""
    lead_id = nurtured(org)
    before = fingerprint(org.app)
    form = [{"id": "form-1", "type": "form_submitted", "lead": lead_id, "at": AT, "data": {"email": "jo@example.com"}}]
    refused = post(client, org, "ana", "/events", form)
    assert refused.status_code == 403, refused.text
    assert "form_submitted" in refused.json()["detail"] and "integration" in refused.json()["detail"]
    assert fingerprint(org.app) == before
    assert svc.get_lead(org.app, lead_id)["status"] == "nurture"
    # the same through the other doors an activity comes in by: logged on its own, or with a change
    alone = post(client, org, "ana", f"/leads/{lead_id}/activities", {"type": "form_submitted", "data": {}})
    assert alone.status_code == 403, alone.text
    with_change = post(client, org, "ana", f"/leads/{lead_id}/status",
                       {"status": "connected", "log": {"type": "email_replied", "data": {"classification": "positive"}}})  # fmt: skip
    assert with_change.status_code == 403, with_change.text
    assert {(v["field"], v["code"]) for v in with_change.json()["violations"]} >= {("log", "role_not_allowed")}
    assert fingerprint(org.app) == before
    # the integration may: the lead is recycled, by the rule, triggered by zap's event
    allowed = post(client, org, "zap", "/events", form)
    assert allowed.status_code == 200 and allowed.json()["status_changes"] == 1, allowed.text
    assert svc.get_lead(org.app, lead_id)["status"] == "recycled"


def test_an_event_and_the_changes_its_rules_make_name_the_caller(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)
    call = [{"id": "e23", "type": "call_logged", "lead": lead_id, "at": AT, "data": {"outcome": "no_answer"}}]
    answer = post(client, org, "ana", "/events", call)
    assert answer.status_code == 200 and answer.json()["status_changes"] == 1, answer.text
    timeline = svc.timeline(org.app, lead_id)
    assert [(a["key"], a["actor"], a["source"]) for a in timeline["activities"]] == [("e23", "ana", "manual")]
    moved = timeline["entries"][-1]
    assert (moved["to_status"], moved["actor"], moved["source"], moved["rule"]) == (
        "attempting_contact", "system", "automation", "first_call_attempt",
    )  # fmt: skip
    assert moved["data"]["triggered_by"] == "ana" and moved["data"]["triggered_by_role"] == "rep"
    assert moved["data"]["trigger_event"] == "e23"
    # the same through the command line's service: the caller is whoever runs it
    other = lead_of(org)
    summary = event_service.apply_events(
        org.app, [json.dumps({**call[0], "id": "e24", "lead": other})], actor="maria"
    ).as_dict()
    assert summary["applied"] == 1
    entries = svc.timeline(org.app, other)
    assert entries["activities"][0]["actor"] == "maria"
    assert entries["entries"][-1]["data"]["triggered_by"] == "maria"


def test_an_integrations_event_is_recorded_as_the_integrations(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)
    post(client, org, "zap", "/events", [{"id": "z1", "type": "email_sent", "lead": lead_id, "at": AT}])
    timeline = svc.timeline(org.app, lead_id)
    assert [(a["actor"], a["source"]) for a in timeline["activities"]] == [("zap", "integration")]
    assert timeline["entries"][-1]["data"]["triggered_by"] == "zap"


def test_a_change_a_person_makes_names_them_on_what_automation_does_next(org: Org, client: TestClient) -> None:
    people.add_user(org.app, name="marketing", role="manager")  # the default model's nurture pool
    lead_id = lead_of(org)
    svc.change_lead(
        org.app, actor="admin", spec=ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent"))
    )
    answer = post(client, org, "ana", f"/leads/{lead_id}/status",
                  {"status": "nurture", "reason": "not_ready", "fields": {"re_evaluate_on": "2027-03-01"}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    entries = svc.timeline(org.app, lead_id)["entries"]
    routed = entries[-1]
    assert (routed["actor"], routed["rule"], routed["to_owner"]) == ("system", "transfer_to_marketing", "marketing")
    assert routed["data"]["triggered_by"] == "ana" and routed["data"]["trigger_seq"] == answer.json()["seq"]


def test_an_email_open_comes_from_the_e_mail_tool_not_from_a_rep(org: Org, client: TestClient) -> None:
    """A tracking pixel is something only a system sees: reps may not post opens, the integration may."""
    lead_id = lead_of(org)
    before = fingerprint(org.app)
    opened = [{"id": "o1", "type": "email_opened", "lead": lead_id, "at": AT}]
    refused = post(client, org, "ana", "/events", opened)
    assert refused.status_code == 403 and "email_opened" in refused.json()["detail"], refused.text
    assert fingerprint(org.app) == before
    assert post(client, org, "zap", "/events", opened).json()["applied"] == 1
    assert [(a["type"], a["actor"]) for a in svc.timeline(org.app, lead_id)["activities"]] == [("email_opened", "zap")]


def test_an_event_cannot_say_who_did_it(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)
    before = fingerprint(org.app)
    top = {"id": "a1", "type": "email_sent", "lead": lead_id, "at": AT, "actor": "maria"}
    for body in (
        [top],
        [{"id": "a2", "type": "email_sent", "lead": lead_id, "at": AT, "data": {"actor": "maria"}}],
        [{"id": "a3", "type": "email_sent", "lead": lead_id, "at": AT, "data": {"Performed-By": "maria"}}],
    ):
        answer = post(client, org, "ana", "/events", body)
        assert answer.status_code == 422, answer.text
    activity = post(client, org, "ana", f"/leads/{lead_id}/activities", {"type": "call_logged",
                    "data": {"outcome": "voicemail", "actor": "maria"}})  # fmt: skip
    assert activity.status_code == 422, activity.text
    assert fingerprint(org.app) == before
    # a file given to `event apply`: the line is rejected, with its number and the key named
    summary = event_service.apply_events(
        org.app,
        [json.dumps(top), json.dumps({"id": "a4", "type": "email_sent", "lead": lead_id, "at": AT,
                                      "data": {"user": "maria"}})],
        actor="ana",
    ).as_dict()
    assert summary["applied"] == 0 and [e["line"] for e in summary["errors"]] == [1, 2]
    assert "actor" in summary["errors"][0]["error"] and "data.user" in summary["errors"][1]["error"]
    # and a field cannot take the name the ledger attributes entries with
    forged = client.patch(f"/api/v1/leads/{lead_id}", json={"fields": {"triggered_by": "maria"}},
                          headers=org.headers("ana"))  # fmt: skip
    assert forged.status_code == 409 and forged.json()["violations"][0]["code"] == "reserved", forged.text
    assert fingerprint(org.app) == before


def test_event_data_cannot_overwrite_the_events_own_time_type_or_id(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)
    post(client, org, "ana", "/events", [{"id": "s1", "type": "email_sent", "lead": lead_id, "at": AT}])
    reply = {"id": "r1", "type": "email_replied", "lead": lead_id, "at": AT,
             "data": {"classification": "positive", "at": "2001-01-01T00:00:00Z", "type": "x", "id": "y"}}  # fmt: skip
    assert post(client, org, "zap", "/events", [reply]).json()["status_changes"] == 1
    lead = svc.get_lead(org.app, lead_id)
    assert lead["status"] == "connected"
    assert lead["fields"]["last_interaction_at"].startswith("2026-11-23T14:55")  # the event's time, not data.at


def test_a_change_that_changes_nothing_writes_nothing(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)  # Assigned to ana
    svc.change_lead(org.app, actor="admin", spec=ChangeSpec(lead_id, fields={"company": "Acme"}))
    before = fingerprint(org.app)
    version = svc.get_lead(org.app, lead_id)["version"]
    for path, body in (
        ("status", {"status": "assigned"}),
        ("owner", {"owner": "ana"}),
        ("stage", {"stage": "lead"}),
    ):
        answer = post(client, org, "ana", f"/leads/{lead_id}/{path}", body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["changed"] is False and answer.json()["seq"] == version
    same = client.patch(f"/api/v1/leads/{lead_id}", json={"company": "Acme"}, headers=org.headers("ana"))
    assert same.status_code == 200 and same.json()["changed"] is False
    bulk = post(client, org, "maria", "/bulk-changes", {"leads": [lead_id], "owner": "ana"})
    assert (bulk.json()["applied"], bulk.json()["unchanged"]) == (0, 1)
    assert bulk.json()["results"][0]["outcome"] == "unchanged"
    assert fingerprint(org.app) == before
    changed = client.patch(f"/api/v1/leads/{lead_id}", json={"company": "Acme 2"}, headers=org.headers("ana"))
    assert changed.json()["changed"] is True and changed.json()["seq"] == version + 1
