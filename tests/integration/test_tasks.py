"""Tasks follow their lead (seed 000: "can't mark a task complete without updating lead status"), on SQLite and
PostgreSQL: a status's task closes when the lead moves on, goes to the new owner, is cancelled when the lead ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadledger.services import inbox, people
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.services.leads import ActivityIn, ChangeSpec
from leadledger.services.sweep import sweep

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the `clock` fixture's instant: Monday 10:00 in New York


@pytest.fixture
def org(team_app: App) -> App:
    people.add_user(team_app, name="sdr", role="manager")
    people.add_team(team_app, name="sdr-east", calendar="default", manager="sdr")
    people.add_user(team_app, name="cleo", role="rep", team="sdr-east")
    people.add_user(team_app, name="dan", role="rep", team="sdr-east")
    return team_app


def new_lead(app: App) -> tuple[str, str]:
    lead = svc.create_lead(app, actor="admin", fields={"name": "Jo", "email": f"jo{T0.timestamp()}@x.io"})
    return lead.lead_id, svc.get_lead(app, lead.lead_id)["owner"]


def change(app: App, actor: str, lead_id: str, **kw: Any) -> None:
    svc.change_lead(app, actor=actor, spec=ChangeSpec(lead_id, **kw))


def tasks_of(app: App, lead_id: str) -> list[dict[str, Any]]:
    return inbox.list_tasks(app, lead_id=lead_id, status=None)


def test_the_first_contact_task_closes_when_the_lead_is_contacted(org):
    lead_id, owner = new_lead(org)
    (task,) = tasks_of(org, lead_id)
    assert (task["rule"], task["status"], task["assignee"]) == ("contact_within_2_hours", "open", owner)
    change(org, owner, lead_id, status="attempting_contact", log=ActivityIn("email_sent"))
    (task,) = tasks_of(org, lead_id)
    assert (task["status"], task["done_by"], task["note"]) == ("done", owner, "closed by the move to attempting_contact")
    assert task["done_at"] == T0


def test_a_task_moves_to_the_new_owner_when_the_lead_is_reassigned(org):
    lead_id, owner = new_lead(org)
    other = next(p for p in ("cleo", "dan") if p != owner)
    change(org, "sdr", lead_id, owner=other)
    (task,) = tasks_of(org, lead_id)
    assert (task["assignee"], task["status"]) == (other, "open")
    assert inbox.list_tasks(org, assignee=owner) == []


def test_a_task_is_cancelled_when_the_lead_ends(org):
    lead_id, owner = new_lead(org)
    change(org, owner, lead_id, status="invalid", reason="bad_email")
    (task,) = tasks_of(org, lead_id)
    assert (task["status"], task["note"]) == ("cancelled", "the lead ended as invalid")


def test_a_status_task_is_done_only_by_the_move_or_with_a_recorded_no_change_reason(org):
    lead_id, owner = new_lead(org)
    (task,) = tasks_of(org, lead_id)
    with pytest.raises(Invalid) as refused:
        inbox.complete_task(org, task_id=task["id"], actor=owner)
    assert "attempting_contact" in str(refused.value) and "--no-change" in str(refused.value)
    assert tasks_of(org, lead_id)[0]["status"] == "open"
    done = inbox.complete_task(org, task_id=task["id"], actor=owner, no_change="lead asked to be called next week")
    assert done["status"] == "done"
    (task,) = tasks_of(org, lead_id)
    assert (task["status"], task["note"]) == ("done", "no change: lead asked to be called next week")


def test_the_qualification_task_stays_open_through_working_and_closes_on_qualified(org):
    lead_id, owner = new_lead(org)
    change(org, owner, lead_id, status="connected", log=ActivityIn("call_logged", data={"outcome": "connected"}))
    change(org, owner, lead_id, stage="sal")
    change(org, owner, lead_id, status="working")
    qualification = [t for t in tasks_of(org, lead_id) if t["rule"] == "complete_qualification"]
    assert [t["status"] for t in qualification] == ["open"]
    change(org, owner, lead_id, status="qualified",
           fields={"budget": "1", "authority": "a", "need": "n", "timeline": "t"})  # fmt: skip
    qualification = [t for t in tasks_of(org, lead_id) if t["rule"] == "complete_qualification"]
    assert [(t["status"], t["note"]) for t in qualification] == [("done", "closed by the move to qualified")]


def test_a_time_rule_task_closes_when_the_lead_leaves_the_status_it_was_about(org):
    lead_id, owner = new_lead(org)
    change(org, owner, lead_id, status="attempting_contact", log=ActivityIn("email_sent"))
    for hour in range(1, 8):
        org.clock.at = T0 + timedelta(hours=hour)  # type: ignore[attr-defined]
        svc.log_activity(org, lead_id=lead_id, actor=owner, activity=ActivityIn("call_logged",
                                                                                 data={"outcome": "no_answer"}))  # fmt: skip
    assert sweep(org).rules["attempts_exhausted"] == 1
    change(org, owner, lead_id, status="nurture", reason="not_ready", fields={"re_evaluate_on": "2027-03-01"})
    (task,) = [t for t in tasks_of(org, lead_id) if t["rule"] == "attempts_exhausted"]
    assert (task["status"], task["note"]) == ("done", "closed by the move to nurture")
