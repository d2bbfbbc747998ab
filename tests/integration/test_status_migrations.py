"""`model apply FILE` with a `migrations:` map: leads in a renamed or merged status are listed (--dry-run), then
moved by appended migration entries through the write path; the recorded history is left as it was."""

from __future__ import annotations

from datetime import timedelta

import pytest
from model_edits import default, dump, merge, rename, with_migrations
from sqlalchemy import func, select

from leadledger.model.source import read_yaml
from leadledger.ops.verify import verify
from leadledger.services import leads as svc
from leadledger.services import status_migrations
from leadledger.services.errors import ChangeRefused, Forbidden, Invalid
from leadledger.services.leads import ActivityIn, ChangeSpec
from leadledger.services.models import ModelRejected
from leadledger.store import repository as repo
from leadledger.store.tables import leads, ledger, model_versions

MERGE_REASON = "Rejected and Disqualified lead to the same action and report the same thing (council 2026-Q4)"


def v2_text() -> str:
    data = merge(rename(default(), "attempting_contact", "contacting"), "rejected", "disqualified")
    return dump(with_migrations(data, {"attempting_contact": "contacting",
                                       "rejected": {"to": "disqualified", "reason": MERGE_REASON}}))  # fmt: skip


def _lead(app, clock, name: str, *steps: dict) -> str:
    lead = svc.create_lead(app, actor="admin", fields={"name": name, "email": f"{name}@example.com"}, owner="ana")
    for step in steps:
        clock.advance(timedelta(hours=1))
        svc.change_lead(app, actor=step.pop("actor", "ana"), spec=ChangeSpec(lead.lead_id, **step))
    return lead.lead_id


@pytest.fixture
def three_leads(team_app, clock):
    attempting = _lead(team_app, clock, "a1", {"status": "attempting_contact", "log": ActivityIn("email_sent")})
    rejected = _lead(team_app, clock, "r1", {"status": "rejected", "reason": "poor_fit"})
    connected = _lead(team_app, clock, "c1", {"status": "connected", "log": ActivityIn("meeting_held")})
    clock.advance(timedelta(days=2))
    return attempting, rejected, connected


def _counts(app) -> tuple[int, int]:
    with app.db.read() as conn:
        return (conn.execute(select(func.count()).select_from(ledger)).scalar_one(),
                conn.execute(select(func.count()).select_from(model_versions)).scalar_one())  # fmt: skip


def test_a_dry_run_lists_the_moves_and_writes_nothing(team_app, three_leads):
    attempting, rejected, _ = three_leads
    before = _counts(team_app)
    result = status_migrations.apply_model(team_app, v2_text(), "v2.yaml", "admin", dry_run=True)
    assert result["applied"] is False and _counts(team_app) == before
    plan = result["plan"]
    assert plan["errors"] == []
    assert plan["moves"] == [
        {"from": "attempting_contact", "to": "contacting", "leads": 1, "problem": None, "samples": [attempting]},
        {"from": "rejected", "to": "disqualified", "leads": 1, "problem": None, "samples": [rejected]},
    ]
    kinds = {row["from"]: (row["to"], row["kind"], row["reason"]) for row in plan["migrations"]}
    assert kinds == {"attempting_contact": ("contacting", "rename", ""),
                     "rejected": ("disqualified", "merge", MERGE_REASON)}  # fmt: skip


