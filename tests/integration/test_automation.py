"""Event-driven automation with the default model: every example of seed 000's auto-status logic, workflow
triggers and routing, on SQLite and PostgreSQL; replays change nothing; approvals and overrides end to end."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from leadledger.services import approvals as approval_service
from leadledger.services import inbox, outbox, people
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.errors import ChangeRefused
from leadledger.services.events import apply_events
from leadledger.services.leads import ActivityIn, ApprovalPending, ChangeSpec
from leadledger.store.tables import activities, ledger
from leadledger.store.tables import outbox as outbox_table

T0 = datetime.fromisoformat("2026-11-23T15:00:00+00:00")  # Monday 10:00 in New York
BANT = {"budget": "50k", "authority": "CFO", "need": "visibility", "timeline": "Q1"}


@pytest.fixture
def org(app: App) -> App:
    """The default model's pools: SDRs east and EMEA, AEs, a marketing owner; webhook endpoints configured."""
    people.add_user(app, name="maria", role="manager", email="maria@example.com")
    people.add_user(app, name="marketing", role="manager")
    people.add_team(app, name="sdr-east", calendar="default", manager="maria")
    people.add_team(app, name="sdr-emea", calendar="emea", manager="maria")
    people.add_team(app, name="ae", calendar="default", manager="maria")
    for name in ("ana", "ben", "carla"):
        people.add_user(app, name=name, role="rep", team="sdr-east")
    people.add_user(app, name="elif", role="rep", team="sdr-emea")
    for name in ("ines", "jamal"):
        people.add_user(app, name=name, role="rep", team="ae")
    for name in ("crm", "marketing", "sales_engagement"):
        outbox.add_endpoint(
            app, name=name, url=f"http://127.0.0.1:9/{name}", secret="s3cret-s3cret-s3cret", actor="admin"
        )
    return app


def new_lead(app: App, **fields: Any) -> str:
    values = {"name": "Jo Doe", "email": f"jo{datetime.now().timestamp()}@example.com", **fields}
    return svc.create_lead(app, actor="admin", fields=values).lead_id


def entries(app: App, lead_id: str) -> list[Any]:
    with app.db.read() as conn:
        return list(conn.execute(select(ledger).where(ledger.c.lead_id == lead_id).order_by(ledger.c.seq)))


def queued(app: App, topic: str | None = None) -> list[Any]:
    with app.db.read() as conn:
        query = select(outbox_table).order_by(outbox_table.c.id)
        if topic:
            query = query.where(outbox_table.c.topic == topic)
        return list(conn.execute(query))


def event(kind: str, lead: str | None, minutes: int, key: str | None = None, **data: Any) -> str:
    payload: dict[str, Any] = {
        "id": key or f"{kind}-{lead}-{minutes}",
        "type": kind,
        "at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "data": data,
    }
    if lead is not None:
        payload["lead"] = lead
    return json.dumps(payload)


def feed(app: App, lines: list[str]):
    """Apply events as they arrive: the clock first moves to just after the newest event in the batch."""
    times = [datetime.fromisoformat(json.loads(line)["at"]) for line in lines if line.startswith('{"id')]
    clock = app.clock
    if times and max(times) + timedelta(seconds=1) > clock.now():
        clock.at = max(times) + timedelta(seconds=1)  # type: ignore[attr-defined]
    return apply_events(app, lines, actor="admin")


def status_of(app: App, lead_id: str) -> str:
    return str(svc.get_lead(app, lead_id)["status"])


# --- seed 000 "Auto-status update logic" and "Workflow triggers by status" ---------------------------------


def test_a_new_lead_is_routed_and_its_owner_gets_a_contact_task_due_in_two_business_hours(org, clock):
    lead_id = new_lead(org)
    rows = entries(org, lead_id)
    assert [(r.to_status, r.to_owner, r.rule) for r in rows] == [("new", None, None), ("assigned", "ana", "new:route")]
    (task,) = inbox.list_tasks(org, lead_id=lead_id)
    assert task["assignee"] == "ana" and task["rule"] == "contact_within_2_hours"
    assert task["due_at"] == T0 + timedelta(hours=2)  # Monday 10:00 -> 12:00 New York, inside business hours


