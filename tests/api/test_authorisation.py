"""The authorisation matrix: every role against every write endpoint, allowed and denied, on SQLite and PostgreSQL.

Columns: olga (ops), maria (manager), ana (rep who owns the lead), ben (rep who does not), zap (integration).
An allowed call answers 2xx; a denied one answers 403 (404 where existence is not confirmed) and writes
nothing: a fingerprint of every table a write could touch is the same before and after.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from apikit import Org, fingerprint
from fastapi.testclient import TestClient

from leadledger.model.loader import default_model_text, load_default
from leadledger.services import approvals, auth, inbox, people
from leadledger.services import leads as svc
from leadledger.services.leads import ActivityIn, ApprovalPending, ChangeSpec

ACTORS = ("olga", "maria", "ana", "ben", "zap")

_SERIAL = itertools.count(1)  # one person, one lead: each lead its own mailbox


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None


@dataclass(frozen=True)
class Case:
    name: str
    allowed: frozenset[str]
    prepare: Callable[[Org, str], Call]  # fresh state for one actor's attempt


_mailboxes = itertools.count()


def lead_of(org: Org, owner: str | None = "ana", **fields: Any) -> str:
    values = {"name": "Jo Doe", "email": f"jo{next(_mailboxes)}@example.com", **fields}  # one person, one lead
    return svc.create_lead(org.app, actor="admin", fields=values, owner=owner).lead_id


def attempting(org: Org, **fields: Any) -> str:
    lead_id = lead_of(org, **fields)
    svc.change_lead(
        org.app, actor="admin", spec=ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent"))
    )
    return lead_id


def disqualified(org: Org) -> str:
    lead_id = attempting(org)
    svc.change_lead(org.app, actor="admin", spec=ChangeSpec(lead_id, status="disqualified", reason="budget"))
    return lead_id


def pending_approval(org: Org) -> int:
    lead_id = attempting(org, estimated_value=60000)
    with pytest.raises(ApprovalPending) as waiting:
        svc.change_lead(org.app, actor="ana", spec=ChangeSpec(lead_id, status="disqualified", reason="budget"))
    return waiting.value.pending.approval_id


def task_of_ana(org: Org) -> int:
    lead_id = lead_of(org)  # Assigned to ana: the model gives her a contact task
    return int(inbox.list_tasks(org.app, assignee="ana", lead_id=lead_id)[0]["id"])


def ana_token(org: Org) -> int:
    return int(auth.issue_token(org.app, user="ana", name="spare")["id"])


def anas_password(org: Org) -> str:
    auth.set_password(org.app, name="ana", password="ana's password today")
    return "ana's password today"


def fresh_user(org: Org, actor: str, active: bool = True) -> str:
    name = f"temp-{actor}"
    people.add_user(org.app, name=name, role="rep")
    if not active:
        people.set_user_active(org.app, name=name, active=False)
    return name


def event(lead_id: str) -> list[dict[str, Any]]:
    return [{"id": f"call-{lead_id}", "type": "call_logged", "lead": lead_id, "at": "2026-11-23T14:00:00Z",
             "data": {"outcome": "no_answer"}}]  # fmt: skip


EVENT_DATA = {"call_logged": {"outcome": "voicemail"}, "email_replied": {"classification": "neutral"},
              "form_submitted": {"email": "jo@example.com"}}  # fmt: skip


def typed_event(kind: str, lead_id: str) -> list[dict[str, Any]]:
    return [{"id": f"{kind}-{lead_id}", "type": kind, "lead": lead_id, "at": "2026-11-23T14:00:00Z",
             "data": EVENT_DATA.get(kind, {})}]  # fmt: skip


LEAD_WRITERS = frozenset({"olga", "maria", "ana", "zap"})  # ben is a rep who does not own the lead
PEOPLE_WHO_MAY = frozenset({"olga", "maria", "ana"})  # ...and no integration: owners and sales judgments
# who may send each event type (the default model's `event_types`), on a lead ana owns
SENDERS = {kind: LEAD_WRITERS if "rep" in event_type.roles else frozenset({"olga", "zap"})
           for kind, event_type in load_default().model.automation.event_types.items()}  # fmt: skip
CASES = [
    Case("create a lead owned by ana", PEOPLE_WHO_MAY,  # an integration creates leads; routing gives the owner
         lambda org, _: Call("POST", "/api/v1/leads", {"name": "Kim", "email": f"kim{next(_SERIAL)}@example.com", "owner": "ana"})),
    Case("create a lead without an owner", frozenset(ACTORS),
         lambda org, _: Call("POST", "/api/v1/leads", {"name": "Kim", "email": f"kim{next(_SERIAL)}@example.com"})),
    Case("update contact fields", LEAD_WRITERS,
         lambda org, _: Call("PATCH", f"/api/v1/leads/{lead_of(org)}", {"company": "Acme 2"})),
    Case("status change automation may make", LEAD_WRITERS,
         lambda org, _: Call("POST", f"/api/v1/leads/{lead_of(org)}/status",
                             {"status": "attempting_contact", "log": {"type": "email_sent"}})),
    Case("status change that needs human judgment", frozenset({"olga", "maria", "ana"}),
         lambda org, _: Call("POST", f"/api/v1/leads/{attempting(org)}/status",
                             {"status": "disqualified", "reason": "budget"})),
    Case("status change restricted to managers (recycle)", frozenset({"olga", "maria", "zap"}),
         lambda org, _: Call("POST", f"/api/v1/leads/{disqualified(org)}/status",
                             {"status": "recycled", "reason": "timing_window"})),
    Case("stage change", LEAD_WRITERS,
         lambda org, _: Call("POST", f"/api/v1/leads/{lead_of(org)}/stage", {"stage": "mql"})),
    Case("stage change to SQL (a sales judgment)", PEOPLE_WHO_MAY,
         lambda org, _: Call("POST", f"/api/v1/leads/{attempting(org)}/stage", {"stage": "sql"})),
    Case("give ana's lead to ben", frozenset({"olga", "maria"}),
         lambda org, _: Call("POST", f"/api/v1/leads/{lead_of(org)}/owner", {"owner": "ben"})),
    Case("log an activity", LEAD_WRITERS,
         lambda org, _: Call("POST", f"/api/v1/leads/{lead_of(org)}/activities",
                             {"type": "call_logged", "data": {"outcome": "voicemail"}})),
    Case("post events", LEAD_WRITERS, lambda org, _: Call("POST", "/api/v1/events", event(lead_of(org)))),
    *[Case(f"post a {kind} event", SENDERS[kind],
           lambda org, _, kind=kind: Call("POST", "/api/v1/events", typed_event(kind, attempting(org))))
      for kind in sorted(SENDERS)],
    Case("bulk change", LEAD_WRITERS,
         lambda org, _: Call("POST", "/api/v1/bulk-changes", {"leads": [lead_of(org)], "stage": "mql"})),
    Case("approve a pending change", frozenset({"olga", "maria"}),
         lambda org, _: Call("POST", f"/api/v1/approvals/{pending_approval(org)}/approve", {"note": "ok"})),
    Case("deny a pending change", frozenset({"olga", "maria"}),
         lambda org, _: Call("POST", f"/api/v1/approvals/{pending_approval(org)}/deny")),
    Case("complete ana's task", frozenset({"olga", "maria", "ana"}),
         lambda org, _: Call("POST", f"/api/v1/tasks/{task_of_ana(org)}/done",
                                    {"no_change": "called, asked to wait"})),
    Case("mark own notifications read", frozenset(ACTORS), lambda org, _: Call("POST", "/api/v1/inbox/read", {})),
    Case("replace the status model", frozenset({"olga"}),
         lambda org, _: Call("PUT", "/api/v1/model", {"yaml": default_model_text()})),
    Case("lint a model file", frozenset({"olga"}),
         lambda org, _: Call("POST", "/api/v1/model/lint", {"yaml": default_model_text()})),
    Case("create a token for yourself", frozenset({"olga", "maria", "ana", "ben"}),
         lambda org, _: Call("POST", "/api/v1/tokens", {"name": "laptop"})),
    Case("create a token for an integration", frozenset({"olga"}),
         lambda org, _: Call("POST", "/api/v1/tokens", {"name": "crm", "user": "zap"})),
    Case("revoke ana's token", frozenset({"olga", "ana"}),
         lambda org, _: Call("DELETE", f"/api/v1/tokens/{ana_token(org)}")),
    Case("add a user", frozenset({"olga"}),
         lambda org, actor: Call("POST", "/api/v1/users", {"name": f"new-{actor}", "role": "rep"})),
    Case("disable a user", frozenset({"olga"}),
         lambda org, actor: Call("POST", f"/api/v1/users/{fresh_user(org, actor)}/disable")),
    Case("enable a user", frozenset({"olga"}),
         lambda org, actor: Call("POST", f"/api/v1/users/{fresh_user(org, actor, active=False)}/enable")),
    Case("set ana's password", frozenset({"olga", "ana"}),  # ana gives her current one; ops resets without it
         lambda org, actor: Call("PUT", "/api/v1/users/ana/password", {"password": f"a new password for {actor}",
                                                                       "current_password": anas_password(org)})),
]  # fmt: skip


def _applied(call: Call, answer: Any) -> bool:
    """A bulk change answers 200 either way: each lead's outcome says whether it applied."""
    if call.path.endswith("/bulk-changes"):
        return bool(answer.json()["applied"] == 1)
    return True


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_authorisation_matrix(case: Case, org: Org, client: TestClient) -> None:
    wrong: list[str] = []
    for actor in ACTORS:
        call = case.prepare(org, actor)
        before = fingerprint(org.app)
        answer = client.request(
            call.method,
            call.path,
            content=json.dumps(call.body).encode() if call.body is not None else None,
            headers={**org.headers(actor), **({"Content-Type": "application/json"} if call.body is not None else {})},
        )
        after = fingerprint(org.app)
        if actor in case.allowed:
            if not (200 <= answer.status_code < 300 and _applied(call, answer)):
                wrong.append(f"{actor}: expected allowed, got {answer.status_code} {answer.text[:300]}")
        else:
            denied = answer.status_code in (403, 404) or (answer.status_code == 200 and not _applied(call, answer))
            if not denied:
                wrong.append(f"{actor}: expected denied, got {answer.status_code} {answer.text[:300]}")
            elif before != after:
                changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
                wrong.append(f"{actor}: denied but something was written: {changed}")
            elif answer.status_code == 403 and not answer.json()["detail"]:
                wrong.append(f"{actor}: a denial must say why")
    assert not wrong, f"{case.name}:\n" + "\n".join(wrong)