def test_apply_moves_leads_by_migration_entries_that_keep_the_time_in_status(team_app, clock, three_leads):
    attempting, rejected, connected = three_leads
    with team_app.db.read() as conn:
        since = {row.id: row.status_since for row in conn.execute(select(leads.c.id, leads.c.status_since))}
        recorded = [tuple(r) for r in conn.execute(select(ledger.c.id, ledger.c.to_status).order_by(ledger.c.id))]
    result = status_migrations.apply_model(team_app, v2_text(), "v2.yaml", "admin")
    assert result["applied"] and result["migrated"]["moved"] == 2 and result["migrated"]["refused"] == []
    version = result["model"]["id"]
    with team_app.db.read() as conn:
        # the ledger keeps what was recorded, and gains one entry per moved lead
        assert [tuple(r) for r in conn.execute(select(ledger.c.id, ledger.c.to_status).order_by(ledger.c.id))][
            : len(recorded)
        ] == recorded
        rows = {r.lead_id: r for r in conn.execute(select(ledger).where(ledger.c.source == "migration"))}
        state = {r.id: r for r in conn.execute(select(leads))}
    assert set(rows) == {attempting, rejected}
    entry = rows[rejected]
    assert (entry.from_status, entry.to_status, entry.actor, entry.actor_role, entry.kind) == (
        "rejected", "disqualified", "admin", "ops", "change")  # fmt: skip
    assert entry.data["migration"] == {"model_version": version, "from": "rejected", "to": "disqualified",
                                       "kind": "merge", "reason": MERGE_REASON}  # fmt: skip
    assert rows[attempting].data["migration"]["kind"] == "rename"
    # a migration renames the status the lead is in: the time in status (and its entry reason) carry over
    assert state[attempting].status == "contacting" and state[attempting].status_since == since[attempting]
    assert state[rejected].status == "disqualified" and state[rejected].reason == "poor_fit"
    assert state[rejected].status_since == since[rejected] and state[connected].status == "connected"
    # the moved lead works on under the new model
    clock.advance(timedelta(hours=1))
    svc.change_lead(team_app, actor="ana", spec=ChangeSpec(attempting, status="connected", log=ActivityIn("meeting_held")))
    # nothing left to move: running it again changes nothing
    again = status_migrations.migrate(team_app, "admin")
    assert again["moved"] == 0 and again["refused"] == []
    # the migration entries are links of each lead's hash chain like any other write: the ledger verifies
    checked = verify(team_app)
    assert checked.ok, checked


def test_only_ops_apply_and_migrate(team_app, three_leads):
    with pytest.raises(Forbidden):
        status_migrations.apply_model(team_app, v2_text(), "v2.yaml", "maria")
    with pytest.raises(Forbidden):
        status_migrations.migrate(team_app, "maria")
    # the engine refuses `migration` as the source of an ordinary change: it is not a way around the rules
    attempting = three_leads[0]
    with pytest.raises(ChangeRefused):
        svc.change_lead(team_app, actor="admin", spec=ChangeSpec(attempting, status="qualified", source="migration"))


def test_a_status_removed_without_migration_refuses_while_leads_are_in_it(team_app, three_leads):
    data = merge(rename(default(), "attempting_contact", "contacting"), "rejected", "disqualified")
    text = dump(with_migrations(data, {"attempting_contact": "contacting"}))
    plan = status_migrations.plan_file(team_app, text, "v2.yaml")
    assert [(g["from"], g["problem"]) for g in plan["moves"] if g["problem"]] == [
        ("rejected", "rejected is not a status of the model and no migration names it")]  # fmt: skip
    assert any(w["check"] == "migration_missing" and w["subject"] == "rejected" for w in plan["warnings"])
    before = _counts(team_app)
    with pytest.raises(Invalid, match="strand leads nothing can move: 1 in rejected"):
        status_migrations.apply_model(team_app, text, "v2.yaml", "admin")
    assert _counts(team_app) == before


def test_a_merge_into_an_existing_status_without_a_reason_is_refused(team_app, three_leads):
    data = merge(default(), "rejected", "disqualified")
    with pytest.raises(ModelRejected, match="a merge states its reason"):
        status_migrations.apply_model(team_app, dump(with_migrations(data, {"rejected": "disqualified"})), "v2.yaml",
                                      "admin")  # fmt: skip
    with team_app.db.read() as conn:
        assert repo.latest_model_id(conn) == 1