def test_the_contact_task_waits_for_business_hours(org, clock):
    clock.at = datetime.fromisoformat("2026-11-27T21:30:00+00:00")  # Friday 16:30 New York
    lead_id = new_lead(org)
    (task,) = inbox.list_tasks(org, lead_id=lead_id)
    assert task["due_at"] == datetime.fromisoformat("2026-11-30T15:30:00+00:00")  # Monday 10:30 New York


def test_first_email_sent_moves_to_attempting_contact_with_a_follow_up(org):
    lead_id = new_lead(org)
    summary = feed(org, [event("email_sent", lead_id, 5)])
    assert summary.applied == 1 and status_of(org, lead_id) == "attempting_contact"
    last = entries(org, lead_id)[-1]
    assert (last.source, last.rule, last.actor) == ("automation", "first_email_sent", "system")
    assert last.data["next_follow_up_at"] == (T0 + timedelta(minutes=5, days=2)).isoformat()


def test_a_reply_connects_and_sends_the_calendar_link(org):
    people.update_user(org, name="ana", booking_url="https://cal.example.com/ana")
    lead_id = new_lead(org, name="Kim")
    feed(org, [event("email_sent", lead_id, 1), event("email_replied", lead_id, 30, classification="positive")])
    assert status_of(org, lead_id) == "connected"
    (mail,) = queued(org, "calendar_link")
    assert mail.kind == "email" and mail.payload["to"] == svc.get_lead(org, lead_id)["email"]
    assert "Hi Kim" in mail.payload["body"] and "ana" in mail.payload["subject"]
    assert "walk\nyou through it: https://cal.example.com/ana" in mail.payload["body"]
    assert mail.payload["body"].rstrip().endswith("\nana")  # ana has no e-mail: her name alone, never "ana ()"
    assert any(t["rule"] == "complete_qualification" for t in inbox.list_tasks(org, lead_id=lead_id))


def test_the_calendar_link_e_mail_waits_for_a_link_and_the_owner_is_told(org):
    lead_id = new_lead(org, name="Lee")
    feed(org, [event("email_sent", lead_id, 1), event("email_replied", lead_id, 30, classification="positive")])
    assert status_of(org, lead_id) == "connected" and queued(org, "calendar_link") == []
    (told,) = [n for n in inbox.list_notifications(org, recipient="ana") if n["rule"] == "calendar_link_email"]
    assert "has no booking link" in told["message"] and "user set ana --booking-url" in told["message"]
    # a team link serves its reps who have none of their own; and an address makes the signature
    with org.db.write() as conn:
        conn.exec_driver_sql("UPDATE teams SET booking_url = 'https://cal.example.com/east' WHERE name = 'sdr-east'")
    people.update_user(org, name="ben", email="ben@example.com")
    other = new_lead(org, name="Max")
    owner = svc.get_lead(org, other)["owner"]
    assert owner == "ben"
    feed(org, [event("email_sent", other, 40), event("email_replied", other, 50, classification="positive")])
    (mail,) = queued(org, "calendar_link")
    assert "https://cal.example.com/east" in mail.payload["body"] and "ben (ben@example.com)" in mail.payload["body"]


def test_an_unsubscribe_reply_does_not_connect_and_suppresses_email(org):
    lead_id = new_lead(org)
    feed(org, [event("email_sent", lead_id, 1), event("email_replied", lead_id, 30, classification="unsubscribe")])
    lead = svc.get_lead(org, lead_id)
    assert lead["status"] == "attempting_contact" and lead["fields"]["unsubscribed"] is True
    feed(org, [event("call_logged", lead_id, 60, outcome="connected")])
    assert status_of(org, lead_id) == "connected"
    assert queued(org, "calendar_link") == []  # suppressed: they asked not to be e-mailed


