"""Preview before commit: the engine's dry run says what a change would do, writes nothing, and agrees with what
applying the change then does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, ChangeSpec
from leadledger.services.leads import change_lead, create_lead, get_lead
from leadledger.services.preview import preview_change, requirements
from leadledger.store.tables import approvals, ledger, notifications, outbox, routing_state, sla_clocks, tasks

BANT = {"budget": "50k", "authority": "CFO", "need": "visibility", "timeline": "Q1"}


@pytest.fixture
def org(team_app: App) -> App:
    people.add_team(team_app, name="ae", calendar="default", manager="maria")
    people.add_user(team_app, name="ines", role="rep", team="ae")
    return team_app


def counts(app: App) -> dict[str, Any]:
    with app.db.read() as conn:
        found = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in
                 (ledger, approvals, tasks, notifications, outbox, sla_clocks)}  # fmt: skip
        found["routing"] = sorted(tuple(r) for r in conn.execute(select(routing_state)))
    return found


def working_lead(app: App, **fields: Any) -> str:
    lead_id = create_lead(app, actor="ana", fields={"name": "Jo", "email": "jo@example.com", **fields},
                          owner="ana").lead_id  # fmt: skip
    for status, outcome in (("attempting_contact", "no_answer"), ("connected", "connected")):
        change_lead(app, actor="ana", spec=ChangeSpec(lead_id, status=status,
                    log=ActivityIn("call_logged", data={"outcome": outcome})))  # fmt: skip
    change_lead(app, actor="ana", spec=ChangeSpec(lead_id, status="working"))
    return lead_id


def test_a_preview_shows_routing_tasks_and_clocks_writes_nothing_and_matches_the_real_change(org: App) -> None:
    lead_id = working_lead(org)
    before = counts(org)
    spec = ChangeSpec(lead_id, status="qualified", fields=BANT)
    seen = preview_change(org, actor="ana", spec=spec)
    assert counts(org) == before  # nothing committed: not the ledger, not the routing state, not a clock
    assert seen.outcome == "applies"
    assert (seen.status_before, seen.status_after) == ("working", "qualified")
    assert (seen.stage_before, seen.stage_after) == ("sal", "sql")
    assert (seen.owner_before, seen.owner_after) == ("ana", "ines")  # route_to_ae: the AE pool's only member
    assert any(e["rule"] == "route_to_ae" and e["to_owner"] == "ines" for e in seen.entries)
    assert [n["recipient"] for n in seen.notifications] == ["maria"]  # notify_sales_manager
    assert {c["sla"]: c["outcome"] for c in seen.clocks_stopped} == {
        "qualification_done": "met",
        "working_activity": "met",
    }

    change_lead(org, actor="ana", spec=spec)
    lead = get_lead(org, lead_id)
    assert (lead["status"], lead["stage"], lead["owner"]) == (seen.status_after, seen.stage_after, seen.owner_after)
    after = counts(org)
    assert after["ledger"] - before["ledger"] == len(seen.entries)
    assert after["notifications"] - before["notifications"] == len(seen.notifications)


def test_a_preview_of_a_change_that_needs_approval_names_the_rule_and_what_approval_would_do(org: App) -> None:
    lead_id = working_lead(org, estimated_value=75000)
    before = counts(org)
    seen = preview_change(org, actor="ana", spec=ChangeSpec(lead_id, status="disqualified", reason="competitor"))
    assert counts(org) == before  # not even the approval request was kept
    assert seen.outcome == "needs_approval"
    assert seen.approval_rule == "high_value_disqualify"
    assert set(seen.approvers) == {"manager", "ops"}
    assert seen.approver_people == ("maria",)  # the owner's team manager is the one asked
    assert seen.after_approval is not None and seen.after_approval.outcome == "applies"
    assert seen.after_approval.status_after == "disqualified"


def test_a_preview_of_a_refused_change_lists_every_violation(org: App) -> None:
    lead_id = working_lead(org)
    seen = preview_change(org, actor="ana", spec=ChangeSpec(lead_id, status="qualified", fields={"budget": "1k"}))
    assert seen.outcome == "refused"
    assert {v.field for v in seen.violations} == {"authority", "need", "timeline"}
    theirs = preview_change(org, actor="ben", spec=ChangeSpec(lead_id, status="nurture"))
    assert theirs.outcome == "refused" and any(v.code == "not_owner" for v in theirs.violations)


def test_requirements_list_exactly_what_a_status_asks_for(org: App) -> None:
    model = org.model
    nurture = requirements(model, "nurture")
    assert nurture.reason_required and "bad_timing" in dict(nurture.reasons)
    assert [(f.name, f.required) for f in nurture.fields] == [("re_evaluate_on", True), ("last_interaction_at", False)]
    connected = requirements(model, "connected")
    assert "call_logged:outcome=connected" in {o.token for o in connected.activity}
    assert connected.activity_within_days == 30
    working = requirements(model, "working")
    assert not working.reason_required and not working.activity and all(not f.required for f in working.fields)