def test_a_split_by_reason_moves_each_lead_by_the_reason_it_entered_with(team_app, clock):
    # disqualified is split: "no response" and "bad timing" were never lost, they are nurture; the rest is lost
    data = with_migrations(
        rename(default(), "disqualified", "lost"),
        {"disqualified": {"split": {"by": "reason", "cases": {"no_response": "nurture", "bad_timing": "nurture"},
                                    "else": "lost"}, "reason": "parked, not lost"}},
    )  # fmt: skip
    gone = _lead(team_app, clock, "d1", {"status": "disqualified", "reason": "competitor"})
    quiet = _lead(team_app, clock, "d2", {"status": "disqualified", "reason": "no_response"})
    stuck = _lead(team_app, clock, "d3", {"status": "connected", "log": ActivityIn("meeting_held")},
                  {"status": "working"}, {"status": "disqualified", "reason": "bad_timing"})  # fmt: skip
    plan = status_migrations.plan_file(team_app, dump(data), "v2.yaml")
    assert [(g["from"], g["to"], g["leads"], g["problem"]) for g in plan["moves"]] == [
        ("disqualified", "lost", 1, None),
        ("disqualified", "nurture", 1, None),
        ("disqualified", "nurture", 1, "nurture is not valid in stage sal"),
    ]
    with pytest.raises(Invalid, match="nurture is not valid in stage sal"):
        status_migrations.apply_model(team_app, dump(data), "v2.yaml", "admin")
    # ops decide that stage-sal leads go to lost too: a case by stage cannot say that, so the case goes
    data["migrations"]["disqualified"]["split"]["cases"].pop("bad_timing")
    result = status_migrations.apply_model(team_app, dump(data), "v2.yaml", "admin")
    assert result["migrated"]["by_status"] == [{"from": "disqualified", "to": "lost", "leads": 2},
                                               {"from": "disqualified", "to": "nurture", "leads": 1}]  # fmt: skip
    with team_app.db.read() as conn:
        status = dict(conn.execute(select(leads.c.id, leads.c.status)).all())
    assert (status[gone], status[quiet], status[stuck]) == ("lost", "nurture", "lost")


def test_the_what_if_shows_the_migrations_and_reads_recorded_keys_through_them(team_app, clock, monkeypatch,
                                                                                tmp_path):  # fmt: skip
    from leadledger.services import model_changes

    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    start = clock.at
    attempting = _lead(team_app, clock, "a1", {"status": "attempting_contact", "log": ActivityIn("email_sent")})
    rejected = _lead(team_app, clock, "r1", {"status": "rejected", "reason": "poor_fit"})
    clock.advance(timedelta(hours=1))
    before = _counts(team_app)
    report = model_changes.what_if(team_app, v2_text(), file="v2.yaml", start=start, end=clock.at)
    assert _counts(team_app) == before and report["written"] is False
    assert {c["key"]: c["note"] for c in report["diff"]["changes"] if c["section"] == "migrations"} == {
        "attempting_contact": "attempting_contact → contacting (rename)",
        "rejected": f"rejected → disqualified (merge): {MERGE_REASON}",
    }
    moving = report["migrations"]
    assert [(g["from"], g["to"], g["samples"]) for g in moving["moves"]] == [
        ("attempting_contact", "contacting", [attempting]), ("rejected", "disqualified", [rejected])]  # fmt: skip
    # renamed and merged statuses are not "gone": nothing recorded is refused for that
    assert report["refused"] == []
    ends = {row["status"]: row for row in report["replay"]["distribution"]}
    assert "attempting_contact" not in ends and "rejected" not in ends
    assert (ends["contacting"]["actual"], ends["contacting"]["backtest"]) == (1, 1)
    assert (ends["disqualified"]["actual"], ends["disqualified"]["backtest"]) == (1, 1)
    # the same file without its migrations: the recorded moves into the dropped keys are refused
    bare = read_yaml(v2_text())
    bare.pop("migrations")
    refused = model_changes.what_if(team_app, dump(bare), file="bare.yaml", start=start, end=clock.at)["refused"]
    assert {r["why"] for r in refused} == {"attempting_contact is not a status of the proposed model",
                                           "rejected is not a status of the proposed model"}  # fmt: skip