def test_every_write_records_the_authenticated_actor(org: Org, client: TestClient) -> None:
    lead_id = client.post(
        "/api/v1/leads", json={"name": "Kim", "email": "k@example.com"}, headers=org.headers("maria")
    ).json()["id"]
    client.post(f"/api/v1/leads/{lead_id}/owner", json={"owner": "ana"}, headers=org.headers("maria"))
    client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "attempting_contact", "log": {"type": "email_sent"}},
                headers=org.headers("ana"))  # fmt: skip
    client.post(f"/api/v1/leads/{lead_id}/stage", json={"stage": "mql"}, headers=org.headers("zap"))
    entries = svc.timeline(org.app, lead_id)["entries"]
    people_entries = [(e["actor"], e["actor_role"], e["source"]) for e in entries if e["actor"] != "system"]
    assert people_entries == [
        ("maria", "manager", "manual"),
        ("maria", "manager", "manual"),
        ("ana", "rep", "manual"),
        ("zap", "integration", "integration"),  # an integration's change is recorded as one
    ]


def test_a_disabled_users_tokens_stop_working(org: Org, client: TestClient) -> None:
    assert client.get("/api/v1/me", headers=org.headers("ben")).status_code == 200
    answer = client.post("/api/v1/users/ben/disable", headers=org.headers("olga"))
    assert answer.status_code == 200 and answer.json()["active"] is False
    refused = client.get("/api/v1/me", headers=org.headers("ben"))
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_token_stops_working_at_once(org: Org, client: TestClient) -> None:
    issued = client.post("/api/v1/tokens", json={"name": "laptop"}, headers=org.headers("ana")).json()
    mine = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get("/api/v1/me", headers=mine).json() == {"name": "ana", "role": "rep"}
    listed = client.get("/api/v1/tokens", headers=org.headers("ana")).json()
    assert {t["name"] for t in listed} == {"test", "laptop"} and all("token" not in t for t in listed)
    assert client.delete(f"/api/v1/tokens/{issued['id']}", headers=mine).status_code == 200
    assert client.get("/api/v1/me", headers=mine).status_code == 401


