"""Idempotency keys and event ids belong to their caller (and a change's key to its lead): another caller's
identical key is another request, and a key reused for a different request is refused naming the key, never
answered with another lead's result. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from typing import Any

from apikit import Org, fingerprint
from fastapi.testclient import TestClient

from leadledger.services import leads as svc

AT = "2026-11-23T14:55:00Z"

_SERIAL = itertools.count(1)  # one person, one lead: each lead its own mailbox


def lead_of(org: Org, owner: str | None = "ana") -> str:
    return svc.create_lead(
        org.app, actor="admin", fields={"name": "Jo", "email": f"jo{next(_SERIAL)}@example.com"}, owner=owner
    ).lead_id


def status(client: TestClient, org: Org, user: str, lead_id: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/leads/{lead_id}/status", json=body, headers=org.headers(user))


def test_two_callers_may_use_the_same_key_on_one_lead(org: Org, client: TestClient) -> None:
    lead_id = lead_of(org)
    first = status(client, org, "ana", lead_id,
                   {"status": "attempting_contact", "log": {"type": "email_sent"}, "idempotency_key": "k-1"})  # fmt: skip
    assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
    again = status(client, org, "maria", lead_id,
                   {"status": "connected", "log": {"type": "call_logged", "data": {"outcome": "connected"}},
                    "idempotency_key": "k-1"})  # fmt: skip
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is False and again.json()["lead"]["status"] == "connected"


def test_a_key_reused_on_another_lead_is_refused_naming_it(org: Org, client: TestClient) -> None:
    one, two = lead_of(org), lead_of(org)
    body = {"status": "attempting_contact", "log": {"type": "email_sent"}, "idempotency_key": "retry-7"}
    assert status(client, org, "ana", one, body).status_code == 200
    before = fingerprint(org.app)
    reused = status(client, org, "ana", two, body)
    assert reused.status_code == 409, reused.text
    assert reused.json()["violations"][0]["field"] == "idempotency_key"
    assert "retry-7" in reused.json()["violations"][0]["message"]
    assert one not in reused.text  # never the other lead's answer
    assert fingerprint(org.app) == before
    assert svc.get_lead(org.app, two)["status"] == "assigned"


def test_a_key_reused_for_a_different_change_is_refused_and_a_replay_is_a_duplicate(
    org: Org, client: TestClient
) -> None:
    lead_id = lead_of(org)
    body = {"status": "attempting_contact", "log": {"type": "email_sent"}, "idempotency_key": "k-2"}
    first = status(client, org, "ana", lead_id, body)
    replay = status(client, org, "ana", lead_id, body)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert replay.json()["seq"] == first.json()["seq"]
    different = status(client, org, "ana", lead_id, {**body, "status": "connected",
                       "log": {"type": "call_logged", "data": {"outcome": "connected"}}})  # fmt: skip
    assert different.status_code == 409 and "k-2" in different.text, different.text


def test_a_creation_key_is_the_callers_own(org: Org, client: TestClient) -> None:
    body = {"name": "Kim", "email": "kim@example.com", "idempotency_key": "form-99"}
    ana = client.post("/api/v1/leads", json={**body, "owner": "ana"}, headers=org.headers("ana"))
    maria = client.post("/api/v1/leads", json={**body, "email": "kim.m@example.com"}, headers=org.headers("maria"))
    assert ana.status_code == maria.status_code == 201, maria.text
    assert ana.json()["id"] != maria.json()["id"]
    again = client.post("/api/v1/leads", json={**body, "owner": "ana"}, headers=org.headers("ana"))
    assert again.status_code == 200 and again.json()["id"] == ana.json()["id"]
    other = client.post("/api/v1/leads", json={**body, "name": "Someone else"}, headers=org.headers("ana"))
    assert other.status_code == 409 and "form-99" in other.text, other.text


def test_one_callers_event_id_never_shadows_anothers(org: Org, client: TestClient) -> None:
    first, second = lead_of(org), lead_of(org)
    event = {"id": "1", "type": "email_sent", "at": AT}
    by_zap = client.post("/api/v1/events", json=[{**event, "lead": first}], headers=org.headers("zap"))
    by_ana = client.post("/api/v1/events", json=[{**event, "lead": second}], headers=org.headers("ana"))
    assert by_zap.json()["applied"] == by_ana.json()["applied"] == 1, by_ana.text
    assert svc.get_lead(org.app, second)["status"] == "attempting_contact"
    replay = client.post("/api/v1/events", json=[{**event, "lead": second}], headers=org.headers("ana"))
    assert (replay.json()["applied"], replay.json()["duplicates"]) == (0, 1)
    activities = svc.timeline(org.app, second)["activities"]
    assert [(a["key"], a["actor"]) for a in activities] == [("1", "ana")]
