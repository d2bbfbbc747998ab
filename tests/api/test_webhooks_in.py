"""Events in: JSON from an authenticated caller, and signed webhooks (HMAC-SHA256 over "<t>.<body>", a replay
window, idempotent on the event id) from an integration."""

from __future__ import annotations

import itertools
import json

from apikit import HOOK_SECRET, Org, fingerprint, sign
from fastapi.testclient import TestClient

from leadledger.services import auth, hooks
from leadledger.services import leads as svc
from leadledger.services.outbox import sign as outbound_sign

NOW = 1795446000  # T0 (2026-11-23T15:00Z), the clock of the `app` fixture


def call_event(lead_id: str, key: str = "evt-1") -> list[dict[str, object]]:
    return [{"id": key, "type": "call_logged", "lead": lead_id, "at": "2026-11-23T14:55:00Z",
             "data": {"outcome": "connected"}}]  # fmt: skip


_mailboxes = itertools.count()


def attempting_lead(org: Org) -> str:
    lead_id = svc.create_lead(
        org.app, actor="admin", fields={"name": "Jo", "email": f"jo{next(_mailboxes)}@example.com"}, owner="ana"
    ).lead_id
    svc.change_lead(org.app, actor="admin", spec=svc.ChangeSpec(lead_id, status="attempting_contact",
                                                                log=svc.ActivityIn("email_sent")))  # fmt: skip
    return lead_id


def deliver(client: TestClient, body: bytes, signature: str | None, hook: str = "forms") -> object:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[hooks.SIGNATURE_HEADER] = signature
    return client.post(f"/api/v1/hooks/{hook}", content=body, headers=headers)


def test_a_signed_delivery_applies_as_the_integration_and_a_replay_changes_nothing(
    org: Org, client: TestClient
) -> None:
    lead_id = attempting_lead(org)
    body = json.dumps(call_event(lead_id)).encode()
    first = deliver(client, body, sign(body, NOW - 30))
    assert first.status_code == 200, first.text  # type: ignore[attr-defined]
    assert (first.json()["applied"], first.json()["status_changes"]) == (1, 1)  # type: ignore[attr-defined]
    lead = svc.get_lead(org.app, lead_id)
    assert lead["status"] == "connected"  # the model's call_connects rule moved it
    logged = [a for a in svc.timeline(org.app, lead_id)["activities"] if a["key"] == "evt-1"]
    assert [(a["type"], a["source"]) for a in logged] == [("call_logged", "integration")]
    before = fingerprint(org.app)
    again = deliver(client, body, sign(body, NOW - 10))
    assert again.json()["duplicates"] == 1 and again.json()["applied"] == 0  # type: ignore[attr-defined]
    assert fingerprint(org.app) == before


def test_the_signature_format_is_the_one_leadledger_signs_with(org: Org, client: TestClient) -> None:
    body = json.dumps(call_event(attempting_lead(org))[0]).encode()  # a single event, not a list
    answer = deliver(client, body, outbound_sign(HOOK_SECRET, NOW, body))
    assert answer.status_code == 200 and answer.json()["applied"] == 1  # type: ignore[attr-defined]


def test_bad_signatures_are_401_and_write_nothing(org: Org, client: TestClient) -> None:
    lead_id = attempting_lead(org)
    body = json.dumps(call_event(lead_id)).encode()
    tampered = body.replace(b"connected", b"voicemail")
    before = fingerprint(org.app)
    answers = {
        "missing": deliver(client, body, None),
        "malformed": deliver(client, body, "sha256=abc"),
        "wrong secret": deliver(client, body, sign(body, NOW, "another-secret-0123456789")),
        "tampered body": deliver(client, tampered, sign(body, NOW)),
        "too old": deliver(client, body, sign(body, NOW - 301)),
        "from the future": deliver(client, body, sign(body, NOW + 301)),
        "unknown hook": deliver(client, body, sign(body, NOW), hook="nope"),
    }
    for why, answer in answers.items():
        assert answer.status_code == 401, f"{why}: {answer.status_code} {answer.text}"  # type: ignore[attr-defined]
    assert answers["wrong secret"].json() == answers["unknown hook"].json()  # type: ignore[attr-defined]
    assert fingerprint(org.app) == before


def test_a_rotated_secret_may_be_sent_alongside_the_old_signature(org: Org, client: TestClient) -> None:
    body = json.dumps(call_event(attempting_lead(org))).encode()
    stale = sign(body, NOW, "the-old-secret-0123456789").split(",")[1]
    assert deliver(client, body, f"{sign(body, NOW)},{stale}").status_code == 200  # type: ignore[attr-defined]


def test_a_disabled_hook_or_integration_user_is_refused(org: Org, client: TestClient) -> None:
    body = json.dumps(call_event(attempting_lead(org))).encode()
    hooks.set_hook_active(org.app, name="forms", active=False)
    assert deliver(client, body, sign(body, NOW)).status_code == 401  # type: ignore[attr-defined]
    hooks.set_hook_active(org.app, name="forms", active=True)
    auth.set_user_active(org.app, actor=None, name="zap", active=False)
    assert deliver(client, body, sign(body, NOW)).status_code == 401  # type: ignore[attr-defined]


def test_a_form_from_a_stranger_creates_the_lead_once(org: Org, client: TestClient) -> None:
    form = [{"id": "form-77", "type": "form_submitted", "at": "2026-11-23T14:50:00Z",
             "data": {"email": "new@example.com", "name": "New Person", "source": "web_form"}}]  # fmt: skip
    body = json.dumps(form).encode()
    first = deliver(client, body, sign(body, NOW))
    assert first.json()["leads_created"] == 1  # type: ignore[attr-defined]
    assert deliver(client, body, sign(body, NOW)).json()["duplicates"] == 1  # type: ignore[attr-defined]
    found = client.get("/api/v1/leads", params={"source": "web_form"}, headers=org.headers("olga")).json()["items"]
    assert [lead["email"] for lead in found] == ["new@example.com"]
    assert svc.timeline(org.app, found[0]["id"])["entries"][0]["source"] == "integration"


def test_json_events_report_each_bad_one_by_position_and_apply_the_rest(org: Org, client: TestClient) -> None:
    lead_id = attempting_lead(org)
    events = [
        *call_event(lead_id),
        {"id": "evt-2", "type": "no_such_type", "lead": lead_id, "at": "2026-11-23T14:56:00Z"},
    ]
    answer = client.post("/api/v1/events", json=events, headers=org.headers("zap"))
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["applied"], summary["rejected"]) == (1, 1)
    assert summary["errors"][0]["line"] == 2 and "no_such_type" in summary["errors"][0]["error"]
