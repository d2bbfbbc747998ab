"""Demo data is realistic and legal: every generated move passes the engine, and rates follow the seeds."""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from leadledger.bootstrap import build_app
from leadledger.domain.changes import Activity, Actor, ChangeRequest, StatusChange
from leadledger.domain.engine import change_status, new_lead
from leadledger.services import demo, demo_story
from leadledger.services.errors import Invalid
from leadledger.services.history import LeadHistory, write_histories
from leadledger.store import repository as repo
from leadledger.store.session import SqlWriteSession
from leadledger.store.tables import CONTACT_COLUMNS, activities, leads, ledger, users


@pytest.fixture
def demo_app(app):
    summary = demo.generate(app, leads=600, seed=3)
    assert summary["leads"] == 600
    return app


def test_every_demo_history_passes_the_transition_engine(demo_app):
    """Replays each generated lead through the engine: same moves, same overrides, no violations."""
    model = demo_app.model
    now = demo_app.clock.now()
    with demo_app.db.read() as conn:
        entries = list(conn.execute(select(ledger).order_by(ledger.c.lead_id, ledger.c.seq)))
        logged = list(conn.execute(select(activities)))
        rows = {r.id: r for r in conn.execute(select(leads))}
        stored = SqlWriteSession(conn).leads(list(rows))
    by_lead: dict[str, list] = {}
    for entry in entries:
        by_lead.setdefault(entry.lead_id, []).append(entry)
    acts: dict[str, list[Activity]] = {}
    for a in logged:
        acts.setdefault(a.lead_id, []).append(Activity(a.type, a.at, a.data or {}))
    checked = 0
    for lead_id, history in by_lead.items():
        first = history[0]
        row = rows[lead_id]
        created = new_lead(model, lead_id=lead_id, fields=repo.lead_fields(row), actor=Actor(first.actor, first.actor_role),
                           at=first.at, now=now, source=first.source, stage=first.to_stage)  # fmt: skip
        assert isinstance(created, StatusChange), (lead_id, created)
        state = stored[lead_id].projection.state(lead_id)
        state = replace(state, status="new", stage=first.to_stage, owner=None, version=1, last_at=first.at,
                        last_automated=None)  # fmt: skip
        for entry in history[1:]:
            request = ChangeRequest(
                lead_id=lead_id, actor=Actor(entry.actor, entry.actor_role), at=entry.at, source=entry.source,
                status=entry.to_status if entry.to_status != entry.from_status else None,
                stage=entry.to_stage if entry.to_stage != entry.from_stage else None,
                owner=entry.to_owner if entry.to_owner != entry.from_owner else None,
                reason=entry.reason, fields=entry.data or {}, rule=entry.rule,
            )  # fmt: skip
            result = change_status(model, state, request, now=now, activities=acts.get(lead_id, []))
            assert isinstance(result, StatusChange), (lead_id, entry.seq, result)
            assert (result.to_status, result.to_stage, result.to_owner) == (
                entry.to_status,
                entry.to_stage,
                entry.to_owner,
            )
            assert result.override_of_seq == entry.override_of_seq
            auto = state.last_automated
            if result.status_changed:
                from leadledger.domain.changes import AutomatedChange

                auto = (AutomatedChange(entry.seq, entry.rule, entry.from_status, entry.to_status)
                        if entry.source in ("automation", "time_rule", "integration") else None)  # fmt: skip
            state = replace(state, status=result.to_status, stage=result.to_stage, owner=result.to_owner,
                            version=entry.seq, last_at=entry.at, last_automated=auto)  # fmt: skip
            checked += 1
        assert (row.status, row.stage, row.owner, row.version) == (
            state.status,
            state.stage,
            state.owner,
            state.version,
        )
    assert checked > 1500


