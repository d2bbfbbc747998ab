"""The service layer on SQLite and a real PostgreSQL: ledger appended, projection kept equal, refusals write nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from leadledger.services import leads as svc
from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.errors import ChangeRefused, Forbidden
from leadledger.services.leads import ActivityIn, ChangeSpec
from leadledger.store.tables import activities, leads, ledger

BANT = {"budget": "50k", "authority": "CFO", "need": "visibility", "timeline": "Q1"}


_mailboxes = itertools.count()


def add_lead(app: App, **fields: Any) -> str:
    fields = {"name": "Jo Doe", "email": f"jo{next(_mailboxes)}@example.com", **fields}  # one person, one lead
    return svc.create_lead(app, actor="admin", fields=fields).lead_id


def ledger_rows(app: App, lead_id: str) -> list[Any]:
    with app.db.read() as conn:
        return list(conn.execute(select(ledger).where(ledger.c.lead_id == lead_id).order_by(ledger.c.seq)))


def projection(app: App, lead_id: str) -> Any:
    with app.db.read() as conn:
        return conn.execute(select(leads).where(leads.c.id == lead_id)).one()


def assert_projection_matches_ledger(app: App, lead_id: str) -> None:
    rows = ledger_rows(app, lead_id)
    lead = projection(app, lead_id)
    last = rows[-1]
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert (lead.status, lead.stage, lead.owner, lead.version) == (
        last.to_status,
        last.to_stage,
        last.to_owner,
        last.seq,
    )


def test_creating_a_lead_writes_its_first_ledger_entry(team_app):
    lead_id = add_lead(team_app, phone="(202) 555-0100")
    (entry,) = ledger_rows(team_app, lead_id)
    assert (entry.kind, entry.from_status, entry.to_status, entry.to_stage, entry.actor) == (
        "created", None, "new", "lead", "admin")  # fmt: skip
    lead = projection(team_app, lead_id)
    assert lead.phone == "+12025550100" and lead.version == 1 and not lead.incomplete


def test_a_refused_change_writes_nothing(team_app):
    lead_id = add_lead(team_app)
    before = ledger_rows(team_app, lead_id)
    with pytest.raises(ChangeRefused) as refused:
        svc.change_lead(team_app, actor="admin", spec=ChangeSpec(lead_id, status="qualified", reason="bogus"))
    fields = {v.field for v in refused.value.violations}
    assert {"status", "budget", "authority", "need", "timeline", "reason"} <= fields
    assert ledger_rows(team_app, lead_id) == before
    assert projection(team_app, lead_id).version == 1


def test_a_lead_goes_through_its_lifecycle_and_the_projection_follows_the_ledger(team_app, clock):
    lead_id = add_lead(team_app)

    def step(actor: str, **kw: Any) -> None:
        clock.advance(timedelta(hours=2))
        svc.change_lead(team_app, actor=actor, spec=ChangeSpec(lead_id, **kw))
        assert_projection_matches_ledger(team_app, lead_id)

    step("maria", owner="ana")
    step("ana", status="attempting_contact", log=ActivityIn("call_logged", data={"outcome": "no_answer"}))
    step("ana", status="connected", log=ActivityIn("call_logged", data={"outcome": "connected"}))
    step("ana", stage="mql")
    step("ana", stage="sal")
    step("ana", stage="sql")
    step("ana", status="qualified", fields=BANT, reason="framework_met")
    step("ana", status="converted", fields={"opportunity_id": "OPP-9", "expected_close_date": "2027-02-01",
                                           "deal_value": "15000"})  # fmt: skip
    rows = ledger_rows(team_app, lead_id)
    assert [r.to_status for r in rows] == ["new", "assigned", "attempting_contact", "connected", "connected",
                                          "connected", "working", "qualified", "converted"]  # fmt: skip
    assert rows[-1].to_stage == "opportunity"
    assert rows[1].from_owner is None and rows[1].to_owner == "ana"
    lead = projection(team_app, lead_id)
    assert lead.fields["opportunity_id"] == "OPP-9" and lead.team == "east"
    with pytest.raises(ChangeRefused, match="locked"):
        svc.change_lead(team_app, actor="admin", spec=ChangeSpec(lead_id, status="working"))


def test_the_same_idempotency_key_applies_once(team_app):
    lead_id = add_lead(team_app)
    spec = ChangeSpec(lead_id, owner="ana", idempotency_key="crm-sync-42")
    first = svc.change_lead(team_app, actor="admin", spec=spec)
    again = svc.change_lead(team_app, actor="admin", spec=spec)
    assert not first.duplicate and again.duplicate and again.seq == first.seq
    assert len(ledger_rows(team_app, lead_id)) == 2


def test_creating_with_the_same_key_twice_creates_one_lead(team_app):
    a = svc.create_lead(team_app, actor="admin", fields={"name": "A", "email": "a@x.io"}, idempotency_key="form-1")
    b = svc.create_lead(team_app, actor="admin", fields={"name": "A", "email": "a@x.io"}, idempotency_key="form-1")
    assert b.duplicate and a.lead_id == b.lead_id
    with team_app.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(leads)).scalar() == 1


def test_owner_changes_are_history(team_app, clock):
    lead_id = add_lead(team_app)
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="ana"))
    clock.advance(timedelta(hours=1))
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="ben", note="ana is out"))
    owners = [(r.from_owner, r.to_owner) for r in ledger_rows(team_app, lead_id)]
    assert owners == [(None, None), (None, "ana"), ("ana", "ben")]


def test_an_unknown_or_disabled_owner_is_refused(team_app):
    lead_id = add_lead(team_app)
    with pytest.raises(ChangeRefused, match="unknown user 'zed'"):
        svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="zed"))
    people.set_user_active(team_app, name="ben", active=False)
    with pytest.raises(ChangeRefused, match="disabled"):
        svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="ben"))


def test_a_disabled_user_cannot_write(team_app):
    lead_id = add_lead(team_app)
    people.set_user_active(team_app, name="maria", active=False)
    with pytest.raises(Forbidden):
        svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="ana"))


def test_a_rep_cannot_change_another_reps_lead(team_app):
    lead_id = add_lead(team_app)
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="ben"))
    with pytest.raises(ChangeRefused, match="does not own"):
        svc.change_lead(team_app, actor="ana", spec=ChangeSpec(lead_id, status="rejected", reason="poor_fit"))


def test_batch_changes_are_each_all_or_nothing(team_app):
    ids = [add_lead(team_app, email=f"p{n}@x.io") for n in range(4)]
    specs = [
        ChangeSpec(ids[0], owner="ana"),
        ChangeSpec(ids[1], status="disqualified"),  # no reason: refused
        ChangeSpec(ids[2], status="rejected", reason="poor_fit"),
        ChangeSpec("L-missing", owner="ana"),
        ChangeSpec(ids[0], status="attempting_contact", log=ActivityIn("email_sent")),  # after the first change
    ]
    results = svc.change_leads(team_app, specs, actor="maria")
    assert [type(r).__name__ for r in results] == ["Applied", "ChangeRefused", "Applied", "ChangeRefused", "Applied"]
    assert projection(team_app, ids[0]).status == "attempting_contact"
    assert projection(team_app, ids[1]).version == 1
    for lead_id in ids:
        assert_projection_matches_ledger(team_app, lead_id)


def test_a_refused_change_does_not_keep_the_activity_logged_with_it(team_app):
    lead_id = add_lead(team_app)
    with pytest.raises(ChangeRefused):
        svc.change_lead(
            team_app, actor="admin", spec=ChangeSpec(lead_id, status="qualified", log=ActivityIn("call_logged"))
        )
    with team_app.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(activities)).scalar() == 0


def test_the_database_refuses_to_rewrite_the_ledger(team_app):
    lead_id = add_lead(team_app)
    for statement in ("UPDATE ledger SET to_status = 'converted'", "DELETE FROM ledger"):
        with pytest.raises(DBAPIError, match="append-only"), team_app.db.write() as conn:
            conn.execute(text(statement))
    assert len(ledger_rows(team_app, lead_id)) == 1


def test_an_insert_cannot_replace_a_ledger_entry(team_app):
    """SQLite's INSERT OR REPLACE deletes the row it collides with without firing the DELETE trigger; PostgreSQL's
    ON CONFLICT DO UPDATE is an update. Both are refused, whichever unique key the new row collides on."""
    lead_id = add_lead(team_app)
    (entry,) = ledger_rows(team_app, lead_id)
    columns = "id, lead_id, seq, at, recorded_at, kind, actor, actor_role, source, to_status, to_stage, off_model"
    values = ":id, :lead, :seq, :at, :at, 'change', 'mallory', 'ops', 'manual', 'converted', 'lead', false"
    if team_app.db.is_sqlite:
        statements = [f"INSERT OR REPLACE INTO ledger ({columns}) VALUES ({values})",
                      f"REPLACE INTO ledger ({columns}) VALUES ({values})"]  # fmt: skip
    else:
        statements = [f"INSERT INTO ledger ({columns}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET "
                      "to_status = excluded.to_status"]  # fmt: skip
    for statement in statements:
        for target in ({"id": entry.id, "seq": 99}, {"id": entry.id + 1000, "seq": entry.seq}):
            with pytest.raises(DBAPIError), team_app.db.write() as conn:
                conn.execute(text(statement), {**target, "lead": lead_id, "at": entry.at})
    (after,) = ledger_rows(team_app, lead_id)
    assert (after.id, after.actor, after.to_status) == (entry.id, entry.actor, entry.to_status)


def test_listing_filters_by_status_including_sub_statuses_and_pages_by_id(team_app):
    ids = [add_lead(team_app, email=f"l{n}@x.io", source="webinar" if n % 2 else "web_form") for n in range(5)]
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(ids[0], owner="ana"))
    assert {r["id"] for r in svc.list_leads(team_app, status="new")} == set(ids)
    assert [r["id"] for r in svc.list_leads(team_app, status="assigned")] == [ids[0]]
    assert len(svc.list_leads(team_app, source="webinar")) == 2
    first = svc.list_leads(team_app, limit=2)
    second = svc.list_leads(team_app, limit=2, after=first[-1]["id"])
    assert [r["id"] for r in first + second] == sorted(ids)[:4]


def test_timeline_lists_entries_and_activities_in_order(team_app):
    lead_id = add_lead(team_app)
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="ana"))
    svc.log_activity(team_app, lead_id=lead_id, actor="ana", activity=ActivityIn("email_sent", key="e1"))
    assert not svc.log_activity(team_app, lead_id=lead_id, actor="ana", activity=ActivityIn("email_sent", key="e1"))
    data = svc.timeline(team_app, lead_id)
    # the logged e-mail is an event: the first-email rule moved the lead on (entry 3)
    assert [(e["seq"], e["to_status"], e["rule"]) for e in data["entries"]] == [
        (1, "new", None), (2, "assigned", None), (3, "attempting_contact", "first_email_sent")]
    assert [a["type"] for a in data["activities"]] == ["email_sent"]


def test_a_status_entered_and_left_within_one_instant_never_held_even_across_transactions(team_app, clock):
    """Two transactions at the same instant: the second folds the instant whole (domain.timeline), so the
    status that was superseded leaves no stint behind, exactly as in a bulk-written or imported timeline."""
    lead_id = add_lead(team_app)
    clock.advance(timedelta(hours=1))
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead_id, owner="ana"))
    clock.advance(timedelta(hours=1))
    entered = clock.now()
    svc.change_lead(team_app, actor="ana", spec=ChangeSpec(lead_id, status="attempting_contact",
                                                            log=ActivityIn("call_logged", data={"outcome": "no_answer"})))  # fmt: skip
    before = projection(team_app, lead_id)
    clock.advance(timedelta(hours=1))
    svc.change_lead(team_app, actor="ana", spec=ChangeSpec(lead_id, status="connected",
                                                            log=ActivityIn("call_logged", data={"outcome": "connected"})))  # fmt: skip
    svc.change_lead(team_app, actor="ana", spec=ChangeSpec(lead_id, status="attempting_contact"))  # same instant
    lead = projection(team_app, lead_id)
    assert [r.to_status for r in ledger_rows(team_app, lead_id)][-2:] == ["connected", "attempting_contact"]
    assert (lead.status, lead.status_since, lead.status_entry_seq, lead.prev_status) == (
        "attempting_contact", entered, before.status_entry_seq, before.prev_status)  # fmt: skip
    assert lead.version == before.version + 2 and lead.updated_at == clock.now()


def test_lead_ids_sort_by_creation_time():
    from leadledger.services.leads import new_lead_id

    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(milliseconds=37 * k + k * k) for k in range(3000)]
    ids = [new_lead_id(moment) for moment in moments]
    assert sorted(ids) == ids  # the standard base32 alphabet put "...Z..." after "...2..."