@pytest.mark.parametrize("classification", ["bounce", "out_of_office"])
def test_bounces_and_out_of_office_replies_are_not_connections(org, classification):
    lead_id = new_lead(org)
    feed(org, [event("email_sent", lead_id, 1), event("email_replied", lead_id, 9, classification=classification)])
    assert status_of(org, lead_id) == "attempting_contact"


def test_meeting_held_moves_to_working(org):
    lead_id = new_lead(org)
    feed(org, [event("call_logged", lead_id, 1, outcome="connected"), event("meeting_held", lead_id, 90)])
    assert [r.rule for r in entries(org, lead_id)][-2:] == ["call_connects", "meeting_held_working"]
    assert status_of(org, lead_id) == "working"


def _qualified(app: App) -> str:
    lead_id = new_lead(app)
    feed(app, [event("call_logged", lead_id, 1, outcome="connected")])
    svc.change_lead(app, actor="ana", spec=ChangeSpec(lead_id, stage="sal"))
    svc.change_lead(app, actor="ana", spec=ChangeSpec(lead_id, status="qualified", fields=BANT))
    return lead_id


def test_qualified_notifies_the_manager_routes_to_an_ae_and_drafts_the_opportunity(org):
    lead_id = _qualified(org)
    lead = svc.get_lead(org, lead_id)
    assert lead["owner"] in ("ines", "jamal")
    assert entries(org, lead_id)[-1].rule == "route_to_ae"
    notes = inbox.list_notifications(org, recipient="maria")
    assert any(lead_id in (n["lead_id"] or "") and "Qualified" in n["message"] for n in notes)
    (draft,) = queued(org, "opportunity.draft")
    assert draft.target == "crm" and draft.payload["lead"]["id"] == lead_id


def test_opportunity_created_converts_with_the_opportunity_data(org):
    lead_id = _qualified(org)
    data = {"opportunity_id": "OPP-7", "amount": 25000, "close_date": "2027-01-31"}
    summary = feed(org, [event("opportunity_created", lead_id, 600, **data)])
    assert summary.refused == [] and status_of(org, lead_id) == "converted"
    lead = svc.get_lead(org, lead_id)
    assert (lead["stage"], lead["fields"]["opportunity_id"], lead["fields"]["deal_value"]) == (
        "opportunity",
        "OPP-7",
        25000,
    )
    assert len(queued(org, "nurture.stop")) == 1


def test_a_rule_the_model_refuses_is_reported_and_the_event_is_still_logged(org):
    lead_id = _qualified(org)
    summary = feed(org, [event("opportunity_created", lead_id, 600, opportunity_id="OPP-8")])
    assert summary.applied == 1 and status_of(org, lead_id) == "qualified"
    (refusal,) = summary.refused
    assert refusal["rule"] == "opportunity_created" and refusal["line"] == 1
    assert {v["field"] for v in refusal["violations"]} == {"deal_value", "expected_close_date"}


def test_opportunity_created_on_a_working_lead_says_what_is_missing(org):
    # decided with the model: Working -> Qualified is a person's decision (not automatic), so the event does
    # not qualify the lead itself; the refusal names the status between and the data it still needs
    lead_id = new_lead(org)
    feed(org, [event("call_logged", lead_id, 1, outcome="connected"), event("meeting_held", lead_id, 2)])
    assert status_of(org, lead_id) == "working"
    data = {"opportunity_id": "OPP-9", "amount": 25000, "close_date": "2027-01-31"}
    summary = feed(org, [event("opportunity_created", lead_id, 600, **data)])
    (refusal,) = summary.refused
    (violation,) = refusal["violations"]
    assert violation["code"] == "transition_not_allowed"
    assert "Converted is reached through qualified (missing for Qualified: budget, authority, need, timeline)" in (
        violation["message"]
    )
    assert "a person's decision, not automation's" in violation["message"]
    assert status_of(org, lead_id) == "working"