def test_password_login_gives_an_expiring_token_and_refuses_integrations(org: Org, client: TestClient) -> None:
    auth.set_password(org.app, name="maria", password="a long enough password")
    answer = client.post("/api/v1/auth/token", json={"username": "maria", "password": "a long enough password"})
    assert answer.status_code == 201, answer.text
    issued = answer.json()
    assert issued["kind"] == "login" and issued["expires_at"] is not None and issued["token_type"] == "bearer"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued['token']}"}).json()["role"] == "manager"
    wrong = client.post("/api/v1/auth/token", json={"username": "maria", "password": "not the password"})
    unknown = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]  # the answer does not reveal which users exist
    with pytest.raises(Exception, match="integration"):
        auth.set_password(org.app, name="zap", password="integrations have none")


def test_repeated_wrong_passwords_are_throttled(org: Org, client: TestClient) -> None:
    auth.set_password(org.app, name="ben", password="the right password")
    codes = [client.post("/api/v1/auth/token", json={"username": "ben", "password": f"guess {n}"}).status_code
             for n in range(auth.FREE_FAILURES_PER_CLIENT + 1)]  # fmt: skip
    assert codes[:-1] == [401] * auth.FREE_FAILURES_PER_CLIENT
    assert codes[-1] == 429
    held = client.post("/api/v1/auth/token", json={"username": "ben", "password": "the right password"})
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0  # a short wait, not a lock-out