def test_demo_rates_follow_the_seeds(demo_app):
    with demo_app.db.read() as conn:
        entered = Counter()
        for _lead_id, status in conn.execute(select(ledger.c.lead_id, ledger.c.to_status).distinct()):
            entered[status] += 1
    attempting_to_connected = entered["connected"] / entered["attempting_contact"]
    assert 0.25 <= attempting_to_connected <= 0.55
    assert entered["attempting_contact"] / entered["new"] > 0.85
    assert 0.6 <= entered["converted"] / entered["qualified"] <= 0.95
    assert entered["stale_review"] > 0 and entered["recycled"] > 0 and entered["invalid"] > 0


def test_demo_automation_is_the_default_models_own(demo_app):
    """Every rule the demo's ledger names is one the model defines (so the overrides report and a backtest
    speak of real rules), and every automated conversion follows the opportunity_created event it reacts to."""
    auto = demo_app.model.automation
    known = {r.name for r in auto.rules} | {r.name for r in demo_app.model.time_rules}
    known |= {action.name for actions in auto.on_enter.values() for action in actions}
    with demo_app.db.read() as conn:
        named = {r for (r,) in conn.execute(select(ledger.c.rule).where(ledger.c.rule.is_not(None)).distinct())}
        named |= {
            r for (r,) in conn.execute(select(ledger.c.override_rule).where(ledger.c.override_rule.is_not(None)).distinct())
        }
        conversions = list(conn.execute(
            select(ledger.c.lead_id, ledger.c.at, ledger.c.data).where(ledger.c.rule == "opportunity_created")
        ))  # fmt: skip
        opportunities = {
            (a.lead_id, a.data["opportunity_id"]): a.at
            for a in conn.execute(select(activities).where(activities.c.type == "opportunity_created"))
        }
    assert named and named <= known, named - known
    assert {"new:route", "first_email_sent", "opportunity_created", "transfer_to_marketing"} <= named
    assert conversions
    for lead_id, at, data in conversions:
        event_at = opportunities[(lead_id, data["opportunity_id"])]
        assert timedelta(0) < at - event_at <= timedelta(seconds=5), lead_id


def _recorded(app) -> dict[str, list[tuple]]:
    """Everything a demo wrote, without the database's own row ids."""
    with app.db.read() as conn:
        return {
            "leads": [tuple(r) for r in conn.execute(select(leads).order_by(leads.c.id))],
            "ledger": [tuple(r)[1:] for r in conn.execute(select(ledger).order_by(ledger.c.lead_id, ledger.c.seq))],
            "activities": [
                tuple(r)[1:]
                for r in conn.execute(select(activities).order_by(activities.c.lead_id, activities.c.at, activities.c.type))
            ],
            "users": [tuple(r) for r in conn.execute(select(users).order_by(users.c.name))],
        }


def test_demo_is_deterministic_for_a_seed_and_refuses_to_repeat_it(demo_app, another_database, clock):
    backend = "sqlite" if demo_app.db.is_sqlite else "postgres"
    other = build_app(db_url=another_database(backend), clock=clock)
    try:
        assert demo.generate(other, leads=600, seed=3)["leads"] == 600
        first, again = _recorded(demo_app), _recorded(other)
        assert len(first["ledger"]) > 600 and len(first["activities"]) > 0
        assert first == again  # the same seed and clock: the same leads, histories and people, row for row
    finally:
        other.db.dispose()
    with pytest.raises(Invalid, match="seed 3"):
        demo.generate(demo_app, leads=10, seed=3)
    assert demo.generate(demo_app, leads=10, seed=4)["entries"] > 10
    assert len(_recorded(demo_app)["leads"]) == 610  # another seed adds new leads, none the same
    assert demo.generate(demo_app, leads=10, seed=5, if_empty=True)["skipped"]