def test_a_webhook_to_an_endpoint_nobody_registered_is_counted_as_skipped(org):
    lead_id = _qualified(org)
    with org.db.write() as conn:
        conn.exec_driver_sql("DELETE FROM endpoints WHERE name = 'marketing'")
    data = {"opportunity_id": "OPP-7", "amount": 25000, "close_date": "2027-01-31"}
    summary = feed(org, [event("opportunity_created", lead_id, 600, **data)]).as_dict()
    assert status_of(org, lead_id) == "converted" and queued(org, "nurture.stop") == []
    assert (summary["webhooks"], summary["webhooks_skipped"]) == (0, 1)  # Converted's stop_nurture: not dropped silently


def test_disqualified_leaves_sequences_and_enters_nurture_only_when_appropriate(org):
    timing, competitor = new_lead(org), new_lead(org)
    for lead_id, reason in ((timing, "bad_timing"), (competitor, "competitor")):
        feed(org, [event("email_sent", lead_id, 1)])
        owner = svc.get_lead(org, lead_id)["owner"]
        svc.change_lead(org, actor=owner, spec=ChangeSpec(lead_id, status="disqualified", reason=reason))
    assert {m.payload["lead"]["id"] for m in queued(org, "sequence.remove")} == {timing, competitor}
    assert [m.payload["lead"]["id"] for m in queued(org, "nurture.enroll")] == [timing]


# --- seed 000 "Routing based on status changes" ------------------------------------------------------------


def test_nurture_transfers_ownership_to_marketing(org):
    lead_id = new_lead(org)
    feed(org, [event("email_sent", lead_id, 1)])
    svc.change_lead(
        org,
        actor="ana",
        spec=ChangeSpec(lead_id, status="nurture", reason="bad_timing", fields={"re_evaluate_on": "2027-03-01"}),
    )
    rows = entries(org, lead_id)
    assert (rows[-1].to_owner, rows[-1].rule) == ("marketing", "transfer_to_marketing")
    assert len(queued(org, "nurture.enroll")) == 1


def test_recycled_goes_to_a_different_rep_than_the_one_who_worked_it(org):
    lead_id = new_lead(org)
    first_owner = svc.get_lead(org, lead_id)["owner"]
    feed(org, [event("email_sent", lead_id, 1)])
    svc.change_lead(org, actor=first_owner, spec=ChangeSpec(lead_id, status="disqualified", reason="bad_timing"))
    svc.change_lead(org, actor="maria", spec=ChangeSpec(lead_id, status="recycled", reason="trigger_event"))
    lead = svc.get_lead(org, lead_id)
    assert lead["status"] == "recycled" and lead["owner"] not in (None, first_owner)
    assert entries(org, lead_id)[-1].rule == "fresh_rep"


def test_a_form_from_a_nurtured_lead_recycles_it(org):
    lead_id = new_lead(org, email="back@example.com")
    feed(org, [event("email_sent", lead_id, 1)])
    svc.change_lead(
        org,
        actor="ana",
        spec=ChangeSpec(lead_id, status="nurture", reason="not_ready", fields={"re_evaluate_on": "2027-03-01"}),
    )
    summary = feed(org, [event("form_submitted", None, 30, key="f1", email="back@example.com")])
    assert summary.applied == 1 and summary.counts["leads_created"] == 0
    lead = svc.get_lead(org, lead_id)
    assert lead["status"] == "recycled" and lead["reason"] == "re_engaged" and lead["owner"] not in ("ana", "marketing")


def test_a_form_from_an_unknown_visitor_creates_a_new_lead_that_is_routed(org):
    summary = feed(
        org,
        [event("form_submitted", None, 3, key="f2", email="fresh@example.com", name="Fresh", territory="EMEA-North")],
    )
    assert summary.counts["leads_created"] == 1
    (lead,) = svc.list_leads(org, source=None)
    assert (lead["email"], lead["status"], lead["owner"]) == ("fresh@example.com", "assigned", "elif")


def test_round_robin_is_exactly_fair_and_deterministic(org):
    owners = Counter(svc.get_lead(org, new_lead(org))["owner"] for _ in range(30))
    assert owners == {"ana": 10, "ben": 10, "carla": 10}