def test_every_route_that_checks_a_password_is_throttled_and_declares_429(org: Org, client: TestClient,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A token made with the password again, and your own password change, check the password like a login:
    the same throttle answers 429, and /openapi.json says so (schemathesis found the undeclared 429)."""
    monkeypatch.setattr(auth, "FREE_FAILURES_PER_CLIENT", 1)  # one wrong password, then the wait
    declared = client.get("/openapi.json").json()["paths"]
    for user, method, path, body in (
        ("ben", "POST", "/api/v1/tokens", {"name": "again", "password": "guess"}),
        ("ana", "PUT", "/api/v1/users/ana/password", {"password": "a new long password", "current_password": "guess"}),
    ):
        auth.set_password(org.app, name=user, password="the right password")
        codes = [client.request(method, path, json=body, headers=org.headers(user)).status_code for _ in range(2)]
        assert codes[0] != 429 and codes[1] == 429, (path, codes)
        assert "429" in declared[path.replace(user, "{name}")][method.lower()]["responses"], path


def test_approval_through_the_api_applies_the_change_as_the_requester(org: Org, client: TestClient) -> None:
    approval_id = pending_approval(org)
    listed = client.get("/api/v1/approvals", headers=org.headers("maria")).json()
    assert [a["id"] for a in listed] == [approval_id]
    decided = client.post(
        f"/api/v1/approvals/{approval_id}/approve", json={"note": "agreed"}, headers=org.headers("maria")
    )
    assert decided.status_code == 200 and decided.json()["decision"] == "approved"
    lead_id = decided.json()["lead"]
    last = svc.timeline(org.app, lead_id)["entries"][-1]
    assert (last["to_status"], last["actor"], last["data"]["approved_by"]) == ("disqualified", "ana", "maria")
    assert approvals.list_approvals(org.app) == []