def test_demo_projection_is_the_fold_of_its_ledger(demo_app):
    """Each `leads` row equals what its ledger says: the state of the last entry, since when, set by what."""
    with demo_app.db.read() as conn:
        entries = list(conn.execute(select(ledger).order_by(ledger.c.lead_id, ledger.c.seq)))
        rows = {r.id: r for r in conn.execute(select(leads))}
        teams = {u.name: u.team for u in conn.execute(select(users))}
    by_lead: dict[str, list] = {}
    for entry in entries:
        by_lead.setdefault(entry.lead_id, []).append(entry)
    assert set(by_lead) == set(rows)
    nurtured = 0
    for lead_id, history in by_lead.items():
        row, first, last = rows[lead_id], history[0], history[-1]
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        assert all(a.at < b.at for a, b in itertools.pairwise(history)), lead_id
        status_entry = first
        stage_since = first.at
        for previous, entry in itertools.pairwise(history):
            if entry.to_status != previous.to_status:
                status_entry = entry
            if entry.to_stage != previous.to_stage:
                stage_since = entry.at
        assert (row.status, row.stage, row.owner, row.version) == (last.to_status, last.to_stage, last.to_owner, last.seq)
        assert (row.created_at, row.updated_at, row.stage_since) == (first.at, last.at, stage_since)
        assert (row.status_since, row.status_entry_seq, row.status_source, row.status_rule, row.reason) == (
            status_entry.at,
            status_entry.seq,
            status_entry.source,
            status_entry.rule,
            status_entry.reason,
        )
        assert row.prev_status == (status_entry.from_status if status_entry.seq > 1 else None)
        assert row.team == teams.get(row.owner)
        assert row.incomplete is False and row.fields["territory"] in demo_story.TERRITORIES
        captured: dict = {}
        for entry in history:
            captured.update(entry.data or {})
        # the ledger's data folds to the lead's fields, contact columns included (the creation entry captures them)
        known = {**row.fields, **{c: getattr(row, c) for c in CONTACT_COLUMNS if getattr(row, c) is not None}}
        assert captured == known, lead_id
        nurtured += last.to_status == "nurture" and "re_evaluate_on" in row.fields
    assert nurtured > 0  # the sweep's nurture re-evaluation has a date to read


def _dump(url: str) -> dict[str, list]:
    app = build_app(db_url=url)
    try:
        with app.db.read() as conn:
            return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key))]
                    for t in (leads, ledger, activities)}  # fmt: skip
    finally:
        app.db.dispose()


def test_demo_data_is_the_same_with_workers(sqlite_template, tmp_path, clock):
    """Worker processes (SQLite images copied in) write exactly what the single-process path writes."""
    urls = []
    for name, workers in (("alone", 0), ("workers", 2)):
        path = tmp_path / f"{name}.db"
        shutil.copy(sqlite_template, path)
        urls.append(f"sqlite:///{path}")
        app = build_app(db_url=urls[-1], clock=clock)
        summary = demo.generate(app, leads=2_500, seed=9, chunk=1_000, workers=workers)
        app.db.dispose()
        assert summary["leads"] == 2_500 and summary["entries"] > 2_500 * 4
    alone, parallel = (_dump(url) for url in urls)
    assert len(alone["leads"]) == 2_500
    assert alone == parallel