def test_capacity_caps_stop_routing_and_alert_the_manager(org):
    model_text = org.loaded_model().text.replace(
        "sdr_east: {team: sdr-east, strategy: round_robin, capacity: 400}",
        "sdr_east: {team: sdr-east, strategy: round_robin, capacity: 1}",
    )
    from leadledger.services.models import activate_model

    activate_model(org, text=model_text, file="capped.yaml", actor="admin")
    routed = [svc.get_lead(org, new_lead(org))["owner"] for _ in range(4)]
    assert sorted(o for o in routed if o) == ["ana", "ben", "carla"] and routed[3] is None
    assert any("at capacity" in n["message"] for n in inbox.list_notifications(org, recipient="maria"))


# --- idempotency, bad input ---------------------------------------------------------------------------------


def test_replaying_an_events_file_changes_nothing(org):
    lead_id = new_lead(org)
    lines = [
        event("email_sent", lead_id, 1),
        event("email_replied", lead_id, 5, classification="positive"),
        event("meeting_held", lead_id, 60),
    ]
    first = feed(org, lines)
    before = (entries(org, lead_id), queued(org), inbox.list_tasks(org, status=None))
    again = apply_events(org, lines, actor="admin")
    assert (first.applied, again.applied, again.duplicates) == (3, 0, 3)
    assert (entries(org, lead_id), queued(org), inbox.list_tasks(org, status=None)) == before


def test_bad_lines_are_reported_with_their_line_numbers_and_good_ones_applied(org):
    lead_id = new_lead(org)
    lines = [
        event("email_sent", lead_id, 1),
        "{not json",
        json.dumps({"id": "x1", "type": "teleport", "lead": lead_id, "at": T0.isoformat()}),
        json.dumps(
            {
                "id": "x2",
                "type": "email_replied",
                "lead": lead_id,
                "at": T0.isoformat(),
                "data": {"classification": "maybe"},
            }
        ),
        json.dumps({"id": "x3", "type": "email_sent", "lead": "L-missing", "at": T0.isoformat()}),
        json.dumps({"id": "x4", "type": "email_sent", "lead": lead_id, "at": "2030-01-01T00:00:00Z"}),
        "",
        event("call_logged", lead_id, 9, outcome="connected"),
    ]
    org.clock.at = T0 + timedelta(minutes=10)  # type: ignore[attr-defined]
    summary = apply_events(org, lines, actor="admin")
    assert (summary.applied, summary.rejected) == (2, 5)
    errors = {e["line"]: e["error"] for e in summary.errors}
    assert sorted(errors) == [2, 3, 4, 5, 6]
    assert "unknown event type 'teleport'" in errors[3] and "classification 'maybe'" in errors[4]
    assert "no lead 'L-missing'" in errors[5] and "future" in errors[6]
    assert status_of(org, lead_id) == "connected"


def test_a_rule_never_reacts_to_its_own_output(org):
    """Two rules that would ping-pong forever (Working <-> Stale) stop when a rule would fire on its own output."""
    ping_pong = (
        "rules:\n"
        "  - name: stale_on_work\n    on: status_entered\n"
        "    when: {attr: event.to_status, op: eq, value: working}\n    set_status: stale_review\n"
        "  - name: work_on_stale\n    on: status_entered\n"
        "    when: {attr: event.to_status, op: eq, value: stale_review}\n    set_status: working\n"
    )
    text = org.loaded_model().text.replace("rules:\n", ping_pong, 1)
    from leadledger.services.models import activate_model

    activate_model(org, text=text, file="ping-pong.yaml", actor="admin")
    lead_id = new_lead(org)
    feed(org, [event("call_logged", lead_id, 1, outcome="connected"), event("meeting_held", lead_id, 60)])
    rows = entries(org, lead_id)
    moves = [
        (r.to_status, r.rule) for r in rows if r.rule in ("meeting_held_working", "stale_on_work", "work_on_stale")
    ]
    assert moves == [
        ("working", "meeting_held_working"),
        ("stale_review", "stale_on_work"),
        ("working", "work_on_stale"),
    ]
    assert rows[-1].data["caused_by"] == ["meeting_held_working", "stale_on_work", "work_on_stale"]


