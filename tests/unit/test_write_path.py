"""Change handling and automation on an in-memory session (tests/unit/fakes.py): no database, same services.

These pin what the write path does, step by step, with the default model: what a change records, what it
refuses, and what each on-enter action and event rule produces.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes import MemorySession

from leadledger.domain.automation import EmailAction, NotifyAction, RouteAction, TaskAction, WebhookAction
from leadledger.domain.changes import Actor
from leadledger.model.loader import default_model_text, load_text
from leadledger.services import automation, changes
from leadledger.services.changes import ActivityIn, Applied, ChangeSpec, PendingApproval
from leadledger.services.errors import ChangeRefused
from leadledger.services.unit_of_work import UnitOfWork

NOW = datetime(2026, 11, 3, 15, tzinfo=UTC)  # a Tuesday, inside business hours
MODEL = load_text(default_model_text(), "default_model.yaml").model


@pytest.fixture
def session() -> MemorySession:
    s = MemorySession()
    s.add_team("sdr-east", manager="maria")
    s.add_team("ae", manager="maria")
    for name, role, team in (
        ("admin", "ops", None),
        ("system", "ops", None),
        ("maria", "manager", None),
        ("ana", "rep", "sdr-east"),
        ("ben", "rep", "sdr-east"),
        ("ines", "rep", "ae"),
    ):
        s.add_user(name, role, team, email=f"{name}@example.com",
                   booking_url=f"https://cal.example.com/{name}")  # fmt: skip
    return s


def unit(session: MemorySession, actor: str = "admin", now: datetime = NOW) -> UnitOfWork:
    return UnitOfWork(session, MODEL, now=now, actor=actor)


def run(session: MemorySession, work: Any, actor: str = "admin", now: datetime = NOW) -> Any:
    uow = unit(session, actor, now)
    result = work(uow)
    uow.flush()
    return result


def new_lead(session: MemorySession, lead_id: str = "L1", **fields: Any) -> Applied:
    fields = {"name": "Jo Doe", "email": "jo@example.com", **fields}
    result = run(session, lambda uow: changes.create(uow, lead_id=lead_id, fields=fields, owner=None, stage=None,
                                                      at=NOW - timedelta(hours=3), source="manual",
                                                      idempotency_key=None))  # fmt: skip
    assert isinstance(result, Applied), result
    return result


# --- change handling ------------------------------------------------------------------------------------


def test_creating_a_lead_records_it_routes_it_and_opens_the_first_contact_task(session):
    new_lead(session)
    entries = [(e["seq"], e["to_status"], e["to_owner"], e["rule"]) for e in session.ledger]
    assert entries == [(1, "new", None, None), (2, "assigned", "ana", "new:route")]  # round robin: ana first
    lead = session.leads_["L1"]
    assert (lead["status"], lead["owner"], lead["team"], lead["version"]) == ("assigned", "ana", "sdr-east", 2)
    assert (lead["status_entry_seq"], lead["prev_status"]) == (2, None)  # one instant: New never held alone
    assert [(t["title"], t["assignee"], t["rule"]) for t in session.tasks] == [
        ("Contact Jo Doe within 2 business hours", "ana", "contact_within_2_hours")]  # fmt: skip
    assert {c["sla"] for c in session.clocks if c["status"] == "open"} == {"first_contact"}


def test_a_refused_change_lists_every_violation_and_writes_nothing(session):
    new_lead(session)
    before = (len(session.ledger), session.writes)
    outcome = run(session, lambda uow: changes.apply(uow, ChangeSpec("L1", status="qualified", reason="bogus")))
    assert isinstance(outcome, ChangeRefused)
    assert {"status", "budget", "authority", "need", "timeline", "reason"} <= {v.field for v in outcome.violations}
    assert len(session.ledger) == before[0]


def test_an_idempotency_key_applies_a_change_once(session):
    new_lead(session)
    spec = ChangeSpec("L1", status="disqualified", reason="budget", idempotency_key="k1")
    first = run(session, lambda uow: changes.apply(uow, spec))

    def again(uow: UnitOfWork) -> Any:
        uow.load_keys(["k1"])
        return changes.apply(uow, spec)

    second = run(session, again)
    assert isinstance(first, Applied) and isinstance(second, Applied)
    assert second.duplicate and second.seq == first.seq
    assert [e["to_status"] for e in session.ledger].count("disqualified") == 1


def test_a_high_value_disqualification_waits_for_a_manager(session):
    new_lead(session, estimated_value=80_000)
    outcome = run(session, lambda uow: changes.apply(uow, ChangeSpec("L1", status="disqualified", reason="budget"),
                                                      actor=Actor("ana", "rep")), actor="ana")  # fmt: skip
    assert isinstance(outcome, PendingApproval) and outcome.rule == "high_value_disqualify"
    assert session.leads_["L1"]["status"] == "assigned"  # nothing moved
    assert session.ledger[-1]["kind"] == "approval_request"
    assert [n["recipient"] for n in session.notifications if n["kind"] == "approval"] == ["maria"]


def test_a_batch_reads_the_stint_values_approvals_judge_in_one_set_query_and_still_catches_a_lowered_value(session):
    for n in range(5):
        new_lead(session, f"L{n}", email=f"jo{n}@example.com", estimated_value=80_000 if n == 3 else 10)
    # L3 lowers its value first (as a dodge would), in an earlier unit of work: its stint still held 80,000
    run(session, lambda uow: changes.apply(uow, ChangeSpec("L3", fields={"estimated_value": "10"})))
    session.calls.clear()

    def disqualify_all(uow: UnitOfWork) -> list[Any]:
        uow.load([f"L{n}" for n in range(5)])
        return [changes.apply(uow, ChangeSpec(f"L{n}", status="disqualified", reason="budget"),
                              actor=Actor(session.leads_[f"L{n}"]["owner"], "rep")) for n in range(5)]  # fmt: skip

    outcomes = run(session, disqualify_all, actor="ana")
    assert session.calls["entry_data"] == 1  # not one read per lead
    assert [type(o).__name__ for o in outcomes] == ["Applied"] * 3 + ["PendingApproval", "Applied"]


def test_two_changes_in_one_unit_of_work_are_judged_in_order_and_written_once(session):
    new_lead(session)

    def work(uow: UnitOfWork) -> list[Any]:
        return [changes.apply(uow, ChangeSpec("L1", owner="ben")),
                changes.apply(uow, ChangeSpec("L1", status="disqualified", reason="budget"))]  # fmt: skip

    writes = session.writes
    outcomes = run(session, work)
    assert [type(o).__name__ for o in outcomes] == ["Applied", "Applied"]
    assert session.writes == writes + 1
    lead = session.leads_["L1"]
    assert (lead["owner"], lead["team"], lead["status"], lead["version"]) == ("ben", "sdr-east", "disqualified", 4)


def test_a_lead_changed_by_another_writer_since_it_was_read_fails_the_whole_write(session):
    new_lead(session)
    uow = unit(session)
    changes.apply(uow, ChangeSpec("L1", owner="ben"))
    run(session, lambda other: changes.apply(other, ChangeSpec("L1", status="disqualified", reason="budget")))
    from leadledger.store.ports import VersionConflict

    with pytest.raises(VersionConflict):
        uow.flush()


# --- automation: event rules and the action table --------------------------------------------------------


def test_every_kind_of_on_enter_action_has_a_handler():
    assert set(automation.ACTION_HANDLERS) == {RouteAction, TaskAction, NotifyAction, WebhookAction, EmailAction}
    kinds = {type(a.spec) for actions in MODEL.automation.on_enter.values() for a in actions}
    assert kinds <= set(automation.ACTION_HANDLERS)


def test_a_positive_reply_connects_the_lead_and_runs_connected_s_actions(session):
    new_lead(session)

    def work(uow: UnitOfWork) -> list[Any]:
        uow.load(["L1"])
        at = NOW - timedelta(hours=1)
        assert changes.log_event(uow, "L1", ActivityIn("email_replied", at, {"classification": "positive"}, "e1"), at,
                                 None, "integration")  # fmt: skip
        event = {"type": "email_replied", "id": "e1", "at": at.isoformat(), "classification": "positive"}
        return automation.run_event_rules(uow, "L1", "email_replied", event, at, "e1")

    outcomes = run(session, work)
    assert [(rule, type(o).__name__) for rule, o in outcomes] == [("email_reply_connects", "Applied")]
    last = session.ledger[-1]
    assert (last["to_status"], last["source"], last["rule"], last["idempotency_key"]) == (
        "connected", "automation", "email_reply_connects", None)  # fmt: skip
    assert last["data"]["trigger_event"] == "e1"  # the event's id (its sender's) made it happen once
    assert [m["topic"] for m in session.outbox] == ["calendar_link"]  # the e-mail to the lead, via the outbox
    assert "Complete qualification of Jo Doe" in [t["title"] for t in session.tasks]
    assert session.activities[-1]["key"] == "e1"


def test_a_rule_the_model_refuses_is_counted_and_kept_not_written(session):
    new_lead(session)

    def work(uow: UnitOfWork) -> UnitOfWork:
        uow.load(["L1"])
        at = NOW - timedelta(hours=1)
        event = {"type": "meeting_held", "id": "e2", "at": at.isoformat()}
        automation.run_event_rules(uow, "L1", "meeting_held", event, at, "e2")  # Assigned: the rule's guard says no
        changes.apply(uow, ChangeSpec("L1", status="working"), actor=Actor("system", "ops"))
        return uow

    uow = run(session, work)
    assert session.leads_["L1"]["status"] == "assigned"
    assert uow.counts["rule_changes"] == 0


def test_disqualifying_queues_the_webhooks_of_registered_endpoints_only(session):
    session.endpoints = {"sales_engagement"}
    new_lead(session)
    run(session, lambda uow: changes.apply(uow, ChangeSpec("L1", status="disqualified", reason="budget")))
    assert [(m["kind"], m["target"], m["topic"]) for m in session.outbox] == [
        ("webhook", "sales_engagement", "sequence.remove")]  # fmt: skip
    payload = session.outbox[0]["payload"]
    assert payload["lead"]["status"] == "disqualified" and payload["change"]["to_status"] == "disqualified"


def test_routing_a_recycled_lead_excludes_the_reps_who_worked_it(session):
    new_lead(session)  # routed to ana
    run(session, lambda uow: changes.apply(uow, ChangeSpec("L1", status="nurture", stage="mql", reason="bad_timing",
                                                            fields={"re_evaluate_on": "2027-01-10"})))  # fmt: skip
    run(session, lambda uow: changes.apply(uow, ChangeSpec("L1", status="recycled", reason="timing_window",
                                                            fields={"recycle_trigger": "x"})))  # fmt: skip
    assert session.leads_["L1"]["owner"] == "ben"
