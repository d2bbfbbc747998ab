"""The sweep's indexed due-at: a lead whose rules are not due is not looked at, it fires exactly when due, and
sweeping by due-at fires exactly what judging every lead at every sweep (the sweep before the index) fires."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from leadledger.bootstrap import build_app
from leadledger.domain.clock import FixedClock
from leadledger.domain.due import FLOOR
from leadledger.services import leads as svc
from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.leads import ActivityIn, ChangeSpec
from leadledger.services.sweep import sweep
from leadledger.store.tables import leads, ledger, notifications, rule_firings, tasks

MONDAY_10 = datetime.fromisoformat("2026-11-23T15:00:00+00:00")


def _org(app: App) -> App:
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="sdr-east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="sdr-east")
    return app


def _due_at(app: App, lead_id: str) -> datetime | None:
    with app.db.read() as conn:
        return conn.execute(select(leads.c.due_at).where(leads.c.id == lead_id)).scalar_one()


def _working(app: App) -> str:
    lead_id = svc.create_lead(app, actor="ana", fields={"name": "Jo", "email": "jo@example.com"}, owner="ana").lead_id
    change = svc.change_lead
    change(app, actor="ana", spec=ChangeSpec(lead_id, status="connected",
                                            log=ActivityIn("call_logged", data={"outcome": "connected"})))  # fmt: skip
    change(app, actor="ana", spec=ChangeSpec(lead_id, stage="sal"))
    change(app, actor="ana", spec=ChangeSpec(lead_id, status="working"))
    return lead_id


def test_a_lead_not_yet_due_is_not_read_by_the_sweep_and_fires_exactly_when_due(app: App):
    org = _org(app)
    org.clock.at = MONDAY_10  # type: ignore[attr-defined]
    lead_id = _working(org)
    assert _due_at(org, lead_id) == MONDAY_10 + timedelta(days=14)  # "Working, no activity for 14 days"
    org.clock.at = MONDAY_10 + timedelta(days=14) - timedelta(seconds=1)  # type: ignore[attr-defined]
    summary = sweep(org)
    assert summary.examined == 0 and summary.fired == 0
    org.clock.at = MONDAY_10 + timedelta(days=14)  # type: ignore[attr-defined]
    summary = sweep(org)
    assert summary.examined == 1 and summary.rules["working_quiet_14d"] == 1
    # judged and fired: the due-at moves on to the next rule of the stint ("30 days -> Stale")
    assert _due_at(org, lead_id) == MONDAY_10 + timedelta(days=30)
    assert sweep(org).examined == 0


def test_an_attempt_logged_brings_the_due_at_forward_and_the_sweep_moves_it_on(app: App):
    org = _org(app)
    org.clock.at = MONDAY_10  # type: ignore[attr-defined]
    lead_id = svc.create_lead(org, actor="ana", fields={"name": "Al", "email": "al@example.com"}, owner="ana").lead_id
    svc.change_lead(org, actor="ana", spec=ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent")))
    org.clock.at = MONDAY_10 + timedelta(hours=1)  # type: ignore[attr-defined]
    sweep(org)  # judged once (attempts not read when it entered), then due at the 7-day alert
    assert _due_at(org, lead_id) == MONDAY_10 + timedelta(days=7)
    for hour in range(2, 9):
        org.clock.at = MONDAY_10 + timedelta(hours=hour)  # type: ignore[attr-defined]
        svc.log_activity(org, lead_id=lead_id, actor="ana", activity=ActivityIn("call_logged", data={"outcome": "no_answer"}))
    assert _due_at(org, lead_id) == MONDAY_10 + timedelta(hours=2)  # the first new attempt's instant
    assert sweep(org).rules["attempts_exhausted"] == 1


# --- equality with judging every lead at every sweep ---------------------------------------------------------

STATUSES = ["attempting_contact", "connected", "working", "nurture", "stale_review", "disqualified", "recycled"]
OPS = st.one_of(
    st.tuples(st.just("move"), st.integers(0, 2), st.sampled_from(STATUSES)),
    st.tuples(st.just("log"), st.integers(0, 2), st.sampled_from(["call_logged", "email_sent", "meeting_held"])),
    st.tuples(st.just("date"), st.integers(0, 2), st.integers(-3, 20)),
    st.tuples(st.just("wait"), st.integers(1, 400), st.just(None)),  # hours, then a sweep
)


def _apply(app: App, ids: list[str], op: tuple[Any, ...], now: datetime) -> str | None:
    kind, i, value = op
    try:
        if kind == "move":
            fields = {"re_evaluate_on": (now + timedelta(days=5)).date().isoformat()} if value == "nurture" else {}
            data = {"outcome": "connected"} if value == "connected" else {}
            svc.change_lead(app, actor="ana", spec=ChangeSpec(ids[i], status=value, reason=_reason(value),
                                                             fields=fields, log=ActivityIn("call_logged", data=data)))  # fmt: skip
        elif kind == "log":
            svc.log_activity(app, lead_id=ids[i], actor="ana", activity=ActivityIn(value))
        elif kind == "date":
            day = (now + timedelta(days=value)).date().isoformat()
            svc.change_lead(app, actor="ana", spec=ChangeSpec(ids[i], fields={"re_evaluate_on": day}))
        return None
    except Exception as exc:  # a move the model refuses is refused on both databases alike
        return type(exc).__name__


def _reason(status: str) -> str | None:
    return {"nurture": "timing_window", "disqualified": "no_response", "stale_review": "no_response"}.get(status)


def _outcome(app: App, ids: list[str]) -> dict[str, Any]:
    """What the sweeps did, with each lead named by its place (ids differ between the two databases)."""
    name = {lead_id: f"L{k}" for k, lead_id in enumerate(ids)}
    with app.db.read() as conn:
        found = {
            "firings": sorted(conn.execute(select(rule_firings.c.rule, rule_firings.c.subject, rule_firings.c.stint_seq,
                                                  rule_firings.c.fired_at)).all()),
            "ledger": sorted(conn.execute(select(ledger.c.lead_id, ledger.c.seq, ledger.c.to_status, ledger.c.rule,
                                                 ledger.c.at)).all()),
            "notes": sorted(conn.execute(select(notifications.c.recipient, notifications.c.lead_id, notifications.c.rule,
                                                notifications.c.created_at)).all()),
            "tasks": sorted(conn.execute(select(tasks.c.lead_id, tasks.c.rule, tasks.c.status)).all()),
        }
    return {key: sorted(tuple(name.get(v, v) if isinstance(v, str) else v for v in row) for row in rows)
            for key, rows in found.items()}  # fmt: skip


@settings(max_examples=12, derandomize=True, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(ops=st.lists(OPS, min_size=4, max_size=30))
def test_sweeping_by_due_at_fires_exactly_what_judging_every_lead_fires(ops, sqlite_template: Path, tmp_path: Path):
    apps = []
    for name in ("indexed", "every"):
        path = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.db"
        shutil.copy(sqlite_template, path)
        apps.append(_org(build_app(db_url=f"sqlite:///{path}", clock=FixedClock(MONDAY_10))))
    indexed, every = apps
    try:
        results: list[list[Any]] = [[], []]
        lead_ids: list[list[str]] = [[], []]
        for n, app in enumerate(apps):
            now = MONDAY_10
            ids = lead_ids[n]
            for k in range(3):
                ids.append(svc.create_lead(app, actor="ana", owner="ana",
                                           fields={"name": f"L{k}", "email": f"l{k}@example.com"}).lead_id)  # fmt: skip
            for op in ops:
                if op[0] == "wait":
                    now += timedelta(hours=op[1])
                    app.clock.at = now  # type: ignore[attr-defined]
                    if app is every:  # the sweep before the index: every lead judged at every sweep
                        with app.db.write() as conn:
                            conn.execute(update(leads).values(due_at=FLOOR))
                    results[n].append(sweep(app).rules)
                else:
                    results[n].append(_apply(app, ids, op, now))
            now += timedelta(days=60)
            app.clock.at = now  # type: ignore[attr-defined]
            if app is every:
                with app.db.write() as conn:
                    conn.execute(update(leads).values(due_at=FLOOR))
            results[n].append(sweep(app).rules)
        assert results[0] == results[1]
        assert _outcome(indexed, lead_ids[0]) == _outcome(every, lead_ids[1])
    finally:
        for app in apps:
            app.db.dispose()


# what the server's sampled ANALYZE (`api.app._refresh_planner_statistics`) wrote for `leads` on 1 M demo leads
STATISTICS_AT_1M = {
    "ix_leads_due_at": "4432602 2",
    "ix_leads_status_status_since": "826672 1001 1",
    "ix_leads_owner_status": "1967355 501 501",
    "sqlite_autoindex_leads_1": "1113453 1",
}


def test_the_due_leads_are_found_through_the_due_at_index_whatever_the_statistics(sqlite_url: str):
    """With those statistics SQLite planned `due_at <= ?` (the time a parameter) as a scan of every lead, and
    `ORDER BY id` as a walk of the primary key: 0.7 s at 1 M leads, five times per sweep, with nothing due.
    Every query of the sweep that finds due leads must read the due-at index instead."""
    import sqlite3

    from sqlalchemy import event

    app = _org(build_app(db_url=sqlite_url, clock=FixedClock(MONDAY_10)))
    _working(app)
    assert app.db.path is not None
    with sqlite3.connect(app.db.path) as conn:
        conn.execute("ANALYZE")
        conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'leads'")
        conn.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('leads', ?, ?)", list(STATISTICS_AT_1M.items())
        )
    app.db.dispose()  # connections read the statistics when they open
    seen: list[tuple[str, Any]] = []

    @event.listens_for(app.db.engine, "before_cursor_execute")
    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        flat = " ".join(statement.split())
        if flat.upper().startswith("SELECT") and "FROM leads" in flat and "due_at <=" in flat.replace("leads.", ""):
            seen.append((statement, parameters))

    app.clock.at = MONDAY_10 + timedelta(days=1)  # type: ignore[attr-defined]
    sweep(app)
    assert seen, "the sweep asked for no due leads"
    with sqlite3.connect(app.db.path) as conn:
        for statement, parameters in seen:
            plan = " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
            assert "ix_leads_due_at" in plan, (statement, plan)