# --- approvals and overrides ------------------------------------------------------------------------------


def test_a_high_value_disqualification_waits_for_a_manager(org):
    lead_id = new_lead(org, estimated_value="90000")
    feed(org, [event("email_sent", lead_id, 1)])
    with pytest.raises(ApprovalPending) as pending:
        svc.change_lead(org, actor="ana", spec=ChangeSpec(lead_id, status="disqualified", reason="budget"))
    approval_id = pending.value.pending.approval_id
    assert status_of(org, lead_id) == "attempting_contact"
    (listed,) = approval_service.list_approvals(org)
    assert (listed["id"], listed["requested_by"], listed["request"]["status"]) == (approval_id, "ana", "disqualified")
    with pytest.raises(Exception, match="needs one of"):
        approval_service.decide(org, approval_id=approval_id, actor="ben", approve=True)
    approval_service.decide(org, approval_id=approval_id, actor="maria", approve=True, note="ok, budget gone")
    rows = entries(org, lead_id)
    assert rows[-2].kind == "approval_request" and rows[-2].actor == "ana"
    assert (rows[-1].to_status, rows[-1].actor, rows[-1].data["approved_by"]) == ("disqualified", "ana", "maria")
    assert approval_service.list_approvals(org) == []


def test_a_denied_approval_leaves_the_lead_and_records_the_decider(org):
    lead_id = new_lead(org, estimated_value="70000")
    feed(org, [event("email_sent", lead_id, 1)])
    with pytest.raises(ApprovalPending) as pending:
        svc.change_lead(org, actor="ana", spec=ChangeSpec(lead_id, status="disqualified", reason="budget"))
    approval_service.decide(
        org, approval_id=pending.value.pending.approval_id, actor="maria", approve=False, note="keep working it"
    )
    last = entries(org, lead_id)[-1]
    assert (last.kind, last.actor, last.to_status, last.note) == (
        "approval_denied",
        "maria",
        "attempting_contact",
        "keep working it",
    )


def test_a_manager_disqualifies_a_high_value_lead_without_waiting(org):
    lead_id = new_lead(org, estimated_value="90000")
    feed(org, [event("email_sent", lead_id, 1)])
    svc.change_lead(org, actor="maria", spec=ChangeSpec(lead_id, status="disqualified", reason="budget"))
    assert status_of(org, lead_id) == "disqualified"


def test_a_rep_reverting_an_automated_change_is_logged_as_an_override_of_that_rule(org):
    lead_id = new_lead(org)
    feed(org, [event("email_sent", lead_id, 1), event("email_replied", lead_id, 5, classification="neutral")])
    svc.change_lead(
        org,
        actor="ana",
        spec=ChangeSpec(
            lead_id, status="attempting_contact", note="auto-reply, not a person", log=ActivityIn("email_sent")
        ),
    )
    last = entries(org, lead_id)[-1]
    assert (last.override_rule, last.source, last.note) == (
        "email_reply_connects",
        "manual",
        "auto-reply, not a person",
    )


def test_events_cannot_touch_a_lead_after_it_is_locked(org):
    lead_id = _qualified(org)
    feed(org, [event("opportunity_created", lead_id, 600, opportunity_id="O1", amount=5, close_date="2027-01-01")])
    summary = feed(org, [event("email_replied", lead_id, 700, classification="positive")])
    assert summary.applied == 1 and status_of(org, lead_id) == "converted"
    with org.db.read() as conn:
        assert conn.execute(select(activities).where(activities.c.lead_id == lead_id)).all()
    with pytest.raises(ChangeRefused, match="locked"):
        svc.change_lead(org, actor="maria", spec=ChangeSpec(lead_id, status="working"))
