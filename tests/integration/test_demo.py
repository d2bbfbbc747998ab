"""Demo data is realistic and legal: every generated move passes the engine, and rates follow the seeds."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from leadledger.domain.changes import Activity, Actor, ChangeRequest, StatusChange
from leadledger.domain.engine import change_status, new_lead
from leadledger.services import demo
from leadledger.services.errors import Invalid
from leadledger.services.history import LeadHistory
from leadledger.store import repository as repo
from leadledger.store.tables import activities, leads, ledger


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
        state = repo.lead_state(row)
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


def test_demo_is_deterministic_for_a_seed_and_refuses_to_repeat_it(demo_app):
    with demo_app.db.read() as conn:
        count = conn.execute(select(func.count()).select_from(ledger)).scalar()
    with pytest.raises(Invalid, match="seed 3"):
        demo.generate(demo_app, leads=10, seed=3)
    assert demo.generate(demo_app, leads=10, seed=4)["entries"] > 10
    assert demo.generate(demo_app, leads=10, seed=5, if_empty=True)["skipped"]
    assert count > 0
    _ = LeadHistory