def test_write_histories_stores_nulls_booleans_json_and_the_folded_projection(app):
    """The bulk writer the importer shares: NULL stays NULL, false stays false, dicts become JSON."""
    at = app.clock.now() - timedelta(days=2)
    history = LeadHistory(
        lead={"id": "H1", "name": "Jo Doe", "email": "jo@example.com", "phone": None, "source": "web",
              "fields": {"territory": "EMEA"}, "incomplete": False},
        entries=[
            {"at": at, "kind": "created", "actor": "system", "actor_role": "ops", "source": "import",
             "to_status": "new", "to_stage": "lead"},
            {"at": at + timedelta(hours=1), "actor": "ana", "actor_role": "rep", "source": "import",
             "from_status": "new", "to_status": "attempting_contact", "from_stage": "lead", "to_stage": "lead",
             "to_owner": "ana", "data": {"next_follow_up_at": "2026-11-30"}, "note": None},
            {"at": at + timedelta(hours=2), "actor": "ana", "actor_role": "rep", "source": "import",
             "from_status": "attempting_contact", "to_status": "attempting_contact", "from_stage": "lead",
             "to_stage": "mql", "from_owner": "ana", "to_owner": "ana", "off_model": True},
        ],
        activities=[{"type": "call_logged", "at": at + timedelta(minutes=30), "actor": "ana",
                     "data": {"outcome": "no_answer"}}],
    )  # fmt: skip
    with app.db.write() as conn:
        counts = write_histories(conn, [history], recorded_at=app.clock.now(), owner_teams={"ana": "east"},
                                 model=app.model)
    assert counts == (3, 1)
    with app.db.read() as conn:
        row = conn.execute(select(leads).where(leads.c.id == "H1")).one()
        stored = list(conn.execute(select(ledger).where(ledger.c.lead_id == "H1").order_by(ledger.c.seq)))
        logged = conn.execute(select(activities).where(activities.c.lead_id == "H1")).one()
        nulls = conn.execute(
            select(func.count()).select_from(ledger).where(ledger.c.lead_id == "H1", ledger.c.note.is_(None),
                                                           ledger.c.idempotency_key.is_(None))
        ).scalar()  # fmt: skip
    assert (row.status, row.stage, row.owner, row.team, row.version) == ("attempting_contact", "mql", "ana", "east", 3)
    assert (row.status_since, row.stage_since, row.created_at) == (stored[1].at, stored[2].at, at)
    assert (row.prev_status, row.status_entry_seq, row.phone, row.incomplete) == ("new", 2, None, False)
    assert row.fields == {"territory": "EMEA"}
    assert [e.off_model for e in stored] == [False, False, True]
    assert stored[0].from_status is None and stored[0].kind == "created"
    # the creation entry captures the lead's data, as the service's creation entry does
    assert stored[0].data == {"name": "Jo Doe", "email": "jo@example.com", "source": "web", "territory": "EMEA"}
    assert stored[1].data == {"next_follow_up_at": "2026-11-30"} and stored[1].kind == "change"
    assert nulls == 3
    assert (logged.type, logged.data, logged.key, logged.source) == ("call_logged", {"outcome": "no_answer"}, None, "manual")


def test_the_demo_names_the_rules_of_the_model_it_is_written_under(app):
    """The story's automated moves carry the names the model gives its rules, found by what they do."""
    from leadledger.model.loader import default_model_text
    from leadledger.services.models import activate_model

    text = default_model_text().replace("name: first_email_sent", "name: first_touch")
    activate_model(app, text=text, file="renamed.yaml", actor="admin")
    demo.generate(app, leads=300, seed=5)
    with app.db.read() as conn:
        named = {r for (r,) in conn.execute(select(ledger.c.rule).distinct()) if r}
        named |= {r for (r,) in conn.execute(select(ledger.c.override_rule).distinct()) if r}
    model = app.loaded_model().model
    known = {r.name for r in model.automation.rules} | {r.name for r in model.time_rules}
    known |= {a.name for actions in model.automation.on_enter.values() for a in actions}
    assert "first_touch" in named and "first_email_sent" not in named
    assert named <= known


def test_a_model_without_what_the_demo_s_story_needs_is_refused_naming_it(app):
    model = app.loaded_model().model
    lacking = replace(
        model,
        statuses={k: v for k, v in model.statuses.items() if k != "stale_review"},
        time_rules=tuple(r for r in model.time_rules if r.name != "nurture_re_evaluation"),
    )
    with pytest.raises(Invalid, match="status stale_review"):
        demo_story.StoryRules.of(lacking)
    lacking = replace(model, time_rules=tuple(r for r in model.time_rules if r.name != "nurture_re_evaluation"))
    with pytest.raises(Invalid, match="a time rule moving leads from nurture to recycled"):
        demo_story.StoryRules.of(lacking)
